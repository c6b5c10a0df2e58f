//! Contracts from a TOML file (feature `toml`): the same plan in code, in CI and at start-up.
//!
//! ```toml
//! [nodes.weather]
//! outputs = ["weather"]        # required: the fields the node outputs
//! timeout_ms = 2000            # per attempt
//! retry = { attempts = 3, backoff_ms = 10, max_backoff_ms = 1000 }
//! breaker = "weather"          # taken from the plan's breaker registry by name
//! on_failure = "fallback"      # "propagate" (default) | "skip" | "fallback"
//!
//! [nodes.rag]
//! outputs = ["disposal_rules"]
//! paid = true                  # a paid call must have an idempotency key
//! idempotency_key = "rag"
//!
//! [intents.trip]
//! required = ["weather", "city"]
//! optional = ["news"]
//! ```
//!
//! Unknown keys are errors, never ignored: a misspelt `optinal` would otherwise silently turn
//! a field into no field at all.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::contracts::Contracts;
use super::spec::{IntentSpec, NodeSpec, OnFailure, RetrySpec};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    nodes: BTreeMap<String, NodeEntry>,
    #[serde(default)]
    intents: BTreeMap<String, IntentEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeEntry {
    outputs: Vec<String>,
    timeout_ms: Option<u64>,
    retry: Option<RetryEntry>,
    breaker: Option<String>,
    #[serde(default)]
    on_failure: OnFailure,
    #[serde(default)]
    paid: bool,
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryEntry {
    attempts: u32,
    #[serde(default = "default_backoff_ms")]
    backoff_ms: u64,
    max_backoff_ms: Option<u64>,
}

fn default_backoff_ms() -> u64 {
    10
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentEntry {
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    optional: Vec<String>,
}

/// A contracts file that could not be read as one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContractsFileError {
    /// The text is not TOML.
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The text is TOML, but not a contracts file: an unknown key, a wrong type, a node
    /// without `outputs`.
    Schema {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for ContractsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContractsFileError::Syntax {
                line,
                column,
                message,
            } => write!(
                f,
                "not valid TOML at line {line}, column {column}: {message}"
            ),
            ContractsFileError::Schema {
                line,
                column,
                message,
            } => write!(f, "line {line}, column {column}: {message}"),
        }
    }
}

impl Error for ContractsFileError {}

impl Contracts {
    /// Reads contracts from the text of a TOML file (see the format above). The contracts are
    /// not validated yet: [`Contracts::validate`] (or building a plan) does that.
    ///
    /// # Errors
    /// [`ContractsFileError::Syntax`] when the text is not TOML, [`ContractsFileError::Schema`]
    /// when a key is unknown, of the wrong type or missing.
    pub fn from_toml(text: &str) -> Result<Contracts, ContractsFileError> {
        if let Err(e) = toml::from_str::<toml::Table>(text) {
            let (line, column, message) = locate(text, &e);
            return Err(ContractsFileError::Syntax {
                line,
                column,
                message,
            });
        }
        let file: File = toml::from_str(text).map_err(|e| {
            let (line, column, message) = locate(text, &e);
            ContractsFileError::Schema {
                line,
                column,
                message,
            }
        })?;
        let mut contracts = Contracts::new();
        for (name, entry) in file.nodes {
            contracts = contracts.node(entry.into_spec(name));
        }
        for (name, entry) in file.intents {
            let intent = IntentSpec::new(name)
                .required(entry.required)
                .optional(entry.optional);
            contracts = contracts.intent(intent);
        }
        Ok(contracts)
    }
}

impl NodeEntry {
    fn into_spec(self, name: String) -> NodeSpec {
        let mut spec = NodeSpec::new(name)
            .outputs(self.outputs)
            .on_failure(self.on_failure);
        spec.timeout = self.timeout_ms.map(Duration::from_millis);
        spec.retry = self.retry.map(|retry| RetrySpec {
            attempts: retry.attempts,
            backoff: Duration::from_millis(retry.backoff_ms),
            max_backoff: Duration::from_millis(retry.max_backoff_ms.unwrap_or(retry.backoff_ms)),
        });
        spec.breaker = self.breaker.map(Into::into);
        spec.paid = self.paid;
        spec.idempotency_key = self.idempotency_key.map(Into::into);
        spec
    }
}

/// The 1-based line and column where `error` starts, and its message on one line.
fn locate(text: &str, error: &toml::de::Error) -> (usize, usize, String) {
    let start = error.span().map_or(0, |span| span.start);
    let before = text.get(..start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    let message = error
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (line, column, message)
}
