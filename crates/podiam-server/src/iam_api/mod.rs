//! IAM over awsQuery: parameter rules of the model, authorization, the call, the XML.

mod holder_policies;
mod policies;
mod providers;
mod render;
mod roles;
pub(crate) mod simulate;
mod users;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_iam::Paged;
use podiam_wire::{QueryRequest, Validation, WireError, Xml};

use crate::query::{Ctx, Output};
use holder_policies::Holder;

const ACTIONS: &[&str] = &[
    "CreateUser",
    "GetUser",
    "ListUsers",
    "DeleteUser",
    "TagUser",
    "UntagUser",
    "ListUserTags",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "PutUserPolicy",
    "GetUserPolicy",
    "ListUserPolicies",
    "DeleteUserPolicy",
    "AttachUserPolicy",
    "DetachUserPolicy",
    "ListAttachedUserPolicies",
    "CreateRole",
    "GetRole",
    "ListRoles",
    "DeleteRole",
    "UpdateRole",
    "UpdateAssumeRolePolicy",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
    "PutRolePolicy",
    "GetRolePolicy",
    "ListRolePolicies",
    "DeleteRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "CreatePolicy",
    "GetPolicy",
    "GetPolicyVersion",
    "ListPolicies",
    "DeletePolicy",
    "CreatePolicyVersion",
    "ListPolicyVersions",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "CreateOpenIDConnectProvider",
    "GetOpenIDConnectProvider",
    "ListOpenIDConnectProviders",
    "DeleteOpenIDConnectProvider",
    "AddClientIDToOpenIDConnectProvider",
    "RemoveClientIDFromOpenIDConnectProvider",
    "UpdateOpenIDConnectProviderThumbprint",
    "SimulatePrincipalPolicy",
    "SimulateCustomPolicy",
];

/// Is `action` an IAM operation podiam implements?
pub(crate) fn is_action(action: &str) -> bool {
    ACTIONS.contains(&action)
}

pub(crate) async fn handle(ctx: &Ctx<'_>, q: &QueryRequest) -> Output {
    match q.action() {
        "CreateUser" => users::create_user(ctx, q).await,
        "GetUser" => users::get_user(ctx, q),
        "ListUsers" => users::list_users(ctx, q),
        "DeleteUser" => users::delete_user(ctx, q).await,
        "TagUser" => users::tag_user(ctx, q).await,
        "UntagUser" => users::untag_user(ctx, q).await,
        "ListUserTags" => users::list_user_tags(ctx, q),
        "CreateAccessKey" => users::create_access_key(ctx, q).await,
        "ListAccessKeys" => users::list_access_keys(ctx, q),
        "UpdateAccessKey" => users::update_access_key(ctx, q).await,
        "DeleteAccessKey" => users::delete_access_key(ctx, q).await,
        "PutUserPolicy" => holder_policies::put(ctx, q, Holder::User).await,
        "GetUserPolicy" => holder_policies::get(ctx, q, Holder::User),
        "ListUserPolicies" => holder_policies::list(ctx, q, Holder::User),
        "DeleteUserPolicy" => holder_policies::delete(ctx, q, Holder::User).await,
        "AttachUserPolicy" => holder_policies::attach(ctx, q, Holder::User).await,
        "DetachUserPolicy" => holder_policies::detach(ctx, q, Holder::User).await,
        "ListAttachedUserPolicies" => holder_policies::list_attached(ctx, q, Holder::User),
        "CreateRole" => roles::create_role(ctx, q).await,
        "GetRole" => roles::get_role(ctx, q),
        "ListRoles" => roles::list_roles(ctx, q),
        "DeleteRole" => roles::delete_role(ctx, q).await,
        "UpdateRole" => roles::update_role(ctx, q).await,
        "UpdateAssumeRolePolicy" => roles::update_assume_role_policy(ctx, q).await,
        "TagRole" => roles::tag_role(ctx, q).await,
        "UntagRole" => roles::untag_role(ctx, q).await,
        "ListRoleTags" => roles::list_role_tags(ctx, q),
        "PutRolePolicy" => holder_policies::put(ctx, q, Holder::Role).await,
        "GetRolePolicy" => holder_policies::get(ctx, q, Holder::Role),
        "ListRolePolicies" => holder_policies::list(ctx, q, Holder::Role),
        "DeleteRolePolicy" => holder_policies::delete(ctx, q, Holder::Role).await,
        "AttachRolePolicy" => holder_policies::attach(ctx, q, Holder::Role).await,
        "DetachRolePolicy" => holder_policies::detach(ctx, q, Holder::Role).await,
        "ListAttachedRolePolicies" => holder_policies::list_attached(ctx, q, Holder::Role),
        "CreatePolicy" => policies::create_policy(ctx, q).await,
        "GetPolicy" => policies::get_policy(ctx, q),
        "GetPolicyVersion" => policies::get_policy_version(ctx, q),
        "ListPolicies" => policies::list_policies(ctx, q),
        "DeletePolicy" => policies::delete_policy(ctx, q).await,
        "CreatePolicyVersion" => policies::create_policy_version(ctx, q).await,
        "ListPolicyVersions" => policies::list_policy_versions(ctx, q),
        "DeletePolicyVersion" => policies::delete_policy_version(ctx, q).await,
        "SetDefaultPolicyVersion" => policies::set_default_policy_version(ctx, q).await,
        "CreateOpenIDConnectProvider" => providers::create(ctx, q).await,
        "GetOpenIDConnectProvider" => providers::get(ctx, q),
        "ListOpenIDConnectProviders" => providers::list(ctx, q),
        "DeleteOpenIDConnectProvider" => providers::delete(ctx, q).await,
        "AddClientIDToOpenIDConnectProvider" => providers::add_client_id(ctx, q).await,
        "RemoveClientIDFromOpenIDConnectProvider" => providers::remove_client_id(ctx, q).await,
        "UpdateOpenIDConnectProviderThumbprint" => providers::update_thumbprint(ctx, q).await,
        "SimulatePrincipalPolicy" => simulate::principal(ctx, q),
        "SimulateCustomPolicy" => simulate::custom(ctx, q),
        other => Err(WireError::new(
            "InvalidAction",
            400,
            format!("Could not find operation {other} for version 2010-05-08"),
        )),
    }
}

/// `[\w+=,.@-]`
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// `[\u0009\u000A\u000D\u0020-\u00FF]`
fn document_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || ('\u{20}'..='\u{ff}').contains(&c)
}

/// A required IAM name (`RoleName`, `UserName`, `PolicyName`).
fn name<'q>(v: &mut Validation, q: &'q QueryRequest, param: &str, max: usize) -> &'q str {
    let value = v.required(q, param);
    if q.get(param).is_some() {
        v.length(param, value, 1, max);
        v.pattern(param, value, "[\\w+=,.@-]+", name_char);
    }
    value
}

/// An optional IAM name.
fn optional_name<'q>(
    v: &mut Validation,
    q: &'q QueryRequest,
    param: &str,
    max: usize,
) -> Option<&'q str> {
    let value = q.get(param)?;
    v.length(param, value, 1, max);
    v.pattern(param, value, "[\\w+=,.@-]+", name_char);
    Some(value)
}

/// A policy document parameter.
fn document<'q>(v: &mut Validation, q: &'q QueryRequest, param: &str) -> &'q str {
    let value = v.required(q, param);
    if q.get(param).is_some() {
        v.length(param, value, 1, 131_072);
        v.pattern(
            param,
            value,
            "[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
            document_char,
        );
    }
    value
}

/// A required ARN parameter.
fn arn<'q>(v: &mut Validation, q: &'q QueryRequest, param: &str) -> &'q str {
    let value = v.required(q, param);
    if q.get(param).is_some() {
        v.length(param, value, 20, 2048);
    }
    value
}

/// An optional path or path prefix.
fn path(v: &mut Validation, q: &QueryRequest, param: &str) -> Option<String> {
    let value = q.get(param)?;
    v.length(param, value, 1, 512);
    Some(value.to_owned())
}

/// `Marker` (opaque: base64url of the last key listed) and `MaxItems` (default 100).
fn paging(v: &mut Validation, q: &QueryRequest) -> (Option<String>, usize) {
    let marker = q.get("Marker").and_then(|m| {
        // Longer than the model's 320: a marker for a long policy path is longer, and it is ours.
        v.length("Marker", m, 1, 2048);
        let key = URL_SAFE_NO_PAD
            .decode(m)
            .ok()
            .and_then(|k| String::from_utf8(k).ok());
        if key.is_none() {
            v.fail(format!(
                "Invalid Marker: {m:?} is not a marker this service returned"
            ));
        }
        key
    });
    let max = v
        .integer(q, "MaxItems", 1, 1000)
        .map_or(100, |m| usize::try_from(m).unwrap_or(100));
    (marker, max)
}

/// `Tags.member.N`, checked against the model.
fn tags(v: &mut Validation, q: &QueryRequest) -> Result<Vec<(String, String)>, WireError> {
    let tags = q.tags("Tags")?;
    v.tags("Tags", &tags);
    Ok(tags)
}

/// `IsTruncated` and `Marker` of a page.
fn page_end<T>(x: &mut Xml, page: &Paged<T>) {
    x.text(
        "IsTruncated",
        if page.marker.is_some() {
            "true"
        } else {
            "false"
        },
    );
    if let Some(last) = &page.marker {
        x.text("Marker", &URL_SAFE_NO_PAD.encode(last));
    }
}

impl Ctx<'_> {
    /// The ARN of role `name` (its real path when it exists).
    pub(crate) fn role_arn(&self, name: &str) -> String {
        let state = self.app.inner.iam.state();
        match state.role(name) {
            Some(role) => state.role_arn(&role.record),
            None => format!(
                "arn:{}:iam::{}:role/{name}",
                state.partition(),
                state.account()
            ),
        }
    }

    /// What a list call is authorized on, as AWS names it: `arn:aws:iam::<account>:role/`
    /// (or the path prefix asked for).
    pub(crate) fn list_resource(&self, kind: &str, prefix: Option<&str>) -> String {
        let state = self.app.inner.iam.state();
        format!(
            "arn:{}:iam::{}:{kind}{}",
            state.partition(),
            state.account(),
            prefix.unwrap_or("/")
        )
    }

    /// The ARN of user `name` (its real path when it exists).
    fn user_arn(&self, name: &str) -> String {
        let state = self.app.inner.iam.state();
        match state.user(name) {
            Some(user) => state.user_arn(&user.record),
            None => format!(
                "arn:{}:iam::{}:user/{name}",
                state.partition(),
                state.account()
            ),
        }
    }

    /// The user an access-key or self-service call is about: the named one, or the caller.
    fn subject_user(&self, named: Option<&str>) -> Result<Option<String>, WireError> {
        if let Some(name) = named {
            return Ok(Some(name.to_owned()));
        }
        match self.caller()? {
            podiam_iam::Caller::Root => Ok(None),
            podiam_iam::Caller::User(user) => Ok(Some(user.record.name.clone())),
            podiam_iam::Caller::Session { .. } => Err(WireError::new(
                "ValidationError",
                400,
                "Must specify userName when calling with non-User credentials",
            )),
        }
    }
}
