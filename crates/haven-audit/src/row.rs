//! `audit_log` rows as stored, before any interpretation.

use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::entry::{ActorKind, AuditEntry, Outcome};
use crate::hash::{AuditHash, HashedFields};

/// Every column, in the order of [`AuditRow`].
pub(crate) const COLUMNS: &str = "sequence, entry_id, occurred_at, actor, actor_kind, \
    organization_id, action, record_type, record_id, purpose, request_id, outcome, \
    previous_hash, hash, via";

/// A stored entry with its enumerations and hashes still raw, so the verifier can
/// hash exactly what is stored even when it is not a valid entry any more.
#[derive(Debug, FromRow)]
pub(crate) struct AuditRow {
    pub sequence: i64,
    pub entry_id: Uuid,
    pub occurred_at: OffsetDateTime,
    pub actor: String,
    pub actor_kind: String,
    pub organization_id: Uuid,
    pub action: String,
    pub record_type: String,
    pub record_id: Uuid,
    pub purpose: String,
    pub request_id: String,
    pub outcome: Option<String>,
    pub previous_hash: Vec<u8>,
    pub hash: Vec<u8>,
    pub via: Option<String>,
}

impl AuditRow {
    /// The fields the stored hash should cover.
    pub fn hashed_fields(&self) -> HashedFields<'_> {
        HashedFields {
            sequence: self.sequence,
            entry_id: self.entry_id,
            occurred_at: self.occurred_at,
            actor: &self.actor,
            actor_kind: &self.actor_kind,
            organization_id: self.organization_id,
            action: &self.action,
            record_type: &self.record_type,
            record_id: self.record_id,
            purpose: &self.purpose,
            request_id: &self.request_id,
            outcome: self.outcome.as_deref(),
            previous_hash: &self.previous_hash,
            via: self.via.as_deref(),
        }
    }
}

/// A stored row that is not a valid entry (possible only if someone bypassed the
/// table's constraints).
#[derive(Debug)]
pub(crate) struct MalformedRow {
    sequence: i64,
    column: &'static str,
}

impl std::fmt::Display for MalformedRow {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "audit entry {} has an invalid {}",
            self.sequence, self.column
        )
    }
}

impl std::error::Error for MalformedRow {}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = MalformedRow;

    fn try_from(row: AuditRow) -> Result<Self, MalformedRow> {
        let malformed = |column| MalformedRow {
            sequence: row.sequence,
            column,
        };
        let actor_kind =
            ActorKind::parse(&row.actor_kind).ok_or_else(|| malformed("actor_kind"))?;
        let outcome = match row.outcome.as_deref() {
            None => None,
            Some(text) => Some(Outcome::parse(text).ok_or_else(|| malformed("outcome"))?),
        };
        let previous_hash =
            AuditHash::from_slice(&row.previous_hash).ok_or_else(|| malformed("previous_hash"))?;
        let hash = AuditHash::from_slice(&row.hash).ok_or_else(|| malformed("hash"))?;
        Ok(AuditEntry {
            sequence: row.sequence,
            entry_id: row.entry_id,
            occurred_at: row.occurred_at,
            actor: row.actor,
            actor_kind,
            organization_id: row.organization_id,
            action: row.action,
            record_type: row.record_type,
            record_id: row.record_id,
            purpose: row.purpose,
            request_id: row.request_id,
            outcome,
            previous_hash,
            hash,
            via: row.via,
        })
    }
}
