//! The container images, run (issue 19). `scripts/image` assembles one FROM scratch from local
//! parts and `scripts/image --dockerfile` builds the repository's Dockerfile with local
//! stand-ins for its bases; `scripts/test` builds both and names them in `PODIAM_IMAGES`
//! (space-separated). Each test runs against every image named:
//! - the server on a published port, used by the AWS CLI from the host, with its data on a
//!   volume that outlives `docker rm` and serves a new container;
//! - `podiam webhook render` reading a pod from standard input;
//! - the agent (`podiam-agent`) serving a pod's credentials on a published port, the server in
//!   another container on the same network;
//! - the two images have the same layout.
//!
//! Without `PODIAM_IMAGES` (no dockerd, say), each test says it was skipped.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test fixtures fail loudly"
)]

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use podiam_e2e::{ClientEnv, credentials_file_keys, pod_identity_node, pod_identity_token};

/// The images under test, or `None` (with a note) when none are named.
fn images(test: &str) -> Option<Vec<String>> {
    let Ok(list) = std::env::var("PODIAM_IMAGES") else {
        eprintln!(
            "SKIPPED {test}: PODIAM_IMAGES names no image (scripts/test builds them with scripts/image)"
        );
        return None;
    };
    let images: Vec<String> = list.split_whitespace().map(str::to_owned).collect();
    assert!(!images.is_empty(), "PODIAM_IMAGES is empty");
    Some(images)
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("docker runs")
}

/// `docker <args>`, which must succeed; its standard output.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Names of containers, volumes and networks this test made, removed on drop.
struct Made {
    prefix: String,
    containers: Vec<String>,
    volumes: Vec<String>,
    networks: Vec<String>,
}

impl Made {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        Self {
            prefix: format!(
                "podiam-e2e-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
            containers: Vec::new(),
            volumes: Vec::new(),
            networks: Vec::new(),
        }
    }

    fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    fn volume(&mut self, what: &str) -> String {
        let name = self.name(what);
        docker_ok(&["volume", "create", &name]);
        self.volumes.push(name.clone());
        name
    }

    fn network(&mut self, what: &str) -> String {
        let name = self.name(what);
        docker_ok(&["network", "create", &name]);
        self.networks.push(name.clone());
        name
    }

    /// `docker run -d --name <prefix-what> <args>`; the container's name.
    fn run(&mut self, what: &str, args: &[&str]) -> String {
        let name = self.name(what);
        let mut all = vec!["run", "-d", "--name", &name];
        all.extend_from_slice(args);
        docker_ok(&all);
        self.containers.push(name.clone());
        name
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = docker(&["rm", "-f", "-v", container]);
        }
        for network in &self.networks {
            let _ = docker(&["network", "rm", network]);
        }
        for volume in &self.volumes {
            let _ = docker(&["volume", "rm", "-f", volume]);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `url` answers 200, or fails with the container's log.
fn wait_ready(url: &str, container: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "--max-time", "2", url])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer within 30 s; {container}'s log:\n{}",
            logs(container)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn logs(container: &str) -> String {
    let out = docker(&["logs", container]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The root access key of a server container, from its credentials file; the log names the
/// key's id and never its secret.
fn root_key(container: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    docker_ok(&[
        "cp",
        &format!("{container}:/var/lib/podiam/root-credentials"),
        &dir.path().display().to_string(),
    ]);
    let text = std::fs::read_to_string(dir.path().join("root-credentials")).unwrap();
    let (id, secret) = credentials_file_keys(&text);
    let log = logs(container);
    assert!(
        log.contains(&format!("Created the root access key {id};")),
        "{log}"
    );
    assert!(
        !log.contains(&secret),
        "the secret is in the container's log:\n{log}"
    );
    (id, secret)
}

/// A server container of `image` on `port` (published on loopback), data on `volume`.
fn server(
    made: &mut Made,
    what: &str,
    image: &str,
    port: u16,
    volume: &str,
    extra: &[&str],
) -> String {
    let publish = format!("127.0.0.1:{port}:4599");
    let mount = format!("{volume}:/var/lib/podiam");
    let public_url = format!("--public-url=http://127.0.0.1:{port}");
    let mut args = vec!["-p", &publish, "-v", &mount];
    args.extend_from_slice(extra);
    args.extend([image, "server", "--listen", "0.0.0.0:4599", &public_url]);
    let name = made.run(what, &args);
    wait_ready(&format!("http://127.0.0.1:{port}/readyz"), &name);
    name
}

#[test]
fn the_server_keeps_its_data_on_a_volume_across_containers() {
    let Some(images) = images("the_server_keeps_its_data_on_a_volume_across_containers") else {
        return;
    };
    for image in &images {
        let mut made = Made::new();
        let home = tempfile::tempdir().unwrap();
        let volume = made.volume("data");
        let port = free_port();
        let first = server(&mut made, "server-1", image, port, &volume, &[]);
        assert_eq!(
            docker_ok(&["inspect", "--format", "{{.Config.User}}", &first]),
            "65532:65532",
            "{image} runs as the non-root user"
        );
        let (id, secret) = root_key(&first);
        let endpoint = format!("http://127.0.0.1:{port}");
        let root = ClientEnv::for_endpoint(&endpoint, home.path())
            .set("AWS_ACCESS_KEY_ID", &id)
            .set("AWS_SECRET_ACCESS_KEY", &secret);
        let who = root.aws(&["sts", "get-caller-identity"]).json();
        assert_eq!(who["Arn"], "arn:aws:iam::000000000000:root", "{image}");
        root.aws(&[
            "iam",
            "create-role",
            "--role-name",
            "kept",
            "--assume-role-policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#,
        ])
        .ok();

        // A new container over the same volume: same key, same role.
        docker_ok(&["rm", "-f", &first]);
        let second = server(&mut made, "server-2", image, port, &volume, &[]);
        assert!(
            !logs(&second).contains("Created the root access key"),
            "{image}: the second container made a new account:\n{}",
            logs(&second)
        );
        let role = root.aws(&["iam", "get-role", "--role-name", "kept"]).json();
        assert_eq!(
            role["Role"]["Arn"], "arn:aws:iam::000000000000:role/kept",
            "{image}"
        );
        // And nothing else is the same: a wrong key is refused.
        root.clone()
            .set(
                "AWS_SECRET_ACCESS_KEY",
                "wrong-secret-wrong-secret-wrong-secret0",
            )
            .aws(&["sts", "get-caller-identity"])
            .fails_with("SignatureDoesNotMatch");
    }
}

#[test]
fn webhook_render_reads_a_pod_from_standard_input() {
    let Some(images) = images("webhook_render_reads_a_pod_from_standard_input") else {
        return;
    };
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: carts, namespace: carts}\nspec:\n  serviceAccountName: carts\n  containers: [{name: carts, image: carts:1}]\n";
    for image in &images {
        let run = |args: &[&str]| {
            let mut all = vec!["run", "-i", "--rm", image.as_str(), "webhook", "render"];
            all.extend_from_slice(args);
            let mut child = Command::new("docker")
                .args(&all)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), pod.as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        };
        let out = run(&["--pod", "-", "--pod-identity"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let patch: serde_json::Value = serde_json::from_str(&text).unwrap();
        let env_values: Vec<&serde_json::Value> = patch
            .as_array()
            .into_iter()
            .flatten()
            .filter(|op| op["path"].as_str().is_some_and(|p| p.contains("/env")))
            .collect();
        let patch_text = serde_json::to_string(&env_values).unwrap();
        assert!(
            patch_text.contains(r#""name":"AWS_CONTAINER_CREDENTIALS_FULL_URI","value":"http://169.254.170.23/v1/credentials""#),
            "{image}: no container credentials URI in the patch:\n{text}"
        );
        // Without an association or a role annotation, the pod is left alone.
        let out = run(&["--pod", "-"]);
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]", "{image}");
    }
}

#[test]
fn the_agent_serves_a_pods_credentials_on_a_published_port() {
    let Some(images) = images("the_agent_serves_a_pods_credentials_on_a_published_port") else {
        return;
    };
    for image in &images {
        let mut made = Made::new();
        let home = tempfile::tempdir().unwrap();
        let network = made.network("net");
        let volume = made.volume("data");
        let port = free_port();
        let net = format!("--network={network}");
        let server = server(
            &mut made,
            "server",
            image,
            port,
            &volume,
            &[&net, "--network-alias=server"],
        );
        let (id, secret) = root_key(&server);
        let endpoint = format!("http://127.0.0.1:{port}");
        let root = ClientEnv::for_endpoint(&endpoint, home.path())
            .set("AWS_ACCESS_KEY_ID", &id)
            .set("AWS_SECRET_ACCESS_KEY", &secret);
        let (node_id, node_secret) =
            pod_identity_node(&root, r#"["eks-auth:AssumeRoleForPodIdentity"]"#);

        let agent_port = free_port();
        let publish = format!("127.0.0.1:{agent_port}:8080");
        let key_id = format!("AWS_ACCESS_KEY_ID={node_id}");
        let key_secret = format!("AWS_SECRET_ACCESS_KEY={node_secret}");
        let agent = made.run(
            "agent",
            &[
                &net,
                "-p",
                &publish,
                "-e",
                &key_id,
                "-e",
                &key_secret,
                "-e",
                "AWS_REGION=us-east-1",
                "--entrypoint",
                "/usr/local/bin/podiam-agent",
                image,
                "--cluster-name",
                "fleet",
                "--node-name",
                "node-1",
                "--endpoint",
                "http://server:4599",
                "--bind-hosts",
                "0.0.0.0",
                "--port",
                "8080",
            ],
        );
        let token_file = home.path().join("token");
        let token = |service_account: &str, file: &Path| {
            std::fs::write(file, pod_identity_token(&root, service_account, "app-1")).unwrap();
        };
        token("app", &token_file);
        let pod = ClientEnv::for_endpoint(&endpoint, &home.path().join("pod"))
            .set(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                &format!("http://127.0.0.1:{agent_port}/v1/credentials"),
            )
            .set(
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                &token_file.display().to_string(),
            );
        // The agent may still be starting: the CLI is asked again for up to 30 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        let who = loop {
            let run = pod.aws(&["sts", "get-caller-identity"]);
            if run.success || Instant::now() > deadline {
                break run.ok();
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let who: serde_json::Value = serde_json::from_str(&who).unwrap();
        let arn = who["Arn"].as_str().unwrap_or_default();
        assert!(
            arn.starts_with("arn:aws:sts::000000000000:assumed-role/app/eks-fleet-app-1-"),
            "{image}: {arn}; agent log:\n{}",
            logs(&agent)
        );

        // A service account without an association gets the agent's error, not credentials.
        let other = home.path().join("other-token");
        token("other", &other);
        pod.clone()
            .set(
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                &other.display().to_string(),
            )
            .aws(&["sts", "get-caller-identity"])
            .fails_with_text("(ResourceNotFoundException): No pod identity association found for service account other in namespace default of cluster fleet.");
    }
}

/// The files of `image`'s filesystem with their modes and owners (not their sizes or times),
/// without what docker adds to every container.
fn layout(image: &str) -> BTreeSet<String> {
    let container = docker_ok(&["create", "--entrypoint", "/none", image]);
    let out = Command::new("sh")
        .args(["-c", &format!("docker export {container} | tar -tv")])
        .output()
        .unwrap();
    let _ = docker(&["rm", "-f", &container]);
    assert!(out.status.success());
    let added = [
        ".dockerenv",
        "dev/",
        "proc/",
        "sys/",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "etc/mtab",
    ];
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            // mode owner/group size date time path
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (mode, owner) = (fields.first()?, fields.get(1)?);
            let path = fields.get(5..)?.join(" ");
            (!added.iter().any(|a| path.starts_with(a))).then(|| format!("{mode} {owner} {path}"))
        })
        .collect()
}

#[test]
fn the_dockerfile_gives_the_layout_of_the_scratch_image() {
    let Some(images) = images("the_dockerfile_gives_the_layout_of_the_scratch_image") else {
        return;
    };
    let [scratch, dockerfile] = images.as_slice() else {
        eprintln!(
            "SKIPPED: PODIAM_IMAGES names {} image(s), not the two to compare",
            images.len()
        );
        return;
    };
    let (a, b) = (layout(scratch), layout(dockerfile));
    for expected in [
        "-rwxr-xr-x root/root usr/local/bin/podiam",
        "-rwxr-xr-x root/root usr/local/bin/podiam-agent",
        "-rw-r--r-- root/root etc/ssl/certs/ca-certificates.crt",
        "-rw-r--r-- root/root etc/passwd",
        "drwxr-xr-x nonroot/nonroot var/lib/podiam/",
        "drwxr-xr-x nonroot/nonroot home/nonroot/",
        "drwxrwxrwt root/root tmp/",
    ] {
        assert!(
            a.contains(expected),
            "{scratch} has no {expected:?}: {a:#?}"
        );
    }
    assert_eq!(
        a.symmetric_difference(&b).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "{scratch} and {dockerfile} differ"
    );
    let user = |image: &str| {
        docker_ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Env}}",
            image,
        ])
    };
    assert_eq!(user(scratch), user(dockerfile));
}
