//! Configuration the usual ways, for the long-running commands: every flag also reads from a
//! `PODIAM_…` environment variable (`--max-in-flight` from `PODIAM_MAX_IN_FLIGHT`) and from a
//! TOML file given with `--config FILE` (or `PODIAM_CONFIG`). The precedence is
//! flag > environment > file > built-in default, which is what clap gives an argument's
//! explicit value, its `env` and its `default_value`, in that order: the file's values become
//! the defaults.
//!
//! The file's keys are the flags' long names (`listen = "0.0.0.0:4599"`, `max-in-flight =
//! 256`, `bind-hosts = ["169.254.170.23"]`); a table named after the command (`[server]`,
//! `[agent]`) holds keys for that command only, so one file can serve several. A key that is
//! not a flag of the command is an error, so a typo does not go unnoticed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command};

/// The flag that names the file.
const CONFIG_FLAG: &str = "config";

/// The environment variable a flag reads: `PODIAM_` and its long name, upper case, `_` for `-`.
pub fn env_name(long: &str) -> String {
    format!("PODIAM_{}", long.to_ascii_uppercase().replace('-', "_"))
}

/// The `--config FILE` (or `--config=FILE`) among `args`, else `PODIAM_CONFIG`.
pub fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(env_name(CONFIG_FLAG)).map(PathBuf::from)
}

/// Reads a config file as a TOML table.
pub fn read_config(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("the config file {} is not valid TOML: {e}", path.display()))
}

/// Gives the subcommands named in `commands` (and theirs) the `--config` flag, a `PODIAM_…`
/// variable for every long flag, and `file`'s values as defaults.
pub fn configure(
    mut root: Command,
    commands: &[&str],
    file: Option<&toml::Table>,
) -> Result<Command, String> {
    let args: Vec<OsString> = std::env::args_os().collect();
    configure_for(&mut root, commands, file, invoked(&args, commands))?;
    Ok(root)
}

/// The command of `commands` that `args` run, if any (the first word that is not a flag).
fn invoked<'a>(args: &[OsString], commands: &[&'a str]) -> Option<&'a str> {
    let word = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy())
        .find(|a| !a.starts_with('-'))?;
    commands.iter().copied().find(|c| *c == word)
}

/// [`configure`] with the invoked command given: only its flags take the file's values (the
/// file is checked against its flags; the others' keys may be there too).
fn configure_for(
    root: &mut Command,
    commands: &[&str],
    file: Option<&toml::Table>,
    invoked: Option<&str>,
) -> Result<(), String> {
    for name in commands {
        let Some(sub) = root.find_subcommand_mut(name) else {
            continue;
        };
        let mut values = toml::Table::new();
        if let Some(file) = file.filter(|_| invoked == Some(*name)) {
            for (key, value) in file {
                match value {
                    // Tables are for commands; another command's is not this one's business.
                    toml::Value::Table(_) => {}
                    other => {
                        values.entry(key.clone()).or_insert_with(|| other.clone());
                    }
                }
            }
            // A command's own table wins over the shared keys.
            if let Some(toml::Value::Table(section)) = file.get(*name) {
                values.extend(section.clone());
            }
        }
        let configured = configure_command(sub.clone(), &values)
            .map_err(|e| format!("the config file, for `{name}`: {e}"))?;
        *sub = configured;
    }
    Ok(())
}

/// The same for a program that is itself one long-running command (`podiam-agent`): its flags
/// take `file`'s top-level keys and its `[name]` table.
pub fn configure_root(
    command: Command,
    name: &str,
    file: Option<&toml::Table>,
) -> Result<Command, String> {
    let mut values = toml::Table::new();
    if let Some(file) = file {
        values.extend(
            file.iter()
                .filter(|(_, v)| !v.is_table())
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        if let Some(toml::Value::Table(section)) = file.get(name) {
            values.extend(section.clone());
        }
    }
    configure_command(command, &values).map_err(|e| format!("the config file: {e}"))
}

/// Parses the process's arguments for `command` configured by `configure` with the config file
/// the arguments (or `PODIAM_CONFIG`) name; a bad file exits with status 2 and one line.
pub fn matches(
    command: Command,
    configure: impl FnOnce(Command, Option<&toml::Table>) -> Result<Command, String>,
) -> clap::ArgMatches {
    let args: Vec<OsString> = std::env::args_os().collect();
    let file = match config_path(&args)
        .map(|path| read_config(&path))
        .transpose()
    {
        Ok(file) => file,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    match configure(command, file.as_ref()) {
        Ok(command) => command.get_matches_from(args),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

fn configure_command(command: Command, values: &toml::Table) -> Result<Command, String> {
    let known: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    for key in values.keys() {
        let long = key.replace('_', "-");
        if !known.contains(&long) {
            return Err(format!("{key:?} is not a flag of this command"));
        }
    }
    let mut failure = None;
    let command = command
        .arg(
            Arg::new(CONFIG_FLAG)
                .long(CONFIG_FLAG)
                .value_name("FILE")
                .env(env_name(CONFIG_FLAG))
                .help(
                    "Read flags from this TOML file (keys are the long flag names); \
                     precedence: flag > PODIAM_… environment variable > file > default",
                ),
        )
        .mut_args(|arg| {
            let Some(long) = arg.get_long().map(str::to_owned) else {
                return arg;
            };
            if matches!(long.as_str(), "help" | "version" | CONFIG_FLAG) {
                return arg;
            }
            let mut arg = if arg.get_env().is_none() {
                arg.env(env_name(&long))
            } else {
                arg
            };
            let value = values
                .get(&long)
                .or_else(|| values.get(&long.replace('-', "_")));
            if let Some(value) = value {
                match defaults_of(&arg, value) {
                    Ok(defaults) => {
                        arg = arg.default_values(defaults).required(false);
                    }
                    Err(e) => failure = Some(format!("{long}: {e}")),
                }
            }
            arg
        });
    match failure {
        Some(e) => Err(e),
        None => Ok(command),
    }
}

/// A file value as the text values clap parses.
fn defaults_of(arg: &Arg, value: &toml::Value) -> Result<Vec<String>, String> {
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!(
            "expected a string, number or boolean, not {}",
            other.type_str()
        )),
    };
    match value {
        toml::Value::Array(items) => {
            if !matches!(arg.get_action(), ArgAction::Append) && items.len() != 1 {
                return Err("takes one value, not a list".to_owned());
            }
            items.iter().map(scalar).collect()
        }
        other => scalar(other).map(|v| vec![v]),
    }
}

#[cfg(test)]
mod tests {
    use clap::{Parser, Subcommand};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Debug, Subcommand)]
    enum Sub {
        Server {
            #[arg(long, default_value = "127.0.0.1:4599")]
            listen: String,
            #[arg(long, default_value_t = 8)]
            workers: usize,
            #[arg(long)]
            verbose: bool,
            #[arg(long)]
            tag: Vec<String>,
        },
        Other {
            #[arg(long, default_value = "x")]
            name: String,
        },
    }

    fn parse(args: &[&str], file: Option<&str>, env: &[(&str, &str)]) -> Result<Sub, String> {
        use clap::{CommandFactory, FromArgMatches};
        let table = file
            .map(|t| t.parse::<toml::Table>().map_err(|e| e.to_string()))
            .transpose()?;
        let mut command = Cli::command();
        configure_for(&mut command, &["server"], table.as_ref(), Some("server"))?;
        // The environment, without touching the process's.
        for (name, value) in env {
            let name = (*name).to_owned();
            let value = (*value).to_owned();
            command = command.mut_subcommand("server", |sub| {
                sub.mut_args(|arg| {
                    if arg
                        .get_env()
                        .is_some_and(|e| e.to_str() == Some(name.as_str()))
                    {
                        arg.default_value(value.clone())
                    } else {
                        arg
                    }
                })
            });
        }
        let mut all = vec!["podiam"];
        all.extend_from_slice(args);
        let matches = command
            .try_get_matches_from(all)
            .map_err(|e| e.to_string())?;
        Cli::from_arg_matches(&matches)
            .map(|c| c.command)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let file = "listen = \"0.0.0.0:1\"\nworkers = 3\nverbose = true\ntag = [\"a\", \"b\"]\n";
        let Ok(Sub::Server {
            listen,
            workers,
            verbose,
            tag,
        }) = parse(&["server"], Some(file), &[])
        else {
            panic!("parses");
        };
        assert_eq!((listen.as_str(), workers, verbose), ("0.0.0.0:1", 3, true));
        assert_eq!(tag, ["a", "b"]);
        let Ok(Sub::Server {
            listen, workers, ..
        }) = parse(&["server", "--listen", "1.2.3.4:5"], Some(file), &[])
        else {
            panic!("parses");
        };
        assert_eq!((listen.as_str(), workers), ("1.2.3.4:5", 3));
        let Ok(Sub::Server {
            listen, workers, ..
        }) = parse(&["server"], None, &[])
        else {
            panic!("parses");
        };
        assert_eq!((listen.as_str(), workers), ("127.0.0.1:4599", 8));
    }

    #[test]
    fn a_command_table_wins_and_unknown_keys_are_errors() {
        let file = "workers = 3\n[server]\nworkers = 4\n[other]\nname = \"y\"\n";
        let Ok(Sub::Server { workers, .. }) = parse(&["server"], Some(file), &[]) else {
            panic!("parses");
        };
        assert_eq!(workers, 4);
        let typo = parse(&["server"], Some("listn = \"x\"\n"), &[]);
        assert!(typo.is_err_and(|e| e.contains("\"listn\" is not a flag")));
        let list = parse(&["server"], Some("workers = [1, 2]\n"), &[]);
        assert!(list.is_err_and(|e| e.contains("one value")));
    }

    #[test]
    fn every_flag_has_its_variable() {
        use clap::CommandFactory;
        let mut command = Cli::command();
        if configure_for(&mut command, &["server"], None, Some("server")).is_err() {
            panic!("configures");
        }
        let Some(server) = command.find_subcommand("server") else {
            panic!("has server");
        };
        let vars: Vec<String> = server
            .get_arguments()
            .filter_map(|a| a.get_env().and_then(|e| e.to_str()).map(str::to_owned))
            .collect();
        for expected in [
            "PODIAM_LISTEN",
            "PODIAM_WORKERS",
            "PODIAM_VERBOSE",
            "PODIAM_TAG",
            "PODIAM_CONFIG",
        ] {
            assert!(vars.iter().any(|v| v == expected), "{expected} in {vars:?}");
        }
        assert_eq!(env_name("max-in-flight"), "PODIAM_MAX_IN_FLIGHT");
    }

    #[test]
    fn only_the_invoked_command_reads_the_file() {
        use clap::CommandFactory;
        let args: Vec<OsString> = ["podiam", "--color", "server", "--listen", "x"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(invoked(&args, &["agent", "server"]), Some("server"));
        let mut command = Cli::command();
        // A server key in the file does not trouble `other`.
        let file: toml::Table = "listen = \"0.0.0.0:1\"\n".parse().unwrap_or_default();
        assert!(
            configure_for(
                &mut command,
                &["server", "other"],
                Some(&file),
                Some("server")
            )
            .is_ok()
        );
    }

    #[test]
    fn the_config_flag_is_found_before_parsing() {
        let args: Vec<OsString> = ["podiam", "server", "--config", "/etc/podiam.toml"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(config_path(&args), Some(PathBuf::from("/etc/podiam.toml")));
        let args: Vec<OsString> = ["podiam", "server", "--config=/x.toml"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(config_path(&args), Some(PathBuf::from("/x.toml")));
    }
}
