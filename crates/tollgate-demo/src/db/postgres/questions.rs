//! Interview questions saved for signed-in users (S4): written by the outbox's worker, once per
//! effect key.

use tollgate_postgres::tokio_postgres::{self, GenericClient};

use super::PgDb;
use crate::db::error::DbError;
use crate::db::model::SavedQuestions;
use crate::db::now_ms;

/// Saves `questions` under the effect key `key`, once: a second save of the same key changes
/// nothing and returns `false`.
pub(super) async fn save(
    db: &PgDb,
    key: &str,
    user: &str,
    role: &str,
    questions: &[String],
) -> Result<bool, DbError> {
    db.bounded(async {
        let client = db.client().await?;
        insert(&**client, key, user, role, questions)
            .await
            .map_err(|e| db.pg(&e))
    })
    .await
}

/// The insert of [`save`], on any client (the naive path runs it in its transaction).
pub(super) async fn insert(
    client: &impl GenericClient,
    key: &str,
    user: &str,
    role: &str,
    questions: &[String],
) -> Result<bool, tokio_postgres::Error> {
    let text = serde_json::to_string(questions).unwrap_or_else(|_| "[]".to_owned());
    let inserted = client
        .execute(
            "INSERT INTO tollgate_demo.interview_questions
                 (effect_key, user_id, role, questions, created_ms)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (effect_key) DO NOTHING",
            &[&key, &user, &role, &text, &now_ms()],
        )
        .await?;
    Ok(inserted == 1)
}

/// The interview questions saved for `user`, oldest first.
pub(super) async fn of_user(db: &PgDb, user: &str) -> Result<Vec<SavedQuestions>, DbError> {
    let rows = db
        .query(
            "SELECT role, questions, created_ms FROM tollgate_demo.interview_questions
             WHERE user_id = $1 ORDER BY created_ms, effect_key",
            &[&user],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let text: String = row.get(1);
            let questions = serde_json::from_str(&text)
                .map_err(|e| DbError::Other(format!("stored questions are not JSON: {e}")))?;
            Ok(SavedQuestions {
                role: row.get(0),
                questions,
                created_ms: row.get(2),
            })
        })
        .collect()
}
