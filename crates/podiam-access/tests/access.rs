//! who / what / findings over a state built as replicas build theirs.

#![expect(clippy::unwrap_used, reason = "tests")]

mod support;

use podiam_access::{FindingsOptions, Outcome, PathKind, Severity, findings, what, who};
use support::*;

const CARTS: &str = "arn:aws:dynamodb:us-west-2:111122223333:table/carts";
const CLUSTER: &str = "eks-workshop";

fn workshop() -> World {
    let mut w = World::new();
    w.cluster(CLUSTER);
    w.provider(CLUSTER);
    // Pod Identity, as the workshop sets it up.
    w.role(
        "carts-pia",
        PIA_TRUST,
        &[("dynamo", &allow("dynamodb:*", CARTS))],
    );
    w.association("a-carts", CLUSTER, "carts", "carts", "carts-pia", None);
    // IRSA for the same service account.
    w.role(
        "carts-irsa",
        &irsa_trust(CLUSTER, "system:serviceaccount:carts:carts"),
        &[("dynamo", &allow("dynamodb:PutItem", CARTS))],
    );
    // A pattern trust: every service account of team-* namespaces.
    w.role(
        "teams",
        &irsa_trust(CLUSTER, "system:serviceaccount:team-*:*"),
        &[("all", &allow("dynamodb:*", "*"))],
    );
    // Allowed everything on DynamoDB but explicitly denied the carts table.
    w.role(
        "orders-pia",
        PIA_TRUST,
        &[(
            "dynamo",
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"dynamodb:*","Resource":"*"},
                {"Sid":"NotCarts","Effect":"Deny","Action":"dynamodb:*","Resource":"arn:aws:dynamodb:us-west-2:111122223333:table/carts"}]}"#,
        )],
    );
    w.association("a-orders", CLUSTER, "orders", "orders", "orders-pia", None);
    // Allowed only for one pod name: which pod is not known before it runs.
    w.role(
        "checkout-pia",
        PIA_TRUST,
        &[(
            "dynamo",
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"OnePod","Effect":"Allow","Action":"dynamodb:PutItem","Resource":"*",
                "Condition":{"StringEquals":{"aws:PrincipalTag/kubernetes-pod-name":"checkout-0"}}}]}"#,
        )],
    );
    w.association(
        "a-checkout",
        CLUSTER,
        "checkout",
        "checkout",
        "checkout-pia",
        None,
    );
    // The node: its user may assume the node role, which may only call EKS Auth.
    w.node_user(
        "eks-workshop-node-agent",
        "node-1",
        &allow("sts:AssumeRole", &role_arn("eks-workshop-node")),
    );
    w.role(
        "eks-workshop-node",
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/eks-workshop-node-agent"}},"Action":"sts:AssumeRole"}}]}}"#
        ),
        &[("node", &allow("eks-auth:AssumeRoleForPodIdentity", "*"))],
    );
    for role in [
        "carts-pia",
        "carts-irsa",
        "teams",
        "orders-pia",
        "checkout-pia",
        "eks-workshop-node",
    ] {
        w.used(role, 1);
    }
    w
}

#[test]
fn who_lists_every_path_with_its_decision() {
    let w = workshop();
    let report = who(&w.snapshot(), "dynamodb:PutItem", CARTS, Some(CLUSTER));
    let rows: Vec<(String, String, PathKind, String, Outcome)> = report
        .entries
        .iter()
        .map(|e| {
            (
                e.workload.namespace.clone(),
                e.workload.service_account.clone(),
                e.path,
                e.role_arn.rsplit('/').next().unwrap().to_owned(),
                e.decision,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "carts".into(),
                "carts".into(),
                PathKind::Irsa,
                "carts-irsa".into(),
                Outcome::Allow
            ),
            (
                "carts".into(),
                "carts".into(),
                PathKind::PodIdentity,
                "carts-pia".into(),
                Outcome::Allow
            ),
            (
                "checkout".into(),
                "checkout".into(),
                PathKind::PodIdentity,
                "checkout-pia".into(),
                Outcome::ConditionalAllow
            ),
            (
                "orders".into(),
                "orders".into(),
                PathKind::PodIdentity,
                "orders-pia".into(),
                Outcome::ExplicitDeny
            ),
            (
                "team-*".into(),
                "*".into(),
                PathKind::Irsa,
                "teams".into(),
                Outcome::Allow
            ),
        ],
        "{report:#?}"
    );
    let checkout = &report.entries[2];
    assert_eq!(
        checkout.open_conditions[0].key,
        "aws:PrincipalTag/kubernetes-pod-name"
    );
    assert_eq!(checkout.open_conditions[0].statement, "OnePod");
    assert!(
        checkout.open_conditions[0]
            .policy
            .contains("checkout-pia inline policy dynamo")
    );
    let orders = &report.entries[3];
    let denial = orders.denied_by.as_ref().unwrap();
    assert_eq!(denial.statement, "NotCarts");
    assert!(report.entries[4].workload.pattern);
    assert!(report.notes.iter().any(|n| n.contains("pattern")));
    // Another table: carts' roles drop out, the broad ones stay.
    let other = who(
        &w.snapshot(),
        "dynamodb:PutItem",
        "arn:aws:dynamodb:us-west-2:111122223333:table/orders",
        None,
    );
    let roles: Vec<&str> = other
        .entries
        .iter()
        .map(|e| e.role_arn.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(roles, ["checkout-pia", "orders-pia", "teams"]);
    // The node's role reaches EKS Auth only, for every pod of its nodes.
    let node = who(
        &w.snapshot(),
        "eks-auth:AssumeRoleForPodIdentity",
        "*",
        None,
    );
    assert_eq!(node.entries.len(), 1);
    assert_eq!(node.entries[0].path, PathKind::Node);
    assert_eq!(node.entries[0].workload.namespace, "*");
}

#[test]
fn who_sees_only_visible_roles_and_associations() {
    let w = workshop();
    let mut snapshot = w.snapshot();
    let hide_pia = |arn: &str, _: &[(String, String)]| !arn.ends_with("-pia");
    snapshot.role_visible = &hide_pia;
    let report = who(&snapshot, "dynamodb:PutItem", CARTS, None);
    assert!(
        report.entries.iter().all(|e| e.path == PathKind::Irsa),
        "{report:#?}"
    );
}

#[test]
fn a_chain_reaches_the_target_only_when_both_sides_allow() {
    let mut w = workshop();
    w.role(
        "hop",
        PIA_TRUST,
        &[("hop", &allow("sts:AssumeRole", &role_arn("writer")))],
    );
    w.role(
        "writer",
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":["sts:AssumeRole","sts:TagSession"]}}]}}"#
        ),
        &[("w", &allow("dynamodb:PutItem", CARTS))],
    );
    w.association("a-chain", CLUSTER, "web", "web", "hop", Some("writer"));
    let report = who(&w.snapshot(), "dynamodb:PutItem", CARTS, None);
    let web = report
        .entries
        .iter()
        .find(|e| e.workload.namespace == "web")
        .unwrap();
    assert_eq!(web.role_arn, role_arn("writer"));
    assert_eq!(web.via.as_deref(), Some(role_arn("hop").as_str()));
    // The first role may no longer assume the target: the path is gone.
    w.role("hop", PIA_TRUST, &[("hop", &allow("s3:*", "*"))]);
    let report = who(&w.snapshot(), "dynamodb:PutItem", CARTS, None);
    assert!(report.entries.iter().all(|e| e.workload.namespace != "web"));
}

#[test]
fn what_orders_paths_as_the_sdks_do_and_summarises_permissions() {
    let w = workshop();
    let report = what(&w.snapshot(), CLUSTER, "carts", "carts");
    let kinds: Vec<PathKind> = report.paths.iter().map(|p| p.path).collect();
    assert_eq!(
        kinds,
        [PathKind::Irsa, PathKind::PodIdentity, PathKind::Node]
    );
    assert!(report.paths[0].wins && !report.paths[1].wins && !report.paths[2].wins);
    let pia = &report.paths[1];
    assert_eq!(pia.association_id.as_deref(), Some("a-carts"));
    assert_eq!(pia.permissions[0].service, "dynamodb");
    assert_eq!(pia.permissions[0].statements[0].actions, ["dynamodb:*"]);
    assert_eq!(pia.permissions[0].statements[0].resources, [CARTS]);
    assert!(
        report
            .precedence
            .contains("web identity token (IRSA) before container credentials")
    );
    // team-a/anything matches the pattern trust only.
    let team = what(&w.snapshot(), CLUSTER, "team-a", "worker");
    let roles: Vec<&str> = team
        .paths
        .iter()
        .map(|p| p.role_arn.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(roles, ["teams", "eks-workshop-node"]);
}

fn codes(w: &World, cluster: Option<&str>) -> Vec<(&'static str, Severity, String)> {
    findings(
        &w.snapshot(),
        &FindingsOptions {
            cluster,
            unused_days: 90,
            upstream: &|arn| arn.contains(":999999999999:"),
        },
    )
    .into_iter()
    .map(|f| {
        (
            f.code,
            f.severity,
            f.object.rsplit('/').next().unwrap().to_owned(),
        )
    })
    .collect()
}

#[test]
fn the_workshop_has_no_findings_but_the_broad_pattern() {
    let w = workshop();
    // teams' pattern is narrow enough (team-*); nothing is wrong.
    assert_eq!(codes(&w, None), []);
}

#[test]
fn one_bad_role_per_finding_code() {
    let mut w = workshop();
    let url = issuer(CLUSTER);
    let no_sub = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{url}:aud":"sts.amazonaws.com"}}}}}}]}}"#,
        provider_arn(CLUSTER)
    );
    w.role("any-sa", &no_sub, &[]);
    w.role(
        "any-sa-star",
        &irsa_trust(CLUSTER, "system:serviceaccount:*"),
        &[],
    );
    let no_aud = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{url}:sub":"system:serviceaccount:a:b"}}}}}}]}}"#,
        provider_arn(CLUSTER)
    );
    w.role("no-aud", &no_aud, &[]);
    w.role("public", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#, &[]);
    w.role("not-for-pods", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#, &[]);
    w.association("a-mismatch", CLUSTER, "m", "m", "not-for-pods", None);
    w.association("a-missing", CLUSTER, "gone", "gone", "deleted-role", None);
    w.association(
        "a-upstream",
        CLUSTER,
        "aws",
        "aws",
        "arn:aws:iam::999999999999:role/in-aws",
        None,
    );
    w.role(
        "no-provider",
        &irsa_trust("elsewhere", "system:serviceaccount:a:b"),
        &[],
    );
    w.role("admin", PIA_TRUST, &[("all", &allow("*", "*"))]);
    w.association("a-admin", CLUSTER, "ops", "ops", "admin", None);
    w.role(
        "passer",
        PIA_TRUST,
        &[(
            "pass",
            &allow("iam:Pass*", "arn:aws:iam::111122223333:role/*"),
        )],
    );
    w.role("stale", PIA_TRUST, &[]);
    w.used("stale", 120);
    w.role("never", PIA_TRUST, &[]);
    // Used recently, so not reported.
    for role in [
        "any-sa",
        "any-sa-star",
        "no-aud",
        "public",
        "not-for-pods",
        "no-provider",
        "admin",
        "passer",
    ] {
        w.used(role, 3);
    }
    let found = codes(&w, None);
    let expected = vec![
        (
            "association-role-missing",
            Severity::Error,
            "a-missing".to_owned(),
        ),
        (
            "association-trust-mismatch",
            Severity::Error,
            "a-mismatch".to_owned(),
        ),
        (
            "irsa-provider-missing",
            Severity::Error,
            "no-provider".to_owned(),
        ),
        (
            "trust-any-service-account",
            Severity::Error,
            "any-sa".to_owned(),
        ),
        (
            "trust-any-service-account",
            Severity::Error,
            "any-sa-star".to_owned(),
        ),
        ("trust-public", Severity::Error, "public".to_owned()),
        ("passrole-wildcard", Severity::Warning, "passer".to_owned()),
        ("permission-admin", Severity::Warning, "admin".to_owned()),
        ("trust-no-audience", Severity::Warning, "no-aud".to_owned()),
        ("role-unused", Severity::Info, "never".to_owned()),
        ("role-unused", Severity::Info, "stale".to_owned()),
    ];
    assert_eq!(found, expected);
    // Scoped to the cluster: its associations and the roles its workloads reach.
    let scoped = codes(&w, Some(CLUSTER));
    assert!(
        scoped
            .iter()
            .all(|(code, ..)| *code != "trust-public" && *code != "role-unused"),
        "{scoped:?}"
    );
    assert!(scoped.iter().any(|(code, ..)| *code == "permission-admin"));
}

#[test]
fn the_graph_links_service_accounts_to_roles_to_resources() {
    let w = workshop();
    let g = podiam_access::graph(&w.snapshot(), Some(CLUSTER), Some("carts"));
    let roles: Vec<&str> = g
        .roles
        .iter()
        .map(|r| r.rsplit('/').next().unwrap())
        .collect();
    // carts' two roles, and the node role every pod reaches; not orders' or checkout's.
    assert_eq!(
        roles,
        ["carts-pia", "carts-irsa", "eks-workshop-node"],
        "{g:#?}"
    );
    assert!(
        g.workloads
            .iter()
            .any(|w| w.namespace == "carts" && w.service_account == "carts")
    );
    assert!(
        g.workloads
            .iter()
            .all(|w| w.namespace == "carts" || w.pattern)
    );
    let carts = g
        .resources
        .iter()
        .position(|r| r.service == "dynamodb" && r.resource == CARTS)
        .unwrap();
    let granted: Vec<&str> = g
        .grant_edges
        .iter()
        .filter(|e| e.resource == carts)
        .map(|e| g.roles[e.role].rsplit('/').next().unwrap())
        .collect();
    assert_eq!(granted, ["carts-irsa", "carts-pia"]);
    // Who can assume carts-pia: carts/carts by Pod Identity.
    let who = podiam_access::assumers(&w.snapshot(), &role_arn("carts-pia"));
    assert_eq!(who.len(), 1);
    assert_eq!(
        (who[0].workload.namespace.as_str(), who[0].path),
        ("carts", PathKind::PodIdentity)
    );
}

#[test]
fn a_role_the_caller_may_not_read_is_as_good_as_missing() {
    let mut w = workshop();
    // carts-pia's session may assume `target`, whose trust names the account (so the
    // session's own permission decides) under a condition.
    w.role(
        "carts-pia",
        PIA_TRUST,
        &[("hop", &allow("sts:AssumeRole", &role_arn("target")))],
    );
    w.role(
        "target",
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Secret","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"aws:ResourceTag/x":"hidden-value"}}}}}}]}}"#
        ),
        &[],
    );
    let seen = who(&w.snapshot(), "sts:AssumeRole", &role_arn("target"), None);
    assert!(
        seen.entries
            .iter()
            .any(|e| e.role_arn == role_arn("carts-pia")),
        "{seen:#?}"
    );
    let mut snapshot = w.snapshot();
    let hide = |arn: &str, _: &[(String, String)]| !arn.ends_with("/target");
    snapshot.role_visible = &hide;
    let hidden = who(&snapshot, "sts:AssumeRole", &role_arn("target"), None);
    assert_eq!(hidden.entries, [], "{hidden:#?}");
    let text = format!("{hidden:?}");
    assert!(!text.contains("hidden-value") && !text.contains("Secret"));
}

#[test]
fn a_trust_that_only_excludes_subjects_admits_every_other_service_account() {
    let mut w = workshop();
    let url = issuer(CLUSTER);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringNotEquals":{{"{url}:sub":"system:serviceaccount:kube-system:admin"}},"StringEquals":{{"{url}:aud":"sts.amazonaws.com"}}}}}}]}}"#,
        provider_arn(CLUSTER)
    );
    w.role(
        "all-but-admin",
        &trust,
        &[("d", &allow("dynamodb:PutItem", CARTS))],
    );
    let report = who(&w.snapshot(), "dynamodb:PutItem", CARTS, Some(CLUSTER));
    let entry = report
        .entries
        .iter()
        .find(|e| e.role_arn == role_arn("all-but-admin"))
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(
        (
            entry.workload.namespace.as_str(),
            entry.workload.service_account.as_str()
        ),
        ("*", "*")
    );
    assert!(entry.workload.pattern);
}

#[test]
fn what_the_caller_may_not_read_stays_out_of_the_analysis() {
    let mut w = workshop();
    w.role(
        "no-provider",
        &irsa_trust("elsewhere", "system:serviceaccount:a:b"),
        &[],
    );
    let kinds = |snapshot: &podiam_access::Snapshot<'_>, action: &str, resource: &str| {
        who(snapshot, action, resource, None)
            .entries
            .iter()
            .map(|e| e.path)
            .collect::<Vec<_>>()
    };
    let provider_missing = |snapshot: &podiam_access::Snapshot<'_>| {
        findings(
            snapshot,
            &FindingsOptions {
                cluster: None,
                unused_days: 90,
                upstream: &|_| false,
            },
        )
        .iter()
        .any(|f| f.code == "irsa-provider-missing")
    };
    let mut snapshot = w.snapshot();
    assert!(kinds(&snapshot, "dynamodb:PutItem", CARTS).contains(&PathKind::Irsa));
    assert!(provider_missing(&snapshot));
    // An IRSA path names the cluster whose issuer the trust names: eks:DescribeCluster's to say.
    let no_clusters = |action: &str, _: &str| action != "eks:DescribeCluster";
    snapshot.may_read = &no_clusters;
    let seen = kinds(&snapshot, "dynamodb:PutItem", CARTS);
    assert!(!seen.contains(&PathKind::Irsa), "{seen:?}");
    assert!(seen.contains(&PathKind::PodIdentity), "{seen:?}");
    // Whether an OIDC provider exists is iam:GetOpenIDConnectProvider's to say.
    let no_providers = |action: &str, _: &str| action != "iam:GetOpenIDConnectProvider";
    snapshot.may_read = &no_providers;
    assert!(!kinds(&snapshot, "dynamodb:PutItem", CARTS).contains(&PathKind::Irsa));
    assert!(!provider_missing(&snapshot));
    // Which users are nodes is iam:GetUser's to say.
    assert_eq!(
        kinds(&w.snapshot(), "eks-auth:AssumeRoleForPodIdentity", "*"),
        [PathKind::Node]
    );
    let no_users = |action: &str, _: &str| action != "iam:GetUser";
    snapshot.may_read = &no_users;
    assert_eq!(
        kinds(&snapshot, "eks-auth:AssumeRoleForPodIdentity", "*"),
        []
    );
}
