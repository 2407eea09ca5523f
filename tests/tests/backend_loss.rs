//! A backend that goes away costs the REST client a `503` with `Retry-After`, never a
//! `500` or a `504`, and never takes the gateway out of service.
//!
//! The stack runs in this process. A second intake runs in a child process (this
//! test binary again, running only [`service_child_process`]) with a database of its
//! own, and a second gateway in this process sends its intake calls there. The child
//! is frozen (SIGSTOP) with calls in flight and then killed (SIGKILL), or stopped
//! (SIGTERM) while calls stream in. With the child gone, the gateway's `/readyz`
//! stays `200` while `/status` shows intake unreachable and the others serving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use haven_cli::ServiceName;
use haven_config::{Secret, Settings};
use haven_e2e::child::{ServiceProcess, copy_keys};
use haven_e2e::{Backend, TestStack};

/// The child's entry point, run with `--exact`.
const ENTRY_POINT: &str = "service_child_process";

/// The child process: one service alone, until it is killed or stopped.
#[test]
#[ignore = "runs only as the child process of the backend-loss tests"]
fn service_child_process() {
    haven_e2e::child::run_child_if_asked();
}

/// A gateway whose intake is a child process.
struct Fixture {
    stack: TestStack,
    intake: ServiceProcess,
    gateway_url: String,
    http: reqwest::Client,
    token: String,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start(stack: TestStack) -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_keys(&stack.settings.data_dir, dir.path());
        let database_url = match stack.backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                haven_storage::testing::postgres()
                    .await
                    .unwrap()
                    .fresh_database()
                    .await,
            ),
        };
        let mut environment = vec![
            (
                "HAVEN__DATA_DIR".to_owned(),
                dir.path().display().to_string(),
            ),
            ("HAVEN__INTAKE__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "HAVEN__CASE__ENDPOINT".to_owned(),
                stack.stack.endpoint(ServiceName::Case),
            ),
        ];
        if let Some(url) = &database_url {
            environment.push(("HAVEN__DATABASE__URL".to_owned(), url.clone()));
        }
        let intake =
            ServiceProcess::start(ENTRY_POINT, ServiceName::Intake, &environment, dir.path());

        let mut settings: Settings = stack.settings.clone();
        settings.data_dir = dir.path().to_path_buf();
        settings.database.url = database_url.map(Secret::new);
        settings.intake.endpoint = intake.endpoint();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway_url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        tokio::spawn(haven_gateway::serve(
            listener,
            metrics_listener,
            settings,
            shutdown.clone(),
        ));
        let token = stack.token(&["intake_officer", "case_worker"], Uuid::new_v4());
        let fixture = Self {
            stack,
            intake,
            gateway_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            token,
            shutdown,
            _dir: dir,
        };
        fixture.wait_until_intake_answers().await;
        fixture
    }

    async fn wait_until_intake_answers(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let status: Value = self.get("/status").await.json().await.unwrap_or_default();
            if status["backends"]["intake"] == "serving" {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the child intake never served: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.gateway_url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    /// Creates a screening; the response as it came.
    fn create(&self) -> impl Future<Output = reqwest::Response> + Send + 'static {
        let request = self
            .http
            .post(format!("{}/v1/screenings", self.gateway_url))
            .bearer_auth(&self.token)
            .header("idempotency-key", Uuid::new_v4().to_string())
            .json(&json!({"referral_source": "police", "settlement": "Gəncə"}));
        async move { request.send().await.unwrap() }
    }

    /// Lists screenings; the response as it came.
    fn list(&self) -> impl Future<Output = reqwest::Response> + Send + 'static {
        let request = self
            .http
            .get(format!("{}/v1/screenings", self.gateway_url))
            .bearer_auth(&self.token);
        async move { request.send().await.unwrap() }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.stack.stop().await;
    }
}

/// Asserts a 503 problem that says when to retry.
async fn assert_unavailable(response: reqwest::Response, what: &str) {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    let seconds: u64 = retry_after
        .unwrap_or_else(|| panic!("{what}: a 503 without Retry-After"))
        .parse()
        .unwrap();
    assert!((1..=60).contains(&seconds), "{what}: Retry-After {seconds}");
    assert_eq!(
        body["type"], "https://haven.dev/problems/unavailable",
        "{body}"
    );
}

async fn a_backend_killed_with_calls_in_flight_is_503_with_retry_after(stack: TestStack) {
    let fixture = Fixture::start(stack).await;
    // The gateway holds a connection to the child.
    assert_eq!(fixture.create().await.status(), StatusCode::CREATED);
    assert_eq!(fixture.list().await.status(), StatusCode::OK);

    fixture.intake.signal("STOP");
    let create = tokio::spawn(fixture.create());
    let list = tokio::spawn(fixture.list());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !create.is_finished() && !list.is_finished(),
        "the calls are held in flight by the frozen intake"
    );
    fixture.intake.signal("KILL");

    assert_unavailable(create.await.unwrap(), "create in flight").await;
    assert_unavailable(list.await.unwrap(), "read in flight").await;
    // And once it is gone, every call is the same.
    assert_unavailable(fixture.list().await, "read after the kill").await;
    assert_unavailable(fixture.create().await, "create after the kill").await;

    // The gateway itself is still ready; the dependency status names the culprit.
    let ready = fixture.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let status = fixture.get("/status").await;
    assert_eq!(status.status(), StatusCode::OK);
    let status: Value = status.json().await.unwrap();
    assert_eq!(status["status"], "degraded", "{status}");
    assert_eq!(status["backends"]["intake"], "unreachable", "{status}");
    for backend in ["case", "referral", "reporting"] {
        assert_eq!(status["backends"][backend], "serving", "{status}");
    }
    fixture.stop().await;
}

async fn a_backend_stopped_under_load_answers_every_call_200_or_503(stack: TestStack) {
    let mut fixture = Fixture::start(stack).await;
    assert_eq!(fixture.list().await.status(), StatusCode::OK);
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    let mut clients = Vec::new();
    for client in 0..6 {
        let gateway = fixture.gateway_url.clone();
        let http = fixture.http.clone();
        let token = fixture.token.clone();
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            while tokio::time::Instant::now() < until {
                let request = if client % 2 == 0 {
                    http.get(format!("{gateway}/v1/screenings"))
                } else {
                    http.post(format!("{gateway}/v1/screenings"))
                        .header("idempotency-key", Uuid::new_v4().to_string())
                        .json(&json!({"referral_source": "hotline"}))
                };
                let response = request.bearer_auth(&token).send().await.unwrap();
                let retry_after = response.headers().contains_key("retry-after");
                answers.push((response.status(), retry_after));
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    fixture.intake.signal("TERM");
    assert!(
        fixture.intake.wait_for_exit(Duration::from_secs(15)),
        "the intake did not drain and exit"
    );
    let mut unavailable = 0;
    for client in clients {
        for (status, retry_after) in client.await.unwrap() {
            assert!(
                matches!(
                    status,
                    StatusCode::OK | StatusCode::CREATED | StatusCode::SERVICE_UNAVAILABLE
                ),
                "a call answered {status} while intake stopped"
            );
            if status == StatusCode::SERVICE_UNAVAILABLE {
                unavailable += 1;
                assert!(retry_after, "a 503 without Retry-After");
            }
        }
    }
    assert!(unavailable > 0, "no call met the stopped intake");
    assert_eq!(fixture.get("/readyz").await.status(), StatusCode::OK);
    fixture.stop().await;
}

haven_e2e::on_both_backends!(
    a_backend_killed_with_calls_in_flight_is_503_with_retry_after,
    a_backend_stopped_under_load_answers_every_call_200_or_503,
);
