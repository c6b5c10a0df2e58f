//! The store conformance suite, unchanged, on a 3-primary Redis Cluster on loopback: records
//! spread over the primaries (every script touches one hash-tagged key), purge scans every
//! primary, and the 1,000-task races run through the cluster client's slot routing. One
//! cluster serves the binary (see [`shared_cluster`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::RedisBackend;
use common::cluster::shared_cluster;
use tollgate_redis::ManualTime;
use tollgate_redis::tollgate::store::Timestamp;

async fn cluster() -> RedisBackend {
    let cluster = tokio::task::spawn_blocking(shared_cluster).await.unwrap();
    let urls = cluster.urls();
    RedisBackend {
        urls,
        cluster: true,
        prefix: common::fresh_prefix(),
        time: ManualTime::new(Timestamp::system_now()),
        _keep: Arc::new(()),
    }
}

tollgate_testkit::conformance!(cluster);
