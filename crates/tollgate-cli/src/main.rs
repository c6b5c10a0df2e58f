//! `tollgate`: the command-line tool. Each subcommand is a thin layer over a library crate.
//!
//! Exit status: 0 success, 1 an invariant was violated, 2 usage error or unreachable target.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod duration;
mod html;
mod plan;
mod print;
mod race;
mod serve;

/// Make expensive operations happen exactly once per key, and prove it under real concurrency.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the guarantees: race the naive and the guarded daily report side by side.
    Demo(demo::DemoArgs),
    /// Run the reference service (axum; SQLite or PostgreSQL, optionally Redis).
    Serve(serve::ServeArgs),
    /// Fire N requests released at the same instant and check invariants on the responses.
    Race(race::RaceArgs),
    /// Check a fan-out plan's contracts file (`tollgate plan check FILE`).
    Plan(plan::PlanArgs),
}

/// Exit status for usage errors and unreachable targets (clap uses it for its own errors too).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match cli.command {
        Command::Demo(args) => runtime.block_on(demo::main(args)),
        Command::Serve(args) => {
            logging();
            runtime.block_on(serve::main(args))
        }
        Command::Race(args) => runtime.block_on(race::main(args)),
        Command::Plan(args) => plan::main(args),
    }
}

/// Logs to stderr, filtered by `TOLLGATE_LOG` (`info`, `debug`, `tollgate=debug,info`, …).
fn logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("TOLLGATE_LOG")
        .ok()
        .and_then(|text| text.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
        });
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .try_init();
}
