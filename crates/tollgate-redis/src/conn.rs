//! One connection type over a single server or a cluster: scripts, commands and per-node
//! scans, every call bounded by the store's timeout.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::{Client, Cmd, FromRedisValue, RedisResult, ScriptInvocation, Value};
use tollgate::store::{StoreError, StoreErrorKind};

use crate::error::{store_error, timed_out};

/// Where the store's records live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server (or a primary behind a proxy).
    Single(String),
    /// A Redis Cluster, reached through any of these nodes.
    Cluster(Vec<String>),
}

/// A reconnecting connection: redis-rs's [`ConnectionManager`] for one server, its cluster
/// connection (slot-routed, redirect-following) for a cluster. Clones share it.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

/// Bounds `call` by `timeout`, mapping its error and the timeout onto [`StoreError`]s.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    what: &str,
    call: impl Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(store_error),
        Err(_) => Err(timed_out(what, timeout)),
    }
}

impl Conn {
    /// Connects to `target`: the first connection is made (and fails) within `timeout`.
    pub(crate) async fn open(target: &Target, timeout: Duration) -> Result<Conn, StoreError> {
        match target {
            Target::Single(url) => {
                let client = Client::open(url.as_str()).map_err(store_error)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(timeout / 4);
                let manager = ConnectionManager::new_with_config(client, config);
                bounded(timeout, "connect", manager).await.map(Conn::Single)
            }
            Target::Cluster(nodes) => {
                let client = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .build()
                    .map_err(store_error)?;
                let connect = client.get_async_connection();
                bounded(timeout, "connect", connect)
                    .await
                    .map(Conn::Cluster)
            }
        }
    }

    /// Runs a prepared script (`EVALSHA`, loading it on `NOSCRIPT`).
    pub(crate) async fn script<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
        timeout: Duration,
        what: &str,
    ) -> Result<T, StoreError> {
        match self.clone() {
            Conn::Single(mut c) => bounded(timeout, what, invocation.invoke_async(&mut c)).await,
            Conn::Cluster(mut c) => bounded(timeout, what, invocation.invoke_async(&mut c)).await,
        }
    }

    /// Runs one command, routed by its key (or to any node).
    pub(crate) async fn command<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        timeout: Duration,
        what: &str,
    ) -> Result<T, StoreError> {
        match self.clone() {
            Conn::Single(mut c) => bounded(timeout, what, cmd.query_async(&mut c)).await,
            Conn::Cluster(mut c) => bounded(timeout, what, cmd.query_async(&mut c)).await,
        }
    }

    /// Runs `cmd` on every primary: `(node, reply)` pairs (one, unnamed, on a single server).
    pub(crate) async fn on_primaries(
        &self,
        cmd: &Cmd,
        timeout: Duration,
        what: &str,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        match self.clone() {
            Conn::Single(mut c) => {
                let reply = bounded(timeout, what, cmd.query_async(&mut c)).await?;
                Ok(vec![(String::new(), reply)])
            }
            Conn::Cluster(mut c) => {
                let all = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let reply = bounded(timeout, what, c.route_command(cmd.clone(), all)).await?;
                let map: Vec<(String, Value)> =
                    FromRedisValue::from_redis_value(reply).map_err(|e| store_error(e.into()))?;
                Ok(map)
            }
        }
    }

    /// `INFO server` of every primary, by node (see [`Conn::on_primaries`]).
    pub(crate) async fn server_info(
        &self,
        timeout: Duration,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("server");
        let replies = self.on_primaries(&cmd, timeout, "INFO").await?;
        replies
            .into_iter()
            .map(|(node, reply)| {
                let info: String =
                    FromRedisValue::from_redis_value(reply).map_err(|e| store_error(e.into()))?;
                Ok((node, info))
            })
            .collect()
    }

    /// Refuses a server (any primary) older than Redis 7.0: the claim script's `SET … NX GET`
    /// needs it.
    pub(crate) async fn require_redis_7(&self, timeout: Duration) -> Result<(), StoreError> {
        for (node, info) in self.server_info(timeout).await? {
            let version = info_field(&info, "redis_version").unwrap_or("unknown");
            let major = version
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok());
            if major.is_none_or(|m| m < 7) {
                let node = if node.is_empty() {
                    String::new()
                } else {
                    format!(" {node}")
                };
                return Err(StoreError::msg(
                    StoreErrorKind::Rejected,
                    format!(
                        "redis server{node} is version {version}; tollgate-redis needs Redis 7.0 \
                         or later (its claim uses SET … NX GET)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Runs `cmd` on the node `node` (as named by [`Conn::on_primaries`]).
    pub(crate) async fn on_node<T: FromRedisValue>(
        &self,
        node: &str,
        cmd: &Cmd,
        timeout: Duration,
        what: &str,
    ) -> Result<T, StoreError> {
        let Conn::Cluster(mut c) = self.clone() else {
            return self.command(cmd, timeout, what).await;
        };
        let (host, port) = node.rsplit_once(':').unwrap_or((node, ""));
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: host.to_owned(),
            port: port.parse().unwrap_or(0),
        });
        let reply = bounded(timeout, what, c.route_command(cmd.clone(), route)).await?;
        T::from_redis_value(reply).map_err(|e| store_error(e.into()))
    }
}

/// The value of `name` in an `INFO` reply (`name:value` lines).
pub(crate) fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.trim()
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_found_by_their_whole_name() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_version_extra:x\r\nrun_id:ab\r\n";
        assert_eq!(info_field(info, "redis_version"), Some("7.0.15"));
        assert_eq!(info_field(info, "run_id"), Some("ab"));
        assert_eq!(info_field(info, "run"), None);
    }
}
