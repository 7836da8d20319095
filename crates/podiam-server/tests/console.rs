//! The web console through `Router::oneshot`: the one-time sign-in URL (single use, expiry by
//! the injected clock), the session cookie's attributes, CSRF refusals, the security headers
//! of every page, and pages that show only what the signed-in principal may read.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test fixtures fail loudly"
)]

mod support;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use serde_json::json;
use support::{ACCOUNT, Creds, ROLE, Reply, World, role_arn};

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const ORIGIN: &str = "http://127.0.0.1:4599";

/// Asks for a sign-in URL with `creds`; returns its path and query.
async fn signin_path(w: &World, creds: &Creds) -> String {
    let reply = w
        .rest(
            "podiam",
            creds,
            "POST",
            "/podiam/console/signin-token",
            None,
        )
        .await
        .ok();
    let url = reply.json()["signinUrl"].as_str().unwrap().to_owned();
    let path = url.strip_prefix(ORIGIN).unwrap().to_owned();
    assert!(path.starts_with("/console/signin?token="), "{url}");
    path
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path).body(Body::empty()).unwrap();
    request
        .headers_mut()
        .insert(header::HOST, HeaderValue::from_static("127.0.0.1:4599"));
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
    }
    request
}

/// A form POST from the console's own page (or not, with other `headers`).
fn post(
    path: &str,
    cookie: &str,
    headers: &[(&str, &str)],
    fields: &[(&str, &str)],
) -> Request<Body> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(fields.iter().copied());
    let mut request = Request::post(path).body(Body::from(form.finish())).unwrap();
    let h = request.headers_mut();
    h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:4599"));
    h.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    for (name, value) in headers {
        h.insert(
            header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    request
}

const SAME_ORIGIN: &[(&str, &str)] = &[("origin", ORIGIN), ("sec-fetch-site", "same-origin")];

fn set_cookie(reply: &Reply) -> String {
    reply
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// Signs in with `creds`; returns the `Cookie` header value.
async fn sign_in(w: &World, creds: &Creds) -> String {
    let reply = w.send(get(&signin_path(w, creds).await, None)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.headers[header::LOCATION], "/console/");
    let set = set_cookie(&reply);
    set.split(';').next().unwrap().to_owned()
}

/// The session's CSRF token, from a page's sign-out form.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_owned()
}

fn max_age(set_cookie: &str) -> i64 {
    set_cookie
        .split(';')
        .find_map(|a| a.trim().strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_signin_url_works_once_and_sets_a_strict_cookie() {
    let w = World::new().await;
    let path = signin_path(&w, &w.root).await;
    let reply = w.send(get(&path, None)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let set = set_cookie(&reply);
    let attributes: Vec<&str> = set.split(';').map(str::trim).collect();
    assert!(attributes[0].starts_with("podiam-console="), "{set}");
    assert!(attributes[0].len() > "podiam-console=".len() + 40, "{set}");
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/console/"] {
        assert!(attributes.contains(&wanted), "{set} lacks {wanted}");
    }
    // Plain http here: a Secure cookie would never come back.
    assert!(!attributes.contains(&"Secure"), "{set}");
    assert_eq!(max_age(&set), 3600);

    let again = w.send(get(&path, None)).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(again.body.contains("already been used"), "{}", again.body);
    assert!(again.headers.get(header::SET_COOKIE).is_none());

    let cookie = attributes[0];
    let overview = w.send(get("/console/", Some(cookie))).await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
    assert!(
        overview
            .body
            .contains(&format!("arn:aws:iam::{ACCOUNT}:root"))
    );
    // A made-up session id is no way in.
    let forged = w
        .send(get(
            "/console/",
            Some("podiam-console=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("Not signed in"));
}

#[tokio::test]
async fn a_signin_url_expires_after_five_minutes() {
    let w = World::new().await;
    let path = signin_path(&w, &w.root).await;
    w.clock.advance(time::Duration::seconds(5 * 60));
    let reply = w.send(get(&path, None)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.body.contains("has expired"), "{}", reply.body);

    // Just in time is in time.
    let path = signin_path(&w, &w.root).await;
    w.clock.advance(time::Duration::seconds(5 * 60 - 1));
    assert_eq!(w.send(get(&path, None)).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_session_ends_after_an_hour() {
    let w = World::new().await;
    let cookie = sign_in(&w, &w.root).await;
    w.clock.advance(time::Duration::seconds(3599));
    assert_eq!(
        w.send(get("/console/", Some(&cookie))).await.status,
        StatusCode::OK
    );
    w.clock.advance(time::Duration::seconds(1));
    let reply = w.send(get("/console/", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // The stale cookie is cleared.
    assert_eq!(max_age(&set_cookie(&reply)), 0);
}

#[tokio::test]
async fn a_role_session_console_ends_with_the_role_session() {
    let w = World::new().await;
    let token = w.token("carts", "carts", "sts.amazonaws.com", support::NOW);
    let assumed = w.web_identity(&token).await.ok();
    let creds = Creds {
        id: assumed.tag("AccessKeyId").unwrap(),
        secret: assumed.tag("SecretAccessKey").unwrap(),
        token: Some(assumed.tag("SessionToken").unwrap()),
    };
    // Half the role session is gone: the console gets the other half, not an hour.
    w.clock.advance(time::Duration::seconds(1800));
    let reply = w.send(get(&signin_path(&w, &creds).await, None)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let set = set_cookie(&reply);
    assert_eq!(max_age(&set), 1800);
    let cookie = set.split(';').next().unwrap().to_owned();
    let overview = w.send(get("/console/", Some(&cookie))).await;
    assert!(
        overview
            .body
            .contains(&format!("arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/")),
        "{}",
        overview.body
    );
    w.clock.advance(time::Duration::seconds(1800));
    assert_eq!(
        w.send(get("/console/", Some(&cookie))).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn state_changing_requests_need_the_csrf_token_and_the_same_origin() {
    let w = World::new().await;
    let cookie = sign_in(&w, &w.root).await;
    let page = w.send(get("/console/", Some(&cookie))).await.ok();
    let token = csrf(&page.body);
    assert!(token.len() >= 40);

    for (headers, fields, why) in [
        (SAME_ORIGIN, vec![], "CSRF"),
        (SAME_ORIGIN, vec![("csrf", "not-the-token")], "CSRF"),
        (
            &[("origin", "http://evil.example")][..],
            vec![("csrf", token.as_str())],
            "another origin",
        ),
        (
            &[("sec-fetch-site", "cross-site")][..],
            vec![("csrf", token.as_str())],
            "another site",
        ),
        (
            &[("origin", "null"), ("sec-fetch-site", "same-site")][..],
            vec![("csrf", token.as_str())],
            "another site",
        ),
        (&[][..], vec![("csrf", token.as_str())], "neither"),
    ] {
        for path in ["/console/signout", "/console/simulate"] {
            let reply = w.send(post(path, &cookie, headers, &fields)).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} {headers:?}");
            assert!(
                reply.body.contains(why),
                "{path} {headers:?}: {}",
                reply.body
            );
        }
        // Still signed in.
        assert_eq!(
            w.send(get("/console/", Some(&cookie))).await.status,
            StatusCode::OK
        );
    }

    // Origin: null (Referrer-Policy: no-referrer) with Sec-Fetch-Site same-origin is the
    // browser's own form.
    let reply = w
        .send(post(
            "/console/signout",
            &cookie,
            &[("origin", "null"), ("sec-fetch-site", "same-origin")],
            &[("csrf", &token)],
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("signed out"));
    assert_eq!(max_age(&set_cookie(&reply)), 0);
    assert_eq!(
        w.send(get("/console/", Some(&cookie))).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn every_console_response_carries_the_security_headers() {
    let w = World::new().await;
    let cookie = sign_in(&w, &w.root).await;
    let token = csrf(&w.send(get("/console/", Some(&cookie))).await.body);
    let mut replies = Vec::new();
    for path in [
        "/console/",
        "/console/clusters",
        "/console/roles",
        &format!("/console/roles/{ROLE}"),
        "/console/roles/no-such-role",
        "/console/audit",
        "/console/access",
        "/console/access?cluster=x&action=s3:GetObject&resource=*",
        "/console/findings",
        "/console/simulate",
        "/console/console.css",
        "/console/no-such-page",
        "/console",
    ] {
        replies.push((path.to_owned(), w.send(get(path, Some(&cookie))).await));
        replies.push((format!("{path} signed out"), w.send(get(path, None)).await));
    }
    replies.push((
        "bad token".to_owned(),
        w.send(get("/console/signin?token=nope", None)).await,
    ));
    replies.push((
        "simulate".to_owned(),
        w.send(post(
            "/console/simulate",
            &cookie,
            SAME_ORIGIN,
            &[
                ("csrf", &token),
                ("principal", &role_arn(ROLE)),
                ("actions", "s3:GetObject"),
            ],
        ))
        .await,
    ));
    let mut put = get("/console/roles", Some(&cookie));
    *put.method_mut() = Method::PUT;
    let not_allowed = w.send(put).await;
    assert_eq!(not_allowed.status, StatusCode::METHOD_NOT_ALLOWED);
    replies.push(("PUT".to_owned(), not_allowed));
    replies.push((
        "refused".to_owned(),
        w.send(post("/console/simulate", &cookie, SAME_ORIGIN, &[]))
            .await,
    ));
    for (what, reply) in &replies {
        let header = |name: &str| {
            reply
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert_eq!(header("content-security-policy"), CSP, "{what}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
        assert_eq!(header("cache-control"), "no-store", "{what}");
        assert!(
            !reply.body.contains("<script") && !reply.body.contains("style="),
            "{what}: no inline script or style"
        );
    }
}

#[tokio::test]
async fn without_get_role_a_role_page_is_access_denied() {
    let w = World::new().await;
    let lister = w
        .user(
            "lister",
            Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}]}"#),
        )
        .await;
    let cookie = sign_in(&w, &lister).await;
    let roles = w.send(get("/console/roles", Some(&cookie))).await;
    assert_eq!(roles.status, StatusCode::OK, "{}", roles.body);
    assert!(roles.body.contains(ROLE));

    for name in [ROLE, "no-such-role"] {
        let page = w
            .send(get(&format!("/console/roles/{name}"), Some(&cookie)))
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        let arn = role_arn(name);
        assert!(
            page.body.contains(&format!(
                "AccessDenied</strong>: User: arn:aws:iam::{ACCOUNT}:user/lister is not authorized to perform: iam:GetRole on resource: {arn} because no identity-based policy allows the iam:GetRole action"
            )),
            "{}",
            page.body
        );
        assert!(
            !page.body.contains("AssumeRoleWithWebIdentity"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("Trust policy"));
    }
    // Nor the clusters, the audit feed, or a simulation.
    for path in ["/console/clusters", "/console/audit"] {
        let page = w.send(get(path, Some(&cookie))).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("is not authorized to perform"), "{path}");
        // A refused page does not reload itself (each reload would be another refused call).
        assert!(!page.body.contains("http-equiv=\"refresh\""), "{path}");
    }

    // The root sees the role with its trust policy, pretty-printed.
    let root = sign_in(&w, &w.root).await;
    let page = w
        .send(get(&format!("/console/roles/{ROLE}"), Some(&root)))
        .await
        .ok();
    assert!(page.body.contains("Trust policy"));
    assert!(
        page.body
            .contains("&quot;sts:AssumeRoleWithWebIdentity&quot;")
    );
    assert!(
        page.body.contains("\n  &quot;Statement&quot;: ["),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_deleted_user_loses_the_console() {
    let w = World::new().await;
    let creds = w.user("leaving", None).await;
    let cookie = sign_in(&w, &creds).await;
    assert_eq!(
        w.send(get("/console/", Some(&cookie))).await.status,
        StatusCode::OK
    );
    w.iam(
        &w.root,
        &[
            ("Action", "DeleteAccessKey"),
            ("UserName", "leaving"),
            ("AccessKeyId", &creds.id),
        ],
    )
    .await
    .ok();
    w.iam(
        &w.root,
        &[("Action", "DeleteUser"), ("UserName", "leaving")],
    )
    .await
    .ok();
    let reply = w.send(get("/console/", Some(&cookie))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.body.contains("no longer exists"), "{}", reply.body);
}

#[tokio::test]
async fn the_simulator_decides_as_simulate_principal_policy() {
    let w = World::new().await;
    w.iam(
        &w.root,
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", ROLE),
            ("PolicyName", "read-bucket"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
            ),
        ],
    )
    .await
    .ok();
    let cookie = sign_in(&w, &w.root).await;
    let token = csrf(&w.send(get("/console/simulate", Some(&cookie))).await.body);
    let simulate = |context: &'static str| {
        let fields = [
            ("csrf", token.clone()),
            ("principal", role_arn(ROLE)),
            ("actions", "s3:GetObject".to_owned()),
            ("resources", "arn:aws:s3:::bucket/key".to_owned()),
            ("context", context.to_owned()),
        ];
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        w.send(post("/console/simulate", &cookie, SAME_ORIGIN, &fields))
    };
    let allowed = simulate("aws:SourceIp=10.1.2.3").await.ok();
    assert!(
        allowed
            .body
            .contains(r#"class="decision allowed">allowed<"#),
        "{}",
        allowed.body
    );
    assert!(allowed.body.contains("read-bucket"));
    assert!(allowed.body.contains("IpAddress"));
    assert!(allowed.body.contains("[10.0.0.0/8]"));
    assert!(allowed.body.contains("[10.1.2.3]"));
    let denied = simulate("").await.ok();
    assert!(
        denied
            .body
            .contains(r#"class="decision implicitdeny">implicitDeny<"#),
        "{}",
        denied.body
    );
    assert!(denied.body.contains("absent"));

    // The API agrees.
    let api = w
        .iam(
            &w.root,
            &[
                ("Action", "SimulatePrincipalPolicy"),
                ("PolicySourceArn", &role_arn(ROLE)),
                ("ActionNames.member.1", "s3:GetObject"),
                ("ResourceArns.member.1", "arn:aws:s3:::bucket/key"),
                ("ContextEntries.member.1.ContextKeyName", "aws:SourceIp"),
                (
                    "ContextEntries.member.1.ContextKeyValues.member.1",
                    "10.1.2.3",
                ),
                ("ContextEntries.member.1.ContextKeyType", "ip"),
            ],
        )
        .await
        .ok();
    assert_eq!(api.tag("EvalDecision").as_deref(), Some("allowed"));

    // A user may simulate only principals it is allowed to.
    let user = w
        .user(
            "sim",
            Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:SimulatePrincipalPolicy","Resource":"arn:aws:iam::637423329338:user/*"}]}"#),
        )
        .await;
    let user_cookie = sign_in(&w, &user).await;
    let user_token = csrf(
        &w.send(get("/console/simulate", Some(&user_cookie)))
            .await
            .body,
    );
    let reply = w
        .send(post(
            "/console/simulate",
            &user_cookie,
            SAME_ORIGIN,
            &[
                ("csrf", &user_token),
                ("principal", &role_arn(ROLE)),
                ("actions", "s3:GetObject"),
            ],
        ))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply
            .body
            .contains("is not authorized to perform: iam:SimulatePrincipalPolicy"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn the_audit_feed_shows_credentials_and_the_clusters_page_the_associations() {
    let w = World::new().await;
    let token = w.token("carts", "carts", "sts.amazonaws.com", support::NOW);
    w.web_identity(&token).await.ok();
    w.web_identity("not-a-token").await;
    w.rest(
        "eks",
        &w.root,
        "POST",
        "/clusters",
        Some(json!({"name": "shop", "podiamIssuer": {"kind": "hosted"}})),
    )
    .await
    .ok();
    w.rest(
        "eks",
        &w.root,
        "POST",
        "/clusters/shop/pod-identity-associations",
        Some(
            json!({"namespace": "carts", "serviceAccount": "carts-sa", "roleArn": role_arn(ROLE)}),
        ),
    )
    .await
    .ok();
    let cookie = sign_in(&w, &w.root).await;
    let audit = w.send(get("/console/audit", Some(&cookie))).await.ok();
    assert!(
        audit
            .body
            .contains(r#"<meta http-equiv="refresh" content="5">"#)
    );
    let issued = audit.body.find(">issued<").unwrap();
    let denied = audit.body.find(">denied<").unwrap();
    assert!(denied < issued, "newest first");
    assert!(audit.body.contains("AssumeRoleWithWebIdentity"));
    assert!(audit.body.contains(&role_arn(ROLE)));
    // The sign-in itself is an event, with who signed in.
    let at = audit.body.find(">console sign-in<").unwrap();
    let row = &audit.body[at..at + audit.body[at..].find("</tr>").unwrap()];
    assert!(
        row.contains(&format!("arn:aws:iam::{ACCOUNT}:root")),
        "{row}"
    );
    // A refused API call is in the feed too, with who and what.
    let nobody = w.user("nobody", None).await;
    let refused = w.iam(&nobody, &[("Action", "ListRoles")]).await;
    assert_eq!(refused.code(), "AccessDenied");
    let audit = w.send(get("/console/audit", Some(&cookie))).await.ok();
    let at = audit.body.find(">call denied<").unwrap();
    let row = &audit.body[at..at + audit.body[at..].find("</tr>").unwrap()];
    assert!(row.contains("iam:ListRoles"), "{row}");
    assert!(
        row.contains(&format!("arn:aws:iam::{ACCOUNT}:user/nobody")),
        "{row}"
    );
    // A refused AssumeRole shows what the caller was told, never the operators' reason: that
    // would tell a reader of the feed whether the role exists.
    let ghost = format!("arn:aws:iam::{ACCOUNT}:role/ghost");
    let refused = w
        .sts(
            Some(&nobody),
            &[
                ("Action", "AssumeRole"),
                ("RoleArn", &ghost),
                ("RoleSessionName", "probe"),
            ],
        )
        .await;
    assert_eq!(refused.code(), "AccessDenied");
    let audit = w.send(get("/console/audit", Some(&cookie))).await.ok();
    let at = audit.body.find(&ghost).unwrap();
    let row = &audit.body[at..at + audit.body[at..].find("</tr>").unwrap()];
    assert!(
        row.contains("AccessDenied") && row.contains("not authorized"),
        "{row}"
    );
    assert!(!audit.body.contains("does not exist"), "{row}");

    let clusters = w.send(get("/console/clusters", Some(&cookie))).await.ok();
    for wanted in [
        "shop",
        "hosted",
        "http://127.0.0.1:4599/oidc/",
        "carts-sa",
        &role_arn(ROLE),
    ] {
        assert!(
            clusters.body.contains(wanted),
            "{wanted}: {}",
            clusters.body
        );
    }
}

#[tokio::test]
async fn markup_in_state_is_escaped() {
    let w = World::new().await;
    w.iam(
        &w.root,
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", ROLE),
            ("PolicyName", "odd"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::<script>alert(1)</script>"}]}"#,
            ),
        ],
    )
    .await
    .ok();
    let cookie = sign_in(&w, &w.root).await;
    let page = w
        .send(get(&format!("/console/roles/{ROLE}"), Some(&cookie)))
        .await
        .ok();
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>"));
}

#[tokio::test]
async fn the_access_findings_and_role_pages_show_the_analysis_as_the_viewer_may_see_it() {
    let w = World::new().await;
    let pods = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    w.iam(
        &w.root,
        &[
            ("Action", "CreateRole"),
            ("RoleName", "pia"),
            ("AssumeRolePolicyDocument", pods),
        ],
    )
    .await
    .ok();
    let table = format!("arn:aws:dynamodb:eu-central-1:{ACCOUNT}:table/<carts>");
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": table}]});
    w.iam(
        &w.root,
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", "pia"),
            ("PolicyName", "p"),
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
    w.rest(
        "eks",
        &w.root,
        "POST",
        "/clusters/shop/pod-identity-associations",
        Some(
            json!({"namespace": "carts", "serviceAccount": "carts-sa", "roleArn": role_arn("pia")}),
        ),
    )
    .await
    .ok();
    let cookie = sign_in(&w, &w.root).await;

    let graph = w
        .send(get("/console/access?cluster=shop", Some(&cookie)))
        .await
        .ok();
    assert!(graph.body.contains(r#"id="graph""#), "{}", graph.body);
    assert!(graph.body.contains("shop/carts/carts-sa"));
    assert!(graph.body.contains(">pia<"));
    // Escaped inside the SVG too.
    assert!(graph.body.contains("table/&lt;carts&gt;"), "{}", graph.body);
    assert!(!graph.body.contains("<carts>"));
    assert!(graph.body.contains(r#"class="edge pod-identity""#));

    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("cluster", "shop")
        .append_pair("action", "dynamodb:PutItem")
        .append_pair("resource", &table)
        .finish();
    let who = w
        .send(get(&format!("/console/access?{q}"), Some(&cookie)))
        .await
        .ok();
    let at = who.body.find(r#"id="who""#).unwrap();
    assert!(who.body[at..].contains("carts-sa") && who.body[at..].contains("pod-identity"));
    assert!(who.body[at..].contains(">Allow<"), "{}", who.body);

    let role = w.send(get("/console/roles/pia", Some(&cookie))).await.ok();
    let at = role.body.find(r#"id="assumers""#).unwrap();
    assert!(role.body[at..].contains("carts-sa"), "{}", role.body);

    let findings = w.send(get("/console/findings", Some(&cookie))).await.ok();
    assert!(
        findings.body.contains(r#"id="summary""#),
        "{}",
        findings.body
    );

    // A viewer who may list roles but read none: no path, no assumers, no findings.
    let lister = w
        .user("lister", Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:ListRoles","eks:DescribePodIdentityAssociation"],"Resource":"*"}]}"#))
        .await;
    let cookie = sign_in(&w, &lister).await;
    let graph = w.send(get("/console/access", Some(&cookie))).await.ok();
    assert!(graph.body.contains(r#"id="graph-empty""#), "{}", graph.body);
    assert!(!graph.body.contains("carts-sa"));
    let findings = w.send(get("/console/findings", Some(&cookie))).await.ok();
    assert!(findings.body.contains("0 findings"), "{}", findings.body);
}
