//! S3, the daily report: the guarded path (exactly once per user and day) and the naive path
//! it replaces, side by side.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate::once::{
    Commit, Committed, Completion, Error as OnceError, Failure, Fingerprint, Key, Reconciled,
    Store, encode,
};
use tollgate::store::{Settle, StoreError};

use crate::app::App;
use crate::db::{self, DbError, Report, Repository};
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::llm::LlmError;
use crate::store::ServiceStore;
use crate::validate::{self, Day};
use crate::wire::{AnalyzeRequest, AnalyzeResponse, LetterText};

/// The exactly-once namespace of daily reports.
pub const NAMESPACE: &str = "daily-report";

/// Why the guarded work produced no report; stored with the key when permanent, so it must
/// serialize.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum WorkFailure {
    NoLetters,
    Exists,
    CircuitOpen { retry_after_ms: Option<u64> },
    LlmTimeout,
    Llm { message: String },
    DbLocked { message: String },
    Db { message: String },
}

impl WorkFailure {
    fn from_llm(e: LlmError) -> Failure<WorkFailure> {
        Failure::retryable(match e {
            LlmError::CircuitOpen { retry_after } => WorkFailure::CircuitOpen {
                retry_after_ms: retry_after
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            },
            LlmError::Timeout(_) => WorkFailure::LlmTimeout,
            other => WorkFailure::Llm {
                message: other.to_string(),
            },
        })
    }

    fn from_db(e: DbError) -> Failure<WorkFailure> {
        Failure::retryable(match e {
            DbError::Locked(message) => WorkFailure::DbLocked { message },
            DbError::Other(message) => WorkFailure::Db { message },
        })
    }
}

impl From<WorkFailure> for ApiError {
    fn from(failure: WorkFailure) -> ApiError {
        match failure {
            WorkFailure::NoLetters => {
                ApiError::not_found("no_letters", "there are no letters for that day")
            }
            WorkFailure::Exists => report_exists(),
            WorkFailure::CircuitOpen { retry_after_ms } => {
                let after = Duration::from_millis(retry_after_ms.unwrap_or(1_000));
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "llm_circuit_open",
                    "the LLM is failing; its circuit breaker is open",
                )
                .retry_after(after)
            }
            WorkFailure::LlmTimeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "llm_timeout",
                "the LLM did not answer in time",
            ),
            WorkFailure::Llm { message } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "llm_failed", message)
            }
            WorkFailure::DbLocked { message } => ApiError::internal("database_locked", message),
            WorkFailure::Db { message } => ApiError::internal("database_error", message),
        }
    }
}

impl From<LlmError> for ApiError {
    fn from(e: LlmError) -> ApiError {
        WorkFailure::from_llm(e).error.into()
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        WorkFailure::from_db(e).error.into()
    }
}

fn report_exists() -> ApiError {
    ApiError::conflict("report_exists", "the report of that day was already made")
}

fn parse_path(user: &str, date: &str) -> Result<(String, Day), ApiError> {
    Ok((validate::id("user", user)?, Day::parse(date)?))
}

/// `POST /users/{user}/daily-reports/{date}`: analyse the day's letters with one LLM call and
/// store the report with one analysis per letter, exactly once per user and day.
///
/// - 201 with the report, for the one call that made it;
/// - 409 `report_in_progress` for calls while it is being made, 409 `report_exists` after;
/// - 404 `no_letters`; 503 `llm_circuit_open` with `Retry-After`; 502/504 when the LLM fails
///   (the key is freed: a later call tries again).
///
/// The LLM is called outside any database transaction; the report, its analyses and the
/// completion of the exactly-once claim are written in **one** transaction afterwards, so a
/// stored report never sits beside an unfinished claim. An attempt whose instance crashed is
/// reconciled from the report table before anything runs again.
pub async fn create(
    State(app): State<App>,
    ApiPath((user, date)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<Report>), ApiError> {
    let (user, date) = parse_path(&user, &date)?;
    let key = Key::new(NAMESPACE, format!("{user}/{date}"));
    let work = {
        let (app, user) = (app.clone(), user.clone());
        move || make_report(app, user, date)
    };
    let reconcile = {
        let (app, user) = (app.clone(), user.clone());
        move |_key| reconcile(app, user, date)
    };
    let made = app
        .once()
        .call(key, Fingerprint::new("v1"))
        .reconcile(reconcile)
        .run_committed(work)
        .await;
    match made {
        // Settled by the reconcile hook from a report a vanished attempt had stored.
        Ok(output) if output.replayed => Err(report_exists()),
        Ok(output) => Ok((StatusCode::CREATED, Json(output.value))),
        Err(OnceError::Conflict) => Err(ApiError::conflict(
            "report_in_progress",
            "the report of that day is being made by another request",
        )),
        Err(OnceError::AlreadyDone) => Err(report_exists()),
        Err(OnceError::Failed(failure)) => Err(failure.error.into()),
        Err(OnceError::OutcomeUnknown | OnceError::Fenced) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outcome_unknown",
            "an earlier attempt at this report ended without an answer; retry later",
        )),
        Err(OnceError::Store(e)) => Err(app.db().classify_store(&e).into()),
        Err(other) => Err(ApiError::internal("report_failed", format!("{other:?}"))),
    }
}

/// The work run once per (user, day): read, call the LLM outside any transaction, then hand
/// the store the report's rows to write with the completion of the claim.
async fn make_report(
    app: App,
    user: String,
    date: Day,
) -> Result<ReportWrites, Failure<WorkFailure>> {
    let letters = app
        .db()
        .letters(&user, date)
        .await
        .map_err(WorkFailure::from_db)?;
    if letters.is_empty() {
        return Err(Failure::retryable(WorkFailure::NoLetters));
    }
    let stored = app.db().report(&user, date).await;
    if stored.map_err(WorkFailure::from_db)?.is_some() {
        // Made before the exactly-once record was purged: never pay for it again.
        return Err(Failure::permanent(WorkFailure::Exists));
    }
    let request = analyze_request(&user, date, letters);
    let answer = app
        .llm()
        .analyze(&request)
        .await
        .map_err(WorkFailure::from_llm)?;
    Ok(ReportWrites {
        db: app.db().clone(),
        user,
        date,
        answer,
    })
}

/// The report's rows, written by the store with the completion of the claim: in **one**
/// transaction when the records live in the service's database (SQLite or PostgreSQL). On
/// Redis no transaction spans both, so the report is written first and the claim completed
/// after; an instance that dies between the two leaves a report beside an unfinished claim,
/// which the reconcile hook settles from the report table (never paying again).
struct ReportWrites {
    db: crate::db::Db,
    user: String,
    date: Day,
    answer: AnalyzeResponse,
}

impl Commit<ServiceStore> for ReportWrites {
    type Value = Report;
    type Error = WorkFailure;

    async fn commit(
        self,
        store: &ServiceStore,
        completion: Completion,
    ) -> Result<Committed, StoreError> {
        let ReportWrites {
            db,
            user,
            date,
            answer,
        } = self;
        let day = date.to_string();
        match store {
            ServiceStore::Sqlite(store) => {
                let writes = tollgate_sqlite::InTransaction::new(move |tx| {
                    Ok(match db::sqlite_insert_report(tx, &user, &day, &answer)? {
                        Some(report) => Ok(report),
                        // Made before the exactly-once record was purged.
                        None => Err(Failure::permanent(WorkFailure::Exists)),
                    })
                });
                writes.commit(store, completion).await
            }
            ServiceStore::Postgres(store) => {
                let writes = tollgate_postgres::InTransaction::new(move |tx| {
                    Box::pin(async move {
                        let stored = db::pg_insert_report(tx, &user, &day, &answer).await?;
                        Ok(match stored {
                            Ok(Some(report)) => Ok(report),
                            Ok(None) => Err(Failure::permanent(WorkFailure::Exists)),
                            Err(message) => Err(Failure::retryable(WorkFailure::Db { message })),
                        })
                    })
                });
                writes.commit(store, completion).await
            }
            ServiceStore::Redis(store) => {
                let outcome = match db.store_report(&user, date, &answer).await {
                    Ok(Some(report)) => Ok(report),
                    Ok(None) => Err(Failure::permanent(WorkFailure::Exists)),
                    Err(e) => Err(WorkFailure::from_db(e)),
                };
                settle_apart(store, &completion, outcome).await
            }
        }
    }
}

/// Completes (or fails) the claim of `completion` after the report's own transaction.
async fn settle_apart<S: Store>(
    store: &S,
    completion: &Completion,
    outcome: Result<Report, Failure<WorkFailure>>,
) -> Result<Committed, StoreError> {
    let (key, token) = (&completion.key, completion.token);
    match outcome {
        Ok(report) => {
            let result = match encode(&report) {
                Ok(result) => result,
                Err(e) => return Ok(Committed::Unencodable(e.0)),
            };
            let settled = store
                .complete(key, token, result.clone(), completion.retention)
                .await?;
            Ok(match settled {
                Settle::Accepted => Committed::Completed { result },
                Settle::Fenced => Committed::Fenced,
            })
        }
        Err(failure) => {
            let error = match encode(&failure.error) {
                Ok(error) => error,
                Err(e) => return Ok(Committed::Unencodable(e.0)),
            };
            let retryable = failure.retryable;
            let kept = if retryable {
                Duration::ZERO
            } else {
                completion.retention
            };
            let settled = store
                .fail(key, token, error.clone(), retryable, kept)
                .await?;
            Ok(match settled {
                Settle::Accepted => Committed::Failed { error, retryable },
                Settle::Fenced => Committed::Fenced,
            })
        }
    }
}

/// Asked before an attempt of unknown outcome (its instance crashed during the LLM call) is
/// run again: the report's own table says whether it had its effect. The report and the
/// completion commit together, so a stored report means done; none means the LLM may have
/// been paid without a stored result, and the report is made again — counted in
/// `tollgate_demo_llm_possibly_double_paid_total`.
async fn reconcile(app: App, user: String, date: Day) -> Reconciled<Report> {
    match app.db().report(&user, date).await {
        Ok(Some(report)) => Reconciled::Done(report),
        Ok(None) => {
            tracing::warn!(%user, %date, "report: an attempt vanished without a report; making it again");
            metrics::counter!("tollgate_demo_llm_possibly_double_paid_total").increment(1);
            Reconciled::RunAgain
        }
        Err(e) => {
            tracing::warn!(%user, %date, error = %e, "report: cannot reconcile, leaving it unknown");
            Reconciled::LeaveUnknown
        }
    }
}

fn analyze_request(user: &str, date: Day, letters: Vec<db::Letter>) -> AnalyzeRequest {
    AnalyzeRequest {
        user: user.to_owned(),
        date: date.to_string(),
        letters: letters
            .into_iter()
            .map(|l| LetterText {
                id: l.id,
                text: l.text,
            })
            .collect(),
    }
}

/// `GET /users/{user}/daily-reports/{date}`: 200 with the report, or 404 `no_report`.
pub async fn get(
    State(app): State<App>,
    ApiPath((user, date)): ApiPath<(String, String)>,
) -> Result<Json<Report>, ApiError> {
    let (user, date) = parse_path(&user, &date)?;
    match app.db().report(&user, date).await? {
        Some(report) => Ok(Json(report)),
        None => Err(ApiError::not_found("no_report", "no report for that day")),
    }
}

/// A report made by the naive path.
#[derive(Clone, Debug, Serialize)]
pub struct NaiveReport {
    /// Its id in `naive_reports`.
    pub id: i64,
    /// Whose day.
    pub user: String,
    /// Which day.
    pub date: Day,
    /// The LLM's summary.
    pub summary: String,
}

/// `POST /naive/users/{user}/daily-reports/{date}`: **the original code of S3, bug included**,
/// served only in demo mode. It checks whether a report exists, calls the LLM, then inserts —
/// inside one transaction on a pooled connection, held across the LLM call. Under concurrent
/// identical requests every request that checks before the first insert commits pays for an
/// LLM call; on SQLite the transactions that then try to write from a stale snapshot fail with
/// a lock error (`SQLITE_BUSY`), the analogue of the original's deadlocks.
pub async fn create_naive(
    State(app): State<App>,
    ApiPath((user, date)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<NaiveReport>), ApiError> {
    let (user, date) = parse_path(&user, &date)?;
    let llm = app.llm().clone();
    let request_user = user.clone();
    let pay: db::PaidCall<_, _> = Box::new(move |letters| {
        Box::pin(async move {
            llm.analyze(&analyze_request(&request_user, date, letters))
                .await
        })
    });
    match app.db().naive_report(&user, date, pay).await? {
        db::NaiveReport::Exists => Err(report_exists()),
        db::NaiveReport::NoLetters => Err(WorkFailure::NoLetters.into()),
        db::NaiveReport::CallFailed(e) => Err(e.into()),
        db::NaiveReport::Made { id, summary } => Ok((
            StatusCode::CREATED,
            Json(NaiveReport {
                id,
                user,
                date,
                summary,
            }),
        )),
    }
}
