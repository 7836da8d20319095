//! `podiam keys generate`.

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
    })
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
