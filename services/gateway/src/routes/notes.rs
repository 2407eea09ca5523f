//! `/v1/cases/{id}/notes`: narrative notes on a case (case service). Like every `/v1`
//! response they are sent with `Cache-Control: no-store`, and they are never stored
//! for `Idempotency-Key` replay.

use axum::extract::State;
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::case::v1 as case;

use super::cases::{BACKEND, cases};
use super::{created, paths};
use crate::dto::missing_in_response;
use crate::dto::note::{AddNote, NoteList};
use crate::error::backend_error;
use crate::extract::{Caller, Json, PathId};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

/// Add a narrative note to a case, for the case team or for supervisors only. Notes
/// are kept encrypted and never appear in events or logs.
#[utoipa::path(
    post,
    path = paths::CASE_NOTES,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    request_body = AddNote,
    responses(
        (status = 201, description = "The note", body = case::Note, headers(
            ("cache-control" = String, description = "`no-store`"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "add_note", skip_all, fields(case_id = %id))]
pub(crate) async fn add_note(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    Json(body): Json<AddNote>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto(id)?)?;
    let response = cases(&state)
        .add_note(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let note = response
        .into_inner()
        .note
        .ok_or_else(|| missing_in_response("note"))?;
    Ok(created(None, 0, note))
}

/// The notes of a case you may read, oldest first: supervisors and admins also see
/// the notes restricted to them.
#[utoipa::path(
    get,
    path = paths::CASE_NOTES,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    responses(
        (status = 200, description = "The notes", body = NoteList, headers(
            ("cache-control" = String, description = "`no-store`"),
        )),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "list_notes", skip_all, fields(case_id = %id))]
pub(crate) async fn list_notes(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<NoteList>, HavenError> {
    let request = caller.grpc_request(case::ListNotesRequest {
        case_id: id.to_string(),
    })?;
    let response = cases(&state)
        .list_notes(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(NoteList {
        items: response.notes,
    }))
}
