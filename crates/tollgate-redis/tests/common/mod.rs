//! Shared by the test files: one throw-away `redis-server` per test binary (alive while any
//! test holds it), a fresh key prefix per backend, and the backend the conformance suite
//! drives.
#![allow(dead_code, unreachable_pub)]

pub mod cluster;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tollgate_redis::tollgate::store::Timestamp;
use tollgate_redis::{Durability, ManualTime, RedisStore};
use tollgate_testkit::Backend;
use tollgate_testkit::server::RedisServer;

/// A server shared by the tests of one binary that run at the same time; the last test to
/// drop its handle kills it (a `static` is never dropped, so it cannot own the server).
pub fn shared_server() -> Arc<RedisServer> {
    static SHARED: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = shared.upgrade() {
        return server;
    }
    let server = Arc::new(RedisServer::start().unwrap_or_else(|e| panic!("{e}")));
    *shared = Arc::downgrade(&server);
    server
}

/// A key prefix no other backend of this process uses.
pub fn fresh_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("t{}:", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One prefix on a shared server (or cluster), a manual store time shared by every handle.
pub struct RedisBackend {
    pub urls: Vec<String>,
    pub cluster: bool,
    pub prefix: String,
    pub time: ManualTime,
    pub _keep: Arc<dyn Send + Sync>,
}

impl RedisBackend {
    pub fn on(server: Arc<RedisServer>) -> Self {
        RedisBackend {
            urls: vec![server.url()],
            cluster: false,
            prefix: fresh_prefix(),
            time: ManualTime::new(Timestamp::system_now()),
            _keep: server,
        }
    }
}

impl RedisBackend {
    /// A fresh prefix on this binary's shared 3-primary cluster.
    pub async fn on_cluster() -> Self {
        let cluster = tokio::task::spawn_blocking(cluster::shared_cluster)
            .await
            .unwrap();
        RedisBackend {
            urls: cluster.urls(),
            cluster: true,
            prefix: fresh_prefix(),
            time: ManualTime::new(Timestamp::system_now()),
            _keep: Arc::new(()),
        }
    }
}

/// The locks beside a [`RedisBackend`]'s records.
pub struct RedisLocks(pub RedisBackend);

impl tollgate_testkit::LockBackend for RedisLocks {
    type Store = tollgate_redis::RedisLockStore;

    async fn connect(&self) -> tollgate_redis::RedisLockStore {
        tollgate_redis::RedisLockStore::new(self.0.connect().await)
    }

    async fn advance(&self, by: Duration) {
        self.0.advance(by).await;
    }
}

impl Backend for RedisBackend {
    type Store = RedisStore;

    async fn connect(&self) -> RedisStore {
        let builder = if self.cluster {
            RedisStore::cluster(self.urls.clone())
        } else {
            RedisStore::builder(self.urls[0].clone())
        };
        builder
            .prefix(self.prefix.clone())
            .durability(Durability::Unchecked)
            .manual_time(self.time.clone())
            .timeout(Duration::from_secs(10))
            .connect()
            .await
            .unwrap()
    }

    async fn advance(&self, by: Duration) {
        self.time.advance(by);
    }
}

/// The locks on the server at `url`, every call bounded by `timeout`.
pub async fn locks(
    url: &str,
    timeout: Duration,
) -> tollgate_redis::tollgate::lock::Locks<tollgate_redis::RedisLockStore> {
    let store = RedisStore::builder(url)
        .durability(Durability::Unchecked)
        .timeout(timeout)
        .connect()
        .await
        .unwrap();
    tollgate_redis::tollgate::lock::Locks::new(tollgate_redis::RedisLockStore::new(store))
}
