//! `podiam-agent`: the node agent alone, for node DaemonSets (`podiam agent` is the same).

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

/// The podiam node agent: EKS Pod Identity credentials at 169.254.170.23, IMDSv2 for the
/// node's role, and `setup-link` for the link-local addresses.
#[derive(Debug, Parser)]
#[command(name = "podiam-agent", version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    agent: podiam_agent::cli::AgentArgs,
}

fn main() -> ExitCode {
    let matches = podiam_process::config::matches(Cli::command(), |command, file| {
        podiam_process::config::configure_root(command, "agent", file)
    });
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    podiam_agent::cli::run(cli.agent)
}
