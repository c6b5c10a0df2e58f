//! [`InTransaction`]: the work's own SQLite writes and the completion in one transaction.

use std::marker::PhantomData;

use rusqlite::Transaction;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tollgate::once::{Commit, Committed, Completion, Failure, Record, encode, transition};
use tollgate::store::{StoreError, Timestamp};

use crate::schema;
use crate::store::SqliteStore;

/// The work's writes, run by [`SqliteStore`] in the same `BEGIN IMMEDIATE` transaction as the
/// completion of its `once` record; return it from the work of
/// [`Call::run_committed`](tollgate::once::Call::run_committed).
///
/// In that one transaction the store: takes the write lock; checks that the call still holds
/// its key (fenced by its token — a holder that lost its lease writes nothing and gets
/// [`Error::Fenced`](tollgate::once::Error::Fenced)); runs `f` on the transaction inside a
/// savepoint; then stores the value `f` returns as the completed record and commits. When `f`
/// returns a [`Failure`], its writes are rolled back to the savepoint and the failure is
/// recorded instead; when it returns an SQLite error, nothing is written.
///
/// ```
/// use tollgate_sqlite::{InTransaction, SqliteStore};
/// use tollgate_sqlite::rusqlite::params;
/// use tollgate_sqlite::tollgate::once::{Failure, Fingerprint, Key, Once};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(dir.path().join("app.db")).await?;
/// store.call(|c| c.execute_batch("CREATE TABLE reports (day TEXT PRIMARY KEY, text TEXT)")).await?;
/// let once = Once::new(store.clone());
/// let key = Key::new("daily-report", "user-1/2026-11-21");
/// let made = once.call(key, Fingerprint::new("v1")).run_committed(|| async {
///     let summary = "a good day".to_string(); // the paid call, outside any transaction
///     Ok::<_, Failure<String>>(InTransaction::new(move |tx| {
///         tx.execute("INSERT INTO reports VALUES ('2026-11-21', ?1)", params![summary])?;
///         Ok(Ok(summary))
///     }))
/// });
/// assert_eq!(made.await?.value, "a good day");
/// # Ok(())
/// # }
/// ```
pub struct InTransaction<F, T, E> {
    writes: F,
    types: PhantomData<fn() -> (T, E)>,
}

impl<F, T, E> InTransaction<F, T, E>
where
    F: FnOnce(&Transaction<'_>) -> rusqlite::Result<Result<T, Failure<E>>> + Send + 'static,
{
    /// The writes `f` makes on the transaction, returning the call's value or its failure.
    pub fn new(f: F) -> Self {
        InTransaction {
            writes: f,
            types: PhantomData,
        }
    }
}

impl<F, T, E> std::fmt::Debug for InTransaction<F, T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InTransaction")
    }
}

impl<F, T, E> Commit<SqliteStore> for InTransaction<F, T, E>
where
    F: FnOnce(&Transaction<'_>) -> rusqlite::Result<Result<T, Failure<E>>> + Send + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
    E: Serialize + DeserializeOwned + Send + 'static,
{
    type Value = T;
    type Error = E;

    async fn commit(
        self,
        store: &SqliteStore,
        completion: Completion,
    ) -> Result<Committed, StoreError> {
        let writes = self.writes;
        store
            .immediate(move |tx, now| {
                let Some(record) = schema::read(&tx, &completion.key)? else {
                    return Ok(Committed::Fenced);
                };
                if record.holder() != Some(completion.token) {
                    return Ok(Committed::Fenced);
                }
                tx.execute_batch("SAVEPOINT tollgate_work")?;
                let committed = match writes(&tx)? {
                    Ok(value) => completed(&tx, &record, &completion, &value, now)?,
                    Err(failure) => {
                        tx.execute_batch("ROLLBACK TO tollgate_work")?;
                        failed(&tx, &record, &completion, &failure, now)?
                    }
                };
                tx.execute_batch("RELEASE tollgate_work")?;
                if let Committed::Completed { .. } | Committed::Failed { .. } = committed {
                    tx.commit()?;
                }
                Ok(committed)
            })
            .await
    }
}

fn completed<T: Serialize>(
    tx: &Transaction<'_>,
    record: &Record,
    completion: &Completion,
    value: &T,
    now: Timestamp,
) -> rusqlite::Result<Committed> {
    let result = match encode(value) {
        Ok(result) => result,
        Err(e) => return Ok(Committed::Unencodable(e.0)),
    };
    let Completion {
        key,
        token,
        retention,
    } = completion;
    let written = transition::complete(Some(record), *token, result.clone(), *retention, now);
    match written {
        Some(done) => schema::write(tx, key, &done).map(|()| Committed::Completed { result }),
        None => Ok(Committed::Fenced),
    }
}

fn failed<E: Serialize>(
    tx: &Transaction<'_>,
    record: &Record,
    completion: &Completion,
    failure: &Failure<E>,
    now: Timestamp,
) -> rusqlite::Result<Committed> {
    let error = match encode(&failure.error) {
        Ok(error) => error,
        Err(e) => return Ok(Committed::Unencodable(e.0)),
    };
    let retryable = failure.retryable;
    let kept = match retryable {
        true => std::time::Duration::ZERO,
        false => completion.retention,
    };
    let Completion { key, token, .. } = completion;
    match transition::fail(Some(record), *token, error.clone(), retryable, kept, now) {
        Some(done) => {
            schema::write(tx, key, &done).map(|()| Committed::Failed { error, retryable })
        }
        None => Ok(Committed::Fenced),
    }
}
