//! Field rules live in the services: a gRPC client is refused with `InvalidArgument`
//! and a `google.rpc.BadRequest` naming the field, and a REST client through the
//! gateway gets the same field and description in its problem body.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use tonic_types::StatusExt;
use uuid::Uuid;

use haven_cli::ServiceName;
use haven_e2e::{TestStack, authorized};
use haven_proto::case::v1::case_service_client::CaseServiceClient;
use haven_proto::case::v1::{
    NeedDomain, PlanAction, PlanGoal, ReopenCaseRequest, RequestTransferRequest, SealCaseRequest,
    SubmitPlanRequest,
};
use haven_proto::intake::v1::RecordDecisionRequest;
use haven_proto::intake::v1::intake_service_client::IntakeServiceClient;
use haven_proto::referral::v1::referral_service_client::ReferralServiceClient;
use haven_proto::referral::v1::{CreateOrganizationRequest, OrganizationType};

const OFFICER: &[&str] = &["intake_officer", "case_worker"];
const SUPERVISOR: &[&str] = &["supervisor"];

fn violation_of(field: &str, description: &str) -> (String, String) {
    (field.to_owned(), description.to_owned())
}

/// The single field violation of an `InvalidArgument` status: `(field, description)`.
fn violation(status: &tonic::Status) -> (String, String) {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad_request = details.bad_request().expect("a BadRequest detail");
    assert_eq!(bad_request.field_violations.len(), 1, "{bad_request:?}");
    let violation = &bad_request.field_violations[0];
    (violation.field.clone(), violation.description.clone())
}

/// The single field error of a 400 problem body: `(field, description)`.
async fn problem_violation(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.unwrap();
    let errors = problem["errors"].as_array().expect("field errors");
    assert_eq!(errors.len(), 1, "{problem}");
    let field = errors[0]["field"].as_str().unwrap().to_owned();
    let description = errors[0]["message"].as_str().unwrap().to_owned();
    (field, description)
}

async fn send(
    stack: &TestStack,
    token: &str,
    path: &str,
    if_match: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = stack
        .http
        .post(stack.url(path))
        .bearer_auth(token)
        .json(&body);
    if let Some(etag) = if_match {
        request = request.header("if-match", etag);
    }
    request.send().await.unwrap()
}

async fn a_decision_without_legal_basis_is_refused_over_grpc_and_rest(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);
    let mut intake = IntakeServiceClient::new(stack.channel(ServiceName::Intake).await);
    let screening = Uuid::new_v4();
    let status = intake
        .record_decision(authorized(
            RecordDecisionRequest {
                screening_id: screening.to_string(),
                stage: haven_proto::intake::v1::IdentificationStage::Identified as i32,
                deciding_organization_type:
                    haven_proto::intake::v1::DecidingOrganizationType::Police as i32,
                legal_basis: "   ".to_owned(),
                ..Default::default()
            },
            &officer,
        ))
        .await
        .unwrap_err();
    let over_grpc = violation(&status);
    assert_eq!(over_grpc, violation_of("legal_basis", "must not be empty"));

    let response = send(
        &stack,
        &officer,
        &format!("/v1/screenings/{screening}/decisions"),
        None,
        json!({"stage": "identified", "deciding_organization_type": "police", "legal_basis": "  "}),
    )
    .await;
    assert_eq!(problem_violation(response).await, over_grpc);
}

async fn case_texts_are_refused_over_grpc_and_rest(stack: TestStack) {
    let organization = Uuid::new_v4();
    let worker = stack.token(OFFICER, organization);
    let supervisor = stack.token(SUPERVISOR, organization);
    let mut cases = CaseServiceClient::new(stack.channel(ServiceName::Case).await);
    let case = Uuid::new_v4();

    let status = cases
        .seal_case(authorized(
            SealCaseRequest {
                id: case.to_string(),
                legal_basis: " ".to_owned(),
            },
            &supervisor,
        ))
        .await
        .unwrap_err();
    let sealed = violation(&status);
    assert_eq!(sealed, violation_of("legal_basis", "is required"));
    let response = send(
        &stack,
        &supervisor,
        &format!("/v1/cases/{case}/seal"),
        None,
        json!({"legal_basis": " "}),
    )
    .await;
    assert_eq!(problem_violation(response).await, sealed);

    let status = cases
        .request_transfer(authorized(
            RequestTransferRequest {
                case_id: case.to_string(),
                expected_version: 1,
                to_organization_id: Uuid::new_v4().to_string(),
                reason: String::new(),
            },
            &worker,
        ))
        .await
        .unwrap_err();
    let transferred = violation(&status);
    assert_eq!(transferred, violation_of("reason", "must not be empty"));
    let response = send(
        &stack,
        &worker,
        &format!("/v1/cases/{case}/transfers"),
        Some("\"1\""),
        json!({"to_organization_id": Uuid::new_v4(), "reason": ""}),
    )
    .await;
    assert_eq!(problem_violation(response).await, transferred);

    let status = cases
        .reopen_case(authorized(
            ReopenCaseRequest {
                case_id: case.to_string(),
                expected_version: 1,
                reason: "\t".to_owned(),
            },
            &worker,
        ))
        .await
        .unwrap_err();
    let reopened = violation(&status);
    assert_eq!(reopened, violation_of("reason", "must not be empty"));
    let response = send(
        &stack,
        &worker,
        &format!("/v1/cases/{case}/reopen"),
        Some("\"1\""),
        json!({"reason": "\t"}),
    )
    .await;
    assert_eq!(problem_violation(response).await, reopened);
}

async fn plan_texts_are_named_by_their_place_over_grpc_and_rest(stack: TestStack) {
    let organization = Uuid::new_v4();
    let worker = stack.token(OFFICER, organization);
    let mut cases = CaseServiceClient::new(stack.channel(ServiceName::Case).await);
    let case = Uuid::new_v4();
    let action = |description: &str| PlanAction {
        description: description.to_owned(),
        responsible_organization_id: organization.to_string(),
        due_on: "2026-06-30".to_owned(),
        ..Default::default()
    };
    let goal = |goal: &str, actions: Vec<PlanAction>| PlanGoal {
        domain: NeedDomain::Housing as i32,
        goal: goal.to_owned(),
        actions,
    };
    let rest_action = |description: &str| {
        json!({"description": description, "responsible_organization_id": organization,
               "due_on": "2026-06-30"})
    };
    let cases_to_refuse = [
        (
            vec![goal("A flat", vec![action("Find one")]), goal(" ", vec![])],
            json!([{"domain": "housing", "goal": "A flat", "actions": [rest_action("Find one")]},
                   {"domain": "housing", "goal": " ", "actions": []}]),
            "goals[1].goal",
        ),
        (
            vec![goal("A flat", vec![action("Find one"), action("")])],
            json!([{"domain": "housing", "goal": "A flat",
                    "actions": [rest_action("Find one"), rest_action("")]}]),
            "goals[0].actions[1].description",
        ),
    ];
    for (goals, rest_goals, field) in cases_to_refuse {
        let status = cases
            .submit_plan(authorized(
                SubmitPlanRequest {
                    case_id: case.to_string(),
                    goals,
                },
                &worker,
            ))
            .await
            .unwrap_err();
        let over_grpc = violation(&status);
        assert_eq!(over_grpc, violation_of(field, "must not be empty"));
        let response = send(
            &stack,
            &worker,
            &format!("/v1/cases/{case}/plans"),
            Some("\"1\""),
            json!({"goals": rest_goals}),
        )
        .await;
        assert_eq!(problem_violation(response).await, over_grpc);
    }
}

async fn an_organization_without_name_is_refused_over_grpc_and_rest(stack: TestStack) {
    let admin = stack.token(&["admin"], Uuid::new_v4());
    let mut referral = ReferralServiceClient::new(stack.channel(ServiceName::Referral).await);
    let status = referral
        .create_organization(authorized(
            CreateOrganizationRequest {
                name: "  ".to_owned(),
                organization_type: OrganizationType::Ngo as i32,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap_err();
    let over_grpc = violation(&status);
    assert_eq!(over_grpc, violation_of("name", "must not be empty"));
    let response = send(
        &stack,
        &admin,
        "/v1/organizations",
        None,
        json!({"name": "  ", "organization_type": "ngo"}),
    )
    .await;
    assert_eq!(problem_violation(response).await, over_grpc);
}

haven_e2e::on_both_backends!(
    a_decision_without_legal_basis_is_refused_over_grpc_and_rest,
    case_texts_are_refused_over_grpc_and_rest,
    plan_texts_are_named_by_their_place_over_grpc_and_rest,
    an_organization_without_name_is_refused_over_grpc_and_rest,
);
