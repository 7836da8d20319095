//! A stand-in for the Kubernetes API server's ServiceAccount endpoints, on loopback over plain
//! HTTP: the metadata-only LIST, WATCH (a long-lived stream of JSON lines) and GET that `kube`
//! sends, in the API server's wire format. No kube-apiserver binary can be installed here (no
//! Debian or PyPI package ships one), so the webhook's watch cache is tested against this.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// A running fake API server.
#[derive(Debug)]
pub struct FakeApiServer {
    url: String,
    state: Arc<ApiState>,
    stop: Option<oneshot::Sender<()>>,
}

#[derive(Debug, Default)]
struct ApiState {
    inner: Mutex<Inner>,
    gets: AtomicUsize,
    lists: AtomicUsize,
}

#[derive(Debug, Default)]
struct Inner {
    resource_version: u64,
    /// Listed and watched accounts, by (namespace, name).
    accounts: BTreeMap<(String, String), Value>,
    /// Accounts only a GET finds (as if the watch lagged).
    hidden: BTreeMap<(String, String), Value>,
    /// Every watch event so far: (resourceVersion, JSON line).
    events: Vec<(u64, String)>,
    watchers: Vec<mpsc::UnboundedSender<String>>,
    get_delay: Duration,
    /// An outage: every request is answered 500, and open watches end.
    down: bool,
}

impl Inner {
    fn object(&mut self, namespace: &str, name: &str, annotations: &[(&str, &str)]) -> Value {
        self.resource_version += 1;
        let annotations: serde_json::Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": format!("uid-{namespace}-{name}"),
                "resourceVersion": self.resource_version.to_string(),
                "labels": {"app": name},
                "annotations": annotations,
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            }
        })
    }

    fn publish(&mut self, kind: &str, object: &Value) {
        let line = format!("{}\n", json!({"type": kind, "object": object}));
        self.events.push((self.resource_version, line.clone()));
        self.watchers.retain(|w| w.send(line.clone()).is_ok());
    }
}

impl FakeApiServer {
    /// Serves on `127.0.0.1:<free port>` from a thread of its own.
    pub fn start() -> Self {
        let state = Arc::new(ApiState::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, address) = std::sync::mpsc::channel::<SocketAddr>();
        let served = Arc::clone(&state);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the fake API server");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind the fake API server");
                ready
                    .send(listener.local_addr().expect("its address"))
                    .expect("the test waits for the address");
                let app = Router::new()
                    .route("/api/v1/serviceaccounts", get(list_or_watch))
                    .route(
                        "/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
                        get(get_one),
                    )
                    .with_state(served);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        let address = address.recv().expect("the fake API server starts");
        Self {
            url: format!("http://{address}"),
            state,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Writes a kubeconfig for this server into `dir` and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: webhook\n  user:\n    token: fake-token\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: webhook\ncurrent-context: fake\n",
            self.url
        );
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates or updates a ServiceAccount (announced to watches).
    pub fn apply(&self, namespace: &str, name: &str, annotations: &[(&str, &str)]) {
        let mut inner = self.inner();
        let key = (namespace.to_owned(), name.to_owned());
        let kind = if inner.accounts.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let object = inner.object(namespace, name, annotations);
        inner.accounts.insert(key, object.clone());
        inner.publish(kind, &object);
    }

    /// Deletes a ServiceAccount (announced to watches).
    pub fn delete(&self, namespace: &str, name: &str) {
        let mut inner = self.inner();
        if let Some(mut object) = inner
            .accounts
            .remove(&(namespace.to_owned(), name.to_owned()))
        {
            inner.resource_version += 1;
            if let Some(version) = object.pointer_mut("/metadata/resourceVersion") {
                *version = json!(inner.resource_version.to_string());
            }
            inner.publish("DELETED", &object);
        }
    }

    /// A ServiceAccount that a GET finds but the LIST and WATCH do not show.
    pub fn hide(&self, namespace: &str, name: &str, annotations: &[(&str, &str)]) {
        let mut inner = self.inner();
        let object = inner.object(namespace, name, annotations);
        inner
            .hidden
            .insert((namespace.to_owned(), name.to_owned()), object);
    }

    /// Makes every GET wait this long before answering.
    pub fn set_get_delay(&self, delay: Duration) {
        self.inner().get_delay = delay;
    }

    /// Starts or ends an outage: while down, every request gets 500 and open watches end.
    pub fn set_down(&self, down: bool) {
        let mut inner = self.inner();
        inner.down = down;
        if down {
            inner.watchers.clear();
        }
    }

    /// The GETs of single accounts served so far.
    pub fn gets(&self) -> usize {
        self.state.gets.load(Ordering::SeqCst)
    }

    /// The LISTs served so far.
    pub fn lists(&self) -> usize {
        self.state.lists.load(Ordering::SeqCst)
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Open watches end when their senders go.
        self.inner().watchers.clear();
    }
}

fn unavailable() -> Response {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500}),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn list_or_watch(
    State(state): State<Arc<ApiState>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut inner = state
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if inner.down {
        return unavailable();
    }
    if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let since: u64 = query
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (sender, receiver) = mpsc::unbounded_channel();
        for (version, line) in &inner.events {
            if *version > since {
                let _ = sender.send(line.clone());
            }
        }
        inner.watchers.push(sender);
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver
                .recv()
                .await
                .map(|line| (Ok::<_, std::io::Error>(line), receiver))
        });
        return (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(stream),
        )
            .into_response();
    }
    state.lists.fetch_add(1, Ordering::SeqCst);
    let items: Vec<Value> = inner.accounts.values().cloned().collect();
    json_response(
        StatusCode::OK,
        &json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadataList",
            "metadata": {"resourceVersion": inner.resource_version.to_string()},
            "items": items,
        }),
    )
}

async fn get_one(
    State(state): State<Arc<ApiState>>,
    UrlPath((namespace, name)): UrlPath<(String, String)>,
) -> Response {
    state.gets.fetch_add(1, Ordering::SeqCst);
    let (delay, found) = {
        let inner = state
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.down {
            return unavailable();
        }
        let key = (namespace.clone(), name.clone());
        (
            inner.get_delay,
            inner
                .accounts
                .get(&key)
                .or_else(|| inner.hidden.get(&key))
                .cloned(),
        )
    };
    tokio::time::sleep(delay).await;
    match found {
        Some(object) => json_response(StatusCode::OK, &object),
        None => json_response(
            StatusCode::NOT_FOUND,
            &json!({
                "apiVersion": "v1",
                "kind": "Status",
                "metadata": {},
                "status": "Failure",
                "message": format!("serviceaccounts \"{name}\" not found"),
                "reason": "NotFound",
                "details": {"name": name, "kind": "serviceaccounts"},
                "code": 404,
            }),
        ),
    }
}
