//! What `podiam dev` creates through the public APIs, as a user would with the AWS CLI: the
//! cluster, the node's role and the identities of the agent and the gateway, and with
//! `--scenario eks-workshop` everything the workshop page shows.

use std::path::Path;

use anyhow::Context as _;
use http::Method;
use podiam_client::{AwsClient, ClientError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The workshop page's issuer.
pub(crate) const WORKSHOP_ISSUER: &str =
    "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";
/// The workshop's DynamoDB table (the carts service's `CARTS_DYNAMODB_TABLENAME`).
pub(crate) const WORKSHOP_TABLE: &str = "eks-workshop-carts";

/// The names `podiam dev` uses for one cluster.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) cluster: String,
    pub(crate) account: String,
    pub(crate) region: String,
}

impl Names {
    pub(crate) fn node_role(&self) -> String {
        format!("{}-node", self.cluster)
    }

    pub(crate) fn node_role_arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account, self.node_role())
    }

    fn cluster_arn(&self) -> String {
        format!(
            "arn:aws:eks:{}:{}:cluster/{}",
            self.region, self.account, self.cluster
        )
    }
}

/// An access key `podiam dev` created for one of its services, kept in the data directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServiceKey {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
}

/// The keys of the node agent and the gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServiceKeys {
    pub(crate) agent: ServiceKey,
    pub(crate) gateway: ServiceKey,
}

fn already_exists(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { code, .. }
        if code == "EntityAlreadyExists" || code == "ResourceInUseException")
}

fn explain(what: &str, e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Api { code, message, .. } => anyhow::anyhow!("{what}: {code}: {message}"),
        other => anyhow::anyhow!("{what}: {other}"),
    }
}

/// An IAM call that may find its entity already there.
async fn iam(client: &AwsClient, what: &str, params: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut all = vec![("Version", "2010-05-08")];
    all.extend_from_slice(params);
    match client.query("iam", &all).await {
        Ok(_) => Ok(()),
        Err(e) if already_exists(&e) => Ok(()),
        Err(e) => Err(explain(what, e)),
    }
}

async fn eks(client: &AwsClient, what: &str, path: &str, body: &Value) -> anyhow::Result<()> {
    match client
        .rest_json("eks", Method::POST, path, Some(body))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if already_exists(&e) => Ok(()),
        Err(e) => Err(explain(what, e)),
    }
}

/// The cluster (hosted issuer at `issuer_url`, or under the server's URL) and the node's role.
pub(crate) async fn cluster(
    client: &AwsClient,
    names: &Names,
    issuer_url: Option<&str>,
) -> anyhow::Result<()> {
    eks(
        client,
        "creating the cluster",
        "/clusters",
        &json!({"name": names.cluster, "podiamIssuer": {"kind": "hosted", "url": issuer_url}}),
    )
    .await?;
    // The node role: what IMDS hands out. It may call EKS Auth, as AmazonEKSWorkerNodePolicy
    // allows, and nothing else — a pod without an identity of its own gets no data access.
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:user/{}-node-agent", names.account, names.cluster)},
        "Action": "sts:AssumeRole"}]});
    let node_policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}]});
    let agent_user = format!("{}-node-agent", names.cluster);
    create_user(client, &agent_user).await?;
    // EKS Auth takes the node from the caller's identity: the agent's user names its node.
    iam(
        client,
        "tagging the node agent's user with its node",
        &[
            ("Action", "TagUser"),
            ("UserName", &agent_user),
            ("Tags.member.1.Key", podiam_eks::NODE_NAME_TAG),
            ("Tags.member.1.Value", super::DEV_NODE_NAME),
        ],
    )
    .await?;
    iam(
        client,
        "creating the node role",
        &[
            ("Action", "CreateRole"),
            ("RoleName", &names.node_role()),
            ("AssumeRolePolicyDocument", &trust.to_string()),
        ],
    )
    .await?;
    iam(
        client,
        "giving the node role its policy",
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", &names.node_role()),
            ("PolicyName", "node"),
            ("PolicyDocument", &node_policy.to_string()),
        ],
    )
    .await
}

async fn create_user(client: &AwsClient, name: &str) -> anyhow::Result<()> {
    iam(
        client,
        "creating a user",
        &[("Action", "CreateUser"), ("UserName", name)],
    )
    .await
}

async fn access_key(client: &AwsClient, user: &str) -> anyhow::Result<ServiceKey> {
    let answer = client
        .query(
            "iam",
            &[
                ("Version", "2010-05-08"),
                ("Action", "CreateAccessKey"),
                ("UserName", user),
            ],
        )
        .await
        .map_err(|e| explain("creating an access key", e))?;
    let text = |name| podiam_client::xml::first_text(&answer.body, name);
    Ok(ServiceKey {
        access_key_id: text("AccessKeyId").context("CreateAccessKey answered no key id")?,
        secret_access_key: text("SecretAccessKey").context("CreateAccessKey answered no secret")?,
    })
}

/// The users the agent and the gateway sign as, each allowed only what it does, and their keys
/// (created once, then read from `path`).
pub(crate) async fn service_keys(
    client: &AwsClient,
    names: &Names,
    path: &Path,
) -> anyhow::Result<ServiceKeys> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; remove it to create new keys",
                path.display()
            )
        });
    }
    let agent_user = format!("{}-node-agent", names.cluster);
    let agent_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow",
         "Action": ["eks-auth:AssumeRoleForPodIdentity", "eks:DescribeCluster"],
         "Resource": names.cluster_arn()},
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": names.node_role_arn()}]});
    create_user(client, &agent_user).await?;
    iam(
        client,
        "giving the agent its policy",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", &agent_user),
            ("PolicyName", "node-agent"),
            ("PolicyDocument", &agent_policy.to_string()),
        ],
    )
    .await?;
    let gateway_user = format!("{}-gateway", names.cluster);
    let gateway_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "podiam:AuthorizeRequest", "Resource": "*"}]});
    create_user(client, &gateway_user).await?;
    iam(
        client,
        "giving the gateway its policy",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", &gateway_user),
            ("PolicyName", "gateway"),
            ("PolicyDocument", &gateway_policy.to_string()),
        ],
    )
    .await?;
    let keys = ServiceKeys {
        agent: access_key(client, &agent_user).await?,
        gateway: access_key(client, &gateway_user).await?,
    };
    crate::cli_io::write_private(path, serde_json::to_string_pretty(&keys)?.as_bytes(), true)?;
    Ok(keys)
}

/// Everything the workshop page shows, created once (a marker file records it, so that what
/// the user changes afterwards is kept across restarts).
pub(crate) async fn eks_workshop(
    client: &AwsClient,
    names: &Names,
    marker: &Path,
) -> anyhow::Result<bool> {
    if marker.exists() {
        return Ok(false);
    }
    let account = &names.account;
    let issuer_host = WORKSHOP_ISSUER.trim_start_matches("https://");
    iam(
        client,
        "creating the OIDC provider",
        &[
            ("Action", "CreateOpenIDConnectProvider"),
            ("Url", WORKSHOP_ISSUER),
            ("ClientIDList.member.1", "sts.amazonaws.com"),
        ],
    )
    .await?;
    // The trust policies exactly as the page prints them (member order included).
    let irsa_trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::{account}:oidc-provider/{issuer_host}"}},"Action":["sts:TagSession","sts:AssumeRoleWithWebIdentity"],"Condition":{{"StringEquals":{{"{issuer_host}:sub":"system:serviceaccount:carts:carts"}}}}}}]}}"#
    );
    let pia_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:TagSession","sts:AssumeRole"]}]}"#.to_owned();
    let table = format!(
        "arn:aws:dynamodb:{}:{account}:table/{WORKSHOP_TABLE}",
        names.region
    );
    let dynamo = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllAPIActionsOnCart",
            "Effect": "Allow",
            "Action": "dynamodb:*",
            "Resource": [table, format!("{table}/index/*")]
        }]
    });
    iam(
        client,
        "creating the DynamoDB policy",
        &[
            ("Action", "CreatePolicy"),
            ("PolicyName", "eks-workshop-carts-dynamo"),
            ("PolicyDocument", &dynamo.to_string()),
        ],
    )
    .await?;
    let policy_arn = format!("arn:aws:iam::{account}:policy/eks-workshop-carts-dynamo");
    for (role, trust) in [
        ("eks-workshop-carts-dynamo-irsa", &irsa_trust),
        ("eks-workshop-carts-dynamo-pia", &pia_trust),
    ] {
        iam(
            client,
            "creating a workshop role",
            &[
                ("Action", "CreateRole"),
                ("RoleName", role),
                ("AssumeRolePolicyDocument", trust),
            ],
        )
        .await?;
        iam(
            client,
            "attaching the DynamoDB policy",
            &[
                ("Action", "AttachRolePolicy"),
                ("RoleName", role),
                ("PolicyArn", &policy_arn),
            ],
        )
        .await?;
    }
    eks(
        client,
        "creating the pod identity association",
        &format!("/clusters/{}/pod-identity-associations", names.cluster),
        &json!({
            "namespace": "carts",
            "serviceAccount": "carts",
            "roleArn": format!("arn:aws:iam::{account}:role/eks-workshop-carts-dynamo-pia"),
        }),
    )
    .await?;
    std::fs::write(marker, b"created\n")
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(true)
}
