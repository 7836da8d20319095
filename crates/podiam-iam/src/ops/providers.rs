//! IAM OIDC identity providers.

use std::sync::Arc;

use super::{Paged, check_tags, paginate};
use crate::model::{ProviderRecord, keys};
use crate::state::ProviderEntry;
use crate::{Iam, IamError};

/// IAM's quota of client ids per provider.
const MAX_CLIENT_IDS: usize = 100;
/// IAM's quota of thumbprints per provider.
const MAX_THUMBPRINTS: usize = 5;

fn check_thumbprints(thumbprints: &[String]) -> Result<(), IamError> {
    if thumbprints.len() > MAX_THUMBPRINTS {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for ThumbprintsPerProvider: {MAX_THUMBPRINTS}"
        )));
    }
    for t in thumbprints {
        if t.len() != 40 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(IamError::InvalidInput(format!(
                "Thumbprint {t:?} must be 40 hexadecimal characters."
            )));
        }
    }
    Ok(())
}

fn check_client_ids(ids: &[String]) -> Result<(), IamError> {
    if ids.len() > MAX_CLIENT_IDS {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
        )));
    }
    if ids.iter().any(|id| id.is_empty() || id.len() > 255) {
        return Err(IamError::InvalidInput(
            "A client id is 1 to 255 characters.".to_owned(),
        ));
    }
    Ok(())
}

/// `https://host/path` → `host/path`, canonical (the form in ARNs and token `iss` matching):
/// spellings of one URL name one provider.
pub(crate) fn provider_url(url: &str) -> Result<String, IamError> {
    let invalid = || {
        IamError::InvalidInput(format!(
            "Invalid Url: {url:?} must be an https:// URL without query or fragment."
        ))
    };
    let parsed: podiam_types::IssuerUrl = url.parse().map_err(|_| invalid())?;
    if !parsed.is_https() {
        return Err(invalid());
    }
    Ok(parsed.key().to_owned())
}

impl Iam {
    /// The provider URL of an ARN in this account.
    fn url_of(&self, arn: &str) -> Result<String, IamError> {
        let state = self.state();
        let prefix = format!(
            "arn:{}:iam::{}:oidc-provider/",
            state.partition(),
            state.account()
        );
        arn.strip_prefix(&prefix).map(str::to_owned).ok_or_else(|| {
            IamError::InvalidInput(format!(
                "{arn} is not an OIDC provider ARN of this account."
            ))
        })
    }

    /// `CreateOpenIDConnectProvider`. With `allow_http`, `http://` loopback issuers are
    /// accepted too (for local test issuers).
    pub async fn create_oidc_provider(
        &self,
        url: &str,
        client_ids: Vec<String>,
        thumbprints: Vec<String>,
        tags: Vec<(String, String)>,
        allow_http: bool,
    ) -> Result<String, IamError> {
        // The caller decides which plain-HTTP issuers are acceptable (loopback test issuers,
        // issuers podiam hosts); they follow the same rules otherwise.
        let url_key = match url.get(..7) {
            Some(scheme) if allow_http && scheme.eq_ignore_ascii_case("http://") => {
                provider_url(&format!("https://{}", url.get(7..).unwrap_or_default()))?
            }
            _ => provider_url(url)?,
        };
        check_client_ids(&client_ids)?;
        check_thumbprints(&thumbprints)?;
        check_tags(&tags)?;
        let record = ProviderRecord {
            url: url_key.clone(),
            client_ids,
            thumbprints,
            created: self.now().unix_timestamp(),
            tags,
        };
        let exists =
            IamError::EntityAlreadyExists(format!("Provider with url {url} already exists."));
        self.create(&keys::provider(&url_key), &record, Vec::new(), exists)
            .await?;
        Ok(self.state().provider_arn(&url_key))
    }

    /// `GetOpenIDConnectProvider`.
    pub fn get_oidc_provider(&self, arn: &str) -> Result<Arc<ProviderEntry>, IamError> {
        let url = self.url_of(arn)?;
        self.state().provider(&url).ok_or_else(|| {
            IamError::NoSuchEntity(format!("OpenIDConnect Provider not found for arn {arn}"))
        })
    }

    /// `ListOpenIDConnectProviders`: provider ARNs.
    pub fn list_oidc_providers(&self) -> Paged<String> {
        let state = self.state();
        let arns = state
            .providers()
            .map(|p| state.provider_arn(&p.record.url))
            .map(|a| (a.clone(), a));
        paginate(arns.collect::<Vec<_>>().into_iter(), None, 1000)
    }

    /// `DeleteOpenIDConnectProvider`.
    pub async fn delete_oidc_provider(&self, arn: &str) -> Result<(), IamError> {
        let url = self.url_of(arn)?;
        let missing =
            || IamError::NoSuchEntity(format!("OpenIDConnect Provider not found for arn {arn}"));
        self.remove::<ProviderRecord, _>(&keys::provider(&url), missing, |_| Ok(()))
            .await
            .map(|_| ())
    }

    /// `AddClientIDToOpenIDConnectProvider`.
    pub async fn add_client_id(&self, arn: &str, client_id: &str) -> Result<(), IamError> {
        let url = self.url_of(arn)?;
        let missing =
            || IamError::NoSuchEntity(format!("OpenIDConnect Provider not found for arn {arn}"));
        self.modify::<ProviderRecord, _>(&keys::provider(&url), missing, &[], |p| {
            if !p.client_ids.iter().any(|c| c == client_id) {
                p.client_ids.push(client_id.to_owned());
            }
            check_client_ids(&p.client_ids)
        })
        .await
        .map(|_| ())
    }

    /// `RemoveClientIDFromOpenIDConnectProvider`.
    pub async fn remove_client_id(&self, arn: &str, client_id: &str) -> Result<(), IamError> {
        let url = self.url_of(arn)?;
        let missing =
            || IamError::NoSuchEntity(format!("OpenIDConnect Provider not found for arn {arn}"));
        self.modify::<ProviderRecord, _>(&keys::provider(&url), missing, &[], |p| {
            p.client_ids.retain(|c| c != client_id);
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// `UpdateOpenIDConnectProviderThumbprint`.
    pub async fn update_thumbprints(
        &self,
        arn: &str,
        thumbprints: Vec<String>,
    ) -> Result<(), IamError> {
        check_thumbprints(&thumbprints)?;
        let url = self.url_of(arn)?;
        let missing =
            || IamError::NoSuchEntity(format!("OpenIDConnect Provider not found for arn {arn}"));
        self.modify::<ProviderRecord, _>(&keys::provider(&url), missing, &[], |p| {
            p.thumbprints = thumbprints.clone();
            Ok(())
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            provider_url("https://oidc.eks.eu-central-1.amazonaws.com/id/ABC").unwrap(),
            "oidc.eks.eu-central-1.amazonaws.com/id/ABC"
        );
        assert_eq!(provider_url("https://example.com/").unwrap(), "example.com");
        assert!(provider_url("http://example.com").is_err());
        assert!(provider_url("https://").is_err());
        assert!(provider_url("https://a.com?x=1").is_err());
        assert!(provider_url("https://user@example.com/x").is_err());
        // One provider, however its URL is spelled.
        for spelling in [
            "https://OIDC.example.com/id/X",
            "https://oidc.example.com:443/id/X",
            "https://oidc.example.com//id/X/",
        ] {
            assert_eq!(provider_url(spelling).unwrap(), "oidc.example.com/id/X");
        }
    }
}
