//! The case-work routes (plans, services, payments, follow-ups, notes, closure,
//! transfers) check what they are sent before calling the case service: without any
//! backend, a bad body, a bad path or a missing If-Match is already answered.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestGateway, first_field, problem};

async fn send(
    gateway: &TestGateway,
    method: Method,
    path: &str,
    if_match: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = gateway
        .client
        .request(method, gateway.url(path))
        .bearer_auth(gateway.admin_token())
        .json(body);
    if let Some(if_match) = if_match {
        request = request.header("if-match", if_match);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_bad_date_is_400_naming_the_field() {
    let gateway = TestGateway::without_backends().await;
    let case = Uuid::new_v4();
    let service = Uuid::new_v4();
    let org = Uuid::new_v4();
    let cases = [
        (
            Method::POST,
            format!("/v1/cases/{case}/follow_ups"),
            json!({"kind": "visit", "due_on": "2026-02-30"}),
            "due_on",
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/plans"),
            json!({"goals": [{"domain": "housing", "goal": "A flat", "actions": [
                {"description": "Find one", "responsible_organization_id": org,
                 "due_on": "next month"}]}]}),
            "goals[0].actions[0].due_on",
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/services"),
            json!({"type": "shelter", "provider_organization_id": org,
                   "planned_on": "01/03/2026"}),
            "planned_on",
        ),
        (
            Method::PATCH,
            format!("/v1/cases/{case}/services/{service}"),
            json!({"ended_on": "2026-3-1"}),
            "ended_on",
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/payments"),
            json!({"amount": "150.00", "currency": "AZN", "paid_on": "2026-03-01T10:00:00Z",
                   "purpose": "rent"}),
            "paid_on",
        ),
    ];
    for (method, path, body, field) in cases {
        let response = send(&gateway, method.clone(), &path, Some("\"1\""), &body).await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{method} {path}"
        );
        let (_, problem) = problem(response).await;
        assert_eq!(first_field(&problem), field, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("YYYY-MM-DD"),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn bodies_of_the_wrong_shape_are_400_naming_the_field() {
    let gateway = TestGateway::without_backends().await;
    let case = Uuid::new_v4();
    let cases = [
        (
            format!("/v1/cases/{case}/notes"),
            json!({"body": "  "}),
            "body",
        ),
        (
            format!("/v1/cases/{case}/notes"),
            json!({"body": "x", "visibility": "everyone"}),
            "visibility",
        ),
        (
            format!("/v1/cases/{case}/payments"),
            json!({"currency": "AZN", "paid_on": "2026-03-01", "purpose": "rent"}),
            "amount",
        ),
        (
            format!("/v1/cases/{case}/closure"),
            json!({"reason": "other"}),
            "reason_text",
        ),
        (
            format!("/v1/cases/{case}/closure/reject"),
            json!({"comment": ""}),
            "comment",
        ),
        (format!("/v1/transfers/{case}/reject"), json!({}), "comment"),
        (
            format!("/v1/cases/{case}/transfers"),
            json!({"to_organization_id": "ministry", "reason": "moved"}),
            "to_organization_id",
        ),
        (
            format!("/v1/cases/{case}/follow_ups"),
            json!({"kind": "visit", "due_on": "2026-04-01", "note": "x"}),
            "note",
        ),
    ];
    for (path, body, field) in cases {
        let response = send(&gateway, Method::POST, &path, Some("\"1\""), &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path} {body}");
        let (_, problem) = problem(response).await;
        assert_eq!(first_field(&problem), field, "{path}: {problem}");
    }
}

#[tokio::test]
async fn state_changes_without_if_match_are_428() {
    let gateway = TestGateway::without_backends().await;
    let case = Uuid::new_v4();
    let item = Uuid::new_v4();
    let cases = [
        (
            Method::PATCH,
            format!("/v1/cases/{case}"),
            json!({"risk_level": "high"}),
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/transfers"),
            json!({"to_organization_id": item, "reason": "moved to Baku"}),
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/plans/1/approve"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/plans/1/reject"),
            json!({"comment": "no housing goal"}),
        ),
        (
            Method::PATCH,
            format!("/v1/cases/{case}/plans/1/actions/{item}"),
            json!({"status": "done"}),
        ),
        (
            Method::PATCH,
            format!("/v1/cases/{case}/services/{item}"),
            json!({"status": "in_progress"}),
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/follow_ups/{item}/outcome"),
            json!({"outcome": "completed"}),
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/closure"),
            json!({"reason": "goals_achieved"}),
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/closure/approve"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/closure/reject"),
            json!({"comment": "services still running"}),
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/reopen"),
            json!({"reason": "new threats"}),
        ),
    ];
    for (method, path, body) in cases {
        let response = send(&gateway, method.clone(), &path, None, &body).await;
        assert_eq!(
            response.status(),
            StatusCode::PRECONDITION_REQUIRED,
            "{method} {path}"
        );
        problem(response).await;
    }
}

#[tokio::test]
async fn malformed_nested_path_segments_are_400_naming_them() {
    let gateway = TestGateway::without_backends().await;
    let case = Uuid::new_v4();
    let item = Uuid::new_v4();
    let cases = [
        (
            Method::PATCH,
            format!("/v1/cases/{case}/services/not-a-uuid"),
            json!({"status": "delivered"}),
            "service_id",
        ),
        (
            Method::PATCH,
            format!("/v1/cases/nope/services/{item}"),
            json!({"status": "delivered"}),
            "id",
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/follow_ups/42/outcome"),
            json!({"outcome": "completed"}),
            "follow_up_id",
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/plans/latest/approve"),
            json!({}),
            "plan_version",
        ),
        (
            Method::POST,
            format!("/v1/cases/{case}/plans/0/approve"),
            json!({}),
            "plan_version",
        ),
        (
            Method::PATCH,
            format!("/v1/cases/{case}/plans/1/actions/first"),
            json!({"status": "done"}),
            "action_id",
        ),
        (
            Method::POST,
            "/v1/transfers/x/accept".to_owned(),
            json!({}),
            "id",
        ),
    ];
    for (method, path, body, field) in cases {
        let response = send(&gateway, method.clone(), &path, Some("\"1\""), &body).await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{method} {path}"
        );
        let (_, problem) = problem(response).await;
        assert_eq!(first_field(&problem), field, "{method} {path}: {problem}");
    }
    let response = gateway.get_as_admin("/v1/follow_ups?overdue=maybe").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, body) = problem(response).await;
    assert_eq!(first_field(&body), "overdue");
    let response = gateway.get_as_admin("/v1/cases?risk_level=extreme").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, problem) = problem(response).await;
    assert_eq!(first_field(&problem), "risk_level");
}

#[tokio::test]
async fn approvals_are_refused_to_caseworkers_before_any_backend_call() {
    let gateway = TestGateway::without_backends().await;
    let case = Uuid::new_v4();
    let token = gateway.token(&["case_worker"]);
    for path in [
        format!("/v1/cases/{case}/plans/1/approve"),
        format!("/v1/cases/{case}/closure/approve"),
        format!("/v1/transfers/{case}/accept"),
    ] {
        let response = gateway
            .client
            .post(gateway.url(&path))
            .bearer_auth(&token)
            .header("if-match", "\"1\"")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        problem(response).await;
    }
    // Notes are narratives: an auditor may read cases but not their notes.
    let response = gateway
        .client
        .get(gateway.url(&format!("/v1/cases/{case}/notes")))
        .bearer_auth(gateway.token(&["auditor"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (headers, _) = problem(response).await;
    assert_eq!(headers[reqwest::header::CACHE_CONTROL], "no-store");
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => found.push(target),
                    _ => refs(value, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_case_work_routes_are_documented_with_their_path_parameters() {
    let gateway = TestGateway::without_backends().await;
    let document: Value = gateway.get("/v1/openapi.json").await.json().await.unwrap();
    let paths = &document["paths"];
    for (path, method, parameters) in [
        ("/v1/cases/{id}", "patch", &["id", "if-match"][..]),
        (
            "/v1/cases/{id}/plans/{plan_version}/actions/{action_id}",
            "patch",
            &["id", "plan_version", "action_id", "if-match"],
        ),
        (
            "/v1/cases/{id}/services/{service_id}",
            "patch",
            &["id", "service_id", "if-match"],
        ),
        (
            "/v1/cases/{id}/follow_ups/{follow_up_id}/outcome",
            "post",
            &["id", "follow_up_id", "if-match"],
        ),
        (
            "/v1/follow_ups",
            "get",
            &["assigned_to", "overdue", "limit", "cursor"],
        ),
        ("/v1/transfers", "get", &["pending"]),
        ("/v1/transfers/{id}/accept", "post", &["id"]),
        ("/v1/cases/{id}/timeline", "get", &["id"]),
        ("/v1/cases/{id}/notes", "get", &["id"]),
    ] {
        let operation = &paths[path][method];
        assert!(operation.is_object(), "{method} {path}");
        let documented: Vec<&str> = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|parameter| parameter["name"].as_str().unwrap())
            .collect();
        for parameter in parameters {
            assert!(
                documented.contains(parameter),
                "{method} {path}: {parameter} in {documented:?}"
            );
        }
    }
    let case = &document["components"]["schemas"]["Case"]["properties"];
    for field in [
        "risk_level",
        "flags",
        "caseworkers",
        "closure",
        "pending_transfer",
    ] {
        assert!(case[field].is_object(), "Case.{field}");
    }
    let mut found = Vec::new();
    refs(&document, &mut found);
    for target in found {
        let name = target.trim_start_matches("#/components/schemas/");
        assert!(
            document["components"]["schemas"][name].is_object(),
            "{target} is not in the document"
        );
    }
}
