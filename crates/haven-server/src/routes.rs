//! The gRPC services one port serves, with their names, so health and reflection
//! describe exactly what the port answers.

use std::convert::Infallible;
use std::sync::Arc;

use haven_auth::grpc::RefusalSink;

use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::readiness::Readiness;

/// A gRPC service one port can serve: a tower service of HTTP requests that answers
/// every request (errors are gRPC statuses), under its fully qualified name.
pub trait RoutedService:
    tower::Service<
        http::Request<Body>,
        Error = Infallible,
        Response: axum::response::IntoResponse,
        Future: Send + 'static,
    > + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> RoutedService for S where
    S: tower::Service<
            http::Request<Body>,
            Error = Infallible,
            Response: axum::response::IntoResponse,
            Future: Send + 'static,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The services of one gRPC port. Every service is added through [`GrpcRoutes::add_service`],
/// which records its fully qualified name; reflection then lists exactly these
/// (plus health and reflection itself), never a hand-kept list that could drift.
#[derive(Debug, Clone, Default)]
pub struct GrpcRoutes {
    routes: Routes,
    names: Vec<&'static str>,
    readiness: Option<Readiness>,
    refusals: Option<Arc<dyn RefusalSink>>,
}

impl GrpcRoutes {
    /// No services yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service (typically wrapped in the service's auth interceptor) and
    /// records its name.
    #[must_use]
    pub fn add_service<S: RoutedService>(mut self, service: S) -> Self {
        self.names.push(S::NAME);
        self.routes = self.routes.add_service(service);
        self
    }

    /// Health follows `readiness` (e.g. a ping of the service's own database):
    /// NOT_SERVING while it fails. Without it, health is SERVING until shutdown.
    #[must_use]
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = Some(readiness);
        self
    }

    /// Calls refused to an authenticated caller (denied, or not found) are reported
    /// to `sink` (the service's aggregating audit recorder).
    #[must_use]
    pub fn refusals(mut self, sink: Arc<dyn RefusalSink>) -> Self {
        self.refusals = Some(sink);
        self
    }

    /// Fully qualified names of the services added, in order.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// The routes, the names, the readiness probe and the refusal sink, for the
    /// server builder.
    pub(crate) fn into_parts(self) -> RoutesParts {
        RoutesParts {
            routes: self.routes,
            names: self.names,
            readiness: self.readiness,
            refusals: self.refusals,
        }
    }
}

/// What [`GrpcRoutes`] hands the server builder.
pub(crate) struct RoutesParts {
    pub(crate) routes: Routes,
    pub(crate) names: Vec<&'static str>,
    pub(crate) readiness: Option<Readiness>,
    pub(crate) refusals: Option<Arc<dyn RefusalSink>>,
}
