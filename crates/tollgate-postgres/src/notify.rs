//! Waking waiters with `LISTEN/NOTIFY`: one connection per store listens on the schema's
//! channel, on which complete, fail and resolve announce their key when they commit.
//!
//! A notification can be lost — the listening connection drops, or the key was announced
//! between a waiter's claim and its subscription. The second is closed by remembering when
//! each key was last announced: a waiter whose claim was sent before that instant returns at
//! once. The first is what the engine's backstop poll is for; and when the listener
//! reconnects it wakes every waiter, since anything may have settled meanwhile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, NoTls};
use tollgate::store::Key;

/// The longest prefix of an encoded key a notification carries, in characters: payloads must
/// be shorter than 8,000 bytes, and a character takes up to 4 (at 4,000 characters, a key
/// of emoji failed the whole statement, so its result was never stored). Two keys sharing
/// the prefix only cost a spurious wake-up.
pub(crate) const PAYLOAD_CHARS: usize = 1_999;
/// Announcements remembered before the old ones are forgotten.
const REMEMBERED: usize = 4_096;
/// Sent to every waiter when the listener (re)connects: anything may have settled.
const EVERYTHING: &str = "";

/// The listening connection's task and what it shares with waiters.
pub(crate) struct Listener {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    listening: AtomicBool,
    announced: broadcast::Sender<Arc<str>>,
    last: Mutex<HashMap<Arc<str>, Instant>>,
}

impl Listener {
    /// Starts listening on `channel` with a connection made from `config`, reconnecting with
    /// backoff for as long as the listener lives.
    pub(crate) fn start(config: tokio_postgres::Config, channel: String) -> Self {
        let shared = Arc::new(Shared {
            listening: AtomicBool::new(false),
            announced: broadcast::channel(1_024).0,
            last: Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn(listen(config, channel, Arc::clone(&shared)));
        Listener { shared, task }
    }

    /// Whether the connection is up and listening.
    pub(crate) fn is_listening(&self) -> bool {
        self.shared.listening.load(Ordering::SeqCst)
    }

    /// Resolves when `key` is announced after `since` (or was already), or after `within`.
    pub(crate) async fn settled(&self, key: &Key, since: Instant, within: Duration) {
        let wanted = payload(key);
        let mut announced = self.shared.announced.subscribe();
        if self.shared.announced_since(&wanted, since) {
            return;
        }
        let wait = async {
            loop {
                match announced.recv().await {
                    Ok(key) if *key == *wanted || &*key == EVERYTHING => return,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        let _ = tokio::time::timeout(within, wait).await;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    fn announced_since(&self, key: &str, since: Instant) -> bool {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.get(key).is_some_and(|at| *at >= since)
    }

    fn announce(&self, key: &str) {
        let key: Arc<str> = key.into();
        {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.len() >= REMEMBERED {
                let old = Instant::now() - Duration::from_secs(10);
                last.retain(|_, at| *at >= old);
                if last.len() >= REMEMBERED {
                    last.clear(); // a waiter that needed one falls back on its backstop poll
                }
            }
            last.insert(Arc::clone(&key), Instant::now());
        }
        let _ = self.announced.send(key);
    }
}

/// The payload announcing `key`: the first [`PAYLOAD_CHARS`] characters of its encoding, as
/// the statements send it (`left(encoded, PAYLOAD_CHARS)`).
fn payload(key: &Key) -> String {
    key.encode().chars().take(PAYLOAD_CHARS).collect()
}

async fn listen(config: tokio_postgres::Config, channel: String, shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen_once(&config, &channel, &shared).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => tracing::warn!(error = %e, "tollgate-postgres: listener connection failed"),
        }
        shared.listening.store(false, Ordering::SeqCst);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One listening connection, until it drops.
async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    shared: &Shared,
) -> Result<(), tokio_postgres::Error> {
    let connect = tokio::time::timeout(Duration::from_secs(5), config.connect(NoTls));
    let Ok(connected) = connect.await else {
        return Ok(());
    };
    let (client, mut connection) = connected?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {channel}");
    let listen = client.batch_execute(&statement);
    let mut listen = std::pin::pin!(listen);
    // The connection must be driven while the LISTEN is answered.
    loop {
        tokio::select! {
            done = &mut listen => { done?; break; }
            message = messages.next() => match message {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
    shared.listening.store(true, Ordering::SeqCst);
    shared.announce(EVERYTHING);
    while let Some(message) = messages.next().await {
        if let AsyncMessage::Notification(n) = message? {
            shared.announce(n.payload());
        }
    }
    Ok(())
}
