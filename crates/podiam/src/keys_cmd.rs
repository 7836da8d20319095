//! `podiam keys generate` and `podiam keys rotate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use podiam_crypto::{KeyKind, SigningKey};

use crate::cli_io::{exit_on, write_private};

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a signing key for a service-account token issuer (PKCS#8 PEM, mode 0600).
    ///
    /// Prints the key id (base64url of the SHA-256 of the public key's DER, as Kubernetes
    /// computes it).
    Generate(GenerateArgs),
    /// Rotate a key of a running server: the session keyring, or a cluster's hosted issuer.
    ///
    /// The new key is used at once by every replica; the old one keeps verifying what it
    /// signed until that has expired (12 h for sessions, 48 h for issuer tokens, plus skew),
    /// then it is removed. Needs podiam:RotateKeys.
    Rotate(RotateArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KeyKindArg {
    /// The keyring that seals session credentials.
    Session,
    /// A cluster's hosted service-account token issuer (with --cluster).
    Issuer,
}

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// Which key.
    #[arg(long, value_enum)]
    kind: KeyKindArg,
    /// The cluster whose issuer key to rotate (with --kind issuer).
    #[arg(long, required_if_eq("kind", "issuer"))]
    cluster: Option<String>,
    #[command(flatten)]
    connection: crate::cluster_cmd::Connection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Algorithm {
    /// RSA with SHA-256 (Kubernetes' default).
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256.
    #[value(name = "ES256")]
    Es256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RsaBits {
    #[value(name = "2048")]
    B2048,
    #[value(name = "3072")]
    B3072,
}

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// The signature algorithm.
    #[arg(long, value_enum)]
    alg: Algorithm,
    /// RSA modulus size (RS256 only).
    #[arg(long, value_enum, default_value_t = RsaBits::B2048)]
    rsa_bits: RsaBits,
    /// Where to write the private key.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(command: KeysCommand) -> ExitCode {
    exit_on(match command {
        KeysCommand::Generate(args) => generate(&args),
        KeysCommand::Rotate(args) => rotate(&args),
    })
}

fn rotate(args: &RotateArgs) -> anyhow::Result<ExitCode> {
    let path = match (args.kind, &args.cluster) {
        (KeyKindArg::Session, None) => "/podiam/keys/session/rotate".to_owned(),
        (KeyKindArg::Session, Some(_)) => anyhow::bail!("--cluster goes with --kind issuer"),
        (KeyKindArg::Issuer, Some(cluster)) => format!(
            "/clusters/{}/podiam/keys/rotate",
            podiam_sigv4::encode_component(cluster.as_bytes(), true)
        ),
        (KeyKindArg::Issuer, None) => anyhow::bail!("--kind issuer needs --cluster"),
    };
    let client = args.connection.client()?;
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(client.rest_json("podiam", http::Method::POST, &path, None))
        .map_err(crate::cluster_cmd::explain)?;
    let body = &answer.body;
    let text = |name: &str| {
        body.get(name)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    let retires = body
        .get("previousRetiresAt")
        .and_then(serde_json::Value::as_i64)
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map_or_else(|| "?".to_owned(), podiam_wire::iso8601);
    println!(
        "Rotated the {} key{}: {} signs from now on; {} still verifies until {retires}, then it is removed.",
        text("kind"),
        args.cluster
            .as_deref()
            .map(|c| format!(" of cluster {c}"))
            .unwrap_or_default(),
        text("currentKeyId"),
        text("previousKeyId"),
    );
    Ok(ExitCode::SUCCESS)
}

fn generate(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let kind = match (args.alg, args.rsa_bits) {
        (Algorithm::Es256, _) => KeyKind::EcP256,
        (Algorithm::Rs256, RsaBits::B3072) => KeyKind::Rsa3072,
        (Algorithm::Rs256, RsaBits::B2048) => KeyKind::Rsa2048,
    };
    let key = SigningKey::generate(kind).context("cannot generate a key")?;
    write_private(
        &args.out,
        key.to_pkcs8_pem().expose().as_bytes(),
        args.force,
    )?;
    println!(
        "{}: {} key, kid {}",
        args.out.display(),
        key.algorithm(),
        key.kid()
    );
    Ok(ExitCode::SUCCESS)
}
