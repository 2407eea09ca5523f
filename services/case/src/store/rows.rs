//! The rows of the case tables as stored and what they decode into, and the small
//! checks and errors the store's queries share.

use sqlx::FromRow;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use haven_audit::{OpenedKey, Receipt};
use haven_error::{ErrorCode, HavenError, HavenResult};

use crate::crypto::CaseCrypto;
use crate::domain::{
    Amount, ApprovalStatus, Assessment, AssessmentKind, Case, CaseStage, CaseStatus, Closure,
    ClosureReason, FollowUp, FollowUpKind, FollowUpOutcome, NeedDomain, Payment, RiskLevel,
    ServiceDelivery, ServiceStatus, ServiceType, Transfer, parse_date,
};
use crate::texts::{CaseText, TextRow, readable_key};

/// The id an idempotency key recorded.
pub(super) fn replayed_id(record_id: &str) -> HavenResult<Uuid> {
    Uuid::parse_str(record_id).map_err(|_| corrupt("idempotency key"))
}

pub(super) fn corrupt(what: &str) -> HavenError {
    HavenError::internal(std::io::Error::other(format!(
        "stored {what} is not readable"
    )))
}

pub(super) fn stored_date(text: &str) -> HavenResult<Date> {
    parse_date(text).ok_or_else(|| corrupt("date"))
}

pub(super) fn optional_date(text: Option<String>) -> HavenResult<Option<Date>> {
    text.filter(|text| !text.is_empty())
        .map(|text| stored_date(&text))
        .transpose()
}

pub(super) fn stale(version: i64) -> HavenError {
    HavenError::new(
        ErrorCode::PreconditionFailed,
        format!("it changed since you read it (now at version {version})"),
    )
}

pub(super) fn conflict(message: impl Into<String>) -> HavenError {
    HavenError::new(ErrorCode::Conflict, message)
}

pub(super) fn open_case_required(case: &Case) -> HavenResult<()> {
    if matches!(case.status, CaseStatus::Closed | CaseStatus::ClosedReferred) {
        return Err(conflict(format!(
            "the case is `{}`; reopen it first",
            case.status.as_str()
        )));
    }
    Ok(())
}

#[derive(Debug, FromRow)]
pub(super) struct CaseRow {
    pub(super) seq: i64,
    pub(super) id: Uuid,
    pub(super) code: String,
    pub(super) organization_id: Uuid,
    pub(super) screening_id: Uuid,
    pub(super) status: String,
    pub(super) stage: String,
    pub(super) opened_at: OffsetDateTime,
    pub(super) version: i64,
    pub(super) sealed: bool,
    pub(super) person_id: Option<Uuid>,
    pub(super) risk_level: Option<String>,
    pub(super) flags: String,
    pub(super) caseworkers: String,
    pub(super) closure_id: Option<Uuid>,
    pub(super) closure_reason: Option<String>,
    pub(super) closure_reason_text: Option<Vec<u8>>,
    pub(super) closure_override: Option<Vec<u8>>,
    pub(super) closure_status: Option<String>,
    pub(super) closure_requested_by: Option<String>,
    pub(super) closure_requested_at: Option<OffsetDateTime>,
    pub(super) closure_reviewed_by: Option<String>,
    pub(super) closure_reviewed_at: Option<OffsetDateTime>,
    pub(super) closure_comment: Option<Vec<u8>>,
    pub(super) transfer_id: Option<Uuid>,
    pub(super) transfer_to: Option<Uuid>,
    pub(super) transfer_reason: Option<Vec<u8>>,
    pub(super) transfer_requested_by: Option<String>,
    pub(super) transfer_requested_at: Option<OffsetDateTime>,
    pub(super) data_key: Option<Vec<u8>>,
    pub(super) shredded: bool,
}

impl CaseRow {
    /// The case with its closure and pending transfer. With the `receipt` of the
    /// audit entry about the case this read appended, their texts are decrypted
    /// (empty once the person was erased; the key is opened only when a text is
    /// stored); without one, they are left empty, for checks that read no text.
    pub(super) fn into_case(
        self,
        crypto: &CaseCrypto,
        receipt: Option<&Receipt>,
    ) -> HavenResult<Case> {
        let row = self;
        let has_text = [
            &row.closure_reason_text,
            &row.closure_override,
            &row.closure_comment,
            &row.transfer_reason,
        ]
        .iter()
        .any(|stored| stored.is_some());
        let key = match receipt {
            Some(receipt) if has_text => readable_key(
                crypto,
                receipt,
                row.id,
                row.data_key.as_deref(),
                row.shredded,
            )?,
            _ => None,
        };
        let key = key.as_ref();
        let closure = match (row.closure_id, row.closure_requested_at) {
            (Some(id), Some(requested_at)) => Some(Closure {
                id,
                reason: row
                    .closure_reason
                    .as_deref()
                    .and_then(ClosureReason::parse)
                    .ok_or_else(|| corrupt("closure reason"))?,
                reason_text: CaseText::ClosureReason.open(
                    key,
                    &TextRow::id(id),
                    row.closure_reason_text.as_deref(),
                )?,
                override_reason: CaseText::ClosureOverride.open(
                    key,
                    &TextRow::id(id),
                    row.closure_override.as_deref(),
                )?,
                overridden: row.closure_override.is_some(),
                status: row
                    .closure_status
                    .as_deref()
                    .and_then(ApprovalStatus::parse)
                    .ok_or_else(|| corrupt("closure status"))?,
                requested_by: row.closure_requested_by.unwrap_or_default(),
                requested_at,
                reviewed_by: row.closure_reviewed_by.unwrap_or_default(),
                reviewed_at: row.closure_reviewed_at,
                review_comment: CaseText::ClosureReview.open(
                    key,
                    &TextRow::id(id),
                    row.closure_comment.as_deref(),
                )?,
            }),
            _ => None,
        };
        let pending_transfer = match (row.transfer_id, row.transfer_to, row.transfer_requested_at) {
            (Some(id), Some(to), Some(requested_at)) => Some(Transfer {
                id,
                case_id: row.id,
                case_code: row.code.clone(),
                from_organization_id: row.organization_id,
                to_organization_id: to,
                reason: CaseText::TransferReason.open(
                    key,
                    &TextRow::id(id),
                    row.transfer_reason.as_deref(),
                )?,
                status: ApprovalStatus::Requested,
                requested_by: row.transfer_requested_by.unwrap_or_default(),
                requested_at,
                decided_by: String::new(),
                decided_at: None,
                decision_comment: String::new(),
            }),
            _ => None,
        };
        Ok(Case {
            id: row.id,
            code: row.code,
            organization_id: row.organization_id,
            screening_id: row.screening_id,
            status: CaseStatus::parse(&row.status).ok_or_else(|| corrupt("case status"))?,
            stage: CaseStage::parse(&row.stage).ok_or_else(|| corrupt("case stage"))?,
            opened_at: row.opened_at,
            version: row.version,
            position: row.seq,
            sealed: row.sealed,
            person_id: row.person_id,
            risk_level: row
                .risk_level
                .as_deref()
                .map(|level| RiskLevel::parse(level).ok_or_else(|| corrupt("risk level")))
                .transpose()?,
            flags: serde_json::from_str(&row.flags).map_err(|_| corrupt("flags"))?,
            caseworkers: serde_json::from_str(&row.caseworkers)
                .map_err(|_| corrupt("caseworkers"))?,
            closure,
            pending_transfer,
        })
    }
}

#[derive(Debug, FromRow)]
pub(super) struct AssessmentRow {
    pub(super) id: Uuid,
    pub(super) case_id: Uuid,
    pub(super) kind: String,
    pub(super) scores: String,
    pub(super) assessed_at: OffsetDateTime,
    pub(super) assessed_by: String,
}

impl TryFrom<AssessmentRow> for Assessment {
    type Error = HavenError;

    fn try_from(row: AssessmentRow) -> HavenResult<Self> {
        let scores: std::collections::BTreeMap<String, u8> =
            serde_json::from_str(&row.scores).map_err(|_| corrupt("assessment"))?;
        let mut scores = scores
            .into_iter()
            .map(|(domain, score)| {
                NeedDomain::parse(&domain)
                    .map(|domain| (domain, score))
                    .ok_or_else(|| corrupt("assessment"))
            })
            .collect::<HavenResult<Vec<_>>>()?;
        // Domains in their listed order (safety first), not the stored key order.
        scores.sort_by_key(|(domain, _)| *domain);
        Ok(Assessment {
            id: row.id,
            case_id: row.case_id,
            kind: AssessmentKind::parse(&row.kind).ok_or_else(|| corrupt("assessment"))?,
            scores,
            assessed_at: row.assessed_at,
            assessed_by: row.assessed_by,
        })
    }
}

#[derive(Debug, FromRow)]
pub(super) struct TransferRow {
    pub(super) id: Uuid,
    pub(super) case_id: Uuid,
    pub(super) case_code: String,
    pub(super) from_organization_id: Uuid,
    pub(super) to_organization_id: Uuid,
    pub(super) reason: Option<Vec<u8>>,
    pub(super) status: String,
    pub(super) requested_by: String,
    pub(super) requested_at: OffsetDateTime,
    pub(super) decided_by: String,
    pub(super) decided_at: Option<OffsetDateTime>,
    pub(super) decision_comment: Option<Vec<u8>>,
    pub(super) data_key: Option<Vec<u8>>,
    pub(super) shredded: bool,
}

impl TransferRow {
    /// The transfer. With the `receipt` of the audit entry about its case this read
    /// appended, its reason and decision comment are decrypted (empty once the person
    /// was erased); without one, they are left empty, for checks that read no text.
    pub(super) fn into_transfer(
        self,
        crypto: &CaseCrypto,
        receipt: Option<&Receipt>,
    ) -> HavenResult<Transfer> {
        let row = self;
        let key = match receipt {
            Some(receipt) if row.reason.is_some() || row.decision_comment.is_some() => {
                readable_key(
                    crypto,
                    receipt,
                    row.case_id,
                    row.data_key.as_deref(),
                    row.shredded,
                )?
            }
            _ => None,
        };
        let text_row = TextRow::id(row.id);
        Ok(Transfer {
            id: row.id,
            case_id: row.case_id,
            case_code: row.case_code,
            from_organization_id: row.from_organization_id,
            to_organization_id: row.to_organization_id,
            reason: CaseText::TransferReason.open(
                key.as_ref(),
                &text_row,
                row.reason.as_deref(),
            )?,
            status: ApprovalStatus::parse(&row.status).ok_or_else(|| corrupt("transfer"))?,
            requested_by: row.requested_by,
            requested_at: row.requested_at,
            decided_by: row.decided_by,
            decided_at: row.decided_at,
            decision_comment: CaseText::TransferDecision.open(
                key.as_ref(),
                &text_row,
                row.decision_comment.as_deref(),
            )?,
        })
    }
}

#[derive(Debug, FromRow)]
pub(super) struct PlanRow {
    pub(super) case_id: Uuid,
    pub(super) plan_version: i32,
    pub(super) content: Vec<u8>,
    pub(super) status: String,
    pub(super) submitted_by: String,
    pub(super) submitted_at: OffsetDateTime,
    pub(super) reviewed_by: String,
    pub(super) reviewed_at: Option<OffsetDateTime>,
    pub(super) review_comment: Option<Vec<u8>>,
    pub(super) version: i64,
}

#[derive(Debug, FromRow)]
pub(super) struct ServiceRow {
    pub(super) id: Uuid,
    pub(super) case_id: Uuid,
    pub(super) service_type: String,
    pub(super) provider_organization_id: Uuid,
    pub(super) planned_on: Option<String>,
    pub(super) started_on: Option<String>,
    pub(super) ended_on: Option<String>,
    pub(super) status: String,
    pub(super) version: i64,
    pub(super) recorded_at: OffsetDateTime,
    pub(super) recorded_by: String,
}

impl TryFrom<ServiceRow> for ServiceDelivery {
    type Error = HavenError;

    fn try_from(row: ServiceRow) -> HavenResult<Self> {
        Ok(ServiceDelivery {
            id: row.id,
            case_id: row.case_id,
            service_type: ServiceType::parse(&row.service_type)
                .ok_or_else(|| corrupt("service type"))?,
            provider_organization_id: row.provider_organization_id,
            planned_on: optional_date(row.planned_on)?,
            started_on: optional_date(row.started_on)?,
            ended_on: optional_date(row.ended_on)?,
            status: ServiceStatus::parse(&row.status).ok_or_else(|| corrupt("service status"))?,
            version: row.version,
            recorded_at: row.recorded_at,
            recorded_by: row.recorded_by,
        })
    }
}

#[derive(Debug, FromRow)]
pub(super) struct PaymentRow {
    pub(super) id: Uuid,
    pub(super) case_id: Uuid,
    pub(super) amount_minor: i64,
    pub(super) currency: String,
    pub(super) paid_on: String,
    pub(super) purpose: Option<Vec<u8>>,
    pub(super) service_id: Option<Uuid>,
    pub(super) reverses_payment_id: Option<Uuid>,
    pub(super) recorded_at: OffsetDateTime,
    pub(super) recorded_by: String,
}

impl PaymentRow {
    /// The payment with its purpose decrypted under the case's key opened for an
    /// audited read (empty without).
    pub(super) fn into_payment(self, key: Option<&OpenedKey>) -> HavenResult<Payment> {
        let row = self;
        Ok(Payment {
            id: row.id,
            case_id: row.case_id,
            amount: Amount(row.amount_minor),
            currency: row.currency,
            paid_on: stored_date(&row.paid_on)?,
            purpose: CaseText::PaymentPurpose.open(
                key,
                &TextRow::id(row.id),
                row.purpose.as_deref(),
            )?,
            service_id: row.service_id,
            reverses_payment_id: row.reverses_payment_id,
            recorded_at: row.recorded_at,
            recorded_by: row.recorded_by,
        })
    }
}

#[derive(Debug, FromRow)]
pub(super) struct FollowUpRow {
    pub(super) seq: i64,
    pub(super) id: Uuid,
    pub(super) case_id: Uuid,
    pub(super) case_code: String,
    pub(super) kind: String,
    pub(super) due_on: String,
    pub(super) assigned_to: String,
    pub(super) outcome: Option<String>,
    pub(super) done_at: Option<OffsetDateTime>,
    pub(super) version: i64,
}

impl TryFrom<FollowUpRow> for (i64, FollowUp) {
    type Error = HavenError;

    fn try_from(row: FollowUpRow) -> HavenResult<Self> {
        Ok((
            row.seq,
            FollowUp {
                id: row.id,
                case_id: row.case_id,
                case_code: row.case_code,
                kind: FollowUpKind::parse(&row.kind).ok_or_else(|| corrupt("follow-up"))?,
                due_on: stored_date(&row.due_on)?,
                assigned_to: row.assigned_to,
                outcome: row
                    .outcome
                    .as_deref()
                    .map(|outcome| {
                        FollowUpOutcome::parse(outcome).ok_or_else(|| corrupt("follow-up"))
                    })
                    .transpose()?,
                done_at: row.done_at,
                version: row.version,
            },
        ))
    }
}

#[derive(Debug, FromRow)]
pub(super) struct NoteRow {
    pub(super) id: Uuid,
    pub(super) case_id: Uuid,
    pub(super) visibility: String,
    pub(super) body: Vec<u8>,
    pub(super) written_by: String,
    pub(super) written_at: OffsetDateTime,
}
