//! The model's rules for names, ARNs, tags and URLs, as `InvalidParameterException`s.

use std::collections::BTreeMap;

use podiam_crypto::Rng;
use podiam_types::Arn;

use crate::EksError;

fn invalid(message: String) -> EksError {
    EksError::InvalidParameter(message)
}

/// 1–100 characters of `[0-9A-Za-z][A-Za-z0-9\-_]*`.
pub(crate) fn cluster_name(name: &str) -> Result<(), EksError> {
    let ok = (1..=100).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(()).ok_or_else(|| {
        invalid(format!(
            "The cluster name {name:?} must be 1-100 characters of [0-9A-Za-z][A-Za-z0-9-_]*."
        ))
    })
}

/// A DNS-1123 label, as Kubernetes requires of a namespace.
pub(crate) fn namespace(namespace: &str) -> Result<(), EksError> {
    let ok = (1..=63).contains(&namespace.len())
        && namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !namespace.starts_with('-')
        && !namespace.ends_with('-');
    ok.then_some(()).ok_or_else(|| {
        invalid(format!(
            "The namespace {namespace:?} is not a DNS-1123 label."
        ))
    })
}

/// A DNS-1123 subdomain, as Kubernetes requires of a service account name.
pub(crate) fn service_account(name: &str) -> Result<(), EksError> {
    let ok = (1..=253).contains(&name.len())
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    ok.then_some(()).ok_or_else(|| {
        invalid(format!(
            "The service account {name:?} is not a DNS-1123 subdomain."
        ))
    })
}

/// An IAM role ARN.
pub(crate) fn role_arn(arn: &str, member: &str) -> Result<(), EksError> {
    let parsed: Arn = arn
        .parse()
        .map_err(|e| invalid(format!("{member} {arn:?} is not an ARN: {e}")))?;
    if parsed.service() != "iam" || !parsed.resource().starts_with("role/") {
        return Err(invalid(format!("{member} {arn:?} is not an IAM role ARN.")));
    }
    Ok(())
}

/// At most 50 tags; keys 1–128, values at most 256 characters.
pub(crate) fn tags(tags: &BTreeMap<String, String>) -> Result<(), EksError> {
    if tags.len() > 50 {
        return Err(invalid("At most 50 tags.".to_owned()));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(invalid(format!(
                "Tag {k:?}: keys are 1-128 characters, values at most 256."
            )));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid(format!("Tag {k:?}: the aws: prefix is reserved.")));
        }
    }
    Ok(())
}

/// An issuer URL: `https://` or `http://`, a host, no user info, query or fragment.
pub(crate) fn issuer_url(url: &str) -> Result<podiam_types::IssuerUrl, EksError> {
    url.parse().map_err(|e| {
        invalid(format!(
            "The issuer URL must be http(s)://host[:port]/path without user, query, fragment or escapes: {e}"
        ))
    })
}

/// A session policy: valid JSON of at most 2,048 characters (IAM checks the rest).
pub(crate) fn session_policy(policy: &str) -> Result<(), EksError> {
    podiam_policy::parse_as(policy, podiam_policy::PolicyType::Session)
        .map(|_| ())
        .map_err(|e| {
            invalid(format!(
                "The policy is not a valid session policy: {}",
                e.iam_message()
            ))
        })
}

/// EKS applies a session policy only to sessions without tags: "When using this policy,
/// `disableSessionTags` must be set to true" (CreatePodIdentityAssociation).
pub(crate) fn policy_needs_untagged_sessions(
    policy: Option<&str>,
    disable_session_tags: bool,
) -> Result<(), EksError> {
    if policy.is_some() && !disable_session_tags {
        return Err(invalid(
            "A pod identity association with a policy must set disableSessionTags to true."
                .to_owned(),
        ));
    }
    Ok(())
}

/// A `clientRequestToken`: 33–126 characters. The model sets no limit, but EKS answers a
/// shorter or longer one with `InvalidParameterException` and this message (seen on
/// `CreateCluster`; podiam applies it to every EKS call with a token). The AWS CLI and SDKs
/// send a UUID (36 characters) when the caller gives none.
pub(crate) fn client_request_token(token: &str) -> Result<(), EksError> {
    if (33..=126).contains(&token.chars().count()) {
        Ok(())
    } else {
        Err(invalid(
            "The client request token parameter must be between 33 and 126 characters.".to_owned(),
        ))
    }
}

/// `len` upper-case hexadecimal digits.
pub(crate) fn random_hex(len: usize, rng: &dyn Rng) -> Result<String, EksError> {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    rng.fill(&mut bytes)
        .map_err(|e| EksError::Crypto(e.to_string()))?;
    let mut hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    hex.truncate(len);
    Ok(hex)
}

/// `a-` and 17 lower-case alphanumerics.
pub(crate) fn association_id(rng: &dyn Rng) -> Result<String, EksError> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut id = String::from("a-");
    let mut buf = [0u8; 32];
    while id.len() < 19 {
        rng.fill(&mut buf)
            .map_err(|e| EksError::Crypto(e.to_string()))?;
        // 252 = 7 × 36: larger bytes are skipped so every symbol is equally likely.
        for b in buf.iter().filter(|b| **b < 252) {
            if id.len() == 19 {
                break;
            }
            if let Some(c) = ALPHABET.get(usize::from(*b) % ALPHABET.len()) {
                id.push(char::from(*c));
            }
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use podiam_crypto::SeededRng;

    use super::*;

    #[test]
    fn names_and_ids() {
        assert!(cluster_name("eks-workshop").is_ok());
        assert!(cluster_name("-x").is_err());
        assert!(cluster_name(&"a".repeat(101)).is_err());
        assert!(namespace("carts").is_ok());
        assert!(namespace("Carts").is_err());
        assert!(service_account("carts.v1").is_ok());
        assert!(service_account("a..b").is_err());
        assert!(role_arn("arn:aws:iam::000000000000:role/x", "roleArn").is_ok());
        assert!(role_arn("arn:aws:iam::000000000000:user/x", "roleArn").is_err());
        assert!(issuer_url("https://oidc.eks.eu-central-1.amazonaws.com/id/ABC").is_ok());
        assert!(issuer_url("https://a@b/").is_err());
        assert!(issuer_url("ftp://x").is_err());
        let rng = SeededRng::new(b"ids");
        let id = association_id(&rng).unwrap_or_default();
        assert_eq!(id.len(), 19);
        assert!(id.starts_with("a-"));
        assert!(
            id[2..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_eq!(random_hex(32, &rng).unwrap_or_default().len(), 32);
        assert!(client_request_token("9a91a181-e23b-42ab-8680-915f4ab42a32").is_ok());
        assert!(client_request_token(&"é".repeat(126)).is_ok());
        assert!(client_request_token(&"t".repeat(32)).is_err());
        assert!(client_request_token(&"t".repeat(127)).is_err());
        assert!(client_request_token("").is_err());
    }
}
