//! `--html FILE`: the pages of `tollgate race` and `tollgate demo`, written to a file.

use std::path::Path;

use tollgate_demo::demo::{DATE, DemoOptions, DemoReport, Side};
use tollgate_race::Report;
use tollgate_race::html::{self, Comparison};

/// Writes the page of a race run to `path`.
pub(crate) fn write_race(path: &Path, report: &Report) -> Result<(), String> {
    write(path, &html::race_page(report, &command_line()))
}

/// Writes the naive-vs-guarded page of a demo run to `path`.
pub(crate) fn write_demo(
    path: &Path,
    report: &DemoReport,
    options: &DemoOptions,
) -> Result<(), String> {
    let (naive, guarded) = (&report.naive, &report.guarded);
    let summary = format!(
        "{} identical POST …/daily-reports/{DATE} requests released at the same instant at each \
         endpoint; fake LLM {} ms per call; {} pooled database connections.",
        report.requests,
        options.llm_latency.as_millis(),
        options.pool_size
    );
    let command = command_line();
    let page = html::comparison_page(&Comparison {
        title: "tollgate demo: naive vs guarded daily report",
        summary: &summary,
        command_line: &command,
        sides: vec![
            html::Side {
                name: "naive",
                caption: "check → call → insert",
                timeline: &naive.timeline,
            },
            html::Side {
                name: "guarded",
                caption: "tollgate once",
                timeline: &guarded.timeline,
            },
        ],
        rows: rows(naive, guarded),
        verdicts: vec![
            (
                naive.llm_calls <= 1,
                format!(
                    "naive: paid the LLM {} times for one report; {} database lock errors",
                    naive.llm_calls, naive.lock_errors
                ),
            ),
            (report.guarded_held(), guarded_verdict(report)),
        ],
    });
    write(path, &page)
}

fn guarded_verdict(report: &DemoReport) -> String {
    if report.guarded_held() {
        format!(
            "guarded: exactly once — 1 × 201, {} × 409, 1 LLM call, 1 report, 0 lock errors",
            report.requests - 1
        )
    } else {
        "guarded: GUARANTEE VIOLATED — see the numbers above".to_owned()
    }
}

/// The statuses of either side, then the side effects.
fn rows(naive: &Side, guarded: &Side) -> Vec<(String, Vec<String>)> {
    let mut statuses: Vec<&String> = naive.status.keys().chain(guarded.status.keys()).collect();
    statuses.sort();
    statuses.dedup();
    let count =
        |side: &Side, status: &str| side.status.get(status).copied().unwrap_or(0).to_string();
    let mut rows: Vec<_> = statuses
        .into_iter()
        .map(|s| {
            let label = if s == "error" {
                "no response".to_owned()
            } else {
                format!("HTTP {s}")
            };
            (label, vec![count(naive, s), count(guarded, s)])
        })
        .collect();
    for (label, a, b) in [
        ("LLM calls (paid)", naive.llm_calls, guarded.llm_calls),
        (
            "reports stored",
            naive.reports_stored,
            guarded.reports_stored,
        ),
        ("DB lock errors", naive.lock_errors, guarded.lock_errors),
    ] {
        rows.push((label.to_owned(), vec![a.to_string(), b.to_string()]));
    }
    rows
}

fn write(path: &Path, page: &str) -> Result<(), String> {
    std::fs::write(path, page).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// This process's command line, each argument quoted for a POSIX shell when it needs it.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().map(|a| quote(&a)).collect();
    args.join(" ")
}

fn quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(quote("--expect"), "--expect");
        assert_eq!(quote("http://h:1/r/{{i}}"), "'http://h:1/r/{{i}}'");
        assert_eq!(quote("X-Key: it's"), r"'X-Key: it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
