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
    "CanaryPurpose",
];

struct Seeded {
    organization: Uuid,
    screening: String,
    person: String,
    case: String,
    /// A referral of the case to a partner's facility.
    referral: String,
    facility: String,
    partner: String,
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
    for consent in [
        json!({"purpose": "assistance", "given": true, "method": "written", "by_guardian": true}),
        json!({"purpose": "data_sharing", "given": true, "method": "written", "by_guardian": true,
               "organization_types": ["ngo"]}),
    ] {
        let consented = stack
            .post(&staff, &format!("/v1/screenings/{id}/consents"), consent)
            .await;
        assert_eq!(consented.status(), 201);
    }
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

    let partner = Uuid::new_v4();
    let partner_admin = stack.token(&["admin"], partner);
    let registered = stack
        .post(
            &partner_admin,
            "/v1/organizations",
            json!({"id": partner, "name": "Partner NGO", "organization_type": "ngo"}),
        )
        .await;
    assert_eq!(registered.status(), 201);
    let facility: Value = stack
        .post(
            &stack.token(&["referral_coordinator"], partner),
            "/v1/facilities",
            json!({
            "name": "Partner shelter", "settlement": "Sumqayıt", "service_types": ["shelter"],
            "capacity_total": 5, "accepts": {"genders": ["female"]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let facility = facility["id"].as_str().unwrap().to_owned();
    let referred = stack
        .post(
            &staff,
            "/v1/referrals",
            json!({"case_id": case, "facility_id": facility,
            "service_type": "shelter", "purpose": "CanaryPurpose", "urgency": "urgent"}),
        )
        .await;
    let referral: Value = referred.json().await.unwrap();
    let referral = referral["id"]
        .as_str()
        .expect("referral created")
        .to_owned();
    Seeded {
        organization,
        screening: id,
        person,
        case,
        referral,
        facility,
        partner: partner.to_string(),
    }
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

/// Passes encoded messages through untouched, so any method can be called by name.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf as _;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Reads the seeded records over gRPC as `roles`, through every unary read method of
/// every service (found in the descriptors: `Get*`, `List*`, `Find*`, `Search*`),
/// with the request's id fields filled from the seeded records. Returns the number
/// of fields received in all and how many calls answered.
async fn read_over_grpc(stack: &TestStack, seeded: &Seeded, roles: &[Role]) -> (usize, usize) {
    let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
    let token = stack.token(&names, seeded.organization);
    let ids = [
        seeded.screening.as_str(),
        seeded.case.as_str(),
        seeded.person.as_str(),
        seeded.referral.as_str(),
        seeded.facility.as_str(),
        seeded.partner.as_str(),
    ];
    let mut carried = 0;
    let mut answered = 0;
    for method in FieldClassifier::global().methods() {
        let reads = ["Get", "List", "Find", "Search"]
            .iter()
            .any(|verb| method.name().starts_with(verb));
        if !reads || method.is_server_streaming() {
            continue;
        }
        let service = match method.parent_service().package_name() {
            "haven.intake.v1" => ServiceName::Intake,
            "haven.case.v1" => ServiceName::Case,
            "haven.referral.v1" => ServiceName::Referral,
            "haven.reporting.v1" => ServiceName::Reporting,
            _ => continue,
        };
        let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
        let id_fields: Vec<_> = method
            .input()
            .fields()
            .filter(|field| field.name() == "id" || field.name().ends_with("_id"))
            .collect();
        // Each id field is tried with each seeded id: the right one answers.
        let candidates: Vec<Option<&str>> = if id_fields.is_empty() {
            vec![None]
        } else {
            ids.iter().copied().map(Some).collect()
        };
        for id in candidates {
            let mut request = DynamicMessage::new(method.input());
            for field in &id_fields {
                request.set_field(
                    field,
                    prost_reflect::Value::String(id.unwrap_or_default().to_owned()),
                );
            }
            let mut grpc = tonic::client::Grpc::new(stack.channel(service).await);
            grpc.ready().await.unwrap();
            let response = grpc
                .unary(
                    authorized(request.encode_to_vec(), &token),
                    path.parse().unwrap(),
                    RawCodec,
                )
                .await;
            if let Ok(response) = response {
                let message =
                    DynamicMessage::decode(method.output(), response.get_ref().as_slice()).unwrap();
                carried += walk(FieldClassifier::global(), &message, roles, &path);
                answered += 1;
            }
        }
    }
    (carried, answered)
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
        format!("/v1/referrals/{}", seeded.referral),
        "/v1/referrals".to_owned(),
    ] {
        let response = stack.get(token, &path).await;
        bodies.push_str(&response.text().await.unwrap());
    }
    bodies
}

async fn every_role_receives_only_the_fields_its_classes_allow(stack: TestStack) {
    let seeded = seed(&stack).await;
    for role in Role::ALL.into_iter().filter(|role| *role != Role::Service) {
        let (_, answered) = read_over_grpc(&stack, &seeded, &[role]).await;
        assert!(answered > 0, "{role:?} read nothing at all");
    }
    // The case team receives the canaries, so the walk above had something to refuse.
    let team = [
        Role::IntakeOfficer,
        Role::CaseWorker,
        Role::Supervisor,
        Role::ReferralCoordinator,
    ];
    let (carried, answered) = read_over_grpc(&stack, &seeded, &team).await;
    assert!(
        answered >= 15 && carried > 100,
        "{answered} calls, {carried} fields"
    );
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
