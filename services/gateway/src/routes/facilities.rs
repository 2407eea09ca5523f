//! `/v1/facilities`, `/v1/coverage` and `/v1/settlements`: where organisations deliver
//! services, the search for a place, the coverage report and the gazetteer (referral
//! service). The directory is read across organisations: a caseworker looks for a
//! shelter of any organisation.

use axum::extract::State;
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::referral::v1 as referral;

use super::organizations::{BACKEND, referral};
use super::{created, paths, with_etag};
use crate::dto::facility::{
    Coverage, CoverageQuery, CreateFacility, Facility, FacilityDetails, FacilityPage,
    FacilityQuery, FacilitySearch, SearchQuery, SettlementList,
};
use crate::dto::{missing_in_response, next_cursor};
use crate::error::backend_error;
use crate::extract::{Caller, IfMatch, Json, PathId, Query};
use crate::idempotency::{ForwardedKey, mark_replayed};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

fn facility_of(facility: Option<referral::Facility>) -> Result<Facility, HavenError> {
    facility
        .map(Facility::from)
        .ok_or_else(|| missing_in_response("facility"))
}

/// Add a facility of your organisation (admins of the directory may name another
/// organisation; it must be in the directory): where it is, the services it offers,
/// its capacity and whom it accepts.
#[utoipa::path(
    post,
    path = paths::FACILITIES,
    tag = "facilities",
    request_body = CreateFacility,
    responses(
        (status = 201, description = "Facility added", body = Facility, headers(
            ("location" = String, description = "URL of the new facility"),
            ("etag" = String, description = "Version of the facility"),
        )),
        CommonErrors,
        BodyErrors,
    )
)]
#[tracing::instrument(name = "create_facility", skip_all)]
pub(crate) async fn create_facility(
    State(state): State<AppState>,
    caller: Caller,
    ForwardedKey(idempotency_key): ForwardedKey,
    Json(body): Json<CreateFacility>,
) -> Result<Response, HavenError> {
    let mut message = body.into_proto()?;
    message.idempotency_key = idempotency_key;
    let request = caller.grpc_request(message)?;
    let response = referral(&state)
        .create_facility(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let response = response.into_inner();
    let facility = facility_of(response.facility)?;
    tracing::info!(facility_id = %facility.id, replayed = response.replayed, "facility created");
    let location = paths::expand(paths::FACILITY, &facility.id);
    Ok(mark_replayed(
        created(Some(location), facility.version, facility),
        response.replayed,
    ))
}

/// List facilities of every organisation, oldest first, optionally filtered (all
/// filters given must match): by organisation, service type, settlement, active ones
/// only.
#[utoipa::path(
    get,
    path = paths::FACILITIES,
    tag = "facilities",
    params(FacilityQuery),
    responses(
        (status = 200, description = "One page of facilities", body = FacilityPage),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "list_facilities", skip_all)]
pub(crate) async fn list_facilities(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<FacilityQuery>,
) -> Result<Json<FacilityPage>, HavenError> {
    let request = caller.grpc_request(query.into_proto()?)?;
    let response = referral(&state)
        .list_facilities(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(FacilityPage {
        items: response
            .facilities
            .into_iter()
            .map(Facility::from)
            .collect(),
        next_cursor: next_cursor(response.page),
    }))
}

/// Get one facility, of any organisation.
#[utoipa::path(
    get,
    path = paths::FACILITY,
    tag = "facilities",
    params(("id" = uuid::Uuid, Path, description = "Facility id")),
    responses(
        (status = 200, description = "The facility", body = Facility, headers(
            ("etag" = String, description = "Version of the facility"),
        )),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "get_facility", skip_all, fields(facility_id = %id))]
pub(crate) async fn get_facility(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(referral::GetFacilityRequest { id: id.to_string() })?;
    let response = referral(&state)
        .get_facility(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let facility = facility_of(response.into_inner().facility)?;
    Ok(with_etag(facility.version, facility))
}

/// Replace the details of a facility of your organisation. The body is the whole of
/// them, not a patch: a field left out takes its default (see the body's schema), it
/// does not keep its current value. To change one field, send what you read with
/// that field changed. Needs `If-Match`: `428` without it, `412` if someone changed
/// the facility since you read it. Another organisation's facility answers `404`.
#[utoipa::path(
    patch,
    path = paths::FACILITY,
    tag = "facilities",
    params(
        ("id" = uuid::Uuid, Path, description = "Facility id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = FacilityDetails,
    responses(
        (status = 200, description = "The facility with its new details", body = Facility, headers(
            ("etag" = String, description = "New version of the facility"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The change conflicts with the facility's state (e.g. capacity below the places held)"),
        (status = 412, description = "The facility changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "update_facility", skip_all, fields(facility_id = %id))]
pub(crate) async fn update_facility(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<FacilityDetails>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_update(id, expected_version)?)?;
    let response = referral(&state)
        .update_facility(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let facility = facility_of(response.into_inner().facility)?;
    Ok(with_etag(facility.version, facility))
}

/// Find a place: active facilities offering a service within a radius of a
/// settlement or a point, with free capacity (unless `include_full`), accepting the
/// person's profile, nearest first. Give `settlement`, or `latitude` and `longitude`
/// together.
#[utoipa::path(
    get,
    path = paths::FACILITY_SEARCH,
    tag = "facilities",
    params(SearchQuery),
    responses(
        (status = 200, description = "Facilities found, nearest first", body = FacilitySearch),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "search_facilities", skip_all)]
pub(crate) async fn search_facilities(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<SearchQuery>,
) -> Result<Json<FacilitySearch>, HavenError> {
    let request = caller.grpc_request(query.into_proto()?)?;
    let response = referral(&state)
        .search_facilities(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(FacilitySearch::from(response)))
}

/// Coverage of a service type: how many settlements of the gazetteer are within the
/// radius of an active facility offering it, and which are not (farthest first, with
/// the nearest facility).
#[utoipa::path(
    get,
    path = paths::COVERAGE,
    tag = "facilities",
    params(CoverageQuery),
    responses(
        (status = 200, description = "The coverage", body = Coverage),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "get_coverage", skip_all)]
pub(crate) async fn get_coverage(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<CoverageQuery>,
) -> Result<Json<Coverage>, HavenError> {
    let request = caller.grpc_request(query.into_proto()?)?;
    let response = referral(&state)
        .get_coverage(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(Coverage::from(response)))
}

/// The gazetteer: the settlements facilities and searches name.
#[utoipa::path(
    get,
    path = paths::SETTLEMENTS,
    tag = "facilities",
    responses(
        (status = 200, description = "Every settlement", body = SettlementList),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "list_settlements", skip_all)]
pub(crate) async fn list_settlements(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SettlementList>, HavenError> {
    let request = caller.grpc_request(referral::ListSettlementsRequest {})?;
    let response = referral(&state)
        .list_settlements(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(SettlementList::from(response)))
}
