//! `podiam webhook`: the HTTPS service the API server calls on every pod CREATE.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use podiam_client::{AwsClient, ChainCredentials, Timeouts};
use podiam_crypto::SystemRng;
use podiam_process::{LogFormat, init_logging, parse_duration, shutdown_signal};
use podiam_types::SystemClock;

use super::MutationArgs;
use crate::server::{
    EksAssociations, KubeServiceAccounts, Metrics, ReloadingCert, Webhook, admitted_router,
    metrics_router, serve_https,
};

/// Run the mutating admission webhook (HTTPS `POST /mutate`).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The cluster whose pod identity associations apply.
    #[arg(long, required = true)]
    cluster_name: Option<String>,
    /// The podiam server (EKS API) [default: $AWS_ENDPOINT_URL_EKS or $AWS_ENDPOINT_URL].
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The region to sign for [default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1].
    #[arg(long)]
    region: Option<String>,
    /// The serving certificate chain (PEM), reloaded when it changes.
    #[arg(long, value_name = "FILE", required = true)]
    tls_cert: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, SEC1 or PKCS#1), reloaded when it changes.
    #[arg(long, value_name = "FILE", required = true)]
    tls_key: Option<PathBuf>,
    /// Where to serve HTTPS.
    #[arg(long, default_value = "0.0.0.0:443")]
    listen: SocketAddr,
    /// The metrics address.
    #[arg(long, default_value = "0.0.0.0")]
    metrics_address: IpAddr,
    /// The metrics port (/metrics, /healthz, /readyz over HTTP).
    #[arg(long, default_value_t = 9999)]
    metrics_port: u16,
    /// A kubeconfig file [default: the in-cluster configuration, else $KUBECONFIG or
    /// ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The Kubernetes API server's URL, overriding the kubeconfig's.
    #[arg(long, value_name = "URL")]
    kube_api: Option<String>,
    /// How often the pod identity associations are listed again (e.g. 3s, 1m).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    association_refresh: Duration,
    /// How long a ServiceAccount missing from the watch cache may take to GET.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    service_account_lookup_timeout: Duration,
    /// Require a client certificate signed by these CAs (PEM): the Kubernetes API server's,
    /// so that no one else can ask the webhook about ServiceAccounts.
    #[arg(long, value_name = "FILE")]
    client_ca_file: Option<PathBuf>,
    #[command(flatten)]
    listener: podiam_process::ListenerArgs,
    /// How often the certificate files are checked for a change.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    tls_reload_interval: Duration,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    mutation: MutationArgs,
}

async fn kube_client(args: &ServeArgs) -> anyhow::Result<kube::Client> {
    let mut config = match &args.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("cannot use the kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer().await.context(
            "no Kubernetes configuration (not in a cluster, no kubeconfig): pass --kubeconfig",
        )?,
    };
    if let Some(url) = &args.kube_api {
        config.cluster_url = url
            .parse()
            .with_context(|| format!("--kube-api {url:?} is not a URL"))?;
    }
    kube::Client::try_from(config).context("cannot build the Kubernetes client")
}

/// Runs the webhook until SIGTERM.
pub(super) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    init_logging(args.log_format);
    let cluster = args
        .cluster_name
        .clone()
        .context("--cluster-name is required")?;
    for (flag, duration) in [
        ("--association-refresh", args.association_refresh),
        (
            "--service-account-lookup-timeout",
            args.service_account_lookup_timeout,
        ),
        ("--tls-reload-interval", args.tls_reload_interval),
    ] {
        if duration.is_zero() {
            bail!("{flag} must be longer than zero");
        }
    }
    let endpoint = podiam_client::endpoint(args.server.as_deref(), "EKS")
        .context("no server: pass --server URL or set AWS_ENDPOINT_URL")?;
    let region = podiam_client::region(args.region.as_deref());
    let (cert_path, key_path) = args
        .tls_cert
        .clone()
        .zip(args.tls_key.clone())
        .context("--tls-cert and --tls-key are required")?;
    let cert = Arc::new(ReloadingCert::load(
        cert_path,
        key_path,
        podiam_crypto::tls_provider(),
    )?);
    let client_ca = match &args.client_ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read --client-ca-file {}", path.display()))?,
        ),
        None => None,
    };
    let tls = cert.server_config(client_ca.as_deref())?;
    if client_ca.is_none() {
        tracing::warn!(
            "no --client-ca-file: any TLS client may send reviews; require the API server's client certificate in production"
        );
    }
    let config = args.mutation.config();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let kube = kube_client(&args).await?;
        let (accounts, watch) = KubeServiceAccounts::new(
            kube,
            &config.annotation_prefix,
            args.service_account_lookup_timeout,
        );
        tokio::spawn(watch);
        let credentials = Arc::new(ChainCredentials::standard(
            Some("http://169.254.169.254".to_owned()),
            endpoint.split(',').next().map(str::trim),
            Arc::new(SystemClock),
        ));
        let client = AwsClient::new(
            &endpoint,
            &region,
            credentials,
            Arc::new(SystemClock),
            Timeouts {
                connect: Duration::from_secs(1),
                request: Duration::from_secs(5),
            },
        )?;
        let associations = Arc::new(EksAssociations::new(client, cluster.clone()));
        let metrics = Arc::new(Metrics::new());
        tokio::spawn(
            Arc::clone(&associations).refresh_forever(args.association_refresh, Arc::clone(&metrics)),
        );
        tokio::spawn(Arc::clone(&cert).reload_forever(args.tls_reload_interval, Arc::clone(&metrics)));
        let webhook = Arc::new(Webhook {
            config,
            accounts: Arc::new(accounts),
            associations,
            rng: Arc::new(SystemRng),
            metrics,
        });
        let listener = podiam_http::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {} (port 443 needs CAP_NET_BIND_SERVICE)", args.listen))?;
        let metrics_address = SocketAddr::new(args.metrics_address, args.metrics_port);
        let metrics_listener = podiam_http::bind(metrics_address)
            .await
            .with_context(|| format!("cannot listen on {metrics_address} for metrics"))?;
        let https_address = listener.local_addr()?;
        let metrics_address = metrics_listener.local_addr()?;
        let metrics_app = metrics_router(Arc::clone(&webhook));
        let limits = args.listener.limits();
        let metrics_server = tokio::spawn(podiam_http::serve(
            metrics_listener,
            metrics_app,
            limits,
            None,
            shutdown_signal(),
        ));
        println!(
            "podiam webhook: cluster {cluster}, server {endpoint}, listening on https://{https_address}, metrics on http://{metrics_address}, started in {} ms",
            started.elapsed().as_millis()
        );
        serve_https(
            listener,
            tls,
            admitted_router(webhook, limits),
            limits,
            shutdown_signal(),
        )
        .await;
        metrics_server.await.context("the metrics task failed")?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}
