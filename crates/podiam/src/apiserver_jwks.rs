//! An external issuer's keys read from its kube-apiserver, for `publish-issuer --apiserver`.
//!
//! kube-apiserver serves its discovery document at `/.well-known/openid-configuration` and its
//! keys at `/openid/v1/jwks` on its own address, whatever its `--service-account-issuer` is (an
//! S3 bucket's URL here, which holds nothing until it is published). The keys are read from
//! there, after checking that the apiserver's issuer is the cluster's.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::cli_io::read_input;

/// The largest document read from the apiserver.
const MAX_DOCUMENT: usize = 1024 * 1024;

/// Where kube-apiserver serves its OIDC documents.
const DISCOVERY: &str = "/.well-known/openid-configuration";
const JWKS: &str = "/openid/v1/jwks";

/// How to reach the apiserver.
#[derive(Debug)]
pub(crate) struct Apiserver<'a> {
    /// Its base URL (`https://HOST:6443`).
    pub url: &'a str,
    /// A PEM bundle of CAs to trust besides the system's (the cluster's CA).
    pub ca_file: Option<&'a Path>,
    /// A file holding a bearer token (a service account's, or `kubectl create token`'s).
    pub token_file: Option<&'a Path>,
}

impl Apiserver<'_> {
    /// The JWKS of the apiserver whose issuer is `issuer`, refused when it names another.
    pub(crate) async fn jwks(&self, issuer: &str) -> anyhow::Result<Value> {
        let base = self.base()?;
        let client = self.client()?;
        let token = match self.token_file {
            Some(path) => Some(read_input(path)?.trim().to_owned()),
            None => None,
        };
        let hint = if self.ca_file.is_none() {
            " (if its certificate is not trusted, pass the cluster's CA with --apiserver-ca)"
        } else {
            ""
        };
        let discovery = get(
            &client,
            &format!("{base}{DISCOVERY}"),
            token.as_deref(),
            hint,
        )
        .await?;
        let named = discovery
            .get("issuer")
            .and_then(Value::as_str)
            .with_context(|| format!("{base}{DISCOVERY} names no issuer"))?;
        if named.trim_end_matches('/') != issuer.trim_end_matches('/') {
            bail!(
                "the apiserver at {base} issues tokens as {named:?} (its --service-account-issuer), not as the cluster's issuer {issuer:?}, so AWS would refuse them: the two must be the same URL"
            );
        }
        get(&client, &format!("{base}{JWKS}"), token.as_deref(), hint).await
    }

    fn base(&self) -> anyhow::Result<String> {
        let url = reqwest::Url::parse(self.url)
            .with_context(|| format!("--apiserver {:?} is not a URL", self.url))?;
        if url.scheme() != "https" || url.host_str().is_none() {
            bail!(
                "--apiserver {:?} must be the apiserver's https:// URL",
                self.url
            );
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            bail!(
                "--apiserver {:?} must be a plain https://HOST[:PORT] URL (no user, query or fragment); give a token with --apiserver-token-file",
                self.url
            );
        }
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }

    fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("podiam/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = self.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read --apiserver-ca {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!("--apiserver-ca {} holds no PEM certificate", path.display())
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        builder.build().context("cannot build the HTTPS client")
    }
}

/// A JSON document, at most [`MAX_DOCUMENT`] bytes.
/// `hint` follows the error when the apiserver cannot be reached.
async fn get(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    hint: &str,
) -> anyhow::Result<Value> {
    let mut request = client.get(url).header("accept", "application/json");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}{hint}"))?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        bail!(
            "{url} answered HTTP {status}: give a token that may read it with --apiserver-token-file (`kubectl create token`; the role system:service-account-issuer-discovery allows it)"
        );
    }
    if !status.is_success() {
        bail!("{url} answered HTTP {status}");
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .with_context(|| format!("cannot read {url}"))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            bail!("{url} is larger than {MAX_DOCUMENT} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).with_context(|| format!("{url} did not answer JSON"))
}
