//! `/v1/cases`: cases (case service).

use axum::extract::State;
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::case::v1 as case;
use haven_proto::case::v1::case_service_client::CaseServiceClient;
use tonic::transport::Channel;

use super::{created, with_etag};
use crate::dto::case::{
    AddAssessment, Assessment, AssessmentList, Case, CasePage, CaseQuery, ChangeStage, SealCase,
};
use crate::dto::{missing_in_response, next_cursor};
use crate::error::backend_error;
use crate::extract::{Caller, Json, PathId, Query};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

const BACKEND: &str = "case";

fn cases(state: &AppState) -> CaseServiceClient<Channel> {
    CaseServiceClient::new(state.backends().case.channel.clone())
}

fn case_of(case: Option<case::Case>) -> Result<Case, HavenError> {
    case.map(Case::from)
        .ok_or_else(|| missing_in_response("case"))
}

/// List the cases of the caller's organisation.
#[utoipa::path(
    get,
    path = "/v1/cases",
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
    path = "/v1/cases/{id}",
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
    path = "/v1/cases/{id}/seal",
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
    let request = caller.grpc_request(body.into_proto(id)?)?;
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
    path = "/v1/cases/{id}/stage",
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
    headers: http::HeaderMap,
    Json(body): Json<ChangeStage>,
) -> Result<Response, HavenError> {
    let expected_version = super::screenings::if_match(&headers)?;
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
    path = "/v1/cases/{id}/assessments",
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
    Json(body): Json<AddAssessment>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto(id))?;
    let response = cases(&state)
        .add_assessment(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let assessment = response
        .into_inner()
        .assessment
        .map(Assessment::from)
        .ok_or_else(|| missing_in_response("assessment"))?;
    Ok(created(None, 0, assessment))
}

/// A case's assessments, oldest first.
#[utoipa::path(
    get,
    path = "/v1/cases/{id}/assessments",
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
