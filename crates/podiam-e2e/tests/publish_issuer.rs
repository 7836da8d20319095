//! `podiam cluster publish-issuer` to S3 (moto_server's): the discovery document and JWKS at
//! the issuer URL's place in the bucket, so that tokens verify as AWS STS verifies them
//! (PyJWT here: RS256, kid, issuer, audience); an issuer URL that is not the bucket's is
//! refused; after a key rotation the republished JWKS keeps the old key. An external issuer's
//! keys come from a JWKS file or from its apiserver (a stand-in over HTTPS with a bearer token).

use std::process::Command;

use podiam_e2e::{ClientEnv, Process, Server, TestCa, podiam_bin, start_moto, venv};

const ISSUER: &str = "https://oidc-shop.s3.eu-central-1.amazonaws.com/prod";

fn token(env: &ClientEnv, service_account: &str) -> String {
    env.command_of(
        &podiam_bin(),
        &[
            "cluster",
            "token",
            "--cluster",
            "prod",
            "--namespace",
            "shop",
            "--service-account",
            service_account,
            "--audience",
            "sts.amazonaws.com",
        ],
    )
    .ok()
}

#[test]
fn a_published_hosted_issuer_verifies_tokens_as_aws_does() {
    let server = Server::start();
    let (_moto, moto) = start_moto();
    let podiam = ClientEnv::root(&server).set("AWS_ENDPOINT_URL_S3", &moto);
    podiam
        .command_of(
            &podiam_bin(),
            &[
                "cluster",
                "create",
                "--name",
                "prod",
                "--issuer-url",
                ISSUER,
            ],
        )
        .ok();
    podiam
        .command_of(&podiam_bin(), &["cluster", "create", "--name", "elsewhere"])
        .ok();
    let moto_env = podiam.clone().set("AWS_ENDPOINT_URL", &moto);
    moto_env
        .aws(&["s3api", "create-bucket", "--bucket", "oidc-shop"])
        .ok();

    let publish = |cluster: &str, to: &str| {
        podiam.command_of(
            &podiam_bin(),
            &["cluster", "publish-issuer", "--name", cluster, "--to", to],
        )
    };
    // Not the bucket's URL, or another prefix: refused, saying why, and nothing is written.
    let refused = publish("elsewhere", "s3://oidc-shop/prod");
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("not HTTPS") || refused.stderr.contains("not the public URL"),
        "{}",
        refused.stderr
    );
    let refused = publish("prod", "s3://oidc-shop/staging");
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("s3://oidc-shop/prod"),
        "{}",
        refused.stderr
    );
    let listed = moto_env
        .aws(&["s3api", "list-objects-v2", "--bucket", "oidc-shop"])
        .ok();
    assert!(!listed.contains("openid"), "{listed}");

    let published = publish("prod", "s3://oidc-shop/prod").ok();
    assert!(
        published.contains(&format!(
            "aws iam create-open-id-connect-provider --url {ISSUER} --client-id-list sts.amazonaws.com"
        )),
        "{published}"
    );
    let verify = |tokens: &[&str]| {
        let mut args = vec![moto.as_str(), "oidc-shop", "prod"];
        args.extend_from_slice(tokens);
        moto_env.python("verify_published_issuer.py", &args).ok()
    };
    let before = token(&podiam, "app");
    let out = verify(&[&before]);
    assert!(
        out.contains("verified system:serviceaccount:shop:app"),
        "{out}"
    );
    let kids_before = out.lines().next().unwrap_or_default().to_owned();

    // A new key: republished, the JWKS holds both, and tokens of either verify.
    podiam
        .command_of(
            &podiam_bin(),
            &["keys", "rotate", "--kind", "issuer", "--cluster", "prod"],
        )
        .ok();
    publish("prod", "s3://oidc-shop/prod").ok();
    let after = token(&podiam, "orders");
    let out = verify(&[&before, &after]);
    let kids_after = out.lines().next().unwrap_or_default();
    assert_eq!(
        kids_after.split(' ').count(),
        kids_before.split(' ').count() + 1,
        "{out}"
    );
    assert!(
        out.contains("verified system:serviceaccount:shop:app"),
        "{out}"
    );
    assert!(
        out.contains("verified system:serviceaccount:shop:orders"),
        "{out}"
    );
}

/// An external issuer's world: a podiam server, moto's S3 with the bucket, and an apiserver's
/// signing key with the OIDC documents it serves (`podiam token discovery` writes them).
struct External {
    server: Server,
    _moto: Process,
    moto: String,
    podiam: ClientEnv,
    key: String,
    docs: String,
}

impl External {
    const ISSUER: &str = "https://oidc-shop.s3.amazonaws.com/ext";

    fn start() -> Self {
        let server = Server::start();
        let (_moto, moto) = start_moto();
        let podiam = ClientEnv::root(&server).set("AWS_ENDPOINT_URL_S3", &moto);
        let world = Self {
            key: server.dir().join("apiserver.pem").display().to_string(),
            docs: server.dir().join("apiserver").display().to_string(),
            server,
            _moto,
            moto,
            podiam,
        };
        world.run(&["keys", "generate", "--alg", "RS256", "--out", &world.key]);
        world.run(&[
            "token",
            "discovery",
            "--key",
            &world.key,
            "--issuer",
            Self::ISSUER,
            "--out-dir",
            &world.docs,
        ]);
        world
            .s3()
            .aws(&["s3api", "create-bucket", "--bucket", "oidc-shop"])
            .ok();
        world
    }

    fn path(&self, name: &str) -> String {
        self.server.dir().join(name).display().to_string()
    }

    /// The JWKS the apiserver serves (`kubectl get --raw /openid/v1/jwks`).
    fn jwks(&self) -> String {
        format!("{}/openid/v1/jwks", self.docs)
    }

    fn podiam(&self, args: &[&str]) -> podiam_e2e::Run {
        self.podiam.command_of(&podiam_bin(), args)
    }

    fn run(&self, args: &[&str]) -> String {
        self.podiam(args).ok()
    }

    /// Clients of moto's S3.
    fn s3(&self) -> ClientEnv {
        self.podiam.clone().set("AWS_ENDPOINT_URL", &self.moto)
    }

    fn create_cluster(&self, name: &str, issuer: &str) {
        self.run(&[
            "cluster",
            "create",
            "--name",
            name,
            "--external-issuer",
            issuer,
            "--jwks-file",
            &self.jwks(),
        ]);
    }

    /// A token the apiserver signs verifies against what was published for `ext`.
    fn assert_apiserver_tokens_verify(&self) {
        let token = self.run(&[
            "token",
            "mint",
            "--key",
            &self.key,
            "--issuer",
            Self::ISSUER,
            "--namespace",
            "shop",
            "--service-account",
            "app",
            "--audience",
            "sts.amazonaws.com",
        ]);
        let out = self
            .s3()
            .python(
                "verify_published_issuer.py",
                &[&self.moto, "oidc-shop", "ext", token.trim()],
            )
            .ok();
        assert!(
            out.contains("verified system:serviceaccount:shop:app"),
            "{out}"
        );
    }
}

#[test]
fn an_external_issuers_keys_are_published_from_a_jwks_file() {
    let world = External::start();
    world.create_cluster("ext", External::ISSUER);
    let published = world.run(&[
        "cluster",
        "publish-issuer",
        "--name",
        "ext",
        "--to",
        "s3://oidc-shop/ext",
        "--jwks-file",
        &world.jwks(),
    ]);
    assert!(published.contains(External::ISSUER), "{published}");
    world.assert_apiserver_tokens_verify();
}

#[test]
fn an_external_issuers_keys_are_read_from_its_apiserver() {
    let world = External::start();
    // The apiserver serves its OIDC documents over HTTPS with the cluster's own CA, to callers
    // with a token.
    let ca = TestCa::new("cluster CA");
    let (ca_file, cert, tls_key) = (
        world.path("ca.pem"),
        world.path("tls.pem"),
        world.path("tls-key.pem"),
    );
    std::fs::write(&ca_file, ca.pem()).expect("write the CA");
    ca.issue(&["127.0.0.1"], cert.as_ref(), tls_key.as_ref());
    let token_file = world.path("reader-token");
    std::fs::write(&token_file, "reader-secret\n").expect("write the token");
    let mut command = Command::new(venv().join("bin/python"));
    command.args([
        concat!(env!("CARGO_MANIFEST_DIR"), "/py/apiserver_oidc.py"),
        &world.docs,
        &cert,
        &tls_key,
        "reader-secret",
    ]);
    let (_apiserver, apiserver) = Process::start("apiserver_oidc", command, |line| {
        line.strip_prefix("serving ").map(str::to_owned)
    });
    world.create_cluster("ext", External::ISSUER);
    world.create_cluster("other", "https://oidc-shop.s3.amazonaws.com/other");
    let publish = |cluster: &str, extra: &[&str]| {
        let to = format!("s3://oidc-shop/{cluster}");
        let mut args = vec![
            "cluster",
            "publish-issuer",
            "--name",
            cluster,
            "--to",
            &to,
            "--apiserver",
            &apiserver,
        ];
        args.extend_from_slice(extra);
        world.podiam(&args)
    };
    let trusted = ["--apiserver-ca", ca_file.as_str()];
    let with_token = [
        "--apiserver-ca",
        ca_file.as_str(),
        "--apiserver-token-file",
        token_file.as_str(),
    ];
    // Without the cluster's CA the apiserver's certificate is not trusted, and the error says
    // what to pass.
    let untrusted = publish("ext", &["--apiserver-token-file", &token_file]);
    assert!(!untrusted.success, "{}", untrusted.stdout);
    assert!(
        untrusted.stderr.contains("cannot reach") && untrusted.stderr.contains("--apiserver-ca"),
        "{}",
        untrusted.stderr
    );
    // Without a token the apiserver answers 401, and the error says what to give.
    let anonymous = publish("ext", &trusted);
    assert!(!anonymous.success, "{}", anonymous.stdout);
    assert!(
        anonymous.stderr.contains("401") && anonymous.stderr.contains("--apiserver-token-file"),
        "{}",
        anonymous.stderr
    );
    // An apiserver whose issuer is not the cluster's is refused: AWS would refuse its tokens.
    let mismatch = publish("other", &with_token);
    assert!(!mismatch.success, "{}", mismatch.stdout);
    assert!(
        mismatch.stderr.contains(External::ISSUER) && mismatch.stderr.contains("would refuse"),
        "{}",
        mismatch.stderr
    );
    let published = publish("ext", &with_token).ok();
    assert!(published.contains(External::ISSUER), "{published}");
    world.assert_apiserver_tokens_verify();
}
