//! Statistics.

use std::collections::BTreeMap;

use haven_proto::reporting::v1 as reporting;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::from_timestamp;

/// Totals computed from the services' event feeds. Contains no personal data.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Summary {
    /// Screenings recorded.
    pub(crate) screenings_total: u64,
    /// Persons identified as victims.
    pub(crate) identified_total: u64,
    /// Cases opened.
    pub(crate) cases_total: u64,
    /// Cases not closed.
    pub(crate) cases_open: u64,
    /// Organisations in the directory.
    pub(crate) organizations_total: u64,
    /// Screened persons confirmed as trafficked again.
    pub(crate) re_trafficked_total: u64,
    /// How far each feed has been applied, e.g. `{"intake": 42}`.
    pub(crate) checkpoints: BTreeMap<String, u64>,
    /// When the figures were computed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) generated_at: Option<OffsetDateTime>,
}

impl From<reporting::GetSummaryResponse> for Summary {
    fn from(summary: reporting::GetSummaryResponse) -> Self {
        Self {
            screenings_total: summary.screenings_total,
            identified_total: summary.identified_total,
            cases_total: summary.cases_total,
            cases_open: summary.cases_open,
            organizations_total: summary.organizations_total,
            re_trafficked_total: summary.re_trafficked_total,
            checkpoints: summary.checkpoints.into_iter().collect(),
            generated_at: from_timestamp(summary.generated_at),
        }
    }
}

/// Query of `GET /v1/reports/summary`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SummaryQuery {
    /// Restrict the figures to one organisation.
    pub(crate) organization_id: Option<Uuid>,
}

impl From<SummaryQuery> for reporting::GetSummaryRequest {
    fn from(query: SummaryQuery) -> Self {
        Self {
            organization_id: query
                .organization_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_an_object_and_generated_at_rfc3339() {
        let summary = Summary::from(reporting::GetSummaryResponse {
            screenings_total: 4,
            identified_total: 2,
            cases_total: 2,
            cases_open: 1,
            organizations_total: 3,
            re_trafficked_total: 1,
            checkpoints: [("intake".to_owned(), 42), ("case".to_owned(), 7)].into(),
            generated_at: Some(prost_types::Timestamp {
                seconds: 1_767_319_445,
                nanos: 0,
            }),
        });
        let json = serde_json::to_value(summary).unwrap();
        assert_eq!(
            json["checkpoints"],
            serde_json::json!({"case": 7, "intake": 42})
        );
        assert_eq!(json["generated_at"], "2026-01-02T02:04:05Z");
        assert_eq!(json["identified_total"], 2);
    }
}
