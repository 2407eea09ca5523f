//! A gateway started per test, and one helper per kind of request.

use std::net::SocketAddr;

use haven_auth::keys::{DevTokenRequest, KeyMaterial};
use haven_config::{AuthSettings, Settings};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const PROBLEM_JSON: &str = "application/problem+json";
/// Body limit of test gateways, small enough to exceed cheaply.
pub const BODY_LIMIT: usize = 4096;

/// A port nothing listens on: bound, read, released.
pub async fn unused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A running gateway and what a test needs to talk to it.
pub struct TestGateway {
    pub address: SocketAddr,
    /// Where the Prometheus page is served (a listener of its own).
    pub metrics_address: SocketAddr,
    pub client: reqwest::Client,
    pub settings: Settings,
    keys: KeyMaterial,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _data_dir: TempDir,
}

impl TestGateway {
    /// A gateway whose four backends point at a port nothing listens on.
    pub async fn without_backends() -> Self {
        Self::start(|_| {}).await
    }

    /// A gateway with every backend endpoint set to `endpoint`.
    pub async fn with_backends_at(endpoint: &str) -> Self {
        let endpoint = endpoint.to_owned();
        Self::start(move |settings| {
            settings.intake.endpoint = endpoint.clone();
            settings.case.endpoint = endpoint.clone();
            settings.referral.endpoint = endpoint.clone();
            settings.reporting.endpoint = endpoint;
        })
        .await
    }

    /// A gateway with unreachable backends and settings adjusted by `configure`.
    pub async fn start(configure: impl FnOnce(&mut Settings)) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let nowhere = format!("http://127.0.0.1:{}", unused_port().await);
        let mut settings = Settings {
            data_dir: data_dir.path().to_path_buf(),
            ..Settings::default()
        };
        settings.intake.endpoint = nowhere.clone();
        settings.case.endpoint = nowhere.clone();
        settings.referral.endpoint = nowhere.clone();
        settings.reporting.endpoint = nowhere;
        settings.gateway.body_limit_bytes = BODY_LIMIT;
        settings.gateway.request_timeout_ms = 5_000;
        configure(&mut settings);

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let metrics_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_address = metrics_listener.local_addr().unwrap();
        settings.gateway.metrics_listen = metrics_address;
        settings.gateway.public_url = format!("http://{address}");
        // Generates the development keys the gateway then loads from the same dir.
        let keys = KeyMaterial::load_or_create(&settings).unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(haven_gateway::serve(
            listener,
            metrics_listener,
            settings.clone(),
            shutdown.clone(),
        ));
        Self {
            address,
            metrics_address,
            client: reqwest::Client::new(),
            settings,
            keys,
            shutdown,
            server: Some(server),
            _data_dir: data_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A valid user token with `roles`.
    pub fn token(&self, roles: &[&str]) -> String {
        self.token_for(&self.settings.auth, roles)
    }

    /// A token signed with the right key but claims from `auth` (e.g. another
    /// audience).
    pub fn token_for(&self, auth: &AuthSettings, roles: &[&str]) -> String {
        self.keys
            .mint_dev_token(
                auth,
                &DevTokenRequest {
                    subject: "user-7".to_owned(),
                    organization_id: Uuid::from_u128(0x0b8f_6f5e_7a4c_4f4e_9a57_6a9f_2b1d_3c4e),
                    roles: roles.iter().map(|role| (*role).to_owned()).collect(),
                    ttl_seconds: 600,
                },
            )
            .unwrap()
    }

    pub fn admin_token(&self) -> String {
        self.token(&["admin"])
    }

    /// `GET path` on the metrics listener.
    pub async fn get_metrics(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("http://{}{path}", self.metrics_address))
            .send()
            .await
            .unwrap()
    }

    /// `GET path` without credentials.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `GET path` as an admin.
    pub async fn get_as_admin(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(self.admin_token())
            .send()
            .await
            .unwrap()
    }

    /// `POST path` with a JSON value as an admin.
    pub async fn post_json_as_admin(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(self.admin_token())
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST path` with raw bytes and a content type as an admin.
    pub async fn post_raw_as_admin(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(self.admin_token())
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Cancels the shutdown token and waits for `serve` to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let server = self.server.take().unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .expect("the gateway did not stop in time")
            .unwrap()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The problem body of an error response, after checking its media type.
pub async fn problem(response: reqwest::Response) -> (HeaderMap, serde_json::Value) {
    let headers = response.headers().clone();
    let status = response.status();
    assert_eq!(
        headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap()),
        Some(PROBLEM_JSON),
        "status {status}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(body["title"].is_string(), "{body}");
    assert!(body["type"].is_string(), "{body}");
    // Every problem names the request, and it is the id the response header carries.
    let request_id = headers.get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(body["request_id"], request_id, "{body}");
    (headers, body)
}

/// The field named by the first field error of a problem.
pub fn first_field(problem: &serde_json::Value) -> &str {
    problem["errors"][0]["field"].as_str().unwrap_or_default()
}
