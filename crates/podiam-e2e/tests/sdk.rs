//! The AWS SDK for Rust against the real server: every IAM and STS operation, policy documents
//! byte for byte, and IRSA through aws-config's default credential chain.

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials as _;
use aws_sdk_iam::error::ProvideErrorMetadata as _;
use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyScopeType, StatusType, Tag};
use aws_types::region::Region;
use podiam_e2e::{Server, TestIssuer};

fn iam_client(server: &Server, creds: Credentials) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(server.endpoint())
            .credentials_provider(creds)
            .build(),
    )
}

fn sts_client(server: &Server, creds: Credentials) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(server.endpoint())
            .credentials_provider(creds)
            .build(),
    )
}

fn root_creds(server: &Server) -> Credentials {
    let (id, secret) = server.root_keys();
    Credentials::new(id, secret, None, None, "podiam-root")
}

fn decode(document: &str) -> String {
    percent_encoding::percent_decode_str(document)
        .decode_utf8_lossy()
        .into_owned()
}

const TRUST_ROOT: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_iam_operation_through_the_rust_sdk() {
    let server = Server::start();
    let iam = iam_client(&server, root_creds(&server));

    // Users and access keys.
    let user = iam
        .create_user()
        .user_name("alice")
        .send()
        .await
        .expect("CreateUser");
    assert_eq!(
        user.user().map(|u| u.arn()),
        Some("arn:aws:iam::000000000000:user/alice")
    );
    let err = iam
        .create_user()
        .user_name("alice")
        .send()
        .await
        .expect_err("duplicate");
    assert_eq!(err.code(), Some("EntityAlreadyExists"));
    iam.create_user()
        .user_name("bob")
        .send()
        .await
        .expect("CreateUser bob");
    assert_eq!(
        iam.get_user()
            .user_name("bob")
            .send()
            .await
            .expect("GetUser")
            .user()
            .map(|u| u.user_name().to_owned()),
        Some("bob".to_owned())
    );
    // The paginator follows Marker/IsTruncated.
    let names: Vec<String> = iam
        .list_users()
        .max_items(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("ListUsers pages")
        .into_iter()
        .map(|u| u.user_name().to_owned())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let key = iam
        .create_access_key()
        .user_name("alice")
        .send()
        .await
        .expect("CreateAccessKey")
        .access_key
        .expect("a key");
    let keys = iam
        .list_access_keys()
        .user_name("alice")
        .send()
        .await
        .expect("ListAccessKeys");
    assert_eq!(keys.access_key_metadata().len(), 1);
    let alice = Credentials::new(
        key.access_key_id(),
        key.secret_access_key(),
        None,
        None,
        "alice",
    );
    let alice_sts = sts_client(&server, alice.clone());
    assert_eq!(
        alice_sts
            .get_caller_identity()
            .send()
            .await
            .expect("GetCallerIdentity")
            .arn(),
        Some("arn:aws:iam::000000000000:user/alice")
    );
    let denied = iam_client(&server, alice.clone())
        .list_users()
        .send()
        .await
        .expect_err("no policy");
    assert_eq!(denied.code(), Some("AccessDenied"));

    let policy = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"iam:ListUsers\", \"Resource\": \"*\"}]\n}";
    iam.put_user_policy()
        .user_name("alice")
        .policy_name("list")
        .policy_document(policy)
        .send()
        .await
        .expect("PutUserPolicy");
    let got = iam
        .get_user_policy()
        .user_name("alice")
        .policy_name("list")
        .send()
        .await
        .expect("GetUserPolicy");
    assert_eq!(decode(got.policy_document()), policy, "byte for byte");
    assert_eq!(
        iam.list_user_policies()
            .user_name("alice")
            .send()
            .await
            .expect("ListUserPolicies")
            .policy_names(),
        ["list"]
    );
    iam_client(&server, alice.clone())
        .list_users()
        .send()
        .await
        .expect("allowed now");
    iam.delete_user_policy()
        .user_name("alice")
        .policy_name("list")
        .send()
        .await
        .expect("DeleteUserPolicy");
    let read_only = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    iam.attach_user_policy()
        .user_name("alice")
        .policy_arn(read_only)
        .send()
        .await
        .expect("AttachUserPolicy");
    assert_eq!(
        iam.list_attached_user_policies()
            .user_name("alice")
            .send()
            .await
            .expect("ListAttachedUserPolicies")
            .attached_policies()
            .len(),
        1
    );
    iam.detach_user_policy()
        .user_name("alice")
        .policy_arn(read_only)
        .send()
        .await
        .expect("DetachUserPolicy");
    iam.update_access_key()
        .user_name("alice")
        .access_key_id(key.access_key_id())
        .status(StatusType::Inactive)
        .send()
        .await
        .expect("UpdateAccessKey");
    let inactive = alice_sts
        .get_caller_identity()
        .send()
        .await
        .expect_err("inactive key");
    assert_eq!(inactive.code(), Some("InvalidClientTokenId"));
    iam.delete_access_key()
        .user_name("alice")
        .access_key_id(key.access_key_id())
        .send()
        .await
        .expect("DeleteAccessKey");
    iam.delete_user()
        .user_name("alice")
        .send()
        .await
        .expect("DeleteUser");
    let gone = iam
        .get_user()
        .user_name("alice")
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Some("NoSuchEntity"));
    assert!(
        gone.as_service_error()
            .is_some_and(|e| e.is_no_such_entity_exception()),
        "the SDK maps the code to its modelled error"
    );

    // Roles.
    let role = iam
        .create_role()
        .role_name("app")
        .assume_role_policy_document(TRUST_ROOT)
        .description("app")
        .max_session_duration(7200)
        .tags(
            Tag::builder()
                .key("team")
                .value("carts")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("CreateRole");
    assert!(
        role.role()
            .is_some_and(|r| r.role_id().starts_with("AROA") && r.create_date().secs() > 0)
    );
    let got = iam
        .get_role()
        .role_name("app")
        .send()
        .await
        .expect("GetRole");
    let got = got.role().expect("role");
    assert_eq!(
        decode(got.assume_role_policy_document().unwrap_or_default()),
        TRUST_ROOT
    );
    assert_eq!(got.max_session_duration(), Some(7200));
    assert_eq!(
        iam.list_roles()
            .send()
            .await
            .expect("ListRoles")
            .roles()
            .len(),
        1
    );
    iam.update_role()
        .role_name("app")
        .description("changed")
        .send()
        .await
        .expect("UpdateRole");
    iam.update_assume_role_policy()
        .role_name("app")
        .policy_document(TRUST_ROOT.replace("sts:TagSession", "sts:SetSourceIdentity"))
        .send()
        .await
        .expect("UpdateAssumeRolePolicy");
    iam.tag_role()
        .role_name("app")
        .tags(Tag::builder().key("env").value("dev").build().expect("tag"))
        .send()
        .await
        .expect("TagRole");
    iam.untag_role()
        .role_name("app")
        .tag_keys("team")
        .send()
        .await
        .expect("UntagRole");
    let tags = iam
        .list_role_tags()
        .role_name("app")
        .send()
        .await
        .expect("ListRoleTags");
    assert_eq!(
        tags.tags()
            .iter()
            .map(|t| (t.key(), t.value()))
            .collect::<Vec<_>>(),
        [("env", "dev")]
    );
    iam.put_role_policy()
        .role_name("app")
        .policy_name("items")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetRole","Resource":"*"}]}"#,
        )
        .send()
        .await
        .expect("PutRolePolicy");
    iam.get_role_policy()
        .role_name("app")
        .policy_name("items")
        .send()
        .await
        .expect("GetRolePolicy");
    assert_eq!(
        iam.list_role_policies()
            .role_name("app")
            .send()
            .await
            .expect("ListRolePolicies")
            .policy_names(),
        ["items"]
    );
    let ddb = "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess";
    iam.attach_role_policy()
        .role_name("app")
        .policy_arn(ddb)
        .send()
        .await
        .expect("AttachRolePolicy");
    assert_eq!(
        iam.list_attached_role_policies()
            .role_name("app")
            .send()
            .await
            .expect("ListAttachedRolePolicies")
            .attached_policies()
            .len(),
        1
    );
    iam.detach_role_policy()
        .role_name("app")
        .policy_arn(ddb)
        .send()
        .await
        .expect("DetachRolePolicy");

    // Managed policies and versions.
    let created = iam
        .create_policy()
        .policy_name("reader")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
        )
        .send()
        .await
        .expect("CreatePolicy");
    let arn = created
        .policy()
        .and_then(|p| p.arn())
        .expect("policy arn")
        .to_owned();
    iam.get_policy()
        .policy_arn(&arn)
        .send()
        .await
        .expect("GetPolicy");
    iam.get_policy_version()
        .policy_arn(&arn)
        .version_id("v1")
        .send()
        .await
        .expect("GetPolicyVersion");
    let local = iam
        .list_policies()
        .scope(PolicyScopeType::Local)
        .send()
        .await
        .expect("ListPolicies");
    assert_eq!(local.policies().len(), 1);
    iam.create_policy_version()
        .policy_arn(&arn)
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        )
        .set_as_default(true)
        .send()
        .await
        .expect("CreatePolicyVersion");
    assert_eq!(
        iam.list_policy_versions()
            .policy_arn(&arn)
            .send()
            .await
            .expect("ListPolicyVersions")
            .versions()
            .len(),
        2
    );
    iam.set_default_policy_version()
        .policy_arn(&arn)
        .version_id("v1")
        .send()
        .await
        .expect("SetDefaultPolicyVersion");
    iam.delete_policy_version()
        .policy_arn(&arn)
        .version_id("v2")
        .send()
        .await
        .expect("DeletePolicyVersion");
    iam.delete_policy()
        .policy_arn(&arn)
        .send()
        .await
        .expect("DeletePolicy");

    // OIDC providers.
    let url = "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";
    let provider = iam
        .create_open_id_connect_provider()
        .url(url)
        .client_id_list("sts.amazonaws.com")
        .send()
        .await
        .expect("CreateOpenIDConnectProvider")
        .open_id_connect_provider_arn
        .expect("arn");
    iam.add_client_id_to_open_id_connect_provider()
        .open_id_connect_provider_arn(&provider)
        .client_id("extra")
        .send()
        .await
        .expect("AddClientIDToOpenIDConnectProvider");
    iam.remove_client_id_from_open_id_connect_provider()
        .open_id_connect_provider_arn(&provider)
        .client_id("extra")
        .send()
        .await
        .expect("RemoveClientIDFromOpenIDConnectProvider");
    iam.update_open_id_connect_provider_thumbprint()
        .open_id_connect_provider_arn(&provider)
        .thumbprint_list("9e99a48a9960b14926bb7f3b02e22da2b0ab7280")
        .send()
        .await
        .expect("UpdateOpenIDConnectProviderThumbprint");
    let got = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&provider)
        .send()
        .await
        .expect("GetOpenIDConnectProvider");
    assert_eq!(got.client_id_list(), ["sts.amazonaws.com"]);
    assert_eq!(
        iam.list_open_id_connect_providers()
            .send()
            .await
            .expect("ListOpenIDConnectProviders")
            .open_id_connect_provider_list()
            .len(),
        1
    );
    iam.delete_open_id_connect_provider()
        .open_id_connect_provider_arn(&provider)
        .send()
        .await
        .expect("DeleteOpenIDConnectProvider");

    // The simulator.
    let sim = iam
        .simulate_principal_policy()
        .policy_source_arn("arn:aws:iam::000000000000:role/app")
        .action_names("iam:GetRole")
        .action_names("iam:DeleteRole")
        .send()
        .await
        .expect("SimulatePrincipalPolicy");
    let decisions: Vec<&str> = sim
        .evaluation_results()
        .iter()
        .map(|r| r.eval_decision().as_str())
        .collect();
    assert_eq!(decisions, ["allowed", "implicitDeny"]);
    let custom = iam
        .simulate_custom_policy()
        .policy_input_list(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
        )
        .action_names("s3:GetObject")
        .context_entries(
            ContextEntry::builder()
                .context_key_name("aws:SourceIp")
                .context_key_values("10.1.2.3")
                .context_key_type(ContextKeyTypeEnum::Ip)
                .build(),
        )
        .send()
        .await
        .expect("SimulateCustomPolicy");
    assert_eq!(
        custom
            .evaluation_results()
            .first()
            .map(|r| r.eval_decision().as_str()),
        Some("allowed")
    );

    iam.delete_role_policy()
        .role_name("app")
        .policy_name("items")
        .send()
        .await
        .expect("DeleteRolePolicy");
    iam.delete_role()
        .role_name("app")
        .send()
        .await
        .expect("DeleteRole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_operations_and_irsa_through_the_default_chain() {
    let server = Server::start();
    let issuer = TestIssuer::start();
    let iam = iam_client(&server, root_creds(&server));
    let sts = sts_client(&server, root_creds(&server));
    assert_eq!(
        sts.get_caller_identity()
            .send()
            .await
            .expect("GetCallerIdentity")
            .arn(),
        Some("arn:aws:iam::000000000000:root")
    );
    iam.create_role()
        .role_name("worker")
        .assume_role_policy_document(TRUST_ROOT)
        .send()
        .await
        .expect("CreateRole");
    let assumed = sts
        .assume_role()
        .role_arn("arn:aws:iam::000000000000:role/worker")
        .role_session_name("job")
        .tags(
            aws_sdk_sts::types::Tag::builder()
                .key("job")
                .value("1")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("AssumeRole");
    let creds = assumed.credentials().expect("credentials");
    let session = sts_client(
        &server,
        Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_owned()),
            None,
            "session",
        ),
    );
    assert_eq!(
        session
            .get_caller_identity()
            .send()
            .await
            .expect("session identity")
            .arn(),
        Some("arn:aws:sts::000000000000:assumed-role/worker/job")
    );

    // IRSA: only the environment a pod gets, through aws-config's default chain.
    iam.create_open_id_connect_provider()
        .url(issuer.url())
        .client_id_list("sts.amazonaws.com")
        .send()
        .await
        .expect("CreateOpenIDConnectProvider");
    let host = issuer.host_path();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::000000000000:oidc-provider/{host}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{host}:sub":"system:serviceaccount:carts:carts","{host}:aud":"sts.amazonaws.com"}}}}}}]}}"#
    );
    iam.create_role()
        .role_name("carts")
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("CreateRole carts");
    let token_file = server.dir().join("token");
    std::fs::write(
        &token_file,
        issuer.mint("carts", "carts", "sts.amazonaws.com", &[]),
    )
    .expect("write the token");
    // The pod's process: this test binary again, running `irsa_pod` with only IRSA's variables.
    let pod = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args(["irsa_pod", "--exact", "--ignored", "--nocapture"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", server.dir())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ROLE_ARN", "arn:aws:iam::000000000000:role/carts")
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
        .env("AWS_ROLE_SESSION_NAME", "carts-pod")
        .env("AWS_ENDPOINT_URL_STS", server.endpoint())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PODIAM_E2E_POD", "1")
        .output()
        .expect("run the pod process");
    let out = String::from_utf8_lossy(&pod.stdout);
    assert!(
        pod.status.success() && out.contains("1 passed"),
        "the pod process failed:\n{out}\n{}",
        String::from_utf8_lossy(&pod.stderr)
    );
    assert!(
        out.contains("pod identity: arn:aws:sts::000000000000:assumed-role/carts/carts-pod"),
        "{out}"
    );
    let pod = sts_client(&server, root_creds(&server));

    // AssumeRoleWithWebIdentity directly, with every field, and a refused audience.
    let direct = pod
        .assume_role_with_web_identity()
        .role_arn("arn:aws:iam::000000000000:role/carts")
        .role_session_name("direct")
        .web_identity_token(issuer.mint("carts", "carts", "sts.amazonaws.com", &[]))
        .send()
        .await
        .expect("AssumeRoleWithWebIdentity");
    assert_eq!(
        direct.subject_from_web_identity_token(),
        Some("system:serviceaccount:carts:carts")
    );
    assert_eq!(direct.audience(), Some("sts.amazonaws.com"));
    assert_eq!(
        direct.provider(),
        Some(format!("arn:aws:iam::000000000000:oidc-provider/{host}").as_str())
    );
    let refused = pod
        .assume_role_with_web_identity()
        .role_arn("arn:aws:iam::000000000000:role/carts")
        .role_session_name("direct")
        .web_identity_token(issuer.mint("carts", "carts", "other-audience", &[]))
        .send()
        .await
        .expect_err("wrong audience");
    assert_eq!(refused.code(), Some("InvalidIdentityToken"));
    assert!(
        refused
            .as_service_error()
            .is_some_and(|e| e.is_invalid_identity_token_exception())
    );
}

/// Runs as the pod's process of `sts_operations_and_irsa_through_the_default_chain`: aws-config
/// resolves credentials from nothing but the environment, as in a pod with IRSA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started by sts_operations_and_irsa_through_the_default_chain with the pod's environment"]
async fn irsa_pod() {
    assert_eq!(
        std::env::var("PODIAM_E2E_POD").as_deref(),
        Ok("1"),
        "run by sts_operations_and_irsa_through_the_default_chain"
    );
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let creds = config
        .credentials_provider()
        .expect("a default chain")
        .provide_credentials()
        .await
        .expect("the default chain assumes the role");
    assert!(creds.access_key_id().starts_with("ASIA"));
    assert!(creds.expiry().is_some());
    // The same config, pointed at podiam for the call itself.
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&config)
            .endpoint_url(std::env::var("AWS_ENDPOINT_URL_STS").expect("endpoint"))
            .build(),
    );
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity as the pod");
    println!("pod identity: {}", me.arn().unwrap_or_default());
}
