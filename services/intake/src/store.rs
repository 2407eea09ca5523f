//! Screening storage: one store over the service's [`Database`], the same statements
//! on SQLite and on Postgres. The trait is what the service asks of it; the work is
//! split by what it is about, each part in its own module: screenings, their consents
//! and decisions, idempotency keys, persons, clocks, indicator sets, sealing with a
//! case, and the upkeep of stored keys and texts.

mod clocks;
mod encryption;
mod histories;
mod idempotency;
mod indicator_sets;
mod persons;
mod rows;
mod screenings;
mod sealing;

use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::{AuditContext, AuditEntry, AuditWrite, NewAuditEntry, Receipt};
use haven_crypto::BlindIndexKind;
use haven_error::HavenResult;
use haven_events::{EventSignal, EventSink, NewEvent, OutboxWrite};
use haven_storage::idempotency::{CallerKey, Created};
use haven_storage::sql::Tx;
use haven_storage::{Database, db_error};

pub use crate::reach::Reach;

use crate::SERVICE;
use crate::assessment::{AssessmentParts, IndicatorSet, IndicatorSetDefinition};
use crate::clocks::Clock;
use crate::domain::{
    ConsentMethod, ConsentPurpose, DecidingOrganizationType, IdentificationStage, ReferralSource,
    Screening,
};
use crate::persons::{Person, PersonCrypto, PersonDetails};
use crate::search_limit::SearchWindow;

/// A screening to record.
#[derive(Debug, Clone)]
pub struct NewScreening {
    /// Screening organisation (the caller's).
    pub organization_id: Uuid,
    /// Officer (the caller).
    pub screened_by: String,
    /// How the person came.
    pub referral_source: ReferralSource,
    /// When.
    pub screened_at: OffsetDateTime,
    /// Where.
    pub settlement: String,
    /// ISO 639 language.
    pub language: String,
    /// Interpreter used.
    pub interpreter_used: bool,
    /// Minor.
    pub is_minor: bool,
    /// Indicator answers, exploitation details and risk, as far as known.
    pub assessment: AssessmentParts,
    /// Where (latitude, longitude), if known.
    pub coordinates: Option<(f64, f64)>,
    /// A minor's guardian.
    pub guardian: Option<crate::domain::Guardian>,
}

/// A consent to record.
#[derive(Debug, Clone)]
pub struct NewConsent {
    /// Purpose.
    pub purpose: ConsentPurpose,
    /// Given or refused/withdrawn.
    pub given: bool,
    /// How.
    pub method: ConsentMethod,
    /// Who records it.
    pub recorded_by: String,
    /// Given or refused by a minor's guardian.
    pub by_guardian: bool,
    /// Data sharing only: the kinds of organisation it covers (empty = any).
    pub organization_types: Vec<String>,
    /// The client's idempotency key: a retry records nothing new.
    pub once: Option<IdempotencyKey>,
}

/// A decision to record.
#[derive(Debug, Clone)]
pub struct NewDecision {
    /// Stage decided.
    pub stage: IdentificationStage,
    /// Kind of deciding organisation.
    pub deciding_organization_type: DecidingOrganizationType,
    /// Legal basis.
    pub legal_basis: String,
    /// When decided.
    pub decided_at: OffsetDateTime,
    /// Reasons.
    pub reasons: String,
    /// Who records it.
    pub recorded_by: String,
    /// The deciding organisation, when it is in the directory.
    pub deciding_organization_id: Option<Uuid>,
    /// The client's idempotency key: a retry records nothing new.
    pub once: Option<IdempotencyKey>,
}

/// Persistence of screenings. Writes append their event in the same transaction.
///
/// It also follows the case service's feed ([`EventSink`]): a sealed case seals its
/// screenings and their person.
#[async_trait::async_trait]
pub trait ScreeningStore: EventSink + Send + Sync + std::fmt::Debug {
    /// Records a new screening, with the screened person's details if given (encrypted,
    /// indexed and audited in the same transaction).
    async fn create_screening(
        &self,
        context: &AuditContext,
        new: NewScreening,
        person: Option<PersonDetails>,
    ) -> HavenResult<Screening> {
        self.create_screening_once(context, new, person, None)
            .await
            .map(|(screening, _)| screening)
    }
    /// Like `create_screening`, but with an idempotency key: the same key and request
    /// hash return the screening created the first time (`true`); the same key with
    /// another request is `Unprocessable`. Keys are per organisation.
    async fn create_screening_once(
        &self,
        context: &AuditContext,
        new: NewScreening,
        person: Option<PersonDetails>,
        once: Option<IdempotencyKey>,
    ) -> HavenResult<(Screening, bool)>;
    /// A screening inside `scope`, decrypted, or `None`. The read is audited in the
    /// same transaction: if the entry cannot be written, the read fails.
    async fn get_screening(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
    ) -> HavenResult<Option<Screening>>;
    /// Screenings inside `scope` matching `filter`, in creation order, after the
    /// cursor position, decrypted. Each screening returned is audited as read in the
    /// same transaction.
    async fn list_screenings(
        &self,
        context: &AuditContext,
        scope: Reach,
        filter: &ScreeningFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Screening>>;
    /// Appends a consent record; `None` if the screening is not in scope. Audited
    /// (`screening.consent`; a replay of the same key as a read).
    async fn record_consent(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
        consent: NewConsent,
    ) -> HavenResult<Option<Screening>>;
    /// Appends a decision and moves the screening to its stage, starting the statutory
    /// clocks `rules` attach to that stage; `None` if not in scope. Audited
    /// (`screening.decide`; a replay of the same key as a read).
    async fn record_decision(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
        decision: NewDecision,
        rules: &[haven_config::ClockRule],
    ) -> HavenResult<Option<Screening>>;
    /// Links the case opened for a screening (once: a second link is ignored). The
    /// screening comes back without its encrypted texts.
    async fn link_case(&self, id: Uuid, case_id: Uuid) -> HavenResult<Screening>;
    /// Screenings that need a case and have none yet, oldest first, without their
    /// encrypted texts.
    async fn awaiting_case(&self, limit: u32, when_presumed: bool) -> HavenResult<Vec<Screening>>;
    /// Replaces the assessment parts given, if the screening is still at
    /// `expected_version`: a stale version is `PreconditionFailed`. `None` if not in scope.
    /// Audited (`screening.update`).
    async fn update_screening(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
        expected_version: i64,
        parts: AssessmentParts,
    ) -> HavenResult<Option<Screening>>;
    /// Publishes the shipped default indicator set as version 1 if none exists.
    async fn ensure_default_indicator_set(&self) -> HavenResult<()>;
    /// Every published indicator set, newest first.
    async fn list_indicator_sets(&self) -> HavenResult<Vec<IndicatorSet>>;
    /// One version, or the newest when `version` is `None`.
    async fn get_indicator_set(&self, version: Option<i32>) -> HavenResult<Option<IndicatorSet>>;
    /// Publishes a new version (the next number).
    async fn publish_indicator_set(
        &self,
        definition: IndicatorSetDefinition,
        published_by: &str,
        once: Option<&CallerKey>,
    ) -> HavenResult<Created<IndicatorSet>>;
    /// Clocks inside `scope` matching `filter`, soonest due first, after the cursor.
    async fn list_clocks(
        &self,
        scope: Reach,
        filter: &ClockFilter,
        after: Option<(OffsetDateTime, i64)>,
        limit: u32,
    ) -> HavenResult<Vec<Clock>>;
    /// Marks a clock met (idempotent); `None` if not in scope.
    async fn complete_clock(
        &self,
        scope: Reach,
        id: Uuid,
        completed_by: &str,
    ) -> HavenResult<Option<Clock>>;
    /// A person inside `scope`, decrypted; the read is audited. `None` if not in scope.
    async fn get_person(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
    ) -> HavenResult<Option<Person>>;
    /// Erases a person: destroys the wrapped data key, removes the blind indexes,
    /// keeps the pseudonymous code. Audited. `None` if not in scope.
    async fn erase_person(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
        reason: &str,
    ) -> HavenResult<Option<Person>>;
    /// Counts one duplicate search by `subject` at `now_ms` (Unix milliseconds) in
    /// the user's window, starting a new window when the last one began `window_ms`
    /// or more ago; returns the window with this search counted. One statement, so
    /// concurrent searches on any replica are each counted.
    async fn count_search(
        &self,
        subject: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> HavenResult<SearchWindow>;
    /// Persons inside `scope` whose blind indexes match the screening's person. Audited.
    /// `None` if the screening is not in scope.
    async fn find_matches(
        &self,
        context: &AuditContext,
        scope: Reach,
        screening_id: Uuid,
    ) -> HavenResult<Option<Vec<PersonMatch>>>;
    /// Links the screening's person to `other` (both inside `scope`) and marks the
    /// screening as re-trafficking. Audited. `None` if either is not in scope.
    async fn confirm_match(
        &self,
        context: &AuditContext,
        scope: Reach,
        screening_id: Uuid,
        other: Uuid,
    ) -> HavenResult<Option<Screening>>;
    /// The audit entries about a person inside `scope`, oldest first.
    async fn person_access(
        &self,
        scope: Reach,
        id: Uuid,
        after: i64,
        limit: u32,
    ) -> HavenResult<Option<Vec<AuditEntry>>>;
    /// Re-wraps every person's data key under the active master key; returns how many.
    async fn rewrap_person_keys(&self) -> HavenResult<u64>;
    /// Encrypts the typed texts stored in the clear before they were encrypted: erasure
    /// reasons, decision reasons and legal bases (once, at start-up; a no-op when there
    /// are none). Returns how many values were encrypted.
    async fn encrypt_plaintext_texts(&self) -> HavenResult<u64>;
}

/// A client's idempotency key for a create, with the hash of its request.
pub use haven_storage::idempotency::IdempotencyKey;

/// Filters of a screening list; `None` does not filter.
#[derive(Debug, Clone, Default)]
pub struct ScreeningFilter {
    /// Current identification stage.
    pub stage: Option<IdentificationStage>,
    /// How the person came.
    pub referral_source: Option<ReferralSource>,
    /// Screened at or after.
    pub screened_from: Option<OffsetDateTime>,
    /// Screened before.
    pub screened_before: Option<OffsetDateTime>,
    /// Only those with a clock past due at this moment.
    pub overdue_clock_at: Option<OffsetDateTime>,
}

/// Which clocks to list.
#[derive(Debug, Clone, Copy)]
pub struct ClockFilter {
    /// `None`: every clock not completed.
    pub state: Option<crate::clocks::ClockState>,
    /// The moment states are computed at.
    pub now: OffsetDateTime,
    /// Width of the due-soon window.
    pub window: time::Duration,
}

/// Another person whose name and birth year match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonMatch {
    /// The matching person.
    pub person_id: Uuid,
    /// Their pseudonymous code.
    pub person_code: String,
    /// Whether the whole name matched, or only a part of it.
    pub kind: BlindIndexKind,
    /// Their screenings (none when restricted).
    pub screening_ids: Vec<Uuid>,
    /// The organisation holding the record.
    pub organization_id: Uuid,
    /// Held by an organisation outside the caller's scope: only `organization_id` may
    /// be disclosed.
    pub restricted: bool,
}

/// The audit action of a screening read (single or in a list).
pub const SCREENING_READ: &str = "screening.read";

/// Screening storage over the service's database.
#[derive(Debug)]
pub struct Screenings {
    database: Database,
    signal: EventSignal,
    crypto: PersonCrypto,
    /// Starts the persons' pseudonymous codes.
    code_prefix: String,
}

/// The store for a database. `code_prefix` starts the persons' pseudonymous codes.
pub fn open(
    database: Database,
    signal: EventSignal,
    crypto: PersonCrypto,
    code_prefix: &str,
) -> Arc<dyn ScreeningStore> {
    Arc::new(Screenings {
        database,
        signal,
        crypto,
        code_prefix: format!("{code_prefix}P"),
    })
}

/// Appends `entry` to the audit trail inside `tx`; its receipt opens what the
/// operation shows.
async fn audit(tx: &mut Tx, entry: NewAuditEntry) -> HavenResult<Receipt> {
    tx.append_audit(SERVICE, &entry).await.map_err(db_error)
}

/// Appends `event` to the outbox inside `tx`.
async fn publish(tx: &mut Tx, event: NewEvent) -> HavenResult<()> {
    tx.append_event(SERVICE, &event).await.map_err(db_error)?;
    Ok(())
}

// Each method runs in the module of its sub-aggregate.
#[async_trait::async_trait]
impl ScreeningStore for Screenings {
    async fn create_screening_once(
        &self,
        context: &AuditContext,
        new: NewScreening,
        person: Option<PersonDetails>,
        once: Option<IdempotencyKey>,
    ) -> HavenResult<(Screening, bool)> {
        self.create_screening_once(context, new, person, once).await
    }

    async fn get_screening(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
    ) -> HavenResult<Option<Screening>> {
        self.get_screening(context, scope, id).await
    }

    async fn list_screenings(
        &self,
        context: &AuditContext,
        scope: Reach,
        filter: &ScreeningFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Screening>> {
        self.list_screenings(context, scope, filter, after, limit)
            .await
    }

    async fn record_consent(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
        consent: NewConsent,
    ) -> HavenResult<Option<Screening>> {
        self.record_consent(context, scope, id, consent).await
    }

    async fn record_decision(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
        decision: NewDecision,
        rules: &[haven_config::ClockRule],
    ) -> HavenResult<Option<Screening>> {
        self.record_decision(context, scope, id, decision, rules)
            .await
    }

    async fn link_case(&self, id: Uuid, case_id: Uuid) -> HavenResult<Screening> {
        self.link_case(id, case_id).await
    }

    async fn awaiting_case(&self, limit: u32, when_presumed: bool) -> HavenResult<Vec<Screening>> {
        self.awaiting_case(limit, when_presumed).await
    }

    async fn update_screening(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
        expected_version: i64,
        parts: AssessmentParts,
    ) -> HavenResult<Option<Screening>> {
        self.update_screening(context, scope, id, expected_version, parts)
            .await
    }

    async fn ensure_default_indicator_set(&self) -> HavenResult<()> {
        self.ensure_default_indicator_set().await
    }

    async fn list_indicator_sets(&self) -> HavenResult<Vec<IndicatorSet>> {
        self.list_indicator_sets().await
    }

    async fn get_indicator_set(&self, version: Option<i32>) -> HavenResult<Option<IndicatorSet>> {
        self.get_indicator_set(version).await
    }

    async fn publish_indicator_set(
        &self,
        definition: IndicatorSetDefinition,
        published_by: &str,
        once: Option<&CallerKey>,
    ) -> HavenResult<Created<IndicatorSet>> {
        self.publish_indicator_set(definition, published_by, once)
            .await
    }

    async fn list_clocks(
        &self,
        scope: Reach,
        filter: &ClockFilter,
        after: Option<(OffsetDateTime, i64)>,
        limit: u32,
    ) -> HavenResult<Vec<Clock>> {
        self.list_clocks(scope, filter, after, limit).await
    }

    async fn complete_clock(
        &self,
        scope: Reach,
        id: Uuid,
        completed_by: &str,
    ) -> HavenResult<Option<Clock>> {
        self.complete_clock(scope, id, completed_by).await
    }

    async fn get_person(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
    ) -> HavenResult<Option<Person>> {
        self.get_person(context, scope, id).await
    }

    async fn erase_person(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
        reason: &str,
    ) -> HavenResult<Option<Person>> {
        self.erase_person(context, scope, id, reason).await
    }

    async fn count_search(
        &self,
        subject: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> HavenResult<SearchWindow> {
        self.count_search(subject, now_ms, window_ms).await
    }

    async fn find_matches(
        &self,
        context: &AuditContext,
        scope: Reach,
        screening_id: Uuid,
    ) -> HavenResult<Option<Vec<PersonMatch>>> {
        self.find_matches(context, scope, screening_id).await
    }

    async fn confirm_match(
        &self,
        context: &AuditContext,
        scope: Reach,
        screening_id: Uuid,
        other: Uuid,
    ) -> HavenResult<Option<Screening>> {
        self.confirm_match(context, scope, screening_id, other)
            .await
    }

    async fn person_access(
        &self,
        scope: Reach,
        id: Uuid,
        after: i64,
        limit: u32,
    ) -> HavenResult<Option<Vec<AuditEntry>>> {
        self.person_access(scope, id, after, limit).await
    }

    async fn rewrap_person_keys(&self) -> HavenResult<u64> {
        self.rewrap_person_keys().await
    }

    async fn encrypt_plaintext_texts(&self) -> HavenResult<u64> {
        self.encrypt_plaintext_texts().await
    }
}
