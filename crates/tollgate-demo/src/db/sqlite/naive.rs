//! The naive paths of S3 and S4 on SQLite — **the original code, bugs included**: a deferred
//! transaction on a pooled connection, held open across the paid LLM call.

use deadpool_sqlite::Object;
use tollgate_sqlite::rusqlite::{self, Connection, params};

use super::SqliteDb;
use crate::db::error::{CodePath, DbError};
use crate::db::model::{Letter, NaiveReport, NaiveSave};
use crate::db::now_ms;
use crate::db::repo::PaidCall;
use crate::validate::Day;
use crate::wire::AnalyzeResponse;

/// A pooled connection with a transaction open on it. One that is dropped before its
/// transaction ended (an error, or the request was cancelled) is taken out of the pool and
/// closed, which rolls the transaction back and releases its locks at once.
struct Held {
    conn: Option<Object>,
    ended: bool,
}

impl Held {
    async fn begin(db: &SqliteDb) -> Result<Held, DbError> {
        let conn = db.pool.get().await.map_err(DbError::pool)?;
        let mut held = Held {
            conn: Some(conn),
            ended: false,
        };
        let begun = held.run(|c| c.execute_batch("BEGIN")).await?;
        begun.map_err(|e| db.classify(CodePath::Naive, &e))?;
        Ok(held)
    }

    /// Runs `f` on the connection; the outer error is a lost connection.
    async fn run<R, F>(&mut self, f: F) -> Result<rusqlite::Result<R>, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let conn = self
            .conn
            .as_ref()
            .ok_or_else(|| DbError::Other("the pooled connection was lost".into()))?;
        conn.interact(move |c| f(c))
            .await
            .map_err(|e| DbError::Other(e.to_string()))
    }

    /// Ends the transaction with `sql` (`COMMIT` or `ROLLBACK`).
    async fn end(mut self, db: &SqliteDb, sql: &'static str) -> Result<(), DbError> {
        let ended = self.run(move |c| c.execute_batch(sql)).await?;
        ended.map_err(|e| db.classify(CodePath::Naive, &e))?;
        self.ended = true;
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let (false, Some(conn)) = (self.ended, self.conn.take()) {
            drop(Object::take(conn));
        }
    }
}

/// S3's original code: check, pay, insert — in one transaction held across the call.
pub(super) async fn report(
    db: &SqliteDb,
    user: &str,
    date: Day,
    call: PaidCall<Vec<Letter>, AnalyzeResponse>,
) -> Result<NaiveReport, DbError> {
    let mut held = Held::begin(db).await?;
    let (u, d) = (user.to_owned(), date.to_string());
    // 1. "Does the report exist?" — inside the transaction.
    let checked = held
        .run(move |c| {
            let exists: bool = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM naive_reports WHERE user_id = ?1 AND day = ?2)",
                params![u, d],
                |row| row.get(0),
            )?;
            Ok((exists, super::letters::of_day(c, &u, &d)?))
        })
        .await?;
    let (exists, letters) = checked.map_err(|e| db.classify(CodePath::Naive, &e))?;
    if exists || letters.is_empty() {
        held.end(db, "ROLLBACK").await?;
        return Ok(if exists {
            NaiveReport::Exists
        } else {
            NaiveReport::NoLetters
        });
    }
    // 2. The paid call, with the transaction and the connection still held.
    let answer = match call(letters).await {
        Ok(answer) => answer,
        Err(e) => return Ok(NaiveReport::CallFailed(e)),
    };
    // 3. Insert the report and its analyses (from a snapshot that may be stale by now).
    let summary = answer.summary.clone();
    let (u, d) = (user.to_owned(), date.to_string());
    let created_ms = now_ms();
    let inserted = held
        .run(move |c| {
            c.execute(
                "INSERT INTO naive_reports (user_id, day, summary, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![u, d, answer.summary, created_ms],
            )?;
            let id = c.last_insert_rowid();
            for a in &answer.analyses {
                c.execute(
                    "INSERT INTO naive_analyses (report_id, letter_id, mood, summary) VALUES (?1, ?2, ?3, ?4)",
                    params![id, a.letter_id, a.mood, a.summary],
                )?;
            }
            Ok(id)
        })
        .await?;
    let id = inserted.map_err(|e| db.classify(CodePath::Naive, &e))?;
    held.end(db, "COMMIT").await?;
    Ok(NaiveReport::Made { id, summary })
}

/// S4's original code: the save in a transaction opened before the call and held across it.
pub(super) async fn save(
    db: &SqliteDb,
    user: &str,
    role: &str,
    call: PaidCall<(), (Vec<String>, bool)>,
) -> Result<NaiveSave, DbError> {
    let mut held = Held::begin(db).await?;
    let (questions, refused) = match call(()).await {
        Ok(asked) => asked,
        Err(e) => return Ok(NaiveSave::CallFailed(e)),
    };
    if refused {
        held.end(db, "ROLLBACK").await?;
        return Ok(NaiveSave::Refused);
    }
    let key = format!("naive/{user}/{:032x}", fastrand::u128(..));
    let (u, r, q) = (user.to_owned(), role.to_owned(), questions.clone());
    let saved = held
        .run(move |c| super::questions::save(c, &key, &u, &r, &q))
        .await?;
    saved.map_err(|e| db.classify(CodePath::Naive, &e))?;
    held.end(db, "COMMIT").await?;
    Ok(NaiveSave::Saved(questions))
}
