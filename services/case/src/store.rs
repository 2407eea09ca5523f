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

mod rows;

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

/// Persistence of cases.
#[async_trait::async_trait]
pub trait CaseStore: EventSink + Send + Sync + std::fmt::Debug {
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
    #[allow(clippy::too_many_arguments)]
    async fn add_assessment(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        kind: AssessmentKind,
        scores: Vec<(NeedDomain, u8)>,
        assessed_at: OffsetDateTime,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<Assessment>>>;
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
    /// Changes risk, flags or caseworkers at `expected_version`.
    async fn update_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        expected_version: i64,
        changes: CaseChanges,
    ) -> HavenResult<Option<Case>>;
    /// Asks `to_organization_id` to take over the case.
    async fn request_transfer(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        to_organization_id: Uuid,
        reason: &str,
    ) -> HavenResult<Option<Transfer>>;
    /// The receiving organisation (inside `scope`) accepts or rejects a transfer.
    async fn decide_transfer(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        decision: ReviewDecision,
        comment: &str,
    ) -> HavenResult<Option<Transfer>>;
    /// Transfers of a case (owner), or to and from the organisation of `scope`.
    async fn list_transfers(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Option<Uuid>,
        pending_only: bool,
    ) -> HavenResult<Option<Vec<Transfer>>>;
    /// Submits a new plan version for approval.
    async fn submit_plan(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        goals: Vec<PlanGoal>,
    ) -> HavenResult<Option<Plan>>;
    /// Approves or rejects a submitted plan version.
    #[allow(clippy::too_many_arguments)]
    async fn review_plan(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        plan_version: i32,
        expected_version: i64,
        decision: ReviewDecision,
        comment: &str,
    ) -> HavenResult<Option<Plan>>;
    /// A case's plan versions, oldest first, decrypted.
    async fn list_plans(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<Plan>>>;
    /// Sets the status of an action of an approved plan.
    #[allow(clippy::too_many_arguments)]
    async fn update_plan_action(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        plan_version: i32,
        action_id: Uuid,
        expected_version: i64,
        status: ActionStatus,
    ) -> HavenResult<Option<Plan>>;
    /// Records a service.
    async fn add_service(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        new: NewService,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<ServiceDelivery>>>;
    /// Changes a service at `expected_version`.
    async fn update_service(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        id: Uuid,
        expected_version: i64,
        changes: ServiceChanges,
    ) -> HavenResult<Option<ServiceDelivery>>;
    /// A case's services, oldest first.
    async fn list_services(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<ServiceDelivery>>>;
    /// Appends to the cash ledger.
    async fn record_payment(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        new: NewPayment,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<Payment>>>;
    /// The cash ledger of a case, oldest first.
    async fn list_payments(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<Payment>>>;
    /// Schedules a follow-up.
    #[allow(clippy::too_many_arguments)]
    async fn schedule_follow_up(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        kind: FollowUpKind,
        due_on: Date,
        assigned_to: &str,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<FollowUp>>>;
    /// Records what came of a follow-up, once.
    #[allow(clippy::too_many_arguments)]
    async fn record_follow_up_outcome(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        id: Uuid,
        expected_version: i64,
        outcome: FollowUpOutcome,
        done_at: OffsetDateTime,
    ) -> HavenResult<Option<FollowUp>>;
    /// Follow-ups in creation order after the cursor; `None` if a named case is not
    /// visible.
    async fn list_follow_ups(
        &self,
        context: &AuditContext,
        scope: Scope,
        filter: &FollowUpFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Option<Vec<(i64, FollowUp)>>>;
    /// Adds an encrypted note.
    async fn add_note(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        visibility: NoteVisibility,
        body: &str,
    ) -> HavenResult<Option<Note>>;
    /// The notes of the given visibilities, oldest first, decrypted.
    async fn list_notes(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        visibilities: &[NoteVisibility],
    ) -> HavenResult<Option<Vec<Note>>>;
    /// Asks for closure.
    async fn request_closure(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        request: ClosureRequest,
    ) -> HavenResult<Option<Case>>;
    /// Approves (closing the case) or rejects the pending closure.
    async fn review_closure(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        decision: ReviewDecision,
        comment: &str,
    ) -> HavenResult<Option<Case>>;
    /// Reopens a closed case.
    async fn reopen_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        reason: &str,
    ) -> HavenResult<Option<Case>>;
    /// The case's events, in order.
    async fn timeline(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<TimelineEntry>>>;
    /// Re-wraps every case data key under the active master key version; returns how
    /// many were re-wrapped.
    async fn rewrap_keys(&self) -> HavenResult<u64>;
    /// Encrypts the free texts of rows written before texts were encrypted, and
    /// empties their plaintext; the texts of an erased person's case are dropped.
    /// Idempotent: one transaction per column, rows in the clear only. Returns how
    /// many texts were encrypted or dropped.
    async fn encrypt_plaintext_texts(&self) -> HavenResult<u64>;
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

#[async_trait::async_trait]
impl CaseStore for Cases {
    #[tracing::instrument(skip_all, fields(screening_id = %new.screening_id))]
    async fn open_case(&self, context: &AuditContext, new: NewCase) -> HavenResult<(Case, bool)> {
        if let Some(existing) = self.existing(context, new.screening_id).await? {
            return Ok((existing, false));
        }
        match self.insert(context, &new).await? {
            Some(case) => {
                tracing::info!(case_id = %case.id, "case opened");
                Ok((case, true))
            }
            // A concurrent retry won the race: return its case.
            None => self
                .existing(context, new.screening_id)
                .await?
                .map(|case| (case, false))
                .ok_or_else(|| {
                    HavenError::internal(
                        "a concurrent opening of the case committed, yet its case cannot be read",
                    )
                }),
        }
    }

    #[tracing::instrument(skip_all, fields(case_id = %id))]
    async fn get_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let row: Option<CaseRow> = sql::query_as(SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&mut tx)
            .await?;
        let Some(row) = row.filter(|row| scope.contains(row.organization_id)) else {
            return Ok(None);
        };
        let receipt = AuditWrite::append_audit(
            &mut tx,
            SERVICE,
            &context.entry("case.read", "case", row.id),
        )
        .await
        .map_err(db_error)?;
        let case = row.into_case(&self.crypto, Some(&receipt))?;
        tx.commit().await?;
        Ok(Some(case))
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
        let today = filter
            .today
            .unwrap_or_else(|| OffsetDateTime::now_utc().date());
        let rows: Vec<CaseRow> = sql::query_as(LIST_CASES)
            .bind(after.unwrap_or(0))
            .bind(scope.organization())
            .bind(filter.status.map(CaseStatus::as_str))
            .bind(i64::from(limit))
            .bind(filter.include_sealed)
            .bind(filter.stage.map(CaseStage::as_str))
            .bind(filter.risk_level.map(RiskLevel::as_str))
            .bind(filter.caseworker.as_deref())
            .bind(filter.overdue_follow_up)
            .bind(today.to_string())
            .bind(filter.overdue_plan_action)
            .bind(filter.organization_id)
            .fetch_all(&self.database)
            .await?;
        let mut cases = Vec::with_capacity(rows.len());
        if !rows.is_empty() {
            let mut tx = self.database.begin_write().await?;
            for row in rows {
                let receipt = AuditWrite::append_audit(
                    &mut tx,
                    SERVICE,
                    &context.entry("case.read", "case", row.id),
                )
                .await
                .map_err(db_error)?;
                cases.push(row.into_case(&self.crypto, Some(&receipt))?);
            }
            tx.commit().await?;
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
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, id).await? else {
            return Ok(None);
        };
        if case.version != expected_version {
            return Err(stale(case.version));
        }
        if !case.stage.can_move_to(stage) {
            return Err(conflict(format!(
                "a case at stage `{}` cannot move to `{}`",
                case.stage.as_str(),
                stage.as_str()
            )));
        }
        Self::bump(&mut tx, &case, expected_version).await?;
        // Monitoring is the follow-up period; any other open stage is active work.
        let status = if stage == CaseStage::Monitoring {
            CaseStatus::FollowUp
        } else {
            CaseStatus::Active
        };
        sql::query("UPDATE cases SET stage = $2, status = $3 WHERE id = $1")
            .bind(id)
            .bind(stage.as_str())
            .bind(status.as_str())
            .execute(&mut tx)
            .await?;
        let payload = serde_json::json!({ "from": case.stage.as_str(), "to": stage.as_str(), "status": status.as_str() });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.stage_changed", payload)),
        )
        .await?;
        let case = self.reload(&mut tx, id, Some(&receipt)).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    #[allow(clippy::too_many_arguments)]
    async fn add_assessment(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        kind: AssessmentKind,
        scores: Vec<(NeedDomain, u8)>,
        assessed_at: OffsetDateTime,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<Assessment>>> {
        let mut tx = self.database.begin_write().await?;
        let id = Uuid::now_v7();
        let claimed = claim(&mut tx, once, &id.to_string()).await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if let Claim::Replay(earlier) = claimed {
            let row: Option<AssessmentRow> = sql::query_as(SELECT_ASSESSMENT)
                .bind(case_id)
                .bind(replayed_id(&earlier)?)
                .fetch_optional(&mut tx)
                .await?;
            let assessment = row
                .map(Assessment::try_from)
                .transpose()?
                .ok_or_else(|| corrupt("assessment"))?;
            Self::record(&mut tx, context, "case.read", &case, None).await?;
            tx.commit().await?;
            return Ok(Some(Created::replay(assessment)));
        }
        open_case_required(&case)?;
        let by_domain: std::collections::BTreeMap<&str, u8> = scores
            .iter()
            .map(|(domain, score)| (domain.as_str(), *score))
            .collect();
        let json = serde_json::to_string(&by_domain).map_err(HavenError::internal)?;
        sql::query(
            "INSERT INTO assessments (id, case_id, kind, scores, assessed_at, assessed_by) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(case_id)
        .bind(kind.as_str())
        .bind(&json)
        .bind(assessed_at)
        .bind(&context.principal.subject)
        .execute(&mut tx)
        .await
        ?;
        // Scores are the outcome measure: reporting compares first and latest.
        let payload =
            serde_json::json!({ "assessment_id": id, "kind": kind.as_str(), "scores": by_domain });
        Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.assessed", payload)),
        )
        .await?;
        tx.commit().await?;
        self.signal.notify();
        let mut scores = scores;
        scores.sort_by_key(|(domain, _)| *domain);
        Ok(Some(Created::new(Assessment {
            id,
            case_id,
            kind,
            scores,
            assessed_at,
            assessed_by: context.principal.subject.clone(),
        })))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn list_assessments(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<Assessment>>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let rows: Vec<AssessmentRow> = sql::query_as(SELECT_ASSESSMENTS)
            .bind(case_id)
            .fetch_all(&mut tx)
            .await?;
        Self::record(&mut tx, context, "case.read", &case, None).await?;
        tx.commit().await?;
        rows.into_iter()
            .map(Assessment::try_from)
            .collect::<HavenResult<Vec<_>>>()
            .map(Some)
    }

    #[tracing::instrument(skip_all, fields(case_id = %id))]
    async fn seal_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        legal_basis: &str,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let row: Option<CaseRow> = sql::query_as(SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&mut tx)
            .await?;
        let Some(case) = row
            .map(|row| row.into_case(&self.crypto, None))
            .transpose()?
        else {
            return Ok(None);
        };
        if !scope.contains(case.organization_id) {
            return Ok(None);
        }
        let key = self.text_key(&mut tx, id).await?;
        let basis = CaseText::SealBasis.seal(key.as_ref(), &TextRow::id(id), legal_basis)?;
        let sealed = sql::query(SEAL_CASE)
            .bind(id)
            .bind(basis)
            .execute(&mut tx)
            .await?;
        let event = (sealed == 1).then(|| ("case.sealed", serde_json::json!({ "case_id": id })));
        let receipt = Self::record(&mut tx, context, "case.seal", &case, event).await?;
        let case = self.reload(&mut tx, id, Some(&receipt)).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }

    #[tracing::instrument(skip_all, fields(case_id = %id))]
    async fn update_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        expected_version: i64,
        changes: CaseChanges,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, id).await? else {
            return Ok(None);
        };
        Self::bump(&mut tx, &case, expected_version).await?;
        let risk_level = changes.risk_level.or(case.risk_level);
        let flags = changes.flags.clone().unwrap_or_else(|| case.flags.clone());
        let caseworkers = changes
            .caseworkers
            .clone()
            .unwrap_or_else(|| case.caseworkers.clone());
        sql::query("UPDATE cases SET risk_level = $2, flags = $3, caseworkers = $4 WHERE id = $1")
            .bind(id)
            .bind(risk_level.map(RiskLevel::as_str))
            .bind(serde_json::to_string(&flags).map_err(HavenError::internal)?)
            .bind(serde_json::to_string(&caseworkers).map_err(HavenError::internal)?)
            .execute(&mut tx)
            .await?;
        if changes.caseworkers.is_some() {
            sql::query("DELETE FROM case_caseworkers WHERE case_id = $1")
                .bind(id)
                .execute(&mut tx)
                .await?;
            for subject in &caseworkers {
                sql::query("INSERT INTO case_caseworkers (case_id, subject) VALUES ($1, $2)")
                    .bind(id)
                    .bind(subject)
                    .execute(&mut tx)
                    .await?;
            }
        }
        // Risk and flags are categorical; who the caseworkers are stays out of events.
        let payload = serde_json::json!({
            "risk_level": risk_level.map(RiskLevel::as_str),
            "flags": flags,
            "caseworkers_assigned": caseworkers.len(),
        });
        let action = if changes.caseworkers.is_some() {
            "case.assign"
        } else {
            "case.update"
        };
        let receipt = Self::record(
            &mut tx,
            context,
            action,
            &case,
            Some(("case.updated", payload)),
        )
        .await?;
        let case = self.reload(&mut tx, id, Some(&receipt)).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn request_transfer(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        to_organization_id: Uuid,
        reason: &str,
    ) -> HavenResult<Option<Transfer>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        open_case_required(&case)?;
        if let Some(pending) = &case.pending_transfer {
            return Err(conflict(format!(
                "a transfer to organisation {} is already waiting for an answer",
                pending.to_organization_id
            )));
        }
        if to_organization_id == case.organization_id {
            return Err(HavenError::invalid_field(
                "to_organization_id",
                "is the organisation that already owns the case",
            ));
        }
        if case
            .closure
            .as_ref()
            .is_some_and(|closure| closure.status == ApprovalStatus::Requested)
        {
            return Err(conflict("the case is waiting for closure approval"));
        }
        Self::bump(&mut tx, &case, expected_version).await?;
        let id = Uuid::now_v7();
        let key = self.text_key(&mut tx, case_id).await?;
        let reason = CaseText::TransferReason.seal(key.as_ref(), &TextRow::id(id), reason)?;
        sql::query(
            "INSERT INTO transfers (id, case_id, from_organization_id, to_organization_id, reason, reason_encrypted, status, \
             requested_by, requested_at) VALUES ($1, $2, $3, $4, '', $5, 'requested', $6, $7)",
        )
        .bind(id)
        .bind(case_id)
        .bind(case.organization_id)
        .bind(to_organization_id)
        .bind(reason)
        .bind(&context.principal.subject)
        .bind(OffsetDateTime::now_utc())
        .execute(&mut tx)
        .await
        ?;
        let payload = serde_json::json!({ "transfer_id": id, "from": case.organization_id, "to": to_organization_id });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.transfer",
            &case,
            Some(("case.transfer_requested", payload)),
        )
        .await?;
        let transfer = self
            .load_transfer(&mut tx, id, Some(&receipt))
            .await?
            .ok_or_else(|| corrupt("transfer"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(transfer))
    }

    #[tracing::instrument(skip_all, fields(transfer_id = %id))]
    async fn decide_transfer(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        decision: ReviewDecision,
        comment: &str,
    ) -> HavenResult<Option<Transfer>> {
        let mut tx = self.database.begin_write().await?;
        // Only the receiving organisation decides; to anyone else it does not exist.
        let Some(transfer) = self
            .load_transfer(&mut tx, id, None)
            .await?
            .filter(|transfer| scope.contains(transfer.to_organization_id))
        else {
            return Ok(None);
        };
        if transfer.status != ApprovalStatus::Requested {
            return Err(conflict(format!(
                "the transfer was already {}",
                if transfer.status == ApprovalStatus::Approved {
                    "accepted"
                } else {
                    "decided"
                }
            )));
        }
        let case = self.reload(&mut tx, transfer.case_id, None).await?;
        let status = match decision {
            ReviewDecision::Approve => ApprovalStatus::Approved,
            ReviewDecision::Reject => ApprovalStatus::Rejected,
        };
        let key = self.text_key(&mut tx, case.id).await?;
        let comment = CaseText::TransferDecision.seal(key.as_ref(), &TextRow::id(id), comment)?;
        sql::query(
            "UPDATE transfers SET status = $2, decided_by = $3, decided_at = $4, decision_comment_encrypted = $5 \
             WHERE id = $1 AND status = 'requested'",
        )
            .bind(id)
            .bind(status.as_str())
            .bind(&context.principal.subject)
            .bind(OffsetDateTime::now_utc())
            .bind(comment)
            .execute(&mut tx)
            .await
            ?;
        // The owner changes only on acceptance; the new owner assigns its own caseworkers.
        let event_type = match decision {
            ReviewDecision::Approve => {
                sql::query("UPDATE cases SET organization_id = $2, caseworkers = '[]', version = version + 1 WHERE id = $1")
                    .bind(case.id)
                    .bind(transfer.to_organization_id)
                    .execute(&mut tx)
                    .await
                    ?;
                sql::query("DELETE FROM case_caseworkers WHERE case_id = $1")
                    .bind(case.id)
                    .execute(&mut tx)
                    .await?;
                "case.transferred"
            }
            ReviewDecision::Reject => {
                sql::query("UPDATE cases SET version = version + 1 WHERE id = $1")
                    .bind(case.id)
                    .execute(&mut tx)
                    .await?;
                "case.transfer_rejected"
            }
        };
        let owner = self.reload(&mut tx, case.id, None).await?;
        let payload = serde_json::json!({ "transfer_id": id, "from": transfer.from_organization_id, "to": transfer.to_organization_id });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.transfer",
            &owner,
            Some((event_type, payload)),
        )
        .await?;
        let transfer = self
            .load_transfer(&mut tx, id, Some(&receipt))
            .await?
            .ok_or_else(|| corrupt("transfer"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(transfer))
    }

    #[tracing::instrument(skip_all)]
    async fn list_transfers(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Option<Uuid>,
        pending_only: bool,
    ) -> HavenResult<Option<Vec<Transfer>>> {
        let mut tx = self.database.begin_write().await?;
        let mut receipts = std::collections::BTreeMap::new();
        let rows: Vec<TransferRow> = match case_id {
            Some(case_id) => {
                let Some(case) = self.load(&mut tx, context, scope, case_id).await? else { return Ok(None) };
                receipts.insert(case_id, Self::record(&mut tx, context, "case.read", &case, None).await?);
                sql::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT_TRANSFERS} WHERE t.case_id = $1 AND ($2 = FALSE OR t.status = 'requested') ORDER BY t.seq"
                )))
                .bind(case_id)
                .bind(pending_only)
                .fetch_all(&mut tx)
                .await
                ?
            }
            None => sql::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT_TRANSFERS} WHERE ($1 IS NULL OR t.to_organization_id = $1 OR t.from_organization_id = $1) \
                 AND ($2 = FALSE OR t.status = 'requested') ORDER BY t.seq DESC LIMIT 200"
            )))
            .bind(scope.organization())
            .bind(pending_only)
            .fetch_all(&mut tx)
            .await
            ?,
        };
        // A list across cases reads each case it shows, as one case's list does,
        // and each transfer's texts open under the entry about its case.
        let mut transfers = Vec::with_capacity(rows.len());
        for row in rows {
            let receipt = match receipts.entry(row.case_id) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => entry.insert(
                    AuditWrite::append_audit(
                        &mut tx,
                        SERVICE,
                        &context.entry("case.read", "case", row.case_id),
                    )
                    .await
                    .map_err(db_error)?,
                ),
            };
            transfers.push(row.into_transfer(&self.crypto, Some(receipt))?);
        }
        tx.commit().await?;
        Ok(Some(transfers))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn submit_plan(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        goals: Vec<PlanGoal>,
    ) -> HavenResult<Option<Plan>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        open_case_required(&case)?;
        let key = self.writable_key(&mut tx, case_id).await?;
        let (last,): (Option<i32>,) =
            sql::query_as("SELECT MAX(plan_version) FROM plans WHERE case_id = $1")
                .bind(case_id)
                .fetch_one(&mut tx)
                .await?;
        let plan_version = last.unwrap_or(0) + 1;
        let content = serde_json::to_string(&goals).map_err(HavenError::internal)?;
        let sealed = key.seal(
            "plans",
            "content",
            TextRow::plan(case_id, plan_version).as_bytes(),
            &content,
        )?;
        // A newer submission replaces one still waiting for review.
        sql::query("UPDATE plans SET status = 'superseded', version = version + 1 WHERE case_id = $1 AND status = 'requested'")
            .bind(case_id)
            .execute(&mut tx)
            .await
            ?;
        sql::query(
            "INSERT INTO plans (case_id, plan_version, content, status, submitted_by, submitted_at, version) \
             VALUES ($1, $2, $3, 'requested', $4, $5, 1)",
        )
        .bind(case_id)
        .bind(plan_version)
        .bind(sealed)
        .bind(&context.principal.subject)
        .bind(OffsetDateTime::now_utc())
        .execute(&mut tx)
        .await
        ?;
        for action in goals.iter().flat_map(|goal| goal.actions.iter()) {
            sql::query("INSERT INTO plan_actions (id, case_id, plan_version, due_on, status) VALUES ($1, $2, $3, $4, $5)")
                .bind(action.id)
                .bind(case_id)
                .bind(plan_version)
                .bind(action.due_on.to_string())
                .bind(ActionStatus::Planned.as_str())
                .execute(&mut tx)
                .await
                ?;
        }
        let domains: Vec<&str> = goals.iter().map(|goal| goal.domain.as_str()).collect();
        let payload = serde_json::json!({ "plan_version": plan_version, "domains": domains });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.plan_submitted", payload)),
        )
        .await?;
        let plan = self
            .load_plan(&mut tx, case_id, plan_version, Some(&receipt))
            .await?
            .ok_or_else(|| corrupt("plan"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(plan))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id, plan_version))]
    async fn review_plan(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        plan_version: i32,
        expected_version: i64,
        decision: ReviewDecision,
        comment: &str,
    ) -> HavenResult<Option<Plan>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let Some(plan) = self.load_plan(&mut tx, case_id, plan_version, None).await? else {
            return Ok(None);
        };
        if plan.version != expected_version {
            return Err(stale(plan.version));
        }
        if plan.status != ApprovalStatus::Requested {
            return Err(conflict(format!(
                "plan version {plan_version} is `{}`, not waiting for review",
                plan.status.as_str()
            )));
        }
        self.may_review(context, &plan.submitted_by, "a plan")?;
        let status = match decision {
            ReviewDecision::Approve => ApprovalStatus::Approved,
            ReviewDecision::Reject => ApprovalStatus::Rejected,
        };
        if decision == ReviewDecision::Approve {
            // The approved version replaces the previous one, and its actions are
            // the ones tracked for overdue lists.
            sql::query("UPDATE plans SET status = 'superseded', version = version + 1 WHERE case_id = $1 AND status = 'approved'")
                .bind(case_id)
                .execute(&mut tx)
                .await
                ?;
            sql::query("UPDATE plan_actions SET active = (plan_version = $2) WHERE case_id = $1")
                .bind(case_id)
                .bind(plan_version)
                .execute(&mut tx)
                .await?;
        }
        let key = self.text_key(&mut tx, case_id).await?;
        let comment = CaseText::PlanReview.seal(
            key.as_ref(),
            &TextRow::plan(case_id, plan_version),
            comment,
        )?;
        let reviewed = sql::query(
            "UPDATE plans SET status = $3, reviewed_by = $4, reviewed_at = $5, review_comment_encrypted = $6, version = version + 1 \
             WHERE case_id = $1 AND plan_version = $2 AND version = $7",
        )
        .bind(case_id)
        .bind(plan_version)
        .bind(status.as_str())
        .bind(&context.principal.subject)
        .bind(OffsetDateTime::now_utc())
        .bind(comment)
        .bind(expected_version)
        .execute(&mut tx)
        .await
        ?;
        if reviewed != 1 {
            return Err(stale(plan.version));
        }
        let event_type = if decision == ReviewDecision::Approve {
            "case.plan_approved"
        } else {
            "case.plan_rejected"
        };
        let payload = serde_json::json!({ "plan_version": plan_version });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.plan_review",
            &case,
            Some((event_type, payload)),
        )
        .await?;
        let plan = self
            .load_plan(&mut tx, case_id, plan_version, Some(&receipt))
            .await?
            .ok_or_else(|| corrupt("plan"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(plan))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn list_plans(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<Plan>>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let rows: Vec<PlanRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_PLANS} ORDER BY plan_version"
        )))
        .bind(case_id)
        .fetch_all(&mut tx)
        .await?;
        let statuses: Vec<(Uuid, String)> =
            sql::query_as("SELECT id, status FROM plan_actions WHERE case_id = $1")
                .bind(case_id)
                .fetch_all(&mut tx)
                .await?;
        let receipt = Self::record(&mut tx, context, "case.read", &case, None).await?;
        let key = self.opened_key(&mut tx, &receipt, case_id).await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|row| self.decrypt_plan(key.as_ref(), row, &statuses))
            .collect::<HavenResult<Vec<_>>>()
            .map(Some)
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id, plan_version))]
    async fn update_plan_action(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        plan_version: i32,
        action_id: Uuid,
        expected_version: i64,
        status: ActionStatus,
    ) -> HavenResult<Option<Plan>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let Some(plan) = self.load_plan(&mut tx, case_id, plan_version, None).await? else {
            return Ok(None);
        };
        // The plan's actions, known without opening its content.
        let (known,): (i64,) =
            sql::query_as("SELECT COUNT(*) FROM plan_actions WHERE case_id = $1 AND plan_version = $2 AND id = $3")
                .bind(case_id)
                .bind(plan_version)
                .bind(action_id)
                .fetch_one(&mut tx)
                .await
                ?;
        if known == 0 {
            return Ok(None);
        }
        if plan.version != expected_version {
            return Err(stale(plan.version));
        }
        if plan.status != ApprovalStatus::Approved {
            return Err(conflict(format!(
                "plan version {plan_version} is `{}`; only the approved plan's actions are tracked",
                plan.status.as_str()
            )));
        }
        sql::query("UPDATE plan_actions SET status = $3 WHERE case_id = $1 AND id = $2")
            .bind(case_id)
            .bind(action_id)
            .bind(status.as_str())
            .execute(&mut tx)
            .await?;
        sql::query(
            "UPDATE plans SET version = version + 1 WHERE case_id = $1 AND plan_version = $2",
        )
        .bind(case_id)
        .bind(plan_version)
        .execute(&mut tx)
        .await?;
        let payload = serde_json::json!({ "plan_version": plan_version, "action_id": action_id, "status": status.as_str() });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.plan_action_updated", payload)),
        )
        .await?;
        let plan = self
            .load_plan(&mut tx, case_id, plan_version, Some(&receipt))
            .await?
            .ok_or_else(|| corrupt("plan"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(plan))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn add_service(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        new: NewService,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<ServiceDelivery>>> {
        let mut tx = self.database.begin_write().await?;
        let id = Uuid::now_v7();
        let claimed = claim(&mut tx, once, &id.to_string()).await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if let Claim::Replay(earlier) = claimed {
            let service = Self::load_service(&mut tx, case_id, replayed_id(&earlier)?)
                .await?
                .ok_or_else(|| corrupt("service"))?;
            Self::record(&mut tx, context, "case.read", &case, None).await?;
            tx.commit().await?;
            return Ok(Some(Created::replay(service)));
        }
        open_case_required(&case)?;
        sql::query(
            "INSERT INTO case_services (id, case_id, service_type, provider_organization_id, planned_on, started_on, ended_on, \
             status, version, recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10)",
        )
        .bind(id)
        .bind(case_id)
        .bind(new.service_type.as_str())
        .bind(new.provider_organization_id)
        .bind(new.planned_on.map(|date| date.to_string()))
        .bind(new.started_on.map(|date| date.to_string()))
        .bind(new.ended_on.map(|date| date.to_string()))
        .bind(new.status.as_str())
        .bind(OffsetDateTime::now_utc())
        .bind(&context.principal.subject)
        .execute(&mut tx)
        .await
        ?;
        let payload = serde_json::json!({
            "service_id": id,
            "type": new.service_type.as_str(),
            "provider_organization_id": new.provider_organization_id,
            "status": new.status.as_str(),
        });
        Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.service_added", payload)),
        )
        .await?;
        let service = Self::load_service(&mut tx, case_id, id)
            .await?
            .ok_or_else(|| corrupt("service"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(Created::new(service)))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id, service_id = %id))]
    async fn update_service(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        id: Uuid,
        expected_version: i64,
        changes: ServiceChanges,
    ) -> HavenResult<Option<ServiceDelivery>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let Some(service) = Self::load_service(&mut tx, case_id, id).await? else {
            return Ok(None);
        };
        if service.version != expected_version {
            return Err(stale(service.version));
        }
        let status = changes.status.unwrap_or(service.status);
        if !service.status.can_move_to(status) {
            return Err(conflict(format!(
                "a `{}` service cannot become `{}`",
                service.status.as_str(),
                status.as_str()
            )));
        }
        let started_on = changes.started_on.or(service.started_on);
        let ended_on = changes.ended_on.or(service.ended_on);
        if let (Some(start), Some(end)) = (started_on, ended_on)
            && end < start
        {
            return Err(HavenError::invalid_field(
                "ended_on",
                "is before started_on",
            ));
        }
        let updated = sql::query(
            "UPDATE case_services SET status = $3, started_on = $4, ended_on = $5, version = version + 1 \
             WHERE case_id = $1 AND id = $2 AND version = $6",
        )
        .bind(case_id)
        .bind(id)
        .bind(status.as_str())
        .bind(started_on.map(|date| date.to_string()))
        .bind(ended_on.map(|date| date.to_string()))
        .bind(expected_version)
        .execute(&mut tx)
        .await
        ?;
        if updated != 1 {
            return Err(stale(service.version));
        }
        let payload = serde_json::json!({
            "service_id": id,
            "type": service.service_type.as_str(),
            "from": service.status.as_str(),
            "to": status.as_str(),
        });
        Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.service_updated", payload)),
        )
        .await?;
        let service = Self::load_service(&mut tx, case_id, id)
            .await?
            .ok_or_else(|| corrupt("service"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(service))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn list_services(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<ServiceDelivery>>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let rows: Vec<ServiceRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_SERVICES} ORDER BY seq"
        )))
        .bind(case_id)
        .fetch_all(&mut tx)
        .await?;
        Self::record(&mut tx, context, "case.read", &case, None).await?;
        tx.commit().await?;
        rows.into_iter()
            .map(ServiceDelivery::try_from)
            .collect::<HavenResult<Vec<_>>>()
            .map(Some)
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn record_payment(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        new: NewPayment,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<Payment>>> {
        let mut tx = self.database.begin_write().await?;
        let id = Uuid::now_v7();
        let claimed = claim(&mut tx, once, &id.to_string()).await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if let Claim::Replay(earlier) = claimed {
            let row: Option<PaymentRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT_PAYMENTS} AND id = $2"
            )))
            .bind(case_id)
            .bind(replayed_id(&earlier)?)
            .fetch_optional(&mut tx)
            .await?;
            let row = row.ok_or_else(|| corrupt("payment"))?;
            let receipt = Self::record(&mut tx, context, "case.read", &case, None).await?;
            let key = self.opened_key(&mut tx, &receipt, case_id).await?;
            let payment = row.into_payment(key.as_ref())?;
            tx.commit().await?;
            return Ok(Some(Created::replay(payment)));
        }
        let key = self.text_key(&mut tx, case_id).await?;
        let (amount, currency, paid_on, purpose, service_id, reverses) = match new {
            NewPayment::Payment {
                amount,
                currency,
                paid_on,
                purpose,
                service_id,
            } => {
                open_case_required(&case)?;
                if let Some(service_id) = service_id {
                    let service = Self::load_service(&mut tx, case_id, service_id).await?;
                    if !service
                        .is_some_and(|service| service.service_type == ServiceType::CashAssistance)
                    {
                        return Err(HavenError::invalid_field(
                            "service_id",
                            "must be a cash-assistance service of this case",
                        ));
                    }
                }
                (amount, currency, paid_on, purpose, service_id, None)
            }
            NewPayment::Reversal {
                payment_id,
                paid_on,
                purpose,
            } => {
                let original: Option<PaymentRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT_PAYMENTS} AND id = $2"
                )))
                .bind(case_id)
                .bind(payment_id)
                .fetch_optional(&mut tx)
                .await?;
                // Only its amount and links are needed: its purpose stays sealed.
                let Some(original) = original.map(|row| row.into_payment(None)).transpose()? else {
                    return Err(HavenError::invalid_field(
                        "reverses_payment_id",
                        "is not a payment of this case",
                    ));
                };
                if original.reverses_payment_id.is_some() {
                    return Err(HavenError::invalid_field(
                        "reverses_payment_id",
                        "is itself a reversal",
                    ));
                }
                (
                    Amount(-original.amount.0),
                    original.currency,
                    paid_on,
                    purpose,
                    original.service_id,
                    Some(payment_id),
                )
            }
        };
        let sealed_purpose =
            CaseText::PaymentPurpose.seal(key.as_ref(), &TextRow::id(id), &purpose)?;
        let inserted = sql::query(
            "INSERT INTO payments (id, case_id, amount_minor, currency, paid_on, purpose, purpose_encrypted, service_id, \
             reverses_payment_id, recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(case_id)
        .bind(amount.0)
        .bind(&currency)
        .bind(paid_on.to_string())
        .bind(sealed_purpose)
        .bind(service_id)
        .bind(reverses)
        .bind(OffsetDateTime::now_utc())
        .bind(&context.principal.subject)
        .execute(&mut tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error) if error.is_unique_violation() => {
                return Err(conflict("that payment was already reversed"));
            }
            Err(error) => return Err(error.into()),
        }
        let payload = serde_json::json!({
            "payment_id": id,
            "amount": amount.to_string(),
            "currency": currency,
            "reverses_payment_id": reverses,
        });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.payment_recorded", payload)),
        )
        .await?;
        let row: PaymentRow = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_PAYMENTS} AND id = $2"
        )))
        .bind(case_id)
        .bind(id)
        .fetch_one(&mut tx)
        .await?;
        let key = self.opened_key(&mut tx, &receipt, case_id).await?;
        let payment = row.into_payment(key.as_ref())?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(Created::new(payment)))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn list_payments(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<Payment>>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let rows: Vec<PaymentRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_PAYMENTS} ORDER BY seq"
        )))
        .bind(case_id)
        .fetch_all(&mut tx)
        .await?;
        let receipt = Self::record(&mut tx, context, "case.read", &case, None).await?;
        let key = self.opened_key(&mut tx, &receipt, case_id).await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|row| row.into_payment(key.as_ref()))
            .collect::<HavenResult<Vec<_>>>()
            .map(Some)
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    #[allow(clippy::too_many_arguments)]
    async fn schedule_follow_up(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        kind: FollowUpKind,
        due_on: Date,
        assigned_to: &str,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<FollowUp>>> {
        let mut tx = self.database.begin_write().await?;
        let id = Uuid::now_v7();
        let claimed = claim(&mut tx, once, &id.to_string()).await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if let Claim::Replay(earlier) = claimed {
            let follow_up = Self::load_follow_up(&mut tx, case_id, replayed_id(&earlier)?)
                .await?
                .ok_or_else(|| corrupt("follow-up"))?;
            Self::record(&mut tx, context, "case.read", &case, None).await?;
            tx.commit().await?;
            return Ok(Some(Created::replay(follow_up)));
        }
        open_case_required(&case)?;
        sql::query("INSERT INTO follow_ups (id, case_id, kind, due_on, assigned_to, version) VALUES ($1, $2, $3, $4, $5, 1)")
            .bind(id)
            .bind(case_id)
            .bind(kind.as_str())
            .bind(due_on.to_string())
            .bind(assigned_to)
            .execute(&mut tx)
            .await
            ?;
        let payload = serde_json::json!({ "follow_up_id": id, "kind": kind.as_str(), "due_on": due_on.to_string() });
        Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.follow_up_scheduled", payload)),
        )
        .await?;
        let follow_up = Self::load_follow_up(&mut tx, case_id, id)
            .await?
            .ok_or_else(|| corrupt("follow-up"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(Created::new(follow_up)))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id, follow_up_id = %id))]
    async fn record_follow_up_outcome(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        id: Uuid,
        expected_version: i64,
        outcome: FollowUpOutcome,
        done_at: OffsetDateTime,
    ) -> HavenResult<Option<FollowUp>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let Some(follow_up) = Self::load_follow_up(&mut tx, case_id, id).await? else {
            return Ok(None);
        };
        if follow_up.version != expected_version {
            return Err(stale(follow_up.version));
        }
        if let Some(recorded) = follow_up.outcome {
            return Err(conflict(format!(
                "the follow-up's outcome is already recorded (`{}`)",
                recorded.as_str()
            )));
        }
        let updated = sql::query(
            "UPDATE follow_ups SET outcome = $3, done_at = $4, version = version + 1 WHERE case_id = $1 AND id = $2 AND version = $5",
        )
        .bind(case_id)
        .bind(id)
        .bind(outcome.as_str())
        .bind(done_at)
        .bind(expected_version)
        .execute(&mut tx)
        .await
        ?;
        if updated != 1 {
            return Err(stale(follow_up.version));
        }
        let payload = serde_json::json!({ "follow_up_id": id, "outcome": outcome.as_str() });
        Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.follow_up_done", payload)),
        )
        .await?;
        let follow_up = Self::load_follow_up(&mut tx, case_id, id)
            .await?
            .ok_or_else(|| corrupt("follow-up"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(follow_up))
    }

    #[tracing::instrument(skip_all)]
    async fn list_follow_ups(
        &self,
        context: &AuditContext,
        scope: Scope,
        filter: &FollowUpFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Option<Vec<(i64, FollowUp)>>> {
        let mut tx = self.database.begin_write().await?;
        if let Some(case_id) = filter.case_id
            && self.load(&mut tx, context, scope, case_id).await?.is_none()
        {
            return Ok(None);
        }
        let rows: Vec<FollowUpRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_FOLLOW_UPS} WHERE f.seq > $1 AND ($2 IS NULL OR c.organization_id = $2) AND ($3 OR c.sealed = FALSE) \
             AND ($4 IS NULL OR f.case_id = $4) AND ($5 IS NULL OR f.assigned_to = $5) \
             AND ($6 = FALSE OR (f.outcome IS NULL AND f.due_on < $7)) ORDER BY f.seq LIMIT $8"
        )))
        .bind(after.unwrap_or(0))
        .bind(scope.organization())
        .bind(context.principal.can(Action::CaseReadSealed))
        .bind(filter.case_id)
        .bind(filter.assigned_to.as_deref())
        .bind(filter.overdue_only)
        .bind(filter.today.to_string())
        .bind(i64::from(limit))
        .fetch_all(&mut tx)
        .await
        ?;
        let follow_ups = rows
            .into_iter()
            .map(<(i64, FollowUp)>::try_from)
            .collect::<HavenResult<Vec<_>>>()?;
        let mut audited = std::collections::BTreeSet::new();
        for (_, follow_up) in &follow_ups {
            if audited.insert(follow_up.case_id) {
                AuditWrite::append_audit(
                    &mut tx,
                    SERVICE,
                    &context.entry("case.read", "case", follow_up.case_id),
                )
                .await
                .map_err(db_error)?;
            }
        }
        tx.commit().await?;
        Ok(Some(follow_ups))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn add_note(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        visibility: NoteVisibility,
        body: &str,
    ) -> HavenResult<Option<Note>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let key = self.writable_key(&mut tx, case_id).await?;
        let id = Uuid::now_v7();
        let sealed = key.seal("notes", "body", id.as_bytes(), body)?;
        let written_at = OffsetDateTime::now_utc();
        sql::query("INSERT INTO notes (id, case_id, visibility, body, written_by, written_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(case_id)
            .bind(visibility.as_str())
            .bind(sealed)
            .bind(&context.principal.subject)
            .bind(written_at)
            .execute(&mut tx)
            .await
            ?;
        // The event says a note exists, never what it says.
        let payload = serde_json::json!({ "note_id": id, "visibility": visibility.as_str() });
        Self::record(
            &mut tx,
            context,
            "case.note.write",
            &case,
            Some(("case.note_added", payload)),
        )
        .await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(Note {
            id,
            case_id,
            visibility,
            body: body.to_owned(),
            written_by: context.principal.subject.clone(),
            written_at,
        }))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn list_notes(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        visibilities: &[NoteVisibility],
    ) -> HavenResult<Option<Vec<Note>>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let rows: Vec<NoteRow> = sql::query_as(
            "SELECT id, case_id, visibility, body, written_by, written_at FROM notes WHERE case_id = $1 ORDER BY seq",
        )
        .bind(case_id)
        .fetch_all(&mut tx)
        .await
        ?;
        let receipt = Self::record(&mut tx, context, "case.note.read", &case, None).await?;
        let key = self.opened_key(&mut tx, &receipt, case_id).await?;
        tx.commit().await?;
        let mut notes = Vec::new();
        for row in rows {
            let visibility =
                NoteVisibility::parse(&row.visibility).ok_or_else(|| corrupt("note"))?;
            if !visibilities.contains(&visibility) {
                continue;
            }
            let body = match &key {
                Some(key) => key.open("notes", "body", row.id.as_bytes(), &row.body)?,
                // Erased with the person: the ciphertext stays, unreadable.
                None => String::new(),
            };
            notes.push(Note {
                id: row.id,
                case_id: row.case_id,
                visibility,
                body,
                written_by: row.written_by,
                written_at: row.written_at,
            });
        }
        Ok(Some(notes))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn request_closure(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        request: ClosureRequest,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if case.version != expected_version {
            return Err(stale(case.version));
        }
        open_case_required(&case)?;
        if case
            .closure
            .as_ref()
            .is_some_and(|closure| closure.status == ApprovalStatus::Requested)
        {
            return Err(conflict("a closure is already waiting for approval"));
        }
        if case.pending_transfer.is_some() {
            return Err(conflict("a transfer of the case is waiting for an answer"));
        }
        let (in_progress,): (i64,) = sql::query_as(
            "SELECT COUNT(*) FROM case_services WHERE case_id = $1 AND status = 'in_progress'",
        )
        .bind(case_id)
        .fetch_one(&mut tx)
        .await?;
        if in_progress > 0 && request.override_reason.is_empty() {
            return Err(conflict(format!(
                "{in_progress} service(s) still in progress: finish or cancel them, or give an override_reason"
            )));
        }
        Self::bump(&mut tx, &case, expected_version).await?;
        let id = Uuid::now_v7();
        let key = self.text_key(&mut tx, case_id).await?;
        let reason_text =
            CaseText::ClosureReason.seal(key.as_ref(), &TextRow::id(id), &request.reason_text)?;
        let override_reason = CaseText::ClosureOverride.seal(
            key.as_ref(),
            &TextRow::id(id),
            &request.override_reason,
        )?;
        sql::query(
            "INSERT INTO closures (id, case_id, reason, reason_text_encrypted, override_reason_encrypted, status, \
             requested_by, requested_at) VALUES ($1, $2, $3, $4, $5, 'requested', $6, $7)",
        )
        .bind(id)
        .bind(case_id)
        .bind(request.reason.as_str())
        .bind(reason_text)
        .bind(override_reason)
        .bind(&context.principal.subject)
        .bind(OffsetDateTime::now_utc())
        .execute(&mut tx)
        .await
        ?;
        sql::query("UPDATE cases SET closure_id = $2 WHERE id = $1")
            .bind(case_id)
            .bind(id)
            .execute(&mut tx)
            .await?;
        let payload = serde_json::json!({
            "reason": request.reason.as_str(),
            "services_in_progress": in_progress,
            "overridden": !request.override_reason.is_empty(),
        });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.closure_requested", payload)),
        )
        .await?;
        let case = self.reload(&mut tx, case_id, Some(&receipt)).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn review_closure(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        decision: ReviewDecision,
        comment: &str,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if case.version != expected_version {
            return Err(stale(case.version));
        }
        let Some(closure) = case
            .closure
            .clone()
            .filter(|closure| closure.status == ApprovalStatus::Requested)
        else {
            return Err(conflict(format!(
                "no closure of this case is waiting for approval (status `{}`)",
                case.status.as_str()
            )));
        };
        self.may_review(context, &closure.requested_by, "a closure")?;
        if decision == ReviewDecision::Approve && !closure.overridden {
            let (in_progress,): (i64,) = sql::query_as(
                "SELECT COUNT(*) FROM case_services WHERE case_id = $1 AND status = 'in_progress'",
            )
            .bind(case_id)
            .fetch_one(&mut tx)
            .await?;
            if in_progress > 0 {
                return Err(conflict(format!(
                    "{in_progress} service(s) started since closure was requested"
                )));
            }
        }
        Self::bump(&mut tx, &case, expected_version).await?;
        let status = match decision {
            ReviewDecision::Approve => ApprovalStatus::Approved,
            ReviewDecision::Reject => ApprovalStatus::Rejected,
        };
        let key = self.text_key(&mut tx, case_id).await?;
        let comment =
            CaseText::ClosureReview.seal(key.as_ref(), &TextRow::id(closure.id), comment)?;
        sql::query(
            "UPDATE closures SET status = $2, reviewed_by = $3, reviewed_at = $4, review_comment_encrypted = $5 WHERE id = $1",
        )
            .bind(closure.id)
            .bind(status.as_str())
            .bind(&context.principal.subject)
            .bind(OffsetDateTime::now_utc())
            .bind(comment)
            .execute(&mut tx)
            .await
            ?;
        let event = match decision {
            ReviewDecision::Approve => {
                let closed = closure.reason.closed_status();
                sql::query("UPDATE cases SET status = $2, stage = $3 WHERE id = $1")
                    .bind(case_id)
                    .bind(closed.as_str())
                    .bind(CaseStage::Closed.as_str())
                    .execute(&mut tx)
                    .await?;
                (
                    "case.closed",
                    serde_json::json!({ "reason": closure.reason.as_str(), "status": closed.as_str(), "from_stage": case.stage.as_str() }),
                )
            }
            ReviewDecision::Reject => (
                "case.closure_rejected",
                serde_json::json!({ "reason": closure.reason.as_str() }),
            ),
        };
        let receipt =
            Self::record(&mut tx, context, "case.closure_review", &case, Some(event)).await?;
        let case = self.reload(&mut tx, case_id, Some(&receipt)).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn reopen_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        reason: &str,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if case.version != expected_version {
            return Err(stale(case.version));
        }
        if !matches!(case.status, CaseStatus::Closed | CaseStatus::ClosedReferred) {
            return Err(conflict(format!(
                "only a closed case can be reopened; this one is `{}`",
                case.status.as_str()
            )));
        }
        Self::bump(&mut tx, &case, expected_version).await?;
        // Reopening starts again from an assessment of needs.
        sql::query("UPDATE cases SET status = $2, stage = $3, closure_id = NULL WHERE id = $1")
            .bind(case_id)
            .bind(CaseStatus::Active.as_str())
            .bind(CaseStage::Assessment.as_str())
            .execute(&mut tx)
            .await?;
        // The reason is bound to the reopening's sequence number, known once inserted.
        let (seq,): (i64,) = sql::query_as(
            "INSERT INTO reopenings (case_id, reason, reopened_by, reopened_at) VALUES ($1, '', $2, $3) RETURNING seq",
        )
        .bind(case_id)
        .bind(&context.principal.subject)
        .bind(OffsetDateTime::now_utc())
        .fetch_one(&mut tx)
        .await
        ?;
        let key = self.text_key(&mut tx, case_id).await?;
        let reason = CaseText::ReopeningReason.seal(
            key.as_ref(),
            &TextRow::reopening(case_id, seq),
            reason,
        )?;
        sql::query("UPDATE reopenings SET reason_encrypted = $2 WHERE seq = $1")
            .bind(seq)
            .bind(reason)
            .execute(&mut tx)
            .await?;
        let payload = serde_json::json!({ "from_status": case.status.as_str(), "stage": CaseStage::Assessment.as_str() });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.reopened", payload)),
        )
        .await?;
        let case = self.reload(&mut tx, case_id, Some(&receipt)).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn timeline(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<TimelineEntry>>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let rows: Vec<(i64, String, String, OffsetDateTime)> = sql::query_as(
            "SELECT sequence, event_type, payload, occurred_at FROM outbox_events WHERE aggregate_id = $1 ORDER BY sequence",
        )
        .bind(case_id)
        .fetch_all(&mut tx)
        .await
        ?;
        Self::record(&mut tx, context, "case.read", &case, None).await?;
        tx.commit().await?;
        Ok(Some(
            rows.into_iter()
                .map(
                    |(sequence, event_type, details, occurred_at): (
                        i64,
                        String,
                        String,
                        OffsetDateTime,
                    )| {
                        // Each reader sees the fields their roles may receive.
                        let payload = serde_json::from_str(&details).unwrap_or_default();
                        let details =
                            payload_for_roles(&event_type, &payload, &context.principal.roles)
                                .to_string();
                        TimelineEntry {
                            sequence,
                            occurred_at,
                            event_type,
                            details,
                        }
                    },
                )
                .collect(),
        ))
    }

    async fn encrypt_plaintext_texts(&self) -> HavenResult<u64> {
        let mut replaced = 0;
        for text in CaseText::ALL {
            let mut tx = self.database.begin_write().await?;
            let rows: Vec<PlaintextRow> =
                sql::query_as(sqlx::AssertSqlSafe(text.plaintext_rows_query()))
                    .fetch_all(&mut tx)
                    .await?;
            for row in rows {
                let key = self.text_key(&mut tx, row.case_id).await?;
                let sealed = text.seal(key.as_ref(), &text.plaintext_row(&row)?, &row.text)?;
                replaced += sql::query(sqlx::AssertSqlSafe(text.replace_plaintext_statement()))
                    .bind(sealed)
                    .bind(row.seq)
                    .bind(&row.text)
                    .execute(&mut tx)
                    .await?;
            }
            tx.commit().await?;
        }
        if replaced > 0 {
            tracing::info!(
                texts = replaced,
                "free texts written in the clear are now encrypted"
            );
            // No plaintext copy may stay in the database files.
            self.database.forget_deleted().await?;
        }
        Ok(replaced)
    }

    async fn rewrap_keys(&self) -> HavenResult<u64> {
        self.crypto.rewrap_all(&self.database).await
    }
}

/// The case service follows intake's feed to destroy a case's data key when
/// the person is erased: notes and plans become unreadable with the rest.
#[async_trait::async_trait]
impl EventSink for Cases {
    async fn checkpoint(&self, source: &str) -> HavenResult<i64> {
        let mut tx = self.database.begin_read().await?;
        let checkpoint = CheckpointWrite::checkpoint(&mut tx, source)
            .await
            .map_err(db_error)?;
        tx.commit().await?;
        Ok(checkpoint)
    }

    #[tracing::instrument(skip_all, fields(source = %event.source, sequence = event.sequence, event_type = %event.event_type))]
    async fn apply(&self, event: &Event) -> HavenResult<()> {
        let sequence = i64::try_from(event.sequence).map_err(HavenError::internal)?;
        let mut tx = self.database.begin_write().await?;
        if !CheckpointWrite::advance_checkpoint(&mut tx, &event.source, sequence)
            .await
            .map_err(db_error)?
        {
            return Ok(());
        }
        if event.event_type == "person.erased" {
            let person_id = Uuid::parse_str(&event.aggregate_id).map_err(HavenError::internal)?;
            let shredded = sql::query(
                "UPDATE cases SET data_key = NULL, shredded = TRUE WHERE person_id = $1",
            )
            .bind(person_id)
            .execute(&mut tx)
            .await?;
            // The person's cases' past events keep their place in the feed but
            // lose what they said, so a replay cannot rebuild them.
            let cases: Vec<(Uuid,)> = sql::query_as("SELECT id FROM cases WHERE person_id = $1")
                .bind(person_id)
                .fetch_all(&mut tx)
                .await?;
            let case_ids: Vec<Uuid> = cases.into_iter().map(|(id,)| id).collect();
            let redacted = OutboxWrite::redact_events(&mut tx, &case_ids)
                .await
                .map_err(db_error)?;
            tracing::info!(person_id = %person_id, cases = shredded, events_redacted = redacted, "case data keys destroyed and events redacted after erasure");
        }
        if event.event_type == "referral.completed" {
            self.record_referred_service(&mut tx, event).await?;
        }
        tx.commit().await?;
        if event.event_type == "person.erased" {
            // No copy of the destroyed keys may stay in the database files
            // (forget_deleted logs when it cannot clear them).
            let _ = self.database.forget_deleted().await;
        }
        Ok(())
    }
}
