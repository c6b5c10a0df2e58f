//! Waking waiters when a holder settles: the finish script publishes the record's key on the
//! store's channel; one subscriber connection per store fans it out to the waiters in this
//! process. Polling (the engine's backoff) stays as the backstop: a message lost while the
//! subscriber (re)connects only delays a waiter until its next claim.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::Client;
use tokio::sync::{Mutex, broadcast};
use tokio::task::JoinHandle;

use crate::conn::{Target, bounded};

/// The settled-record announcements of one store, shared by its clones.
#[derive(Debug)]
pub(crate) struct Wakeups {
    url: String,
    channel: String,
    timeout: Duration,
    running: Mutex<Option<Subscriber>>,
}

#[derive(Debug)]
struct Subscriber {
    settled: broadcast::Sender<Arc<[u8]>>,
    task: JoinHandle<()>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Wakeups {
    pub(crate) fn new(target: &Target, channel: String, timeout: Duration) -> Wakeups {
        // Classic pub/sub is broadcast to every node of a cluster: any node will do.
        let url = match target {
            Target::Single(url) => url.clone(),
            Target::Cluster(nodes) => nodes.first().cloned().unwrap_or_default(),
        };
        Wakeups {
            url,
            channel,
            timeout,
            running: Mutex::new(None),
        }
    }

    /// Returns when `record` is announced settled, or after `at_most`.
    pub(crate) async fn wait(&self, record: &str, at_most: Duration) {
        let Some(mut settled) = self.subscribe().await else {
            tokio::time::sleep(at_most).await;
            return;
        };
        let announced = async {
            loop {
                match settled.recv().await {
                    Ok(key) if *key == *record.as_bytes() => return,
                    Ok(_) => continue,
                    // Missed messages may have named this record: claim again to find out.
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => {
                        return std::future::pending().await;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(at_most, announced).await;
    }

    /// A receiver of announcements, (re)starting the subscriber if it is not running; `None`
    /// when it cannot be started now (the waiter then just sleeps).
    async fn subscribe(&self) -> Option<broadcast::Receiver<Arc<[u8]>>> {
        let mut running = self.running.lock().await;
        if let Some(subscriber) = running.as_ref().filter(|s| !s.task.is_finished()) {
            return Some(subscriber.settled.subscribe());
        }
        match self.start().await {
            Ok(subscriber) => {
                let receiver = subscriber.settled.subscribe();
                *running = Some(subscriber);
                Some(receiver)
            }
            Err(e) => {
                tracing::debug!(error = %e, "redis: cannot subscribe to settled records; polling");
                None
            }
        }
    }

    async fn start(&self) -> Result<Subscriber, tollgate::store::StoreError> {
        let client = Client::open(self.url.as_str()).map_err(crate::error::store_error)?;
        let mut pubsub = bounded(self.timeout, "subscribe", client.get_async_pubsub()).await?;
        bounded(self.timeout, "subscribe", pubsub.subscribe(&self.channel)).await?;
        let (settled, _) = broadcast::channel(1024);
        let sender = settled.clone();
        let task = tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let _ = sender.send(message.get_payload_bytes().into());
            }
        });
        Ok(Subscriber { settled, task })
    }
}
