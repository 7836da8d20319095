//! What explain reads from the server: the cluster and its keys, the association, the OIDC
//! provider, and roles with their trust, inline, attached and boundary policies and tags.

use anyhow::Context as _;
use http::Method;
use podiam_client::xml::first_text;
use podiam_client::{AwsClient, ClientError};
use podiam_crypto::JwkSet;
use podiam_oidc::KeySet;
use podiam_policy::Policy;
use serde_json::Value;

use super::evaluate::{NamedPolicy, Role};
use crate::pod::api_error;

/// The cluster.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    pub(crate) name: String,
    pub(crate) arn: String,
    pub(crate) issuer: String,
}

/// A pod identity association.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Association {
    pub(crate) id: String,
    pub(crate) role_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) external_id: Option<String>,
    pub(crate) disable_session_tags: bool,
}

fn label(name: &str) -> String {
    podiam_sigv4::encode_component(name.as_bytes(), true)
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `DescribeCluster`: its ARN and issuer.
pub(crate) async fn cluster(client: &AwsClient, name: &str) -> anyhow::Result<Cluster> {
    let answer = client
        .rest_json(
            "eks",
            Method::GET,
            &format!("/clusters/{}", label(name)),
            None,
        )
        .await
        .map_err(api_error)
        .with_context(|| format!("cannot describe cluster {name}"))?;
    let body = &answer.body;
    Ok(Cluster {
        name: name.to_owned(),
        arn: text(body, "/cluster/arn").context("DescribeCluster answered no arn")?,
        issuer: text(body, "/cluster/identity/oidc/issuer")
            .context("DescribeCluster answered no identity.oidc.issuer")?,
    })
}

/// The keys that verify the cluster's tokens (`GET /clusters/{c}/podiam/jwks`).
pub(crate) async fn cluster_keys(client: &AwsClient, name: &str) -> anyhow::Result<KeySet> {
    let answer = client
        .rest_json(
            "eks",
            Method::GET,
            &format!("/clusters/{}/podiam/jwks", label(name)),
            None,
        )
        .await
        .map_err(api_error)
        .with_context(|| format!("cannot read the keys of cluster {name}'s issuer"))?;
    let jwks = answer
        .body
        .get("jwks")
        .context("the cluster's keys answer has no jwks")?;
    let jwks = JwkSet::parse(&jwks.to_string()).context("the cluster's JWKS is not usable")?;
    Ok(KeySet::from_jwks(&jwks).0)
}

/// `DescribePodIdentityAssociation`.
pub(crate) async fn association(
    client: &AwsClient,
    cluster: &str,
    id: &str,
) -> anyhow::Result<Association> {
    let path = format!(
        "/clusters/{}/pod-identity-associations/{}",
        label(cluster),
        label(id)
    );
    let answer = client
        .rest_json("eks", Method::GET, &path, None)
        .await
        .map_err(api_error)
        .with_context(|| format!("cannot describe pod identity association {id}"))?;
    let a = answer
        .body
        .get("association")
        .context("DescribePodIdentityAssociation answered no association")?;
    Ok(Association {
        id: id.to_owned(),
        role_arn: text(a, "/roleArn").context("the association has no roleArn")?,
        target_role_arn: text(a, "/targetRoleArn"),
        policy: text(a, "/policy"),
        external_id: text(a, "/externalId"),
        disable_session_tags: a
            .get("disableSessionTags")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

fn no_such_entity(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { code, .. } if code == "NoSuchEntity")
}

async fn iam(client: &AwsClient, params: &[(&str, &str)]) -> Result<String, ClientError> {
    let mut all = vec![("Version", "2010-05-08")];
    all.extend_from_slice(params);
    Ok(client.query("iam", &all).await?.body)
}

/// The text of every element `name` in `xml`, in order.
pub(crate) fn all_texts(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        let tail = rest.get(at..).unwrap_or_default();
        let Some(text) = first_text(tail, name) else {
            break;
        };
        found.push(text);
        match tail.find(&close) {
            Some(end) => rest = tail.get(end + close.len()..).unwrap_or_default(),
            None => break,
        }
    }
    found
}

/// A policy document as IAM returns it (URL-encoded JSON).
fn document(encoded: &str, what: &str) -> anyhow::Result<Policy> {
    let text = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .with_context(|| format!("{what} is not UTF-8 once decoded"))?;
    crate::policy_cmd::parse_policy(what, &text)
}

/// Every page of a paged IAM list: the texts of `element`.
async fn list_all(
    client: &AwsClient,
    params: &[(&str, &str)],
    element: &str,
) -> Result<Vec<String>, ClientError> {
    let mut items = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut all = params.to_vec();
        if let Some(m) = &marker {
            all.push(("Marker", m));
        }
        let xml = iam(client, &all).await?;
        items.extend(all_texts(&xml, element));
        marker = (first_text(&xml, "IsTruncated").as_deref() == Some("true"))
            .then(|| first_text(&xml, "Marker"))
            .flatten();
        if marker.is_none() {
            return Ok(items);
        }
    }
}

/// A managed policy's default version, `None` if the policy no longer exists (IAM then
/// ignores the attachment).
async fn managed_policy(client: &AwsClient, arn: &str) -> anyhow::Result<Option<Policy>> {
    let policy = match iam(client, &[("Action", "GetPolicy"), ("PolicyArn", arn)]).await {
        Ok(xml) => xml,
        Err(e) if no_such_entity(&e) => return Ok(None),
        Err(e) => return Err(api_error(e).context(format!("cannot read policy {arn}"))),
    };
    let version = first_text(&policy, "DefaultVersionId")
        .context("GetPolicy answered no DefaultVersionId")?;
    let xml = iam(
        client,
        &[
            ("Action", "GetPolicyVersion"),
            ("PolicyArn", arn),
            ("VersionId", &version),
        ],
    )
    .await
    .map_err(api_error)
    .with_context(|| format!("cannot read version {version} of policy {arn}"))?;
    let encoded = first_text(&xml, "Document").context("GetPolicyVersion answered no Document")?;
    document(&encoded, &format!("policy {arn} ({version})")).map(Some)
}

/// A role in an upstream account, as podiam's AWS identity read it from AWS.
#[derive(Debug, Clone)]
pub(crate) struct AwsRole {
    pub(crate) role: Role,
    /// podiam's AWS principal (what the role's trust policy must name).
    pub(crate) principal: Option<String>,
}

/// The role from AWS through the server (`GET /podiam/upstream/role`), when it is in one of
/// the server's upstream accounts; `None` when it is not.
pub(crate) async fn aws_role(client: &AwsClient, arn: &str) -> anyhow::Result<Option<AwsRole>> {
    let path = format!(
        "/podiam/upstream/role?roleArn={}",
        podiam_sigv4::encode_component(arn.as_bytes(), true)
    );
    let answer = match client.rest_json("podiam", Method::GET, &path, None).await {
        Ok(answer) => answer,
        Err(ClientError::Api { code, .. }) if code == "ResourceNotFoundException" => {
            return Ok(None);
        }
        Err(e) => {
            return Err(api_error(e).context(format!(
                "{arn} is a role in AWS, whose trust and permissions AWS decides, and podiam could not read them"
            )));
        }
    };
    let body = &answer.body;
    let named = |value: &Value| -> anyhow::Result<NamedPolicy> {
        let name = text(value, "/name").unwrap_or_default();
        let document = text(value, "/document").unwrap_or_default();
        Ok(NamedPolicy {
            policy: crate::policy_cmd::parse_policy(&name, &document)?,
            name,
        })
    };
    let identity = body
        .pointer("/role/policies")
        .and_then(Value::as_array)
        .map(|all| all.iter().map(named).collect::<anyhow::Result<Vec<_>>>())
        .transpose()?
        .unwrap_or_default();
    let boundary = body
        .pointer("/role/boundary")
        .filter(|b| !b.is_null())
        .map(named)
        .transpose()?;
    let tags = body
        .pointer("/role/tags")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter_map(|t| Some((text(t, "/key")?, text(t, "/value")?)))
                .collect()
        })
        .unwrap_or_default();
    let trust = text(body, "/role/trust")
        .and_then(|t| crate::policy_cmd::parse_policy("the trust policy", &t).ok());
    Ok(Some(AwsRole {
        role: Role {
            arn: text(body, "/role/arn").unwrap_or_else(|| arn.to_owned()),
            id: text(body, "/role/id").unwrap_or_default(),
            trust,
            identity,
            boundary,
            tags,
        },
        principal: text(body, "/principal"),
    }))
}

/// The role with everything that decides what its sessions may do; `None` if it does not
/// exist.
pub(crate) async fn role(client: &AwsClient, arn: &str) -> anyhow::Result<Option<Role>> {
    let name = arn
        .rsplit_once(":role/")
        .map(|(_, path)| path.rsplit('/').next().unwrap_or(path))
        .with_context(|| format!("{arn} is not a role ARN"))?;
    let xml = match iam(client, &[("Action", "GetRole"), ("RoleName", name)]).await {
        Ok(xml) => xml,
        Err(e) if no_such_entity(&e) => return Ok(None),
        Err(e) => return Err(api_error(e).context(format!("cannot read role {arn}"))),
    };
    let trust = first_text(&xml, "AssumeRolePolicyDocument")
        .and_then(|encoded| document(&encoded, &format!("the trust policy of {arn}")).ok());
    let keys = all_texts(&xml, "Key");
    let values = all_texts(&xml, "Value");
    let tags = keys.into_iter().zip(values).collect();
    let boundary = match first_text(&xml, "PermissionsBoundaryArn") {
        None => None,
        Some(boundary) => Some(NamedPolicy {
            // A boundary that no longer exists allows nothing, as IAM decides.
            policy: managed_policy(client, &boundary)
                .await?
                .unwrap_or_else(Policy::allow_nothing),
            name: boundary,
        }),
    };
    let mut identity = Vec::new();
    let inline = list_all(
        client,
        &[("Action", "ListRolePolicies"), ("RoleName", name)],
        "member",
    )
    .await
    .map_err(api_error)
    .with_context(|| format!("cannot list the inline policies of {arn}"))?;
    for policy_name in inline {
        let xml = iam(
            client,
            &[
                ("Action", "GetRolePolicy"),
                ("RoleName", name),
                ("PolicyName", &policy_name),
            ],
        )
        .await
        .map_err(api_error)
        .with_context(|| format!("cannot read inline policy {policy_name} of {arn}"))?;
        let encoded =
            first_text(&xml, "PolicyDocument").context("GetRolePolicy answered no document")?;
        let what = format!("inline policy {policy_name:?}");
        identity.push(NamedPolicy {
            policy: document(&encoded, &what)?,
            name: what,
        });
    }
    let attached = list_all(
        client,
        &[("Action", "ListAttachedRolePolicies"), ("RoleName", name)],
        "PolicyArn",
    )
    .await
    .map_err(api_error)
    .with_context(|| format!("cannot list the attached policies of {arn}"))?;
    for policy_arn in attached {
        if let Some(policy) = managed_policy(client, &policy_arn).await? {
            identity.push(NamedPolicy {
                name: policy_arn,
                policy,
            });
        }
    }
    Ok(Some(Role {
        arn: first_text(&xml, "Arn").unwrap_or_else(|| arn.to_owned()),
        id: first_text(&xml, "RoleId").unwrap_or_default(),
        trust,
        identity,
        boundary,
        tags,
    }))
}

/// The client ids of the IAM OIDC provider `arn`; `None` if it does not exist.
pub(crate) async fn oidc_provider(
    client: &AwsClient,
    arn: &str,
) -> anyhow::Result<Option<Vec<String>>> {
    match iam(
        client,
        &[
            ("Action", "GetOpenIDConnectProvider"),
            ("OpenIDConnectProviderArn", arn),
        ],
    )
    .await
    {
        Ok(xml) => {
            let start = xml.find("<ClientIDList>").unwrap_or(0);
            let end = xml.find("</ClientIDList>").unwrap_or(xml.len());
            Ok(Some(all_texts(
                xml.get(start..end).unwrap_or_default(),
                "member",
            )))
        }
        Err(e) if no_such_entity(&e) => Ok(None),
        Err(e) => Err(api_error(e).context(format!("cannot read OIDC provider {arn}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_texts_reads_every_member() {
        let xml = "<R><PolicyNames><member>a</member><member>b &amp; c</member><member></member></PolicyNames><IsTruncated>false</IsTruncated></R>";
        assert_eq!(all_texts(xml, "member"), ["a", "b & c", ""]);
        assert!(all_texts("<R><PolicyNames></PolicyNames></R>", "member").is_empty());
        let tags = "<Tags><member><Key>team</Key><Value>carts</Value></member><member><Key>env</Key><Value>dev</Value></member></Tags>";
        assert_eq!(all_texts(tags, "Key"), ["team", "env"]);
        assert_eq!(all_texts(tags, "Value"), ["carts", "dev"]);
    }

    #[test]
    fn documents_are_url_decoded() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3A%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        let policy = document(encoded, "p").unwrap();
        assert_eq!(policy.statements().len(), 1);
        assert!(document("%7Bnot json", "p").is_err());
    }
}
