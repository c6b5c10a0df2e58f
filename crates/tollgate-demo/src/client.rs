//! A small JSON-over-HTTP/1.1 client for the demo, the tests and the load measurement.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A pooled HTTP/1.1 client; cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A response: status and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The `content-type` header, if any.
    pub content_type: Option<String>,
    /// The `retry-after` header, if any.
    pub retry_after: Option<String>,
    /// Every header.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A request that got no response.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(String);

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client with keep-alive connections.
    pub fn new() -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        HttpClient { client }
    }

    /// Sends `body` (sent as `application/json` when not empty) and reads the whole response.
    ///
    /// # Errors
    /// When the request cannot be built or sent, or the response not read.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: impl Into<Bytes>,
    ) -> Result<Answer, ClientError> {
        self.send_with(method, url, &[], body).await
    }

    /// Like [`send`](Self::send), with extra request headers.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_with(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Answer, ClientError> {
        let body = body.into();
        let mut request = http::Request::builder().method(method).uri(url);
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| ClientError(e.to_string()))?;
        self.execute(url, request).await
    }

    async fn execute(
        &self,
        url: &str,
        request: http::Request<Full<Bytes>>,
    ) -> Result<Answer, ClientError> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| ClientError(format!("{url}: {e}")))?;
        let status = response.status();
        let header = |name: http::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(http::header::CONTENT_TYPE);
        let retry_after = header(http::header::RETRY_AFTER);
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError(e.to_string()))?
            .to_bytes();
        Ok(Answer {
            status,
            content_type,
            retry_after,
            headers,
            body,
        })
    }

    /// `GET url`.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn get(&self, url: &str) -> Result<Answer, ClientError> {
        self.send(Method::GET, url, Bytes::new()).await
    }

    /// `POST url` with a JSON body and extra headers.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn post_with(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Result<Answer, ClientError> {
        let mut request = http::Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| ClientError(e.to_string()))?;
        self.execute(url, request).await
    }

    /// `POST url` with a JSON body.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<Answer, ClientError> {
        self.send(Method::POST, url, body.to_string()).await
    }
}
