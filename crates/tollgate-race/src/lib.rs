//! # tollgate-race
//!
//! The engine of `tollgate race`: fire N HTTP/1.1 requests released at the same instant and
//! check invariants on what came back. It turns "100 threads released by a start gate" into
//! something you can point at any service, in any language.
//!
//! ## How the requests are released
//! With [`SyncMode::LastByte`] (the default) every request gets its own connection (plain TCP
//! or TLS); each request is written except its final byte; then one task writes all the final
//! bytes back to back. A server cannot start handling a request before its last byte arrives,
//! so all N requests become complete within the *send spread* — the measured time between the
//! first and last final-byte write, reported per trial (typically well under a millisecond for
//! 100 requests on loopback). [`SyncMode::None`] sends each request from its own task as soon
//! as it is connected, for comparison. [`SyncMode::SinglePacket`] uses HTTP/2: all requests on
//! one connection, their final frames in one write, so they arrive in the same TCP packet.
//!
//! ## Invariants and trials
//! An [`Expectation`] such as `201=1` or `4xx=19` is checked on every trial; a trial violates
//! when any invariant does not hold, and the [`Report`] gives the violation rate over trials.
//! Use `{{trial_uuid}}` in the URL, a header or the body to give each trial its own key.
//!
//! ## Reports
//! The [`Report`] serializes to JSON. With [`RaceConfig::timeline`] set, each trial also keeps
//! when every request was released and answered ([`RequestMark`]), and [`html::race_page`]
//! draws the run as a self-contained HTML page (a timeline per trial, the send spreads, a
//! latency histogram, statuses and violated invariants per trial).
//!
//! ## Example
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tollgate_race::{RaceConfig, run};
//!
//! let mut config = RaceConfig::new("http://127.0.0.1:3000/reports/{{trial_uuid}}");
//! config.method = "POST".into();
//! config.requests = 100;
//! config.trials = 10;
//! config.expectations = vec!["201=1".parse()?, "409=99".parse()?];
//! let report = run(&config).await?;
//! println!("{} of {} trials violated", report.violations, report.trials);
//! # Ok(())
//! # }
//! ```
//!
//! [`run`] needs a tokio runtime with timers and I/O enabled; a multi-threaded one lets the
//! connection setup and response reading of many requests proceed in parallel.
#![forbid(unsafe_code)]

mod config;
mod conn;
mod error;
mod expect;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod h2;
pub mod html;
mod io;
mod mark;
mod plan;
mod release;
mod report;
mod request;
mod response;
mod target;
mod template;
mod trial;

use std::sync::Arc;

pub use config::{Header, RaceConfig, SyncMode};
pub use error::{ErrorKind, RaceError};
pub use expect::{Expectation, StatusMatch};
pub use mark::RequestMark;
pub use report::{
    InvariantResult, InvariantSummary, Latency, Report, ResponseGroup, Spread, TrialReport,
};

/// The largest number of requests per trial: each needs its own connection (file descriptor).
pub const MAX_REQUESTS: usize = 5_000;

/// Runs every trial of `config` and returns the report.
///
/// # Errors
/// [`RaceError`] when the configuration or URL is invalid, the host does not resolve, or not a
/// single request of some trial could connect. Failures of individual requests are not
/// errors: they are counted in the report by [`ErrorKind`].
pub async fn run(config: &RaceConfig) -> Result<Report, RaceError> {
    run_with_progress(config, |_| {}).await
}

/// Like [`run`], calling `on_trial` with each trial's report as soon as the trial ends (for a
/// progress bar or live output).
///
/// # Errors
/// As [`run`].
pub async fn run_with_progress(
    config: &RaceConfig,
    mut on_trial: impl FnMut(&TrialReport),
) -> Result<Report, RaceError> {
    validate(config)?;
    let target = target::Target::parse(&config.url)?;
    let http2 = config.sync == SyncMode::SinglePacket;
    let connector = conn::Connector::new(&target, config.insecure, http2).await?;
    let plan = Arc::new(plan::Plan {
        connector,
        request: request::RequestTemplate::new(config, target.path.clone(), &target.authority),
        requests: config.requests,
        sync: config.sync,
        timeout: config.timeout,
    });
    let mut builder = report::Builder::new(config);
    for index in 0..config.trials {
        let run = trial::run_trial(&plan, index).await;
        if let Some(err) = run.unreachable() {
            return Err(RaceError::Unreachable {
                target: target.host_port(),
                kind: err.kind,
                message: err.message.clone(),
            });
        }
        on_trial(builder.add(run));
    }
    Ok(builder.finish())
}

fn validate(config: &RaceConfig) -> Result<(), RaceError> {
    let fail = |msg: String| Err(RaceError::Config(msg));
    if !(1..=MAX_REQUESTS).contains(&config.requests) {
        return fail(format!("requests must be between 1 and {MAX_REQUESTS}"));
    }
    if config.trials == 0 {
        return fail("trials must be at least 1".into());
    }
    if config.timeout.is_zero() {
        return fail("the timeout must be greater than zero".into());
    }
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if config.method.is_empty() || !config.method.chars().all(token) {
        return fail(format!("`{}` is not a valid HTTP method", config.method));
    }
    Ok(())
}
