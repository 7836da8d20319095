//! Which provider of the AWS SDK's default credential chain answers in a pod with this
//! environment, and why each provider before it did not.

use std::collections::BTreeMap;

use serde::Serialize;

/// A credential provider of the default chain, in the chain's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Provider {
    /// Static keys in `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// IRSA: `AssumeRoleWithWebIdentity` with the token in `AWS_WEB_IDENTITY_TOKEN_FILE`.
    WebIdentity,
    /// EKS Pod Identity: the agent at `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    ContainerCredentials,
    /// The instance metadata service: the node's role.
    Imds,
}

impl Provider {
    /// A human name.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::Environment => "environment keys",
            Self::WebIdentity => "web identity (IRSA)",
            Self::ContainerCredentials => "container credentials (EKS Pod Identity)",
            Self::Imds => "IMDS (the node's role)",
        }
    }
}

/// What one provider of the chain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Outcome {
    /// It found its settings and answers.
    Used,
    /// Its settings are absent or incomplete: the chain goes on.
    Skipped,
    /// An earlier provider answered.
    NotReached,
}

/// One provider of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Step {
    pub(crate) provider: Provider,
    /// The variables it reads and their values in the pod (`null`: not set).
    pub(crate) variables: BTreeMap<String, Option<String>>,
    pub(crate) outcome: Outcome,
    pub(crate) reason: String,
}

/// The chain walked for one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Chain {
    /// The provider that answers.
    pub(crate) provider: Provider,
    /// Every provider, in order.
    pub(crate) steps: Vec<Step>,
}

const ENVIRONMENT: [&str; 2] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];
const WEB_IDENTITY: [&str; 2] = ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"];
const CONTAINER: &[&str] = &[
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];
const IMDS: &[&str] = &["AWS_EC2_METADATA_DISABLED"];

/// The value of `name` in `env` (the last one wins, as in Kubernetes), when not empty.
pub(crate) fn lookup<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn names(list: &[&str]) -> String {
    list.join(" and ")
}

/// Whether `provider` answers with `env`, and why (or why not).
fn decide(provider: Provider, env: &[(String, String)]) -> (bool, String) {
    let set = |name: &str| lookup(env, name).is_some();
    let [key, secret] = ENVIRONMENT;
    let [role, token_file] = WEB_IDENTITY;
    match provider {
        Provider::Environment => match (set(key), set(secret)) {
            (true, true) => (
                true,
                format!("{} are set: static keys win", names(&ENVIRONMENT)),
            ),
            (false, false) => (false, format!("{} are not set", names(&ENVIRONMENT))),
            _ => (
                false,
                format!("only one of {} is set", names(&ENVIRONMENT)),
            ),
        },
        Provider::WebIdentity => match (set(role), set(token_file)) {
            (true, true) => (
                true,
                format!(
                    "{} are set: the SDK calls sts:AssumeRoleWithWebIdentity with the token file",
                    names(&WEB_IDENTITY)
                ),
            ),
            (false, false) => (false, format!("{} are not set", names(&WEB_IDENTITY))),
            _ => (
                false,
                format!("only one of {} is set", names(&WEB_IDENTITY)),
            ),
        },
        Provider::ContainerCredentials => {
            let uri = lookup(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI")
                .map(|_| "AWS_CONTAINER_CREDENTIALS_FULL_URI")
                .or_else(|| {
                    lookup(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                        .map(|_| "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                });
            let token = lookup(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                .map(|_| "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                .or_else(|| {
                    lookup(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN")
                        .map(|_| "AWS_CONTAINER_AUTHORIZATION_TOKEN")
                });
            match (uri, token) {
                (Some(uri), Some(token)) => (
                    true,
                    format!(
                        "{uri} is set: the SDK asks that endpoint, sending the token named by {token}"
                    ),
                ),
                (Some(uri), None) => (
                    true,
                    format!(
                        "{uri} is set, but no authorization token: the endpoint is asked without one (the Pod Identity agent refuses that)"
                    ),
                ),
                (None, _) => (
                    false,
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_CREDENTIALS_RELATIVE_URI are not set".to_owned(),
                ),
            }
        }
        Provider::Imds => match lookup(env, "AWS_EC2_METADATA_DISABLED") {
            Some(v) if v.eq_ignore_ascii_case("true") => (
                false,
                "AWS_EC2_METADATA_DISABLED=true: the chain ends without credentials".to_owned(),
            ),
            _ => (
                true,
                "last in the chain: the SDK asks the node's instance metadata service, which hands out the node's role".to_owned(),
            ),
        },
    }
}

/// Walks the default chain (environment keys, web identity, container credentials, IMDS;
/// a pod has no shared credentials or config file) for a container's environment.
pub(crate) fn resolve(env: &[(String, String)]) -> Option<Chain> {
    let mut steps = Vec::new();
    let mut chosen = None;
    for (provider, variables) in [
        (Provider::Environment, ENVIRONMENT.as_slice()),
        (Provider::WebIdentity, WEB_IDENTITY.as_slice()),
        (Provider::ContainerCredentials, CONTAINER),
        (Provider::Imds, IMDS),
    ] {
        let variables = variables
            .iter()
            .map(|name| ((*name).to_owned(), lookup(env, name).map(str::to_owned)))
            .collect();
        let (outcome, reason) = if let Some(winner) = chosen {
            (
                Outcome::NotReached,
                format!("{} answered first", Provider::title(winner)),
            )
        } else {
            let (used, reason) = decide(provider, env);
            if used {
                chosen = Some(provider);
                (Outcome::Used, reason)
            } else {
                (Outcome::Skipped, reason)
            }
        };
        steps.push(Step {
            provider,
            variables,
            outcome,
            reason,
        });
    }
    chosen.map(|provider| Chain { provider, steps })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn outcomes(chain: &Chain) -> Vec<Outcome> {
        chain.steps.iter().map(|s| s.outcome).collect()
    }

    #[test]
    fn pod_identity_wins_over_imds() {
        let chain = resolve(&env(&[
            ("AWS_REGION", "eu-central-1"),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials",
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token",
            ),
        ]))
        .unwrap();
        assert_eq!(chain.provider, Provider::ContainerCredentials);
        assert_eq!(
            outcomes(&chain),
            [
                Outcome::Skipped,
                Outcome::Skipped,
                Outcome::Used,
                Outcome::NotReached
            ]
        );
        assert!(
            chain.steps[2]
                .reason
                .contains("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        );
        assert_eq!(
            chain.steps[0].variables["AWS_ACCESS_KEY_ID"], None,
            "unset variables are reported as null"
        );
    }

    #[test]
    fn web_identity_needs_both_variables() {
        let half = resolve(&env(&[("AWS_ROLE_ARN", "arn:aws:iam::1:role/r")])).unwrap();
        assert_eq!(half.provider, Provider::Imds);
        assert!(half.steps[1].reason.contains("only one of"));
        let full = resolve(&env(&[
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://x"),
        ]))
        .unwrap();
        assert_eq!(full.provider, Provider::WebIdentity);
        assert_eq!(full.steps[2].outcome, Outcome::NotReached);
        assert!(full.steps[2].reason.contains("web identity"));
    }

    #[test]
    fn environment_keys_come_first_and_empty_values_do_not_count() {
        let chain = resolve(&env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ]))
        .unwrap();
        assert_eq!(chain.provider, Provider::Environment);
        let empty = resolve(&env(&[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
        ]))
        .unwrap();
        assert_eq!(empty.provider, Provider::Imds);
    }

    #[test]
    fn imds_can_be_disabled() {
        assert!(resolve(&env(&[("AWS_EC2_METADATA_DISABLED", "true")])).is_none());
        assert_eq!(resolve(&[]).unwrap().provider, Provider::Imds);
    }
}
