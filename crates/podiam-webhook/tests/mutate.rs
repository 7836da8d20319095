//! The mutation rule by rule. Every test applies the patch to the pod and asserts on the
//! resulting pod, never on the patch text.

#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test fixtures fail loudly"
)]

use std::collections::BTreeMap;

use podiam_webhook::{Context, Mode, MutationConfig, ServiceAccountInfo, mutate};
use serde_json::{Value, json};

const ROLE: &str = "arn:aws:iam::637423329338:role/eks-workshop-carts-dynamo-irsa";
const JITTER: i64 = 80_000;

fn sa(annotations: &[(&str, &str)]) -> ServiceAccountInfo {
    ServiceAccountInfo {
        name: "carts".into(),
        namespace: "carts".into(),
        annotations: annotations
            .iter()
            .map(|(k, v)| (format!("eks.amazonaws.com/{k}"), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "carts-abc", "namespace": "carts"},
        "spec": {
            "serviceAccountName": "carts",
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {"name": "carts", "image": "carts:1", "env": [{"name": "PORT", "value": "8080"}]},
                {"name": "sidecar", "image": "envoy"}
            ]
        }
    })
}

/// Mutates, applies the patch to the original and checks it gives the mutated pod.
fn run(
    pod: &Value,
    sa: Option<&ServiceAccountInfo>,
    association: bool,
    config: &MutationConfig,
) -> Option<(Mode, Value)> {
    let mutation = mutate(
        pod,
        &Context {
            service_account: sa,
            has_association: association,
            config,
            jittered_expiration: JITTER,
        },
    )?;
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &mutation.patch).expect("the patch applies");
    assert_eq!(patched, mutation.pod, "the patch gives the mutated pod");
    Some((mutation.mode, patched))
}

fn env(pod: &Value, container: &str) -> Vec<(String, String)> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|list| pod["spec"][list].as_array().cloned().unwrap_or_default())
        .find(|c| c["name"] == container)
        .and_then(|c| c["env"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_owned(),
                e["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn names(env: &[(String, String)]) -> Vec<&str> {
    env.iter().map(|(n, _)| n.as_str()).collect()
}

fn volume<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    pod["spec"]["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)
}

#[test]
fn nothing_without_an_association_or_a_role() {
    let config = MutationConfig::default();
    assert!(run(&pod(), Some(&sa(&[])), false, &config).is_none());
    assert!(run(&pod(), None, false, &config).is_none());
    assert!(run(&pod(), Some(&sa(&[("role-arn", "")])), false, &config).is_none());
}

#[test]
fn irsa_adds_the_role_token_file_volume_and_mounts_everywhere() {
    let (mode, pod) = run(
        &pod(),
        Some(&sa(&[("role-arn", ROLE)])),
        false,
        &MutationConfig::default(),
    )
    .expect("mutated");
    assert_eq!(mode, Mode::Irsa);
    for container in ["init", "carts", "sidecar"] {
        let env = env(&pod, container);
        let tail: Vec<_> = env.iter().rev().take(2).rev().cloned().collect();
        assert_eq!(
            tail,
            [
                ("AWS_ROLE_ARN".to_owned(), ROLE.to_owned()),
                (
                    "AWS_WEB_IDENTITY_TOKEN_FILE".to_owned(),
                    "/var/run/secrets/eks.amazonaws.com/serviceaccount/token".to_owned()
                )
            ],
            "{container}"
        );
    }
    assert_eq!(
        names(&env(&pod, "carts"))[0],
        "PORT",
        "existing env comes first"
    );
    let mount = &pod["spec"]["containers"][1]["volumeMounts"][0];
    assert_eq!(
        mount,
        &json!({"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true})
    );
    assert_eq!(
        volume(&pod, "aws-iam-token").expect("volume"),
        &json!({"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}})
    );
    assert!(pod["metadata"]["labels"].is_null(), "no label for IRSA");
}

#[test]
fn region_and_regional_sts_come_first_in_the_reference_order() {
    let config = MutationConfig {
        aws_default_region: "eu-central-1".into(),
        sts_regional_endpoint: true,
        ..MutationConfig::default()
    };
    let (_, pod) = run(&pod(), Some(&sa(&[("role-arn", ROLE)])), false, &config).expect("mutated");
    assert_eq!(
        names(&env(&pod, "sidecar")),
        [
            "AWS_STS_REGIONAL_ENDPOINTS",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE"
        ]
    );
    // The ServiceAccount's annotation wins over the flag.
    let (_, pod) = run(
        &self::pod(),
        Some(&sa(&[
            ("role-arn", ROLE),
            ("sts-regional-endpoints", "false"),
        ])),
        false,
        &config,
    )
    .expect("mutated");
    assert!(!names(&env(&pod, "sidecar")).contains(&"AWS_STS_REGIONAL_ENDPOINTS"));
}

#[test]
fn audience_and_expiration_precedence() {
    let config = MutationConfig::default();
    let account = sa(&[
        ("role-arn", ROLE),
        ("audience", "my-aud"),
        ("token-expiration", "3600"),
    ]);
    let (_, mutated) = run(&pod(), Some(&account), false, &config).expect("mutated");
    let token = &volume(&mutated, "aws-iam-token").expect("volume")["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(token["audience"], "my-aud");
    assert_eq!(token["expirationSeconds"], 3600);
    // The pod's annotation wins over the ServiceAccount's; at least 600 s.
    let mut annotated = pod();
    annotated["metadata"]["annotations"] = json!({"eks.amazonaws.com/token-expiration": "100"});
    let (_, mutated) = run(&annotated, Some(&account), false, &config).expect("mutated");
    assert_eq!(
        volume(&mutated, "aws-iam-token").expect("volume")["projected"]["sources"][0]["serviceAccountToken"]
            ["expirationSeconds"],
        600
    );
    // Nonsense falls back to the next source.
    annotated["metadata"]["annotations"] = json!({"eks.amazonaws.com/token-expiration": "soon"});
    let (_, mutated) = run(&annotated, Some(&account), false, &config).expect("mutated");
    assert_eq!(
        volume(&mutated, "aws-iam-token").expect("volume")["projected"]["sources"][0]["serviceAccountToken"]
            ["expirationSeconds"],
        3600
    );
}

#[test]
fn pod_identity_first_with_its_label_volume_and_jittered_expiration() {
    let config = MutationConfig::default();
    let (mode, pod) =
        run(&pod(), Some(&sa(&[("role-arn", ROLE)])), true, &config).expect("mutated");
    assert_eq!(
        mode,
        Mode::PodIdentity,
        "an association wins over the role annotation"
    );
    assert_eq!(
        pod["metadata"]["labels"]["eks.amazonaws.com/pod-identity"],
        "enabled"
    );
    assert_eq!(
        &env(&pod, "carts")[1..],
        [
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_owned(),
                "http://169.254.170.23/v1/credentials".to_owned()
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".to_owned(),
                "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
                    .to_owned()
            )
        ]
    );
    assert_eq!(
        volume(&pod, "eks-pod-identity-token").expect("volume"),
        &json!({"name": "eks-pod-identity-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "pods.eks.amazonaws.com", "expirationSeconds": JITTER, "path": "eks-pod-identity-token"}}]}})
    );
    assert!(volume(&pod, "aws-iam-token").is_none());
    // An explicit, non-default expiration is kept.
    let (_, pod) = run(
        &self::pod(),
        Some(&sa(&[("token-expiration", "7200")])),
        true,
        &config,
    )
    .expect("mutated");
    assert_eq!(
        volume(&pod, "eks-pod-identity-token").expect("volume")["projected"]["sources"][0]["serviceAccountToken"]
            ["expirationSeconds"],
        7200
    );
    // IPv6 clusters reach the agent at fd00:ec2::23.
    let v6 = MutationConfig {
        container_credentials_full_uri: podiam_webhook::FULL_URI_IPV6.into(),
        ..MutationConfig::default()
    };
    let (_, pod) = run(&self::pod(), None, true, &v6).expect("mutated");
    assert!(env(&pod, "carts").contains(&(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_owned(),
        "http://[fd00:ec2::23]/v1/credentials".to_owned()
    )));
}

#[test]
fn the_sts_endpoint_goes_to_irsa_containers_that_name_none() {
    let config = MutationConfig {
        sts_endpoint_url: "http://podiam.podiam-system.svc:4599".to_owned(),
        ..MutationConfig::default()
    };
    let mut pod = pod();
    pod["spec"]["containers"][1]["env"] =
        json!([{"name": "AWS_ENDPOINT_URL", "value": "http://localstack:4566"}]);
    let (_, irsa) = run(&pod, Some(&sa(&[("role-arn", ROLE)])), false, &config).expect("IRSA");
    let carts = env(&irsa, "carts");
    assert!(carts.contains(&(
        "AWS_ENDPOINT_URL_STS".to_owned(),
        "http://podiam.podiam-system.svc:4599".to_owned()
    )));
    assert!(
        names(&carts)
            .iter()
            .position(|n| *n == "AWS_ENDPOINT_URL_STS")
            < names(&carts).iter().position(|n| *n == "AWS_ROLE_ARN")
    );
    assert!(!names(&env(&irsa, "sidecar")).contains(&"AWS_ENDPOINT_URL_STS"));
    assert!(names(&env(&irsa, "init")).contains(&"AWS_ENDPOINT_URL_STS"));
    // Pod Identity needs no STS endpoint: the agent hands out credentials.
    let (_, pia) = run(&pod, Some(&sa(&[("role-arn", ROLE)])), true, &config).expect("PIA");
    assert!(!names(&env(&pia, "carts")).contains(&"AWS_ENDPOINT_URL_STS"));
    // And without the flag, the reference's variables only.
    let (_, plain) = run(
        &pod,
        Some(&sa(&[("role-arn", ROLE)])),
        false,
        &MutationConfig::default(),
    )
    .expect("IRSA");
    assert!(!names(&env(&plain, "carts")).contains(&"AWS_ENDPOINT_URL_STS"));
}

#[test]
fn fargate_pods_get_no_pod_identity() {
    let mut fargate = pod();
    fargate["metadata"]["labels"] = json!({"eks.amazonaws.com/fargate-profile": "fp-default"});
    assert!(run(&fargate, Some(&sa(&[])), true, &MutationConfig::default()).is_none());
    let (mode, _) = run(
        &fargate,
        Some(&sa(&[("role-arn", ROLE)])),
        true,
        &MutationConfig::default(),
    )
    .expect("irsa");
    assert_eq!(mode, Mode::Irsa);
}

#[test]
fn skipped_and_already_configured_containers() {
    let mut p = pod();
    p["metadata"]["annotations"] = json!({"eks.amazonaws.com/skip-containers": "sidecar, init"});
    p["spec"]["containers"][0]["env"] = json!([
        {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::1:role/mine"},
        {"name": "AWS_REGION", "value": "us-west-2"},
        {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "legacy"}
    ]);
    let config = MutationConfig {
        aws_default_region: "eu-central-1".into(),
        ..MutationConfig::default()
    };
    let (_, mutated) = run(&p, Some(&sa(&[("role-arn", ROLE)])), false, &config).expect("mutated");
    assert_eq!(
        mutated["spec"]["containers"][0], p["spec"]["containers"][0],
        "fully configured: untouched"
    );
    assert_eq!(
        mutated["spec"]["containers"][1], p["spec"]["containers"][1],
        "skipped"
    );
    assert_eq!(
        mutated["spec"]["initContainers"][0], p["spec"]["initContainers"][0],
        "skipped"
    );
    // Credentials present but no region: only the region is added.
    p["spec"]["containers"][0]["env"] =
        json!([{"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/mine"}]);
    let (_, mutated) = run(&p, Some(&sa(&[("role-arn", ROLE)])), false, &config).expect("mutated");
    assert_eq!(
        names(&env(&mutated, "carts")),
        [
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_DEFAULT_REGION",
            "AWS_REGION"
        ]
    );
}

#[test]
fn existing_volumes_and_mounts_are_kept() {
    let mut p = pod();
    p["spec"]["volumes"] = json!([{"name": "aws-iam-token", "emptyDir": {}}]);
    p["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "aws-iam-token", "mountPath": "/custom"}]);
    let (_, mutated) = run(
        &p,
        Some(&sa(&[("role-arn", ROLE)])),
        false,
        &MutationConfig::default(),
    )
    .expect("mutated");
    assert_eq!(
        mutated["spec"]["volumes"],
        json!([{"name": "aws-iam-token", "emptyDir": {}}])
    );
    assert_eq!(
        mutated["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "aws-iam-token", "mountPath": "/custom"}])
    );
}

#[test]
fn windows_pods_get_windows_paths() {
    let mut p = pod();
    p["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "windows"});
    let (_, mutated) = run(
        &p,
        Some(&sa(&[("role-arn", ROLE)])),
        false,
        &MutationConfig::default(),
    )
    .expect("mutated");
    assert!(env(&mutated, "carts").contains(&(
        "AWS_WEB_IDENTITY_TOKEN_FILE".to_owned(),
        "C:\\var\\run\\secrets\\eks.amazonaws.com\\serviceaccount\\token".to_owned()
    )));
    assert_eq!(
        mutated["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/eks.amazonaws.com/serviceaccount",
        "the mountPath is unchanged"
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z/._-]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("spec".to_owned()),
                        Just("containers".to_owned()),
                        Just("initContainers".to_owned()),
                        Just("env".to_owned()),
                        Just("name".to_owned()),
                        Just("volumes".to_owned()),
                        Just("volumeMounts".to_owned()),
                        Just("metadata".to_owned()),
                        Just("labels".to_owned()),
                        Just("annotations".to_owned()),
                        Just("nodeSelector".to_owned()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..5,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_pod_is_mutated_without_panic_and_the_patch_applies(pod in json_value(), pi in any::<bool>()) {
            let config = MutationConfig::default();
            let account = sa(&[("role-arn", ROLE), ("token-expiration", "1")]);
            if let Some(m) = mutate(&pod, &Context { service_account: Some(&account), has_association: pi, config: &config, jittered_expiration: JITTER }) {
                let mut patched = pod.clone();
                prop_assert!(json_patch::patch(&mut patched, &m.patch).is_ok());
                prop_assert_eq!(patched, m.pod);
            }
        }
    }
}
