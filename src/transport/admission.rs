//! Admission: the tower layer in front of every Ladder call (not health,
//! not reflection, which are never shed). A call is admitted while fewer
//! than `max_in_flight` calls are; beyond that it is shed at once with
//! RESOURCE_EXHAUSTED and a `RetryInfo`, rather than queued without bound.
//! While the server drains before stopping, new calls are refused with
//! UNAVAILABLE. An admitted call carries its [`Deadline`] (from its arrival)
//! in its extensions, and runs with its method's [`WireCheck`], which the
//! codec applies to the request's bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt};
use tokio::sync::{Semaphore, watch};
use tonic::Status;

use crate::transport::error::ApiError;
use crate::transport::limits::{Deadline, Limits};
use crate::transport::metrics::Metrics;
use crate::transport::wire::WireCheck;

/// Probes and discovery: answered whatever the load, and while draining.
fn never_shed(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

/// The in-flight slots and the draining switch of one server.
#[derive(Debug, Clone)]
pub struct Admission {
    limits: Arc<Limits>,
    /// Where shed calls are counted.
    metrics: Metrics,
    slots: Arc<Semaphore>,
    /// Calls admitted since the server started.
    admitted: Arc<AtomicU64>,
    draining: Arc<AtomicBool>,
    /// Turns true when calls still running after the grace period are cancelled.
    cancelled: watch::Sender<bool>,
}

impl Admission {
    pub fn new(limits: Arc<Limits>, metrics: Metrics) -> Self {
        Self {
            metrics,
            slots: Arc::new(Semaphore::new(limits.max_in_flight)),
            admitted: Arc::default(),
            limits,
            draining: Arc::default(),
            cancelled: watch::Sender::new(false),
        }
    }

    /// Whether no call is being worked on.
    pub fn idle(&self) -> bool {
        self.slots.available_permits() == self.limits.max_in_flight
    }

    /// How many calls were admitted since the server started.
    pub fn admitted(&self) -> u64 {
        self.admitted.load(Ordering::Relaxed)
    }

    /// Ends every call still running: each answers UNAVAILABLE, and
    /// dropping it rolls back its transaction and frees its connection.
    pub fn cancel_all(&self) {
        self.cancelled.send_replace(true);
    }

    /// Refuses new calls from now on (UNAVAILABLE, SHUTTING_DOWN).
    pub fn refuse_new_calls(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Refuses new calls from now on, then waits up to `grace` for the
    /// admitted ones to finish; false when some were still running.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.refuse_new_calls();
        let all = u32::try_from(self.limits.max_in_flight).unwrap_or(u32::MAX);
        tokio::time::timeout(grace, self.slots.acquire_many(all))
            .await
            .is_ok()
    }
}

impl<S> tower::Layer<S> for Admission {
    type Service = AdmissionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AdmissionService {
            inner,
            admission: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AdmissionService<S> {
    inner: S,
    admission: Admission,
}

impl<S, B, RB> tower::Service<http::Request<B>> for AdmissionService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call; the fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path();
        if never_shed(path) {
            return inner.call(request).boxed();
        }
        let refuse = |err: ApiError| {
            let status: Status = err.into();
            futures::future::ready(Ok(status.into_http())).boxed()
        };
        let admission = &self.admission;
        if admission.draining.load(Ordering::SeqCst) {
            return refuse(ApiError::ShuttingDown);
        }
        let Ok(slot) = Arc::clone(&admission.slots).try_acquire_owned() else {
            tracing::warn!(path, "call shed: every in-flight slot is taken");
            admission.metrics.record_shed();
            return refuse(ApiError::Overloaded {
                max_in_flight: admission.limits.max_in_flight,
            });
        };
        admission.admitted.fetch_add(1, Ordering::Relaxed);
        let check = WireCheck::for_path(path, Arc::clone(&admission.limits));
        let deadline = Deadline::of(
            request.headers(),
            Instant::now(),
            admission.limits.default_deadline,
        );
        request.extensions_mut().insert(deadline);
        let mut cancelled = admission.cancelled.subscribe();
        async move {
            let call = async {
                match check {
                    Some(check) => check.scope(inner.call(request)).await,
                    None => inner.call(request).await,
                }
            };
            let response = tokio::select! {
                response = call => response,
                _ = cancelled.wait_for(|cancelled| *cancelled) => {
                    let status: Status = ApiError::ShuttingDown.into();
                    Ok(status.into_http())
                }
            };
            drop(slot);
            response
        }
        .boxed()
    }
}
