//! `podiam server`: the control plane.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use podiam_crypto::SystemRng;
use podiam_server::{ServerConfig, StoreConfig};
use podiam_types::SystemClock;

use podiam_process::{LogFormat, exit_on, init_logging, shutdown_signal};

/// Run the control plane: IAM and STS on one port, over the AWS wire.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4599")]
    listen: SocketAddr,
    /// Where the state lives (created on first start).
    #[arg(
        long,
        value_name = "DIR",
        env = "PODIAM_DATA_DIR",
        default_value = "podiam-data"
    )]
    data_dir: PathBuf,
    /// The account id (for a new data directory; default 000000000000).
    #[arg(long, value_name = "ID")]
    account_id: Option<String>,
    /// The region this server answers for.
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    region: String,
    /// Accept token issuers on loopback addresses, over http:// too (for local test issuers).
    #[arg(long)]
    allow_http_issuers: bool,
    /// Fetch issuers' keys from private networks (10/8, 172.16/12, 192.168/16, 100.64/10,
    /// fc00::/7) over HTTPS, for apiservers reachable only inside a network. Link-local
    /// addresses (instance metadata) are never fetched.
    #[arg(long)]
    allow_private_issuers: bool,
    /// A PEM bundle of extra CAs for fetching issuers' keys over HTTPS.
    #[arg(long, value_name = "FILE")]
    oidc_ca_file: Option<PathBuf>,
    /// The key-encryption key (default: DATA_DIR/kek, created on first start): the base64 of
    /// 32 bytes (`head -c 32 /dev/urandom | base64 > kek`) or 32 raw bytes.
    #[arg(long, value_name = "FILE")]
    kek_file: Option<PathBuf>,
    /// The URL clients reach this server at; hosted issuers' URLs are under it
    /// (default: http://LISTEN), and so are the web console's sign-in URLs (default: the
    /// address `podiam console` asked at; an https:// URL makes the console's cookie Secure).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Where the state lives: etcd://host:2379[,host:2379…] for several replicas over one etcd
    /// cluster (each with the same --kek-file) [default: the embedded store in --data-dir].
    #[arg(long, value_name = "URL", env = "PODIAM_STORE")]
    store: Option<String>,
    #[command(flatten)]
    etcd: crate::etcd_args::EtcdArgs,
    /// Serve /metrics (and the probes) on this address instead of the API's.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Request body bytes buffered at once across all requests, in MiB; a request beyond it
    /// is answered Throttling instead of being read.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    body_buffer_mib: usize,
    #[command(flatten)]
    aws: crate::aws_cmd::UpstreamArgs,
    #[command(flatten)]
    listener: podiam_process::ListenerArgs,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

pub(crate) fn run(args: ServerArgs) -> ExitCode {
    exit_on(run_server(args))
}

fn run_server(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    init_logging(args.log_format);
    let runtime = podiam_process::service_runtime().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = podiam_http::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {} (is another server running there? choose one with --listen)", args.listen))?;
        let address = listener.local_addr().context("no local address")?;
        let store = args.etcd.store(args.store.as_deref())?;
        let config = ServerConfig {
            listen: address,
            data_dir: args.data_dir,
            account_id: args.account_id,
            region: args.region,
            allow_http_issuers: args.allow_http_issuers,
            allow_private_issuers: args.allow_private_issuers,
            oidc_ca_file: args.oidc_ca_file,
            kek_file: args.kek_file,
            public_url: args.public_url.clone(),
            store,
            body_budget_bytes: args.body_buffer_mib.saturating_mul(1 << 20),
            upstream: args.aws.upstream().await,
        };
        let opened = podiam_server::open(&config, Arc::new(SystemClock), Arc::new(SystemRng)).await?;
        println!(
            "podiam server: http://{address} (account {}, region {}, {}), ready in {} ms",
            opened.account_id,
            config.region,
            match &config.store {
                StoreConfig::Etcd(etcd) => format!("store etcd {}", etcd.endpoints.join(",")),
                _ => format!("data {}", config.data_dir.display()),
            },
            started.elapsed().as_millis()
        );
        if let Some((id, secret)) = &opened.new_root_key {
            let path = opened.root_credentials_path.display();
            // The secret goes to a person at a terminal, never into a log: under systemd,
            // docker or Kubernetes, standard output is the journal or the container's log.
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                println!("Created the root access key; it is also in {path} (mode 0600):");
                println!("  AWS_ACCESS_KEY_ID={id}");
                println!("  AWS_SECRET_ACCESS_KEY={}", secret.expose());
            } else {
                println!("Created the root access key {id}; its secret is in {path} (mode 0600), and not printed here because standard output is not a terminal");
            }
        }
        // Clients reach the server at its public URL when one is set (0.0.0.0 is no address).
        let endpoint = args.public_url.clone().unwrap_or_else(|| format!("http://{address}"));
        println!("Use it with: AWS_ENDPOINT_URL={endpoint} AWS_DEFAULT_REGION={} AWS_REGION={}", config.region, config.region);
        tracing::info!(%address, "serving");
        let limits = args.listener.limits();
        match args.metrics_listen {
            Some(metrics_address) => {
                let metrics = podiam_http::bind(metrics_address)
                    .await
                    .with_context(|| format!("cannot listen on {metrics_address} for metrics (--metrics-listen)"))?;
                println!("Metrics: http://{}/metrics", metrics.local_addr().context("no local address")?);
                podiam_server::serve_split(opened.app, listener, metrics, limits, shutdown_signal()).await;
            }
            None => podiam_server::serve(opened.app, listener, limits, shutdown_signal()).await,
        }
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}
