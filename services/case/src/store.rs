//! Case storage: one trait, one implementation per backend.
//!
//! The SQL is shared (both backends take `$n` placeholders); the implementations are
//! generated for each concrete pool so every query is checked against its backend's
//! types, and each behaviour test runs against both.

use std::collections::btree_map::Entry;
use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::{AuditContext, AuditWrite, OpenedKey, Receipt, SealingKey};
use haven_auth::Scope;
use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_events::fields::payload_for_roles;
use haven_events::{EventSignal, NewEvent, OutboxWrite};
use haven_storage::idempotency::{CallerKey, Claim, Created, claim};
use haven_storage::sql::{self, Tx};
use haven_storage::{Database, ForgetDeleted, db_error};

use haven_auth::Action;
use haven_events::{CheckpointWrite, EventSink};
use haven_proto::common::v1::Event;
use time::Date;

use crate::SERVICE;
use crate::crypto::CaseCrypto;
use crate::domain::{
    ActionStatus, Amount, ApprovalStatus, Assessment, AssessmentKind, Case, CaseStage, CaseStatus,
    ClosureReason, FollowUp, FollowUpKind, FollowUpOutcome, NeedDomain, Note, NoteVisibility,
    Payment, Plan, PlanGoal, ReviewDecision, RiskLevel, ServiceDelivery, ServiceStatus,
    ServiceType, TimelineEntry, Transfer, case_code, parse_date,
};
use crate::texts::{CaseText, PlaintextRow, TextRow, readable_key};

mod assessments;
mod cases;
mod closure;
mod deliveries;
mod follow_ups;
mod notes;
mod plans;
mod rows;
mod transfers;
mod upkeep;

pub use assessments::Assessments;
pub use cases::CaseFiles;
pub use closure::Closures;
pub use deliveries::Deliveries;
pub use follow_ups::FollowUps;
pub use notes::Notes;
pub use plans::Plans;
pub use transfers::Transfers;
pub use upkeep::Upkeep;

use rows::{
    AssessmentRow, CaseRow, FollowUpRow, NoteRow, PaymentRow, PlanRow, ServiceRow, TransferRow,
    conflict, corrupt, open_case_required, replayed_id, stale,
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

/// Filters of a case list; all given must match.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only cases with this status.
    pub status: Option<CaseStatus>,
    /// Only cases at this stage.
    pub stage: Option<CaseStage>,
    /// Only cases with this caseworker assigned.
    pub caseworker: Option<String>,
    /// Only cases at this risk level.
    pub risk_level: Option<RiskLevel>,
    /// Only cases with a follow-up due before `today` and not done.
    pub overdue_follow_up: bool,
    /// Only cases whose approved plan has an open action due before `today`.
    pub overdue_plan_action: bool,
    /// Only cases owned by this organisation.
    pub organization_id: Option<Uuid>,
    /// The date overdue is measured against.
    pub today: Option<Date>,
    /// Include sealed cases (only for callers allowed to read them).
    pub include_sealed: bool,
}

/// Changes to a case's risk, flags and caseworkers; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct CaseChanges {
    /// New risk level.
    pub risk_level: Option<RiskLevel>,
    /// New flags.
    pub flags: Option<Vec<String>>,
    /// New caseworkers.
    pub caseworkers: Option<Vec<String>>,
}

/// A closure request.
#[derive(Debug, Clone)]
pub struct ClosureRequest {
    /// Coded reason.
    pub reason: ClosureReason,
    /// Text (required with `Other`).
    pub reason_text: String,
    /// Why closure goes ahead while services are in progress; empty if not.
    pub override_reason: String,
}

/// A new service.
#[derive(Debug, Clone)]
pub struct NewService {
    /// Type.
    pub service_type: ServiceType,
    /// Provider.
    pub provider_organization_id: Uuid,
    /// Planned date.
    pub planned_on: Option<Date>,
    /// Start date.
    pub started_on: Option<Date>,
    /// End date.
    pub ended_on: Option<Date>,
    /// Initial status.
    pub status: ServiceStatus,
}

/// Changes to a service; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct ServiceChanges {
    /// New status.
    pub status: Option<ServiceStatus>,
    /// Start date.
    pub started_on: Option<Date>,
    /// End date.
    pub ended_on: Option<Date>,
}

/// A new ledger entry: a payment, or the reversal of one.
#[derive(Debug, Clone)]
pub enum NewPayment {
    /// A payment.
    Payment {
        /// Amount, positive.
        amount: Amount,
        /// ISO 4217 code.
        currency: String,
        /// Date paid.
        paid_on: Date,
        /// What for.
        purpose: String,
        /// The cash-assistance service, if any.
        service_id: Option<Uuid>,
    },
    /// Cancels an earlier payment of the same case.
    Reversal {
        /// The payment reversed.
        payment_id: Uuid,
        /// Date of the reversal.
        paid_on: Date,
        /// Why.
        purpose: String,
    },
}

/// Filters of a follow-up list.
#[derive(Debug, Clone)]
pub struct FollowUpFilter {
    /// One case's follow-ups.
    pub case_id: Option<Uuid>,
    /// Assigned to this caseworker.
    pub assigned_to: Option<String>,
    /// Only overdue ones.
    pub overdue_only: bool,
    /// The date overdue is measured against.
    pub today: Date,
}

/// Rules of the store taken from configuration.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Prefix of case codes.
    pub code_prefix: String,
    /// Whether the submitter of a plan or closure may approve it.
    pub allow_self_approval: bool,
}

/// Persistence of cases: every part of the store, each in its own module (a
/// `dyn CaseStore` has the methods of them all).
pub trait CaseStore:
    EventSink
    + CaseFiles
    + Assessments
    + Transfers
    + Plans
    + Deliveries
    + FollowUps
    + Notes
    + Closures
    + Upkeep
    + Send
    + Sync
    + std::fmt::Debug
{
}

impl<T> CaseStore for T where
    T: EventSink
        + CaseFiles
        + Assessments
        + Transfers
        + Plans
        + Deliveries
        + FollowUps
        + Notes
        + Closures
        + Upkeep
        + Send
        + Sync
        + std::fmt::Debug
{
}

/// The store for a database.
pub fn open(
    database: Database,
    signal: EventSignal,
    crypto: CaseCrypto,
    options: StoreOptions,
) -> Arc<dyn CaseStore> {
    Arc::new(Cases {
        database,
        signal,
        crypto,
        options,
    })
}

/// The columns of a case with its current closure and pending transfer.
macro_rules! select_case {
    () => {
        "SELECT c.seq, c.id, c.code, c.organization_id, c.screening_id, c.status, c.stage, \
         c.opened_at, c.version, c.sealed, c.person_id, c.risk_level, c.flags, c.caseworkers, \
         cl.id AS closure_id, cl.reason AS closure_reason, cl.reason_text_encrypted AS closure_reason_text, \
         cl.override_reason_encrypted AS closure_override, cl.status AS closure_status, \
         cl.requested_by AS closure_requested_by, cl.requested_at AS closure_requested_at, \
         cl.reviewed_by AS closure_reviewed_by, cl.reviewed_at AS closure_reviewed_at, \
         cl.review_comment_encrypted AS closure_comment, \
         t.id AS transfer_id, t.to_organization_id AS transfer_to, t.reason_encrypted AS transfer_reason, \
         t.requested_by AS transfer_requested_by, t.requested_at AS transfer_requested_at, \
         c.data_key, c.shredded \
         FROM cases c LEFT JOIN closures cl ON cl.id = c.closure_id \
         LEFT JOIN transfers t ON t.case_id = c.id AND t.status = 'requested'"
    };
}

const SELECT_BY_SCREENING: &str = concat!(select_case!(), " WHERE c.screening_id = $1");
const SELECT_BY_ID: &str = concat!(select_case!(), " WHERE c.id = $1");
const LIST_CASES: &str = concat!(
    select_case!(),
    " WHERE c.seq > $1 AND ($2 IS NULL OR c.organization_id = $2) \
     AND ($3 IS NULL OR c.status = $3) AND ($5 OR c.sealed = FALSE) \
     AND ($6 IS NULL OR c.stage = $6) AND ($7 IS NULL OR c.risk_level = $7) \
     AND ($8 IS NULL OR EXISTS (SELECT 1 FROM case_caseworkers w WHERE w.case_id = c.id AND w.subject = $8)) \
     AND ($9 = FALSE OR EXISTS (SELECT 1 FROM follow_ups f WHERE f.case_id = c.id AND f.outcome IS NULL AND f.due_on < $10)) \
     AND ($11 = FALSE OR EXISTS (SELECT 1 FROM plan_actions a WHERE a.case_id = c.id AND a.active \
          AND a.status IN ('planned', 'in_progress') AND a.due_on < $10)) \
     AND ($12 IS NULL OR c.organization_id = $12) \
     ORDER BY c.seq LIMIT $4"
);
const SELECT_ASSESSMENTS: &str = "SELECT id, case_id, kind, scores, assessed_at, assessed_by FROM assessments WHERE case_id = $1 ORDER BY seq";
const SELECT_ASSESSMENT: &str = "SELECT id, case_id, kind, scores, assessed_at, assessed_by FROM assessments WHERE case_id = $1 AND id = $2";
const NEXT_CODE_NUMBER: &str = "INSERT INTO case_code_counters (year, last) VALUES ($1, 1) \
    ON CONFLICT (year) DO UPDATE SET last = case_code_counters.last + 1 RETURNING last";
const INSERT_CASE: &str = "INSERT INTO cases (id, code, organization_id, screening_id, status, stage, opened_at, version, person_id) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8)";
const SEAL_CASE: &str = "UPDATE cases SET sealed = TRUE, sealed_basis_encrypted = $2, version = version + 1 WHERE id = $1 AND sealed = FALSE";
const SELECT_TRANSFERS: &str = "SELECT t.id, t.case_id, c.code AS case_code, t.from_organization_id, t.to_organization_id, \
    t.reason_encrypted AS reason, t.status, t.requested_by, t.requested_at, t.decided_by, t.decided_at, \
    t.decision_comment_encrypted AS decision_comment, c.data_key, c.shredded \
    FROM transfers t JOIN cases c ON c.id = t.case_id";
const SELECT_PLANS: &str = "SELECT case_id, plan_version, content, status, submitted_by, submitted_at, reviewed_by, \
    reviewed_at, review_comment_encrypted AS review_comment, version FROM plans WHERE case_id = $1";
const SELECT_SERVICES: &str = "SELECT id, case_id, service_type, provider_organization_id, planned_on, started_on, \
    ended_on, status, version, recorded_at, recorded_by FROM case_services WHERE case_id = $1";
const SELECT_PAYMENTS: &str = "SELECT id, case_id, amount_minor, currency, paid_on, purpose_encrypted AS purpose, service_id, \
    reverses_payment_id, recorded_at, recorded_by FROM payments WHERE case_id = $1";
const SELECT_FOLLOW_UPS: &str = "SELECT f.seq, f.id, f.case_id, c.code AS case_code, f.kind, f.due_on, f.assigned_to, \
    f.outcome, f.done_at, f.version FROM follow_ups f JOIN cases c ON c.id = f.case_id";

/// Case storage on one backend.
#[derive(Debug)]
pub struct Cases {
    database: Database,
    signal: EventSignal,
    crypto: CaseCrypto,
    options: StoreOptions,
}

impl Cases {
    /// The case already opened for a screening, if any, returned to a repeated
    /// (or concurrent) opening: audited as an opening of that case.
    async fn existing(
        &self,
        context: &AuditContext,
        screening_id: Uuid,
    ) -> HavenResult<Option<Case>> {
        let row: Option<CaseRow> = sql::query_as(SELECT_BY_SCREENING)
            .bind(screening_id)
            .fetch_optional(&self.database)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut tx = self.database.begin_write().await?;
        let receipt = AuditWrite::append_audit(
            &mut tx,
            SERVICE,
            &context.entry("case.open", "case", row.id),
        )
        .await
        .map_err(db_error)?;
        let case = row.into_case(&self.crypto, Some(&receipt))?;
        tx.commit().await?;
        Ok(Some(case))
    }

    /// The case if the caller may see it: inside the scope, and not sealed
    /// unless the caller reads sealed cases. Its texts are left unopened: the
    /// operation reads them, if at all, after appending its audit entry
    /// ([`Self::reload`]).
    async fn load(
        &self,
        connection: &mut Tx,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
    ) -> HavenResult<Option<Case>> {
        let row: Option<CaseRow> = sql::query_as(SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&mut *connection)
            .await?;
        Ok(row
            .map(|row| row.into_case(&self.crypto, None))
            .transpose()?
            .filter(|case| {
                scope.contains(case.organization_id)
                    && (!case.sealed || context.principal.can(Action::CaseReadSealed))
            }))
    }

    /// The case as stored now; its texts decrypted with the `receipt` of the
    /// audit entry about it the operation appended, left empty without one.
    async fn reload(
        &self,
        connection: &mut Tx,
        id: Uuid,
        receipt: Option<&Receipt>,
    ) -> HavenResult<Case> {
        let row: CaseRow = sql::query_as(SELECT_BY_ID)
            .bind(id)
            .fetch_one(&mut *connection)
            .await?;
        row.into_case(&self.crypto, receipt)
    }

    /// Increments the case's version if it is still `expected_version`.
    async fn bump(connection: &mut Tx, case: &Case, expected_version: i64) -> HavenResult<()> {
        if case.version != expected_version {
            return Err(stale(case.version));
        }
        let bumped =
            sql::query("UPDATE cases SET version = version + 1 WHERE id = $1 AND version = $2")
                .bind(case.id)
                .bind(expected_version)
                .execute(&mut *connection)
                .await?;
        if bumped != 1 {
            return Err(stale(case.version));
        }
        Ok(())
    }

    /// Appends the event (if any) and the audit entry of a change; the entry's
    /// receipt opens the case's key for what the operation returns.
    async fn record(
        connection: &mut Tx,
        context: &AuditContext,
        action: &'static str,
        case: &Case,
        event: Option<(&'static str, serde_json::Value)>,
    ) -> HavenResult<Receipt> {
        if let Some((event_type, payload)) = event {
            let event = NewEvent {
                event_type,
                aggregate_id: case.id,
                organization_id: case.organization_id,
                payload,
            };
            OutboxWrite::append_event(&mut *connection, SERVICE, &event)
                .await
                .map_err(db_error)?;
        }
        AuditWrite::append_audit(
            &mut *connection,
            SERVICE,
            &context.entry(action, "case", case.id),
        )
        .await
        .map_err(db_error)
    }

    /// The case's wrapped data key, and whether it was destroyed with the
    /// person's erasure.
    async fn stored_key(
        connection: &mut Tx,
        case_id: Uuid,
    ) -> HavenResult<(Option<Vec<u8>>, bool)> {
        sql::query_as("SELECT data_key, shredded FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_one(&mut *connection)
            .await
            .map_err(HavenError::from)
    }

    /// The case's data key opened for a read under `receipt`, the audit entry
    /// about the case the read appended. `None` once the person's data was
    /// erased (or before any text was written).
    async fn opened_key(
        &self,
        connection: &mut Tx,
        receipt: &Receipt,
        case_id: Uuid,
    ) -> HavenResult<Option<OpenedKey>> {
        let (wrapped, shredded) = Self::stored_key(connection, case_id).await?;
        readable_key(&self.crypto, receipt, case_id, wrapped.as_deref(), shredded)
    }

    async fn writable_key(&self, connection: &mut Tx, case_id: Uuid) -> HavenResult<SealingKey> {
        self.text_key(connection, case_id).await?.ok_or_else(|| {
            conflict("the person's personal data was erased; this case keeps no new narratives")
        })
    }

    /// The key free texts of a case are sealed with: created when missing, `None`
    /// once the person was erased (their case then keeps no new text).
    async fn text_key(
        &self,
        connection: &mut Tx,
        case_id: Uuid,
    ) -> HavenResult<Option<SealingKey>> {
        let (wrapped, shredded) = Self::stored_key(connection, case_id).await?;
        if shredded {
            return Ok(None);
        }
        match wrapped {
            Some(wrapped) => self.crypto.sealing_key(case_id, &wrapped).map(Some),
            None => {
                let (key, wrapped) = self.crypto.generate(case_id)?;
                sql::query("UPDATE cases SET data_key = $2 WHERE id = $1")
                    .bind(case_id)
                    .bind(wrapped)
                    .execute(&mut *connection)
                    .await?;
                Ok(Some(key))
            }
        }
    }

    /// A plan with its content and review comment decrypted under the case's
    /// key opened for an audited read; without a key (erased, or a check
    /// that reads no text) both are left empty.
    fn decrypt_plan(
        &self,
        key: Option<&OpenedKey>,
        row: PlanRow,
        statuses: &[(Uuid, String)],
    ) -> HavenResult<Plan> {
        let mut goals: Vec<PlanGoal> = match key {
            Some(key) => {
                let text = key.open(
                    "plans",
                    "content",
                    TextRow::plan(row.case_id, row.plan_version).as_bytes(),
                    &row.content,
                )?;
                serde_json::from_str(&text).map_err(|_| corrupt("plan"))?
            }
            None => Vec::new(),
        };
        for action in goals.iter_mut().flat_map(|goal| goal.actions.iter_mut()) {
            if let Some((_, status)) = statuses.iter().find(|(id, _)| *id == action.id) {
                action.status =
                    ActionStatus::parse(status).ok_or_else(|| corrupt("plan action"))?;
            }
        }
        Ok(Plan {
            case_id: row.case_id,
            plan_version: row.plan_version,
            goals,
            status: ApprovalStatus::parse(&row.status).ok_or_else(|| corrupt("plan"))?,
            submitted_by: row.submitted_by,
            submitted_at: row.submitted_at,
            reviewed_by: row.reviewed_by,
            reviewed_at: row.reviewed_at,
            review_comment: CaseText::PlanReview.open(
                key,
                &TextRow::plan(row.case_id, row.plan_version),
                row.review_comment.as_deref(),
            )?,
            version: row.version,
        })
    }

    /// A plan version of the case; its texts decrypted with the `receipt` of the
    /// audit entry about the case the operation appended, left empty without one.
    async fn load_plan(
        &self,
        connection: &mut Tx,
        case_id: Uuid,
        plan_version: i32,
        receipt: Option<&Receipt>,
    ) -> HavenResult<Option<Plan>> {
        let row: Option<PlanRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_PLANS} AND plan_version = $2"
        )))
        .bind(case_id)
        .bind(plan_version)
        .fetch_optional(&mut *connection)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let statuses: Vec<(Uuid, String)> = sql::query_as(
            "SELECT id, status FROM plan_actions WHERE case_id = $1 AND plan_version = $2",
        )
        .bind(case_id)
        .bind(plan_version)
        .fetch_all(&mut *connection)
        .await?;
        let key = match receipt {
            Some(receipt) => self.opened_key(connection, receipt, case_id).await?,
            None => None,
        };
        self.decrypt_plan(key.as_ref(), row, &statuses).map(Some)
    }

    async fn load_service(
        connection: &mut Tx,
        case_id: Uuid,
        id: Uuid,
    ) -> HavenResult<Option<ServiceDelivery>> {
        let row: Option<ServiceRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_SERVICES} AND id = $2"
        )))
        .bind(case_id)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
        row.map(ServiceDelivery::try_from).transpose()
    }

    async fn load_follow_up(
        connection: &mut Tx,
        case_id: Uuid,
        id: Uuid,
    ) -> HavenResult<Option<FollowUp>> {
        let row: Option<FollowUpRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_FOLLOW_UPS} WHERE f.case_id = $1 AND f.id = $2"
        )))
        .bind(case_id)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
        row.map(<(i64, FollowUp)>::try_from)
            .transpose()
            .map(|found| found.map(|(_, follow_up)| follow_up))
    }

    /// A transfer; its texts decrypted with the `receipt` of the audit entry
    /// about its case the operation appended, left empty without one.
    async fn load_transfer(
        &self,
        connection: &mut Tx,
        id: Uuid,
        receipt: Option<&Receipt>,
    ) -> HavenResult<Option<Transfer>> {
        let row: Option<TransferRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_TRANSFERS} WHERE t.id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
        row.map(|row| row.into_transfer(&self.crypto, receipt))
            .transpose()
    }

    /// A completed referral is a delivered service of the case, recorded once.
    async fn record_referred_service(&self, connection: &mut Tx, event: &Event) -> HavenResult<()> {
        let payload: serde_json::Value =
            serde_json::from_str(&event.payload_json).map_err(HavenError::internal)?;
        let field = |name: &str| payload[name].as_str().map(str::to_owned);
        let (Some(referral_id), Some(case_id), Some(provider), Some(kind)) = (
            field("referral_id").and_then(|id| Uuid::parse_str(&id).ok()),
            field("case_id").and_then(|id| Uuid::parse_str(&id).ok()),
            field("to_organization_id").and_then(|id| Uuid::parse_str(&id).ok()),
            field("service_type").and_then(|kind| ServiceType::parse(&kind)),
        ) else {
            tracing::warn!("referral.completed without the fields of a service; skipped");
            return Ok(());
        };
        let row: Option<CaseRow> = sql::query_as(SELECT_BY_ID)
            .bind(case_id)
            .fetch_optional(&mut *connection)
            .await?;
        let Some(case) = row
            .map(|row| row.into_case(&self.crypto, None))
            .transpose()?
        else {
            return Ok(());
        };
        let ended_on = field("on").filter(|on| parse_date(on).is_some());
        let id = Uuid::now_v7();
        let inserted = sql::query(
            "INSERT INTO case_services (id, case_id, service_type, provider_organization_id, ended_on, status, version, \
             recorded_at, recorded_by, referral_id) VALUES ($1, $2, $3, $4, $5, 'delivered', 1, $6, 'service:referral', $7) \
             ON CONFLICT (referral_id) DO NOTHING",
        )
        .bind(id)
        .bind(case_id)
        .bind(kind.as_str())
        .bind(provider)
        .bind(ended_on)
        .bind(OffsetDateTime::now_utc())
        .bind(referral_id)
        .execute(&mut *connection)
        .await
        ?;
        if inserted == 1 {
            let event = NewEvent {
                event_type: "case.service_added",
                aggregate_id: case.id,
                organization_id: case.organization_id,
                payload: serde_json::json!({
                    "service_id": id,
                    "type": kind.as_str(),
                    "provider_organization_id": provider,
                    "status": ServiceStatus::Delivered.as_str(),
                    "referral_id": referral_id,
                }),
            };
            OutboxWrite::append_event(&mut *connection, SERVICE, &event)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    fn may_review(
        &self,
        context: &AuditContext,
        submitted_by: &str,
        what: &str,
    ) -> HavenResult<()> {
        if submitted_by == context.principal.subject && !self.options.allow_self_approval {
            return Err(HavenError::new(
                ErrorCode::PermissionDenied,
                format!("{what} needs another person's approval: you submitted it"),
            ));
        }
        Ok(())
    }

    /// Inserts the case of a screening; `None` if a concurrent opening of the same
    /// screening committed first.
    async fn insert(&self, context: &AuditContext, new: &NewCase) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let opened_at = OffsetDateTime::now_utc();
        let (number,): (i64,) = sql::query_as(NEXT_CODE_NUMBER)
            .bind(opened_at.year())
            .fetch_one(&mut tx)
            .await?;
        let id = Uuid::now_v7();
        let code = case_code(&self.options.code_prefix, opened_at.year(), number);
        let inserted = sql::query(INSERT_CASE)
            .bind(id)
            .bind(&code)
            .bind(new.organization_id)
            .bind(new.screening_id)
            .bind(CaseStatus::Active.as_str())
            .bind(CaseStage::New.as_str())
            .bind(opened_at)
            .bind(new.person_id)
            .execute(&mut tx)
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if error.is_unique_violation() => return Ok(None),
            Err(error) => return Err(error.into()),
        }
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
        OutboxWrite::append_event(&mut tx, SERVICE, &event)
            .await
            .map_err(db_error)?;
        let receipt =
            AuditWrite::append_audit(&mut tx, SERVICE, &context.entry("case.open", "case", id))
                .await
                .map_err(db_error)?;
        let row: CaseRow = sql::query_as(SELECT_BY_ID)
            .bind(id)
            .fetch_one(&mut tx)
            .await?;
        let case = row.into_case(&self.crypto, Some(&receipt))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }
}
