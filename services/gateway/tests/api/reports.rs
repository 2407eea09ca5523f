//! Indicators, the CTDC export and the release ledger: what the gateway checks before
//! calling the reporting service (without any backend), and what it sends and
//! answers (against the fake reporting service).

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fake_backend::FakeBackend;
use crate::fake_reporting::{EXPORT_CSV, EXPORT_SHA256, RELEASE_ID};
use crate::helpers::{TestGateway, first_field, problem};

const TEXT_CSV: &str = "text/csv; charset=utf-8";

async fn send(
    gateway: &TestGateway,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = gateway
        .client
        .request(method, gateway.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn bad_scopes_and_limits_are_400_naming_the_field() {
    let gateway = TestGateway::without_backends().await;
    let token = gateway.token(&["analyst"]);
    for (path, field) in [
        ("/v1/reports/indicators?from=2026-02-30", "from"),
        ("/v1/reports/indicators?from=01.01.2026", "from"),
        ("/v1/reports/indicators?to=2026-13-01", "to"),
        ("/v1/reports/indicators?to=yesterday", "to"),
        ("/v1/reports/indicators?from=2026-04-01&to=2026-03-31", "to"),
        (
            "/v1/reports/indicators?organization_id=ministry",
            "organization_id",
        ),
        ("/v1/reports/indicators?region=%20", "region"),
        ("/v1/reports/indicators?format=xlsx", "format"),
        ("/v1/releases?limit=0", "limit"),
        ("/v1/releases?limit=101", "limit"),
        ("/v1/releases?limit=all", "limit"),
    ] {
        let response = send(&gateway, &token, Method::GET, path, None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let (_, answer) = problem(response).await;
        assert_eq!(first_field(&answer), field, "{path}: {answer}");
    }
    for (body, field) in [
        (json!({"from": "2026-02-29"}), "from"),
        (json!({"to": "2026-03-31T00:00:00Z"}), "to"),
        (json!({"from": "2026-03-02", "to": "2026-03-01"}), "to"),
        (json!({"organization_id": "ministry"}), "organization_id"),
        (json!({"region": ""}), "region"),
        (json!({"k": 2}), "k"),
    ] {
        let response = send(
            &gateway,
            &token,
            Method::POST,
            "/v1/exports/ctdc",
            Some(&body),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let (_, answer) = problem(response).await;
        assert_eq!(first_field(&answer), field, "{body}: {answer}");
    }
    // The scope is a JSON object, even an empty one.
    let response = send(&gateway, &token, Method::POST, "/v1/exports/ctdc", None).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    problem(response).await;
}

#[tokio::test]
async fn refused_roles_get_403_before_any_backend_call() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let export = json!({});
    let cases = [
        // Reports are for analysts, supervisors and admins.
        ("case_worker", Method::GET, "/v1/reports/indicators", None),
        ("case_worker", Method::GET, "/v1/reports/summary", None),
        (
            "case_worker",
            Method::POST,
            "/v1/exports/ctdc",
            Some(&export),
        ),
        ("case_worker", Method::GET, "/v1/releases", None),
        (
            "intake_officer",
            Method::GET,
            "/v1/reports/indicators",
            None,
        ),
        (
            "referral_coordinator",
            Method::POST,
            "/v1/exports/ctdc",
            Some(&export),
        ),
        // Auditors read the ledger, not the figures, and publish nothing.
        ("auditor", Method::GET, "/v1/reports/indicators", None),
        ("auditor", Method::POST, "/v1/exports/ctdc", Some(&export)),
    ];
    for (role, method, path, body) in cases {
        let token = gateway.token(&[role]);
        let response = send(&gateway, &token, method.clone(), path, body).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{role}: {method} {path}"
        );
        let (headers, _) = problem(response).await;
        assert_eq!(headers[CACHE_CONTROL], "no-store");
    }
    assert!(backend.calls().is_empty(), "{:?}", backend.calls());
}

#[tokio::test]
async fn suppressed_figures_are_null_in_json_never_zero() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let token = gateway.token(&["analyst"]);
    let organization = Uuid::new_v4();
    let path = format!(
        "/v1/reports/indicators?from=2026-01-01&to=2026-03-31&organization_id={organization}&region=Ganja"
    );
    let response = send(&gateway, &token, Method::GET, &path, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let indicators: Value = response.json().await.unwrap();
    assert_eq!(
        indicators["scope"],
        json!({"from": "2026-01-01", "to": "2026-03-31",
               "organization_id": organization, "region": "Ganja"})
    );
    assert_eq!(indicators["threshold"], 11);
    assert_eq!(indicators["generated_at"], "2026-01-02T02:04:05Z");
    let sources = &indicators["tables"][0];
    assert_eq!(sources["name"], "screenings_by_source");
    assert_eq!(sources["dimensions"], json!(["referral_source"]));
    assert_eq!(
        sources["cells"],
        json!([
            {"labels": ["hotline"], "value": 24, "suppressed": false, "complementary": false},
            {"labels": ["police"], "value": null, "suppressed": true, "complementary": false},
            {"labels": ["ngo_outreach"], "value": null, "suppressed": true, "complementary": false},
            {"labels": ["embassy"], "value": 0, "suppressed": false, "complementary": false},
        ])
    );
    assert_eq!(
        (&sources["total"], &sources["total_suppressed"]),
        (&json!(38), &json!(false))
    );
    let by_gender = &indicators["tables"][1];
    assert_eq!(
        (&by_gender["total"], &by_gender["total_suppressed"]),
        (&Value::Null, &json!(true))
    );
    assert_eq!(
        indicators["measures"],
        json!([
            {"name": "median_days_to_identification", "value": 9.5, "base": 24,
             "suppressed": false, "unit": "days"},
            {"name": "re_trafficked_ratio", "value": null, "base": null,
             "suppressed": true, "unit": "ratio"},
        ])
    );
    let sent = backend.reporting_requests().indicators.pop().unwrap();
    let scope = sent.scope.unwrap();
    assert_eq!(
        (
            scope.from.as_str(),
            scope.to.as_str(),
            scope.region.as_str()
        ),
        ("2026-01-01", "2026-03-31", "Ganja")
    );
    assert_eq!(scope.organization_id, organization.to_string());

    // Nothing given: nothing filters.
    let response = send(
        &gateway,
        &token,
        Method::GET,
        "/v1/reports/indicators",
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let indicators: Value = response.json().await.unwrap();
    assert_eq!(
        indicators["scope"],
        json!({"from": null, "to": null, "organization_id": null, "region": null})
    );
    let sent = backend.reporting_requests().indicators.pop().unwrap();
    assert_eq!(sent.scope.unwrap(), Default::default());
}

#[tokio::test]
async fn the_csv_notes_perturbed_and_suppressed_counts_and_carries_the_measures() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let token = gateway.token(&["supervisor"]);
    let response = send(
        &gateway,
        &token,
        Method::GET,
        "/v1/reports/indicators?from=2026-01-01&format=csv",
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], TEXT_CSV);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let csv = response.text().await.unwrap();
    assert_eq!(
        csv,
        "table,labels,value,note\r\n\
         screenings_by_source,hotline,24,perturbed by at most 2\r\n\
         screenings_by_source,police,<11,fewer than 11\r\n\
         screenings_by_source,ngo_outreach,<11,fewer than 11\r\n\
         screenings_by_source,embassy,0,\r\n\
         screenings_by_source,total,38,perturbed by at most 2\r\n\
         identified_by_gender_and_age,female / 18-24,12,perturbed by at most 2\r\n\
         identified_by_gender_and_age,\"male / under 18, unaccompanied\",<11,fewer than 11\r\n\
         identified_by_gender_and_age,total,<11,fewer than 11\r\n\
         measures,median_days_to_identification,9.5,\"days, from 24 (perturbed)\"\r\n\
         measures,re_trafficked_ratio,,withheld: rests on fewer than 11\r\n"
    );
    let sent = backend.reporting_requests().indicators.pop().unwrap();
    assert_eq!(sent.scope.unwrap().from, "2026-01-01");
    // `json` is the default, and may be asked for.
    let response = send(
        &gateway,
        &token,
        Method::GET,
        "/v1/reports/indicators?format=json",
        None,
    )
    .await;
    let indicators: Value = response.json().await.unwrap();
    assert_eq!(indicators["tables"][0]["cells"][1]["value"], Value::Null);
}

#[tokio::test]
async fn an_export_is_its_csv_with_the_release_headers_and_is_never_replayed() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let token = gateway.token(&["analyst"]);
    let organization = Uuid::new_v4();
    let body = json!({"from": "2026-01-01", "to": "2026-03-31",
                      "organization_id": organization, "region": "Baku"});
    for _ in 0..2 {
        let response = gateway
            .client
            .post(gateway.url("/v1/exports/ctdc"))
            .bearer_auth(&token)
            .header("idempotency-key", "export-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let headers = response.headers().clone();
        assert_eq!(headers[CONTENT_TYPE], TEXT_CSV);
        assert_eq!(headers[CACHE_CONTROL], "no-store");
        assert_eq!(headers["x-haven-rows"], "1");
        assert_eq!(headers["x-haven-withheld"], "3");
        assert_eq!(headers["x-haven-without-consent"], "2");
        assert_eq!(headers["x-haven-k"], "5");
        assert_eq!(headers["x-haven-release-id"], RELEASE_ID);
        assert_eq!(headers["x-haven-sha256"], EXPORT_SHA256);
        assert!(headers.get(LOCATION).is_none(), "{headers:?}");
        assert!(headers.get("idempotency-replayed").is_none(), "{headers:?}");
        assert_eq!(response.text().await.unwrap(), EXPORT_CSV);
    }
    // Every export is its own release: both reached the service.
    let exports = backend.reporting_requests().exports;
    assert_eq!(exports.len(), 2);
    let scope = exports[0].scope.clone().unwrap();
    assert_eq!(
        (
            scope.from.as_str(),
            scope.to.as_str(),
            scope.region.as_str()
        ),
        ("2026-01-01", "2026-03-31", "Baku")
    );
    assert_eq!(scope.organization_id, organization.to_string());

    let response = send(
        &gateway,
        &token,
        Method::POST,
        "/v1/exports/ctdc",
        Some(&json!({})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let sent = backend.reporting_requests().exports.pop().unwrap();
    assert_eq!(sent.scope.unwrap(), Default::default());
}

#[tokio::test]
async fn the_ledger_lists_releases_with_their_parameters_as_an_object() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    // Auditors read the ledger without reading the figures.
    let token = gateway.token(&["auditor"]);
    let response = send(&gateway, &token, Method::GET, "/v1/releases?limit=20", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let ledger: Value = response.json().await.unwrap();
    assert_eq!(
        ledger,
        json!({"items": [{
            "id": RELEASE_ID, "kind": "ctdc_export",
            "parameters": {"k": 5, "scope": {"from": "2026-01-01", "to": "2026-03-31"}},
            "rows": 1, "withheld": 3, "sha256": EXPORT_SHA256, "released_by": "user-7",
            "organization_id": "0b8f6f5e-7a4c-4f4e-9a57-6a9f2b1d3c4e",
            "released_at": "2026-01-02T02:13:20Z", "epsilon": null,
        }]})
    );
    assert_eq!(
        backend.reporting_requests().releases.pop().unwrap().limit,
        20
    );
    let response = send(&gateway, &token, Method::GET, "/v1/releases", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        backend.reporting_requests().releases.pop().unwrap().limit,
        0
    );
}

#[tokio::test]
async fn the_report_routes_are_documented() {
    let gateway = TestGateway::without_backends().await;
    let document: Value = gateway.get("/v1/openapi.json").await.json().await.unwrap();
    let paths = &document["paths"];
    for (path, method, parameters) in [
        ("/v1/reports/summary", "get", &["organization_id"][..]),
        (
            "/v1/reports/indicators",
            "get",
            &["from", "to", "organization_id", "region", "format"],
        ),
        ("/v1/exports/ctdc", "post", &[]),
        ("/v1/releases", "get", &["limit"]),
    ] {
        let operation = &paths[path][method];
        assert!(operation.is_object(), "{method} {path}");
        let documented: Vec<&str> = operation["parameters"]
            .as_array()
            .map(|parameters| {
                parameters
                    .iter()
                    .map(|parameter| parameter["name"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        for parameter in parameters {
            assert!(
                documented.contains(parameter),
                "{method} {path}: {parameter} in {documented:?}"
            );
        }
        // An export is never replayed: no Idempotency-Key anywhere here.
        assert!(!documented.contains(&"Idempotency-Key"), "{method} {path}");
    }
    let indicators = &paths["/v1/reports/indicators"]["get"]["responses"]["200"]["content"];
    assert!(indicators["application/json"].is_object(), "{indicators}");
    assert!(indicators["text/csv"].is_object(), "{indicators}");

    let export = &paths["/v1/exports/ctdc"]["post"];
    let text = format!("{} {}", export["summary"], export["description"]);
    assert!(text.contains("anonymised"), "{text}");
    assert!(text.contains("release ledger"), "{text}");
    let created = &export["responses"]["201"];
    assert!(created["content"]["text/csv"].is_object(), "{created}");
    for header in [
        "x-haven-rows",
        "x-haven-withheld",
        "x-haven-without-consent",
        "x-haven-k",
        "x-haven-release-id",
        "x-haven-sha256",
    ] {
        assert!(
            created["headers"][header].is_object(),
            "{header}: {created}"
        );
    }
    assert!(created["headers"]["location"].is_null(), "{created}");

    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["Release"]["properties"]["parameters"]["type"],
        "object"
    );
    for field in ["value", "suppressed", "labels"] {
        assert!(
            schemas["IndicatorCell"]["properties"][field].is_object(),
            "IndicatorCell.{field}"
        );
    }
}
