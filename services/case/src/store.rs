//! Case storage: one trait, one implementation per backend.
//!
//! The SQL is shared (both backends take `$n` placeholders); the implementations are
//! generated for each concrete pool so every query is checked against its backend's
//! types, and each behaviour test runs against both.

use std::sync::Arc;

use sqlx::FromRow;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::{AuditContext, AuditWrite};
use haven_auth::Scope;
use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_events::{EventSignal, NewEvent, OutboxWrite};
use haven_storage::{Database, WritePool, db_error, is_unique_violation};

use crate::SERVICE;
use crate::domain::{
    Assessment, AssessmentKind, Case, CaseStage, CaseStatus, NeedDomain, case_code,
};

/// What opening a case needs.
#[derive(Debug, Clone)]
pub struct NewCase {
    /// The screening that identified the person.
    pub screening_id: Uuid,
    /// The organisation that will own the case.
    pub organization_id: Uuid,
    /// The person, if intake recorded one.
    pub person_id: Option<Uuid>,
}

/// Filters of a case list.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only cases with this status.
    pub status: Option<CaseStatus>,
    /// Include sealed cases (only for callers allowed to read them).
    pub include_sealed: bool,
}

/// Persistence of cases.
#[async_trait::async_trait]
pub trait CaseStore: Send + Sync + std::fmt::Debug {
    /// Opens the case of a screening, or returns the one already opened for it
    /// (`false` then). Writes `case.opened` in the same transaction.
    async fn open_case(&self, context: &AuditContext, new: NewCase) -> HavenResult<(Case, bool)>;
    /// A case inside `scope`, or `None` (also when it exists outside the scope). A
    /// case found is audited as read.
    async fn get_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
    ) -> HavenResult<Option<Case>>;
    /// Cases inside `scope` in opening order, after the cursor position. Each case
    /// returned is audited as read.
    async fn list_cases(
        &self,
        context: &AuditContext,
        scope: Scope,
        filter: &CaseFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Case>>;
    /// Moves a case inside `scope` to `stage` if it is still at `expected_version`
    /// (`PreconditionFailed` otherwise) and the workflow allows the move (`Conflict`
    /// naming the current stage otherwise). Audited. `None` if not in scope.
    async fn change_stage(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        expected_version: i64,
        stage: CaseStage,
    ) -> HavenResult<Option<Case>>;
    /// Records an assessment of a case inside `scope`. Audited. `None` if not in scope.
    async fn add_assessment(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        kind: AssessmentKind,
        scores: Vec<(NeedDomain, u8)>,
        assessed_at: OffsetDateTime,
    ) -> HavenResult<Option<Assessment>>;
    /// The assessments of a case inside `scope`, oldest first. Audited as a read.
    async fn list_assessments(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<Assessment>>>;
    /// Seals a case inside `scope` (idempotent); `None` if not in scope.
    async fn seal_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        legal_basis: &str,
    ) -> HavenResult<Option<Case>>;
}

/// The store for a database.
pub fn open(database: Database, signal: EventSignal, code_prefix: &str) -> Arc<dyn CaseStore> {
    let code_prefix = code_prefix.to_owned();
    match database {
        Database::Sqlite(pool) => Arc::new(SqliteCaseStore {
            pool,
            signal,
            code_prefix,
        }),
        Database::Postgres(pool) => Arc::new(PostgresCaseStore {
            pool,
            signal,
            code_prefix,
        }),
    }
}

#[derive(Debug, FromRow)]
struct CaseRow {
    seq: i64,
    id: Uuid,
    code: String,
    organization_id: Uuid,
    screening_id: Uuid,
    status: String,
    stage: String,
    opened_at: OffsetDateTime,
    version: i64,
    sealed: bool,
    person_id: Option<Uuid>,
}

impl TryFrom<CaseRow> for Case {
    type Error = HavenError;

    fn try_from(row: CaseRow) -> HavenResult<Case> {
        let corrupt = |what: &str| {
            HavenError::internal(std::io::Error::other(format!(
                "stored case has unknown {what}"
            )))
        };
        Ok(Case {
            id: row.id,
            code: row.code,
            organization_id: row.organization_id,
            screening_id: row.screening_id,
            status: CaseStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            stage: CaseStage::parse(&row.stage).ok_or_else(|| corrupt("stage"))?,
            opened_at: row.opened_at,
            version: row.version,
            position: row.seq,
            sealed: row.sealed,
            person_id: row.person_id,
        })
    }
}

#[derive(Debug, FromRow)]
struct AssessmentRow {
    id: Uuid,
    case_id: Uuid,
    kind: String,
    scores: String,
    assessed_at: OffsetDateTime,
    assessed_by: String,
}

impl TryFrom<AssessmentRow> for Assessment {
    type Error = HavenError;

    fn try_from(row: AssessmentRow) -> HavenResult<Self> {
        let corrupt =
            || HavenError::internal(std::io::Error::other("stored assessment is not readable"));
        let scores: std::collections::BTreeMap<String, u8> =
            serde_json::from_str(&row.scores).map_err(|_| corrupt())?;
        Ok(Assessment {
            id: row.id,
            case_id: row.case_id,
            kind: AssessmentKind::parse(&row.kind).ok_or_else(corrupt)?,
            scores: {
                let mut scores = scores
                    .into_iter()
                    .map(|(domain, score)| {
                        NeedDomain::parse(&domain)
                            .map(|domain| (domain, score))
                            .ok_or_else(corrupt)
                    })
                    .collect::<HavenResult<Vec<_>>>()?;
                // Domains in their listed order (safety first), not the stored key order.
                scores.sort_by_key(|(domain, _)| *domain);
                scores
            },
            assessed_at: row.assessed_at,
            assessed_by: row.assessed_by,
        })
    }
}

const SELECT_ASSESSMENTS: &str = "SELECT id, case_id, kind, scores, assessed_at, assessed_by FROM assessments WHERE case_id = $1 ORDER BY seq";

const CASE_COLUMNS: &str = "seq, id, code, organization_id, screening_id, status, stage, opened_at, version, sealed, person_id";
const SELECT_BY_SCREENING: &str = "SELECT seq, id, code, organization_id, screening_id, status, stage, opened_at, version, sealed, person_id FROM cases WHERE screening_id = $1";
const SELECT_BY_ID: &str = "SELECT seq, id, code, organization_id, screening_id, status, stage, opened_at, version, sealed, person_id FROM cases WHERE id = $1";
const NEXT_CODE_NUMBER: &str = "INSERT INTO case_code_counters (year, last) VALUES ($1, 1) \
    ON CONFLICT (year) DO UPDATE SET last = case_code_counters.last + 1 RETURNING last";
const INSERT_CASE: &str = "INSERT INTO cases (id, code, organization_id, screening_id, status, stage, opened_at, version, person_id) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8)";
const SEAL_CASE: &str = "UPDATE cases SET sealed = TRUE, sealed_basis = $2, version = version + 1 WHERE id = $1 AND sealed = FALSE";

macro_rules! case_store {
    ($name:ident, $pool:ty) => {
        /// Case storage on one backend.
        #[derive(Debug)]
        pub struct $name {
            pool: $pool,
            signal: EventSignal,
            code_prefix: String,
        }

        impl $name {
            async fn by_screening(&self, screening_id: Uuid) -> HavenResult<Option<Case>> {
                let row: Option<CaseRow> = sqlx::query_as(SELECT_BY_SCREENING)
                    .bind(screening_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.map(Case::try_from).transpose()
            }

            async fn insert(&self, context: &AuditContext, new: &NewCase) -> Result<Case, sqlx::Error> {
                let mut tx = self.pool.begin_write().await?;
                let opened_at = OffsetDateTime::now_utc();
                let (number,): (i64,) = sqlx::query_as(NEXT_CODE_NUMBER)
                    .bind(opened_at.year())
                    .fetch_one(&mut *tx)
                    .await?;
                let id = Uuid::now_v7();
                let code = case_code(&self.code_prefix, opened_at.year(), number);
                sqlx::query(INSERT_CASE)
                    .bind(id)
                    .bind(&code)
                    .bind(new.organization_id)
                    .bind(new.screening_id)
                    .bind(CaseStatus::Active.as_str())
                    .bind(CaseStage::New.as_str())
                    .bind(opened_at)
                    .bind(new.person_id)
                    .execute(&mut *tx)
                    .await?;
                let event = NewEvent {
                    event_type: "case.opened",
                    aggregate_id: id,
                    organization_id: new.organization_id,
                    payload: serde_json::json!({
                        "case_id": id,
                        "code": code,
                        "screening_id": new.screening_id,
                        "status": CaseStatus::Active.as_str(),
                        "stage": CaseStage::New.as_str(),
                    }),
                };
                OutboxWrite::append_event(&mut *tx, SERVICE, &event).await?;
                AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("case.open", "case", id)).await?;
                let row: CaseRow = sqlx::query_as(SELECT_BY_ID).bind(id).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                self.signal.notify();
                Case::try_from(row).map_err(|error| sqlx::Error::Decode(Box::new(error)))
            }
        }

        #[async_trait::async_trait]
        impl CaseStore for $name {
            #[tracing::instrument(skip_all, fields(screening_id = %new.screening_id))]
            async fn open_case(&self, context: &AuditContext, new: NewCase) -> HavenResult<(Case, bool)> {
                if let Some(existing) = self.by_screening(new.screening_id).await? {
                    let database = Database::from(self.pool.clone());
                    haven_audit::append(&database, SERVICE, &context.entry("case.open", "case", existing.id)).await?;
                    return Ok((existing, false));
                }
                match self.insert(context, &new).await {
                    Ok(case) => {
                        tracing::info!(case_id = %case.id, "case opened");
                        Ok((case, true))
                    }
                    // A concurrent retry won the race: return its case.
                    Err(error) if is_unique_violation(&error) => self
                        .by_screening(new.screening_id)
                        .await?
                        .map(|case| (case, false))
                        .ok_or_else(|| HavenError::internal(error)),
                    Err(error) => Err(db_error(error)),
                }
            }

            #[tracing::instrument(skip_all, fields(case_id = %id))]
            async fn get_case(&self, context: &AuditContext, scope: Scope, id: Uuid) -> HavenResult<Option<Case>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let row: Option<CaseRow> = sqlx::query_as(SELECT_BY_ID)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let case = row.map(Case::try_from).transpose()?.filter(|case| scope.contains(case.organization_id));
                if let Some(case) = &case {
                    AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("case.read", "case", case.id))
                        .await
                        .map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(case)
            }

            #[tracing::instrument(skip_all)]
            async fn list_cases(
                &self,
                context: &AuditContext,
                scope: Scope,
                filter: &CaseFilter,
                after: Option<i64>,
                limit: u32,
            ) -> HavenResult<Vec<Case>> {
                let sql = format!(
                    "SELECT {CASE_COLUMNS} FROM cases WHERE seq > $1 \
                     AND ($2 IS NULL OR organization_id = $2) \
                     AND ($3 IS NULL OR status = $3) AND ($5 OR sealed = FALSE) ORDER BY seq LIMIT $4"
                );
                let rows: Vec<CaseRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(after.unwrap_or(0))
                    .bind(scope.organization())
                    .bind(filter.status.map(CaseStatus::as_str))
                    .bind(i64::from(limit))
                    .bind(filter.include_sealed)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                let cases = rows.into_iter().map(Case::try_from).collect::<HavenResult<Vec<_>>>()?;
                if !cases.is_empty() {
                    let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                    for case in &cases {
                        AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("case.read", "case", case.id))
                            .await
                            .map_err(db_error)?;
                    }
                    tx.commit().await.map_err(db_error)?;
                }
                Ok(cases)
            }

            #[tracing::instrument(skip_all, fields(case_id = %id))]
            async fn change_stage(
                &self,
                context: &AuditContext,
                scope: Scope,
                id: Uuid,
                expected_version: i64,
                stage: CaseStage,
            ) -> HavenResult<Option<Case>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let row: Option<CaseRow> = sqlx::query_as(SELECT_BY_ID).bind(id).fetch_optional(&mut *tx).await.map_err(db_error)?;
                let Some(case) = row.map(Case::try_from).transpose()? else { return Ok(None) };
                if !scope.contains(case.organization_id) {
                    return Ok(None);
                }
                if case.version != expected_version {
                    return Err(HavenError::new(
                        ErrorCode::PreconditionFailed,
                        format!("the case changed since you read it (now at version {})", case.version),
                    ));
                }
                if !case.stage.can_move_to(stage) {
                    return Err(HavenError::new(
                        ErrorCode::Conflict,
                        format!("a case at stage `{}` cannot move to `{}`", case.stage.as_str(), stage.as_str()),
                    ));
                }
                let moved = sqlx::query("UPDATE cases SET stage = $2, version = version + 1 WHERE id = $1 AND version = $3")
                    .bind(id)
                    .bind(stage.as_str())
                    .bind(expected_version)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if moved.rows_affected() != 1 {
                    return Err(HavenError::new(ErrorCode::PreconditionFailed, "the case changed since you read it"));
                }
                let event = NewEvent {
                    event_type: "case.stage_changed",
                    aggregate_id: id,
                    organization_id: case.organization_id,
                    payload: serde_json::json!({ "from": case.stage.as_str(), "to": stage.as_str() }),
                };
                OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("case.update", "case", id))
                    .await
                    .map_err(db_error)?;
                let row: CaseRow = sqlx::query_as(SELECT_BY_ID).bind(id).fetch_one(&mut *tx).await.map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Case::try_from(row).map(Some)
            }

            #[tracing::instrument(skip_all, fields(case_id = %case_id))]
            async fn add_assessment(
                &self,
                context: &AuditContext,
                scope: Scope,
                case_id: Uuid,
                kind: AssessmentKind,
                scores: Vec<(NeedDomain, u8)>,
                assessed_at: OffsetDateTime,
            ) -> HavenResult<Option<Assessment>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let row: Option<CaseRow> = sqlx::query_as(SELECT_BY_ID).bind(case_id).fetch_optional(&mut *tx).await.map_err(db_error)?;
                let Some(case) = row.map(Case::try_from).transpose()? else { return Ok(None) };
                if !scope.contains(case.organization_id) {
                    return Ok(None);
                }
                let by_domain: std::collections::BTreeMap<&str, u8> =
                    scores.iter().map(|(domain, score)| (domain.as_str(), *score)).collect();
                let json = serde_json::to_string(&by_domain).map_err(HavenError::internal)?;
                let id = Uuid::now_v7();
                sqlx::query(
                    "INSERT INTO assessments (id, case_id, kind, scores, assessed_at, assessed_by) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id)
                .bind(case_id)
                .bind(kind.as_str())
                .bind(&json)
                .bind(assessed_at)
                .bind(&context.principal.subject)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                // Scores are the outcome measure: reporting compares first and latest.
                let event = NewEvent {
                    event_type: "case.assessed",
                    aggregate_id: case_id,
                    organization_id: case.organization_id,
                    payload: serde_json::json!({ "assessment_id": id, "kind": kind.as_str(), "scores": by_domain }),
                };
                OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("case.update", "case", case_id))
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(Some(Assessment {
                    id,
                    case_id,
                    kind,
                    scores: {
                        let mut sorted = scores;
                        sorted.sort_by_key(|(domain, _)| *domain);
                        sorted
                    },
                    assessed_at,
                    assessed_by: context.principal.subject.clone(),
                }))
            }

            #[tracing::instrument(skip_all, fields(case_id = %case_id))]
            async fn list_assessments(&self, context: &AuditContext, scope: Scope, case_id: Uuid) -> HavenResult<Option<Vec<Assessment>>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let row: Option<CaseRow> = sqlx::query_as(SELECT_BY_ID).bind(case_id).fetch_optional(&mut *tx).await.map_err(db_error)?;
                let Some(case) = row.map(Case::try_from).transpose()? else { return Ok(None) };
                if !scope.contains(case.organization_id) {
                    return Ok(None);
                }
                let rows: Vec<AssessmentRow> = sqlx::query_as(SELECT_ASSESSMENTS).bind(case_id).fetch_all(&mut *tx).await.map_err(db_error)?;
                AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("case.read", "case", case_id))
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                rows.into_iter().map(Assessment::try_from).collect::<HavenResult<Vec<_>>>().map(Some)
            }

            #[tracing::instrument(skip_all, fields(case_id = %id))]
            async fn seal_case(&self, context: &AuditContext, scope: Scope, id: Uuid, legal_basis: &str) -> HavenResult<Option<Case>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let row: Option<CaseRow> = sqlx::query_as(SELECT_BY_ID).bind(id).fetch_optional(&mut *tx).await.map_err(db_error)?;
                let Some(case) = row.map(Case::try_from).transpose()? else { return Ok(None) };
                if !scope.contains(case.organization_id) {
                    return Ok(None);
                }
                let sealed = sqlx::query(SEAL_CASE).bind(id).bind(legal_basis).execute(&mut *tx).await.map_err(db_error)?;
                if sealed.rows_affected() == 1 {
                    let event = NewEvent {
                        event_type: "case.sealed",
                        aggregate_id: id,
                        organization_id: case.organization_id,
                        payload: serde_json::json!({ "case_id": id }),
                    };
                    OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                }
                AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry("case.seal", "case", id))
                    .await
                    .map_err(db_error)?;
                let row: CaseRow = sqlx::query_as(SELECT_BY_ID).bind(id).fetch_one(&mut *tx).await.map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Case::try_from(row).map(Some)
            }
        }
    };
}

case_store!(SqliteCaseStore, SqlitePool);
case_store!(PostgresCaseStore, PgPool);
