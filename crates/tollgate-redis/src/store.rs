//! [`RedisStore`]: exactly-once records on Redis, one Lua script per operation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::{ScriptInvocation, Value};
use tollgate::once::{ClaimOutcome, ClaimRequest, OnExpired, Record, Resolution, Store};
use tollgate::store::{Key, Settle, StoreError, Token};

use crate::builder::Builder;
use crate::codec;
use crate::conn::{Conn, Target};
use crate::keys::Prefix;
use crate::scripts::{CLAIM_SCRIPT, FINISH_SCRIPT, PURGE_SCRIPT, READ_SCRIPT, RENEW_SCRIPT};
use crate::time::ManualTime;
use crate::wake::Wakeups;

/// How many keys one `SCAN` step of a purge asks for.
const SCAN_COUNT: usize = 500;

/// A [`Store`] on a Redis server or a Redis Cluster; see the [crate](crate) docs.
///
/// Clones share one reconnecting connection (multiplexed: concurrent calls are pipelined on
/// it) and one pub/sub subscriber for waiters.
#[derive(Clone, Debug)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) conn: Conn,
    pub(crate) prefix: Prefix,
    pub(crate) timeout: Duration,
    pub(crate) lapsed_retention: Duration,
    pub(crate) expiry_grace: Duration,
    pub(crate) manual_time: Option<ManualTime>,
    pub(crate) wakeups: Wakeups,
}

/// The longest duration sent to the scripts, in ms: 2^50 ms, about 35,700 years. Longer ones
/// (`Duration::MAX` for "keep forever") are cut to it, so that a sum of two stays exact in
/// Lua's doubles and far inside what `PX` and `PEXPIRE` accept (past `i64`, `%d` would turn
/// it negative and `PEXPIRE` would delete the key at once).
pub(crate) const MAX_MS: u64 = 1 << 50;

pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).map_or(MAX_MS, |ms| ms.min(MAX_MS))
}

impl RedisStore {
    /// Connects to the server at `url` (`redis://host:port/db`) with the default options:
    /// [`Durability::Fsync`](crate::Durability::Fsync) required, 3 s timeout.
    pub async fn connect(url: impl Into<String>) -> Result<RedisStore, StoreError> {
        Self::builder(url).connect().await
    }

    /// Options for the server at `url`.
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder::new(Target::Single(url.into()))
    }

    /// Options for a Redis Cluster reached through any of `nodes` (`redis://host:port`).
    pub fn cluster<I, S>(nodes: I) -> Builder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Builder::new(Target::Cluster(nodes.into_iter().map(Into::into).collect()))
    }

    /// The `run_id` of every primary (`INFO server`), by node (the node is empty for a single
    /// server). Redis draws a new one at every start: with no persistence, a changed `run_id`
    /// means every record of that server is gone (see the crate docs, durability).
    pub async fn server_run_ids(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.inner
            .conn
            .server_info(self.inner.timeout)
            .await?
            .into_iter()
            .map(|(node, info)| {
                let run_id = crate::conn::info_field(&info, "run_id")
                    .ok_or_else(|| crate::error::corrupt("INFO server without run_id"))?;
                Ok((node, run_id.to_owned()))
            })
            .collect()
    }

    /// The store's time for a script's `ARGV[1]`: empty (the server's `TIME`) unless a test
    /// set a [`ManualTime`].
    pub(crate) fn now_arg(&self) -> String {
        match &self.inner.manual_time {
            Some(time) => time.now().0.to_string(),
            None => String::new(),
        }
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
        what: &str,
    ) -> Result<T, StoreError> {
        self.inner
            .conn
            .script(invocation, self.inner.timeout, what)
            .await
    }

    async fn settled(&self, accepted: i64) -> Result<Settle, StoreError> {
        Ok(if accepted == 1 {
            Settle::Accepted
        } else {
            Settle::Fenced
        })
    }

    /// Runs the finish script: `state` `c` or `f`, `resolve` to settle only an unknown
    /// attempt.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        key: &Key,
        token: Token,
        state: &str,
        payload: Vec<u8>,
        retryable: bool,
        retention: Duration,
        resolve: bool,
    ) -> Result<Settle, StoreError> {
        let mut call = FINISH_SCRIPT.key(self.inner.prefix.record(key));
        call.arg(self.now_arg())
            .arg(token.owner.0.to_string())
            .arg(token.fence.0)
            .arg(state)
            .arg(payload)
            .arg(if retryable { "1" } else { "0" })
            .arg(ms(retention))
            .arg(ms(self.inner.expiry_grace))
            .arg(if resolve { "1" } else { "0" })
            .arg(self.inner.prefix.channel());
        let accepted: i64 = self.run(&call, "settle").await?;
        self.settled(accepted).await
    }

    async fn purge_node(&self, node: &str) -> Result<u64, StoreError> {
        let (conn, timeout) = (&self.inner.conn, self.inner.timeout);
        let pattern = self.inner.prefix.pattern();
        let (mut cursor, mut purged) = (0_u64, 0_u64);
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, keys): (u64, Vec<Vec<u8>>) =
                conn.on_node(node, &scan, timeout, "SCAN").await?;
            for key in keys {
                let mut call = PURGE_SCRIPT.key(key);
                call.arg(self.now_arg());
                let removed: u64 = self.run(&call, "purge").await?;
                purged += removed;
            }
            if next == 0 {
                return Ok(purged);
            }
            cursor = next;
        }
    }
}

impl Store for RedisStore {
    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        let (mode, from_owner, from_fence) = match req.on_expired {
            OnExpired::TakeOver => ("t", String::new(), String::new()),
            OnExpired::MarkUnknown => ("u", String::new(), String::new()),
            OnExpired::TakeOverFrom(from) => {
                ("f", from.owner.0.to_string(), from.fence.0.to_string())
            }
        };
        let waiting_for = req.waiting_for.map(|f| f.0.to_string()).unwrap_or_default();
        let mut call = CLAIM_SCRIPT.key(self.inner.prefix.record(&req.key));
        call.arg(self.now_arg())
            .arg(req.fingerprint.as_bytes())
            .arg(req.owner.0.to_string())
            .arg(ms(req.lease))
            .arg(mode)
            .arg(from_owner)
            .arg(from_fence)
            .arg(waiting_for)
            .arg(ms(self.inner.lapsed_retention));
        let reply: Vec<Value> = self.run(&call, "claim").await?;
        codec::claim_outcome(reply, req.owner)
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        let mut call = RENEW_SCRIPT.key(self.inner.prefix.record(key));
        call.arg(self.now_arg())
            .arg(token.owner.0.to_string())
            .arg(token.fence.0)
            .arg(ms(lease))
            .arg(ms(self.inner.lapsed_retention));
        let accepted: i64 = self.run(&call, "renew").await?;
        self.settled(accepted).await
    }

    async fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        self.finish(key, token, "c", result, false, retention, false)
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
        self.finish(key, token, "f", error, retryable, retention, false)
            .await
    }

    async fn resolve(
        &self,
        key: &Key,
        previous: Token,
        resolution: Resolution,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        let (state, payload, retryable) = match resolution {
            Resolution::Completed { result } => ("c", result, false),
            Resolution::Failed { error, retryable } => ("f", error, retryable),
        };
        self.finish(key, previous, state, payload, retryable, retention, true)
            .await
    }

    async fn read(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        let call = READ_SCRIPT.key(self.inner.prefix.record(key));
        let values: HashMap<String, Vec<u8>> = self.run(&call, "read").await?;
        codec::record(values)
    }

    async fn purge(&self) -> Result<u64, StoreError> {
        let nodes = self
            .inner
            .conn
            .on_primaries(&redis::cmd("PING"), self.inner.timeout, "PING")
            .await?;
        let mut purged = 0;
        for (node, _) in nodes {
            purged += self.purge_node(&node).await?;
        }
        Ok(purged)
    }

    /// Returns when the holder's finish is published on the store's channel, or after
    /// `within`. Waiters still poll with the engine's backoff ([`Store::wakes_waiters`] is
    /// `false`): a message published between the claim and the wait is not replayed, so the
    /// wake-up only shortens a pause.
    async fn await_change(&self, key: &Key, _since: tokio::time::Instant, within: Duration) {
        let record = self.inner.prefix.record(key);
        self.inner.wakeups.wait(&record, within).await;
    }
}
