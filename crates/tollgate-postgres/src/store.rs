//! [`PostgresStore`]: exactly-once records in a PostgreSQL schema, shared by every instance
//! of a service.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use tollgate::once::{
    ClaimOutcome, ClaimRequest, Fingerprint, OnExpired, Record, RecordState, Resolution, Store,
};
use tollgate::store::{Fence, Key, Owner, Settle, StoreError, StoreErrorKind, Timestamp, Token};

use crate::error::{self, corrupt, db};
use crate::notify::Listener;
use crate::schema::{self, SchemaName};
use crate::sql::Statements;
use crate::time::{PinnedTime, ms, pinned};

/// Parameters of one statement.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// The parameters every fenced statement starts with — `$1`–`$4` the holder's key, owner and
/// fence, `$5` the pinned time — and the encoded key its `pg_notify` announces.
pub(crate) struct Fenced<'k> {
    namespace: &'k str,
    key: &'k str,
    owner: Vec<u8>,
    fence: i64,
    pinned: Option<i64>,
    pub(crate) encoded: String,
}

impl<'k> Fenced<'k> {
    /// The holder `token` of `key` on `store`.
    pub(crate) fn new(store: &PostgresStore, key: &'k Key, token: Token) -> Self {
        Fenced {
            namespace: key.namespace(),
            key: key.key(),
            owner: owner_bytes(token.owner).to_vec(),
            fence: fence(token.fence),
            pinned: store.pinned(),
            encoded: key.encode(),
        }
    }

    /// `$1`–`$5`, then `rest` from `$6` on.
    pub(crate) fn params<'a>(
        &'a self,
        rest: &[&'a (dyn ToSql + Sync)],
    ) -> Vec<&'a (dyn ToSql + Sync)> {
        let mut params: Vec<&'a (dyn ToSql + Sync)> = vec![
            &self.namespace,
            &self.key,
            &self.owner,
            &self.fence,
            &self.pinned,
        ];
        params.extend_from_slice(rest);
        params
    }
}

/// A [`Store`] in PostgreSQL: every instance of a service pointed at one database shares its
/// records; see the [crate](crate) docs for the guarantees. Clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) schema: SchemaName,
    pub(crate) sql: Statements,
    pub(crate) timeout: Duration,
    pub(crate) pinned: Option<PinnedTime>,
    pub(crate) listener: Option<Listener>,
}

/// Options of a [`PostgresStore`]; from [`PostgresStore::builder`].
#[must_use = "a builder does nothing until `open` is called"]
pub struct Builder {
    pool: Pool,
    schema: String,
    timeout: Duration,
    pinned: Option<PinnedTime>,
    listen: Option<tokio_postgres::Config>,
    migrate: bool,
}

impl Builder {
    /// The schema the tables live in (default `tollgate`): `[a-z_][a-z0-9_]*`, at most 40
    /// bytes. Created by the migrations when missing.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The bound on every call, waiting for a pooled connection included (default 5 s): past
    /// it the call fails with [`StoreErrorKind::TimedOut`] (or [`StoreErrorKind::Busy`] when
    /// every connection of the pool was in use), never hangs. A pool handed in should have a
    /// `wait_timeout` shorter than this (as [`pool`] sets it) for an exhausted pool to be
    /// reported as such rather than as a call that timed out.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Wakes waiters with `LISTEN/NOTIFY`: the store keeps one connection of its own, made
    /// with `config` (outside the pool, which cannot hand out a connection's notifications),
    /// listening for settled keys. Without it, waiters poll.
    pub fn listen(mut self, config: tokio_postgres::Config) -> Self {
        self.listen = Some(config);
        self
    }

    /// **Test hook**: the store reads `time` instead of the server's clock (see
    /// [`PinnedTime`]). Never in production.
    pub fn pinned_time(mut self, time: PinnedTime) -> Self {
        self.pinned = Some(time);
        self
    }

    /// Whether `open` applies the migrations (default `true`). When `false`, `open` checks
    /// that they were applied and fails with [`StoreErrorKind::Rejected`] otherwise.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Applies (or checks) the migrations and starts the listener, if any.
    pub async fn open(self) -> Result<PostgresStore, StoreError> {
        let schema = SchemaName::new(&self.schema)?;
        let timeout = self.timeout;
        let within = tokio::time::timeout(timeout, async {
            let mut client = self.pool.get().await.map_err(error::pool)?;
            match self.migrate {
                true => schema::migrate(&mut client, &schema).await.map(drop),
                false => check_migrated(&client, &schema).await,
            }
        });
        within
            .await
            .map_err(|_| error::timed_out("the migrations", timeout))??;
        let listener = self
            .listen
            .map(|config| Listener::start(config, schema.channel()));
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool: self.pool,
                sql: Statements::new(&schema),
                schema,
                timeout,
                pinned: self.pinned,
                listener,
            }),
        })
    }
}

async fn check_migrated(client: &Object, schema: &SchemaName) -> Result<(), StoreError> {
    let applied = schema::applied(&***client, schema).await?;
    if applied >= schema::LATEST {
        return Ok(());
    }
    Err(StoreError::msg(
        StoreErrorKind::Rejected,
        format!(
            "schema {schema} is at migration {applied} of {}: run the migrations",
            schema::LATEST
        ),
    ))
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`) with a pool of its own (16
    /// connections, no TLS), applies the migrations to schema `tollgate` and listens for
    /// settled keys. For other options (a pool of yours, a schema, a timeout), see
    /// [`PostgresStore::builder`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(db)?;
        let timeout = Duration::from_secs(5);
        let pool = pool(config.clone(), 16, timeout)?;
        Self::builder(pool).listen(config).open().await
    }

    /// Options for a store on `pool` — the service's own pool can be handed in (the store
    /// only borrows a connection per call).
    pub fn builder(pool: Pool) -> Builder {
        Builder {
            pool,
            schema: "tollgate".to_owned(),
            timeout: Duration::from_secs(5),
            pinned: None,
            listen: None,
            migrate: true,
        }
    }

    /// The pool the store borrows connections from.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        self.inner.schema.as_str()
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Runs `f` within the store's timeout.
    pub(crate) async fn bounded<R>(
        &self,
        what: &'static str,
        f: impl Future<Output = Result<R, StoreError>>,
    ) -> Result<R, StoreError> {
        let timeout = self.inner.timeout;
        match tokio::time::timeout(timeout, f).await {
            Ok(done) => done,
            Err(_) => Err(error::timed_out(what, timeout)),
        }
    }

    /// A pooled connection; the caller bounds the wait.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.inner.pool.get().await.map_err(error::pool)
    }

    /// One prepared statement (cached per connection: one round trip once prepared).
    pub(crate) async fn query(
        &self,
        what: &'static str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        self.bounded(what, async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await.map_err(db)?;
            client.query(&statement, params).await.map_err(db)
        })
        .await
    }

    /// A fenced write: accepted when it changed the holder's row.
    async fn settle(
        &self,
        what: &'static str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Settle, StoreError> {
        match self.query(what, sql, params).await?.is_empty() {
            true => Ok(Settle::Fenced),
            false => Ok(Settle::Accepted),
        }
    }

    pub(crate) fn pinned(&self) -> Option<i64> {
        pinned(self.inner.pinned.as_ref())
    }
}

/// A pool of at most `size` connections made with `config` (no TLS), that gives up waiting
/// for a free connection, or for a new one, after `timeout`.
pub fn pool(
    config: tokio_postgres::Config,
    size: usize,
    timeout: Duration,
) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(|e| StoreError::msg(StoreErrorKind::Rejected, e.to_string()))
}

impl Store for PostgresStore {
    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        let (on_expired, from) = match req.on_expired {
            OnExpired::TakeOver => (0_i16, None),
            OnExpired::MarkUnknown => (1, None),
            OnExpired::TakeOverFrom(token) => (2, Some(token)),
        };
        let from_owner = from.map(|t| owner_bytes(t.owner).to_vec());
        let from_fence = from.map(|t| fence(t.fence));
        let waiting_for = req.waiting_for.map(fence);
        let rows = self
            .query(
                "a claim",
                &self.inner.sql.claim,
                &[
                    &req.key.namespace(),
                    &req.key.key(),
                    &req.fingerprint.as_bytes(),
                    &owner_bytes(req.owner).as_slice(),
                    &ms(req.lease),
                    &on_expired,
                    &from_owner,
                    &from_fence,
                    &waiting_for,
                    &self.pinned(),
                ],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| corrupt("the claim answered no row"))?;
        claim_outcome(row)
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        let held = Fenced::new(self, key, token);
        let millis = ms(lease);
        let params = held.params(&[&millis]);
        self.settle("a renewal", &self.inner.sql.renew, &params)
            .await
    }

    async fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        let held = Fenced::new(self, key, token);
        let millis = ms(retention);
        let params = held.params(&[&result, &held.encoded, &millis]);
        self.settle("a completion", &self.inner.sql.complete, &params)
            .await
    }

    async fn fail(
        &self,
        key: &Key,
        token: Token,
        error: Vec<u8>,
        retryable: bool,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        let held = Fenced::new(self, key, token);
        let millis = ms(retention);
        let params = held.params(&[&error, &held.encoded, &millis, &retryable]);
        self.settle("a failure", &self.inner.sql.fail, &params)
            .await
    }

    async fn resolve(
        &self,
        key: &Key,
        previous: Token,
        resolution: Resolution,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        let (payload, retryable) = match resolution {
            Resolution::Completed { result } => (result, None),
            Resolution::Failed { error, retryable } => (error, Some(retryable)),
        };
        let held = Fenced::new(self, key, previous);
        let millis = ms(retention);
        let params = held.params(&[&payload, &held.encoded, &millis, &retryable]);
        self.settle("a resolution", &self.inner.sql.resolve, &params)
            .await
    }

    async fn read(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        let params: &Params<'_> = &[&key.namespace(), &key.key()];
        let rows = self.query("a read", &self.inner.sql.read, params).await?;
        rows.first().map(record).transpose()
    }

    async fn purge(&self) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let batch = self
                .bounded("a purge", async {
                    let client = self.client().await?;
                    let statement = client
                        .prepare_cached(&self.inner.sql.purge)
                        .await
                        .map_err(db)?;
                    client
                        .execute(&statement, &[&self.pinned()])
                        .await
                        .map_err(db)
                })
                .await?;
            removed += batch;
            if batch < crate::sql::PURGE_BATCH as u64 {
                return Ok(removed);
            }
        }
    }

    fn wakes_waiters(&self) -> bool {
        self.inner
            .listener
            .as_ref()
            .is_some_and(Listener::is_listening)
    }

    async fn await_change(&self, key: &Key, since: tokio::time::Instant, within: Duration) {
        match &self.inner.listener {
            Some(listener) => listener.settled(key, since, within).await,
            None => tokio::time::sleep(within).await,
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.schema)
            .field("timeout", &self.inner.timeout)
            .field("pool", &self.inner.pool.status())
            .field("listening", &self.wakes_waiters())
            .field(
                "pinned_time",
                &self.inner.pinned.as_ref().map(PinnedTime::now),
            )
            .finish()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("schema", &self.schema)
            .field("timeout", &self.timeout)
            .field("migrate", &self.migrate)
            .field("listen", &self.listen.is_some())
            .finish()
    }
}

fn claim_outcome(row: &Row) -> Result<ClaimOutcome, StoreError> {
    let kind: i16 = row.try_get(0).map_err(db)?;
    let fence_at = Fence(u64::try_from(row.try_get::<_, i64>(1).map_err(db)?).unwrap_or(0));
    let holder = |row: &Row| -> Result<Token, StoreError> {
        Ok(Token {
            owner: owner_of(row.try_get(2).map_err(db)?)?,
            fence: fence_at,
        })
    };
    let payload = |row: &Row| -> Result<Vec<u8>, StoreError> { row.try_get(4).map_err(db) };
    Ok(match kind {
        0 => ClaimOutcome::Acquired {
            token: holder(row)?,
            took_over: match row.try_get::<_, Option<&[u8]>>(6).map_err(db)? {
                Some(previous) => Some(Token {
                    owner: owner_of(previous)?,
                    fence: Fence(fence_at.0.saturating_sub(1)),
                }),
                None => None,
            },
        },
        1 => ClaimOutcome::InProgress {
            holder: holder(row)?,
            lease_until: timestamp(row.try_get(3).map_err(db)?),
        },
        2 => ClaimOutcome::Completed {
            result: payload(row)?,
        },
        3 => ClaimOutcome::Failed {
            error: payload(row)?,
            retryable: row.try_get(5).map_err(db)?,
        },
        4 => ClaimOutcome::Mismatch,
        5 => ClaimOutcome::Unknown {
            previous: holder(row)?,
        },
        other => return Err(corrupt(format!("unknown claim outcome {other}"))),
    })
}

/// A row of `RECORD` columns as a record.
pub(crate) fn record(row: &Row) -> Result<Record, StoreError> {
    let owner = || owner_of(row.try_get(3).map_err(db)?);
    let state = match row.try_get::<_, i16>(2).map_err(db)? {
        0 => RecordState::InProgress {
            owner: owner()?,
            lease_until: timestamp(row.try_get(4).map_err(db)?),
        },
        1 => RecordState::Completed {
            result: row.try_get(5).map_err(db)?,
        },
        2 => RecordState::Failed {
            error: row.try_get(5).map_err(db)?,
            retryable: row.try_get(6).map_err(db)?,
        },
        3 => RecordState::Unknown { owner: owner()? },
        other => return Err(corrupt(format!("unknown record state {other}"))),
    };
    let expires_at: Option<i64> = row.try_get(7).map_err(db)?;
    Ok(Record {
        fingerprint: Fingerprint::new(row.try_get::<_, Vec<u8>>(0).map_err(db)?),
        fence: Fence(u64::try_from(row.try_get::<_, i64>(1).map_err(db)?).unwrap_or(0)),
        state,
        expires_at: expires_at.map(timestamp),
    })
}

pub(crate) fn owner_bytes(owner: Owner) -> [u8; 16] {
    owner.0.to_be_bytes()
}

pub(crate) fn owner_of(bytes: &[u8]) -> Result<Owner, StoreError> {
    let bytes: [u8; 16] = bytes
        .try_into()
        .map_err(|_| corrupt(format!("an owner of {} bytes, not 16", bytes.len())))?;
    Ok(Owner(u128::from_be_bytes(bytes)))
}

pub(crate) fn fence(fence: Fence) -> i64 {
    i64::try_from(fence.0).unwrap_or(i64::MAX)
}

pub(crate) fn timestamp(ms: i64) -> Timestamp {
    Timestamp(u64::try_from(ms).unwrap_or(0))
}
