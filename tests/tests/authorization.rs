//! The authorization matrix on the real gateway and services: every route × every
//! role × the owning and a foreign organisation. Expectations come from the policy
//! table and the gateway's route table — nothing is copied by hand: allowed → success,
//! denied → 403, another organisation's record → 404 (no existence oracle), another
//! organisation's list → nothing of the owner's.
//!
//! State changes that can happen only once (approving a plan, closing, reopening,
//! deciding a transfer, recording an outcome, answering or withdrawing a referral) get
//! fresh preconditions before every attempt, prepared in the owning organisation by
//! people other than the caller: approvals are a second person's, so the caller must
//! not be the submitter.
//!
//! The directory (facilities, search, coverage, gazetteer) is read across
//! organisations; a facility is changed by its own, or by a role allowed
//! `directory.manage_any` (the directory admin) of any organisation. A referral belongs to the two
//! organisations it joins: a partner organisation refers its case to the owner's
//! facility (the owner answers and reads the disclosure) and receives the owner's
//! referrals (the owner cancels or revokes them); to anyone else it answers 404.
//!
//! Statistics, the anonymised CTDC export and the release ledger are not of one
//! organisation: an allowed role of either organisation gets its answer. An export
//! must never carry the names or record ids of the people it counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use uuid::Uuid;

use haven_auth::keys::DevTokenRequest;
use haven_auth::policy::Action;
use haven_auth::{Role, policy};
use haven_e2e::TestStack;
use haven_gateway::policy::{ROUTES, Route};

struct Fixture {
    person: String,
    twin: String,
    clock: String,
    screening: String,
    case: String,
    case_to_seal: String,
    organization: String,
    /// Cases of their own for routes whose state would get in the others' way: a
    /// pending transfer or closure blocks the other, a closed case takes no work.
    case_to_transfer: String,
    case_to_close: String,
    case_closure_review: String,
    case_to_reopen: String,
    /// A case with an approved plan whose action the matrix tracks.
    case_with_plan: String,
    plan_version: u64,
    action_id: String,
    /// A service of the main case.
    service: String,
    /// The organisation that offers cases to the owner (transfer decisions), and its
    /// case currently on offer, if any.
    sender: Uuid,
    sender_case: Option<String>,
    /// The organisation the transfer-request route asks to take over a case.
    receiver: Uuid,
    /// A facility of the owner, with room for every referral the matrix accepts.
    owner_facility: String,
    /// A case of the owner whose person consented to sharing, for its referrals.
    case_to_refer: String,
    /// The organisation the owner refers to and receives referrals from, its
    /// facility, and its case whose person consented to sharing.
    partner: Uuid,
    partner_facility: String,
    partner_case: String,
    /// A referral the owner sent to the partner, and one it received from the
    /// partner, kept open (requested) so its disclosure can be read.
    referral_sent: String,
    referral_received: String,
}

/// The people who prepare the preconditions in the owning organisation: none of them
/// is the caller under test (every test token of one organisation has one subject).
struct Actors {
    /// Admin of the owning organisation: reads ETags.
    admin: String,
    /// A caseworker who submits plans and asks for closures.
    preparer: String,
    /// A supervisor who approves what the preparer submitted.
    approver: String,
    /// Admin of the sender organisation.
    sender_admin: String,
    /// Admin of the organisation the transfer-request route asks.
    receiver_admin: String,
    /// Admin of the partner organisation (referrals to the owner).
    partner_admin: String,
}

/// A token for `roles` in `organization` with its own `subject`.
fn token_as(stack: &TestStack, subject: &str, roles: &[&str], organization: Uuid) -> String {
    let request = DevTokenRequest {
        subject: subject.to_owned(),
        organization_id: organization,
        roles: roles.iter().map(|role| (*role).to_owned()).collect(),
        ttl_seconds: 600,
    };
    stack
        .keys
        .mint_dev_token(&stack.settings.auth, &request)
        .unwrap()
}

fn actors(stack: &TestStack, fixture: &Fixture, owner: Uuid) -> Actors {
    Actors {
        admin: stack.token(&["admin"], owner),
        preparer: token_as(stack, "matrix-preparer", &["case_worker"], owner),
        approver: token_as(stack, "matrix-approver", &["supervisor"], owner),
        sender_admin: stack.token(&["admin", "intake_officer"], fixture.sender),
        receiver_admin: stack.token(&["admin"], fixture.receiver),
        partner_admin: stack.token(&["admin"], fixture.partner),
    }
}

/// A request with an optional `If-Match` and JSON body.
async fn send(
    stack: &TestStack,
    method: &str,
    token: &str,
    path: &str,
    if_match: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = stack
        .http
        .request(method, stack.url(path))
        .bearer_auth(token);
    if let Some(etag) = if_match {
        request = request.header("if-match", etag);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// A preparation step that must succeed: its status, then its ETag and body.
async fn expect_ok(response: reqwest::Response, what: &str) -> (Option<String>, Value) {
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|etag| etag.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        status == 200 || status == 201,
        "preparing the matrix: {what} answered {status}: {body}"
    );
    (etag, body)
}

/// A record as the owner's admin reads it: its ETag and body.
async fn read(stack: &TestStack, actors: &Actors, path: &str) -> (String, Value) {
    let (etag, body) = expect_ok(stack.get(&actors.admin, path).await, path).await;
    (etag.expect("an ETag"), body)
}

/// The ETag of the item of `list` (a collection path) whose id is `id`.
async fn item_etag(stack: &TestStack, actors: &Actors, list: &str, key: &str, id: Value) -> String {
    let (_, body) = expect_ok(stack.get(&actors.admin, list).await, list).await;
    let item = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item[key] == id)
        .unwrap_or_else(|| panic!("{list} has no {key} {id}: {body}"));
    format!("\"{}\"", item["version"])
}

fn is_closed(case: &Value) -> bool {
    matches!(case["status"].as_str(), Some("closed" | "closed_referred"))
}

/// A plan with one goal and one action.
fn plan(organization: &str) -> Value {
    json!({"goals": [{"domain": "housing", "goal": "Stable housing", "actions": [
        {"description": "Find a flat", "responsible_organization_id": organization,
         "due_on": "2026-06-30"}]}]})
}

/// A facility offering shelter, with room for every referral the matrix accepts.
fn facility(name: &str) -> Value {
    json!({"name": name, "settlement": "Baku", "latitude": 40.41, "longitude": 49.87,
           "service_types": ["shelter", "medical"], "capacity_total": 1000,
           "languages": ["az", "ru"]})
}

/// A referral of `case` to `facility` for shelter.
fn referral(case: &str, facility: &str) -> Value {
    json!({"case_id": case, "facility_id": facility, "service_type": "shelter",
           "purpose": "A safe bed for two weeks", "urgency": "urgent"})
}

/// Adds `organization` to the directory (facilities belong to organisations of the
/// directory, and consent to sharing is given by kind of organisation).
async fn register(stack: &TestStack, organization: Uuid, name: &str) {
    let admin = stack.token(&["admin"], organization);
    let body = json!({"id": organization, "name": name, "organization_type": "ngo"});
    expect_ok(
        stack.post(&admin, "/v1/organizations", body).await,
        "adding an organisation to the directory",
    )
    .await;
}

/// Records the person's consent to sharing their data with any kind of organisation.
async fn consent_to_sharing(stack: &TestStack, token: &str, screening: &str) {
    let consent = json!({"purpose": "data_sharing", "given": true, "method": "written"});
    let path = format!("/v1/screenings/{screening}/consents");
    expect_ok(
        stack.post(token, &path, consent).await,
        "consenting to sharing",
    )
    .await;
}

/// The id of a facility `token`'s organisation adds.
async fn add_facility(stack: &TestStack, token: &str, name: &str) -> String {
    let (_, added) = expect_ok(
        stack.post(token, "/v1/facilities", facility(name)).await,
        "adding a facility",
    )
    .await;
    added["id"].as_str().unwrap().to_owned()
}

/// A new referral of `case` to `facility` by `token`: its id and ETag.
async fn refer(stack: &TestStack, token: &str, case: &str, facility: &str) -> (String, String) {
    let (etag, referral) = expect_ok(
        stack
            .post(token, "/v1/referrals", referral(case, facility))
            .await,
        "referring a case",
    )
    .await;
    (
        referral["id"].as_str().unwrap().to_owned(),
        etag.expect("an ETag"),
    )
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

async fn fixture(stack: &TestStack, owner: Uuid, stranger: Uuid) -> Fixture {
    let admin = stack.token(&["admin", "intake_officer"], owner);
    let mut cases = Vec::new();
    for _ in 0..5 {
        cases.push(screening_with_case(stack, &admin).await.1);
    }
    let [
        case_to_transfer,
        case_to_close,
        case_closure_review,
        case_to_reopen,
        case_with_plan,
    ] = <[String; 5]>::try_from(cases).unwrap();
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
    let organization = organization["id"].as_str().unwrap().to_owned();

    // An approved plan with one action, submitted and approved by two people.
    let preparer = token_as(stack, "matrix-preparer", &["case_worker"], owner);
    let approver = token_as(stack, "matrix-approver", &["supervisor"], owner);
    let plans = format!("/v1/cases/{case_with_plan}/plans");
    let submitted = stack.post(&preparer, &plans, plan(&organization)).await;
    let (etag, plan) = expect_ok(submitted, "submitting a plan").await;
    let plan_version = plan["plan_version"].as_u64().unwrap();
    let approve = format!("{plans}/{plan_version}/approve");
    let approved = send(
        stack,
        "POST",
        &approver,
        &approve,
        etag.as_deref(),
        Some(&json!({})),
    )
    .await;
    let (_, plan) = expect_ok(approved, "approving a plan").await;
    let action_id = plan["goals"][0]["actions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let services = format!("/v1/cases/{case}/services");
    let service = json!({"type": "shelter", "provider_organization_id": organization});
    let (_, service) = expect_ok(
        stack.post(&admin, &services, service).await,
        "adding a service",
    )
    .await;
    let service = service["id"].as_str().unwrap().to_owned();

    // Referrals: the owner and a partner refer cases to each other's facilities.
    let partner = Uuid::new_v4();
    register(stack, owner, "Matrix owner").await;
    register(stack, stranger, "Matrix stranger").await;
    register(stack, partner, "Matrix partner").await;
    let partner_admin = stack.token(&["admin", "intake_officer"], partner);
    let owner_facility = add_facility(stack, &admin, "Owner's shelter").await;
    let partner_facility = add_facility(stack, &partner_admin, "Partner's shelter").await;
    let (screening_to_refer, case_to_refer) = screening_with_case(stack, &admin).await;
    consent_to_sharing(stack, &admin, &screening_to_refer).await;
    let (partner_screening, partner_case) = screening_with_case(stack, &partner_admin).await;
    consent_to_sharing(stack, &partner_admin, &partner_screening).await;
    let (referral_sent, _) = refer(stack, &admin, &case_to_refer, &partner_facility).await;
    let (referral_received, _) = refer(stack, &partner_admin, &partner_case, &owner_facility).await;

    Fixture {
        person,
        twin,
        clock,
        screening,
        case,
        case_to_seal,
        organization,
        case_to_transfer,
        case_to_close,
        case_closure_review,
        case_to_reopen,
        case_with_plan,
        plan_version,
        action_id,
        service,
        sender: Uuid::new_v4(),
        sender_case: None,
        receiver: Uuid::new_v4(),
        owner_facility,
        case_to_refer,
        partner,
        partner_facility,
        partner_case,
        referral_sent,
        referral_received,
    }
}

/// The concrete request for a route, and whether its record belongs to one
/// organisation (so a foreign caller must get 404).
fn request(rule: &Route, fixture: &Fixture) -> (String, Option<Value>, bool) {
    let (id, scoped) = if rule.path == "/v1/cases/{id}/seal" {
        (fixture.case_to_seal.as_str(), true)
    } else if rule.path.starts_with("/v1/cases/{id}/transfers") {
        (fixture.case_to_transfer.as_str(), true)
    } else if rule.path == "/v1/cases/{id}/closure" {
        (fixture.case_to_close.as_str(), true)
    } else if rule.path.starts_with("/v1/cases/{id}/closure/") {
        (fixture.case_closure_review.as_str(), true)
    } else if rule.path == "/v1/cases/{id}/reopen" {
        (fixture.case_to_reopen.as_str(), true)
    } else if rule
        .path
        .starts_with("/v1/cases/{id}/plans/{plan_version}/actions/")
    {
        (fixture.case_with_plan.as_str(), true)
    } else if rule.path.starts_with("/v1/transfers/") {
        // The transfer is offered at request time; the receiving organisation owns it.
        ("{transfer}", true)
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
    } else if rule.path == "/v1/facilities/{id}" {
        // Read by anyone, changed by its own organisation only.
        (fixture.owner_facility.as_str(), rule.method == "PATCH")
    } else if rule.path == "/v1/referrals/{id}/disclosure" {
        (fixture.referral_received.as_str(), true)
    } else if rule.path.starts_with("/v1/referrals/{id}/") {
        // A fresh referral is made at request time; the owner sent or received it.
        ("{referral}", true)
    } else if rule.path == "/v1/referrals/{id}" {
        (fixture.referral_sent.as_str(), true)
    } else {
        (fixture.organization.as_str(), false)
    };
    let mut path = rule
        .path
        .replace("{id}", id)
        .replace("{version}", id)
        .replace("{plan_version}", &fixture.plan_version.to_string())
        .replace("{action_id}", &fixture.action_id)
        .replace("{service_id}", &fixture.service);
    match rule.path {
        "/v1/facilities/search" => {
            path.push_str("?service_type=shelter&latitude=40.4&longitude=49.9")
        }
        "/v1/coverage" => path.push_str("?service_type=shelter"),
        "/v1/reports/indicators" => path.push_str("?from=2000-01-01&to=2099-12-31"),
        _ => {}
    }
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
        ("PATCH", "/v1/cases/{id}") => Some(json!({"risk_level": "medium", "flags": ["minor"]})),
        ("POST", "/v1/cases/{id}/transfers") => {
            Some(json!({"to_organization_id": fixture.receiver, "reason": "the person moved"}))
        }
        ("POST", "/v1/transfers/{id}/accept" | "/v1/cases/{id}/plans/{plan_version}/approve")
        | ("POST", "/v1/cases/{id}/closure/approve") => Some(json!({"comment": "agreed"})),
        ("POST", "/v1/transfers/{id}/reject" | "/v1/cases/{id}/plans/{plan_version}/reject")
        | ("POST", "/v1/cases/{id}/closure/reject") => Some(json!({"comment": "not yet"})),
        ("POST", "/v1/cases/{id}/plans") => Some(plan(&fixture.organization)),
        ("PATCH", "/v1/cases/{id}/plans/{plan_version}/actions/{action_id}") => {
            Some(json!({"status": "in_progress"}))
        }
        ("POST", "/v1/cases/{id}/services") => {
            Some(json!({"type": "medical", "provider_organization_id": fixture.organization}))
        }
        ("PATCH", "/v1/cases/{id}/services/{service_id}") => {
            Some(json!({"started_on": "2026-03-01"}))
        }
        ("POST", "/v1/cases/{id}/payments") => Some(
            json!({"amount": "150.00", "currency": "AZN", "paid_on": "2026-03-01", "purpose": "rent"}),
        ),
        ("POST", "/v1/cases/{id}/follow_ups") => {
            Some(json!({"kind": "call", "due_on": "2026-04-01"}))
        }
        ("POST", "/v1/cases/{id}/follow_ups/{follow_up_id}/outcome") => {
            Some(json!({"outcome": "completed"}))
        }
        ("POST", "/v1/cases/{id}/notes") => Some(json!({"body": "Matrix note"})),
        ("POST", "/v1/cases/{id}/closure") => Some(json!({"reason": "goals_achieved"})),
        ("POST", "/v1/cases/{id}/reopen") => Some(json!({"reason": "new threats"})),
        ("POST", "/v1/facilities") => Some(facility(&format!("Shelter {}", Uuid::new_v4()))),
        ("PATCH", "/v1/facilities/{id}") => Some(facility("Owner's shelter")),
        ("POST", "/v1/referrals") => {
            Some(referral(&fixture.case_to_refer, &fixture.partner_facility))
        }
        ("POST", "/v1/referrals/{id}/accept" | "/v1/referrals/{id}/start") => Some(json!({})),
        ("POST", "/v1/referrals/{id}/complete") => {
            Some(json!({"outcome": "Stayed three weeks, then moved in with family"}))
        }
        ("POST", "/v1/referrals/{id}/decline") => Some(json!({"reason": "No bed for a family"})),
        ("POST", "/v1/referrals/{id}/cancel" | "/v1/referrals/{id}/revoke") => {
            Some(json!({"reason": "The person withdrew consent"}))
        }
        ("POST", "/v1/exports/ctdc") => Some(json!({"from": "2000-01-01", "to": "2099-12-31"})),
        ("POST", "/v1/releases/private_counts") => {
            Some(json!({"from": "2025-01-01", "to": "2026-12-31", "epsilon": 0.01}))
        }
        ("POST" | "DELETE" | "PATCH", other) => {
            panic!("the matrix needs a request body for {other}")
        }
        _ => None,
    };
    // A referral is made of a case: only its organisation's staff refer it.
    let refers_a_case = (rule.method, rule.path) == ("POST", "/v1/referrals");
    (
        path,
        body,
        refers_a_case || (scoped && rule.path.contains("{id}")),
    )
}

/// The request of one attempt, once its preconditions are prepared.
struct Attempt {
    path: String,
    body: Option<Value>,
    if_match: Option<String>,
}

/// Prepares what a state change needs to succeed once more, in the owning
/// organisation, and fills in the ids and ETags of the attempt.
async fn prepare(
    stack: &TestStack,
    rule: &Route,
    fixture: &mut Fixture,
    actors: &Actors,
    owner: Uuid,
    mut attempt: Attempt,
) -> Attempt {
    let case_path = |case: &str| format!("/v1/cases/{case}");
    match (rule.method, rule.path) {
        ("POST", "/v1/cases/{id}/stage") => {
            // The matrix tests who may move a case, not the workflow: move it one
            // allowed step from wherever it is, at its current version.
            let (etag, current) =
                read(stack, actors, attempt.path.trim_end_matches("/stage")).await;
            let next = match current["stage"].as_str().unwrap() {
                "new" => "assessment",
                "assessment" => "plan",
                "plan" => "services",
                "services" => "monitoring",
                _ => "services",
            };
            attempt.body = Some(json!({"stage": next}));
            attempt.if_match = Some(etag);
        }
        ("PATCH", "/v1/screenings/{id}" | "/v1/cases/{id}") => {
            // Always the current version: the matrix tests who may, not races.
            attempt.if_match = Some(read(stack, actors, &attempt.path).await.0);
        }
        ("POST", "/v1/cases/{id}/transfers") => {
            // One pending transfer at a time: the asked organisation declines the last.
            let case = case_path(&fixture.case_to_transfer);
            let (_, current) = read(stack, actors, &case).await;
            if let Some(pending) = current["pending_transfer"]["id"].as_str() {
                let reject = format!("/v1/transfers/{pending}/reject");
                let body = json!({"comment": "no capacity"});
                expect_ok(
                    stack.post(&actors.receiver_admin, &reject, body).await,
                    "declining a transfer",
                )
                .await;
            }
            attempt.if_match = Some(read(stack, actors, &case).await.0);
        }
        ("POST", "/v1/transfers/{id}/accept" | "/v1/transfers/{id}/reject") => {
            let transfer = transfer_offered_to(stack, fixture, actors, owner).await;
            attempt.path = rule.path.replace("{id}", &transfer);
        }
        (
            "POST",
            "/v1/cases/{id}/plans/{plan_version}/approve"
            | "/v1/cases/{id}/plans/{plan_version}/reject",
        ) => {
            // A fresh version waiting for review (it supersedes any still waiting).
            let plans = format!("{}/plans", case_path(&fixture.case));
            let submitted = stack
                .post(&actors.preparer, &plans, plan(&fixture.organization))
                .await;
            let (etag, submitted) = expect_ok(submitted, "submitting a plan").await;
            let version = submitted["plan_version"].to_string();
            attempt.path = rule
                .path
                .replace("{id}", &fixture.case)
                .replace("{plan_version}", &version);
            attempt.if_match = etag;
        }
        ("PATCH", "/v1/cases/{id}/plans/{plan_version}/actions/{action_id}") => {
            let plans = format!("{}/plans", case_path(&fixture.case_with_plan));
            let version = json!(fixture.plan_version);
            attempt.if_match =
                Some(item_etag(stack, actors, &plans, "plan_version", version).await);
        }
        ("PATCH", "/v1/cases/{id}/services/{service_id}") => {
            let services = format!("{}/services", case_path(&fixture.case));
            attempt.if_match =
                Some(item_etag(stack, actors, &services, "id", json!(fixture.service)).await);
        }
        ("POST", "/v1/cases/{id}/follow_ups/{follow_up_id}/outcome") => {
            // An outcome is recorded once: a fresh follow-up every time.
            let follow_ups = format!("{}/follow_ups", case_path(&fixture.case));
            let body = json!({"kind": "visit", "due_on": "2026-05-01"});
            let (etag, follow_up) = expect_ok(
                stack.post(&actors.admin, &follow_ups, body).await,
                "scheduling a follow-up",
            )
            .await;
            attempt.path = rule
                .path
                .replace("{id}", &fixture.case)
                .replace("{follow_up_id}", follow_up["id"].as_str().unwrap());
            attempt.if_match = etag;
        }
        ("POST", "/v1/cases/{id}/closure") => {
            // One closure request at a time: a supervisor rejects the last.
            let case = case_path(&fixture.case_to_close);
            let (etag, current) = read(stack, actors, &case).await;
            if current["closure"]["status"] == "requested" {
                let body = json!({"comment": "services first"});
                expect_ok(
                    send(
                        stack,
                        "POST",
                        &actors.approver,
                        &format!("{case}/closure/reject"),
                        Some(&etag),
                        Some(&body),
                    )
                    .await,
                    "rejecting a closure",
                )
                .await;
            }
            attempt.if_match = Some(read(stack, actors, &case).await.0);
        }
        ("POST", "/v1/cases/{id}/closure/approve" | "/v1/cases/{id}/closure/reject") => {
            // A closure waiting for review, asked for by someone else than the caller.
            let case = case_path(&fixture.case_closure_review);
            let (mut etag, mut current) = read(stack, actors, &case).await;
            if is_closed(&current) {
                let body = json!({"reason": "the person asked for help again"});
                let reopened = send(
                    stack,
                    "POST",
                    &actors.preparer,
                    &format!("{case}/reopen"),
                    Some(&etag),
                    Some(&body),
                )
                .await;
                let (reopened_etag, reopened) = expect_ok(reopened, "reopening a case").await;
                etag = reopened_etag.unwrap();
                current = reopened;
            }
            if current["closure"]["status"] != "requested" {
                let body = json!({"reason": "goals_achieved"});
                expect_ok(
                    send(
                        stack,
                        "POST",
                        &actors.preparer,
                        &format!("{case}/closure"),
                        Some(&etag),
                        Some(&body),
                    )
                    .await,
                    "asking for closure",
                )
                .await;
            }
            attempt.if_match = Some(read(stack, actors, &case).await.0);
        }
        ("PATCH", "/v1/facilities/{id}") => {
            attempt.if_match = Some(read(stack, actors, &attempt.path).await.0);
        }
        ("POST", "/v1/referrals/{id}/accept" | "/v1/referrals/{id}/decline") => {
            // A referral to the owner waiting for its answer.
            let (id, etag) = refer(
                stack,
                &actors.partner_admin,
                &fixture.partner_case,
                &fixture.owner_facility,
            )
            .await;
            attempt.path = rule.path.replace("{id}", &id);
            attempt.if_match = Some(etag);
        }
        ("POST", "/v1/referrals/{id}/start" | "/v1/referrals/{id}/complete") => {
            // A referral to the owner that the owner accepted.
            let (id, etag) = refer(
                stack,
                &actors.partner_admin,
                &fixture.partner_case,
                &fixture.owner_facility,
            )
            .await;
            let accepted = send(
                stack,
                "POST",
                &actors.admin,
                &format!("/v1/referrals/{id}/accept"),
                Some(&etag),
                Some(&json!({})),
            )
            .await;
            let (etag, _) = expect_ok(accepted, "accepting a referral").await;
            attempt.path = rule.path.replace("{id}", &id);
            attempt.if_match = etag;
        }
        ("POST", "/v1/referrals/{id}/cancel" | "/v1/referrals/{id}/revoke") => {
            // A referral the owner sent, still open.
            let (id, etag) = refer(
                stack,
                &actors.admin,
                &fixture.case_to_refer,
                &fixture.partner_facility,
            )
            .await;
            attempt.path = rule.path.replace("{id}", &id);
            attempt.if_match = Some(etag);
        }
        ("POST", "/v1/cases/{id}/reopen") => {
            // A closed case: asked for by one person, approved by another.
            let case = case_path(&fixture.case_to_reopen);
            let (mut etag, current) = read(stack, actors, &case).await;
            if !is_closed(&current) {
                if current["closure"]["status"] != "requested" {
                    let body = json!({"reason": "moved_away"});
                    let requested = send(
                        stack,
                        "POST",
                        &actors.preparer,
                        &format!("{case}/closure"),
                        Some(&etag),
                        Some(&body),
                    )
                    .await;
                    etag = expect_ok(requested, "asking for closure").await.0.unwrap();
                }
                let approved = send(
                    stack,
                    "POST",
                    &actors.approver,
                    &format!("{case}/closure/approve"),
                    Some(&etag),
                    Some(&json!({})),
                )
                .await;
                expect_ok(approved, "approving a closure").await;
            }
            attempt.if_match = Some(read(stack, actors, &case).await.0);
        }
        _ => {}
    }
    attempt
}

/// A transfer waiting for the owner's answer: of the sender's case on offer, or of a
/// new one once the owner accepted the last.
async fn transfer_offered_to(
    stack: &TestStack,
    fixture: &mut Fixture,
    actors: &Actors,
    owner: Uuid,
) -> String {
    loop {
        if let Some(case) = &fixture.sender_case {
            let path = format!("/v1/cases/{case}");
            let response = stack.get(&actors.sender_admin, &path).await;
            if response.status() == 200 {
                let etag = response.headers()["etag"].to_str().unwrap().to_owned();
                let current: Value = response.json().await.unwrap();
                if let Some(pending) = current["pending_transfer"]["id"].as_str() {
                    return pending.to_owned();
                }
                let body = json!({"to_organization_id": owner, "reason": "closer to the family"});
                let requested = send(
                    stack,
                    "POST",
                    &actors.sender_admin,
                    &format!("{path}/transfers"),
                    Some(&etag),
                    Some(&body),
                )
                .await;
                let (_, transfer) = expect_ok(requested, "offering a transfer").await;
                return transfer["id"].as_str().unwrap().to_owned();
            }
        }
        // Accepted: the case is the owner's now, so the sender offers another.
        let (_, case) = screening_with_case(stack, &actors.sender_admin).await;
        fixture.sender_case = Some(case);
    }
}

async fn every_route_every_role_two_organizations(stack: TestStack) {
    let owner = Uuid::new_v4();
    let stranger = Uuid::new_v4();
    let mut fixture = fixture(&stack, owner, stranger).await;
    let actors = actors(&stack, &fixture, owner);
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();

    for rule in ROUTES {
        for role in Role::ALL.into_iter().filter(|role| *role != Role::Service) {
            for organization in [owner, stranger] {
                let token = stack.token(&[role.as_str()], organization);
                let (path, body, scoped) = request(rule, &fixture);
                let attempt = Attempt {
                    path,
                    body,
                    if_match: None,
                };
                let attempt = prepare(&stack, rule, &mut fixture, &actors, owner, attempt).await;
                let response = send(
                    &stack,
                    rule.method,
                    &token,
                    &attempt.path,
                    attempt.if_match.as_deref(),
                    attempt.body.as_ref(),
                )
                .await;
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
                // Keeping the directory reaches every organisation's facilities.
                let across_organizations = rule.action == Action::FacilityManage
                    && policy::allows(role, Action::DirectoryManageAny);
                let (expected, outcome) = if !policy::allows(role, rule.action) {
                    (vec![403], "denied")
                } else if scoped && organization == stranger && !across_organizations {
                    (vec![404], "hidden")
                } else {
                    (vec![200, 201], "allowed")
                };
                assert!(
                    expected.contains(&status),
                    "{what}: expected {expected:?}, got {status}"
                );
                if rule.path.ends_with("/notes") || rule.path.ends_with("/disclosure") {
                    // Narratives and personal data must not be kept by browsers or proxies.
                    assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
                }
                if status >= 400 {
                    assert_eq!(
                        response.headers()["content-type"],
                        "application/problem+json",
                        "{what}"
                    );
                }
                if outcome == "allowed" && rule.path == "/v1/exports/ctdc" {
                    // The file is anonymised: no names, no record ids of the owner's.
                    let csv = response.text().await.unwrap();
                    let identifying = [
                        "Aynur",
                        "Məmmədova",
                        &fixture.person,
                        &fixture.screening,
                        &fixture.case,
                    ];
                    for needle in identifying {
                        assert!(!csv.contains(needle), "{what}: the export shows {needle}");
                    }
                } else if outcome == "allowed"
                    && rule.method == "GET"
                    && !rule.path.contains("{id}")
                {
                    let text = response.text().await.unwrap();
                    let owners = [
                        &fixture.screening,
                        &fixture.case,
                        &fixture.referral_sent,
                        &fixture.referral_received,
                    ];
                    let leaked = organization == stranger
                        && owners.iter().any(|record| text.contains(record.as_str()));
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
