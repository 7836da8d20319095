//! IAM entities as XML.

use podiam_iam::{IamState, PolicyEntry, PolicyVersionRecord, RoleEntry, UserEntry};
use podiam_wire::{Xml, policy_document};
use time::OffsetDateTime;

/// Seconds since the epoch as a date-time.
pub(crate) fn time_of(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn boundary(x: &mut Xml, arn: Option<&str>) {
    if let Some(arn) = arn {
        x.open("PermissionsBoundary")
            .text("PermissionsBoundaryType", "PermissionsBoundaryPolicy")
            .text("PermissionsBoundaryArn", arn)
            .close("PermissionsBoundary");
    }
}

/// A `Role` (tags and boundary only where AWS returns them: `with_details`).
pub(crate) fn role(x: &mut Xml, state: &IamState, role: &RoleEntry, with_details: bool) {
    let r = &role.record;
    x.text("Path", &r.path)
        .text("RoleName", &r.name)
        .text("RoleId", &r.id)
        .text("Arn", &state.role_arn(r))
        .time("CreateDate", time_of(r.created))
        .text("AssumeRolePolicyDocument", &policy_document(&r.trust))
        .optional("Description", r.description.as_deref())
        .text("MaxSessionDuration", &r.max_session.to_string());
    if with_details {
        boundary(x, r.boundary.as_deref());
        if !r.tags.is_empty() {
            x.tags("Tags", &r.tags);
        }
    }
}

/// `RoleLastUsed`, as `GetRole` returns it: the date and region of the latest recorded use,
/// or empty when the role was never used.
pub(crate) fn role_last_used(x: &mut Xml, state: &IamState, role: &RoleEntry) {
    x.open("RoleLastUsed");
    if let Some(used) = state.role_last_used(&role.record.id) {
        x.time("LastUsedDate", time_of(used.date))
            .text("Region", &used.region);
    }
    x.close("RoleLastUsed");
}

/// A `User`.
pub(crate) fn user(x: &mut Xml, state: &IamState, user: &UserEntry, with_details: bool) {
    let u = &user.record;
    x.text("Path", &u.path)
        .text("UserName", &u.name)
        .text("UserId", &u.id)
        .text("Arn", &state.user_arn(u))
        .time("CreateDate", time_of(u.created));
    if with_details {
        boundary(x, u.boundary.as_deref());
        if !u.tags.is_empty() {
            x.tags("Tags", &u.tags);
        }
    }
}

/// A managed `Policy`.
pub(crate) fn policy(x: &mut Xml, state: &IamState, policy: &PolicyEntry) {
    let p = &policy.record;
    let (attached, boundary) = state.attachments(&p.arn);
    x.text("PolicyName", &p.name)
        .text("PolicyId", &p.id)
        .text("Arn", &p.arn)
        .text("Path", &p.path)
        .text("DefaultVersionId", &format!("v{}", p.default_version))
        .text("AttachmentCount", &attached.to_string())
        .text("PermissionsBoundaryUsageCount", &boundary.to_string())
        .text("IsAttachable", "true")
        .optional("Description", p.description.as_deref())
        .time("CreateDate", time_of(p.created))
        .time("UpdateDate", time_of(p.updated));
    if !p.tags.is_empty() {
        x.tags("Tags", &p.tags);
    }
}

/// A `PolicyVersion`.
pub(crate) fn version(
    x: &mut Xml,
    version: &PolicyVersionRecord,
    is_default: bool,
    with_document: bool,
) {
    if with_document {
        x.text("Document", &policy_document(&version.document));
    }
    x.text("VersionId", &format!("v{}", version.number))
        .text(
            "IsDefaultVersion",
            if is_default { "true" } else { "false" },
        )
        .time("CreateDate", time_of(version.created));
}
