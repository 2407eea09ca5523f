//! What every request handler shares: the token verifier, lazy gRPC channels to the
//! four backends (over TLS for `https://` endpoints), the rate limiter, the gateway's
//! own database (kept for its readiness check and for a table earlier versions
//! used), and the gateway settings.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::FromRef;
use haven_auth::TokenVerifier;
use haven_auth::keys::KeyMaterial;
use haven_config::{GatewaySettings, Settings};
use haven_storage::Database;
use http::HeaderValue;
use tonic::transport::Channel;

use crate::rate_limit::{LimitState, RateLimiter};

/// How long to wait for a TCP (and HTTP/2) connection to a backend.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One backend service behind the gateway.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    /// Short name used in logs and in the dependency status, e.g. `intake`.
    pub(crate) name: &'static str,
    /// Fully qualified gRPC service name checked by the health protocol.
    pub(crate) health_service: &'static str,
    /// Lazily connected channel; cheap to clone.
    pub(crate) channel: Channel,
}

impl Backend {
    fn connect_lazy(
        name: &'static str,
        health_service: &'static str,
        endpoint: &str,
        settings: &Settings,
        call_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let channel = haven_server::client_endpoint(endpoint, settings)
            .with_context(|| format!("{name}.endpoint `{endpoint}`"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(call_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            .connect_lazy();
        Ok(Self {
            name,
            health_service,
            channel,
        })
    }
}

/// The four services the gateway translates to.
#[derive(Debug, Clone)]
pub(crate) struct Backends {
    /// Screenings, consent, decisions.
    pub(crate) intake: Backend,
    /// Cases.
    pub(crate) case: Backend,
    /// Directory of organisations.
    pub(crate) referral: Backend,
    /// Statistics.
    pub(crate) reporting: Backend,
}

impl Backends {
    /// All four, for the dependency status (`/status`).
    pub(crate) fn all(&self) -> [&Backend; 4] {
        [&self.intake, &self.case, &self.referral, &self.reporting]
    }
}

#[derive(Debug)]
struct Shared {
    verifier: TokenVerifier,
    backends: Backends,
    rate_limiter: RateLimiter,
    database: Database,
    gateway: GatewaySettings,
    cors_allowed_origins: Vec<HeaderValue>,
}

/// State shared by every handler of one gateway. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

impl AppState {
    /// Loads (in development, generates) the token keys, builds lazy gRPC channels
    /// to the four services, and opens (and migrates) the gateway's own database:
    /// `gateway.db` under `data_dir`, or the `gateway` schema when `database.url` is
    /// set. The services are not connected until the first call, so the gateway
    /// starts even when a backend is down; its database must answer.
    ///
    /// Must be called inside a Tokio runtime (the channels spawn their workers).
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let keys = KeyMaterial::load_or_create(settings)
            .map_err(|error| anyhow::anyhow!("loading token keys: {error}"))?;
        let verifier = TokenVerifier::new(&settings.auth, &keys)
            .map_err(|error| anyhow::anyhow!("building the token verifier: {error}"))?;
        let gateway = settings.gateway.clone();
        anyhow::ensure!(
            gateway.body_limit_bytes > 0,
            "gateway.body_limit_bytes must be at least 1"
        );
        anyhow::ensure!(
            gateway.request_timeout_ms > 0,
            "gateway.request_timeout_ms must be at least 1"
        );
        let cors_allowed_origins = cors_origins(&gateway.cors_allowed_origins)?;
        let rate_limiter = RateLimiter::new(&gateway)?;
        let call_timeout = Duration::from_millis(gateway.request_timeout_ms);
        let backends = Backends {
            intake: Backend::connect_lazy(
                "intake",
                haven_proto::intake::v1::intake_service_server::SERVICE_NAME,
                &settings.intake.endpoint,
                settings,
                call_timeout,
            )?,
            case: Backend::connect_lazy(
                "case",
                haven_proto::case::v1::case_service_server::SERVICE_NAME,
                &settings.case.endpoint,
                settings,
                call_timeout,
            )?,
            referral: Backend::connect_lazy(
                "referral",
                haven_proto::referral::v1::referral_service_server::SERVICE_NAME,
                &settings.referral.endpoint,
                settings,
                call_timeout,
            )?,
            reporting: Backend::connect_lazy(
                "reporting",
                haven_proto::reporting::v1::reporting_service_server::SERVICE_NAME,
                &settings.reporting.endpoint,
                settings,
                call_timeout,
            )?,
        };
        let database = crate::connect(settings)
            .await
            .context("opening the gateway database")?;
        Ok(Self {
            shared: Arc::new(Shared {
                verifier,
                backends,
                rate_limiter,
                database,
                gateway,
                cors_allowed_origins,
            }),
        })
    }

    /// The backends.
    pub(crate) fn backends(&self) -> &Backends {
        &self.shared.backends
    }

    /// Verifies user tokens.
    pub(crate) fn verifier(&self) -> &TokenVerifier {
        &self.shared.verifier
    }

    /// The per-caller rate limiter of this gateway.
    pub(crate) fn rate_limiter(&self) -> &RateLimiter {
        &self.shared.rate_limiter
    }

    /// The gateway's own database.
    pub(crate) fn database(&self) -> &Database {
        &self.shared.database
    }

    /// The gateway settings.
    pub(crate) fn gateway(&self) -> &GatewaySettings {
        &self.shared.gateway
    }

    /// The time budget of one request, also the deadline of the gRPC calls it makes.
    pub(crate) fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.shared.gateway.request_timeout_ms)
    }

    /// Origins allowed by CORS, already parsed.
    pub(crate) fn cors_allowed_origins(&self) -> &[HeaderValue] {
        &self.shared.cors_allowed_origins
    }
}

impl FromRef<AppState> for TokenVerifier {
    fn from_ref(state: &AppState) -> Self {
        state.shared.verifier.clone()
    }
}

fn cors_origins(origins: &[String]) -> anyhow::Result<Vec<HeaderValue>> {
    origins
        .iter()
        .map(|origin| {
            let origin = origin.trim_end_matches('/');
            anyhow::ensure!(
                origin != "*",
                "gateway.cors_allowed_origins: list origins explicitly instead of `*`"
            );
            anyhow::ensure!(
                origin.starts_with("http://") || origin.starts_with("https://"),
                "gateway.cors_allowed_origins: `{origin}` must start with http:// or https://"
            );
            HeaderValue::from_str(origin).with_context(|| {
                format!("gateway.cors_allowed_origins: `{origin}` is not a valid origin")
            })
        })
        .collect()
}

impl LimitState for AppState {
    fn rate_limiter(&self) -> &RateLimiter {
        AppState::rate_limiter(self)
    }

    fn verifier(&self) -> &TokenVerifier {
        AppState::verifier(self)
    }
}
