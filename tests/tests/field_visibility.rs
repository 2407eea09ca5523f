//! What each role receives, field by field, on the real stack.
//!
//! A screening, its person and a case are filled with a canary in every personal and
//! narrative field a caller can type. Then every role reads them over gRPC and over
//! REST. Over gRPC each response is walked field by field against the classification
//! table: every field carried must be of a class the role may receive
//! (`haven_auth::fields`), and every field must be classed at all. Over REST, the
//! canaries reach the case team and never an auditor or an analyst.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use prost::Message;
use prost_reflect::{DynamicMessage, Kind, Value as Field};
use serde_json::{Value, json};
use uuid::Uuid;

use haven_auth::Role;
use haven_auth::fields::any_may_receive;
use haven_cli::ServiceName;
use haven_e2e::{TestStack, authorized, on_both_backends};
use haven_proto::case::v1 as case_pb;
use haven_proto::case::v1::case_service_client::CaseServiceClient;
use haven_proto::intake::v1 as intake_pb;
use haven_proto::intake::v1::intake_service_client::IntakeServiceClient;
use haven_server::redaction::FieldClassifier;

/// Every canary typed into the records, so a response can be searched for all.
const CANARIES: &[&str] = &[
    "CanaryGiven",
    "CanaryFamily",
    "CanaryGuardian",
    "+994 50 000 11 22",
    "CanaryReasons",
    "CanaryIndicatorNote",
    "CanaryGoal",
    "CanaryAction",
    "CanaryNote",
];

struct Seeded {
    organization: Uuid,
    screening: String,
    person: String,
    case: String,
}

async fn seed(stack: &TestStack) -> Seeded {
    let organization = Uuid::new_v4();
    let staff = stack.token(&["intake_officer", "case_worker"], organization);
    let created = stack
        .post(
            &staff,
            "/v1/screenings",
            json!({
                "referral_source": "hotline", "settlement": "Ganja", "language": "az",
                "is_minor": true,
                "guardian": {"name": "CanaryGuardian", "relationship": "parent", "contact": "+994 50 000 11 22"},
                "person": {"given_name": "CanaryGiven", "family_name": "CanaryFamily", "birth_year": 2010, "gender": "female"},
                "indicators": {"indicator_set_version": 1, "answers": [
                    {"code": "threats", "answer": "yes", "note": "CanaryIndicatorNote"}]},
            }),
        )
        .await;
    let status = created.status();
    let screening: Value = created.json().await.unwrap();
    assert_eq!(status, 201, "{screening}");
    let id = screening["id"].as_str().unwrap().to_owned();
    let person = screening["person_id"].as_str().unwrap().to_owned();
    let consent =
        json!({"purpose": "assistance", "given": true, "method": "written", "by_guardian": true});
    let consented = stack
        .post(&staff, &format!("/v1/screenings/{id}/consents"), consent)
        .await;
    assert_eq!(consented.status(), 201);
    let decision = json!({"stage": "identified", "deciding_organization_type": "police",
        "legal_basis": "Law on Combating Trafficking in Persons, art. 17", "reasons": "CanaryReasons"});
    let decided: Value = stack
        .post(&staff, &format!("/v1/screenings/{id}/decisions"), decision)
        .await
        .json()
        .await
        .unwrap();
    let case = decided["case_id"].as_str().expect("case opened").to_owned();

    let case_path = format!("/v1/cases/{case}");
    let mut etag = stack
        .get(&staff, &case_path)
        .await
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for stage in ["assessment", "plan"] {
        let moved = stack
            .http
            .post(stack.url(&format!("{case_path}/stage")))
            .bearer_auth(&staff)
            .header("if-match", &etag)
            .json(&json!({"stage": stage}))
            .send()
            .await
            .unwrap();
        assert_eq!(moved.status(), 200, "stage {stage}");
        etag = moved.headers()["etag"].to_str().unwrap().to_owned();
    }
    let assessed = stack
        .post(
            &staff,
            &format!("{case_path}/assessments"),
            json!({"kind": "individual", "scores": [{"domain": "safety", "score": 2}]}),
        )
        .await;
    assert_eq!(assessed.status(), 201);
    let due_on = (time::OffsetDateTime::now_utc().date() + time::Duration::days(30)).to_string();
    let planned = stack
        .post(
            &staff,
            &format!("{case_path}/plans"),
            json!({"goals": [{"domain": "housing", "goal": "CanaryGoal",
                "actions": [{"description": "CanaryAction", "responsible_organization_id": organization, "due_on": due_on}]}]}),
        )
        .await;
    assert_eq!(planned.status(), 201, "{}", planned.text().await.unwrap());
    let noted = stack
        .post(
            &staff,
            &format!("{case_path}/notes"),
            json!({"body": "CanaryNote", "visibility": "case_team"}),
        )
        .await;
    assert_eq!(noted.status(), 201, "{}", noted.text().await.unwrap());
    Seeded {
        organization,
        screening: id,
        person,
        case,
    }
}

/// Walks `response` and fails on any field `roles` may not receive; returns how many
/// fields it carried.
fn assert_only_receivable<M: Message>(method: &str, response: &M, roles: &[Role]) -> usize {
    let classifier = FieldClassifier::global();
    let descriptor = classifier
        .response_of(method)
        .unwrap_or_else(|| panic!("{method} is not a Haven method"));
    let message = DynamicMessage::decode(descriptor, response.encode_to_vec().as_slice()).unwrap();
    walk(classifier, &message, roles, method)
}

fn walk(classifier: &FieldClassifier, message: &DynamicMessage, roles: &[Role], at: &str) -> usize {
    let mut carried = 0;
    for (field, value) in message.fields() {
        let class = classifier
            .class_of(&field)
            .unwrap_or_else(|| panic!("{at}: {} is not classed", field.full_name()));
        assert!(
            any_may_receive(roles, class),
            "{at}: {roles:?} received {} ({class:?})",
            field.full_name()
        );
        carried += 1;
        if matches!(field.kind(), Kind::Message(inner) if inner.full_name().starts_with("haven.")) {
            let inner: Vec<&DynamicMessage> = match value {
                Field::Message(inner) => vec![inner],
                Field::List(items) => items.iter().filter_map(Field::as_message).collect(),
                _ => Vec::new(),
            };
            for inner in inner {
                carried += walk(classifier, inner, roles, at);
            }
        }
    }
    carried
}

/// Reads the seeded records over gRPC as `roles`; returns the number of fields
/// received in all.
async fn read_over_grpc(stack: &TestStack, seeded: &Seeded, roles: &[Role]) -> usize {
    let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
    let token = stack.token(&names, seeded.organization);
    let mut intake = IntakeServiceClient::new(stack.channel(ServiceName::Intake).await);
    let mut case = CaseServiceClient::new(stack.channel(ServiceName::Case).await);
    let mut carried = 0;

    macro_rules! read {
        ($client:expr, $method:ident, $path:literal, $request:expr) => {
            if let Ok(response) = $client.$method(authorized($request, &token)).await {
                carried += assert_only_receivable($path, response.get_ref(), roles);
            }
        };
    }
    read!(
        intake,
        get_screening,
        "/haven.intake.v1.IntakeService/GetScreening",
        intake_pb::GetScreeningRequest {
            id: seeded.screening.clone()
        }
    );
    read!(
        intake,
        list_screenings,
        "/haven.intake.v1.IntakeService/ListScreenings",
        intake_pb::ListScreeningsRequest::default()
    );
    read!(
        intake,
        get_person,
        "/haven.intake.v1.IntakeService/GetPerson",
        intake_pb::GetPersonRequest {
            id: seeded.person.clone()
        }
    );
    read!(
        case,
        get_case,
        "/haven.case.v1.CaseService/GetCase",
        case_pb::GetCaseRequest {
            id: seeded.case.clone()
        }
    );
    read!(
        case,
        list_plans,
        "/haven.case.v1.CaseService/ListPlans",
        case_pb::ListPlansRequest {
            case_id: seeded.case.clone()
        }
    );
    read!(
        case,
        list_assessments,
        "/haven.case.v1.CaseService/ListAssessments",
        case_pb::ListAssessmentsRequest {
            case_id: seeded.case.clone()
        }
    );
    read!(
        case,
        list_notes,
        "/haven.case.v1.CaseService/ListNotes",
        case_pb::ListNotesRequest {
            case_id: seeded.case.clone()
        }
    );
    read!(
        case,
        get_timeline,
        "/haven.case.v1.CaseService/GetTimeline",
        case_pb::GetTimelineRequest {
            case_id: seeded.case.clone()
        }
    );
    carried
}

/// The bodies of the REST reads of the seeded records, as `token` sees them.
async fn read_over_rest(stack: &TestStack, seeded: &Seeded, token: &str) -> String {
    let mut bodies = String::new();
    for path in [
        format!("/v1/screenings/{}", seeded.screening),
        "/v1/screenings".to_owned(),
        format!("/v1/persons/{}", seeded.person),
        format!("/v1/cases/{}", seeded.case),
        format!("/v1/cases/{}/plans", seeded.case),
        format!("/v1/cases/{}/notes", seeded.case),
        format!("/v1/cases/{}/timeline", seeded.case),
    ] {
        let response = stack.get(token, &path).await;
        bodies.push_str(&response.text().await.unwrap());
    }
    bodies
}

async fn every_role_receives_only_the_fields_its_classes_allow(stack: TestStack) {
    let seeded = seed(&stack).await;
    for role in Role::ALL.into_iter().filter(|role| *role != Role::Service) {
        read_over_grpc(&stack, &seeded, &[role]).await;
    }
    // The case team receives the canaries, so the walk above had something to refuse.
    let team = [Role::IntakeOfficer, Role::CaseWorker, Role::Supervisor];
    assert!(read_over_grpc(&stack, &seeded, &team).await > 50);
    let names: Vec<&str> = team.iter().map(|role| role.as_str()).collect();
    let team_view =
        read_over_rest(&stack, &seeded, &stack.token(&names, seeded.organization)).await;
    for canary in CANARIES {
        assert!(team_view.contains(canary), "the case team reads {canary}");
    }
    stack.stop().await;
}

async fn auditors_and_analysts_read_no_personal_data_or_narrative(stack: TestStack) {
    let seeded = seed(&stack).await;
    for role in ["auditor", "analyst"] {
        let token = stack.token(&[role], seeded.organization);
        let view = read_over_rest(&stack, &seeded, &token).await;
        for canary in CANARIES {
            assert!(!view.contains(canary), "{role} read {canary}: {view}");
        }
    }
    // The auditor still reads the records themselves: ids, codes and states.
    let auditor = stack.token(&["auditor"], seeded.organization);
    let response = stack
        .get(&auditor, &format!("/v1/screenings/{}", seeded.screening))
        .await;
    assert_eq!(response.status(), 200);
    let screening: Value = response.json().await.unwrap();
    assert_eq!(screening["id"], seeded.screening.as_str());
    assert_eq!(screening["stage"], "identified");
    assert!(screening["guardian"].is_null(), "{screening}");
    let plans: Value = stack
        .get(&auditor, &format!("/v1/cases/{}/plans", seeded.case))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plans["items"][0]["status"], "requested", "{plans}");
    stack.stop().await;
}

on_both_backends!(
    every_role_receives_only_the_fields_its_classes_allow,
    auditors_and_analysts_read_no_personal_data_or_narrative,
);
