//! A small HTTP app behind the idempotency layer, and helpers to send requests and read answers.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::{Semaphore, mpsc};
use tower::{Service, service_fn};

/// The app: counts its calls; `/held` waits for the gate (`/held-502` too, then fails), `/flaky` fails its first call with a
/// 500, `/invalid` answers 400, anything else creates an order (201).
#[derive(Clone)]
pub(crate) struct App {
    calls: Arc<AtomicUsize>,
    pub(crate) gate: Arc<Semaphore>,
    entered: mpsc::UnboundedSender<()>,
}

impl App {
    pub(crate) fn new() -> (Self, mpsc::UnboundedReceiver<()>) {
        let (entered, rx) = mpsc::unbounded_channel();
        let app = App {
            calls: Arc::new(AtomicUsize::new(0)),
            gate: Arc::new(Semaphore::new(0)),
            entered,
        };
        (app, rx)
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn service(
        &self,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + Sync
    + 'static {
        let app = self.clone();
        service_fn(move |req| app.clone().handle(req))
    }

    async fn handle(self, req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let path = req.uri().path().to_owned();
        let tenant = header(req.headers(), "x-tenant").unwrap_or("-").to_owned();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let (status, text) = match path.as_str() {
            "/held" => {
                self.entered.send(()).unwrap();
                self.gate.acquire().await.unwrap().forget();
                (StatusCode::CREATED, "created")
            }
            "/held-502" => {
                self.entered.send(()).unwrap();
                self.gate.acquire().await.unwrap().forget();
                (StatusCode::BAD_GATEWAY, "upstream failed")
            }
            "/flaky" if call == 1 => (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded"),
            "/invalid" => (StatusCode::BAD_REQUEST, "invalid order"),
            _ => (StatusCode::CREATED, "created"),
        };
        let json = serde_json::json!({
            "call": call,
            "tenant": tenant,
            "status": text,
            "echo": String::from_utf8_lossy(&body),
        });
        let mut res = Response::new(Full::new(Bytes::from(json.to_string())));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert("content-type", "application/json".parse().unwrap());
        h.insert("x-call", call.into());
        h.insert("location", format!("/orders/{call}").parse().unwrap());
        h.insert("connection", "keep-alive".parse().unwrap());
        Ok(res)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A request: `method path`, with an `Idempotency-Key` and an `X-Tenant` when given.
pub(crate) fn request(
    method: Method,
    path: &str,
    key: Option<&str>,
    tenant: Option<&str>,
    body: &str,
) -> Request<Full<Bytes>> {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    if let Some(tenant) = tenant {
        req = req.header("x-tenant", tenant);
    }
    req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

/// `POST path` with `key` and `body`.
pub(crate) fn post(path: &str, key: &str, body: &str) -> Request<Full<Bytes>> {
    request(Method::POST, path, Some(key), None, body)
}

/// A response read whole.
#[derive(Debug, PartialEq)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) async fn read<B>(res: Response<B>) -> Self
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = res.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub(crate) fn replayed(&self) -> bool {
        match self.headers.get("idempotent-replayed") {
            Some(v) => v == "true",
            None => false,
        }
    }

    /// Asserts a JSON error answer with `status` and `code`.
    pub(crate) fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.headers["content-type"], "application/json");
        let json = self.json();
        assert_eq!(json["error"], code, "{json}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
    }
}
