//! What every Haven gRPC service needs around its own handlers: keys and token
//! verification, health and reflection (both unauthenticated), request spans that
//! continue the caller's trace, limits, TLS (mutual TLS when configured), and
//! graceful shutdown; for gRPC clients, endpoints with TLS applied
//! ([`client_endpoint`]) and one way to retry what failed transiently ([`retry`],
//! from `haven-error` so that the event followers share it); and for what services
//! hand out as CSV, files that are safe to open in a spreadsheet ([`csv_file`]).
//!
//! [`Service`] assembles a domain service from these: its database and migrations,
//! the feeds it follows, its event feed, its audit trail and its APIs.

mod credentials;
pub mod csv_file;
pub mod field_classes;
mod message_limits;
mod readiness;
pub mod redaction;
mod reflection;
mod routes;
pub use haven_error::retry;
mod service;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::InterceptorLayer;
use tonic::transport::Server;

use haven_auth::TokenVerifier;
use haven_auth::grpc::AuthInterceptor;
use haven_auth::keys::{KeyMaterial, ServiceTokens};
use haven_config::{GrpcTlsSettings, Settings};

pub use credentials::{
    MAX_AUTHORIZATION_BYTES, MAX_HEADER_LIST_BYTES, authorization_too_large,
    oversized_authorization_message,
};
pub use message_limits::MessageLimits;
pub use readiness::Readiness;
pub use routes::{GrpcRoutes, RoutedService};
pub use service::Service;
pub use tls::{
    TLS_HANDSHAKE_TIMEOUT, client_endpoint, client_endpoint_with, client_tls_config,
    server_tls_config,
};

/// Name checked by liveness probes on the gRPC health protocol: SERVING as long as
/// the process answers, whatever its database does. The overall status (`""`) and
/// the service names are readiness: NOT_SERVING while the database is unreachable.
/// A liveness probe on readiness would restart every pod during a database outage.
pub const LIVENESS_SERVICE: &str = "liveness";

/// Largest gRPC message a service accepts or sends.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Upper bound for one unary call when the caller sets no deadline.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Keys and identities a service loads once at start-up.
#[derive(Debug, Clone)]
pub struct Security {
    /// Verifies incoming user and service tokens.
    pub verifier: TokenVerifier,
    /// This service's own identity for calls to other services.
    pub service_tokens: Arc<ServiceTokens>,
}

impl Security {
    /// Loads (or, in development, generates) keys for the service called `name`.
    pub fn load(settings: &Settings, name: &str) -> anyhow::Result<Self> {
        let keys =
            KeyMaterial::load_or_create(settings).map_err(|error| anyhow::anyhow!("{error}"))?;
        let verifier = TokenVerifier::new(&settings.auth, &keys)
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        let service_tokens = Arc::new(ServiceTokens::new(&settings.auth, &keys, name));
        Ok(Self {
            verifier,
            service_tokens,
        })
    }

    /// The interceptor that authenticates every call of a domain service.
    pub fn interceptor(&self) -> AuthInterceptor {
        AuthInterceptor::new(self.verifier.clone())
    }
}

/// Serves `routes` (the service's own, already wrapped in [`Security::interceptor`])
/// plus gRPC health and reflection on `listener` until `shutdown` is cancelled; then
/// stops accepting, lets in-flight calls finish, and returns.
///
/// `health_name` is the fully qualified service name reported as SERVING, e.g.
/// `haven.case.v1.CaseService`; every service in `routes` is reported too, and
/// follows the routes' [`Readiness`] probe when one is set (readiness), as does the
/// overall status `""`. [`LIVENESS_SERVICE`] stays SERVING (liveness).
/// Reflection (both `grpc.reflection.v1` and `grpc.reflection.v1alpha`) lists
/// exactly the services in `routes`, health and reflection. `tls` is
/// `settings.grpc_tls`: with a certificate the listener speaks only TLS, and with
/// `client_ca_file` also requires a client certificate issued by that CA; without
/// one it is plaintext (development).
///
/// A call whose `authorization` metadata is longer than [`MAX_AUTHORIZATION_BYTES`]
/// is refused with UNAUTHENTICATED before any service sees it.
pub async fn serve_grpc_with(
    listener: TcpListener,
    routes: GrpcRoutes,
    health_name: &'static str,
    shutdown: CancellationToken,
    tls: &GrpcTlsSettings,
) -> anyhow::Result<()> {
    let tls_config = server_tls_config(tls)?;
    let tls_mode = match (&tls_config, &tls.client_ca_file) {
        (None, _) => "off",
        (Some(_), None) => "tls",
        (Some(_), Some(_)) => "mutual",
    };
    let mut builder = Server::builder();
    if let Some(tls_config) = tls_config {
        builder = builder
            .tls_config(tls_config)
            .context("grpc_tls: certificate, key or client CA cannot be used")?;
    }
    let routes::RoutesParts {
        routes,
        names: service_names,
        readiness,
        refusals,
    } = routes.into_parts();
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let mut health_names = vec![health_name];
    health_names.extend(service_names.iter().copied());
    health_names.dedup();
    for name in health_names.iter().copied().chain([""]) {
        health_reporter
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
    health_reporter
        .set_service_status(LIVENESS_SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    let (reflection_v1, reflection_v1alpha) = reflection::services(&service_names)?;
    let follower = readiness.map(|readiness| {
        tokio::spawn(readiness::follow(
            readiness,
            health_reporter.clone(),
            health_names.clone(),
            shutdown.clone(),
        ))
    });

    let address = listener.local_addr()?;
    tracing::info!(service = health_name, %address, tls = tls_mode, "gRPC service listening");
    // Accepted sockets do not inherit TCP_NODELAY: without it small gRPC frames wait
    // for delayed ACKs (tens of milliseconds per call).
    let incoming = TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        })
    });
    let routes = routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .prepare();
    let signal = {
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            for name in health_names {
                health_reporter
                    .set_service_status(name, tonic_health::ServingStatus::NotServing)
                    .await;
            }
            tracing::info!(
                service = health_name,
                "shutting down: draining in-flight calls"
            );
        }
    };
    // Outermost, so that every response of every service passes the field filter.
    let served = builder
        .layer(redaction::RedactionLayer::new(refusals))
        .trace_fn(haven_telemetry::grpc_request_span)
        .timeout(DEFAULT_CALL_TIMEOUT)
        .concurrency_limit_per_connection(256)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // Room above the credential limit, so an oversized token gets a gRPC status
        // from the layer below instead of a bare HTTP 431 from HTTP/2.
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .layer(InterceptorLayer::new(credentials::refuse_oversized))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, signal)
        .await;
    if let Some(follower) = follower {
        follower.abort();
    }
    served?;
    tracing::info!(service = health_name, "stopped");
    Ok(())
}

/// A cancellation token cancelled on SIGTERM or Ctrl-C.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut terminate =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(signal) => signal,
                    Err(error) => {
                        tracing::error!(%error, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        trigger.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        trigger.cancel();
    });
    token
}
