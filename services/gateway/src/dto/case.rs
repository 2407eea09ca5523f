//! Cases.

use haven_error::HavenError;
use haven_proto::case::v1 as case;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::enums::{AssessmentKind, CaseStage, CaseStatus, NeedDomain};
use super::{from_timestamp, non_empty, page_request};

/// A rehabilitation and reintegration case. The person appears only as the
/// pseudonymous `code`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Case {
    /// Case id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// Pseudonymous code shown instead of the person's name, e.g. `HV-2026-000123`.
    pub(crate) code: String,
    /// Organisation that owns the case.
    #[schema(format = Uuid)]
    pub(crate) organization_id: String,
    /// Screening the case was opened from.
    #[schema(format = Uuid)]
    pub(crate) screening_id: Option<String>,
    /// Lifecycle status.
    pub(crate) status: Option<CaseStatus>,
    /// Workflow stage.
    pub(crate) stage: Option<CaseStage>,
    /// When the case was opened.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) opened_at: Option<OffsetDateTime>,
    /// Incremented by every change; also sent as the `ETag`.
    pub(crate) version: u64,
    /// Sealed by a legal decision: only admins and auditors can read it.
    pub(crate) sealed: bool,
    /// The person the case is about (id only; details are read from intake).
    #[schema(format = Uuid)]
    pub(crate) person_id: Option<String>,
}

/// Body of `POST /v1/cases/{id}/stage`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeStage {
    /// The stage to move to.
    pub(crate) stage: CaseStage,
}

/// Body of `POST /v1/cases/{id}/seal`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SealCase {
    /// Reference of the legal decision that seals the case.
    pub(crate) legal_basis: String,
}

impl SealCase {
    /// Validates the body into the gRPC request.
    pub(crate) fn into_proto(self, id: uuid::Uuid) -> Result<case::SealCaseRequest, HavenError> {
        if self.legal_basis.trim().is_empty() {
            return Err(HavenError::invalid_field("legal_basis", "is required"));
        }
        Ok(case::SealCaseRequest {
            id: id.to_string(),
            legal_basis: self.legal_basis,
        })
    }
}

/// One page of cases.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CasePage {
    /// Cases of this page.
    pub(crate) items: Vec<Case>,
    /// Cursor of the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

impl From<case::Case> for Case {
    fn from(case: case::Case) -> Self {
        Self {
            id: case.id,
            code: case.code,
            organization_id: case.organization_id,
            screening_id: non_empty(case.screening_id),
            status: CaseStatus::from_proto(case.status),
            stage: CaseStage::from_proto(case.stage),
            opened_at: from_timestamp(case.opened_at),
            version: case.version,
            sealed: case.sealed,
            person_id: non_empty(case.person_id),
        }
    }
}

/// Query of `GET /v1/cases`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CaseQuery {
    /// Only cases with this status.
    pub(crate) status: Option<CaseStatus>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

impl CaseQuery {
    /// Validates the query into the gRPC request.
    pub(crate) fn into_proto(self) -> Result<case::ListCasesRequest, HavenError> {
        Ok(case::ListCasesRequest {
            page: Some(page_request(self.limit, self.cursor)?),
            status: self.status.map(CaseStatus::to_proto).unwrap_or_default(),
        })
    }
}

/// A domain's score: 1 (critical) to 5 (fully met).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DomainScore {
    /// Domain.
    pub(crate) domain: NeedDomain,
    /// Score, 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub(crate) score: u32,
}

/// Body of `POST /v1/cases/{id}/assessments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddAssessment {
    /// Kind.
    pub(crate) kind: AssessmentKind,
    /// Scores, one per domain assessed.
    pub(crate) scores: Vec<DomainScore>,
    /// When assessed; defaults to now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub(crate) assessed_at: Option<OffsetDateTime>,
}

impl AddAssessment {
    /// The gRPC request for case `case_id`.
    pub(crate) fn into_proto(self, case_id: uuid::Uuid) -> case::AddAssessmentRequest {
        case::AddAssessmentRequest {
            case_id: case_id.to_string(),
            kind: self.kind.to_proto(),
            scores: self
                .scores
                .into_iter()
                .map(|score| case::DomainScore {
                    domain: score.domain.to_proto(),
                    score: score.score,
                })
                .collect(),
            assessed_at: self.assessed_at.map(super::to_timestamp),
        }
    }
}

/// An assessment of needs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Assessment {
    /// Id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// Kind.
    pub(crate) kind: Option<AssessmentKind>,
    /// Scores by domain.
    pub(crate) scores: Vec<DomainScore>,
    /// When assessed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) assessed_at: Option<OffsetDateTime>,
    /// Who assessed.
    pub(crate) assessed_by: String,
}

impl From<case::Assessment> for Assessment {
    fn from(assessment: case::Assessment) -> Self {
        Self {
            id: assessment.id,
            kind: AssessmentKind::from_proto(assessment.kind),
            scores: assessment
                .scores
                .into_iter()
                .filter_map(|score| {
                    Some(DomainScore {
                        domain: NeedDomain::from_proto(score.domain)?,
                        score: score.score,
                    })
                })
                .collect(),
            assessed_at: from_timestamp(assessment.assessed_at),
            assessed_by: assessment.assessed_by,
        }
    }
}

/// A case's assessments, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssessmentList {
    /// Assessments.
    pub(crate) items: Vec<Assessment>,
}
