//! Audit entries: what a service writes and what it reads back.
//!
//! **Never personal data.** An entry names people and records only by id and code:
//! no names, birth dates, contacts, addresses, identity numbers or narrative. The
//! chain makes entries permanent (erasing a person's data never touches the audit
//! trail), so anything personal written here could never be erased.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_auth::{Principal, PrincipalKind};

use crate::hash::{self, AuditHash, HashedFields};

/// Who acted: a person with a user token, or a Haven service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// A person, authenticated by a user token.
    User,
    /// A Haven service acting on its own behalf.
    Service,
}

impl ActorKind {
    /// The stored spelling (`user`, `service`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Service => "service",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(Self::User),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

impl From<PrincipalKind> for ActorKind {
    fn from(kind: PrincipalKind) -> Self {
        match kind {
            PrincipalKind::User => Self::User,
            PrincipalKind::Service => Self::Service,
        }
    }
}

/// How the audited request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The operation went ahead.
    Allowed,
    /// Policy refused the operation.
    Denied,
    /// The record does not exist or is outside the caller's scope.
    NotFound,
}

impl Outcome {
    /// The stored spelling (`allowed`, `denied`, `not_found`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::NotFound => "not_found",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "allowed" => Some(Self::Allowed),
            "denied" => Some(Self::Denied),
            "not_found" => Some(Self::NotFound),
            _ => None,
        }
    }
}

/// An entry about to be appended. The sequence, id, time and hashes are assigned
/// when it is written.
///
/// **Never personal data**: ids and codes only (see the [module docs](self)).
/// Appending checks the shape of every field and refuses, for example, an `action`
/// that is not a dotted lowercase code or a `purpose` longer than 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// The caller's subject (`sub` claim): a user id or `service:<name>`.
    pub actor: String,
    /// User or service.
    pub actor_kind: ActorKind,
    /// The caller's organisation (`org` claim): whose staff acted.
    pub organization_id: Uuid,
    /// Dotted lowercase code of what was done, e.g. `person.read`, `case.open`.
    pub action: &'static str,
    /// Lowercase code of the kind of record, e.g. `person`, `case`, `screening`.
    pub record_type: &'static str,
    /// The record acted on.
    pub record_id: Uuid,
    /// Why, in a short code-like text, e.g. `assistance`. Never a narrative.
    pub purpose: String,
    /// The request id that carried the operation; empty for background work.
    pub request_id: String,
    /// How the request ended, when the caller classifies it.
    pub outcome: Option<Outcome>,
    /// The service that called on the actor's behalf (`service:<name>`), when the
    /// actor reached this service through another one; `None` for a direct call.
    pub via: Option<String>,
}

impl NewAuditEntry {
    /// An entry for an operation `principal` was allowed to perform.
    pub fn for_principal(
        principal: &Principal,
        action: &'static str,
        record_type: &'static str,
        record_id: Uuid,
        purpose: impl Into<String>,
        request_id: impl Into<String>,
    ) -> Self {
        Self {
            actor: principal.subject.clone(),
            actor_kind: principal.kind.into(),
            organization_id: principal.organization_id,
            action,
            record_type,
            record_id,
            purpose: purpose.into(),
            request_id: request_id.into(),
            outcome: Some(Outcome::Allowed),
            via: None,
        }
    }

    /// The same entry with another outcome.
    #[must_use]
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }
}

/// An entry of the chain as stored.
///
/// **Never personal data**: ids and codes only (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain: 1, 2, 3… in commit order, without gaps.
    pub sequence: i64,
    /// Unique id of the entry.
    pub entry_id: Uuid,
    /// When the entry was written, to the microsecond.
    pub occurred_at: OffsetDateTime,
    /// The caller's subject: a user id or `service:<name>`.
    pub actor: String,
    /// User or service.
    pub actor_kind: ActorKind,
    /// The caller's organisation.
    pub organization_id: Uuid,
    /// Dotted code of what was done, e.g. `person.read`.
    pub action: String,
    /// Kind of record, e.g. `person`.
    pub record_type: String,
    /// The record acted on.
    pub record_id: Uuid,
    /// Why, e.g. `assistance`.
    pub purpose: String,
    /// The request id; empty for background work.
    pub request_id: String,
    /// How the request ended, if classified.
    pub outcome: Option<Outcome>,
    /// [`hash`](Self::hash) of the entry before; all zero for the first entry.
    pub previous_hash: AuditHash,
    /// SHA-256 over the canonical encoding of every other field
    /// (see [`crate::hash`]).
    pub hash: AuditHash,
    /// The service that called on the actor's behalf, if any.
    pub via: Option<String>,
}

impl AuditEntry {
    /// Recomputes the hash from the entry's fields. Equal to [`hash`](Self::hash)
    /// for an entry that was not altered; lets anyone check an exported entry
    /// without this crate's database code.
    pub fn computed_hash(&self) -> AuditHash {
        hash::compute(&HashedFields {
            sequence: self.sequence,
            entry_id: self.entry_id,
            occurred_at: self.occurred_at,
            actor: &self.actor,
            actor_kind: self.actor_kind.as_str(),
            organization_id: self.organization_id,
            action: &self.action,
            record_type: &self.record_type,
            record_id: self.record_id,
            purpose: &self.purpose,
            request_id: &self.request_id,
            outcome: self.outcome.map(Outcome::as_str),
            previous_hash: self.previous_hash.as_bytes(),
            via: self.via.as_deref(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{ActorKind, Outcome};

    #[test]
    fn stored_spellings_round_trip() {
        for kind in [ActorKind::User, ActorKind::Service] {
            assert_eq!(ActorKind::parse(kind.as_str()), Some(kind));
        }
        for outcome in [Outcome::Allowed, Outcome::Denied, Outcome::NotFound] {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(ActorKind::parse("admin"), None);
        assert_eq!(Outcome::parse(""), None);
    }
}
