//! `/v1/cases/{id}/follow_ups` and `/v1/follow_ups`: visits, calls and meetings
//! scheduled for cases, and their outcomes (case service).

use axum::extract::State;
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::case::v1 as case;

use super::cases::{BACKEND, cases};
use super::{created, paths, with_etag};
use crate::dto::follow_up::{
    FollowUp, FollowUpPage, FollowUpQuery, RecordFollowUpOutcome, ScheduleFollowUp,
};
use crate::dto::{missing_in_response, next_cursor};
use crate::error::backend_error;
use crate::extract::{Caller, IfMatch, Json, PathId, PathIds, Query};
use crate::idempotency::{ForwardedKey, mark_replayed};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

fn follow_up_of(follow_up: Option<case::FollowUp>) -> Result<FollowUp, HavenError> {
    follow_up
        .map(FollowUp::from)
        .ok_or_else(|| missing_in_response("follow-up"))
}

async fn list(
    state: &AppState,
    caller: &Caller,
    message: case::ListFollowUpsRequest,
) -> Result<Json<FollowUpPage>, HavenError> {
    let request = caller.grpc_request(message)?;
    let response = cases(state)
        .list_follow_ups(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(FollowUpPage {
        items: response
            .follow_ups
            .into_iter()
            .map(FollowUp::from)
            .collect(),
        next_cursor: next_cursor(response.page),
    }))
}

/// Schedule a follow-up (visit, call, office meeting) of a case, assigned to you or
/// to another caseworker.
#[utoipa::path(
    post,
    path = paths::CASE_FOLLOW_UPS,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    request_body = ScheduleFollowUp,
    responses(
        (status = 201, description = "The follow-up", body = FollowUp, headers(
            ("etag" = String, description = "Version of the follow-up"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "schedule_follow_up", skip_all, fields(case_id = %id))]
pub(crate) async fn schedule_follow_up(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ForwardedKey(idempotency_key): ForwardedKey,
    Json(body): Json<ScheduleFollowUp>,
) -> Result<Response, HavenError> {
    let mut message = body.into_proto(id)?;
    message.idempotency_key = idempotency_key;
    let request = caller.grpc_request(message)?;
    let response = cases(&state)
        .schedule_follow_up(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let response = response.into_inner();
    let follow_up = follow_up_of(response.follow_up)?;
    Ok(mark_replayed(
        created(None, follow_up.version, follow_up),
        response.replayed,
    ))
}

/// A case's follow-ups, optionally only one caseworker's or only overdue ones.
#[utoipa::path(
    get,
    path = paths::CASE_FOLLOW_UPS,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id"), FollowUpQuery),
    responses(
        (status = 200, description = "One page of follow-ups", body = FollowUpPage),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "list_case_follow_ups", skip_all, fields(case_id = %id))]
pub(crate) async fn list_case_follow_ups(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Query(query): Query<FollowUpQuery>,
) -> Result<Json<FollowUpPage>, HavenError> {
    list(&state, &caller, query.into_proto(Some(id))?).await
}

/// The follow-ups of your organisation's cases, e.g. the overdue ones of one
/// caseworker (`assigned_to=...&overdue=true`).
#[utoipa::path(
    get,
    path = paths::FOLLOW_UPS,
    tag = "cases",
    params(FollowUpQuery),
    responses(
        (status = 200, description = "One page of follow-ups", body = FollowUpPage),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "list_follow_ups", skip_all)]
pub(crate) async fn list_follow_ups(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<FollowUpQuery>,
) -> Result<Json<FollowUpPage>, HavenError> {
    list(&state, &caller, query.into_proto(None)?).await
}

/// Record what came of a follow-up. Needs `If-Match` of the follow-up: `428` without
/// it, `412` if someone changed it since you read it.
#[utoipa::path(
    post,
    path = paths::CASE_FOLLOW_UP_OUTCOME,
    tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "Case id"),
        ("follow_up_id" = uuid::Uuid, Path, description = "Follow-up id"),
        ("if-match" = String, Header, description = "ETag of the follow-up as you read it"),
    ),
    request_body = RecordFollowUpOutcome,
    responses(
        (status = 200, description = "The follow-up with its outcome", body = FollowUp, headers(
            ("etag" = String, description = "New version of the follow-up"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The outcome was recorded already"),
        (status = 412, description = "The follow-up changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "record_follow_up_outcome", skip_all, fields(case_id = %case_id, follow_up_id = %id))]
pub(crate) async fn record_follow_up_outcome(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(case_id, id): PathIds,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<RecordFollowUpOutcome>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto(case_id, id, expected_version))?;
    let response = cases(&state)
        .record_follow_up_outcome(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let follow_up = follow_up_of(response.into_inner().follow_up)?;
    Ok(with_etag(follow_up.version, follow_up))
}
