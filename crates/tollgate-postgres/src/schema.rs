//! The schema the records live in: its validated name, and the versioned migrations that
//! create it.
//!
//! Migrations run in **one transaction** that first takes a transaction-level advisory lock
//! (`pg_advisory_xact_lock`, released by the commit, so it never leaks through a
//! transaction-pooling proxy): instances starting together apply each version once, in order,
//! and the others wait for that commit, then find nothing left to do. Each applied version is
//! recorded in `<schema>.migrations`.

use std::fmt;

use tokio_postgres::GenericClient;
use tollgate::store::{StoreError, StoreErrorKind};

use crate::error::db;

/// A schema name safe to write into SQL: `[a-z_][a-z0-9_]*`, at most 40 bytes (so the
/// notification channel `<schema>_once_settled` stays within PostgreSQL's 63-byte names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaName(String);

impl SchemaName {
    /// The name, or a [`StoreErrorKind::Rejected`] error saying what is wrong with it.
    pub fn new(name: &str) -> Result<Self, StoreError> {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if first_ok && rest_ok && name.len() <= 40 {
            return Ok(SchemaName(name.to_owned()));
        }
        Err(StoreError::msg(
            StoreErrorKind::Rejected,
            format!("schema name {name:?} is not [a-z_][a-z0-9_]* of at most 40 bytes"),
        ))
    }

    /// The name as written in SQL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `LISTEN`/`NOTIFY` channel on which settled keys are announced.
    pub fn channel(&self) -> String {
        format!("{}_once_settled", self.0)
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`, with `{s}` standing for the
/// schema. Append only: an applied migration is never edited.
const MIGRATIONS: &[&str] = &[V1_RECORDS, V2_CLAIM, V3_VERSIONED, V4_OUTBOX, V5_LOCKS];

/// The records table. Times are milliseconds since the Unix epoch on the store's clock;
/// `state` is 0 in progress, 1 completed, 2 failed, 3 unknown; `taken_from` is the owner the
/// latest claim took a lapsed attempt over from.
const V1_RECORDS: &str = "
CREATE TABLE {s}.once (
    namespace   text     NOT NULL,
    key         text     NOT NULL,
    fingerprint bytea    NOT NULL,
    fence       bigint   NOT NULL,
    state       smallint NOT NULL CHECK (state BETWEEN 0 AND 3),
    owner       bytea,
    lease_until bigint,
    payload     bytea,
    retryable   boolean,
    expires_at  bigint,
    taken_from  bytea,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX once_expires ON {s}.once (expires_at) WHERE expires_at IS NOT NULL;
CREATE FUNCTION {s}.now_ms(pinned bigint) RETURNS bigint LANGUAGE sql VOLATILE AS
    $$ SELECT coalesce(pinned, (extract(epoch FROM clock_timestamp()) * 1000)::bigint) $$;
";

/// The claim: see [`crate::sql`] for why it is a function.
const V2_CLAIM: &str = include_str!("claim.sql");

/// The table behind [`crate::versioned`]: one versioned value per (namespace, key).
const V3_VERSIONED: &str = "
CREATE TABLE {s}.versioned (
    namespace text   NOT NULL,
    key       text   NOT NULL,
    value     bytea  NOT NULL,
    version   bigint NOT NULL,
    PRIMARY KEY (namespace, key)
);
";

/// The table behind [`crate::PgOutbox`]: one row per effect, the shape of
/// [`tollgate::outbox::EffectRecord`]. `state` is 0 pending, 1 in flight, 2 done, 3 dead;
/// times are milliseconds on the store's clock. The partial indexes keep a claim's scan and
/// the dead-letter listing off the done rows.
const V4_OUTBOX: &str = "
CREATE TABLE {s}.outbox (
    id          bigint   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text     NOT NULL,
    namespace   text     NOT NULL,
    key         text     NOT NULL,
    payload     bytea    NOT NULL,
    state       smallint NOT NULL CHECK (state BETWEEN 0 AND 3),
    visible_at  bigint,
    owner       bytea,
    lease_until bigint,
    receipt     bytea,
    attempts    integer  NOT NULL,
    fence       bigint   NOT NULL,
    last_error  text,
    enqueued_at bigint   NOT NULL
);
CREATE INDEX outbox_unapplied ON {s}.outbox (id) WHERE state IN (0, 1);
CREATE INDEX outbox_dead ON {s}.outbox (id) WHERE state = 3;
";

/// The lease table of [`crate::PgLockStore`]: see [`crate::lock_sql`]'s source.
const V5_LOCKS: &str = crate::lock_sql::V5_LOCKS;

/// The latest migration version.
pub const LATEST: i32 = MIGRATIONS.len() as i32;

/// Applies every migration `client`'s database lacks, in one transaction under a
/// transaction-level advisory lock; returns how many were applied.
pub async fn migrate(
    client: &mut deadpool_postgres::Client,
    schema: &SchemaName,
) -> Result<usize, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let lock = "SELECT pg_advisory_xact_lock(hashtextextended('tollgate:migrate:' || $1, 0))";
    tx.execute(lock, &[&schema.as_str()]).await.map_err(db)?;
    let setup = format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.migrations (
             version    integer     PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    );
    tx.batch_execute(&setup).await.map_err(db)?;
    let applied = applied(&*tx, schema).await?;
    let mut count = 0;
    for (version, sql) in (1..).zip(MIGRATIONS) {
        if version <= applied {
            continue;
        }
        tx.batch_execute(&sql.replace("{s}", schema.as_str()))
            .await
            .map_err(db)?;
        let record = format!("INSERT INTO {schema}.migrations (version) VALUES ($1)");
        tx.execute(&record, &[&version]).await.map_err(db)?;
        count += 1;
    }
    tx.commit().await.map_err(db)?;
    if count > 0 {
        tracing::info!(%schema, applied = count, latest = LATEST, "tollgate-postgres: migrated");
    }
    Ok(count)
}

/// The highest version applied to `schema` (0 for none).
pub async fn applied(client: &impl GenericClient, schema: &SchemaName) -> Result<i32, StoreError> {
    let sql = format!("SELECT coalesce(max(version), 0) FROM {schema}.migrations");
    let row = client.query_one(&sql, &[]).await.map_err(db)?;
    row.try_get(0).map_err(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_lowercase_names_are_accepted() {
        assert!(SchemaName::new("tollgate").is_ok());
        assert!(SchemaName::new("_t1").is_ok());
        for bad in ["", "1t", "Tollgate", "a;drop", "a\"b", &"x".repeat(41)] {
            let e = SchemaName::new(bad).unwrap_err();
            assert_eq!(e.kind(), StoreErrorKind::Rejected, "{bad:?}");
        }
        let ok = SchemaName::new("t").unwrap();
        assert_eq!(ok.channel(), "t_once_settled");
    }
}
