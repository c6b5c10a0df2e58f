//! The human-readable report.

use std::collections::BTreeMap;
use std::fmt::Write;

use tollgate_race::{ErrorKind, Latency, Report, ResponseGroup, TrialReport};

/// Groups beyond this many are summarised in one line.
const MAX_GROUPS: usize = 8;

pub(crate) fn human(r: &Report) -> String {
    let mut out = String::new();
    let trials = if r.trials == 1 { "trial" } else { "trials" };
    line(&mut out, format!("tollgate race: {} {}", r.method, r.url));
    line(
        &mut out,
        format!(
            "{} requests × {} {trials}, sync {}",
            r.requests, r.trials, r.sync
        ),
    );
    line(&mut out, String::new());
    line(&mut out, format!("status        {}", statuses(&r.status)));
    line(&mut out, format!("errors        {}", errors(&r.errors)));
    for (i, g) in r.groups.iter().take(MAX_GROUPS).enumerate() {
        let label = if i == 0 { "responses" } else { "" };
        line(&mut out, format!("{label:<14}{}", group(g)));
    }
    if r.groups.len() > MAX_GROUPS {
        let rest: usize = r.groups[MAX_GROUPS..].iter().map(|g| g.count).sum();
        let more = r.groups.len() - MAX_GROUPS;
        line(
            &mut out,
            format!("{:<14}... {more} more groups ×{rest}", ""),
        );
    }
    line(
        &mut out,
        format!("latency       {}", latency(&r.latency_ms)),
    );
    let s = r.send_spread_us;
    line(
        &mut out,
        format!("send spread   median {} µs, max {} µs", s.median, s.max),
    );
    if r.trials > 1 || !r.invariants.is_empty() {
        line(&mut out, String::new());
        for trial in &r.per_trial {
            line(&mut out, trial_line(trial));
        }
    }
    if !r.invariants.is_empty() {
        line(&mut out, String::new());
        line(&mut out, "invariants".to_owned());
        for inv in &r.invariants {
            let held = r.trials - inv.violated_trials;
            let verdict = if inv.held { "ok  " } else { "FAIL" };
            line(
                &mut out,
                format!(
                    "  {verdict} {:<10} held in {held}/{} {trials}; observed {}",
                    inv.expect.to_string(),
                    r.trials,
                    observed(&inv.observed)
                ),
            );
        }
        let rate = r.violation_rate * 100.0;
        let verdict = if r.passed() { "PASS" } else { "FAIL" };
        line(&mut out, String::new());
        line(
            &mut out,
            format!(
                "{verdict}: {} of {} {trials} violated ({rate:.0}%)",
                r.violations, r.trials
            ),
        );
    }
    out
}

/// Per-trial counts, the first few only.
fn observed(counts: &[usize]) -> String {
    const SHOWN: usize = 20;
    let mut text: Vec<_> = counts.iter().take(SHOWN).map(usize::to_string).collect();
    if counts.len() > SHOWN {
        text.push(format!("... ({} more)", counts.len() - SHOWN));
    }
    text.join(", ")
}

fn line(out: &mut String, text: String) {
    let _ = writeln!(out, "{}", text.trim_end());
}

fn trial_line(t: &TrialReport) -> String {
    let mut text = format!(
        "trial {:>3}  spread {:>6} µs  {}",
        t.trial,
        t.send_spread_us,
        statuses(&t.status)
    );
    if !t.errors.is_empty() {
        let _ = write!(text, "  errors {}", errors(&t.errors));
    }
    let broken = t.violated();
    if !broken.is_empty() {
        let _ = write!(text, "  VIOLATED {}", broken.join(", "));
    }
    if let Some(message) = t.error_samples.values().next() {
        let _ = write!(text, "  first error: {message}");
    }
    text
}

fn statuses(status: &BTreeMap<u16, usize>) -> String {
    if status.is_empty() {
        return "no responses".to_owned();
    }
    let parts: Vec<_> = status.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
    parts.join("   ")
}

fn errors(errors: &BTreeMap<ErrorKind, usize>) -> String {
    if errors.is_empty() {
        return "none".to_owned();
    }
    let parts: Vec<_> = errors.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    parts.join("   ")
}

fn group(g: &ResponseGroup) -> String {
    format!(
        "{} {:?} ({} bytes, #{}) ×{}",
        g.status,
        g.body_preview,
        g.body_len,
        g.body_hash.get(..8).unwrap_or(&g.body_hash),
        g.count
    )
}

fn latency(l: &Latency) -> String {
    if l.samples == 0 {
        return "no responses".to_owned();
    }
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        l.p50, l.p90, l.p99, l.max
    )
}
