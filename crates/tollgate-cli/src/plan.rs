//! `tollgate plan check FILE`: validates a plan's contracts file, for CI.
//!
//! Exit status: 0 valid; 1 invalid, one line per problem on stdout; 2 unreadable input (the
//! file cannot be read, or is not TOML).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tollgate::plan::{Contracts, ContractsFileError};

use crate::EXIT_USAGE;

/// Works with fan-out plans (`tollgate::plan`).
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(subcommand)]
    command: PlanCommand,
}

#[derive(Debug, Subcommand)]
enum PlanCommand {
    /// Validate a contracts file: every required field produced by a node, no merge conflicts,
    /// no unused node, every paid node with an idempotency key, no unknown key.
    Check {
        /// The TOML file (`[nodes.NAME] outputs = [...]`, `[intents.NAME] required = [...]`).
        file: PathBuf,
    },
}

/// Exit status when the file is readable but not a valid plan.
const EXIT_INVALID: u8 = 1;

pub(crate) fn main(args: PlanArgs) -> ExitCode {
    match args.command {
        PlanCommand::Check { file } => check(&file),
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    let shown = file.display();
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read {shown}: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let contracts = match Contracts::from_toml(&text) {
        Ok(contracts) => contracts,
        Err(e @ ContractsFileError::Syntax { .. }) => {
            eprintln!("error: {shown}: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            println!("{shown}: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let problems = contracts.problems();
    if problems.is_empty() {
        println!(
            "{shown}: ok ({} nodes, {} intents)",
            contracts.nodes().len(),
            contracts.intents().len()
        );
        return ExitCode::SUCCESS;
    }
    for problem in &problems {
        println!("{shown}: {problem}");
    }
    ExitCode::from(EXIT_INVALID)
}
