//! `GET /podiam/access/{who,what,findings}` through `Router::oneshot`: answers from the
//! engine over the server's state, only what the caller may read, and AWS's errors for bad
//! questions; and the console's access, findings and role pages over the same analysis.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

mod support;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use serde_json::{Value, json};
use support::{ACCOUNT, Creds, World, role_arn};

const TABLE: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/carts";
const PODS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

fn table() -> String {
    TABLE.replace("000000000000", ACCOUNT)
}

/// Cluster `shop` with `carts/carts-sa` → role `pia` (may write the carts table), and
/// `web/web` → role `no-tags` (whose trust forgets `sts:TagSession`).
async fn shop() -> World {
    let w = World::new().await;
    let no_tags = PODS.replace(
        r#"["sts:AssumeRole","sts:TagSession"]"#,
        r#""sts:AssumeRole""#,
    );
    for (role, trust) in [("pia", PODS.to_owned()), ("no-tags", no_tags)] {
        w.iam(
            &w.root,
            &[
                ("Action", "CreateRole"),
                ("RoleName", role),
                ("AssumeRolePolicyDocument", &trust),
            ],
        )
        .await
        .ok();
    }
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": table()}]});
    w.iam(
        &w.root,
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", "pia"),
            ("PolicyName", "carts"),
            ("PolicyDocument", &policy.to_string()),
        ],
    )
    .await
    .ok();
    w.rest(
        "eks",
        &w.root,
        "POST",
        "/clusters",
        Some(json!({"name": "shop", "podiamIssuer": {"kind": "hosted"}})),
    )
    .await
    .ok();
    for (ns, sa, role) in [("carts", "carts-sa", "pia"), ("web", "web", "no-tags")] {
        w.rest(
            "eks",
            &w.root,
            "POST",
            "/clusters/shop/pod-identity-associations",
            Some(json!({"namespace": ns, "serviceAccount": sa, "roleArn": role_arn(role)})),
        )
        .await
        .ok();
    }
    w
}

async fn ask(w: &World, creds: &Creds, path: &str) -> Value {
    w.rest("podiam", creds, "GET", path, None).await.ok().json()
}

fn who_path() -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("action", "dynamodb:PutItem")
        .append_pair("resource", &table())
        .finish();
    format!("/podiam/access/who?{q}")
}

#[tokio::test]
async fn who_what_and_findings_answer_from_the_engine() {
    let w = shop().await;
    let who = ask(&w, &w.root, &who_path()).await;
    let entries = who["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{who:#}");
    assert_eq!(entries[0]["cluster"], "shop");
    assert_eq!(entries[0]["namespace"], "carts");
    assert_eq!(entries[0]["service_account"], "carts-sa");
    assert_eq!(entries[0]["path"], "pod-identity");
    assert_eq!(entries[0]["role_arn"], role_arn("pia"));
    assert_eq!(entries[0]["decision"], "Allow");

    let what = ask(
        &w,
        &w.root,
        "/podiam/access/what?cluster=shop&namespace=carts&serviceAccount=carts-sa",
    )
    .await;
    assert_eq!(what["paths"][0]["path"], "pod-identity");
    assert_eq!(what["paths"][0]["wins"], true);
    assert_eq!(what["paths"][0]["permissions"][0]["service"], "dynamodb");
    // web/web's association cannot work: no path, and the reason.
    let web = ask(
        &w,
        &w.root,
        "/podiam/access/what?cluster=shop&namespace=web&serviceAccount=web",
    )
    .await;
    assert_eq!(web["paths"], json!([]));
    assert!(
        web["precedence"]
            .as_str()
            .unwrap()
            .contains("does not let pods.eks.amazonaws.com in"),
        "{web:#}"
    );

    let findings = ask(&w, &w.root, "/podiam/access/findings?cluster=shop").await;
    let codes: Vec<&str> = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["association-trust-mismatch"], "{findings:#}");
}

#[tokio::test]
async fn a_caller_sees_only_the_roles_and_associations_it_may_read() {
    let w = shop().await;
    let blind = w
        .user("blind", Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"eks:DescribePodIdentityAssociation","Resource":"*"}]}"#))
        .await;
    assert_eq!(ask(&w, &blind, &who_path()).await["entries"], json!([]));
    let findings = ask(&w, &blind, "/podiam/access/findings").await;
    assert_eq!(findings["findings"], json!([]));
    let sighted = w
        .user(
            "sighted",
            Some(&json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "eks:DescribePodIdentityAssociation", "Resource": "*"},
                {"Effect": "Allow", "Action": ["iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies"], "Resource": role_arn("pia")}]}).to_string()),
        )
        .await;
    assert_eq!(
        ask(&w, &sighted, &who_path()).await["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Roles but no associations: no Pod Identity path.
    let roles_only = w
        .user("roles-only", Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:GetRole","iam:GetRolePolicy","iam:ListAttachedRolePolicies"],"Resource":"*"}]}"#))
        .await;
    assert_eq!(
        ask(&w, &roles_only, &who_path()).await["entries"],
        json!([])
    );
}

#[tokio::test]
async fn bad_questions_get_aws_errors_and_unsigned_ones_nothing() {
    let w = shop().await;
    let missing = w
        .rest(
            "podiam",
            &w.root,
            "GET",
            "/podiam/access/who?action=s3:GetObject",
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.error_type(), "InvalidParameterException");
    assert!(
        missing.body.contains("resource is required"),
        "{}",
        missing.body
    );
    let days = w
        .rest(
            "podiam",
            &w.root,
            "GET",
            "/podiam/access/findings?unusedDays=0",
            None,
        )
        .await;
    assert_eq!(days.error_type(), "InvalidParameterException");
    let mut unsigned = Request::get(who_path()).body(Body::empty()).unwrap();
    unsigned
        .headers_mut()
        .insert(header::HOST, HeaderValue::from_static("127.0.0.1:4599"));
    let reply = w.send(unsigned).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(!reply.body.contains("carts"));
}
