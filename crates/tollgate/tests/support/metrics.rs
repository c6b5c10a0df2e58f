//! Reading counters back from a `metrics_util` debugging recorder.
#![allow(dead_code)]

use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// One drained snapshot of a recorder.
pub(crate) type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// A snapshot drains the recorder: take one, then look every counter up in it.
pub(crate) fn snapshot(recorder: &DebuggingRecorder) -> Snapshot {
    recorder.snapshotter().snapshot().into_vec()
}

/// The counter `name` with (at least) `labels`; panics when there is none.
pub(crate) fn counter(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> u64 {
    let found = snapshot.iter().find_map(|(key, _, _, value)| {
        let k = key.key();
        let matches = k.name() == name
            && labels.iter().all(|(l, v)| {
                k.labels()
                    .any(|label| label.key() == *l && label.value() == *v)
            });
        matches.then_some(value)
    });
    match found {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("no counter {name} {labels:?}: {other:?}"),
    }
}
