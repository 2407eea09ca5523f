//! `/v1/referrals`: referring a case to a facility of another organisation, the
//! referral's lifecycle, and what it discloses about the person (referral service).
//! A referral is visible to the sending and the receiving organisation only; to any
//! other it answers `404`.

use axum::extract::State;
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::referral::v1 as referral;

use super::organizations::{BACKEND, referral};
use super::{created, paths, with_etag};
use crate::dto::referral::{
    CompleteReferral, CreateReferral, Disclosure, NoDetails, Referral, ReferralPage, ReferralQuery,
    StatusReason,
};
use crate::dto::{missing_in_response, next_cursor};
use crate::error::backend_error;
use crate::extract::{Caller, IfMatch, Json, PathId, Query};
use crate::idempotency::{ForwardedKey, mark_replayed};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

fn referral_of(referral: Option<referral::Referral>) -> Result<Referral, HavenError> {
    referral
        .map(Referral::from)
        .ok_or_else(|| missing_in_response("referral"))
}

/// Refer a case of your organisation to a facility of another one, for a service it
/// offers (`400` naming `service_type` if it does not). Refused with `409` unless the
/// person's newest data-sharing consent allows sharing with the receiving
/// organisation's type, and when the facility is inactive or the case closed.
#[utoipa::path(
    post,
    path = paths::REFERRALS,
    tag = "referrals",
    request_body = CreateReferral,
    responses(
        (status = 201, description = "The referral, waiting for the receiving organisation", body = Referral, headers(
            ("location" = String, description = "URL of the new referral"),
            ("etag" = String, description = "Version of the referral"),
        )),
        CommonErrors,
        BodyErrors,
        (status = 404, description = "No such case in your organisation, or no such facility"),
        (status = 409, description = "No data-sharing consent for the receiving organisation's type, the facility is inactive, or the case is closed"),
    )
)]
#[tracing::instrument(name = "create_referral", skip_all)]
pub(crate) async fn create_referral(
    State(state): State<AppState>,
    caller: Caller,
    ForwardedKey(idempotency_key): ForwardedKey,
    Json(body): Json<CreateReferral>,
) -> Result<Response, HavenError> {
    let mut message = body.into_proto()?;
    message.idempotency_key = idempotency_key;
    let request = caller.grpc_request(message)?;
    let response = referral(&state)
        .create_referral(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let response = response.into_inner();
    let referral = referral_of(response.referral)?;
    tracing::info!(referral_id = %referral.id, replayed = response.replayed, "referral created");
    let location = paths::expand(paths::REFERRAL, &referral.id);
    Ok(mark_replayed(
        created(Some(location), referral.version, referral),
        response.replayed,
    ))
}

/// List referrals sent by or to your organisation, oldest first, optionally filtered
/// (all filters given must match).
#[utoipa::path(
    get,
    path = paths::REFERRALS,
    tag = "referrals",
    params(ReferralQuery),
    responses(
        (status = 200, description = "One page of referrals", body = ReferralPage),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "list_referrals", skip_all)]
pub(crate) async fn list_referrals(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ReferralQuery>,
) -> Result<Json<ReferralPage>, HavenError> {
    let request = caller.grpc_request(query.into_proto()?)?;
    let response = referral(&state)
        .list_referrals(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(ReferralPage {
        items: response.referrals.into_iter().map(Referral::from).collect(),
        next_cursor: next_cursor(response.page),
    }))
}

/// Get one referral sent by or to your organisation.
#[utoipa::path(
    get,
    path = paths::REFERRAL,
    tag = "referrals",
    params(("id" = uuid::Uuid, Path, description = "Referral id")),
    responses(
        (status = 200, description = "The referral", body = Referral, headers(
            ("etag" = String, description = "Version of the referral"),
        )),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "get_referral", skip_all, fields(referral_id = %id))]
pub(crate) async fn get_referral(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(referral::GetReferralRequest { id: id.to_string() })?;
    let response = referral(&state)
        .get_referral(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let referral = referral_of(response.into_inner().referral)?;
    Ok(with_etag(referral.version, referral))
}

/// What a status change sends besides the new status.
#[derive(Default)]
struct Change {
    reason: String,
    outcome: String,
}

/// Moves referral `id` to `status` at the version `If-Match` names.
async fn change_status(
    state: &AppState,
    caller: &Caller,
    id: uuid::Uuid,
    expected_version: u64,
    status: referral::ReferralStatus,
    change: Change,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(referral::ChangeReferralStatusRequest {
        id: id.to_string(),
        expected_version,
        status: status as i32,
        reason: change.reason,
        outcome: change.outcome,
    })?;
    let response = referral(state)
        .change_referral_status(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let referral = referral_of(response.into_inner().referral)?;
    tracing::info!(status = status.as_str_name(), "referral status changed");
    Ok(with_etag(referral.version, referral))
}

/// Accept a referral to your organisation: a place is held for the person. From
/// `requested`. Accepting, declining, starting and completing are the receiving
/// organisation's (`403` for the sender); cancelling and revoking the sender's. Each
/// needs `If-Match` of the referral: `428` without it, `412` if it changed since you
/// read it, `409` if the move is not allowed from its status.
#[utoipa::path(
    post,
    path = paths::REFERRAL_ACCEPT,
    tag = "referrals",
    params(
        ("id" = uuid::Uuid, Path, description = "Referral id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = NoDetails,
    responses(
        (status = 200, description = "The accepted referral", body = Referral, headers(
            ("etag" = String, description = "New version of the referral"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The referral is not waiting for an answer, or the facility has no free capacity"),
        (status = 412, description = "The referral changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "accept_referral", skip_all, fields(referral_id = %id))]
pub(crate) async fn accept_referral(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(NoDetails {}): Json<NoDetails>,
) -> Result<Response, HavenError> {
    let status = referral::ReferralStatus::Accepted;
    change_status(
        &state,
        &caller,
        id,
        expected_version,
        status,
        Change::default(),
    )
    .await
}

/// Decline a referral to your organisation, saying why. From `requested`. Needs
/// `If-Match` of the referral.
#[utoipa::path(
    post,
    path = paths::REFERRAL_DECLINE,
    tag = "referrals",
    params(
        ("id" = uuid::Uuid, Path, description = "Referral id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = StatusReason,
    responses(
        (status = 200, description = "The declined referral", body = Referral, headers(
            ("etag" = String, description = "New version of the referral"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The referral is not waiting for an answer"),
        (status = 412, description = "The referral changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "decline_referral", skip_all, fields(referral_id = %id))]
pub(crate) async fn decline_referral(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<StatusReason>,
) -> Result<Response, HavenError> {
    let change = Change {
        reason: body.into_reason()?,
        ..Change::default()
    };
    let status = referral::ReferralStatus::Declined;
    change_status(&state, &caller, id, expected_version, status, change).await
}

/// Record that the service has started for the person. From `accepted`. Needs
/// `If-Match` of the referral.
#[utoipa::path(
    post,
    path = paths::REFERRAL_START,
    tag = "referrals",
    params(
        ("id" = uuid::Uuid, Path, description = "Referral id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = NoDetails,
    responses(
        (status = 200, description = "The referral, in progress", body = Referral, headers(
            ("etag" = String, description = "New version of the referral"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The referral is not accepted"),
        (status = 412, description = "The referral changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "start_referral", skip_all, fields(referral_id = %id))]
pub(crate) async fn start_referral(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(NoDetails {}): Json<NoDetails>,
) -> Result<Response, HavenError> {
    let status = referral::ReferralStatus::InProgress;
    change_status(
        &state,
        &caller,
        id,
        expected_version,
        status,
        Change::default(),
    )
    .await
}

/// Record what came of a referral; the place held is released. From `accepted` or
/// `in_progress`. Needs `If-Match` of the referral.
#[utoipa::path(
    post,
    path = paths::REFERRAL_COMPLETE,
    tag = "referrals",
    params(
        ("id" = uuid::Uuid, Path, description = "Referral id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = CompleteReferral,
    responses(
        (status = 200, description = "The completed referral", body = Referral, headers(
            ("etag" = String, description = "New version of the referral"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The referral is not accepted or in progress"),
        (status = 412, description = "The referral changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "complete_referral", skip_all, fields(referral_id = %id))]
pub(crate) async fn complete_referral(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<CompleteReferral>,
) -> Result<Response, HavenError> {
    let change = Change {
        outcome: body.into_outcome()?,
        ..Change::default()
    };
    let status = referral::ReferralStatus::Completed;
    change_status(&state, &caller, id, expected_version, status, change).await
}

/// Cancel a referral your organisation sent, saying why, before it ends. Needs
/// `If-Match` of the referral.
#[utoipa::path(
    post,
    path = paths::REFERRAL_CANCEL,
    tag = "referrals",
    params(
        ("id" = uuid::Uuid, Path, description = "Referral id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = StatusReason,
    responses(
        (status = 200, description = "The cancelled referral", body = Referral, headers(
            ("etag" = String, description = "New version of the referral"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The referral has ended already"),
        (status = 412, description = "The referral changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "cancel_referral", skip_all, fields(referral_id = %id))]
pub(crate) async fn cancel_referral(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<StatusReason>,
) -> Result<Response, HavenError> {
    let change = Change {
        reason: body.into_reason()?,
        ..Change::default()
    };
    let status = referral::ReferralStatus::Cancelled;
    change_status(&state, &caller, id, expected_version, status, change).await
}

/// Revoke a referral your organisation sent, e.g. because the person withdrew consent
/// to sharing: the receiving organisation can no longer read the disclosure. Needs
/// `If-Match` of the referral.
#[utoipa::path(
    post,
    path = paths::REFERRAL_REVOKE,
    tag = "referrals",
    params(
        ("id" = uuid::Uuid, Path, description = "Referral id"),
        ("if-match" = String, Header, description = "ETag of the version you read"),
    ),
    request_body = StatusReason,
    responses(
        (status = 200, description = "The revoked referral", body = Referral, headers(
            ("etag" = String, description = "New version of the referral"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The referral has ended already"),
        (status = 412, description = "The referral changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "revoke_referral", skip_all, fields(referral_id = %id))]
pub(crate) async fn revoke_referral(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<StatusReason>,
) -> Result<Response, HavenError> {
    let change = Change {
        reason: body.into_reason()?,
        ..Change::default()
    };
    let status = referral::ReferralStatus::Revoked;
    change_status(&state, &caller, id, expected_version, status, change).await
}

/// What the referral discloses about the person to your organisation, the receiving
/// one: only the fields its service type needs, only while the referral is open
/// (`requested`, `accepted`, `in_progress`) and the person's consent to sharing
/// holds (`403` otherwise). Personal data: the read is audited and the answer is
/// never cached (`Cache-Control: no-store`). To any other organisation, the sending
/// one included, it answers `404`.
#[utoipa::path(
    get,
    path = paths::REFERRAL_DISCLOSURE,
    tag = "referrals",
    params(("id" = uuid::Uuid, Path, description = "Referral id")),
    responses(
        (status = 200, description = "The fields disclosed", body = Disclosure),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "get_referral_disclosure", skip_all, fields(referral_id = %id))]
pub(crate) async fn get_disclosure(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Disclosure>, HavenError> {
    let request =
        caller.grpc_request(referral::GetReferralDisclosureRequest { id: id.to_string() })?;
    let response = referral(&state)
        .get_referral_disclosure(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(Disclosure::from(response)))
}
