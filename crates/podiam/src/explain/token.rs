//! The checks STS (IRSA) or EKS Auth (Pod Identity) make on the pod's projected token, one by
//! one, with the verifier they use deciding.

use podiam_crypto::JwsAlgorithm;
use podiam_oidc::{Claims, KeySet, MAX_LEEWAY, TokenError, Verifier, check_times};
use serde::Serialize;
use time::OffsetDateTime;

/// What the service verifying the token expects.
#[derive(Debug, Clone)]
pub(crate) struct Expectation<'a> {
    /// The service: `sts:AssumeRoleWithWebIdentity` or `eks-auth:AssumeRoleForPodIdentity`.
    pub(crate) verifier: &'a str,
    /// The cluster's issuer URL.
    pub(crate) issuer: &'a str,
    /// The audiences accepted (an OIDC provider's client ids; `pods.eks.amazonaws.com`).
    pub(crate) audiences: &'a [String],
    /// For IRSA: the IAM OIDC provider for the issuer, if it exists (`Err`: its ARN, missing).
    pub(crate) provider: Option<Result<&'a str, &'a str>>,
    pub(crate) namespace: &'a str,
    pub(crate) service_account: &'a str,
    /// The node the agent runs on (Pod Identity binds tokens to it).
    pub(crate) node: Option<&'a str>,
    /// Pod Identity needs the `kubernetes.io` pod claim.
    pub(crate) require_pod: bool,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Check {
    pub(crate) check: &'static str,
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

/// The token and every check on it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TokenReport {
    /// The token's path in the pod.
    pub(crate) file: String,
    /// Who verifies it.
    pub(crate) verified_by: String,
    /// The issuer expected.
    pub(crate) issuer: String,
    /// The audiences accepted.
    pub(crate) accepted_audiences: Vec<String>,
    /// All checks passed.
    pub(crate) valid: bool,
    /// The first failure, as the verifier reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    pub(crate) checks: Vec<Check>,
    /// The claims (unverified if a check failed).
    pub(crate) claims: Option<Claims>,
}

fn check(checks: &mut Vec<Check>, check: &'static str, ok: bool, detail: String) {
    checks.push(Check { check, ok, detail });
}

fn time_text(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| seconds.to_string())
}

/// Is this failure about the JWS itself (structure, algorithm, key, signature)?
fn is_signature_error(e: &TokenError) -> bool {
    matches!(
        e,
        TokenError::TooLarge { .. }
            | TokenError::Malformed(_)
            | TokenError::UnsupportedAlgorithm(_)
            | TokenError::ForbiddenHeader(_)
            | TokenError::UnknownKey(_)
            | TokenError::BadSignature
    )
}

/// Checks `jwt` as the verifying service would at `now`.
pub(crate) fn check_token(
    file: &str,
    jwt: &str,
    keys: &KeySet,
    expect: &Expectation<'_>,
    now: OffsetDateTime,
) -> TokenReport {
    let jwt = jwt.trim();
    let mut checks = Vec::new();
    let claims = podiam_oidc::decode_unverified(jwt);

    // The signature on its own: the token's own issuer and audiences, at a time inside its
    // validity, so that only the JWS can fail.
    match &claims {
        Err(e) => check(&mut checks, "signature", false, e.to_string()),
        Ok(c) => {
            let audiences: Vec<&str> = c.aud.iter().map(String::as_str).collect();
            let inside = c.iat.or(c.nbf).unwrap_or(c.exp.saturating_sub(1));
            let at = OffsetDateTime::from_unix_timestamp(inside).unwrap_or(now);
            match Verifier::new(&c.iss, &audiences).verify(jwt, keys, at) {
                Ok(v) => {
                    let alg = [JwsAlgorithm::RS256, JwsAlgorithm::ES256]
                        .into_iter()
                        .find(|a| keys.find(Some(&v.kid), *a).is_some())
                        .map_or("?", JwsAlgorithm::as_str);
                    check(
                        &mut checks,
                        "signature",
                        true,
                        format!(
                            "{alg}, key {} of the cluster's JWKS, signature verifies",
                            v.kid
                        ),
                    );
                }
                Err(e) if is_signature_error(&e) => {
                    check(&mut checks, "signature", false, e.to_string());
                }
                Err(_) => check(
                    &mut checks,
                    "signature",
                    true,
                    "a key of the cluster's JWKS verifies it".to_owned(),
                ),
            }
        }
    }
    if let Ok(c) = &claims {
        check(
            &mut checks,
            "issuer",
            c.iss == expect.issuer,
            if c.iss == expect.issuer {
                format!("iss {} is the cluster's issuer", c.iss)
            } else {
                format!(
                    "iss {:?} is not the cluster's issuer {:?}",
                    c.iss, expect.issuer
                )
            },
        );
        if let Some(provider) = expect.provider {
            match provider {
                Ok(arn) => check(
                    &mut checks,
                    "oidc-provider",
                    true,
                    format!("IAM OIDC provider {arn} exists for the issuer"),
                ),
                Err(arn) => check(
                    &mut checks,
                    "oidc-provider",
                    false,
                    format!(
                        "no IAM OIDC provider {arn}: STS answers \"No OpenIDConnect provider found in your account for {}\"",
                        c.iss
                    ),
                ),
            }
        }
        let accepted = c.aud.iter().find(|a| expect.audiences.contains(a));
        check(
            &mut checks,
            "audience",
            accepted.is_some(),
            match accepted {
                Some(a) => format!("aud {a} is accepted"),
                None => format!(
                    "aud {:?} has none of the accepted audiences {:?}",
                    c.aud, expect.audiences
                ),
            },
        );
        let leeway = i64::try_from(MAX_LEEWAY.as_secs()).unwrap_or(60);
        match check_times(c, now, leeway) {
            Ok(()) => check(
                &mut checks,
                "lifetime",
                true,
                format!(
                    "issued {}, expires {} (in {} s)",
                    c.iat.map_or_else(|| "?".to_owned(), time_text),
                    time_text(c.exp),
                    c.exp.saturating_sub(now.unix_timestamp())
                ),
            ),
            Err(e) => check(&mut checks, "lifetime", false, e.to_string()),
        }
        let subject = format!(
            "system:serviceaccount:{}:{}",
            expect.namespace, expect.service_account
        );
        check(
            &mut checks,
            "subject",
            c.sub == subject,
            if c.sub == subject {
                format!("sub {} names the ServiceAccount", c.sub)
            } else {
                format!("sub {:?} is not {subject:?}", c.sub)
            },
        );
        let (ok, detail) = kubernetes_claims(c, expect);
        check(&mut checks, "kubernetes.io", ok, detail);
    }

    // The verdict is the verifier's, with the service's own extra checks.
    let verdict = Verifier::new(
        expect.issuer,
        &expect
            .audiences
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .verify(jwt, keys, now);
    let mut error = verdict.as_ref().err().map(ToString::to_string);
    if error.is_none() {
        error = checks
            .iter()
            .find(|c| !c.ok)
            .map(|c| format!("{}: {}", c.check, c.detail));
    }
    TokenReport {
        file: file.to_owned(),
        verified_by: expect.verifier.to_owned(),
        issuer: expect.issuer.to_owned(),
        accepted_audiences: expect.audiences.to_vec(),
        valid: error.is_none(),
        error,
        checks,
        claims: claims.ok(),
    }
}

/// The `kubernetes.io` claim: namespace, ServiceAccount, pod and node binding.
fn kubernetes_claims(c: &Claims, expect: &Expectation<'_>) -> (bool, String) {
    let Some(k) = &c.kubernetes else {
        return (!expect.require_pod, "no kubernetes.io claim".to_owned());
    };
    let mut problems = Vec::new();
    if k.namespace != expect.namespace {
        problems.push(format!(
            "namespace {:?} is not {:?}",
            k.namespace, expect.namespace
        ));
    }
    if k.serviceaccount.name != expect.service_account {
        problems.push(format!(
            "serviceaccount {:?} is not {:?}",
            k.serviceaccount.name, expect.service_account
        ));
    }
    if expect.require_pod && k.pod.as_ref().is_none_or(|p| p.name.is_empty()) {
        problems.push("no pod: EKS Auth needs a pod-bound token".to_owned());
    }
    if let (Some(node), Some(token_node)) = (expect.node, &k.node)
        && token_node.name != node
    {
        problems.push(format!(
            "the token is bound to node {:?}, the agent runs on {node:?}",
            token_node.name
        ));
    }
    let pod = k.pod.as_ref().map_or_else(
        || "no pod".to_owned(),
        |p| format!("pod {} (uid {})", p.name, p.uid),
    );
    let node = k
        .node
        .as_ref()
        .map_or_else(|| "no node".to_owned(), |n| format!("node {}", n.name));
    let summary = format!(
        "namespace {}, serviceaccount {} (uid {}), {pod}, {node}",
        k.namespace, k.serviceaccount.name, k.serviceaccount.uid
    );
    if problems.is_empty() {
        (true, summary)
    } else {
        (false, format!("{}; {summary}", problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use podiam_crypto::{KeyKind, SigningKey, SystemRng, VerifyingKey};
    use podiam_oidc::{Issuer, ObjectRef, TokenRequest};

    use super::*;

    const ISSUER: &str = "https://oidc.example.com/id/X";

    fn mint(audience: &str, pod: bool, now: OffsetDateTime) -> (String, KeySet) {
        let key = SigningKey::generate(KeyKind::EcP256).unwrap();
        let mut keys = KeySet::new();
        keys.insert(VerifyingKey::from_jwk(&key.verifying_key().to_jwk()).unwrap());
        let issuer = Issuer::new(ISSUER, key).unwrap();
        let object = |name: &str| ObjectRef {
            name: name.into(),
            uid: format!("{name}-uid"),
        };
        let request = TokenRequest {
            namespace: "carts".into(),
            service_account: object("carts"),
            audiences: vec![audience.into()],
            pod: pod.then(|| object("carts-1")),
            node: Some(object("node-1")),
            lifetime: Duration::from_secs(3600),
            warn_after: None,
        };
        (issuer.mint(&request, now, &SystemRng).unwrap(), keys)
    }

    fn expect<'a>(audiences: &'a [String]) -> Expectation<'a> {
        Expectation {
            verifier: "eks-auth:AssumeRoleForPodIdentity",
            issuer: ISSUER,
            audiences,
            provider: None,
            namespace: "carts",
            service_account: "carts",
            node: Some("node-1"),
            require_pod: true,
        }
    }

    fn failed(report: &TokenReport) -> Vec<&'static str> {
        report
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.check)
            .collect()
    }

    #[test]
    fn a_good_token_passes_every_check() {
        let now = OffsetDateTime::now_utc();
        let (jwt, keys) = mint("pods.eks.amazonaws.com", true, now);
        let audiences = vec!["pods.eks.amazonaws.com".to_owned()];
        let report = check_token("/t", &jwt, &keys, &expect(&audiences), now);
        assert!(report.valid, "{report:?}");
        assert_eq!(
            report.checks.iter().map(|c| c.check).collect::<Vec<_>>(),
            [
                "signature",
                "issuer",
                "audience",
                "lifetime",
                "subject",
                "kubernetes.io"
            ]
        );
        assert!(report.checks[0].detail.starts_with("ES256, key "));
    }

    #[test]
    fn each_failure_is_named() {
        let now = OffsetDateTime::now_utc();
        let (jwt, keys) = mint("sts.amazonaws.com", false, now);
        let audiences = vec!["pods.eks.amazonaws.com".to_owned()];
        let report = check_token("/t", &jwt, &keys, &expect(&audiences), now);
        assert!(!report.valid);
        assert_eq!(failed(&report), ["audience", "kubernetes.io"]);
        assert!(report.error.unwrap().contains("audience"));

        let later = now + time::Duration::hours(2);
        let ok_aud = vec!["sts.amazonaws.com".to_owned()];
        let report = check_token("/t", &jwt, &keys, &expect(&ok_aud), later);
        assert_eq!(failed(&report), ["lifetime", "kubernetes.io"]);

        let (_, other_keys) = mint("sts.amazonaws.com", true, now);
        let report = check_token("/t", &jwt, &other_keys, &expect(&ok_aud), now);
        assert_eq!(failed(&report)[0], "signature");
        assert!(!report.valid);
    }

    #[test]
    fn a_missing_provider_fails_irsa() {
        let now = OffsetDateTime::now_utc();
        let (jwt, keys) = mint("sts.amazonaws.com", true, now);
        let audiences = vec!["sts.amazonaws.com".to_owned()];
        let mut e = expect(&audiences);
        e.provider = Some(Err("arn:aws:iam::1:oidc-provider/oidc.example.com/id/X"));
        e.require_pod = false;
        let report = check_token("/t", &jwt, &keys, &e, now);
        assert_eq!(failed(&report), ["oidc-provider"]);
        assert!(!report.valid);
        assert!(report.error.unwrap().contains("No OpenIDConnect provider"));
    }
}
