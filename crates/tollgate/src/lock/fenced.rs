//! The fenced SQL write every SQL backend runs: one statement, the fence in the write and in
//! its condition. Backends differ only in how parameters are written ([`Placeholders`]).

use std::error::Error as StdError;
use std::fmt;

/// How a backend's SQL names its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placeholders {
    /// `?1`, `?2`, … (SQLite).
    Question,
    /// `$1`, `$2`, … (PostgreSQL).
    Dollar,
}

impl Placeholders {
    fn nth(self, n: usize) -> String {
        match self {
            Placeholders::Question => format!("?{n}"),
            Placeholders::Dollar => format!("${n}"),
        }
    }
}

/// Why a fenced statement cannot be written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FencedSqlError {
    /// A table or column name is not a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`): names are
    /// spliced into the SQL, so nothing else is accepted.
    InvalidIdentifier(String),
    /// No column to set was given.
    NothingToSet,
}

impl fmt::Display for FencedSqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FencedSqlError::InvalidIdentifier(name) => {
                write!(f, "invalid sql identifier {name:?}")
            }
            FencedSqlError::NothingToSet => f.write_str("a fenced update sets no column"),
        }
    }
}

impl StdError for FencedSqlError {}

/// The fenced update of one row: `set_columns` as parameters 1…n, then the fence (n + 1) and
/// the id (n + 2):
///
/// ```sql
/// UPDATE "table" SET "c1" = ?1, …, "fence_col" = ?f WHERE "id_col" = ?id AND "fence_col" <= ?f
/// ```
///
/// The comparison is `<=`, not `<`: a holder may write the same row many times under one
/// fence, while a replaced holder's fence is strictly lower than its successor's, so once the
/// successor wrote, every stale write matches no row.
///
/// # Errors
/// [`FencedSqlError::InvalidIdentifier`] for a name that is not a plain identifier,
/// [`FencedSqlError::NothingToSet`] for an empty `set_columns`.
///
/// ```
/// use tollgate::lock::{Placeholders, fenced_update_sql};
///
/// let sql = fenced_update_sql("wallets", "id", "fence", &["balance"], Placeholders::Dollar);
/// assert_eq!(
///     sql.as_deref(),
///     Ok("UPDATE \"wallets\" SET \"balance\" = $1, \"fence\" = $2 \
///         WHERE \"id\" = $3 AND \"fence\" <= $2")
/// );
/// ```
pub fn fenced_update_sql(
    table: &str,
    id_col: &str,
    fence_col: &str,
    set_columns: &[&str],
    placeholders: Placeholders,
) -> Result<String, FencedSqlError> {
    if set_columns.is_empty() {
        return Err(FencedSqlError::NothingToSet);
    }
    for name in [table, id_col, fence_col].iter().chain(set_columns) {
        identifier(name)?;
    }
    let p = |n| placeholders.nth(n);
    let (f, id) = (p(set_columns.len() + 1), p(set_columns.len() + 2));
    let sets: Vec<String> = (1..)
        .zip(set_columns)
        .map(|(i, column)| format!("\"{column}\" = {}", p(i)))
        .collect();
    Ok(format!(
        "UPDATE \"{table}\" SET {}, \"{fence_col}\" = {f} \
         WHERE \"{id_col}\" = {id} AND \"{fence_col}\" <= {f}",
        sets.join(", ")
    ))
}

fn identifier(name: &str) -> Result<(), FencedSqlError> {
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    match plain {
        true => Ok(()),
        false => Err(FencedSqlError::InvalidIdentifier(name.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_carries_the_fence_into_the_write_and_its_condition() {
        let sql = fenced_update_sql(
            "wallets",
            "id",
            "fence",
            &["balance", "note"],
            Placeholders::Question,
        );
        assert_eq!(
            sql.as_deref(),
            Ok(
                "UPDATE \"wallets\" SET \"balance\" = ?1, \"note\" = ?2, \"fence\" = ?3 \
                WHERE \"id\" = ?4 AND \"fence\" <= ?3"
            )
        );
    }

    #[test]
    fn names_that_are_not_plain_identifiers_are_rejected() {
        for bad in ["", "1x", "a b", "x\"; DROP TABLE t; --", "é"] {
            let sql = fenced_update_sql("t", "id", "fence", &[bad], Placeholders::Dollar);
            assert_eq!(sql, Err(FencedSqlError::InvalidIdentifier(bad.to_string())));
        }
        let none = fenced_update_sql("t", "id", "fence", &[], Placeholders::Dollar);
        assert_eq!(none, Err(FencedSqlError::NothingToSet));
    }
}
