//! `podiam dev`: the server, the node agent, IMDS and the DynamoDB gateway on loopback, in one
//! process over one embedded store, with what a developer needs created through the public
//! APIs. Ctrl-C stops everything cleanly; the state stays in `--data-dir`.

mod setup;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use podiam_agent::{
    Agent, AgentConfig, AssumeRoleSource, EksAuthUpstream, Imds, ImdsConfig, credentials_router,
    imds_router,
};
use podiam_client::{
    AwsClient, Credentials, ProfileCredentials, ProvideCredentials, StaticCredentials, Timeouts,
};
use podiam_crypto::{Secret, SystemRng};
use podiam_gateway::proxy::{Gateway, GatewayConfig, gateway_router};
use podiam_process::{LogFormat, exit_on, init_logging, shutdown_signal};
use podiam_server::ServerConfig;
use podiam_types::{Clock, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;

use setup::{Names, ServiceKey};

/// The node name of the dev agent; tokens `podiam exec` mints are bound to it.
pub(crate) const DEV_NODE_NAME: &str = "podiam-dev-node";

/// What to create on the first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    /// The EKS workshop's "Access to AWS services" page: account 637423329338 in
    /// eu-central-1, cluster eks-workshop, its OIDC provider, the carts roles for IRSA and Pod
    /// Identity with a DynamoDB policy, and the carts/carts association.
    EksWorkshop,
}

/// Run the server, the node agent, IMDS and the DynamoDB gateway on loopback, with the
/// embedded store, and print how to use them.
#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Where the state lives (created on first start, kept across restarts).
    #[arg(long, value_name = "DIR", default_value = "podiam-data")]
    data_dir: PathBuf,
    /// The server (IAM, STS, EKS, EKS Auth).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4599")]
    listen: SocketAddr,
    /// The node agent (what AWS_CONTAINER_CREDENTIALS_FULL_URI points at).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4601")]
    agent_listen: SocketAddr,
    /// IMDSv2 with the node's role (AWS_EC2_METADATA_SERVICE_ENDPOINT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4602")]
    imds_listen: SocketAddr,
    /// The DynamoDB gateway (AWS_ENDPOINT_URL_DYNAMODB).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4600")]
    gateway_listen: SocketAddr,
    /// The DynamoDB-compatible endpoint behind the gateway (DynamoDB Local, moto_server, …);
    /// without it the gateway is not started.
    #[arg(long, value_name = "URL")]
    gateway_upstream: Option<String>,
    /// The account id of a new data directory [default: 637423329338 with the eks-workshop
    /// scenario, else 000000000000].
    #[arg(long, value_name = "ID")]
    account_id: Option<String>,
    /// The region [default: eu-central-1 with the eks-workshop scenario, else us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// Also write the settings as KEY=VALUE lines (mode 0600): AWS_ENDPOINT_URL, AWS_REGION,
    /// AWS_DEFAULT_REGION, the root AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
    /// PODIAM_SERVER, PODIAM_AGENT, PODIAM_IMDS, PODIAM_GATEWAY, PODIAM_CLUSTER,
    /// PODIAM_NODE_NAME.
    #[arg(long, value_name = "PATH")]
    env_file: Option<PathBuf>,
    /// Create a ready-made setup on the first start.
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    #[command(flatten)]
    aws: crate::aws_cmd::UpstreamArgs,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

pub(crate) fn run(args: DevArgs) -> ExitCode {
    // A start that fails leaves no half-made data directory behind (only one it created).
    let created = !args.data_dir.exists();
    let data_dir = args.data_dir.clone();
    let result = run_dev(args);
    if result.is_err() && created {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    exit_on(result)
}

async fn listen(address: SocketAddr, what: &str, flag: &str) -> anyhow::Result<TcpListener> {
    podiam_http::bind(address).await.with_context(|| {
        format!("cannot listen on {address} for the {what} (is podiam dev already running? choose another with {flag})")
    })
}

fn client(
    endpoint: &str,
    region: &str,
    credentials: Arc<dyn ProvideCredentials>,
) -> anyhow::Result<AwsClient> {
    Ok(AwsClient::new(
        endpoint,
        region,
        credentials,
        Arc::new(SystemClock),
        Timeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(10),
        },
    )?)
}

fn static_key(key: &ServiceKey) -> Arc<dyn ProvideCredentials> {
    Arc::new(StaticCredentials(Credentials {
        access_key_id: key.access_key_id.clone(),
        secret_access_key: Secret::new(key.secret_access_key.clone()),
        session_token: None,
        expiration: None,
    }))
}

/// The running services' addresses.
struct Endpoints {
    server: String,
    agent: String,
    imds: String,
    gateway: Option<String>,
}

#[expect(
    clippy::too_many_lines,
    reason = "one linear start-up sequence reads best in one place"
)]
fn run_dev(args: DevArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    init_logging(args.log_format);
    let workshop = args.scenario == Some(Scenario::EksWorkshop);
    let region = args.region.clone().unwrap_or_else(|| {
        if workshop {
            "eu-central-1"
        } else {
            "us-east-1"
        }
        .to_owned()
    });
    let account = args
        .account_id
        .clone()
        .or_else(|| workshop.then(|| "637423329338".to_owned()));
    let cluster = if workshop {
        "eks-workshop"
    } else {
        "podiam-dev"
    };
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let dev_dir = args.data_dir.join("dev");
    std::fs::create_dir_all(&dev_dir)
        .with_context(|| format!("cannot create {}", dev_dir.display()))?;
    let runtime = podiam_process::service_runtime().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (stop, stopped) = watch::channel(false);
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        let mut tasks = tokio::task::JoinSet::new();

        // The server.
        let server_listener = listen(args.listen, "server", "--listen").await?;
        let server_address = server_listener.local_addr()?;
        let config = ServerConfig {
            listen: server_address,
            data_dir: args.data_dir.clone(),
            account_id: account,
            region: region.clone(),
            allow_http_issuers: true,
            allow_private_issuers: false,
            oidc_ca_file: None,
            kek_file: None,
            public_url: None,
            store: podiam_server::StoreConfig::Embedded,
            body_budget_bytes: 64 << 20,
            upstream: args.aws.upstream().await,
        };
        let opened =
            podiam_server::open(&config, Arc::new(SystemClock), Arc::new(SystemRng)).await?;
        let account = opened.account_id.clone();
        let root_credentials = opened.root_credentials_path.clone();
        let authority = opened.app.authority();
        let limits = podiam_http::Limits::default();
        tasks.spawn({
            let until = until_stopped();
            async move {
                podiam_server::serve(opened.app, server_listener, limits, until).await;
                Ok::<(), std::io::Error>(())
            }
        });
        let server_url = format!("http://{server_address}");

        // Through the public APIs, as the root.
        let root = client(
            &server_url,
            &region,
            Arc::new(ProfileCredentials::new(root_credentials.clone(), "default")),
        )?;
        let names = Names {
            cluster: cluster.to_owned(),
            account: account.clone(),
            region: region.clone(),
        };
        let issuer = workshop.then_some(setup::WORKSHOP_ISSUER);
        setup::cluster(&root, &names, issuer).await?;
        let keys = setup::service_keys(
            &root,
            &names,
            &dev_dir.join(format!("{cluster}-service-keys.json")),
        )
        .await?;
        let created_scenario = if workshop {
            setup::eks_workshop(
                &root,
                &names,
                &dev_dir.join("scenario-eks-workshop.created"),
            )
            .await?
        } else {
            false
        };

        // The node agent and IMDS, signing as the node agent's user.
        let node = client(&server_url, &region, static_key(&keys.agent))?;
        let agent_listener = listen(args.agent_listen, "node agent", "--agent-listen").await?;
        let agent_address = agent_listener.local_addr()?;
        let agent = Arc::new(Agent::new(
            Arc::new(EksAuthUpstream {
                client: node.clone(),
                cluster: cluster.to_owned(),
                node_name: Some(DEV_NODE_NAME.to_owned()),
            }),
            Arc::new(SystemClock),
            AgentConfig {
                hosts: vec![agent_address.ip().to_string(), "localhost".to_owned()],
                ..AgentConfig::default()
            },
        ));
        if !agent.prime().await {
            tracing::warn!(
                "the agent could not load the cluster's keys yet; it retries on the first request"
            );
        }
        tasks.spawn({
            let router = credentials_router(Arc::clone(&agent));
            let until = until_stopped();
            async move {
                podiam_http::serve(agent_listener, router, limits, None, until).await;
                Ok::<(), std::io::Error>(())
            }
        });
        tokio::spawn(Arc::clone(&agent).sweep_forever());
        let imds_listener = listen(args.imds_listen, "IMDS", "--imds-listen").await?;
        let imds_address = imds_listener.local_addr()?;
        let imds = Arc::new(Imds::new(
            ImdsConfig {
                role_name: names.node_role(),
                region: region.clone(),
                account_id: account.clone(),
                node_name: DEV_NODE_NAME.to_owned(),
                allow_v1: false,
                hosts: vec![imds_address.ip().to_string(), "localhost".to_owned()],
            },
            Arc::new(AssumeRoleSource {
                client: node,
                role_arn: names.node_role_arn(),
                session_name: DEV_NODE_NAME.to_owned(),
                clock: Arc::new(SystemClock),
            }),
            Arc::new(SystemClock),
            Arc::new(SystemRng),
        ));
        tokio::spawn(Arc::clone(&imds).renew_forever());
        tasks.spawn({
            let router = imds_router(imds);
            let until = until_stopped();
            let filter = podiam_agent::node_only(Vec::new());
            async move {
                podiam_http::serve(imds_listener, router, limits, Some(filter), until).await;
                Ok::<(), std::io::Error>(())
            }
        });

        // The gateway, deciding in this process with the server's own replicas (no round trip).
        let gateway_url = match &args.gateway_upstream {
            None => None,
            Some(upstream) => {
                let clock: Arc<dyn Clock> = Arc::new(SystemClock);
                let gateway = Gateway::new(GatewayConfig {
                    upstream: upstream.clone(),
                    upstream_credentials: Credentials {
                        access_key_id: "podiam-gateway".to_owned(),
                        secret_access_key: Secret::new("podiam-gateway".to_owned()),
                        session_token: None,
                        expiration: None,
                    },
                    region: region.clone(),
                    account_id: account.clone(),
                    authorizer: Arc::new(authority),
                    upstream_timeout: Duration::from_secs(30),
                    clock,
                    rng: Arc::new(SystemRng),
                })?;
                let listener = listen(args.gateway_listen, "gateway", "--gateway-listen").await?;
                let address = listener.local_addr()?;
                tasks.spawn({
                    let router = gateway_router(gateway);
                    let until = until_stopped();
                    async move {
                        podiam_http::serve(listener, router, limits, None, until).await;
                        Ok::<(), std::io::Error>(())
                    }
                });
                Some(format!("http://{address}"))
            }
        };

        let endpoints = Endpoints {
            server: server_url,
            agent: format!("http://{agent_address}/v1/credentials"),
            imds: format!("http://{imds_address}"),
            gateway: gateway_url,
        };
        let root_key = read_root_key(&root_credentials)?;
        if let Some(path) = &args.env_file {
            let text = env_lines(&endpoints, &region, &root_key, cluster);
            crate::cli_io::write_private(path, text.as_bytes(), true)?;
        }
        print_summary(
            &args,
            &endpoints,
            &region,
            &account,
            cluster,
            created_scenario,
            started,
        );

        tokio::select! {
            () = shutdown_signal() => {}
            Some(done) = tasks.join_next() => {
                done.context("a service task failed")?.context("a service failed")?;
                bail!("a service stopped unexpectedly");
            }
        }
        let _ = stop.send(true);
        while let Some(done) = tasks.join_next().await {
            done.context("a service task failed")?
                .context("a service failed")?;
        }
        println!(
            "podiam dev: stopped; the state is in {}",
            args.data_dir.display()
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// The root key from `root-credentials` (written on the first start).
fn read_root_key(path: &Path) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the root credentials in {}", path.display()))?;
    let value = |name: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    Ok((
        value("aws_access_key_id").context("root-credentials has no aws_access_key_id")?,
        value("aws_secret_access_key").context("root-credentials has no aws_secret_access_key")?,
    ))
}

fn env_lines(
    endpoints: &Endpoints,
    region: &str,
    (id, secret): &(String, String),
    cluster: &str,
) -> String {
    let mut text = String::new();
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(text, "{k}={v}");
    };
    line("AWS_ENDPOINT_URL", &endpoints.server);
    line("AWS_REGION", region);
    line("AWS_DEFAULT_REGION", region);
    line("AWS_ACCESS_KEY_ID", id);
    line("AWS_SECRET_ACCESS_KEY", secret);
    line("PODIAM_SERVER", &endpoints.server);
    line("PODIAM_AGENT", &endpoints.agent);
    line("PODIAM_IMDS", &endpoints.imds);
    if let Some(gateway) = &endpoints.gateway {
        line("PODIAM_GATEWAY", gateway);
    }
    line("PODIAM_CLUSTER", cluster);
    line("PODIAM_NODE_NAME", DEV_NODE_NAME);
    text
}

fn print_summary(
    args: &DevArgs,
    endpoints: &Endpoints,
    region: &str,
    account: &str,
    cluster: &str,
    created_scenario: bool,
    started: Instant,
) {
    let data = args.data_dir.display();
    println!(
        "podiam dev: ready in {} ms (account {account}, region {region}, cluster {cluster}, data {data})",
        started.elapsed().as_millis()
    );
    println!("  server   {}   IAM, STS, EKS, EKS Auth", endpoints.server);
    println!("  agent    {}   EKS Pod Identity", endpoints.agent);
    println!(
        "  imds     {}   the node role ({cluster}-node)",
        endpoints.imds
    );
    match &endpoints.gateway {
        Some(gateway) => println!("  gateway  {gateway}   DynamoDB, policies enforced"),
        None => println!("  gateway  off (start with --gateway-upstream URL)"),
    }
    if created_scenario {
        println!(
            "Created the eks-workshop scenario: cluster eks-workshop, its OIDC provider, roles eks-workshop-carts-dynamo-irsa and eks-workshop-carts-dynamo-pia, the carts/carts association."
        );
    }
    match &args.env_file {
        Some(path) => println!("Use it: set -a; . {}; set +a", path.display()),
        None => println!(
            "Use it: export AWS_ENDPOINT_URL={} AWS_REGION={region} AWS_DEFAULT_REGION={region} AWS_SHARED_CREDENTIALS_FILE={}/root-credentials",
            endpoints.server, data
        ),
    }
    println!(
        "Run a process as a pod: podiam exec --cluster {cluster} --namespace NS --service-account SA -- COMMAND"
    );
    println!("Stop with Ctrl-C; the state stays in {data}.");
}
