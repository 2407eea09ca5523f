//! The Haven REST gateway.
//!
//! Translates the public REST API (`/v1`, JSON in snake_case, OpenAPI 3.1) into gRPC
//! calls to the intake, case, referral and reporting services. It authenticates
//! every `/v1` call (JWT bearer) and forwards the caller's token, the request id,
//! the W3C trace context and a deadline to the services, which validate the token
//! again and decide what the caller may do. Every error is an RFC 9457
//! `application/problem+json` body carrying the request id.
//!
//! - [`serve`] runs the gateway on a listener until a cancellation token fires,
//!   over HTTPS when `gateway.tls_cert_file`/`tls_key_file` are set, and the
//!   Prometheus `/metrics` page on a second listener (`gateway.metrics_listen`,
//!   loopback by default), never on the public API.
//! - [`app`] is the complete router, for in-process tests; [`metrics_app`] the
//!   metrics listener's.
//! - [`AppState`] holds the token verifier, lazy channels to the services and the
//!   gateway's own database.
//!
//! The gateway holds no domain state. `Idempotency-Key` is forwarded to the service
//! that owns the record, which keeps it in the record's own transaction. Its one
//! database (SQLite file `gateway.db` under the data directory, or the `gateway`
//! Postgres schema) only holds the `idempotency_records` table earlier versions
//! kept keys in, unused now and left for gateways of an earlier version during a
//! rolling upgrade.

mod dto;
mod error;
mod extract;
mod idempotency;
mod metrics;
mod middleware;
mod openapi;
pub mod policy;
mod rate_limit;
mod report_page;
mod routes;
mod state;
mod tls;

use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use haven_config::Settings;
use haven_storage::{Database, MigrationSet};
use http::{HeaderName, Method, StatusCode, header};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

pub use state::AppState;

/// Where the OpenAPI document is served.
const OPENAPI_PATH: &str = "/v1/openapi.json";
/// Where the interactive documentation is served (assets are bundled, no CDN).
const DOCS_PATH: &str = "/docs";
/// How long browsers may cache a CORS preflight answer.
const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// Name of the gateway's database: SQLite file `gateway.db`, Postgres schema `gateway`.
pub const SERVICE: &str = "gateway";

/// The gateway's own tables (`idempotency_records`, unused since keys moved to the
/// owning services).
pub const GATEWAY_MIGRATIONS: MigrationSet = MigrationSet {
    table: "_sqlx_migrations",
    sqlite: || sqlx::migrate!("migrations/sqlite"),
    postgres: || sqlx::migrate!("migrations/postgres"),
};

/// Opens (and migrates) the gateway's database.
pub async fn connect(settings: &Settings) -> anyhow::Result<Database> {
    Database::connect(settings, SERVICE, &[GATEWAY_MIGRATIONS]).await
}

/// Serves the gateway on `listener`, and its Prometheus metrics on
/// `metrics_listener`, until `shutdown` is cancelled, then stops accepting
/// connections, lets in-flight requests finish, and returns.
///
/// The caller binds the listeners (from `settings.gateway.listen` and
/// `settings.gateway.metrics_listen`, or port 0 in tests); the rest of `settings`
/// configures keys, limits, CORS, backends and, with `gateway.tls_cert_file` and
/// `gateway.tls_key_file`, HTTPS (HTTP/2 and HTTP/1.1 by ALPN) instead of plain
/// HTTP. The metrics listener always speaks plain HTTP.
pub async fn serve(
    listener: TcpListener,
    metrics_listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = AppState::connect(&settings).await?;
    let tls_acceptor = tls::acceptor(&settings.gateway)?;
    metrics::prometheus();
    let address = listener
        .local_addr()
        .context("reading the gateway listen address")?;
    let metrics_address = metrics_listener
        .local_addr()
        .context("reading the metrics listen address")?;
    tracing::info!(
        %address,
        %metrics_address,
        public_url = %settings.gateway.public_url,
        tls = tls_acceptor.is_some(),
        "REST gateway listening"
    );
    // A child token: the API stopping for any reason stops the metrics listener.
    let metrics_shutdown = shutdown.child_token();
    let metrics_served = tokio::spawn({
        let metrics_shutdown = metrics_shutdown.clone();
        async move {
            axum::serve(metrics_listener, metrics_app())
                .with_graceful_shutdown(metrics_shutdown.cancelled_owned())
                .await
        }
    });
    let database = state.database().clone();
    let service = app(state).into_make_service_with_connect_info::<rate_limit::ClientAddr>();
    let served = match tls_acceptor {
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .await
        }
        Some(acceptor) => {
            let listener = tls::TlsListener::new(listener, acceptor, shutdown.clone())
                .context("starting the TLS listener")?;
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .await
        }
    };
    database.close().await;
    metrics_shutdown.cancel();
    let metrics_served = metrics_served
        .await
        .context("the metrics listener panicked")?;
    served.context("serving the REST gateway")?;
    metrics_served.context("serving gateway metrics")?;
    tracing::info!(%address, "REST gateway stopped");
    Ok(())
}

/// The metrics listener: `GET /metrics` (Prometheus text); anything else is 404.
pub fn metrics_app() -> Router {
    Router::new()
        .route(metrics::METRICS_PATH, get(metrics::render))
        .fallback(|| async { StatusCode::NOT_FOUND })
}

/// The complete gateway: `/v1` routes, health, OpenAPI and docs, with
/// every layer (request ids, problem bodies, tracing, metrics, CORS, rate limit,
/// timeout, body limit, panic recovery).
pub fn app(state: AppState) -> Router {
    let (documented, openapi) = routes::documented().split_for_parts();
    let mut openapi = openapi::finish(openapi, &state.gateway().public_url);
    idempotency::document(&mut openapi);
    let router = documented
        .merge(SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, openapi))
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    with_layers(router, &state).with_state(state)
}

/// Wraps every route, and the fallbacks, in the gateway's layers.
///
/// `Router::layer` applies to each route, so every layer also sees the matched
/// route (for metrics). The last layer added runs first on a request.
fn with_layers(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let body_limit = state.gateway().body_limit_bytes;
    let mut router = router
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(CatchPanicLayer::custom(error::PanicToProblem))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            state.call_timeout(),
        ))
        // Inside CORS, so a 429 still carries CORS headers a browser can read;
        // inside request ids and problem bodies, so it names the request.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::limit::<AppState>,
        ));
    if let Some(cors) = cors_layer(state) {
        router = router.layer(cors);
    }
    router
        .layer(axum::middleware::from_fn(middleware::no_store_under_v1))
        // Before CORS, the rate limit (which verifies tokens) and every route.
        .layer(axum::middleware::from_fn(
            middleware::refuse_oversized_authorization,
        ))
        .layer(axum::middleware::from_fn(metrics::record_request))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &http::Request<_>| {
                haven_telemetry::http_request_span(request)
            }),
        )
        .layer(axum::middleware::from_fn(middleware::problem_details))
        .layer(PropagateRequestIdLayer::new(middleware::x_request_id()))
        .layer(SetRequestIdLayer::new(
            middleware::x_request_id(),
            middleware::MakeRequestUuid,
        ))
        .layer(axum::middleware::map_request(
            middleware::drop_insane_request_id,
        ))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
}

/// CORS for exactly the configured origins; `None` when none are configured, so
/// no CORS headers are ever sent.
fn cors_layer(state: &AppState) -> Option<CorsLayer> {
    let origins = state.cors_allowed_origins();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                HeaderName::from_static(idempotency::IDEMPOTENCY_KEY),
                middleware::x_request_id(),
            ])
            .expose_headers(
                [
                    header::ETAG,
                    header::LOCATION,
                    header::RETRY_AFTER,
                    HeaderName::from_static(idempotency::IDEMPOTENCY_REPLAYED),
                    middleware::x_request_id(),
                ]
                .into_iter()
                .chain(routes::reports::EXPORT_HEADERS.map(HeaderName::from_static))
                .collect::<Vec<_>>(),
            )
            .max_age(CORS_MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt as _;

    use super::*;

    async fn state() -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        let state = AppState::connect(&settings).await.unwrap();
        (dir, state)
    }

    async fn problem_of(response: axum::response::Response) -> serde_json::Value {
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            haven_error::PROBLEM_JSON
        );
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(problem["request_id"], request_id.as_str());
        problem
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_500_problem() {
        let (_dir, state) = state().await;
        let router = Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("handler bug");
                }
            }),
        );
        let router = with_layers(router, &state).with_state(state);
        let response = router
            .oneshot(http::Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let problem = problem_of(response).await;
        assert_eq!(problem["detail"], "internal error");
        assert!(!problem.to_string().contains("handler bug"));
    }

    #[tokio::test]
    async fn a_slow_handler_answers_a_504_problem() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        settings.gateway.request_timeout_ms = 50;
        let state = AppState::connect(&settings).await.unwrap();
        let router = Router::new().route(
            "/slow",
            get(|| async { tokio::time::sleep(Duration::from_secs(5)).await }),
        );
        let router = with_layers(router, &state).with_state(state);
        let response = router
            .oneshot(http::Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        let problem = problem_of(response).await;
        assert_eq!(
            problem["type"],
            "https://haven.dev/problems/deadline_exceeded"
        );
    }

    #[tokio::test]
    async fn invalid_settings_are_refused_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        settings.gateway.cors_allowed_origins = vec!["*".to_owned()];
        let error = AppState::connect(&settings).await.unwrap_err();
        assert!(
            error.to_string().contains("cors_allowed_origins"),
            "{error}"
        );

        settings.gateway.cors_allowed_origins = Vec::new();
        settings.case.endpoint = "not a url".to_owned();
        let error = AppState::connect(&settings).await.unwrap_err();
        assert!(error.to_string().contains("case.endpoint"), "{error}");
    }
}
