//! Who follows which event feed and what an event carries: people (an analyst, an
//! administrator) receive the workflow only — every payload field they get is
//! classed operational — while services receive whole payloads; erasure redacts the
//! person's past case events so a replay from 0 cannot rebuild them. Real services on
//! port 0, gRPC, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use haven_auth::FieldClass;
use haven_auth::keys::ServiceTokens;
use haven_cli::ServiceName;
use haven_e2e::{TestStack, authorized};
use haven_events::fields::class_of;
use haven_proto::common::v1::event_feed_service_client::EventFeedServiceClient;
use haven_proto::common::v1::{Event, WatchEventsRequest};

const FEEDS: [ServiceName; 3] = [
    ServiceName::Intake,
    ServiceName::Case,
    ServiceName::Referral,
];

/// Canaries typed into quasi-identifying fields; none may reach a person's feed.
const SETTLEMENT: &str = "Qəbələ";
const BIRTH_YEAR: i64 = 1987;

fn service_token(stack: &TestStack) -> String {
    ServiceTokens::new(&stack.settings.auth, &stack.keys, "ministry-test")
        .token()
        .unwrap()
}

/// Every event of `service`'s feed after `after` that the holder of `token` receives,
/// read until the feed has been quiet for a while.
async fn follow(stack: &TestStack, service: ServiceName, token: &str, after: u64) -> Vec<Event> {
    let mut client = EventFeedServiceClient::new(stack.channel(service).await);
    let mut stream = client
        .watch_events(authorized(
            WatchEventsRequest {
                after_sequence: after,
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Ok(message) =
        tokio::time::timeout(Duration::from_millis(1500), stream.message()).await
    {
        match message.unwrap() {
            Some(message) => events.extend(message.event),
            None => break,
        }
    }
    events
}

/// Follows `service`'s feed as a service until `done` holds for the events received.
async fn follow_until(
    stack: &TestStack,
    service: ServiceName,
    done: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    let token = service_token(stack);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = follow(stack, service, &token, 0).await;
        if done(&events) {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{service:?} feed never reached the expected events"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn payload(event: &Event) -> Value {
    serde_json::from_str(&event.payload_json).unwrap()
}

async fn post_ok(stack: &TestStack, token: &str, path: &str, body: Value) -> Value {
    let response = stack.post(token, path, body).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        status == 200 || status == 201,
        "POST {path}: {status} {body}"
    );
    body
}

/// A person screened with personal details, identified, with a case that has a risk
/// level, flags, an assessment and a payment, and a shelter of the organisation:
/// events carrying every kind of quasi-identifier on all three feeds.
async fn a_person_with_a_case(stack: &TestStack, organization: Uuid) -> (Value, String) {
    let officer = stack.token_as("officer", &["admin", "intake_officer"], organization);
    let worker = stack.token_as("aysel", &["case_worker"], organization);
    let supervisor = stack.token_as("rashad", &["supervisor"], organization);
    let screening = post_ok(stack, &officer, "/v1/screenings", json!({
        "referral_source": "hotline", "settlement": SETTLEMENT,
        "person": {"given_name": "Leyla", "birth_year": BIRTH_YEAR, "gender": "female", "citizenships": ["uz"]},
        "exploitation": {"types": ["sexual_exploitation"], "means_of_control": ["threats"]},
    }))
    .await;
    let id = screening["id"].as_str().unwrap();
    for purpose in ["assistance", "reporting"] {
        post_ok(
            stack,
            &officer,
            &format!("/v1/screenings/{id}/consents"),
            json!({"purpose": purpose, "given": true, "method": "written"}),
        )
        .await;
    }
    let decided = post_ok(
        stack,
        &officer,
        &format!("/v1/screenings/{id}/decisions"),
        json!({
        "stage": "identified", "deciding_organization_type": "police", "legal_basis": "art. 17"}),
    )
    .await;
    let case = decided["case_id"].as_str().unwrap().to_owned();
    let case_path = format!("/v1/cases/{case}");

    let read = stack.get(&supervisor, &case_path).await;
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();
    let updated = stack
        .http
        .patch(stack.url(&case_path))
        .bearer_auth(&supervisor)
        .header("if-match", etag)
        .json(&json!({"caseworkers": ["aysel"], "risk_level": "high", "flags": ["interpreter_needed"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    post_ok(
        stack,
        &worker,
        &format!("{case_path}/assessments"),
        json!({"kind": "individual",
        "scores": [{"domain": "safety", "score": 2}]}),
    )
    .await;
    post_ok(
        stack,
        &worker,
        &format!("{case_path}/payments"),
        json!({"amount": "120.50",
        "currency": "AZN", "paid_on": "2026-11-01", "purpose": "rent"}),
    )
    .await;
    post_ok(
        stack,
        &officer,
        "/v1/organizations",
        json!({"id": organization, "name": format!("NGO {organization}"), "organization_type": "ngo"}),
    )
    .await;
    post_ok(
        stack,
        &officer,
        "/v1/facilities",
        json!({"name": "Shelter of the north",
        "settlement": SETTLEMENT, "latitude": 40.98, "longitude": 47.85,
        "service_types": ["shelter"], "capacity_total": 10, "languages": ["az"]}),
    )
    .await;
    (screening, case)
}

async fn people_following_a_feed_receive_the_workflow_only(stack: TestStack) {
    let organization = Uuid::new_v4();
    let (screening, case) = a_person_with_a_case(&stack, organization).await;
    let screening_id = screening["id"].as_str().unwrap().to_owned();

    // Services receive whole payloads (reporting needs them): the canaries are there.
    let intake_whole = follow_until(&stack, ServiceName::Intake, |events| {
        events.iter().any(|event| {
            event.event_type == "screening.case_opened" && event.aggregate_id == screening_id
        })
    })
    .await;
    let created = intake_whole
        .iter()
        .find(|event| event.event_type == "screening.created" && event.aggregate_id == screening_id)
        .unwrap();
    assert_eq!(payload(created)["birth_year"], BIRTH_YEAR);
    assert_eq!(payload(created)["settlement"], SETTLEMENT);
    let case_whole = follow_until(&stack, ServiceName::Case, |events| {
        events
            .iter()
            .any(|event| event.event_type == "case.payment_recorded" && event.aggregate_id == case)
    })
    .await;
    assert!(
        case_whole
            .iter()
            .any(|event| payload(event)["amount"] == "120.50")
    );
    let referral_whole = follow_until(&stack, ServiceName::Referral, |events| {
        events.iter().any(|event| {
            event.event_type == "facility.created"
                && event.organization_id == organization.to_string()
        })
    })
    .await;

    let analyst = stack.token(&["analyst"], organization);
    let admin = stack.token(&["admin"], organization);
    let stranger = stack.token(&["analyst", "admin"], Uuid::new_v4());
    for (service, whole) in FEEDS
        .into_iter()
        .zip([&intake_whole, &case_whole, &referral_whole])
    {
        let ours: Vec<&Event> = whole
            .iter()
            .filter(|event| event.organization_id == organization.to_string())
            .collect();
        assert!(!ours.is_empty(), "{service:?}");
        for token in [&analyst, &admin] {
            let received = follow(&stack, service, token, 0).await;
            // The same events, in the same places, of their organisation only.
            let sequences = |events: &[&Event]| {
                events
                    .iter()
                    .map(|event| event.sequence)
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                sequences(&received.iter().collect::<Vec<_>>()),
                sequences(&ours),
                "{service:?}"
            );
            for event in &received {
                let Value::Object(fields) = payload(event) else {
                    panic!("{service:?} {}: payload is not an object", event.event_type);
                };
                for (field, value) in &fields {
                    assert_eq!(
                        class_of(&event.event_type, field),
                        Some(FieldClass::Operational),
                        "{service:?} {}.{field} = {value} reached a person",
                        event.event_type
                    );
                }
                assert!(
                    !event.payload_json.contains(SETTLEMENT),
                    "{}",
                    event.payload_json
                );
                assert!(
                    !event.payload_json.contains(&BIRTH_YEAR.to_string()),
                    "{}",
                    event.payload_json
                );
                assert!(
                    !event.payload_json.contains("sexual_exploitation"),
                    "{}",
                    event.payload_json
                );
                assert!(
                    !event.payload_json.contains("120.50"),
                    "{}",
                    event.payload_json
                );
                assert!(
                    !event
                        .payload_json
                        .contains(screening["person_id"].as_str().unwrap()),
                    "{}",
                    event.payload_json
                );
                let at = event.occurred_at.as_ref().unwrap();
                assert_eq!(
                    (at.seconds % 86_400, at.nanos),
                    (0, 0),
                    "times to the day only"
                );
            }
            // What is operational still arrives.
            if service == ServiceName::Intake {
                let created = received
                    .iter()
                    .find(|event| {
                        event.event_type == "screening.created"
                            && event.aggregate_id == screening_id
                    })
                    .unwrap();
                assert_eq!(payload(created), json!({"referral_source": "hotline"}));
            }
        }
        assert!(
            follow(&stack, service, &stranger, 0).await.is_empty(),
            "{service:?}"
        );
    }
    stack.stop().await;
}

async fn erasure_redacts_the_persons_past_case_events(stack: TestStack) {
    let organization = Uuid::new_v4();
    let (screening, case) = a_person_with_a_case(&stack, organization).await;
    let before = follow_until(&stack, ServiceName::Case, |events| {
        events
            .iter()
            .any(|event| event.event_type == "case.payment_recorded" && event.aggregate_id == case)
    })
    .await;
    let of_case = |events: &[Event]| -> Vec<Event> {
        events
            .iter()
            .filter(|event| event.aggregate_id == case)
            .cloned()
            .collect()
    };
    let before = of_case(&before);
    assert!(before.len() >= 4, "opened, updated, assessed, paid");
    assert!(
        before
            .iter()
            .all(|event| !haven_events::is_redacted(&payload(event)))
    );

    let admin = stack.token(&["admin"], organization);
    stack
        .summary_until(&admin, "", |summary| summary["cases_total"] == 1)
        .await;
    let person_id = screening["person_id"].as_str().unwrap();
    let erased = stack
        .http
        .delete(stack.url(&format!("/v1/persons/{person_id}")))
        .bearer_auth(&admin)
        .json(&json!({"reason": "request of the data subject"}))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 200);

    // Replayed from 0 after case applied the erasure: the same events in the same
    // places, none of them saying anything.
    let after = follow_until(&stack, ServiceName::Case, |events| {
        of_case(events)
            .iter()
            .all(|event| haven_events::is_redacted(&payload(event)))
    })
    .await;
    let after = of_case(&after);
    let places = |events: &[Event]| -> Vec<(u64, String)> {
        events
            .iter()
            .map(|event| (event.sequence, event.event_type.clone()))
            .collect()
    };
    assert_eq!(places(&after), places(&before));
    for event in &after {
        assert_eq!(
            payload(event),
            json!({"redacted": true}),
            "{}",
            event.event_type
        );
    }
    // Reporting, which counted the case before the erasure, still counts it once.
    let summary: Value = stack
        .get(&admin, "/v1/reports/summary")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["cases_total"], 1, "{summary}");
    stack.stop().await;
}

/// A case's timeline is told from its events: a caseworker reads the amounts, scores
/// and flags; an auditor (operational fields only) reads the same entries without
/// them.
async fn a_timeline_gives_each_reader_the_fields_their_roles_receive(stack: TestStack) {
    let organization = Uuid::new_v4();
    let (_, case) = a_person_with_a_case(&stack, organization).await;
    let path = format!("/v1/cases/{case}/timeline");
    let timeline = |token: String| {
        let stack = &stack;
        let path = path.clone();
        async move {
            let response = stack.get(&token, &path).await;
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            body["items"].as_array().unwrap().clone()
        }
    };
    let details_of = |items: &[Value], event_type: &str| -> Value {
        items
            .iter()
            .find(|item| item["type"] == event_type)
            .map(|item| item["details"].clone())
            .unwrap()
    };
    let worker = timeline(stack.token_as("aysel", &["case_worker"], organization)).await;
    let auditor = timeline(stack.token(&["auditor"], organization)).await;
    assert_eq!(worker.len(), auditor.len());
    assert_eq!(
        details_of(&worker, "case.payment_recorded")["amount"],
        "120.50"
    );
    assert_eq!(
        details_of(&worker, "case.updated")["flags"],
        json!(["interpreter_needed"])
    );
    assert!(
        details_of(&worker, "case.assessed")["scores"].is_object()
            || details_of(&worker, "case.assessed")["scores"].is_array()
    );
    for item in &auditor {
        let event_type = item["type"].as_str().unwrap();
        for (field, value) in item["details"].as_object().unwrap() {
            assert_eq!(
                class_of(event_type, field),
                Some(FieldClass::Operational),
                "{event_type}.{field} = {value} reached an auditor"
            );
        }
    }
    assert!(details_of(&auditor, "case.payment_recorded")["payment_id"].is_string());
    stack.stop().await;
}

haven_e2e::on_both_backends! {
    a_timeline_gives_each_reader_the_fields_their_roles_receive,
    people_following_a_feed_receive_the_workflow_only,
    erasure_redacts_the_persons_past_case_events,
}
