//! The claims of a Kubernetes service-account token, in kube-apiserver's member order.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name and uid (pod, node, service account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Object name.
    pub name: String,
    /// Object uid.
    pub uid: String,
}

/// The `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    /// The service account's namespace.
    pub namespace: String,
    /// The node the pod runs on (node-bound tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
    /// The pod the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    /// The service account.
    pub serviceaccount: ObjectRef,
    /// When clients should warn that an extended token is past its intended lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// The claims of a token; the verifier needs only `iss`, `sub`, `aud` and `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Audiences (a string or an array on the wire; always an array when podiam writes).
    #[serde(deserialize_with = "string_or_array")]
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    #[serde(deserialize_with = "numeric_date", serialize_with = "write_date")]
    pub exp: i64,
    /// Issue time.
    #[serde(
        default,
        deserialize_with = "optional_numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub iat: Option<i64>,
    /// Issuer URL.
    pub iss: String,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Kubernetes' own claims.
    #[serde(
        rename = "kubernetes.io",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kubernetes: Option<KubernetesClaims>,
    /// Not before.
    #[serde(
        default,
        deserialize_with = "optional_numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub nbf: Option<i64>,
    /// Subject: `system:serviceaccount:<namespace>:<name>`.
    pub sub: String,
}

fn string_or_array<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// An RFC 7519 NumericDate: integer or fractional seconds, truncated to whole seconds.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = serde_json::Number::deserialize(d)?;
    if let Some(i) = value.as_i64() {
        return Ok(i);
    }
    match value.as_f64() {
        // Bounded just above, so the conversion cannot saturate.
        Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(f.trunc() as i64),
        _ => Err(serde::de::Error::custom("a date is a number of seconds")),
    }
}

fn optional_numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    numeric_date(d).map(Some)
}

fn write_date<S: Serializer>(value: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(*value)
}
