//! `argus-relay`: the origin agent and its owner CLI.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = origin_agent::cli::Cli::parse();
    match origin_agent::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("argus-relay: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
