//! `tollgate`: the command-line tool. Each subcommand is a thin layer over a library crate.
//!
//! Exit status: 0 success, 1 an invariant was violated, 2 usage error or unreachable target.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod duration;
mod print;
mod race;

/// Make expensive operations happen exactly once per key, and prove it under real concurrency.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fire N requests released at the same instant and check invariants on the responses.
    Race(race::RaceArgs),
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
        Command::Race(args) => runtime.block_on(race::main(args)),
    }
}
