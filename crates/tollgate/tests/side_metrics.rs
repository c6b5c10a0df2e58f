//! Side tasks report how many are in flight through the gauge `tollgate_side_tasks_in_flight`:
//! running, queued, and on their way to the outbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tokio::sync::Semaphore;
use tollgate::side::{SideOptions, SideTasks, Spawned};

fn in_flight(snapshotter: &Snapshotter) -> Option<f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find_map(|(key, _, _, value)| match value {
            DebugValue::Gauge(n) if key.key().name() == "tollgate_side_tasks_in_flight" => {
                Some(n.into_inner())
            }
            _ => None,
        })
}

#[test]
fn the_in_flight_gauge_follows_tasks_taken_and_finished() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let side = SideTasks::new(SideOptions {
                max_in_flight: 2,
                max_queued: 1,
            });
            let gate = Arc::new(Semaphore::new(0));
            let mut spawned = Vec::new();
            for i in 0..4 {
                let gate = Arc::clone(&gate);
                spawned.push(side.spawn("hold", i.to_string(), async move {
                    gate.acquire().await.map_err(|e| e.to_string())?.forget();
                    Ok::<(), String>(())
                }));
            }
            assert_eq!(spawned.last(), Some(&Spawned::Refused));
            assert_eq!(in_flight(&snapshotter), Some(3.0), "2 running + 1 queued");
            gate.add_permits(3);
            let drained = side.shutdown(Duration::from_secs(10)).await;
            assert_eq!((drained.ok, drained.refused), (3, 1));
            // The debugging recorder hands over the gauge's moves since its last snapshot.
            assert_eq!(in_flight(&snapshotter), Some(-3.0), "back to 0");
        });
    });
}
