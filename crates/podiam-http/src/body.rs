//! Request bodies: a deadline for the whole body, and a budget of bytes buffered at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Why a request body was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Larger than the handler accepts.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The handler's limit.
        limit: usize,
    },
    /// The server is buffering as many body bytes as it allows; try again later.
    #[error("the server is busy reading other requests; try again")]
    Busy,
    /// The body did not arrive within the listener's body timeout.
    #[error("the request body did not arrive in time")]
    TimedOut,
    /// The client went away or sent a malformed body.
    #[error("the request body could not be read")]
    Incomplete,
}

/// Fails a body that is not complete by its deadline (set by the listener).
pub(crate) struct TimedBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
}

impl<B> TimedBody<B> {
    pub(crate) fn new(inner: B, timeout: std::time::Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

/// The error a [`TimedBody`] yields at its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub(crate) struct BodyTimedOut;

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Bytes of request bodies that may be buffered at once, across all requests of a process.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// Budget held by a buffered body; returned when dropped.
#[derive(Debug)]
pub struct BudgetPermit {
    _permits: Option<OwnedSemaphorePermit>,
}

impl BodyBudget {
    /// A budget of `total` bytes (at least 1 MiB, at most 4 GiB).
    pub fn new(total: usize) -> Self {
        let total = total.clamp(1 << 20, u32::MAX as usize);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// The budget's size.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes not held by any body now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Takes `n` more bytes into `held`, or fails at once when the budget is spent.
    fn take(&self, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> Result<(), BodyError> {
        if n == 0 {
            return Ok(());
        }
        let n = u32::try_from(n).map_err(|_| BodyError::Busy)?;
        let permit = Arc::clone(&self.bytes)
            .try_acquire_many_owned(n)
            .map_err(|_| BodyError::Busy)?;
        match held {
            Some(held) => held.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    }
}

impl Default for BodyBudget {
    /// 64 MiB.
    fn default() -> Self {
        Self::new(64 << 20)
    }
}

/// Reads a whole body of at most `limit` bytes within `budget`. A declared length over the
/// limit, or over what the budget has left, is refused before a byte is read.
pub async fn read_body(
    body: Body,
    limit: usize,
    budget: &BodyBudget,
) -> Result<(Bytes, BudgetPermit), BodyError> {
    let mut held = None;
    let hint = body.size_hint();
    if let Some(exact) = hint.exact() {
        let exact = usize::try_from(exact).unwrap_or(usize::MAX);
        if exact > limit {
            return Err(BodyError::TooLarge { limit });
        }
        budget.take(&mut held, exact)?;
    }
    let reserved = held.as_ref().map_or(0, |p| p.num_permits());
    // Memory follows what arrives, not what a client declares (a slow client may declare much
    // and send little); the budget already holds the declared length.
    let mut collected = BytesMut::new();
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| classify(&e))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if collected.len() + data.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        let beyond_reserved = (collected.len() + data.len()).saturating_sub(reserved);
        let already_beyond = collected.len().saturating_sub(reserved);
        budget.take(&mut held, beyond_reserved.saturating_sub(already_beyond))?;
        collected.extend_from_slice(&data);
    }
    Ok((collected.freeze(), BudgetPermit { _permits: held }))
}

fn classify(error: &axum::Error) -> BodyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<BodyTimedOut>() {
            return BodyError::TimedOut;
        }
        if e.is::<crate::admission::NoSlot>() {
            return BodyError::Busy;
        }
        source = e.source();
    }
    BodyError::Incomplete
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_declared_length_beyond_the_budget_is_refused_unread() {
        let budget = BodyBudget::new(1 << 20);
        let big = Body::from(vec![0u8; (1 << 20) + 1]);
        assert!(matches!(
            read_body(big, 2 << 20, &budget).await,
            Err(BodyError::Busy)
        ));
        let (bytes, permit) = read_body(Body::from(vec![1u8; 1000]), 2000, &budget)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(bytes.len(), 1000);
        assert_eq!(budget.available(), (1 << 20) - 1000);
        drop(permit);
        assert_eq!(budget.available(), 1 << 20);
    }

    #[tokio::test]
    async fn over_the_limit_is_too_large() {
        let budget = BodyBudget::default();
        assert!(matches!(
            read_body(Body::from(vec![0u8; 11]), 10, &budget).await,
            Err(BodyError::TooLarge { limit: 10 })
        ));
        assert_eq!(budget.available(), budget.total());
    }

    #[tokio::test]
    async fn streamed_bodies_are_counted_chunk_by_chunk() {
        let budget = BodyBudget::new(1 << 20);
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..4)
            .map(|_| Ok(Bytes::from(vec![7u8; 300 << 10])))
            .collect();
        let stream = Body::from_stream(futures_stream(chunks));
        // 1200 KiB streamed into a 1 MiB budget: refused once the budget is spent.
        assert!(matches!(
            read_body(stream, 4 << 20, &budget).await,
            Err(BodyError::Busy)
        ));
        assert_eq!(budget.available(), 1 << 20);
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..3)
            .map(|_| Ok(Bytes::from(vec![7u8; 300 << 10])))
            .collect();
        let (bytes, _permit) =
            read_body(Body::from_stream(futures_stream(chunks)), 4 << 20, &budget)
                .await
                .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(bytes.len(), 900 << 10);
        assert_eq!(budget.available(), (1 << 20) - (900 << 10));
    }

    fn futures_stream(
        items: Vec<Result<Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::iter(items)
    }
}
