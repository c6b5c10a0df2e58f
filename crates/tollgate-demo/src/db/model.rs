//! The service's domain records, the same whichever database stores them.

use serde::{Deserialize, Serialize};

use crate::llm::LlmError;
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

/// A stored analysis of one letter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnalysis {
    /// The letter.
    pub letter_id: i64,
    /// Its mood.
    pub mood: String,
    /// Its summary.
    pub summary: String,
}

/// A stored daily report with the analyses of its letters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The report's id.
    pub id: i64,
    /// Whose day.
    pub user: String,
    /// Which day.
    pub date: Day,
    /// The LLM's summary of the day.
    pub summary: String,
    /// One analysis per letter.
    pub analyses: Vec<StoredAnalysis>,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// A wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Wallet {
    /// Its id.
    pub id: String,
    /// Its balance.
    pub balance: i64,
}

/// A completed purchase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Purchase {
    /// The purchase's id.
    pub id: i64,
    /// The wallet charged.
    pub wallet: String,
    /// What was bought.
    pub item: String,
    /// Its price.
    pub price: i64,
    /// The wallet's balance after the purchase.
    pub balance: i64,
}

/// Why a purchase did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PurchaseRefused {
    /// No such wallet.
    NoWallet,
    /// The balance is lower than the price.
    InsufficientFunds {
        /// The balance.
        balance: i64,
    },
}

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

/// What the naive report path (S3's original code) did.
#[derive(Debug)]
pub enum NaiveReport {
    /// A report of that day existed when it looked: nothing was paid.
    Exists,
    /// The day has no letters.
    NoLetters,
    /// The LLM call failed; the transaction was rolled back.
    CallFailed(LlmError),
    /// It paid for the call and stored a report with this id in `naive_reports`.
    Made {
        /// The report's id.
        id: i64,
        /// The LLM's summary.
        summary: String,
    },
}

/// What the naive save of interview questions (S4's original code) did.
#[derive(Debug)]
pub enum NaiveSave {
    /// The LLM call failed; the transaction was rolled back.
    CallFailed(LlmError),
    /// The questions were asked and saved in the transaction opened before the call.
    Saved(Vec<String>),
    /// The questions were asked, then the save was refused: the transaction rolled back and
    /// the paid questions are lost.
    Refused,
}
