//! The web console in a real browser: `podiam dev --scenario eks-workshop`, `podiam console
//! --print` with the root's credentials, then Debian's headless chromium driven through
//! chromedriver over the W3C WebDriver protocol: sign in, open every page and check what it
//! shows (the cluster, the roles, a trust policy, a pod's credentials in the audit feed, a
//! simulator decision after submitting the form by clicking, the access graph and a "who can"
//! question, who can assume a role, the findings), a sign-in URL refused the second
//! time and after five minutes (podiam dev under libfaketime, its clock moved on), a user
//! with only `iam:ListRoles` refused a role's details, and sign-out. A PNG of every
//! page goes to `target/console-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (`apt-get install chromium chromium-driver`; scripts/test
//! installs them): without them the test fails, it does not skip.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test fixtures fail loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use podiam_e2e::{DevExtras, DevStack, Process, libfaketime, podiam_bin, workspace};
use serde_json::{Value, json};

const ACCOUNT: &str = "637423329338";
const TABLE: &str = "arn:aws:dynamodb:eu-central-1:637423329338:table/eks-workshop-carts";
/// The W3C WebDriver name of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `name` on `PATH`, or the test fails saying how to install it.
fn program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_default()
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed, and the console's browser test needs it: run \
                 `apt-get install -y chromium chromium-driver` (scripts/test and CI install them)"
            )
        })
}

/// The workspace's target directory: `CARGO_TARGET_DIR`, else the one this test runs from.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace().join(dir)
        };
    }
    // target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf()
}

/// A headless chromium session through chromedriver; both end on drop.
struct Browser {
    session: String,
    driver: String,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    shots: PathBuf,
    _chromedriver: Process,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Self {
        let chromium = program("chromium");
        let chromedriver = program("chromedriver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(&chromedriver);
        command.arg(format!("--port={port}"));
        let (process, _) = Process::start("chromedriver", command, |line| {
            line.contains("started successfully").then(String::new)
        });
        let profile = tempfile::Builder::new()
            .prefix("podiam-console-chromium-")
            .tempdir()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let shots = target_dir().join("console-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let mut browser = Self {
            session: String::new(),
            driver: format!("http://127.0.0.1:{port}"),
            client,
            runtime,
            shots,
            _chromedriver: process,
            _profile: profile,
        };
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args},
            }}})),
        );
        browser.session = created["sessionId"].as_str().unwrap().to_owned();
        browser
    }

    /// A WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.driver);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let request = self
            .client
            .request(method.clone(), &url)
            .header("content-type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default());
        let (status, text) = self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        });
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        value["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        );
    }

    fn current_url(&self) -> String {
        self.call("GET", &self.session_path("/url"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn find(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            &self.session_path("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    /// The text the page shows in `css`'s first element.
    fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.call(
            "GET",
            &self.session_path(&format!("/element/{id}/text")),
            None,
        )
        .as_str()
        .unwrap()
        .to_owned()
    }

    /// The whole page's visible text, once it contains `wanted` (pages load after clicks).
    fn page_with(&self, wanted: &str) -> String {
        let started = Instant::now();
        loop {
            let text = self.text("body");
            if text.contains(wanted) {
                return text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{wanted:?} is not on {}:\n{text}",
                self.current_url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{id}/clear")),
            Some(json!({})),
        );
        self.call(
            "POST",
            &self.session_path(&format!("/element/{id}/value")),
            Some(json!({"text": text})),
        );
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{id}/click")),
            Some(json!({})),
        );
    }

    /// Saves a PNG of the page as `target/console-screenshots/<name>.png`.
    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.call("GET", &self.session_path("/screenshot"), None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.driver, self.session);
            let request = self.client.delete(url);
            let _ = self.runtime.block_on(async move { request.send().await });
        }
    }
}

/// `podiam console --print` in `shell`: the sign-in URL.
fn signin_url(shell: &podiam_e2e::ClientEnv) -> String {
    let out = shell
        .command_of(&podiam_bin(), &["console", "--print"])
        .ok();
    let url = out.trim().to_owned();
    assert!(url.contains("/console/signin?token="), "{out}");
    url
}

fn origin(url: &str) -> &str {
    let path = url.find("/console/").unwrap();
    &url[..path]
}

#[test]
fn the_console_in_a_browser() {
    let browser = Browser::start();
    // podiam dev's clock is libfaketime's, read from a file (re-read every second), so that
    // the test can move it past a sign-in link's five minutes.
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("faketime");
    std::fs::write(&clock, "+0\n").unwrap();
    let clock_env = vec![
        ("LD_PRELOAD".to_owned(), libfaketime().display().to_string()),
        (
            "FAKETIME_TIMESTAMP_FILE".to_owned(),
            clock.display().to_string(),
        ),
        ("FAKETIME_CACHE_DURATION".to_owned(), "1".to_owned()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".to_owned(), "1".to_owned()),
    ];
    let stack = DevStack::start_with(|_| DevExtras {
        env: clock_env,
        ..DevExtras::default()
    });
    let shell = stack.shell();

    // A pod gets credentials: the audit feed will show it.
    let who = stack
        .exec(
            &["--namespace", "carts", "--service-account", "carts"],
            &["aws", "sts", "get-caller-identity", "--output", "json"],
        )
        .ok();
    assert!(who.contains("eks-workshop-carts-dynamo-pia"), "{who}");

    // Sign in as the root.
    let url = signin_url(&shell);
    let base = origin(&url).to_owned();
    assert_eq!(base, stack.var("AWS_ENDPOINT_URL"));
    browser.goto(&url);
    assert_eq!(browser.current_url(), format!("{base}/console/"));
    let overview = browser.page_with("Signed in as");
    assert!(
        overview.contains(&format!("arn:aws:iam::{ACCOUNT}:root")),
        "{overview}"
    );
    let mut shots = vec![browser.screenshot("overview")];

    let clusters = {
        browser.goto(&format!("{base}/console/clusters"));
        browser.page_with("Pod identity associations")
    };
    for wanted in [
        "eks-workshop",
        "https://oidc.eks.eu-central-1.amazonaws.com/id/",
        "carts",
        &format!("arn:aws:iam::{ACCOUNT}:role/eks-workshop-carts-dynamo-pia"),
    ] {
        assert!(clusters.contains(wanted), "{wanted}: {clusters}");
    }
    shots.push(browser.screenshot("clusters"));

    browser.goto(&format!("{base}/console/roles"));
    let roles = browser.page_with("eks-workshop-carts-dynamo-irsa");
    assert!(roles.contains("eks-workshop-carts-dynamo-pia"), "{roles}");
    shots.push(browser.screenshot("roles"));

    browser.click("a[href='/console/roles/eks-workshop-carts-dynamo-pia']");
    let role = browser.page_with("Trust policy");
    for wanted in [
        "\"Service\": \"pods.eks.amazonaws.com\"",
        "\"sts:TagSession\"",
        "Attached policies",
        "Inline policies",
    ] {
        assert!(role.contains(wanted), "{wanted}: {role}");
    }
    shots.push(browser.screenshot("role"));

    browser.goto(&format!("{base}/console/audit"));
    let audit = browser.page_with("AssumeRoleForPodIdentity");
    assert!(audit.contains("issued"), "{audit}");
    assert!(
        audit.contains("system:serviceaccount:carts:carts"),
        "{audit}"
    );
    shots.push(browser.screenshot("audit"));

    browser.goto(&format!("{base}/console/simulate"));
    browser.page_with("Simulate");
    browser.type_into(
        "#principal",
        &format!("arn:aws:iam::{ACCOUNT}:role/eks-workshop-carts-dynamo-pia"),
    );
    browser.type_into("#actions", "dynamodb:GetItem");
    browser.type_into("#resources", TABLE);
    browser.click("#simulate");
    let decided = browser.page_with("Decision:");
    assert!(decided.contains("Decision: allowed"), "{decided}");
    assert!(decided.contains("dynamodb:GetItem"), "{decided}");
    shots.push(browser.screenshot("simulate"));

    // The access graph: service accounts → roles → resources, drawn by the browser.
    browser.goto(&format!("{base}/console/access?cluster=eks-workshop"));
    browser.page_with("Service accounts → roles → services and resources");
    let graph = browser.text("#graph");
    for wanted in [
        "eks-workshop/carts/carts",
        "eks-workshop-carts-dynamo-pia",
        "eks-workshop-carts-dynamo-irsa",
        "eks-workshop-node",
        "dynamodb · …",
        "table/eks-workshop-carts",
    ] {
        assert!(graph.contains(wanted), "{wanted}: {graph}");
    }
    let id = browser.find("#graph");
    let rect = browser.call(
        "GET",
        &browser.session_path(&format!("/element/{id}/rect")),
        None,
    );
    assert!(rect["height"].as_f64().unwrap() > 60.0, "{rect}");
    shots.push(browser.screenshot("access-graph"));
    // Who can write the table: the form, submitted by clicking.
    browser.type_into("#action", "dynamodb:PutItem");
    browser.type_into("#resource", TABLE);
    browser.click("#apply");
    browser.page_with("Who can dynamodb:PutItem");
    let who = browser.text("#who");
    assert!(
        who.contains("pod-identity") && who.contains("irsa"),
        "{who}"
    );
    assert!(who.contains("eks-workshop-carts-dynamo-pia"), "{who}");
    shots.push(browser.screenshot("access-who"));
    // A role's page says who can assume it.
    browser.goto(&format!(
        "{base}/console/roles/eks-workshop-carts-dynamo-pia"
    ));
    browser.page_with("Who can assume this role");
    let assumers = browser.text("#assumers");
    assert!(
        assumers.contains("carts") && assumers.contains("pod-identity"),
        "{assumers}"
    );
    // Findings: the workshop page's IRSA trust has no aud condition.
    browser.goto(&format!("{base}/console/findings"));
    let findings = browser.page_with("findings:");
    assert!(findings.contains("trust-no-audience"), "{findings}");
    assert!(
        findings.contains("eks-workshop-carts-dynamo-irsa"),
        "{findings}"
    );
    shots.push(browser.screenshot("findings"));

    // The URL worked once.
    browser.goto(&url);
    let reused = browser.page_with("Sign-in refused");
    assert!(reused.contains("already been used"), "{reused}");
    shots.push(browser.screenshot("signin-reused"));

    // Sign out.
    browser.goto(&format!("{base}/console/"));
    browser.page_with("Signed in as");
    browser.click("#signout");
    browser.page_with("You are signed out");
    browser.goto(&format!("{base}/console/roles"));
    browser.page_with("Not signed in");
    shots.push(browser.screenshot("signed-out"));

    // A user who may list roles, and nothing else.
    shell
        .aws(&["iam", "create-user", "--user-name", "role-lister"])
        .ok();
    shell
        .aws(&[
            "iam",
            "put-user-policy",
            "--user-name",
            "role-lister",
            "--policy-name",
            "list-roles",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}]}"#,
        ])
        .ok();
    let key = shell
        .aws(&["iam", "create-access-key", "--user-name", "role-lister"])
        .json();
    let lister = shell
        .clone()
        .set(
            "AWS_ACCESS_KEY_ID",
            key["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        )
        .set(
            "AWS_SECRET_ACCESS_KEY",
            key["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
        );
    browser.goto(&signin_url(&lister));
    browser.page_with(&format!("arn:aws:iam::{ACCOUNT}:user/role-lister"));
    browser.goto(&format!("{base}/console/roles"));
    let listed = browser.page_with("eks-workshop-carts-dynamo-pia");
    assert!(
        listed.contains("eks-workshop-carts-dynamo-irsa"),
        "{listed}"
    );
    browser.goto(&format!(
        "{base}/console/roles/eks-workshop-carts-dynamo-pia"
    ));
    let denied = browser.page_with("AccessDenied");
    assert!(
        denied.contains(&format!(
            "User: arn:aws:iam::{ACCOUNT}:user/role-lister is not authorized to perform: iam:GetRole on resource: arn:aws:iam::{ACCOUNT}:role/eks-workshop-carts-dynamo-pia"
        )),
        "{denied}"
    );
    assert!(!denied.contains("Trust policy"), "{denied}");
    assert!(!denied.contains("pods.eks.amazonaws.com"), "{denied}");
    shots.push(browser.screenshot("role-denied"));
    browser.goto(&format!("{base}/console/clusters"));
    let clusters_denied = browser.page_with("AccessDenied");
    assert!(
        clusters_denied.contains("eks:ListClusters"),
        "{clusters_denied}"
    );

    // A link not used within five minutes is refused: the server's clock moves on six.
    let late = signin_url(&shell);
    std::fs::write(&clock, "+6m\n").unwrap();
    std::thread::sleep(Duration::from_millis(2_500));
    browser.goto(&late);
    let expired = browser.page_with("Sign-in refused");
    assert!(expired.contains("has expired"), "{expired}");
    assert!(!expired.contains("Signed in as"), "{expired}");
    shots.push(browser.screenshot("signin-expired"));

    for shot in &shots {
        assert!(Path::new(shot).is_file());
        eprintln!("screenshot: {}", shot.display());
    }
}
