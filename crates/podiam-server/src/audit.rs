//! The audit trail: one JSON line (tracing target `audit`) for every credential issued or
//! denied, and the latest events in memory for the console's live feed. Never tokens, never
//! secrets: only who, what and why.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;

use crate::app::App;

/// One audit event.
#[derive(Debug, Serialize)]
pub(crate) struct AuditEvent<'a> {
    /// `credential_issued`, `credential_denied`, `call_denied` or `console_signin`.
    pub(crate) event: &'a str,
    /// `AssumeRoleWithWebIdentity`, `AssumeRole`, …; for `call_denied`, the refused action.
    pub(crate) operation: &'a str,
    /// The request id.
    pub(crate) request_id: &'a str,
    /// The role asked for; for `call_denied`, the resource of the refused call.
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
    /// What the caller was told (denied only): the one text the console shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<&'a str>,
    /// Why it was denied, for operators only (the log line): it may say what the caller must not
    /// learn, such as whether a role exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'a str>,
}

/// An [`AuditEvent`] as the ring keeps it, with when it happened.
#[derive(Debug, Clone)]
pub(crate) struct AuditEntry {
    pub(crate) at: OffsetDateTime,
    pub(crate) event: String,
    pub(crate) operation: String,
    pub(crate) request_id: String,
    pub(crate) role_arn: String,
    pub(crate) principal: String,
    pub(crate) source_ip: String,
    pub(crate) session_name: String,
    pub(crate) access_key_id: Option<String>,
    pub(crate) expiration: Option<String>,
    pub(crate) code: Option<String>,
    /// What the caller was told; never the operators' reason.
    pub(crate) message: Option<String>,
}

/// The latest [`AuditRing::CAPACITY`] events of this replica, for the console.
#[derive(Debug, Default)]
pub(crate) struct AuditRing {
    events: Mutex<VecDeque<AuditEntry>>,
}

impl AuditRing {
    /// How many events are kept.
    pub(crate) const CAPACITY: usize = 500;

    fn push(&self, entry: AuditEntry) {
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while events.len() >= Self::CAPACITY {
            events.pop_front();
        }
        events.push_back(entry);
    }

    /// The events kept, newest first.
    pub(crate) fn newest_first(&self) -> Vec<AuditEntry> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .rev()
            .cloned()
            .collect()
    }
}

/// Writes the audit line and keeps the event in the app's ring.
pub(crate) fn record(app: &App, event: &AuditEvent<'_>) {
    match serde_json::to_string(event) {
        Ok(line) => tracing::info!(target: "audit", "{line}"),
        Err(e) => tracing::error!(error = %e, "cannot write an audit event"),
    }
    let owned = |s: Option<&str>| s.map(str::to_owned);
    app.inner.audit.push(AuditEntry {
        at: app.now(),
        event: event.event.to_owned(),
        operation: event.operation.to_owned(),
        request_id: event.request_id.to_owned(),
        role_arn: event.role_arn.to_owned(),
        principal: event.principal.to_owned(),
        source_ip: event.source_ip.to_owned(),
        session_name: event.session_name.to_owned(),
        access_key_id: owned(event.access_key_id),
        expiration: owned(event.expiration),
        code: owned(event.code),
        message: owned(event.message),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> AuditEntry {
        AuditEntry {
            at: OffsetDateTime::UNIX_EPOCH,
            event: "credential_issued".to_owned(),
            operation: "AssumeRole".to_owned(),
            request_id: n.to_string(),
            role_arn: String::new(),
            principal: String::new(),
            source_ip: String::new(),
            session_name: String::new(),
            access_key_id: None,
            expiration: None,
            code: None,
            message: None,
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_first_and_is_bounded() {
        let ring = AuditRing::default();
        for n in 0..AuditRing::CAPACITY + 7 {
            ring.push(entry(n));
        }
        let events = ring.newest_first();
        assert_eq!(events.len(), AuditRing::CAPACITY);
        assert_eq!(events.first().map(|e| e.request_id.as_str()), Some("506"));
        assert_eq!(events.last().map(|e| e.request_id.as_str()), Some("7"));
    }
}
