//! Roles, their trust policies, tags, inline and attached policies.

use std::sync::Arc;

use podiam_policy::PolicyType;
use podiam_store::{Compare, Op};

use super::users::ATTACHED_PER_ENTITY;
use super::{
    Paged, check_name, check_path, check_policy, check_tags, merge_tags, paginate, paginate_map,
};
use crate::model::{RoleLastUsed, RoleRecord, keys};
use crate::service::{WRITE_ATTEMPTS, encode};
use crate::{Iam, IamError, RoleEntry, new_unique_id};

/// What `CreateRole` creates.
#[derive(Debug, Clone, Default)]
pub struct NewRole {
    /// The name.
    pub name: String,
    /// The path (`/` by default).
    pub path: Option<String>,
    /// The trust policy document.
    pub trust: String,
    /// Description.
    pub description: Option<String>,
    /// Longest session in seconds (3600 by default).
    pub max_session: Option<u32>,
    /// The permissions boundary ARN.
    pub boundary: Option<String>,
    /// Tags.
    pub tags: Vec<(String, String)>,
}

/// What `UpdateRole` changes.
#[derive(Debug, Clone, Default)]
pub struct RoleUpdate {
    /// A new description.
    pub description: Option<String>,
    /// A new longest session.
    pub max_session: Option<u32>,
}

/// Seconds between writes of a role's last use: a use within this long of the recorded one is
/// not written, so that issuing credentials does not write to the store on every call. AWS,
/// too, reports last use late (within hours).
pub const ROLE_USE_INTERVAL: i64 = 3600;

/// How far ahead of this replica's clock a recorded use may be and still count as real (another
/// replica's skew): such a use is left alone until the clock passes it. A use further ahead is
/// a clock's mistake, and the next use overwrites it.
const ROLE_USE_SKEW: i64 = 86_400;

/// Whether a use at `now` is to be written over the `recorded` one: the one rule of both the
/// due check and the write, so that a check never lets through what the write then refuses.
fn role_use_due_over(recorded: Option<i64>, now: i64) -> bool {
    match recorded {
        None => true,
        Some(date) if date > now.saturating_add(ROLE_USE_SKEW) => true,
        Some(date) if date > now => false,
        Some(date) => now.saturating_sub(date) >= ROLE_USE_INTERVAL,
    }
}

/// Takes a role out of [`Iam::recording`] when its write ends, however it ends.
struct Recording<'a> {
    iam: &'a Iam,
    id: &'a str,
}

impl Drop for Recording<'_> {
    fn drop(&mut self) {
        self.iam.recording().remove(self.id);
    }
}

/// IAM's quota of inline policy characters per role.
const ROLE_INLINE_CHARS: usize = 10_240;

fn no_role(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The role with name {name} cannot be found."))
}

fn check_max_session(seconds: u32) -> Result<(), IamError> {
    if (3600..=43_200).contains(&seconds) {
        Ok(())
    } else {
        Err(IamError::InvalidInput(format!(
            "The requested MaxSessionDuration {seconds} is not valid: it must be between 3600 and 43200 seconds."
        )))
    }
}

impl Iam {
    /// `CreateRole`.
    pub async fn create_role(&self, new: NewRole) -> Result<Arc<RoleEntry>, IamError> {
        check_name("roleName", &new.name, 64)?;
        let path = new.path.unwrap_or_else(|| "/".to_owned());
        check_path(&path)?;
        check_tags(&new.tags)?;
        check_policy(&new.trust, PolicyType::Trust)?;
        let max_session = new.max_session.unwrap_or(3600);
        check_max_session(max_session)?;
        if let Some(arn) = &new.boundary {
            self.require_policy(arn)?;
        }
        let record = RoleRecord {
            name: new.name.clone(),
            id: new_unique_id("AROA", self.rng())?,
            path,
            created: self.now().unix_timestamp(),
            trust: new.trust,
            description: new.description,
            max_session,
            boundary: new.boundary,
            tags: new.tags,
            inline: Default::default(),
            attached: Vec::new(),
        };
        let exists =
            IamError::EntityAlreadyExists(format!("Role with name {} already exists.", new.name));
        self.create(&keys::role(&new.name), &record, Vec::new(), exists)
            .await?;
        self.get_role(&new.name)
    }

    /// `GetRole`.
    pub fn get_role(&self, name: &str) -> Result<Arc<RoleEntry>, IamError> {
        self.state().role(name).ok_or_else(|| no_role(name))
    }

    /// `ListRoles`.
    pub fn list_roles(
        &self,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> Paged<Arc<RoleEntry>> {
        paginate_map(
            &self.state().roles,
            marker,
            max,
            |r| path_prefix.is_none_or(|p| r.record.path.starts_with(p)),
            Arc::clone,
        )
    }

    /// `DeleteRole`: only once it has no policies.
    pub async fn delete_role(&self, name: &str) -> Result<(), IamError> {
        self.remove_with::<RoleRecord, _>(
            &keys::role(name),
            || no_role(name),
            |role| {
                if !role.inline.is_empty() {
                    return Err(IamError::DeleteConflict(
                        "Cannot delete entity, must delete policies first.".to_owned(),
                    ));
                }
                if !role.attached.is_empty() {
                    return Err(IamError::DeleteConflict(
                        "Cannot delete entity, must detach all policies first.".to_owned(),
                    ));
                }
                Ok(vec![Op::Delete(keys::role_last_used(&role.id))])
            },
        )
        .await
        .map(|_| ())
    }

    /// Records, in the background, that credentials were issued for `role_arn` in `region`
    /// now (by the injected clock). At most once per role per [`ROLE_USE_INTERVAL`], and best
    /// effort: a failure is logged, never fails the issuance, and the next use tries again.
    pub fn record_role_use(&self, role_arn: &str, region: &str) {
        if self.role_use_due(role_arn).is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(role_arn, "no runtime to record the role's use on");
            return;
        };
        let (iam, role_arn, region) = (self.clone(), role_arn.to_owned(), region.to_owned());
        runtime.spawn(async move {
            if let Err(e) = iam.write_role_use(&role_arn, &region).await {
                tracing::warn!(
                    role_arn,
                    error = %e,
                    "recording the role's last use failed; its next use tries again"
                );
            }
        });
    }

    /// The write behind [`Iam::record_role_use`], awaited: `true` when it wrote; `false` when
    /// the recorded use is within [`ROLE_USE_INTERVAL`], another write for the role is under
    /// way, or the role is gone.
    pub async fn write_role_use(&self, role_arn: &str, region: &str) -> Result<bool, IamError> {
        let Some((name, id)) = self.role_use_due(role_arn) else {
            return Ok(false);
        };
        if !self.recording().insert(id.clone()) {
            return Ok(false);
        }
        let _recording = Recording { iam: self, id: &id };
        let date = self.now().unix_timestamp();
        let used = encode(&RoleLastUsed {
            date,
            region: region.to_owned(),
        })?;
        let last_key = keys::role_last_used(&id);
        let key = keys::role(&name);
        for _ in 0..WRITE_ATTEMPTS {
            // Only while the role (not a namesake) is at the revision read: a `DeleteRole`
            // deletes this key in its own transaction, so the key never outlives the role.
            let Some((role, revision)) = self.load::<RoleRecord>(&key).await? else {
                return Ok(false);
            };
            if role.id != id {
                return Ok(false);
            }
            // Another replica may have written a use meanwhile: the same rule as the due check.
            let last = self.load::<RoleLastUsed>(&last_key).await?;
            if !role_use_due_over(last.as_ref().map(|(recorded, _)| recorded.date), date) {
                return Ok(false);
            }
            let last_compare = match &last {
                Some((_, last_revision)) => Compare::ModRevision(last_key.clone(), *last_revision),
                None => Compare::Absent(last_key.clone()),
            };
            let compares = [Compare::ModRevision(key.clone(), revision), last_compare];
            let ops = vec![Op::Put(last_key.clone(), used.clone())];
            if self.commit(&compares, ops).await?.is_some() {
                return Ok(true);
            }
        }
        Err(IamError::ConcurrentModification(
            "The role kept changing while its last use was recorded.".to_owned(),
        ))
    }

    /// The role's `(name, id)` when its use is due to be written: it exists, no write for it
    /// is under way, and its recorded use is absent or [`ROLE_USE_INTERVAL`] old.
    fn role_use_due(&self, role_arn: &str) -> Option<(String, String)> {
        let now = self.now().unix_timestamp();
        let state = self.state();
        let role = state.role_by_arn(role_arn)?;
        let id = &role.record.id;
        let due = role_use_due_over(state.last_used.get(id).map(|(used, _)| used.date), now);
        (due && !self.recording().contains(id)).then(|| (role.record.name.clone(), id.clone()))
    }

    /// `UpdateRole`.
    pub async fn update_role(&self, name: &str, update: RoleUpdate) -> Result<(), IamError> {
        if let Some(seconds) = update.max_session {
            check_max_session(seconds)?;
        }
        self.modify::<RoleRecord, _>(
            &keys::role(name),
            || no_role(name),
            &[],
            |role| {
                if let Some(description) = &update.description {
                    role.description = Some(description.clone());
                }
                if let Some(seconds) = update.max_session {
                    role.max_session = seconds;
                }
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// `UpdateAssumeRolePolicy`.
    pub async fn update_assume_role_policy(
        &self,
        name: &str,
        document: &str,
    ) -> Result<(), IamError> {
        check_policy(document, PolicyType::Trust)?;
        self.modify::<RoleRecord, _>(
            &keys::role(name),
            || no_role(name),
            &[],
            |role| {
                role.trust = document.to_owned();
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// `TagRole`.
    pub async fn tag_role(&self, name: &str, tags: &[(String, String)]) -> Result<(), IamError> {
        check_tags(tags)?;
        self.modify::<RoleRecord, _>(
            &keys::role(name),
            || no_role(name),
            &[],
            |role| {
                merge_tags(&mut role.tags, tags);
                check_tags(&role.tags)
            },
        )
        .await
        .map(|_| ())
    }

    /// `UntagRole`.
    pub async fn untag_role(&self, name: &str, tag_keys: &[String]) -> Result<(), IamError> {
        self.modify::<RoleRecord, _>(
            &keys::role(name),
            || no_role(name),
            &[],
            |role| {
                role.tags
                    .retain(|(k, _)| !tag_keys.iter().any(|t| t.eq_ignore_ascii_case(k)));
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// `ListRoleTags`.
    pub fn list_role_tags(
        &self,
        name: &str,
        marker: Option<&str>,
        max: usize,
    ) -> Result<Paged<(String, String)>, IamError> {
        let role = self.get_role(name)?;
        let tags = role
            .record
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("{i:05}"), t.clone()));
        Ok(paginate(tags, marker, max))
    }

    /// `PutRolePolicy`.
    pub async fn put_role_policy(
        &self,
        role: &str,
        policy: &str,
        document: &str,
    ) -> Result<(), IamError> {
        check_name("policyName", policy, 128)?;
        check_policy(document, PolicyType::Identity)?;
        self.modify::<RoleRecord, _>(
            &keys::role(role),
            || no_role(role),
            &[],
            |record| {
                record.inline.insert(policy.to_owned(), document.to_owned());
                let total: usize = record
                    .inline
                    .values()
                    .map(|d| podiam_policy::policy_size(d))
                    .sum();
                if total > ROLE_INLINE_CHARS {
                    return Err(IamError::LimitExceeded(format!(
                        "Maximum policy size of {ROLE_INLINE_CHARS} bytes exceeded for role {role}"
                    )));
                }
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// `GetRolePolicy`: the document as submitted.
    pub fn get_role_policy(&self, role: &str, policy: &str) -> Result<String, IamError> {
        self.get_role(role)?
            .record
            .inline
            .get(policy)
            .cloned()
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!(
                    "The role policy with name {policy} cannot be found."
                ))
            })
    }

    /// `ListRolePolicies`.
    pub fn list_role_policies(
        &self,
        role: &str,
        marker: Option<&str>,
        max: usize,
    ) -> Result<Paged<String>, IamError> {
        let role = self.get_role(role)?;
        Ok(paginate(
            role.record.inline.keys().map(|k| (k.clone(), k.clone())),
            marker,
            max,
        ))
    }

    /// `DeleteRolePolicy`.
    pub async fn delete_role_policy(&self, role: &str, policy: &str) -> Result<(), IamError> {
        self.modify::<RoleRecord, _>(
            &keys::role(role),
            || no_role(role),
            &[],
            |record| {
                record.inline.remove(policy).map(|_| ()).ok_or_else(|| {
                    IamError::NoSuchEntity(format!(
                        "The role policy with name {policy} cannot be found."
                    ))
                })
            },
        )
        .await
        .map(|_| ())
    }

    /// `AttachRolePolicy`.
    pub async fn attach_role_policy(&self, role: &str, arn: &str) -> Result<(), IamError> {
        self.require_policy(arn)?;
        self.modify::<RoleRecord, _>(
            &keys::role(role),
            || no_role(role),
            &[keys::policy(arn)],
            |record| {
                if !record.attached.iter().any(|a| a == arn) {
                    if record.attached.len() >= ATTACHED_PER_ENTITY {
                        return Err(IamError::LimitExceeded(format!(
                            "Cannot exceed quota for PoliciesPerRole: {ATTACHED_PER_ENTITY}"
                        )));
                    }
                    record.attached.push(arn.to_owned());
                }
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// `DetachRolePolicy`.
    pub async fn detach_role_policy(&self, role: &str, arn: &str) -> Result<(), IamError> {
        self.modify::<RoleRecord, _>(
            &keys::role(role),
            || no_role(role),
            &[],
            |record| {
                let before = record.attached.len();
                record.attached.retain(|a| a != arn);
                if record.attached.len() == before {
                    return Err(IamError::NoSuchEntity(format!(
                        "Policy {arn} was not found."
                    )));
                }
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// `ListAttachedRolePolicies`: `(name, arn)` pairs.
    pub fn list_attached_role_policies(
        &self,
        role: &str,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> Result<Paged<(String, String)>, IamError> {
        let role = self.get_role(role)?;
        Ok(self.attached_page(&role.record.attached, path_prefix, marker, max))
    }
}
