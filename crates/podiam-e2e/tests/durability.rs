//! The data directory survives a restart and a `kill -9` in the middle of writes: every write
//! the server acknowledged is there afterwards, and the store opens cleanly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_sdk_iam::error::ProvideErrorMetadata as _;
use aws_types::region::Region;
use podiam_e2e::{ClientEnv, Server, ServerOptions, TestIssuer, create_irsa_role};

fn iam_client(server: &Server) -> aws_sdk_iam::Client {
    let (id, secret) = server.root_keys();
    aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(server.endpoint())
            .credentials_provider(Credentials::new(id, secret, None, None, "root"))
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

#[test]
fn everything_survives_a_restart() {
    let mut server = Server::start();
    let issuer = TestIssuer::start();
    let root = ClientEnv::root(&server);
    let first_stdout = server.stdout();
    assert!(first_stdout.contains("Created the root access key"));
    root.aws(&["iam", "create-user", "--user-name", "alice"])
        .ok();
    let key = root
        .aws(&["iam", "create-access-key", "--user-name", "alice"])
        .json();
    let trust = create_irsa_role(&root, &issuer, "carts", "carts", "carts");
    let web = ClientEnv::new(&server)
        .aws(&[
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            "arn:aws:iam::000000000000:role/carts",
            "--role-session-name",
            "before",
            "--web-identity-token",
            &issuer.mint("carts", "carts", "sts.amazonaws.com", &[]),
        ])
        .json();

    server.restart(&ServerOptions::default());
    assert_eq!(server.starts(), 2);
    let root = ClientEnv::root(&server);
    assert!(
        !server.stdout()[first_stdout.len()..].contains("Created the root access key"),
        "the root key is created once"
    );
    assert_eq!(
        root.aws(&["iam", "get-role", "--role-name", "carts"])
            .json()["Role"]["AssumeRolePolicyDocument"],
        trust
    );
    let alice = ClientEnv::keys(
        &server,
        key["AccessKey"]["AccessKeyId"].as_str().unwrap_or_default(),
        key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap_or_default(),
        None,
    );
    assert_eq!(
        alice.aws(&["sts", "get-caller-identity"]).json()["Arn"],
        "arn:aws:iam::000000000000:user/alice"
    );
    // Sessions issued before the restart stay valid: the session keys are in the store.
    let creds = &web["Credentials"];
    let session = ClientEnv::keys(
        &server,
        creds["AccessKeyId"].as_str().unwrap_or_default(),
        creds["SecretAccessKey"].as_str().unwrap_or_default(),
        creds["SessionToken"].as_str(),
    );
    assert_eq!(
        session.aws(&["sts", "get-caller-identity"]).json()["Arn"],
        "arn:aws:sts::000000000000:assumed-role/carts/before"
    );
    // A wrong --account-id for this data directory is refused with a fix.
    server.stop();
    let output = std::process::Command::new(podiam_e2e::podiam_bin())
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--account-id",
            "111111111111",
        ])
        .arg("--data-dir")
        .arg(server.data_dir())
        .output()
        .expect("podiam runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("belongs to account 000000000000"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_writes_loses_no_acknowledged_write() {
    let mut server = Server::start();
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..3 {
        let iam = iam_client(&server);
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for writer in 0..8 {
            let iam = iam.clone();
            let stop = Arc::clone(&stop);
            writers.push(tokio::spawn(async move {
                let mut done = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("r{round}-w{writer}-{n}");
                    n += 1;
                    let policy = format!(
                        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{name}/*"}}]}}"#
                    );
                    let created = iam.create_user().user_name(&name).send().await;
                    if created.is_err() {
                        break;
                    }
                    done.push(name.clone());
                    if iam
                        .put_user_policy()
                        .user_name(&name)
                        .policy_name("p")
                        .policy_document(policy)
                        .send()
                        .await
                        .is_ok()
                    {
                        done.push(format!("{name}/p"));
                    }
                }
                done
            }));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            acknowledged.extend(writer.await.expect("writer task"));
        }
        server.restart(&ServerOptions::default());
        assert!(
            acknowledged.len() > (round + 1) * 10,
            "too few writes before the kill: {}",
            acknowledged.len()
        );
    }

    // Every acknowledged user and policy is there; everything listed is readable.
    let iam = iam_client(&server);
    let listed: Vec<String> = iam
        .list_users()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("ListUsers after three kills")
        .into_iter()
        .map(|u| u.user_name().to_owned())
        .collect();
    for item in &acknowledged {
        match item.split_once('/') {
            None => assert!(listed.contains(item), "acknowledged user {item} was lost"),
            Some((user, policy)) => {
                let got = iam
                    .get_user_policy()
                    .user_name(user)
                    .policy_name(policy)
                    .send()
                    .await;
                assert!(got.is_ok(), "acknowledged policy {item} was lost: {got:?}");
            }
        }
    }
    for user in &listed {
        iam.get_user()
            .user_name(user)
            .send()
            .await
            .unwrap_or_else(|e| panic!("listed user {user} is unreadable: {:?}", e.code()));
    }
    // And the server still takes writes.
    iam.create_user()
        .user_name("after")
        .send()
        .await
        .expect("writes after the kills");
}
