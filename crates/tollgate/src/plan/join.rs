//! Polls a set of futures of one type concurrently inside the caller's task.
//!
//! Keeping the nodes in the caller's task (rather than spawning them) is what makes a run
//! cancellable as a whole: dropping it drops every node future at once.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

enum Slot<F: Future> {
    Running(Pin<Box<F>>),
    Done(F::Output),
}

/// Runs every future to completion, concurrently; the outputs come back in input order. Every
/// wake polls the futures still running, which is cheap for the handful of nodes of an intent.
pub(crate) async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut slots: Vec<Slot<F>> = futures
        .into_iter()
        .map(|f| Slot::Running(Box::pin(f)))
        .collect();
    poll_fn(|cx| {
        let mut running = false;
        for slot in slots.iter_mut() {
            if let Slot::Running(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(output) => *slot = Slot::Done(output),
                    Poll::Pending => running = true,
                }
            }
        }
        if running {
            return Poll::Pending;
        }
        let outputs = slots.drain(..).filter_map(|slot| match slot {
            Slot::Done(output) => Some(output),
            Slot::Running(_) => None,
        });
        Poll::Ready(outputs.collect())
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::join_all;

    #[tokio::test(start_paused = true)]
    async fn outputs_come_back_in_input_order_whatever_order_they_finish_in() {
        let started = tokio::time::Instant::now();
        let delays = [30u64, 10, 20];
        let outputs = join_all(delays.map(|ms| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        }))
        .await;
        assert_eq!(outputs, vec![30, 10, 20]);
        assert_eq!(started.elapsed(), Duration::from_millis(30));
    }

    #[tokio::test]
    async fn nothing_to_join_is_ready_at_once() {
        let outputs = join_all(Vec::<std::future::Ready<u8>>::new()).await;
        assert!(outputs.is_empty());
    }
}
