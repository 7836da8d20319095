//! `podiam exec`: run a local process as a pod of a ServiceAccount would run — the webhook's
//! own mutation decides IRSA or Pod Identity, the cluster's issuer mints the projected tokens,
//! and the SDK in the process finds everything through its default credential chain.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use podiam_client::AwsClient;
use podiam_webhook::ServiceAccountInfo;
use serde_json::Value;

use crate::dev::DEV_NODE_NAME;
use crate::pod::{
    Connection, ProjectedToken, TokenSubject, association_ids, connect, container_env, mint_token,
    mutate_pod, mutation_config, pod_of, projected_tokens, read_service_account,
};

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

pub(crate) fn run(args: ExecArgs) -> ExitCode {
    match run_exec(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("podiam exec: {e:#}");
            ExitCode::from(125)
        }
    }
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
    let subject = TokenSubject {
        cluster,
        account,
        pod_name,
        node_name,
    };
    let jwt = mint_token(client, subject, token).await?;
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
    let account = read_service_account(
        args.file.as_deref(),
        args.namespace.as_deref(),
        args.service_account.as_deref(),
    )?;
    let Connection {
        server,
        region,
        client,
    } = connect(args.region.as_deref())?;
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
        let association = !association_ids(&client, &args.cluster, &account)
            .await?
            .is_empty();
        let config = mutation_config(&region, &server);
        let pod = pod_of(&account, &pod_name, &args.node_name);
        let mutation = mutate_pod(&pod, &account, association, &config);
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
    let mut env: Vec<(String, String)> = container_env(pod)
        .into_iter()
        .map(|(name, value)| {
            let value = tokens
                .iter()
                .find(|(in_pod, _)| *in_pod == value)
                .map_or(value, |(_, t)| t.file.display().to_string());
            (name, value)
        })
        .collect();
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
