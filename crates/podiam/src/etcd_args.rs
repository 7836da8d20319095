//! The etcd connection flags shared by `podiam server` and `podiam store copy`.

use std::path::PathBuf;

use clap::Args;
use podiam_server::StoreConfig;

/// How to reach etcd (with an `etcd://` store).
#[derive(Debug, Args)]
pub(crate) struct EtcdArgs {
    /// The prefix of podiam's keys in etcd.
    #[arg(long, value_name = "PREFIX", default_value = "/podiam/")]
    etcd_namespace: String,
    /// The CA that signs the etcd members' certificates (TLS to etcd).
    #[arg(long, value_name = "FILE")]
    etcd_ca_file: Option<PathBuf>,
    /// A client certificate for etcd's --client-cert-auth (with --etcd-key-file).
    #[arg(long, value_name = "FILE", requires = "etcd_key_file")]
    etcd_cert_file: Option<PathBuf>,
    /// The key of --etcd-cert-file.
    #[arg(long, value_name = "FILE", requires = "etcd_cert_file")]
    etcd_key_file: Option<PathBuf>,
    /// An etcd user (with --etcd-password-file).
    #[arg(long, requires = "etcd_password_file")]
    etcd_user: Option<String>,
    /// The file holding the etcd user's password.
    #[arg(long, value_name = "FILE", requires = "etcd_user")]
    etcd_password_file: Option<PathBuf>,
}

impl EtcdArgs {
    /// The store `url` names, with these options for etcd.
    pub(crate) fn store(&self, url: Option<&str>) -> anyhow::Result<StoreConfig> {
        let mut store = StoreConfig::parse(url)?;
        match &mut store {
            StoreConfig::Etcd(etcd) => {
                etcd.namespace.clone_from(&self.etcd_namespace);
                etcd.ca_file.clone_from(&self.etcd_ca_file);
                etcd.cert_file.clone_from(&self.etcd_cert_file);
                etcd.key_file.clone_from(&self.etcd_key_file);
                etcd.user.clone_from(&self.etcd_user);
                etcd.password_file.clone_from(&self.etcd_password_file);
            }
            _ => {
                if self.etcd_ca_file.is_some()
                    || self.etcd_cert_file.is_some()
                    || self.etcd_user.is_some()
                {
                    anyhow::bail!("the --etcd-* options need an etcd:// store");
                }
            }
        }
        Ok(store)
    }
}
