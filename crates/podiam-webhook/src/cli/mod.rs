//! `podiam webhook`: the HTTPS service, and `podiam webhook render` (what the webhook does to a
//! pod, from files, through the same code path as `/mutate`).

mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{ArgAction, Args, Subcommand, ValueEnum};
use podiam_process::exit_on;
use serde_json::Value;

use crate::{Context, FULL_URI_IPV6, MutationConfig, ServiceAccountInfo, mutate};

/// The mutation flags, as the reference webhook's.
#[derive(Debug, Clone, Args)]
pub struct MutationArgs {
    /// Annotation (and label) prefix.
    #[arg(long, default_value = "eks.amazonaws.com")]
    annotation_prefix: String,
    /// The IRSA token's audience.
    #[arg(long, default_value = "sts.amazonaws.com")]
    token_audience: String,
    /// Where the IRSA token is mounted.
    #[arg(
        long,
        default_value = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
    )]
    token_mount_path: String,
    /// Token lifetime in seconds (at least 600).
    #[arg(long, default_value_t = 86_400)]
    token_expiration: i64,
    /// Region to inject as AWS_DEFAULT_REGION and AWS_REGION (none when empty).
    #[arg(long, default_value = "")]
    aws_default_region: String,
    /// Inject AWS_STS_REGIONAL_ENDPOINTS=regional (`--flag`, `--flag=true`, `--flag=false`).
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set)]
    sts_regional_endpoint: bool,
    /// The Pod Identity token's audience.
    #[arg(long, default_value = "pods.eks.amazonaws.com")]
    container_credentials_audience: String,
    /// Where the Pod Identity token is mounted.
    #[arg(
        long,
        default_value = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
    )]
    container_credentials_token_mount_path: String,
    /// The Pod Identity token volume's name.
    #[arg(long, default_value = "eks-pod-identity-token")]
    container_credentials_token_volume_name: String,
    /// The Pod Identity token file's name.
    #[arg(long, default_value = "eks-pod-identity-token")]
    container_credentials_token_path: String,
    /// AWS_CONTAINER_CREDENTIALS_FULL_URI [default: http://169.254.170.23/v1/credentials, or
    /// http://[fd00:ec2::23]/v1/credentials with --ipv6].
    #[arg(long)]
    container_credentials_full_uri: Option<String>,
    /// podiam's STS URL, injected as AWS_ENDPOINT_URL_STS into IRSA containers (podiam's
    /// addition; none by default, as the reference).
    #[arg(long, value_name = "URL", default_value = "")]
    sts_endpoint_url: String,
    /// The cluster is IPv6: pods reach the agent at fd00:ec2::23.
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set)]
    ipv6: bool,
}

impl MutationArgs {
    /// The configuration these flags say.
    pub fn config(&self) -> MutationConfig {
        let defaults = MutationConfig::default();
        MutationConfig {
            annotation_prefix: self.annotation_prefix.clone(),
            token_audience: self.token_audience.clone(),
            token_mount_path: self.token_mount_path.clone(),
            token_expiration: self.token_expiration,
            aws_default_region: self.aws_default_region.clone(),
            sts_regional_endpoint: self.sts_regional_endpoint,
            container_credentials_audience: self.container_credentials_audience.clone(),
            container_credentials_token_mount_path: self
                .container_credentials_token_mount_path
                .clone(),
            container_credentials_token_volume_name: self
                .container_credentials_token_volume_name
                .clone(),
            container_credentials_token_path: self.container_credentials_token_path.clone(),
            container_credentials_full_uri: self
                .container_credentials_full_uri
                .clone()
                .unwrap_or_else(|| {
                    if self.ipv6 {
                        FULL_URI_IPV6.to_owned()
                    } else {
                        defaults.container_credentials_full_uri
                    }
                }),
            sts_endpoint_url: self.sts_endpoint_url.clone(),
        }
    }
}

/// `podiam webhook`: serve, or a subcommand.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct WebhookArgs {
    #[command(subcommand)]
    command: Option<WebhookCommand>,
    #[command(flatten)]
    serve: serve::ServeArgs,
}

/// `podiam webhook …`.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Show what the webhook does to a pod: the JSON Patch (or the mutated pod), from YAML or
    /// JSON files, through the same code as /mutate.
    Render(RenderArgs),
}

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The JSON Patch (RFC 6902).
    Patch,
    /// The mutated pod, as YAML.
    Pod,
}

/// `podiam webhook render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The pod (YAML or JSON; `-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pod: PathBuf,
    /// Its ServiceAccount (YAML or JSON; `-` reads standard input).
    #[arg(long, value_name = "FILE")]
    service_account: Option<PathBuf>,
    /// A pod identity association exists for the ServiceAccount (`--flag`, `=true`, `=false`).
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set)]
    pod_identity: bool,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Output::Patch)]
    output: Output,
    /// The token lifetime the webhook would draw for Pod Identity pods with the default
    /// (normally random in 79200..=86400).
    #[arg(long, default_value_t = 86_400)]
    jittered_expiration: i64,
    #[command(flatten)]
    mutation: MutationArgs,
}

/// Reads a Kubernetes object from YAML or JSON, in a file or (`-`) on standard input.
fn read_object(path: &std::path::Path) -> anyhow::Result<Value> {
    let mut text = String::new();
    let limit = crate::MAX_REVIEW_BYTES as u64 + 1;
    let source: Box<dyn std::io::Read> = if path == std::path::Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )
    };
    std::io::Read::read_to_string(&mut std::io::Read::take(source, limit), &mut text)
        .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
    if text.len() > crate::MAX_REVIEW_BYTES {
        bail!(
            "{} is larger than {} bytes",
            path.display(),
            crate::MAX_REVIEW_BYTES
        );
    }
    crate::check_nesting(&text, crate::MAX_NESTING)
        .map_err(|e| anyhow::anyhow!("{} is {e}", path.display()))?;
    serde_yaml_ng::from_str(&text)
        .with_context(|| format!("{} is not a YAML or JSON object", path.display()))
}

/// The webhook's view of a ServiceAccount object.
pub fn service_account_info(object: &Value) -> ServiceAccountInfo {
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    ServiceAccountInfo {
        name: text("/metadata/name"),
        namespace: text("/metadata/namespace"),
        annotations: object
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Runs the webhook, or `render`.
pub fn run(args: WebhookArgs) -> ExitCode {
    match args.command {
        Some(WebhookCommand::Render(render_args)) => exit_on(render(&render_args)),
        None => exit_on(serve::run(args.serve)),
    }
}

fn render(args: &RenderArgs) -> anyhow::Result<ExitCode> {
    let stdin = std::path::Path::new("-");
    if args.pod == stdin && args.service_account.as_deref() == Some(stdin) {
        bail!("only one of --pod and --service-account can read standard input (-)");
    }
    let pod = read_object(&args.pod)?;
    let account = args
        .service_account
        .as_deref()
        .map(read_object)
        .transpose()?
        .map(|sa| service_account_info(&sa));
    let config = args.mutation.config();
    let mutation = mutate(
        &pod,
        &Context {
            service_account: account.as_ref(),
            has_association: args.pod_identity,
            config: &config,
            jittered_expiration: args.jittered_expiration,
        },
    );
    match (args.output, mutation) {
        (Output::Patch, Some(m)) => println!("{}", serde_json::to_string_pretty(&m.patch)?),
        (Output::Patch, None) => println!("[]"),
        (Output::Pod, m) => print!("{}", serde_yaml_ng::to_string(&m.map_or(pod, |m| m.pod))?),
    }
    Ok(ExitCode::SUCCESS)
}
