//! `podiam exec`: run a local process as a pod of a ServiceAccount would run — the webhook's
//! own mutation decides IRSA or Pod Identity, the cluster's issuer mints the projected tokens,
//! and the SDK in the process finds everything through its default credential chain.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use http::Method;
use podiam_client::{AwsClient, ChainCredentials, ClientError, Timeouts};
use podiam_types::SystemClock;
use podiam_webhook::cli::service_account_info;
use podiam_webhook::{Context, MutationConfig, ServiceAccountInfo, mutate};
use serde_json::{Value, json};

use crate::dev::DEV_NODE_NAME;

/// Environment a pod does not inherit from the shell: the caller's own AWS identity and
/// anything a previous `podiam exec` set.
const NOT_INHERITED: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_STS_REGIONAL_ENDPOINTS",
];

/// Run a command as a pod of a ServiceAccount: the webhook's mutation (IRSA or Pod Identity,
/// as the annotation and the associations decide), projected tokens minted from the cluster's
/// issuer and renewed at 80% of their lifetime, the SDK pointed at the local server, agent,
/// IMDS and gateway. Returns the command's exit code.
///
/// The endpoints come from PODIAM_SERVER (or AWS_ENDPOINT_URL), PODIAM_AGENT, PODIAM_IMDS and
/// PODIAM_GATEWAY, as `podiam dev --env-file` writes them; tokens are minted with the caller's
/// own credentials (the shell's), which the command does not inherit.
#[derive(Debug, Args)]
#[command(arg_required_else_help = true)]
pub(crate) struct ExecArgs {
    /// The cluster [default: $PODIAM_CLUSTER].
    #[arg(long, env = "PODIAM_CLUSTER")]
    cluster: String,
    /// The ServiceAccount manifest (YAML or JSON), annotations included.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        conflicts_with_all = ["namespace", "service_account"],
        required_unless_present = "service_account"
    )]
    file: Option<PathBuf>,
    /// The namespace (with --service-account, for a ServiceAccount without annotations).
    #[arg(long, short = 'n', requires = "service_account")]
    namespace: Option<String>,
    /// The ServiceAccount's name.
    #[arg(long, requires = "namespace")]
    service_account: Option<String>,
    /// The pod's name (in its tokens and session names) [default: SERVICEACCOUNT-exec].
    #[arg(long)]
    pod_name: Option<String>,
    /// The node the pod runs on (tokens are bound to it) [default: $PODIAM_NODE_NAME or
    /// podiam-dev-node].
    #[arg(long, env = "PODIAM_NODE_NAME", default_value = DEV_NODE_NAME)]
    node_name: String,
    /// Where to write the projected tokens [default: a private temporary directory, removed
    /// afterwards].
    #[arg(long, value_name = "DIR")]
    token_dir: Option<PathBuf>,
    /// The region [default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// A projected token: the file and how to mint it.
#[derive(Debug, Clone)]
struct ProjectedToken {
    file: PathBuf,
    audience: String,
    lifetime: u64,
}

pub(crate) fn run(args: ExecArgs) -> ExitCode {
    match run_exec(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("podiam exec: {e:#}");
            ExitCode::from(125)
        }
    }
}

fn read_service_account(args: &ExecArgs) -> anyhow::Result<ServiceAccountInfo> {
    let object: Value = match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_yaml_ng::from_str(&text)
                .with_context(|| format!("{} is not a YAML or JSON object", path.display()))?
        }
        None => json!({"metadata": {
            "name": args.service_account, "namespace": args.namespace}}),
    };
    if object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("ServiceAccount")
        != "ServiceAccount"
    {
        bail!("the manifest is not a ServiceAccount");
    }
    let mut info = service_account_info(&object);
    if info.namespace.is_empty() {
        "default".clone_into(&mut info.namespace);
    }
    if !podiam_webhook::is_valid_name(&info.name) || !podiam_webhook::is_valid_name(&info.namespace)
    {
        bail!(
            "{:?}/{:?} is not a valid namespace and ServiceAccount name",
            info.namespace,
            info.name
        );
    }
    Ok(info)
}

fn explain(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Api { code, message, .. } => anyhow::anyhow!("{code}: {message}"),
        other => anyhow::anyhow!("{other}"),
    }
}

async fn has_association(
    client: &AwsClient,
    cluster: &str,
    account: &ServiceAccountInfo,
) -> anyhow::Result<bool> {
    let path = format!(
        "/clusters/{}/pod-identity-associations?namespace={}&serviceAccount={}",
        podiam_sigv4::encode_component(cluster.as_bytes(), false),
        podiam_sigv4::encode_component(account.namespace.as_bytes(), false),
        podiam_sigv4::encode_component(account.name.as_bytes(), false),
    );
    let answer = client
        .rest_json("eks", Method::GET, &path, None)
        .await
        .map_err(explain)
        .with_context(|| {
            format!("cannot list the pod identity associations of cluster {cluster}")
        })?;
    Ok(answer
        .body
        .get("associations")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty()))
}

/// The projected service-account tokens of the mutated pod's first container, at their place
/// under `dir` (the pod's mount path, re-rooted).
fn projected_tokens(pod: &Value, dir: &Path) -> Vec<(String, ProjectedToken)> {
    let mounts: BTreeMap<&str, &str> = pod
        .pointer("/spec/containers/0/volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| Some((m.get("name")?.as_str()?, m.get("mountPath")?.as_str()?)))
        .collect();
    let mut tokens = Vec::new();
    for volume in pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(mount) = volume
            .get("name")
            .and_then(Value::as_str)
            .and_then(|n| mounts.get(n))
        else {
            continue;
        };
        for source in volume
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(token) = source.get("serviceAccountToken") else {
                continue;
            };
            let path = token.get("path").and_then(Value::as_str).unwrap_or("token");
            let in_pod = format!("{}/{path}", mount.trim_end_matches('/'));
            tokens.push((
                in_pod.clone(),
                ProjectedToken {
                    file: dir.join(in_pod.trim_start_matches('/')),
                    audience: token
                        .get("audience")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    lifetime: token
                        .get("expirationSeconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(3600),
                },
            ));
        }
    }
    tokens
}

/// Mints `token` and replaces its file atomically (0600, no trailing newline).
async fn write_token(
    client: &AwsClient,
    cluster: &str,
    account: &ServiceAccountInfo,
    pod_name: &str,
    node_name: &str,
    token: &ProjectedToken,
) -> anyhow::Result<()> {
    let body = json!({
        "namespace": account.namespace,
        "serviceAccount": account.name,
        "audiences": [token.audience],
        "podName": pod_name,
        "nodeName": node_name,
        "ttl": token.lifetime.clamp(600, 172_800),
    });
    let path = format!(
        "/clusters/{}/podiam/service-account-token",
        podiam_sigv4::encode_component(cluster.as_bytes(), true)
    );
    let answer = client
        .rest_json("eks", Method::POST, &path, Some(&body))
        .await
        .map_err(explain)
        .with_context(|| format!("cannot mint a token from cluster {cluster}'s issuer"))?;
    let jwt = answer
        .body
        .get("token")
        .and_then(Value::as_str)
        .context("the server's answer has no token")?;
    let parent = token
        .file
        .parent()
        .context("a token file has no directory")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let temporary = token.file.with_extension("podiam-new");
    crate::cli_io::write_private(&temporary, jwt.as_bytes(), true)?;
    std::fs::rename(&temporary, &token.file)
        .with_context(|| format!("cannot write {}", token.file.display()))?;
    Ok(())
}

/// The private directory for the tokens: the one given, or a fresh one removed on drop.
enum TokenDir {
    Given(PathBuf),
    Temporary(PathBuf),
}

impl TokenDir {
    fn create(given: Option<&Path>) -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt as _;
        if let Some(path) = given {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            return Ok(Self::Given(path.to_owned()));
        }
        let base =
            std::env::var_os("XDG_RUNTIME_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let path = base.join(format!("podiam-exec-{}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self::Temporary(path))
    }

    fn path(&self) -> &Path {
        match self {
            Self::Given(p) | Self::Temporary(p) => p,
        }
    }
}

impl Drop for TokenDir {
    fn drop(&mut self) {
        if let Self::Temporary(path) = self {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

fn run_exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    let account = read_service_account(&args)?;
    let server = std::env::var("PODIAM_SERVER")
        .ok()
        .or_else(|| podiam_client::endpoint(None, "EKS"))
        .context("no podiam server: set PODIAM_SERVER or AWS_ENDPOINT_URL (`podiam dev --env-file` writes both)")?;
    let region = podiam_client::region(args.region.as_deref());
    let client = AwsClient::new(
        &server,
        &region,
        Arc::new(ChainCredentials::standard(None, Arc::new(SystemClock))),
        Arc::new(SystemClock),
        Timeouts::default(),
    )?;
    let pod_name = args
        .pod_name
        .clone()
        .unwrap_or_else(|| format!("{}-exec", account.name));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let association = has_association(&client, &args.cluster, &account).await?;
        let config = MutationConfig {
            aws_default_region: region.clone(),
            sts_regional_endpoint: true,
            sts_endpoint_url: server.clone(),
            ..MutationConfig::default()
        };
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": account.namespace},
            "spec": {
                "serviceAccountName": account.name,
                "nodeName": args.node_name,
                "containers": [{"name": "main", "image": "podiam-exec"}],
            },
        });
        let mutation = mutate(
            &pod,
            &Context {
                service_account: Some(&account),
                has_association: association,
                config: &config,
                jittered_expiration: config.token_expiration,
            },
        );
        let token_dir = TokenDir::create(args.token_dir.as_deref())?;
        let mutated = mutation.as_ref().map_or(&pod, |m| &m.pod);
        let tokens = projected_tokens(mutated, token_dir.path());
        for (_, token) in &tokens {
            write_token(
                &client,
                &args.cluster,
                &account,
                &pod_name,
                &args.node_name,
                token,
            )
            .await?;
        }
        let env = child_environment(mutated, &tokens);
        let (program, program_args) = args.command.split_first().context("no command to run")?;
        let mut command = tokio::process::Command::new(program);
        command.args(program_args);
        for name in NOT_INHERITED {
            command.env_remove(name);
        }
        command.envs(env);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot run {program:?}"))?;
        let renewals = tokio::spawn(renew_forever(
            client.clone(),
            args.cluster.clone(),
            account.clone(),
            pod_name.clone(),
            args.node_name.clone(),
            tokens.into_iter().map(|(_, t)| t).collect(),
        ));
        let status = wait_forwarding_signals(&mut child).await?;
        renewals.abort();
        drop(token_dir);
        Ok(exit_code(status))
    })
}

/// The environment the command gets on top of the shell's: the mutated container's variables
/// with token paths re-rooted under the token directory, and the local endpoints.
fn child_environment(pod: &Value, tokens: &[(String, ProjectedToken)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for var in pod
        .pointer("/spec/containers/0/env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(value)) = (
            var.get("name").and_then(Value::as_str),
            var.get("value").and_then(Value::as_str),
        ) else {
            continue;
        };
        let value = tokens
            .iter()
            .find(|(in_pod, _)| in_pod == value)
            .map_or_else(|| value.to_owned(), |(_, t)| t.file.display().to_string());
        env.push((name.to_owned(), value));
    }
    let local = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(agent) = local("PODIAM_AGENT")
        && let Some(entry) = env
            .iter_mut()
            .find(|(k, _)| k == "AWS_CONTAINER_CREDENTIALS_FULL_URI")
    {
        entry.1 = agent;
    }
    if let Some(imds) = local("PODIAM_IMDS") {
        env.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT".to_owned(), imds));
    }
    if let Some(gateway) = local("PODIAM_GATEWAY") {
        env.push(("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), gateway));
    }
    // A pod has no shared credentials or config file: the caller's must not be found.
    for name in ["AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"] {
        env.push((name.to_owned(), "/dev/null".to_owned()));
    }
    env
}

/// Re-mints every token at 80% of its lifetime while the command runs.
async fn renew_forever(
    client: AwsClient,
    cluster: String,
    account: ServiceAccountInfo,
    pod_name: String,
    node_name: String,
    tokens: Vec<ProjectedToken>,
) {
    let Some(shortest) = tokens.iter().map(|t| t.lifetime.clamp(600, 172_800)).min() else {
        return;
    };
    let period = Duration::from_secs(shortest * 4 / 5);
    loop {
        tokio::time::sleep(period).await;
        for token in &tokens {
            if let Err(e) =
                write_token(&client, &cluster, &account, &pod_name, &node_name, token).await
            {
                tracing::warn!(error = %format!("{e:#}"), "cannot renew a projected token; retrying in 10 s");
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        }
    }
}

/// Waits for the child, passing SIGINT, SIGTERM, SIGHUP and SIGQUIT on to it.
async fn wait_forwarding_signals(
    child: &mut tokio::process::Child,
) -> anyhow::Result<std::process::ExitStatus> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use tokio::signal::unix::{SignalKind, signal};
    let mut streams = Vec::new();
    for (kind, sig) in [
        (SignalKind::interrupt(), Signal::SIGINT),
        (SignalKind::terminate(), Signal::SIGTERM),
        (SignalKind::hangup(), Signal::SIGHUP),
        (SignalKind::quit(), Signal::SIGQUIT),
    ] {
        streams.push((signal(kind).context("cannot handle signals")?, sig));
    }
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    loop {
        let [(interrupt, _), (terminate, _), (hangup, _), (quit, _)] = &mut streams[..] else {
            bail!("signal handlers missing");
        };
        let received = tokio::select! {
            status = child.wait() => return status.context("cannot wait for the command"),
            _ = interrupt.recv() => Signal::SIGINT,
            _ = terminate.recv() => Signal::SIGTERM,
            _ = hangup.recv() => Signal::SIGHUP,
            _ = quit.recv() => Signal::SIGQUIT,
        };
        if let Some(pid) = pid {
            let _ = kill(pid, received);
        }
    }
}

/// The command's exit code, or 128 + the signal that ended it, as shells report.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt as _;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
