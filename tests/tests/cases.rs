//! A case from opening to closure and back, over REST on the real stack: assignment,
//! assessment, an approved plan, services and payments, follow-ups, notes, approved
//! closure and reopening; illegal moves refused and two editors of one case settled
//! by If-Match.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use haven_e2e::TestStack;

struct Team {
    organization: Uuid,
    officer: String,
    worker: String,
    colleague: String,
    supervisor: String,
}

impl Team {
    fn new(stack: &TestStack) -> Self {
        let organization = Uuid::new_v4();
        Team {
            organization,
            officer: stack.token_as("officer", &["admin", "intake_officer"], organization),
            worker: stack.token_as("aysel", &["case_worker"], organization),
            colleague: stack.token_as("nigar", &["case_worker"], organization),
            supervisor: stack.token_as("rashad", &["supervisor"], organization),
        }
    }
}

/// Sends `body` with `If-Match: etag`; returns the status, the new ETag and the body.
async fn with_if_match(
    stack: &TestStack,
    method: reqwest::Method,
    token: &str,
    path: &str,
    etag: &str,
    body: Value,
) -> (u16, String, Value) {
    let response = stack
        .http
        .request(method, stack.url(path))
        .bearer_auth(token)
        .header("if-match", etag)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, etag, response.json().await.unwrap_or(Value::Null))
}

async fn read(stack: &TestStack, token: &str, path: &str) -> (String, Value) {
    let response = stack.get(token, path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    let etag = response
        .headers()
        .get("etag")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (etag, response.json().await.unwrap())
}

async fn created(stack: &TestStack, token: &str, path: &str, body: Value) -> (String, Value) {
    let response = stack.post(token, path, body).await;
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "POST {path}: {body}");
    (etag, body)
}

async fn a_case_runs_from_opening_to_approved_closure_and_reopens(stack: TestStack) {
    let team = Team::new(&stack);
    let (_, case_id) = stack.identified_case(&team.officer).await;
    let case_path = format!("/v1/cases/{case_id}");
    let post = reqwest::Method::POST;
    let patch = reqwest::Method::PATCH;

    // The supervisor assigns the caseworker and sets the risk; a caseworker may not
    // assign.
    let (etag, case) = read(&stack, &team.worker, &case_path).await;
    assert_eq!(case["stage"], "new");
    let (status, _, _) = with_if_match(
        &stack,
        patch.clone(),
        &team.worker,
        &case_path,
        &etag,
        json!({"caseworkers": ["aysel"]}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, etag, case) = with_if_match(
        &stack,
        patch.clone(),
        &team.supervisor,
        &case_path,
        &etag,
        json!({"caseworkers": ["aysel"], "risk_level": "high", "flags": ["interpreter_needed"]}),
    )
    .await;
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["caseworkers"], json!(["aysel"]));
    assert_eq!(case["risk_level"], "high");
    let mine: Value = stack
        .get(&team.worker, "/v1/cases?caseworker=aysel&risk_level=high")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);

    // Two caseworkers edit the same version: exactly one wins.
    let (first, _, _) = with_if_match(
        &stack,
        patch.clone(),
        &team.worker,
        &case_path,
        &etag,
        json!({"risk_level": "medium"}),
    )
    .await;
    let (second, _, problem) = with_if_match(
        &stack,
        patch.clone(),
        &team.colleague,
        &case_path,
        &etag,
        json!({"risk_level": "low"}),
    )
    .await;
    assert_eq!((first, second), (200, 412), "{problem}");
    let (etag, case) = read(&stack, &team.worker, &case_path).await;
    assert_eq!(case["risk_level"], "medium");

    // Workflow: skipping the plan is refused, naming where the case stands.
    let stage_path = format!("{case_path}/stage");
    let (status, _, problem) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &stage_path,
        &etag,
        json!({"stage": "services"}),
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        problem["detail"].as_str().unwrap().contains("new"),
        "{problem}"
    );
    let (status, etag, _) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &stage_path,
        &etag,
        json!({"stage": "assessment"}),
    )
    .await;
    assert_eq!(status, 200);
    created(
        &stack,
        &team.worker,
        &format!("{case_path}/assessments"),
        json!({"kind": "individual", "scores": [
        {"domain": "safety", "score": 2}, {"domain": "housing", "score": 1}]}),
    )
    .await;
    let (status, etag, _) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &stage_path,
        &etag,
        json!({"stage": "plan"}),
    )
    .await;
    assert_eq!(status, 200);

    // The plan: submitted by the caseworker, approved by the supervisor. The author
    // cannot approve it even as a supervisor.
    let yesterday = (OffsetDateTime::now_utc().date() - Duration::days(1)).to_string();
    let (plan_etag, plan) = created(&stack, &team.worker, &format!("{case_path}/plans"), json!({"goals": [{
        "domain": "housing", "goal": "A safe room near her sister",
        "actions": [{"description": "Find a rented room", "responsible_organization_id": team.organization, "due_on": yesterday}]}]}))
    .await;
    assert_eq!(plan["status"], "requested");
    let approve_path = format!("{case_path}/plans/1/approve");
    let author = stack.token_as("aysel", &["supervisor"], team.organization);
    let (status, _, _) = with_if_match(
        &stack,
        post.clone(),
        &author,
        &approve_path,
        &plan_etag,
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "no self-approval");
    let (status, _, _) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &approve_path,
        &plan_etag,
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "caseworkers do not approve plans");
    let (status, _, plan) = with_if_match(
        &stack,
        post.clone(),
        &team.supervisor,
        &approve_path,
        &plan_etag,
        json!({"comment": "agreed"}),
    )
    .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["status"], "approved");
    let overdue: Value = stack
        .get(&team.supervisor, "/v1/cases?overdue_plan_action=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(overdue["items"][0]["id"], case_id.as_str());

    // Services and cash assistance.
    let (status, etag, _) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &stage_path,
        &etag,
        json!({"stage": "services"}),
    )
    .await;
    assert_eq!(status, 200);
    let today = OffsetDateTime::now_utc().date().to_string();
    let (service_etag, service) = created(&stack, &team.worker, &format!("{case_path}/services"), json!({
        "type": "shelter", "provider_organization_id": team.organization, "started_on": today, "status": "in_progress"}))
    .await;
    let (_, cash) = created(&stack, &team.worker, &format!("{case_path}/services"), json!({
        "type": "cash_assistance", "provider_organization_id": team.organization, "status": "delivered"}))
    .await;
    for amount in ["150.00", "49.50"] {
        created(&stack, &team.worker, &format!("{case_path}/payments"), json!({
            "amount": amount, "currency": "AZN", "paid_on": today, "purpose": "rent", "service_id": cash["id"]}))
        .await;
    }
    let ledger: Value = stack
        .get(&team.worker, &format!("{case_path}/payments"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ledger["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        ledger["totals"],
        json!([{"currency": "AZN", "amount": "199.50"}])
    );

    // A follow-up due yesterday is on the caseworker's overdue list until done.
    let (follow_up_etag, follow_up) = created(
        &stack,
        &team.worker,
        &format!("{case_path}/follow_ups"),
        json!({"kind": "visit", "due_on": yesterday}),
    )
    .await;
    let overdue: Value = stack
        .get(
            &team.worker,
            "/v1/follow_ups?assigned_to=aysel&overdue=true",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(overdue["items"].as_array().unwrap().len(), 1);
    assert_eq!(overdue["items"][0]["case_code"], case["code"]);
    let late_cases: Value = stack
        .get(&team.supervisor, "/v1/cases?overdue_follow_up=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(late_cases["items"].as_array().unwrap().len(), 1);
    let outcome_path = format!(
        "{case_path}/follow_ups/{}/outcome",
        follow_up["id"].as_str().unwrap()
    );
    let (status, _, _) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &outcome_path,
        &follow_up_etag,
        json!({"outcome": "completed"}),
    )
    .await;
    assert_eq!(status, 200);
    let overdue: Value = stack
        .get(
            &team.worker,
            "/v1/follow_ups?assigned_to=aysel&overdue=true",
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(overdue["items"].as_array().unwrap().is_empty());

    // Notes: readable by the case team, never by auditors.
    created(
        &stack,
        &team.worker,
        &format!("{case_path}/notes"),
        json!({"body": "Leyla asked us not to call her mother"}),
    )
    .await;
    let notes: Value = stack
        .get(&team.colleague, &format!("{case_path}/notes"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        notes["items"][0]["body"],
        "Leyla asked us not to call her mother"
    );
    let auditor = stack.token_as("audit", &["auditor"], team.organization);
    assert_eq!(
        stack
            .get(&auditor, &format!("{case_path}/notes"))
            .await
            .status(),
        403
    );

    // Closure: blocked while the shelter stay runs, then approved by the supervisor.
    let (status, etag, _) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &stage_path,
        &etag,
        json!({"stage": "monitoring"}),
    )
    .await;
    assert_eq!(status, 200);
    let closure_path = format!("{case_path}/closure");
    let (status, _, problem) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &closure_path,
        &etag,
        json!({"reason": "goals_achieved"}),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    let service_path = format!("{case_path}/services/{}", service["id"].as_str().unwrap());
    let (status, _, _) = with_if_match(
        &stack,
        patch.clone(),
        &team.worker,
        &service_path,
        &service_etag,
        json!({"status": "delivered", "ended_on": today}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, etag, case) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &closure_path,
        &etag,
        json!({"reason": "goals_achieved"}),
    )
    .await;
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["closure"]["status"], "requested");
    assert_eq!(case["status"], "follow_up", "still open until approved");
    let (status, _, _) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &format!("{closure_path}/approve"),
        &etag,
        json!({}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, etag, case) = with_if_match(
        &stack,
        post.clone(),
        &team.supervisor,
        &format!("{closure_path}/approve"),
        &etag,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["status"], "closed");
    assert_eq!(case["stage"], "closed");
    let (status, _, _) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &stage_path,
        &etag,
        json!({"stage": "services"}),
    )
    .await;
    assert_eq!(status, 409, "a closed case moves only by reopening");

    // Reopening, with a reason, starts again from an assessment.
    let (status, _, _) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &format!("{case_path}/reopen"),
        &etag,
        json!({"reason": ""}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, case) = with_if_match(
        &stack,
        post.clone(),
        &team.worker,
        &format!("{case_path}/reopen"),
        &etag,
        json!({"reason": "she returned after a threat"}),
    )
    .await;
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["status"], "active");
    assert_eq!(case["stage"], "assessment");

    // The timeline tells it in order, without the note's words.
    let timeline: Value = stack
        .get(&team.worker, &format!("{case_path}/timeline"))
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["type"].as_str().unwrap())
        .collect();
    for expected in [
        "case.opened",
        "case.updated",
        "case.assessed",
        "case.plan_submitted",
        "case.plan_approved",
        "case.service_added",
        "case.payment_recorded",
        "case.follow_up_done",
        "case.note_added",
        "case.closure_requested",
        "case.closed",
        "case.reopened",
    ] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    assert_eq!(types.first(), Some(&"case.opened"));
    assert_eq!(types.last(), Some(&"case.reopened"));
    assert!(!timeline.to_string().contains("Leyla"));
}

async fn a_transfer_hands_the_case_over_only_when_accepted(stack: TestStack) {
    let team = Team::new(&stack);
    let (_, case_id) = stack.identified_case(&team.officer).await;
    let case_path = format!("/v1/cases/{case_id}");
    let receiver = Uuid::new_v4();
    let receiving = stack.token_as("farid", &["supervisor"], receiver);
    let (etag, _) = read(&stack, &team.worker, &case_path).await;
    let (status, _, transfer) = with_if_match(
        &stack,
        reqwest::Method::POST,
        &team.worker,
        &format!("{case_path}/transfers"),
        &etag,
        json!({"to_organization_id": receiver, "reason": "the family moved to Sumqayit"}),
    )
    .await;
    assert_eq!(status, 201, "{transfer}");
    assert_eq!(
        stack.get(&receiving, &case_path).await.status(),
        404,
        "no access before acceptance"
    );
    let incoming: Value = stack
        .get(&receiving, "/v1/transfers?pending=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(incoming["items"].as_array().unwrap().len(), 1);
    let accept = format!("/v1/transfers/{}/accept", transfer["id"].as_str().unwrap());
    assert_eq!(
        stack
            .post(&team.supervisor, &accept, json!({}))
            .await
            .status(),
        404,
        "the sender cannot accept"
    );
    let accepted = stack.post(&receiving, &accept, json!({})).await;
    assert_eq!(accepted.status(), 200);
    let (_, case) = read(&stack, &receiving, &case_path).await;
    assert_eq!(case["organization_id"], receiver.to_string());
    assert_eq!(
        stack.get(&team.worker, &case_path).await.status(),
        404,
        "the sender's access ended"
    );
}

haven_e2e::on_both_backends! {
    a_case_runs_from_opening_to_approved_closure_and_reopens,
    a_transfer_hands_the_case_over_only_when_accepted,
}
