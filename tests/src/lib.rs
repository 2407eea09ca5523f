//! Test harness: starts all five services in-process on `127.0.0.1:0`, talking real
//! gRPC and HTTP, on SQLite or on a throwaway Postgres, and gives tests a REST client,
//! gRPC channels and development tokens.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    missing_debug_implementations
)]

pub mod child;
pub mod postgres_process;
pub mod processes;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tonic::transport::Channel;
use uuid::Uuid;

use haven_auth::keys::{DevTokenRequest, KeyMaterial};
use haven_cli::{ServiceName, Stack};
use haven_config::Settings;

/// Every log line the services in this test process wrote.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs JSON logging (with trace ids) into a buffer, once per process.
pub fn logs() -> CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        haven_telemetry::install_propagator();
        let mut telemetry = Settings::default().telemetry;
        telemetry.log_filter = "info,tower_http=debug".into();
        let provider = haven_telemetry::tracer_provider(&telemetry, "haven-test").unwrap();
        opentelemetry_provider(provider.clone());
        let writer = logs.clone();
        let subscriber =
            haven_telemetry::build_subscriber(&telemetry, &provider, move || writer.clone())
                .unwrap();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
    .clone()
}

fn opentelemetry_provider(provider: impl Send + Sync + 'static) {
    // Keep the provider alive for the whole process.
    static PROVIDER: OnceLock<Box<dyn std::any::Any + Send + Sync>> = OnceLock::new();
    let _ = PROVIDER.set(Box::new(provider));
}

/// Which database backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Settings with every listener on port 0 and a fresh data directory.
pub async fn settings(backend: Backend) -> Option<(tempfile::TempDir, Settings)> {
    let (dir, mut settings) = match backend {
        Backend::Sqlite => haven_storage::testing::sqlite_settings(),
        Backend::Postgres => haven_storage::testing::postgres_settings().await?,
    };
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.gateway.listen = any_port;
    settings.gateway.metrics_listen = any_port;
    settings.intake.listen = any_port;
    settings.case.listen = any_port;
    settings.referral.listen = any_port;
    settings.reporting.listen = any_port;
    // The matrix and the benchmark send hundreds of requests as one user; the limiter
    // has tests of its own.
    settings.gateway.rate_limit_burst = 100_000;
    settings.gateway.rate_limit_per_minute = 1_000_000;
    Some((dir, settings))
}

/// A running stack and what tests need to talk to it.
pub struct TestStack {
    pub stack: Stack,
    pub http: reqwest::Client,
    pub keys: KeyMaterial,
    pub settings: Settings,
    pub backend: Backend,
    _dir: tempfile::TempDir,
}

impl TestStack {
    /// Starts the stack on `backend`; `None` when Postgres is unavailable outside CI.
    pub async fn start(backend: Backend) -> Option<Self> {
        let (dir, settings) = settings(backend).await?;
        Some(Self::start_with(dir, settings).await)
    }

    /// Starts the stack with explicit settings.
    pub async fn start_with(dir: tempfile::TempDir, settings: Settings) -> Self {
        logs();
        let stack = haven_cli::start(settings).await.unwrap();
        let settings = stack.settings.clone();
        let keys = KeyMaterial::load_or_create(&settings).unwrap();
        let test = Self {
            stack,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            keys,
            settings,
            backend: Backend::Sqlite,
            _dir: dir,
        };
        test.wait_ready().await;
        test
    }

    /// Waits until the gateway is ready and reports every backend serving.
    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if self.everything_serves().await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "stack not ready within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the gateway is ready and `/status` reports its database and every
    /// backend serving.
    pub async fn everything_serves(&self) -> bool {
        let ready = self.http.get(self.url("/readyz")).send().await;
        if !ready.is_ok_and(|response| response.status() == 200) {
            return false;
        }
        let Ok(response) = self.http.get(self.url("/status")).send().await else {
            return false;
        };
        let status: serde_json::Value = response.json().await.unwrap_or_default();
        status["status"] == "ok"
    }

    /// URL of a gateway path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.gateway_url)
    }

    /// A development token for `roles` in `organization`.
    pub fn token(&self, roles: &[&str], organization: Uuid) -> String {
        self.token_for(&self.settings.auth, roles, organization)
    }

    /// A development token for a named user (`subject`), e.g. two caseworkers of one
    /// organisation, or a supervisor approving what someone else submitted.
    pub fn token_as(&self, subject: &str, roles: &[&str], organization: Uuid) -> String {
        let request = DevTokenRequest {
            subject: subject.to_owned(),
            organization_id: organization,
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            ttl_seconds: 600,
        };
        self.keys
            .mint_dev_token(&self.settings.auth, &request)
            .unwrap()
    }

    /// A token minted with other auth settings (e.g. the wrong audience).
    pub fn token_for(
        &self,
        auth: &haven_config::AuthSettings,
        roles: &[&str],
        organization: Uuid,
    ) -> String {
        let request = DevTokenRequest {
            subject: format!("user-{}", &organization.simple().to_string()[..8]),
            organization_id: organization,
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            ttl_seconds: 600,
        };
        self.keys.mint_dev_token(auth, &request).unwrap()
    }

    /// A gRPC channel to a service.
    pub async fn channel(&self, service: ServiceName) -> Channel {
        tonic::transport::Endpoint::from_shared(self.stack.endpoint(service))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// POSTs JSON with a token.
    pub async fn post(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// GETs with a token.
    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// A screening identified with consent to assistance, and the case intake opened
    /// for it: `(screening id, case id)`.
    pub async fn identified_case(&self, token: &str) -> (String, String) {
        let screening: serde_json::Value = self
            .post(
                token,
                "/v1/screenings",
                serde_json::json!({"referral_source": "police"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let id = screening["id"].as_str().unwrap().to_owned();
        let consent =
            serde_json::json!({"purpose": "assistance", "given": true, "method": "written"});
        self.post(token, &format!("/v1/screenings/{id}/consents"), consent)
            .await;
        let decision = serde_json::json!({"stage": "identified", "deciding_organization_type": "police",
            "legal_basis": "Law on Combating Trafficking in Persons, art. 17"});
        let decided: serde_json::Value = self
            .post(token, &format!("/v1/screenings/{id}/decisions"), decision)
            .await
            .json()
            .await
            .unwrap();
        let case = decided["case_id"]
            .as_str()
            .expect("intake opened the case")
            .to_owned();
        (id, case)
    }

    /// Polls the summary until `done` holds (events are applied asynchronously).
    pub async fn summary_until(
        &self,
        token: &str,
        query: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let response = self
                .get(token, &format!("/v1/reports/summary{query}"))
                .await;
            assert_eq!(response.status(), 200);
            let summary: serde_json::Value = response.json().await.unwrap();
            if done(&summary) {
                return summary;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "summary never reached the expected counts: {summary}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every service and checks they drained and exited cleanly in time.
    pub async fn stop(self) {
        let stopped = tokio::time::timeout(Duration::from_secs(15), self.stack.stop()).await;
        stopped
            .expect("services did not shut down within 15 s")
            .unwrap();
    }
}

/// Adds `authorization: Bearer` to a gRPC request.
pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    haven_auth::grpc::attach_bearer(&mut request, token).unwrap();
    request
}

/// Generates `sqlite::<test>` and `postgres::<test>` for async tests taking a
/// [`TestStack`]. Each test gets its own stack and database.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let stack = $crate::TestStack::start($crate::Backend::Sqlite).await.unwrap();
                    super::$test(stack).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(mut stack) = $crate::TestStack::start($crate::Backend::Postgres).await else {
                        return;
                    };
                    stack.backend = $crate::Backend::Postgres;
                    super::$test(stack).await;
                }
            )+
        }
    };
}
