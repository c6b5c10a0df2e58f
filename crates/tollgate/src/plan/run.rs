//! Running an intent: its nodes concurrently under their policies, then the merge.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::join::join_all;
use super::node::{BoundNode, Resolved};
use super::report::{IntentReport, IntentStatus, NodeReport, UnknownIntent};
use super::{IntentPlan, Plan};
use crate::policy::Status;

impl<I, V, E> Plan<I, V, E>
where
    I: Clone + Send + Sync + 'static,
    V: Send + 'static,
    E: Send + 'static,
{
    /// Runs `intent`: every node that outputs one of its fields, concurrently, each under its
    /// policy, with `input`; then merges their fields. See the [module docs](super) for what is
    /// guaranteed.
    ///
    /// # Errors
    /// [`UnknownIntent`] when the plan has no such intent. A failed answer is not an error:
    /// it is a report with status `failed` ([`IntentReport::check`] turns it into one).
    pub async fn run(&self, intent: &str, input: I) -> Result<IntentReport<V, E>, UnknownIntent> {
        let Some(plan) = self.intents.iter().find(|plan| &*plan.name == intent) else {
            return Err(UnknownIntent {
                intent: intent.to_owned(),
            });
        };
        let started = Instant::now();
        let runs = plan.nodes.iter().filter_map(|node| {
            let bound = self.nodes.get(node.index)?;
            Some(bound.resolve(&plan.name, input.clone()))
        });
        let resolved = join_all(runs).await;
        let report = self.merge(plan, started, resolved);
        plan.metrics.record(report.status);
        tracing::debug!(intent = %plan.name, status = %report.status,
            missing_required = ?report.missing_required, missing_optional = ?report.missing_optional,
            "intent ran");
        Ok(report)
    }

    /// Merges the nodes' fields (no two nodes of an intent output one field: the plan was
    /// checked for merge conflicts) and works out what is missing.
    fn merge(
        &self,
        plan: &IntentPlan,
        started: Instant,
        resolved: Vec<(Resolved<V, E>, Instant)>,
    ) -> IntentReport<V, E> {
        let mut fields = BTreeMap::new();
        let nodes = plan
            .nodes
            .iter()
            .filter_map(|node| Some((self.nodes.get(node.index)?, node.required)))
            .zip(resolved)
            .map(|((node, required), (resolved, finished))| {
                let duration = finished.saturating_duration_since(started);
                node_report(node, required, duration, resolved, &mut fields)
            })
            .collect();
        let missing = |wanted: &[std::sync::Arc<str>]| {
            let missing = wanted
                .iter()
                .filter(|field| !fields.contains_key(&***field));
            missing.cloned().collect::<Vec<_>>()
        };
        let missing_required = missing(&plan.required);
        let missing_optional = missing(&plan.optional);
        let status = if !missing_required.is_empty() {
            IntentStatus::Failed
        } else if !missing_optional.is_empty() {
            IntentStatus::Degraded
        } else {
            IntentStatus::Complete
        };
        IntentReport {
            intent: plan.name.clone(),
            status,
            fields,
            nodes,
            missing_required,
            missing_optional,
        }
    }
}

/// A node's report; its fields go into `fields` unless it returned one it does not declare,
/// which fails the node and rejects its whole output.
fn node_report<I, V, E>(
    node: &BoundNode<I, V, E>,
    required: bool,
    duration: std::time::Duration,
    resolved: Resolved<V, E>,
    fields: &mut BTreeMap<std::sync::Arc<str>, V>,
) -> NodeReport<E> {
    let mut report = NodeReport {
        node: node.spec.name.clone(),
        status: resolved.status,
        required,
        duration,
        error: resolved.error,
        fallback_error: resolved.fallback_error,
        undeclared_field: None,
    };
    let Some(outputs) = resolved.value else {
        return report;
    };
    if let Some(field) = outputs.undeclared(&node.spec.outputs) {
        tracing::error!(node = %report.node, %field, "node returned a field it does not declare");
        report.status = Status::Failed;
        report.undeclared_field = Some(field.to_owned());
        return report;
    }
    outputs.merge_into(&node.spec.outputs, fields);
    report
}
