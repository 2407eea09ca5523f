//! `Idempotency-Key` on creates, end to end against the fake intake service (the
//! create used is publishing an indicator set): a retried create is answered once, a
//! reused key with another request is refused, keys belong to one caller, failures
//! and timeouts leave the key free to retry, concurrent retries reach the service
//! once, and answers carrying personal data are never stored. Every scenario of the
//! suite runs with the gateway's records in SQLite and in Postgres.

use std::time::Duration;

use haven_auth::keys::{DevTokenRequest, KeyMaterial};
use haven_config::Settings;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderValue, LOCATION, RETRY_AFTER};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fake_backend::{FLAKY_NAME, FakeBackend, PUBLISHED_VERSION, SLOW_NAME, SLOW_PUBLISH};
use crate::helpers::{TestGateway, first_field, problem};

const KEY_HEADER: &str = "Idempotency-Key";
const REPLAYED_HEADER: &str = "idempotency-replayed";
/// The create under test.
const PUBLISH_PATH: &str = "/v1/indicator_sets";
/// Organisation of the helpers' default token.
const ORGANIZATION: Uuid = Uuid::from_u128(0x0b8f_6f5e_7a4c_4f4e_9a57_6a9f_2b1d_3c4e);

/// A gateway in front of the fake intake, keeping its records where `settings` say.
struct Fixture {
    backend: FakeBackend,
    gateway: TestGateway,
}

async fn fixture(settings: &Settings) -> Fixture {
    fixture_with(settings, |_| {}).await
}

async fn fixture_with(settings: &Settings, configure: impl FnOnce(&mut Settings)) -> Fixture {
    let backend = FakeBackend::start().await;
    let endpoint = backend.endpoint.clone();
    let database = settings.database.clone();
    let gateway = TestGateway::start(move |settings| {
        // The fake answers the health checks of all four services.
        settings.case.endpoint = endpoint.clone();
        settings.referral.endpoint = endpoint.clone();
        settings.reporting.endpoint = endpoint.clone();
        settings.intake.endpoint = endpoint;
        settings.database = database;
        configure(settings);
    })
    .await;
    Fixture { backend, gateway }
}

impl Fixture {
    /// A token of `subject` of `organization_id` with one role.
    fn token_with_role(&self, subject: &str, organization_id: Uuid, role: &str) -> String {
        KeyMaterial::load_or_create(&self.gateway.settings)
            .unwrap()
            .mint_dev_token(
                &self.gateway.settings.auth,
                &DevTokenRequest {
                    subject: subject.to_owned(),
                    organization_id,
                    roles: vec![role.to_owned()],
                    ttl_seconds: 600,
                },
            )
            .unwrap()
    }

    /// A token of an admin (who may publish indicator sets).
    fn admin_of(&self, subject: &str, organization_id: Uuid) -> String {
        self.token_with_role(subject, organization_id, "admin")
    }

    fn admin(&self) -> String {
        self.admin_of("user-7", ORGANIZATION)
    }

    /// `POST path` with `body`, as `token`, under `key` if any.
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self.gateway.client.post(self.gateway.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header(KEY_HEADER, key);
        }
        request.send().await.unwrap()
    }

    /// Publishes an indicator set.
    async fn create(
        &self,
        token: Option<&str>,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        self.post(PUBLISH_PATH, token, key, body).await
    }

    /// Calls of `method` the fake intake received so far.
    fn calls_of(&self, method: &str) -> usize {
        self.backend
            .calls()
            .iter()
            .filter(|call| call.method == method)
            .count()
    }

    /// Indicator sets the fake intake was asked to publish so far.
    fn creates(&self) -> usize {
        self.calls_of("publish_indicator_set")
    }
}

fn indicator_set(name: &str) -> Value {
    json!({
        "name": name,
        "groups": [{
            "exploitation_type": "general",
            "indicators": [{"code": "document_retention", "label": "Documents were taken away"}],
        }],
    })
}

fn replayed(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(REPLAYED_HEADER)
        .is_some_and(|value| value == "true")
}

/// Status, the headers a replay must repeat, and the body.
async fn parts(response: reqwest::Response) -> (StatusCode, [Option<HeaderValue>; 3], Vec<u8>) {
    let status = response.status();
    let headers = [CONTENT_TYPE, LOCATION, ETAG].map(|name| response.headers().get(name).cloned());
    let body = response.bytes().await.unwrap().to_vec();
    (status, headers, body)
}

async fn a_retried_create_is_answered_once(fixture: Fixture) {
    let token = fixture.admin();
    let body = indicator_set("NRM 2026");
    let first = fixture.create(Some(&token), Some("create-1"), &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(!replayed(&first));
    let (status, headers, first_body) = parts(first).await;
    assert!(headers.iter().all(Option::is_some), "{headers:?}");
    let created: Value = serde_json::from_slice(&first_body).unwrap();
    assert_eq!(created["version"], PUBLISHED_VERSION);

    let retry = fixture.create(Some(&token), Some("create-1"), &body).await;
    assert!(replayed(&retry));
    assert_eq!(retry.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(parts(retry).await, (status, headers, first_body));
    assert_eq!(fixture.creates(), 1);
}

async fn a_key_reused_with_another_request_is_422(fixture: Fixture) {
    let token = fixture.admin();
    let first = fixture
        .create(Some(&token), Some("create-2"), &indicator_set("NRM 2026"))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let other = fixture
        .create(Some(&token), Some("create-2"), &indicator_set("NRM 2027"))
        .await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!replayed(&other));
    let (_, problem) = problem(other).await;
    assert_eq!(
        problem["detail"],
        "Idempotency-Key was used with a different request"
    );
    // Another route is another request too.
    let elsewhere = fixture
        .post(
            "/v1/organizations",
            Some(&token),
            Some("create-2"),
            &indicator_set("NRM 2026"),
        )
        .await;
    assert_eq!(elsewhere.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fixture.backend.calls().len(), 1);
}

async fn keys_belong_to_one_caller(fixture: Fixture) {
    let body = indicator_set("NRM 2026");
    let callers = [
        fixture.admin_of("user-7", ORGANIZATION),
        fixture.admin_of("user-8", ORGANIZATION),
        fixture.admin_of("user-7", Uuid::from_u128(0x5eed)),
    ];
    for token in &callers {
        let response = fixture.create(Some(token), Some("shared-key"), &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(!replayed(&response));
    }
    assert_eq!(fixture.creates(), callers.len());
    for token in &callers {
        let response = fixture.create(Some(token), Some("shared-key"), &body).await;
        assert!(replayed(&response));
    }
    assert_eq!(fixture.creates(), callers.len());
}

async fn a_failed_create_is_not_stored_and_can_be_retried(fixture: Fixture) {
    let token = fixture.admin();
    let body = indicator_set(FLAKY_NAME);
    let failed = fixture.create(Some(&token), Some("create-3"), &body).await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry = fixture.create(Some(&token), Some("create-3"), &body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert!(!replayed(&retry));
    assert_eq!(fixture.creates(), 2);
    let again = fixture.create(Some(&token), Some("create-3"), &body).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert!(replayed(&again));
    assert_eq!(fixture.creates(), 2);
}

async fn concurrent_retries_reach_the_service_once(fixture: Fixture) {
    let token = fixture.admin();
    let body = indicator_set(SLOW_NAME);
    let attempts = (0..5).map(|_| fixture.create(Some(&token), Some("create-4"), &body));
    let responses = futures::future::join_all(attempts).await;
    let mut created = 0;
    for response in responses {
        match response.status() {
            StatusCode::CREATED if !replayed(&response) => created += 1,
            StatusCode::CREATED => {}
            StatusCode::CONFLICT => {
                assert_eq!(response.headers()[RETRY_AFTER], "1");
                problem(response).await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(fixture.creates(), 1);
    let later = fixture.create(Some(&token), Some("create-4"), &body).await;
    assert!(replayed(&later));
    assert_eq!(fixture.creates(), 1);
}

async fn a_malformed_key_is_400_naming_the_header(fixture: Fixture) {
    let token = fixture.admin();
    let too_long = "k".repeat(129);
    let malformed = [
        HeaderValue::from_str(&too_long).unwrap(),
        HeaderValue::from_static(""),
        HeaderValue::from_bytes("clé".as_bytes()).unwrap(),
    ];
    for key in malformed {
        let response = fixture
            .gateway
            .client
            .post(fixture.gateway.url(PUBLISH_PATH))
            .bearer_auth(&token)
            .header(KEY_HEADER, key.clone())
            .json(&indicator_set("NRM 2026"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{key:?}");
        let (_, problem) = problem(response).await;
        assert_eq!(first_field(&problem), KEY_HEADER, "{problem}");
    }
    let twice = fixture
        .gateway
        .client
        .post(fixture.gateway.url(PUBLISH_PATH))
        .bearer_auth(&token)
        .header(KEY_HEADER, "one")
        .header(KEY_HEADER, "two")
        .json(&indicator_set("NRM 2026"))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::BAD_REQUEST);
    assert_eq!(fixture.creates(), 0);
}

async fn without_a_key_every_create_reaches_the_service(fixture: Fixture) {
    let token = fixture.admin();
    let body = indicator_set("NRM 2026");
    for _ in 0..2 {
        let response = fixture.create(Some(&token), None, &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(!replayed(&response));
    }
    assert_eq!(fixture.creates(), 2);
}

async fn a_caller_without_a_valid_token_gets_401(fixture: Fixture) {
    let body = indicator_set("NRM 2026");
    for token in [None, Some("not-a-token")] {
        let response = fixture.create(token, Some("create-5"), &body).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The key was not taken by the refused requests.
    let token = fixture.admin();
    let response = fixture.create(Some(&token), Some("create-5"), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(!replayed(&response));
}

async fn a_rejected_create_is_replayed_with_a_fresh_request_id(fixture: Fixture) {
    let token = fixture.admin();
    let body = json!({"name": 5});
    let first = fixture.create(Some(&token), Some("create-6"), &body).await;
    assert_eq!(first.status(), StatusCode::BAD_REQUEST);
    let (first_headers, first_problem) = problem(first).await;
    let again = fixture.create(Some(&token), Some("create-6"), &body).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(replayed(&again));
    // `problem` checks the body names this request, not the first one.
    let (again_headers, again_problem) = problem(again).await;
    assert_ne!(first_headers["x-request-id"], again_headers["x-request-id"]);
    assert_eq!(first_problem["errors"], again_problem["errors"]);
    assert_eq!(fixture.creates(), 0);
}

async fn a_refusal_of_the_caller_is_not_replayed(fixture: Fixture) {
    let body = indicator_set("NRM 2026");
    let officer = fixture.token_with_role("user-7", ORGANIZATION, "intake_officer");
    let refused = fixture
        .create(Some(&officer), Some("create-8"), &body)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // Given the role, the same user retries with a new token and the same key.
    let retry = fixture
        .create(Some(&fixture.admin()), Some("create-8"), &body)
        .await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert!(!replayed(&retry));
    assert_eq!(fixture.creates(), 1);
}

/// Whether `needle` is in any of the gateway's SQLite files.
fn in_gateway_database(settings: &Settings, needle: &str) -> bool {
    std::fs::read_dir(&settings.data_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("gateway.db"))
        })
        .any(|path| {
            std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        })
}

async fn answers_with_personal_data_are_never_stored(fixture: Fixture) {
    let token = fixture.admin();
    let guardian = "Canary Guardian 7f3a";
    let screening = json!({
        "referral_source": "hotline",
        "is_minor": true,
        "guardian": {"name": guardian, "relationship": "parent", "contact": "+994 50 000 00 00"},
    });
    let reasons = "canary-reasons-7f3a: recruited by a cousin";
    let decision = json!({
        "stage": "identified",
        "deciding_organization_type": "prosecutor_or_court",
        "legal_basis": "Law on Combating Trafficking, art. 21",
        "decided_at": "2026-01-03T10:00:00+04:00",
        "reasons": reasons,
    });
    let decisions = "/v1/screenings/22222222-2222-4222-8222-222222222222/decisions";
    for _ in 0..2 {
        let created = fixture
            .post(
                "/v1/screenings",
                Some(&token),
                Some("screening-1"),
                &screening,
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        assert!(!replayed(&created));
        let created: Value = created.json().await.unwrap();
        assert_eq!(created["guardian"]["name"], guardian);

        let decided = fixture
            .post(decisions, Some(&token), Some("decision-1"), &decision)
            .await;
        assert_eq!(decided.status(), StatusCode::CREATED);
        assert!(!replayed(&decided));
        let decided: Value = decided.json().await.unwrap();
        assert_eq!(decided["decisions"][0]["reasons"], reasons);
    }
    assert_eq!(fixture.calls_of("create_screening"), 2);
    assert_eq!(fixture.calls_of("record_decision"), 2);
    if fixture.gateway.settings.database.url.is_none() {
        for canary in [guardian, reasons] {
            assert!(
                !in_gateway_database(&fixture.gateway.settings, canary),
                "{canary} stored"
            );
        }
    }
}

async fn readiness_reports_the_gateway_database(fixture: Fixture) {
    let response = fixture.gateway.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["database"], "reachable", "{body}");
}

haven_storage::backend_suite! {
    setup = fixture;
    a_retried_create_is_answered_once,
    a_key_reused_with_another_request_is_422,
    keys_belong_to_one_caller,
    a_failed_create_is_not_stored_and_can_be_retried,
    concurrent_retries_reach_the_service_once,
    a_malformed_key_is_400_naming_the_header,
    without_a_key_every_create_reaches_the_service,
    a_caller_without_a_valid_token_gets_401,
    a_rejected_create_is_replayed_with_a_fresh_request_id,
    a_refusal_of_the_caller_is_not_replayed,
    answers_with_personal_data_are_never_stored,
    readiness_reports_the_gateway_database,
}

#[tokio::test]
async fn a_create_cut_off_by_the_time_budget_frees_its_key() {
    let (_dir, settings) = haven_storage::testing::sqlite_settings();
    let fixture = fixture_with(&settings, |settings| {
        settings.gateway.request_timeout_ms = 200;
    })
    .await;
    let token = fixture.admin();
    let body = indicator_set(SLOW_NAME);
    let cut_off = fixture.create(Some(&token), Some("create-7"), &body).await;
    assert_eq!(cut_off.status(), StatusCode::GATEWAY_TIMEOUT);
    // The claim is released (in the background if the request was dropped).
    let deadline = tokio::time::Instant::now() + SLOW_PUBLISH;
    loop {
        let retry = fixture.create(Some(&token), Some("create-7"), &body).await;
        if retry.status() != StatusCode::CONFLICT {
            assert_eq!(retry.status(), StatusCode::GATEWAY_TIMEOUT);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key stayed taken"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fixture.creates(), 2);
}

#[tokio::test]
async fn the_openapi_document_offers_the_header_on_replayable_creates_only() {
    let gateway = TestGateway::without_backends().await;
    let document: Value = gateway.get("/v1/openapi.json").await.json().await.unwrap();
    let paths = &document["paths"];
    for path in ["/v1/indicator_sets", "/v1/organizations"] {
        let operation = &paths[path]["post"];
        let parameter = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == KEY_HEADER)
            .unwrap_or_else(|| panic!("POST {path} lacks the header"));
        assert_eq!(parameter["in"], "header");
        assert_eq!(parameter["required"], false);
        assert_eq!(parameter["schema"]["maxLength"], 128);
        for status in ["409", "422"] {
            assert!(
                operation["responses"][status]["content"]["application/problem+json"].is_object(),
                "POST {path} {status}"
            );
        }
        assert!(
            operation["responses"]["201"]["headers"][REPLAYED_HEADER].is_object(),
            "POST {path}"
        );
    }
    for path in [
        "/v1/screenings",
        "/v1/screenings/{id}/decisions",
        "/v1/cases/{id}/seal",
    ] {
        let parameters = paths[path]["post"]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            parameters
                .iter()
                .all(|parameter| parameter["name"] != KEY_HEADER),
            "POST {path}"
        );
    }
}
