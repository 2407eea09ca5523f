//! `Idempotency-Key` on creates, against the fake intake service (the create used is
//! publishing an indicator set): the gateway checks the header, forwards the key to
//! the service that keeps it, marks the service's replays `Idempotency-Replayed`, and
//! stores nothing itself. What the services do with the key is tested against the
//! real services (`tests/tests/idempotency.rs` and each service's own tests).

use haven_auth::keys::{DevTokenRequest, KeyMaterial};
use haven_config::Settings;
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fake_backend::{FakeBackend, PUBLISHED_VERSION};
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

async fn a_key_is_forwarded_and_the_services_replay_is_marked(fixture: Fixture) {
    let token = fixture.admin();
    let body = indicator_set("NRM 2026");
    let first = fixture.create(Some(&token), Some("create-1"), &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(!replayed(&first));
    let created: Value = first.json().await.unwrap();
    assert_eq!(created["version"], PUBLISHED_VERSION);
    let retry = fixture.create(Some(&token), Some("create-1"), &body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert!(replayed(&retry));
    let again: Value = retry.json().await.unwrap();
    assert_eq!(again, created);
    // The gateway answered neither itself: both reached the service, with the key.
    assert_eq!(fixture.creates(), 2);
    assert_eq!(fixture.backend.idempotency_keys(), ["create-1", "create-1"]);
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

#[tokio::test]
async fn keys_are_forwarded_not_stored() {
    let (_dir, settings) = haven_storage::testing::sqlite_settings();
    let fixture = fixture(&settings).await;
    a_key_is_forwarded_and_the_services_replay_is_marked(fixture).await;
}

#[tokio::test]
async fn malformed_keys_are_refused_at_the_edge() {
    let (_dir, settings) = haven_storage::testing::sqlite_settings();
    a_malformed_key_is_400_naming_the_header(fixture(&settings).await).await;
    let (_dir, settings) = haven_storage::testing::sqlite_settings();
    without_a_key_every_create_reaches_the_service(fixture(&settings).await).await;
}

#[tokio::test]
async fn the_openapi_document_offers_the_header_on_keyed_creates_only() {
    let gateway = TestGateway::without_backends().await;
    let document: Value = gateway.get("/v1/openapi.json").await.json().await.unwrap();
    let paths = &document["paths"];
    for path in [
        "/v1/indicator_sets",
        "/v1/organizations",
        "/v1/cases/{id}/payments",
        "/v1/referrals",
    ] {
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
                operation["responses"][status].is_object(),
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
        "/v1/clocks/{id}/complete",
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
