//! The agent's command line, shared by `podiam agent` and the slim `podiam-agent` binary (the
//! one to put in a node DaemonSet: the same code without the server's).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{
    Agent, AgentConfig, AssumeRoleSource, CacheConfig, EksAuthUpstream, Imds, ImdsConfig,
    admitted_credentials_router, imds_router, probe_router,
};
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use podiam_client::{AwsClient, ChainCredentials, Failover, Timeouts};
use podiam_crypto::SystemRng;
use podiam_types::SystemClock;

use podiam_process::{LogFormat, exit_on, init_logging, parse_duration, shutdown_signal};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
/// Run the node agent: EKS Pod Identity credentials at 169.254.170.23 and IMDSv2.
pub struct AgentArgs {
    #[command(subcommand)]
    command: Option<AgentCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Create the link-local addresses the agent listens on (dummy link pod-id-link0 with
    /// 169.254.170.23/32 and fd00:ec2::23/128, and their routes). Idempotent; needs
    /// CAP_NET_ADMIN, as the reference agent's privileged init container.
    SetupLink {
        /// Also add the instance metadata addresses 169.254.169.254 and fd00:ec2::254 (for
        /// --imds-listen).
        #[arg(long)]
        imds: bool,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The cluster whose pods this node runs.
    #[arg(long, required = true)]
    cluster_name: Option<String>,
    /// The podiam server (EKS Auth) [default: $AWS_ENDPOINT_URL_EKS_AUTH or $AWS_ENDPOINT_URL];
    /// several replicas comma-separated: one that refuses connections or does not answer is
    /// skipped for 5 s (doubling to 30 s while it keeps failing) and the next is used.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// With several --endpoint replicas: when the one asked has not answered a pod's
    /// credentials call (or a key fetch) within this long, ask the next one too and take the
    /// first answer, so a replica that hangs costs a new pod this delay, not a timeout (0: only
    /// after a failure).
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_duration)]
    hedge_after: Duration,
    /// The region to sign for [default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// This node's name (tokens bound to another node are refused) [default: $NODE_NAME].
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    /// Addresses to listen on; one that cannot be bound (IPv6 off) is logged, not fatal. SDKs
    /// must call the agent through one of them (the Host header is checked); with `0.0.0.0` or
    /// `[::]` (a container with a published port), through any IP address, never a name.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "169.254.170.23,[fd00:ec2::23]"
    )]
    bind_hosts: Vec<String>,
    /// The credentials port.
    #[arg(long, default_value_t = 80)]
    port: u16,
    /// The probe port on localhost (/healthz, /readyz).
    #[arg(long, default_value_t = 2703)]
    probe_port: u16,
    /// The metrics address.
    #[arg(long, default_value = "0.0.0.0")]
    metrics_address: IpAddr,
    /// The metrics port (/metrics, and the probes).
    #[arg(long, default_value_t = 2705)]
    metrics_port: u16,
    /// Pods whose credentials are kept (0 disables caching).
    #[arg(long, default_value_t = 2000)]
    max_cache_size: usize,
    /// Background renewals per second at most (within --upstream-rate).
    #[arg(long, default_value_t = 3)]
    max_service_qps: u32,
    /// Renew credentials (in the background, when the pod next asks) after this long even if
    /// they last longer (e.g. 3h, 90m).
    #[arg(long, default_value = "3h", value_parser = parse_duration)]
    max_credential_retention_before_renewal: Duration,
    /// Upstream calls per second, background renewals included (0: unlimited); cache hits are
    /// not limited.
    #[arg(long, default_value_t = 1000)]
    upstream_rate: u32,
    /// Burst of upstream calls; background renewals leave half of it to pods with nothing
    /// cached.
    #[arg(long, default_value_t = 500)]
    upstream_burst: u32,
    /// Also serve IMDSv2 for the node's role here, e.g. 169.254.169.254:80.
    #[arg(long, value_name = "ADDR", requires = "imds_role_arn")]
    imds_listen: Option<SocketAddr>,
    /// The node's role, assumed with sts:AssumeRole and served by IMDS.
    #[arg(long, value_name = "ARN")]
    imds_role_arn: Option<String>,
    /// Answer IMDS GETs without a session token (IMDSv1).
    #[arg(long)]
    imds_v1: bool,
    /// Also accept IMDS connections from this network (repeatable). By default only the
    /// node's own addresses may connect (hostNetwork pods share them); pods' addresses are
    /// refused.
    #[arg(long, value_name = "CIDR")]
    imds_allow_from: Vec<ipnet::IpNet>,
    #[command(flatten)]
    listener: podiam_process::ListenerArgs,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// Runs the agent, or `setup-link`.
pub fn run(args: AgentArgs) -> ExitCode {
    match args.command {
        Some(AgentCommand::SetupLink { imds }) => exit_on(setup_link(imds)),
        None => exit_on(run_agent(args.run)),
    }
}

fn setup_link(imds: bool) -> anyhow::Result<ExitCode> {
    init_logging(LogFormat::Text);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(crate::setup_link(imds))?;
    if report.changed.is_empty() {
        println!("{} ({}) was already set up", crate::LINK_NAME, report.kind);
    }
    // Warnings were logged as they happened.
    for step in &report.changed {
        println!("{step}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `169.254.170.23` or `[fd00:ec2::23]` (brackets optional).
fn host_ip(host: &str) -> anyhow::Result<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .with_context(|| format!("--bind-hosts: {host:?} is not an IP address"))
}

fn run_agent(args: RunArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    init_logging(args.log_format);
    let cluster = args
        .cluster_name
        .clone()
        .context("--cluster-name is required")?;
    let endpoint = podiam_client::endpoint(args.endpoint.as_deref(), "EKS_AUTH")
        .context("no server: pass --endpoint URL or set AWS_ENDPOINT_URL")?;
    let region = podiam_client::region(args.region.as_deref());
    let hosts: Vec<IpAddr> = args
        .bind_hosts
        .iter()
        .map(|h| host_ip(h))
        .collect::<anyhow::Result<_>>()?;
    if hosts.is_empty() {
        bail!("--bind-hosts is empty");
    }
    // The agent's own credentials: environment or credentials file, then IMDS unless the
    // agent is the IMDS.
    let imds = args
        .imds_listen
        .is_none()
        .then(|| "http://169.254.169.254".to_owned());
    // IRSA for the agent itself (its pod's projected token, bound by the kubelet to this node)
    // is what tells the server which node the agent is: ask the server's STS for it, at any of
    // the replicas.
    let credentials = Arc::new(ChainCredentials::standard(
        imds,
        Some(&endpoint),
        Arc::new(SystemClock),
    ));
    let client = AwsClient::new(
        &endpoint,
        &region,
        credentials,
        Arc::new(SystemClock),
        Timeouts {
            connect: Duration::from_millis(500),
            request: Duration::from_secs(2),
        },
    )?
    .with_failover(Failover {
        hedge_after: (!args.hedge_after.is_zero()).then_some(args.hedge_after),
        ..Failover::default()
    });
    let upstream = Arc::new(EksAuthUpstream {
        client: client.clone(),
        cluster: cluster.clone(),
        node_name: args.node_name.clone(),
    });
    let config = AgentConfig {
        hosts: hosts.iter().map(ToString::to_string).collect(),
        cache: CacheConfig {
            max_entries: args.max_cache_size,
            retention: args.max_credential_retention_before_renewal,
            ..CacheConfig::default()
        },
        upstream_rate: args.upstream_rate,
        upstream_burst: args.upstream_burst,
        renewals_per_second: args.max_service_qps,
    };
    let agent = Arc::new(Agent::new(upstream, Arc::new(SystemClock), config));
    let limits = args.listener.limits();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // Without the keys (the reason is logged) EKS Auth verifies tokens: the agent serves.
        agent.prime().await;
        let mut servers = tokio::task::JoinSet::new();
        let mut bound = Vec::new();
        for ip in &hosts {
            let address = SocketAddr::new(*ip, args.port);
            match podiam_http::bind(address).await {
                Ok(listener) => {
                    bound.push(listener.local_addr().unwrap_or(address));
                    let router = admitted_credentials_router(Arc::clone(&agent), limits);
                    servers.spawn(podiam_http::serve(listener, router, limits, None, shutdown_signal()));
                }
                Err(e) => tracing::warn!(%address, error = %e, "cannot listen here; continuing without it"),
            }
        }
        if bound.is_empty() {
            bail!("none of --bind-hosts could be bound on port {} (run `podiam agent setup-link` first; port 80 needs CAP_NET_BIND_SERVICE)", args.port);
        }
        let mut probes = Vec::new();
        for address in [
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), args.probe_port),
            SocketAddr::new(args.metrics_address, args.metrics_port),
        ] {
            let listener = podiam_http::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} for probes and metrics"))?;
            probes.push(listener.local_addr().unwrap_or(address).to_string());
            let router = probe_router(Arc::clone(&agent));
            servers.spawn(podiam_http::serve(listener, router, limits, None, shutdown_signal()));
        }
        if let (Some(address), Some(role_arn)) = (args.imds_listen, &args.imds_role_arn) {
            let parsed: podiam_types::Arn = role_arn
                .parse()
                .with_context(|| format!("--imds-role-arn {role_arn:?}"))?;
            let node = args.node_name.clone().unwrap_or_else(|| "node".to_owned());
            let imds = Arc::new(Imds::new(
                ImdsConfig {
                    role_name: parsed.resource().rsplit('/').next().unwrap_or_default().to_owned(),
                    region: region.clone(),
                    account_id: parsed.account().to_owned(),
                    node_name: node.clone(),
                    allow_v1: args.imds_v1,
                    hosts: vec![address.ip().to_string()],
                },
                Arc::new(AssumeRoleSource {
                    client,
                    role_arn: role_arn.clone(),
                    session_name: node,
                    clock: Arc::new(SystemClock),
                }),
                Arc::new(SystemClock),
                Arc::new(SystemRng),
            ));
            let listener = podiam_http::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} for IMDS"))?;
            bound.push(listener.local_addr().unwrap_or(address));
            tokio::spawn(Arc::clone(&imds).renew_forever());
            let router = imds_router(imds);
            let filter = crate::node_only(args.imds_allow_from.clone());
            servers.spawn(podiam_http::serve(listener, router, limits, Some(filter), shutdown_signal()));
        }
        tokio::spawn(Arc::clone(&agent).sweep_forever());
        let listening: Vec<String> = bound.iter().map(ToString::to_string).collect();
        println!(
            "podiam agent: cluster {cluster}, server {endpoint}, listening on {}, probes on {}, metrics on {}, ready in {} ms",
            listening.join(", "),
            probes.first().map_or("", String::as_str),
            probes.get(1).map_or("", String::as_str),
            started.elapsed().as_millis()
        );
        while let Some(done) = servers.join_next().await {
            done.context("a listener task failed")?;
        }
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}
