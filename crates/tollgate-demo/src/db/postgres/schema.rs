//! The service's tables on PostgreSQL, in schema `tollgate_demo`, created in one transaction
//! under a transaction-level advisory lock: instances starting together wait for each other,
//! and a failure leaves nothing half-created.

/// The advisory lock key of the service's migration (distinct from the store's).
pub(super) const LOCK: i64 = 0x746f_6c6c_6465_6d6f; // "tolldemo"

pub(super) const SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS tollgate_demo;
CREATE TABLE IF NOT EXISTS tollgate_demo.letters (
    id         BIGSERIAL PRIMARY KEY,
    user_id    TEXT NOT NULL,
    day        TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS letters_by_day ON tollgate_demo.letters (user_id, day);
CREATE TABLE IF NOT EXISTS tollgate_demo.reports (
    id         BIGSERIAL PRIMARY KEY,
    user_id    TEXT NOT NULL,
    day        TEXT NOT NULL,
    summary    TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (user_id, day)
);
CREATE TABLE IF NOT EXISTS tollgate_demo.analyses (
    id        BIGSERIAL PRIMARY KEY,
    report_id BIGINT NOT NULL REFERENCES tollgate_demo.reports (id),
    letter_id BIGINT NOT NULL REFERENCES tollgate_demo.letters (id),
    mood      TEXT NOT NULL,
    summary   TEXT NOT NULL,
    UNIQUE (report_id, letter_id)
);
-- The original schema of S3, used by the naive path only: nothing stops a second report.
CREATE TABLE IF NOT EXISTS tollgate_demo.naive_reports (
    id         BIGSERIAL PRIMARY KEY,
    user_id    TEXT NOT NULL,
    day        TEXT NOT NULL,
    summary    TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS naive_reports_by_day ON tollgate_demo.naive_reports (user_id, day);
CREATE TABLE IF NOT EXISTS tollgate_demo.naive_analyses (
    id        BIGSERIAL PRIMARY KEY,
    report_id BIGINT NOT NULL REFERENCES tollgate_demo.naive_reports (id),
    letter_id BIGINT NOT NULL REFERENCES tollgate_demo.letters (id),
    mood      TEXT NOT NULL,
    summary   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tollgate_demo.wallets (
    id      TEXT PRIMARY KEY,
    balance BIGINT NOT NULL CHECK (balance >= 0)
);
CREATE TABLE IF NOT EXISTS tollgate_demo.purchases (
    id         BIGSERIAL PRIMARY KEY,
    wallet_id  TEXT NOT NULL REFERENCES tollgate_demo.wallets (id),
    item       TEXT NOT NULL,
    price      BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS tollgate_demo.interview_questions (
    effect_key TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL,
    questions  TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS interview_questions_by_user
    ON tollgate_demo.interview_questions (user_id, created_ms);
";
