//! `/v1/cases`: cases, their workflow, assessments, closure and timeline (case
//! service). The case's other records have modules of their own: transfers, plans,
//! services and payments, follow-ups, notes.

use axum::extract::State;
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::case::v1 as case;
use haven_proto::case::v1::case_service_client::CaseServiceClient;
use tonic::transport::Channel;

use super::{created, paths, with_etag};
use crate::dto::case::{
    AddAssessment, Approve, Assessment, AssessmentList, Case, CasePage, CaseQuery, ChangeStage,
    Reject, ReopenCase, RequestClosure, SealCase, Timeline, TimelineEntry, UpdateCase,
};
use crate::dto::{missing_in_response, next_cursor};
use crate::error::backend_error;
use crate::extract::{Caller, IfMatch, Json, PathId, Query};
use crate::idempotency::{ForwardedKey, mark_replayed};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

pub(super) const BACKEND: &str = "case";

/// A client of the case service.
pub(super) fn cases(state: &AppState) -> CaseServiceClient<Channel> {
    CaseServiceClient::new(state.backends().case.channel.clone())
}

/// The case a response must carry.
pub(super) fn case_of(case: Option<case::Case>) -> Result<Case, HavenError> {
    case.map(Case::from)
        .ok_or_else(|| missing_in_response("case"))
}

/// List the cases of the caller's organisation, optionally filtered (all filters given
/// must match): by status, stage, assigned caseworker, risk level, overdue follow-ups
/// or plan actions. Callers who see every organisation may name another one.
#[utoipa::path(
    get,
    path = paths::CASES,
    tag = "cases",
    params(CaseQuery),
    responses(
        (status = 200, description = "One page of cases", body = CasePage),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "list_cases", skip_all)]
pub(crate) async fn list_cases(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<CaseQuery>,
) -> Result<Json<CasePage>, HavenError> {
    let request = caller.grpc_request(query.into_proto()?)?;
    let response = cases(&state)
        .list_cases(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(CasePage {
        items: response.cases.into_iter().map(Case::from).collect(),
        next_cursor: next_cursor(response.page),
    }))
}

/// Get one case.
#[utoipa::path(
    get,
    path = paths::CASE,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    responses(
        (status = 200, description = "The case", body = Case, headers(
            ("etag" = String, description = "Version of the case"),
        )),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "get_case", skip_all, fields(case_id = %id))]
pub(crate) async fn get_case(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(case::GetCaseRequest { id: id.to_string() })?;
    let response = cases(&state)
        .get_case(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let case = case_of(response.into_inner().case)?;
    Ok(with_etag(case.version, case))
}

/// Seal a case after a legal decision. From then on only admins and auditors can
/// read it; to everyone else it answers 404, like a missing case.
#[utoipa::path(
    post,
    path = paths::CASE_SEAL,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    request_body = SealCase,
    responses(
        (status = 201, description = "The sealed case", body = Case),
        CommonErrors,
        BodyErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "seal_case", skip_all, fields(case_id = %id))]
pub(crate) async fn seal_case(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(body): Json<SealCase>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto(id))?;
    let response = cases(&state)
        .seal_case(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let case = case_of(response.into_inner().case)?;
    Ok(created(None, case.version, case))
}

/// Move a case through its workflow (new → assessment → plan → services → monitoring;
/// back from services to plan or from monitoring to services or assessment). Needs
/// `If-Match`: `428` without it, `412` if someone changed the case since you read it,
/// `409` naming the current stage if the move is not allowed from there.
#[utoipa::path(
    post,
    path = paths::CASE_STAGE,
    tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "Case id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = ChangeStage,
    responses(
        (status = 200, description = "The case at its new stage", body = Case, headers(
            ("etag" = String, description = "New version of the case"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The move is not allowed from the current stage"),
        (status = 412, description = "The case changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "change_stage", skip_all, fields(case_id = %id))]
pub(crate) async fn change_stage(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<ChangeStage>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(case::ChangeStageRequest {
        id: id.to_string(),
        expected_version,
        stage: body.stage.to_proto(),
    })?;
    let response = cases(&state)
        .change_stage(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let case = case_of(response.into_inner().case)?;
    Ok(with_etag(case.version, case))
}

/// Record an assessment of needs, scored 1 (critical) to 5 (fully met) by domain.
/// Repeatable: the scores over time are the case's outcome measure.
#[utoipa::path(
    post,
    path = paths::CASE_ASSESSMENTS,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    request_body = AddAssessment,
    responses(
        (status = 201, description = "The assessment", body = Assessment),
        CommonErrors,
        BodyErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "add_assessment", skip_all, fields(case_id = %id))]
pub(crate) async fn add_assessment(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ForwardedKey(idempotency_key): ForwardedKey,
    Json(body): Json<AddAssessment>,
) -> Result<Response, HavenError> {
    let mut message = body.into_proto(id);
    message.idempotency_key = idempotency_key;
    let request = caller.grpc_request(message)?;
    let response = cases(&state)
        .add_assessment(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let response = response.into_inner();
    let replayed = response.replayed;
    let assessment = response
        .assessment
        .map(Assessment::from)
        .ok_or_else(|| missing_in_response("assessment"))?;
    Ok(mark_replayed(created(None, 0, assessment), replayed))
}

/// A case's assessments, oldest first.
#[utoipa::path(
    get,
    path = paths::CASE_ASSESSMENTS,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    responses(
        (status = 200, description = "The assessments", body = AssessmentList),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "list_assessments", skip_all, fields(case_id = %id))]
pub(crate) async fn list_assessments(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<AssessmentList>, HavenError> {
    let request = caller.grpc_request(case::ListAssessmentsRequest {
        case_id: id.to_string(),
    })?;
    let response = cases(&state)
        .list_assessments(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(AssessmentList {
        items: response
            .assessments
            .into_iter()
            .map(Assessment::from)
            .collect(),
    }))
}

/// Change a case's risk level, flags or assigned caseworkers; only the fields present
/// change (`flags` and `caseworkers` are replaced as a whole). Assigning caseworkers
/// needs the `case.assign` permission (supervisors, admins). Needs `If-Match`: `428`
/// without it, `412` if someone changed the case since you read it.
#[utoipa::path(
    patch,
    path = paths::CASE,
    tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "Case id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = UpdateCase,
    responses(
        (status = 200, description = "The updated case", body = Case, headers(
            ("etag" = String, description = "New version of the case"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 412, description = "The case changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "update_case", skip_all, fields(case_id = %id))]
pub(crate) async fn update_case(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<UpdateCase>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto(id, expected_version)?)?;
    let response = cases(&state)
        .update_case(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let case = case_of(response.into_inner().case)?;
    Ok(with_etag(case.version, case))
}

/// Ask for a case to be closed, with a coded reason (and text with `other`). Refused
/// with `409` while a service is in progress, unless `override_reason` says why. A
/// supervisor then approves or rejects it. Needs `If-Match` of the case.
#[utoipa::path(
    post,
    path = paths::CASE_CLOSURE,
    tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "Case id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = RequestClosure,
    responses(
        (status = 200, description = "The case with its requested closure", body = Case, headers(
            ("etag" = String, description = "New version of the case"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The case cannot be closed now (e.g. a service is in progress)"),
        (status = 412, description = "The case changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "request_closure", skip_all, fields(case_id = %id))]
pub(crate) async fn request_closure(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<RequestClosure>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto(id, expected_version)?)?;
    let response = cases(&state)
        .request_closure(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let case = case_of(response.into_inner().case)?;
    Ok(with_etag(case.version, case))
}

/// Approves or rejects the pending closure of case `id`.
async fn review_closure(
    state: &AppState,
    caller: &Caller,
    id: uuid::Uuid,
    expected_version: u64,
    (decision, comment): (i32, String),
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(case::ReviewClosureRequest {
        case_id: id.to_string(),
        expected_version,
        decision,
        comment,
    })?;
    let response = cases(state)
        .review_closure(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let case = case_of(response.into_inner().case)?;
    Ok(with_etag(case.version, case))
}

/// Approve the pending closure: the case closes. A supervisor other than the one who
/// asked (unless the deployment allows self-approval). Needs `If-Match` of the case.
#[utoipa::path(
    post,
    path = paths::CASE_CLOSURE_APPROVE,
    tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "Case id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = Approve,
    responses(
        (status = 200, description = "The closed case", body = Case, headers(
            ("etag" = String, description = "New version of the case"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "No closure is waiting for a decision"),
        (status = 412, description = "The case changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "approve_closure", skip_all, fields(case_id = %id))]
pub(crate) async fn approve_closure(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<Approve>,
) -> Result<Response, HavenError> {
    review_closure(&state, &caller, id, expected_version, body.decision()).await
}

/// Reject the pending closure, saying why in `comment`: the case stays open. Needs
/// `If-Match` of the case.
#[utoipa::path(
    post,
    path = paths::CASE_CLOSURE_REJECT,
    tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "Case id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = Reject,
    responses(
        (status = 200, description = "The case, still open", body = Case, headers(
            ("etag" = String, description = "New version of the case"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "No closure is waiting for a decision"),
        (status = 412, description = "The case changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "reject_closure", skip_all, fields(case_id = %id))]
pub(crate) async fn reject_closure(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<Reject>,
) -> Result<Response, HavenError> {
    let decision = body.decision()?;
    review_closure(&state, &caller, id, expected_version, decision).await
}

/// Reopen a closed case, saying why. Needs `If-Match` of the case.
#[utoipa::path(
    post,
    path = paths::CASE_REOPEN,
    tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "Case id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = ReopenCase,
    responses(
        (status = 200, description = "The reopened case", body = Case, headers(
            ("etag" = String, description = "New version of the case"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The case is not closed"),
        (status = 412, description = "The case changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "reopen_case", skip_all, fields(case_id = %id))]
pub(crate) async fn reopen_case(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<ReopenCase>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto(id, expected_version))?;
    let response = cases(&state)
        .reopen_case(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let case = case_of(response.into_inner().case)?;
    Ok(with_etag(case.version, case))
}

/// Everything that happened to a case, oldest first, from its event history. The
/// details are the events' fields: codes, ids and dates, never narratives.
#[utoipa::path(
    get,
    path = paths::CASE_TIMELINE,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    responses(
        (status = 200, description = "The timeline", body = Timeline),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "get_timeline", skip_all, fields(case_id = %id))]
pub(crate) async fn get_timeline(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Timeline>, HavenError> {
    let request = caller.grpc_request(case::GetTimelineRequest {
        case_id: id.to_string(),
    })?;
    let response = cases(&state)
        .get_timeline(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(Timeline {
        items: response
            .entries
            .into_iter()
            .map(TimelineEntry::from)
            .collect(),
    }))
}
