//! S4, interview questions: the paid LLM call is the main job and always answered; saving the
//! questions for a signed-in user is a side effect in the durable outbox — it never breaks
//! the answer, and is never silently lost. The naive path it replaces (the save inside the
//! request's transaction, held across the LLM call) is kept beside it for the demo.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tollgate::outbox::{Effect, HandlerError, Outbox, Worker, WorkerOptions};
use tollgate::policy::Backoff;
use tollgate::store::{Key, LeaseTiming};

use crate::app::App;
use crate::db::{NaiveSave, PaidCall, Repository, SavedQuestions};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::store::ServiceOutbox;
use crate::validate;
use crate::wire::QuestionsRequest;

/// The outbox kind of a save.
pub const SAVE: &str = "save-interview-questions";
/// Questions asked of the LLM per request.
pub const QUESTIONS: u32 = 5;
/// The header naming the signed-in user.
pub const USER_HEADER: &str = "x-user-id";

/// Injected save failures, for tests and demonstrations: the next `n` saves (outbox and naive
/// alike) fail as if the database refused them.
#[derive(Debug, Default)]
pub struct SaveFaults {
    next: AtomicU64,
}

impl SaveFaults {
    /// Fails the next `n` saves (`u64::MAX`: every save until told otherwise).
    pub fn fail_next(&self, n: u64) {
        self.next.store(n, Ordering::SeqCst);
    }

    fn take(&self) -> bool {
        self.next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// What a save effect carries.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Save {
    user: String,
    role: String,
    questions: Vec<String>,
}

/// The request body.
#[derive(Debug, Deserialize)]
pub struct QuestionsBody {
    /// The role interviewed for.
    pub role: String,
}

/// The answer: the questions, and what became of the save.
#[derive(Debug, Serialize)]
pub struct QuestionsAnswer {
    /// The questions.
    pub questions: Vec<String>,
    /// `queued` (in the outbox, applied shortly), `not_signed_in`, or `not_queued` (the
    /// outbox failed: the answer stands, the save is lost and counted).
    pub save: &'static str,
}

fn parse(user: &str, body: &QuestionsBody) -> Result<(String, String), ApiError> {
    let user = validate::id("user", user)?;
    let role = body.role.trim();
    if role.is_empty() || role.len() > 200 {
        return Err(ApiError::bad_request(
            "invalid_role",
            "the role must be 1 to 200 bytes of text",
        ));
    }
    Ok((user, role.to_owned()))
}

fn signed_in(headers: &HeaderMap, user: &str) -> bool {
    headers.get(USER_HEADER).and_then(|v| v.to_str().ok()) == Some(user)
}

/// `POST /users/{user}/interview-questions` `{"role": …}`: the LLM is called outside any
/// transaction and its questions are answered (200) whatever happens to the save; for a
/// signed-in request (`X-User-Id: {user}`) the save is enqueued in the durable outbox
/// **before** the answer goes out, and applied by the outbox worker.
pub async fn create(
    State(app): State<App>,
    ApiPath(user): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<QuestionsBody>,
) -> Result<Json<QuestionsAnswer>, ApiError> {
    let (user, role) = parse(&user, &body)?;
    let request = QuestionsRequest {
        role: role.clone(),
        count: QUESTIONS,
    };
    let questions = app.llm().questions(&request).await?.questions;
    if !signed_in(&headers, &user) {
        let save = "not_signed_in";
        return Ok(Json(QuestionsAnswer { questions, save }));
    }
    let key = Key::new(
        "interview-questions",
        format!("{user}/{:032x}", fastrand::u128(..)),
    );
    let save = Save {
        user,
        role,
        questions: questions.clone(),
    };
    let queued = match Effect::new(SAVE, key, &save) {
        Ok(effect) => app
            .db()
            .outbox()
            .enqueue(effect)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let save = match queued {
        Ok(_) => "queued",
        Err(e) => {
            tracing::error!(error = %e, "questions: the save could not be queued");
            metrics::counter!("tollgate_demo_saves_lost_total").increment(1);
            "not_queued"
        }
    };
    Ok(Json(QuestionsAnswer { questions, save }))
}

/// `GET /users/{user}/interview-questions`: the saved sets, oldest first (a JSON array).
pub async fn list(
    State(app): State<App>,
    ApiPath(user): ApiPath<String>,
) -> Result<Json<Vec<SavedQuestions>>, ApiError> {
    let user = validate::id("user", &user)?;
    Ok(Json(app.db().saved_questions(&user).await?))
}

/// `POST /naive/users/{user}/interview-questions`: **the original code of S4, bug included**
/// (demo mode only): the save runs in a transaction opened before the LLM call and held across
/// it, so a failed save answers 500 and the paid questions are lost.
pub async fn create_naive(
    State(app): State<App>,
    ApiPath(user): ApiPath<String>,
    ApiJson(body): ApiJson<QuestionsBody>,
) -> Result<Json<QuestionsAnswer>, ApiError> {
    let (user, role) = parse(&user, &body)?;
    let request = QuestionsRequest {
        role: role.clone(),
        count: QUESTIONS,
    };
    let asking = app.clone();
    let ask: PaidCall<(), _> = Box::new(move |()| {
        Box::pin(async move {
            let questions = asking.llm().questions(&request).await?.questions;
            Ok((questions, asking.save_faults().take()))
        })
    });
    match app.db().naive_save(&user, &role, ask).await? {
        NaiveSave::Saved(questions) => Ok(Json(QuestionsAnswer {
            questions,
            save: "saved",
        })),
        NaiveSave::Refused => Err(ApiError::internal(
            "save_failed",
            "injected: the database refused the save",
        )),
        NaiveSave::CallFailed(e) => Err(e.into()),
    }
}

/// The outbox worker that applies the saves: once per effect key, with retries and dead
/// letters after `attempts`.
pub fn worker(app: &App, attempts: u32) -> Worker<ServiceOutbox> {
    let options = WorkerOptions {
        batch: 16,
        lease: LeaseTiming::new(Duration::from_secs(30), Duration::from_secs(10)),
        poll_every: Duration::from_millis(50),
        max_attempts: attempts.max(1),
        backoff: Backoff::exponential(Duration::from_millis(50), Duration::from_secs(2)),
    };
    let handler_app = app.clone();
    Worker::new(app.db().outbox().clone(), options).handler(SAVE, move |effect: Effect, _| {
        let app = handler_app.clone();
        async move { apply(&app, effect).await }
    })
}

async fn apply(app: &App, effect: Effect) -> Result<Vec<u8>, HandlerError> {
    let save: Save = effect
        .payload()
        .map_err(|e| HandlerError::permanent(format!("bad save payload: {e}")))?;
    if app.save_faults().take() {
        return Err(HandlerError::retryable(
            "injected: the database refused the save",
        ));
    }
    let key = effect.key.key();
    let saved = app
        .db()
        .save_questions(key, &save.user, &save.role, &save.questions)
        .await
        .map_err(|e| HandlerError::retryable(e.to_string()))?;
    Ok(if saved {
        b"saved".to_vec()
    } else {
        b"already saved".to_vec()
    })
}

/// A dead letter as the admin route shows it.
#[derive(Debug, Serialize)]
pub struct DeadLetterView {
    /// Its id (re-queue it with `POST /admin/dead-letters/{id}/requeue`).
    pub id: u64,
    /// The effect's kind.
    pub kind: String,
    /// Its idempotency key.
    pub key: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: Option<String>,
}

/// `GET /admin/dead-letters`: up to 1,000 dead letters, oldest first.
pub async fn dead_letters(State(app): State<App>) -> Result<Json<Vec<DeadLetterView>>, ApiError> {
    let dead = app
        .db()
        .outbox()
        .dead_letters(1_000)
        .await
        .map_err(store_error)?;
    Ok(Json(
        dead.into_iter()
            .map(|d| DeadLetterView {
                id: d.id.0,
                kind: d.effect.kind,
                key: d.effect.key.key().to_owned(),
                attempts: d.attempts,
                last_error: d.last_error,
            })
            .collect(),
    ))
}

/// `POST /admin/dead-letters/{id}/requeue`: 204, or 404 when `id` is not a dead letter.
pub async fn requeue(
    State(app): State<App>,
    ApiPath(id): ApiPath<u64>,
) -> Result<StatusCode, ApiError> {
    let outbox = app.db().outbox();
    match outbox
        .requeue(tollgate::outbox::EffectId(id))
        .await
        .map_err(store_error)?
    {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(
            "no_dead_letter",
            "no dead letter with that id",
        )),
    }
}

fn store_error(e: tollgate::store::StoreError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "outbox_unavailable",
        e.to_string(),
    )
}

/// Sets the outbox gauges (pending, dead, age of the oldest unapplied effect) before a
/// metrics scrape.
pub async fn observe_outbox(app: &App) {
    let Ok(stats) = app.db().outbox().stats().await else {
        return;
    };
    metrics::gauge!("tollgate_outbox_pending").set(stats.pending as f64);
    metrics::gauge!("tollgate_outbox_in_flight").set(stats.in_flight as f64);
    metrics::gauge!("tollgate_outbox_dead").set(stats.dead as f64);
    let age = stats.oldest_unapplied.map_or(0.0, |oldest| {
        let now = app.db().now_ms();
        now.saturating_sub(oldest.0) as f64 / 1_000.0
    });
    metrics::gauge!("tollgate_outbox_oldest_unapplied_seconds").set(age);
}
