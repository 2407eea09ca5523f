//! The per-caller rate limit: a burst passes, the next request is a 429 problem
//! with `Retry-After`, other callers are unaffected, invalid tokens count against
//! the client address, health and metrics are exempt, and honouring `Retry-After`
//! works.
//!
//! Requests with a valid token go to an unknown `/v1` path, those without to a
//! route that needs one: the limit applies first, and the 404 or 401 comes back at
//! once, so no backend time eats into the refill margins.

use std::time::Duration;

use haven_auth::keys::{DevTokenRequest, KeyMaterial};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use uuid::Uuid;

use crate::helpers::{TestGateway, problem};

const BURST: u32 = 3;
/// 120 a minute: one token every 500 ms, far longer than a burst of local requests.
const PER_MINUTE: u32 = 120;
/// Answers 404 at once to a valid token.
const PATH: &str = "/v1/no_such_resource";
/// Answers 401 at once without a valid token.
const GUARDED_PATH: &str = "/v1/cases";

async fn limited_gateway() -> TestGateway {
    TestGateway::start(|settings| {
        settings.gateway.rate_limit_burst = BURST;
        settings.gateway.rate_limit_per_minute = PER_MINUTE;
    })
    .await
}

/// A valid token for `subject` of `organization_id`.
fn token_of(gateway: &TestGateway, subject: &str, organization_id: Uuid) -> String {
    KeyMaterial::load_or_create(&gateway.settings)
        .unwrap()
        .mint_dev_token(
            &gateway.settings.auth,
            &DevTokenRequest {
                subject: subject.to_owned(),
                organization_id,
                roles: vec!["case_worker".to_owned()],
                ttl_seconds: 600,
            },
        )
        .unwrap()
}

async fn get_with(gateway: &TestGateway, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = gateway.client.get(gateway.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// Spends the burst of `token`'s caller, checking none of it is refused.
async fn spend_burst(gateway: &TestGateway, token: Option<&str>) {
    for attempt in 1..=BURST {
        let response = get_with(gateway, PATH, token).await;
        assert_ne!(
            response.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "request {attempt} of the burst"
        );
    }
}

fn retry_after(response: &reqwest::Response) -> u64 {
    let value = response
        .headers()
        .get(RETRY_AFTER)
        .expect("a 429 carries Retry-After")
        .to_str()
        .unwrap();
    value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After `{value}` is not whole seconds"))
}

#[tokio::test]
async fn the_request_after_the_burst_is_a_429_problem_with_retry_after() {
    let gateway = limited_gateway().await;
    let token = gateway.token(&["case_worker"]);
    spend_burst(&gateway, Some(&token)).await;

    let response = get_with(&gateway, PATH, Some(&token)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let seconds = retry_after(&response);
    assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
    let (_, body) = problem(response).await;
    assert_eq!(body["type"], "https://haven.dev/problems/rate_limited");
}

#[tokio::test]
async fn other_callers_keep_their_own_budget() {
    let gateway = limited_gateway().await;
    let organization = Uuid::from_u128(1);
    let limited = token_of(&gateway, "user-1", organization);
    spend_burst(&gateway, Some(&limited)).await;
    let response = get_with(&gateway, PATH, Some(&limited)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    let colleague = token_of(&gateway, "user-2", organization);
    let same_name_elsewhere = token_of(&gateway, "user-1", Uuid::from_u128(2));
    for token in [&colleague, &same_name_elsewhere] {
        let response = get_with(&gateway, PATH, Some(token)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    // Nor does the throttled user use up anonymous callers' budget.
    let response = get_with(&gateway, GUARDED_PATH, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn honouring_retry_after_gets_through_again() {
    let gateway = limited_gateway().await;
    let token = gateway.token(&["case_worker"]);
    spend_burst(&gateway, Some(&token)).await;
    let response = get_with(&gateway, PATH, Some(&token)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    let wait = Duration::from_secs(retry_after(&response)) + Duration::from_millis(100);
    tokio::time::sleep(wait).await;
    let response = get_with(&gateway, PATH, Some(&token)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invalid_tokens_count_against_the_client_address() {
    let gateway = limited_gateway().await;
    // A different forged token each time still draws on the one address bucket.
    for attempt in 0..BURST {
        let forged = format!("forged.token.{attempt}");
        let response = get_with(&gateway, GUARDED_PATH, Some(&forged)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = get_with(&gateway, GUARDED_PATH, Some("forged.token.again")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let response = get_with(&gateway, GUARDED_PATH, None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    problem(response).await;

    // A valid token from the same address has its own budget.
    let response = get_with(&gateway, PATH, Some(&gateway.admin_token())).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_and_metrics_are_never_limited() {
    let gateway = limited_gateway().await;
    spend_burst(&gateway, None).await;
    let response = get_with(&gateway, PATH, None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    for _ in 0..=BURST {
        assert_eq!(gateway.get("/healthz").await.status(), StatusCode::OK);
        assert_eq!(
            gateway.get_metrics("/metrics").await.status(),
            StatusCode::OK
        );
    }
}
