//! Letters: stored one by one, read back per user and day.

use super::PgDb;
use crate::db::error::DbError;
use crate::db::model::Letter;
use crate::validate::Day;

/// Stores a letter; its id.
pub(super) async fn insert(
    db: &PgDb,
    user: &str,
    day: &str,
    text: &str,
    created_ms: i64,
) -> Result<i64, DbError> {
    let rows = db
        .query(
            "INSERT INTO tollgate_demo.letters (user_id, day, body, created_ms)
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[&user, &day, &text, &created_ms],
        )
        .await?;
    rows.first()
        .map(|row| row.get(0))
        .ok_or_else(|| DbError::Other("the letter's insert returned no id".into()))
}

/// The letters of a day, oldest first.
pub(super) async fn of_day(db: &PgDb, user: &str, date: Day) -> Result<Vec<Letter>, DbError> {
    let day = date.to_string();
    let rows = db
        .query(
            "SELECT id, body, created_ms FROM tollgate_demo.letters
             WHERE user_id = $1 AND day = $2 ORDER BY id",
            &[&user, &day],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Letter {
            id: row.get(0),
            user: user.to_owned(),
            date,
            text: row.get(1),
            created_ms: row.get(2),
        })
        .collect())
}
