//! Screening storage: one trait, one implementation per backend (shared SQL).

use std::sync::Arc;

use sqlx::FromRow;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::{AuditContext, AuditEntry, AuditWrite, Receipt, SealingKey};
use haven_auth::Scope;

pub use crate::reach::Reach;
use haven_crypto::BlindIndexKind;
use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_events::{CheckpointWrite, EventSignal, EventSink, NewEvent, OutboxWrite};
use haven_proto::common::v1::Event;
use haven_storage::idempotency::{CallerKey, Claim, Created, claim};
use haven_storage::{Database, ForgetDeleted, WritePool, db_error};

use crate::assessment::{AssessmentParts, IndicatorSet, IndicatorSetDefinition};
use crate::clocks::{self, Clock};
use crate::persons::{Gender, Person, PersonCrypto, PersonDetails};
use crate::search_limit::SearchWindow;

use crate::SERVICE;
use crate::domain::{
    ConsentMethod, ConsentPurpose, DecidingOrganizationType, IdentificationStage, ReferralSource,
    Screening,
};

mod rows;

use rows::{
    ConsentRow, DecisionRow, IndicatorSetRow, Loaded, PersonRow, ScreeningRow, part_json,
    seal_notes,
};

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
#[async_trait::async_trait]
///
/// It also follows the case service's feed ([`EventSink`]): a sealed case seals its
/// screenings and their person.
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

/// A decision whose reasons or legal basis are still stored in the clear.
#[derive(FromRow)]
struct PlaintextDecision {
    seq: i64,
    id: Uuid,
    screening_id: Uuid,
    reasons: String,
    legal_basis: String,
    /// No ciphertext of the reasons yet.
    reasons_unsealed: bool,
    /// No ciphertext of the legal basis yet.
    legal_basis_unsealed: bool,
    /// When the screened person was erased.
    erased_at: Option<OffsetDateTime>,
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
    pub state: Option<clocks::ClockState>,
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

/// The store for a database. `code_prefix` starts the persons' pseudonymous codes.
pub fn open(
    database: Database,
    signal: EventSignal,
    crypto: PersonCrypto,
    code_prefix: &str,
) -> Arc<dyn ScreeningStore> {
    let code_prefix = format!("{code_prefix}P");
    match database {
        Database::Sqlite(pool) => Arc::new(SqliteScreeningStore {
            pool,
            signal,
            crypto,
            code_prefix,
        }),
        Database::Postgres(pool) => Arc::new(PostgresScreeningStore {
            pool,
            signal,
            crypto,
            code_prefix,
        }),
    }
}

const SCREENING_COLUMNS: &str = "s.seq, s.id, s.organization_id, s.screened_by, s.referral_source, \
    s.screened_at, s.settlement, s.language, s.interpreter_used, s.is_minor, s.stage, s.case_id, s.created_at, \
    s.version, s.person_id, p.code AS person_code, s.indicator_answers, s.exploitation, s.risk, \
    s.re_trafficked, s.wrapped_key, s.latitude, s.longitude, s.guardian, s.indicator_notes \
    FROM screenings s LEFT JOIN persons p ON p.id = s.person_id";
const SELECT_SCREENING: &str = "SELECT s.seq, s.id, s.organization_id, s.screened_by, s.referral_source, \
    s.screened_at, s.settlement, s.language, s.interpreter_used, s.is_minor, s.stage, s.case_id, s.created_at, \
    s.version, s.person_id, p.code AS person_code, s.indicator_answers, s.exploitation, s.risk, \
    s.re_trafficked, s.wrapped_key, s.latitude, s.longitude, s.guardian, s.indicator_notes \
    FROM screenings s LEFT JOIN persons p ON p.id = s.person_id \
    WHERE s.id = $1 AND ($2 IS NULL OR s.organization_id = $2) AND ($3 OR NOT s.sealed)";
const PERSON_COLUMNS: &str = "SELECT id, code, organization_id, wrapped_key, given_name, family_name, patronymic, \
    birth_date, phone, address, identity_document_number, birth_year, gender, citizenships, languages, \
    created_at, erased_at FROM persons WHERE id = $1 AND ($2 IS NULL OR organization_id = $2) AND ($3 OR NOT sealed)";
const INSERT_PERSON: &str = "INSERT INTO persons (id, code, organization_id, wrapped_key, given_name, family_name, \
    patronymic, birth_date, phone, address, identity_document_number, birth_year, gender, citizenships, \
    languages, created_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 1)";
const NEXT_PERSON_NUMBER: &str = "INSERT INTO person_code_counters (year, last) VALUES ($1, 1) \
    ON CONFLICT (year) DO UPDATE SET last = person_code_counters.last + 1 RETURNING last";
const INSERT_INDEX: &str = "INSERT INTO person_blind_index (person_id, kind, value) VALUES ($1, $2, $3) \
    ON CONFLICT DO NOTHING";
const ERASE_PERSON: &str = "UPDATE persons SET wrapped_key = NULL, erased_at = $2, erasure_reason = NULL, \
    erasure_key = $3, erasure_reason_ciphertext = $4, \
    version = version + 1 WHERE id = $1 AND erased_at IS NULL";
const SELECT_CONSENTS: &str = "SELECT id, purpose, given, method, recorded_by, recorded_at, by_guardian, \
    organization_types FROM consents WHERE screening_id = $1 ORDER BY seq";
const SELECT_DECISIONS: &str = "SELECT id, stage, deciding_organization_type, legal_basis, decided_at, reasons, \
    reasons_ciphertext, legal_basis_ciphertext, recorded_by, recorded_at, deciding_organization_id \
    FROM decisions WHERE screening_id = $1 ORDER BY seq";
const INSERT_SCREENING: &str = "INSERT INTO screenings (id, organization_id, screened_by, referral_source, \
    screened_at, settlement, language, interpreter_used, is_minor, stage, case_id, created_at, version, person_id, \
    indicator_set_version, indicator_answers, exploitation, risk, wrapped_key, latitude, longitude, guardian, \
    indicator_notes) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, 1, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)";
const UPDATE_ASSESSMENT: &str = "UPDATE screenings SET \
    indicator_set_version = CASE WHEN $3 THEN $4 ELSE indicator_set_version END, \
    indicator_answers = CASE WHEN $3 THEN $5 ELSE indicator_answers END, \
    indicator_notes = CASE WHEN $3 THEN $10 ELSE indicator_notes END, \
    exploitation = CASE WHEN $6 THEN $7 ELSE exploitation END, \
    risk = CASE WHEN $8 THEN $9 ELSE risk END, \
    version = version + 1 WHERE id = $1 AND version = $2";
const INSERT_CONSENT: &str = "INSERT INTO consents (id, screening_id, purpose, given, method, recorded_by, recorded_at, \
    by_guardian, organization_types) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const INSERT_DECISION: &str = "INSERT INTO decisions (id, screening_id, stage, deciding_organization_type, \
    legal_basis, legal_basis_ciphertext, decided_at, reasons, reasons_ciphertext, recorded_by, recorded_at, \
    deciding_organization_id) VALUES ($1, $2, $3, $4, '', $5, $6, '', $7, $8, $9, $10)";
const INSERT_CLOCK: &str = "INSERT INTO clocks (id, screening_id, organization_id, name, description, started_at, due_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (screening_id, name) DO NOTHING";
/// A clock whose screening is sealed.
const CLOCK_SEALED: &str = "EXISTS (SELECT 1 FROM screenings sealed_screening \
    WHERE sealed_screening.id = clocks.screening_id AND sealed_screening.sealed)";
const CLOCK_COLUMNS: &str = "seq, id, screening_id, organization_id, name, description, started_at, due_at, completed_at, completed_by";

#[derive(Debug, FromRow)]
struct ClockRow {
    seq: i64,
    id: Uuid,
    screening_id: Uuid,
    organization_id: Uuid,
    name: String,
    description: String,
    started_at: OffsetDateTime,
    due_at: OffsetDateTime,
    completed_at: Option<OffsetDateTime>,
    completed_by: Option<String>,
}

impl From<ClockRow> for Clock {
    fn from(row: ClockRow) -> Self {
        Clock {
            id: row.id,
            screening_id: row.screening_id,
            organization_id: row.organization_id,
            name: row.name,
            description: row.description,
            started_at: row.started_at,
            due_at: row.due_at,
            completed_at: row.completed_at,
            completed_by: row.completed_by,
            position: row.seq,
        }
    }
}

/// The audit action of a screening read (single or in a list).
pub const SCREENING_READ: &str = "screening.read";

// Sealing: the case id is $1.
const REMEMBER_SEALED_CASE: &str = "INSERT INTO sealed_cases (case_id, sealed_at) VALUES ($1, $2) ON CONFLICT (case_id) DO NOTHING";
const SEAL_PERSONS_OF_CASE: &str = "UPDATE persons SET sealed = TRUE, version = version + 1 \
    WHERE sealed = FALSE AND id IN (SELECT person_id FROM screenings WHERE case_id = $1)";
const SEAL_SCREENINGS_OF_CASE: &str = "UPDATE screenings SET sealed = TRUE, version = version + 1 \
    WHERE case_id = $1 AND sealed = FALSE";
const SEALED_CASE_OF_SCREENING: &str = "SELECT c.case_id FROM sealed_cases c \
    JOIN screenings s ON s.case_id = c.case_id WHERE s.id = $1";

const BUMP_VERSION: &str = "UPDATE screenings SET version = version + 1 WHERE id = $1";
const SET_STAGE: &str = "UPDATE screenings SET stage = $2, version = version + 1 WHERE id = $1";
/// One more search in the user's window, or the first of a new window once the last
/// began `$3` milliseconds or more before `$2`. Both backends evaluate every `SET`
/// expression on the row as it was.
const COUNT_SEARCH: &str = "INSERT INTO search_windows (subject, started_ms, searches) VALUES ($1, $2, 1) \
    ON CONFLICT (subject) DO UPDATE SET \
    searches = CASE WHEN search_windows.started_ms <= $2 - $3 THEN 1 ELSE search_windows.searches + 1 END, \
    started_ms = CASE WHEN search_windows.started_ms <= $2 - $3 THEN $2 ELSE search_windows.started_ms END \
    RETURNING started_ms, searches";

const LINK_CASE: &str =
    "UPDATE screenings SET case_id = $2, version = version + 1 WHERE id = $1 AND case_id IS NULL";

/// The case a `case.sealed` event of the case service seals; `None` for any other
/// event.
fn sealed_case(event: &Event) -> HavenResult<Option<Uuid>> {
    if event.source != "case" || event.event_type != "case.sealed" {
        return Ok(None);
    }
    Uuid::parse_str(&event.aggregate_id)
        .map(Some)
        .map_err(HavenError::internal)
}

macro_rules! screening_store {
    ($name:ident, $pool:ty, $connection:ty) => {
        /// Screening storage on one backend.
        #[derive(Debug)]
        pub struct $name {
            pool: $pool,
            signal: EventSignal,
            crypto: PersonCrypto,
            code_prefix: String,
        }

        impl $name {
            /// The screening `id` inside `scope`, its texts still sealed.
            async fn load(connection: &mut $connection, scope: Reach, id: Uuid) -> HavenResult<Option<Loaded>> {
                let row: Option<ScreeningRow> = sqlx::query_as(SELECT_SCREENING)
                    .bind(id)
                    .bind(scope.organization())
                    .bind(scope.sees_sealed())
                    .fetch_optional(&mut *connection)
                    .await
                    .map_err(db_error)?;
                let Some(row) = row else { return Ok(None) };
                let consents: Vec<ConsentRow> =
                    sqlx::query_as(SELECT_CONSENTS).bind(id).fetch_all(&mut *connection).await.map_err(db_error)?;
                let decisions: Vec<DecisionRow> =
                    sqlx::query_as(SELECT_DECISIONS).bind(id).fetch_all(&mut *connection).await.map_err(db_error)?;
                Loaded::from_rows(row, consents, decisions).map(Some)
            }

            /// Answers a retried write that already happened: the screening as it stands,
            /// audited as a read in `tx`.
            async fn replayed(&self, tx: &mut $connection, context: &AuditContext, id: Uuid) -> HavenResult<Screening> {
                let entry = context.entry(SCREENING_READ, "screening", id);
                let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &entry).await.map_err(db_error)?;
                // Loaded again: a concurrent retry may have done the work since this
                // transaction first read the screening.
                self.reload(tx, id, &receipt).await
            }

            /// The screening `id` after a write in `tx`, opened under the write's receipt.
            async fn reload(&self, tx: &mut $connection, id: Uuid, receipt: &Receipt) -> HavenResult<Screening> {
                Self::load(tx, Reach::INTERNAL, id)
                    .await?
                    .ok_or_else(|| HavenError::internal(std::io::Error::other("screening vanished")))?
                    .open(&self.crypto, receipt)
            }

            async fn list(&self, sql: String, bind_organization: Option<Uuid>, after: i64, limit: u32) -> HavenResult<Vec<Loaded>> {
                let mut connection = self.pool.acquire().await.map_err(db_error)?;
                let rows: Vec<ScreeningRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(after)
                    .bind(bind_organization)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(db_error)?;
                Self::with_histories(&mut connection, rows).await
            }

            /// Loads the consent and decision histories of listed screenings.
            async fn with_histories(connection: &mut $connection, rows: Vec<ScreeningRow>) -> HavenResult<Vec<Loaded>> {
                let mut screenings = Vec::with_capacity(rows.len());
                for row in rows {
                    let consents: Vec<ConsentRow> =
                        sqlx::query_as(SELECT_CONSENTS).bind(row.id).fetch_all(&mut *connection).await.map_err(db_error)?;
                    let decisions: Vec<DecisionRow> =
                        sqlx::query_as(SELECT_DECISIONS).bind(row.id).fetch_all(&mut *connection).await.map_err(db_error)?;
                    screenings.push(Loaded::from_rows(row, consents, decisions)?);
                }
                Ok(screenings)
            }

            async fn insert_person(
                &self,
                tx: &mut $connection,
                context: &AuditContext,
                organization_id: Uuid,
                details: &PersonDetails,
                now: OffsetDateTime,
            ) -> HavenResult<Uuid> {
                let person_id = Uuid::now_v7();
                let (key, wrapped) = self.crypto.generate(person_id)?;
                let columns = self.crypto.encrypt(&key, person_id, details)?;
                let (number,): (i64,) = sqlx::query_as(NEXT_PERSON_NUMBER)
                    .bind(now.year())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let code = format!("{}-{}-{number:06}", self.code_prefix, now.year());
                let [given_name, family_name, patronymic, birth_date, phone, address, document] = columns;
                sqlx::query(INSERT_PERSON)
                    .bind(person_id)
                    .bind(&code)
                    .bind(organization_id)
                    .bind(wrapped)
                    .bind(given_name)
                    .bind(family_name)
                    .bind(patronymic)
                    .bind(birth_date)
                    .bind(phone)
                    .bind(address)
                    .bind(document)
                    .bind(details.birth_year)
                    .bind(details.gender.map(Gender::as_str).unwrap_or("unknown"))
                    .bind(details.citizenships.join(","))
                    .bind(details.languages.join(","))
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                for value in self.crypto.index_values(details) {
                    sqlx::query(INSERT_INDEX)
                        .bind(person_id)
                        .bind(i32::from(value.kind().code()))
                        .bind(value.as_bytes().to_vec())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("person.create", "person", person_id))
                    .await
                    .map_err(db_error)?;
                Ok(person_id)
            }

            /// The screening's data key, made now for screenings recorded before narratives
            /// were encrypted or whose key was shredded.
            async fn screening_key(&self, tx: &mut $connection, screening_id: Uuid) -> HavenResult<SealingKey> {
                let (wrapped,): (Option<Vec<u8>>,) = sqlx::query_as("SELECT wrapped_key FROM screenings WHERE id = $1")
                    .bind(screening_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if let Some(wrapped) = wrapped {
                    return self.crypto.sealing_key(screening_id, &wrapped);
                }
                let (key, wrapped) = self.crypto.generate(screening_id)?;
                sqlx::query("UPDATE screenings SET wrapped_key = $2 WHERE id = $1")
                    .bind(screening_id)
                    .bind(wrapped)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                Ok(key)
            }

            /// Encrypts a decision's typed text (`column`: reasons, legal basis) under the
            /// screening's key (made now for screenings recorded before it was encrypted, or
            /// whose key was shredded).
            async fn seal_decision_text(
                &self,
                tx: &mut $connection,
                screening_id: Uuid,
                decision_id: Uuid,
                column: &'static str,
                text: &str,
            ) -> HavenResult<Vec<u8>> {
                let key = self.screening_key(tx, screening_id).await?;
                key.seal("decisions", column, decision_id.as_bytes(), text)
            }

            /// With an idempotency key: `true` when an earlier request with this key already
            /// did the work on this screening (nothing more to do), an error if the key was
            /// used for another request; otherwise records the key in this transaction, so it
            /// commits with the work.
            async fn already_done(
                tx: &mut $connection,
                organization_id: Uuid,
                screening_id: Uuid,
                once: Option<&IdempotencyKey>,
            ) -> HavenResult<bool> {
                let Some(once) = once else { return Ok(false) };
                let earlier = || async {
                    sqlx::query_as::<_, (Vec<u8>, Uuid)>(
                        "SELECT request_hash, screening_id FROM screening_idempotency WHERE organization_id = $1 AND key = $2",
                    )
                    .bind(organization_id)
                    .bind(&once.key)
                };
                let same = |(request_hash, earlier): (Vec<u8>, Uuid)| {
                    if request_hash != once.request_hash || earlier != screening_id {
                        return Err(HavenError::new(
                            ErrorCode::Unprocessable,
                            "this Idempotency-Key was used with a different request",
                        ));
                    }
                    Ok(true)
                };
                if let Some(row) = earlier().await.fetch_optional(&mut *tx).await.map_err(db_error)? {
                    return same(row);
                }
                // A concurrent retry with the same key may insert it first: this insert
                // then waits for it and does nothing, and its key is read back (read
                // committed: the statement sees what committed meanwhile).
                let inserted = sqlx::query(
                    "INSERT INTO screening_idempotency (organization_id, key, request_hash, screening_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(organization_id)
                .bind(&once.key)
                .bind(&once.request_hash)
                .bind(screening_id)
                .bind(OffsetDateTime::now_utc())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if inserted.rows_affected() == 1 {
                    return Ok(false);
                }
                let row = earlier().await.fetch_optional(&mut *tx).await.map_err(db_error)?;
                let row = row.ok_or_else(|| HavenError::internal(std::io::Error::other("an idempotency key vanished")))?;
                same(row)
            }

            /// The screening an idempotency key created, if any; a different request under
            /// the same key is refused.
            async fn replay_screening(&self, context: &AuditContext, organization_id: Uuid, once: &IdempotencyKey) -> HavenResult<Option<Screening>> {
                let row: Option<(Vec<u8>, Uuid)> = sqlx::query_as(
                    "SELECT request_hash, screening_id FROM screening_idempotency WHERE organization_id = $1 AND key = $2",
                )
                .bind(organization_id)
                .bind(&once.key)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                let Some((request_hash, screening_id)) = row else { return Ok(None) };
                if request_hash != once.request_hash {
                    return Err(HavenError::new(
                        ErrorCode::Unprocessable,
                        "this Idempotency-Key was used with a different request",
                    ));
                }
                // The replay shows the screening again: a read, audited like one.
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(loaded) = Self::load(&mut tx, Reach::from(Scope::Organization(organization_id)), screening_id).await? else {
                    return Ok(None);
                };
                let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry(SCREENING_READ, "screening", screening_id))
                    .await
                    .map_err(db_error)?;
                let screening = loaded.open(&self.crypto, &receipt)?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some(screening))
            }

            async fn load_person(tx: &mut $connection, scope: Reach, id: Uuid) -> HavenResult<Option<PersonRow>> {
                sqlx::query_as(PERSON_COLUMNS)
                    .bind(id)
                    .bind(scope.organization())
                    .bind(scope.sees_sealed())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)
            }

            /// Seals the screenings of a sealed case and their persons.
            async fn seal_case(tx: &mut $connection, case_id: Uuid) -> HavenResult<()> {
                sqlx::query(REMEMBER_SEALED_CASE)
                    .bind(case_id)
                    .bind(OffsetDateTime::now_utc())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                for statement in [SEAL_PERSONS_OF_CASE, SEAL_SCREENINGS_OF_CASE] {
                    sqlx::query(statement).bind(case_id).execute(&mut *tx).await.map_err(db_error)?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl ScreeningStore for $name {
            #[tracing::instrument(skip_all)]
            async fn create_screening_once(
                &self,
                context: &AuditContext,
                new: NewScreening,
                person: Option<PersonDetails>,
                once: Option<IdempotencyKey>,
            ) -> HavenResult<(Screening, bool)> {
                if let Some(once) = &once
                    && let Some(earlier) = self.replay_screening(context, new.organization_id, once).await?
                {
                    return Ok((earlier, true));
                }
                let id = Uuid::now_v7();
                let now = OffsetDateTime::now_utc();
                let (screening_key, wrapped_screening_key) = self.crypto.generate(id)?;
                let guardian = match &new.guardian {
                    None => None,
                    Some(guardian) => {
                        let json = serde_json::to_string(guardian).map_err(HavenError::internal)?;
                        Some(screening_key.seal("screenings", "guardian", id.as_bytes(), &json)?)
                    }
                };
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let person_id = match &person {
                    Some(details) => Some(self.insert_person(&mut tx, context, new.organization_id, details, now).await?),
                    None => None,
                };
                sqlx::query(INSERT_SCREENING)
                    .bind(id)
                    .bind(new.organization_id)
                    .bind(&new.screened_by)
                    .bind(new.referral_source.as_str())
                    .bind(new.screened_at)
                    .bind(&new.settlement)
                    .bind(&new.language)
                    .bind(new.interpreter_used)
                    .bind(new.is_minor)
                    .bind(IdentificationStage::Screened.as_str())
                    .bind(now)
                    .bind(person_id)
                    .bind(new.assessment.indicators.as_ref().map(|answers| answers.version))
                    .bind(part_json(&new.assessment.indicators)?)
                    .bind(part_json(&new.assessment.exploitation)?)
                    .bind(part_json(&new.assessment.risk)?)
                    .bind(wrapped_screening_key)
                    .bind(new.coordinates.map(|(latitude, _)| latitude))
                    .bind(new.coordinates.map(|(_, longitude)| longitude))
                    .bind(guardian)
                    .bind(seal_notes(&screening_key, id, new.assessment.indicators.as_ref())?)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                // Categorical facts only: the event feed never carries personal data.
                let event = NewEvent {
                    event_type: "screening.created",
                    aggregate_id: id,
                    organization_id: new.organization_id,
                    payload: serde_json::json!({
                        "referral_source": new.referral_source.as_str(),
                        "settlement": new.settlement,
                        "is_minor": new.is_minor,
                        "screened_at": new.screened_at.unix_timestamp(),
                        "person_id": person_id,
                        "gender": person.as_ref().and_then(|p| p.gender).map(Gender::as_str),
                        "birth_year": person.as_ref().and_then(|p| p.birth_year),
                        "exploitation_types": new.assessment.exploitation.as_ref().map(|e| e.types.clone()),
                        "means_of_control": new.assessment.exploitation.as_ref().map(|e| e.means_of_control.clone()),
                        "citizenships": person.as_ref().map(|p| p.citizenships.clone()),
                        "risk_level": new.assessment.risk.as_ref().map(|r| r.level.clone()),
                    }),
                };
                OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                if let Some(once) = &once {
                    let recorded = sqlx::query(
                        "INSERT INTO screening_idempotency (organization_id, key, request_hash, screening_id, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(new.organization_id)
                    .bind(&once.key)
                    .bind(&once.request_hash)
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await;
                    match recorded {
                        Ok(_) => {}
                        // A concurrent retry won: undo ours, answer with theirs.
                        Err(error) if haven_storage::is_unique_violation(&error) => {
                            drop(tx);
                            let earlier = self
                                .replay_screening(context, new.organization_id, once)
                                .await?
                                .ok_or_else(|| HavenError::internal(error))?;
                            return Ok((earlier, true));
                        }
                        Err(error) => return Err(db_error(error)),
                    }
                }
                let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("screening.create", "screening", id))
                    .await
                    .map_err(db_error)?;
                let screening = self.reload(&mut tx, id, &receipt).await?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                tracing::info!(screening_id = %id, person_id = ?person_id, "screening created");
                Ok((screening, false))
            }

            #[tracing::instrument(skip_all, fields(screening_id = %id))]
            async fn get_screening(&self, context: &AuditContext, scope: Reach, id: Uuid) -> HavenResult<Option<Screening>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(loaded) = Self::load(&mut tx, scope, id).await? else {
                    return Ok(None);
                };
                let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry(SCREENING_READ, "screening", id))
                    .await
                    .map_err(db_error)?;
                let screening = loaded.open(&self.crypto, &receipt)?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some(screening))
            }

            #[tracing::instrument(skip_all)]
            async fn list_screenings(
                &self,
                context: &AuditContext,
                scope: Reach,
                filter: &ScreeningFilter,
                after: Option<i64>,
                limit: u32,
            ) -> HavenResult<Vec<Screening>> {
                let sql = format!(
                    "SELECT {SCREENING_COLUMNS} WHERE s.seq > $1 AND ($2 IS NULL OR s.organization_id = $2) \
                     AND ($4 IS NULL OR s.stage = $4) AND ($5 IS NULL OR s.referral_source = $5) \
                     AND ($6 IS NULL OR s.screened_at >= $6) AND ($7 IS NULL OR s.screened_at < $7) \
                     AND ($8 IS NULL OR EXISTS (SELECT 1 FROM clocks c WHERE c.screening_id = s.id \
                          AND c.completed_at IS NULL AND c.due_at <= $8)) \
                     AND ($9 OR NOT s.sealed) ORDER BY s.seq LIMIT $3"
                );
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let rows: Vec<ScreeningRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(after.unwrap_or(0))
                    .bind(scope.organization())
                    .bind(i64::from(limit))
                    .bind(filter.stage.map(IdentificationStage::as_str))
                    .bind(filter.referral_source.map(ReferralSource::as_str))
                    .bind(filter.screened_from)
                    .bind(filter.screened_before)
                    .bind(filter.overdue_clock_at)
                    .bind(scope.sees_sealed())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let loaded = Self::with_histories(&mut tx, rows).await?;
                // One entry per screening read, so each record's trail names this reader.
                let mut screenings = Vec::with_capacity(loaded.len());
                for loaded in loaded {
                    let entry = context.entry(SCREENING_READ, "screening", loaded.screening.id);
                    let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &entry).await.map_err(db_error)?;
                    screenings.push(loaded.open(&self.crypto, &receipt)?);
                }
                tx.commit().await.map_err(db_error)?;
                Ok(screenings)
            }

            #[tracing::instrument(skip_all, fields(screening_id = %id))]
            async fn record_consent(&self, context: &AuditContext, scope: Reach, id: Uuid, consent: NewConsent) -> HavenResult<Option<Screening>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(loaded) = Self::load(&mut tx, scope, id).await? else {
                    return Ok(None);
                };
                let screening = &loaded.screening;
                if Self::already_done(&mut tx, screening.organization_id, id, consent.once.as_ref()).await? {
                    let screening = self.replayed(&mut tx, context, id).await?;
                    tx.commit().await.map_err(db_error)?;
                    return Ok(Some(screening));
                }
                sqlx::query(INSERT_CONSENT)
                    .bind(Uuid::now_v7())
                    .bind(id)
                    .bind(consent.purpose.as_str())
                    .bind(consent.given)
                    .bind(consent.method.as_str())
                    .bind(&consent.recorded_by)
                    .bind(OffsetDateTime::now_utc())
                    .bind(consent.by_guardian)
                    .bind(consent.organization_types.join(","))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query(BUMP_VERSION).bind(id).execute(&mut *tx).await.map_err(db_error)?;
                let event = NewEvent {
                    event_type: "screening.consent_recorded",
                    aggregate_id: id,
                    organization_id: screening.organization_id,
                    payload: serde_json::json!({
                        "purpose": consent.purpose.as_str(),
                        "given": consent.given,
                    }),
                };
                OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("screening.consent", "screening", id))
                    .await
                    .map_err(db_error)?;
                let updated = self.reload(&mut tx, id, &receipt).await?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(Some(updated))
            }

            #[tracing::instrument(skip_all, fields(screening_id = %id))]
            async fn record_decision(
                &self,
                context: &AuditContext,
                scope: Reach,
                id: Uuid,
                decision: NewDecision,
                rules: &[haven_config::ClockRule],
            ) -> HavenResult<Option<Screening>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(loaded) = Self::load(&mut tx, scope, id).await? else {
                    return Ok(None);
                };
                if Self::already_done(&mut tx, loaded.screening.organization_id, id, decision.once.as_ref()).await? {
                    let screening = self.replayed(&mut tx, context, id).await?;
                    tx.commit().await.map_err(db_error)?;
                    return Ok(Some(screening));
                }
                let screening = &loaded.screening;
                let decision_id = Uuid::now_v7();
                let reasons = match decision.reasons.as_str() {
                    "" => None,
                    reasons => Some(self.seal_decision_text(&mut tx, id, decision_id, "reasons", reasons).await?),
                };
                let legal_basis = self.seal_decision_text(&mut tx, id, decision_id, "legal_basis", &decision.legal_basis).await?;
                sqlx::query(INSERT_DECISION)
                    .bind(decision_id)
                    .bind(id)
                    .bind(decision.stage.as_str())
                    .bind(decision.deciding_organization_type.as_str())
                    .bind(legal_basis)
                    .bind(decision.decided_at)
                    .bind(reasons)
                    .bind(&decision.recorded_by)
                    .bind(OffsetDateTime::now_utc())
                    .bind(decision.deciding_organization_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query(SET_STAGE)
                    .bind(id)
                    .bind(decision.stage.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let event = NewEvent {
                    event_type: "screening.decision_recorded",
                    aggregate_id: id,
                    organization_id: screening.organization_id,
                    payload: serde_json::json!({
                        "stage": decision.stage.as_str(),
                        "previous_stage": screening.stage.as_str(),
                        "deciding_organization_type": decision.deciding_organization_type.as_str(),
                        "decided_at": decision.decided_at.unix_timestamp(),
                    }),
                };
                OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                for rule in clocks::started_by(rules, decision.stage) {
                    let clock_id = Uuid::now_v7();
                    let started = sqlx::query(INSERT_CLOCK)
                        .bind(clock_id)
                        .bind(id)
                        .bind(screening.organization_id)
                        .bind(&rule.name)
                        .bind(&rule.description)
                        .bind(decision.decided_at)
                        .bind(clocks::due_at(rule, decision.decided_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    if started.rows_affected() == 1 {
                        let event = NewEvent {
                            event_type: "clock.started",
                            aggregate_id: clock_id,
                            organization_id: screening.organization_id,
                            payload: serde_json::json!({ "screening_id": id, "name": rule.name }),
                        };
                        OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                    }
                }
                let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("screening.decide", "screening", id))
                    .await
                    .map_err(db_error)?;
                let updated = self.reload(&mut tx, id, &receipt).await?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(Some(updated))
            }

            #[tracing::instrument(skip_all, fields(screening_id = %id, case_id = %case_id))]
            async fn link_case(&self, id: Uuid, case_id: Uuid) -> HavenResult<Screening> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let linked = sqlx::query(LINK_CASE)
                    .bind(id)
                    .bind(case_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                // Linking shows nothing of the screening's texts, so it opens none.
                let screening = Self::load(&mut tx, Reach::INTERNAL, id)
                    .await?
                    .ok_or_else(|| HavenError::not_found("screening"))?
                    .without_texts();
                // The case may have been sealed before intake heard back from it.
                let sealed: Option<(Uuid,)> = sqlx::query_as(SEALED_CASE_OF_SCREENING)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if let Some((sealed_case,)) = sealed {
                    Self::seal_case(&mut tx, sealed_case).await?;
                }
                if linked.rows_affected() == 1 {
                    let event = NewEvent {
                        event_type: "screening.case_opened",
                        aggregate_id: id,
                        organization_id: screening.organization_id,
                        payload: serde_json::json!({ "case_id": case_id }),
                    };
                    OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(screening)
            }

            #[tracing::instrument(skip_all)]
            async fn awaiting_case(&self, limit: u32, when_presumed: bool) -> HavenResult<Vec<Screening>> {
                let stages = if when_presumed {
                    "('identified', 'presumed_victim', 'reasonable_grounds_positive')"
                } else {
                    "('identified')"
                };
                let sql = format!(
                    "SELECT {SCREENING_COLUMNS} WHERE s.seq > $1 AND ($2 IS NULL OR s.organization_id = $2) \
                     AND s.case_id IS NULL AND s.stage IN {stages} \
                     AND (SELECT given FROM consents WHERE consents.screening_id = s.id \
                          AND consents.purpose = 'assistance' ORDER BY consents.seq DESC LIMIT 1) = TRUE \
                     ORDER BY s.seq LIMIT $3"
                );
                let candidates = self.list(sql, None, 0, limit).await?;
                // Opening a case needs none of the screening's texts.
                Ok(candidates
                    .into_iter()
                    .map(Loaded::without_texts)
                    .filter(|screening| screening.needs_case(when_presumed))
                    .collect())
            }

            #[tracing::instrument(skip_all, fields(screening_id = %id))]
            async fn update_screening(&self, context: &AuditContext, scope: Reach, id: Uuid, expected_version: i64, parts: AssessmentParts) -> HavenResult<Option<Screening>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(current) = Self::load(&mut tx, scope, id).await? else {
                    return Ok(None);
                };
                let current = current.without_texts();
                let updated = sqlx::query(UPDATE_ASSESSMENT)
                    .bind(id)
                    .bind(expected_version)
                    .bind(parts.indicators.is_some())
                    .bind(parts.indicators.as_ref().map(|answers| answers.version))
                    .bind(part_json(&parts.indicators)?)
                    .bind(parts.exploitation.is_some())
                    .bind(part_json(&parts.exploitation)?)
                    .bind(parts.risk.is_some())
                    .bind(part_json(&parts.risk)?)
                    .bind(match parts.indicators.as_ref().filter(|answers| !answers.notes.is_empty()) {
                        None => None,
                        Some(answers) => {
                            let key = self.screening_key(&mut tx, id).await?;
                            seal_notes(&key, id, Some(answers))?
                        }
                    })
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if updated.rows_affected() == 0 {
                    return Err(HavenError::new(
                        ErrorCode::PreconditionFailed,
                        format!("the screening changed since you read it (now at version {})", current.version),
                    ));
                }
                let event = NewEvent {
                    event_type: "screening.updated",
                    aggregate_id: id,
                    organization_id: current.organization_id,
                    payload: serde_json::json!({
                        "exploitation_types": parts.exploitation.as_ref().map(|e| e.types.clone()),
                        "means_of_control": parts.exploitation.as_ref().map(|e| e.means_of_control.clone()),
                        "risk_level": parts.risk.as_ref().map(|r| r.level.clone()),
                        "indicator_set_version": parts.indicators.as_ref().map(|answers| answers.version),
                    }),
                };
                OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("screening.update", "screening", id))
                    .await
                    .map_err(db_error)?;
                let screening = self.reload(&mut tx, id, &receipt).await?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(Some(screening))
            }

            async fn ensure_default_indicator_set(&self) -> HavenResult<()> {
                let definition: IndicatorSetDefinition =
                    serde_json::from_str(crate::assessment::DEFAULT_SET).map_err(HavenError::internal)?;
                let json = serde_json::to_string(&definition).map_err(HavenError::internal)?;
                sqlx::query(
                    "INSERT INTO indicator_sets (version, name, definition, published_at, published_by) \
                     VALUES (1, $1, $2, $3, 'haven') ON CONFLICT (version) DO NOTHING",
                )
                .bind(&definition.name)
                .bind(json)
                .bind(OffsetDateTime::now_utc())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn list_indicator_sets(&self) -> HavenResult<Vec<IndicatorSet>> {
                let rows: Vec<IndicatorSetRow> = sqlx::query_as(
                    "SELECT version, definition, published_at, published_by FROM indicator_sets ORDER BY version DESC",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.into_iter().map(IndicatorSet::try_from).collect()
            }

            async fn get_indicator_set(&self, version: Option<i32>) -> HavenResult<Option<IndicatorSet>> {
                let row: Option<IndicatorSetRow> = sqlx::query_as(
                    "SELECT version, definition, published_at, published_by FROM indicator_sets \
                     WHERE ($1 IS NULL OR version = $1) ORDER BY version DESC LIMIT 1",
                )
                .bind(version)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.map(IndicatorSet::try_from).transpose()
            }

            #[tracing::instrument(skip_all)]
            async fn publish_indicator_set(
                &self,
                definition: IndicatorSetDefinition,
                published_by: &str,
                once: Option<&CallerKey>,
            ) -> HavenResult<Created<IndicatorSet>> {
                let json = serde_json::to_string(&definition).map_err(HavenError::internal)?;
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let (version,): (i32,) = sqlx::query_as("SELECT COALESCE(MAX(version), 0) + 1 FROM indicator_sets")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if let Claim::Replay(earlier) = claim(&mut *tx, once, &version.to_string()).await? {
                    let earlier: i32 = earlier.parse().map_err(|_| HavenError::internal(std::io::Error::other("stored idempotency key is not a version")))?;
                    let row: IndicatorSetRow = sqlx::query_as(
                        "SELECT version, definition, published_at, published_by FROM indicator_sets WHERE version = $1",
                    )
                    .bind(earlier)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    return IndicatorSet::try_from(row).map(Created::replay);
                }
                // A concurrent publication takes the same version: the loser is told to retry.
                let inserted = sqlx::query(
                    "INSERT INTO indicator_sets (version, name, definition, published_at, published_by) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(version)
                .bind(&definition.name)
                .bind(json)
                .bind(OffsetDateTime::now_utc())
                .bind(published_by)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(error) if haven_storage::is_unique_violation(&error) => {
                        return Err(HavenError::new(ErrorCode::Conflict, "another version was published at the same time; retry"));
                    }
                    Err(error) => return Err(db_error(error)),
                }
                let row: IndicatorSetRow = sqlx::query_as(
                    "SELECT version, definition, published_at, published_by FROM indicator_sets WHERE version = $1",
                )
                .bind(version)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                let set = IndicatorSet::try_from(row)?;
                tracing::info!(version = set.version, "indicator set published");
                Ok(Created::new(set))
            }

            #[tracing::instrument(skip_all)]
            async fn list_clocks(
                &self,
                scope: Reach,
                filter: &ClockFilter,
                after: Option<(OffsetDateTime, i64)>,
                limit: u32,
            ) -> HavenResult<Vec<Clock>> {
                let state = match filter.state {
                    None => "completed_at IS NULL",
                    Some(clocks::ClockState::Overdue) => "completed_at IS NULL AND due_at <= $4",
                    Some(clocks::ClockState::DueSoon) => "completed_at IS NULL AND due_at > $4 AND due_at <= $5",
                    Some(clocks::ClockState::Open) => "completed_at IS NULL AND due_at > $5",
                    Some(clocks::ClockState::Completed) => "completed_at IS NOT NULL",
                };
                let (after_due, after_seq) = after.unwrap_or((OffsetDateTime::UNIX_EPOCH, 0));
                let sql = format!(
                    "SELECT {CLOCK_COLUMNS} FROM clocks WHERE ($1 IS NULL OR organization_id = $1) AND {state} \
                     AND (due_at > $2 OR (due_at = $2 AND seq > $3)) AND ($7 OR NOT {CLOCK_SEALED}) ORDER BY due_at, seq LIMIT $6"
                );
                let rows: Vec<ClockRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(scope.organization())
                    .bind(after_due)
                    .bind(after_seq)
                    .bind(filter.now)
                    .bind(filter.now + filter.window)
                    .bind(i64::from(limit))
                    .bind(scope.sees_sealed())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(rows.into_iter().map(Clock::from).collect())
            }

            #[tracing::instrument(skip_all, fields(clock_id = %id))]
            async fn complete_clock(&self, scope: Reach, id: Uuid, completed_by: &str) -> HavenResult<Option<Clock>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let select = format!("SELECT {CLOCK_COLUMNS} FROM clocks WHERE id = $1 AND ($2 IS NULL OR organization_id = $2) AND ($3 OR NOT {CLOCK_SEALED})");
                let row: Option<ClockRow> = sqlx::query_as(sqlx::AssertSqlSafe(select.clone()))
                    .bind(id)
                    .bind(scope.organization())
                    .bind(scope.sees_sealed())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let Some(row) = row else { return Ok(None) };
                let completed = sqlx::query("UPDATE clocks SET completed_at = $2, completed_by = $3 WHERE id = $1 AND completed_at IS NULL")
                    .bind(id)
                    .bind(OffsetDateTime::now_utc())
                    .bind(completed_by)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if completed.rows_affected() == 1 {
                    let event = NewEvent {
                        event_type: "clock.completed",
                        aggregate_id: id,
                        organization_id: row.organization_id,
                        payload: serde_json::json!({ "screening_id": row.screening_id, "name": row.name }),
                    };
                    OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                }
                let row: ClockRow = sqlx::query_as(sqlx::AssertSqlSafe(select))
                    .bind(id)
                    .bind(scope.organization())
                    .bind(scope.sees_sealed())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(Some(Clock::from(row)))
            }

            #[tracing::instrument(skip_all, fields(person_id = %id))]
            async fn get_person(&self, context: &AuditContext, scope: Reach, id: Uuid) -> HavenResult<Option<Person>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(row) = Self::load_person(&mut tx, scope, id).await? else {
                    return Ok(None);
                };
                let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("person.read", "person", id))
                    .await
                    .map_err(db_error)?;
                let person = row.decrypt(&self.crypto, &receipt)?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some(person))
            }

            #[tracing::instrument(skip_all, fields(person_id = %id))]
            async fn erase_person(&self, context: &AuditContext, scope: Reach, id: Uuid, reason: &str) -> HavenResult<Option<Person>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(row) = Self::load_person(&mut tx, scope, id).await? else {
                    return Ok(None);
                };
                let organization_id = row.organization_id;
                // The reason is typed text and may name people: it is kept only encrypted,
                // under a key of its own that the erasure does not destroy.
                let (erasure_key, wrapped_erasure_key) = self.crypto.generate(id)?;
                let sealed_reason = erasure_key.seal("persons", "erasure_reason", id.as_bytes(), reason)?;
                let erased = sqlx::query(ERASE_PERSON)
                    .bind(id)
                    .bind(OffsetDateTime::now_utc())
                    .bind(wrapped_erasure_key)
                    .bind(sealed_reason)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                // Narratives recorded on the person's screenings go with them.
                sqlx::query("UPDATE screenings SET wrapped_key = NULL WHERE person_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query("DELETE FROM person_blind_index WHERE person_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                // Reasons and legal bases recorded in the clear before they were encrypted go
                // as well.
                sqlx::query(
                    "UPDATE decisions SET reasons = '', legal_basis = '' WHERE (reasons <> '' OR legal_basis <> '') \
                     AND screening_id IN (SELECT id FROM screenings WHERE person_id = $1)",
                )
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                // What the feed said about the person and their screenings goes too; the
                // sequences stay so followers' positions hold.
                let screening_ids: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM screenings WHERE person_id = $1")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let aggregates: Vec<Uuid> = std::iter::once(id).chain(screening_ids.into_iter().map(|(screening,)| screening)).collect();
                OutboxWrite::redact_events(&mut *tx, &aggregates).await.map_err(db_error)?;
                if erased.rows_affected() == 1 {
                    let event = NewEvent {
                        event_type: "person.erased",
                        aggregate_id: id,
                        organization_id,
                        payload: serde_json::json!({ "person_id": id }),
                    };
                    OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                }
                let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("person.erase", "person", id))
                    .await
                    .map_err(db_error)?;
                let person = Self::load_person(&mut tx, Reach::INTERNAL, id)
                    .await?
                    .ok_or_else(|| HavenError::not_found("person"))?
                    .decrypt(&self.crypto, &receipt)?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                tracing::info!(person_id = %id, "person erased");
                // No copy of the destroyed keys may stay in the database files.
                self.pool.forget_deleted().await?;
                Ok(Some(person))
            }

            async fn count_search(&self, subject: &str, now_ms: i64, window_ms: i64) -> HavenResult<SearchWindow> {
                let (started_ms, searches): (i64, i64) = sqlx::query_as(COUNT_SEARCH)
                    .bind(subject)
                    .bind(now_ms)
                    .bind(window_ms)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(SearchWindow { started_ms, searches })
            }

            #[tracing::instrument(skip_all, fields(screening_id = %screening_id))]
            async fn find_matches(&self, context: &AuditContext, scope: Reach, screening_id: Uuid) -> HavenResult<Option<Vec<PersonMatch>>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                // The search compares blind indexes; none of the screening's texts is opened.
                let Some(screening) = Self::load(&mut tx, scope, screening_id).await? else {
                    return Ok(None);
                };
                let Some(person_id) = screening.screening.person_id else {
                    return Err(HavenError::new(ErrorCode::Conflict, "this screening has no person details to compare"));
                };
                // Matches in every organisation: a re-trafficked person often reappears
                // elsewhere. Outside the caller's scope only the holder is disclosed.
                let rows: Vec<(Uuid, String, i32, Uuid)> = sqlx::query_as(
                    "SELECT DISTINCT other.person_id, p.code, other.kind, p.organization_id FROM person_blind_index mine \
                     JOIN person_blind_index other ON other.value = mine.value AND other.kind = mine.kind \
                     JOIN persons p ON p.id = other.person_id \
                     WHERE mine.person_id = $1 AND other.person_id <> $1 AND ($2 OR NOT p.sealed)",
                )
                .bind(person_id)
                .bind(scope.sees_sealed())
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
                let mut matches: Vec<PersonMatch> = Vec::new();
                for (other, code, kind, holder) in rows {
                    let restricted = !scope.contains(holder);
                    let kind = u8::try_from(kind).ok().and_then(BlindIndexKind::from_code).unwrap_or(BlindIndexKind::NamePart);
                    if let Some(existing) = matches.iter_mut().find(|found| found.person_id == other) {
                        if kind == BlindIndexKind::FullName {
                            existing.kind = kind;
                        }
                        continue;
                    }
                    let screening_ids: Vec<(Uuid,)> = if restricted {
                        Vec::new()
                    } else {
                        sqlx::query_as(
                            "SELECT id FROM screenings WHERE person_id = $1 AND ($2 IS NULL OR organization_id = $2) \
                             AND ($3 OR NOT sealed) ORDER BY seq",
                        )
                        .bind(other)
                        .bind(scope.organization())
                        .bind(scope.sees_sealed())
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?
                    };
                    matches.push(PersonMatch {
                        person_id: other,
                        person_code: if restricted { String::new() } else { code },
                        kind,
                        screening_ids: screening_ids.into_iter().map(|(id,)| id).collect(),
                        organization_id: holder,
                        restricted,
                    });
                }
                AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("person.duplicate_search", "person", person_id))
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some(matches))
            }

            #[tracing::instrument(skip_all, fields(screening_id = %screening_id, other = %other))]
            async fn confirm_match(&self, context: &AuditContext, scope: Reach, screening_id: Uuid, other: Uuid) -> HavenResult<Option<Screening>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(screening) = Self::load(&mut tx, scope, screening_id).await? else {
                    return Ok(None);
                };
                let screening = screening.without_texts();
                let Some(person_id) = screening.person_id else {
                    return Err(HavenError::new(ErrorCode::Conflict, "this screening has no person details to link"));
                };
                if person_id == other {
                    return Err(HavenError::invalid_field("person_id", "is the screening's own person"));
                }
                if Self::load_person(&mut tx, scope, other).await?.is_none() {
                    return Ok(None);
                }
                sqlx::query(
                    "INSERT INTO person_links (person_id, linked_person_id, screening_id, confirmed_by, confirmed_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(person_id)
                .bind(other)
                .bind(screening_id)
                .bind(&context.principal.subject)
                .bind(OffsetDateTime::now_utc())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                let marked = sqlx::query(
                    "UPDATE screenings SET re_trafficked = TRUE, version = version + 1 WHERE id = $1 AND re_trafficked = FALSE",
                )
                .bind(screening_id)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if marked.rows_affected() == 1 {
                    let event = NewEvent {
                        event_type: "screening.re_trafficking_confirmed",
                        aggregate_id: screening_id,
                        organization_id: screening.organization_id,
                        payload: serde_json::json!({ "person_id": person_id, "linked_person_id": other }),
                    };
                    OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                }
                AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("person.link", "person", person_id))
                    .await
                    .map_err(db_error)?;
                let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("screening.match", "screening", screening_id))
                    .await
                    .map_err(db_error)?;
                let updated = self.reload(&mut tx, screening_id, &receipt).await?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(Some(updated))
            }

            #[tracing::instrument(skip_all, fields(person_id = %id))]
            async fn person_access(&self, scope: Reach, id: Uuid, after: i64, limit: u32) -> HavenResult<Option<Vec<AuditEntry>>> {
                let mut connection = self.pool.acquire().await.map_err(db_error)?;
                if Self::load_person(&mut connection, scope, id).await?.is_none() {
                    return Ok(None);
                }
                drop(connection);
                let database = Database::from(self.pool.clone());
                haven_audit::entries_for_record(&database, "person", id, after, limit).await.map(Some)
            }

            #[tracing::instrument(skip_all)]
            async fn rewrap_person_keys(&self) -> HavenResult<u64> {
                let mut rewrapped = 0;
                // Persons' keys, the screenings' keys that seal decision reasons, and the keys
                // of erasure reasons.
                for (table, column) in [("persons", "wrapped_key"), ("screenings", "wrapped_key"), ("persons", "erasure_key")] {
                    let mut after = 0_i64;
                    loop {
                        let select = format!(
                            "SELECT seq, id, {column} FROM {table} WHERE seq > $1 AND {column} IS NOT NULL ORDER BY seq LIMIT 500"
                        );
                        let batch: Vec<(i64, Uuid, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(select))
                            .bind(after)
                            .fetch_all(&self.pool)
                            .await
                            .map_err(db_error)?;
                        let Some((last, _, _)) = batch.last() else { break };
                        after = *last;
                        let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                        for (_, id, wrapped) in &batch {
                            let new_wrapped = self.crypto.rewrap(*id, wrapped)?;
                            if &new_wrapped != wrapped {
                                // Only if nobody shredded the key meanwhile.
                                let update = format!("UPDATE {table} SET {column} = $2 WHERE id = $1 AND {column} IS NOT NULL");
                                sqlx::query(sqlx::AssertSqlSafe(update))
                                    .bind(id)
                                    .bind(new_wrapped)
                                    .execute(&mut *tx)
                                    .await
                                    .map_err(db_error)?;
                                rewrapped += 1;
                            }
                        }
                        tx.commit().await.map_err(db_error)?;
                    }
                }
                Ok(rewrapped)
            }

            #[tracing::instrument(skip_all)]
            async fn encrypt_plaintext_texts(&self) -> HavenResult<u64> {
                let mut encrypted = 0;
                // Reasons of erasures recorded before they were encrypted: each under an
                // erasure key of its own, as an erasure stores it now.
                let mut after = 0_i64;
                loop {
                    let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                    let batch: Vec<(i64, Uuid, String)> = sqlx::query_as(
                        "SELECT seq, id, erasure_reason FROM persons WHERE seq > $1 AND erasure_reason IS NOT NULL \
                         AND erasure_reason <> '' AND erasure_reason_ciphertext IS NULL ORDER BY seq LIMIT 500",
                    )
                    .bind(after)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    let Some((last, _, _)) = batch.last() else { break };
                    after = *last;
                    for (_, id, reason) in &batch {
                        let (erasure_key, wrapped_erasure_key) = self.crypto.generate(*id)?;
                        let sealed_reason = erasure_key.seal("persons", "erasure_reason", id.as_bytes(), reason)?;
                        encrypted += sqlx::query(
                            "UPDATE persons SET erasure_key = $2, erasure_reason_ciphertext = $3, erasure_reason = NULL \
                             WHERE id = $1 AND erasure_reason = $4 AND erasure_reason_ciphertext IS NULL",
                        )
                        .bind(id)
                        .bind(wrapped_erasure_key)
                        .bind(sealed_reason)
                        .bind(reason)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?
                        .rows_affected();
                    }
                    tx.commit().await.map_err(db_error)?;
                }
                // Reasons and legal bases of decisions recorded before they were encrypted:
                // under the screening's key, as a decision stores them now. A plain copy left
                // beside a ciphertext only goes; so does the text of an erased person, which
                // the erasure should have taken and no new key may keep.
                let mut blanked = 0;
                let mut after = 0_i64;
                loop {
                    let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                    let batch: Vec<PlaintextDecision> = sqlx::query_as(
                        "SELECT d.seq, d.id, d.screening_id, d.reasons, d.legal_basis, \
                         d.reasons_ciphertext IS NULL AS reasons_unsealed, \
                         d.legal_basis_ciphertext IS NULL AS legal_basis_unsealed, p.erased_at \
                         FROM decisions d JOIN screenings s ON s.id = d.screening_id LEFT JOIN persons p ON p.id = s.person_id \
                         WHERE d.seq > $1 AND (d.reasons <> '' OR d.legal_basis <> '') ORDER BY d.seq LIMIT 500",
                    )
                    .bind(after)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    let Some(last) = batch.last() else { break };
                    after = last.seq;
                    for decision in &batch {
                        let mut reasons = None;
                        let mut legal_basis = None;
                        if decision.erased_at.is_none() {
                            if decision.reasons_unsealed && !decision.reasons.is_empty() {
                                reasons = Some(
                                    self.seal_decision_text(&mut tx, decision.screening_id, decision.id, "reasons", &decision.reasons)
                                        .await?,
                                );
                            }
                            if decision.legal_basis_unsealed && !decision.legal_basis.is_empty() {
                                legal_basis = Some(
                                    self.seal_decision_text(
                                        &mut tx,
                                        decision.screening_id,
                                        decision.id,
                                        "legal_basis",
                                        &decision.legal_basis,
                                    )
                                    .await?,
                                );
                            }
                        }
                        let sealed = u64::from(reasons.is_some()) + u64::from(legal_basis.is_some());
                        let updated = sqlx::query(
                            "UPDATE decisions SET reasons = '', legal_basis = '', \
                             reasons_ciphertext = COALESCE($2, reasons_ciphertext), \
                             legal_basis_ciphertext = COALESCE($3, legal_basis_ciphertext) \
                             WHERE id = $1 AND reasons = $4 AND legal_basis = $5",
                        )
                        .bind(decision.id)
                        .bind(reasons)
                        .bind(legal_basis)
                        .bind(&decision.reasons)
                        .bind(&decision.legal_basis)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                        if updated.rows_affected() == 1 {
                            encrypted += sealed;
                            blanked += u64::from(sealed == 0);
                        }
                    }
                    tx.commit().await.map_err(db_error)?;
                }
                if encrypted > 0 || blanked > 0 {
                    tracing::info!(texts = encrypted, dropped = blanked, "typed texts written in the clear are now encrypted");
                    // No plain copy may stay in the database files.
                    self.pool.forget_deleted().await?;
                }
                Ok(encrypted)
            }
        }

        #[async_trait::async_trait]
        impl EventSink for $name {
            async fn checkpoint(&self, source: &str) -> HavenResult<i64> {
                let mut connection = self.pool.acquire().await.map_err(db_error)?;
                CheckpointWrite::checkpoint(&mut *connection, source).await.map_err(db_error)
            }

            #[tracing::instrument(skip_all, fields(source = %event.source, sequence = event.sequence, event_type = %event.event_type))]
            async fn apply(&self, event: &Event) -> HavenResult<()> {
                let sequence = i64::try_from(event.sequence).map_err(HavenError::internal)?;
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                if !CheckpointWrite::advance_checkpoint(&mut *tx, &event.source, sequence).await.map_err(db_error)? {
                    return Ok(());
                }
                if let Some(case_id) = sealed_case(event)? {
                    Self::seal_case(&mut tx, case_id).await?;
                    tracing::info!(case_id = %case_id, "screenings and person sealed with their case");
                }
                tx.commit().await.map_err(db_error)?;
                Ok(())
            }
        }
    };
}

screening_store!(SqliteScreeningStore, SqlitePool, sqlx::SqliteConnection);
screening_store!(PostgresScreeningStore, PgPool, sqlx::PgConnection);
