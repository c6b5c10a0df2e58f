//! Metrics in tests: run async code under a debugging recorder and read a counter back.

use std::future::Future;

use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// Every metric a recorder saw: key, unit, description, value.
pub(crate) type Snapshot = Vec<(
    CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// Runs `work` on a current-thread runtime under a recorder of its own (it sees this thread
/// only, so nothing the work counts may happen on another), and returns what was recorded.
pub(crate) fn recorded<F: Future>(work: impl FnOnce() -> F) -> Snapshot {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(work());
    });
    snapshotter.snapshot().into_vec()
}

/// The counter `name` whose label `label` is `value` (0 when it was never counted).
pub(crate) fn counted(snapshot: &Snapshot, name: &str, label: &str, value: &str) -> u64 {
    let found = snapshot.iter().find_map(|(key, _, _, found)| {
        let k = key.key();
        let matches =
            k.name() == name && k.labels().any(|l| l.key() == label && l.value() == value);
        matches.then_some(found)
    });
    match found {
        Some(DebugValue::Counter(n)) => *n,
        None => 0,
        other => panic!("{name}{{{label}={value}}} is not a counter: {other:?}"),
    }
}
