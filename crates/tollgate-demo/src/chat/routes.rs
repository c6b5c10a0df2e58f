//! `POST /chat` `{"intent": "…", "message": "…"}`: 200 with the merged fields and one report
//! per node (status `complete` or `degraded`), 502 `missing_required_fields` naming them when a
//! required node produced nothing, 422 for an unknown intent or a bad message.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tollgate::plan::{IntentReport, NodeReport};

use super::NodeFailure;
use crate::app::App;
use crate::error::ApiError;
use crate::extract::ApiJson;

/// The longest accepted message, in bytes.
pub const MAX_MESSAGE: usize = 4 * 1024;

/// `POST /chat` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// The intent to answer (`weather`, `waste`, `smalltalk`, …).
    pub intent: String,
    /// The user's message.
    pub message: String,
}

/// `POST /chat` answer.
#[derive(Debug, Serialize)]
pub struct ChatReply {
    /// The intent.
    pub intent: String,
    /// `complete`, or `degraded` when optional fields are missing.
    pub status: &'static str,
    /// The merged fields.
    pub fields: BTreeMap<String, Value>,
    /// The optional fields that are missing.
    pub missing_optional: Vec<String>,
    /// One report per node that ran.
    pub nodes: Vec<NodeSummary>,
}

/// How one node went.
#[derive(Debug, Serialize)]
pub struct NodeSummary {
    /// The node.
    pub node: String,
    /// `success`, `fallback_success`, `skipped` or `failed`.
    pub status: &'static str,
    /// Whether the intent requires it (derived from the contracts).
    pub required: bool,
    /// Its duration in milliseconds.
    pub duration_ms: f64,
    /// Its errors, if any.
    pub error: Option<String>,
}

/// The `POST /chat` handler.
pub async fn post_chat(
    State(app): State<App>,
    ApiJson(request): ApiJson<ChatRequest>,
) -> Result<Json<ChatReply>, ApiError> {
    let message = request.message.trim();
    if message.is_empty() || request.message.len() > MAX_MESSAGE {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_message",
            format!("a message must be 1 to {MAX_MESSAGE} bytes, not blank"),
        ));
    }
    let chat = app.chat();
    let Some(report) = chat.answer(&request.intent, message).await else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_intent",
            format!(
                "no intent named {:?}; known: {}",
                request.intent,
                chat.intents().join(", ")
            ),
        ));
    };
    report.check().map_err(|missing| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "missing_required_fields",
            missing.to_string(),
        )
    })?;
    Ok(Json(reply(report)))
}

fn reply(report: IntentReport<Value, NodeFailure>) -> ChatReply {
    ChatReply {
        intent: report.intent.to_string(),
        status: report.status.as_str(),
        missing_optional: report
            .missing_optional
            .iter()
            .map(|f| f.to_string())
            .collect(),
        nodes: report.nodes.iter().map(summary).collect(),
        fields: report
            .fields
            .into_iter()
            .map(|(field, value)| (field.to_string(), value))
            .collect(),
    }
}

fn summary(node: &NodeReport<NodeFailure>) -> NodeSummary {
    NodeSummary {
        node: node.node.to_string(),
        status: node.status.as_str(),
        required: node.required,
        duration_ms: node.duration.as_secs_f64() * 1000.0,
        error: node.error_message(),
    }
}
