//! What podiam's commands share as processes: log set-up, the shutdown signal, durations on
//! the command line, configuration from the environment and a file ([`config`]), and the exit
//! code of a command's result (one `error:` line, never a panic).

pub mod config;

use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;

/// How logs are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logs at `RUST_LOG` (default `info`) in `format`; colours only on a terminal, and never with
/// `NO_COLOR` set.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        );
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Threads for blocking work (the embedded store's transactions, file and DNS calls). The
/// store's writes are serialized by one lock, so more threads only wait; each thread also
/// keeps its own allocator pages, which a burst of writes left in the server's RSS (tokio's
/// default is 512 threads; 16 loader connections made 24 threads and about 20 MB more RSS).
pub const BLOCKING_THREADS: usize = 4;

/// The multi-threaded runtime of a long-running service, with [`BLOCKING_THREADS`].
pub fn service_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The exit code of a command's result: its own code, 0 for a closed pipe, 2 for an error
/// (printed as one `error:` line).
pub fn exit_on(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// The Content-Type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The OpenMetrics text of `registry` (empty if it cannot be encoded).
pub fn render_metrics(
    registry: &std::sync::Mutex<prometheus_client::registry::Registry>,
) -> String {
    let mut out = String::new();
    let registry = registry
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}

/// A command-line duration: `3h`, `90m`, `45s`, `250ms` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 3h, 90m or 45s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(n.saturating_mul(3600))),
        _ => Err(format!("{text:?}: the unit is ms, s, m or h")),
    }
}

/// The limits of a listener, on the command line of every long-running command.
#[derive(Debug, Clone, clap::Args)]
pub struct ListenerArgs {
    /// Connections served at once; more wait in the kernel's accept queue.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_connections: usize,
    /// A request's headers must arrive within this long of its first byte.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// A keep-alive connection without a request is closed after this long.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// A request's body must arrive within this long of its headers.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Requests handled at once; more are answered at once with the protocol's throttling
    /// error (`Throttling`, `ThrottlingException`, HTTP 429), which the SDKs back off on.
    /// A request counts from its body's last byte (slow clients take no slot) until its
    /// answer.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_in_flight: usize,
    /// A request that waited longer than this before the server read it (measured from the
    /// kernel's receive time: the CPU is saturated) is answered with the throttling error too
    /// (e.g. `50ms`); off by default (`0s`), since requests also wait when other processes
    /// take the CPU.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub max_queue_delay: Duration,
}

impl ListenerArgs {
    /// The limits these flags set.
    pub fn limits(&self) -> podiam_http::Limits {
        podiam_http::Limits {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            body_timeout: self.body_timeout,
            max_connections: self.max_connections.max(1),
            max_in_flight: self.max_in_flight.max(1),
            max_queue_delay: (!self.max_queue_delay.is_zero()).then_some(self.max_queue_delay),
            ..podiam_http::Limits::default()
        }
    }
}

/// A reader that stopped early (`podiam … | head`) is not an error worth reporting.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3h"), Ok(Duration::from_secs(10_800)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
    }
}
