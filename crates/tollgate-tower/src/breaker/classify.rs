//! Classifying HTTP responses for a breaker.

use http::Response;
use tollgate::breaker::{Classifier, Outcome};

/// The HTTP classifier: a response with a `5xx` status or an `Err` is a failure of the
/// dependency; every other response (`2xx`, `3xx`, `4xx` — the client's fault) is a success.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerErrorIsFailure;

impl<B, E> Classifier<Response<B>, E> for ServerErrorIsFailure {
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        match result {
            Ok(response) if !response.status().is_server_error() => Outcome::Success,
            _ => Outcome::Failure,
        }
    }
}
