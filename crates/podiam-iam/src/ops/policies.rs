//! Customer-managed policies and their versions.

use std::sync::Arc;

use podiam_policy::PolicyType;

use super::{Paged, check_name, check_path, check_policy, check_tags, paginate};
use crate::model::{PolicyRecord, PolicyVersionRecord, keys};
use crate::{Iam, IamError, PolicyEntry, new_unique_id};

/// Which policies `ListPolicies` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyScope {
    /// Both.
    #[default]
    All,
    /// AWS-managed (`arn:aws:iam::aws:policy/…`).
    Aws,
    /// This account's.
    Local,
}

/// IAM's quota of versions per managed policy.
const MAX_VERSIONS: usize = 5;

fn no_policy(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("Policy {arn} was not found."))
}

/// `v3` → 3.
fn version_number(id: &str) -> Option<u32> {
    id.strip_prefix('v')?.parse().ok().filter(|n| *n > 0)
}

impl Iam {
    /// `CreatePolicy` (a customer-managed policy; `aws_managed` seeds AWS's own).
    pub async fn create_policy(
        &self,
        name: &str,
        path: Option<&str>,
        document: &str,
        description: Option<String>,
        tags: Vec<(String, String)>,
    ) -> Result<Arc<PolicyEntry>, IamError> {
        check_name("policyName", name, 128)?;
        let path = path.unwrap_or("/");
        check_path(path)?;
        check_tags(&tags)?;
        check_policy(document, PolicyType::Identity)?;
        let arn = self.state().policy_arn(path, name);
        self.insert_policy(arn, name, path, document, description, tags)
            .await
    }

    /// AWS-managed policies are the server's: nobody changes or deletes them.
    fn refuse_aws_managed(&self, arn: &str) -> Result<(), IamError> {
        let prefix = format!("arn:{}:iam::aws:policy/", self.state().partition());
        if arn.starts_with(&prefix) {
            return Err(IamError::AccessDenied(format!(
                "The AWS managed policy {arn} cannot be changed or deleted."
            )));
        }
        Ok(())
    }

    /// Seeds an AWS-managed policy (`arn:aws:iam::aws:policy{path}{name}`), if absent.
    pub async fn ensure_aws_managed_policy(
        &self,
        name: &str,
        path: &str,
        document: &str,
        description: &str,
    ) -> Result<(), IamError> {
        let arn = format!(
            "arn:{}:iam::aws:policy{path}{name}",
            self.state().partition()
        );
        if self.state().policy(&arn).is_some() {
            return Ok(());
        }
        match self
            .insert_policy(
                arn,
                name,
                path,
                document,
                Some(description.to_owned()),
                Vec::new(),
            )
            .await
        {
            Ok(_) | Err(IamError::EntityAlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn insert_policy(
        &self,
        arn: String,
        name: &str,
        path: &str,
        document: &str,
        description: Option<String>,
        tags: Vec<(String, String)>,
    ) -> Result<Arc<PolicyEntry>, IamError> {
        let now = self.now().unix_timestamp();
        let record = PolicyRecord {
            arn: arn.clone(),
            name: name.to_owned(),
            id: new_unique_id("ANPA", self.rng())?,
            path: path.to_owned(),
            description,
            created: now,
            updated: now,
            default_version: 1,
            versions: vec![PolicyVersionRecord {
                number: 1,
                document: document.to_owned(),
                created: now,
            }],
            next_version: 2,
            tags,
        };
        let exists = IamError::EntityAlreadyExists(format!(
            "A policy called {name} already exists. Duplicate names are not allowed."
        ));
        self.create(&keys::policy(&arn), &record, Vec::new(), exists)
            .await?;
        self.get_policy(&arn)
    }

    /// `GetPolicy`.
    pub fn get_policy(&self, arn: &str) -> Result<Arc<PolicyEntry>, IamError> {
        self.state().policy(arn).ok_or_else(|| no_policy(arn))
    }

    /// `GetPolicyVersion`: the version and whether it is the default.
    pub fn get_policy_version(
        &self,
        arn: &str,
        version_id: &str,
    ) -> Result<(PolicyVersionRecord, bool), IamError> {
        let policy = self.get_policy(arn)?;
        let missing = || {
            IamError::NoSuchEntity(format!(
                "Policy {arn} version {version_id} does not exist or is not attachable."
            ))
        };
        let number = version_number(version_id).ok_or_else(missing)?;
        let version = policy
            .record
            .versions
            .iter()
            .find(|v| v.number == number)
            .cloned()
            .ok_or_else(missing)?;
        Ok((version, number == policy.record.default_version))
    }

    /// `ListPolicyVersions`.
    pub fn list_policy_versions(
        &self,
        arn: &str,
    ) -> Result<(Vec<PolicyVersionRecord>, u32), IamError> {
        let policy = self.get_policy(arn)?;
        let mut versions = policy.record.versions.clone();
        versions.sort_by_key(|v| std::cmp::Reverse(v.number));
        Ok((versions, policy.record.default_version))
    }

    /// `ListPolicies`.
    pub fn list_policies(
        &self,
        scope: PolicyScope,
        only_attached: bool,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> Paged<Arc<PolicyEntry>> {
        let state = self.state();
        let aws_prefix = format!("arn:{}:iam::aws:", state.partition());
        let policies: Vec<(String, Arc<PolicyEntry>)> = state
            .policies
            .iter()
            .filter(|(arn, _)| match scope {
                PolicyScope::All => true,
                PolicyScope::Aws => arn.starts_with(&aws_prefix),
                PolicyScope::Local => !arn.starts_with(&aws_prefix),
            })
            .filter(|(_, p)| path_prefix.is_none_or(|prefix| p.record.path.starts_with(prefix)))
            .filter(|(arn, _)| {
                let (attached, boundary) = state.attachments(arn);
                !only_attached || attached + boundary > 0
            })
            .map(|(k, p)| (k.clone(), Arc::clone(p)))
            .collect();
        paginate(policies.into_iter(), marker, max)
    }

    /// `DeletePolicy`: only when nothing attaches it and only the default version is left.
    pub async fn delete_policy(&self, arn: &str) -> Result<(), IamError> {
        self.refuse_aws_managed(arn)?;
        let (attached, boundary) = self.state().attachments(arn);
        if attached + boundary > 0 {
            return Err(IamError::DeleteConflict(
                "Cannot delete a policy attached to entities.".to_owned(),
            ));
        }
        self.remove::<PolicyRecord, _>(&keys::policy(arn), || no_policy(arn), |policy| {
            if policy.versions.len() > 1 {
                return Err(IamError::DeleteConflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".to_owned(),
                ));
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// `CreatePolicyVersion`: returns the new version's number.
    pub async fn create_policy_version(
        &self,
        arn: &str,
        document: &str,
        set_default: bool,
    ) -> Result<(PolicyVersionRecord, bool), IamError> {
        self.refuse_aws_managed(arn)?;
        check_policy(document, PolicyType::Identity)?;
        let now = self.now().unix_timestamp();
        let record = self
            .modify::<PolicyRecord, _>(&keys::policy(arn), || no_policy(arn), &[], |policy| {
                if policy.versions.len() >= MAX_VERSIONS {
                    return Err(IamError::LimitExceeded(
                        "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.".to_owned(),
                    ));
                }
                let number = policy.next_version;
                policy.versions.push(PolicyVersionRecord { number, document: document.to_owned(), created: now });
                policy.next_version += 1;
                policy.updated = now;
                if set_default {
                    policy.default_version = number;
                }
                Ok(())
            })
            .await?;
        let version = record
            .versions
            .last()
            .cloned()
            .ok_or_else(|| no_policy(arn))?;
        Ok((version, set_default))
    }

    /// `DeletePolicyVersion` (not the default).
    pub async fn delete_policy_version(&self, arn: &str, version_id: &str) -> Result<(), IamError> {
        self.refuse_aws_managed(arn)?;
        let missing =
            || IamError::NoSuchEntity(format!("Policy {arn} version {version_id} does not exist."));
        let number = version_number(version_id).ok_or_else(missing)?;
        self.modify::<PolicyRecord, _>(
            &keys::policy(arn),
            || no_policy(arn),
            &[],
            |policy| {
                if policy.default_version == number {
                    return Err(IamError::DeleteConflict(
                        "Cannot delete the default version of a policy.".to_owned(),
                    ));
                }
                let before = policy.versions.len();
                policy.versions.retain(|v| v.number != number);
                if policy.versions.len() == before {
                    return Err(missing());
                }
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// `SetDefaultPolicyVersion`.
    pub async fn set_default_policy_version(
        &self,
        arn: &str,
        version_id: &str,
    ) -> Result<(), IamError> {
        self.refuse_aws_managed(arn)?;
        let missing =
            || IamError::NoSuchEntity(format!("Policy {arn} version {version_id} does not exist."));
        let number = version_number(version_id).ok_or_else(missing)?;
        let now = self.now().unix_timestamp();
        self.modify::<PolicyRecord, _>(
            &keys::policy(arn),
            || no_policy(arn),
            &[],
            |policy| {
                if !policy.versions.iter().any(|v| v.number == number) {
                    return Err(missing());
                }
                policy.default_version = number;
                policy.updated = now;
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::version_number;

    #[test]
    fn version_ids() {
        assert_eq!(version_number("v1"), Some(1));
        assert_eq!(version_number("v12"), Some(12));
        assert_eq!(version_number("v0"), None);
        assert_eq!(version_number("1"), None);
        assert_eq!(version_number("vx"), None);
    }
}
