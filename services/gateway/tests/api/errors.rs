//! Every error a client can provoke without a backend is a problem+json body with
//! the right status and the request id.

use reqwest::StatusCode;
use reqwest::header::{ALLOW, CACHE_CONTROL, WWW_AUTHENTICATE};
use serde_json::json;

use crate::helpers::{BODY_LIMIT, TestGateway, first_field, problem};

#[tokio::test]
async fn a_request_without_a_token_is_401_with_a_bearer_challenge() {
    let gateway = TestGateway::without_backends().await;
    let response = gateway.get("/v1/screenings").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (headers, body) = problem(response).await;
    assert_eq!(headers[WWW_AUTHENTICATE], "Bearer");
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    assert_eq!(body["detail"], "missing bearer token");
}

#[tokio::test]
async fn a_token_for_another_audience_or_garbage_is_401() {
    let gateway = TestGateway::without_backends().await;
    let mut other = gateway.settings.auth.clone();
    other.audience = "some-other-api".to_owned();
    for token in [
        gateway.token_for(&other, &["admin"]),
        "not.a.jwt".to_owned(),
    ] {
        let response = gateway
            .client
            .get(gateway.url("/v1/cases"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let (headers, body) = problem(response).await;
        assert_eq!(headers[WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body["detail"], "invalid token");
    }
}

#[tokio::test]
async fn malformed_json_is_400() {
    let gateway = TestGateway::without_backends().await;
    let response = gateway
        .post_raw_as_admin(
            "/v1/screenings",
            "application/json",
            "{\"referral_source\": ",
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, body) = problem(response).await;
    assert!(
        body["detail"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let gateway = TestGateway::without_backends().await;
    let response = gateway
        .post_raw_as_admin("/v1/screenings", "text/plain", "referral_source=hotline")
        .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    problem(response).await;

    let response = gateway
        .client
        .post(gateway.url("/v1/organizations"))
        .bearer_auth(gateway.admin_token())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    problem(response).await;
}

#[tokio::test]
async fn well_formed_json_of_the_wrong_shape_is_400_naming_the_field() {
    let gateway = TestGateway::without_backends().await;
    let cases = [
        (
            json!({"referral_source": "carrier_pigeon"}),
            "referral_source",
        ),
        (json!({"settlement": "Ganja"}), "referral_source"),
        (
            json!({"referral_source": "hotline", "is_minor": "yes"}),
            "is_minor",
        ),
        (
            json!({"referral_source": "hotline", "screened_at": "yesterday"}),
            "screened_at",
        ),
        (
            json!({"referral_source": "hotline", "nickname": "x"}),
            "nickname",
        ),
        (json!(["hotline"]), "body"),
    ];
    for (body, field) in cases {
        let response = gateway.post_json_as_admin("/v1/screenings", &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let (_, problem) = problem(response).await;
        assert_eq!(first_field(&problem), field, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{problem}"
        );
    }
    let response = gateway
        .post_json_as_admin(
            &format!("/v1/screenings/{}/decisions", uuid::Uuid::new_v4()),
            &json!({"stage": "identified", "deciding_organization_type": "the_cat",
                    "legal_basis": "art. 9"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, problem) = problem(response).await;
    assert_eq!(first_field(&problem), "deciding_organization_type");
}

#[tokio::test]
async fn a_malformed_path_id_or_query_is_400_naming_it() {
    let gateway = TestGateway::without_backends().await;
    let cases = [
        ("/v1/screenings/not-a-uuid", "id"),
        ("/v1/cases/12345", "id"),
        ("/v1/screenings?limit=1000", "limit"),
        ("/v1/screenings?limit=0", "limit"),
        ("/v1/organizations?limit=many", "limit"),
        ("/v1/cases?status=sleeping", "status"),
        (
            "/v1/reports/summary?organization_id=ministry",
            "organization_id",
        ),
    ];
    for (path, field) in cases {
        let response = gateway.get_as_admin(path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let (_, problem) = problem(response).await;
        assert_eq!(first_field(&problem), field, "{path}: {problem}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let gateway = TestGateway::without_backends().await;
    let oversized = format!(
        "{{\"referral_source\":\"hotline\",\"settlement\":\"{}\"}}",
        "x".repeat(BODY_LIMIT * 2)
    );
    let response = gateway
        .post_raw_as_admin("/v1/screenings", "application/json", oversized)
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (_, body) = problem(response).await;
    assert_eq!(body["type"], "https://haven.dev/problems/payload_too_large");
}

#[tokio::test]
async fn an_unknown_route_is_404_and_a_wrong_method_is_405() {
    let gateway = TestGateway::without_backends().await;
    for path in ["/v1/nothing-here", "/nothing-here", "/v2/screenings"] {
        let response = gateway.get_as_admin(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        problem(response).await;
    }

    let response = gateway
        .client
        .delete(gateway.url("/v1/screenings"))
        .bearer_auth(gateway.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers()[ALLOW].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    problem(response).await;

    let response = gateway
        .client
        .post(gateway.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    problem(response).await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated_and_appear_in_problems() {
    let gateway = TestGateway::without_backends().await;

    let response = gateway
        .client
        .get(gateway.url("/v1/screenings"))
        .header("x-request-id", "client-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-req-42");
    let (_, body) = problem(response).await;
    assert_eq!(body["request_id"], "client-req-42");

    for given in [None, Some("has spaces and ; semicolons")] {
        let mut request = gateway.client.get(gateway.url("/v1/screenings"));
        if let Some(given) = given {
            request = request.header("x-request-id", given);
        }
        let response = request.send().await.unwrap();
        let generated = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
        let (_, body) = problem(response).await;
        assert_eq!(body["request_id"], generated.as_str());
    }

    let response = gateway.get("/healthz").await;
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
}

#[tokio::test]
async fn an_unreachable_backend_is_503_without_transport_details() {
    let gateway = TestGateway::without_backends().await;
    for path in [
        "/v1/screenings",
        "/v1/cases",
        "/v1/organizations",
        "/v1/reports/summary",
    ] {
        let response = gateway.get_as_admin(path).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(response.headers()["retry-after"], "1", "{path}");
        let (_, body) = problem(response).await;
        assert_eq!(body["type"], "https://haven.dev/problems/unavailable");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            !detail.contains("127.0.0.1") && !detail.contains("tcp"),
            "{detail}"
        );
    }
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let gateway = TestGateway::without_backends().await;
    let body = format!(
        "{{\"referral_source\":\"hotline\",\"settlement\":\"{}\"}}",
        "x".repeat(BODY_LIMIT * 2)
    );
    // No Content-Length: the limit can only be noticed while reading the body.
    let request = format!(
        "POST /v1/screenings HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        gateway.admin_token(),
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(gateway.address)
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    let lowercase = response.to_ascii_lowercase();
    assert!(
        lowercase.contains("content-type: application/problem+json"),
        "{response}"
    );
    assert!(response.contains("\"request_id\""), "{response}");
}
