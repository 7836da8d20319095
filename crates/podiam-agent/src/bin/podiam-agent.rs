//! `podiam-agent`: the node agent alone, for node DaemonSets (`podiam agent` is the same).

use std::process::ExitCode;

use clap::Parser;

/// The podiam node agent: EKS Pod Identity credentials at 169.254.170.23, IMDSv2 for the
/// node's role, and `setup-link` for the link-local addresses.
#[derive(Debug, Parser)]
#[command(name = "podiam-agent", version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    agent: podiam_agent::cli::AgentArgs,
}

fn main() -> ExitCode {
    podiam_agent::cli::run(Cli::parse().agent)
}
