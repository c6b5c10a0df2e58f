//! The page of a `tollgate race` run.

use std::collections::BTreeMap;

use super::bars::{Bar, bar_chart};
use super::node::Node;
use super::page::{chip, document, heading, ms, status_colour};
use super::timeline::timeline;
use crate::report::{Report, TrialReport};

/// Timelines drawn at most (the first trials); the table lists every trial.
pub const MAX_TIMELINES: usize = 50;
/// Trials shown at most in the spread chart and the table.
const MAX_ROWS: usize = 500;
const HISTOGRAM_BINS: usize = 40;

/// The page of a run: the command line, the invariants, the send spread per trial, a latency
/// histogram, a table of statuses per trial (violated invariants marked) and the timelines
/// of the first [`MAX_TIMELINES`] trials (drawn when the run kept a timeline, see
/// [`RaceConfig::timeline`](crate::RaceConfig::timeline)).
pub fn race_page(report: &Report, command_line: &str) -> String {
    let title = format!("tollgate race: {} {}", report.method, report.url);
    let mut body = vec![
        Node::new("h1").text(&title),
        summary(report),
        Node::new("pre").attr("class", "command").text(command_line),
    ];
    if !report.invariants.is_empty() {
        body.extend([heading("Invariants"), invariants(report)]);
    }
    body.extend([
        heading("Send spread per trial"),
        spread_chart(report),
        heading("Latency of every response"),
        histogram(report),
        heading("Status per trial"),
        trial_table(report),
        heading("Timelines"),
    ]);
    body.extend(timelines(report));
    document(&title, body)
}

fn summary(r: &Report) -> Node {
    let verdict = match (r.invariants.is_empty(), r.passed()) {
        (true, _) => Node::new("span").text("no invariants declared"),
        (false, true) => Node::new("span")
            .attr("class", "ok")
            .text("PASS: every invariant held"),
        (false, false) => Node::new("span").attr("class", "bad").text(format!(
            "FAIL: {} of {} trials violated",
            r.violations, r.trials
        )),
    };
    let s = r.send_spread_us;
    Node::new("p")
        .text(format!(
            "{} requests × {} trials, sync {}; send spread median {} µs, max {} µs. ",
            r.requests, r.trials, r.sync, s.median, s.max
        ))
        .child(verdict)
}

fn invariants(r: &Report) -> Node {
    let rows = r.invariants.iter().map(|inv| {
        let verdict = if inv.held {
            ("ok", "held")
        } else {
            ("bad", "VIOLATED")
        };
        let observed: Vec<_> = inv.observed.iter().take(40).map(usize::to_string).collect();
        Node::new("tr")
            .child(Node::new("td").text(inv.expect))
            .child(Node::new("td").attr("class", verdict.0).text(verdict.1))
            .child(Node::new("td").text(format!(
                "held in {}/{} trials",
                r.trials - inv.violated_trials,
                r.trials
            )))
            .child(Node::new("td").text(format!("observed {}", observed.join(", "))))
    });
    Node::new("table").children(rows)
}

fn spread_chart(r: &Report) -> Node {
    let bars: Vec<_> = r
        .per_trial
        .iter()
        .take(MAX_ROWS)
        .map(|t| Bar {
            segments: vec![(t.send_spread_us as f64, "#1565c0")],
            tooltip: format!("trial {}: send spread {} µs", t.trial, t.send_spread_us),
            label: (r.per_trial.len() <= 40).then(|| t.trial.to_string()),
            flagged: !t.held,
        })
        .collect();
    bar_chart(
        &bars,
        "spread",
        "µs",
        "trial (✗ = an invariant was violated)",
    )
}

/// Latencies of every response of every trial, in bins, each bar stacked by status.
fn histogram(r: &Report) -> Node {
    let latencies: Vec<(u64, u16)> = r
        .per_trial
        .iter()
        .flat_map(|t| &t.timeline)
        .filter_map(|m| Some((m.ended_us.checked_sub(m.released_us?)?, m.status?)))
        .collect();
    // From the fastest to the slowest response: on loopback they are all far from zero.
    let low = latencies.iter().map(|l| l.0).min().unwrap_or(0);
    let high = latencies.iter().map(|l| l.0).max().unwrap_or(0);
    let width = (high - low + 1).div_ceil(HISTOGRAM_BINS as u64);
    let mut bins = vec![BTreeMap::<u16, usize>::new(); HISTOGRAM_BINS];
    for (latency, status) in latencies {
        let bin = usize::try_from((latency - low) / width)
            .map_or(HISTOGRAM_BINS - 1, |b| b.min(HISTOGRAM_BINS - 1));
        *bins[bin].entry(status).or_insert(0) += 1;
    }
    let bars: Vec<_> = bins
        .iter()
        .enumerate()
        .map(|(i, bin)| {
            let from = low + i as u64 * width;
            let counts: Vec<_> = bin.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
            Bar {
                segments: bin
                    .iter()
                    .map(|(&s, &n)| (n as f64, status_colour(Some(s))))
                    .collect(),
                tooltip: format!(
                    "{} to {}: {}",
                    ms(from),
                    ms(from + width),
                    counts.join(", ")
                ),
                label: (i % 5 == 0).then(|| format!("{:.2}", from as f64 / 1000.0)),
                flagged: false,
            }
        })
        .collect();
    bar_chart(
        &bars,
        "histogram",
        "responses",
        "ms from release to response",
    )
}

fn trial_table(r: &Report) -> Node {
    let head = Node::new("tr").children(
        ["trial", "send spread", "statuses", "errors", "invariants"]
            .map(|h| Node::new("th").text(h)),
    );
    let rows = r.per_trial.iter().take(MAX_ROWS).map(trial_row);
    let table = Node::new("table")
        .attr("class", "trials")
        .child(head)
        .children(rows);
    if r.per_trial.len() > MAX_ROWS {
        let note = format!("the first {MAX_ROWS} of {} trials", r.per_trial.len());
        Node::new("div")
            .child(table)
            .child(Node::new("p").attr("class", "note").text(note))
    } else {
        table
    }
}

fn trial_row(t: &TrialReport) -> Node {
    let statuses = t
        .status
        .iter()
        .map(|(&s, &n)| chip(Some(s), &s.to_string(), n));
    let errors = t.errors.iter().map(|(k, &n)| chip(None, k.as_str(), n));
    let invariants = t.invariants.iter().map(|i| {
        let (class, text) = if i.held {
            ("ok", format!("{} ✓ ", i.expect))
        } else {
            ("bad", format!("{} ✗ saw {} ", i.expect, i.observed))
        };
        Node::new("span").attr("class", class).text(text)
    });
    let mut row = Node::new("tr");
    if !t.held {
        row = row.attr("class", "violated");
    }
    row.child(Node::new("td").attr("class", "num").text(t.trial))
        .child(
            Node::new("td")
                .attr("class", "num")
                .text(format!("{} µs", t.send_spread_us)),
        )
        .child(Node::new("td").children(statuses))
        .child(Node::new("td").children(errors).text(first_error(t)))
        .child(Node::new("td").children(invariants))
}

fn first_error(t: &TrialReport) -> String {
    t.error_samples
        .values()
        .next()
        .map(|m| format!(" {m}"))
        .unwrap_or_default()
}

fn timelines(r: &Report) -> Vec<Node> {
    if r.per_trial.iter().all(|t| t.timeline.is_empty()) {
        let note = "this run kept no timeline (RaceConfig::timeline was off)";
        return vec![Node::new("p").attr("class", "note").text(note)];
    }
    let mut nodes = Vec::new();
    if r.per_trial.len() > MAX_TIMELINES {
        let note = format!("the first {MAX_TIMELINES} of {} trials", r.per_trial.len());
        nodes.push(Node::new("p").attr("class", "note").text(note));
    }
    for t in r.per_trial.iter().take(MAX_TIMELINES) {
        let broken = t.violated();
        let title = Node::new("h3").text(format!("trial {} ", t.trial));
        let title = if broken.is_empty() {
            title
        } else {
            title.child(
                Node::new("span")
                    .attr("class", "bad")
                    .text(format!("VIOLATED {}", broken.join(", "))),
            )
        };
        nodes.extend([title, timeline(&t.timeline, 0)]);
    }
    nodes
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::config::RaceConfig;
    use crate::plan::{RequestOutcome, TrialRun};
    use crate::report::Builder;
    use crate::response::Response;

    /// A trial whose requests got `statuses`, released 1 µs apart, all answered at 20 ms.
    fn trial(statuses: &[u16]) -> TrialRun {
        let started = Instant::now();
        let at = |us| started + Duration::from_micros(us);
        let outcomes = (1_000..)
            .zip(statuses)
            .map(|(released, &status)| RequestOutcome {
                result: Ok(Response {
                    status,
                    body: b"<b>".to_vec(),
                }),
                released: Some(at(released)),
                ended: at(20_000),
            });
        TrialRun {
            outcomes: outcomes.collect(),
            spread: Duration::from_micros(statuses.len() as u64 - 1),
            started,
        }
    }

    #[test]
    fn the_page_draws_every_request_and_marks_the_violated_trials() {
        let mut config = RaceConfig::new("http://h/<x>");
        config.expectations = vec!["201=1".parse().unwrap()];
        config.timeline = true;
        let mut builder = Builder::new(&config);
        builder.add(trial(&[201, 409, 409]));
        builder.add(trial(&[201, 201, 409]));
        let page = race_page(&builder.finish(), "tollgate race 'http://h/<x>'");
        assert_eq!(page.matches("<g class=\"req\"").count(), 6);
        assert_eq!(page.matches("<svg class=\"timeline\"").count(), 2);
        assert_eq!(page.matches("<tr class=\"violated\">").count(), 1);
        assert!(page.contains("201=1 ✗ saw 2"));
        assert!(page.contains("FAIL: 1 of 2 trials violated"));
        assert!(
            page.contains(
                "<pre class=\"command\">tollgate race &#39;http://h/&lt;x&gt;&#39;</pre>"
            )
        );
        assert!(!page.contains("<x>"), "every text is escaped");
    }

    #[test]
    fn without_a_timeline_the_page_says_so() {
        let mut builder = Builder::new(&RaceConfig::new("http://h/"));
        builder.add(trial(&[200]));
        let page = race_page(&builder.finish(), "");
        assert!(!page.contains("<svg class=\"timeline\""));
        assert!(page.contains("this run kept no timeline"));
    }
}
