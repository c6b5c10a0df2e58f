//! Daily reports and the analyses of their letters.

use tollgate_postgres::tokio_postgres::{self, GenericClient, Transaction};

use super::PgDb;
use crate::db::error::DbError;
use crate::db::model::{Report, StoredAnalysis};
use crate::db::{foreign_letter, now_ms};
use crate::validate::Day;
use crate::wire::AnalyzeResponse;

/// Inserts the report of one user's day and one analysis per letter inside `tx`: `Ok(None)`
/// when a report of that day exists already (nothing is written), `Err(message)` when an
/// analysis names a letter that is not one of that day's (the caller must roll back).
///
/// # Errors
/// A database failure.
pub async fn insert_report(
    tx: &Transaction<'_>,
    user: &str,
    day: &str,
    answer: &AnalyzeResponse,
) -> Result<Result<Option<Report>, String>, tokio_postgres::Error> {
    let inserted = tx
        .query_opt(
            "INSERT INTO tollgate_demo.reports (user_id, day, summary, created_ms)
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, day) DO NOTHING RETURNING id",
            &[&user, &day, &answer.summary, &now_ms()],
        )
        .await?;
    let Some(row) = inserted else {
        return Ok(Ok(None));
    };
    let report_id: i64 = row.get(0);
    let letters: Vec<i64> = answer.analyses.iter().map(|a| a.letter_id).collect();
    let moods: Vec<&str> = answer.analyses.iter().map(|a| a.mood.as_str()).collect();
    let summaries: Vec<&str> = answer.analyses.iter().map(|a| a.summary.as_str()).collect();
    // One statement for every analysis; a letter that is not one of the day's is not joined,
    // so it shows as a missing row.
    let inserted = tx
        .execute(
            "INSERT INTO tollgate_demo.analyses (report_id, letter_id, mood, summary)
             SELECT $1, l.id, a.mood, a.summary
             FROM unnest($2::bigint[], $3::text[], $4::text[]) AS a (letter_id, mood, summary)
             JOIN tollgate_demo.letters l
               ON l.id = a.letter_id AND l.user_id = $5 AND l.day = $6",
            &[&report_id, &letters, &moods, &summaries, &user, &day],
        )
        .await?;
    if inserted != letters.len() as u64 {
        let stored = of_day(tx.client(), user, day).await?;
        let known: Vec<i64> = stored.map_or_else(Vec::new, |r| {
            r.analyses.iter().map(|a| a.letter_id).collect()
        });
        let foreign = letters.iter().find(|id| !known.contains(id)).copied();
        return Ok(Err(foreign_letter(foreign.unwrap_or_default(), user, day)));
    }
    Ok(Ok(of_day(tx.client(), user, day).await?))
}

/// The report of the day, if stored.
pub(super) async fn of_day(
    client: &impl GenericClient,
    user: &str,
    day: &str,
) -> Result<Option<Report>, tokio_postgres::Error> {
    let head = client
        .query_opt(
            "SELECT id, summary, created_ms FROM tollgate_demo.reports
             WHERE user_id = $1 AND day = $2",
            &[&user, &day],
        )
        .await?;
    let Some(head) = head else {
        return Ok(None);
    };
    let Ok(date) = Day::parse(day) else {
        return Ok(None);
    };
    let id: i64 = head.get(0);
    let analyses = client
        .query(
            "SELECT letter_id, mood, summary FROM tollgate_demo.analyses
             WHERE report_id = $1 ORDER BY letter_id",
            &[&id],
        )
        .await?
        .iter()
        .map(|row| StoredAnalysis {
            letter_id: row.get(0),
            mood: row.get(1),
            summary: row.get(2),
        })
        .collect();
    Ok(Some(Report {
        id,
        user: user.to_owned(),
        date,
        summary: head.get(1),
        analyses,
        created_ms: head.get(2),
    }))
}

/// Reports of the day stored by the guarded and by the naive path.
pub(super) async fn count(db: &PgDb, user: &str, day: &str) -> Result<(u64, u64), DbError> {
    let rows = db
        .query(
            "SELECT (SELECT count(*) FROM tollgate_demo.reports WHERE user_id = $1 AND day = $2),
                    (SELECT count(*) FROM tollgate_demo.naive_reports WHERE user_id = $1 AND day = $2)",
            &[&user, &day],
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| DbError::Other("a count returned no row".into()))?;
    let (guarded, naive): (i64, i64) = (row.get(0), row.get(1));
    Ok((guarded.unsigned_abs(), naive.unsigned_abs()))
}
