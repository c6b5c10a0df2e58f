//! Letters: stored one by one, read back per user and day.

use tollgate_sqlite::rusqlite::{self, Connection, params};

use super::super::model::Letter;
use crate::validate::Day;

/// Stores a letter; its id.
pub(super) fn insert(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    day: &str,
    text: &str,
    created_ms: i64,
) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO letters (user_id, day, body, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![user, day, text, created_ms],
    )?;
    Ok(tx.last_insert_rowid())
}

/// The letters of a day, oldest first.
pub(super) fn of_day(conn: &Connection, user: &str, day: &str) -> rusqlite::Result<Vec<Letter>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, body, created_ms, day FROM letters WHERE user_id = ?1 AND day = ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![user, day], |row| {
        let day: String = row.get(3)?;
        let date = Day::parse(&day).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
        })?;
        Ok(Letter {
            id: row.get(0)?,
            user: user.to_owned(),
            date,
            text: row.get(1)?,
            created_ms: row.get(2)?,
        })
    })?;
    rows.collect()
}
