//! The naive paths of S3 and S4 on PostgreSQL — **the original code, bugs included**: a
//! transaction on a pooled connection, held open across the paid LLM call. (Dropping a
//! `tokio_postgres` transaction before it ends rolls it back.)

use tollgate_postgres::tokio_postgres;

use super::PgDb;
use crate::db::error::{CodePath, DbError};
use crate::db::model::{Letter, NaiveReport, NaiveSave};
use crate::db::now_ms;
use crate::db::repo::PaidCall;
use crate::validate::Day;
use crate::wire::AnalyzeResponse;

/// S3's original code: check, pay, insert — in one transaction held across the call.
pub(super) async fn report(
    db: &PgDb,
    user: &str,
    date: Day,
    call: PaidCall<Vec<Letter>, AnalyzeResponse>,
) -> Result<NaiveReport, DbError> {
    let fail = |e: tokio_postgres::Error| db.classified(CodePath::Naive, &e);
    let mut client = db.client().await?;
    let tx = client.transaction().await.map_err(fail)?;
    let day = date.to_string();
    // 1. "Does the report exist?" — inside the transaction.
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM tollgate_demo.naive_reports
                            WHERE user_id = $1 AND day = $2)",
            &[&user, &day],
        )
        .await
        .map_err(fail)?
        .get(0);
    if exists {
        return Ok(NaiveReport::Exists);
    }
    let letters: Vec<Letter> = tx
        .query(
            "SELECT id, body, created_ms FROM tollgate_demo.letters
             WHERE user_id = $1 AND day = $2 ORDER BY id",
            &[&user, &day],
        )
        .await
        .map_err(fail)?
        .iter()
        .map(|row| Letter {
            id: row.get(0),
            user: user.to_owned(),
            date,
            text: row.get(1),
            created_ms: row.get(2),
        })
        .collect();
    if letters.is_empty() {
        return Ok(NaiveReport::NoLetters);
    }
    // 2. The paid call, with the transaction and the connection still held.
    let answer = match call(letters).await {
        Ok(answer) => answer,
        Err(e) => return Ok(NaiveReport::CallFailed(e)),
    };
    // 3. Insert the report and its analyses: nothing stops a second one.
    let id: i64 = tx
        .query_one(
            "INSERT INTO tollgate_demo.naive_reports (user_id, day, summary, created_ms)
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[&user, &day, &answer.summary, &now_ms()],
        )
        .await
        .map_err(fail)?
        .get(0);
    for a in &answer.analyses {
        tx.execute(
            "INSERT INTO tollgate_demo.naive_analyses (report_id, letter_id, mood, summary)
             VALUES ($1, $2, $3, $4)",
            &[&id, &a.letter_id, &a.mood, &a.summary],
        )
        .await
        .map_err(fail)?;
    }
    tx.commit().await.map_err(fail)?;
    Ok(NaiveReport::Made {
        id,
        summary: answer.summary,
    })
}

/// S4's original code: the save in a transaction opened before the call and held across it.
pub(super) async fn save(
    db: &PgDb,
    user: &str,
    role: &str,
    call: PaidCall<(), (Vec<String>, bool)>,
) -> Result<NaiveSave, DbError> {
    let fail = |e: tokio_postgres::Error| db.classified(CodePath::Naive, &e);
    let mut client = db.client().await?;
    let tx = client.transaction().await.map_err(fail)?;
    let (questions, refused) = match call(()).await {
        Ok(asked) => asked,
        Err(e) => return Ok(NaiveSave::CallFailed(e)),
    };
    if refused {
        tx.rollback().await.map_err(fail)?;
        return Ok(NaiveSave::Refused);
    }
    let key = format!("naive/{user}/{:032x}", fastrand::u128(..));
    super::questions::insert(&*tx, &key, user, role, &questions)
        .await
        .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    Ok(NaiveSave::Saved(questions))
}
