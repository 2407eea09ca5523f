//! Cases.

use haven_error::HavenError;
use haven_proto::case::v1 as case;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::enums::{
    ApprovalStatus, AssessmentKind, CaseStage, CaseStatus, ClosureReason, NeedDomain, RiskLevel,
};
use super::{from_timestamp, non_empty, page_request, require_text};

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
    /// Risk level; `null` until set.
    pub(crate) risk_level: Option<RiskLevel>,
    /// Labels such as `minor`, `interpreter_needed`, `security_concern`.
    pub(crate) flags: Vec<String>,
    /// Subjects (user ids) of the assigned caseworkers.
    pub(crate) caseworkers: Vec<String>,
    /// The closure requested or decided last; `null` if none (or since reopening).
    pub(crate) closure: Option<Closure>,
    /// A transfer waiting for the receiving organisation; `null` if none.
    pub(crate) pending_transfer: Option<Transfer>,
}

/// The closure of a case: requested with a coded reason, then approved or rejected
/// by a supervisor.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Closure {
    /// Coded reason.
    pub(crate) reason: Option<ClosureReason>,
    /// Explanation, required with reason `other`.
    pub(crate) reason_text: Option<String>,
    /// Why closure goes ahead while services are in progress, if it does.
    pub(crate) override_reason: Option<String>,
    /// Where the request stands.
    pub(crate) status: Option<ApprovalStatus>,
    /// Who asked for it.
    pub(crate) requested_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) requested_at: Option<OffsetDateTime>,
    /// Who approved or rejected it; `null` while requested.
    pub(crate) reviewed_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) reviewed_at: Option<OffsetDateTime>,
    /// The reviewer's comment.
    pub(crate) review_comment: Option<String>,
}

impl From<case::Closure> for Closure {
    fn from(closure: case::Closure) -> Self {
        Self {
            reason: ClosureReason::from_proto(closure.reason),
            reason_text: non_empty(closure.reason_text),
            override_reason: non_empty(closure.override_reason),
            status: ApprovalStatus::from_proto(closure.status),
            requested_by: closure.requested_by,
            requested_at: from_timestamp(closure.requested_at),
            reviewed_by: non_empty(closure.reviewed_by),
            reviewed_at: from_timestamp(closure.reviewed_at),
            review_comment: non_empty(closure.review_comment),
        }
    }
}

/// A request that another organisation take over a case. The receiving organisation
/// accepts (status `approved`; it owns the case from then on) or rejects it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Transfer {
    /// Id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// The case.
    #[schema(format = Uuid)]
    pub(crate) case_id: Option<String>,
    /// The case's pseudonymous code.
    pub(crate) case_code: String,
    /// Organisation that owned the case when the transfer was requested.
    #[schema(format = Uuid)]
    pub(crate) from_organization_id: String,
    /// Organisation asked to take the case over.
    #[schema(format = Uuid)]
    pub(crate) to_organization_id: String,
    /// Why.
    pub(crate) reason: String,
    /// Where it stands.
    pub(crate) status: Option<ApprovalStatus>,
    /// Who asked.
    pub(crate) requested_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) requested_at: Option<OffsetDateTime>,
    /// Who accepted or rejected it; `null` while requested.
    pub(crate) decided_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) decided_at: Option<OffsetDateTime>,
    /// The decider's comment.
    pub(crate) decision_comment: Option<String>,
}

impl From<case::Transfer> for Transfer {
    fn from(transfer: case::Transfer) -> Self {
        Self {
            id: transfer.id,
            case_id: non_empty(transfer.case_id),
            case_code: transfer.case_code,
            from_organization_id: transfer.from_organization_id,
            to_organization_id: transfer.to_organization_id,
            reason: transfer.reason,
            status: ApprovalStatus::from_proto(transfer.status),
            requested_by: transfer.requested_by,
            requested_at: from_timestamp(transfer.requested_at),
            decided_by: non_empty(transfer.decided_by),
            decided_at: from_timestamp(transfer.decided_at),
            decision_comment: non_empty(transfer.decision_comment),
        }
    }
}

/// Transfers, newest first for the organisation's list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TransferList {
    /// Transfers.
    pub(crate) items: Vec<Transfer>,
}

/// Query of the transfer lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TransferQuery {
    /// Only transfers waiting for a decision.
    pub(crate) pending: Option<bool>,
}

impl TransferQuery {
    /// The gRPC request: transfers of case `case_id`, or of the caller's organisation
    /// when `None`.
    pub(crate) fn into_proto(self, case_id: Option<uuid::Uuid>) -> case::ListTransfersRequest {
        case::ListTransfersRequest {
            case_id: case_id.map(|id| id.to_string()).unwrap_or_default(),
            pending_only: self.pending.unwrap_or(false),
        }
    }
}

/// Body of `PATCH /v1/cases/{id}`: only the fields present change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateCase {
    /// New risk level.
    #[serde(default)]
    pub(crate) risk_level: Option<RiskLevel>,
    /// Replaces every flag.
    #[serde(default)]
    pub(crate) flags: Option<Vec<String>>,
    /// Replaces the assigned caseworkers (subjects); needs the `case.assign`
    /// permission (supervisors and admins).
    #[serde(default)]
    pub(crate) caseworkers: Option<Vec<String>>,
}

impl UpdateCase {
    /// Validates the body into the gRPC request for case `id` at `expected_version`.
    pub(crate) fn into_proto(
        self,
        id: uuid::Uuid,
        expected_version: u64,
    ) -> Result<case::UpdateCaseRequest, HavenError> {
        for (field, values) in [("flags", &self.flags), ("caseworkers", &self.caseworkers)] {
            for (index, value) in values.iter().flatten().enumerate() {
                require_text(&format!("{field}[{index}]"), value)?;
            }
        }
        Ok(case::UpdateCaseRequest {
            id: id.to_string(),
            expected_version,
            risk_level: self
                .risk_level
                .map(RiskLevel::to_case_proto)
                .unwrap_or_default(),
            set_flags: self.flags.is_some(),
            flags: self.flags.unwrap_or_default(),
            set_caseworkers: self.caseworkers.is_some(),
            caseworkers: self.caseworkers.unwrap_or_default(),
        })
    }
}

/// Body of `POST /v1/cases/{id}/transfers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestTransfer {
    /// Organisation asked to take the case over.
    pub(crate) to_organization_id: uuid::Uuid,
    /// Why.
    pub(crate) reason: String,
}

impl RequestTransfer {
    /// The gRPC request for case `case_id` at `expected_version`; the case service
    /// checks its fields.
    pub(crate) fn into_proto(
        self,
        case_id: uuid::Uuid,
        expected_version: u64,
    ) -> case::RequestTransferRequest {
        case::RequestTransferRequest {
            case_id: case_id.to_string(),
            expected_version,
            to_organization_id: self.to_organization_id.to_string(),
            reason: self.reason,
        }
    }
}

/// Body of an approval (or acceptance): an optional comment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Approve {
    /// Comment.
    #[serde(default)]
    pub(crate) comment: Option<String>,
}

impl Approve {
    /// The decision and comment for the gRPC request.
    pub(crate) fn decision(self) -> (i32, String) {
        (
            case::ReviewDecision::Approve as i32,
            self.comment.unwrap_or_default(),
        )
    }
}

/// Body of a rejection: why, required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reject {
    /// Why it is rejected.
    pub(crate) comment: String,
}

impl Reject {
    /// Validates the body into the decision and comment for the gRPC request.
    pub(crate) fn decision(self) -> Result<(i32, String), HavenError> {
        require_text("comment", &self.comment)?;
        Ok((case::ReviewDecision::Reject as i32, self.comment))
    }
}

/// Body of `POST /v1/cases/{id}/closure`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestClosure {
    /// Coded reason.
    pub(crate) reason: ClosureReason,
    /// Explanation; required with reason `other`.
    #[serde(default)]
    pub(crate) reason_text: Option<String>,
    /// Why the case should close while services are in progress; without it, such a
    /// request is refused.
    #[serde(default)]
    pub(crate) override_reason: Option<String>,
}

impl RequestClosure {
    /// Validates the body into the gRPC request for case `case_id` at
    /// `expected_version`.
    pub(crate) fn into_proto(
        self,
        case_id: uuid::Uuid,
        expected_version: u64,
    ) -> Result<case::RequestClosureRequest, HavenError> {
        let reason_text = self.reason_text.unwrap_or_default();
        if self.reason == ClosureReason::Other {
            require_text("reason_text", &reason_text)?;
        }
        Ok(case::RequestClosureRequest {
            case_id: case_id.to_string(),
            expected_version,
            reason: self.reason.to_proto(),
            reason_text,
            override_reason: self.override_reason.unwrap_or_default(),
        })
    }
}

/// Body of `POST /v1/cases/{id}/reopen`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReopenCase {
    /// Why the case is reopened.
    pub(crate) reason: String,
}

impl ReopenCase {
    /// The gRPC request for case `case_id` at `expected_version`; the case service
    /// checks the reason.
    pub(crate) fn into_proto(
        self,
        case_id: uuid::Uuid,
        expected_version: u64,
    ) -> case::ReopenCaseRequest {
        case::ReopenCaseRequest {
            case_id: case_id.to_string(),
            expected_version,
            reason: self.reason,
        }
    }
}

/// One thing that happened to a case.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TimelineEntry {
    /// Position in the case service's event sequence.
    pub(crate) sequence: u64,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) occurred_at: Option<OffsetDateTime>,
    /// Event type, e.g. `case.stage_changed`.
    #[serde(rename = "type")]
    pub(crate) event_type: String,
    /// The event's fields (never narratives or personal data).
    #[schema(value_type = Object)]
    pub(crate) details: serde_json::Value,
}

impl From<case::TimelineEntry> for TimelineEntry {
    fn from(entry: case::TimelineEntry) -> Self {
        let details = if entry.details_json.trim().is_empty() {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_str(&entry.details_json).unwrap_or_else(|_| {
                tracing::warn!(
                    sequence = entry.sequence,
                    "timeline entry details are not JSON; answering null"
                );
                serde_json::Value::Null
            })
        };
        Self {
            sequence: entry.sequence,
            occurred_at: from_timestamp(entry.occurred_at),
            event_type: entry.r#type,
            details,
        }
    }
}

/// Everything that happened to a case, in order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Timeline {
    /// Entries, oldest first.
    pub(crate) items: Vec<TimelineEntry>,
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
    /// The gRPC request for case `id`; the case service checks the legal basis.
    pub(crate) fn into_proto(self, id: uuid::Uuid) -> case::SealCaseRequest {
        case::SealCaseRequest {
            id: id.to_string(),
            legal_basis: self.legal_basis,
        }
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
            risk_level: RiskLevel::from_case_proto(case.risk_level),
            flags: case.flags,
            caseworkers: case.caseworkers,
            closure: case.closure.map(Closure::from),
            pending_transfer: case.pending_transfer.map(Transfer::from),
        }
    }
}

/// Query of `GET /v1/cases`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CaseQuery {
    /// Only cases with this status.
    pub(crate) status: Option<CaseStatus>,
    /// Only cases at this workflow stage.
    pub(crate) stage: Option<CaseStage>,
    /// Only cases this caseworker (subject) is assigned to.
    pub(crate) caseworker: Option<String>,
    /// Only cases at this risk level.
    pub(crate) risk_level: Option<RiskLevel>,
    /// Only cases with a follow-up due in the past and not done.
    pub(crate) overdue_follow_up: Option<bool>,
    /// Only cases whose approved plan has an action due in the past and not done.
    pub(crate) overdue_plan_action: Option<bool>,
    /// Only cases owned by this organisation (callers who see every organisation may
    /// name another than their own).
    pub(crate) organization_id: Option<uuid::Uuid>,
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
            stage: self.stage.map(CaseStage::to_proto).unwrap_or_default(),
            caseworker: self.caseworker.unwrap_or_default(),
            risk_level: self
                .risk_level
                .map(RiskLevel::to_case_proto)
                .unwrap_or_default(),
            overdue_follow_up: self.overdue_follow_up.unwrap_or(false),
            overdue_plan_action: self.overdue_plan_action.unwrap_or(false),
            organization_id: self
                .organization_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
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
            // Set by the handler from the `Idempotency-Key` header.
            idempotency_key: String::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_proto_fields_of_a_case_are_null_and_set_ones_keep_their_values() {
        let plain = serde_json::to_value(Case::from(case::Case {
            id: "c".into(),
            ..Default::default()
        }))
        .unwrap();
        for field in ["risk_level", "closure", "pending_transfer", "screening_id"] {
            assert!(plain[field].is_null(), "{field}: {plain}");
        }
        assert_eq!(plain["flags"], serde_json::json!([]));
        assert_eq!(plain["caseworkers"], serde_json::json!([]));

        let closing = serde_json::to_value(Case::from(case::Case {
            id: "c".into(),
            risk_level: case::RiskLevel::High as i32,
            flags: vec!["minor".into()],
            caseworkers: vec!["user-1".into()],
            closure: Some(case::Closure {
                reason: case::ClosureReason::GoalsAchieved as i32,
                status: case::ApprovalStatus::Requested as i32,
                requested_by: "user-1".into(),
                ..Default::default()
            }),
            pending_transfer: Some(case::Transfer {
                id: "t".into(),
                status: case::ApprovalStatus::Requested as i32,
                ..Default::default()
            }),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(closing["risk_level"], "high");
        assert_eq!(closing["flags"], serde_json::json!(["minor"]));
        assert_eq!(closing["closure"]["reason"], "goals_achieved");
        assert_eq!(closing["closure"]["status"], "requested");
        assert!(closing["closure"]["reviewed_by"].is_null());
        assert!(closing["closure"]["reason_text"].is_null());
        assert_eq!(closing["pending_transfer"]["status"], "requested");
        assert!(closing["pending_transfer"]["decision_comment"].is_null());
    }

    #[test]
    fn timeline_details_are_the_parsed_event_fields() {
        let entry = |details_json: &str| {
            serde_json::to_value(TimelineEntry::from(case::TimelineEntry {
                sequence: 7,
                occurred_at: None,
                r#type: "case.stage_changed".into(),
                details_json: details_json.into(),
            }))
            .unwrap()
        };
        let changed = entry(r#"{"from": "new", "to": "assessment"}"#);
        assert_eq!(changed["type"], "case.stage_changed");
        assert_eq!(changed["details"]["to"], "assessment");
        assert_eq!(entry("")["details"], serde_json::json!({}));
        assert!(entry("{not json")["details"].is_null());
    }

    #[test]
    fn a_patch_replaces_only_the_lists_it_names() {
        let update: UpdateCase = serde_json::from_value(serde_json::json!({"flags": []})).unwrap();
        let request = update.into_proto(uuid::Uuid::nil(), 3).unwrap();
        assert!(request.set_flags && request.flags.is_empty());
        assert!(!request.set_caseworkers);
        assert_eq!(request.risk_level, 0);
        assert_eq!(request.expected_version, 3);
        let update: UpdateCase =
            serde_json::from_value(serde_json::json!({"caseworkers": ["user-1", " "]})).unwrap();
        let error = update.into_proto(uuid::Uuid::nil(), 3).unwrap_err();
        assert_eq!(error.violations()[0].field, "caseworkers[1]");
    }
}
