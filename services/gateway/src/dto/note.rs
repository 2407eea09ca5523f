//! Narrative notes on a case. The case service keeps them encrypted; they never
//! appear in events, logs or the idempotency store. A note itself is `case::Note`;
//! here are the REST shapes that differ from the proto messages.

use haven_error::HavenError;
use haven_proto::case::v1 as case;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::enums::NoteVisibility;
use super::require_text;

/// Body of `POST /v1/cases/{id}/notes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddNote {
    /// The note.
    pub(crate) body: String,
    /// Who may read it; default `case_team`.
    #[serde(default)]
    pub(crate) visibility: Option<NoteVisibility>,
}

impl AddNote {
    /// Validates the body into the gRPC request for case `case_id`.
    pub(crate) fn into_proto(
        self,
        case_id: uuid::Uuid,
    ) -> Result<case::AddNoteRequest, HavenError> {
        require_text("body", &self.body)?;
        Ok(case::AddNoteRequest {
            case_id: case_id.to_string(),
            body: self.body,
            visibility: self
                .visibility
                .map(|visibility| visibility as i32)
                .unwrap_or_default(),
        })
    }
}

/// The notes of a case the caller may read, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NoteList {
    /// Notes.
    pub(crate) items: Vec<case::Note>,
}
