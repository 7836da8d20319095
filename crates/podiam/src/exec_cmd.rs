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
    Connection, ProjectedToken, SubjectArgs, TokenSubject, association_ids, connect, container_env,
    mint_token, mutate_pod, mutation_config, pod_of, projected_tokens,
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
    #[command(flatten)]
    subject: SubjectArgs,
    /// The pod's name (in its tokens and session names) [default: SERVICEACCOUNT-exec].
    #[arg(long)]
    pod_name: Option<String>,
    /// The node the pod runs on (tokens are bound to it).
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

/// The command could not be started.
#[derive(Debug)]
struct SpawnError {
    program: String,
    error: std::io::Error,
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.error.kind() {
            std::io::ErrorKind::NotFound => write!(f, "{}: command not found", self.program),
            std::io::ErrorKind::PermissionDenied => {
                write!(f, "{}: permission denied (not executable)", self.program)
            }
            _ => write!(f, "cannot run {}: {}", self.program, self.error),
        }
    }
}

impl std::error::Error for SpawnError {}

/// As `env`, `docker run` and `kubectl exec`: 127 when the command is not found, 126 when it
/// cannot be executed, 125 when podiam exec itself failed, else the command's own status.
pub(crate) fn run(args: ExecArgs) -> ExitCode {
    match run_exec(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("podiam exec: {e:#}");
            let code = match e.downcast_ref::<SpawnError>().map(|s| s.error.kind()) {
                Some(std::io::ErrorKind::NotFound) => 127,
                Some(_) => 126,
                None => 125,
            };
            ExitCode::from(code)
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
    Temporary(tempfile::TempDir),
}

/// The prefix of the temporary token directories: `podiam-exec-PID-RANDOM`.
const TEMPORARY_PREFIX: &str = "podiam-exec-";

/// Where temporary token directories go: `$XDG_RUNTIME_DIR` (private to the user), else the
/// system's temporary directory.
fn temporary_base() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

impl TokenDir {
    /// The given directory (created 0700 if missing; an existing one must be the caller's and
    /// writable by no one else), or a new one with a name no one can guess.
    fn create(given: Option<&Path>) -> anyhow::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
        if let Some(path) = given {
            match std::fs::symlink_metadata(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                }
                Err(e) => bail!("cannot use --token-dir {}: {e}", path.display()),
                Ok(meta) => {
                    if !meta.file_type().is_dir() {
                        bail!(
                            "--token-dir {} is not a directory (a symbolic link is refused too)",
                            path.display()
                        );
                    }
                    if meta.uid() != nix::unistd::geteuid().as_raw() {
                        bail!(
                            "--token-dir {} belongs to another user; use a directory of your own",
                            path.display()
                        );
                    }
                    if meta.mode() & 0o022 != 0 {
                        bail!(
                            "--token-dir {} is writable by others (mode {:o}); run chmod go-w on it or use another",
                            path.display(),
                            meta.mode() & 0o7777
                        );
                    }
                }
            }
            return Ok(Self::Given(path.to_owned()));
        }
        let base = temporary_base();
        remove_stale(&base);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{TEMPORARY_PREFIX}{}-", std::process::id()))
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&base)
            .with_context(|| format!("cannot create a token directory in {}", base.display()))?;
        Ok(Self::Temporary(dir))
    }

    fn path(&self) -> &Path {
        match self {
            Self::Given(p) => p,
            Self::Temporary(dir) => dir.path(),
        }
    }
}

/// Removes the token directories of `podiam exec` processes that are gone (killed before they
/// could clean up), if they are the caller's own.
fn remove_stale(base: &Path) {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = nix::unistd::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMPORARY_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let ours = entry
            .path()
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_dir() && m.uid() == me);
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if ours && !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn run_exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    let (cluster, account) = args.subject.resolve()?;
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
        let association = !association_ids(&client, &cluster, &account)
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
                &cluster,
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
        // The command dies with podiam exec, even when podiam exec is killed with SIGKILL
        // (PR_SET_PDEATHSIG; spawned from the thread that lives until podiam exec ends).
        let mut child = match ur_taking_me_with_you::spawn_dying_with_parent_async(command) {
            Ok(child) => child,
            Err(e) => {
                return Err(SpawnError {
                    program: program.clone(),
                    error: e,
                }
                .into());
            }
        };
        let renewals = tokio::spawn(renew_forever(
            client.clone(),
            cluster.clone(),
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
