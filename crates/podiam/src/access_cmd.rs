//! `podiam access who|what|findings`: who can do what, asked of a running server with the
//! caller's credentials. The server runs the analysis (the policy engine over its state) and
//! shows only what the caller may read; this command prints it.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use crate::cli_io::exit_on;
use crate::cluster_cmd::Connection;

/// See who can do what: workloads, roles, findings.
#[derive(Debug, Subcommand)]
pub(crate) enum AccessCommand {
    /// Every workload identity that can perform ACTION on RESOURCE.
    #[command(after_long_help = WHO_HELP)]
    Who(WhoArgs),
    /// The roles a service account can get, which one its SDK uses, and what it may do.
    #[command(after_long_help = WHAT_HELP)]
    What(WhatArgs),
    /// Problems in trust policies, associations and permissions, each with a fix.
    #[command(after_long_help = FINDINGS_HELP)]
    Findings(FindingsArgs),
}

const WHO_HELP: &str = "\
Each entry: the cluster, namespace and service account (a pattern where a trust policy uses
one), the path (pod-identity, irsa, node), the role, and the decision: Allow, ConditionalAllow
(with the conditions still open: a pod's name, the client's address, a resource's tags, …) or
ExplicitDeny (with the denying statement). The server evaluates with its policy engine; you see
the roles you may read with their policies (iam:GetRole, iam:GetRolePolicy,
iam:ListAttachedRolePolicies) and the associations you may eks:DescribePodIdentityAssociation;
IRSA paths need eks:DescribeCluster on the cluster and iam:GetOpenIDConnectProvider on the
provider, node paths iam:GetUser on the node's user.

Example:
  podiam access who --action dynamodb:PutItem \\
    --resource arn:aws:dynamodb:us-west-2:111122223333:table/carts";

const WHAT_HELP: &str = "\
Lists each path (irsa, pod-identity, node) with its role, marks the one the SDKs' default
credential chain takes (IRSA's web identity token, then Pod Identity's container credentials,
then IMDS), and summarises each role's permissions by service.";

const FINDINGS_HELP: &str = "\
Codes: trust-any-service-account, trust-no-audience, trust-public, association-trust-mismatch,
association-role-missing, irsa-provider-missing, permission-admin, passrole-wildcard,
role-unused. Exit status: 0, or 1 when --fail-on is given and a finding is at least that
severe; 2 on errors.";

/// How to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Aligned columns for people.
    Table,
    /// The server's JSON, unchanged.
    Json,
}

/// The least severity that fails `findings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FailOn {
    /// Warnings and errors.
    Warning,
    /// Errors only.
    Error,
}

#[derive(Debug, Args)]
pub(crate) struct WhoArgs {
    /// The action, e.g. dynamodb:PutItem.
    #[arg(long, value_name = "ACTION")]
    action: String,
    /// The resource's ARN.
    #[arg(long, value_name = "ARN")]
    resource: String,
    /// Only this cluster's workloads.
    #[arg(long)]
    cluster: Option<String>,
    /// How to print.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct WhatArgs {
    /// The cluster.
    #[arg(long)]
    cluster: String,
    /// The namespace.
    #[arg(long)]
    namespace: String,
    /// The service account.
    #[arg(long, value_name = "NAME")]
    service_account: String,
    /// How to print.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct FindingsArgs {
    /// Only this cluster's associations, its issuer's trusts, and the roles its workloads reach.
    #[arg(long)]
    cluster: Option<String>,
    /// Report roles without credentials issued for this many days (role-unused).
    #[arg(long, value_name = "DAYS", default_value_t = 90)]
    unused_days: u32,
    /// Exit 1 when a finding is at least this severe (a CI gate).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    fail_on: Option<FailOn>,
    /// How to print.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    connection: Connection,
}

pub(crate) fn run(command: &AccessCommand) -> ExitCode {
    exit_on(access(command))
}

fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            out.append_pair(k, v);
        }
    }
    out.finish()
}

fn ask(connection: &Connection, path: &str) -> anyhow::Result<Value> {
    let client = connection.client()?;
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(client.rest_json("podiam", http::Method::GET, path, None))
        .map_err(crate::cluster_cmd::explain)?;
    Ok(answer.body)
}

fn access(command: &AccessCommand) -> anyhow::Result<ExitCode> {
    match command {
        AccessCommand::Who(args) => {
            let q = query(&[
                ("action", Some(&args.action)),
                ("resource", Some(&args.resource)),
                ("cluster", args.cluster.as_deref()),
            ]);
            let body = ask(&args.connection, &format!("/podiam/access/who?{q}"))?;
            print(args.output, &body, render_who)
        }
        AccessCommand::What(args) => {
            let q = query(&[
                ("cluster", Some(&args.cluster)),
                ("namespace", Some(&args.namespace)),
                ("serviceAccount", Some(&args.service_account)),
            ]);
            let body = ask(&args.connection, &format!("/podiam/access/what?{q}"))?;
            print(args.output, &body, render_what)
        }
        AccessCommand::Findings(args) => {
            let days = args.unused_days.to_string();
            let q = query(&[
                ("cluster", args.cluster.as_deref()),
                ("unusedDays", Some(&days)),
            ]);
            let body = ask(&args.connection, &format!("/podiam/access/findings?{q}"))?;
            print(args.output, &body, render_findings)?;
            let worst = body
                .get("findings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| f.get("severity").and_then(Value::as_str))
                .map(|s| match s {
                    "error" => 2,
                    "warning" => 1,
                    _ => 0,
                })
                .max();
            let threshold = args.fail_on.map(|f| match f {
                FailOn::Warning => 1,
                FailOn::Error => 2,
            });
            Ok(match (worst, threshold) {
                (Some(w), Some(t)) if w >= t => ExitCode::from(1),
                _ => ExitCode::SUCCESS,
            })
        }
    }
}

fn print(output: Output, body: &Value, table: fn(&Value) -> String) -> anyhow::Result<ExitCode> {
    let text = match output {
        Output::Json => serde_json::to_string_pretty(body).context("cannot print JSON")?,
        Output::Table => table(body),
    };
    println!("{}", text.trim_end());
    Ok(ExitCode::SUCCESS)
}

fn s<'v>(value: &'v Value, pointer: &str) -> &'v str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn array<'v>(value: &'v Value, pointer: &str) -> &'v [Value] {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Rows as columns padded to their widest cell.
fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let mut text = String::new();
        for (cell, w) in cells.iter().zip(&widths) {
            let _ = write!(text, "{cell:<w$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.iter().map(|h| (*h).to_owned()).collect(), &mut out);
    for row in rows {
        line(row.clone(), &mut out);
    }
    out
}

fn open_conditions(entry: &Value) -> Vec<String> {
    array(entry, "/open_conditions")
        .iter()
        .map(|c| {
            let values: Vec<&str> = array(c, "/values")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "{} {} {} [{}] ({}, {}, {})",
                s(c, "/effect"),
                s(c, "/operator"),
                s(c, "/key"),
                values.join(", "),
                s(c, "/policy"),
                s(c, "/statement"),
                "open"
            )
        })
        .collect()
}

fn render_who(body: &Value) -> String {
    let entries = array(body, "/entries");
    let mut out = format!(
        "Who can {} on {}:\n\n",
        s(body, "/action"),
        s(body, "/resource")
    );
    if entries.is_empty() {
        out.push_str("No workload can (among the roles and associations you may read).\n");
        return out;
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let role = match e.get("via").and_then(Value::as_str) {
                Some(via) => format!("{} (via {via})", s(e, "/role_arn")),
                None => s(e, "/role_arn").to_owned(),
            };
            vec![
                s(e, "/cluster").to_owned(),
                s(e, "/namespace").to_owned(),
                s(e, "/service_account").to_owned(),
                s(e, "/path").to_owned(),
                role,
                s(e, "/decision").to_owned(),
            ]
        })
        .collect();
    out.push_str(&columns(
        &[
            "CLUSTER",
            "NAMESPACE",
            "SERVICE ACCOUNT",
            "PATH",
            "ROLE",
            "DECISION",
        ],
        &rows,
    ));
    for e in entries {
        let who = format!(
            "{}/{}/{}",
            s(e, "/cluster"),
            s(e, "/namespace"),
            s(e, "/service_account")
        );
        for c in open_conditions(e) {
            let _ = writeln!(out, "  {who}: if {c}");
        }
        if let Some(d) = e.get("denied_by") {
            let _ = writeln!(
                out,
                "  {who}: denied by {} in {}",
                s(d, "/statement"),
                s(d, "/policy")
            );
        }
    }
    for note in array(body, "/notes").iter().filter_map(Value::as_str) {
        let _ = writeln!(out, "\nNote: {note}");
    }
    out
}

fn render_what(body: &Value) -> String {
    let mut out = format!(
        "{}/{}/{}\n\n",
        s(body, "/cluster"),
        s(body, "/namespace"),
        s(body, "/service_account")
    );
    let paths = array(body, "/paths");
    if paths.is_empty() {
        out.push_str("No path gives this service account a role (among what you may read).\n");
    }
    for p in paths {
        let wins = if p.get("wins").and_then(Value::as_bool) == Some(true) {
            "  <- the SDKs use this one"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{}: {} (trust: {}){wins}",
            s(p, "/path"),
            s(p, "/role_arn"),
            s(p, "/trust")
        );
        if let Some(via) = p.get("via").and_then(Value::as_str) {
            let _ = writeln!(out, "  via {via}");
        }
        if let Some(id) = p.get("association_id").and_then(Value::as_str) {
            let _ = writeln!(out, "  association {id}");
        }
        if let Some(note) = p.get("note").and_then(Value::as_str) {
            let _ = writeln!(out, "  {note}");
        }
        for c in open_conditions(p) {
            let _ = writeln!(out, "  if {c}");
        }
        for service in array(p, "/permissions") {
            let _ = writeln!(out, "  {}:", s(service, "/service"));
            for st in array(service, "/statements") {
                let list = |k: &str| -> String {
                    array(st, k)
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let _ = writeln!(
                    out,
                    "    {} {} on {}{}  [{}]",
                    s(st, "/effect"),
                    list("/actions"),
                    list("/resources"),
                    if array(st, "/conditions").is_empty() {
                        String::new()
                    } else {
                        format!(" when {}", list("/conditions"))
                    },
                    s(st, "/policy")
                );
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", s(body, "/precedence"));
    out
}

fn render_findings(body: &Value) -> String {
    let findings = array(body, "/findings");
    if findings.is_empty() {
        return "No findings.\n".to_owned();
    }
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(
            out,
            "{:<7} {}  {}\n        {}\n        fix: {}\n",
            s(f, "/severity"),
            s(f, "/code"),
            s(f, "/object"),
            s(f, "/message"),
            s(f, "/fix")
        );
    }
    let count = |sev: &str| findings.iter().filter(|f| s(f, "/severity") == sev).count();
    let _ = writeln!(
        out,
        "{} finding{}: {} error, {} warning, {} info",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        count("error"),
        count("warning"),
        count("info")
    );
    out
}
