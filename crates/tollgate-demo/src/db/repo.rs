//! The repository interface: every read and write of the service's domain tables, one method
//! each, implemented by the SQLite and the PostgreSQL database alike. Guarded writes are one
//! transaction each; the naive methods keep S3's and S4's original bugs on purpose (they hold
//! a transaction across the paid call) and are served only in demo mode.

use std::future::Future;
use std::pin::Pin;

use super::DbError;
use super::model::{
    Letter, NaiveReport, NaiveSave, Purchase, PurchaseRefused, Report, SavedQuestions, Wallet,
};
use crate::llm::LlmError;
use crate::validate::Day;
use crate::wire::AnalyzeResponse;

/// The service's domain tables on one database.
pub trait Repository: Send + Sync + 'static {
    /// Checks that the database answers.
    fn ping(&self) -> impl Future<Output = Result<(), DbError>> + Send;

    /// Stores a letter; returns its id.
    fn add_letter(
        &self,
        user: &str,
        date: Day,
        text: &str,
        created_ms: i64,
    ) -> impl Future<Output = Result<i64, DbError>> + Send;

    /// The letters of one user's day, oldest first.
    fn letters(
        &self,
        user: &str,
        date: Day,
    ) -> impl Future<Output = Result<Vec<Letter>, DbError>> + Send;

    /// The report of one user's day, if stored.
    fn report(
        &self,
        user: &str,
        date: Day,
    ) -> impl Future<Output = Result<Option<Report>, DbError>> + Send;

    /// Stores the report of one user's day and one analysis per letter, in one transaction;
    /// `None` when a report of that day exists already (nothing is written).
    fn store_report(
        &self,
        user: &str,
        date: Day,
        answer: &AnalyzeResponse,
    ) -> impl Future<Output = Result<Option<Report>, DbError>> + Send;

    /// Reports stored for one user's day by the guarded path (at most 1) and by the naive
    /// path (any number).
    fn reports_stored(
        &self,
        user: &str,
        date: Day,
    ) -> impl Future<Output = Result<(u64, u64), DbError>> + Send;

    /// Creates the wallet or sets its balance; `true` when it was created.
    fn put_wallet(
        &self,
        id: &str,
        balance: i64,
    ) -> impl Future<Output = Result<bool, DbError>> + Send;

    /// The wallet, if it exists.
    fn wallet(&self, id: &str) -> impl Future<Output = Result<Option<Wallet>, DbError>> + Send;

    /// Buys `item` for `price` from the wallet: **one conditional update**
    /// (`balance = balance − price WHERE balance >= price`) and the purchase row, in one
    /// transaction — no read-then-write, so concurrent purchases never overspend (S2).
    fn purchase(
        &self,
        wallet: &str,
        item: &str,
        price: i64,
        created_ms: i64,
    ) -> impl Future<Output = Result<Result<Purchase, PurchaseRefused>, DbError>> + Send;

    /// How many purchases the wallet has.
    fn purchases(&self, wallet: &str) -> impl Future<Output = Result<u64, DbError>> + Send;

    /// Saves interview questions under the effect key `key`, once: a second save of the same
    /// key changes nothing and returns `false`.
    fn save_questions(
        &self,
        key: &str,
        user: &str,
        role: &str,
        questions: &[String],
    ) -> impl Future<Output = Result<bool, DbError>> + Send;

    /// The interview questions saved for `user`, oldest first.
    fn saved_questions(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Vec<SavedQuestions>, DbError>> + Send;

    /// **S3's original code, bug included**: in one transaction on a pooled connection, check
    /// whether the report exists and read the letters, then `call` the LLM with the
    /// transaction still open, then insert into `naive_reports` and commit.
    fn naive_report(
        &self,
        user: &str,
        date: Day,
        call: PaidCall<Vec<Letter>, AnalyzeResponse>,
    ) -> impl Future<Output = Result<NaiveReport, DbError>> + Send;

    /// **S4's original code, bug included**: open a transaction, `call` the LLM with it open,
    /// then save the questions and commit — or roll back when `call` says the save is refused
    /// (`true`), losing the paid questions.
    fn naive_save(
        &self,
        user: &str,
        role: &str,
        call: PaidCall<(), (Vec<String>, bool)>,
    ) -> impl Future<Output = Result<NaiveSave, DbError>> + Send;
}

/// The paid LLM call of a naive path, made while its transaction is still open: given `A`, it
/// answers `T` or the LLM's error.
pub type PaidCall<A, T> =
    Box<dyn FnOnce(A) -> Pin<Box<dyn Future<Output = Result<T, LlmError>> + Send>> + Send>;
