//! What can be wrong with a plan: every problem names the intent, the node and the field.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// One problem found when a plan was built. Each names what it is about, so that a list of
/// them can be printed one per line (as `tollgate plan check` does).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The plan declares no intent.
    NoIntents,
    /// An intent requires a field (or, `required: false`, lists an optional field) that no node
    /// produces: the contract drift of S0.
    Unproduced {
        /// The intent.
        intent: Arc<str>,
        /// The field nobody produces.
        field: Arc<str>,
        /// Whether the field is required (else optional).
        required: bool,
    },
    /// Two nodes that both run for an intent both produce a field: their outputs cannot merge.
    MergeConflict {
        /// The intent.
        intent: Arc<str>,
        /// The field both produce.
        field: Arc<str>,
        /// The first producer, in declaration order.
        first: Arc<str>,
        /// The second producer.
        second: Arc<str>,
    },
    /// No intent uses any of the node's outputs, so it would never run.
    UnusedNode {
        /// The node.
        node: Arc<str>,
    },
    /// A node marked as a paid call has no idempotency key.
    PaidWithoutIdempotencyKey {
        /// The node.
        node: Arc<str>,
    },
    /// Two nodes have the same name.
    DuplicateNode {
        /// The name.
        node: Arc<str>,
    },
    /// Two intents have the same name.
    DuplicateIntent {
        /// The name.
        intent: Arc<str>,
    },
    /// A node lists one output field twice.
    DuplicateOutput {
        /// The node.
        node: Arc<str>,
        /// The field.
        field: Arc<str>,
    },
    /// An intent lists one field twice (twice in a list, or both required and optional).
    DuplicateField {
        /// The intent.
        intent: Arc<str>,
        /// The field.
        field: Arc<str>,
    },
    /// An intent has no fields at all.
    EmptyIntent {
        /// The intent.
        intent: Arc<str>,
    },
    /// A node's policy cannot be built (zero attempts, a zero timeout).
    InvalidPolicy {
        /// The node.
        node: Arc<str>,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two implementations were given for one node.
    DuplicateImplementation {
        /// The node.
        node: Arc<str>,
    },
    /// A declared node has no implementation.
    MissingImplementation {
        /// The node.
        node: Arc<str>,
    },
    /// An implementation (or a fallback) was given for a node that is not declared.
    UndeclaredImplementation {
        /// The name it was given for.
        node: Arc<str>,
    },
    /// A node is declared `on_failure = fallback` but no fallback was given for it.
    MissingFallback {
        /// The node.
        node: Arc<str>,
    },
    /// A fallback was given for a node that is not declared `on_failure = fallback`, so it
    /// would never run.
    UnusedFallback {
        /// The node.
        node: Arc<str>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoIntents => write!(f, "the plan declares no intent"),
            Problem::Unproduced {
                intent,
                field,
                required: true,
            } => write!(
                f,
                "intent {intent:?} requires field {field:?} but no node produces it"
            ),
            Problem::Unproduced {
                intent,
                field,
                required: false,
            } => write!(
                f,
                "intent {intent:?} lists optional field {field:?} but no node produces it"
            ),
            Problem::MergeConflict {
                intent,
                field,
                first,
                second,
            } => write!(
                f,
                "intent {intent:?}: field {field:?} is produced by both node {first:?} and node \
                 {second:?} (merge conflict)"
            ),
            Problem::UnusedNode { node } => write!(
                f,
                "node {node:?} is used by no intent (no intent lists any of its outputs)"
            ),
            Problem::PaidWithoutIdempotencyKey { node } => {
                write!(f, "node {node:?} is a paid call without an idempotency key")
            }
            Problem::DuplicateNode { node } => write!(f, "node {node:?} is declared twice"),
            Problem::DuplicateIntent { intent } => {
                write!(f, "intent {intent:?} is declared twice")
            }
            Problem::DuplicateOutput { node, field } => {
                write!(f, "node {node:?} lists output field {field:?} twice")
            }
            Problem::DuplicateField { intent, field } => {
                write!(f, "intent {intent:?} lists field {field:?} twice")
            }
            Problem::EmptyIntent { intent } => write!(f, "intent {intent:?} has no fields"),
            Problem::InvalidPolicy { node, reason } => {
                write!(f, "node {node:?} has an invalid policy: {reason}")
            }
            Problem::DuplicateImplementation { node } => {
                write!(f, "node {node:?} has two implementations")
            }
            Problem::MissingImplementation { node } => {
                write!(f, "node {node:?} is declared but has no implementation")
            }
            Problem::UndeclaredImplementation { node } => write!(
                f,
                "an implementation was given for node {node:?}, which is not declared"
            ),
            Problem::MissingFallback { node } => write!(
                f,
                "node {node:?} is declared on_failure = \"fallback\" but has no fallback"
            ),
            Problem::UnusedFallback { node } => write!(
                f,
                "node {node:?} has a fallback but is not declared on_failure = \"fallback\""
            ),
        }
    }
}

/// A plan that cannot be built, with every problem found (not just the first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidPlan {
    problems: Vec<Problem>,
}

impl InvalidPlan {
    /// `Err` with every problem, or `Ok` when there is none.
    pub(crate) fn check(problems: Vec<Problem>) -> Result<(), InvalidPlan> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(InvalidPlan { problems })
        }
    }

    pub(crate) fn from(problems: Vec<Problem>) -> InvalidPlan {
        InvalidPlan { problems }
    }

    /// The problems, in declaration order (never empty).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for InvalidPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "invalid plan ({count} problem{}): ",
            if count == 1 { "" } else { "s" }
        )?;
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            problem.fmt(f)?;
        }
        Ok(())
    }
}

impl Error for InvalidPlan {}
