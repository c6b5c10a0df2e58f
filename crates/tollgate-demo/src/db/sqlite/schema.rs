//! The service's tables.

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS letters (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    day        TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS letters_by_day ON letters (user_id, day);
CREATE TABLE IF NOT EXISTS reports (
    id           INTEGER PRIMARY KEY,
    user_id      TEXT NOT NULL,
    day          TEXT NOT NULL,
    summary      TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    UNIQUE (user_id, day)
);
CREATE TABLE IF NOT EXISTS analyses (
    id        INTEGER PRIMARY KEY,
    report_id INTEGER NOT NULL REFERENCES reports (id),
    letter_id INTEGER NOT NULL REFERENCES letters (id),
    mood      TEXT NOT NULL,
    summary   TEXT NOT NULL,
    UNIQUE (report_id, letter_id)
);
-- The original schema of S3, used by the naive path only: nothing stops a second report.
CREATE TABLE IF NOT EXISTS naive_reports (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    day        TEXT NOT NULL,
    summary    TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS naive_reports_by_day ON naive_reports (user_id, day);
CREATE TABLE IF NOT EXISTS naive_analyses (
    id        INTEGER PRIMARY KEY,
    report_id INTEGER NOT NULL REFERENCES naive_reports (id),
    letter_id INTEGER NOT NULL REFERENCES letters (id),
    mood      TEXT NOT NULL,
    summary   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS wallets (
    id      TEXT PRIMARY KEY,
    balance INTEGER NOT NULL CHECK (balance >= 0)
);
CREATE TABLE IF NOT EXISTS purchases (
    id         INTEGER PRIMARY KEY,
    wallet_id  TEXT NOT NULL REFERENCES wallets (id),
    item       TEXT NOT NULL,
    price      INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS interview_questions (
    effect_key TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL,
    questions  TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS interview_questions_by_user ON interview_questions (user_id, created_ms);
";
