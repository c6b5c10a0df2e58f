//! Transactional completion: the work's own PostgreSQL writes and the completion of its claim
//! commit in one transaction — [`InTransaction`] for [`Call::run_committed`], or
//! [`PostgresStore::complete_in`] inside a transaction the caller opened itself.
//!
//! [`Call::run_committed`]: tollgate::once::Call::run_committed

use std::marker::PhantomData;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::{Statement, ToStatement, Transaction};
use tollgate::once::{Commit, Committed, Completion, Failure, encode};
use tollgate::store::{Settle, StoreError};

use crate::error::db;
use crate::store::{Fenced, PostgresStore};
use crate::time::ms;

/// The result of the work's writes: the call's value, or its failure — or a driver error,
/// which rolls everything back.
pub type Writes<'t, T, E> = BoxFuture<'t, Result<Result<T, Failure<E>>, tokio_postgres::Error>>;

/// The work's writes, run by [`PostgresStore`] in the same transaction as the completion of
/// its `once` record; return it from the work of
/// [`Call::run_committed`](tollgate::once::Call::run_committed).
///
/// In that one transaction the store: locks the record (`SELECT … FOR UPDATE`) and checks
/// that the call still holds it (fenced by owner and fence — a holder that lost its lease
/// writes nothing and gets [`Error::Fenced`](tollgate::once::Error::Fenced)); runs `f` on the
/// transaction inside a savepoint; then stores the value `f` returns as the completed record
/// and commits. When `f` returns a [`Failure`], its writes are rolled back to the savepoint
/// and the failure is recorded instead; when it returns a driver error, nothing is written.
///
/// ```no_run
/// use tollgate_postgres::PostgresStore;
/// use tollgate_postgres::InTransaction;
/// use tollgate_postgres::tollgate::once::{Failure, Fingerprint, Key, Once};
///
/// # async fn example(url: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::connect(url).await?;
/// let once = Once::new(store);
/// let key = Key::new("daily-report", "user-1/2026-11-21");
/// let made = once.call(key, Fingerprint::new("v1")).run_committed(|| async {
///     let summary = "a good day".to_string(); // the paid call, outside any transaction
///     Ok::<_, Failure<String>>(InTransaction::new(move |tx| {
///         Box::pin(async move {
///             let insert = "INSERT INTO reports (day, summary) VALUES ('2026-11-21', $1)";
///             tx.execute(insert, &[&summary]).await?;
///             Ok(Ok(summary))
///         })
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
    F: for<'t> FnOnce(&'t Transaction<'t>) -> Writes<'t, T, E> + Send + 'static,
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

impl<F, T, E> Commit<PostgresStore> for InTransaction<F, T, E>
where
    F: for<'t> FnOnce(&'t Transaction<'t>) -> Writes<'t, T, E> + Send + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
    E: Serialize + DeserializeOwned + Send + 'static,
{
    type Value = T;
    type Error = E;

    async fn commit(
        self,
        store: &PostgresStore,
        completion: Completion,
    ) -> Result<Committed, StoreError> {
        store
            .bounded("a transactional completion", async {
                let mut client = store.client().await?;
                // Prepared once per pooled connection (cached), then one round trip each.
                let sql = &store.inner().sql;
                let statements = Statements {
                    lock_held: client.prepare_cached(&sql.lock_held).await.map_err(db)?,
                    complete: client.prepare_cached(&sql.complete).await.map_err(db)?,
                    fail: client.prepare_cached(&sql.fail).await.map_err(db)?,
                };
                let tx = client.transaction().await.map_err(db)?;
                if !store.holds(&tx, &completion, &statements.lock_held).await? {
                    return Ok(Committed::Fenced); // dropping the transaction rolls it back
                }
                tx.batch_execute("SAVEPOINT tollgate_work")
                    .await
                    .map_err(db)?;
                let committed = match (self.writes)(&tx).await.map_err(db)? {
                    Ok(value) => match encode(&value) {
                        Ok(result) => {
                            store
                                .completed(&tx, &completion, result, &statements.complete)
                                .await?
                        }
                        Err(e) => return Ok(Committed::Unencodable(e.0)),
                    },
                    Err(failure) => {
                        tx.batch_execute("ROLLBACK TO SAVEPOINT tollgate_work")
                            .await
                            .map_err(db)?;
                        store
                            .failed(&tx, &completion, failure, &statements.fail)
                            .await?
                    }
                };
                if let Committed::Completed { .. } | Committed::Failed { .. } = committed {
                    tx.commit().await.map_err(db)?;
                }
                Ok(committed)
            })
            .await
    }
}

/// The statements of a transactional completion, prepared on the pooled connection.
struct Statements {
    lock_held: Statement,
    complete: Statement,
    fail: Statement,
}

impl PostgresStore {
    /// Completes the claim of `completion` with `result` **inside `tx`**, a transaction the
    /// caller opened on its own connection (it need not come from the store's pool, but must
    /// reach the same database): the completion commits or rolls back with the caller's other
    /// writes in `tx`. Locks the record and checks the holder first: [`Settle::Fenced`]
    /// (nothing written) when `completion.token` no longer holds the key — the caller should
    /// then roll back. Waiters are woken when `tx` commits.
    pub async fn complete_in(
        &self,
        tx: &Transaction<'_>,
        completion: &Completion,
        result: Vec<u8>,
    ) -> Result<Settle, StoreError> {
        self.bounded("a completion in a transaction", async {
            let sql = &self.inner().sql;
            if !self.holds(tx, completion, &sql.lock_held).await? {
                return Ok(Settle::Fenced);
            }
            match self
                .completed(tx, completion, result, &sql.complete)
                .await?
            {
                Committed::Completed { .. } => Ok(Settle::Accepted),
                _ => Ok(Settle::Fenced),
            }
        })
        .await
    }

    /// Locks the record of `completion` in `tx`; whether its token still holds it.
    async fn holds<S: ToStatement + ?Sized + Sync>(
        &self,
        tx: &Transaction<'_>,
        completion: &Completion,
        lock_held: &S,
    ) -> Result<bool, StoreError> {
        let held = Fenced::new(self, &completion.key, completion.token);
        let params = held.params(&[]);
        let rows = tx.query(lock_held, &params[..4]).await.map_err(db)?;
        Ok(!rows.is_empty())
    }

    async fn completed<S: ToStatement + ?Sized + Sync>(
        &self,
        tx: &Transaction<'_>,
        completion: &Completion,
        result: Vec<u8>,
        complete: &S,
    ) -> Result<Committed, StoreError> {
        let held = Fenced::new(self, &completion.key, completion.token);
        let millis = ms(completion.retention);
        let params = held.params(&[&result, &held.encoded, &millis]);
        let written = !tx.query(complete, &params).await.map_err(db)?.is_empty();
        Ok(match written {
            true => Committed::Completed { result },
            false => Committed::Fenced,
        })
    }

    async fn failed<E: Serialize, S: ToStatement + ?Sized + Sync>(
        &self,
        tx: &Transaction<'_>,
        completion: &Completion,
        failure: Failure<E>,
        fail: &S,
    ) -> Result<Committed, StoreError> {
        let error = match encode(&failure.error) {
            Ok(error) => error,
            Err(e) => return Ok(Committed::Unencodable(e.0)),
        };
        let retryable = failure.retryable;
        let kept = match retryable {
            true => std::time::Duration::ZERO,
            false => completion.retention,
        };
        let held = Fenced::new(self, &completion.key, completion.token);
        let millis = ms(kept);
        let params = held.params(&[&error, &held.encoded, &millis, &retryable]);
        let written = !tx.query(fail, &params).await.map_err(db)?.is_empty();
        Ok(match written {
            true => Committed::Failed { error, retryable },
            false => Committed::Fenced,
        })
    }
}
