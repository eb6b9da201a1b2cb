//! The tower [`Layer`] and [`Service`] that give every request a lazy [`Session`] and, once the
//! handler has answered, save it and put the id into the response.
//!
//! The service reads the raw id from the request (never touching the store), puts a
//! [`Session`] into the request extensions, awaits the inner service, then finishes the
//! session. If saving failed, the handler's response is replaced by a bare 409 (conflict),
//! 503 (contention) or 500 (store error), because answering success for a write that did not
//! happen would be silent loss. The layer has no opinion on routing, bodies or errors of the
//! inner service.

#![deny(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{ConfigError, SessionConfig};
use crate::cookie::{IdAction, read_id, write_id};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::session::{Session, Shared};
use crate::store::SessionStore;

/// Adds sessions to a tower service. Cheap to clone.
#[derive(Clone)]
pub struct SessionLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl SessionLayer {
    /// A layer over `store`, refusing an invalid configuration.
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Result<Self, ConfigError> {
        Self::from_arc(Arc::new(store), config)
    }

    /// As [`SessionLayer::new`], for a store that is already shared.
    pub fn from_arc(
        store: Arc<dyn SessionStore>,
        config: SessionConfig,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            shared: Arc::new(Shared {
                store,
                config,
                metrics: Metrics::default(),
                write_locks: Default::default(),
            }),
        })
    }

    /// The counters since this layer was built.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// The store, e.g. to delete other sessions of a user ("log out everywhere").
    pub fn store(&self) -> Arc<dyn SessionStore> {
        self.shared.store.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.shared.config
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`SessionLayer`].
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionService")
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let shared = self.shared.clone();
        let raw = read_id(req.headers(), &shared.config);
        let session = Session::new(shared.clone(), raw);
        req.extensions_mut().insert(session.clone());
        // The clone that was driven to readiness is the one that must be called; leave a fresh
        // clone in its place for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut res = inner.call(req).await?;
            let finish = session.finish().await;
            if let Some(err) = finish.error {
                let mut failed = Response::new(ResBody::default());
                *failed.status_mut() = err.status();
                tracing::warn!(error = %err, status = %err.status(), "session not saved; response replaced");
                return Ok(failed);
            }
            if finish.action != IdAction::None {
                write_id(res.headers_mut(), &shared.config, &finish.action);
            }
            Ok(res)
        })
    }
}
