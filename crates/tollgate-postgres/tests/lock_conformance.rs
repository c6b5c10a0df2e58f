//! The lock conformance suite on [`PgLockStore`], unchanged from the memory and SQLite stores:
//! `cargo test -p tollgate-postgres --test lock_conformance` lists one test per case. One
//! throw-away server for the binary; each case gets a schema of its own; every handle is a
//! store with its own pool, and all share one [`PinnedTime`] as the store's time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use tollgate_postgres::{PgLockStore, PinnedTime};
use tollgate_testkit::LockBackend;

/// A fresh schema on the binary's server.
struct PgLockBackend {
    schema: String,
    time: PinnedTime,
}

impl LockBackend for PgLockBackend {
    type Store = PgLockStore;

    async fn connect(&self) -> PgLockStore {
        let server = support::shared_server().await;
        PgLockStore::new(support::store(server, &self.schema, Some(&self.time)).await)
    }

    async fn advance(&self, by: Duration) {
        self.time.advance(by);
    }
}

async fn postgres() -> PgLockBackend {
    support::shared_server().await;
    PgLockBackend {
        schema: support::fresh_schema(),
        time: PinnedTime::new(),
    }
}

tollgate_testkit::lock_conformance!(postgres);
