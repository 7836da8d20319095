//! Two `podiam server` replicas over one three-member etcd cluster: what one replica writes, the other serves within a second through its
//! watch; a session one replica seals verifies on the other; and a replica that starts with
//! another key-encryption key is refused.

#![expect(
    clippy::expect_used,
    reason = "a helper outside the test: a failed step stops the test"
)]

use std::time::{Duration, Instant};

use podiam_e2e::{ClientEnv, EtcdCluster, Server, ServerOptions};

/// Polls `check` until it holds, for at most `within`; returns how long it took.
fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < within, "not seen within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

#[test]
fn two_replicas_over_etcd_serve_the_same_state() {
    let cluster = EtcdCluster::start(3);
    let dir = tempfile::tempdir().expect("a scratch directory");
    let kek = EtcdCluster::write_kek(dir.path());
    let a = cluster.replica(&kek);
    let b = cluster.replica(&kek);
    assert!(a.stdout().contains("store etcd 127."), "{}", a.stdout());

    // The root key was created once, by the replica that started first; it works on both.
    let (id, secret) = a.root_keys();
    let on_a = ClientEnv::keys(&a, &id, &secret, None);
    let on_b = ClientEnv::keys(&b, &id, &secret, None);
    for env in [&on_a, &on_b] {
        let who = env.aws(&["sts", "get-caller-identity"]).json();
        assert_eq!(who["Arn"], "arn:aws:iam::000000000000:root");
    }

    // A role written through A is served by B within a second, through B's watch.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;
    on_a.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "replicated",
        "--assume-role-policy-document",
        trust,
    ])
    .ok();
    let took = eventually(Duration::from_secs(1), || {
        on_b.aws(&["iam", "get-role", "--role-name", "replicated"])
            .success
    });
    eprintln!("the role reached replica B in {took:?}");

    // A session sealed by A verifies on B, and the other way round.
    let session = on_a
        .aws(&[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::000000000000:role/replicated",
            "--role-session-name",
            "across",
        ])
        .json();
    let creds = &session["Credentials"];
    let text = |name: &str| creds[name].as_str().expect("a credential").to_owned();
    let as_session = ClientEnv::keys(
        &b,
        &text("AccessKeyId"),
        &text("SecretAccessKey"),
        Some(&text("SessionToken")),
    );
    let who = as_session.aws(&["sts", "get-caller-identity"]).json();
    assert_eq!(
        who["Arn"],
        "arn:aws:sts::000000000000:assumed-role/replicated/across"
    );

    // A user and its key made through B sign requests to A.
    on_b.aws(&["iam", "create-user", "--user-name", "alice"])
        .ok();
    let key = on_b
        .aws(&["iam", "create-access-key", "--user-name", "alice"])
        .json();
    let alice_id = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .expect("a key id")
        .to_owned();
    let alice_secret = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .expect("a secret")
        .to_owned();
    let alice_on_a = ClientEnv::keys(&a, &alice_id, &alice_secret, None);
    eventually(Duration::from_secs(1), || {
        alice_on_a.aws(&["sts", "get-caller-identity"]).success
    });

    // EKS: an association created through A is listed by B within a second.
    on_a.aws(&[
        "iam", "create-role", "--role-name", "pods",
        "--assume-role-policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#,
    ])
    .ok();
    ClientEnv::root(&a)
        .command_of(
            &podiam_e2e::podiam_bin(),
            &["cluster", "create", "--name", "fleet"],
        )
        .ok();
    on_a.aws(&[
        "eks",
        "create-pod-identity-association",
        "--cluster-name",
        "fleet",
        "--namespace",
        "default",
        "--service-account",
        "app",
        "--role-arn",
        "arn:aws:iam::000000000000:role/pods",
    ])
    .ok();
    eventually(Duration::from_secs(1), || {
        let list = on_b
            .aws(&[
                "eks",
                "list-pod-identity-associations",
                "--cluster-name",
                "fleet",
            ])
            .json();
        list["associations"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });

    // A replica given another key-encryption key cannot open the shared keys, and says so.
    let other_kek = dir.path().join("other-kek");
    std::fs::write(&other_kek, "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\n")
        .expect("write the other kek");
    let stderr = refused(
        &cluster,
        &["--kek-file", &other_kek.display().to_string()],
        &dir.path().join("c"),
    );
    assert!(
        stderr.contains("do not open with this key-encryption key"),
        "{stderr}"
    );
    // And one without --kek-file is told to pass it.
    let stderr = refused(&cluster, &[], &dir.path().join("d"));
    assert!(stderr.contains("--kek-file"), "{stderr}");
}

/// Starts a replica that must refuse to start; its standard error.
fn refused(cluster: &EtcdCluster, args: &[&str], data_dir: &std::path::Path) -> String {
    let output = std::process::Command::new(podiam_e2e::podiam_bin())
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &cluster.store_url(),
        ])
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("podiam server runs");
    assert!(!output.status.success(), "it started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_embedded_store_moves_into_etcd() {
    let mut single = Server::start();
    let root = ClientEnv::root(&single);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;
    root.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "moved",
        "--assume-role-policy-document",
        trust,
    ])
    .ok();
    // A session sealed before the move still verifies after it: the keyring moves too.
    let session = root
        .aws(&[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::000000000000:role/moved",
            "--role-session-name",
            "before",
        ])
        .json();
    single.stop();

    let cluster = EtcdCluster::start(3);
    let data = single.data_dir();
    let copy = |to: &str| {
        std::process::Command::new(podiam_e2e::podiam_bin())
            .args(["store", "copy", "--from"])
            .arg(&data)
            .args(["--to", to])
            .output()
            .expect("podiam store copy runs")
    };
    let output = copy(&cluster.store_url());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Copied ") && stdout.contains("--kek-file"),
        "{stdout}"
    );
    // Copying again would overwrite: refused.
    let again = copy(&cluster.store_url());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let replica = cluster.replica(&data.join("kek"));
    let (id, secret) = single.root_keys();
    let on_etcd = ClientEnv::keys(&replica, &id, &secret, None);
    on_etcd
        .aws(&["iam", "get-role", "--role-name", "moved"])
        .ok();
    let creds = &session["Credentials"];
    let text = |name: &str| creds[name].as_str().expect("a credential").to_owned();
    let who = ClientEnv::keys(
        &replica,
        &text("AccessKeyId"),
        &text("SecretAccessKey"),
        Some(&text("SessionToken")),
    )
    .aws(&["sts", "get-caller-identity"])
    .json();
    assert_eq!(
        who["Arn"],
        "arn:aws:sts::000000000000:assumed-role/moved/before"
    );
}

#[test]
fn a_session_key_rotation_across_replicas_fails_no_request() {
    let cluster = EtcdCluster::start(3);
    let dir = tempfile::tempdir().expect("a scratch directory");
    let kek = EtcdCluster::write_kek(dir.path());
    let a = cluster.replica(&kek);
    let b = cluster.replica(&kek);
    let (id, secret) = a.root_keys();
    let on_a = ClientEnv::keys(&a, &id, &secret, None);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;
    on_a.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "busy",
        "--assume-role-policy-document",
        trust,
    ])
    .ok();
    let session = |env: &ClientEnv| {
        let answer = env
            .aws(&[
                "sts",
                "assume-role",
                "--role-arn",
                "arn:aws:iam::000000000000:role/busy",
                "--role-session-name",
                "load",
            ])
            .json();
        let creds = &answer["Credentials"];
        let text = |name: &str| creds[name].as_str().expect("a credential").to_owned();
        (
            text("AccessKeyId"),
            text("SecretAccessKey"),
            text("SessionToken"),
        )
    };
    let old = session(&on_a);

    // Steady calls with the old session on both replicas while the key rotates.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for server in [&a, &b] {
        let env = ClientEnv::keys(server, &old.0, &old.1, Some(&old.2));
        let stop = std::sync::Arc::clone(&stop);
        workers.push(std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || ok < 3 {
                if env.aws(&["sts", "get-caller-identity"]).success {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (ok, failed)
        }));
    }
    std::thread::sleep(Duration::from_secs(1));
    let rotated = ClientEnv::keys(&a, &id, &secret, None)
        .command_of(
            &podiam_e2e::podiam_bin(),
            &["keys", "rotate", "--kind", "session"],
        )
        .ok();
    assert!(
        rotated.contains("Rotated the session key: 2 signs from now on; 1 still verifies until"),
        "{rotated}"
    );
    // A session sealed by A with the new key opens on B (B follows the rotation).
    let new = session(&on_a);
    let on_b_new = ClientEnv::keys(&b, &new.0, &new.1, Some(&new.2));
    eventually(Duration::from_secs(1), || {
        on_b_new.aws(&["sts", "get-caller-identity"]).success
    });
    // And one sealed by B after the rotation opens on A.
    let from_b = session(&ClientEnv::keys(&b, &id, &secret, None));
    ClientEnv::keys(&a, &from_b.0, &from_b.1, Some(&from_b.2))
        .aws(&["sts", "get-caller-identity"])
        .ok();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for worker in workers {
        let (ok, failed) = worker.join().expect("a worker");
        assert!(ok >= 3, "{ok} calls");
        assert_eq!(
            failed,
            0,
            "{failed} of {} calls failed during the rotation",
            ok + failed
        );
    }
}

#[test]
fn etcd_over_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let path = |name: &str| dir.path().join(name);
    let ca = podiam_e2e::TestCa::new("etcd test CA");
    std::fs::write(path("ca.pem"), ca.pem()).expect("write the CA");
    // A loopback address of its own: no port to race for.
    let ip = podiam_e2e::etcd::unique_loopback_ip();
    ca.issue(&[&ip, "localhost"], &path("etcd.pem"), &path("etcd.key"));
    ca.issue(&["podiam"], &path("client.pem"), &path("client.key"));
    let (client, peer) = (podiam_e2e::etcd::CLIENT_PORT, podiam_e2e::etcd::PEER_PORT);
    let mut etcd = std::process::Command::new("etcd")
        .args(["--name", "tls", "--data-dir"])
        .arg(path("etcd"))
        .args(["--listen-client-urls", &format!("https://{ip}:{client}")])
        .args(["--advertise-client-urls", &format!("https://{ip}:{client}")])
        .args(["--listen-peer-urls", &format!("http://{ip}:{peer}")])
        .args([
            "--initial-advertise-peer-urls",
            &format!("http://{ip}:{peer}"),
        ])
        .args(["--initial-cluster", &format!("tls=http://{ip}:{peer}")])
        .arg("--cert-file")
        .arg(path("etcd.pem"))
        .arg("--key-file")
        .arg(path("etcd.key"))
        .arg("--trusted-ca-file")
        .arg(path("ca.pem"))
        .arg("--client-cert-auth")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(path("etcd.log")).expect("a log file"))
        .spawn()
        .expect("etcd starts");
    EtcdCluster::write_kek(dir.path());
    let tls_args = |with_client_cert: bool| {
        let mut args = vec![
            "--store".to_owned(),
            format!("etcd://{ip}:{client}"),
            "--kek-file".to_owned(),
            path("kek").display().to_string(),
            "--etcd-ca-file".to_owned(),
            path("ca.pem").display().to_string(),
        ];
        if with_client_cert {
            args.extend([
                "--etcd-cert-file".to_owned(),
                path("client.pem").display().to_string(),
                "--etcd-key-file".to_owned(),
                path("client.key").display().to_string(),
            ]);
        }
        args
    };
    // Give etcd a moment to serve TLS.
    eventually(Duration::from_secs(10), || {
        std::net::TcpStream::connect((ip.as_str(), client)).is_ok()
    });
    let server = Server::start_with(&ServerOptions {
        args: tls_args(true),
        ..ServerOptions::default()
    });
    let who = ClientEnv::root(&server)
        .aws(&["sts", "get-caller-identity"])
        .json();
    assert_eq!(who["Arn"], "arn:aws:iam::000000000000:root");
    // Without the client certificate etcd refuses the connection, and the server says so.
    let mut args: Vec<String> = vec![
        "server".to_owned(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    args.extend(tls_args(false));
    args.extend(["--data-dir".to_owned(), path("other").display().to_string()]);
    let output = std::process::Command::new(podiam_e2e::podiam_bin())
        .args(&args)
        .output()
        .expect("podiam server runs");
    assert!(
        !output.status.success(),
        "it started without a client certificate"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("etcd"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = etcd.kill();
    let _ = etcd.wait();
}

#[test]
fn etcd_with_users_and_passwords() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let path = |name: &str| dir.path().join(name);
    let cluster = EtcdCluster::start(1);
    let endpoint = cluster.endpoints().remove(0);
    // Turn on etcd's authentication through its JSON gateway: a root user, then auth.
    for (call, body) in [
        ("user/add", r#"{"name":"root","password":"root-secret"}"#),
        ("role/add", r#"{"name":"root"}"#),
        ("user/grant", r#"{"user":"root","role":"root"}"#),
        ("enable", "{}"),
    ] {
        let out = std::process::Command::new("curl")
            .args(["-sf", "-X", "POST", "-d", body])
            .arg(format!("http://{endpoint}/v3/auth/{call}"))
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "{call}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    EtcdCluster::write_kek(dir.path());
    std::fs::write(path("password"), "root-secret\n").expect("write the password");
    std::fs::write(path("wrong"), "guess\n").expect("write a wrong password");
    let args = |password: &str| {
        vec![
            "--store".to_owned(),
            cluster.store_url(),
            "--kek-file".to_owned(),
            path("kek").display().to_string(),
            "--etcd-user".to_owned(),
            "root".to_owned(),
            "--etcd-password-file".to_owned(),
            path(password).display().to_string(),
        ]
    };
    let server = Server::start_with(&ServerOptions {
        args: args("password"),
        ..ServerOptions::default()
    });
    ClientEnv::root(&server)
        .aws(&["iam", "create-user", "--user-name", "behind-auth"])
        .ok();
    // A wrong password, or none, gets nothing.
    let mut wrong = vec![
        "server".to_owned(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    wrong.extend(args("wrong"));
    wrong.extend(["--data-dir".to_owned(), path("w").display().to_string()]);
    let output = std::process::Command::new(podiam_e2e::podiam_bin())
        .args(&wrong)
        .output()
        .expect("podiam server runs");
    assert!(!output.status.success(), "it started with a wrong password");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("authentication failed"), "{stderr}");
    let stderr = refused(
        &cluster,
        &["--kek-file", &path("kek").display().to_string()],
        &path("n"),
    );
    assert!(stderr.contains("etcd"), "{stderr}");
}

/// A writer to etcd without the key-encryption key rewrites an access key's record to belong
/// to the root, as the attack did. Every replica treats the record as absent (the key stops
/// working instead of becoming the root's) and logs it.
#[test]
fn records_changed_in_etcd_without_the_kek_are_refused_not_trusted() {
    let cluster = EtcdCluster::start(3);
    let dir = tempfile::tempdir().expect("a scratch directory");
    let kek = EtcdCluster::write_kek(dir.path());
    let a = cluster.replica(&kek);
    let b = cluster.replica(&kek);
    let (id, secret) = a.root_keys();
    let root = ClientEnv::keys(&a, &id, &secret, None);
    root.aws(&["iam", "create-user", "--user-name", "alice"])
        .ok();
    let key = root
        .aws(&["iam", "create-access-key", "--user-name", "alice"])
        .json();
    let alice_id = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .expect("id")
        .to_owned();
    let alice_secret = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .expect("secret")
        .to_owned();
    let alice = [
        ClientEnv::keys(&a, &alice_id, &alice_secret, None),
        ClientEnv::keys(&b, &alice_id, &alice_secret, None),
    ];
    for on in &alice {
        on.aws(&["iam", "list-users"]).fails_with("AccessDenied");
    }

    let record_key = format!("/podiam/iam/access-key/{alice_id}");
    let record = cluster.raw_get(&record_key).expect("the record is in etcd");
    assert!(record.starts_with(b"pmA1"), "records carry their MAC");
    let json_at = record
        .iter()
        .position(|b| *b == b'{')
        .expect("a JSON record");
    let text = String::from_utf8_lossy(record.get(json_at..).unwrap_or_default()).into_owned();
    let forged = text.replace("\"user\":\"alice\"", "\"user\":null");
    assert_ne!(forged, text, "{text}");
    // Two forgeries: the record with its old MAC, and a bare record without one.
    for value in [
        [record.get(..json_at).unwrap_or_default(), forged.as_bytes()].concat(),
        forged.clone().into_bytes(),
    ] {
        cluster.raw_put(&record_key, &value);
        eventually(Duration::from_secs(2), || {
            alice.iter().all(|on| {
                on.aws(&["sts", "get-caller-identity"])
                    .stderr
                    .contains("InvalidClientTokenId")
            })
        });
    }
    for replica in [&a, &b] {
        assert!(
            replica.log().contains("fails its integrity check"),
            "{}",
            replica.log()
        );
    }
    // The root's own key is untouched.
    root.aws(&["sts", "get-caller-identity"]).ok();
}
