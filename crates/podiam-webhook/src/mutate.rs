//! Pod + its ServiceAccount + whether a pod identity association exists → the mutated pod and
//! the JSON Patch to it, rule by rule as the reference webhook (`eks-components.md` §2).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::config::{
    DEFAULT_EXPIRATION, IRSA_TOKEN_PATH, IRSA_VOLUME, MIN_EXPIRATION, MutationConfig,
};

/// What the webhook knows of a ServiceAccount: its name, namespace and annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccountInfo {
    /// The name.
    pub name: String,
    /// The namespace.
    pub namespace: String,
    /// Its annotations (only the prefixed ones matter).
    pub annotations: BTreeMap<String, String>,
}

/// Which credentials a pod gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// EKS Pod Identity: the agent at 169.254.170.23.
    PodIdentity,
    /// IRSA: a web identity token and a role ARN.
    Irsa,
}

impl Mode {
    /// `pod-identity` or `irsa`, for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PodIdentity => "pod-identity",
            Self::Irsa => "irsa",
        }
    }
}

/// A mutation: the mode, the patch, and the pod after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// The mode.
    pub mode: Mode,
    /// The JSON Patch (RFC 6902) from the pod to the mutated pod.
    pub patch: json_patch::Patch,
    /// The mutated pod.
    pub pod: Value,
}

/// The inputs of a mutation besides the pod.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The pod's ServiceAccount, when known.
    pub service_account: Option<&'a ServiceAccountInfo>,
    /// A pod identity association exists for the pod's namespace and ServiceAccount.
    pub has_association: bool,
    /// The configuration.
    pub config: &'a MutationConfig,
    /// A random token lifetime in [79200, 86400] seconds, for Pod Identity pods that would get
    /// the default (it spreads their refreshes).
    pub jittered_expiration: i64,
}

fn annotation<'a>(map: Option<&'a Map<String, Value>>, key: &str) -> Option<&'a str> {
    map?.get(key)?.as_str()
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "t" => Some(true),
        "false" | "0" | "f" => Some(false),
        _ => None,
    }
}

fn parse_expiration(text: Option<&str>) -> Option<i64> {
    text?
        .trim()
        .parse::<i64>()
        .ok()
        .map(|e| e.max(MIN_EXPIRATION))
}

/// `/var/run/secrets/x/token` as a Windows path: `C:\var\run\secrets\x\token`.
fn windows_path(path: &str) -> String {
    format!("C:{}", path.replace('/', "\\"))
}

fn is_windows(pod: &Value) -> bool {
    let selector = pod.pointer("/spec/nodeSelector").and_then(Value::as_object);
    ["kubernetes.io/os", "beta.kubernetes.io/os"]
        .iter()
        .any(|k| annotation(selector, k) == Some("windows"))
}

/// The credential variables and volume of a mode.
struct Plan {
    mode: Mode,
    credential: [(String, String); 2],
    region: Option<String>,
    regional_sts: bool,
    /// `AWS_ENDPOINT_URL_STS`, for IRSA when configured.
    sts_endpoint: Option<String>,
    volume: String,
    mount_path: String,
    audience: String,
    expiration: i64,
    token_file_name: String,
}

fn env_has(env: &[Value], name: &str) -> bool {
    env.iter()
        .any(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

fn env_var(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value })
}

/// Mutates one container (or init container) in place; true if it changed.
fn mutate_container(container: &mut Value, plan: &Plan) -> bool {
    let Some(object) = container.as_object_mut() else {
        return false;
    };
    let env: Vec<Value> = object
        .get("env")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_credential = plan.credential.iter().any(|(n, _)| env_has(&env, n));
    let has_region = env_has(&env, "AWS_REGION") || env_has(&env, "AWS_DEFAULT_REGION");
    let has_regional = env_has(&env, "AWS_STS_REGIONAL_ENDPOINTS");
    if has_credential && has_region && has_regional {
        return false;
    }
    let mut added = Vec::new();
    if plan.regional_sts && !has_regional {
        added.push(env_var("AWS_STS_REGIONAL_ENDPOINTS", "regional"));
    }
    if let Some(region) = &plan.region
        && !has_region
    {
        added.push(env_var("AWS_DEFAULT_REGION", region));
        added.push(env_var("AWS_REGION", region));
    }
    // A container that names its own endpoint keeps it.
    if let Some(url) = &plan.sts_endpoint
        && !env_has(&env, "AWS_ENDPOINT_URL_STS")
        && !env_has(&env, "AWS_ENDPOINT_URL")
    {
        added.push(env_var("AWS_ENDPOINT_URL_STS", url));
    }
    if !has_credential {
        for (name, value) in &plan.credential {
            added.push(env_var(name, value));
        }
    }
    let mut changed = false;
    if !added.is_empty() {
        let mut env = env;
        env.extend(added);
        object.insert("env".to_owned(), Value::Array(env));
        changed = true;
    }
    let mounts: Vec<Value> = object
        .get("volumeMounts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mounted = mounts
        .iter()
        .any(|m| m.get("name").and_then(Value::as_str) == Some(plan.volume.as_str()));
    if !mounted {
        let mut mounts = mounts;
        mounts.push(json!({
            "name": plan.volume,
            "mountPath": plan.mount_path,
            "readOnly": true,
        }));
        object.insert("volumeMounts".to_owned(), Value::Array(mounts));
        changed = true;
    }
    changed
}

/// The mutation of `pod`, or `None` when it gets nothing (no association, no role ARN).
pub fn mutate(pod: &Value, context: &Context<'_>) -> Option<Mutation> {
    let config = context.config;
    let prefix = &config.annotation_prefix;
    let sa_annotations: Map<String, Value> = context
        .service_account
        .map(|sa| {
            sa.annotations
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        })
        .unwrap_or_default();
    let sa = Some(&sa_annotations);
    let pod_annotations = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object);
    let pod_labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
    let key = |name: &str| format!("{prefix}/{name}");

    let role_arn = annotation(sa, &key("role-arn")).unwrap_or_default();
    // EKS does not run Pod Identity on Fargate.
    let fargate = annotation(pod_labels, "eks.amazonaws.com/fargate-profile").is_some();
    let mode = if context.has_association && !fargate {
        Mode::PodIdentity
    } else if !role_arn.is_empty() {
        Mode::Irsa
    } else {
        return None;
    };
    let regional_sts = annotation(sa, &key("sts-regional-endpoints"))
        .and_then(parse_bool)
        .unwrap_or(config.sts_regional_endpoint);
    let mut expiration = parse_expiration(annotation(pod_annotations, &key("token-expiration")))
        .or_else(|| parse_expiration(annotation(sa, &key("token-expiration"))))
        .unwrap_or_else(|| config.token_expiration.max(MIN_EXPIRATION));
    let windows = is_windows(pod);
    let region = (!config.aws_default_region.is_empty()).then(|| config.aws_default_region.clone());
    let plan = match mode {
        Mode::PodIdentity => {
            if expiration == DEFAULT_EXPIRATION {
                expiration = context.jittered_expiration;
            }
            let file = format!(
                "{}/{}",
                config.container_credentials_token_mount_path,
                config.container_credentials_token_path
            );
            Plan {
                mode,
                credential: [
                    (
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_owned(),
                        config.container_credentials_full_uri.clone(),
                    ),
                    (
                        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".to_owned(),
                        if windows { windows_path(&file) } else { file },
                    ),
                ],
                region,
                regional_sts,
                sts_endpoint: None,
                volume: config.container_credentials_token_volume_name.clone(),
                mount_path: config.container_credentials_token_mount_path.clone(),
                audience: config.container_credentials_audience.clone(),
                expiration,
                token_file_name: config.container_credentials_token_path.clone(),
            }
        }
        Mode::Irsa => {
            let file = format!("{}/{IRSA_TOKEN_PATH}", config.token_mount_path);
            Plan {
                mode,
                credential: [
                    ("AWS_ROLE_ARN".to_owned(), role_arn.to_owned()),
                    (
                        "AWS_WEB_IDENTITY_TOKEN_FILE".to_owned(),
                        if windows { windows_path(&file) } else { file },
                    ),
                ],
                region,
                regional_sts,
                sts_endpoint: (!config.sts_endpoint_url.is_empty())
                    .then(|| config.sts_endpoint_url.clone()),
                volume: IRSA_VOLUME.to_owned(),
                mount_path: config.token_mount_path.clone(),
                audience: annotation(sa, &key("audience"))
                    .filter(|a| !a.is_empty())
                    .unwrap_or(&config.token_audience)
                    .to_owned(),
                expiration,
                token_file_name: IRSA_TOKEN_PATH.to_owned(),
            }
        }
    };

    let skipped: Vec<&str> = annotation(pod_annotations, &key("skip-containers"))
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut mutated = pod.clone();
    for list in ["initContainers", "containers"] {
        let Some(containers) = mutated
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for container in containers.iter_mut() {
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if skipped.contains(&name) {
                continue;
            }
            mutate_container(container, &plan);
        }
    }
    add_volume(&mut mutated, &plan);
    if plan.mode == Mode::PodIdentity
        && let Some(metadata) = mutated.get_mut("metadata").and_then(Value::as_object_mut)
    {
        let labels = metadata
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(key("pod-identity"), Value::String("enabled".to_owned()));
        }
    }
    let patch = json_patch::diff(pod, &mutated);
    Some(Mutation {
        mode: plan.mode,
        patch,
        pod: mutated,
    })
}

/// The projected token volume, unless one of that name exists.
fn add_volume(pod: &mut Value, plan: &Plan) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let volumes = spec
        .entry("volumes")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(volumes) = volumes.as_array_mut() else {
        return;
    };
    if volumes
        .iter()
        .any(|v| v.get("name").and_then(Value::as_str) == Some(plan.volume.as_str()))
    {
        return;
    }
    volumes.push(json!({
        "name": plan.volume,
        "projected": {
            "sources": [{
                "serviceAccountToken": {
                    "audience": plan.audience,
                    "expirationSeconds": plan.expiration,
                    "path": plan.token_file_name,
                }
            }]
        }
    }));
}
