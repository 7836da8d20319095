//! What `podiam exec` and `podiam explain` share: a pod of a ServiceAccount as the webhook
//! mutates it (the same `podiam_webhook::mutate`), the associations that decide its mode, and
//! its projected tokens minted from the cluster's issuer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use http::Method;
use podiam_client::{AwsClient, ChainCredentials, ClientError, Timeouts};
use podiam_types::SystemClock;
use podiam_webhook::cli::service_account_info;
use podiam_webhook::{Context, Mutation, MutationConfig, ServiceAccountInfo, mutate};
use serde_json::{Value, json};

/// The podiam server and a client of it, signing with the caller's own credentials (the
/// standard chain).
#[derive(Debug)]
pub(crate) struct Connection {
    /// The server's URL.
    pub(crate) server: String,
    /// The region.
    pub(crate) region: String,
    /// The client.
    pub(crate) client: AwsClient,
}

/// Connects to PODIAM_SERVER (or AWS_ENDPOINT_URL) as `podiam dev --env-file` sets them.
pub(crate) fn connect(region: Option<&str>) -> anyhow::Result<Connection> {
    let server = std::env::var("PODIAM_SERVER")
        .ok()
        .or_else(|| podiam_client::endpoint(None, "EKS"))
        .context("no podiam server: set PODIAM_SERVER or AWS_ENDPOINT_URL (`podiam dev --env-file` writes both)")?;
    let region = podiam_client::region(region);
    let client = AwsClient::new(
        &server,
        &region,
        Arc::new(ChainCredentials::standard(
            None,
            None,
            Arc::new(SystemClock),
        )),
        Arc::new(SystemClock),
        Timeouts::default(),
    )?;
    Ok(Connection {
        server,
        region,
        client,
    })
}

/// Who a command runs as: the cluster, and one ServiceAccount given by its manifest or by its
/// namespace and name (`podiam exec`, `podiam explain`).
#[derive(Debug, clap::Args)]
pub(crate) struct SubjectArgs {
    /// The cluster (`podiam dev --env-file` sets PODIAM_CLUSTER).
    #[arg(long, env = "PODIAM_CLUSTER")]
    pub(crate) cluster: Option<String>,
    /// The ServiceAccount manifest (YAML or JSON), annotations included.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        conflicts_with_all = ["namespace", "service_account"]
    )]
    pub(crate) file: Option<PathBuf>,
    /// The ServiceAccount's namespace, for one given by name (no annotations) instead of -f.
    #[arg(long, short = 'n')]
    pub(crate) namespace: Option<String>,
    /// The ServiceAccount's name, with --namespace.
    #[arg(long)]
    pub(crate) service_account: Option<String>,
}

impl SubjectArgs {
    /// The cluster and the ServiceAccount, or an error that says what to pass.
    pub(crate) fn resolve(&self) -> anyhow::Result<(String, ServiceAccountInfo)> {
        match (&self.file, &self.namespace, &self.service_account) {
            (Some(_), _, _) | (None, Some(_), Some(_)) => {}
            (None, Some(_), None) => bail!(
                "--namespace needs --service-account NAME with it (or give the ServiceAccount's manifest with -f FILE instead)"
            ),
            (None, None, Some(_)) => bail!(
                "--service-account needs --namespace NS with it (or give the ServiceAccount's manifest with -f FILE instead)"
            ),
            (None, None, None) => bail!(
                "say which ServiceAccount: -f SERVICEACCOUNT.yaml, or --namespace NS --service-account NAME"
            ),
        }
        let cluster = self.cluster.clone().filter(|c| !c.is_empty()).context(
            "no cluster: pass --cluster NAME, or load the settings of podiam dev first (source podiam.env, written by `podiam dev --env-file podiam.env`)",
        )?;
        let account = read_service_account(
            self.file.as_deref(),
            self.namespace.as_deref(),
            self.service_account.as_deref(),
        )?;
        Ok((cluster, account))
    }

    /// The cluster, once [`Self::resolve`] has succeeded.
    pub(crate) fn cluster(&self) -> &str {
        self.cluster.as_deref().unwrap_or_default()
    }
}

/// The ServiceAccount from its manifest (YAML or JSON), or by namespace and name alone (no
/// annotations).
fn read_service_account(
    file: Option<&Path>,
    namespace: Option<&str>,
    name: Option<&str>,
) -> anyhow::Result<ServiceAccountInfo> {
    let object: Value = match file {
        Some(path) => {
            let text = crate::cli_io::read_input(path)?;
            podiam_webhook::check_nesting(&text, podiam_webhook::MAX_NESTING)
                .map_err(|e| anyhow::anyhow!("{} is {e}", path.display()))?;
            serde_yaml_ng::from_str(&text)
                .with_context(|| format!("{} is not a YAML or JSON object", path.display()))?
        }
        None => json!({"metadata": {"name": name, "namespace": namespace}}),
    };
    if object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("ServiceAccount")
        != "ServiceAccount"
    {
        bail!("the manifest is not a ServiceAccount");
    }
    let mut info = service_account_info(&object);
    if info.namespace.is_empty() {
        "default".clone_into(&mut info.namespace);
    }
    if !podiam_webhook::is_valid_name(&info.name) || !podiam_webhook::is_valid_name(&info.namespace)
    {
        bail!(
            "{:?}/{:?} is not a valid namespace and ServiceAccount name",
            info.namespace,
            info.name
        );
    }
    Ok(info)
}

/// An API error as one line: `Code: message`.
pub(crate) fn api_error(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Api { code, message, .. } => anyhow::anyhow!("{code}: {message}"),
        other => anyhow::anyhow!("{other}"),
    }
}

/// The ids of the pod identity associations of the ServiceAccount (its first page).
pub(crate) async fn association_ids(
    client: &AwsClient,
    cluster: &str,
    account: &ServiceAccountInfo,
) -> anyhow::Result<Vec<String>> {
    let path = format!(
        "/clusters/{}/pod-identity-associations?namespace={}&serviceAccount={}",
        podiam_sigv4::encode_component(cluster.as_bytes(), false),
        podiam_sigv4::encode_component(account.namespace.as_bytes(), false),
        podiam_sigv4::encode_component(account.name.as_bytes(), false),
    );
    let answer = client
        .rest_json("eks", Method::GET, &path, None)
        .await
        .map_err(api_error)
        .with_context(|| {
            format!("cannot list the pod identity associations of cluster {cluster}")
        })?;
    Ok(answer
        .body
        .get("associations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| {
            a.get("associationId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .collect())
}

/// The webhook's configuration for a local pod: the region, regional STS, and podiam's STS.
pub(crate) fn mutation_config(region: &str, server: &str) -> MutationConfig {
    MutationConfig {
        aws_default_region: region.to_owned(),
        sts_regional_endpoint: true,
        sts_endpoint_url: server.to_owned(),
        ..MutationConfig::default()
    }
}

/// A one-container pod of the ServiceAccount on `node_name`, before the webhook.
pub(crate) fn pod_of(account: &ServiceAccountInfo, pod_name: &str, node_name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": account.namespace},
        "spec": {
            "serviceAccountName": account.name,
            "nodeName": node_name,
            "containers": [{"name": "main", "image": "podiam-exec"}],
        },
    })
}

/// The webhook's mutation of `pod` (`None`: the pod gets nothing, neither annotation nor
/// association).
pub(crate) fn mutate_pod(
    pod: &Value,
    account: &ServiceAccountInfo,
    has_association: bool,
    config: &MutationConfig,
) -> Option<Mutation> {
    mutate(
        pod,
        &Context {
            service_account: Some(account),
            has_association,
            config,
            jittered_expiration: config.token_expiration,
        },
    )
}

/// A projected token: the file and how to mint it.
#[derive(Debug, Clone)]
pub(crate) struct ProjectedToken {
    pub(crate) file: PathBuf,
    pub(crate) audience: String,
    pub(crate) lifetime: u64,
}

/// The projected service-account tokens of the mutated pod's first container, as
/// (path in the pod, token at its place under `dir`, the pod's mount path re-rooted).
pub(crate) fn projected_tokens(pod: &Value, dir: &Path) -> Vec<(String, ProjectedToken)> {
    let mounts: BTreeMap<&str, &str> = pod
        .pointer("/spec/containers/0/volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| Some((m.get("name")?.as_str()?, m.get("mountPath")?.as_str()?)))
        .collect();
    let mut tokens = Vec::new();
    for volume in pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(mount) = volume
            .get("name")
            .and_then(Value::as_str)
            .and_then(|n| mounts.get(n))
        else {
            continue;
        };
        for source in volume
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(token) = source.get("serviceAccountToken") else {
                continue;
            };
            let path = token.get("path").and_then(Value::as_str).unwrap_or("token");
            let in_pod = format!("{}/{path}", mount.trim_end_matches('/'));
            tokens.push((
                in_pod.clone(),
                ProjectedToken {
                    file: dir.join(in_pod.trim_start_matches('/')),
                    audience: token
                        .get("audience")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    lifetime: token
                        .get("expirationSeconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(3600),
                },
            ));
        }
    }
    tokens
}

/// The first container's environment variables with literal values, in order.
pub(crate) fn container_env(pod: &Value) -> Vec<(String, String)> {
    pod.pointer("/spec/containers/0/env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|var| {
            Some((
                var.get("name")?.as_str()?.to_owned(),
                var.get("value")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Who a token is minted for: the ServiceAccount, bound to a pod on a node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenSubject<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) account: &'a ServiceAccountInfo,
    pub(crate) pod_name: &'a str,
    pub(crate) node_name: &'a str,
}

/// Mints `token` from the cluster's issuer, as the kubelet would project it.
pub(crate) async fn mint_token(
    client: &AwsClient,
    subject: TokenSubject<'_>,
    token: &ProjectedToken,
) -> anyhow::Result<String> {
    let cluster = subject.cluster;
    let body = json!({
        "namespace": subject.account.namespace,
        "serviceAccount": subject.account.name,
        "audiences": [token.audience],
        "podName": subject.pod_name,
        "nodeName": subject.node_name,
        "ttl": token.lifetime.clamp(600, 172_800),
    });
    let path = format!(
        "/clusters/{}/podiam/service-account-token",
        podiam_sigv4::encode_component(cluster.as_bytes(), true)
    );
    let answer = client
        .rest_json("eks", Method::POST, &path, Some(&body))
        .await
        .map_err(api_error)
        .with_context(|| format!("cannot mint a token from cluster {cluster}'s issuer"))?;
    answer
        .body
        .get("token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("the server's answer has no token")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(annotations: &[(&str, &str)]) -> ServiceAccountInfo {
        ServiceAccountInfo {
            name: "catalog".into(),
            namespace: "catalog".into(),
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn irsa_pod_has_its_token_and_role() {
        let sa = account(&[(
            "eks.amazonaws.com/role-arn",
            "arn:aws:iam::111122223333:role/r",
        )]);
        let pod = pod_of(&sa, "catalog-x", "node-1");
        let config = mutation_config("eu-central-1", "http://127.0.0.1:4599");
        let mutation = mutate_pod(&pod, &sa, false, &config).unwrap();
        let env = container_env(&mutation.pod);
        assert!(env.contains(&(
            "AWS_ROLE_ARN".into(),
            "arn:aws:iam::111122223333:role/r".into()
        )));
        assert!(env.contains(&(
            "AWS_ENDPOINT_URL_STS".into(),
            "http://127.0.0.1:4599".into()
        )));
        let tokens = projected_tokens(&mutation.pod, Path::new("/tmp/x"));
        assert_eq!(tokens.len(), 1);
        let (in_pod, token) = &tokens[0];
        assert_eq!(
            in_pod,
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
        );
        assert_eq!(token.audience, "sts.amazonaws.com");
        assert_eq!(
            token.file,
            Path::new("/tmp/x/var/run/secrets/eks.amazonaws.com/serviceaccount/token")
        );
    }

    #[test]
    fn no_annotation_no_association_is_no_mutation() {
        let sa = account(&[]);
        let pod = pod_of(&sa, "p", "n");
        let config = mutation_config("us-east-1", "http://s");
        assert!(mutate_pod(&pod, &sa, false, &config).is_none());
        assert!(mutate_pod(&pod, &sa, true, &config).is_some());
    }
}
