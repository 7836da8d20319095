//! A control plane on the in-memory store with a fixed clock, a seeded RNG and one token
//! issuer, driven through `Router::oneshot` with requests signed as the AWS SDKs sign them.

// Several test binaries include this module and each uses a part of it, so `expect` would be
// unfulfilled in some of them.
#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses a part"
)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use podiam_crypto::{AeadKey, KeyId, Keyring, SeededRng, SigningKey, VerifyingKey};
use podiam_oidc::{Issuer, KeySet, ObjectRef, TokenRequest};
use podiam_server::{App, StartOptions, router, start};
use podiam_sigv4::{SigningParams, sign};
use podiam_store::MemoryStore;
use podiam_sts::{IssuerError, IssuerKeys};
use podiam_types::FixedClock;
use time::OffsetDateTime;
use tower::ServiceExt as _;

pub const ACCOUNT: &str = "637423329338";
pub const ISSUER: &str =
    "https://oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";
pub const ISSUER_HOST_PATH: &str =
    "oidc.eks.eu-central-1.amazonaws.com/id/5B1F8794C4C52E4101E98664FC964C3C";
pub const NOW: i64 = 1_795_000_000;
pub const ROLE: &str = "eks-workshop-carts-dynamo-irsa";

/// The one issuer the tests know; any other is unreachable.
#[derive(Debug)]
struct FixedIssuer(KeySet);

#[async_trait]
impl IssuerKeys for FixedIssuer {
    async fn keys(&self, issuer: &str, _refresh: bool) -> Result<KeySet, IssuerError> {
        let canonical = |url: &str| url.parse::<podiam_types::IssuerUrl>().ok();
        if canonical(issuer).is_some() && canonical(issuer) == canonical(ISSUER) {
            Ok(self.0.clone())
        } else {
            Err(IssuerError::Unreachable(format!("no such issuer {issuer}")))
        }
    }
}

/// Access key, secret and (for sessions) token.
#[derive(Debug, Clone)]
pub struct Creds {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The text of the first `<name>` element.
    pub fn tag(&self, name: &str) -> Option<String> {
        tag(&self.body, name)
    }

    /// The error code, for an error response.
    pub fn code(&self) -> String {
        self.tag("Code").unwrap_or_default()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// The rest-json error code (`x-amzn-ErrorType`).
    pub fn error_type(&self) -> String {
        self.headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// Asserts a 200 and returns self.
    pub fn ok(self) -> Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        self
    }
}

/// The text of the first `<name>` element of `xml`, with entities decoded.
pub fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml.get(start..)?.find(&close)?;
    Some(
        xml.get(start..end)?
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

pub struct World {
    pub app: App,
    pub router: Router,
    pub clock: Arc<FixedClock>,
    pub root: Creds,
    pub issuer: Issuer,
}

pub fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

const RSA_KEY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../podiam-crypto/testdata/rsa2048-pkcs1.pem"
));

impl World {
    /// A fresh account with the workshop's OIDC provider and IRSA role.
    pub async fn new() -> Self {
        Self::with_upstream(None).await
    }

    /// As [`World::new`], with roles in `upstream`'s accounts assumed through it.
    pub async fn with_upstream(upstream: Option<podiam_eks::Upstream>) -> Self {
        let clock = Arc::new(FixedClock::new(at(NOW)));
        let rng = Arc::new(SeededRng::new(b"server tests"));
        let kek = Arc::new(Keyring::new(
            AeadKey::from_bytes(KeyId(0), &[7; 32]).unwrap(),
        ));
        let issuer = Issuer::new(ISSUER, SigningKey::from_pem(RSA_KEY).unwrap()).unwrap();
        let mut keys = KeySet::new();
        keys.insert(VerifyingKey::from_jwk(&issuer.key().verifying_key().to_jwk()).unwrap());
        let started = start(
            Arc::new(MemoryStore::new()),
            kek,
            &StartOptions {
                account_id: Some(ACCOUNT.to_owned()),
                region: "eu-central-1".to_owned(),
                allow_http_issuers: false,
                allow_private_issuers: false,
                public_url: "http://127.0.0.1:4599".to_owned(),
                body_budget_bytes: 64 << 20,
                upstream,
                console_url: None,
            },
            Arc::new(FixedIssuer(keys)),
            clock.clone(),
            rng,
        )
        .await
        .unwrap();
        let (id, secret) = started.new_root_key.unwrap();
        let world = Self {
            router: router(started.app.clone()),
            app: started.app,
            clock,
            root: Creds {
                id,
                secret: secret.expose().clone(),
                token: None,
            },
            issuer,
        };
        world
            .iam(
                &world.root,
                &[
                    ("Action", "CreateOpenIDConnectProvider"),
                    ("Url", ISSUER),
                    ("ClientIDList.member.1", "sts.amazonaws.com"),
                ],
            )
            .await
            .ok();
        world
            .iam(
                &world.root,
                &[
                    ("Action", "CreateRole"),
                    ("RoleName", ROLE),
                    ("AssumeRolePolicyDocument", &irsa_trust()),
                ],
            )
            .await
            .ok();
        world
    }

    pub fn now(&self) -> OffsetDateTime {
        use podiam_types::Clock as _;
        self.clock.now()
    }

    /// Sends a raw request.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// A form POST, signed for `service` with `creds` (unsigned when `None`).
    pub fn request(
        &self,
        service: &str,
        creds: Option<&Creds>,
        params: &[(&str, &str)],
    ) -> Request<Body> {
        let version = if service == "sts" {
            "2011-06-15"
        } else {
            "2010-05-08"
        };
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(params.iter().copied());
        if !params.iter().any(|(k, _)| *k == "Version") {
            form.append_pair("Version", version);
        }
        let body = form.finish();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:4599"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        if let Some(creds) = creds {
            sign(
                "POST",
                "/",
                "",
                &mut headers,
                body.as_bytes(),
                &SigningParams {
                    access_key_id: &creds.id,
                    secret: &creds.secret,
                    session_token: creds.token.as_deref(),
                    region: "eu-central-1",
                    service,
                    time: self.now(),
                },
            )
            .unwrap();
        }
        let mut request = Request::post("/").body(Body::from(body)).unwrap();
        *request.headers_mut() = headers;
        request
    }

    /// A rest-json request (EKS: `eks`, EKS Auth: `eks-auth`), signed with `creds`.
    pub fn rest_request(
        &self,
        service: &str,
        creds: Option<&Creds>,
        method: &str,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Request<Body> {
        let body = body.map(ToString::to_string).unwrap_or_default();
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:4599"));
        if !body.is_empty() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Some(creds) = creds {
            sign(
                method,
                path,
                query,
                &mut headers,
                body.as_bytes(),
                &SigningParams {
                    access_key_id: &creds.id,
                    secret: &creds.secret,
                    session_token: creds.token.as_deref(),
                    region: "eu-central-1",
                    service,
                    time: self.now(),
                },
            )
            .unwrap();
        }
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .body(Body::from(body))
            .unwrap();
        *request.headers_mut() = headers;
        request
    }

    /// The headers of a DynamoDB request (`X-Amz-Target: DynamoDB_20120810.<operation>`) to
    /// the gateway, signed with `creds` as the SDK signs them.
    pub fn dynamodb_headers(&self, creds: &Creds, operation: &str, body: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:4600"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        headers.insert(
            "x-amz-target",
            HeaderValue::from_str(&format!("DynamoDB_20120810.{operation}")).unwrap(),
        );
        sign(
            "POST",
            "/",
            "",
            &mut headers,
            body.as_bytes(),
            &SigningParams {
                access_key_id: &creds.id,
                secret: &creds.secret,
                session_token: creds.token.as_deref(),
                region: "eu-central-1",
                service: "dynamodb",
                time: self.now(),
            },
        )
        .unwrap();
        headers
    }

    /// A signed rest-json call; the reply's body is JSON.
    pub async fn rest(
        &self,
        service: &str,
        creds: &Creds,
        method: &str,
        path_and_query: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        self.send(self.rest_request(service, Some(creds), method, path_and_query, body.as_ref()))
            .await
    }

    pub async fn iam(&self, creds: &Creds, params: &[(&str, &str)]) -> Reply {
        self.send(self.request("iam", Some(creds), params)).await
    }

    pub async fn sts(&self, creds: Option<&Creds>, params: &[(&str, &str)]) -> Reply {
        self.send(self.request("sts", creds, params)).await
    }

    /// A service-account token of `namespace/sa` for `audience`, issued at `issued_at`.
    pub fn token(&self, namespace: &str, sa: &str, audience: &str, issued_at: i64) -> String {
        let request = TokenRequest {
            namespace: namespace.into(),
            service_account: ObjectRef {
                name: sa.into(),
                uid: "2d8b4a0e-1c1f-4a57-9d42-5f8f1f5a9c11".into(),
            },
            audiences: vec![audience.into()],
            pod: None,
            node: None,
            lifetime: Duration::from_secs(3600),
            warn_after: None,
        };
        self.issuer
            .mint(&request, at(issued_at), &SeededRng::new(b"token"))
            .unwrap()
    }

    /// `GetRole`'s `RoleLastUsed` for `role` as `(LastUsedDate, Region)`, once the use is
    /// recorded (in the background); `None` if it is not within a second.
    pub async fn role_last_used(&self, role: &str) -> Option<(String, String)> {
        for _ in 0..100 {
            let reply = self
                .iam(&self.root, &[("Action", "GetRole"), ("RoleName", role)])
                .await
                .ok();
            if let (Some(date), Some(region)) = (reply.tag("LastUsedDate"), reply.tag("Region")) {
                return Some((date, region));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// `AssumeRoleWithWebIdentity` for the workshop role.
    pub async fn web_identity(&self, token: &str) -> Reply {
        self.sts(
            None,
            &[
                ("Action", "AssumeRoleWithWebIdentity"),
                ("RoleArn", &role_arn(ROLE)),
                ("RoleSessionName", "botocore-session-1795000000"),
                ("WebIdentityToken", token),
            ],
        )
        .await
    }

    /// A user with an access key and the given inline policy (if any).
    pub async fn user(&self, name: &str, policy: Option<&str>) -> Creds {
        self.iam(&self.root, &[("Action", "CreateUser"), ("UserName", name)])
            .await
            .ok();
        if let Some(policy) = policy {
            self.iam(
                &self.root,
                &[
                    ("Action", "PutUserPolicy"),
                    ("UserName", name),
                    ("PolicyName", "inline"),
                    ("PolicyDocument", policy),
                ],
            )
            .await
            .ok();
        }
        let reply = self
            .iam(
                &self.root,
                &[("Action", "CreateAccessKey"), ("UserName", name)],
            )
            .await
            .ok();
        Creds {
            id: reply.tag("AccessKeyId").unwrap(),
            secret: reply.tag("SecretAccessKey").unwrap(),
            token: None,
        }
    }
}

pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// The workshop's trust policy, pretty-printed as people write it.
pub fn irsa_trust() -> String {
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{
      "Effect": "Allow",
      "Principal": {{
        "Federated": "arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER_HOST_PATH}"
      }},
      "Action": [
        "sts:TagSession",
        "sts:AssumeRoleWithWebIdentity"
      ],
      "Condition": {{
        "StringEquals": {{
          "{ISSUER_HOST_PATH}:sub": "system:serviceaccount:carts:carts",
          "{ISSUER_HOST_PATH}:aud": "sts.amazonaws.com"
        }}
      }}
    }}
  ]
}}"#
    )
}

/// Session credentials from an STS response.
pub fn session_creds(reply: &Reply) -> Creds {
    Creds {
        id: reply.tag("AccessKeyId").unwrap(),
        secret: reply.tag("SecretAccessKey").unwrap(),
        token: reply.tag("SessionToken"),
    }
}
