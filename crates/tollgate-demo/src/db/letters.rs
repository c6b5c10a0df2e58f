//! Letters: stored one by one, read back per user and day.

use serde::Serialize;
use tollgate_sqlite::rusqlite::{self, Connection, params};

use super::{Db, DbError, now_ms};
use crate::validate::Day;

/// A stored letter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Letter {
    /// Its id.
    pub id: i64,
    /// Its author.
    pub user: String,
    /// The day it belongs to.
    pub date: Day,
    /// Its text.
    pub text: String,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub created_ms: i64,
}

impl Db {
    /// Stores a letter.
    ///
    /// # Errors
    /// A database failure.
    pub async fn add_letter(
        &self,
        user: String,
        date: Day,
        text: String,
    ) -> Result<Letter, DbError> {
        let created_ms = now_ms();
        let day = date.to_string();
        let (u, t) = (user.clone(), text.clone());
        let id = self
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO letters (user_id, day, body, created_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![u, day, t, created_ms],
                )?;
                Ok(tx.last_insert_rowid())
            })
            .await?;
        Ok(Letter {
            id,
            user,
            date,
            text,
            created_ms,
        })
    }

    /// The letters of one user's day, oldest first.
    ///
    /// # Errors
    /// A database failure.
    pub async fn letters(&self, user: &str, date: Day) -> Result<Vec<Letter>, DbError> {
        let (user, day) = (user.to_owned(), date.to_string());
        self.read(move |conn| letters_of(conn, &user, &day)).await
    }
}

/// The letters of a day, oldest first.
pub fn letters_of(conn: &Connection, user: &str, day: &str) -> rusqlite::Result<Vec<Letter>> {
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
