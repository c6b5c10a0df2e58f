//! A start gate: many tasks released at the same instant.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Barrier;

/// Spawns `n` tasks, task `i` running `task(i)`, holds them behind one
/// [`Barrier`] until all are spawned and waiting, and returns their outputs in task order.
/// Run it on a multi-thread runtime so the released tasks really run in parallel.
pub async fn release_together<T, F, Fut>(n: usize, task: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let start = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (start, work) = (Arc::clone(&start), task(i));
            tokio::spawn(async move {
                start.wait().await;
                work.await
            })
        })
        .collect();
    let mut outputs = Vec::with_capacity(n);
    for task in tasks {
        outputs.push(task.await.expect("a released task panicked"));
    }
    outputs
}
