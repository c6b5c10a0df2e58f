//! [`Builder`]: the options of a [`RedisStore`].

use std::sync::Arc;
use std::time::Duration;

use tollgate::store::StoreError;

use crate::conn::{Conn, Target};
use crate::durability::Durability;
use crate::keys::{DEFAULT_PREFIX, Prefix};
use crate::store::{Inner, RedisStore};
use crate::time::ManualTime;
use crate::wake::Wakeups;

/// Options of a [`RedisStore`]; from [`RedisStore::builder`] or [`RedisStore::cluster`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct Builder {
    target: Target,
    prefix: String,
    timeout: Duration,
    durability: Durability,
    lapsed_retention: Duration,
    expiry_grace: Duration,
    manual_time: Option<ManualTime>,
}

impl Builder {
    pub(crate) fn new(target: Target) -> Self {
        Builder {
            target,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: Duration::from_secs(3),
            durability: Durability::default(),
            lapsed_retention: Duration::from_secs(24 * 60 * 60),
            expiry_grace: Duration::from_secs(60),
            manual_time: None,
        }
    }

    /// The prefix of every key the store writes (default `tollgate:once:`); stores with
    /// different prefixes share a server without seeing each other's records. It may not
    /// contain `{` or `}` (the records' hash tag follows it).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long any one call (connecting included) may take before it fails with
    /// [`StoreErrorKind::TimedOut`](tollgate::store::StoreErrorKind::TimedOut) (default 3 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The durability the server must give (default [`Durability::Fsync`]), checked on
    /// connect: a server whose settings contradict it is refused.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How long an attempt whose holder stopped renewing is kept on the server after its
    /// lease ran out — in progress, or marked unknown — before Redis deletes it (default
    /// 24 h). Until then claims see it (take it over, or report it unknown); after, the key
    /// is free and the next claim runs the work with fence 1. Keep it longer than the time it
    /// takes you to reconcile an unknown outcome.
    pub fn lapsed_retention(mut self, lapsed_retention: Duration) -> Self {
        self.lapsed_retention = lapsed_retention;
        self
    }

    /// How long after its retention (judged by the store's time, exactly) Redis deletes a
    /// finished record (default 60 s). Until then a waiter of that very attempt still
    /// receives its failure (a retryable failure is kept for no retention at all).
    pub fn expiry_grace(mut self, expiry_grace: Duration) -> Self {
        self.expiry_grace = expiry_grace;
        self
    }

    /// **Test hook**: the store's time is `time` instead of the server's `TIME` (see
    /// [`ManualTime`]). Never in production.
    pub fn manual_time(mut self, time: ManualTime) -> Self {
        self.manual_time = Some(time);
        self
    }

    /// Connects (within the timeout), checks the server's version (Redis 7.0 or later) and
    /// durability, and returns the store.
    /// Scripts are loaded on first use and again whenever the server lost them (`NOSCRIPT`).
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let prefix = Prefix::new(self.prefix)?;
        let conn = Conn::open(&self.target, self.timeout).await?;
        conn.require_redis_7(self.timeout).await?;
        self.durability.check(&conn, self.timeout).await?;
        let wakeups = Wakeups::new(&self.target, prefix.channel(), self.timeout);
        Ok(RedisStore {
            inner: Arc::new(Inner {
                conn,
                prefix,
                timeout: self.timeout,
                lapsed_retention: self.lapsed_retention,
                expiry_grace: self.expiry_grace,
                manual_time: self.manual_time,
                wakeups,
            }),
        })
    }
}
