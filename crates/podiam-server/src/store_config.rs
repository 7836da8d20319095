//! Where the server keeps its state: the embedded redb file in the data directory (one
//! server), or an etcd cluster shared by any number of replicas.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use podiam_crypto::Keyring;
use podiam_store::{AuthenticatedStore, RedbStore, Store};

/// The record every store of an account has (see bootstrap).
const ACCOUNT_KEY: &str = "meta/account";

/// What the key-encryption key derives the record MAC key for.
const RECORD_MAC_LABEL: &[u8] = b"podiam store record authentication v1";

use crate::BootError;

/// The store the server opens.
#[derive(Debug, Clone, Default)]
pub enum StoreConfig {
    /// `<data-dir>/podiam.redb`: one process, no network.
    #[default]
    Embedded,
    /// An etcd v3 cluster (`--store etcd://host:2379,host:2379`).
    Etcd(EtcdConfig),
}

/// How to reach etcd.
#[derive(Debug, Clone, Default)]
pub struct EtcdConfig {
    /// `host:port` of each member.
    pub endpoints: Vec<String>,
    /// The prefix of every key (`/podiam/` when empty).
    pub namespace: String,
    /// The CA of the members' certificates; enables TLS.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key, for `--client-cert-auth`.
    pub cert_file: Option<PathBuf>,
    /// The key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// An etcd user (with `password_file`).
    pub user: Option<String>,
    /// The file holding the user's password.
    pub password_file: Option<PathBuf>,
}

impl StoreConfig {
    /// Parses `--store`: `etcd://host:port[,host:port…]`; `None` is the embedded store.
    pub fn parse(url: Option<&str>) -> Result<Self, BootError> {
        let Some(url) = url else {
            return Ok(Self::Embedded);
        };
        let Some(list) = url.strip_prefix("etcd://") else {
            return Err(BootError::Config(format!(
                "--store {url:?}: expected etcd://host:2379[,host:2379…] (or no --store for the embedded store)"
            )));
        };
        let endpoints: Vec<String> = list
            .trim_end_matches('/')
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        if endpoints.is_empty() {
            return Err(BootError::Config(format!(
                "--store {url:?} names no etcd member"
            )));
        }
        for endpoint in &endpoints {
            let (host, port) = endpoint.rsplit_once(':').ok_or_else(|| {
                BootError::Config(format!("--store: {endpoint:?} is not host:port"))
            })?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(BootError::Config(format!(
                    "--store: {endpoint:?} is not host:port"
                )));
            }
        }
        Ok(Self::Etcd(EtcdConfig {
            endpoints,
            ..EtcdConfig::default()
        }))
    }

    /// Opens the store.
    pub async fn open(&self, data_dir: &Path, kek: &Keyring) -> Result<Arc<dyn Store>, BootError> {
        match self {
            Self::Embedded => {
                let path = data_dir.join("podiam.redb");
                let store = RedbStore::open(&path).map_err(|e| {
                    BootError::Io(format!(
                        "cannot open the store {}: {e} (is another podiam server using this --data-dir?)",
                        path.display()
                    ))
                })?;
                Ok(Arc::new(store))
            }
            // Anyone who can write to a shared store could otherwise rewrite records (make an
            // access key the root's, say): every record is bound to its key under the KEK.
            Self::Etcd(etcd) => {
                let raw = open_etcd(etcd).await?;
                let store =
                    AuthenticatedStore::new(Arc::clone(&raw), kek.derive_mac_key(RECORD_MAC_LABEL));
                // A replica with another key-encryption key would see every record as
                // tampered with: say so at start.
                if raw.get(ACCOUNT_KEY).await?.is_some() && store.get(ACCOUNT_KEY).await?.is_none()
                {
                    return Err(BootError::Config(
                        "the records in this etcd namespace do not open with this key-encryption key: every replica needs the same --kek-file (or the namespace's records were changed by someone without it)".to_owned(),
                    ));
                }
                Ok(Arc::new(store))
            }
        }
    }
}

async fn open_etcd(config: &EtcdConfig) -> Result<Arc<dyn Store>, BootError> {
    let read = |path: &PathBuf| {
        std::fs::read(path)
            .map_err(|e| BootError::Io(format!("cannot read {}: {e}", path.display())))
    };
    let client_cert_pem = match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
        (None, None) => None,
        _ => {
            return Err(BootError::Config(
                "--etcd-cert-file and --etcd-key-file go together".to_owned(),
            ));
        }
    };
    let user = match (&config.user, &config.password_file) {
        (Some(user), Some(file)) => {
            let password = String::from_utf8(read(file)?)
                .map_err(|_| BootError::Config(format!("{} is not text", file.display())))?;
            Some((
                user.clone(),
                password.trim_end_matches(['\r', '\n']).to_owned(),
            ))
        }
        (None, None) => None,
        _ => {
            return Err(BootError::Config(
                "--etcd-user and --etcd-password-file go together".to_owned(),
            ));
        }
    };
    let tls = config.ca_file.is_some();
    let endpoints: Vec<String> = config
        .endpoints
        .iter()
        .map(|e| format!("{}://{e}", if tls { "https" } else { "http" }))
        .collect();
    let options = podiam_store::EtcdOptions {
        namespace: config.namespace.clone(),
        ca_pem: config.ca_file.as_ref().map(read).transpose()?,
        client_cert_pem,
        user,
        ..podiam_store::EtcdOptions::default()
    };
    let store = podiam_store::EtcdStore::connect(&endpoints, options)
        .await
        .map_err(|e| {
            BootError::Config(format!(
                "cannot reach etcd at {}: {e}",
                config.endpoints.join(",")
            ))
        })?;
    // Fail at start, not at the first request, when no member answers (any majority does:
    // the store fails over between members within its deadline).
    store.revision().await.map_err(|e| {
        BootError::Config(format!(
            "etcd at {} does not answer: {e}",
            config.endpoints.join(",")
        ))
    })?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert!(matches!(
            StoreConfig::parse(None),
            Ok(StoreConfig::Embedded)
        ));
        let Ok(StoreConfig::Etcd(etcd)) =
            StoreConfig::parse(Some("etcd://10.0.0.1:2379,etcd-1.internal:2379/"))
        else {
            panic!("an etcd store")
        };
        assert_eq!(etcd.endpoints, ["10.0.0.1:2379", "etcd-1.internal:2379"]);
        for bad in [
            "redis://x:1",
            "etcd://",
            "etcd://host",
            "etcd://:2379",
            "etcd://h:99999",
        ] {
            assert!(StoreConfig::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
