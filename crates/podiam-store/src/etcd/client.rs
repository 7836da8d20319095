//! One etcd member's gRPC client: the three calls the store makes (Range, Txn, Watch), over a
//! tonic channel that connects on first use, with etcd's metadata on every request.
//!
//! - `hasleader: true` makes a member without a leader refuse at once ("no leader") rather
//!   than hold the request until its own timeout, so that the call fails over.
//! - With a user, the member is asked for a token (Auth.Authenticate) on first use and again
//!   when it reports the token invalid (etcd forgets tokens when it restarts or they expire).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};

use super::proto::etcdserverpb::auth_client::AuthClient;
use super::proto::etcdserverpb::kv_client::KvClient;

/// The largest answer read from etcd (tonic's default is 4 MiB). A page of a listing or a
/// watch response holds many values of up to [`crate::MAX_VALUE_LEN`]; a listing page larger
/// still is asked again for fewer keys (`EtcdStore::list`).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
use super::proto::etcdserverpb::watch_client::WatchClient;
use super::proto::etcdserverpb::{
    AuthenticateRequest, RangeRequest, RangeResponse, TxnRequest, TxnResponse, WatchCreateRequest,
    WatchProgressRequest, WatchRequest, WatchResponse, watch_request,
};
use crate::StoreError;

/// How to reach every member.
#[derive(Clone, Default)]
pub(crate) struct ConnectOptions {
    pub(crate) connect_timeout: Duration,
    /// PEM of the CA, and the client's certificate and key: TLS when the CA is set.
    pub(crate) ca_pem: Option<Vec<u8>>,
    pub(crate) client_cert_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// User name and password for etcd's role-based access control.
    pub(crate) user: Option<(String, String)>,
}

/// A member's client; clones share the connection and the token.
#[derive(Clone)]
pub(crate) struct MemberClient {
    channel: Channel,
    auth: Option<Arc<Auth>>,
}

/// The user's credentials and the token the member gave for them.
struct Auth {
    user: String,
    password: String,
    token: Mutex<Option<AsciiMetadataValue>>,
}

/// A watch: its request stream (for progress requests) and its response stream.
pub(crate) struct WatchStream {
    requests: mpsc::Sender<WatchRequest>,
    responses: tonic::Streaming<WatchResponse>,
}

impl WatchStream {
    /// The next response; `None` when the member closed the stream.
    pub(crate) async fn message(&mut self) -> Result<Option<WatchResponse>, Status> {
        self.responses.message().await
    }

    /// Asks the member to report the watch's progress (a response with no events).
    pub(crate) async fn request_progress(&self) {
        let request = WatchRequest {
            request_union: Some(watch_request::RequestUnion::ProgressRequest(
                WatchProgressRequest {},
            )),
        };
        // A closed stream shows itself on the response side.
        let _ = self.requests.send(request).await;
    }
}

impl MemberClient {
    /// A client of the member at `endpoint` (`host:port` or `http(s)://host:port`). Nothing is
    /// dialled until the first call.
    pub(crate) fn new(endpoint: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        let tls = options.ca_pem.is_some();
        let uri = if endpoint.contains("://") {
            endpoint.to_owned()
        } else if tls {
            format!("https://{endpoint}")
        } else {
            format!("http://{endpoint}")
        };
        let invalid = |detail: String| {
            StoreError::InvalidArgument(format!("etcd endpoint {endpoint:?}: {detail}"))
        };
        let mut builder = Endpoint::from_shared(uri)
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(options.connect_timeout)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(3))
            .keep_alive_while_idle(true);
        if let Some(ca) = &options.ca_pem {
            let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
            if let Some((cert, key)) = &options.client_cert_pem {
                config = config.identity(Identity::from_pem(cert, key));
            }
            builder = builder
                .tls_config(config)
                .map_err(|e| invalid(format!("TLS: {e}")))?;
        }
        Ok(Self {
            channel: builder.connect_lazy(),
            auth: options.user.as_ref().map(|(user, password)| {
                Arc::new(Auth {
                    user: user.clone(),
                    password: password.clone(),
                    token: Mutex::new(None),
                })
            }),
        })
    }

    pub(crate) async fn range(&self, range: RangeRequest) -> Result<RangeResponse, Status> {
        self.authorized(|metadata| {
            let mut kv =
                KvClient::new(self.channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES);
            let request = metadata.request(range.clone());
            async move { Ok(kv.range(request).await?.into_inner()) }
        })
        .await
    }

    pub(crate) async fn txn(&self, txn: TxnRequest) -> Result<TxnResponse, Status> {
        self.authorized(|metadata| {
            let mut kv = KvClient::new(self.channel.clone());
            let request = metadata.request(txn.clone());
            async move { Ok(kv.txn(request).await?.into_inner()) }
        })
        .await
    }

    /// Starts a watch and waits for the member to accept the stream.
    pub(crate) async fn watch(&self, create: WatchCreateRequest) -> Result<WatchStream, Status> {
        self.authorized(|metadata| {
            let mut watch = WatchClient::new(self.channel.clone())
                .max_decoding_message_size(MAX_RESPONSE_BYTES);
            let create = create.clone();
            async move {
                let (requests, outgoing) = mpsc::channel(4);
                let first = WatchRequest {
                    request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
                };
                requests
                    .send(first)
                    .await
                    .map_err(|_| Status::internal("the watch's request stream closed"))?;
                let responses = watch
                    .watch(metadata.request(ReceiverStream::new(outgoing)))
                    .await?
                    .into_inner();
                Ok(WatchStream {
                    requests,
                    responses,
                })
            }
        })
        .await
    }

    /// Runs `call` with etcd's metadata; with a user, asks for a new token once when the
    /// member reports the one sent invalid.
    async fn authorized<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: Fn(Metadata) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let Some(auth) = &self.auth else {
            return call(Metadata { token: None }).await;
        };
        let token = self.token(auth).await?;
        match call(Metadata {
            token: Some(token.clone()),
        })
        .await
        {
            Err(status) if is_invalid_token(&status) => {
                let mut current = auth.token.lock().await;
                if current.as_ref() == Some(&token) {
                    *current = None;
                }
                drop(current);
                let token = self.token(auth).await?;
                call(Metadata { token: Some(token) }).await
            }
            other => other,
        }
    }

    /// The member's token for the user, asked for when there is none.
    async fn token(&self, auth: &Auth) -> Result<AsciiMetadataValue, Status> {
        let mut token = auth.token.lock().await;
        if let Some(token) = token.as_ref() {
            return Ok(token.clone());
        }
        let response = AuthClient::new(self.channel.clone())
            .authenticate(AuthenticateRequest {
                name: auth.user.clone(),
                password: auth.password.clone(),
            })
            .await?
            .into_inner();
        let value = AsciiMetadataValue::try_from(response.token)
            .map_err(|_| Status::internal("etcd answered with a token that is not ASCII"))?;
        *token = Some(value.clone());
        Ok(value)
    }
}

/// What every request carries.
#[derive(Clone)]
struct Metadata {
    token: Option<AsciiMetadataValue>,
}

impl Metadata {
    fn request<M>(&self, message: M) -> Request<M> {
        let mut request = Request::new(message);
        let metadata = request.metadata_mut();
        metadata.insert("hasleader", MetadataValue::from_static("true"));
        if let Some(token) = &self.token {
            metadata.insert("token", token.clone());
        }
        request
    }
}

/// etcd forgets tokens when it restarts, and simple tokens expire.
fn is_invalid_token(status: &Status) -> bool {
    status.code() == Code::Unauthenticated || status.message().contains("invalid auth token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_asks_for_a_leader_and_carries_the_token() {
        let token = AsciiMetadataValue::from_static("abc.123");
        let request = Metadata { token: Some(token) }.request(());
        assert_eq!(
            request.metadata().get("hasleader").map(|v| v.to_str().ok()),
            Some(Some("true"))
        );
        assert_eq!(
            request.metadata().get("token").map(|v| v.to_str().ok()),
            Some(Some("abc.123"))
        );
        let anonymous = Metadata { token: None }.request(());
        assert!(anonymous.metadata().get("token").is_none());
    }

    #[test]
    fn a_forgotten_token_is_asked_for_again() {
        assert!(is_invalid_token(&Status::unauthenticated(
            "etcdserver: invalid auth token"
        )));
        assert!(!is_invalid_token(&Status::invalid_argument(
            "etcdserver: authentication failed, invalid user ID or password"
        )));
        assert!(!is_invalid_token(&Status::permission_denied(
            "etcdserver: permission denied"
        )));
    }

    #[tokio::test]
    async fn endpoints_get_a_scheme_and_bad_ones_are_refused() {
        let options = ConnectOptions::default();
        assert!(MemberClient::new("127.0.0.1:2379", &options).is_ok());
        assert!(MemberClient::new("http://127.0.0.1:2379", &options).is_ok());
        assert!(matches!(
            MemberClient::new("http://[::1", &options),
            Err(StoreError::InvalidArgument(_))
        ));
    }
}
