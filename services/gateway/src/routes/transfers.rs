//! `/v1/cases/{id}/transfers` and `/v1/transfers`: handing a case over to another
//! organisation (case service).

use axum::extract::State;
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::case::v1 as case;

use super::cases::{BACKEND, cases};
use super::{created, paths};
use crate::dto::case::{Approve, Reject, RequestTransfer, Transfer, TransferList, TransferQuery};
use crate::dto::missing_in_response;
use crate::error::backend_error;
use crate::extract::{Caller, IfMatch, Json, PathId, Query};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

fn transfer_of(transfer: Option<case::Transfer>) -> Result<Transfer, HavenError> {
    transfer
        .map(Transfer::from)
        .ok_or_else(|| missing_in_response("transfer"))
}

async fn list(
    state: &AppState,
    caller: &Caller,
    message: case::ListTransfersRequest,
) -> Result<Json<TransferList>, HavenError> {
    let request = caller.grpc_request(message)?;
    let response = cases(state)
        .list_transfers(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(TransferList {
        items: response.transfers.into_iter().map(Transfer::from).collect(),
    }))
}

/// Ask another organisation to take over a case. One request at a time: `409` while
/// another is pending. Needs `If-Match` of the case: `428` without it, `412` if
/// someone changed the case since you read it.
#[utoipa::path(
    post,
    path = paths::CASE_TRANSFERS,
    tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "Case id"),
        ("if-match" = String, Header, description = "ETag of the case as you read it"),
    ),
    request_body = RequestTransfer,
    responses(
        (status = 201, description = "The requested transfer", body = Transfer),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "A transfer of the case is already pending, its closure is waiting for approval, or it is closed"),
        (status = 412, description = "The case changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "request_transfer", skip_all, fields(case_id = %id))]
pub(crate) async fn request_transfer(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<RequestTransfer>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto(id, expected_version))?;
    let response = cases(&state)
        .request_transfer(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let transfer = transfer_of(response.into_inner().transfer)?;
    Ok(created(None, 0, transfer))
}

/// The transfers of a case, for its owning organisation.
#[utoipa::path(
    get,
    path = paths::CASE_TRANSFERS,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id"), TransferQuery),
    responses(
        (status = 200, description = "The case's transfers", body = TransferList),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "list_case_transfers", skip_all, fields(case_id = %id))]
pub(crate) async fn list_case_transfers(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Query(query): Query<TransferQuery>,
) -> Result<Json<TransferList>, HavenError> {
    list(&state, &caller, query.into_proto(Some(id))).await
}

/// Every transfer to or from your organisation, newest first (`pending=true`: those
/// waiting for a decision). Of a case offered to you, you see its code and the reason
/// only.
#[utoipa::path(
    get,
    path = paths::TRANSFERS,
    tag = "cases",
    params(TransferQuery),
    responses(
        (status = 200, description = "Transfers", body = TransferList),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "list_transfers", skip_all)]
pub(crate) async fn list_transfers(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<TransferQuery>,
) -> Result<Json<TransferList>, HavenError> {
    list(&state, &caller, query.into_proto(None)).await
}

/// Accepts or rejects transfer `id`.
async fn decide(
    state: &AppState,
    caller: &Caller,
    id: uuid::Uuid,
    (decision, comment): (i32, String),
) -> Result<Json<Transfer>, HavenError> {
    let request = caller.grpc_request(case::DecideTransferRequest {
        id: id.to_string(),
        decision,
        comment,
    })?;
    let response = cases(state)
        .decide_transfer(request)
        .await
        .map_err(backend_error(BACKEND))?;
    Ok(Json(transfer_of(response.into_inner().transfer)?))
}

/// Accept a transfer offered to your organisation: from then on it owns the case.
#[utoipa::path(
    post,
    path = paths::TRANSFER_ACCEPT,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Transfer id")),
    request_body = Approve,
    responses(
        (status = 200, description = "The accepted transfer", body = Transfer),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The transfer was decided already"),
    )
)]
#[tracing::instrument(name = "accept_transfer", skip_all, fields(transfer_id = %id))]
pub(crate) async fn accept_transfer(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(body): Json<Approve>,
) -> Result<Json<Transfer>, HavenError> {
    decide(&state, &caller, id, body.decision()).await
}

/// Reject a transfer offered to your organisation, saying why in `comment`.
#[utoipa::path(
    post,
    path = paths::TRANSFER_REJECT,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Transfer id")),
    request_body = Reject,
    responses(
        (status = 200, description = "The rejected transfer", body = Transfer),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The transfer was decided already"),
    )
)]
#[tracing::instrument(name = "reject_transfer", skip_all, fields(transfer_id = %id))]
pub(crate) async fn reject_transfer(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(body): Json<Reject>,
) -> Result<Json<Transfer>, HavenError> {
    let decision = body.decision()?;
    decide(&state, &caller, id, decision).await
}
