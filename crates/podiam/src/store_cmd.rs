//! `podiam store copy`: moves an embedded store into etcd, when one server grows into
//! several replicas.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use podiam_server::StoreConfig;
use podiam_store::{RedbStore, copy_store};

use crate::cli_io::exit_on;
use crate::etcd_args::EtcdArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Copy every key of a stopped server's embedded store into an empty etcd namespace.
    ///
    /// The keys stay sealed under the data directory's key-encryption key: start every
    /// replica with `--store etcd://… --kek-file DATA_DIR/kek`.
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CopyArgs {
    /// The data directory of the embedded store (its server must be stopped).
    #[arg(long, value_name = "DATA_DIR")]
    from: PathBuf,
    /// The destination: etcd://host:2379[,host:2379…].
    #[arg(long, value_name = "URL")]
    to: String,
    #[command(flatten)]
    etcd: EtcdArgs,
}

pub(crate) fn run(command: StoreCommand) -> ExitCode {
    match command {
        StoreCommand::Copy(args) => exit_on(copy(&args)),
    }
}

fn copy(args: &CopyArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let destination = args.etcd.store(Some(&args.to))?;
    if !matches!(destination, StoreConfig::Etcd(_)) {
        bail!("--to must be an etcd:// store");
    }
    let path = args.from.join("podiam.redb");
    if !path.is_file() {
        bail!(
            "{} has no podiam.redb: is it a podiam data directory?",
            args.from.display()
        );
    }
    let source = RedbStore::open(&path).with_context(|| {
        format!(
            "cannot open {} (stop the server that uses it first)",
            path.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let copied = runtime.block_on(async {
        // Records in etcd are bound to their keys under the key-encryption key the replicas
        // will use: the data directory's.
        let kek = podiam_server::read_kek(&args.from.join("kek"))?;
        let target = destination.open(&args.from, &kek).await?;
        let copied = copy_store(&source, target.as_ref(), |so_far| {
            eprint!("\rcopied {} keys ({} bytes)", so_far.keys, so_far.bytes);
        })
        .await
        .context("the copy failed")?;
        eprintln!();
        anyhow::Ok(copied)
    })?;
    println!(
        "Copied {} keys ({} bytes) from {} to {} in {} ms.",
        copied.keys,
        copied.bytes,
        args.from.display(),
        args.to,
        started.elapsed().as_millis()
    );
    println!(
        "Start each replica with: podiam server --store {} --kek-file {}",
        args.to,
        args.from.join("kek").display()
    );
    Ok(ExitCode::SUCCESS)
}
