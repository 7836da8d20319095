//! Load shedding: a request is answered at once with the protocol's throttling error, which the
//! AWS SDKs back off on, when too many are in the handlers already or when it waited too long
//! before the server read it. There is no queue of our own: a request waits neither for a slot
//! nor in memory.
//!
//! The in-flight count alone does not see CPU overload: a handler that does its work without
//! awaiting (verifying a signature, sealing a session) runs within one poll, so however many
//! clients wait, only as many requests as there are worker threads are ever "in flight". They
//! wait instead in the kernel (the socket's buffer, epoll's ready list) and in the runtime's
//! queue. The listener stamps each request with that wait ([`QueueWait`], from the kernel's
//! receive time), and a request that waited longer than the queue-delay limit is answered with
//! the throttling error at once: that answer costs a fraction of a real one, so the backlog
//! drains, and the requests that are served are the ones that have not waited long (CoDel's
//! rule, per request).
//!
//! Health and metrics endpoints are always admitted: an overloaded server is alive, and its
//! metrics are how an operator sees the overload.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::Body as _;
use tokio::sync::Semaphore;

use crate::QueueWait;

/// Paths that are never shed.
const ALWAYS_ADMITTED: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// Builds the answer to a request that is shed, from its head (the body is never read).
pub type Shed = Arc<dyn Fn(&http::request::Parts) -> Response + Send + Sync>;

/// The in-flight limit of one listener. Cheap to clone; clones share the limit.
#[derive(Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    limit: usize,
    shed: Arc<AtomicU64>,
    /// The latest request's wait before it was read, in microseconds.
    latest_wait_us: Arc<AtomicU64>,
    max_delay: Option<Duration>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("limit", &self.limit)
            .field("in_flight", &self.in_flight())
            .field("shed", &self.shed_total())
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// At most `limit` requests (at least one) in the handlers at once.
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            shed: Arc::new(AtomicU64::new(0)),
            latest_wait_us: Arc::new(AtomicU64::new(0)),
            max_delay: None,
        }
    }

    /// Also sheds a request that waited more than `max_delay` before it was read (none:
    /// never).
    #[must_use]
    pub fn with_max_queue_delay(mut self, max_delay: Option<Duration>) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// How long the latest request waited before it was read.
    pub fn queue_delay(&self) -> Duration {
        Duration::from_micros(self.latest_wait_us.load(Ordering::Relaxed))
    }

    /// Whether `request` waited too long to be worth serving now.
    fn waited_too_long(&self, request: &Request) -> bool {
        let Some(QueueWait(waited)) = request.extensions().get::<QueueWait>().copied() else {
            return false;
        };
        self.latest_wait_us.store(
            u64::try_from(waited.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.max_delay.is_some_and(|max| waited > max)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Requests in the handlers now.
    pub fn in_flight(&self) -> usize {
        self.limit.saturating_sub(self.permits.available_permits())
    }

    /// Requests answered by `shed` so far.
    pub fn shed_total(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// `router` behind this limit; a request over it gets `shed`'s answer.
    pub fn wrap(&self, router: Router, shed: Shed) -> Router {
        let admission = self.clone();
        router.layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let admission = admission.clone();
                let shed = Arc::clone(&shed);
                async move {
                    if ALWAYS_ADMITTED.contains(&request.uri().path()) {
                        return next.run(request).await;
                    }
                    if admission.waited_too_long(&request) {
                        admission.shed.fetch_add(1, Ordering::Relaxed);
                        let (parts, _body) = request.into_parts();
                        return shed(&parts);
                    }
                    // A request counts once its body has arrived: a client that trickles a body
                    // in must not hold a slot (the body timeout and budget bound it instead).
                    let (parts, body) = request.into_parts();
                    let head = head_of(&parts);
                    let ticket = Arc::new(Ticket::default());
                    let body = if body.is_end_stream() {
                        if !ticket.admit(&admission.permits) {
                            admission.shed.fetch_add(1, Ordering::Relaxed);
                            return shed(&parts);
                        }
                        body
                    } else {
                        Body::new(AdmittedBody {
                            inner: body,
                            permits: Arc::clone(&admission.permits),
                            ticket: Arc::clone(&ticket),
                        })
                    };
                    let response = next.run(Request::from_parts(parts, body)).await;
                    if ticket.refused.load(Ordering::Relaxed) {
                        // The handler saw its body fail; the client gets the throttling answer.
                        admission.shed.fetch_add(1, Ordering::Relaxed);
                        return shed(&head);
                    }
                    drop(ticket);
                    response
                }
            },
        ))
    }
}

/// A copy of a request's method, URI and headers, for a shed answer made after the handler.
fn head_of(parts: &http::request::Parts) -> http::request::Parts {
    let mut head = http::Request::new(());
    *head.method_mut() = parts.method.clone();
    *head.uri_mut() = parts.uri.clone();
    *head.headers_mut() = parts.headers.clone();
    head.into_parts().0
}

/// A request's slot, taken when its body has arrived and given back when the answer is made.
#[derive(Default)]
struct Ticket {
    permit: std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    refused: std::sync::atomic::AtomicBool,
}

impl Ticket {
    /// Takes a slot; false when none is free.
    fn admit(&self, permits: &Arc<Semaphore>) -> bool {
        match Arc::clone(permits).try_acquire_owned() {
            Ok(permit) => {
                *self
                    .permit
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(permit);
                true
            }
            Err(_) => {
                self.refused.store(true, Ordering::Relaxed);
                false
            }
        }
    }
}

/// The error a body yields at its end when no slot was free (`read_body` reports it as
/// [`crate::BodyError::Busy`]).
#[derive(Debug, thiserror::Error)]
#[error("the server is at its in-flight limit")]
pub(crate) struct NoSlot;

/// A request body that takes the request's slot when its last byte has arrived.
struct AdmittedBody {
    inner: Body,
    permits: Arc<Semaphore>,
    ticket: Arc<Ticket>,
}

impl http_body::Body for AdmittedBody {
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            std::task::Poll::Ready(None) => {
                let admitted = this
                    .ticket
                    .permit
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .is_some();
                if admitted || this.ticket.admit(&this.permits) {
                    std::task::Poll::Ready(None)
                } else {
                    std::task::Poll::Ready(Some(Err(Box::new(NoSlot))))
                }
            }
            std::task::Poll::Ready(Some(frame)) => {
                std::task::Poll::Ready(Some(frame.map_err(Into::into)))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use http::StatusCode;
    use tower::ServiceExt as _;

    use super::*;

    fn slow_router(release: Arc<tokio::sync::Notify>) -> Router {
        Router::new()
            .route(
                "/work",
                get(move || {
                    let release = Arc::clone(&release);
                    async move {
                        release.notified().await;
                        "done"
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok" }))
    }

    fn shed() -> Shed {
        Arc::new(|parts: &http::request::Parts| {
            (StatusCode::TOO_MANY_REQUESTS, parts.uri.path().to_owned()).into_response()
        })
    }

    fn get_request(path: &str) -> Request {
        http::Request::get(path)
            .body(Body::empty())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn requests_over_the_limit_are_shed_at_once_and_health_is_not() {
        let release = Arc::new(tokio::sync::Notify::new());
        let admission = Admission::new(2);
        let router = admission.wrap(slow_router(Arc::clone(&release)), shed());
        let first = tokio::spawn(router.clone().oneshot(get_request("/work")));
        let second = tokio::spawn(router.clone().oneshot(get_request("/work")));
        while admission.in_flight() < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let third = tokio::time::timeout(
            Duration::from_secs(1),
            router.clone().oneshot(get_request("/work")),
        )
        .await
        .ok()
        .and_then(Result::ok);
        assert_eq!(
            third.map(|r| r.status()),
            Some(StatusCode::TOO_MANY_REQUESTS)
        );
        assert_eq!(admission.shed_total(), 1);
        let health = router.clone().oneshot(get_request("/healthz")).await.ok();
        assert_eq!(health.map(|r| r.status()), Some(StatusCode::OK));
        release.notify_waiters();
        for handle in [first, second] {
            let status = handle.await.ok().and_then(Result::ok).map(|r| r.status());
            assert_eq!(status, Some(StatusCode::OK));
        }
        assert_eq!(admission.in_flight(), 0);
        let again = router.oneshot(get_request("/work"));
        let waiter = tokio::spawn(again);
        while admission.in_flight() < 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        release.notify_waiters();
        assert!(waiter.await.is_ok(), "a slot is free again");
    }

    fn post_router() -> Router {
        Router::new().route(
            "/work",
            axum::routing::post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
    }

    type Frames = Result<http_body::Frame<bytes::Bytes>, std::io::Error>;

    /// A request whose body is still arriving holds no slot; it takes one when its body is
    /// complete.
    #[tokio::test]
    async fn a_slow_body_holds_no_slot_until_it_has_arrived() {
        let admission = Admission::new(1);
        let router = admission.wrap(post_router(), shed());
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Frames>(1);
        let frames = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
        let slow = http::Request::post("/work")
            .body(Body::new(http_body_util::StreamBody::new(frames)))
            .unwrap_or_default();
        let trickling = tokio::spawn(router.clone().oneshot(slow));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(admission.in_flight(), 0, "a trickling body holds no slot");
        // Another request is served meanwhile.
        let quick = http::Request::post("/work")
            .body(Body::from("abc"))
            .unwrap_or_default();
        let status = router.clone().oneshot(quick).await.ok().map(|r| r.status());
        assert_eq!(status, Some(StatusCode::OK));
        // The slow body completes: it takes the free slot and is served.
        let _ = sender
            .send(Ok(http_body::Frame::data(bytes::Bytes::from_static(
                b"xyz",
            ))))
            .await;
        drop(sender);
        let status = trickling
            .await
            .ok()
            .and_then(Result::ok)
            .map(|r| r.status());
        assert_eq!(status, Some(StatusCode::OK));
        assert_eq!(admission.in_flight(), 0);
        assert_eq!(admission.shed_total(), 0);
    }

    /// A request whose body has arrived while every slot is taken gets the shed answer, even
    /// though its handler already ran with a failed body.
    #[tokio::test]
    async fn a_complete_body_without_a_slot_is_shed() {
        let release = Arc::new(tokio::sync::Notify::new());
        let admission = Admission::new(1);
        let router =
            admission.wrap(
                slow_router(Arc::clone(&release)).route(
                    "/post",
                    axum::routing::post(
                        |body: Result<
                            axum::body::Bytes,
                            axum::extract::rejection::BytesRejection,
                        >| async move {
                            match body {
                                Ok(_) => StatusCode::OK,
                                Err(_) => StatusCode::BAD_REQUEST,
                            }
                        },
                    ),
                ),
                shed(),
            );
        let holder = tokio::spawn(router.clone().oneshot(get_request("/work")));
        while admission.in_flight() < 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let post = http::Request::post("/post")
            .body(Body::new(http_body_util::StreamBody::new(
                futures_util::stream::iter([Ok::<_, std::io::Error>(http_body::Frame::data(
                    bytes::Bytes::from_static(b"abc"),
                ))]),
            )))
            .unwrap_or_default();
        let status = router.clone().oneshot(post).await.ok().map(|r| r.status());
        assert_eq!(status, Some(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(admission.shed_total(), 1);
        release.notify_waiters();
        let _ = holder.await;
    }

    /// A request that waited longer than the queue-delay limit before it was read is shed,
    /// even with free slots; one that did not is served; an unstamped one is served.
    #[tokio::test]
    async fn a_request_that_waited_too_long_is_shed() {
        let admission = Admission::new(1_000).with_max_queue_delay(Some(Duration::from_millis(20)));
        let router = admission.wrap(post_router(), shed());
        let stamped = |waited_ms: u64| {
            let mut request = http::Request::post("/work")
                .body(Body::from("abc"))
                .unwrap_or_default();
            request
                .extensions_mut()
                .insert(QueueWait(Duration::from_millis(waited_ms)));
            request
        };
        let status = |request: Request| {
            let router = router.clone();
            async move { router.oneshot(request).await.ok().map(|r| r.status()) }
        };
        assert_eq!(
            status(stamped(50)).await,
            Some(StatusCode::TOO_MANY_REQUESTS)
        );
        assert_eq!(admission.queue_delay(), Duration::from_millis(50));
        assert_eq!(status(stamped(5)).await, Some(StatusCode::OK));
        let unstamped = http::Request::post("/work")
            .body(Body::from("abc"))
            .unwrap_or_default();
        assert_eq!(status(unstamped).await, Some(StatusCode::OK));
        assert_eq!(admission.shed_total(), 1);
        // Without a limit nothing is shed for waiting.
        let unlimited = Admission::new(1_000);
        let router = unlimited.wrap(post_router(), shed());
        let answer = router.oneshot(stamped(500)).await.ok().map(|r| r.status());
        assert_eq!(answer, Some(StatusCode::OK));
    }
}
