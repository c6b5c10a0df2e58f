//! Side tasks that never break the main job (S4).
//!
//! [`SideTasks::spawn`] runs a named side task — saving a paid result, sending a notification
//! — detached from its caller: **its error or panic is caught, logged with its name and key,
//! counted, and never reaches the caller**. Concurrency is bounded ([`SideOptions`]): when every
//! slot is busy, a task waits in a bounded queue; past that it is refused — or, for a task
//! spawned as an [`Effect`](crate::outbox::Effect) with [`SideTasks::spawn_effect`], sent to the durable outbox.
//! [`SideTasks::shutdown`] stops new tasks and drains the running ones within a deadline;
//! an effect that did not finish (or failed) goes to the outbox instead of being dropped.
//!
//! A side task lives in this process: a crash loses it. For a side effect that must survive a
//! crash, enqueue it in the outbox **inside the caller's transaction** (see
//! [`crate::outbox`]) — the reference service's interview questions do exactly that.
//!
//! Metrics: `tollgate_side_tasks_total{name, outcome}` (`ok`, `failed`, `panicked`,
//! `refused`, `to_outbox`, `aborted`) and the gauge `tollgate_side_tasks_in_flight`.
//!
//! ```
//! use std::time::Duration;
//! use tollgate::side::{SideOptions, SideTasks};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let side = SideTasks::new(SideOptions::default());
//! let _ = side.spawn("save-questions", "ann", async { Err::<(), _>("the database is down") });
//! let _ = side.spawn("notify", "ann", async {
//!     if true {
//!         panic!("a bug in the side job");
//!     }
//!     Ok::<(), String>(())
//! });
//! // The caller's job went on; neither failure reached it.
//! let drained = side.shutdown(Duration::from_secs(1)).await;
//! assert_eq!((drained.failed, drained.panicked), (1, 1));
//! # }
//! ```

mod tasks;

pub use tasks::{Drained, SideOptions, SideTasks, Spawned};
