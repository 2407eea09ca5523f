//! Follow-ups: visits, calls and meetings scheduled for a case, and what came of them.

use haven_error::HavenError;
use haven_proto::case::v1 as case;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::enums::{FollowUpKind, FollowUpOutcome};
use super::{from_timestamp, non_empty, page_request, require_date, require_text, to_timestamp};

/// Body of `POST /v1/cases/{id}/follow_ups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleFollowUp {
    /// Kind.
    pub(crate) kind: FollowUpKind,
    /// Due date, `YYYY-MM-DD`.
    #[schema(format = Date, example = "2026-04-15")]
    pub(crate) due_on: String,
    /// Subject of the caseworker who is to do it; default you.
    #[serde(default)]
    pub(crate) assigned_to: Option<String>,
}

impl ScheduleFollowUp {
    /// Validates the body into the gRPC request for case `case_id`.
    pub(crate) fn into_proto(
        self,
        case_id: uuid::Uuid,
    ) -> Result<case::ScheduleFollowUpRequest, HavenError> {
        require_date("due_on", &self.due_on)?;
        if let Some(assigned_to) = &self.assigned_to {
            require_text("assigned_to", assigned_to)?;
        }
        Ok(case::ScheduleFollowUpRequest {
            // Set by the handler from the `Idempotency-Key` header.
            idempotency_key: String::new(),
            case_id: case_id.to_string(),
            kind: self.kind.to_proto(),
            due_on: self.due_on,
            assigned_to: self.assigned_to.unwrap_or_default(),
        })
    }
}

/// Body of `POST /v1/cases/{id}/follow_ups/{follow_up_id}/outcome`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordFollowUpOutcome {
    /// What came of it.
    pub(crate) outcome: FollowUpOutcome,
    /// When it was done (RFC 3339); default now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub(crate) done_at: Option<OffsetDateTime>,
}

impl RecordFollowUpOutcome {
    /// The gRPC request for follow-up `id` of case `case_id` at `expected_version`.
    pub(crate) fn into_proto(
        self,
        case_id: uuid::Uuid,
        id: uuid::Uuid,
        expected_version: u64,
    ) -> case::RecordFollowUpOutcomeRequest {
        case::RecordFollowUpOutcomeRequest {
            case_id: case_id.to_string(),
            id: id.to_string(),
            expected_version,
            outcome: self.outcome.to_proto(),
            done_at: self.done_at.map(to_timestamp),
        }
    }
}

/// A scheduled follow-up.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FollowUp {
    /// Id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// The case.
    #[schema(format = Uuid)]
    pub(crate) case_id: String,
    /// The case's pseudonymous code.
    pub(crate) case_code: String,
    /// Kind.
    pub(crate) kind: Option<FollowUpKind>,
    /// Due date, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub(crate) due_on: String,
    /// Subject of the caseworker who is to do it.
    pub(crate) assigned_to: String,
    /// What came of it; `null` until done.
    pub(crate) outcome: Option<FollowUpOutcome>,
    /// When it was done.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) done_at: Option<OffsetDateTime>,
    /// Due in the past and no outcome recorded.
    pub(crate) overdue: bool,
    /// Incremented by every change; also sent as the `ETag`.
    pub(crate) version: u64,
}

impl From<case::FollowUp> for FollowUp {
    fn from(follow_up: case::FollowUp) -> Self {
        Self {
            id: follow_up.id,
            case_id: follow_up.case_id,
            case_code: follow_up.case_code,
            kind: FollowUpKind::from_proto(follow_up.kind),
            due_on: follow_up.due_on,
            assigned_to: follow_up.assigned_to,
            outcome: FollowUpOutcome::from_proto(follow_up.outcome),
            done_at: from_timestamp(follow_up.done_at),
            overdue: follow_up.overdue,
            version: follow_up.version,
        }
    }
}

/// One page of follow-ups.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FollowUpPage {
    /// Follow-ups.
    pub(crate) items: Vec<FollowUp>,
    /// Cursor of the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// Query of the follow-up lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FollowUpQuery {
    /// Only follow-ups assigned to this caseworker (subject).
    pub(crate) assigned_to: Option<String>,
    /// Only follow-ups due in the past and not done.
    pub(crate) overdue: Option<bool>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

impl FollowUpQuery {
    /// Validates the query into the gRPC request: follow-ups of case `case_id`, or of
    /// the caller's organisation when `None`.
    pub(crate) fn into_proto(
        self,
        case_id: Option<uuid::Uuid>,
    ) -> Result<case::ListFollowUpsRequest, HavenError> {
        Ok(case::ListFollowUpsRequest {
            case_id: case_id.map(|id| id.to_string()).unwrap_or_default(),
            assigned_to: self.assigned_to.and_then(non_empty).unwrap_or_default(),
            overdue_only: self.overdue.unwrap_or(false),
            page: Some(page_request(self.limit, self.cursor)?),
        })
    }
}
