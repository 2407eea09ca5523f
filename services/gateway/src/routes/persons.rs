//! `/v1/persons`: a person's details (audited), erasure, and who accessed them
//! (intake); `/v1/screenings/{id}/matches`: duplicate candidates.

use axum::extract::State;
use haven_error::HavenError;
use haven_proto::intake::v1 as intake;
use haven_proto::intake::v1::intake_service_client::IntakeServiceClient;
use tonic::transport::Channel;

use super::paths;
use crate::dto::person::{AccessLog, ConfirmMatch, ErasePerson, Matches, Person};
use crate::dto::{PageQuery, missing_in_response, next_cursor, require_text};
use crate::error::backend_error;
use crate::extract::{Caller, Json, PathId, Query};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

const BACKEND: &str = "intake";

fn intake(state: &AppState) -> IntakeServiceClient<Channel> {
    IntakeServiceClient::new(state.backends().intake.channel.clone())
}

fn person_of(person: Option<intake::Person>) -> Result<Person, HavenError> {
    person
        .map(Person::from)
        .ok_or_else(|| missing_in_response("person"))
}

/// Read a person's details. Every read is written to the audit trail with the
/// purpose stated in `X-Haven-Purpose` (default `assistance`).
#[utoipa::path(
    get,
    path = paths::PERSON,
    tag = "persons",
    params(
        ("id" = uuid::Uuid, Path, description = "Person id"),
        ("x-haven-purpose" = Option<String>, Header, description = "Why you read it, e.g. `assistance`"),
    ),
    responses(
        (status = 200, description = "The person", body = Person),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "get_person", skip_all, fields(person_id = %id))]
pub(crate) async fn get_person(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Person>, HavenError> {
    let request = caller.grpc_request(intake::GetPersonRequest { id: id.to_string() })?;
    let response = intake(&state)
        .get_person(request)
        .await
        .map_err(backend_error(BACKEND))?;
    Ok(Json(person_of(response.into_inner().person)?))
}

/// Erase a person: their data key is destroyed (crypto-shredding) and they leave the
/// duplicate-search index. The pseudonymous code and aggregates remain.
#[utoipa::path(
    delete,
    path = paths::PERSON,
    tag = "persons",
    params(("id" = uuid::Uuid, Path, description = "Person id")),
    request_body = ErasePerson,
    responses(
        (status = 200, description = "The erased person (no details)", body = Person),
        CommonErrors,
        BodyErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "erase_person", skip_all, fields(person_id = %id))]
pub(crate) async fn erase_person(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(body): Json<ErasePerson>,
) -> Result<Json<Person>, HavenError> {
    require_text("reason", &body.reason)?;
    let request = caller.grpc_request(intake::ErasePersonRequest {
        id: id.to_string(),
        reason: body.reason,
    })?;
    let response = intake(&state)
        .erase_person(request)
        .await
        .map_err(backend_error(BACKEND))?;
    Ok(Json(person_of(response.into_inner().person)?))
}

/// Who accessed a person: the audit trail entries about them, oldest first.
#[utoipa::path(
    get,
    path = paths::PERSON_ACCESS_LOG,
    tag = "persons",
    params(("id" = uuid::Uuid, Path, description = "Person id"), PageQuery),
    responses(
        (status = 200, description = "One page of the access log", body = AccessLog),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "person_access_log", skip_all, fields(person_id = %id))]
pub(crate) async fn access_log(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Query(query): Query<PageQuery>,
) -> Result<Json<AccessLog>, HavenError> {
    let request = caller.grpc_request(intake::ListPersonAccessRequest {
        person_id: id.to_string(),
        page: Some(query.into_proto()?),
    })?;
    let response = intake(&state)
        .list_person_access(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(AccessLog {
        items: response.entries.into_iter().map(Into::into).collect(),
        next_cursor: next_cursor(response.page),
    }))
}

/// Persons whose name (in any spelling or script) and birth year match the
/// screening's person, found only through keyed blind indexes. Rate-limited per user
/// and audited.
#[utoipa::path(
    get,
    path = paths::SCREENING_MATCHES,
    tag = "screenings",
    params(("id" = uuid::Uuid, Path, description = "Screening id")),
    responses(
        (status = 200, description = "Duplicate candidates", body = Matches),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "find_matches", skip_all, fields(screening_id = %id))]
pub(crate) async fn find_matches(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Matches>, HavenError> {
    let request = caller.grpc_request(intake::FindMatchesRequest {
        screening_id: id.to_string(),
    })?;
    let response = intake(&state)
        .find_matches(request)
        .await
        .map_err(backend_error(BACKEND))?;
    Ok(Json(Matches::from(response.into_inner())))
}

/// Confirm that a match is the same person seen before: links the two records and
/// marks the screening as re-trafficking (counted by reporting). Both records must be
/// your organisation's.
#[utoipa::path(
    post,
    path = paths::SCREENING_MATCHES_CONFIRM,
    tag = "screenings",
    params(("id" = uuid::Uuid, Path, description = "Screening id")),
    request_body = ConfirmMatch,
    responses(
        (status = 201, description = "The screening, marked as re-trafficking", body = crate::dto::screening::Screening),
        CommonErrors,
        BodyErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "confirm_match", skip_all, fields(screening_id = %id))]
pub(crate) async fn confirm_match(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(body): Json<ConfirmMatch>,
) -> Result<axum::response::Response, HavenError> {
    let request = caller.grpc_request(intake::ConfirmMatchRequest {
        screening_id: id.to_string(),
        person_id: body.person_id.to_string(),
    })?;
    let response = intake(&state)
        .confirm_match(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let screening = response
        .into_inner()
        .screening
        .map(crate::dto::screening::Screening::from)
        .ok_or_else(|| missing_in_response("screening"))?;
    Ok(super::created(None, screening.version, screening))
}
