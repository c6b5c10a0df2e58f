//! The store conformance suite on [`PostgresStore`], unchanged from every other backend:
//! `cargo test -p tollgate-postgres --test conformance` lists one test per case. One
//! throw-away server for the binary; each case gets a schema of its own; every handle is a
//! store with its own pool and listener, and all share one [`PinnedTime`] as the store's time
//! (the server's clock cannot be moved).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use tollgate_postgres::{PinnedTime, PostgresStore};
use tollgate_testkit::Backend;

/// A fresh schema on the binary's server.
struct PostgresBackend {
    schema: String,
    time: PinnedTime,
}

impl Backend for PostgresBackend {
    type Store = PostgresStore;

    async fn connect(&self) -> PostgresStore {
        let server = support::shared_server().await;
        support::store(server, &self.schema, Some(&self.time)).await
    }

    async fn advance(&self, by: Duration) {
        self.time.advance(by);
    }
}

async fn postgres() -> PostgresBackend {
    support::shared_server().await;
    PostgresBackend {
        schema: support::fresh_schema(),
        time: PinnedTime::new(),
    }
}

tollgate_testkit::conformance!(postgres);
