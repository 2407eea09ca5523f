//! Free texts about a case — closure, transfer and reopening reasons, review
//! comments, payment purposes, the legal basis of a seal — encrypted under the case's
//! data key like notes and plans. [`CaseText`] is the one list of these columns: every
//! write seals through it, every read opens through it, and the start-up pass that
//! encrypts rows written in the clear walks it.

use uuid::Uuid;

use haven_audit::{OpenedKey, Receipt, SealingKey};
use haven_error::HavenResult;

use crate::crypto::CaseCrypto;

/// A free-text column of the case service, stored encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseText {
    /// `cases.sealed_basis`: the legal decision a case was sealed under.
    SealBasis,
    /// `closures.reason_text`.
    ClosureReason,
    /// `closures.override_reason`: why closure goes ahead with services in progress.
    ClosureOverride,
    /// `closures.review_comment`.
    ClosureReview,
    /// `transfers.reason`.
    TransferReason,
    /// `transfers.decision_comment`.
    TransferDecision,
    /// `plans.review_comment`.
    PlanReview,
    /// `reopenings.reason`.
    ReopeningReason,
    /// `payments.purpose`.
    PaymentPurpose,
}

/// The row a text belongs to; its bytes bind the ciphertext to that row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextRow(Vec<u8>);

impl TextRow {
    /// A row with its own id (cases, closures, transfers, payments).
    pub fn id(id: Uuid) -> Self {
        Self(id.as_bytes().to_vec())
    }

    /// A plan version of a case (as plan content is bound).
    pub fn plan(case_id: Uuid, plan_version: i32) -> Self {
        let mut bytes = case_id.as_bytes().to_vec();
        bytes.extend_from_slice(&plan_version.to_be_bytes());
        Self(bytes)
    }

    /// A reopening of a case, by its sequence number.
    pub fn reopening(case_id: Uuid, seq: i64) -> Self {
        let mut bytes = case_id.as_bytes().to_vec();
        bytes.extend_from_slice(&seq.to_be_bytes());
        Self(bytes)
    }

    /// The bytes bound into the ciphertext.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl CaseText {
    /// Every free-text column.
    pub const ALL: [CaseText; 9] = [
        CaseText::SealBasis,
        CaseText::ClosureReason,
        CaseText::ClosureOverride,
        CaseText::ClosureReview,
        CaseText::TransferReason,
        CaseText::TransferDecision,
        CaseText::PlanReview,
        CaseText::ReopeningReason,
        CaseText::PaymentPurpose,
    ];

    /// The table holding the text.
    pub fn table(self) -> &'static str {
        match self {
            CaseText::SealBasis => "cases",
            CaseText::ClosureReason | CaseText::ClosureOverride | CaseText::ClosureReview => {
                "closures"
            }
            CaseText::TransferReason | CaseText::TransferDecision => "transfers",
            CaseText::PlanReview => "plans",
            CaseText::ReopeningReason => "reopenings",
            CaseText::PaymentPurpose => "payments",
        }
    }

    /// The column's name, bound into the ciphertext. Rows written before encryption
    /// hold their text in the clear under this name; new rows leave it empty.
    pub fn column(self) -> &'static str {
        match self {
            CaseText::SealBasis => "sealed_basis",
            CaseText::ClosureReason => "reason_text",
            CaseText::ClosureOverride => "override_reason",
            CaseText::ClosureReview | CaseText::PlanReview => "review_comment",
            CaseText::TransferReason | CaseText::ReopeningReason => "reason",
            CaseText::TransferDecision => "decision_comment",
            CaseText::PaymentPurpose => "purpose",
        }
    }

    /// The column holding the ciphertext (NULL when there is no text).
    pub fn encrypted_column(self) -> &'static str {
        match self {
            CaseText::SealBasis => "sealed_basis_encrypted",
            CaseText::ClosureReason => "reason_text_encrypted",
            CaseText::ClosureOverride => "override_reason_encrypted",
            CaseText::ClosureReview | CaseText::PlanReview => "review_comment_encrypted",
            CaseText::TransferReason | CaseText::ReopeningReason => "reason_encrypted",
            CaseText::TransferDecision => "decision_comment_encrypted",
            CaseText::PaymentPurpose => "purpose_encrypted",
        }
    }

    /// Encrypts `text` for `row`; `None` (stored as NULL) when the text is empty or the
    /// case's key is gone with the person's erasure, whose case keeps no new narrative.
    pub fn seal(
        self,
        key: Option<&SealingKey>,
        row: &TextRow,
        text: &str,
    ) -> HavenResult<Option<Vec<u8>>> {
        match key {
            Some(key) if !text.is_empty() => key
                .seal(self.table(), self.column(), row.as_bytes(), text)
                .map(Some),
            _ => Ok(None),
        }
    }

    /// Decrypts a stored text of `row` with the case's key opened for an audited read;
    /// empty when none was stored, the case's key was destroyed with the person's
    /// erasure, or the read opened no key (`None`).
    pub fn open(
        self,
        key: Option<&OpenedKey>,
        row: &TextRow,
        stored: Option<&[u8]>,
    ) -> HavenResult<String> {
        match (key, stored) {
            (Some(key), Some(stored)) => {
                key.open(self.table(), self.column(), row.as_bytes(), stored)
            }
            _ => Ok(String::new()),
        }
    }

    /// Rows still holding this text in the clear, with what encrypting them needs:
    /// `(seq, case_id, row_uuid, row_number, text)`.
    pub(crate) fn plaintext_rows_query(self) -> String {
        let (case_id, row_uuid, row_number) = match self {
            CaseText::SealBasis => ("t.id", "t.id", "t.seq"),
            CaseText::PlanReview => ("t.case_id", "t.case_id", "CAST(t.plan_version AS BIGINT)"),
            CaseText::ReopeningReason => ("t.case_id", "t.case_id", "t.seq"),
            _ => ("t.case_id", "t.id", "t.seq"),
        };
        format!(
            "SELECT t.seq, {case_id} AS case_id, {row_uuid} AS row_uuid, {row_number} AS row_number, \
             t.{column} AS text FROM {table} t WHERE t.{column} <> '' ORDER BY t.seq",
            column = self.column(),
            table = self.table(),
        )
    }

    /// Replaces one row's plaintext by its ciphertext: binds `$1` ciphertext, `$2` seq,
    /// `$3` the plaintext read (so a concurrent change is not overwritten).
    pub(crate) fn replace_plaintext_statement(self) -> String {
        format!(
            "UPDATE {table} SET {encrypted} = $1, {column} = '' WHERE seq = $2 AND {column} = $3",
            table = self.table(),
            encrypted = self.encrypted_column(),
            column = self.column(),
        )
    }

    /// The row a plaintext row found by [`CaseText::plaintext_rows_query`] binds to.
    pub(crate) fn plaintext_row(self, row: &PlaintextRow) -> HavenResult<TextRow> {
        Ok(match self {
            CaseText::PlanReview => TextRow::plan(
                row.case_id,
                i32::try_from(row.row_number).map_err(haven_error::HavenError::internal)?,
            ),
            CaseText::ReopeningReason => TextRow::reopening(row.case_id, row.row_number),
            _ => TextRow::id(row.row_uuid),
        })
    }
}

/// A row holding a text in the clear, written before texts were encrypted.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PlaintextRow {
    pub(crate) seq: i64,
    pub(crate) case_id: Uuid,
    pub(crate) row_uuid: Uuid,
    pub(crate) row_number: i64,
    pub(crate) text: String,
}

/// The data key of a case opened for reading its texts under `receipt`, the audit
/// entry about the case the read appended: `None` once the person was erased (or
/// before any text was written).
pub(crate) fn readable_key(
    crypto: &CaseCrypto,
    receipt: &Receipt,
    case_id: Uuid,
    wrapped: Option<&[u8]>,
    shredded: bool,
) -> HavenResult<Option<OpenedKey>> {
    match wrapped {
        Some(wrapped) if !shredded => crypto.open(receipt, case_id, wrapped).map(Some),
        _ => Ok(None),
    }
}
