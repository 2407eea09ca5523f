//! Health, readiness, metrics, OpenAPI, docs, CORS and shutdown.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ORIGIN};

use crate::fake_backend::FakeBackend;
use crate::helpers::{TestGateway, problem};

#[tokio::test]
async fn healthz_is_always_ok() {
    let gateway = TestGateway::without_backends().await;
    let response = gateway.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_follows_the_gateway_alone_even_with_every_backend_down() {
    let gateway = TestGateway::without_backends().await;
    let response = gateway.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["database"], "reachable", "{body}");
    assert!(body.get("backends").is_none(), "{body}");
}

#[tokio::test]
async fn status_names_the_backends_that_are_down() {
    let gateway = TestGateway::without_backends().await;
    let response = gateway.get("/status").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["database"], "reachable", "{body}");
    for backend in ["intake", "case", "referral", "reporting"] {
        assert_eq!(body["backends"][backend], "unreachable", "{body}");
    }
}

#[tokio::test]
async fn status_is_ok_when_every_backend_serves() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let response = gateway.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = gateway.get("/status").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["backends"]["reporting"], "serving", "{body}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_on_their_own_listener() {
    let gateway = TestGateway::without_backends().await;
    gateway.get("/v1/screenings").await;
    // Not on the public API: per-route counts say what an organisation is doing.
    let response = gateway.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (_, body) = problem(response).await;
    assert_eq!(body["detail"], "no such resource", "{body}");
    // The metrics listener serves nothing else.
    assert_eq!(
        gateway.get_metrics("/v1/screenings").await.status(),
        StatusCode::NOT_FOUND
    );
    let response = gateway.get_metrics("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        response.headers()
    );
    let text = response.text().await.unwrap();
    let counted = text.lines().any(|line| {
        line.starts_with("haven_gateway_http_requests_total")
            && line.contains("route=\"/v1/screenings\"")
            && line.contains("status=\"401\"")
            && line.contains("method=\"GET\"")
    });
    assert!(counted, "{text}");
    assert!(
        text.contains("haven_gateway_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_v1_operation_with_bearer_auth() {
    let gateway = TestGateway::without_backends().await;
    let response = gateway.get("/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: serde_json::Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/screenings", "post"),
        ("/v1/screenings", "get"),
        ("/v1/screenings/{id}", "get"),
        ("/v1/screenings/{id}/consents", "post"),
        ("/v1/screenings/{id}/decisions", "post"),
        ("/v1/cases", "get"),
        ("/v1/cases/{id}", "get"),
        ("/v1/organizations", "get"),
        ("/v1/organizations", "post"),
        ("/v1/organizations/{id}", "get"),
        ("/v1/reports/summary", "get"),
        ("/v1/reports/indicators", "get"),
        ("/v1/exports/ctdc", "post"),
        ("/v1/releases", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(document["security"][0]["bearer"], serde_json::json!([]));
    assert_eq!(
        document["servers"][0]["url"],
        gateway.settings.gateway.public_url
    );
    let sources = &document["components"]["schemas"]["ReferralSource"]["enum"];
    assert!(
        sources
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("border_or_consular")),
        "{sources}"
    );
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_locally() {
    let gateway = TestGateway::without_backends().await;
    let response = gateway.get("/docs").await;
    assert_eq!(response.status(), StatusCode::OK);
    let page_url = response.url().clone();
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    let scripts: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(!scripts.is_empty(), "{html}");
    for script in scripts {
        let url = page_url.join(script).unwrap();
        assert_eq!(url.host_str(), Some("127.0.0.1"), "external asset {url}");
        let asset = gateway.client.get(url.clone()).send().await.unwrap();
        assert_eq!(asset.status(), StatusCode::OK, "{url}");
        let text = asset.text().await.unwrap();
        assert!(!text.is_empty(), "{url}");
        if script.contains("initializer") {
            assert!(text.contains("/v1/openapi.json"), "{text}");
        }
    }
}

#[tokio::test]
async fn cors_answers_only_configured_origins() {
    let allowed = "https://app.example.org";
    let gateway = TestGateway::start(|settings| {
        settings.gateway.cors_allowed_origins = vec![allowed.to_owned()];
    })
    .await;

    let response = gateway
        .client
        .get(gateway.url("/v1/screenings"))
        .header(ORIGIN, allowed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], allowed);
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("etag"),
        "{exposed}"
    );
    // What an export says about itself is readable by browser clients too.
    assert!(
        exposed.contains("x-haven-release-id") && exposed.contains("x-haven-sha256"),
        "{exposed}"
    );

    let preflight = gateway
        .client
        .request(reqwest::Method::OPTIONS, gateway.url("/v1/screenings"))
        .header(ORIGIN, allowed)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], allowed);
    let headers = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(headers.contains("authorization"), "{headers}");

    let response = gateway
        .client
        .get(gateway.url("/v1/screenings"))
        .header(ORIGIN, "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let without_cors = TestGateway::without_backends().await;
    let response = without_cors
        .client
        .get(without_cors.url("/healthz"))
        .header(ORIGIN, allowed)
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn serve_returns_ok_after_shutdown() {
    let gateway = TestGateway::without_backends().await;
    assert_eq!(gateway.get("/healthz").await.status(), StatusCode::OK);
    let address = gateway.address;
    gateway.stop().await.unwrap();
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}
