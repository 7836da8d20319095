//! What `podiam cluster publish-issuer` writes to S3 so that AWS STS can verify a cluster's
//! tokens (IRSA off EKS): the OpenID discovery document and the JWKS it points to, at the
//! issuer URL, which must be the bucket's own public HTTPS URL. Pure: no I/O.

use serde_json::{Value, json};

/// Where the JWKS goes, under the issuer (as the kube-apiserver serves it).
pub const JWKS_PATH: &str = "openid/v1/jwks";

/// Where the discovery document goes, under the issuer.
pub const DISCOVERY_PATH: &str = ".well-known/openid-configuration";

/// An `s3://BUCKET/PREFIX` destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Destination {
    /// The bucket.
    pub bucket: String,
    /// The prefix, without leading or trailing `/` (empty for the bucket's root).
    pub prefix: String,
}

impl S3Destination {
    /// Parses `s3://BUCKET[/PREFIX]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?} is not an s3://BUCKET/PREFIX URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(format!(
                "{bucket:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(format!("the prefix {prefix:?} has . or .. segments"));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The object key of `path` under the prefix.
    pub fn key(&self, path: &str) -> String {
        if self.prefix.is_empty() {
            path.to_owned()
        } else {
            format!("{}/{path}", self.prefix)
        }
    }

    /// Whether `issuer` is this destination's public HTTPS URL: virtual-hosted
    /// (`https://BUCKET.s3[.REGION].amazonaws.com/PREFIX`) or path-style
    /// (`https://s3[.REGION].amazonaws.com/BUCKET/PREFIX`). Otherwise, why not.
    pub fn check_issuer(&self, issuer: &str) -> Result<(), String> {
        let expected = || {
            format!(
                "https://{}.s3.REGION.amazonaws.com{}",
                self.bucket,
                if self.prefix.is_empty() {
                    String::new()
                } else {
                    format!("/{}", self.prefix)
                }
            )
        };
        let rest = issuer.strip_prefix("https://").ok_or_else(|| {
            format!(
                "the issuer {issuer:?} is not HTTPS: AWS fetches the discovery document over HTTPS only; create the cluster with --issuer-url {}",
                expected()
            )
        })?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let path = path.trim_end_matches('/');
        let is_s3_host = |h: &str| {
            h == "s3.amazonaws.com"
                || h.strip_prefix("s3.")
                    .and_then(|r| r.strip_suffix(".amazonaws.com"))
                    .is_some_and(|region| !region.is_empty() && !region.contains('.'))
        };
        let object_path = match host.strip_prefix(&format!("{}.", self.bucket)) {
            Some(s3) if is_s3_host(s3) => Some(path.to_owned()),
            _ if is_s3_host(host) => path
                .strip_prefix(&self.bucket)
                .and_then(|p| p.strip_prefix('/').or((p.is_empty()).then_some("")))
                .map(str::to_owned),
            _ => None,
        };
        match object_path {
            Some(p) if p == self.prefix => Ok(()),
            Some(p) => Err(format!(
                "the issuer {issuer:?} is the bucket's URL for prefix {p:?}, not {:?}: publish to s3://{}/{p}, or create the cluster with --issuer-url {}",
                self.prefix,
                self.bucket,
                expected()
            )),
            None => Err(format!(
                "the issuer {issuer:?} is not the public URL of bucket {}: tokens name their issuer, and AWS fetches its keys from that URL, so the issuer must be {}",
                self.bucket,
                expected()
            )),
        }
    }
}

/// The discovery document of `issuer`, as the kube-apiserver serves it.
pub fn discovery_document(issuer: &str) -> Value {
    let issuer = issuer.trim_end_matches('/');
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/{JWKS_PATH}"),
        "authorization_endpoint": "urn:kubernetes:programmatic_authorization",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss"],
    })
}

/// Why AWS would refuse the keys of `jwks`, if it would: every key needs a `kid`, and IRSA
/// tokens are RS256.
pub fn check_jwks(jwks: &Value) -> Result<usize, String> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no keys array")?;
    if keys.is_empty() {
        return Err("the JWKS has no keys".to_owned());
    }
    for key in keys {
        let kid = key.get("kid").and_then(Value::as_str).unwrap_or_default();
        if kid.is_empty() {
            return Err("a key of the JWKS has no kid; AWS picks keys by kid".to_owned());
        }
        if key.get("kty").and_then(Value::as_str) != Some("RSA") {
            return Err(format!(
                "key {kid} is not an RSA key; IRSA tokens for AWS must be RS256"
            ));
        }
    }
    Ok(keys.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(url: &str) -> S3Destination {
        S3Destination::parse(url).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn destinations_parse_and_name_their_keys() {
        let d = dest("s3://oidc-bucket/prod/");
        assert_eq!(d.bucket, "oidc-bucket");
        assert_eq!(d.prefix, "prod");
        assert_eq!(d.key(JWKS_PATH), "prod/openid/v1/jwks");
        assert_eq!(dest("s3://oidc-bucket").key(DISCOVERY_PATH), DISCOVERY_PATH);
        assert!(S3Destination::parse("https://oidc-bucket/prod").is_err());
        assert!(S3Destination::parse("s3://Bad_Bucket/prod").is_err());
        assert!(S3Destination::parse("s3://oidc-bucket/a/../b").is_err());
    }

    #[test]
    fn only_the_buckets_own_https_url_is_accepted_as_the_issuer() {
        let d = dest("s3://oidc-bucket/prod");
        for ok in [
            "https://oidc-bucket.s3.eu-central-1.amazonaws.com/prod",
            "https://oidc-bucket.s3.amazonaws.com/prod",
            "https://s3.eu-central-1.amazonaws.com/oidc-bucket/prod",
            "https://oidc-bucket.s3.eu-central-1.amazonaws.com/prod/",
        ] {
            assert_eq!(d.check_issuer(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("http://oidc-bucket.s3.amazonaws.com/prod", "not HTTPS"),
            (
                "https://oidc-bucket.s3.amazonaws.com/staging",
                "for prefix \"staging\"",
            ),
            ("https://other.s3.amazonaws.com/prod", "not the public URL"),
            (
                "https://oidc-bucket.s3.amazonaws.com.evil.example/prod",
                "not the public URL",
            ),
            ("https://oidc.example.com/prod", "not the public URL"),
            (
                "https://s3.amazonaws.com/oidc-bucketx/prod",
                "not the public URL",
            ),
        ] {
            let refused = d.check_issuer(bad).expect_err(bad);
            assert!(refused.contains(why), "{bad}: {refused}");
            assert!(
                refused.contains("https://oidc-bucket.s3.REGION.amazonaws.com/prod"),
                "{refused}"
            );
        }
        assert_eq!(
            dest("s3://oidc-bucket").check_issuer("https://oidc-bucket.s3.amazonaws.com"),
            Ok(())
        );
    }

    #[test]
    fn the_discovery_document_points_at_the_published_jwks() {
        let doc = discovery_document("https://b.s3.amazonaws.com/prod/");
        assert_eq!(doc["issuer"], "https://b.s3.amazonaws.com/prod");
        assert_eq!(
            doc["jwks_uri"],
            "https://b.s3.amazonaws.com/prod/openid/v1/jwks"
        );
    }

    #[test]
    fn keys_aws_cannot_use_are_refused() {
        assert_eq!(
            check_jwks(&json!({"keys": [{"kty": "RSA", "kid": "a", "n": "x", "e": "AQAB"}]})),
            Ok(1)
        );
        assert!(check_jwks(&json!({"keys": []})).is_err());
        assert!(check_jwks(&json!({"keys": [{"kty": "RSA"}]})).is_err());
        assert!(check_jwks(&json!({"keys": [{"kty": "EC", "kid": "a"}]})).is_err());
        assert!(check_jwks(&json!({})).is_err());
    }
}
