//! The authorization matrix on the real gateway and services: every route × every
//! role × the owning and a foreign organisation. Expectations come from the policy
//! table and the gateway's route table — nothing is copied by hand: allowed → success,
//! denied → 403, another organisation's record → 404 (no existence oracle), another
//! organisation's list → nothing of the owner's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use uuid::Uuid;

use haven_auth::{Role, policy};
use haven_e2e::TestStack;
use haven_gateway::policy::{ROUTE_POLICY, RouteRule};

struct Fixture {
    person: String,
    twin: String,
    clock: String,
    screening: String,
    case: String,
    case_to_seal: String,
    organization: String,
}

/// An identified, consenting screening and the case intake opened for it.
async fn screening_with_case(stack: &TestStack, admin: &str) -> (String, String) {
    let person = json!({"given_name": "Aynur", "family_name": "Məmmədova", "birth_year": 1994});
    let screening: Value = stack
        .post(
            admin,
            "/v1/screenings",
            json!({"referral_source": "hotline", "person": person}),
        )
        .await
        .json()
        .await
        .unwrap();
    let screening = screening["id"].as_str().unwrap().to_owned();
    let consent = json!({"purpose": "assistance", "given": true, "method": "written"});
    stack
        .post(
            admin,
            &format!("/v1/screenings/{screening}/consents"),
            consent,
        )
        .await;
    let decision = json!({"stage": "identified", "deciding_organization_type": "police", "legal_basis": "art. 17"});
    let decided: Value = stack
        .post(
            admin,
            &format!("/v1/screenings/{screening}/decisions"),
            decision,
        )
        .await
        .json()
        .await
        .unwrap();
    let case = decided["case_id"].as_str().unwrap().to_owned();
    assert!(decided["person_id"].is_string());
    (screening, case)
}

async fn fixture(stack: &TestStack, owner: Uuid) -> Fixture {
    let admin = stack.token(&["admin", "intake_officer"], owner);
    let (screening, case) = screening_with_case(stack, &admin).await;
    let person: Value = stack
        .get(&admin, &format!("/v1/screenings/{screening}"))
        .await
        .json()
        .await
        .unwrap();
    let person = person["person_id"].as_str().unwrap().to_owned();
    // Sealing hides a case from most roles, so the seal route gets a case of its own.
    let (twin_screening, case_to_seal) = screening_with_case(stack, &admin).await;
    let twin: Value = stack
        .get(&admin, &format!("/v1/screenings/{twin_screening}"))
        .await
        .json()
        .await
        .unwrap();
    let twin = twin["person_id"].as_str().unwrap().to_owned();
    // A presumed-victim decision starts the police-referral clock.
    let presumed = json!({"stage": "presumed_victim", "deciding_organization_type": "ngo", "legal_basis": "art. 17"});
    stack
        .post(
            &admin,
            &format!("/v1/screenings/{twin_screening}/decisions"),
            presumed,
        )
        .await;
    let clocks: Value = stack.get(&admin, "/v1/clocks").await.json().await.unwrap();
    let clock = clocks["items"][0]["id"]
        .as_str()
        .expect("a clock")
        .to_owned();
    let organization: Value = stack
        .post(
            &admin,
            "/v1/organizations",
            json!({"name": "Matrix shelter", "organization_type": "ngo"}),
        )
        .await
        .json()
        .await
        .unwrap();
    Fixture {
        person,
        twin,
        clock,
        screening,
        case,
        case_to_seal,
        organization: organization["id"].as_str().unwrap().to_owned(),
    }
}

/// The concrete request for a route, and whether its record belongs to one
/// organisation (so a foreign caller must get 404).
fn request(rule: &RouteRule, fixture: &Fixture) -> (String, Option<Value>, bool) {
    let (id, scoped) = if rule.path == "/v1/cases/{id}/seal" {
        (fixture.case_to_seal.as_str(), true)
    } else if rule.path.starts_with("/v1/clocks/") {
        (fixture.clock.as_str(), true)
    } else if rule.path.starts_with("/v1/indicator_sets/") {
        ("1", false)
    } else if rule.path.starts_with("/v1/persons/") {
        (fixture.person.as_str(), true)
    } else if rule.path.starts_with("/v1/screenings/") {
        (fixture.screening.as_str(), true)
    } else if rule.path.starts_with("/v1/cases/") {
        (fixture.case.as_str(), true)
    } else {
        (fixture.organization.as_str(), false)
    };
    let path = rule.path.replace("{id}", id).replace("{version}", id);
    let body = match (rule.method, rule.path) {
        ("POST", "/v1/screenings") => Some(json!({"referral_source": "police"})),
        ("POST", "/v1/screenings/{id}/consents") => {
            Some(json!({"purpose": "reporting", "given": true, "method": "verbal"}))
        }
        ("POST", "/v1/screenings/{id}/decisions") => Some(
            json!({"stage": "identified", "deciding_organization_type": "ngo", "legal_basis": "art. 17"}),
        ),
        ("POST", "/v1/cases/{id}/seal") => Some(json!({"legal_basis": "court order 12/2026"})),
        ("POST", "/v1/organizations") => {
            Some(json!({"name": format!("Org {}", Uuid::new_v4()), "organization_type": "ngo"}))
        }
        ("DELETE", "/v1/persons/{id}") => Some(json!({"reason": "request of the data subject"})),
        ("PATCH", "/v1/screenings/{id}") => Some(json!({"risk": {"level": "medium"}})),
        // The target stage is filled in from the case's current stage at request time.
        ("POST", "/v1/cases/{id}/stage") => Some(json!({})),
        ("POST", "/v1/cases/{id}/assessments") => {
            Some(json!({"kind": "individual", "scores": [{"domain": "safety", "score": 3}]}))
        }
        ("POST", "/v1/screenings/{id}/matches/confirm") => Some(json!({"person_id": fixture.twin})),
        ("POST", "/v1/clocks/{id}/complete") => Some(json!({})),
        ("POST", "/v1/indicator_sets") => Some(json!({"name": "Matrix set", "groups": [
            {"exploitation_type": "general", "indicators": [{"code": "threats", "label": "Threatened"}]}]})),
        ("POST" | "DELETE" | "PATCH", other) => {
            panic!("the matrix needs a request body for {other}")
        }
        _ => None,
    };
    (path, body, scoped && rule.path.contains("{id}"))
}

async fn every_route_every_role_two_organizations(stack: TestStack) {
    let owner = Uuid::new_v4();
    let stranger = Uuid::new_v4();
    let fixture = fixture(&stack, owner).await;
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();

    for rule in ROUTE_POLICY {
        for role in Role::ALL.into_iter().filter(|role| *role != Role::Service) {
            for organization in [owner, stranger] {
                let token = stack.token(&[role.as_str()], organization);
                let (path, body, scoped) = request(rule, &fixture);
                let response = match (rule.method, body) {
                    ("DELETE", Some(body)) => stack
                        .http
                        .delete(stack.url(&path))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .unwrap(),
                    ("POST", Some(_)) if rule.path == "/v1/cases/{id}/stage" => {
                        // The matrix tests who may move a case, not the workflow: move it
                        // one allowed step from wherever it is, at its current version.
                        let owner_admin = stack.token(&["admin"], owner);
                        let case_path = path.trim_end_matches("/stage");
                        let current = stack.get(&owner_admin, case_path).await;
                        let etag = current.headers()["etag"].to_str().unwrap().to_owned();
                        let current: Value = current.json().await.unwrap();
                        let next = match current["stage"].as_str().unwrap() {
                            "new" => "assessment",
                            "assessment" => "plan",
                            "plan" => "services",
                            "services" => "monitoring",
                            _ => "services",
                        };
                        stack
                            .http
                            .post(stack.url(&path))
                            .bearer_auth(&token)
                            .header("if-match", etag)
                            .json(&json!({"stage": next}))
                            .send()
                            .await
                            .unwrap()
                    }
                    ("PATCH", Some(body)) => {
                        // Always the current version: the matrix tests who may, not races.
                        let owner_admin = stack.token(&["admin"], owner);
                        let current = stack.get(&owner_admin, &path).await;
                        let etag = current.headers()["etag"].to_str().unwrap().to_owned();
                        stack
                            .http
                            .patch(stack.url(&path))
                            .bearer_auth(&token)
                            .header("if-match", etag)
                            .json(&body)
                            .send()
                            .await
                            .unwrap()
                    }
                    (_, Some(body)) => stack.post(&token, &path, body).await,
                    (_, None) => stack.get(&token, &path).await,
                };
                let status = response.status().as_u16();
                let what = format!(
                    "{} {} as {} of the {} organisation",
                    rule.method,
                    rule.path,
                    role.as_str(),
                    if organization == owner {
                        "owning"
                    } else {
                        "foreign"
                    }
                );
                let (expected, outcome) = if !policy::allows(role, rule.action) {
                    (vec![403], "denied")
                } else if scoped && organization == stranger {
                    (vec![404], "hidden")
                } else {
                    (vec![200, 201], "allowed")
                };
                assert!(
                    expected.contains(&status),
                    "{what}: expected {expected:?}, got {status}"
                );
                if status >= 400 {
                    assert_eq!(
                        response.headers()["content-type"],
                        "application/problem+json",
                        "{what}"
                    );
                }
                if outcome == "allowed" && rule.method == "GET" && !rule.path.contains("{id}") {
                    let text = response.text().await.unwrap();
                    let leaked = organization == stranger
                        && (text.contains(&fixture.screening) || text.contains(&fixture.case));
                    assert!(
                        !leaked,
                        "{what}: a foreign organisation's list shows the owner's records"
                    );
                }
                *outcomes.entry(outcome).or_default() += 1;
            }
        }
    }
    // The matrix exercises every kind of outcome, so it cannot pass vacuously.
    for outcome in ["allowed", "denied", "hidden"] {
        assert!(
            outcomes.get(outcome).copied().unwrap_or(0) > 0,
            "no {outcome} case in {outcomes:?}"
        );
    }
    stack.stop().await;
}

haven_e2e::on_both_backends! {
    every_route_every_role_two_organizations,
}
