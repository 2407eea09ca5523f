//! Narrative notes on a case. The case service keeps them encrypted; they never
//! appear in events, logs or the idempotency store.

use haven_error::HavenError;
use haven_proto::case::v1 as case;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::enums::NoteVisibility;
use super::{from_timestamp, non_empty, require_text};

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
                .map(NoteVisibility::to_proto)
                .unwrap_or_default(),
        })
    }
}

/// A note on a case.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Note {
    /// Id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// The case.
    #[schema(format = Uuid)]
    pub(crate) case_id: String,
    /// Who may read it.
    pub(crate) visibility: Option<NoteVisibility>,
    /// The note; `null` once the person's data was erased.
    pub(crate) body: Option<String>,
    /// Who wrote it.
    pub(crate) written_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) written_at: Option<OffsetDateTime>,
}

impl From<case::Note> for Note {
    fn from(note: case::Note) -> Self {
        Self {
            id: note.id,
            case_id: note.case_id,
            visibility: NoteVisibility::from_proto(note.visibility),
            body: non_empty(note.body),
            written_by: note.written_by,
            written_at: from_timestamp(note.written_at),
        }
    }
}

/// The notes of a case the caller may read, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NoteList {
    /// Notes.
    pub(crate) items: Vec<Note>,
}
