//! The standard credential chain, as the AWS SDKs search it: environment variables, the shared
//! credentials file (re-read when it changes), then IMDSv2.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use podiam_crypto::Secret;
use podiam_types::Clock;
use time::OffsetDateTime;

use crate::ClientError;

/// AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AKIA…` or `ASIA…`.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: Secret<String>,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
    /// When temporary credentials expire.
    pub expiration: Option<OffsetDateTime>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// A source of credentials.
#[async_trait]
pub trait ProvideCredentials: Send + Sync + fmt::Debug {
    /// Current credentials, or why there are none.
    async fn credentials(&self) -> Result<Credentials, ClientError>;
}

/// Fixed credentials.
#[derive(Debug, Clone)]
pub struct StaticCredentials(pub Credentials);

#[async_trait]
impl ProvideCredentials for StaticCredentials {
    async fn credentials(&self) -> Result<Credentials, ClientError> {
        Ok(self.0.clone())
    }
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvCredentials;

#[async_trait]
impl ProvideCredentials for EnvCredentials {
    async fn credentials(&self) -> Result<Credentials, ClientError> {
        let id = std::env::var("AWS_ACCESS_KEY_ID")
            .ok()
            .filter(|v| !v.is_empty());
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
            .ok()
            .filter(|v| !v.is_empty());
        match (id, secret) {
            (Some(id), Some(secret)) => Ok(Credentials {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
                session_token: std::env::var("AWS_SESSION_TOKEN")
                    .ok()
                    .filter(|v| !v.is_empty()),
                expiration: None,
            }),
            _ => Err(ClientError::Credentials(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set".to_owned(),
            )),
        }
    }
}

/// A profile of the shared credentials file, re-read whenever the file changes (rotated keys
/// are picked up without a restart).
#[derive(Debug)]
pub struct ProfileCredentials {
    path: PathBuf,
    profile: String,
    cache: Mutex<Option<(SystemTime, Credentials)>>,
}

impl ProfileCredentials {
    /// `profile` of the file at `path`.
    pub fn new(path: PathBuf, profile: &str) -> Self {
        Self {
            path,
            profile: profile.to_owned(),
            cache: Mutex::new(None),
        }
    }

    /// `AWS_SHARED_CREDENTIALS_FILE` (or `~/.aws/credentials`), profile `AWS_PROFILE` (or
    /// `default`).
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials"))
            })?;
        let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
        Some(Self::new(path, &profile))
    }
}

/// The keys of `[profile]` in an INI-style credentials file.
fn parse_profile(text: &str, profile: &str) -> Option<Credentials> {
    let mut in_profile = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            in_profile = section == profile || section == format!("profile {profile}");
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().to_owned();
            match key.trim() {
                "aws_access_key_id" => id = Some(value),
                "aws_secret_access_key" => secret = Some(value),
                "aws_session_token" => token = Some(value),
                _ => {}
            }
        }
    }
    Some(Credentials {
        access_key_id: id?,
        secret_access_key: Secret::new(secret?),
        session_token: token,
        expiration: None,
    })
}

#[async_trait]
impl ProvideCredentials for ProfileCredentials {
    async fn credentials(&self) -> Result<Credentials, ClientError> {
        let missing = |why: String| ClientError::Credentials(why);
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .map_err(|e| missing(format!("{}: {e}", self.path.display())))?;
        if let Ok(cache) = self.cache.lock()
            && let Some((at, creds)) = cache.as_ref()
            && *at == modified
        {
            return Ok(creds.clone());
        }
        let text = Secret::new(
            std::fs::read_to_string(&self.path)
                .map_err(|e| missing(format!("{}: {e}", self.path.display())))?,
        );
        let creds = parse_profile(text.expose(), &self.profile).ok_or_else(|| {
            missing(format!(
                "{} has no keys for profile {}",
                self.path.display(),
                self.profile
            ))
        })?;
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((modified, creds.clone()));
        }
        Ok(creds)
    }
}

/// The first source that has credentials.
#[derive(Debug)]
pub struct ChainCredentials {
    sources: Vec<Box<dyn ProvideCredentials>>,
}

impl ChainCredentials {
    /// The sources, in order.
    pub fn new(sources: Vec<Box<dyn ProvideCredentials>>) -> Self {
        Self { sources }
    }

    /// Environment, shared credentials file, a web identity token file (`AWS_ROLE_ARN` and
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`, asking STS at `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL` or
    /// `sts_endpoint`), then IMDS at `imds` (e.g. `http://169.254.169.254`), as the SDKs search.
    pub fn standard(
        imds: Option<String>,
        sts_endpoint: Option<&str>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mut sources: Vec<Box<dyn ProvideCredentials>> = vec![Box::new(EnvCredentials)];
        if let Some(profile) = ProfileCredentials::from_env() {
            sources.push(Box::new(profile));
        }
        if let Some(web) = crate::WebIdentityCredentials::from_env(sts_endpoint, Arc::clone(&clock))
        {
            sources.push(Box::new(web));
        }
        if let Some(endpoint) = imds {
            sources.push(Box::new(crate::ImdsCredentials::new(&endpoint, clock)));
        }
        Self::new(sources)
    }
}

#[async_trait]
impl ProvideCredentials for ChainCredentials {
    async fn credentials(&self) -> Result<Credentials, ClientError> {
        let mut reasons = Vec::new();
        for source in &self.sources {
            match source.credentials().await {
                Ok(creds) => return Ok(creds),
                Err(e) => reasons.push(e.to_string()),
            }
        }
        Err(ClientError::Credentials(reasons.join("; ")))
    }
}

/// How long before expiry temporary credentials are replaced.
pub(crate) const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read_from_ini() {
        let text = "# podiam root credentials\n[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\n[profile dev]\naws_access_key_id=AKIA2\naws_secret_access_key=s2\naws_session_token=t\n";
        let default = parse_profile(text, "default").expect("default");
        assert_eq!(default.access_key_id, "AKIA1");
        assert_eq!(default.secret_access_key.expose(), "s1");
        let dev = parse_profile(text, "dev").expect("dev");
        assert_eq!(dev.session_token.as_deref(), Some("t"));
        assert!(parse_profile(text, "missing").is_none());
    }

    #[tokio::test]
    async fn a_rotated_credentials_file_is_read_again() {
        let dir = std::env::temp_dir().join(format!("podiam-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("credentials");
        let write = |id: &str, mtime: u64| {
            std::fs::write(
                &path,
                format!("[default]\naws_access_key_id = {id}\naws_secret_access_key = s\n"),
            )
            .expect("write");
            let file = std::fs::File::options()
                .write(true)
                .open(&path)
                .expect("open");
            file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime))
                .expect("mtime");
        };
        write("AKIAOLD", 1_000);
        let profile = ProfileCredentials::new(path.clone(), "default");
        assert_eq!(
            profile.credentials().await.expect("old").access_key_id,
            "AKIAOLD"
        );
        write("AKIANEW", 2_000);
        assert_eq!(
            profile.credentials().await.expect("new").access_key_id,
            "AKIANEW"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
