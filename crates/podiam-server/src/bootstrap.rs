//! Opening a data directory: the key-encryption key, the store, the account, the session
//! keyring, the seeded AWS-managed policies and, on first start, the root access key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use podiam_crypto::{AeadKey, KeyId, Keyring, Rng, Secret};
use podiam_eks::{Eks, EksConfig, Upstream};
use podiam_iam::{Iam, IamConfig};
use podiam_store::{Store, TxnOutcome};
use podiam_sts::{IssuerKeys, Sts};
use podiam_types::{AccountId, Clock};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::app::{App, Services};
use crate::issuers::{ClusterIssuerKeys, HttpIssuerKeys, IssuerNetworks};
use crate::metrics::Metrics;
use crate::session_keys::{KeyringError, SessionKeys};
use crate::store_config::StoreConfig;
use crate::upstream::Broker;

/// How the server is configured.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data directory (store, key-encryption key, root credentials).
    pub data_dir: PathBuf,
    /// The account id (the stored one when `None`; `000000000000` for a new data directory).
    pub account_id: Option<String>,
    /// The region the server reports and signs for.
    pub region: String,
    /// Accept `http://` token issuers on loopback.
    pub allow_http_issuers: bool,
    /// Fetch issuers' keys from private networks (over HTTPS).
    pub allow_private_issuers: bool,
    /// A PEM bundle of extra CAs for issuer discovery over HTTPS.
    pub oidc_ca_file: Option<PathBuf>,
    /// The key-encryption key file (default: `<data-dir>/kek`, created on first start).
    pub kek_file: Option<PathBuf>,
    /// The URL clients reach this server at (hosted issuers' default URLs are under it);
    /// `http://<listen>` when `None`.
    pub public_url: Option<String>,
    /// Where the state lives: the embedded store in `data_dir`, or etcd.
    pub store: StoreConfig,
    /// Request body bytes buffered at once, across all requests (see [`podiam_http::BodyBudget`]).
    pub body_budget_bytes: usize,
    /// Accounts whose roles are real AWS roles, and how AWS is asked (`--aws-upstream-account`).
    pub upstream: Option<Upstream>,
}

/// Why the server cannot start. Each message says what to do.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BootError {
    /// A file or directory problem.
    #[error("{0}")]
    Io(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] podiam_store::StoreError),
    /// A configuration that contradicts the data directory.
    #[error("{0}")]
    Config(String),
    /// IAM could not load.
    #[error("IAM could not load: {0}")]
    Iam(#[from] podiam_iam::IamError),
    /// Key material problem.
    #[error("{0}")]
    Crypto(String),
}

impl From<KeyringError> for BootError {
    fn from(e: KeyringError) -> Self {
        match e {
            KeyringError::Store(e) => Self::Store(e),
            other => Self::Config(other.to_string()),
        }
    }
}

/// A started control plane.
#[derive(Debug)]
pub struct Opened {
    /// The application, ready to serve.
    pub app: App,
    /// The account id.
    pub account_id: String,
    /// The root access key created on this start (first start only), to print once.
    pub new_root_key: Option<(String, Secret<String>)>,
    /// Where the root credentials were written.
    pub root_credentials_path: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct AccountRecord {
    account_id: String,
}

const ACCOUNT_KEY: &str = "meta/account";
const ROOT_KEY_ISSUED: &str = "meta/root-key-issued";

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> BootError {
    BootError::Io(format!("{what} {}: {e}", path.display()))
}

/// Writes a new file readable only by its owner.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), BootError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io("cannot create", path, e))?;
    file.write_all(contents)
        .map_err(|e| io("cannot write", path, e))?;
    file.sync_all().map_err(|e| io("cannot write", path, e))
}

/// Reads a key-encryption key file (base64 of 32 bytes).
pub fn read_kek(path: &Path) -> Result<Keyring, BootError> {
    let raw = Secret::new(std::fs::read(path).map_err(|e| io("cannot read", path, e))?);
    let bytes = kek_bytes(raw.expose()).ok_or_else(|| {
        BootError::Config(format!(
            "{} is not a key-encryption key: expected the base64 of 32 bytes (one line, as \
             `head -c 32 /dev/urandom | base64 > kek` writes) or exactly 32 raw bytes \
             (`head -c 32 /dev/urandom > kek`); this file has {} bytes",
            path.display(),
            raw.expose().len()
        ))
    })?;
    let key = AeadKey::from_bytes(KeyId(0), bytes.expose())
        .map_err(|e| BootError::Config(format!("{}: {e}", path.display())))?;
    Ok(Keyring::new(key))
}

/// The key in a KEK file: the documented base64 form (surrounding whitespace allowed), or
/// exactly [`AeadKey::LEN`] raw bytes. Base64 is tried first: 32 raw bytes that happen to be
/// valid base64 text would decode to 24 bytes, which is not a key, so the two cannot be
/// confused.
fn kek_bytes(file: &[u8]) -> Option<Secret<Vec<u8>>> {
    let decoded = std::str::from_utf8(file)
        .ok()
        .and_then(|text| STANDARD.decode(text.trim()).ok())
        .filter(|bytes| bytes.len() == AeadKey::LEN);
    match decoded {
        Some(bytes) => Some(Secret::new(bytes)),
        None if file.len() == AeadKey::LEN => Some(Secret::new(file.to_vec())),
        None => None,
    }
}

/// The key-encryption key: from `--kek-file`, or `<data-dir>/kek` (created on first start).
fn load_kek(config: &ServerConfig, rng: &dyn Rng) -> Result<Keyring, BootError> {
    let path = config
        .kek_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("kek"));
    if !path.exists() {
        if config.kek_file.is_some() {
            return Err(BootError::Config(format!(
                "the key-encryption key file {} does not exist",
                path.display()
            )));
        }
        let mut bytes = Secret::new(vec![0u8; AeadKey::LEN]);
        rng.fill(bytes.expose_mut())
            .map_err(|e| BootError::Crypto(e.to_string()))?;
        write_private(
            &path,
            format!("{}\n", STANDARD.encode(bytes.expose())).as_bytes(),
        )?;
    }
    read_kek(&path)
}

/// The account of this data directory.
async fn load_account(store: &dyn Store, asked: Option<&str>) -> Result<String, BootError> {
    for _ in 0..3 {
        if let Some(account) = try_load_account(store, asked).await? {
            return Ok(account);
        }
    }
    Err(BootError::Config(format!(
        "{ACCOUNT_KEY} is written but cannot be read: the store's records may have been changed"
    )))
}

/// The account a server recorded in `store`, for a process that follows the store without
/// writing to it.
pub(crate) async fn stored_account(store: &dyn Store) -> Result<String, BootError> {
    let entry = store.get(ACCOUNT_KEY).await?.ok_or_else(|| {
        BootError::Config(
            "the store holds no podiam account yet: start `podiam server` on it first".to_owned(),
        )
    })?;
    let record: AccountRecord = serde_json::from_slice(&entry.value)
        .map_err(|e| BootError::Config(format!("{ACCOUNT_KEY}: {e}")))?;
    Ok(record.account_id)
}

/// The account, or `None` when another writer created it first (read it again).
async fn try_load_account(
    store: &dyn Store,
    asked: Option<&str>,
) -> Result<Option<String>, BootError> {
    if let Some(asked) = asked {
        asked
            .parse::<AccountId>()
            .map_err(|e| BootError::Config(format!("--account-id: {e}")))?;
    }
    match store.get(ACCOUNT_KEY).await? {
        Some(entry) => {
            let record: AccountRecord = serde_json::from_slice(&entry.value)
                .map_err(|e| BootError::Config(format!("{ACCOUNT_KEY}: {e}")))?;
            match asked {
                Some(asked) if asked != record.account_id => Err(BootError::Config(format!(
                    "this data directory belongs to account {}; start with --account-id {} or use another --data-dir",
                    record.account_id, record.account_id
                ))),
                _ => Ok(Some(record.account_id)),
            }
        }
        None => {
            let account_id = asked.unwrap_or("000000000000").to_owned();
            let value = serde_json::to_vec(&AccountRecord {
                account_id: account_id.clone(),
            })
            .map_err(|e| BootError::Config(e.to_string()))?;
            if store.compare_and_swap(ACCOUNT_KEY, None, value).await? == TxnOutcome::Failed {
                return Ok(None);
            }
            Ok(Some(account_id))
        }
    }
}

/// AWS-managed policies every account has (simplified documents with the same intent).
const AWS_MANAGED: &[(&str, &str, &str)] = &[
    (
        "AdministratorAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        "Provides full access to AWS services and resources.",
    ),
    (
        "ReadOnlyAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Get*","iam:List*","iam:Simulate*","sts:GetCallerIdentity","eks:Describe*","eks:List*","dynamodb:BatchGet*","dynamodb:Describe*","dynamodb:Get*","dynamodb:List*","dynamodb:Query","dynamodb:Scan"],"Resource":"*"}]}"#,
        "Provides read-only access to the services podiam implements.",
    ),
    (
        "AmazonDynamoDBFullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}]}"#,
        "Provides full access to Amazon DynamoDB.",
    ),
];

/// What [`start`] needs besides the store and the key-encryption key.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The account id (the stored one when `None`; `000000000000` for a new store).
    pub account_id: Option<String>,
    /// The region the server reports.
    pub region: String,
    /// Accept `http://` token issuers on loopback.
    pub allow_http_issuers: bool,
    /// Fetch issuers' keys from private networks (over HTTPS).
    pub allow_private_issuers: bool,
    /// The URL clients reach this server at, e.g. `http://127.0.0.1:4599`.
    pub public_url: String,
    /// Request body bytes buffered at once, across all requests.
    pub body_budget_bytes: usize,
    /// Accounts whose roles are real AWS roles, and how AWS is asked.
    pub upstream: Option<Upstream>,
    /// Where browsers reach the web console (`--public-url`; the sign-in URLs get its origin).
    /// `None`: the `Host` of the signed request that asks for one, over http.
    pub console_url: Option<String>,
}

/// A control plane built over a store.
#[derive(Debug)]
pub struct Started {
    /// The application, ready to serve.
    pub app: App,
    /// The account id.
    pub account_id: String,
    /// The root access key created now (only when the store had none), to hand out once.
    pub new_root_key: Option<(String, Secret<String>)>,
}

/// Builds the control plane over `store`: the account, the session keyring (sealed under
/// `kek`), the AWS-managed policies and, for a new store, the root access key. Token issuers'
/// keys come from `issuers`; time and randomness from `clock` and `rng`.
pub async fn start(
    store: Arc<dyn Store>,
    kek: Arc<Keyring>,
    options: &StartOptions,
    issuers: Arc<dyn IssuerKeys>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
) -> Result<Started, BootError> {
    let account_id = load_account(store.as_ref(), options.account_id.as_deref()).await?;
    let session_keys = SessionKeys::open(
        Arc::clone(&store),
        Arc::clone(&kek),
        Arc::clone(&rng),
        Arc::clone(&clock),
    )
    .await
    .map_err(BootError::from)?;
    let iam_config = IamConfig {
        account: account_id.clone(),
        partition: "aws".to_owned(),
    };
    let iam = Iam::open(
        Arc::clone(&store),
        Arc::clone(&kek),
        Arc::clone(&rng),
        Arc::clone(&clock),
        &iam_config,
    )
    .await?;
    for (name, document, description) in AWS_MANAGED {
        iam.ensure_aws_managed_policy(name, "/", document, description)
            .await?;
    }
    // The root key is created once per account: deleting every root key (to lock the account
    // down) must not bring a new one back at the next start.
    let mut new_root_key = None;
    if store.get(ROOT_KEY_ISSUED).await?.is_none() {
        if iam.state().keys_of(None).is_empty() {
            let (record, secret) = iam.create_access_key(None).await?;
            new_root_key = Some((record.id, secret));
        }
        store
            .compare_and_swap(ROOT_KEY_ISSUED, None, b"{}".to_vec())
            .await?;
    }
    let metrics = Metrics::new();
    let mut broker = None;
    let mut eks = Eks::open(
        Arc::clone(&store),
        Arc::clone(&kek),
        Arc::clone(&rng),
        Arc::clone(&clock),
        EksConfig {
            account: account_id.clone(),
            partition: "aws".to_owned(),
            region: options.region.clone(),
            issuer_base: format!("{}/oidc", options.public_url.trim_end_matches('/')),
        },
    )
    .await
    .map_err(|e| BootError::Config(format!("EKS could not load: {e}")))?;
    if let Some(upstream) = &options.upstream {
        if upstream.accounts.iter().any(|a| a == account_id) {
            return Err(BootError::Config(format!(
                "--aws-upstream-account {account_id} is podiam's own account: give upstream accounts other than the one podiam serves (--account-id)"
            )));
        }
        let wrapped = Arc::new(Broker::new(Arc::clone(&upstream.roles), metrics.upstream()));
        tokio::spawn(Broker::check_forever(Arc::downgrade(&wrapped)));
        eks = eks.with_upstream(Upstream {
            accounts: upstream.accounts.clone(),
            roles: Arc::clone(&wrapped) as Arc<dyn podiam_eks::UpstreamRoles>,
        });
        broker = Some(wrapped);
    }
    let issuers: Arc<dyn IssuerKeys> = Arc::new(ClusterIssuerKeys::new(
        eks.clone(),
        issuers,
        IssuerNetworks {
            loopback: options.allow_http_issuers,
            private: options.allow_private_issuers,
        },
        Arc::clone(&clock),
    ));
    let keyring = session_keys.shared();
    let sts = Sts::new(
        iam.clone(),
        Arc::clone(&keyring),
        Arc::clone(&issuers),
        Arc::clone(&rng),
        Arc::clone(&clock),
    );
    let app = App::new(
        Services {
            iam,
            sts,
            eks,
            issuers,
            session_keys,
            metrics,
            upstream: broker,
            console: crate::console::Console::new(options.console_url.as_deref())
                .map_err(BootError::Config)?,
        },
        keyring,
        clock,
        rng,
        options.region.clone(),
        options.allow_http_issuers,
        podiam_http::BodyBudget::new(options.body_budget_bytes),
    );
    tokio::spawn(crate::keys_api::retire_forever(app.clone()));
    Ok(Started {
        app,
        account_id,
        new_root_key,
    })
}

/// Opens the data directory (key-encryption key, redb store) and starts the control plane
/// over it; a new root access key is also written to `<data-dir>/root-credentials` (0600).
pub async fn open(
    config: &ServerConfig,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
) -> Result<Opened, BootError> {
    // A start that fails leaves no half-made data directory behind (only one it created).
    let created = !config.data_dir.exists();
    let opened = open_inner(config, clock, rng).await;
    if opened.is_err() && created {
        let _ = std::fs::remove_dir_all(&config.data_dir);
    }
    opened
}

async fn open_inner(
    config: &ServerConfig,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
) -> Result<Opened, BootError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| io("cannot create the data directory", &config.data_dir, e))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    if matches!(config.store, StoreConfig::Etcd(_)) && config.kek_file.is_none() {
        return Err(BootError::Config(
            "with an etcd store every replica needs the same key-encryption key: pass --kek-file (create one with `head -c 32 /dev/urandom | base64 > kek`)".to_owned(),
        ));
    }
    let kek = Arc::new(load_kek(config, rng.as_ref())?);
    let store = config.store.open(&config.data_dir, &kek).await?;
    let issuers = Arc::new(
        HttpIssuerKeys::new(
            IssuerNetworks {
                loopback: config.allow_http_issuers,
                private: config.allow_private_issuers,
            },
            config.oidc_ca_file.as_deref(),
            Arc::clone(&clock),
        )
        .map_err(|e| BootError::Config(e.to_string()))?,
    );
    let options = StartOptions {
        account_id: config.account_id.clone(),
        region: config.region.clone(),
        allow_http_issuers: config.allow_http_issuers,
        allow_private_issuers: config.allow_private_issuers,
        public_url: config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.listen)),
        body_budget_bytes: config.body_budget_bytes,
        upstream: config.upstream.clone(),
        console_url: config.public_url.clone(),
    };
    let started = start(store, kek, &options, issuers, clock, rng).await?;
    let root_credentials_path = config.data_dir.join("root-credentials");
    if let Some((id, secret)) = &started.new_root_key {
        let _ = std::fs::remove_file(&root_credentials_path);
        let text = format!(
            "# podiam root credentials for account {}; keep them secret.\n[default]\naws_access_key_id = {id}\naws_secret_access_key = {}\n",
            started.account_id,
            secret.expose()
        );
        write_private(&root_credentials_path, text.as_bytes())?;
    }
    Ok(Opened {
        app: started.app,
        account_id: started.account_id,
        new_root_key: started.new_root_key,
        root_credentials_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        let _ = std::fs::write(&path, bytes);
        path
    }

    /// `--kek-file` takes the base64 form and 32 raw bytes, and they are the same key.
    #[test]
    fn a_kek_file_is_base64_or_32_raw_bytes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let raw: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(200))
            .collect();
        let encoded = format!("{}\n", STANDARD.encode(&raw));
        let from_base64 = read_kek(&write(dir.path(), "b64", encoded.as_bytes()));
        let from_raw = read_kek(&write(dir.path(), "raw", &raw));
        let (Ok(a), Ok(b)) = (from_base64, from_raw) else {
            panic!("both forms are accepted");
        };
        let sealed = a
            .seal(b"secret", b"aad", &podiam_crypto::SystemRng)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            b.open(&sealed, b"aad").ok().as_deref(),
            Some(&b"secret"[..]),
            "the same key"
        );
        // 32 printable raw bytes that are also valid base64 text are still the raw key.
        let printable = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef";
        assert!(read_kek(&write(dir.path(), "printable", printable)).is_ok());
    }

    #[test]
    fn anything_else_says_what_a_kek_file_holds() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for (name, bytes) in [
            ("short", &b"\x01\x02\x03"[..]),
            ("b64-short", &b"AAEC\n"[..]),
            ("text", &b"not a key at all, just some words\n"[..]),
        ] {
            let Err(BootError::Config(message)) = read_kek(&write(dir.path(), name, bytes)) else {
                panic!("{name} is refused");
            };
            assert!(
                message.contains("base64 of 32 bytes") && message.contains("/dev/urandom"),
                "{message}"
            );
        }
    }
}
