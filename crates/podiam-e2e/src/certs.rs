//! Test certificates: a throwaway CA and serving certificates it signs (ECDSA P-256), written
//! as the PEM files a webhook is given.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate authority for one test.
#[derive(Debug)]
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("a CA certificate"),
        }
    }

    /// The CA certificate (PEM), for clients to trust.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Issues a serving certificate for `names` (DNS names or IP addresses) and writes the
    /// chain and key to `cert` and `key`.
    pub fn issue(&self, names: &[&str], cert: &Path, key: &Path) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("serving parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "podiam-webhook");
        let leaf_key = KeyPair::generate().expect("a serving key");
        let leaf = params
            .signed_by(&leaf_key, &self.issuer)
            .expect("a serving certificate");
        std::fs::write(cert, leaf.pem()).expect("write the certificate");
        std::fs::write(key, leaf_key.serialize_pem()).expect("write the key");
    }
}
