//! Where the service keeps its exactly-once records and its outbox: the database it runs on
//! (SQLite or PostgreSQL), or — for the exactly-once records only — Redis
//! (`--once-store redis://…`). One enum per role, each implementing the library's trait by
//! handing every call to the backend it holds, so the routes, the `once` engine and the
//! tower layers are written once.

use std::time::Duration;

use tokio::time::Instant;
use tollgate::once::{ClaimOutcome, ClaimRequest, Record, Resolution, Store};
use tollgate::outbox::{
    Claimed, Completion, DeadLetter, Effect, EffectId, EffectRecord, Outbox, OutboxStats,
};
use tollgate::store::{Key, Owner, Settle, StoreError, Token};
use tollgate_postgres::{PgOutbox, PostgresStore};
use tollgate_redis::RedisStore;
use tollgate_sqlite::{SqliteOutbox, SqliteStore};

/// The store of the service's exactly-once records (daily reports, idempotent purchases).
#[derive(Clone, Debug)]
pub enum ServiceStore {
    /// In the service's SQLite database.
    Sqlite(SqliteStore),
    /// In the service's PostgreSQL database.
    Postgres(PostgresStore),
    /// On a Redis server shared by the instances.
    Redis(RedisStore),
}

impl ServiceStore {
    /// The backend's name, for logs: `sqlite`, `postgres` or `redis`.
    pub fn backend(&self) -> &'static str {
        match self {
            ServiceStore::Sqlite(_) => "sqlite",
            ServiceStore::Postgres(_) => "postgres",
            ServiceStore::Redis(_) => "redis",
        }
    }
}

/// Runs `$e` with `$s` bound to the backend `$self` holds.
macro_rules! each_store {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            ServiceStore::Sqlite($s) => $e,
            ServiceStore::Postgres($s) => $e,
            ServiceStore::Redis($s) => $e,
        }
    };
}

impl Store for ServiceStore {
    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        each_store!(self, s => s.claim(req).await)
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        each_store!(self, s => s.renew(key, token, lease).await)
    }

    async fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        each_store!(self, s => s.complete(key, token, result, retention).await)
    }

    async fn fail(
        &self,
        key: &Key,
        token: Token,
        error: Vec<u8>,
        retryable: bool,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        each_store!(self, s => s.fail(key, token, error, retryable, retention).await)
    }

    async fn resolve(
        &self,
        key: &Key,
        previous: Token,
        resolution: Resolution,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        each_store!(self, s => s.resolve(key, previous, resolution, retention).await)
    }

    async fn read(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        each_store!(self, s => s.read(key).await)
    }

    async fn purge(&self) -> Result<u64, StoreError> {
        each_store!(self, s => s.purge().await)
    }

    fn wakes_waiters(&self) -> bool {
        each_store!(self, s => s.wakes_waiters())
    }

    async fn await_change(&self, key: &Key, since: Instant, within: Duration) {
        each_store!(self, s => s.await_change(key, since, within).await)
    }
}

/// The durable outbox of the service's side effects, in its database.
#[derive(Clone, Debug)]
pub enum ServiceOutbox {
    /// In the SQLite database.
    Sqlite(SqliteOutbox),
    /// In the PostgreSQL database.
    Postgres(PgOutbox),
}

/// Runs `$e` with `$o` bound to the backend `$self` holds.
macro_rules! each_outbox {
    ($self:expr, $o:ident => $e:expr) => {
        match $self {
            ServiceOutbox::Sqlite($o) => $e,
            ServiceOutbox::Postgres($o) => $e,
        }
    };
}

impl Outbox for ServiceOutbox {
    async fn enqueue(&self, effect: Effect) -> Result<EffectId, StoreError> {
        each_outbox!(self, o => o.enqueue(effect).await)
    }

    async fn claim(
        &self,
        worker: Owner,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        each_outbox!(self, o => o.claim(worker, lease, limit).await)
    }

    async fn heartbeat(
        &self,
        id: EffectId,
        token: Token,
        lease: Duration,
    ) -> Result<Settle, StoreError> {
        each_outbox!(self, o => o.heartbeat(id, token, lease).await)
    }

    async fn complete(
        &self,
        id: EffectId,
        token: Token,
        receipt: Vec<u8>,
    ) -> Result<Settle, StoreError> {
        each_outbox!(self, o => o.complete(id, token, receipt).await)
    }

    async fn complete_all(&self, completions: Vec<Completion>) -> Result<Vec<Settle>, StoreError> {
        each_outbox!(self, o => o.complete_all(completions).await)
    }

    async fn retry(
        &self,
        id: EffectId,
        token: Token,
        error: String,
        after: Duration,
    ) -> Result<Settle, StoreError> {
        each_outbox!(self, o => o.retry(id, token, error, after).await)
    }

    async fn dead_letter(
        &self,
        id: EffectId,
        token: Token,
        error: String,
    ) -> Result<Settle, StoreError> {
        each_outbox!(self, o => o.dead_letter(id, token, error).await)
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        each_outbox!(self, o => o.dead_letters(limit).await)
    }

    async fn requeue(&self, id: EffectId) -> Result<bool, StoreError> {
        each_outbox!(self, o => o.requeue(id).await)
    }

    async fn read(&self, id: EffectId) -> Result<Option<EffectRecord>, StoreError> {
        each_outbox!(self, o => o.read(id).await)
    }

    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        each_outbox!(self, o => o.stats().await)
    }
}
