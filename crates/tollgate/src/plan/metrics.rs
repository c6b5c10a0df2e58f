//! Runs counted by intent and status (`tollgate_plan_runs_total`).

use std::sync::Arc;

use metrics::Counter;

use super::report::IntentStatus;

/// The counters of one intent, registered once when the plan is built.
#[derive(Debug)]
pub(crate) struct RunMetrics {
    by_status: [Counter; 3],
}

impl RunMetrics {
    pub(crate) fn new(intent: &Arc<str>) -> Self {
        let counter = |status: IntentStatus| {
            metrics::counter!("tollgate_plan_runs_total",
                "intent" => intent.to_string(), "status" => status.as_str())
        };
        RunMetrics {
            by_status: [
                counter(IntentStatus::Complete),
                counter(IntentStatus::Degraded),
                counter(IntentStatus::Failed),
            ],
        }
    }

    pub(crate) fn record(&self, status: IntentStatus) {
        let index = match status {
            IntentStatus::Complete => 0,
            IntentStatus::Degraded => 1,
            IntentStatus::Failed => 2,
        };
        self.by_status[index].increment(1);
    }
}
