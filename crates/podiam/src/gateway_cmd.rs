//! `podiam gateway`: the SigV4-verifying, policy-enforcing proxy in front of DynamoDB.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use podiam_client::{AwsClient, ChainCredentials, Credentials, Timeouts};
use podiam_crypto::{Secret, SystemRng};
use podiam_gateway::proxy::{Authorizer, Gateway, GatewayConfig, RemoteAuthorizer, gateway_router};
use podiam_process::{LogFormat, exit_on, init_logging, parse_duration, shutdown_signal};
use podiam_types::{Clock, SystemClock};

/// Run the DynamoDB gateway: verify each caller's SigV4 signature, evaluate their IAM policies
/// (identity, boundary, session; principal tags from session tags) for the actions and tables
/// the request touches, and forward allowed requests, re-signed, to --upstream.
#[derive(Debug, Args)]
pub(crate) struct GatewayArgs {
    /// Address to listen on (clients set AWS_ENDPOINT_URL_DYNAMODB=http://ADDR).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4600")]
    listen: SocketAddr,
    /// The DynamoDB-compatible endpoint, e.g. http://127.0.0.1:8000 (DynamoDB Local, moto).
    #[arg(long, value_name = "URL")]
    upstream: String,
    /// Credentials to re-sign forwarded requests with, as ACCESS_KEY_ID:SECRET (default: a
    /// placeholder pair, for upstreams that check no signature).
    #[arg(long, value_name = "ID:SECRET", env = "PODIAM_UPSTREAM_CREDENTIALS")]
    upstream_credentials: Option<String>,
    /// The podiam server that verifies callers and decides [default: $AWS_ENDPOINT_URL].
    /// The gateway signs its own calls with the standard credential chain and needs
    /// podiam:AuthorizeRequest. Not used with --store.
    #[arg(long, value_name = "URL", conflicts_with = "store")]
    server: Option<String>,
    /// Decide locally instead of asking a server: follow the servers' etcd store
    /// (etcd://host:2379[,host:2379…]) read-only, as a replica of their IAM state and session
    /// keyring, with their --kek-file. Saves a round trip per request; the gateway then holds
    /// what verifies every caller's signature, so it must be protected like a server.
    #[arg(long, value_name = "URL", requires = "kek_file")]
    store: Option<String>,
    /// The servers' key-encryption key (with --store).
    #[arg(long, value_name = "FILE", requires = "store")]
    kek_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    etcd: crate::etcd_args::EtcdArgs,
    /// The region tables live in [default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// The account that owns the tables [default: the gateway identity's account].
    #[arg(long, value_name = "ID")]
    account_id: Option<String>,
    /// Timeout of a whole upstream exchange.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    upstream_timeout: Duration,
    /// Event loops serving requests, each on a thread of its own with its own upstream
    /// connections [default: the CPUs this process may use]. Connection and in-flight limits
    /// are shared out between them.
    #[arg(long, value_name = "N")]
    workers: Option<std::num::NonZeroUsize>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    listener: podiam_process::ListenerArgs,
}

pub(crate) fn run(args: GatewayArgs) -> ExitCode {
    exit_on(run_gateway(args))
}

fn upstream_credentials(text: Option<&str>) -> anyhow::Result<Credentials> {
    let (id, secret) = match text {
        Some(text) => text
            .split_once(':')
            .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
            .context("--upstream-credentials must be ACCESS_KEY_ID:SECRET")?,
        None => ("podiam-gateway", "podiam-gateway"),
    };
    Ok(Credentials {
        access_key_id: id.to_owned(),
        secret_access_key: Secret::new(secret.to_owned()),
        session_token: None,
        expiration: None,
    })
}

fn run_gateway(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let region = podiam_client::region(args.region.as_deref());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // This runtime follows the store (or holds the server client) and waits for the signal;
    // requests are served by the workers' own runtimes.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (authorizer, decided_by, stored_account): (Arc<dyn Authorizer>, String, Option<String>) =
            match &args.store {
                Some(url) => {
                    let authority = follow_store(&args, url, Arc::clone(&clock)).await?;
                    let account = authority.account_id();
                    (Arc::new(authority), format!("this process, following {url}"), Some(account))
                }
                None => {
                    let server = podiam_client::endpoint(args.server.as_deref(), "PODIAM").context(
                        "no podiam server: pass --server URL or set AWS_ENDPOINT_URL (or --store to decide locally)",
                    )?;
                    let client = AwsClient::new(
                        &server,
                        &region,
                        Arc::new(ChainCredentials::standard(None, None, Arc::clone(&clock))),
                        Arc::clone(&clock),
                        Timeouts {
                            connect: Duration::from_secs(1),
                            request: Duration::from_secs(5),
                        },
                    )?;
                    let account = match &args.account_id {
                        Some(_) => None,
                        None => Some(podiam_client::caller_account(&client).await.with_context(|| {
                            format!("cannot ask {server} who the gateway is (pass --account-id, or check its credentials)")
                        })?),
                    };
                    (Arc::new(RemoteAuthorizer::new(client)), server, account)
                }
            };
        let account_id = match (args.account_id.clone(), stored_account) {
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => bail!("no account: pass --account-id"),
        };
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("--account-id {account_id:?} is not a 12-digit account id");
        }
        let gateway = Gateway::new(GatewayConfig {
            upstream: args.upstream.clone(),
            upstream_credentials: upstream_credentials(args.upstream_credentials.as_deref())?,
            region: region.clone(),
            account_id: account_id.clone(),
            authorizer,
            upstream_timeout: args.upstream_timeout,
            clock,
            rng: Arc::new(SystemRng),
        })?;
        let workers = args.workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            std::num::NonZeroUsize::get,
        );
        let listeners = podiam_http::bind_shared(args.listen, workers)
            .await
            .with_context(|| format!("cannot listen on {} (choose another with --listen)", args.listen))?;
        let address = listeners
            .first()
            .context("no listener")?
            .local_addr()
            .context("no local address")?;
        println!(
            "podiam gateway: http://{address} -> {} (account {account_id}, region {region}, decisions by {decided_by})",
            args.upstream
        );
        serve_on_workers(listeners, &gateway, args.listener.limits()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Serves `gateway` on a thread per listener, each a single-threaded runtime accepting from its
/// own socket of one `SO_REUSEPORT` group, until SIGINT or SIGTERM (then each drains its
/// requests) or until a worker fails (then the others stop too). One runtime per CPU wakes no
/// other thread on the way from a request to its upstream and back: with tokio's
/// work-stealing runtime a request cost 69 µs of CPU, with one thread 52 µs (BENCHMARKS.md,
/// "The gateway against nginx").
async fn serve_on_workers(
    listeners: Vec<std::net::TcpListener>,
    gateway: &Gateway,
    mut limits: podiam_http::Limits,
) -> anyhow::Result<()> {
    let workers = listeners.len().max(1);
    limits.max_connections = limits.max_connections.div_ceil(workers);
    limits.max_in_flight = limits.max_in_flight.div_ceil(workers);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (finished, mut finishing) = tokio::sync::mpsc::unbounded_channel();
    let mut threads = Vec::with_capacity(workers);
    for (n, listener) in listeners.into_iter().enumerate() {
        let gateway = gateway.for_runtime()?;
        let mut stopped = stopped.clone();
        let finished = finished.clone();
        let work = move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a worker's runtime")?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .context("cannot listen in a worker")?;
                let stop = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                podiam_http::serve(listener, gateway_router(gateway), limits, None, stop).await;
                Ok(())
            })
        };
        let thread = std::thread::Builder::new()
            .name(format!("gateway-{n}"))
            .spawn(move || {
                // Says so when the worker ends, by returning or by panicking.
                let _finished = Finished(finished);
                work()
            })
            .context("cannot start a worker thread")?;
        threads.push(thread);
    }
    drop(finished);
    tokio::select! {
        () = shutdown_signal() => {}
        // A worker serves until told to stop: one that ended first failed.
        _ = finishing.recv() => tracing::error!("a gateway worker stopped; stopping the others"),
    }
    let _ = stop.send(true);
    tokio::task::spawn_blocking(move || {
        for thread in threads {
            match thread.join() {
                Ok(result) => result?,
                Err(_) => bail!("a worker thread panicked"),
            }
        }
        Ok(())
    })
    .await
    .context("the workers could not be joined")?
}

/// Tells the gateway's main thread that a worker ended, when dropped.
struct Finished(tokio::sync::mpsc::UnboundedSender<()>);

impl Drop for Finished {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// The servers' IAM state and session keyring, followed read-only from their etcd store.
async fn follow_store(
    args: &GatewayArgs,
    url: &str,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<podiam_server::Authority> {
    let store = args.etcd.store(Some(url))?;
    if !matches!(store, podiam_server::StoreConfig::Etcd(_)) {
        bail!(
            "--store {url}: the gateway follows an etcd store (etcd://…); an embedded store belongs to its server, so ask that server with --server instead"
        );
    }
    let kek_file = args
        .kek_file
        .as_deref()
        .context("--store needs --kek-file")?;
    let kek = Arc::new(podiam_server::read_kek(kek_file)?);
    let opened = store
        .open(std::path::Path::new("."), &kek)
        .await
        .with_context(|| format!("cannot open the store {url}"))?;
    podiam_server::Authority::follow(opened, kek, clock, Arc::new(SystemRng))
        .await
        .with_context(|| format!("cannot follow the store {url}"))
}
