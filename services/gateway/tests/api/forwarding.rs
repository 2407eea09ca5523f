//! REST ↔ gRPC translation against a fake intake service: what the service receives
//! and what the client sees.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, ETAG, LOCATION};
use serde_json::json;

use crate::fake_backend::{BROKEN_ID, CASE_ID, FakeBackend, MISSING_ID, SECRET_TEXT, SLOW_ID};
use crate::helpers::{TestGateway, problem};

#[tokio::test]
async fn creating_a_screening_forwards_credentials_and_answers_201() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let token = gateway.token(&["intake_officer"]);
    let response = gateway
        .client
        .post(gateway.url("/v1/screenings"))
        .bearer_auth(&token)
        .header("x-request-id", "req-create-1")
        .json(&json!({
            "referral_source": "hotline",
            "screened_at": "2026-01-02T03:04:05Z",
            "settlement": "Sumqayit",
            "is_minor": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()[LOCATION],
        "/v1/screenings/7f1c9a52-3b7e-4d1a-9a0e-5c2f1e3d4b6a"
    );
    assert_eq!(response.headers()[ETAG], "\"1\"");
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["id"], "7f1c9a52-3b7e-4d1a-9a0e-5c2f1e3d4b6a");
    assert_eq!(body["referral_source"], "hotline");
    assert_eq!(body["screened_at"], "2026-01-02T03:04:05Z");
    assert_eq!(body["settlement"], "Sumqayit");
    assert_eq!(body["is_minor"], true);
    assert_eq!(body["stage"], "screened");
    assert_eq!(body["case_id"], serde_json::Value::Null);
    assert_eq!(body["consents"], json!([]));
    assert_eq!(body["decisions"], json!([]));

    let calls = backend.calls();
    let call = calls.last().unwrap();
    assert_eq!(call.method, "create_screening");
    assert_eq!(
        call.authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(call.request_id.as_deref(), Some("req-create-1"));
    assert!(call.grpc_timeout.is_some(), "no deadline was propagated");
}

#[tokio::test]
async fn a_decision_that_identifies_returns_the_screening_with_its_case() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let id = "22222222-2222-4222-8222-222222222222";

    let response = gateway
        .post_json_as_admin(
            &format!("/v1/screenings/{id}/consents"),
            &json!({"purpose": "assistance", "given": true, "method": "written"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()[ETAG], "\"2\"");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["consents"][0]["purpose"], "assistance");
    assert_eq!(body["consents"][0]["method"], "written");

    let response = gateway
        .post_json_as_admin(
            &format!("/v1/screenings/{id}/decisions"),
            &json!({
                "stage": "identified",
                "deciding_organization_type": "prosecutor_or_court",
                "legal_basis": "Law on Combating Trafficking, art. 21",
                "decided_at": "2026-01-03T10:00:00+04:00"
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["case_id"], CASE_ID);
    assert_eq!(body["stage"], "identified");
    let decision = &body["decisions"][0];
    assert_eq!(
        decision["deciding_organization_type"],
        "prosecutor_or_court"
    );
    assert_eq!(decision["decided_at"], "2026-01-03T06:00:00Z");
    assert_eq!(decision["reasons"], serde_json::Value::Null);
}

#[tokio::test]
async fn listing_pages_with_a_cursor() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let body: serde_json::Value = gateway
        .get_as_admin("/v1/screenings?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["next_cursor"], "page-2");
    let body: serde_json::Value = gateway
        .get_as_admin("/v1/screenings?limit=1&cursor=page-2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["next_cursor"], serde_json::Value::Null);
}

#[tokio::test]
async fn getting_a_screening_sends_its_etag() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let id = "33333333-3333-4333-8333-333333333333";
    let response = gateway.get_as_admin(&format!("/v1/screenings/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[ETAG], "\"1\"");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["id"], id);
    assert_eq!(body["referral_source"], "ngo_outreach");
}

#[tokio::test]
async fn service_errors_map_to_problems_without_leaking_internals() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;

    let response = gateway
        .get_as_admin(&format!("/v1/screenings/{MISSING_ID}"))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (_, body) = problem(response).await;
    assert_eq!(body["detail"], "screening not found");

    let response = gateway
        .get_as_admin(&format!("/v1/screenings/{BROKEN_ID}"))
        .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let (_, body) = problem(response).await;
    assert_eq!(body["detail"], "internal error");
    assert!(!body.to_string().contains(SECRET_TEXT));
}

#[tokio::test]
async fn a_request_over_its_time_budget_is_504() {
    let backend = FakeBackend::start().await;
    let endpoint = backend.endpoint.clone();
    let gateway = TestGateway::start(move |settings| {
        settings.intake.endpoint = endpoint;
        settings.gateway.request_timeout_ms = 300;
    })
    .await;
    let started = std::time::Instant::now();
    let response = gateway
        .get_as_admin(&format!("/v1/screenings/{SLOW_ID}"))
        .await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    problem(response).await;
}

#[tokio::test]
async fn reading_a_person_forwards_the_stated_purpose_and_is_never_cached() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let token = gateway.token(&["case_worker"]);
    let id = "5e1f0c3a-0000-4000-8000-000000000009";
    let response = gateway
        .client
        .get(gateway.url(&format!("/v1/persons/{id}")))
        .bearer_auth(&token)
        .header("x-haven-purpose", "legal_proceedings")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["details"]["given_name"], "Aynur");
    let calls = backend.calls();
    let call = calls.last().unwrap();
    assert_eq!(call.method, "get_person");
    assert_eq!(call.purpose.as_deref(), Some("legal_proceedings"));

    // An analyst sees aggregates only: the gateway refuses before calling intake.
    let analyst = gateway.token(&["analyst"]);
    let refused = gateway
        .client
        .get(gateway.url(&format!("/v1/persons/{id}")))
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(backend.calls().len(), calls.len());
}
