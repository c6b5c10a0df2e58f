//! The one table of contracts: which fields each node outputs, which fields each intent needs.
//! Everything else — which nodes run for an intent, whether a node is required — is derived.

use std::sync::Arc;

use super::problem::{InvalidPlan, Problem};
use super::spec::{IntentSpec, NodeSpec};

/// Node and intent declarations. Build them in code or load them from a TOML file
/// ([`Contracts::from_toml`], feature `toml`), then [`validate`](Self::validate) them — a
/// [`Plan`](super::Plan) does so when it is built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contracts {
    nodes: Vec<NodeSpec>,
    intents: Vec<IntentSpec>,
}

impl Contracts {
    /// No declarations yet.
    pub fn new() -> Self {
        Contracts::default()
    }

    /// Declares a node.
    pub fn node(mut self, node: NodeSpec) -> Self {
        self.nodes.push(node);
        self
    }

    /// Declares an intent.
    pub fn intent(mut self, intent: IntentSpec) -> Self {
        self.intents.push(intent);
        self
    }

    /// The nodes, in declaration order.
    pub fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    /// The intents, in declaration order.
    pub fn intents(&self) -> &[IntentSpec] {
        &self.intents
    }

    /// The node named `name`.
    pub fn find_node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| &*n.name == name)
    }

    /// The intent named `name`.
    pub fn find_intent(&self, name: &str) -> Option<&IntentSpec> {
        self.intents.iter().find(|i| &*i.name == name)
    }

    /// Whether `node` is required for `intent`: whether it outputs one of the intent's required
    /// fields. Derived from the declarations, never declared a second time; `false` when either
    /// name is unknown.
    pub fn is_required(&self, node: &str, intent: &str) -> bool {
        match (self.find_node(node), self.find_intent(intent)) {
            (Some(node), Some(intent)) => intent.required.iter().any(|f| node.produces(f)),
            _ => false,
        }
    }

    /// The nodes that run for `intent`: those that output any of its fields, required or
    /// optional, in declaration order.
    pub fn nodes_for<'a>(&'a self, intent: &'a IntentSpec) -> impl Iterator<Item = &'a NodeSpec> {
        self.nodes
            .iter()
            .filter(move |node| node.outputs.iter().any(|f| intent.uses(f)))
    }

    /// The nodes that output `field`, in declaration order.
    pub fn producers<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a NodeSpec> {
        self.nodes.iter().filter(move |node| node.produces(field))
    }

    /// Every problem of the declarations, in declaration order (empty when they are valid).
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.intents.is_empty() {
            problems.push(Problem::NoIntents);
        }
        self.duplicate_names(&mut problems);
        for node in &self.nodes {
            node_problems(node, &mut problems);
            if !self
                .intents
                .iter()
                .any(|i| node.outputs.iter().any(|f| i.uses(f)))
            {
                problems.push(Problem::UnusedNode {
                    node: node.name.clone(),
                });
            }
        }
        for intent in &self.intents {
            self.intent_problems(intent, &mut problems);
        }
        problems
    }

    /// `Ok` when the declarations are valid; else every problem at once.
    pub fn validate(&self) -> Result<(), InvalidPlan> {
        InvalidPlan::check(self.problems())
    }

    fn duplicate_names(&self, problems: &mut Vec<Problem>) {
        for node in duplicates(self.nodes.iter().map(|n| &n.name)) {
            problems.push(Problem::DuplicateNode { node });
        }
        for intent in duplicates(self.intents.iter().map(|i| &i.name)) {
            problems.push(Problem::DuplicateIntent { intent });
        }
    }

    fn intent_problems(&self, intent: &IntentSpec, problems: &mut Vec<Problem>) {
        let name = &intent.name;
        if intent.required.is_empty() && intent.optional.is_empty() {
            problems.push(Problem::EmptyIntent {
                intent: name.clone(),
            });
        }
        for field in duplicates(intent.required.iter().chain(&intent.optional)) {
            problems.push(Problem::DuplicateField {
                intent: name.clone(),
                field,
            });
        }
        let lists = [(&intent.required, true), (&intent.optional, false)];
        for (fields, required) in lists {
            for field in fields {
                if self.producers(field).next().is_none() {
                    problems.push(Problem::Unproduced {
                        intent: name.clone(),
                        field: field.clone(),
                        required,
                    });
                }
            }
        }
        self.merge_conflicts(intent, problems);
    }

    /// Every field output by two nodes that both run for `intent`.
    fn merge_conflicts(&self, intent: &IntentSpec, problems: &mut Vec<Problem>) {
        let mut seen: Vec<(&Arc<str>, &Arc<str>)> = Vec::new();
        for node in self.nodes_for(intent) {
            for field in &node.outputs {
                match seen.iter().find(|(f, _)| *f == field) {
                    Some((_, first)) if *first != &node.name => {
                        problems.push(Problem::MergeConflict {
                            intent: intent.name.clone(),
                            field: field.clone(),
                            first: (*first).clone(),
                            second: node.name.clone(),
                        });
                    }
                    Some(_) => {}
                    None => seen.push((field, &node.name)),
                }
            }
        }
    }
}

fn node_problems(node: &NodeSpec, problems: &mut Vec<Problem>) {
    let name = &node.name;
    for field in duplicates(&node.outputs) {
        problems.push(Problem::DuplicateOutput {
            node: name.clone(),
            field,
        });
    }
    if node.paid && node.idempotency_key.as_deref().is_none_or(str::is_empty) {
        problems.push(Problem::PaidWithoutIdempotencyKey { node: name.clone() });
    }
    let invalid = |reason| Problem::InvalidPolicy {
        node: name.clone(),
        reason,
    };
    if node.timeout.is_some_and(|t| t.is_zero()) {
        problems.push(invalid("the timeout is zero"));
    }
    if node.retry.is_some_and(|r| r.attempts == 0) {
        problems.push(invalid("retry attempts must be at least 1"));
    }
    if node.breaker.as_deref().is_some_and(str::is_empty) {
        problems.push(invalid("the breaker name is empty"));
    }
}

/// Each name that occurs more than once, once, in order of its second occurrence.
fn duplicates<'a>(names: impl IntoIterator<Item = &'a Arc<str>>) -> Vec<Arc<str>> {
    let mut seen: Vec<&Arc<str>> = Vec::new();
    let mut twice: Vec<Arc<str>> = Vec::new();
    for name in names {
        if !seen.contains(&name) {
            seen.push(name);
        } else if !twice.contains(name) {
            twice.push(name.clone());
        }
    }
    twice
}
