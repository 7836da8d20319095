//! `podiam`: short-lived AWS credentials for Kubernetes pods, self-hosted.

mod access_cmd;
mod apiserver_jwks;
mod aws_cmd;
mod cli_io;
mod cluster_cmd;
mod console_cmd;
mod dev;
mod docs_cmd;
mod etcd_args;
mod exec_cmd;
mod explain;
mod gateway_cmd;
mod keys_cmd;
mod pod;
mod policy_cmd;
mod publish_issuer;
mod server_cmd;
mod simulate_input;
mod store_cmd;
mod token_cmd;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Short-lived AWS credentials for Kubernetes pods: IAM roles and trust policies, OIDC
/// providers, STS, EKS Pod Identity, the node agent and IMDS — self-hosted, on the real AWS
/// wire protocols.
#[derive(Debug, Parser)]
#[command(
    name = "podiam",
    version = env!("PODIAM_LONG_VERSION"),
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane: IAM, STS, EKS and EKS Auth over the AWS wire.
    Server(Box<server_cmd::ServerArgs>),
    /// Run the node agent: EKS Pod Identity credentials at 169.254.170.23 and IMDSv2.
    Agent(Box<podiam_agent::cli::AgentArgs>),
    /// Run the mutating admission webhook, or see what it does to a pod (`render`).
    Webhook(Box<podiam_webhook::cli::WebhookArgs>),
    /// Run the server, node agent, IMDS and DynamoDB gateway on loopback, in one command.
    Dev(Box<dev::DevArgs>),
    /// Run a command as a pod of a ServiceAccount would run (IRSA or Pod Identity).
    Exec(Box<exec_cmd::ExecArgs>),
    /// Explain whether a pod of a ServiceAccount may call an action, step by step.
    Explain(Box<explain::ExplainArgs>),
    /// See who can do what: which workloads reach a resource, what a service account can
    /// do, and findings.
    #[command(subcommand)]
    Access(access_cmd::AccessCommand),
    /// Open the web console in a browser, signed in as you.
    Console(console_cmd::ConsoleArgs),
    /// Run the DynamoDB gateway: SigV4 and IAM policies enforced in front of any DynamoDB.
    Gateway(Box<gateway_cmd::GatewayArgs>),
    /// Create clusters with a chosen token issuer; mint tokens from hosted issuers.
    #[command(subcommand)]
    Cluster(Box<cluster_cmd::ClusterCommand>),
    /// Move an embedded store into etcd (`copy`).
    #[command(subcommand)]
    Store(store_cmd::StoreCommand),
    /// Validate IAM policies and simulate authorization decisions, offline.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Signing keys: generate a key file for a token issuer, or rotate a running server's
    /// session or issuer keys.
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Mint and verify Kubernetes service-account tokens; print OIDC discovery.
    #[command(subcommand)]
    Token(Box<token_cmd::TokenCommand>),
    /// Work with real AWS as podiam's own identity: the trust policy of a role podiam hands
    /// to pods.
    #[command(subcommand)]
    Aws(aws_cmd::AwsCommand),
    /// Print the shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(docs_cmd::CompletionsArgs),
    /// Write the manual pages.
    Man(docs_cmd::ManArgs),
}

/// mimalloc: the services allocate many small JSON and TLS buffers across threads, where
/// glibc's allocator took a third of the webhook's CPU and capped it at about 20,000 reviews/s
/// (27,000 with mimalloc; BENCHMARKS.md). The slim node agent keeps glibc for its smaller RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The commands that run as services, whose flags also come from `PODIAM_…` variables and a
/// `--config` file.
const SERVICES: &[&str] = &["server", "agent", "webhook", "gateway", "dev"];

/// The command line as parsed, with the services' variables and `--config` (for completions
/// and manual pages too).
fn command_line() -> clap::Command {
    podiam_process::config::configure(Cli::command(), SERVICES, None)
        .unwrap_or_else(|_| Cli::command())
}

fn main() -> ExitCode {
    let matches = podiam_process::config::matches(Cli::command(), |command, file| {
        podiam_process::config::configure(command, SERVICES, file)
    });
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Server(args) => server_cmd::run(*args),
        Command::Dev(args) => dev::run(*args),
        Command::Exec(args) => exec_cmd::run(*args),
        Command::Explain(args) => explain::run(*args),
        Command::Console(args) => console_cmd::run(&args),
        Command::Access(command) => access_cmd::run(&command),
        Command::Gateway(args) => gateway_cmd::run(*args),
        Command::Cluster(command) => cluster_cmd::run(*command),
        Command::Agent(args) => podiam_agent::cli::run(*args),
        Command::Webhook(command) => podiam_webhook::cli::run(*command),
        Command::Store(command) => store_cmd::run(command),
        Command::Policy(command) => policy_cmd::run(command),
        Command::Keys(command) => keys_cmd::run(command),
        Command::Token(command) => token_cmd::run(*command),
        Command::Aws(command) => aws_cmd::run(command),
        Command::Completions(args) => docs_cmd::completions(command_line(), &args),
        Command::Man(args) => docs_cmd::man(command_line(), &args),
    }
}
