//! The lock conformance suite on [`RedisLockStore`], unchanged from the memory and SQLite
//! stores: `cargo test -p tollgate-redis --test lock_conformance` lists one test per case. One
//! throw-away `redis-server` serves the binary; every case gets a key prefix of its own and a
//! manual store time shared by its handles (each handle its own connection).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{RedisBackend, shared_server};
use tollgate_redis::RedisLockStore;
use tollgate_testkit::{Backend, LockBackend};

/// The locks beside a [`RedisBackend`]'s records.
struct RedisLocks(RedisBackend);

impl LockBackend for RedisLocks {
    type Store = RedisLockStore;

    async fn connect(&self) -> RedisLockStore {
        RedisLockStore::new(self.0.connect().await)
    }

    async fn advance(&self, by: Duration) {
        self.0.advance(by).await;
    }
}

async fn redis() -> RedisLocks {
    let server = tokio::task::spawn_blocking(shared_server).await.unwrap();
    RedisLocks(RedisBackend::on(server))
}

tollgate_testkit::lock_conformance!(redis);
