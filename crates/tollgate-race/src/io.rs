//! The two I/O steps every kind of trial takes ([`crate::trial`] over HTTP/1.1,
//! [`crate::h2`] over HTTP/2): writing bytes out, and bounding a step by the timeout.

use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use crate::error::{ErrorKind, RequestError};

/// Writes all of `bytes` to `stream` and flushes it.
pub(crate) async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
) -> Result<(), RequestError> {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| RequestError::io(&e))?;
    stream.flush().await.map_err(|e| RequestError::io(&e))
}

/// Runs `work`, failing with [`ErrorKind::Timeout`] if it makes no progress within `limit`
/// (`what` names the step in the error message).
pub(crate) async fn within<T>(
    limit: Duration,
    what: &str,
    work: impl Future<Output = Result<T, RequestError>>,
) -> Result<T, RequestError> {
    timeout(limit, work).await.unwrap_or_else(|_| {
        Err(RequestError::new(
            ErrorKind::Timeout,
            format!("no progress within {limit:?} while {what}"),
        ))
    })
}
