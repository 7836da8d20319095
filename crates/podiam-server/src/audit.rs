//! The audit trail: one JSON line (tracing target `audit`) for every credential issued or
//! denied. Never tokens, never secrets: only who, what and why.

use serde::Serialize;

/// One audit event.
#[derive(Debug, Serialize)]
pub(crate) struct AuditEvent<'a> {
    /// `credential_issued` or `credential_denied`.
    pub(crate) event: &'a str,
    /// `AssumeRoleWithWebIdentity`, `AssumeRole`, …
    pub(crate) operation: &'a str,
    /// The request id.
    pub(crate) request_id: &'a str,
    /// The role asked for.
    pub(crate) role_arn: &'a str,
    /// Who asked (caller ARN, or the token's subject and provider).
    pub(crate) principal: &'a str,
    /// The client address.
    pub(crate) source_ip: &'a str,
    /// The session name.
    pub(crate) session_name: &'a str,
    /// The issued access key id (issued only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) access_key_id: Option<&'a str>,
    /// The expiry (issued only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expiration: Option<&'a str>,
    /// The AWS error code (denied only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) code: Option<&'a str>,
    /// Why it was denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'a str>,
}

pub(crate) fn record(event: &AuditEvent<'_>) {
    match serde_json::to_string(event) {
        Ok(line) => tracing::info!(target: "audit", "{line}"),
        Err(e) => tracing::error!(error = %e, "cannot write an audit event"),
    }
}
