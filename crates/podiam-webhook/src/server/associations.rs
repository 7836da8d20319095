//! Which (namespace, ServiceAccount) pairs have a pod identity association: listed from the
//! podiam server's EKS API for the cluster and refreshed every few seconds, so a new association
//! reaches the next pod within one interval. A failed refresh keeps the last known set.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use podiam_client::AwsClient;
use serde_json::Value;

use super::{ErrorKind, Metrics};
use crate::WebhookError;

/// Pages of this size are listed (the API's maximum).
const PAGE_SIZE: u32 = 100;
/// A runaway pagination (a server that always answers a next token) stops here.
const MAX_PAGES: usize = 10_000;

/// A source of association facts.
pub trait Associations: Send + Sync + fmt::Debug {
    /// Whether `namespace/service_account` has an association.
    fn contains(&self, namespace: &str, service_account: &str) -> bool;

    /// Whether the set was loaded at least once (for `/readyz`).
    fn is_ready(&self) -> bool;
}

type Pairs = HashSet<(String, String)>;

/// A fixed set of associations: for tests of the layers above, and `render`.
#[derive(Debug, Default)]
pub struct StaticAssociations(Pairs);

impl StaticAssociations {
    /// These (namespace, ServiceAccount) pairs.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(n, s)| (n.to_owned(), s.to_owned()))
                .collect(),
        )
    }
}

impl Associations for StaticAssociations {
    fn contains(&self, namespace: &str, service_account: &str) -> bool {
        self.0
            .contains(&(namespace.to_owned(), service_account.to_owned()))
    }

    fn is_ready(&self) -> bool {
        true
    }
}

/// The associations of one cluster on the podiam server.
pub struct EksAssociations {
    client: AwsClient,
    cluster: String,
    pairs: RwLock<Arc<Pairs>>,
    loaded: AtomicBool,
}

impl fmt::Debug for EksAssociations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EksAssociations")
            .field("endpoint", &self.client.endpoint())
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl EksAssociations {
    /// The associations of `cluster`, listed through `client` (not loaded yet).
    pub fn new(client: AwsClient, cluster: String) -> Self {
        Self {
            client,
            cluster,
            pairs: RwLock::new(Arc::new(Pairs::new())),
            loaded: AtomicBool::new(false),
        }
    }

    /// Lists every association of the cluster and swaps the set in; returns how many.
    pub async fn refresh(&self) -> Result<usize, WebhookError> {
        let mut pairs = Pairs::new();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut path = format!(
                "/clusters/{}/pod-identity-associations?maxResults={PAGE_SIZE}",
                percent_encode(&self.cluster)
            );
            if let Some(token) = &next_token {
                path.push_str("&nextToken=");
                path.push_str(&percent_encode(token));
            }
            let answer = self
                .client
                .rest_json("eks", http::Method::GET, &path, None)
                .await
                .map_err(|e| WebhookError::Associations(e.to_string()))?;
            let body = answer.body;
            let page = body
                .get("associations")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    WebhookError::Associations("the answer has no associations list".to_owned())
                })?;
            for association in page {
                let field = |name: &str| association.get(name).and_then(Value::as_str);
                if let (Some(namespace), Some(account)) =
                    (field("namespace"), field("serviceAccount"))
                {
                    pairs.insert((namespace.to_owned(), account.to_owned()));
                }
            }
            next_token = body
                .get("nextToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if next_token.is_none() {
                let count = pairs.len();
                *self
                    .pairs
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(pairs);
                self.loaded.store(true, Ordering::Relaxed);
                return Ok(count);
            }
        }
        Err(WebhookError::Associations(format!(
            "more than {MAX_PAGES} pages of associations"
        )))
    }

    /// Refreshes every `interval` forever, logging and counting what happens.
    pub async fn refresh_forever(self: Arc<Self>, interval: Duration, metrics: Arc<Metrics>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            ticker.tick().await;
            let first = !self.loaded.load(Ordering::Relaxed);
            let outcome = self.refresh().await;
            match &outcome {
                Ok(count) => {
                    metrics.set_associations(*count);
                    if failing || first {
                        tracing::info!(associations = count, "pod identity associations loaded");
                    }
                }
                Err(e) => {
                    metrics.error(ErrorKind::AssociationRefresh);
                    tracing::warn!(error = %e, "keeping the last known pod identity associations");
                }
            }
            failing = outcome.is_err();
        }
    }
}

impl Associations for EksAssociations {
    fn contains(&self, namespace: &str, service_account: &str) -> bool {
        let pairs = self
            .pairs
            .read()
            .map(|p| Arc::clone(&p))
            .unwrap_or_default();
        pairs.contains(&(namespace.to_owned(), service_account.to_owned()))
    }

    fn is_ready(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }
}

/// Everything but RFC 3986's unreserved characters is escaped.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a path segment or query value.
fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}
