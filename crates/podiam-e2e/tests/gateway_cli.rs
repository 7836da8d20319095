//! `podiam gateway` as its own process in front of moto_server's DynamoDB, deciding with a
//! separate `podiam server`: the deployment shape of a cluster, where the gateway runs beside
//! the server with an IAM user of its own that may only ask for decisions.

use std::process::Command;

use podiam_e2e::{ClientEnv, Process, Server, podiam_bin, start_moto, user_with_policy};

#[test]
fn the_gateway_enforces_policies_in_front_of_any_dynamodb() {
    let server = Server::start();
    let (_moto, dynamodb) = start_moto();
    let key = |user: &str, policy: &str| user_with_policy(&server, user, policy);
    let (gateway_id, gateway_secret) = key(
        "gateway",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"podiam:AuthorizeRequest","Resource":"*"}]}"#,
    );
    let (writer_id, writer_secret) = key(
        "writer",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["dynamodb:CreateTable","dynamodb:PutItem"],"Resource":"arn:aws:dynamodb:us-east-1:000000000000:table/orders"}]}"#,
    );

    // The account comes from the gateway's own identity (GetCallerIdentity).
    let mut command = Command::new(podiam_bin());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", &gateway_id)
        .env("AWS_SECRET_ACCESS_KEY", &gateway_secret)
        .env("AWS_REGION", "us-east-1")
        .args([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--server",
            &server.endpoint(),
        ])
        .args(["--upstream", &dynamodb]);
    let (_gateway, line) = Process::start("podiam gateway", command, |line| {
        line.starts_with("podiam gateway: ")
            .then(|| line.to_owned())
    });
    assert!(line.contains("account 000000000000"), "{line}");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .expect("the gateway's address")
        .to_owned();

    let writer = ClientEnv::keys(&server, &writer_id, &writer_secret, None)
        .set("AWS_ENDPOINT_URL_DYNAMODB", &url);
    writer
        .aws(&[
            "dynamodb",
            "create-table",
            "--table-name",
            "orders",
            "--attribute-definitions",
            "AttributeName=id,AttributeType=S",
            "--key-schema",
            "AttributeName=id,KeyType=HASH",
            "--billing-mode",
            "PAY_PER_REQUEST",
        ])
        .ok();
    writer
        .aws(&[
            "dynamodb",
            "put-item",
            "--table-name",
            "orders",
            "--item",
            r#"{"id":{"S":"1"}}"#,
        ])
        .ok();
    // Allowed to write, not to read; and not to touch another table.
    let denied = writer
        .aws(&[
            "dynamodb",
            "get-item",
            "--table-name",
            "orders",
            "--key",
            r#"{"id":{"S":"1"}}"#,
        ])
        .fails_with("AccessDeniedException");
    assert!(
        denied.contains("User: arn:aws:iam::000000000000:user/writer is not authorized to perform: dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/orders because no identity-based policy allows the dynamodb:GetItem action"),
        "{denied}"
    );
    writer
        .aws(&[
            "dynamodb",
            "put-item",
            "--table-name",
            "carts",
            "--item",
            r#"{"id":{"S":"1"}}"#,
        ])
        .fails_with("AccessDeniedException");
    // A forged secret is refused before any policy is read.
    ClientEnv::keys(&server, &writer_id, "not-the-secret", None)
        .set("AWS_ENDPOINT_URL_DYNAMODB", &url)
        .aws(&[
            "dynamodb",
            "put-item",
            "--table-name",
            "orders",
            "--item",
            r#"{"id":{"S":"2"}}"#,
        ])
        .fails_with("InvalidSignatureException");
    // The gateway itself cannot be used as a DynamoDB identity without rights.
    ClientEnv::keys(&server, &gateway_id, &gateway_secret, None)
        .set("AWS_ENDPOINT_URL_DYNAMODB", &url)
        .aws(&["dynamodb", "list-tables"])
        .fails_with("AccessDeniedException");
}
