//! # tollgate-demo
//!
//! The reference service of tollgate: an axum service on SQLite that implements the daily
//! report of S3 (an expensive LLM call made **exactly once** per user and day) and the wallet
//! of S2 (a purchase that can never overspend), with the naive code path of S3 kept beside it
//! for the demo. Also here: the fake LLM server the demo and the tests use, and the demo itself
//! ([`demo::run`]), which races the two paths and reports what each did.
//!
//! ## Routes
//! | route | what |
//! |---|---|
//! | `POST /users/{user}/letters` | store a letter `{"date": "YYYY-MM-DD", "text": …}` → 201 |
//! | `POST /users/{user}/daily-reports/{date}` | S3: one LLM call for the day's letters, one report + one analysis per letter in one transaction → 201; concurrent or repeated → 409 |
//! | `GET /users/{user}/daily-reports/{date}` | the report → 200, or 404 |
//! | `PUT /wallets/{id}` | `{"balance": n}` → 201 created / 200 updated |
//! | `GET /wallets/{id}` | the wallet |
//! | `POST /wallets/{id}/purchases` | S2: `{"item", "price"}` → 201, or 409 `insufficient_funds` |
//! | `POST /chat` | S0: `{"intent", "message"}` fanned out to the intent's nodes under a checked plan → 200 with the merged fields and per-node statuses (`complete` / `degraded`); a required field missing → 502 `missing_required_fields` naming it |
//! | `POST /naive/users/{user}/daily-reports/{date}` | the original S3 code, bug included (demo mode only) |
//! | `GET /metrics`, `GET /healthz` | Prometheus text; health |
//!
//! Every error is JSON, `{"error": code, "message": text}`, with a 4xx status for bad input
//! (bad ids or dates, malformed or oversized bodies) — never a 500. The LLM is called through a
//! circuit breaker, timeout and retry; while the breaker is open the report endpoint answers
//! 503 with `Retry-After`.
#![forbid(unsafe_code)]

pub mod app;
pub mod chat;
pub mod client;
pub mod db;
pub mod demo;
pub mod error;
pub mod extract;
pub mod fake_llm;
pub mod llm;
pub mod questions;
pub mod reports;
pub mod routes;
pub mod server;
pub mod store;
pub mod validate;
pub mod wire;

pub use app::App;
pub use db::Database;
pub use error::ApiError;
pub use fake_llm::{FakeLlm, FakeLlmConfig};
pub use server::{OnceStore, Service, ServiceConfig, StartError};
