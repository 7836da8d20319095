//! EKS and EKS Auth through `Router::oneshot`: the rest-json wire, authorization, the pod
//! identity exchange and the hosted issuers' discovery documents.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use support::{ACCOUNT, Creds, World};

const PIA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

async fn cluster(w: &World, name: &str) -> Value {
    w.rest(
        "eks",
        &w.root,
        "POST",
        "/clusters",
        Some(json!({"name": name, "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/cluster"), "resourcesVpcConfig": {"subnetIds": ["subnet-1"]}})),
    )
    .await
    .ok()
    .json()
}

async fn pia_role(w: &World, name: &str) {
    w.iam(
        &w.root,
        &[
            ("Action", "CreateRole"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", PIA_TRUST),
        ],
    )
    .await
    .ok();
}

async fn token(w: &World, cluster: &str, ns: &str, sa: &str, audience: &str) -> String {
    let reply = w
        .rest(
            "eks",
            &w.root,
            "POST",
            &format!("/clusters/{cluster}/podiam/service-account-token"),
            Some(json!({"namespace": ns, "serviceAccount": sa, "audiences": [audience], "podName": "carts-abc", "nodeName": "node-1"})),
        )
        .await
        .ok();
    reply
        .json()
        .get("token")
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn clusters_round_trip_in_the_eks_shapes() {
    let w = World::new().await;
    let created = cluster(&w, "eks-workshop").await;
    let c = &created["cluster"];
    assert_eq!(c["name"], "eks-workshop");
    assert_eq!(
        c["arn"],
        format!("arn:aws:eks:eu-central-1:{ACCOUNT}:cluster/eks-workshop")
    );
    assert_eq!(c["status"], "ACTIVE");
    assert!(c["createdAt"].is_i64(), "epoch seconds as a number");
    let issuer = c["identity"]["oidc"]["issuer"].as_str().unwrap();
    assert!(
        issuer.starts_with("http://127.0.0.1:4599/oidc/id/"),
        "{issuer}"
    );

    let again = w
        .rest(
            "eks",
            &w.root,
            "POST",
            "/clusters",
            Some(json!({"name": "eks-workshop"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_type(), "ResourceInUseException");
    assert!(
        again.json()["message"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );

    let described = w
        .rest("eks", &w.root, "GET", "/clusters/eks-workshop", None)
        .await
        .ok();
    assert_eq!(
        described.json()["cluster"]["identity"]["oidc"]["issuer"],
        issuer
    );
    assert!(described.headers.contains_key("x-amzn-requestid"));

    cluster(&w, "second").await;
    let page = w
        .rest("eks", &w.root, "GET", "/clusters?maxResults=1", None)
        .await
        .ok()
        .json();
    assert_eq!(page["clusters"], json!(["eks-workshop"]));
    let next = page["nextToken"].as_str().unwrap().to_owned();
    let rest = w
        .rest(
            "eks",
            &w.root,
            "GET",
            &format!("/clusters?maxResults=1&nextToken={next}"),
            None,
        )
        .await
        .ok()
        .json();
    assert_eq!(rest["clusters"], json!(["second"]));
    assert!(rest["nextToken"].is_null());

    let bad = w
        .rest("eks", &w.root, "GET", "/clusters?maxResults=0", None)
        .await;
    assert_eq!(bad.error_type(), "InvalidParameterException");

    let deleted = w
        .rest("eks", &w.root, "DELETE", "/clusters/second", None)
        .await
        .ok()
        .json();
    assert_eq!(deleted["cluster"]["status"], "DELETING");
    let gone = w
        .rest("eks", &w.root, "GET", "/clusters/second", None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.error_type(), "ResourceNotFoundException");

    // The hosted issuer publishes discovery and keys, unsigned, as kube-apiserver does.
    let path = issuer.trim_start_matches("http://127.0.0.1:4599");
    let discovery = w
        .send(
            Request::get(format!("{path}/.well-known/openid-configuration"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .ok()
        .json();
    assert_eq!(discovery["issuer"], issuer);
    assert_eq!(discovery["jwks_uri"], format!("{issuer}/openid/v1/jwks"));
    let jwks = w
        .send(
            Request::get(format!("{path}/openid/v1/jwks"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .ok()
        .json();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert!(jwks["keys"][0].get("d").is_none(), "no private parts");
    let unknown = w
        .send(
            Request::get("/oidc/id/NOPE/openid/v1/jwks")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn associations_and_their_errors() {
    let w = World::new().await;
    cluster(&w, "c1").await;
    pia_role(&w, "pia").await;
    let role = format!("arn:aws:iam::{ACCOUNT}:role/pia");
    let created = w
        .rest(
            "eks",
            &w.root,
            "POST",
            "/clusters/c1/pod-identity-associations",
            Some(json!({"namespace": "carts", "serviceAccount": "carts", "roleArn": role, "tags": {"team": "a"}, "clientRequestToken": "9a91a181-e23b-42ab-8680-915f4ab42a32"})),
        )
        .await
        .ok()
        .json();
    let a = &created["association"];
    let id = a["associationId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("a-") && id.len() == 19);
    assert_eq!(
        a["associationArn"],
        format!("arn:aws:eks:eu-central-1:{ACCOUNT}:podidentityassociation/c1/{id}")
    );
    assert_eq!(a["tags"], json!({"team": "a"}));
    assert!(a["createdAt"].is_i64() && a["modifiedAt"].is_i64());

    let dup = w
        .rest(
            "eks",
            &w.root,
            "POST",
            "/clusters/c1/pod-identity-associations",
            Some(json!({"namespace": "carts", "serviceAccount": "carts", "roleArn": role})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.error_type(), "ResourceInUseException");

    for (body, code) in [
        (
            json!({"namespace": "Bad_NS", "serviceAccount": "x", "roleArn": role}),
            "InvalidParameterException",
        ),
        (
            json!({"namespace": "x", "serviceAccount": "x", "roleArn": "not-an-arn"}),
            "InvalidParameterException",
        ),
        (
            json!({"namespace": "x", "serviceAccount": "x"}),
            "InvalidParameterException",
        ),
        (
            json!({"namespace": 5, "serviceAccount": "x", "roleArn": role}),
            "InvalidParameterException",
        ),
    ] {
        let reply = w
            .rest(
                "eks",
                &w.root,
                "POST",
                "/clusters/c1/pod-identity-associations",
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.body
        );
        assert_eq!(reply.error_type(), code, "{body}");
    }
    let not_json = w
        .send({
            let mut r = w.rest_request(
                "eks",
                Some(&w.root),
                "POST",
                "/clusters/c1/pod-identity-associations",
                None,
            );
            *r.body_mut() = Body::from("{not json");
            r
        })
        .await;
    assert_eq!(not_json.status.as_u16() / 100, 4, "{}", not_json.body);
    let no_cluster = w
        .rest(
            "eks",
            &w.root,
            "POST",
            "/clusters/nope/pod-identity-associations",
            Some(json!({"namespace": "x", "serviceAccount": "x", "roleArn": role})),
        )
        .await;
    assert_eq!(no_cluster.error_type(), "ResourceNotFoundException");

    let listed = w
        .rest(
            "eks",
            &w.root,
            "GET",
            "/clusters/c1/pod-identity-associations?namespace=carts&maxResults=10",
            None,
        )
        .await
        .ok()
        .json();
    assert_eq!(
        listed["associations"],
        json!([{
            "clusterName": "c1",
            "namespace": "carts",
            "serviceAccount": "carts",
            "associationArn": format!("arn:aws:eks:eu-central-1:{ACCOUNT}:podidentityassociation/c1/{id}"),
            "associationId": id,
        }])
    );
    let path = format!("/clusters/c1/pod-identity-associations/{id}");
    let updated = w
        .rest(
            "eks",
            &w.root,
            "POST",
            &path,
            Some(json!({"disableSessionTags": true, "clientRequestToken": "5f0c1c1e-7a43-4a0e-9a57-3d2b8f9e6c11"})),
        )
        .await
        .ok()
        .json();
    assert_eq!(updated["association"]["disableSessionTags"], true);
    let described = w.rest("eks", &w.root, "GET", &path, None).await.ok().json();
    assert_eq!(described["association"]["disableSessionTags"], true);
    let deleted = w
        .rest("eks", &w.root, "DELETE", &path, None)
        .await
        .ok()
        .json();
    assert_eq!(deleted["association"]["associationId"], id);
    let missing = w.rest("eks", &w.root, "GET", &path, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json()["message"],
        "No Pod Identity Association found"
    );
}

#[tokio::test]
async fn rest_json_calls_are_signed_and_authorized() {
    let w = World::new().await;
    cluster(&w, "c1").await;
    let unsigned = w
        .send(w.rest_request("eks", None, "GET", "/clusters", None))
        .await;
    assert_eq!(unsigned.status, StatusCode::FORBIDDEN);
    assert_eq!(unsigned.error_type(), "MissingAuthenticationTokenException");
    // Signed for the wrong service.
    let wrong = w.rest("sts", &w.root, "GET", "/clusters", None).await;
    assert_eq!(wrong.status.as_u16(), 403, "{}", wrong.body);
    let bad_secret = Creds {
        secret: "x".repeat(40),
        ..w.root.clone()
    };
    let reply = w.rest("eks", &bad_secret, "GET", "/clusters", None).await;
    assert_eq!(reply.error_type(), "InvalidSignatureException");

    let viewer = w
        .user(
            "viewer",
            Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["eks:Describe*","eks:List*"],"Resource":"*"}]}"#),
        )
        .await;
    w.rest("eks", &viewer, "GET", "/clusters/c1", None)
        .await
        .ok();
    let denied = w.rest("eks", &viewer, "DELETE", "/clusters/c1", None).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.error_type(), "AccessDeniedException");
    assert!(
        denied.json()["message"]
            .as_str()
            .unwrap()
            .contains("is not authorized to perform: eks:DeleteCluster")
    );
    // Creating an association passes a role: iam:PassRole is needed too.
    let creator = w
        .user(
            "creator",
            Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"eks:CreatePodIdentityAssociation","Resource":"*"}]}"#),
        )
        .await;
    let pass = w
        .rest(
            "eks",
            &creator,
            "POST",
            "/clusters/c1/pod-identity-associations",
            Some(json!({"namespace": "x", "serviceAccount": "x", "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/r")})),
        )
        .await;
    assert_eq!(pass.error_type(), "AccessDeniedException");
    assert!(pass.body.contains("iam:PassRole"), "{}", pass.body);
}

#[tokio::test]
async fn assume_role_for_pod_identity_over_the_wire() {
    let w = World::new().await;
    cluster(&w, "eks-workshop").await;
    pia_role(&w, "eks-workshop-carts-dynamo-pia").await;
    let created = w
        .rest(
            "eks",
            &w.root,
            "POST",
            "/clusters/eks-workshop/pod-identity-associations",
            Some(json!({"namespace": "carts", "serviceAccount": "carts", "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/eks-workshop-carts-dynamo-pia")})),
        )
        .await
        .ok()
        .json();
    let id = created["association"]["associationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let pod_token = token(
        &w,
        "eks-workshop",
        "carts",
        "carts",
        "pods.eks.amazonaws.com",
    )
    .await;

    // The node agent's own identity: a user allowed to call EKS Auth, tagged with its node.
    let agent = w
        .user(
            "node-agent",
            Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"eks-auth:AssumeRoleForPodIdentity","Resource":"*"}]}"#),
        )
        .await;
    let path = "/clusters/eks-workshop/assume-role-for-pod-identity";
    // Untagged, it is no node: a token bound to node-1 is refused, eksNodeName or not.
    for body in [
        json!({"token": pod_token}),
        json!({"token": pod_token, "eksNodeName": "node-1"}),
    ] {
        let refused = w.rest("eks-auth", &agent, "POST", path, Some(body)).await;
        // EKS Auth answers AccessDeniedException with HTTP 400, as its API reference says.
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert_eq!(refused.error_type(), "AccessDeniedException");
    }
    w.iam(
        &w.root,
        &[
            ("Action", "TagUser"),
            ("UserName", "node-agent"),
            ("Tags.member.1.Key", "podiam:node-name"),
            ("Tags.member.1.Value", "node-1"),
        ],
    )
    .await
    .ok();
    let path = "/clusters/eks-workshop/assume-role-for-pod-identity";
    let reply = w
        .rest(
            "eks-auth",
            &agent,
            "POST",
            path,
            Some(json!({"token": pod_token})),
        )
        .await
        .ok()
        .json();
    assert_eq!(
        reply["subject"],
        json!({"namespace": "carts", "serviceAccount": "carts"})
    );
    assert_eq!(reply["audience"], "pods.eks.amazonaws.com");
    assert_eq!(reply["podIdentityAssociation"]["associationId"], id);
    let arn = reply["assumedRoleUser"]["arn"].as_str().unwrap();
    assert!(
        arn.starts_with(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/eks-workshop-carts-dynamo-pia/eks-eks-workshop-carts-abc-"
        )),
        "{arn}"
    );
    assert!(
        reply["assumedRoleUser"]["assumeRoleId"]
            .as_str()
            .unwrap()
            .starts_with("AROA")
    );
    let creds = &reply["credentials"];
    assert!(creds["expiration"].is_i64());
    assert_eq!(
        creds["expiration"].as_i64().unwrap(),
        support::NOW + 6 * 3600
    );
    // The pod's role shows the use in GetRole, with the region EKS Auth was signed for.
    let (_, region) = w
        .role_last_used("eks-workshop-carts-dynamo-pia")
        .await
        .unwrap();
    assert_eq!(region, "eu-central-1");

    // The credentials work, and carry the pod's session tags into IAM decisions.
    let session = Creds {
        id: creds["accessKeyId"].as_str().unwrap().to_owned(),
        secret: creds["secretAccessKey"].as_str().unwrap().to_owned(),
        token: creds["sessionToken"].as_str().map(str::to_owned),
    };
    let me = w
        .sts(Some(&session), &[("Action", "GetCallerIdentity")])
        .await
        .ok();
    assert_eq!(me.tag("Arn").unwrap(), arn);
    w.iam(
        &w.root,
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", "eks-workshop-carts-dynamo-pia"),
            ("PolicyName", "own-namespace"),
            ("PolicyDocument", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetRole","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/kubernetes-namespace":"carts"}}}]}"#),
        ],
    )
    .await
    .ok();
    w.iam(
        &session,
        &[
            ("Action", "GetRole"),
            ("RoleName", "eks-workshop-carts-dynamo-pia"),
        ],
    )
    .await
    .ok();

    // Refusals with EKS Auth's codes.
    let cases = [
        (
            json!({"token": "abc.def.ghi"}),
            400,
            "InvalidTokenException",
        ),
        (
            json!({"token": token(&w, "eks-workshop", "carts", "carts", "sts.amazonaws.com").await}),
            400,
            "InvalidTokenException",
        ),
        (
            json!({"token": token(&w, "eks-workshop", "orders", "orders", "pods.eks.amazonaws.com").await}),
            404,
            "ResourceNotFoundException",
        ),
        (
            json!({"token": pod_token, "eksNodeName": "node-2"}),
            400,
            "AccessDeniedException",
        ),
        (json!({}), 400, "InvalidParameterException"),
    ];
    for (body, status, code) in cases {
        let reply = w
            .rest("eks-auth", &agent, "POST", path, Some(body.clone()))
            .await;
        assert_eq!(reply.status.as_u16(), status, "{body}: {}", reply.body);
        assert_eq!(reply.error_type(), code, "{body}");
    }
    let no_cluster = w
        .rest(
            "eks-auth",
            &agent,
            "POST",
            "/clusters/nope/assume-role-for-pod-identity",
            Some(json!({"token": pod_token})),
        )
        .await;
    assert_eq!(no_cluster.error_type(), "ResourceNotFoundException");
    // Without eks-auth permission.
    let stranger = w.user("stranger", None).await;
    let denied = w
        .rest(
            "eks-auth",
            &stranger,
            "POST",
            path,
            Some(json!({"token": pod_token})),
        )
        .await;
    assert_eq!(denied.status.as_u16(), 400);
    assert_eq!(denied.error_type(), "AccessDeniedException");
    // Expired token.
    w.clock.advance(time::Duration::hours(2));
    let expired = w
        .rest(
            "eks-auth",
            &agent,
            "POST",
            path,
            Some(json!({"token": pod_token})),
        )
        .await;
    assert_eq!(expired.error_type(), "ExpiredTokenException");
}

mod hostile {
    //! Arbitrary JSON (and not JSON) to the rest-json operations: a 4xx, never a 5xx.

    use proptest::prelude::*;

    use super::support::World;

    fn value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,30}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from("arn:aws:iam::637423329338:role/r")),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    const PATHS: &[(&str, &str, &str)] = &[
        ("eks", "POST", "/clusters"),
        ("eks", "POST", "/clusters/c1/pod-identity-associations"),
        (
            "eks",
            "POST",
            "/clusters/c1/pod-identity-associations/a-00000000000000000",
        ),
        ("eks", "POST", "/clusters/c1/podiam/service-account-token"),
        (
            "eks-auth",
            "POST",
            "/clusters/c1/assume-role-for-pod-identity",
        ),
        ("eks", "GET", "/clusters?maxResults=x&nextToken=%ff"),
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bodies_are_answered_without_5xx(
            target in proptest::sample::select(PATHS),
            fields in proptest::collection::btree_map(
                proptest::sample::select(&["name", "namespace", "serviceAccount", "roleArn", "token", "tags", "audiences", "ttl", "podiamIssuer", "disableSessionTags", "targetRoleArn", "policy"][..]),
                value(),
                0..6,
            ),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let w = World::new().await;
                w.rest("eks", &w.root, "POST", "/clusters", Some(serde_json::json!({"name": "c1"}))).await;
                let (service, method, path) = target;
                let body = serde_json::Value::Object(fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect());
                let reply = w.rest(service, &w.root, method, path, Some(body)).await;
                prop_assert!(reply.status.as_u16() < 500, "{path} -> {} {}", reply.status, reply.body);
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn retried_eks_writes_answer_the_first_result() {
    const TOKEN: &str = "9a91a181-e23b-42ab-8680-915f4ab42a32";
    let w = World::new().await;
    let create_cluster = |role: &str| json!({"name": "c1", "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "resourcesVpcConfig": {"subnetIds": ["subnet-1"]}, "clientRequestToken": TOKEN});
    let first = w
        .rest(
            "eks",
            &w.root,
            "POST",
            "/clusters",
            Some(create_cluster("cluster")),
        )
        .await
        .ok()
        .json();
    w.clock.advance(time::Duration::seconds(30));
    // The first answer was lost: the retry gets the same cluster (its random issuer too).
    let retry = w
        .rest(
            "eks",
            &w.root,
            "POST",
            "/clusters",
            Some(create_cluster("cluster")),
        )
        .await
        .ok()
        .json();
    assert_eq!(retry, first);
    assert!(
        !retry.to_string().contains(TOKEN),
        "the token is not echoed"
    );
    let other = w
        .rest(
            "eks",
            &w.root,
            "POST",
            "/clusters",
            Some(create_cluster("other")),
        )
        .await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "{}", other.body);
    assert_eq!(other.error_type(), "InvalidRequestException");
    assert!(
        other.json()["message"]
            .as_str()
            .unwrap()
            .contains("already used for a request with different parameters")
    );
    for (token, message) in [
        (json!("short"), "between 33 and 126 characters"),
        (json!(5), "clientRequestToken must be a string"),
    ] {
        let refused = w
            .rest(
                "eks",
                &w.root,
                "POST",
                "/clusters",
                Some(json!({"name": "c2", "clientRequestToken": token})),
            )
            .await;
        assert_eq!(refused.error_type(), "InvalidParameterException");
        assert!(refused.body.contains(message), "{}", refused.body);
    }

    pia_role(&w, "pia").await;
    pia_role(&w, "other").await;
    let associate = |sa: &str, role: &str| json!({"namespace": "carts", "serviceAccount": sa, "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "clientRequestToken": TOKEN});
    let path = "/clusters/c1/pod-identity-associations";
    let created = w
        .rest(
            "eks",
            &w.root,
            "POST",
            path,
            Some(associate("carts", "pia")),
        )
        .await
        .ok()
        .json();
    w.clock.advance(time::Duration::seconds(30));
    let retried = w
        .rest(
            "eks",
            &w.root,
            "POST",
            path,
            Some(associate("carts", "pia")),
        )
        .await
        .ok()
        .json();
    assert_eq!(retried, created);
    let id = created["association"]["associationId"]
        .as_str()
        .unwrap()
        .to_owned();
    for body in [associate("carts", "other"), associate("orders", "pia")] {
        let reused = w
            .rest("eks", &w.root, "POST", path, Some(body.clone()))
            .await;
        assert_eq!(reused.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reused.error_type(), "InvalidRequestException", "{body}");
        // Never another request's association.
        assert!(!reused.body.contains(&id), "{}", reused.body);
    }
    // Without the token it is a new request, as before.
    let dup = w
        .rest(
            "eks",
            &w.root,
            "POST",
            path,
            Some(json!({"namespace": "carts", "serviceAccount": "carts", "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/pia")})),
        )
        .await;
    assert_eq!(dup.error_type(), "ResourceInUseException");

    // An update retried after its answer was lost is not applied twice.
    const UPDATE: &str = "2d7bb8a4-9c5e-4f0a-b3e1-6a4f0f3c2b99";
    let association = format!("{path}/{id}");
    let update = |role: &str| json!({"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "clientRequestToken": UPDATE});
    let updated = w
        .rest("eks", &w.root, "POST", &association, Some(update("other")))
        .await
        .ok()
        .json();
    w.clock.advance(time::Duration::seconds(30));
    let again = w
        .rest("eks", &w.root, "POST", &association, Some(update("other")))
        .await
        .ok()
        .json();
    assert_eq!(again, updated);
    assert_eq!(
        again["association"]["modifiedAt"],
        updated["association"]["modifiedAt"]
    );
    let mismatch = w
        .rest("eks", &w.root, "POST", &association, Some(update("pia")))
        .await;
    assert_eq!(mismatch.error_type(), "InvalidRequestException");
}
