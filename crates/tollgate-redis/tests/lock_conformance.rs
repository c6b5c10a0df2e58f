//! The lock conformance suite on [`RedisLockStore`](tollgate_redis::RedisLockStore), unchanged from the memory and SQLite
//! stores: `cargo test -p tollgate-redis --test lock_conformance` lists one test per case. One
//! throw-away `redis-server` serves the binary; every case gets a key prefix of its own and a
//! manual store time shared by its handles (each handle its own connection).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{RedisBackend, RedisLocks, shared_server};

async fn redis() -> RedisLocks {
    let server = tokio::task::spawn_blocking(shared_server).await.unwrap();
    RedisLocks(RedisBackend::on(server))
}

tollgate_testkit::lock_conformance!(redis);
