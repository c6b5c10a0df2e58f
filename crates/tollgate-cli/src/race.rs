//! `tollgate race`: arguments, progress bar and exit status around [`tollgate_race::run`].

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tollgate_race::{Expectation, Header, MAX_REQUESTS, RaceConfig, Report, SyncMode};

use crate::{EXIT_USAGE, print};

/// Placeholders `{{i}}` (request index), `{{uuid}}` (fresh per request), `{{trial}}` and
/// `{{trial_uuid}}` (per trial) are substituted in the URL path, headers and body.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 every invariant held in every trial; 1 an invariant \
                        was violated; 2 usage error or target unreachable."
)]
pub(crate) struct RaceArgs {
    /// Target URL (http:// or https://).
    url: String,
    /// HTTP method.
    #[arg(short = 'X', long, default_value = "GET")]
    method: String,
    /// Request header `NAME: VALUE` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<Header>,
    /// Request body; `@path` reads it from a file.
    #[arg(short = 'd', long, value_name = "BODY")]
    data: Option<String>,
    /// Requests per trial.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 20, value_parser = parse_requests)]
    requests: usize,
    /// Independent repetitions.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = parse_trials)]
    trials: usize,
    /// Invariant per trial on the number of responses with a status (`201=1`, `2xx=20`);
    /// repeatable.
    #[arg(long = "expect", value_name = "CODE=COUNT")]
    expectations: Vec<Expectation>,
    /// `last-byte` (HTTP/1.1, one connection per request), `single-packet` (HTTP/2, all
    /// final frames in one packet), or `none` (plain concurrent sends, for comparison).
    #[arg(long, value_name = "MODE", default_value = "last-byte")]
    sync: SyncMode,
    /// Per-request timeout (connect, and response), e.g. 10s, 500ms.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::duration::parse)]
    timeout: Duration,
    /// Accept any TLS certificate (self-signed test servers).
    #[arg(long)]
    insecure: bool,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Also write the report as a self-contained HTML page with charts to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
}

fn parse_requests(text: &str) -> Result<usize, String> {
    parse_count(text, MAX_REQUESTS)
}

fn parse_trials(text: &str) -> Result<usize, String> {
    parse_count(text, 100_000)
}

pub(crate) fn parse_count(text: &str, max: usize) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from 1 to {max}")),
    }
}

pub(crate) async fn main(args: RaceArgs) -> ExitCode {
    let config = match config(&args) {
        Ok(config) => config,
        Err(message) => return usage_error(&message),
    };
    let progress = progress_bar(&args);
    let mut violated = 0;
    let outcome = tollgate_race::run_with_progress(&config, |trial| {
        violated += usize::from(!trial.held);
        if let Some(bar) = &progress {
            bar.inc(1);
            bar.set_message(format!("{violated} violated"));
        }
    })
    .await;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let report = match outcome {
        Ok(report) => report,
        Err(e) => return usage_error(&e.to_string()),
    };
    if let Err(message) = output(&report, args.json) {
        return usage_error(&message);
    }
    if let Some(path) = &args.html
        && let Err(message) = crate::html::write_race(path, &report)
    {
        return usage_error(&message);
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn config(args: &RaceArgs) -> Result<RaceConfig, String> {
    let body = match args.data.as_deref() {
        None => Vec::new(),
        Some(data) => match data.strip_prefix('@') {
            Some(path) => std::fs::read(path)
                .map_err(|e| format!("cannot read the request body from `{path}`: {e}"))?,
            None => data.as_bytes().to_vec(),
        },
    };
    let mut config = RaceConfig::new(args.url.clone());
    config.method.clone_from(&args.method);
    config.headers.clone_from(&args.headers);
    config.body = body;
    config.requests = args.requests;
    config.trials = args.trials;
    config.expectations.clone_from(&args.expectations);
    config.sync = args.sync;
    config.timeout = args.timeout;
    config.insecure = args.insecure;
    config.timeline = args.html.is_some();
    Ok(config)
}

/// A bar over trials, only for a human watching a terminal.
fn progress_bar(args: &RaceArgs) -> Option<ProgressBar> {
    if args.json || !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(args.trials as u64);
    let style = ProgressStyle::with_template("trials {bar:30} {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

fn output(report: &Report, json: bool) -> Result<(), String> {
    if json {
        let text = serde_json::to_string(report).map_err(|e| format!("cannot encode: {e}"))?;
        println!("{text}");
    } else {
        print!("{}", print::human(report));
    }
    Ok(())
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}
