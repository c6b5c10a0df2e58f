//! [`fenced_update`]: a write to the protected resource that a stale lock holder cannot make.

use std::error::Error as StdError;
use std::fmt;

use rusqlite::{Connection, ToSql};
use tollgate::lock::{self, FencedSqlError, Placeholders};
use tollgate::store::Fence;

/// Why a [`fenced_update`] could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum FencedUpdateError {
    /// A table or column name is not a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`): names are
    /// spliced into the SQL, so nothing else is accepted.
    InvalidIdentifier(String),
    /// No column to set was given.
    NothingToSet,
    /// SQLite failed.
    Sql(rusqlite::Error),
}

impl fmt::Display for FencedUpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FencedUpdateError::InvalidIdentifier(name) => {
                write!(f, "invalid sql identifier {name:?}")
            }
            FencedUpdateError::NothingToSet => f.write_str("a fenced update sets no column"),
            FencedUpdateError::Sql(e) => write!(f, "fenced update failed: {e}"),
        }
    }
}

impl StdError for FencedUpdateError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            FencedUpdateError::Sql(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for FencedUpdateError {
    fn from(e: rusqlite::Error) -> Self {
        FencedUpdateError::Sql(e)
    }
}

/// Updates the row `id_col = id` of `table` with `set` **only if** the lock holder's `fence`
/// is not older than the fence last written to the row, and stores `fence` in `fence_col`:
///
/// ```sql
/// UPDATE table SET c1 = ?, …, fence_col = ?f WHERE id_col = ?id AND fence_col <= ?f
/// ```
///
/// Returns `true` when the row was updated (`id_col` should be unique), `false` when it was not: a holder with a higher
/// fence already wrote it (this holder was replaced — it must stop), or no such row exists.
/// The comparison is `<=`, not `<`, so a holder may write the same row many times under one
/// fence; a replaced holder's fence is strictly lower than its successor's, so once the
/// successor wrote, every stale write is rejected. Give `fence_col` the default `0`.
///
/// Pass a [`Transaction`](rusqlite::Transaction) (it derefs to a [`Connection`]) to make the
/// fenced write part of a larger one.
///
/// # Errors
/// [`FencedUpdateError::InvalidIdentifier`] for a table or column name that is not a plain
/// identifier, [`FencedUpdateError::NothingToSet`] for an empty `set`, and SQLite's error.
///
/// ```
/// use tollgate_sqlite::fenced_update;
/// use tollgate_sqlite::rusqlite::Connection;
/// use tollgate_sqlite::tollgate::store::Fence;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db = Connection::open_in_memory()?;
/// db.execute_batch("CREATE TABLE wallets (id INTEGER PRIMARY KEY, balance INTEGER, \
///                   fence INTEGER NOT NULL DEFAULT 0); INSERT INTO wallets (id, balance) VALUES (1, 1000);")?;
/// // B (fence 2) wrote first; A (fence 1) was paused past its lease and wakes up.
/// assert!(fenced_update(&db, "wallets", "id", &1, "fence", Fence(2), &[("balance", &0)])?);
/// assert!(!fenced_update(&db, "wallets", "id", &1, "fence", Fence(1), &[("balance", &1000)])?);
/// let balance: i64 = db.query_row("SELECT balance FROM wallets WHERE id = 1", [], |r| r.get(0))?;
/// assert_eq!(balance, 0);
/// # Ok(())
/// # }
/// ```
pub fn fenced_update(
    conn: &Connection,
    table: &str,
    id_col: &str,
    id: &dyn ToSql,
    fence_col: &str,
    fence: Fence,
    set: &[(&str, &dyn ToSql)],
) -> Result<bool, FencedUpdateError> {
    let columns: Vec<&str> = set.iter().map(|(column, _)| *column).collect();
    let sql = fenced_update_sql(table, id_col, fence_col, &columns)?;
    let fence = i64::try_from(fence.0).unwrap_or(i64::MAX);
    let mut values: Vec<&dyn ToSql> = set.iter().map(|(_, value)| *value).collect();
    values.extend([&fence as &dyn ToSql, id]);
    Ok(conn.execute(&sql, values.as_slice())? > 0)
}

/// The statement [`fenced_update`] runs: `set_columns` as `?1 …`, then the fence and the id
/// (written by [`tollgate::lock::fenced_update_sql`], shared with the PostgreSQL backend).
///
/// # Errors
/// As [`fenced_update`], for the names.
pub fn fenced_update_sql(
    table: &str,
    id_col: &str,
    fence_col: &str,
    set_columns: &[&str],
) -> Result<String, FencedUpdateError> {
    let sql = lock::fenced_update_sql(
        table,
        id_col,
        fence_col,
        set_columns,
        Placeholders::Question,
    );
    sql.map_err(|e| match e {
        FencedSqlError::InvalidIdentifier(name) => FencedUpdateError::InvalidIdentifier(name),
        _ => FencedUpdateError::NothingToSet,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The statement itself is tested where it is written (`tollgate::lock::fenced_update_sql`);
    // here, that SQLite's placeholders and error variants are the ones this crate documents.
    #[test]
    fn the_sqlite_statement_uses_question_placeholders_and_this_crates_errors() {
        let sql = fenced_update_sql("wallets", "id", "fence", &["balance"]);
        assert_eq!(
            sql.ok().as_deref(),
            Some(
                "UPDATE \"wallets\" SET \"balance\" = ?1, \"fence\" = ?2 WHERE \"id\" = ?3 AND \"fence\" <= ?2"
            )
        );
        let bad = fenced_update_sql("t", "id", "fence", &["a b"]);
        assert!(matches!(bad, Err(FencedUpdateError::InvalidIdentifier(ref n)) if n == "a b"));
        let none = fenced_update_sql("t", "id", "fence", &[]);
        assert!(matches!(none, Err(FencedUpdateError::NothingToSet)));
    }
}
