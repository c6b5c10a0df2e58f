//! The lock conformance suite, unchanged, on a 3-primary Redis Cluster on loopback: every lock
//! script touches the one hash-tagged key of its lock, so locks spread over the primaries and
//! the races run through the cluster client's slot routing. One cluster serves the binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{RedisBackend, RedisLocks};

async fn cluster() -> RedisLocks {
    RedisLocks(RedisBackend::on_cluster().await)
}

tollgate_testkit::lock_conformance!(cluster);
