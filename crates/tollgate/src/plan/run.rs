//! Running an intent: its nodes concurrently under their policies, then the merge.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::join::join_all;
use super::node::BoundNode;
use super::report::{IntentReport, IntentStatus, NodeReport, UnknownIntent};
use super::{IntentPlan, Plan};
use crate::policy::Status;

/// A node's report, and the fields it contributes.
type Finished<V, E> = (NodeReport<E>, Vec<(Arc<str>, V)>);

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
        let Some(plan) = self.intents.get(intent) else {
            return Err(UnknownIntent {
                intent: intent.to_owned(),
            });
        };
        let runs = plan.nodes.iter().filter_map(|node| {
            let bound = self.nodes.get(node.index)?;
            Some(run_node(bound, node.required, &plan.name, input.clone()))
        });
        let finished = join_all(runs).await;
        let report = merge(plan, finished);
        plan.metrics.record(report.status);
        tracing::debug!(intent = %plan.name, status = %report.status,
            missing_required = ?report.missing_required, missing_optional = ?report.missing_optional,
            "intent ran");
        Ok(report)
    }
}

async fn run_node<I, V, E>(
    node: &BoundNode<I, V, E>,
    required: bool,
    intent: &Arc<str>,
    input: I,
) -> Finished<V, E>
where
    I: Clone,
{
    let started = Instant::now();
    let resolved = node.resolve(intent, input).await;
    let mut report = NodeReport {
        node: node.spec.name.clone(),
        status: resolved.status,
        required,
        duration: started.elapsed(),
        error: resolved.error,
        fallback_error: resolved.fallback_error,
        undeclared_field: None,
        fields: Vec::new(),
    };
    let admitted = match resolved.value.map(|v| v.admit(&node.spec.outputs)) {
        Some(Ok(admitted)) => admitted,
        Some(Err(field)) => {
            tracing::error!(node = %report.node, %field, "node returned a field it does not declare");
            report.status = Status::Failed;
            report.undeclared_field = Some(field);
            Vec::new()
        }
        None => Vec::new(),
    };
    report.fields = admitted.iter().map(|(field, _)| field.clone()).collect();
    (report, admitted)
}

/// Merges the nodes' fields (no two nodes of an intent output one field: the plan was checked
/// for merge conflicts) and works out what is missing.
fn merge<V, E>(plan: &IntentPlan, finished: Vec<Finished<V, E>>) -> IntentReport<V, E> {
    let mut fields = BTreeMap::new();
    let mut nodes = Vec::with_capacity(finished.len());
    for (report, admitted) in finished {
        fields.extend(admitted);
        nodes.push(report);
    }
    let missing = |wanted: &[Arc<str>]| -> Vec<Arc<str>> {
        wanted
            .iter()
            .filter(|field| !fields.contains_key(&***field))
            .cloned()
            .collect()
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
