//! The store conformance suite on [`RedisStore`], unchanged from every other backend:
//! `cargo test -p tollgate-redis --test conformance` lists one test per case. One throw-away
//! `redis-server` serves the whole binary; every case gets a key prefix of its own and a
//! manual store time shared by its handles (each handle its own connection).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{RedisBackend, shared_server};

async fn redis() -> RedisBackend {
    let server = tokio::task::spawn_blocking(shared_server).await.unwrap();
    RedisBackend::on(server)
}

tollgate_testkit::conformance!(redis);
