//! `podiam completions SHELL` and `podiam man`: shell completions and manual pages, generated
//! from the same clap definitions that parse the command line, so they never drift from it.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

/// The shells completions are made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// `source <(podiam completions bash)`, or save it under
    /// /etc/bash_completion.d/podiam.
    Bash,
    /// Save it as `_podiam` in a directory of `$fpath`.
    Zsh,
    /// Save it as ~/.config/fish/completions/podiam.fish.
    Fish,
    /// `podiam completions powershell | Out-String | Invoke-Expression`.
    Powershell,
    /// Elvish.
    Elvish,
}

/// `podiam completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

/// `podiam man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `podiam.1` and a page per subcommand (`podiam-server.1`, …) here; without it,
    /// `podiam.1` goes to standard output.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` of `command`.
pub fn completions(mut command: clap::Command, args: &CompletionsArgs) -> ExitCode {
    use clap_complete::Shell as S;
    let shell = match args.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
        Shell::Elvish => S::Elvish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "podiam", &mut out);
    podiam_process::exit_on(
        std::io::stdout()
            .write_all(&out)
            .map(|()| ExitCode::SUCCESS)
            .context("cannot write the completions"),
    )
}

/// Writes the manual pages of `command`.
pub fn man(command: clap::Command, args: &ManArgs) -> ExitCode {
    let result = match &args.out_dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(command, dir))
            .with_context(|| format!("cannot write the manual pages to {}", dir.display()))
            .map(|()| {
                let pages = std::fs::read_dir(dir)
                    .map(|entries| {
                        entries
                            .filter_map(Result::ok)
                            .filter(|e| e.path().extension().is_some_and(|x| x == "1"))
                            .count()
                    })
                    .unwrap_or(0);
                println!("{} manual pages in {}", pages, dir.display());
            }),
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .and_then(|()| std::io::stdout().write_all(&out))
                .context("cannot write the manual page")
        }
    };
    podiam_process::exit_on(result.map(|()| ExitCode::SUCCESS))
}
