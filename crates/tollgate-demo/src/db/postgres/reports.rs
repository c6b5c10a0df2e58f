//! Daily reports and the analyses of their letters.

use tollgate_postgres::tokio_postgres::types::Type;
use tollgate_postgres::tokio_postgres::{self, Transaction};

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
    let created_ms = now_ms();
    // Typed statements: parsed, bound and run in one round trip each.
    let inserted = tx
        .query_typed_opt(
            "INSERT INTO tollgate_demo.reports (user_id, day, summary, created_ms)
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, day) DO NOTHING RETURNING id",
            &[
                (&user, Type::TEXT),
                (&day, Type::TEXT),
                (&answer.summary, Type::TEXT),
                (&created_ms, Type::INT8),
            ],
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
        .query_typed(
            "INSERT INTO tollgate_demo.analyses (report_id, letter_id, mood, summary)
             SELECT $1, l.id, a.mood, a.summary
             FROM unnest($2::bigint[], $3::text[], $4::text[]) AS a (letter_id, mood, summary)
             JOIN tollgate_demo.letters l
               ON l.id = a.letter_id AND l.user_id = $5 AND l.day = $6
             RETURNING letter_id",
            &[
                (&report_id, Type::INT8),
                (&letters, Type::INT8_ARRAY),
                (&moods, Type::TEXT_ARRAY),
                (&summaries, Type::TEXT_ARRAY),
                (&user, Type::TEXT),
                (&day, Type::TEXT),
            ],
        )
        .await?;
    let joined: Vec<i64> = inserted.iter().map(|row| row.get(0)).collect();
    if let Some(foreign) = letters.iter().find(|id| !joined.contains(id)) {
        return Ok(Err(foreign_letter(*foreign, user, day)));
    }
    let Ok(date) = Day::parse(day) else {
        return Ok(Err(format!("{day} is not a day")));
    };
    let mut analyses: Vec<StoredAnalysis> = answer
        .analyses
        .iter()
        .map(|a| StoredAnalysis {
            letter_id: a.letter_id,
            mood: a.mood.clone(),
            summary: a.summary.clone(),
        })
        .collect();
    analyses.sort_by_key(|a| a.letter_id);
    // Exactly the rows just written: no second read.
    Ok(Ok(Some(Report {
        id: report_id,
        user: user.to_owned(),
        date,
        summary: answer.summary.clone(),
        analyses,
        created_ms,
    })))
}

/// The report of the day, if stored: one prepared statement.
pub(super) async fn of_day(db: &PgDb, user: &str, date: Day) -> Result<Option<Report>, DbError> {
    let day = date.to_string();
    let rows = db
        .query(
            "SELECT r.id, r.summary, r.created_ms, a.letter_id, a.mood, a.summary
             FROM tollgate_demo.reports r
             LEFT JOIN tollgate_demo.analyses a ON a.report_id = r.id
             WHERE r.user_id = $1 AND r.day = $2
             ORDER BY a.letter_id",
            &[&user, &day],
        )
        .await?;
    let Some(head) = rows.first() else {
        return Ok(None);
    };
    let analyses = rows
        .iter()
        .filter_map(|row| {
            Some(StoredAnalysis {
                letter_id: row.get::<_, Option<i64>>(3)?,
                mood: row.get(4),
                summary: row.get(5),
            })
        })
        .collect();
    Ok(Some(Report {
        id: head.get(0),
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
