//! What running an intent gives back: merged fields, one report per node, missing fields and an
//! overall status.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::policy::{PolicyError, Status};

/// The overall status of an intent's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IntentStatus {
    /// Every required and optional field is there.
    Complete,
    /// Every required field is there; some optional ones are missing.
    Degraded,
    /// A required field is missing.
    Failed,
}

impl IntentStatus {
    /// `complete`, `degraded` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentStatus::Complete => "complete",
            IntentStatus::Degraded => "degraded",
            IntentStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for IntentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one node of a run went.
#[derive(Debug)]
#[non_exhaustive]
pub struct NodeReport<E> {
    /// The node.
    pub node: Arc<str>,
    /// Which path produced its fields: `success`, `fallback_success`, `skipped` or `failed`.
    pub status: Status,
    /// Whether the node is required for the intent (derived from the contracts).
    pub required: bool,
    /// From its start to its resolution, retries and fallback included.
    pub duration: Duration,
    /// The call's error (kept when a fallback then succeeded).
    pub error: Option<PolicyError<E>>,
    /// The fallback's own error, when it ran and failed too.
    pub fallback_error: Option<E>,
    /// A field the node (or its fallback) returned without declaring it. The node's whole
    /// output is then rejected and its status is `failed`: a contract breach is never dropped
    /// silently.
    pub undeclared_field: Option<String>,
}

impl<E: fmt::Display> NodeReport<E> {
    /// Every error of the node on one line, or `None` when it had none.
    pub fn error_message(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(error) = &self.error {
            parts.push(error.to_string());
        }
        if let Some(error) = &self.fallback_error {
            parts.push(format!("fallback: {error}"));
        }
        if let Some(field) = &self.undeclared_field {
            parts.push(format!("returned undeclared field {field:?}"));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// The answer of one intent: merged fields, per-node reports and what is missing.
#[derive(Debug)]
#[non_exhaustive]
pub struct IntentReport<V, E> {
    /// The intent.
    pub intent: Arc<str>,
    /// `complete`, `degraded` (optional fields missing) or `failed` (required fields missing).
    pub status: IntentStatus,
    /// Every field the intent's nodes produced, by name.
    pub fields: BTreeMap<Arc<str>, V>,
    /// One report per node that ran, in declaration order.
    pub nodes: Vec<NodeReport<E>>,
    /// The intent's required fields that are missing, in declaration order.
    pub missing_required: Vec<Arc<str>>,
    /// The intent's optional fields that are missing, in declaration order.
    pub missing_optional: Vec<Arc<str>>,
}

impl<V, E> IntentReport<V, E> {
    /// The report of `node`, if it ran.
    pub fn node(&self, node: &str) -> Option<&NodeReport<E>> {
        self.nodes.iter().find(|r| &*r.node == node)
    }

    /// The value of `field`.
    pub fn field(&self, field: &str) -> Option<&V> {
        self.fields.get(field)
    }
}

impl<V, E: fmt::Display> IntentReport<V, E> {
    /// `Err` naming the missing required fields and why their nodes produced nothing, when the
    /// status is `failed`.
    pub fn check(&self) -> Result<(), MissingRequired> {
        if self.missing_required.is_empty() {
            return Ok(());
        }
        let causes = self
            .nodes
            .iter()
            .filter(|n| n.required && n.status != Status::Success)
            .map(|n| {
                let why = n.error_message().unwrap_or_else(|| "no value".to_owned());
                format!("node {:?} {}: {why}", n.node, n.status)
            })
            .collect();
        Err(MissingRequired {
            intent: self.intent.clone(),
            fields: self.missing_required.clone(),
            causes,
        })
    }
}

/// An intent's answer lacks required fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingRequired {
    /// The intent.
    pub intent: Arc<str>,
    /// The missing required fields.
    pub fields: Vec<Arc<str>>,
    /// One line per required node that did not succeed: its name, status and errors.
    pub causes: Vec<String>,
}

impl fmt::Display for MissingRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<String> = self.fields.iter().map(|f| format!("{f:?}")).collect();
        write!(
            f,
            "intent {:?} is missing required fields {}",
            self.intent,
            fields.join(", ")
        )?;
        if !self.causes.is_empty() {
            write!(f, " ({})", self.causes.join("; "))?;
        }
        Ok(())
    }
}

impl Error for MissingRequired {}

/// The plan has no intent of that name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownIntent {
    /// The name asked for.
    pub intent: String,
}

impl fmt::Display for UnknownIntent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no intent named {:?} in the plan", self.intent)
    }
}

impl Error for UnknownIntent {}
