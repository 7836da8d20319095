//! AdmissionReview (`admission.k8s.io/v1` and `v1beta1`) in and out. Hostile input never
//! fails: an undecodable review is answered `allowed: false` with a message.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::Mutation;

/// Reviews larger than this are refused (the API server's objects are at most ~1.5 MiB).
pub const MAX_REVIEW_BYTES: usize = 4 * 1024 * 1024;

/// A decoded review of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `admission.k8s.io/v1` or `admission.k8s.io/v1beta1`, echoed.
    pub api_version: String,
    /// The request's uid, echoed.
    pub uid: String,
    /// `CREATE`, `UPDATE`, …
    pub operation: String,
    /// The pod, when the request is about a pod.
    pub pod: Option<Value>,
    /// The namespace the pod is created in.
    pub namespace: String,
    /// Its ServiceAccount (`default` when the pod names none).
    pub service_account: String,
}

/// A review that could not be decoded: answered `allowed: false` with `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// The apiVersion to answer with.
    pub api_version: String,
    /// The uid, when it could be read.
    pub uid: String,
    /// Why.
    pub message: String,
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Decodes an AdmissionReview.
pub fn decode(body: &[u8]) -> Result<Request, Undecodable> {
    let undecodable = |api_version: &str, uid: &str, message: String| Undecodable {
        api_version: if api_version.is_empty() {
            "admission.k8s.io/v1".to_owned()
        } else {
            api_version.to_owned()
        },
        uid: uid.to_owned(),
        message,
    };
    if body.len() > MAX_REVIEW_BYTES {
        return Err(undecodable(
            "",
            "",
            format!("the AdmissionReview is larger than {MAX_REVIEW_BYTES} bytes"),
        ));
    }
    let mut review: Value = serde_json::from_slice(body)
        .map_err(|e| undecodable("", "", format!("the body is not an AdmissionReview: {e}")))?;
    let api_version = text(&review, "/apiVersion");
    let uid = text(&review, "/request/uid");
    if !matches!(
        api_version.as_str(),
        "admission.k8s.io/v1" | "admission.k8s.io/v1beta1"
    ) || text(&review, "/kind") != "AdmissionReview"
    {
        return Err(undecodable(
            &api_version,
            &uid,
            format!(
                "expected an AdmissionReview of admission.k8s.io/v1 or v1beta1, got {api_version:?}"
            ),
        ));
    }
    if uid.is_empty() {
        return Err(undecodable(
            &api_version,
            "",
            "the review has no request.uid".to_owned(),
        ));
    }
    let kind = text(&review, "/request/kind/kind");
    let operation = text(&review, "/request/operation");
    let request_namespace = text(&review, "/request/namespace");
    // The pod is moved out of the review, not copied: it is most of the body.
    let pod = review
        .pointer_mut("/request/object")
        .filter(|o| o.is_object() && kind == "Pod")
        .map(Value::take);
    let service_account = pod
        .as_ref()
        .map(|p| text(p, "/spec/serviceAccountName"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let namespace = Some(request_namespace)
        .filter(|n| !n.is_empty())
        .or_else(|| pod.as_ref().map(|p| text(p, "/metadata/namespace")))
        .unwrap_or_default();
    Ok(Request {
        api_version,
        uid,
        operation,
        pod,
        namespace,
        service_account,
    })
}

/// Whether `name` is a Kubernetes object name (an RFC 1123 subdomain): only such names are
/// looked up, so a hostile review cannot steer a request's URL.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The answer: allowed, with the mutation's patch when there is one.
pub fn respond(request: &Request, mutation: Option<&Mutation>) -> Value {
    let mut response = json!({ "uid": request.uid, "allowed": true });
    if let (Some(m), Some(map)) = (
        mutation.filter(|m| !m.patch.0.is_empty()),
        response.as_object_mut(),
    ) {
        let patch = serde_json::to_vec(&m.patch).unwrap_or_default();
        map.insert("patchType".to_owned(), json!("JSONPatch"));
        map.insert("patch".to_owned(), json!(STANDARD.encode(patch)));
    }
    json!({
        "apiVersion": request.api_version,
        "kind": "AdmissionReview",
        "response": response,
    })
}

/// The answer to an undecodable review: not allowed, with the reason.
pub fn refuse(undecodable: &Undecodable) -> Value {
    json!({
        "apiVersion": undecodable.api_version,
        "kind": "AdmissionReview",
        "response": {
            "uid": undecodable.uid,
            "allowed": false,
            "status": {"code": 400, "message": undecodable.message},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, MutationConfig, ServiceAccountInfo, mutate};

    fn review(api_version: &str, kind: &str) -> Vec<u8> {
        json!({
            "apiVersion": api_version,
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": kind},
                "operation": "CREATE",
                "namespace": "carts",
                "object": {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}},
            }
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn both_versions_are_answered_in_kind_with_the_uid() {
        for version in ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] {
            let request = decode(&review(version, "Pod")).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(request.service_account, "default");
            assert_eq!(request.namespace, "carts");
            let config = MutationConfig::default();
            let account = ServiceAccountInfo::default();
            let mutation = mutate(
                request.pod.as_ref().unwrap_or(&Value::Null),
                &Context {
                    service_account: Some(&account),
                    has_association: true,
                    config: &config,
                    jittered_expiration: 80_000,
                },
            );
            let answer = respond(&request, mutation.as_ref());
            assert_eq!(answer["apiVersion"], version);
            assert_eq!(
                answer["response"]["uid"],
                "705ab4f5-6393-11e8-b7cc-42010a800002"
            );
            assert_eq!(answer["response"]["allowed"], true);
            assert_eq!(answer["response"]["patchType"], "JSONPatch");
            let patch = STANDARD
                .decode(answer["response"]["patch"].as_str().unwrap_or_default())
                .unwrap_or_default();
            assert!(serde_json::from_slice::<json_patch::Patch>(&patch).is_ok());
        }
    }

    #[test]
    fn other_kinds_pass_and_garbage_is_refused() {
        let request =
            decode(&review("admission.k8s.io/v1", "Service")).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(request.pod.is_none());
        let answer = respond(&request, None);
        assert_eq!(answer["response"]["allowed"], true);
        assert!(answer["response"].get("patch").is_none());
        for body in [
            &b"not json"[..],
            br#"{"apiVersion":"v1","kind":"Pod"}"#,
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}"#,
        ] {
            let refused = decode(body).map(|_| ()).expect_err("refused");
            let answer = refuse(&refused);
            assert_eq!(answer["response"]["allowed"], false);
            assert!(
                answer["response"]["status"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }

    #[test]
    fn only_kubernetes_names_are_valid() {
        for good in ["default", "my-app", "a", "team.a-b", "x1.y2"] {
            assert!(is_valid_name(good), "{good}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["a"; 128].join("."); // 255 characters
        for bad in [
            "",
            "My-App",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a/b",
            "../x",
            "a%2Fb",
            "a b",
            "ä",
            &long_label,
            &long_name,
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
