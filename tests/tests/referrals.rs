//! The referral network over REST on the real stack: find a shelter within 150 km,
//! refer with consent (refused without), minimal disclosure to the receiver only while
//! the referral is open, a bed held on acceptance and freed on completion, the
//! completed service recorded in the case, consent withdrawal ending access, and 50
//! concurrent acceptances for 10 beds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use haven_e2e::TestStack;

struct Network {
    sender: Uuid,
    receiver: Uuid,
    officer: String,
    worker: String,
    coordinator: String,
    facility: Value,
}

async fn network(stack: &TestStack, beds: u32) -> Network {
    let sender = Uuid::new_v4();
    let receiver = Uuid::new_v4();
    let admin = stack.token_as("directory-admin", &["admin"], receiver);
    let registered = stack
        .post(&admin, "/v1/organizations", json!({"id": receiver, "name": format!("Shelter NGO {receiver}"), "organization_type": "ngo"}))
        .await;
    assert_eq!(registered.status(), 201);
    let coordinator = stack.token_as("farida", &["referral_coordinator"], receiver);
    let facility = stack
        .post(&coordinator, "/v1/facilities", json!({
            "name": "Women's shelter Sumqayıt", "settlement": "Sumqayıt", "service_types": ["shelter", "psychological"],
            "capacity_total": beds, "accepts": {"genders": ["female"], "families": true}, "languages": ["az", "ru"],
            "opening_hours": "24/7", "contact_phone": "+994 18 000 00 00"}))
        .await;
    assert_eq!(facility.status(), 201);
    Network {
        sender,
        receiver,
        officer: stack.token_as("officer", &["admin", "intake_officer"], sender),
        worker: stack.token_as("aysel", &["case_worker"], sender),
        coordinator,
        facility: facility.json().await.unwrap(),
    }
}

/// A screened, identified person with details, and the case intake opened.
async fn case_of_a_person(stack: &TestStack, officer: &str) -> (String, String) {
    let screening: Value = stack
        .post(officer, "/v1/screenings", json!({
            "referral_source": "police", "settlement": "Bakı", "language": "az",
            "person": {"given_name": "Leyla", "family_name": "Məmmədova", "birth_year": 1992, "gender": "female"},
            "exploitation": {"types": ["sexual_exploitation"]},
            "risk": {"level": "high", "immediate_needs": ["shelter"]}}))
        .await
        .json()
        .await
        .unwrap();
    let id = screening["id"].as_str().unwrap().to_owned();
    stack
        .post(
            officer,
            &format!("/v1/screenings/{id}/consents"),
            json!({"purpose": "assistance", "given": true, "method": "written"}),
        )
        .await;
    let decided: Value = stack
        .post(officer, &format!("/v1/screenings/{id}/decisions"), json!({"stage": "identified", "deciding_organization_type": "police", "legal_basis": "art. 17"}))
        .await
        .json()
        .await
        .unwrap();
    (id, decided["case_id"].as_str().unwrap().to_owned())
}

async fn post_if_match(
    stack: &TestStack,
    token: &str,
    path: &str,
    etag: &str,
    body: Value,
) -> reqwest::Response {
    stack
        .http
        .post(stack.url(path))
        .bearer_auth(token)
        .header("if-match", etag)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

async fn a_shelter_is_found_referred_with_consent_and_completed(stack: TestStack) {
    let net = network(&stack, 10).await;
    let (screening, case_id) = case_of_a_person(&stack, &net.officer).await;
    let facility_id = net.facility["id"].as_str().unwrap();

    // Search: the Sumqayıt shelter is ~25 km from Baku, well inside 150 km.
    let found: Value = stack
        .get(
            &net.worker,
            "/v1/facilities/search?service_type=shelter&settlement=Bak%C4%B1&gender=female&age=34",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["radius_km"], 150.0);
    let first = &found["items"][0];
    assert_eq!(first["facility"]["id"], facility_id);
    let distance = first["distance_km"].as_f64().unwrap();
    assert!((15.0..40.0).contains(&distance), "{distance}");
    let for_men: Value = stack
        .get(
            &net.worker,
            "/v1/facilities/search?service_type=shelter&settlement=Bak%C4%B1&gender=male",
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        for_men["items"].as_array().unwrap().is_empty(),
        "a women's shelter is not offered for a man"
    );
    // Intake's gender words are understood: `transgender_or_other` is the directory's
    // `other` (not accepted by this women's shelter), `unknown` filters nothing.
    for (gender, offered) in [("transgender_or_other", false), ("unknown", true)] {
        let found: Value = stack
            .get(
                &net.worker,
                &format!("/v1/facilities/search?service_type=shelter&settlement=Bak%C4%B1&gender={gender}"),
            )
            .await
            .json()
            .await
            .unwrap();
        let items = found["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{found}"));
        assert_eq!(
            items
                .iter()
                .any(|item| item["facility"]["id"] == facility_id),
            offered,
            "{gender}: {found}"
        );
    }
    let refused = stack
        .get(
            &net.worker,
            "/v1/facilities/search?service_type=shelter&settlement=Bak%C4%B1&gender=robot",
        )
        .await;
    assert_eq!(refused.status(), 400);

    // Coverage: with one shelter in Sumqayıt, Baku is covered and Lənkəran (far
    // south) is not, with its distance to the nearest shelter.
    assert_eq!(
        stack
            .get(&net.worker, "/v1/coverage?service_type=shelter")
            .await
            .status(),
        403,
        "planning, not casework"
    );
    let planner = stack.token_as("ministry-planner", &["analyst"], net.sender);
    let coverage: Value = stack
        .get(&planner, "/v1/coverage?service_type=shelter")
        .await
        .json()
        .await
        .unwrap();
    let uncovered = coverage["uncovered"].as_array().unwrap();
    let names: Vec<&str> = uncovered
        .iter()
        .map(|settlement| settlement["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.contains(&"Bakı") && !names.contains(&"Sumqayıt"),
        "{names:?}"
    );
    let lankaran = uncovered
        .iter()
        .find(|settlement| settlement["name"] == "Lənkəran")
        .expect("Lənkəran is outside 150 km");
    assert!(lankaran["nearest_distance_km"].as_f64().unwrap() > 150.0);
    assert_eq!(lankaran["nearest_facility_id"], facility_id);
    assert_eq!(
        coverage["settlements_covered"].as_u64().unwrap() + uncovered.len() as u64,
        coverage["settlements_total"].as_u64().unwrap()
    );

    // Without consent to sharing, no referral.
    let referral_body = json!({"case_id": case_id, "facility_id": facility_id, "service_type": "shelter",
        "purpose": "safe accommodation after exit", "urgency": "urgent"});
    let refused = stack
        .post(&net.worker, "/v1/referrals", referral_body.clone())
        .await;
    assert_eq!(refused.status(), 409);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("consent"),
        "{problem}"
    );
    stack
        .post(
            &net.officer,
            &format!("/v1/screenings/{screening}/consents"),
            json!({"purpose": "data_sharing", "given": true, "method": "written"}),
        )
        .await;
    let created = stack
        .post(&net.worker, "/v1/referrals", referral_body.clone())
        .await;
    assert_eq!(created.status(), 201);
    let referral: Value = created.json().await.unwrap();
    let referral_id = referral["id"].as_str().unwrap().to_owned();
    assert_eq!(referral["status"], "requested");
    assert_eq!(referral["to_organization_id"], net.receiver.to_string());

    // The receiver sees the referral and only the fields a shelter needs.
    let incoming: Value = stack
        .get(&net.coordinator, "/v1/referrals?direction=incoming")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(incoming["items"].as_array().unwrap().len(), 1);
    let disclosure_path = format!("/v1/referrals/{referral_id}/disclosure");
    let disclosed = stack.get(&net.coordinator, &disclosure_path).await;
    assert_eq!(disclosed.status(), 200);
    let disclosed: Value = disclosed.json().await.unwrap();
    assert_eq!(disclosed["fields"]["given_name"], "Leyla");
    assert_eq!(disclosed["fields"]["gender"], "female");
    assert_eq!(disclosed["fields"]["risk_level"], "high");
    assert!(
        disclosed["fields"].get("family_name").is_none(),
        "a shelter does not get the family name"
    );
    assert!(
        disclosed["fields"].get("exploitation_types").is_none(),
        "nor the exploitation"
    );
    assert!(!disclosed.to_string().contains("Məmmədova"));
    // The case itself stays closed to the receiver; the sender has no disclosure.
    assert_eq!(
        stack
            .get(&net.coordinator, &format!("/v1/cases/{case_id}"))
            .await
            .status(),
        403
    );
    let receiver_worker = stack.token_as("nurlan", &["case_worker"], net.receiver);
    assert_eq!(
        stack
            .get(&receiver_worker, &format!("/v1/cases/{case_id}"))
            .await
            .status(),
        404
    );
    assert_eq!(stack.get(&net.worker, &disclosure_path).await.status(), 404);

    // Acceptance holds a bed; completion frees it and records the service in the case.
    let current = stack
        .get(&net.coordinator, &format!("/v1/referrals/{referral_id}"))
        .await;
    let accepted = post_if_match(
        &stack,
        &net.coordinator,
        &format!("/v1/referrals/{referral_id}/accept"),
        &etag(&current),
        json!({}),
    )
    .await;
    assert_eq!(accepted.status(), 200);
    let tag = etag(&accepted);
    let accepted: Value = accepted.json().await.unwrap();
    assert_eq!(accepted["capacity_reserved"], true);
    let facility: Value = stack
        .get(&net.worker, &format!("/v1/facilities/{facility_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(facility["capacity_free"], 9);
    let no_outcome = post_if_match(
        &stack,
        &net.coordinator,
        &format!("/v1/referrals/{referral_id}/complete"),
        &tag,
        json!({"outcome": ""}),
    )
    .await;
    assert_eq!(no_outcome.status(), 400);
    let completed = post_if_match(
        &stack,
        &net.coordinator,
        &format!("/v1/referrals/{referral_id}/complete"),
        &tag,
        json!({"outcome": "stayed three weeks, moved to her sister"}),
    )
    .await;
    assert_eq!(completed.status(), 200);
    let facility: Value = stack
        .get(&net.worker, &format!("/v1/facilities/{facility_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(facility["capacity_free"], 10);
    assert_eq!(
        stack.get(&net.coordinator, &disclosure_path).await.status(),
        403,
        "access ends with the referral"
    );
    let mut delivered = Value::Null;
    for _ in 0..100 {
        let services: Value = stack
            .get(&net.worker, &format!("/v1/cases/{case_id}/services"))
            .await
            .json()
            .await
            .unwrap();
        if let Some(service) = services["items"].as_array().unwrap().first() {
            delivered = service.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered["type"], "shelter", "{delivered}");
    assert_eq!(delivered["status"], "delivered");
    assert_eq!(
        delivered["provider_organization_id"],
        net.receiver.to_string()
    );

    // A second referral: withdrawing consent ends the receiver's access at once, and
    // the referral is revoked.
    let second: Value = stack
        .post(&net.worker, "/v1/referrals", referral_body)
        .await
        .json()
        .await
        .unwrap();
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert_eq!(
        stack
            .get(
                &net.coordinator,
                &format!("/v1/referrals/{second_id}/disclosure")
            )
            .await
            .status(),
        200
    );
    stack
        .post(
            &net.officer,
            &format!("/v1/screenings/{screening}/consents"),
            json!({"purpose": "data_sharing", "given": false, "method": "verbal"}),
        )
        .await;
    assert_eq!(
        stack
            .get(
                &net.coordinator,
                &format!("/v1/referrals/{second_id}/disclosure")
            )
            .await
            .status(),
        403
    );
    let mut status = Value::Null;
    for _ in 0..100 {
        let referral: Value = stack
            .get(&net.worker, &format!("/v1/referrals/{second_id}"))
            .await
            .json()
            .await
            .unwrap();
        status = referral["status"].clone();
        if status == "revoked" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "revoked");
}

async fn fifty_acceptances_at_once_fill_ten_beds_exactly(stack: TestStack) {
    let net = network(&stack, 10).await;
    let (screening, case_id) = case_of_a_person(&stack, &net.officer).await;
    stack
        .post(
            &net.officer,
            &format!("/v1/screenings/{screening}/consents"),
            json!({"purpose": "data_sharing", "given": true, "method": "written"}),
        )
        .await;
    let mut referrals = Vec::new();
    for _ in 0..50 {
        let created = stack
            .post(
                &net.worker,
                "/v1/referrals",
                json!({"case_id": case_id, "facility_id": net.facility["id"],
                "service_type": "shelter", "purpose": "a bed", "urgency": "emergency"}),
            )
            .await;
        assert_eq!(created.status(), 201);
        let tag = etag(&created);
        let body: Value = created.json().await.unwrap();
        referrals.push((body["id"].as_str().unwrap().to_owned(), tag));
    }
    let attempts: Vec<_> = referrals
        .into_iter()
        .map(|(id, tag)| {
            let http = stack.http.clone();
            let url = stack.url(&format!("/v1/referrals/{id}/accept"));
            let token = net.coordinator.clone();
            tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(token)
                    .header("if-match", tag)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for attempt in attempts {
        *statuses.entry(attempt.await.unwrap()).or_default() += 1;
    }
    assert_eq!(
        statuses,
        [(200, 10), (409, 40)].into_iter().collect(),
        "exactly ten beds"
    );
    let facility: Value = stack
        .get(
            &net.worker,
            &format!("/v1/facilities/{}", net.facility["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(facility["capacity_free"], 0);
    let _ = net.sender;
}

/// Erasing the person in intake leaves the texts of their referrals unreadable for
/// both organisations (the referral service follows intake's feed and destroys the
/// referrals' keys); the referral itself, its status and its place remain.
async fn erasing_the_person_empties_their_referral_texts(stack: TestStack) {
    let net = network(&stack, 2).await;
    let (screening, case_id) = case_of_a_person(&stack, &net.officer).await;
    stack
        .post(
            &net.officer,
            &format!("/v1/screenings/{screening}/consents"),
            json!({"purpose": "data_sharing", "given": true, "method": "written"}),
        )
        .await;
    let created = stack
        .post(
            &net.worker,
            "/v1/referrals",
            json!({"case_id": case_id, "facility_id": net.facility["id"], "service_type": "shelter",
                "purpose": "away from the man who recruited her", "urgency": "urgent"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let tag = etag(&created);
    let referral: Value = created.json().await.unwrap();
    let id = referral["id"].as_str().unwrap().to_owned();
    let declined = post_if_match(
        &stack,
        &net.coordinator,
        &format!("/v1/referrals/{id}/decline"),
        &tag,
        json!({"reason": "no room for her two children"}),
    )
    .await;
    assert_eq!(declined.status(), 200);
    let read = |token: String| {
        let stack = &stack;
        let path = format!("/v1/referrals/{id}");
        async move {
            let response = stack.get(&token, &path).await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    for token in [net.worker.clone(), net.coordinator.clone()] {
        let before = read(token).await;
        assert_eq!(before["purpose"], "away from the man who recruited her");
        assert_eq!(before["status_reason"], "no room for her two children");
    }

    let screening: Value = stack
        .get(&net.officer, &format!("/v1/screenings/{screening}"))
        .await
        .json()
        .await
        .unwrap();
    let person_id = screening["person_id"].as_str().unwrap();
    let erased = stack
        .http
        .delete(stack.url(&format!("/v1/persons/{person_id}")))
        .bearer_auth(&net.officer)
        .json(&json!({"reason": "request of the data subject"}))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 200);
    let mut after = read(net.worker.clone()).await;
    for _ in 0..100 {
        if after["purpose"].as_str().unwrap_or_default().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = read(net.worker.clone()).await;
    }
    for after in [after, read(net.coordinator.clone()).await] {
        assert_eq!(after["purpose"].as_str().unwrap_or_default(), "", "{after}");
        assert_eq!(
            after["status_reason"].as_str().unwrap_or_default(),
            "",
            "{after}"
        );
        assert_eq!(after["status"], "declined");
    }
}

/// A ministry system creating a facility over gRPC without saying `active` gets an
/// active facility (proto3 would otherwise read the missing field as false), and can
/// still create one inactive on purpose.
async fn a_facility_created_over_grpc_is_active_unless_told_otherwise(stack: TestStack) {
    use haven_proto::referral::v1 as pb;
    use haven_proto::referral::v1::referral_service_client::ReferralServiceClient;
    let organization = Uuid::new_v4();
    let admin = stack.token_as("directory-admin", &["admin"], organization);
    let registered = stack
        .post(
            &admin,
            "/v1/organizations",
            json!({"id": organization, "name": "Gəncə NGO", "organization_type": "ngo"}),
        )
        .await;
    assert_eq!(registered.status(), 201);
    let coordinator = stack.token_as("ministry-system", &["referral_coordinator"], organization);
    let mut client =
        ReferralServiceClient::new(stack.channel(haven_cli::ServiceName::Referral).await);
    let details = |name: &str, active: Option<bool>| pb::FacilityDetails {
        name: name.to_owned(),
        settlement: "Gəncə".to_owned(),
        service_types: vec!["shelter".to_owned()],
        capacity_total: 5,
        active,
        ..Default::default()
    };
    let create = |details: pb::FacilityDetails| {
        haven_e2e::authorized(
            pb::CreateFacilityRequest {
                organization_id: String::new(),
                details: Some(details),
                ..Default::default()
            },
            &coordinator,
        )
    };
    let unsaid = client
        .create_facility(create(details("Gəncə shelter", None)))
        .await
        .unwrap()
        .into_inner()
        .facility
        .unwrap();
    assert!(unsaid.active, "active unless told otherwise: {unsaid:?}");
    let closed = client
        .create_facility(create(details("Closed for repairs", Some(false))))
        .await
        .unwrap()
        .into_inner()
        .facility
        .unwrap();
    assert!(!closed.active);
    // Over REST, the one without `active` is offered in a search and the other is not.
    let found: Value = stack
        .get(
            &coordinator,
            "/v1/facilities/search?service_type=shelter&settlement=G%C9%99nc%C9%99",
        )
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = found["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{found}"))
        .iter()
        .filter_map(|item| item["facility"]["name"].as_str().or(item["name"].as_str()))
        .collect();
    assert!(names.contains(&"Gəncə shelter"), "{found}");
    assert!(!names.contains(&"Closed for repairs"), "{found}");
}

haven_e2e::on_both_backends! {
    erasing_the_person_empties_their_referral_texts,
    a_shelter_is_found_referred_with_consent_and_completed,
    fifty_acceptances_at_once_fill_ten_beds_exactly,
    a_facility_created_over_grpc_is_active_unless_told_otherwise,
}
