//! One request through the layer: admit, buffer, fingerprint, run once, answer.

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::request::Parts;
use http::{HeaderMap, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Either, LengthLimitError, Limited};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tollgate::once::{self, Failure, Fingerprint, Key, Once, Store};
use tower::{BoxError, Service};

use super::IdempotentBody;
use super::fingerprint::fingerprint;
use super::key::{parse, scoped};
use super::layer::Config;
use super::rejection::Rejection;
use super::stored::StoredResponse;

/// What the work could not store, handed to the first caller outside the engine: the engine
/// stores only serializable values, and the original response (a 5xx, with its streaming
/// body) or the inner service's error must reach that caller unchanged.
enum Unstored<B, E> {
    Response(Response<B>),
    Error(E),
    BodyFailed(Rejection),
}

/// The failure recorded in the store for an unstored outcome: retryable, so the key is freed.
#[derive(Debug, Serialize, Deserialize)]
struct NotStored {
    status: Option<u16>,
}

pub(crate) async fn handle<S, St, ReqBody, ResBody>(
    inner: S,
    once: Once<St>,
    config: &Config,
    req: Request<ReqBody>,
) -> Result<Response<IdempotentBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    St: Store,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let key = match admit(config, &parts) {
        Ok(Some(key)) => key,
        Ok(None) => return pass(inner, Request::from_parts(parts, body)).await,
        Err(rejection) => return Ok(reject(rejection)),
    };
    let bytes = match buffer(body, &parts.headers, config.body_limit).await {
        Ok(bytes) => bytes,
        Err(rejection) => return Ok(reject(rejection)),
    };
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let fingerprint = fingerprint(parts.method.as_str(), target, &bytes);
    let req = Request::from_parts(parts, ReqBody::from(bytes));
    execute(inner, &once, config, key, fingerprint, req).await
}

/// The record key of a handled request; `None` when it passes through untouched.
fn admit(config: &Config, parts: &Parts) -> Result<Option<Key>, Rejection> {
    if !config.methods.contains(&parts.method) {
        return Ok(None);
    }
    let mut values = parts.headers.get_all(&config.header).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return match parts.headers.contains_key(&config.header) {
            true => Err(Rejection::InvalidKey(
                "send one Idempotency-Key header".to_owned(),
            )),
            false if config.key_required => Err(Rejection::MissingKey),
            false => Ok(None),
        };
    };
    let key = parse(value, config.max_key_len)
        .map_err(|problem| Rejection::InvalidKey(problem.describe(config.max_key_len)))?;
    let tenant = match &config.tenant {
        Some(extract) => {
            Some(extract(parts).ok_or(Rejection::MissingTenant(config.tenant_missing))?)
        }
        None => None,
    };
    Ok(Some(scoped(&config.namespace, tenant.as_deref(), &key)))
}

/// The whole request body, refused early when its declared length is over `limit`.
async fn buffer<B>(body: B, headers: &HeaderMap, limit: usize) -> Result<Bytes, Rejection>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Rejection::BodyTooLarge(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Rejection::BodyTooLarge(limit)),
        Err(e) => Err(Rejection::BodyUnreadable(e.to_string())),
    }
}

async fn execute<S, St, ReqBody, ResBody>(
    inner: S,
    once: &Once<St>,
    config: &Config,
    key: Key,
    fingerprint: Fingerprint,
    req: Request<ReqBody>,
) -> Result<Response<IdempotentBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    St: Store,
    ReqBody: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let (tx, mut rx) = oneshot::channel();
    let response_limit = config.response_limit;
    let result = once
        .run(key.clone(), fingerprint, move || {
            work(inner, req, tx, response_limit)
        })
        .await;
    match result {
        Ok(output) => {
            let outcome = if output.replayed {
                "replayed"
            } else {
                "executed"
            };
            tracing::debug!(%key, outcome, "idempotency: answered");
            count(outcome);
            let replay_header = output.replayed.then_some(&config.replay_header);
            Ok(output.value.into_response(replay_header).map(Either::Right))
        }
        // Only this call's own work sent anything, before the engine settled the key: the
        // value is there now or never.
        Err(once::Error::Failed(failure)) if failure.retryable => match rx.try_recv() {
            Ok(Unstored::Response(response)) => {
                tracing::debug!(%key, status = %response.status(), "idempotency: not stored");
                count("executed");
                Ok(response.map(Either::Left))
            }
            Ok(Unstored::Error(e)) => {
                tracing::debug!(%key, "idempotency: inner service failed, not stored");
                count("error");
                Err(e)
            }
            Ok(Unstored::BodyFailed(rejection)) => Ok(reject(rejection)),
            // A waiter: the failure is the holder's own, read back from the store.
            Err(_) => Ok(reject(Rejection::OriginalFailed(failure.error.status))),
        },
        Err(e) => Ok(reject(Rejection::from_once(e))),
    }
}

/// Calls the inner service; stores a response below 500, hands anything else to the caller.
async fn work<S, ReqBody, ResBody>(
    mut inner: S,
    req: Request<ReqBody>,
    tx: oneshot::Sender<Unstored<ResBody, S::Error>>,
    limit: Option<usize>,
) -> Result<StoredResponse, Failure<NotStored>>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let response = match inner.call(req).await {
        Ok(response) => response,
        Err(e) => {
            // The caller may be gone (the work outlives it); then there is no one to tell.
            let _ = tx.send(Unstored::Error(e));
            return Err(Failure::retryable(NotStored { status: None }));
        }
    };
    let status = response.status();
    if status.is_server_error() {
        let _ = tx.send(Unstored::Response(response));
        return Err(Failure::retryable(NotStored {
            status: Some(status.as_u16()),
        }));
    }
    let (parts, body) = response.into_parts();
    match collect(body, limit).await {
        Ok(bytes) => Ok(StoredResponse::new(&parts, &bytes)),
        Err(rejection) => {
            let _ = tx.send(Unstored::BodyFailed(rejection));
            Err(Failure::retryable(NotStored {
                status: Some(status.as_u16()),
            }))
        }
    }
}

/// The whole response body, at most `limit` bytes when a limit is set.
async fn collect<B>(body: B, limit: Option<usize>) -> Result<Bytes, Rejection>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let Some(limit) = limit else {
        return match body.collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) => Err(Rejection::ResponseUnreadable(e.into().to_string())),
        };
    };
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Rejection::ResponseTooLarge(limit)),
        Err(e) => Err(Rejection::ResponseUnreadable(e.to_string())),
    }
}

async fn pass<S, ReqBody, ResBody>(
    mut inner: S,
    req: Request<ReqBody>,
) -> Result<Response<IdempotentBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    Ok(inner.call(req).await?.map(Either::Left))
}

fn reject<B>(rejection: Rejection) -> Response<IdempotentBody<B>> {
    match rejection.status().is_server_error() {
        true => tracing::warn!(error = %rejection, "idempotency: failed"),
        false => tracing::debug!(code = rejection.code(), "idempotency: rejected"),
    }
    count(rejection.outcome());
    rejection
        .into_response::<http_body_util::Full<Bytes>>()
        .map(Either::Right)
}

fn count(outcome: &'static str) {
    metrics::counter!("tollgate_idempotency_requests_total", "outcome" => outcome).increment(1);
}
