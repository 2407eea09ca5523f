//! `/v1/clocks`: statutory deadlines (intake); `/v1/indicator_sets`: the trafficking
//! indicator sets screenings answer.

use axum::extract::{Path, State};
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::intake::v1 as intake;
use haven_proto::intake::v1::clock_service_client::ClockServiceClient;
use haven_proto::intake::v1::indicator_set_service_client::IndicatorSetServiceClient;
use tonic::transport::Channel;

use super::{created, paths};
use crate::dto::clock::{
    Clock, ClockPage, ClockQuery, IndicatorSet, IndicatorSetList, PublishIndicatorSet,
};
use crate::dto::{missing_in_response, next_cursor};
use crate::error::backend_error;
use crate::extract::{Caller, Json, PathId, Query};
use crate::idempotency::{ForwardedKey, mark_replayed};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

const BACKEND: &str = "intake";

fn clocks(state: &AppState) -> ClockServiceClient<Channel> {
    ClockServiceClient::new(state.backends().intake.channel.clone())
}

fn indicator_sets(state: &AppState) -> IndicatorSetServiceClient<Channel> {
    IndicatorSetServiceClient::new(state.backends().intake.channel.clone())
}

/// Statutory clocks of your organisation, soonest due first: what is due or overdue.
#[utoipa::path(
    get,
    path = paths::CLOCKS,
    tag = "clocks",
    params(ClockQuery),
    responses(
        (status = 200, description = "One page of clocks", body = ClockPage),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "list_clocks", skip_all)]
pub(crate) async fn list_clocks(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ClockQuery>,
) -> Result<Json<ClockPage>, HavenError> {
    let request = caller.grpc_request(query.into_proto()?)?;
    let response = clocks(&state)
        .list_clocks(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(ClockPage {
        items: response.clocks.into_iter().map(Clock::from).collect(),
        next_cursor: next_cursor(response.page),
    }))
}

/// Record that a clock's obligation was met.
#[utoipa::path(
    post,
    path = paths::CLOCK_COMPLETE,
    tag = "clocks",
    params(("id" = uuid::Uuid, Path, description = "Clock id")),
    responses(
        (status = 201, description = "The completed clock", body = Clock),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "complete_clock", skip_all, fields(clock_id = %id))]
pub(crate) async fn complete_clock(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(intake::CompleteClockRequest { id: id.to_string() })?;
    let response = clocks(&state)
        .complete_clock(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let clock = response
        .into_inner()
        .clock
        .map(Clock::from)
        .ok_or_else(|| missing_in_response("clock"))?;
    Ok(created(None, 0, clock))
}

/// Every published indicator set version, newest first.
#[utoipa::path(
    get,
    path = paths::INDICATOR_SETS,
    tag = "screenings",
    responses(
        (status = 200, description = "Indicator set versions", body = IndicatorSetList),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "list_indicator_sets", skip_all)]
pub(crate) async fn list_indicator_sets(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<IndicatorSetList>, HavenError> {
    let request = caller.grpc_request(intake::ListIndicatorSetsRequest {})?;
    let response = indicator_sets(&state)
        .list_indicator_sets(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(IndicatorSetList {
        items: response.sets.into_iter().map(IndicatorSet::from).collect(),
    }))
}

/// One indicator set version.
#[utoipa::path(
    get,
    path = paths::INDICATOR_SET,
    tag = "screenings",
    params(("version" = u32, Path, description = "Version")),
    responses(
        (status = 200, description = "The indicator set", body = IndicatorSet),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "get_indicator_set", skip_all)]
pub(crate) async fn get_indicator_set(
    State(state): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> Result<Json<IndicatorSet>, HavenError> {
    let version: u32 = version
        .parse()
        .ok()
        .filter(|version| *version > 0)
        .ok_or_else(|| HavenError::invalid_field("version", "must be a positive number"))?;
    let request = caller.grpc_request(intake::GetIndicatorSetRequest { version })?;
    let response = indicator_sets(&state)
        .get_indicator_set(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let set = response
        .into_inner()
        .set
        .map(IndicatorSet::from)
        .ok_or_else(|| missing_in_response("indicator set"))?;
    Ok(Json(set))
}

/// Publish a new indicator set version (no migration needed; screenings keep the
/// version they were assessed with).
#[utoipa::path(
    post,
    path = paths::INDICATOR_SETS,
    tag = "screenings",
    request_body = PublishIndicatorSet,
    responses(
        (status = 201, description = "The published version", body = IndicatorSet),
        CommonErrors,
        BodyErrors,
    )
)]
#[tracing::instrument(name = "publish_indicator_set", skip_all)]
pub(crate) async fn publish_indicator_set(
    State(state): State<AppState>,
    caller: Caller,
    ForwardedKey(idempotency_key): ForwardedKey,
    Json(body): Json<PublishIndicatorSet>,
) -> Result<Response, HavenError> {
    let mut message = intake::PublishIndicatorSetRequest::from(body);
    message.idempotency_key = idempotency_key;
    let request = caller.grpc_request(message)?;
    let response = indicator_sets(&state)
        .publish_indicator_set(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let response = response.into_inner();
    let replayed = response.replayed;
    let set = response
        .set
        .map(IndicatorSet::from)
        .ok_or_else(|| missing_in_response("indicator set"))?;
    let location = paths::expand(paths::INDICATOR_SET, set.version);
    Ok(mark_replayed(
        created(Some(location), u64::from(set.version), set),
        replayed,
    ))
}
