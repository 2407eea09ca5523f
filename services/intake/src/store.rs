//! Screening storage: one trait, one implementation per backend (shared SQL).

use std::sync::Arc;

use sqlx::FromRow;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

use haven_auth::Scope;
use haven_error::{HavenError, HavenResult};
use haven_events::{EventSignal, NewEvent, OutboxWrite};
use haven_storage::{Database, WritePool, db_error};

use crate::SERVICE;
use crate::domain::{
    Consent, ConsentMethod, ConsentPurpose, DecidingOrganizationType, Decision,
    IdentificationStage, ReferralSource, Screening,
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
}

/// Persistence of screenings. Writes append their event in the same transaction.
#[async_trait::async_trait]
pub trait ScreeningStore: Send + Sync + std::fmt::Debug {
    /// Records a new screening.
    async fn create_screening(&self, new: NewScreening) -> HavenResult<Screening>;
    /// A screening inside `scope`, or `None`.
    async fn get_screening(&self, scope: Scope, id: Uuid) -> HavenResult<Option<Screening>>;
    /// Screenings inside `scope` in creation order, after the cursor position.
    async fn list_screenings(
        &self,
        scope: Scope,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Screening>>;
    /// Appends a consent record; `None` if the screening is not in scope.
    async fn record_consent(
        &self,
        scope: Scope,
        id: Uuid,
        consent: NewConsent,
    ) -> HavenResult<Option<Screening>>;
    /// Appends a decision and moves the screening to its stage; `None` if not in scope.
    async fn record_decision(
        &self,
        scope: Scope,
        id: Uuid,
        decision: NewDecision,
    ) -> HavenResult<Option<Screening>>;
    /// Links the case opened for a screening (once: a second link is ignored).
    async fn link_case(&self, id: Uuid, case_id: Uuid) -> HavenResult<Screening>;
    /// Screenings that need a case and have none yet, oldest first.
    async fn awaiting_case(&self, limit: u32) -> HavenResult<Vec<Screening>>;
}

/// The store for a database.
pub fn open(database: Database, signal: EventSignal) -> Arc<dyn ScreeningStore> {
    match database {
        Database::Sqlite(pool) => Arc::new(SqliteScreeningStore { pool, signal }),
        Database::Postgres(pool) => Arc::new(PostgresScreeningStore { pool, signal }),
    }
}

#[derive(Debug, FromRow)]
struct ScreeningRow {
    seq: i64,
    id: Uuid,
    organization_id: Uuid,
    screened_by: String,
    referral_source: String,
    screened_at: OffsetDateTime,
    settlement: String,
    language: String,
    interpreter_used: bool,
    is_minor: bool,
    stage: String,
    case_id: Option<Uuid>,
    created_at: OffsetDateTime,
    version: i64,
}

#[derive(Debug, FromRow)]
struct ConsentRow {
    id: Uuid,
    purpose: String,
    given: bool,
    method: String,
    recorded_by: String,
    recorded_at: OffsetDateTime,
}

#[derive(Debug, FromRow)]
struct DecisionRow {
    id: Uuid,
    stage: String,
    deciding_organization_type: String,
    legal_basis: String,
    decided_at: OffsetDateTime,
    reasons: String,
    recorded_by: String,
    recorded_at: OffsetDateTime,
}

fn corrupt(what: &str) -> HavenError {
    HavenError::internal(std::io::Error::other(format!(
        "stored screening has unknown {what}"
    )))
}

fn assemble(
    row: ScreeningRow,
    consents: Vec<ConsentRow>,
    decisions: Vec<DecisionRow>,
) -> HavenResult<Screening> {
    let consents = consents
        .into_iter()
        .map(|row| {
            Ok(Consent {
                id: row.id,
                purpose: ConsentPurpose::parse(&row.purpose)
                    .ok_or_else(|| corrupt("consent purpose"))?,
                given: row.given,
                method: ConsentMethod::parse(&row.method)
                    .ok_or_else(|| corrupt("consent method"))?,
                recorded_by: row.recorded_by,
                recorded_at: row.recorded_at,
            })
        })
        .collect::<HavenResult<Vec<_>>>()?;
    let decisions = decisions
        .into_iter()
        .map(|row| {
            Ok(Decision {
                id: row.id,
                stage: IdentificationStage::parse(&row.stage)
                    .ok_or_else(|| corrupt("decision stage"))?,
                deciding_organization_type: DecidingOrganizationType::parse(
                    &row.deciding_organization_type,
                )
                .ok_or_else(|| corrupt("deciding organisation type"))?,
                legal_basis: row.legal_basis,
                decided_at: row.decided_at,
                reasons: row.reasons,
                recorded_by: row.recorded_by,
                recorded_at: row.recorded_at,
            })
        })
        .collect::<HavenResult<Vec<_>>>()?;
    Ok(Screening {
        id: row.id,
        organization_id: row.organization_id,
        screened_by: row.screened_by,
        referral_source: ReferralSource::parse(&row.referral_source)
            .ok_or_else(|| corrupt("referral source"))?,
        screened_at: row.screened_at,
        settlement: row.settlement,
        language: row.language,
        interpreter_used: row.interpreter_used,
        is_minor: row.is_minor,
        stage: IdentificationStage::parse(&row.stage).ok_or_else(|| corrupt("stage"))?,
        case_id: row.case_id,
        consents,
        decisions,
        created_at: row.created_at,
        version: row.version,
        position: row.seq,
    })
}

const SCREENING_COLUMNS: &str = "seq, id, organization_id, screened_by, referral_source, screened_at, \
    settlement, language, interpreter_used, is_minor, stage, case_id, created_at, version";
const SELECT_SCREENING: &str = "SELECT seq, id, organization_id, screened_by, referral_source, screened_at, \
    settlement, language, interpreter_used, is_minor, stage, case_id, created_at, version \
    FROM screenings WHERE id = $1 AND ($2 IS NULL OR organization_id = $2)";
const SELECT_CONSENTS: &str = "SELECT id, purpose, given, method, recorded_by, recorded_at \
    FROM consents WHERE screening_id = $1 ORDER BY seq";
const SELECT_DECISIONS: &str = "SELECT id, stage, deciding_organization_type, legal_basis, decided_at, reasons, \
    recorded_by, recorded_at FROM decisions WHERE screening_id = $1 ORDER BY seq";
const INSERT_SCREENING: &str = "INSERT INTO screenings (id, organization_id, screened_by, referral_source, \
    screened_at, settlement, language, interpreter_used, is_minor, stage, case_id, created_at, version) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, 1)";
const INSERT_CONSENT: &str = "INSERT INTO consents (id, screening_id, purpose, given, method, recorded_by, recorded_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";
const INSERT_DECISION: &str = "INSERT INTO decisions (id, screening_id, stage, deciding_organization_type, \
    legal_basis, decided_at, reasons, recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const BUMP_VERSION: &str = "UPDATE screenings SET version = version + 1 WHERE id = $1";
const SET_STAGE: &str = "UPDATE screenings SET stage = $2, version = version + 1 WHERE id = $1";
const LINK_CASE: &str =
    "UPDATE screenings SET case_id = $2, version = version + 1 WHERE id = $1 AND case_id IS NULL";

macro_rules! screening_store {
    ($name:ident, $pool:ty, $connection:ty) => {
        /// Screening storage on one backend.
        #[derive(Debug)]
        pub struct $name {
            pool: $pool,
            signal: EventSignal,
        }

        impl $name {
            async fn load(
                connection: &mut $connection,
                scope: Scope,
                id: Uuid,
            ) -> Result<Option<Screening>, sqlx::Error> {
                let row: Option<ScreeningRow> = sqlx::query_as(SELECT_SCREENING)
                    .bind(id)
                    .bind(scope.organization())
                    .fetch_optional(&mut *connection)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let consents: Vec<ConsentRow> =
                    sqlx::query_as(SELECT_CONSENTS).bind(id).fetch_all(&mut *connection).await?;
                let decisions: Vec<DecisionRow> =
                    sqlx::query_as(SELECT_DECISIONS).bind(id).fetch_all(&mut *connection).await?;
                assemble(row, consents, decisions)
                    .map(Some)
                    .map_err(|error| sqlx::Error::Decode(Box::new(error)))
            }

            async fn list(&self, sql: String, bind_organization: Option<Uuid>, after: i64, limit: u32) -> HavenResult<Vec<Screening>> {
                let mut connection = self.pool.acquire().await.map_err(db_error)?;
                let rows: Vec<ScreeningRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(after)
                    .bind(bind_organization)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(db_error)?;
                let mut screenings = Vec::with_capacity(rows.len());
                for row in rows {
                    let consents: Vec<ConsentRow> =
                        sqlx::query_as(SELECT_CONSENTS).bind(row.id).fetch_all(&mut *connection).await.map_err(db_error)?;
                    let decisions: Vec<DecisionRow> =
                        sqlx::query_as(SELECT_DECISIONS).bind(row.id).fetch_all(&mut *connection).await.map_err(db_error)?;
                    screenings.push(assemble(row, consents, decisions)?);
                }
                Ok(screenings)
            }

            fn decode(error: sqlx::Error) -> HavenError {
                match error {
                    sqlx::Error::Decode(inner) => match inner.downcast::<HavenError>() {
                        Ok(haven) => *haven,
                        Err(other) => HavenError::internal(other),
                    },
                    other => db_error(other),
                }
            }
        }

        #[async_trait::async_trait]
        impl ScreeningStore for $name {
            #[tracing::instrument(skip_all)]
            async fn create_screening(&self, new: NewScreening) -> HavenResult<Screening> {
                let id = Uuid::now_v7();
                let now = OffsetDateTime::now_utc();
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
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
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let event = NewEvent {
                    event_type: "screening.created",
                    aggregate_id: id,
                    organization_id: new.organization_id,
                    payload: serde_json::json!({
                        "referral_source": new.referral_source.as_str(),
                        "is_minor": new.is_minor,
                        "screened_at": new.screened_at.unix_timestamp(),
                    }),
                };
                OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                let screening = Self::load(&mut tx, Scope::All, id).await.map_err(Self::decode)?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                tracing::info!(screening_id = %id, "screening created");
                screening.ok_or_else(|| HavenError::internal(std::io::Error::other("screening vanished")))
            }

            #[tracing::instrument(skip_all, fields(screening_id = %id))]
            async fn get_screening(&self, scope: Scope, id: Uuid) -> HavenResult<Option<Screening>> {
                let mut connection = self.pool.acquire().await.map_err(db_error)?;
                Self::load(&mut connection, scope, id).await.map_err(Self::decode)
            }

            #[tracing::instrument(skip_all)]
            async fn list_screenings(&self, scope: Scope, after: Option<i64>, limit: u32) -> HavenResult<Vec<Screening>> {
                let sql = format!(
                    "SELECT {SCREENING_COLUMNS} FROM screenings WHERE seq > $1 \
                     AND ($2 IS NULL OR organization_id = $2) ORDER BY seq LIMIT $3"
                );
                self.list(sql, scope.organization(), after.unwrap_or(0), limit).await
            }

            #[tracing::instrument(skip_all, fields(screening_id = %id))]
            async fn record_consent(&self, scope: Scope, id: Uuid, consent: NewConsent) -> HavenResult<Option<Screening>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(screening) = Self::load(&mut tx, scope, id).await.map_err(Self::decode)? else {
                    return Ok(None);
                };
                sqlx::query(INSERT_CONSENT)
                    .bind(Uuid::now_v7())
                    .bind(id)
                    .bind(consent.purpose.as_str())
                    .bind(consent.given)
                    .bind(consent.method.as_str())
                    .bind(&consent.recorded_by)
                    .bind(OffsetDateTime::now_utc())
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
                let updated = Self::load(&mut tx, scope, id).await.map_err(Self::decode)?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(updated)
            }

            #[tracing::instrument(skip_all, fields(screening_id = %id))]
            async fn record_decision(&self, scope: Scope, id: Uuid, decision: NewDecision) -> HavenResult<Option<Screening>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(screening) = Self::load(&mut tx, scope, id).await.map_err(Self::decode)? else {
                    return Ok(None);
                };
                sqlx::query(INSERT_DECISION)
                    .bind(Uuid::now_v7())
                    .bind(id)
                    .bind(decision.stage.as_str())
                    .bind(decision.deciding_organization_type.as_str())
                    .bind(&decision.legal_basis)
                    .bind(decision.decided_at)
                    .bind(&decision.reasons)
                    .bind(&decision.recorded_by)
                    .bind(OffsetDateTime::now_utc())
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
                let updated = Self::load(&mut tx, scope, id).await.map_err(Self::decode)?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(updated)
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
                let screening = Self::load(&mut tx, Scope::All, id)
                    .await
                    .map_err(Self::decode)?
                    .ok_or_else(|| HavenError::not_found("screening"))?;
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
            async fn awaiting_case(&self, limit: u32) -> HavenResult<Vec<Screening>> {
                let sql = format!(
                    "SELECT {SCREENING_COLUMNS} FROM screenings WHERE seq > $1 AND ($2 IS NULL OR organization_id = $2) \
                     AND case_id IS NULL AND stage = 'identified' \
                     AND (SELECT given FROM consents WHERE consents.screening_id = screenings.id \
                          AND consents.purpose = 'assistance' ORDER BY consents.seq DESC LIMIT 1) = TRUE \
                     ORDER BY seq LIMIT $3"
                );
                let candidates = self.list(sql, None, 0, limit).await?;
                Ok(candidates.into_iter().filter(Screening::needs_case).collect())
            }
        }
    };
}

screening_store!(SqliteScreeningStore, SqlitePool, sqlx::SqliteConnection);
screening_store!(PostgresScreeningStore, PgPool, sqlx::PgConnection);
