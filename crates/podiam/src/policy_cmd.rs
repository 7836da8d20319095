//! `podiam policy validate` and `podiam policy simulate`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use podiam_policy::{Policy, PolicyError, PolicyType, parse_as};

use crate::cli_io::{exit_on, read_input};
use crate::simulate_input::SimulateInput;

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check a policy document against IAM's rules for one policy type.
    ///
    /// Exits 0 when the document is valid. Otherwise exits 1 and prints one line per problem,
    /// `<where>: <IAM's MalformedPolicyDocument message> (<detail>)`. The types: identity,
    /// resource, trust, boundary, session, scp, rcp. Among the rules: a resource or trust
    /// policy needs a Principal and an identity policy (boundary, session) has none;
    /// NotPrincipal only in resource policies and only with Deny; an RCP names "*"; trust
    /// policies grant only STS assume actions and have no Resource; actions and condition keys
    /// name their service; Sids are unique (and alphanumeric in identity policies); size quotas
    /// per type. Where IAM's wording for a refusal is not known, the message is IAM's generic
    /// "Syntax errors in policy." and the detail says why; docs/design.md lists each choice.
    Validate(ValidateArgs),
    /// Decide one request against a set of policies with AWS's evaluation logic.
    ///
    /// Prints one JSON object: {"decision": "Allow" | "ExplicitDeny" | "ImplicitDeny",
    /// "reason": "...", "trace": [...]}, where the trace shows every policy, statement and
    /// condition and why each matched or not. Exits 2 when the input is not valid.
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Which rules apply: where the policy will be used.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_policy_type)]
    policy_type: PolicyType,
    /// The policy document (JSON); `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

#[derive(Debug, Args)]
#[command(after_long_help = SIMULATE_INPUT_HELP)]
pub(crate) struct SimulateArgs {
    /// The simulation input (JSON, see below); `-` reads standard input. (`--input FILE` is
    /// accepted too, as earlier versions took it.)
    #[arg(value_name = "FILE", required_unless_present = "input")]
    file: Option<PathBuf>,
    #[arg(
        long = "input",
        value_name = "FILE",
        hide = true,
        conflicts_with = "file"
    )]
    input: Option<PathBuf>,
    /// Indent the JSON output (the default when writing to a terminal).
    #[arg(long)]
    pretty: bool,
}

const SIMULATE_INPUT_HELP: &str = r#"Input:
  {
    "identity_policies": [POLICY, ...],
    "resource_policy": POLICY,
    "permissions_boundary": POLICY,
    "session_policy": POLICY,
    "service_control_policies": [POLICY, ...] or [[POLICY, ...], ...],
    "resource_control_policies": [POLICY, ...] or [[POLICY, ...], ...],
    "request": {
      "principal": "arn:aws:iam::111122223333:role/r",
      "action": "s3:GetObject",
      "resource": "arn:aws:s3:::bucket/key",
      "resource_account": "111122223333",
      "context": {"aws:SourceIp": "10.1.2.3", "aws:TagKeys": ["a", "b"]}
    }
  }

Every field but request.action is optional. POLICY is a policy object or a string holding one.
A list of lists of SCPs/RCPs gives the organization's levels (root, OUs, account). Each SCP
level needs a policy that allows; RCP levels only deny, as AWS's RCPFullAWSAccess, which
cannot be detached, allows at every level. "principal" is an ARN, an account id, a service principal such as
"pods.eks.amazonaws.com", or an object such as {"Federated": "arn:aws:iam::…:oidc-provider/…"};
no principal means an anonymous request. "resource_account" defaults to the account in the
resource ARN.

Rules enforced (AWS's "Policy evaluation logic" pages): an explicit deny anywhere wins; SCPs
(not for anonymous requests) and RCPs; in one account, a resource policy naming the user or
role session allows even past an implicit deny of the boundary or session policy, while one
naming the role or the account does not; across accounts both sides must allow;
sts:GetCallerIdentity needs no permission. Every policy is first checked as AWS checks it where
it is used (NotPrincipal only in resource policies and only to deny; the resource policy of an
sts:AssumeRole* action is a trust policy): one AWS would refuse makes the input invalid (exit
2). Where AWS's documentation is silent, podiam denies (docs/design.md lists each choice).

Example:
  podiam policy simulate --input examples/policies/irsa-carts.json"#;

fn parse_policy_type(text: &str) -> Result<PolicyType, String> {
    text.parse().map_err(|e: PolicyError| e.to_string())
}

pub(crate) fn run(command: PolicyCommand) -> ExitCode {
    exit_on(match command {
        PolicyCommand::Validate(args) => validate(&args),
        PolicyCommand::Simulate(args) => simulate(&args),
    })
}

fn validate(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let text = read_input(&args.file)?;
    let mut out = std::io::stdout().lock();
    match parse_as(&text, args.policy_type) {
        Ok(_) => {
            writeln!(
                out,
                "{}: valid {} policy",
                args.file.display(),
                args.policy_type
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(PolicyError::Malformed(problems)) => {
            for problem in problems {
                writeln!(out, "{problem}")?;
            }
            Ok(ExitCode::from(1))
        }
        Err(other) => {
            writeln!(out, "{other}")?;
            Ok(ExitCode::from(1))
        }
    }
}

fn simulate(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let path = args
        .file
        .as_ref()
        .or(args.input.as_ref())
        .context("give the simulation input as a file, or - for standard input")?;
    let text = read_input(path)?;
    let input = SimulateInput::parse(&text)?;
    for warning in input.warnings() {
        eprintln!("warning: {warning}");
    }
    let explanation = input.policy_set().explain(input.request());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.pretty || stdout.is_terminal() {
        serde_json::to_writer_pretty(&mut out, &explanation)?;
    } else {
        serde_json::to_writer(&mut out, &explanation)?;
    }
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

/// Parses a policy given as its JSON text.
pub(crate) fn parse_policy(what: &str, text: &str) -> anyhow::Result<Policy> {
    Policy::parse(text).map_err(|e| match e {
        PolicyError::Malformed(problems) => anyhow::anyhow!(
            "{what} is not a valid policy document:\n  {}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        ),
        other => anyhow::anyhow!("{what}: {other}"),
    })
}
