//! The store conformance suite on [`SqliteStore`], unchanged from every other backend:
//! `cargo test -p tollgate-sqlite --test conformance` lists one test per case. Every handle is
//! its own connection to one database file, and all share one manual clock as the store's
//! time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tempfile::TempDir;
use tollgate_sqlite::SqliteStore;
use tollgate_sqlite::tollgate::clock::{Clock, ManualClock};
use tollgate_sqlite::tollgate::store::Timeline;
use tollgate_testkit::Backend;

/// One database file in a temporary directory; every handle is a new connection to it.
struct SqliteBackend {
    dir: TempDir,
    clock: ManualClock,
    timeline: Timeline,
}

impl Backend for SqliteBackend {
    type Store = SqliteStore;

    async fn connect(&self) -> SqliteStore {
        SqliteStore::builder(self.dir.path().join("once.db"))
            .timeline(self.timeline.clone())
            .open()
            .await
            .unwrap()
    }

    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

async fn sqlite() -> SqliteBackend {
    let clock = ManualClock::new();
    SqliteBackend {
        dir: tempfile::tempdir().unwrap(),
        timeline: Timeline::from_clock(Clock::Manual(clock.clone())),
        clock,
    }
}

tollgate_testkit::conformance!(sqlite);
