//! `/v1/screenings`: screenings, consent and identification decisions (intake).

use axum::extract::State;
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::intake::v1 as intake;
use haven_proto::intake::v1::intake_service_client::IntakeServiceClient;
use tonic::transport::Channel;

use super::{created, paths, with_etag};
use crate::dto::assessment::UpdateScreening;
use crate::dto::screening::{
    CreateScreening, RecordConsent, RecordDecision, Screening, ScreeningPage, ScreeningQuery,
};
use crate::dto::{missing_in_response, next_cursor};
use crate::error::backend_error;
use crate::extract::{Caller, IfMatch, Json, PathId, Query};
use crate::idempotency::ForwardedKey;
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

/// Record a screening of a presumed victim. With `Idempotency-Key`, a retry of the
/// same request returns the screening the first attempt created (as it is now, marked
/// `Idempotency-Replayed: true`) instead of a second one; the same key with another
/// request is `422`. Intake keeps the key, so no copy of the response is stored.
#[utoipa::path(
    post,
    path = paths::SCREENINGS,
    tag = "screenings",
    params(("idempotency-key" = Option<String>, Header, description = "Your key for this create, 1 to 128 printable ASCII characters")),
    request_body = CreateScreening,
    responses(
        (status = 201, description = "Screening recorded", body = Screening, headers(
            ("location" = String, description = "URL of the new screening"),
            ("etag" = String, description = "Version of the screening"),
            ("idempotency-replayed" = String, description = "`true` when an earlier request with this key created it"),
        )),
        CommonErrors,
        BodyErrors,
        (status = 422, description = "The Idempotency-Key was used with a different request"),
    )
)]
#[tracing::instrument(name = "create_screening", skip_all)]
pub(crate) async fn create_screening(
    State(state): State<AppState>,
    caller: Caller,
    ForwardedKey(key): ForwardedKey,
    Json(body): Json<CreateScreening>,
) -> Result<Response, HavenError> {
    let mut message = intake::CreateScreeningRequest::from(body);
    message.idempotency_key = key;
    let request = caller.grpc_request(message)?;
    let response = intake(&state)
        .create_screening(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    let replayed = response.replayed;
    let screening = screening_of(response.screening)?;
    tracing::info!(screening_id = %screening.id, replayed, "screening created");
    let location = paths::expand(paths::SCREENING, &screening.id);
    let mut reply = created(Some(location), screening.version, screening);
    if replayed {
        reply.headers_mut().insert(
            "idempotency-replayed",
            http::HeaderValue::from_static("true"),
        );
    }
    Ok(reply)
}

/// List the screenings of the caller's organisation in the order they were recorded,
/// optionally filtered.
#[utoipa::path(
    get,
    path = paths::SCREENINGS,
    tag = "screenings",
    params(ScreeningQuery),
    responses(
        (status = 200, description = "One page of screenings", body = ScreeningPage),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "list_screenings", skip_all)]
pub(crate) async fn list_screenings(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ScreeningQuery>,
) -> Result<Json<ScreeningPage>, HavenError> {
    let request = caller.grpc_request(query.into_proto()?)?;
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
    path = paths::SCREENING,
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
    path = paths::SCREENING_CONSENTS,
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
    ForwardedKey(key): ForwardedKey,
    Json(body): Json<RecordConsent>,
) -> Result<Response, HavenError> {
    let mut message = body.into_proto(id);
    message.idempotency_key = key;
    let request = caller.grpc_request(message)?;
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
    path = paths::SCREENING_DECISIONS,
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
    ForwardedKey(key): ForwardedKey,
    Json(body): Json<RecordDecision>,
) -> Result<Response, HavenError> {
    let mut message = body.into_proto(id);
    message.idempotency_key = key;
    let request = caller.grpc_request(message)?;
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

/// Replace the assessment parts of a screening (indicators, exploitation, risk). Needs
/// `If-Match` with the screening's ETag: `428` without it, `412` if someone changed
/// the screening since.
#[utoipa::path(
    patch,
    path = paths::SCREENING,
    tag = "screenings",
    params(
        ("id" = uuid::Uuid, Path, description = "Screening id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = UpdateScreening,
    responses(
        (status = 200, description = "The updated screening", body = Screening, headers(
            ("etag" = String, description = "New version of the screening"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 412, description = "The screening changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "update_screening", skip_all, fields(screening_id = %id))]
pub(crate) async fn update_screening(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<UpdateScreening>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(intake::UpdateScreeningRequest {
        id: id.to_string(),
        expected_version,
        indicators: body.indicators.map(Into::into),
        exploitation: body.exploitation.map(Into::into),
        risk: body.risk.map(Into::into),
    })?;
    let response = intake(&state)
        .update_screening(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let screening = screening_of(response.into_inner().screening)?;
    Ok(with_etag(screening.version, screening))
}
