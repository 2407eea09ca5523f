//! The audit trail as the owning organisation reads it (the person's access log), on
//! the real stack over REST and direct gRPC, on SQLite and Postgres:
//! - a disclosure read by the receiving organisation names that organisation's user,
//!   and the request id the gateway returned, not the referral service;
//! - a user cannot make the trail name someone else by sending the metadata a service
//!   uses to say whom it acts for;
//! - a request id that is not a short token (a name, spaces, over 64 characters) is
//!   neither stored nor echoed, over REST and over gRPC; a valid one is kept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use tonic::metadata::MetadataValue;
use uuid::Uuid;

use haven_cli::ServiceName;
use haven_e2e::{TestStack, authorized};
use haven_proto::intake::v1::GetPersonRequest;
use haven_proto::intake::v1::intake_service_client::IntakeServiceClient;

/// A sending organisation with a person in an open case, and a registered receiving
/// shelter organisation with a facility.
struct Referral {
    sender: Uuid,
    receiver: Uuid,
    officer: String,
    worker: String,
    coordinator: String,
    person_id: String,
    case_id: String,
    facility_id: String,
}

async fn referral_parties(stack: &TestStack) -> Referral {
    let sender = Uuid::new_v4();
    let receiver = Uuid::new_v4();
    let admin = stack.token_as("directory-admin", &["admin"], receiver);
    let registered = stack
        .post(&admin, "/v1/organizations", json!({"id": receiver, "name": format!("Shelter {receiver}"), "organization_type": "ngo"}))
        .await;
    assert_eq!(registered.status(), 201);
    let coordinator = stack.token_as("farida-coordinator", &["referral_coordinator"], receiver);
    let facility = stack
        .post(&coordinator, "/v1/facilities", json!({
            "name": "Shelter Sumqayıt", "settlement": "Sumqayıt", "service_types": ["shelter"],
            "capacity_total": 5, "accepts": {"genders": ["female"], "families": true}, "languages": ["az"],
            "opening_hours": "24/7", "contact_phone": "+994 18 000 00 00"}))
        .await;
    assert_eq!(facility.status(), 201);
    let facility: Value = facility.json().await.unwrap();
    let officer = stack.token_as("officer", &["admin", "intake_officer"], sender);
    let screening: Value = stack
        .post(&officer, "/v1/screenings", json!({
            "referral_source": "police", "settlement": "Bakı", "language": "az",
            "person": {"given_name": "Leyla", "family_name": "Məmmədova", "birth_year": 1992, "gender": "female"},
            "risk": {"level": "high", "immediate_needs": ["shelter"]}}))
        .await
        .json()
        .await
        .unwrap();
    let screening_id = screening["id"].as_str().unwrap().to_owned();
    let person_id = screening["person_id"].as_str().unwrap().to_owned();
    for purpose in ["assistance", "data_sharing"] {
        let consent = stack
            .post(
                &officer,
                &format!("/v1/screenings/{screening_id}/consents"),
                json!({"purpose": purpose, "given": true, "method": "written"}),
            )
            .await;
        assert!(consent.status().is_success(), "{purpose}");
    }
    let decided: Value = stack
        .post(&officer, &format!("/v1/screenings/{screening_id}/decisions"), json!({"stage": "identified", "deciding_organization_type": "police", "legal_basis": "art. 17"}))
        .await
        .json()
        .await
        .unwrap();
    Referral {
        sender,
        receiver,
        worker: stack.token_as("aysel-worker", &["case_worker"], sender),
        officer,
        coordinator,
        person_id,
        case_id: decided["case_id"].as_str().unwrap().to_owned(),
        facility_id: facility["id"].as_str().unwrap().to_owned(),
    }
}

/// The person's access log, every page, as the owning organisation's supervisor.
async fn access_log(stack: &TestStack, parties: &Referral) -> Vec<Value> {
    let supervisor = stack.token_as("supervisor-1", &["supervisor"], parties.sender);
    let response = stack
        .get(
            &supervisor,
            &format!("/v1/persons/{}/access_log?limit=100", parties.person_id),
        )
        .await;
    assert_eq!(response.status(), 200);
    let log: Value = response.json().await.unwrap();
    log["items"].as_array().unwrap().clone()
}

fn response_request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn a_disclosure_read_names_the_receiving_user_and_the_request(stack: TestStack) {
    let parties = referral_parties(&stack).await;
    let created = stack
        .post(
            &parties.worker,
            "/v1/referrals",
            json!({"case_id": parties.case_id, "facility_id": parties.facility_id,
            "service_type": "shelter", "purpose": "safe accommodation", "urgency": "urgent"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let referral: Value = created.json().await.unwrap();
    let referral_id = referral["id"].as_str().unwrap();

    let disclosed = stack
        .get(
            &parties.coordinator,
            &format!("/v1/referrals/{referral_id}/disclosure"),
        )
        .await;
    assert_eq!(disclosed.status(), 200);
    let request_id = response_request_id(&disclosed);
    let disclosed: Value = disclosed.json().await.unwrap();
    assert_eq!(disclosed["fields"]["given_name"], "Leyla");

    let log = access_log(&stack, &parties).await;
    let reads: Vec<&Value> = log
        .iter()
        .filter(|entry| entry["request_id"] == request_id.as_str())
        .collect();
    assert_eq!(
        reads.len(),
        1,
        "one entry for the disclosure request: {log:?}"
    );
    let read = reads[0];
    assert_eq!(read["action"], "person.read");
    assert_eq!(read["actor"], "farida-coordinator", "{read}");
    assert_eq!(
        read["organization_id"],
        parties.receiver.to_string(),
        "{read}"
    );
    assert!(
        log.iter()
            .all(|entry| entry["actor"] != "service:referral" && entry["request_id"] != ""),
        "no entry hides the reader behind the service or drops the request id: {log:?}"
    );
}

async fn a_user_cannot_name_someone_else_as_the_actor_over_grpc(stack: TestStack) {
    let parties = referral_parties(&stack).await;
    let mut intake = IntakeServiceClient::new(stack.channel(ServiceName::Intake).await);
    let supervisor = stack.token_as("supervisor-1", &["supervisor"], parties.sender);
    let mut request = authorized(
        GetPersonRequest {
            id: parties.person_id.clone(),
        },
        &supervisor,
    );
    let metadata = request.metadata_mut();
    metadata.insert(
        haven_auth::grpc::ON_BEHALF_OF_SUBJECT,
        MetadataValue::from_static("someone-else"),
    );
    metadata.insert(
        haven_auth::grpc::ON_BEHALF_OF_ORGANIZATION,
        MetadataValue::try_from(parties.receiver.to_string()).unwrap(),
    );
    let refused = intake.get_person(request).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    let log = access_log(&stack, &parties).await;
    assert!(
        log.iter().all(|entry| entry["actor"] != "someone-else"
            && entry["organization_id"] != parties.receiver.to_string()),
        "{log:?}"
    );
    // Without the forged metadata the same user reads, and is named.
    let read = intake
        .get_person(authorized(
            GetPersonRequest {
                id: parties.person_id.clone(),
            },
            &supervisor,
        ))
        .await;
    assert!(read.is_ok(), "{read:?}");
    let log = access_log(&stack, &parties).await;
    assert!(
        log.iter().any(|entry| entry["actor"] == "supervisor-1"),
        "{log:?}"
    );
}

/// Request ids a client may not park in the permanent trail.
fn unsafe_request_ids() -> Vec<String> {
    vec![
        "Leyla Mammadova".to_owned(),
        "leyla.mammadova.1992".to_owned(),
        "leyla_mammadova".to_owned(),
        "a".repeat(65),
    ]
}

async fn unsafe_request_ids_are_replaced_over_rest(stack: TestStack) {
    let parties = referral_parties(&stack).await;
    let person = format!("/v1/persons/{}", parties.person_id);
    let mut kept_ids = Vec::new();
    for sent in unsafe_request_ids() {
        let read = stack
            .http
            .get(stack.url(&person))
            .bearer_auth(&parties.officer)
            .header("x-request-id", &sent)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200);
        let returned = response_request_id(&read);
        assert_ne!(returned, sent);
        assert!(Uuid::parse_str(&returned).is_ok(), "{returned}");
        kept_ids.push(returned);

        // Nor echoed in an error.
        let missing = stack
            .http
            .get(stack.url(&format!("/v1/persons/{}", Uuid::new_v4())))
            .bearer_auth(&parties.officer)
            .header("x-request-id", &sent)
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        assert_ne!(response_request_id(&missing), sent);
        let body = missing.text().await.unwrap();
        assert!(!body.contains(&sent), "{body}");
    }
    let valid = "support-ticket-4711";
    let read = stack
        .http
        .get(stack.url(&person))
        .bearer_auth(&parties.officer)
        .header("x-request-id", valid)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(response_request_id(&read), valid);

    let log = access_log(&stack, &parties).await;
    let stored: Vec<&str> = log
        .iter()
        .map(|entry| entry["request_id"].as_str().unwrap())
        .collect();
    for sent in unsafe_request_ids() {
        assert!(!stored.contains(&sent.as_str()), "{sent} was stored");
    }
    for returned in &kept_ids {
        assert!(
            stored.contains(&returned.as_str()),
            "{returned}: {stored:?}"
        );
    }
    assert!(stored.contains(&valid), "{stored:?}");
    assert!(!format!("{log:?}").contains("Mammadova"));
    assert!(!format!("{log:?}").contains("mammadova"));
}

async fn unsafe_request_ids_are_replaced_over_grpc(stack: TestStack) {
    let parties = referral_parties(&stack).await;
    let mut intake = IntakeServiceClient::new(stack.channel(ServiceName::Intake).await);
    let read_with = |request_id: &str| {
        let mut request = authorized(
            GetPersonRequest {
                id: parties.person_id.clone(),
            },
            &parties.officer,
        );
        request.metadata_mut().insert(
            haven_auth::grpc::REQUEST_ID,
            MetadataValue::try_from(request_id).unwrap(),
        );
        request
    };
    for sent in unsafe_request_ids() {
        intake.get_person(read_with(&sent)).await.unwrap();
    }
    intake
        .get_person(read_with("grpc-client-0042"))
        .await
        .unwrap();

    let log = access_log(&stack, &parties).await;
    let reads: Vec<&str> = log
        .iter()
        .filter(|entry| entry["action"] == "person.read" && entry["actor"] == "officer")
        .map(|entry| entry["request_id"].as_str().unwrap())
        .collect();
    let unsafe_ids = unsafe_request_ids();
    for sent in &unsafe_ids {
        assert!(!reads.contains(&sent.as_str()), "{sent} was stored");
    }
    let generated = reads
        .iter()
        .filter(|id| Uuid::parse_str(id).is_ok())
        .count();
    assert!(
        generated >= unsafe_ids.len(),
        "each replaced by a fresh id: {reads:?}"
    );
    assert!(reads.contains(&"grpc-client-0042"), "{reads:?}");
}

haven_e2e::on_both_backends!(
    a_disclosure_read_names_the_receiving_user_and_the_request,
    a_user_cannot_name_someone_else_as_the_actor_over_grpc,
    unsafe_request_ids_are_replaced_over_rest,
    unsafe_request_ids_are_replaced_over_grpc,
);
