//! The lock conformance suite on [`SqliteLockStore`], unchanged from the memory store:
//! `cargo test -p tollgate-sqlite --test lock_conformance` lists one test per case. Every
//! handle is its own connection to one database file; all share one manual clock as the
//! store's time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tempfile::TempDir;
use tollgate_sqlite::tollgate::clock::{Clock, ManualClock};
use tollgate_sqlite::tollgate::store::Timeline;
use tollgate_sqlite::{SqliteLockStore, SqliteStore};
use tollgate_testkit::LockBackend;

/// One database file in a temporary directory; every handle is a new connection to it.
struct SqliteLockBackend {
    dir: TempDir,
    clock: ManualClock,
    timeline: Timeline,
}

impl LockBackend for SqliteLockBackend {
    type Store = SqliteLockStore;

    async fn connect(&self) -> SqliteLockStore {
        let store = SqliteStore::builder(self.dir.path().join("locks.db"))
            .timeline(self.timeline.clone())
            .open()
            .await
            .unwrap();
        SqliteLockStore::new(store).await.unwrap()
    }

    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

async fn sqlite() -> SqliteLockBackend {
    let clock = ManualClock::new();
    SqliteLockBackend {
        dir: tempfile::tempdir().unwrap(),
        timeline: Timeline::from_clock(Clock::Manual(clock.clone())),
        clock,
    }
}

tollgate_testkit::lock_conformance!(sqlite);
