//! Interview questions saved for signed-in users (S4): written by the outbox's worker, once per
//! effect key.

use tollgate_sqlite::rusqlite::{self, Connection, params};

use super::super::model::SavedQuestions;
use crate::db::now_ms;

/// Saves `questions` under the effect key `key`, once: a second save of the same key changes
/// nothing and returns `false`.
pub(super) fn save(
    conn: &Connection,
    key: &str,
    user: &str,
    role: &str,
    questions: &[String],
) -> rusqlite::Result<bool> {
    let text = serde_json::to_string(questions)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO interview_questions (effect_key, user_id, role, questions, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key, user, role, text, now_ms()],
    )?;
    Ok(inserted == 1)
}

/// The interview questions saved for `user`, oldest first.
pub(super) fn of_user(conn: &Connection, user: &str) -> rusqlite::Result<Vec<SavedQuestions>> {
    let mut select = conn.prepare(
        "SELECT role, questions, created_ms FROM interview_questions
         WHERE user_id = ?1 ORDER BY created_ms, effect_key",
    )?;
    let rows = select.query_map(params![user], |row| {
        let text: String = row.get(1)?;
        let questions = serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into())
        })?;
        Ok(SavedQuestions {
            role: row.get(0)?,
            questions,
            created_ms: row.get(2)?,
        })
    })?;
    rows.collect()
}
