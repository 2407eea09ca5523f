//! `/v1/cases/{id}/plans`: individual reintegration plans, their approval and the
//! tracking of their actions (case service).

use axum::extract::State;
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::case::v1 as case;

use super::cases::{BACKEND, cases};
use super::{created, paths, with_etag};
use crate::dto::case::{Approve, Reject};
use crate::dto::missing_in_response;
use crate::dto::plan::{Plan, PlanList, SubmitPlan, UpdatePlanAction};
use crate::error::backend_error;
use crate::extract::{Caller, IfMatch, Json, PathId, PlanPath};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

fn plan_of(plan: Option<case::Plan>) -> Result<Plan, HavenError> {
    plan.map(Plan::from)
        .ok_or_else(|| missing_in_response("plan"))
}

/// Submit a new version of the case's individual reintegration plan, for a supervisor
/// to approve. The plan is kept encrypted with the person's data.
#[utoipa::path(
    post,
    path = paths::CASE_PLANS,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    request_body = SubmitPlan,
    responses(
        (status = 201, description = "The submitted plan version", body = Plan, headers(
            ("etag" = String, description = "Version of the plan"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "submit_plan", skip_all, fields(case_id = %id))]
pub(crate) async fn submit_plan(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(body): Json<SubmitPlan>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto(id)?)?;
    let response = cases(&state)
        .submit_plan(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let plan = plan_of(response.into_inner().plan)?;
    Ok(created(None, plan.version, plan))
}

/// A case's plan versions, oldest first.
#[utoipa::path(
    get,
    path = paths::CASE_PLANS,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    responses(
        (status = 200, description = "The plan versions", body = PlanList),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "list_plans", skip_all, fields(case_id = %id))]
pub(crate) async fn list_plans(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<PlanList>, HavenError> {
    let request = caller.grpc_request(case::ListPlansRequest {
        case_id: id.to_string(),
    })?;
    let response = cases(&state)
        .list_plans(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(PlanList {
        items: response.plans.into_iter().map(Plan::from).collect(),
    }))
}

/// Approves or rejects a submitted plan version.
async fn review(
    state: &AppState,
    caller: &Caller,
    path: PlanPath,
    expected_version: u64,
    (decision, comment): (i32, String),
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(case::ReviewPlanRequest {
        case_id: path.case_id.to_string(),
        plan_version: path.plan_version,
        expected_version,
        decision,
        comment,
    })?;
    let response = cases(state)
        .review_plan(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let plan = plan_of(response.into_inner().plan)?;
    Ok(with_etag(plan.version, plan))
}

/// Approve a submitted plan version: it becomes the case's plan (the previous one is
/// superseded) and its actions are tracked. A supervisor other than the submitter
/// (unless the deployment allows self-approval). Needs `If-Match` of the plan.
#[utoipa::path(
    post,
    path = paths::CASE_PLAN_APPROVE,
    tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "Case id"),
        ("plan_version" = u32, Path, description = "Plan version, 1 or more"),
        ("if-match" = String, Header, description = "ETag of the plan as you read it"),
    ),
    request_body = Approve,
    responses(
        (status = 200, description = "The approved plan", body = Plan, headers(
            ("etag" = String, description = "New version of the plan"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The plan version is not waiting for a decision"),
        (status = 412, description = "The plan changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "approve_plan", skip_all, fields(case_id = %path.case_id, plan_version = path.plan_version))]
pub(crate) async fn approve_plan(
    State(state): State<AppState>,
    caller: Caller,
    path: PlanPath,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<Approve>,
) -> Result<Response, HavenError> {
    review(&state, &caller, path, expected_version, body.decision()).await
}

/// Reject a submitted plan version, saying why in `comment`. Needs `If-Match` of the
/// plan.
#[utoipa::path(
    post,
    path = paths::CASE_PLAN_REJECT,
    tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "Case id"),
        ("plan_version" = u32, Path, description = "Plan version, 1 or more"),
        ("if-match" = String, Header, description = "ETag of the plan as you read it"),
    ),
    request_body = Reject,
    responses(
        (status = 200, description = "The rejected plan", body = Plan, headers(
            ("etag" = String, description = "New version of the plan"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The plan version is not waiting for a decision"),
        (status = 412, description = "The plan changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "reject_plan", skip_all, fields(case_id = %path.case_id, plan_version = path.plan_version))]
pub(crate) async fn reject_plan(
    State(state): State<AppState>,
    caller: Caller,
    path: PlanPath,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<Reject>,
) -> Result<Response, HavenError> {
    let decision = body.decision()?;
    review(&state, &caller, path, expected_version, decision).await
}

/// Track an action of the approved plan: change its status. Needs `If-Match` of the
/// plan: `428` without it, `412` if the plan changed since you read it.
#[utoipa::path(
    patch,
    path = paths::CASE_PLAN_ACTION,
    tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "Case id"),
        ("plan_version" = u32, Path, description = "Plan version, 1 or more"),
        ("action_id" = uuid::Uuid, Path, description = "Action id"),
        ("if-match" = String, Header, description = "ETag of the plan as you read it"),
    ),
    request_body = UpdatePlanAction,
    responses(
        (status = 200, description = "The plan with the action's new status", body = Plan, headers(
            ("etag" = String, description = "New version of the plan"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The plan version is not the approved one"),
        (status = 412, description = "The plan changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "update_plan_action", skip_all, fields(case_id = %path.case_id, plan_version = path.plan_version))]
pub(crate) async fn update_plan_action(
    State(state): State<AppState>,
    caller: Caller,
    path: PlanPath,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<UpdatePlanAction>,
) -> Result<Response, HavenError> {
    let action_id = path
        .action_id
        .ok_or_else(|| HavenError::internal("route has no action id segment"))?;
    let request = caller.grpc_request(case::UpdatePlanActionRequest {
        case_id: path.case_id.to_string(),
        plan_version: path.plan_version,
        action_id: action_id.to_string(),
        expected_version,
        status: body.status.to_proto(),
    })?;
    let response = cases(&state)
        .update_plan_action(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let plan = plan_of(response.into_inner().plan)?;
    Ok(with_etag(plan.version, plan))
}
