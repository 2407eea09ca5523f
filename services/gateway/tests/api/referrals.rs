//! Facilities, the directory search, coverage, the gazetteer and referrals: what the
//! gateway checks before calling the referral service (without any backend), and what
//! it sends and answers (against the fake referral service).

use reqwest::header::{CACHE_CONTROL, ETAG, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fake_backend::FakeBackend;
use crate::fake_referral::{FACILITY_ID, REFERRAL_ID};
use crate::helpers::{TestGateway, first_field, problem};
use haven_proto::referral::v1 as referral;

async fn send(
    gateway: &TestGateway,
    token: &str,
    method: Method,
    path: &str,
    if_match: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = gateway
        .client
        .request(method, gateway.url(path))
        .bearer_auth(token);
    if let Some(if_match) = if_match {
        request = request.header("if-match", if_match);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// A valid facility body with `changes` applied (a `null` removes the field).
fn facility(changes: &Value) -> Value {
    let mut body = json!({
        "name": "Ganja shelter", "settlement": "Ganja", "service_types": ["shelter"],
        "capacity_total": 12, "accepts": {"genders": ["female"], "minors": true},
        "languages": ["az", "ru"],
    });
    for (key, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => {
                body.as_object_mut().unwrap().remove(key);
            }
            value => body[key] = value.clone(),
        }
    }
    body
}

/// A valid referral body with `changes` applied.
fn referral_body(changes: &Value) -> Value {
    let mut body = json!({
        "case_id": Uuid::new_v4(), "facility_id": Uuid::new_v4(), "service_type": "shelter",
        "purpose": "A bed for two weeks", "urgency": "urgent",
    });
    for (key, value) in changes.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// Every status change: its path suffix, a valid body and the status it asks for.
fn status_changes() -> [(&'static str, Value, referral::ReferralStatus); 6] {
    [
        ("accept", json!({}), referral::ReferralStatus::Accepted),
        ("start", json!({}), referral::ReferralStatus::InProgress),
        (
            "complete",
            json!({"outcome": "Stayed three weeks, then moved to her sister's"}),
            referral::ReferralStatus::Completed,
        ),
        (
            "decline",
            json!({"reason": "No bed free"}),
            referral::ReferralStatus::Declined,
        ),
        (
            "cancel",
            json!({"reason": "Found a place closer"}),
            referral::ReferralStatus::Cancelled,
        ),
        (
            "revoke",
            json!({"reason": "Consent withdrawn"}),
            referral::ReferralStatus::Revoked,
        ),
    ]
}

#[tokio::test]
async fn facility_bodies_are_400_naming_the_field() {
    let gateway = TestGateway::without_backends().await;
    let token = gateway.admin_token();
    let facility_path = format!("/v1/facilities/{}", Uuid::new_v4());
    let cases = [
        (json!({"latitude": 40.68}), "longitude"),
        (json!({"longitude": 46.36}), "latitude"),
        (json!({"latitude": 91.0, "longitude": 46.36}), "latitude"),
        (json!({"latitude": 40.68, "longitude": -181.0}), "longitude"),
        (json!({"name": "  "}), "name"),
        (json!({"settlement": ""}), "settlement"),
        (json!({"settlement": null}), "settlement"),
        (json!({"service_types": null}), "service_types"),
        (
            json!({"service_types": ["shelter", ""]}),
            "service_types[1]",
        ),
        (json!({"capacity_total": -1}), "capacity_total"),
        (
            json!({"accepts": {"genders": ["female"], "pets": true}}),
            "accepts.pets",
        ),
        (
            json!({"accepts": {"age_groups": [" "]}}),
            "accepts.age_groups[0]",
        ),
        (json!({"nickname": "x"}), "nickname"),
    ];
    for (changes, field) in &cases {
        let body = facility(changes);
        for (method, path) in [
            (Method::POST, "/v1/facilities"),
            (Method::PATCH, facility_path.as_str()),
        ] {
            let response = send(
                &gateway,
                &token,
                method.clone(),
                path,
                Some("\"1\""),
                Some(&body),
            )
            .await;
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{method} {body}"
            );
            let (_, answer) = problem(response).await;
            assert_eq!(first_field(&answer), *field, "{method} {body}: {answer}");
        }
    }
    // Only a create names the organisation; a replacement cannot move a facility.
    let body = facility(&json!({"organization_id": "ministry"}));
    let response = send(
        &gateway,
        &token,
        Method::POST,
        "/v1/facilities",
        None,
        Some(&body),
    )
    .await;
    let (_, answer) = problem(response).await;
    assert_eq!(first_field(&answer), "organization_id");
    let body = facility(&json!({"organization_id": Uuid::new_v4()}));
    let response = send(
        &gateway,
        &token,
        Method::PATCH,
        &facility_path,
        Some("\"1\""),
        Some(&body),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, answer) = problem(response).await;
    assert_eq!(first_field(&answer), "organization_id");
}

#[tokio::test]
async fn search_coverage_and_list_queries_are_400_naming_the_parameter() {
    let gateway = TestGateway::without_backends().await;
    for (path, field) in [
        ("/v1/facilities/search?latitude=40.4", "longitude"),
        ("/v1/facilities/search?longitude=49.8", "latitude"),
        (
            "/v1/facilities/search?latitude=-90.5&longitude=49.8",
            "latitude",
        ),
        (
            "/v1/facilities/search?latitude=NaN&longitude=49.8",
            "latitude",
        ),
        (
            "/v1/facilities/search?latitude=40.4&longitude=200",
            "longitude",
        ),
        (
            "/v1/facilities/search?latitude=north&longitude=49.8",
            "latitude",
        ),
        (
            "/v1/facilities/search?settlement=Baku&radius_km=0",
            "radius_km",
        ),
        (
            "/v1/facilities/search?settlement=Baku&radius_km=-5",
            "radius_km",
        ),
        ("/v1/facilities/search?settlement=Baku&limit=0", "limit"),
        ("/v1/facilities/search?settlement=Baku&limit=101", "limit"),
        ("/v1/facilities/search?settlement=Baku&age=-1", "age"),
        (
            "/v1/facilities/search?settlement=Baku&minor=perhaps",
            "minor",
        ),
        (
            "/v1/coverage?service_type=shelter&radius_km=inf",
            "radius_km",
        ),
        ("/v1/facilities?organization_id=ministry", "organization_id"),
        ("/v1/facilities?active_only=1x", "active_only"),
        ("/v1/facilities?limit=500", "limit"),
        ("/v1/facilities/not-a-facility", "id"),
        ("/v1/referrals?direction=sideways", "direction"),
        ("/v1/referrals?status=open", "status"),
        ("/v1/referrals?case_id=HV-2026-000001", "case_id"),
        ("/v1/referrals?outcome_overdue=soon", "outcome_overdue"),
        ("/v1/referrals/42", "id"),
        ("/v1/referrals/42/disclosure", "id"),
    ] {
        let response = gateway.get_as_admin(path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let (_, answer) = problem(response).await;
        assert_eq!(first_field(&answer), field, "{path}: {answer}");
    }
}

#[tokio::test]
async fn referral_bodies_are_400_naming_the_field() {
    let gateway = TestGateway::without_backends().await;
    let token = gateway.admin_token();
    for (changes, field) in [
        (json!({"outcome_due_on": "2026-02-30"}), "outcome_due_on"),
        (json!({"outcome_due_on": "in a month"}), "outcome_due_on"),
        (json!({"accept_by": "tomorrow"}), "accept_by"),
        (json!({"urgency": "asap"}), "urgency"),
        (json!({"case_id": "HV-2026-000001"}), "case_id"),
        (json!({"facility_id": 7}), "facility_id"),
        (json!({"purpose": " "}), "purpose"),
        (json!({"service_type": ""}), "service_type"),
        (json!({"person_name": "Aynur"}), "person_name"),
    ] {
        let body = referral_body(&changes);
        let response = send(
            &gateway,
            &token,
            Method::POST,
            "/v1/referrals",
            None,
            Some(&body),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let (_, answer) = problem(response).await;
        assert_eq!(first_field(&answer), field, "{body}: {answer}");
    }
    let response = send(
        &gateway,
        &token,
        Method::POST,
        "/v1/referrals",
        None,
        Some(&json!({"case_id": Uuid::new_v4()})),
    )
    .await;
    let (_, answer) = problem(response).await;
    assert_eq!(first_field(&answer), "facility_id", "{answer}");

    let referral = Uuid::new_v4();
    for (verb, body, field) in [
        ("accept", json!({"comment": "welcome"}), "comment"),
        ("start", json!({"on": "2026-03-01"}), "on"),
        ("complete", json!({}), "outcome"),
        ("complete", json!({"outcome": ""}), "outcome"),
        ("decline", json!({}), "reason"),
        ("decline", json!({"reason": "  "}), "reason"),
        ("cancel", json!({"reason": ""}), "reason"),
        ("revoke", json!({"reason": 3}), "reason"),
    ] {
        let path = format!("/v1/referrals/{referral}/{verb}");
        let response = send(
            &gateway,
            &token,
            Method::POST,
            &path,
            Some("\"2\""),
            Some(&body),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path} {body}");
        let (_, answer) = problem(response).await;
        assert_eq!(first_field(&answer), field, "{path} {body}: {answer}");
    }
    // A status change is a JSON object, even an empty one.
    let path = format!("/v1/referrals/{referral}/accept");
    let response = send(&gateway, &token, Method::POST, &path, Some("\"2\""), None).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    problem(response).await;
}

#[tokio::test]
async fn changes_without_if_match_are_428() {
    let gateway = TestGateway::without_backends().await;
    let token = gateway.admin_token();
    let id = Uuid::new_v4();
    let mut cases = vec![(
        Method::PATCH,
        format!("/v1/facilities/{id}"),
        facility(&json!({})),
    )];
    for (verb, body, _) in status_changes() {
        cases.push((Method::POST, format!("/v1/referrals/{id}/{verb}"), body));
    }
    for (method, path, body) in cases {
        let response = send(&gateway, &token, method.clone(), &path, None, Some(&body)).await;
        assert_eq!(
            response.status(),
            StatusCode::PRECONDITION_REQUIRED,
            "{method} {path}"
        );
        problem(response).await;
        let response = send(
            &gateway,
            &token,
            method.clone(),
            &path,
            Some("yesterday"),
            Some(&body),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{method} {path}"
        );
        let (_, answer) = problem(response).await;
        assert_eq!(first_field(&answer), "if-match");
    }
}

#[tokio::test]
async fn refused_roles_get_403_before_any_backend_call() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let id = Uuid::new_v4();
    let facility_path = format!("/v1/facilities/{id}");
    let referral_path = format!("/v1/referrals/{id}");
    let cases = [
        // Caseworkers find places and refer; they do not run facilities or answer.
        (
            "case_worker",
            Method::POST,
            "/v1/facilities".to_owned(),
            Some(facility(&json!({}))),
        ),
        (
            "case_worker",
            Method::PATCH,
            facility_path.clone(),
            Some(facility(&json!({}))),
        ),
        (
            "case_worker",
            Method::POST,
            format!("{referral_path}/accept"),
            Some(json!({})),
        ),
        (
            "case_worker",
            Method::POST,
            format!("{referral_path}/start"),
            Some(json!({})),
        ),
        ("case_worker", Method::GET, "/v1/coverage".to_owned(), None),
        // The receiving provider's staff answer; they do not refer or cancel.
        (
            "referral_coordinator",
            Method::POST,
            "/v1/referrals".to_owned(),
            Some(referral_body(&json!({}))),
        ),
        (
            "referral_coordinator",
            Method::POST,
            format!("{referral_path}/cancel"),
            Some(json!({"reason": "x"})),
        ),
        (
            "referral_coordinator",
            Method::POST,
            format!("{referral_path}/revoke"),
            Some(json!({"reason": "x"})),
        ),
        // Intake reads the directory only.
        (
            "intake_officer",
            Method::GET,
            "/v1/referrals".to_owned(),
            None,
        ),
        (
            "intake_officer",
            Method::POST,
            "/v1/facilities".to_owned(),
            Some(facility(&json!({}))),
        ),
        // Nobody outside the referral's teams reads what it discloses.
        (
            "analyst",
            Method::GET,
            format!("{referral_path}/disclosure"),
            None,
        ),
        (
            "auditor",
            Method::GET,
            format!("{referral_path}/disclosure"),
            None,
        ),
        ("analyst", Method::GET, referral_path.clone(), None),
    ];
    for (role, method, path, body) in cases {
        let token = gateway.token(&[role]);
        let response = send(
            &gateway,
            &token,
            method.clone(),
            &path,
            Some("\"1\""),
            body.as_ref(),
        )
        .await;
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
async fn search_is_never_taken_for_a_facility_id() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let token = gateway.token(&["case_worker"]);
    let response = send(
        &gateway,
        &token,
        Method::GET,
        "/v1/facilities/search?service_type=shelter&latitude=40.41&longitude=49.87\
         &radius_km=80&gender=female&age=16&minor=true&family=false&language=az\
         &include_full=true&limit=5",
        None,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["radius_km"], 80.0);
    assert_eq!(body["items"][0]["distance_km"], 12.5);
    assert_eq!(body["items"][0]["facility"]["id"], FACILITY_ID);
    assert_eq!(
        body["items"][0]["facility"]["accepts"]["genders"],
        json!(["female"])
    );
    let search = backend.referral_requests().searches.pop().unwrap();
    assert_eq!(search.service_type, "shelter");
    assert_eq!(search.settlement, "");
    assert_eq!(
        (search.latitude, search.longitude),
        (Some(40.41), Some(49.87))
    );
    assert_eq!(search.radius_km, 80.0);
    assert!(search.include_full);
    assert_eq!(search.limit, 5);
    let profile = search.profile.unwrap();
    assert_eq!(profile.gender, "female");
    assert_eq!(profile.age, 16);
    assert!(profile.minor && !profile.family);
    assert_eq!(profile.language, "az");

    // Around a settlement, everything else left to the service's defaults.
    let response = send(
        &gateway,
        &token,
        Method::GET,
        "/v1/facilities/search?settlement=Ganja",
        None,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["radius_km"], 150.0);
    let search = backend.referral_requests().searches.pop().unwrap();
    assert_eq!(search.settlement, "Ganja");
    assert_eq!((search.latitude, search.longitude), (None, None));
    assert_eq!((search.radius_km, search.limit), (0.0, 0));
    assert!(!search.include_full);

    let response = send(
        &gateway,
        &token,
        Method::GET,
        &format!("/v1/facilities/{FACILITY_ID}"),
        None,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[ETAG], "\"4\"");
    let methods: Vec<&str> = backend.calls().iter().map(|call| call.method).collect();
    assert_eq!(
        methods,
        ["search_facilities", "search_facilities", "get_facility"]
    );
}

#[tokio::test]
async fn a_facility_is_created_and_replaced_whole() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let token = gateway.token(&["referral_coordinator"]);
    let organization = Uuid::new_v4();
    let body = facility(&json!({
        "organization_id": organization, "latitude": 40.69, "longitude": 46.37,
        "address": "12 Nizami St", "contact_phone": "+994 22 000 00 00",
    }));
    let response = send(
        &gateway,
        &token,
        Method::POST,
        "/v1/facilities",
        None,
        Some(&body),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers()[LOCATION],
        format!("/v1/facilities/{FACILITY_ID}").as_str()
    );
    assert_eq!(response.headers()[ETAG], "\"1\"");
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["latitude"], 40.69);
    assert_eq!(created["address"], "12 Nizami St");
    assert_eq!(created["contact_email"], Value::Null);
    assert_eq!(
        created["accepts"],
        json!({"genders": ["female"], "age_groups": [], "minors": true, "families": false})
    );
    assert_eq!(created["active"], true);
    let sent = backend.referral_requests().facility_creates.pop().unwrap();
    assert_eq!(sent.organization_id, organization.to_string());
    let details = sent.details.unwrap();
    assert_eq!(details.contact_phone, "+994 22 000 00 00");
    assert_eq!(details.active, Some(true));

    // A replacement: what is left out is reset, not kept.
    let path = format!("/v1/facilities/{FACILITY_ID}");
    let body = json!({"name": "Ganja shelter", "settlement": "Ganja", "service_types": ["shelter", "medical"], "active": false});
    let response = send(
        &gateway,
        &token,
        Method::PATCH,
        &path,
        Some("\"4\""),
        Some(&body),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[ETAG], "\"5\"");
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(replaced["active"], false);
    assert_eq!(replaced["languages"], json!([]));
    let sent = backend.referral_requests().facility_updates.pop().unwrap();
    assert_eq!(sent.id, FACILITY_ID);
    assert_eq!(sent.expected_version, 4);
    let details = sent.details.unwrap();
    assert_eq!(details.service_types, ["shelter", "medical"]);
    assert_eq!((details.capacity_total, details.latitude), (0, None));
    assert_eq!(details.active, Some(false));
}

#[tokio::test]
async fn coverage_settlements_and_lists_are_translated() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let token = gateway.token(&["analyst"]);
    let response = send(
        &gateway,
        &token,
        Method::GET,
        "/v1/coverage?service_type=shelter&radius_km=60",
        None,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let coverage: Value = response.json().await.unwrap();
    assert_eq!(
        coverage,
        json!({"radius_km": 150.0, "settlements_total": 3, "settlements_covered": 1, "uncovered": [
            {"name": "Lerik", "latitude": 38.77, "longitude": 48.41,
             "nearest_facility_id": FACILITY_ID, "nearest_distance_km": 310.2},
            {"name": "Astara", "latitude": 38.45, "longitude": 48.87,
             "nearest_facility_id": null, "nearest_distance_km": null},
        ]})
    );
    let sent = backend.referral_requests().coverage.pop().unwrap();
    assert_eq!(
        (sent.service_type.as_str(), sent.radius_km),
        ("shelter", 60.0)
    );

    let response = send(&gateway, &token, Method::GET, "/v1/settlements", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let settlements: Value = response.json().await.unwrap();
    assert_eq!(settlements["items"][0]["name"], "Gəncə");
    assert_eq!(settlements["items"][0]["name_en"], "Ganja");

    let response = send(
        &gateway,
        &token,
        Method::GET,
        "/v1/facilities?service_type=shelter&active_only=true&limit=10",
        None,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["items"][0]["id"], FACILITY_ID);
    assert_eq!(page["next_cursor"], Value::Null);

    let token = gateway.token(&["case_worker"]);
    let case = Uuid::new_v4();
    let path = format!(
        "/v1/referrals?direction=incoming&status=in_progress&case_id={case}&acceptance_overdue=true&limit=20&cursor=abc"
    );
    let response = send(&gateway, &token, Method::GET, &path, None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["items"][0]["status"], "requested");
    assert_eq!(page["items"][0]["urgency"], "urgent");
    assert_eq!(page["next_cursor"], "next");
    let sent = backend.referral_requests().lists.pop().unwrap();
    assert_eq!(sent.direction, referral::ReferralDirection::Incoming as i32);
    assert_eq!(sent.status, referral::ReferralStatus::InProgress as i32);
    assert_eq!(sent.case_id, case.to_string());
    assert!(sent.acceptance_overdue && !sent.outcome_overdue);
    assert_eq!(sent.page.unwrap().limit, 20);
}

#[tokio::test]
async fn the_idempotency_key_of_a_referral_or_facility_is_forwarded() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let token = gateway.token(&["case_worker"]);
    let body = referral_body(
        &json!({"accept_by": "2026-03-01T12:00:00+04:00", "outcome_due_on": "2026-04-01", "urgency": "emergency"}),
    );
    let create = || {
        gateway
            .client
            .post(gateway.url("/v1/referrals"))
            .bearer_auth(&token)
            .header("idempotency-key", "referral-1")
            .json(&body)
            .send()
    };
    let first = create().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(first.headers()[ETAG], "\"1\"");
    assert_eq!(
        first.headers()[LOCATION],
        format!("/v1/referrals/{REFERRAL_ID}").as_str()
    );
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "requested");
    assert_eq!(first["case_code"], "HV-2026-000042");
    // The referral service keeps the key: the gateway forwards it and stores nothing.
    let retry = create().await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    let creates = backend.referral_requests().referral_creates;
    assert_eq!(creates.len(), 2);
    assert!(
        creates
            .iter()
            .all(|sent| sent.idempotency_key == "referral-1")
    );
    let sent = &creates[0];
    assert_eq!(sent.urgency, referral::Urgency::Emergency as i32);
    assert_eq!(sent.accept_by.unwrap().seconds, 1_772_352_000);
    assert_eq!(sent.outcome_due_on, "2026-04-01");
    assert_eq!(sent.purpose, "A bed for two weeks");

    // Facilities too.
    let token = gateway.admin_token();
    for _ in 0..2 {
        let response = gateway
            .client
            .post(gateway.url("/v1/facilities"))
            .bearer_auth(&token)
            .header("idempotency-key", "facility-1")
            .json(&facility(&json!({})))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let facility_creates = backend.referral_requests().facility_creates;
    assert_eq!(facility_creates.len(), 2);
    assert!(
        facility_creates
            .iter()
            .all(|sent| sent.idempotency_key == "facility-1")
    );
}

#[tokio::test]
async fn each_status_change_asks_for_its_status_at_the_version_read() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let token = gateway.admin_token();
    for (verb, body, status) in status_changes() {
        let path = format!("/v1/referrals/{REFERRAL_ID}/{verb}");
        let response = send(
            &gateway,
            &token,
            Method::POST,
            &path,
            Some("W/\"7\""),
            Some(&body),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{verb}");
        assert_eq!(response.headers()[ETAG], "\"8\"", "{verb}");
        let answered: Value = response.json().await.unwrap();
        let spelled = status
            .as_str_name()
            .trim_start_matches("REFERRAL_STATUS_")
            .to_lowercase();
        assert_eq!(answered["status"], spelled.as_str(), "{verb}");
        assert_eq!(answered["version"], 8, "{verb}");
        let sent = backend.referral_requests().status_changes.pop().unwrap();
        assert_eq!(sent.id, REFERRAL_ID);
        assert_eq!(sent.status, status as i32, "{verb}");
        assert_eq!(sent.expected_version, 7, "{verb}");
        assert_eq!(
            sent.reason,
            body["reason"].as_str().unwrap_or_default(),
            "{verb}"
        );
        assert_eq!(
            sent.outcome,
            body["outcome"].as_str().unwrap_or_default(),
            "{verb}"
        );
        assert_eq!(answered["status_reason"], body["reason"], "{verb}");
    }
}

#[tokio::test]
async fn the_disclosure_is_an_object_of_fields_never_cached() {
    let backend = FakeBackend::start().await;
    let gateway = TestGateway::with_backends_at(&backend.endpoint).await;
    let token = gateway.token(&["referral_coordinator"]);
    let path = format!("/v1/referrals/{REFERRAL_ID}/disclosure");
    let response = send(&gateway, &token, Method::GET, &path, None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let disclosure: Value = response.json().await.unwrap();
    assert_eq!(
        disclosure,
        json!({"referral_id": REFERRAL_ID, "case_code": "HV-2026-000042",
               "fields": {"given_name": "Aynur", "gender": "female", "languages": "az,ru"}})
    );
    let response = send(
        &gateway,
        &token,
        Method::GET,
        &format!("/v1/referrals/{REFERRAL_ID}"),
        None,
        None,
    )
    .await;
    assert_eq!(response.headers()[ETAG], "\"3\"");
    let read: Value = response.json().await.unwrap();
    assert_eq!(read["status"], "accepted");
    assert_eq!(read["accept_by"], "2026-01-03T00:00:00Z");
    assert_eq!(read["outcome_due_on"], "2026-02-01");
    assert_eq!(read["status_reason"], Value::Null);
}

#[tokio::test]
async fn the_new_routes_are_documented_with_their_parameters() {
    let gateway = TestGateway::without_backends().await;
    let document: Value = gateway.get("/v1/openapi.json").await.json().await.unwrap();
    let paths = &document["paths"];
    let mut expected = vec![
        ("/v1/facilities", "post", &[][..]),
        (
            "/v1/facilities",
            "get",
            &[
                "organization_id",
                "service_type",
                "settlement",
                "active_only",
                "limit",
                "cursor",
            ],
        ),
        ("/v1/facilities/{id}", "get", &["id"]),
        ("/v1/facilities/{id}", "patch", &["id", "if-match"]),
        (
            "/v1/facilities/search",
            "get",
            &[
                "service_type",
                "settlement",
                "latitude",
                "longitude",
                "radius_km",
                "gender",
                "age",
                "minor",
                "family",
                "language",
                "include_full",
                "limit",
            ],
        ),
        ("/v1/coverage", "get", &["service_type", "radius_km"]),
        ("/v1/settlements", "get", &[]),
        ("/v1/referrals", "post", &[]),
        (
            "/v1/referrals",
            "get",
            &[
                "direction",
                "status",
                "case_id",
                "acceptance_overdue",
                "outcome_overdue",
                "limit",
                "cursor",
            ],
        ),
        ("/v1/referrals/{id}", "get", &["id"]),
        ("/v1/referrals/{id}/disclosure", "get", &["id"]),
    ];
    let verbs = status_changes().map(|(verb, _, _)| format!("/v1/referrals/{{id}}/{verb}"));
    for path in &verbs {
        expected.push((path.as_str(), "post", &["id", "if-match"]));
    }
    for (path, method, parameters) in expected {
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
        // Creates take an Idempotency-Key; status changes rely on If-Match.
        let idempotent = documented.contains(&"Idempotency-Key");
        assert_eq!(
            idempotent,
            method == "post" && !path.contains("{id}"),
            "{method} {path}"
        );
    }
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["Disclosure"]["properties"]["fields"]["type"],
        "object"
    );
    assert!(
        schemas["ReferralStatus"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("in_progress"))
    );
    let patch = &paths["/v1/facilities/{id}"]["patch"];
    let text = format!("{} {}", patch["summary"], patch["description"]);
    assert!(text.contains("not a patch"), "{text}");
}
