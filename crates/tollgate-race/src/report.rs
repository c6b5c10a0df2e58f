//! The report model (serde `Serialize`) and its aggregation from raw trial results.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::config::{RaceConfig, SyncMode};
use crate::error::ErrorKind;
use crate::expect::Expectation;
use crate::mark::{RequestMark, micros};
use crate::plan::TrialRun;

/// The result of a run: per trial and summed over trials.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The URL as configured (placeholders unexpanded).
    pub url: String,
    /// The HTTP method.
    pub method: String,
    /// How requests were released.
    pub sync: SyncMode,
    /// Requests per trial.
    pub requests: usize,
    /// Number of trials.
    pub trials: usize,
    /// Trials in which at least one invariant was violated.
    pub violations: usize,
    /// `violations / trials`.
    pub violation_rate: f64,
    /// Responses per status code, summed over trials.
    pub status: BTreeMap<u16, usize>,
    /// Failed requests per kind, summed over trials.
    pub errors: BTreeMap<ErrorKind, usize>,
    /// Identical responses (status and body hash), summed over trials, most frequent first.
    pub groups: Vec<ResponseGroup>,
    /// Latency over every response of every trial.
    pub latency_ms: Latency,
    /// Send spread over trials.
    pub send_spread_us: Spread,
    /// Each invariant over all trials.
    pub invariants: Vec<InvariantSummary>,
    /// One entry per trial, in order.
    pub per_trial: Vec<TrialReport>,
}

impl TrialReport {
    /// Each invariant this trial violated, as `201=1 (saw 3)`.
    pub fn violated(&self) -> Vec<String> {
        self.invariants
            .iter()
            .filter(|i| !i.held)
            .map(|i| format!("{} (saw {})", i.expect, i.observed))
            .collect()
    }
}

impl Report {
    /// Whether every invariant held in every trial.
    pub fn passed(&self) -> bool {
        self.violations == 0
    }
}

/// The result of one trial.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TrialReport {
    /// Trial index, from 0.
    pub trial: usize,
    /// Responses per status code.
    pub status: BTreeMap<u16, usize>,
    /// Failed requests per kind.
    pub errors: BTreeMap<ErrorKind, usize>,
    /// The first message seen for each error kind.
    pub error_samples: BTreeMap<ErrorKind, String>,
    /// Identical responses (status and body hash), most frequent first.
    pub groups: Vec<ResponseGroup>,
    /// Latency from each request's release to its complete response.
    pub latency_ms: Latency,
    /// Time between the first and last release, in microseconds.
    pub send_spread_us: u64,
    /// Each invariant checked on this trial.
    pub invariants: Vec<InvariantResult>,
    /// Whether every invariant held.
    pub held: bool,
    /// Each request's release and end, in index order; empty unless
    /// [`RaceConfig::timeline`] was set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<RequestMark>,
}

/// Responses with the same status and the same body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ResponseGroup {
    /// Status code.
    pub status: u16,
    /// FNV-1a 64-bit hash of the body, hex.
    pub body_hash: String,
    /// Body length in bytes.
    pub body_len: usize,
    /// The start of the body, printable characters only.
    pub body_preview: String,
    /// How many responses are in the group.
    pub count: usize,
}

/// Latency percentiles in milliseconds (all 0 when there was no response).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct Latency {
    /// Number of responses measured.
    pub samples: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// Send spread over trials, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct Spread {
    /// Median of the per-trial spreads.
    pub median: u64,
    /// Largest per-trial spread.
    pub max: u64,
}

/// One invariant checked on one trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct InvariantResult {
    /// The invariant, e.g. `201=1`.
    pub expect: Expectation,
    /// The number of matching responses seen.
    pub observed: usize,
    /// Whether `observed` equals the expected count.
    pub held: bool,
}

/// One invariant over every trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct InvariantSummary {
    /// The invariant, e.g. `201=1`.
    pub expect: Expectation,
    /// The expected count per trial.
    pub expected: usize,
    /// The observed count in each trial, in order.
    pub observed: Vec<usize>,
    /// Whether it held in every trial.
    pub held: bool,
    /// The number of trials in which it was violated.
    pub violated_trials: usize,
}

/// Accumulates trials into a [`Report`].
#[derive(Debug)]
pub(crate) struct Builder {
    report: Report,
    latencies: Vec<Duration>,
    spreads: Vec<u64>,
    expectations: Vec<Expectation>,
    timeline: bool,
}

impl Builder {
    pub(crate) fn new(config: &RaceConfig) -> Self {
        let invariants = config
            .expectations
            .iter()
            .map(|&expect| InvariantSummary {
                expect,
                expected: expect.count,
                observed: Vec::new(),
                held: true,
                violated_trials: 0,
            })
            .collect();
        Self {
            report: Report {
                url: config.url.clone(),
                method: config.method.clone(),
                sync: config.sync,
                requests: config.requests,
                trials: 0,
                violations: 0,
                violation_rate: 0.0,
                status: BTreeMap::new(),
                errors: BTreeMap::new(),
                groups: Vec::new(),
                latency_ms: Latency::default(),
                send_spread_us: Spread::default(),
                invariants,
                per_trial: Vec::new(),
            },
            latencies: Vec::new(),
            spreads: Vec::new(),
            expectations: config.expectations.clone(),
            timeline: config.timeline,
        }
    }

    /// Adds one trial and returns its report.
    pub(crate) fn add(&mut self, run: TrialRun) -> &TrialReport {
        self.latencies.extend(latencies_of(&run));
        let mut trial = trial_report(self.report.per_trial.len(), &run, &self.expectations);
        if self.timeline {
            let marks = run.outcomes.iter().enumerate();
            trial.timeline = marks
                .map(|(i, o)| RequestMark::of(i, o, run.started))
                .collect();
        }
        let r = &mut self.report;
        r.trials += 1;
        r.violations += usize::from(!trial.held);
        merge_counts(&mut r.status, &trial.status);
        merge_counts(&mut r.errors, &trial.errors);
        merge_groups(&mut r.groups, &trial.groups);
        for (summary, result) in r.invariants.iter_mut().zip(&trial.invariants) {
            summary.observed.push(result.observed);
            summary.held &= result.held;
            summary.violated_trials += usize::from(!result.held);
        }
        self.spreads.push(trial.send_spread_us);
        r.per_trial.push(trial);
        &r.per_trial[r.per_trial.len() - 1]
    }

    pub(crate) fn finish(mut self) -> Report {
        let r = &mut self.report;
        r.violation_rate = if r.trials == 0 {
            0.0
        } else {
            r.violations as f64 / r.trials as f64
        };
        r.latency_ms = latency(&mut self.latencies);
        self.spreads.sort_unstable();
        r.send_spread_us = Spread {
            median: median(&self.spreads),
            max: self.spreads.last().copied().unwrap_or(0),
        };
        self.report
    }
}

/// The latencies of a run's successful responses.
fn latencies_of(run: &TrialRun) -> Vec<Duration> {
    run.outcomes.iter().filter_map(|o| o.latency()).collect()
}

fn trial_report(trial: usize, run: &TrialRun, expectations: &[Expectation]) -> TrialReport {
    let mut latencies = latencies_of(run);
    let mut status = BTreeMap::new();
    let mut errors = BTreeMap::new();
    let mut error_samples = BTreeMap::new();
    let mut groups: Vec<ResponseGroup> = Vec::new();
    for outcome in &run.outcomes {
        match &outcome.result {
            Ok(response) => {
                *status.entry(response.status).or_insert(0) += 1;
                merge_groups(&mut groups, &[group_of(response.status, &response.body)]);
            }
            Err(e) => {
                *errors.entry(e.kind).or_insert(0) += 1;
                error_samples
                    .entry(e.kind)
                    .or_insert_with(|| e.message.clone());
            }
        }
    }
    let statuses = || status.iter().flat_map(|(&s, &n)| std::iter::repeat_n(s, n));
    let invariants: Vec<_> = expectations
        .iter()
        .map(|&expect| {
            let observed = expect.observe(statuses());
            InvariantResult {
                expect,
                observed,
                held: observed == expect.count,
            }
        })
        .collect();
    TrialReport {
        trial,
        held: invariants.iter().all(|i| i.held),
        latency_ms: latency(&mut latencies),
        send_spread_us: micros(run.spread),
        status,
        errors,
        error_samples,
        groups,
        invariants,
        timeline: Vec::new(),
    }
}

fn group_of(status: u16, body: &[u8]) -> ResponseGroup {
    let preview: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(60)
        .collect();
    ResponseGroup {
        status,
        body_hash: format!("{:016x}", fnv1a(body)),
        body_len: body.len(),
        body_preview: preview,
        count: 1,
    }
}

/// Adds `new` groups into `into`, keeping the most frequent first.
fn merge_groups(into: &mut Vec<ResponseGroup>, new: &[ResponseGroup]) {
    for g in new {
        match into
            .iter_mut()
            .find(|e| e.status == g.status && e.body_hash == g.body_hash)
        {
            Some(existing) => existing.count += g.count,
            None => into.push(g.clone()),
        }
    }
    into.sort_by(|a, b| b.count.cmp(&a.count).then(a.status.cmp(&b.status)));
}

fn merge_counts<K: Ord + Copy>(into: &mut BTreeMap<K, usize>, new: &BTreeMap<K, usize>) {
    for (&k, &n) in new {
        *into.entry(k).or_insert(0) += n;
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn median(sorted: &[u64]) -> u64 {
    match sorted.len() {
        0 => 0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

/// Nearest-rank percentiles, in milliseconds rounded to the microsecond.
fn latency(samples: &mut [Duration]) -> Latency {
    samples.sort_unstable();
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let rank = |p: f64| {
        let idx = (p / 100.0 * samples.len() as f64).ceil() as usize;
        samples.get(idx.saturating_sub(1)).map_or(0.0, |&d| ms(d))
    };
    Latency {
        samples: samples.len(),
        p50: rank(50.0),
        p90: rank(90.0),
        p99: rank(99.0),
        max: samples.last().map_or(0.0, |&d| ms(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        let l = latency(&mut samples);
        assert_eq!(
            (l.samples, l.p50, l.p90, l.p99, l.max),
            (100, 50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(latency(&mut []), Latency::default());
    }

    #[test]
    fn medians_and_hashes() {
        assert_eq!(
            (median(&[]), median(&[3]), median(&[1, 2, 10, 20])),
            (0, 3, 6)
        );
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn groups_merge_by_status_and_body() {
        let mut groups = Vec::new();
        merge_groups(
            &mut groups,
            &[group_of(409, b"taken"), group_of(201, b"ok")],
        );
        merge_groups(
            &mut groups,
            &[group_of(409, b"taken"), group_of(409, b"other")],
        );
        let counts: Vec<_> = groups.iter().map(|g| (g.status, g.count)).collect();
        assert_eq!(counts, [(409, 2), (201, 1), (409, 1)]);
        assert_eq!(group_of(200, b"a\nb").body_preview, "ab");
    }
}
