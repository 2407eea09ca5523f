//! The gRPC services one port serves, with their names, so health and reflection
//! describe exactly what the port answers.

use std::convert::Infallible;

use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;

/// The services of one gRPC port. Every service is added through [`GrpcRoutes::add_service`],
/// which records its fully qualified name; reflection then lists exactly these
/// (plus health and reflection itself), never a hand-kept list that could drift.
#[derive(Debug, Clone, Default)]
pub struct GrpcRoutes {
    routes: Routes,
    names: Vec<&'static str>,
}

impl GrpcRoutes {
    /// No services yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service (typically wrapped in the service's auth interceptor) and
    /// records its name.
    #[must_use]
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes = self.routes.add_service(service);
        self
    }

    /// Fully qualified names of the services added, in order.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// The routes and the names, for the server builder.
    pub(crate) fn into_parts(self) -> (Routes, Vec<&'static str>) {
        (self.routes, self.names)
    }
}
