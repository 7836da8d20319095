//! The AWS SDK for JavaScript v3 (npm, pinned in `js/package-lock.json`), unmodified, through
//! its default credential chain in processes that `podiam exec` runs as pods of `podiam dev
//! --scenario eks-workshop`: IRSA (a web identity token file), EKS Pod Identity (the container
//! credentials endpoint), the node role through IMDSv2 for a pod with no identity, and DynamoDB
//! through the gateway. The clients get no credentials, region or endpoint in code: only what
//! the pod's environment says. `js/default_chain.mjs` prints the caller, the links of the chain
//! the SDK tried (its own debug lines) and the SDK's record of the credentials' source.
//!
//! Each path has a refusal that fails if podiam (or `podiam exec`) lets it through: a trust
//! policy for another ServiceAccount, a token bound to another node, no IMDS (nothing else in
//! the pod's environment may give credentials), and the node role at the gateway.
//!
//! Needs `npm ci` in `crates/podiam-e2e/js` (`scripts/test` runs it) and Node.js on `PATH`.

#![expect(
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test fixtures: a missing JSON member is Null and fails the assertion that follows; \
              an unexpected answer stops the test with it"
)]

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use podiam_e2e::{DevStack, Run, podiam_bin, workspace};
use serde_json::{Value, json};

const ACCOUNT: &str = "637423329338";
const TABLE: &str = "eks-workshop-carts";
/// The node role's session, as `podiam dev` serves it through IMDS.
const NODE_ARN: &str = "arn:aws:sts::637423329338:assumed-role/eks-workshop-node/podiam-dev-node";

/// The link of the default chain that answered for IRSA.
const TOKEN_FILE_LINK: &str = "defaultProvider::fromTokenFile";
/// The link for `AWS_CONTAINER_CREDENTIALS_FULL_URI` (Pod Identity).
const CONTAINER_LINK: &str = "remoteProvider::fromHttp/fromContainerMetadata";
/// The link for IMDS.
const IMDS_LINK: &str = "remoteProvider::fromInstanceMetadata";

/// A pod of the workshop's carts ServiceAccount with a Pod Identity association.
const PIA_POD: [&str; 4] = ["--namespace", "carts", "--service-account", "carts"];
/// A pod with neither an annotation nor an association: the node role through IMDS.
const NO_IDENTITY_POD: [&str; 4] = ["--namespace", "default", "--service-account", "orders"];

/// `crates/podiam-e2e/js/default_chain.mjs`, with the SDK installed beside it.
fn script() -> String {
    let js = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js");
    assert!(
        js.join("node_modules/@aws-sdk/client-sts").is_dir()
            && js.join("node_modules/@aws-sdk/client-dynamodb").is_dir(),
        "the AWS SDK for JavaScript is not installed: run `npm ci` in {} (scripts/test does)",
        js.display()
    );
    js.join("default_chain.mjs").display().to_string()
}

/// `podiam exec <pod> -- node default_chain.mjs <args>` from the README's shell, with `extra`
/// variables set in that shell (`podiam exec` passes them on to the pod).
fn node(stack: &DevStack, pod: &[&str], args: &[&str], extra: &[(&str, &str)]) -> Run {
    let script = script();
    let mut exec = vec!["exec"];
    exec.extend_from_slice(pod);
    exec.extend(["--", "node", script.as_str()]);
    exec.extend_from_slice(args);
    let shell = extra
        .iter()
        .fold(stack.shell(), |shell, (name, value)| shell.set(name, value));
    shell.command_of(&podiam_bin(), &exec)
}

/// The links of the chain the SDK tried, in order; the last one answered.
fn chain(credentials: &Value) -> Vec<&str> {
    credentials["chain"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The links the failing client tried, from the script's `chain:` line on stderr.
fn failed_chain(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("chain: "))
        .map(|l| l.split(", ").collect())
        .unwrap_or_default()
}

/// `host:port` of a `http://host:port[/path]` URL.
fn host_of(url: &str) -> &str {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// Deletes the scenario's carts/carts association, so that the annotation decides (as in the
/// workshop's IRSA lab); with it, `podiam exec` gives the pod Pod Identity.
fn delete_carts_association(stack: &DevStack) {
    let list = stack.carts_associations();
    let id = list["associations"][0]["associationId"]
        .as_str()
        .unwrap_or_else(|| panic!("the scenario's association is listed: {list}"))
        .to_owned();
    stack
        .shell()
        .aws(&[
            "eks",
            "delete-pod-identity-association",
            "--cluster-name",
            "eks-workshop",
            "--association-id",
            &id,
        ])
        .ok();
}

/// The workshop's annotated carts ServiceAccount (`examples/eks-workshop/`).
fn workshop_irsa_sa() -> String {
    workspace()
        .join("examples/eks-workshop/carts-serviceaccount.yaml")
        .display()
        .to_string()
}

/// An IRSA caller: `aws-sdk-js-session-<Date.now()>` (the SDK's default session name, where
/// boto3 has `botocore-session-<seconds>`), taken while the test ran.
fn assert_irsa_caller(who: &Value, started_ms: u128) {
    let prefix = format!(
        "arn:aws:sts::{ACCOUNT}:assumed-role/eks-workshop-carts-dynamo-irsa/aws-sdk-js-session-"
    );
    let arn = who["Arn"].as_str().unwrap_or_default();
    let millis = arn
        .strip_prefix(&prefix)
        .and_then(|ms| ms.parse::<u128>().ok())
        .unwrap_or_else(|| panic!("not the IRSA role's session: {who}"));
    assert!(
        (started_ms..=now_ms()).contains(&millis),
        "the session name's time {millis} is not the test's: {who}"
    );
    let session = arn.rsplit('/').next().unwrap_or_default();
    let user_id = who["UserId"].as_str().unwrap_or_default();
    assert!(
        user_id.starts_with("AROA") && user_id.ends_with(&format!(":{session}")),
        "{who}"
    );
    assert_eq!(who["Account"], ACCOUNT, "{who}");
}

/// A Pod Identity caller: `eks-<cluster>-<pod>-<uuid>` cut to 64 characters, as EKS Auth names
/// the session (the pod is `carts-exec`, `podiam exec`'s default name).
fn assert_pod_identity_caller(who: &Value) {
    let prefix = format!(
        "arn:aws:sts::{ACCOUNT}:assumed-role/eks-workshop-carts-dynamo-pia/eks-eks-workshop-carts-exec-"
    );
    let arn = who["Arn"].as_str().unwrap_or_default();
    let uuid = arn
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("not the Pod Identity role's session: {who}"));
    let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
    assert!(
        groups == [8, 4, 4, 4, 12] && uuid.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
        "not a UUID: {uuid}"
    );
    let session = arn.rsplit('/').next().unwrap_or_default();
    assert_eq!(session.len(), 64, "{session}");
    assert!(
        who["UserId"]
            .as_str()
            .is_some_and(|id| id.starts_with("AROA") && id.ends_with(&format!(":{session}"))),
        "{who}"
    );
}

/// Session credentials with the SDK's expectations: temporary keys with a session token.
fn assert_session_credentials(credentials: &Value) {
    assert_eq!(credentials["accessKeyIdPrefix"], "ASIA", "{credentials}");
    assert_eq!(credentials["hasSessionToken"], true, "{credentials}");
    assert!(credentials["expiration"].is_string(), "{credentials}");
}

#[test]
fn irsa_through_the_default_chain_of_the_js_sdk() {
    let stack = DevStack::start();
    delete_carts_association(&stack);
    let sa = workshop_irsa_sa();
    let started = now_ms();
    let who = node(&stack, &["-f", &sa], &["identity"], &[]).json();
    assert_irsa_caller(&who, started);
    assert_eq!(who["region"], "eu-central-1", "{who}");
    // The web identity link answered, and the SDK says so: the token file from the environment
    // and AssumeRoleWithWebIdentity.
    assert_eq!(chain(&who).last(), Some(&TOKEN_FILE_LINK), "{who}");
    assert_eq!(who["source"]["CREDENTIALS_ENV_VARS_STS_WEB_ID_TOKEN"], "h");
    assert_eq!(who["source"]["CREDENTIALS_STS_ASSUME_ROLE_WEB_ID"], "k");
    assert_session_credentials(&who);
    // GetCallerIdentity went to podiam's STS (AWS_ENDPOINT_URL_STS, the server), not to AWS.
    assert_eq!(
        who["hosts"],
        json!([host_of(stack.var("AWS_ENDPOINT_URL"))]),
        "{who}"
    );
    println!("{who:#}");

    // The same role annotated on another ServiceAccount: its trust policy names
    // system:serviceaccount:carts:carts only. The chain stops at the token file; it does not
    // fall back to the node's role.
    let catalog = stack.write(
        "catalog-sa.yaml",
        &format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: catalog\n  namespace: catalog\n  annotations:\n    eks.amazonaws.com/role-arn: arn:aws:iam::{ACCOUNT}:role/eks-workshop-carts-dynamo-irsa\n"),
    );
    let catalog = catalog.display().to_string();
    let refused = node(&stack, &["-f", &catalog], &["identity"], &[]).fails_with("AccessDenied");
    assert!(
        refused.contains("(AccessDenied) Not authorized to perform sts:AssumeRoleWithWebIdentity"),
        "{refused}"
    );
    assert_eq!(failed_chain(&refused).last(), Some(&TOKEN_FILE_LINK));
}

#[test]
fn pod_identity_through_the_default_chain_of_the_js_sdk() {
    let stack = DevStack::start();
    let who = node(&stack, &PIA_POD, &["identity"], &[]).json();
    assert_pod_identity_caller(&who);
    // The container credentials link answered (the agent at AWS_CONTAINER_CREDENTIALS_FULL_URI
    // with the token file's token), and the SDK records the HTTP provider as the source.
    assert_eq!(chain(&who).last(), Some(&CONTAINER_LINK), "{who}");
    assert_eq!(who["source"], json!({"CREDENTIALS_HTTP": "z"}), "{who}");
    assert_session_credentials(&who);
    assert_eq!(
        who["hosts"],
        json!([host_of(stack.var("AWS_ENDPOINT_URL"))]),
        "{who}"
    );
    println!("{who:#}");

    // A pod whose token is bound to another node: the agent (on podiam-dev-node) refuses it,
    // and the SDK gets no credentials. It must not end up with the node's role from IMDS.
    let elsewhere = [
        PIA_POD[0],
        PIA_POD[1],
        PIA_POD[2],
        PIA_POD[3],
        "--pod-name",
        "carts-elsewhere",
        "--node-name",
        "another-node",
    ];
    let refused =
        node(&stack, &elsewhere, &["identity"], &[]).fails_with("CredentialsProviderError");
    assert_eq!(
        failed_chain(&refused).last(),
        Some(&CONTAINER_LINK),
        "{refused}"
    );
    eventually(&stack, "the agent's refusal in its log", |output| {
        output.lines().any(|l| {
            l.contains(r#"pod="carts-elsewhere""#)
                && l.contains("The token is bound to another node.")
        })
    });
}

#[test]
fn the_node_role_through_imdsv2_for_a_pod_without_an_identity() {
    let stack = DevStack::start();
    // IMDSv1 is switched off in the SDK: the credentials come through a session token or not
    // at all.
    let who = node(
        &stack,
        &NO_IDENTITY_POD,
        &["identity"],
        &[("AWS_EC2_METADATA_V1_DISABLED", "true")],
    )
    .json();
    assert_eq!(who["Arn"], NODE_ARN, "{who}");
    assert!(
        who["UserId"]
            .as_str()
            .is_some_and(|id| id.starts_with("AROA") && id.ends_with(":podiam-dev-node")),
        "{who}"
    );
    assert_eq!(chain(&who).last(), Some(&IMDS_LINK), "{who}");
    assert_eq!(who["imdsV1Fallback"], false, "{who}");
    // The SDK keeps no source record for IMDS credentials (only the chain's log says it).
    assert_eq!(who["source"], json!({}), "{who}");
    assert_session_credentials(&who);
    println!("{who:#}");

    // Without IMDS nothing else in the pod's environment gives credentials: the env file's
    // root keys in the calling shell do not reach the pod.
    let refused = node(
        &stack,
        &NO_IDENTITY_POD,
        &["identity"],
        &[("AWS_EC2_METADATA_DISABLED", "true")],
    )
    .fails_with("CredentialsProviderError");
    assert!(
        refused.contains("Could not load credentials from any providers"),
        "{refused}"
    );
}

/// Waits (up to 10 s) until `podiam dev`'s output, read as it is printed, satisfies `done`.
fn eventually(stack: &DevStack, what: &str, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&stack.output()) {
        assert!(
            Instant::now() < deadline,
            "no {what} in podiam dev's output:\n{}",
            stack.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The audit lines (`audit: {json}`) in `podiam dev`'s output.
fn audit(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter_map(|l| l.split_once(" audit: ").map(|(_, json)| json))
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect()
}

#[test]
fn dynamodb_through_the_gateway_with_the_js_sdk() {
    let mut stack = DevStack::start();
    let gateway = host_of(stack.var("PODIAM_GATEWAY")).to_owned();
    let expected_item = json!({
        "customerId": {"S": "js-sdk"},
        "itemId": {"S": "sock"},
        "quantity": {"N": "2"}
    });

    // Pod Identity: the role's DynamoDB policy allows the table; every request goes to the
    // gateway (AWS_ENDPOINT_URL_DYNAMODB), which authorizes it as the pod's session.
    let out = node(
        &stack,
        &PIA_POD,
        &["dynamodb", TABLE, "--create-table"],
        &[],
    )
    .json();
    assert_pod_identity_caller(&out["caller"]);
    assert_eq!(out["item"], expected_item, "{out}");
    let dynamodb = &out["dynamodb"];
    assert_eq!(chain(dynamodb).last(), Some(&CONTAINER_LINK), "{out}");
    let hosts = dynamodb["hosts"].as_array().cloned().unwrap_or_default();
    assert!(
        hosts.len() >= 3 && hosts.iter().all(|h| *h == gateway.as_str()),
        "not all through the gateway {gateway}: {out}"
    );
    let caller = out["caller"]["Arn"].clone();
    eventually(
        &stack,
        "gateway decisions for the pod's session",
        |output| {
            let allowed: Vec<Value> = audit(output)
                .into_iter()
                .filter(|a| a["event"] == "request_allowed" && a["principal"] == caller)
                .map(|a| a["operation"].clone())
                .collect();
            allowed.contains(&json!("PutItem")) && allowed.contains(&json!("GetItem"))
        },
    );

    // IRSA: the same table, read back and written as the IRSA role's session.
    delete_carts_association(&stack);
    let sa = workshop_irsa_sa();
    let started = now_ms();
    let out = node(&stack, &["-f", &sa], &["dynamodb", TABLE], &[]).json();
    assert_irsa_caller(&out["caller"], started);
    assert_eq!(
        chain(&out["dynamodb"]).last(),
        Some(&TOKEN_FILE_LINK),
        "{out}"
    );
    assert_eq!(out["item"], expected_item, "{out}");

    // No identity: the node role, which the gateway refuses with DynamoDB's own error.
    let denied = node(&stack, &NO_IDENTITY_POD, &["dynamodb", TABLE], &[])
        .fails_with("AccessDeniedException");
    assert!(
        denied.contains(&format!(
            "(AccessDeniedException) User: {NODE_ARN} is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:eu-central-1:{ACCOUNT}:table/{TABLE} because no identity-based policy allows the dynamodb:PutItem action"
        )),
        "{denied}"
    );
    assert_eq!(failed_chain(&denied).last(), Some(&IMDS_LINK), "{denied}");
    assert!(stack.stop().success(), "{}", stack.output());
}
