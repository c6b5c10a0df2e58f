//! `tollgate demo`: the reference service and a race against it, naive path beside the guarded
//! one.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tollgate_demo::demo::{self, DemoOptions};
use tollgate_demo::server::redact;
use tollgate_race::MAX_REQUESTS;

use crate::EXIT_USAGE;

/// Starts a fake LLM and the service on free loopback ports with a temporary SQLite database,
/// stores a day of letters, fires N identical report requests released at the same instant at
/// the naive endpoint, then at the guarded one, and prints what each did.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 the guarded path kept its guarantees; 1 it did not; 2 the \
                        demo could not run."
)]
pub(crate) struct DemoArgs {
    /// Identical requests fired at each endpoint.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 100, value_parser = parse_requests)]
    requests: usize,
    /// The fake LLM's latency per call, e.g. 200ms, 1s.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = crate::duration::parse)]
    llm_latency: Duration,
    /// The service's pool of database connections.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = parse_pool)]
    pool: usize,
    /// Race on this database instead of a temporary SQLite file: `sqlite:PATH` or
    /// `postgres://USER@HOST:PORT/DB` (the demo's user gets a fresh name per run).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the comparison as a self-contained HTML page with timelines to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
}

fn parse_requests(text: &str) -> Result<usize, String> {
    crate::race::parse_count(text, MAX_REQUESTS)
}

fn parse_pool(text: &str) -> Result<usize, String> {
    crate::race::parse_count(text, 1_000)
}

pub(crate) async fn main(args: DemoArgs) -> ExitCode {
    let database = match args.database.as_deref().map(str::parse) {
        None => None,
        Some(Ok(database)) => Some(database),
        Some(Err(e)) => {
            let url = args.database.as_deref().map(redact).unwrap_or_default();
            eprintln!("error: --database {url}: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let options = DemoOptions {
        requests: args.requests,
        llm_latency: args.llm_latency,
        pool_size: args.pool,
        database,
    };
    let json = args.json;
    let report = match demo::run(&options, |step| {
        if !json {
            eprintln!("· {step}");
        }
    })
    .await
    {
        Ok(report) => report,
        Err(demo::DemoError::Start(tollgate_demo::StartError::Db { database, source })) => {
            eprintln!("error: --database {database}: {source}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if json {
        match serde_json::to_string(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    } else {
        println!();
        print!("{}", demo::table(&report, &options));
    }
    if let Some(path) = &args.html
        && let Err(e) = crate::html::write_demo(path, &report, &options)
    {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    if report.guarded_held() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
