//! `podiam cluster`: what the EKS wire cannot express — creating a cluster with a chosen token
//! issuer, and minting a service-account token from a hosted issuer (`kubectl create token`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use podiam_client::{AwsClient, ChainCredentials, ClientError, Timeouts};
use podiam_types::SystemClock;
use serde_json::{Value, json};

use crate::cli_io::{exit_on, read_input};

/// Where the server is and how to sign, as for the AWS CLI.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// The podiam server [default: $AWS_ENDPOINT_URL_EKS or $AWS_ENDPOINT_URL].
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// The region to sign for [default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1].
    #[arg(long)]
    region: Option<String>,
}

impl Connection {
    pub(crate) fn client(&self) -> anyhow::Result<AwsClient> {
        let endpoint = podiam_client::endpoint(self.endpoint.as_deref(), "EKS")
            .context("no server: pass --endpoint URL or set AWS_ENDPOINT_URL")?;
        let region = podiam_client::region(self.region.as_deref());
        let credentials = Arc::new(ChainCredentials::standard(
            None,
            None,
            Arc::new(SystemClock),
        ));
        Ok(AwsClient::new(
            &endpoint,
            &region,
            credentials,
            Arc::new(SystemClock),
            Timeouts::default(),
        )?)
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Create a cluster with a hosted issuer (podiam signs its service-account tokens) or an
    /// external one (a real kube-apiserver signs).
    ///
    /// With neither --issuer-url nor --external-issuer, the issuer is hosted at a URL under the
    /// server's --public-url. Prints the cluster as DescribeCluster does.
    Create(CreateArgs),
    /// Mint a service-account token from a cluster's hosted issuer, like `kubectl create token`.
    ///
    /// Prints the JWT without a newline (write it to a pod's token file as is).
    Token(TokenArgs),
    PublishIssuer(crate::publish_issuer::PublishIssuerArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The cluster name.
    #[arg(long)]
    name: String,
    /// The hosted issuer's URL, e.g. EKS's form so that trust policies work verbatim.
    #[arg(long, value_name = "URL", conflicts_with = "external_issuer")]
    issuer_url: Option<String>,
    /// The URL of an external issuer (the kube-apiserver's --service-account-issuer).
    #[arg(long, value_name = "URL")]
    external_issuer: Option<String>,
    /// The external issuer's JWKS, for apiservers the server cannot reach.
    #[arg(long, value_name = "FILE", requires = "external_issuer")]
    jwks_file: Option<PathBuf>,
    /// CAs to trust when the server fetches the external issuer's discovery document.
    #[arg(long, value_name = "FILE", requires = "external_issuer")]
    ca_file: Option<PathBuf>,
    /// The Kubernetes version to report.
    #[arg(long)]
    kubernetes_version: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The cluster.
    #[arg(long)]
    cluster: String,
    /// The service account's namespace.
    #[arg(long)]
    namespace: String,
    /// The service account.
    #[arg(long)]
    service_account: String,
    /// An audience (repeat for several): sts.amazonaws.com for IRSA, pods.eks.amazonaws.com
    /// for EKS Pod Identity.
    #[arg(long, required = true)]
    audience: Vec<String>,
    /// Bind the token to a pod.
    #[arg(long)]
    pod_name: Option<String>,
    /// The pod's uid [default: derived from the cluster and the pod name].
    #[arg(long, requires = "pod_name")]
    pod_uid: Option<String>,
    /// Bind the token to a node.
    #[arg(long)]
    node_name: Option<String>,
    /// Lifetime in seconds (600 to 172800).
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// Write the token to this file (mode 0600) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    connection: Connection,
}

pub(crate) fn run(command: ClusterCommand) -> ExitCode {
    exit_on(run_command(command))
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(crate) fn explain(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Api { code, message, .. } => anyhow::anyhow!("{code}: {message}"),
        other => anyhow::anyhow!("{other}"),
    }
}

fn run_command(command: ClusterCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClusterCommand::Create(args) => create(&args),
        ClusterCommand::Token(args) => token(&args),
        ClusterCommand::PublishIssuer(args) => crate::publish_issuer::publish_issuer(&args),
    }
}

fn create(args: &CreateArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.client()?;
    let issuer = match &args.external_issuer {
        Some(url) => {
            let jwks = args.jwks_file.as_deref().map(read_input).transpose()?;
            let ca = args.ca_file.as_deref().map(read_input).transpose()?;
            json!({"kind": "external", "url": url, "jwks": jwks, "ca": ca})
        }
        None => json!({"kind": "hosted", "url": args.issuer_url}),
    };
    let mut body = json!({ "name": args.name, "podiamIssuer": issuer });
    if let (Some(version), Some(map)) = (&args.kubernetes_version, body.as_object_mut()) {
        map.insert("version".to_owned(), json!(version));
    }
    let answer = runtime()?
        .block_on(client.rest_json("eks", http::Method::POST, "/clusters", Some(&body)))
        .map_err(explain)?;
    println!("{}", serde_json::to_string_pretty(&answer.body)?);
    Ok(ExitCode::SUCCESS)
}

fn token(args: &TokenArgs) -> anyhow::Result<ExitCode> {
    if !(600..=172_800).contains(&args.ttl) {
        bail!("--ttl {} is outside 600..=172800 seconds", args.ttl);
    }
    let client = args.connection.client()?;
    let body = json!({
        "namespace": args.namespace,
        "serviceAccount": args.service_account,
        "audiences": args.audience,
        "podName": args.pod_name,
        "podUid": args.pod_uid,
        "nodeName": args.node_name,
        "ttl": args.ttl,
    });
    let path = format!(
        "/clusters/{}/podiam/service-account-token",
        podiam_sigv4::encode_component(args.cluster.as_bytes(), true)
    );
    let answer = runtime()?
        .block_on(client.rest_json("eks", http::Method::POST, &path, Some(&body)))
        .map_err(explain)?;
    let token = answer
        .body
        .get("token")
        .and_then(Value::as_str)
        .context("the server's answer has no token")?;
    match &args.out {
        Some(path) => crate::cli_io::write_private(path, token.as_bytes(), true)?,
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(token.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
