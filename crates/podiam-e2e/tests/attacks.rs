//! The attacks of the security review, against the real server with real clients (the AWS CLI
//! and podiam's own CLI), as a low-privilege principal or with no credentials at all. Each
//! finding is refused with AWS's error code; what held up before is checked to keep holding.
//! docs/threat-model.md maps every test here to the boundary it defends. (Tests elsewhere
//! cover what needs more machinery: slow clients in `slow_clients`, etcd records in
//! `etcd_replicas`, IMDS and the agent in network namespaces in `link_local`, the webhook over
//! TLS in `podiam-webhook`.)

#![expect(
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test fixtures fail loudly"
)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use podiam_e2e::{ClientEnv, Server, podiam_bin};
use serde_json::Value;

const VICTIM_ISSUER: &str = "https://oidc.victim.example/id/0123456789ABCDEF";
const ADMIN_TRUST_CONDITION: &str = "system:serviceaccount:ops:admin";

/// A user with an inline policy and a key; the AWS CLI environment signed as them.
fn user(server: &Server, root: &ClientEnv, name: &str, policy: &str, tags: &[&str]) -> ClientEnv {
    let mut create = vec!["iam", "create-user", "--user-name", name];
    if !tags.is_empty() {
        create.push("--tags");
        create.extend_from_slice(tags);
    }
    root.aws(&create).ok();
    root.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        name,
        "--policy-name",
        "only",
        "--policy-document",
        policy,
    ])
    .ok();
    let key = root
        .aws(&["iam", "create-access-key", "--user-name", name])
        .json();
    ClientEnv::keys(
        server,
        key["AccessKey"]["AccessKeyId"].as_str().unwrap_or_default(),
        key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap_or_default(),
        None,
    )
}

/// An RS256 key of the attacker's own, and the JWKS that publishes it.
fn own_key(dir: &Path, issuer: &str) -> (PathBuf, PathBuf) {
    let key = dir.join("mallory.pem");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(podiam_bin())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("podiam: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&[
        "keys",
        "generate",
        "--alg",
        "RS256",
        "--out",
        &key.display().to_string(),
    ]);
    let docs = dir.join("docs");
    run(&[
        "token",
        "discovery",
        "--key",
        &key.display().to_string(),
        "--issuer",
        issuer,
        "--out-dir",
        &docs.display().to_string(),
    ]);
    (key, docs.join("openid/v1/jwks"))
}

fn mint(
    key: &Path,
    issuer: &str,
    namespace: &str,
    sa: &str,
    audience: &str,
    node: Option<&str>,
) -> String {
    let mut args = vec![
        "token".to_owned(),
        "mint".to_owned(),
        "--key".to_owned(),
        key.display().to_string(),
        "--issuer".to_owned(),
        issuer.to_owned(),
        "--namespace".to_owned(),
        namespace.to_owned(),
        "--service-account".to_owned(),
        sa.to_owned(),
        "--audience".to_owned(),
        audience.to_owned(),
    ];
    if let Some(node) = node {
        args.extend([
            "--pod-name".to_owned(),
            "p".to_owned(),
            "--node-name".to_owned(),
            node.to_owned(),
        ]);
    }
    let out = std::process::Command::new(podiam_bin())
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("podiam token mint: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The IAM OIDC provider of `issuer` and an administrator role trusting it.
fn admin_role_trusting(root: &ClientEnv, issuer: &str, role: &str) {
    root.aws(&[
        "iam",
        "create-open-id-connect-provider",
        "--url",
        issuer,
        "--client-id-list",
        "sts.amazonaws.com",
    ])
    .ok();
    let host_path = issuer.split_once("://").map_or(issuer, |(_, r)| r);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::000000000000:oidc-provider/{host_path}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{host_path}:sub":"{ADMIN_TRUST_CONDITION}"}}}}}}]}}"#
    );
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        role,
        "--assume-role-policy-document",
        &trust,
    ])
    .ok();
    root.aws(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        role,
        "--policy-arn",
        "arn:aws:iam::aws:policy/AdministratorAccess",
    ])
    .ok();
}

fn assume_with(env: &ClientEnv, role: &str, token: &str) -> podiam_e2e::Run {
    env.aws(&[
        "sts",
        "assume-role-with-web-identity",
        "--role-arn",
        &format!("arn:aws:iam::000000000000:role/{role}"),
        "--role-session-name",
        "attacker",
        "--web-identity-token",
        token,
    ])
}

/// Finding 1: `eks:CreateCluster` alone cannot bring keys for an issuer URL (any spelling of
/// it), so a self-signed JWT never becomes a role that trusts that URL's provider.
#[test]
fn f1_create_cluster_alone_cannot_take_over_an_issuer() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    admin_role_trusting(&root, VICTIM_ISSUER, "admin");
    let mallory = user(
        &server,
        &root,
        "mallory",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"eks:CreateCluster","Resource":"arn:aws:eks:us-east-1:000000000000:cluster/evil*"}]}"#,
        &[],
    );
    let (key, jwks) = own_key(server.dir(), VICTIM_ISSUER);
    let jwks_arg = jwks.display().to_string();
    for (i, spelling) in [
        VICTIM_ISSUER.to_owned(),
        VICTIM_ISSUER.replace("oidc.victim", "OIDC.Victim"),
        VICTIM_ISSUER.replace("/id/", "//id/"),
        VICTIM_ISSUER.replace(".example/", ".example:443/"),
        "https://oidc.nobody-uses-this.example/id/X".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        let name = format!("evil{i}");
        mallory
            .command_of(
                &podiam_bin(),
                &[
                    "cluster",
                    "create",
                    "--name",
                    &name,
                    "--external-issuer",
                    spelling,
                    "--jwks-file",
                    &jwks_arg,
                ],
            )
            .fails_with_text("AccessDeniedException");
        mallory
            .command_of(
                &podiam_bin(),
                &[
                    "cluster",
                    "create",
                    "--name",
                    &format!("{name}h"),
                    "--issuer-url",
                    spelling,
                ],
            )
            .fails_with_text("AccessDeniedException");
    }
    let nobody = ClientEnv::new(&server);
    let token = mint(
        &key,
        VICTIM_ISSUER,
        "ops",
        "admin",
        "sts.amazonaws.com",
        None,
    );
    let refused = assume_with(&nobody, "admin", &token);
    assert!(!refused.success, "mallory became admin: {}", refused.stdout);
    assert!(
        refused.stderr.contains("IDPCommunicationError")
            || refused.stderr.contains("InvalidIdentityToken"),
        "{}",
        refused.stderr
    );
}

/// Finding 2 (what a single request can do; `slow_clients` holds 1,000 of them): an unsigned
/// body over 64 KiB is refused unread, and a body signed by an unknown key is not read at all.
#[test]
fn f2_no_unsigned_body_is_buffered_beyond_its_limit() {
    let server = Server::start();
    let raw = |request: &[u8], within: Duration| -> String {
        let mut stream = TcpStream::connect(server.addr()).unwrap_or_else(|e| panic!("{e}"));
        stream.set_read_timeout(Some(within)).unwrap_or_default();
        let _ = stream.write_all(request);
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned()
    };
    // Declares 960 KiB, sends a little: answered at once, nothing waited for.
    let started = Instant::now();
    let answer = raw(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 983040\r\n\r\nAction=GetCallerIdentity",
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("RequestEntityTooLarge"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // An EKS call signed by a key the server does not know: refused before its body is read.
    let answer = raw(
        b"POST /clusters HTTP/1.1\r\nHost: x\r\nX-Amz-Date: 20261202T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIAUNKNOWN000000000/20261202/us-east-1/eks/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\nContent-Length: 983040\r\n\r\n{",
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(
        !answer.contains("RequestTimeout"),
        "the body was waited for: {answer}"
    );
}

/// Finding 3: the node is the caller's identity's. An agent of node-a (a user tagged with
/// its node) gets nothing for a token bound to node-b, and eksNodeName changes nothing.
#[test]
fn f3_node_binding_comes_from_the_callers_identity() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    root.command_of(&podiam_bin(), &["cluster", "create", "--name", "c"])
        .ok();
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "pods",
        "--assume-role-policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#,
    ])
    .ok();
    root.aws(&[
        "eks",
        "create-pod-identity-association",
        "--cluster-name",
        "c",
        "--namespace",
        "app",
        "--service-account",
        "app",
        "--role-arn",
        "arn:aws:iam::000000000000:role/pods",
    ])
    .ok();
    let agent_a = user(
        &server,
        &root,
        "agent-node-a",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"eks-auth:AssumeRoleForPodIdentity","Resource":"*"}]}"#,
        &["Key=podiam:node-name,Value=node-a"],
    );
    let token = |node: &str| {
        root.command_of(
            &podiam_bin(),
            &[
                "cluster",
                "token",
                "--cluster",
                "c",
                "--namespace",
                "app",
                "--service-account",
                "app",
                "--audience",
                "pods.eks.amazonaws.com",
                "--pod-name",
                "p",
                "--node-name",
                node,
            ],
        )
        .ok()
    };
    let ask = |env: &ClientEnv, token: &str| {
        env.aws(&[
            "eks-auth",
            "assume-role-for-pod-identity",
            "--cluster-name",
            "c",
            "--token",
            token,
        ])
    };
    // The AWS CLI sends no eksNodeName: the attack's request.
    ask(&agent_a, &token("node-b")).fails_with("AccessDeniedException");
    ask(&root, &token("node-a")).fails_with("AccessDeniedException");
    let granted = ask(&agent_a, &token("node-a")).json();
    assert!(
        granted["credentials"]["accessKeyId"]
            .as_str()
            .is_some_and(|k| k.starts_with("ASIA"))
    );
}

/// Finding 4: a long-term key with any session token is InvalidClientTokenId, as in AWS.
#[test]
fn f4_a_long_term_key_takes_no_session_token() {
    let server = Server::start();
    let (id, secret) = server.root_keys();
    ClientEnv::keys(&server, &id, &secret, Some("AQoDYXdzEJr-any-token"))
        .aws(&["sts", "get-caller-identity"])
        .fails_with("InvalidClientTokenId");
    ClientEnv::keys(&server, &id, &secret, None)
        .aws(&["sts", "get-caller-identity"])
        .ok();
}

/// Finding 5: nesting is refused while the input is read, before any parser sees it.
#[test]
fn f5_deeply_nested_manifests_are_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let nested = dir.path().join("pod.yaml");
    let depth = 200_000;
    std::fs::write(
        &nested,
        format!(
            "metadata: {{a: {}{}}}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new(podiam_bin())
        .args(["webhook", "render", "--pod", &nested.display().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nested more than 64 levels"), "{stderr}");
}

/// Finding 6: issuer discovery cannot be aimed at internal addresses, and tells the caller
/// nothing of what it found there.
#[test]
fn f6_issuer_discovery_is_no_port_scanner_or_reader() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    // An internal service on loopback that answers with something secret.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let internal = format!(
        "http://{}/internal",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 22\r\nConnection: close\r\n\r\nINTERNAL-SECRET-BANNER");
        }
    });
    let (key, _) = own_key(server.dir(), "https://unused.example");
    for (role, issuer) in [
        ("metadata", "https://169.254.169.254/latest"),
        ("internal", internal.as_str()),
    ] {
        admin_role_trusting(&root, issuer, role);
        let refused = assume_with(
            &ClientEnv::new(&server),
            role,
            &mint(&key, issuer, "ops", "admin", "sts.amazonaws.com", None),
        );
        assert!(!refused.success);
        assert!(
            refused.stderr.contains("IDPCommunicationError"),
            "{}",
            refused.stderr
        );
        assert!(
            !refused.stderr.contains("SECRET") && !refused.stderr.contains("500"),
            "{}",
            refused.stderr
        );
    }
    assert!(
        server.log().contains("may not use"),
        "the reason is logged for the operator"
    );
}

/// What held up, so that it keeps holding: SigV4 tampering, a swapped session token, JWT
/// algorithm confusion and `alg: none`.
#[test]
fn held_up_sigv4_tampering_token_swaps_and_jwt_algorithm_confusion() {
    let server = Server::start();
    let root = ClientEnv::root(&server);
    // Two sessions; the second's token with the first's key.
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "r",
        "--assume-role-policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#,
    ])
    .ok();
    let session = |name: &str| -> Value {
        root.aws(&[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::000000000000:role/r",
            "--role-session-name",
            name,
        ])
        .json()["Credentials"]
            .clone()
    };
    let (one, two) = (session("one"), session("two"));
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    ClientEnv::keys(
        &server,
        &text(&one, "AccessKeyId"),
        &text(&one, "SecretAccessKey"),
        Some(&text(&two, "SessionToken")),
    )
    .aws(&["sts", "get-caller-identity"])
    .fails_with("InvalidClientTokenId");
    // A wrong secret (a tampered signature).
    let (id, _) = server.root_keys();
    ClientEnv::keys(
        &server,
        &id,
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        None,
    )
    .aws(&["sts", "get-caller-identity"])
    .fails_with("SignatureDoesNotMatch");
    // JWTs: alg none, and HS256 keyed with the issuer's public JWKS.
    let issuer = podiam_e2e::TestIssuer::start();
    admin_role_trusting(&root, issuer.url(), "admin");
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let claims = format!(
        r#"{{"iss":"{}","sub":"{ADMIN_TRUST_CONDITION}","aud":"sts.amazonaws.com","exp":4102444800,"iat":1700000000,"nbf":1700000000}}"#,
        issuer.url()
    );
    let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims));
    let hs = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(&claims),
        b64("forged-mac")
    );
    for forged in [none, hs] {
        assume_with(&ClientEnv::new(&server), "admin", &forged).fails_with("InvalidIdentityToken");
    }
    // While the issuer's own token is accepted.
    assume_with(
        &ClientEnv::new(&server),
        "admin",
        &issuer.mint("ops", "admin", "sts.amazonaws.com", &[]),
    )
    .ok();
}
