//! `POST /podiam/authorize` through `Router::oneshot`: a proxy asks whether a DynamoDB request
//! it received is signed by a known caller whose policies allow what it touches.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

mod support;

use serde_json::{Value, json};
use support::{ACCOUNT, Creds, World};

const TABLE: &str = "arn:aws:dynamodb:eu-central-1:637423329338:table/carts";

/// A DynamoDB request as a client signs it, described as the gateway sends it.
fn described(w: &World, creds: &Creds, body: &str, action: &str) -> Value {
    let headers = w.dynamodb_headers(creds, action, body);
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    json!({
        "service": "dynamodb",
        "method": "POST",
        "path": "/",
        "query": "",
        "headers": headers,
        "bodySha256": podiam_crypto::sha256_hex(body.as_bytes()),
        "sourceIp": "10.0.0.7",
        "authorizations": [{"action": format!("dynamodb:{action}"), "resource": TABLE}],
    })
}

async fn setup() -> (World, Creds, Creds) {
    let w = World::new().await;
    let gateway = w
        .user(
            "gateway",
            Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"podiam:AuthorizeRequest","Resource":"*"}]}"#,
            ),
        )
        .await;
    let reader = w
        .user(
            "reader",
            Some(&format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"{TABLE}"}}]}}"#
            )),
        )
        .await;
    (w, gateway, reader)
}

async fn ask(w: &World, gateway: &Creds, question: &Value) -> support::Reply {
    w.rest(
        "podiam",
        gateway,
        "POST",
        "/podiam/authorize",
        Some(question.clone()),
    )
    .await
}

#[tokio::test]
async fn allowed_and_denied_as_dynamodb_says() {
    let (w, gateway, reader) = setup().await;
    let body = r#"{"TableName":"carts","Key":{"id":{"S":"1"}}}"#;

    let allowed = ask(&w, &gateway, &described(&w, &reader, body, "GetItem"))
        .await
        .ok()
        .json();
    assert_eq!(allowed["decision"], "Allow", "{allowed}");
    assert_eq!(
        allowed["principal"],
        format!("arn:aws:iam::{ACCOUNT}:user/reader")
    );

    let denied = ask(&w, &gateway, &described(&w, &reader, body, "PutItem"))
        .await
        .ok()
        .json();
    assert_eq!(denied["decision"], "Deny");
    assert_eq!(denied["error"]["code"], "AccessDeniedException");
    assert_eq!(denied["error"]["status"], 400);
    assert_eq!(
        denied["error"]["message"],
        format!(
            "User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: dynamodb:PutItem on resource: {TABLE} because no identity-based policy allows the dynamodb:PutItem action"
        )
    );
}

#[tokio::test]
async fn the_signature_covers_the_body() {
    let (w, gateway, reader) = setup().await;
    let mut question = described(&w, &reader, r#"{"TableName":"carts"}"#, "GetItem");
    question["bodySha256"] = json!(podiam_crypto::sha256_hex(br#"{"TableName":"other"}"#));
    let denied = ask(&w, &gateway, &question).await.ok().json();
    assert_eq!(
        denied["error"]["code"], "InvalidSignatureException",
        "{denied}"
    );
    assert_eq!(denied["principal"], Value::Null);

    let stranger = Creds {
        id: "AKIAAAAAAAAAAAAAAAAA".to_owned(),
        secret: "x".to_owned(),
        token: None,
    };
    let question = described(&w, &stranger, "{}", "GetItem");
    let denied = ask(&w, &gateway, &question).await.ok().json();
    assert_eq!(denied["error"]["code"], "UnrecognizedClientException");
    assert_eq!(denied["error"]["status"], 400);
}

#[tokio::test]
async fn only_a_proxy_allowed_to_may_ask_and_only_well_formed_questions() {
    let (w, gateway, reader) = setup().await;
    let question = described(&w, &reader, "{}", "GetItem");
    // The reader itself may not ask.
    let refused = ask(&w, &reader, &question).await;
    assert_eq!(
        refused.error_type(),
        "AccessDeniedException",
        "{}",
        refused.body
    );

    let mut other = question.clone();
    other["service"] = json!("s3");
    assert_eq!(
        ask(&w, &gateway, &other).await.error_type(),
        "InvalidParameterException"
    );
    let mut many = question.clone();
    many["authorizations"] = json!(vec![
        json!({"action": "dynamodb:GetItem", "resource": TABLE});
        101
    ]);
    assert_eq!(
        ask(&w, &gateway, &many).await.error_type(),
        "InvalidParameterException"
    );
    let mut bad_header = question.clone();
    bad_header["headers"] = json!([["bad header", "x"]]);
    assert_eq!(
        ask(&w, &gateway, &bad_header).await.error_type(),
        "InvalidParameterException"
    );
    let mut bad_digest = question;
    bad_digest["bodySha256"] = json!("not-hex");
    let denied = ask(&w, &gateway, &bad_digest).await.ok().json();
    assert_eq!(denied["error"]["code"], "IncompleteSignatureException");
}

/// A user allowed `GetItem` on their own items only (AWS's per-user example).
async fn per_user(w: &World) -> Creds {
    w.user(
        "carol",
        Some(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"{TABLE}","Condition":{{"ForAllValues:StringEquals":{{"dynamodb:LeadingKeys":["${{aws:username}}"]}}}}}}]}}"#
        )),
    )
    .await
}

#[tokio::test]
async fn condition_keys_from_the_proxy_are_evaluated() {
    let (w, gateway, _) = setup().await;
    let carol = per_user(&w).await;
    let body = r#"{"TableName":"carts","Key":{"id":{"S":"carol"}}}"#;
    let mut question = described(&w, &carol, body, "GetItem");
    question["authorizations"][0]["context"] = json!({"dynamodb:LeadingKeys": ["carol"]});
    let allowed = ask(&w, &gateway, &question).await.ok().json();
    assert_eq!(allowed["decision"], "Allow", "{allowed}");
    question["authorizations"][0]["context"] = json!({"dynamodb:LeadingKeys": ["carol", "alice"]});
    let denied = ask(&w, &gateway, &question).await.ok().json();
    assert_eq!(denied["decision"], "Deny", "{denied}");

    // A key the proxy could not determine is refused when a policy reads it...
    question["authorizations"][0]["context"] = json!({});
    question["authorizations"][0]["unknown"] = json!(["dynamodb:LeadingKeys"]);
    let denied = ask(&w, &gateway, &question).await.ok().json();
    assert_eq!(denied["decision"], "Deny", "{denied}");
    assert!(
        denied["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dynamodb:LeadingKeys"),
        "{denied}"
    );
    // ... and does not matter when none does.
    let reader = w
        .user(
            "plain",
            Some(&format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"{TABLE}"}}]}}"#
            )),
        )
        .await;
    let mut question = described(&w, &reader, body, "GetItem");
    question["authorizations"][0]["unknown"] = json!(["dynamodb:LeadingKeys"]);
    let allowed = ask(&w, &gateway, &question).await.ok().json();
    assert_eq!(allowed["decision"], "Allow", "{allowed}");

    // A proxy sets only keys of the service it asks about.
    for context in [
        json!({"aws:username": "carol"}),
        json!({"aws:SourceIp": "1.2.3.4"}),
    ] {
        let mut forged = described(&w, &carol, body, "GetItem");
        forged["authorizations"][0]["context"] = context;
        assert_eq!(
            ask(&w, &gateway, &forged).await.error_type(),
            "InvalidParameterException"
        );
    }
    let mut forged = described(&w, &carol, body, "GetItem");
    forged["authorizations"][0]["unknown"] = json!(["aws:PrincipalTag/team"]);
    assert_eq!(
        ask(&w, &gateway, &forged).await.error_type(),
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn verify_only_checks_the_signature_alone() {
    let (w, gateway, reader) = setup().await;
    let body = r#"{"TableName":"carts"}"#;
    let mut question = described(&w, &reader, body, "PutItem");
    question["verifyOnly"] = json!(true);
    question["authorizations"] = json!([]);
    let allowed = ask(&w, &gateway, &question).await.ok().json();
    assert_eq!(allowed["decision"], "Allow", "{allowed}");
    assert_eq!(
        allowed["principal"],
        format!("arn:aws:iam::{ACCOUNT}:user/reader")
    );
    question["bodySha256"] = json!(podiam_crypto::sha256_hex(b"{}"));
    let denied = ask(&w, &gateway, &question).await.ok().json();
    assert_eq!(denied["error"]["code"], "InvalidSignatureException");
    // verifyOnly asks no authorization; authorizations without it must not be empty.
    let mut both = described(&w, &reader, body, "PutItem");
    both["verifyOnly"] = json!(true);
    assert_eq!(
        ask(&w, &gateway, &both).await.error_type(),
        "InvalidParameterException"
    );
}
