//! The `trailsight` command: Trailsight's pipeline on log files on disk (replay, summarize,
//! simulate, eval), and, with the `aws` feature (on by default), helpers for a deployed table
//! (setup, backfill, insights).

mod analysis;
#[cfg(feature = "aws")]
mod aws_commands;
mod cli;
mod local;
mod output;
mod replay;
mod report;
mod scenario;
mod summarize;
mod terminal;

fn main() -> std::process::ExitCode {
    cli::main()
}
