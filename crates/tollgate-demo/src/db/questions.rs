//! Interview questions saved for signed-in users (S4): written by the outbox's worker, once per
//! effect key.

use serde::Serialize;
use tollgate_sqlite::rusqlite::{self, Connection, params};

use super::{Db, DbError, now_ms};

/// A saved set of interview questions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SavedQuestions {
    /// The role they are for.
    pub role: String,
    /// The questions.
    pub questions: Vec<String>,
    /// When they were saved, in milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// Saves `questions` under the effect key `key`, once: a second save of the same key changes
/// nothing and returns `false`.
///
/// # Errors
/// A database failure.
pub fn save_questions(
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

impl Db {
    /// The interview questions saved for `user`, oldest first.
    ///
    /// # Errors
    /// A database failure.
    pub async fn saved_questions(&self, user: &str) -> Result<Vec<SavedQuestions>, DbError> {
        let user = user.to_owned();
        self.read(move |conn| {
            let mut select = conn.prepare(
                "SELECT role, questions, created_ms FROM interview_questions
                 WHERE user_id = ?1 ORDER BY created_ms, effect_key",
            )?;
            let rows = select.query_map(params![user], |row| {
                let text: String = row.get(1)?;
                let questions = serde_json::from_str(&text).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        1,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })?;
                Ok(SavedQuestions {
                    role: row.get(0)?,
                    questions,
                    created_ms: row.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}
