//! `podiam token mint | verify | discovery`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use podiam_crypto::{JwkSet, SigningKey, SystemRng, sha256};
use podiam_oidc::{
    DISCOVERY_PATH, DiscoveryDocument, Issuer, JWKS_PATH, KeySet, ObjectRef, TokenRequest,
    Verifier, default_jwks_uri,
};
use podiam_types::{Clock, SystemClock};
use podiam_wire::{Api, token_error};
use time::OffsetDateTime;

use crate::cli_io::{exit_on, parse_time, read_input};

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Mint a projected service-account token, exactly as kube-apiserver writes them.
    ///
    /// Prints the JWT on standard output, without a newline.
    Mint(MintArgs),
    /// Verify a service-account token against an issuer's JWKS.
    ///
    /// Exits 0 and prints the claims as JSON; otherwise exits 1 and prints one line
    /// `error: <Code>: <reason>` with the code STS would answer.
    Verify(VerifyArgs),
    /// Print the OIDC discovery document and JWKS of an issuer, as kube-apiserver serves them.
    ///
    /// Prints {"discovery": {...}, "jwks": {...}}; with --out-dir, also writes
    /// .well-known/openid-configuration and openid/v1/jwks there, ready to publish.
    Discovery(DiscoveryArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MintArgs {
    /// The issuer's private key (PKCS#8, PKCS#1 or SEC1 PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The issuer URL (the token's `iss`).
    #[arg(long, value_name = "URL")]
    issuer: String,
    /// The service account's namespace.
    #[arg(long, value_name = "NS")]
    namespace: String,
    /// The service account's name.
    #[arg(long, value_name = "SA")]
    service_account: String,
    /// An audience (repeat for several), e.g. sts.amazonaws.com or pods.eks.amazonaws.com.
    #[arg(long, value_name = "AUD", required = true)]
    audience: Vec<String>,
    /// The service account's uid [default: derived from namespace and name].
    #[arg(long, value_name = "UID")]
    service_account_uid: Option<String>,
    /// Bind the token to a pod.
    #[arg(long, value_name = "P")]
    pod_name: Option<String>,
    /// The pod's uid [default: derived from namespace and pod name].
    #[arg(long, value_name = "U", requires = "pod_name")]
    pod_uid: Option<String>,
    /// Bind the token to a node.
    #[arg(long, value_name = "N")]
    node_name: Option<String>,
    /// The node's uid [default: derived from the node name].
    #[arg(long, value_name = "U", requires = "node_name")]
    node_uid: Option<String>,
    /// Lifetime in seconds (600 to 172800).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    ttl: u64,
    /// Issue at this time (seconds since the epoch or RFC 3339) instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    now: Option<OffsetDateTime>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The issuer's JWKS (or the output of `podiam token discovery`).
    #[arg(long, value_name = "FILE")]
    jwks: PathBuf,
    /// The expected issuer, compared exactly with `iss`.
    #[arg(long, value_name = "URL")]
    issuer: String,
    /// An accepted audience (repeat for several).
    #[arg(long, value_name = "AUD", required = true)]
    audience: Vec<String>,
    /// The token; `-` reads standard input.
    #[arg(value_name = "TOKEN")]
    token: String,
    /// Verify at this time (seconds since the epoch or RFC 3339) instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    now: Option<OffsetDateTime>,
}

#[derive(Debug, Args)]
pub(crate) struct DiscoveryArgs {
    /// The issuer's key (repeat during a rotation to publish old and new keys).
    #[arg(long, value_name = "FILE", required = true)]
    key: Vec<PathBuf>,
    /// The issuer URL.
    #[arg(long, value_name = "URL")]
    issuer: String,
    /// Where the JWKS is served [default: ISSUER/openid/v1/jwks].
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
    /// Also write the two documents under this directory.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

pub(crate) fn run(command: TokenCommand) -> ExitCode {
    exit_on(match command {
        TokenCommand::Mint(args) => mint(&args),
        TokenCommand::Verify(args) => verify(&args),
        TokenCommand::Discovery(args) => discovery(&args),
    })
}

fn load_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text = read_input(path)?;
    SigningKey::from_pem(&text)
        .with_context(|| format!("{} is not a usable private key", path.display()))
}

/// A stable, name-derived uid (a version-8 UUID over SHA-256), for objects podiam invents.
fn derived_uid(parts: &[&str]) -> String {
    let digest = sha256(parts.join("\0").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        hex.get(..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..).unwrap_or_default()
    )
}

fn mint(args: &MintArgs) -> anyhow::Result<ExitCode> {
    let issuer = Issuer::new(&args.issuer, load_key(&args.key)?)?;
    let ns = args.namespace.as_str();
    let request = TokenRequest {
        namespace: args.namespace.clone(),
        service_account: ObjectRef {
            name: args.service_account.clone(),
            uid: args
                .service_account_uid
                .clone()
                .unwrap_or_else(|| derived_uid(&["serviceaccount", ns, &args.service_account])),
        },
        audiences: args.audience.clone(),
        pod: args.pod_name.as_ref().map(|name| ObjectRef {
            name: name.clone(),
            uid: args
                .pod_uid
                .clone()
                .unwrap_or_else(|| derived_uid(&["pod", ns, name])),
        }),
        node: args.node_name.as_ref().map(|name| ObjectRef {
            name: name.clone(),
            uid: args
                .node_uid
                .clone()
                .unwrap_or_else(|| derived_uid(&["node", name])),
        }),
        lifetime: Duration::from_secs(args.ttl),
        warn_after: None,
    };
    let now = args.now.unwrap_or_else(|| SystemClock.now());
    let token = issuer.mint(&request, now, &SystemRng)?;
    print!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// Reads a JWKS, or the `jwks` member of `podiam token discovery` output.
fn load_jwks(path: &Path) -> anyhow::Result<JwkSet> {
    let text = read_input(path)?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let jwks_text = match value.get("jwks") {
        Some(inner) if value.get("keys").is_none() => inner.to_string(),
        _ => text,
    };
    JwkSet::parse(&jwks_text).with_context(|| format!("{} is not a usable JWKS", path.display()))
}

fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let jwks = load_jwks(&args.jwks)?;
    let (keys, skipped) = KeySet::from_jwks(&jwks);
    for reason in skipped {
        eprintln!("warning: skipped {reason}");
    }
    if keys.is_empty() {
        bail!("{} has no usable RS256 or ES256 keys", args.jwks.display());
    }
    let token = if args.token == "-" {
        read_input(Path::new("-"))?
    } else {
        args.token.clone()
    };
    let audiences: Vec<&str> = args.audience.iter().map(String::as_str).collect();
    let now = args.now.unwrap_or_else(|| SystemClock.now());
    match Verifier::new(&args.issuer, &audiences).verify(token.trim(), &keys, now) {
        Ok(verified) => {
            let claims = &verified.claims;
            let text = if std::io::stdout().is_terminal() {
                serde_json::to_string_pretty(claims)?
            } else {
                serde_json::to_string(claims)?
            };
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            let wire = token_error(&error, Api::Sts);
            eprintln!("error: {}: {}", wire.code, wire.message);
            Ok(ExitCode::from(1))
        }
    }
}

fn discovery(args: &DiscoveryArgs) -> anyhow::Result<ExitCode> {
    let mut keys = KeySet::new();
    for path in &args.key {
        let key = load_key(path)?;
        keys.insert(podiam_crypto::VerifyingKey::from_jwk(
            &key.verifying_key().to_jwk(),
        )?);
    }
    let jwks_uri = args
        .jwks_uri
        .clone()
        .unwrap_or_else(|| default_jwks_uri(&args.issuer));
    let document = DiscoveryDocument::new(&args.issuer, &jwks_uri, &keys.algorithms());
    let jwks = keys.to_jwks();
    if let Some(dir) = &args.out_dir {
        for (relative, contents) in [
            (DISCOVERY_PATH, serde_json::to_string(&document)?),
            (JWKS_PATH, serde_json::to_string(&jwks)?),
        ] {
            let path = dir.join(relative.trim_start_matches('/'));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&path, contents)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    let output = serde_json::json!({"discovery": document, "jwks": jwks});
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(ExitCode::SUCCESS)
}
