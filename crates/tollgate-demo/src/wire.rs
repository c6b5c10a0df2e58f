//! The LLM analysis API as JSON on the wire: what the service sends and the fake LLM answers.
//! A real provider sits behind an adapter speaking this shape (the URL is configuration).

use serde::{Deserialize, Serialize};

/// One letter to analyse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LetterText {
    /// The letter's id in the service's database.
    pub id: i64,
    /// The letter's text.
    pub text: String,
}

/// `POST /v1/analyze`: every letter of one user's day, analysed in one (paid) call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzeRequest {
    /// Whose letters.
    pub user: String,
    /// Which day (`YYYY-MM-DD`).
    pub date: String,
    /// The letters.
    pub letters: Vec<LetterText>,
}

/// The analysis of one letter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LetterAnalysis {
    /// The letter analysed.
    pub letter_id: i64,
    /// A one-word mood.
    pub mood: String,
    /// A one-line summary.
    pub summary: String,
}

/// The answer to an [`AnalyzeRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzeResponse {
    /// A summary of the whole day.
    pub summary: String,
    /// One analysis per letter, in request order.
    pub analyses: Vec<LetterAnalysis>,
}

/// `POST /v1/interview-questions`: interview questions for a role, in one (paid) call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionsRequest {
    /// The role interviewed for.
    pub role: String,
    /// How many questions.
    pub count: u32,
}

/// The answer to a [`QuestionsRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionsResponse {
    /// The questions.
    pub questions: Vec<String>,
}

/// `GET /stats` of the fake LLM: what it was asked, by its own count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmStats {
    /// Requests received, analyses and interview questions alike (each one is a paid call).
    pub calls: u64,
    /// Of those, answered with an injected failure.
    pub failures: u64,
    /// Letters analysed in successful calls.
    pub letters: u64,
}
