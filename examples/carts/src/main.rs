//! `carts`: serves the cart API until interrupted. See the library for the API.

use std::process::ExitCode;

use anyhow::Context as _;
use aws_config::BehaviorVersion;
use carts::cli::Args;
use carts::store::CartStore;
use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Colours only on a terminal, and never with NO_COLOR set (https://no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carts: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the SDK's default configuration, prepares the table if asked, and serves.
async fn run(args: Args) -> anyhow::Result<()> {
    // The default chain only: everything (credentials, region, endpoint) comes from the
    // environment the service runs in.
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    if args.create_table && carts::table::ensure_table(&client, &args.table).await? {
        tracing::info!(table = %args.table, "created the table");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let addr = listener.local_addr().context("the bound address")?;
    println!("carts: listening on http://{addr} (table {})", args.table);
    let app = carts::api::router(CartStore::new(client, &args.table));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
        .context("serve")
}

/// Resolves on Ctrl-C or SIGTERM (how Kubernetes stops a pod).
async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
