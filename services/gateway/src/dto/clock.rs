//! Statutory clocks and indicator sets.

use haven_error::HavenError;
use haven_proto::intake::v1 as intake;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::enums::ClockState;
use super::{from_timestamp, non_empty, page_request};

/// A statutory deadline started by an identification decision.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Clock {
    /// Clock id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// The screening whose decision started it.
    #[schema(format = Uuid)]
    pub(crate) screening_id: String,
    /// Organisation.
    #[schema(format = Uuid)]
    pub(crate) organization_id: String,
    /// Code from the deployment's configuration, e.g. `police_referral`.
    pub(crate) name: String,
    /// What must happen by the due time.
    pub(crate) description: String,
    /// When the decision started it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) started_at: Option<OffsetDateTime>,
    /// When it falls due.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) due_at: Option<OffsetDateTime>,
    /// When it was met.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) completed_at: Option<OffsetDateTime>,
    /// Who recorded that it was met.
    pub(crate) completed_by: Option<String>,
    /// Where it stands now.
    pub(crate) state: Option<ClockState>,
}

impl From<intake::StatutoryClock> for Clock {
    fn from(clock: intake::StatutoryClock) -> Self {
        Self {
            id: clock.id,
            screening_id: clock.screening_id,
            organization_id: clock.organization_id,
            name: clock.name,
            description: clock.description,
            started_at: from_timestamp(clock.started_at),
            due_at: from_timestamp(clock.due_at),
            completed_at: from_timestamp(clock.completed_at),
            completed_by: non_empty(clock.completed_by),
            state: ClockState::from_proto(clock.state),
        }
    }
}

/// One page of clocks, soonest due first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClockPage {
    /// Clocks.
    pub(crate) items: Vec<Clock>,
    /// Cursor of the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// Query of `GET /v1/clocks`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ClockQuery {
    /// Only clocks in this state; default every clock not completed.
    pub(crate) state: Option<ClockState>,
    /// Width of the `due_soon` window in hours (default 24).
    pub(crate) due_within_hours: Option<u32>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

impl ClockQuery {
    /// Validates the query into the gRPC request.
    pub(crate) fn into_proto(self) -> Result<intake::ListClocksRequest, HavenError> {
        Ok(intake::ListClocksRequest {
            state: self.state.map(ClockState::to_proto).unwrap_or_default(),
            due_within_hours: self.due_within_hours.unwrap_or(0),
            page: Some(page_request(self.limit, self.cursor)?),
        })
    }
}

/// One indicator.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Indicator {
    /// Stable code, e.g. `document_retention`.
    pub(crate) code: String,
    /// Label shown to screening officers.
    pub(crate) label: String,
}

/// Indicators grouped by exploitation type.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndicatorGroup {
    /// Exploitation type code, or `general`.
    pub(crate) exploitation_type: String,
    /// Indicators.
    pub(crate) indicators: Vec<Indicator>,
}

/// A published indicator set version.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IndicatorSet {
    /// Version.
    pub(crate) version: u32,
    /// Name.
    pub(crate) name: String,
    /// Groups.
    pub(crate) groups: Vec<IndicatorGroup>,
    /// When published.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) published_at: Option<OffsetDateTime>,
    /// By whom.
    pub(crate) published_by: String,
}

/// Every published version, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IndicatorSetList {
    /// Versions.
    pub(crate) items: Vec<IndicatorSet>,
}

/// Body of `POST /v1/indicator_sets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishIndicatorSet {
    /// Name.
    pub(crate) name: String,
    /// Groups.
    pub(crate) groups: Vec<IndicatorGroup>,
}

fn groups_to_proto(groups: Vec<IndicatorGroup>) -> Vec<intake::IndicatorGroup> {
    groups
        .into_iter()
        .map(|group| intake::IndicatorGroup {
            exploitation_type: group.exploitation_type,
            indicators: group
                .indicators
                .into_iter()
                .map(|indicator| intake::Indicator {
                    code: indicator.code,
                    label: indicator.label,
                })
                .collect(),
        })
        .collect()
}

impl From<PublishIndicatorSet> for intake::PublishIndicatorSetRequest {
    fn from(body: PublishIndicatorSet) -> Self {
        Self {
            // Set by the handler from the `Idempotency-Key` header.
            idempotency_key: String::new(),
            name: body.name,
            groups: groups_to_proto(body.groups),
        }
    }
}

impl From<intake::IndicatorSet> for IndicatorSet {
    fn from(set: intake::IndicatorSet) -> Self {
        Self {
            version: set.version,
            name: set.name,
            groups: set
                .groups
                .into_iter()
                .map(|group| IndicatorGroup {
                    exploitation_type: group.exploitation_type,
                    indicators: group
                        .indicators
                        .into_iter()
                        .map(|indicator| Indicator {
                            code: indicator.code,
                            label: indicator.label,
                        })
                        .collect(),
                })
                .collect(),
            published_at: from_timestamp(set.published_at),
            published_by: set.published_by,
        }
    }
}
