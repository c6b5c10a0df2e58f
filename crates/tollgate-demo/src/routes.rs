//! The service's routes, and the small handlers (letters, wallets, health, metrics). The daily
//! reports of S3 live in [`crate::reports`].

use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use tollgate_tower::idempotency::IdempotencyLayer;
use tollgate_tower::response::json_error;

use crate::app::{App, BODY_LIMIT, MAX_AMOUNT, MAX_LETTER, prometheus};
use crate::db::{Letter, Purchase, PurchaseRefused, Repository, Wallet};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::validate::{self, Day};
use crate::{questions, reports};

/// The service's routes over `app`.
pub fn router(app: &App) -> Router {
    let mut router = Router::new()
        .route("/users/{user}/letters", post(add_letter))
        .route(
            "/users/{user}/daily-reports/{date}",
            post(reports::create).get(reports::get),
        )
        .route("/wallets/{id}", put(put_wallet).get(get_wallet))
        .route(
            "/wallets/{id}/purchases",
            // A purchase sent with an `Idempotency-Key` is charged once however often it
            // is retried; the stored answer is replayed (`Idempotent-Replayed: true`).
            post(purchase).layer(
                IdempotencyLayer::new(app.once_store().clone())
                    .namespace("purchases")
                    .key_required(false)
                    .body_limit(BODY_LIMIT),
            ),
        )
        .route("/chat", post(crate::chat::routes::post_chat))
        .route(
            "/users/{user}/interview-questions",
            post(questions::create).get(questions::list),
        )
        .route("/admin/dead-letters", get(questions::dead_letters))
        .route("/admin/dead-letters/{id}/requeue", post(questions::requeue))
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics));
    if app.naive() {
        router = router.route(
            "/naive/users/{user}/daily-reports/{date}",
            post(reports::create_naive),
        );
        router = router.route(
            "/naive/users/{user}/interview-questions",
            post(questions::create_naive),
        );
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(observe))
        .with_state(app.clone())
}

/// Counts and times every request by route and status, and logs it.
async fn observe(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    tracing::info!(%method, %route, status, elapsed_us = elapsed.as_micros() as u64, "request");
    metrics::counter!("tollgate_demo_http_requests_total",
        "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string())
    .increment(1);
    metrics::histogram!("tollgate_demo_http_request_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

async fn healthz(State(app): State<App>) -> Result<Json<serde_json::Value>, ApiError> {
    app.db().ping().await?;
    Ok(Json(serde_json::json!({
        "status": "ok",
        "llm_breaker": app.llm().breaker().state().to_string(),
    })))
}

async fn render_metrics(State(app): State<App>) -> Response {
    questions::observe_outbox(&app).await;
    match prometheus() {
        Some(handle) => {
            handle.run_upkeep();
            let mut response = handle.render().into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "another metrics recorder is installed in this process",
        )
        .into_response(),
    }
}

/// `POST /users/{user}/letters` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLetter {
    date: Day,
    text: String,
}

async fn add_letter(
    State(app): State<App>,
    ApiPath(user): ApiPath<String>,
    ApiJson(letter): ApiJson<NewLetter>,
) -> Result<(StatusCode, Json<Letter>), ApiError> {
    let user = validate::id("user", &user)?;
    if letter.text.trim().is_empty() || letter.text.len() > MAX_LETTER {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_letter",
            format!("a letter's text must be 1 to {MAX_LETTER} bytes, not blank"),
        ));
    }
    let created_ms = crate::db::now_ms();
    let db = app.db();
    let id = db
        .add_letter(&user, letter.date, &letter.text, created_ms)
        .await?;
    let stored = Letter {
        id,
        user,
        date: letter.date,
        text: letter.text,
        created_ms,
    };
    Ok((StatusCode::CREATED, Json(stored)))
}

/// `PUT /wallets/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletBalance {
    balance: i64,
}

async fn put_wallet(
    State(app): State<App>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<WalletBalance>,
) -> Result<(StatusCode, Json<Wallet>), ApiError> {
    let id = validate::id("wallet", &id)?;
    check_amount("balance", body.balance, 0)?;
    let created = app.db().put_wallet(&id, body.balance).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Wallet {
            id,
            balance: body.balance,
        }),
    ))
}

async fn get_wallet(
    State(app): State<App>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Wallet>, ApiError> {
    let id = validate::id("wallet", &id)?;
    match app.db().wallet(&id).await? {
        Some(wallet) => Ok(Json(wallet)),
        None => Err(ApiError::not_found("no_wallet", "no such wallet")),
    }
}

/// `POST /wallets/{id}/purchases` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPurchase {
    item: String,
    price: i64,
}

async fn purchase(
    State(app): State<App>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewPurchase>,
) -> Result<Response, ApiError> {
    let id = validate::id("wallet", &id)?;
    check_amount("price", body.price, 1)?;
    if body.item.trim().is_empty() || body.item.len() > 200 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_item",
            "an item must be 1 to 200 bytes, not blank",
        ));
    }
    let created_ms = crate::db::now_ms();
    let bought = app.db().purchase(&id, &body.item, body.price, created_ms);
    match bought.await? {
        Ok(done) => Ok((StatusCode::CREATED, Json::<Purchase>(done)).into_response()),
        Err(PurchaseRefused::NoWallet) => Err(ApiError::not_found("no_wallet", "no such wallet")),
        Err(PurchaseRefused::InsufficientFunds { balance }) => {
            // The body every error of the service has, plus the balance.
            let message = format!(
                "the balance {balance} is lower than the price {}",
                body.price
            );
            let extra = serde_json::Map::from_iter([("balance".to_owned(), balance.into())]);
            Ok(json_error(
                StatusCode::CONFLICT,
                "insufficient_funds",
                &message,
                extra,
            ))
        }
    }
}

fn check_amount(what: &'static str, value: i64, min: i64) -> Result<(), ApiError> {
    if (min..=MAX_AMOUNT).contains(&value) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
            format!("{what} must be between {min} and {MAX_AMOUNT}"),
        ))
    }
}
