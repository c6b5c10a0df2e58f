//! Daily reports and the analyses of their letters.

use tollgate_sqlite::rusqlite::{self, Connection, OptionalExtension, params};

use super::super::model::{Report, StoredAnalysis};
use crate::db::now_ms;
use crate::validate::Day;
use crate::wire::AnalyzeResponse;

/// Inserts the report of one user's day and one analysis per letter; `None` when a report for
/// that day exists already (nothing is written). Run inside the caller's transaction.
///
/// # Errors
/// A database failure, or an analysis naming a letter that is not one of that day's.
pub fn insert_report(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    day: &str,
    answer: &AnalyzeResponse,
) -> rusqlite::Result<Option<Report>> {
    if of_day(tx, user, day)?.is_some() {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO reports (user_id, day, summary, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![user, day, answer.summary, now_ms()],
    )?;
    let report_id = tx.last_insert_rowid();
    let mut insert = tx.prepare(
        "INSERT INTO analyses (report_id, letter_id, mood, summary)
         SELECT ?1, id, ?3, ?4 FROM letters WHERE id = ?2 AND user_id = ?5 AND day = ?6",
    )?;
    for a in &answer.analyses {
        let params = params![report_id, a.letter_id, a.mood, a.summary, user, day];
        if insert.execute(params)? != 1 {
            let message = crate::db::foreign_letter(a.letter_id, user, day);
            return Err(rusqlite::Error::ToSqlConversionFailure(message.into()));
        }
    }
    drop(insert);
    of_day(tx, user, day)
}

/// Reports of the day stored by the guarded and by the naive path.
pub(super) fn count(conn: &Connection, user: &str, day: &str) -> rusqlite::Result<(u64, u64)> {
    let count = |table: &str| -> rusqlite::Result<u64> {
        conn.query_row(
            &format!("SELECT count(*) FROM {table} WHERE user_id = ?1 AND day = ?2"),
            params![user, day],
            |row| row.get(0),
        )
    };
    Ok((count("reports")?, count("naive_reports")?))
}

/// The report of the day, if stored.
pub(super) fn of_day(conn: &Connection, user: &str, day: &str) -> rusqlite::Result<Option<Report>> {
    let head = conn
        .query_row(
            "SELECT id, summary, created_ms FROM reports WHERE user_id = ?1 AND day = ?2",
            params![user, day],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((id, summary, created_ms)) = head else {
        return Ok(None);
    };
    let date = Day::parse(day).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let mut stmt = conn.prepare_cached(
        "SELECT letter_id, mood, summary FROM analyses WHERE report_id = ?1 ORDER BY letter_id",
    )?;
    let analyses = stmt
        .query_map([id], |row| {
            Ok(StoredAnalysis {
                letter_id: row.get(0)?,
                mood: row.get(1)?,
                summary: row.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(Report {
        id,
        user: user.to_owned(),
        date,
        summary,
        analyses,
        created_ms,
    }))
}
