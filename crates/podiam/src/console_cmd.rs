//! `podiam console`: a one-time sign-in URL for the web console, asked for with the caller's
//! own credentials (the AWS default chain), opened in a browser or printed.

use std::process::{Command, ExitCode, Stdio};

use anyhow::Context as _;
use clap::Args;

use crate::cli_io::exit_on;

/// Open the web console in a browser, signed in as you.
#[derive(Debug, Args)]
#[command(after_long_help = CONSOLE_HELP)]
pub(crate) struct ConsoleArgs {
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long)]
    print: bool,
    #[command(flatten)]
    connection: crate::cluster_cmd::Connection,
}

const CONSOLE_HELP: &str = "\
Asks the server, with your credentials from the AWS default chain (as the AWS CLI finds them),
for a sign-in URL, and opens it in your browser when there is one (a desktop session or macOS);
otherwise prints it. The URL works once, within 5 minutes. The console session lasts at most an
hour (less when your credentials are a role session that ends sooner) and shows only what your
IAM permissions allow you to read.";

pub(crate) fn run(args: &ConsoleArgs) -> ExitCode {
    exit_on(console(args))
}

fn console(args: &ConsoleArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.client()?;
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(client.rest_json(
            "podiam",
            http::Method::POST,
            "/podiam/console/signin-token",
            None,
        ))
        .map_err(crate::cluster_cmd::explain)?;
    let url = answer
        .body
        .get("signinUrl")
        .and_then(serde_json::Value::as_str)
        .context("the server's answer has no signinUrl")?;
    // Only a web address goes to the desktop's opener (which would run anything it is given).
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        anyhow::bail!("the server's signinUrl is not an http(s) URL: {url:?}");
    }
    if args.print {
        println!("{url}");
        return Ok(ExitCode::SUCCESS);
    }
    match opener() {
        Some(program) if open(program, url) => {
            eprintln!("Opened the console in your browser (the link works once, for 5 minutes).");
        }
        _ => {
            eprintln!(
                "Open this link in your browser (it works once, within 5 minutes; do not share it):"
            );
            println!("{url}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The program that opens a URL in the desktop's browser, when there is a desktop.
fn opener() -> Option<&'static str> {
    if cfg!(target_os = "macos") {
        return Some("open");
    }
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    desktop.then_some("xdg-open")
}

/// Runs `program url`; whether it says it opened it.
fn open(program: &str, url: &str) -> bool {
    Command::new(program)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
