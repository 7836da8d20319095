//! AdmissionReviews as the API server sends them, and their answers applied to the pod: tests
//! assert on the resulting pod, never on patch text.

use base64::Engine as _;
use serde_json::{Value, json};

/// A pod in `namespace` running as `service_account`, with one container `app`.
pub fn pod(namespace: &str, service_account: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": {
            "serviceAccountName": service_account,
            "containers": [{"name": "app", "image": "app:1"}],
        },
    })
}

/// The AdmissionReview (`admission.k8s.io/v1` or `v1beta1`) of creating `pod`.
pub fn create_review(api_version: &str, uid: &str, pod: &Value) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": pod.pointer("/metadata/namespace").cloned().unwrap_or_default(),
            "operation": "CREATE",
            "object": pod,
        },
    })
}

/// `pod` after the answer's JSON Patch (unchanged when the answer has none).
pub fn apply_answer(pod: &Value, answer: &Value) -> Value {
    let mut pod = pod.clone();
    if let Some(patch) = answer.pointer("/response/patch").and_then(Value::as_str) {
        assert_eq!(
            answer.pointer("/response/patchType"),
            Some(&json!("JSONPatch"))
        );
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .expect("the patch is base64");
        let patch: json_patch::Patch =
            serde_json::from_slice(&bytes).expect("the patch is a JSON Patch");
        json_patch::patch(&mut pod, &patch).expect("the patch applies to the pod");
    }
    pod
}

/// The value of the first container's variable `name`.
pub fn container_env(pod: &Value, name: &str) -> Option<String> {
    pod.pointer("/spec/containers/0/env")?
        .as_array()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))?
        .get("value")?
        .as_str()
        .map(str::to_owned)
}
