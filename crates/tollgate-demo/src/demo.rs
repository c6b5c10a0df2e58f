//! `tollgate demo`: the naive and the guarded daily report, raced side by side.
//!
//! Starts the fake LLM and the service (demo mode) on free loopback ports with a temporary
//! SQLite database, stores a few letters, then fires N identical requests released at the same
//! instant (the race engine's last-byte sync) first at the naive endpoint, then at the guarded
//! one. Each side is measured where the truth is: HTTP statuses from the race, LLM calls from
//! the fake LLM's own counter, stored reports from the database, lock errors from the
//! database's answers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tollgate_race::{RaceConfig, SyncMode};

use crate::client::HttpClient;
use crate::db::{CodePath, Database, Repository};
use crate::fake_llm::{FakeLlm, FakeLlmConfig};
use crate::server::{Service, ServiceConfig, StartError};
use crate::validate::Day;

/// The demo's user.
pub const USER: &str = "demo-user";
/// The demo's day.
pub const DATE: &str = "2026-11-21";

const LETTERS: [&str; 3] = [
    "Dear diary, the release went out this morning and nothing broke.",
    "Lunch with the team; we argued about retries and agreed on budgets.",
    "Long evening. The paid API bill arrived and it was larger than expected.",
];

/// How the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Identical requests fired at each endpoint.
    pub requests: usize,
    /// The fake LLM's latency.
    pub llm_latency: Duration,
    /// The service's pool of database connections (the original had 20).
    pub pool_size: usize,
    /// The database to race on; `None`: a temporary SQLite file. On a shared database (such
    /// as PostgreSQL) the demo's user gets a fresh name per run, so earlier runs never count.
    pub database: Option<crate::db::Database>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            requests: 100,
            llm_latency: Duration::from_millis(200),
            pool_size: 20,
            database: None,
        }
    }
}

/// What one endpoint did under the race.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Side {
    /// Responses by HTTP status; requests that got no response are under `"error"`.
    pub status: BTreeMap<String, usize>,
    /// Calls the fake LLM received (each one paid).
    pub llm_calls: u64,
    /// Reports stored in the database for the user's day.
    pub reports_stored: u64,
    /// Busy / locked errors reported by the database.
    pub lock_errors: u64,
    /// Each request's release and end (for `tollgate demo --html`); not in the JSON.
    #[serde(skip)]
    pub timeline: Vec<tollgate_race::RequestMark>,
}

impl Side {
    fn count(&self, status: &str) -> usize {
        self.status.get(status).copied().unwrap_or(0)
    }
}

/// The demo's result; `--json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DemoReport {
    /// Requests per endpoint.
    pub requests: usize,
    /// The naive endpoint.
    pub naive: Side,
    /// The guarded endpoint.
    pub guarded: Side,
}

impl DemoReport {
    /// `true` when the guarded side kept every guarantee: one 201, every other request 409,
    /// one LLM call, one report, no lock errors.
    pub fn guarded_held(&self) -> bool {
        let g = &self.guarded;
        g.count("201") == 1
            && g.count("409") == self.requests - 1
            && g.status.len() == 2.min(self.requests)
            && g.llm_calls == 1
            && g.reports_stored == 1
            && g.lock_errors == 0
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// `requests` is out of range.
    #[error("--requests must be between 1 and {max}, not {got}")]
    Requests {
        /// The value given.
        got: usize,
        /// The largest allowed.
        max: usize,
    },
    /// Setting up (temporary directory, servers, seeding) failed.
    #[error("demo setup failed: {0}")]
    Setup(String),
    /// The service did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The race could not run.
    #[error("the race failed: {0}")]
    Race(#[from] tollgate_race::RaceError),
}

/// Runs the demo; `progress` is told what happens, step by step.
///
/// # Errors
/// [`DemoError`].
pub async fn run(
    options: &DemoOptions,
    mut progress: impl FnMut(&str),
) -> Result<DemoReport, DemoError> {
    let max = tollgate_race::MAX_REQUESTS;
    if options.requests == 0 || options.requests > max {
        return Err(DemoError::Requests {
            got: options.requests,
            max,
        });
    }
    let setup = |e: &dyn std::fmt::Display| DemoError::Setup(e.to_string());
    let dir = tempfile::Builder::new()
        .prefix("tollgate-demo-")
        .tempdir()
        .map_err(|e| setup(&e))?;
    let llm = FakeLlm::start(FakeLlmConfig {
        latency: options.llm_latency,
        failure_rate: 0.0,
    })
    .await
    .map_err(|e| setup(&e))?;
    let (database, user) = match &options.database {
        None => (Database::from(dir.path().join("demo.db")), USER.to_owned()),
        Some(shared) => (shared.clone(), format!("{USER}-{:08x}", fastrand::u32(..))),
    };
    let mut config = ServiceConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), database, llm.url());
    config.naive = true;
    config.pool_size = options.pool_size;
    let config_database = config.database.to_string();
    let service = Service::start(config).await?;
    progress(&format!(
        "fake LLM on {} ({} ms per call), service on {}, database {}",
        llm.addr(),
        options.llm_latency.as_millis(),
        service.addr(),
        config_database
    ));

    let client = HttpClient::new();
    for text in LETTERS {
        let url = format!("{}/users/{user}/letters", service.url());
        let answer = client
            .post_json(&url, &serde_json::json!({ "date": DATE, "text": text }))
            .await
            .map_err(|e| setup(&e))?;
        if answer.status != http::StatusCode::CREATED {
            return Err(DemoError::Setup(format!(
                "seeding a letter answered {}",
                answer.status
            )));
        }
    }
    progress(&format!(
        "stored {} letters of {user} for {DATE}",
        LETTERS.len()
    ));

    let date = Day::parse(DATE).map_err(|e| setup(&e))?;
    let mut sides = Vec::with_capacity(2);
    for (path, prefix) in [(CodePath::Naive, "/naive"), (CodePath::Guarded, "")] {
        let url = format!(
            "{}{prefix}/users/{user}/daily-reports/{DATE}",
            service.url()
        );
        progress(&format!(
            "racing {} identical requests: POST {url}",
            options.requests
        ));
        let calls_before = llm.stats().calls;
        let locks_before = service.app().db().lock_errors().get(path);
        let mut race = RaceConfig::new(url);
        race.method = "POST".into();
        race.requests = options.requests;
        race.trials = 1;
        race.sync = SyncMode::LastByte;
        race.timeout = Duration::from_secs(60);
        race.timeline = true;
        let report = tollgate_race::run(&race).await?;
        let mut status: BTreeMap<String, usize> = report
            .status
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect();
        let failed: usize = report.errors.values().sum();
        if failed > 0 {
            status.insert("error".into(), failed);
        }
        let (guarded, naive) = service
            .app()
            .db()
            .reports_stored(&user, date)
            .await
            .map_err(|e| setup(&e))?;
        sides.push(Side {
            status,
            llm_calls: llm.stats().calls - calls_before,
            reports_stored: match path {
                CodePath::Naive => naive,
                CodePath::Guarded => guarded,
            },
            lock_errors: service.app().db().lock_errors().get(path) - locks_before,
            timeline: report
                .per_trial
                .first()
                .map(|t| t.timeline.clone())
                .unwrap_or_default(),
        });
    }
    let _ = service.shutdown().await;
    let guarded = sides.pop().unwrap_or_default();
    let naive = sides.pop().unwrap_or_default();
    Ok(DemoReport {
        requests: options.requests,
        naive,
        guarded,
    })
}

/// The side-by-side table.
pub fn table(report: &DemoReport, options: &DemoOptions) -> String {
    let (n, g) = (&report.naive, &report.guarded);
    let mut statuses: Vec<&String> = n.status.keys().chain(g.status.keys()).collect();
    statuses.sort();
    statuses.dedup();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} identical POST …/daily-reports/{DATE} requests, released at once; fake LLM {} ms/call; {} pooled DB connections\n",
        report.requests,
        options.llm_latency.as_millis(),
        options.pool_size
    );
    let _ = writeln!(out, "{:<22} {:>14} {:>14}", "", "naive", "guarded");
    let _ = writeln!(out, "{:<22} {:>14} {:>14}", "", "check→call→", "tollgate");
    let _ = writeln!(out, "{:<22} {:>14} {:>14}", "", "insert", "once");
    let _ = writeln!(out, "{}", "-".repeat(52));
    for status in statuses {
        let label = if status == "error" {
            "no response".to_owned()
        } else {
            format!("HTTP {status}")
        };
        let _ = writeln!(
            out,
            "{label:<22} {:>14} {:>14}",
            n.count(status),
            g.count(status)
        );
    }
    let rows = [
        ("LLM calls (paid)", n.llm_calls, g.llm_calls),
        ("reports stored", n.reports_stored, g.reports_stored),
        ("DB lock errors", n.lock_errors, g.lock_errors),
    ];
    for (label, a, b) in rows {
        let _ = writeln!(out, "{label:<22} {a:>14} {b:>14}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "naive:   paid the LLM {} times for one report; {} requests failed with a database lock error",
        n.llm_calls, n.lock_errors
    );
    if report.guarded_held() {
        let _ = writeln!(
            out,
            "guarded: exactly once — 1 × 201, {} × 409, 1 LLM call, 1 report, 0 lock errors",
            report.requests - 1
        );
    } else {
        let _ = writeln!(out, "guarded: GUARANTEE VIOLATED — see the numbers above");
    }
    out
}
