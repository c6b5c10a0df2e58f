//! What a crash of the server may lose, and the check that the server keeps what was asked.

use std::collections::HashMap;
use std::time::Duration;

use tollgate::store::{StoreError, StoreErrorKind};

use crate::conn::Conn;
use crate::error::DurabilityRefused;

/// The durability a [`RedisStore`](crate::RedisStore) requires of its server(s), checked
/// (`CONFIG GET appendonly appendfsync` on every primary) when it connects. See the crate
/// docs' durability table for what each setting means for exactly-once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `appendonly yes` with `appendfsync always` (the default): the server fsyncs every
    /// write before it answers, so an acknowledged claim or completion survives a SIGKILL or a
    /// power cut of the server.
    #[default]
    Fsync,
    /// `appendonly yes` with `appendfsync everysec` (or `always`): a crash may lose up to
    /// about a second of acknowledged writes.
    EverySecond,
    /// Nothing is checked (a managed Redis that refuses `CONFIG`, a cache-grade deployment, a
    /// test): whatever the server does, a crash may lose every record.
    Unchecked,
}

impl Durability {
    /// The settings this durability needs, in words.
    pub(crate) fn requirement(self) -> &'static str {
        match self {
            Durability::Fsync => "appendonly yes and appendfsync always",
            Durability::EverySecond => "appendonly yes and appendfsync everysec or always",
            Durability::Unchecked => "nothing",
        }
    }

    fn accepts(self, appendonly: &str, appendfsync: &str) -> bool {
        match self {
            Durability::Fsync => appendonly == "yes" && appendfsync == "always",
            Durability::EverySecond => {
                appendonly == "yes" && matches!(appendfsync, "always" | "everysec")
            }
            Durability::Unchecked => true,
        }
    }

    /// Refuses a server (any primary of a cluster) whose settings do not give this durability.
    pub(crate) async fn check(self, conn: &Conn, timeout: Duration) -> Result<(), StoreError> {
        if self == Durability::Unchecked {
            return Ok(());
        }
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("append*");
        let replies = conn
            .on_primaries(&cmd, timeout, "CONFIG GET")
            .await
            .map_err(|e| {
                StoreError::msg(
                    e.kind(),
                    format!(
                        "redis: cannot read the server's persistence settings to check \
                         durability {self:?} ({e}); use Durability::Unchecked only if the \
                         deployment guarantees it otherwise"
                    ),
                )
            })?;
        for (node, reply) in replies {
            let settings: HashMap<String, String> = redis::FromRedisValue::from_redis_value(reply)
                .map_err(|e| {
                    StoreError::new(StoreErrorKind::Corrupt, redis::RedisError::from(e))
                })?;
            let setting = |name: &str| settings.get(name).cloned().unwrap_or_default();
            let (appendonly, appendfsync) = (setting("appendonly"), setting("appendfsync"));
            if !self.accepts(&appendonly, &appendfsync) {
                let refused = DurabilityRefused {
                    asked: self,
                    node,
                    appendonly,
                    appendfsync,
                };
                return Err(StoreError::new(StoreErrorKind::Rejected, refused));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_durability_accepts_exactly_its_settings() {
        let cases = [
            ("yes", "always", [true, true, true]),
            ("yes", "everysec", [false, true, true]),
            ("yes", "no", [false, false, true]),
            ("no", "always", [false, false, true]),
        ];
        for (appendonly, appendfsync, accepted) in cases {
            let got = [
                Durability::Fsync,
                Durability::EverySecond,
                Durability::Unchecked,
            ]
            .map(|d| d.accepts(appendonly, appendfsync));
            assert_eq!(got, accepted, "{appendonly}/{appendfsync}");
        }
    }
}
