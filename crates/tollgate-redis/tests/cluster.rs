//! The store conformance suite, unchanged, on a 3-primary Redis Cluster on loopback: records
//! spread over the primaries (every script touches one hash-tagged key), purge scans every
//! primary, and the 1,000-task races run through the cluster client's slot routing. One
//! cluster serves the binary (see [`shared_cluster`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::RedisBackend;

async fn cluster() -> RedisBackend {
    RedisBackend::on_cluster().await
}

tollgate_testkit::conformance!(cluster);
