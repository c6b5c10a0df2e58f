//! Polls a set of futures of one type concurrently inside the caller's task.
//!
//! Keeping the nodes in the caller's task (rather than spawning them) is what makes a run
//! cancellable as a whole: dropping it drops every node future at once.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use tokio::time::Instant;

enum Slot<F: Future> {
    Running(Pin<Box<F>>),
    Done(F::Output, Instant),
}

/// Runs every future to completion, concurrently; the outputs come back in input order, each
/// with when it finished (read once per poll in which futures finished, so that nodes that are
/// ready together cost one clock read). Every wake polls the futures still running, which is
/// cheap for the handful of nodes of an intent.
pub(crate) async fn join_all<F: Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<(F::Output, Instant)> {
    let mut slots: Vec<Slot<F>> = futures
        .into_iter()
        .map(|f| Slot::Running(Box::pin(f)))
        .collect();
    poll_fn(|cx| {
        let mut running = false;
        let mut now = None;
        for slot in slots.iter_mut() {
            if let Slot::Running(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(output) => {
                        *slot = Slot::Done(output, *now.get_or_insert_with(Instant::now));
                    }
                    Poll::Pending => running = true,
                }
            }
        }
        if running {
            return Poll::Pending;
        }
        let outputs = slots.drain(..).filter_map(|slot| match slot {
            Slot::Done(output, finished) => Some((output, finished)),
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
        let took: Vec<(u64, Duration)> = outputs
            .into_iter()
            .map(|(ms, finished)| (ms, finished - started))
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(took, vec![(30, ms(30)), (10, ms(10)), (20, ms(20))]);
        assert_eq!(started.elapsed(), ms(30));
    }

    #[tokio::test]
    async fn nothing_to_join_is_ready_at_once() {
        let outputs = join_all(Vec::<std::future::Ready<u8>>::new()).await;
        assert!(outputs.is_empty());
    }
}
