//! Users, their access keys, inline and attached policies.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam_crypto::Secret;
use podiam_policy::PolicyType;

use super::{
    Paged, check_name, check_path, check_policy, check_tags, merge_tags, paginate, paginate_map,
};
use podiam_store::{Compare, Op};

use crate::model::{AccessKeyRecord, KeyStatus, UserRecord, keys};
use crate::service::{WRITE_ATTEMPTS, encode};
use crate::{Iam, IamError, KeyEntry, UserEntry, new_access_key_id, new_unique_id};

/// What `CreateUser` creates.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// The name.
    pub name: String,
    /// The path (`/` by default).
    pub path: Option<String>,
    /// The permissions boundary ARN.
    pub boundary: Option<String>,
    /// Tags.
    pub tags: Vec<(String, String)>,
}

/// IAM's quota of access keys per user.
const KEYS_PER_USER: usize = 2;
/// IAM's quota of attached managed policies per user or role.
pub(crate) const ATTACHED_PER_ENTITY: usize = 10;
/// IAM's quota of inline policy characters per user.
const USER_INLINE_CHARS: usize = 2048;

fn no_user(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The user with name {name} cannot be found."))
}

impl Iam {
    /// `CreateUser`.
    pub async fn create_user(&self, new: NewUser) -> Result<Arc<UserEntry>, IamError> {
        check_name("userName", &new.name, 64)?;
        let path = new.path.unwrap_or_else(|| "/".to_owned());
        check_path(&path)?;
        check_tags(&new.tags)?;
        if let Some(arn) = &new.boundary {
            self.require_policy(arn)?;
        }
        let record = UserRecord {
            name: new.name.clone(),
            id: new_unique_id("AIDA", self.rng())?,
            path,
            created: self.now().unix_timestamp(),
            boundary: new.boundary,
            tags: new.tags,
            inline: Default::default(),
            attached: Vec::new(),
            access_keys: Vec::new(),
        };
        let exists =
            IamError::EntityAlreadyExists(format!("User with name {} already exists.", new.name));
        self.create(&keys::user(&new.name), &record, Vec::new(), exists)
            .await?;
        self.get_user(&new.name)
    }

    /// `GetUser`.
    pub fn get_user(&self, name: &str) -> Result<Arc<UserEntry>, IamError> {
        self.state().user(name).ok_or_else(|| no_user(name))
    }

    /// `ListUsers`.
    pub fn list_users(
        &self,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> Paged<Arc<UserEntry>> {
        paginate_map(
            &self.state().users,
            marker,
            max,
            |u| path_prefix.is_none_or(|p| u.record.path.starts_with(p)),
            Arc::clone,
        )
    }

    /// `TagUser`: adds or replaces tags (at most 50 in all).
    pub async fn tag_user(&self, name: &str, tags: &[(String, String)]) -> Result<(), IamError> {
        check_tags(tags)?;
        self.modify::<UserRecord, _>(
            &keys::user(name),
            || no_user(name),
            &[],
            |user| {
                merge_tags(&mut user.tags, tags);
                check_tags(&user.tags)
            },
        )
        .await
        .map(|_| ())
    }

    /// `UntagUser`.
    pub async fn untag_user(&self, name: &str, tag_keys: &[String]) -> Result<(), IamError> {
        self.modify::<UserRecord, _>(
            &keys::user(name),
            || no_user(name),
            &[],
            |user| {
                user.tags
                    .retain(|(k, _)| !tag_keys.iter().any(|t| t.eq_ignore_ascii_case(k)));
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// `ListUserTags`.
    pub fn list_user_tags(
        &self,
        name: &str,
        marker: Option<&str>,
        max: usize,
    ) -> Result<Paged<(String, String)>, IamError> {
        let user = self.get_user(name)?;
        let tags = user
            .record
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("{i:05}"), t.clone()));
        Ok(paginate(tags, marker, max))
    }

    /// `DeleteUser`: only once it has no access keys and no policies.
    pub async fn delete_user(&self, name: &str) -> Result<(), IamError> {
        if !self.state().keys_of(Some(name)).is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete access keys first.".to_owned(),
            ));
        }
        self.remove::<UserRecord, _>(
            &keys::user(name),
            || no_user(name),
            |user| {
                if !user.access_keys.is_empty() {
                    return Err(IamError::DeleteConflict(
                        "Cannot delete entity, must delete access keys first.".to_owned(),
                    ));
                }
                if !user.inline.is_empty() {
                    return Err(IamError::DeleteConflict(
                        "Cannot delete entity, must delete policies first.".to_owned(),
                    ));
                }
                if !user.attached.is_empty() {
                    return Err(IamError::DeleteConflict(
                        "Cannot delete entity, must detach all policies first.".to_owned(),
                    ));
                }
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// `CreateAccessKey` for `user` (`None`: the account root). Returns the record and the
    /// secret, which is shown this once.
    pub async fn create_access_key(
        &self,
        user: Option<&str>,
    ) -> Result<(AccessKeyRecord, Secret<String>), IamError> {
        let owner = match user {
            Some(name) => Some(self.get_user(name)?.record.name.to_lowercase()),
            None => None,
        };
        if self.state().keys_of(user).len() >= KEYS_PER_USER {
            return Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}"
            )));
        }
        let id = new_access_key_id(self.rng())?;
        let secret = podiam_session::new_secret(self.rng())?;
        let key = keys::access_key(&id);
        let sealed = self
            .kek()
            .seal(secret.expose().as_bytes(), key.as_bytes(), self.rng())?;
        let record = AccessKeyRecord {
            id: id.clone(),
            user: owner,
            status: KeyStatus::Active,
            created: self.now().unix_timestamp(),
            sealed_secret: URL_SAFE_NO_PAD.encode(sealed),
        };
        let exists =
            IamError::ConcurrentModification("Access key id collision; try again.".to_owned());
        match user {
            None => self.create(&key, &record, Vec::new(), exists).await?,
            Some(name) => self.add_user_key(name, &key, &record, exists).await?,
        }
        Ok((record, secret))
    }

    /// Stores a user's key and lists it in the user record, atomically: the user must still
    /// exist, unchanged since it was read, and still have room for a key.
    async fn add_user_key(
        &self,
        name: &str,
        key: &str,
        record: &AccessKeyRecord,
        collision: IamError,
    ) -> Result<(), IamError> {
        let user_key = keys::user(name);
        for _ in 0..WRITE_ATTEMPTS {
            let (mut user, revision) = self
                .load::<UserRecord>(&user_key)
                .await?
                .ok_or_else(|| no_user(name))?;
            if user.access_keys.len() >= KEYS_PER_USER {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}"
                )));
            }
            user.access_keys.push(record.id.clone());
            let compares = [
                Compare::ModRevision(user_key.clone(), revision),
                Compare::Absent(key.to_owned()),
            ];
            let ops = vec![
                Op::Put(user_key.clone(), encode(&user)?),
                Op::Put(key.to_owned(), encode(record)?),
            ];
            if self.commit(&compares, ops).await?.is_some() {
                return Ok(());
            }
            if self.inner_store_has(key).await? {
                return Err(collision);
            }
        }
        Err(IamError::ConcurrentModification(
            "Another request changed the user at the same time; try again.".to_owned(),
        ))
    }

    /// `ListAccessKeys`.
    pub fn list_access_keys(&self, user: Option<&str>) -> Result<Vec<Arc<KeyEntry>>, IamError> {
        if let Some(name) = user {
            self.get_user(name)?;
        }
        Ok(self.state().keys_of(user))
    }

    fn owned_key(&self, user: Option<&str>, id: &str) -> Result<(), IamError> {
        let missing =
            || IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found"));
        let key = self.state().access_key(id).ok_or_else(missing)?;
        if key.record.user != user.map(str::to_lowercase) {
            return Err(missing());
        }
        Ok(())
    }

    /// `UpdateAccessKey`.
    pub async fn update_access_key(
        &self,
        user: Option<&str>,
        id: &str,
        status: KeyStatus,
    ) -> Result<(), IamError> {
        self.owned_key(user, id)?;
        let missing =
            || IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found"));
        self.modify::<AccessKeyRecord, _>(&keys::access_key(id), missing, &[], |key| {
            key.status = status;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// `DeleteAccessKey`.
    pub async fn delete_access_key(&self, user: Option<&str>, id: &str) -> Result<(), IamError> {
        self.owned_key(user, id)?;
        let missing =
            || IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found"));
        let Some(name) = user else {
            return self
                .remove::<AccessKeyRecord, _>(&keys::access_key(id), missing, |_| Ok(()))
                .await
                .map(|_| ());
        };
        // The key and its place in the user record go together.
        let (user_key, key) = (keys::user(name), keys::access_key(id));
        for _ in 0..WRITE_ATTEMPTS {
            let (_, key_revision) = self
                .load::<AccessKeyRecord>(&key)
                .await?
                .ok_or_else(missing)?;
            let mut ops = vec![Op::Delete(key.clone())];
            let mut compares = vec![Compare::ModRevision(key.clone(), key_revision)];
            if let Some((mut record, revision)) = self.load::<UserRecord>(&user_key).await? {
                record.access_keys.retain(|k| k != id);
                ops.push(Op::Put(user_key.clone(), encode(&record)?));
                compares.push(Compare::ModRevision(user_key.clone(), revision));
            }
            if self.commit(&compares, ops).await?.is_some() {
                return Ok(());
            }
        }
        Err(IamError::ConcurrentModification(
            "Another request changed the user at the same time; try again.".to_owned(),
        ))
    }

    /// `PutUserPolicy`.
    pub async fn put_user_policy(
        &self,
        user: &str,
        policy: &str,
        document: &str,
    ) -> Result<(), IamError> {
        check_name("policyName", policy, 128)?;
        check_policy(document, PolicyType::Identity)?;
        self.modify::<UserRecord, _>(
            &keys::user(user),
            || no_user(user),
            &[],
            |record| {
                record.inline.insert(policy.to_owned(), document.to_owned());
                let total: usize = record
                    .inline
                    .values()
                    .map(|d| podiam_policy::policy_size(d))
                    .sum();
                if total > USER_INLINE_CHARS {
                    return Err(IamError::LimitExceeded(format!(
                        "Maximum policy size of {USER_INLINE_CHARS} bytes exceeded for user {user}"
                    )));
                }
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }

    /// `GetUserPolicy`: the document as submitted.
    pub fn get_user_policy(&self, user: &str, policy: &str) -> Result<String, IamError> {
        self.get_user(user)?
            .record
            .inline
            .get(policy)
            .cloned()
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!(
                    "The user policy with name {policy} cannot be found."
                ))
            })
    }

    /// `ListUserPolicies`.
    pub fn list_user_policies(
        &self,
        user: &str,
        marker: Option<&str>,
        max: usize,
    ) -> Result<Paged<String>, IamError> {
        let user = self.get_user(user)?;
        Ok(paginate(
            user.record.inline.keys().map(|k| (k.clone(), k.clone())),
            marker,
            max,
        ))
    }

    /// `DeleteUserPolicy`.
    pub async fn delete_user_policy(&self, user: &str, policy: &str) -> Result<(), IamError> {
        self.modify::<UserRecord, _>(
            &keys::user(user),
            || no_user(user),
            &[],
            |record| {
                record.inline.remove(policy).map(|_| ()).ok_or_else(|| {
                    IamError::NoSuchEntity(format!(
                        "The user policy with name {policy} cannot be found."
                    ))
                })
            },
        )
        .await
        .map(|_| ())
    }

    /// `AttachUserPolicy`.
    pub async fn attach_user_policy(&self, user: &str, arn: &str) -> Result<(), IamError> {
        self.require_policy(arn)?;
        self.modify::<UserRecord, _>(
            &keys::user(user),
            || no_user(user),
            &[keys::policy(arn)],
            |record| {
                if !record.attached.iter().any(|a| a == arn) {
                    if record.attached.len() >= ATTACHED_PER_ENTITY {
                        return Err(IamError::LimitExceeded(format!(
                            "Cannot exceed quota for PoliciesPerUser: {ATTACHED_PER_ENTITY}"
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

    /// `DetachUserPolicy`.
    pub async fn detach_user_policy(&self, user: &str, arn: &str) -> Result<(), IamError> {
        self.modify::<UserRecord, _>(
            &keys::user(user),
            || no_user(user),
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

    /// `ListAttachedUserPolicies`: `(name, arn)` pairs.
    pub fn list_attached_user_policies(
        &self,
        user: &str,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> Result<Paged<(String, String)>, IamError> {
        let user = self.get_user(user)?;
        Ok(self.attached_page(&user.record.attached, path_prefix, marker, max))
    }

    pub(crate) fn attached_page(
        &self,
        attached: &[String],
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> Paged<(String, String)> {
        let state = self.state();
        let mut items: Vec<(String, (String, String))> = attached
            .iter()
            .filter_map(|arn| state.policy(arn))
            .filter(|p| path_prefix.is_none_or(|prefix| p.record.path.starts_with(prefix)))
            .map(|p| {
                (
                    p.record.arn.clone(),
                    (p.record.name.clone(), p.record.arn.clone()),
                )
            })
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        paginate(items.into_iter(), marker, max)
    }

    /// The policy exists (and can be attached).
    pub(crate) fn require_policy(&self, arn: &str) -> Result<(), IamError> {
        if self.state().policy(arn).is_some() {
            Ok(())
        } else {
            Err(IamError::NoSuchEntity(format!(
                "Policy {arn} does not exist or is not attachable."
            )))
        }
    }
}
