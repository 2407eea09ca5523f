//! `/v1/screenings`: screenings, consent and identification decisions (intake).

use axum::extract::State;
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::intake::v1 as intake;
use haven_proto::intake::v1::intake_service_client::IntakeServiceClient;
use tonic::transport::Channel;

use super::{created, with_etag};
use crate::dto::screening::{
    CreateScreening, RecordConsent, RecordDecision, Screening, ScreeningPage,
};
use crate::dto::{PageQuery, missing_in_response, next_cursor};
use crate::error::backend_error;
use crate::extract::{Caller, Json, PathId, Query};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

const BACKEND: &str = "intake";

fn intake(state: &AppState) -> IntakeServiceClient<Channel> {
    IntakeServiceClient::new(state.backends().intake.channel.clone())
}

fn screening_of(screening: Option<intake::Screening>) -> Result<Screening, HavenError> {
    screening
        .map(Screening::from)
        .ok_or_else(|| missing_in_response("screening"))
}

/// Record a screening of a presumed victim.
#[utoipa::path(
    post,
    path = "/v1/screenings",
    tag = "screenings",
    request_body = CreateScreening,
    responses(
        (status = 201, description = "Screening recorded", body = Screening, headers(
            ("location" = String, description = "URL of the new screening"),
            ("etag" = String, description = "Version of the screening"),
        )),
        CommonErrors,
        BodyErrors,
    )
)]
#[tracing::instrument(name = "create_screening", skip_all)]
pub(crate) async fn create_screening(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateScreening>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(intake::CreateScreeningRequest::from(body))?;
    let response = intake(&state)
        .create_screening(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let screening = screening_of(response.into_inner().screening)?;
    tracing::info!(screening_id = %screening.id, "screening created");
    let location = format!("/v1/screenings/{}", screening.id);
    Ok(created(Some(location), screening.version, screening))
}

/// List the screenings of the caller's organisation, newest first.
#[utoipa::path(
    get,
    path = "/v1/screenings",
    tag = "screenings",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of screenings", body = ScreeningPage),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "list_screenings", skip_all)]
pub(crate) async fn list_screenings(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Json<ScreeningPage>, HavenError> {
    let page = query.into_proto()?;
    let request = caller.grpc_request(intake::ListScreeningsRequest {
        page: Some(page),
        ..Default::default()
    })?;
    let response = intake(&state)
        .list_screenings(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(ScreeningPage {
        items: response
            .screenings
            .into_iter()
            .map(Screening::from)
            .collect(),
        next_cursor: next_cursor(response.page),
    }))
}

/// Get one screening.
#[utoipa::path(
    get,
    path = "/v1/screenings/{id}",
    tag = "screenings",
    params(("id" = uuid::Uuid, Path, description = "Screening id")),
    responses(
        (status = 200, description = "The screening", body = Screening, headers(
            ("etag" = String, description = "Version of the screening"),
        )),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "get_screening", skip_all, fields(screening_id = %id))]
pub(crate) async fn get_screening(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(intake::GetScreeningRequest { id: id.to_string() })?;
    let response = intake(&state)
        .get_screening(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let screening = screening_of(response.into_inner().screening)?;
    Ok(with_etag(screening.version, screening))
}

/// Record that the person gave, refused or withdrew consent.
#[utoipa::path(
    post,
    path = "/v1/screenings/{id}/consents",
    tag = "screenings",
    params(("id" = uuid::Uuid, Path, description = "Screening id")),
    request_body = RecordConsent,
    responses(
        (status = 201, description = "Consent recorded; the updated screening", body = Screening, headers(
            ("etag" = String, description = "Version of the screening"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "record_consent", skip_all, fields(screening_id = %id))]
pub(crate) async fn record_consent(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(body): Json<RecordConsent>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto(id))?;
    let response = intake(&state)
        .record_consent(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let screening = screening_of(response.into_inner().screening)?;
    Ok(created(None, screening.version, screening))
}

/// Record an identification decision. When the person is identified and has
/// consented to assistance, intake opens a case and the screening's `case_id` is set.
#[utoipa::path(
    post,
    path = "/v1/screenings/{id}/decisions",
    tag = "screenings",
    params(("id" = uuid::Uuid, Path, description = "Screening id")),
    request_body = RecordDecision,
    responses(
        (status = 201, description = "Decision recorded; the updated screening", body = Screening, headers(
            ("etag" = String, description = "Version of the screening"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "record_decision", skip_all, fields(screening_id = %id))]
pub(crate) async fn record_decision(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(body): Json<RecordDecision>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto(id)?)?;
    let response = intake(&state)
        .record_decision(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let screening = screening_of(response.into_inner().screening)?;
    if let Some(case_id) = &screening.case_id {
        tracing::info!(case_id = %case_id, "screening has a case");
    }
    Ok(created(None, screening.version, screening))
}
