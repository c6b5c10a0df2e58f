//! [`fenced_update`]: a write to the protected rows that a replaced lock holder cannot make.

use std::error::Error as StdError;
use std::fmt;

use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tollgate::lock::{FencedSqlError, Placeholders, fenced_update_sql};
use tollgate::store::Fence;

/// Why a [`fenced_update`] could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum FencedUpdateError {
    /// The statement cannot be written: a name that is not a plain identifier, or nothing to
    /// set.
    Statement(FencedSqlError),
    /// PostgreSQL failed.
    Db(tokio_postgres::Error),
}

impl fmt::Display for FencedUpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FencedUpdateError::Statement(e) => write!(f, "fenced update: {e}"),
            FencedUpdateError::Db(e) => write!(f, "fenced update failed: {e}"),
        }
    }
}

impl StdError for FencedUpdateError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            FencedUpdateError::Statement(e) => Some(e),
            FencedUpdateError::Db(e) => Some(e),
        }
    }
}

/// Updates the row `id_col = id` of `table` with `set` **only if** the lock holder's `fence` is
/// not older than the fence last written to the row, and stores `fence` in `fence_col` — one
/// statement, the same as `tollgate_sqlite::fenced_update`:
///
/// ```sql
/// UPDATE "table" SET "c1" = $1, …, "fence_col" = $f WHERE "id_col" = $id AND "fence_col" <= $f
/// ```
///
/// Returns `true` when the row was updated, `false` when it was not: a holder with a higher
/// fence already wrote it (this holder was replaced — it must stop), or no such row exists.
/// `<=` rather than `<` lets a holder write the row many times under its fence; a replaced
/// holder's fence is strictly lower than its successor's, so once the successor wrote, every
/// stale write changes nothing. Give `fence_col` the type `bigint` and the default `0`; names
/// are plain identifiers (`[A-Za-z_][A-Za-z0-9_]*`, written quoted: use lowercase). Pass a
/// pooled client or a [`Transaction`](tokio_postgres::Transaction) to make the write part of a
/// larger one.
///
/// # Errors
/// [`FencedUpdateError::Statement`] for a bad name or an empty `set`, and PostgreSQL's error.
///
/// ```no_run
/// use tollgate_postgres::fenced_update;
/// use tollgate_postgres::tollgate::store::Fence;
/// use tollgate_postgres::tokio_postgres::Client;
///
/// # async fn example(db: &Client) -> Result<(), Box<dyn std::error::Error>> {
/// db.batch_execute("CREATE TABLE wallets (id bigint PRIMARY KEY, balance bigint NOT NULL, \
///                   fence bigint NOT NULL DEFAULT 0); INSERT INTO wallets VALUES (1, 1000, 0)").await?;
/// // B (fence 2) wrote first; A (fence 1) was paused past its lease and wakes up.
/// assert!(fenced_update(db, "wallets", "id", &1_i64, "fence", Fence(2), &[("balance", &0_i64)]).await?);
/// assert!(!fenced_update(db, "wallets", "id", &1_i64, "fence", Fence(1), &[("balance", &1500_i64)]).await?);
/// # Ok(())
/// # }
/// ```
/// The same code runs as the test `s2_lock_fencing::fenced_update_accepts_the_holder_and_rejects_an_older_fence_postgres`.
pub async fn fenced_update(
    client: &impl GenericClient,
    table: &str,
    id_col: &str,
    id: &(dyn ToSql + Sync),
    fence_col: &str,
    fence: Fence,
    set: &[(&str, &(dyn ToSql + Sync))],
) -> Result<bool, FencedUpdateError> {
    let columns: Vec<&str> = set.iter().map(|(column, _)| *column).collect();
    let sql = fenced_update_sql(table, id_col, fence_col, &columns, Placeholders::Dollar)
        .map_err(FencedUpdateError::Statement)?;
    let fence = i64::try_from(fence.0).unwrap_or(i64::MAX);
    let mut values: Vec<&(dyn ToSql + Sync)> = set.iter().map(|(_, value)| *value).collect();
    values.extend([&fence as &(dyn ToSql + Sync), id]);
    let changed = client
        .execute(sql.as_str(), &values)
        .await
        .map_err(FencedUpdateError::Db)?;
    Ok(changed > 0)
}
