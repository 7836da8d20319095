//! The trust policy of an AWS role that podiam hands to pods, as EKS Pod Identity does: it
//! trusts podiam's own principal with `sts:AssumeRole` and `sts:TagSession`, and only with the
//! session tags of one workload (`aws:RequestTag/eks-cluster-name`, `…/kubernetes-namespace`,
//! `…/kubernetes-service-account`), so one broker cannot hand the role to another workload.

use podiam_types::Arn;
use serde_json::{Value, json};

use crate::AwsError;

/// The principal a trust policy names for podiam's own identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The ARN to name.
    pub arn: String,
    /// What the ARN may get wrong, for the person who applies the policy.
    pub caveat: Option<String>,
}

/// The principal to trust for the caller `caller_arn` (from `GetCallerIdentity`): a user or
/// the account root as they are; for an assumed role's session, its role. A session's ARN
/// does not carry the role's path, so that case says so.
pub fn principal_of(caller_arn: &str) -> Result<Principal, AwsError> {
    let arn: Arn = caller_arn
        .parse()
        .map_err(|_| AwsError::NotAnArn(caller_arn.to_owned()))?;
    let resource = arn.resource();
    match arn.service() {
        "iam" if resource == "root" || resource.starts_with("user/") => Ok(Principal {
            arn: arn.as_str().to_owned(),
            caveat: None,
        }),
        "iam" if resource.starts_with("role/") => Ok(Principal {
            arn: arn.as_str().to_owned(),
            caveat: None,
        }),
        "sts" => {
            let role = resource
                .strip_prefix("assumed-role/")
                .and_then(|rest| rest.split_once('/'))
                .map(|(role, _session)| role)
                .filter(|role| !role.is_empty())
                .ok_or_else(|| AwsError::UnsupportedPrincipal(caller_arn.to_owned()))?;
            Ok(Principal {
                arn: format!("arn:{}:iam::{}:role/{role}", arn.partition(), arn.account()),
                caveat: Some(format!(
                    "podiam runs as a session of role {role}; a session's ARN does not show the role's path, so if {role} has one (aws iam get-role --role-name {role}), put it in the principal"
                )),
            })
        }
        _ => Err(AwsError::UnsupportedPrincipal(caller_arn.to_owned())),
    }
}

/// The trust policy for `principal` to assume a role for the service account
/// `namespace/service_account` of `cluster`, with EKS Pod Identity's session tags.
pub fn pod_identity_trust_policy(
    principal: &str,
    cluster: &str,
    namespace: &str,
    service_account: &str,
) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PodiamPodIdentity",
            "Effect": "Allow",
            "Principal": { "AWS": principal },
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {
                "StringEquals": {
                    "aws:RequestTag/eks-cluster-name": cluster,
                    "aws:RequestTag/kubernetes-namespace": namespace,
                    "aws:RequestTag/kubernetes-service-account": service_account,
                }
            }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_roots_and_roles_are_named_as_they_are() {
        for arn in [
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::123456789012:user/ops/podiam",
            "arn:aws-cn:iam::123456789012:role/podiam",
        ] {
            let principal = principal_of(arn).unwrap();
            assert_eq!(principal.arn, arn);
            assert_eq!(principal.caveat, None);
        }
    }

    #[test]
    fn an_assumed_roles_session_is_its_role_with_a_caveat_about_paths() {
        let principal =
            principal_of("arn:aws-us-gov:sts::123456789012:assumed-role/podiam-broker/i-0abc")
                .unwrap();
        assert_eq!(
            principal.arn,
            "arn:aws-us-gov:iam::123456789012:role/podiam-broker"
        );
        assert!(principal.caveat.unwrap().contains("path"));
    }

    #[test]
    fn other_callers_are_refused_by_name() {
        for arn in [
            "arn:aws:sts::123456789012:federated-user/bob",
            "arn:aws:sts::123456789012:assumed-role/",
            "arn:aws:sts::123456789012:assumed-role/no-session",
            "arn:aws:s3:::bucket",
        ] {
            assert!(
                matches!(principal_of(arn), Err(AwsError::UnsupportedPrincipal(a)) if a == arn),
                "{arn}"
            );
        }
        assert!(matches!(
            principal_of("not an arn"),
            Err(AwsError::NotAnArn(_))
        ));
    }

    #[test]
    fn the_policy_trusts_one_principal_for_one_workload() {
        let policy = pod_identity_trust_policy(
            "arn:aws:iam::123456789012:user/podiam",
            "prod",
            "carts",
            "carts\"sa",
        );
        let statement = &policy["Statement"][0];
        assert_eq!(
            statement["Principal"]["AWS"],
            "arn:aws:iam::123456789012:user/podiam"
        );
        assert_eq!(
            statement["Action"],
            json!(["sts:AssumeRole", "sts:TagSession"])
        );
        let tags = &statement["Condition"]["StringEquals"];
        assert_eq!(tags["aws:RequestTag/eks-cluster-name"], "prod");
        assert_eq!(tags["aws:RequestTag/kubernetes-namespace"], "carts");
        assert_eq!(
            tags["aws:RequestTag/kubernetes-service-account"],
            "carts\"sa"
        );
        assert_eq!(statement.as_object().unwrap().len(), 5);
    }
}
