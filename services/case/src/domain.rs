//! Case values and their stored and wire forms.

use time::{Date, OffsetDateTime};
use uuid::Uuid;

use haven_proto::case::v1 as pb;

mod plans;

pub use plans::{Plan, PlanAction, PlanGoal};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStatus {
    /// Being worked on.
    Active,
    /// Services ended, being followed up.
    FollowUp,
    /// Closed.
    Closed,
    /// Closed because the person was referred elsewhere.
    ClosedReferred,
}

/// Workflow stage of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStage {
    /// Just opened.
    New,
    /// Needs being assessed.
    Assessment,
    /// Individual reintegration plan being made.
    Plan,
    /// Services being delivered.
    Services,
    /// Monitoring.
    Monitoring,
    /// Closed.
    Closed,
}

haven_storage::stored_enum!(CaseStatus, pb::CaseStatus,
    Active => "active" / Active,
    FollowUp => "follow_up" / FollowUp,
    Closed => "closed" / Closed,
    ClosedReferred => "closed_referred" / ClosedReferred,
);

haven_storage::stored_enum!(CaseStage, pb::CaseStage,
    New => "new" / New,
    Assessment => "assessment" / Assessment,
    Plan => "plan" / Plan,
    Services => "services" / Services,
    Monitoring => "monitoring" / Monitoring,
    Closed => "closed" / Closed,
);

impl CaseStage {
    /// Whether the workflow allows moving from this stage to `to` by a stage change:
    /// forward one step, or back from services to plan and from monitoring to services
    /// (a plan revised, more services needed). Closing is a separate, approved workflow.
    pub fn can_move_to(self, to: CaseStage) -> bool {
        use CaseStage::*;
        matches!(
            (self, to),
            (New, Assessment)
                | (Assessment, Plan)
                | (Plan, Services)
                | (Services, Monitoring)
                | (Services, Plan)
                | (Monitoring, Services)
                | (Monitoring, Assessment)
        )
    }
}

/// Kind of needs assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssessmentKind {
    /// Of the person.
    Individual,
    /// Of the household.
    Household,
    /// Of the community the person returns to.
    Community,
}

haven_storage::stored_enum!(AssessmentKind, pb::AssessmentKind,
    Individual => "individual" / Individual,
    Household => "household" / Household,
    Community => "community" / Community,
);

/// A domain of needs scored by an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NeedDomain {
    /// Safety.
    Safety,
    /// Physical health.
    Health,
    /// Mental health and psychosocial well-being.
    MentalHealth,
    /// Legal.
    Legal,
    /// Housing.
    Housing,
    /// Education.
    Education,
    /// Livelihood and employment.
    Livelihood,
    /// Family and community.
    FamilyAndCommunity,
}

haven_storage::stored_enum!(NeedDomain, pb::NeedDomain,
    Safety => "safety" / Safety,
    Health => "health" / Health,
    MentalHealth => "mental_health" / MentalHealth,
    Legal => "legal" / Legal,
    Housing => "housing" / Housing,
    Education => "education" / Education,
    Livelihood => "livelihood" / Livelihood,
    FamilyAndCommunity => "family_and_community" / FamilyAndCommunity,
);

/// An assessment of needs: a score from 1 (critical) to 5 (fully met) per domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// Kind.
    pub kind: AssessmentKind,
    /// Scores, by domain.
    pub scores: Vec<(NeedDomain, u8)>,
    /// When assessed.
    pub assessed_at: OffsetDateTime,
    /// Who assessed.
    pub assessed_by: String,
}

impl Assessment {
    /// The wire form.
    pub fn to_proto(&self) -> pb::Assessment {
        pb::Assessment {
            id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            kind: self.kind.to_proto().into(),
            scores: self
                .scores
                .iter()
                .map(|(domain, score)| pb::DomainScore {
                    domain: domain.to_proto().into(),
                    score: u32::from(*score),
                })
                .collect(),
            assessed_at: Some(haven_proto::timestamp(self.assessed_at)),
            assessed_by: self.assessed_by.clone(),
        }
    }
}

/// How much danger the person is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskLevel {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
}

haven_storage::stored_enum!(RiskLevel, pb::RiskLevel,
    Low => "low" / Low,
    Medium => "medium" / Medium,
    High => "high" / High,
);

/// Where a request for approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Requested,
    /// Approved (or, for a transfer, accepted).
    Approved,
    /// Rejected.
    Rejected,
    /// A plan version replaced by a newer approved one.
    Superseded,
}

haven_storage::stored_enum!(ApprovalStatus, pb::ApprovalStatus,
    Requested => "requested" / Requested,
    Approved => "approved" / Approved,
    Rejected => "rejected" / Rejected,
    Superseded => "superseded" / Superseded,
);

/// A reviewer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewDecision {
    /// Approve (accept).
    Approve,
    /// Reject.
    Reject,
}

haven_storage::stored_enum!(ReviewDecision, pb::ReviewDecision,
    Approve => "approve" / Approve,
    Reject => "reject" / Reject,
);

/// Why a case is closed (coded, for reporting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosureReason {
    /// Reintegration goals achieved.
    GoalsAchieved,
    /// The person's own decision.
    OwnDecision,
    /// Moved away.
    MovedAway,
    /// Lost contact.
    LostContact,
    /// Deceased.
    Deceased,
    /// Transferred to another programme.
    Transferred,
    /// Referred elsewhere.
    ReferredElsewhere,
    /// Other, explained in text.
    Other,
}

haven_storage::stored_enum!(ClosureReason, pb::ClosureReason,
    GoalsAchieved => "goals_achieved" / GoalsAchieved,
    OwnDecision => "own_decision" / OwnDecision,
    MovedAway => "moved_away" / MovedAway,
    LostContact => "lost_contact" / LostContact,
    Deceased => "deceased" / Deceased,
    Transferred => "transferred" / Transferred,
    ReferredElsewhere => "referred_elsewhere" / ReferredElsewhere,
    Other => "other" / Other,
);

impl ClosureReason {
    /// The status a case closed for this reason ends in.
    pub fn closed_status(self) -> CaseStatus {
        match self {
            ClosureReason::Transferred | ClosureReason::ReferredElsewhere => {
                CaseStatus::ClosedReferred
            }
            _ => CaseStatus::Closed,
        }
    }
}

/// Status of a plan action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionStatus {
    /// Not started.
    Planned,
    /// Under way.
    InProgress,
    /// Done.
    Done,
    /// Dropped.
    Cancelled,
}

haven_storage::stored_enum!(ActionStatus, pb::ActionStatus,
    Planned => "planned" / Planned,
    InProgress => "in_progress" / InProgress,
    Done => "done" / Done,
    Cancelled => "cancelled" / Cancelled,
);

/// Kind of service delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    /// Shelter.
    Shelter,
    /// Medical.
    Medical,
    /// Psychological.
    Psychological,
    /// Legal aid.
    LegalAid,
    /// Interpretation.
    Interpretation,
    /// Vocational training.
    VocationalTraining,
    /// Education.
    Education,
    /// Employment support.
    EmploymentSupport,
    /// Financial or cash assistance.
    CashAssistance,
    /// Family tracing.
    FamilyTracing,
    /// Documentation.
    Documentation,
    /// Voluntary return.
    VoluntaryReturn,
    /// Other.
    Other,
}

haven_storage::stored_enum!(ServiceType, pb::ServiceType,
    Shelter => "shelter" / Shelter,
    Medical => "medical" / Medical,
    Psychological => "psychological" / Psychological,
    LegalAid => "legal_aid" / LegalAid,
    Interpretation => "interpretation" / Interpretation,
    VocationalTraining => "vocational_training" / VocationalTraining,
    Education => "education" / Education,
    EmploymentSupport => "employment_support" / EmploymentSupport,
    CashAssistance => "cash_assistance" / CashAssistance,
    FamilyTracing => "family_tracing" / FamilyTracing,
    Documentation => "documentation" / Documentation,
    VoluntaryReturn => "voluntary_return" / VoluntaryReturn,
    Other => "other" / Other,
);

/// Status of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceStatus {
    /// Planned.
    Planned,
    /// Being delivered.
    InProgress,
    /// Delivered.
    Delivered,
    /// Cancelled.
    Cancelled,
}

haven_storage::stored_enum!(ServiceStatus, pb::ServiceStatus,
    Planned => "planned" / Planned,
    InProgress => "in_progress" / InProgress,
    Delivered => "delivered" / Delivered,
    Cancelled => "cancelled" / Cancelled,
);

impl ServiceStatus {
    /// Whether a service may move from this status to `to`: forward only, and
    /// finished services stay finished.
    pub fn can_move_to(self, to: ServiceStatus) -> bool {
        use ServiceStatus::*;
        matches!(
            (self, to),
            (Planned, InProgress | Delivered | Cancelled) | (InProgress, Delivered | Cancelled)
        ) || self == to
    }
}

/// Kind of follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpKind {
    /// A visit.
    Visit,
    /// A call.
    Call,
    /// A meeting at the office.
    OfficeMeeting,
}

haven_storage::stored_enum!(FollowUpKind, pb::FollowUpKind,
    Visit => "visit" / Visit,
    Call => "call" / Call,
    OfficeMeeting => "office_meeting" / OfficeMeeting,
);

/// What came of a follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpOutcome {
    /// Met or spoke with the person.
    Completed,
    /// Could not reach the person.
    NotReached,
    /// The person declined.
    Declined,
    /// Cancelled.
    Cancelled,
}

haven_storage::stored_enum!(FollowUpOutcome, pb::FollowUpOutcome,
    Completed => "completed" / Completed,
    NotReached => "not_reached" / NotReached,
    Declined => "declined" / Declined,
    Cancelled => "cancelled" / Cancelled,
);

/// Who may read a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteVisibility {
    /// Caseworkers, supervisors and admins of the owning organisation.
    CaseTeam,
    /// Supervisors and admins only.
    Supervisors,
}

haven_storage::stored_enum!(NoteVisibility, pb::NoteVisibility,
    CaseTeam => "case_team" / CaseTeam,
    Supervisors => "supervisors" / Supervisors,
);

/// A closure requested or decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Closure {
    /// Id.
    pub id: Uuid,
    /// Coded reason.
    pub reason: ClosureReason,
    /// Text with `Other`.
    pub reason_text: String,
    /// Why closure goes ahead while services are in progress.
    pub override_reason: String,
    /// Whether an override reason was given; still known once its text is erased.
    pub overridden: bool,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: OffsetDateTime,
    /// Who decided.
    pub reviewed_by: String,
    /// When.
    pub reviewed_at: Option<OffsetDateTime>,
    /// The reviewer's comment.
    pub review_comment: String,
}

impl Closure {
    /// The wire form.
    pub fn to_proto(&self) -> pb::Closure {
        pb::Closure {
            reason: self.reason.to_proto().into(),
            reason_text: self.reason_text.clone(),
            override_reason: self.override_reason.clone(),
            status: self.status.to_proto().into(),
            requested_by: self.requested_by.clone(),
            requested_at: Some(haven_proto::timestamp(self.requested_at)),
            reviewed_by: self.reviewed_by.clone(),
            reviewed_at: self.reviewed_at.map(haven_proto::timestamp),
            review_comment: self.review_comment.clone(),
        }
    }
}

/// A transfer of a case to another organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// Its pseudonymous code.
    pub case_code: String,
    /// The owner when requested.
    pub from_organization_id: Uuid,
    /// The organisation asked to take over.
    pub to_organization_id: Uuid,
    /// Why.
    pub reason: String,
    /// Where it stands (approved = accepted).
    pub status: ApprovalStatus,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: OffsetDateTime,
    /// Who decided.
    pub decided_by: String,
    /// When.
    pub decided_at: Option<OffsetDateTime>,
    /// The decider's comment.
    pub decision_comment: String,
}

impl Transfer {
    /// The wire form.
    pub fn to_proto(&self) -> pb::Transfer {
        pb::Transfer {
            id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            case_code: self.case_code.clone(),
            from_organization_id: self.from_organization_id.to_string(),
            to_organization_id: self.to_organization_id.to_string(),
            reason: self.reason.clone(),
            status: self.status.to_proto().into(),
            requested_by: self.requested_by.clone(),
            requested_at: Some(haven_proto::timestamp(self.requested_at)),
            decided_by: self.decided_by.clone(),
            decided_at: self.decided_at.map(haven_proto::timestamp),
            decision_comment: self.decision_comment.clone(),
        }
    }
}

/// A service delivered (or planned) for a case.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDelivery {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
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
    /// Status.
    pub status: ServiceStatus,
    /// Concurrency version.
    pub version: i64,
    /// When recorded.
    pub recorded_at: OffsetDateTime,
    /// Who recorded.
    pub recorded_by: String,
}

fn date_text(date: Option<Date>) -> String {
    date.map(|date| date.to_string()).unwrap_or_default()
}

impl ServiceDelivery {
    /// The wire form.
    pub fn to_proto(&self) -> pb::ServiceDelivery {
        pb::ServiceDelivery {
            id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            r#type: self.service_type.to_proto().into(),
            provider_organization_id: self.provider_organization_id.to_string(),
            planned_on: date_text(self.planned_on),
            started_on: date_text(self.started_on),
            ended_on: date_text(self.ended_on),
            status: self.status.to_proto().into(),
            version: u64::try_from(self.version).unwrap_or_default(),
            recorded_at: Some(haven_proto::timestamp(self.recorded_at)),
            recorded_by: self.recorded_by.clone(),
        }
    }
}

/// An amount in hundredths of a currency unit, as written in the API ("150.00").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(pub i64);

impl Amount {
    /// Parses "150", "150.5", "150.50" or "-150.50" (at most two decimals).
    pub fn parse(text: &str) -> Option<Amount> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (units, cents) = match digits.split_once('.') {
            Some((units, cents)) => (units, cents),
            None => (digits, ""),
        };
        if units.is_empty()
            || units.len() > 12
            || cents.len() > 2
            || !units.bytes().all(|byte| byte.is_ascii_digit())
            || !cents.bytes().all(|byte| byte.is_ascii_digit())
            || (digits.contains('.') && cents.is_empty())
        {
            return None;
        }
        let units: i64 = units.parse().ok()?;
        let cents: i64 = match cents.len() {
            0 => 0,
            1 => cents.parse::<i64>().ok()? * 10,
            _ => cents.parse().ok()?,
        };
        let value = units.checked_mul(100)?.checked_add(cents)?;
        Some(Amount(if negative { -value } else { value }))
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let value = self.0.unsigned_abs();
        write!(formatter, "{sign}{}.{:02}", value / 100, value % 100)
    }
}

/// One entry of the cash ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// Amount (negative for a reversal).
    pub amount: Amount,
    /// ISO 4217 code.
    pub currency: String,
    /// Date paid.
    pub paid_on: Date,
    /// What for.
    pub purpose: String,
    /// The cash-assistance service, if any.
    pub service_id: Option<Uuid>,
    /// The payment this one reverses.
    pub reverses_payment_id: Option<Uuid>,
    /// When recorded.
    pub recorded_at: OffsetDateTime,
    /// Who recorded.
    pub recorded_by: String,
}

impl Payment {
    /// The wire form.
    pub fn to_proto(&self) -> pb::Payment {
        pb::Payment {
            id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            amount: self.amount.to_string(),
            currency: self.currency.clone(),
            paid_on: self.paid_on.to_string(),
            purpose: self.purpose.clone(),
            service_id: self.service_id.map(|id| id.to_string()).unwrap_or_default(),
            reverses_payment_id: self
                .reverses_payment_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            recorded_at: Some(haven_proto::timestamp(self.recorded_at)),
            recorded_by: self.recorded_by.clone(),
        }
    }
}

/// Totals per currency of a ledger, in currency order.
pub fn payment_totals(payments: &[Payment]) -> Vec<(String, Amount)> {
    let mut totals = std::collections::BTreeMap::<&str, i64>::new();
    for payment in payments {
        *totals.entry(payment.currency.as_str()).or_default() += payment.amount.0;
    }
    totals
        .into_iter()
        .map(|(currency, total)| (currency.to_owned(), Amount(total)))
        .collect()
}

/// A scheduled follow-up.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// The case's code.
    pub case_code: String,
    /// Kind.
    pub kind: FollowUpKind,
    /// Due date.
    pub due_on: Date,
    /// Caseworker to do it.
    pub assigned_to: String,
    /// Outcome, once done.
    pub outcome: Option<FollowUpOutcome>,
    /// When done.
    pub done_at: Option<OffsetDateTime>,
    /// Concurrency version.
    pub version: i64,
}

impl FollowUp {
    /// Due before `today` and not done.
    pub fn is_overdue(&self, today: Date) -> bool {
        self.outcome.is_none() && self.due_on < today
    }

    /// The wire form.
    pub fn to_proto(&self, today: Date) -> pb::FollowUp {
        pb::FollowUp {
            id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            case_code: self.case_code.clone(),
            kind: self.kind.to_proto().into(),
            due_on: self.due_on.to_string(),
            assigned_to: self.assigned_to.clone(),
            outcome: self
                .outcome
                .map(|outcome| outcome.to_proto().into())
                .unwrap_or_default(),
            done_at: self.done_at.map(haven_proto::timestamp),
            overdue: self.is_overdue(today),
            version: u64::try_from(self.version).unwrap_or_default(),
        }
    }
}

/// A decrypted note.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// Who may read it.
    pub visibility: NoteVisibility,
    /// The narrative; empty once destroyed with the person's data.
    pub body: String,
    /// Who wrote it.
    pub written_by: String,
    /// When.
    pub written_at: OffsetDateTime,
}

impl Note {
    /// The wire form.
    pub fn to_proto(&self) -> pb::Note {
        pb::Note {
            id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            visibility: self.visibility.to_proto().into(),
            body: self.body.clone(),
            written_by: self.written_by.clone(),
            written_at: Some(haven_proto::timestamp(self.written_at)),
        }
    }
}

/// One event of a case's history.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    /// Position in the service's event sequence.
    pub sequence: i64,
    /// When.
    pub occurred_at: OffsetDateTime,
    /// Event type, e.g. `case.stage_changed`.
    pub event_type: String,
    /// The event's fields (JSON).
    pub details: String,
}

/// A stored case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Id.
    pub id: Uuid,
    /// Pseudonymous code.
    pub code: String,
    /// Owning organisation.
    pub organization_id: Uuid,
    /// The screening it was opened from.
    pub screening_id: Uuid,
    /// Status.
    pub status: CaseStatus,
    /// Stage.
    pub stage: CaseStage,
    /// When it was opened.
    pub opened_at: OffsetDateTime,
    /// Incremented on every change.
    pub version: i64,
    /// Position in creation order, for cursors.
    pub position: i64,
    /// Sealed by a legal decision: only admins and auditors may read it.
    pub sealed: bool,
    /// The person, by id (personal data stays in intake).
    pub person_id: Option<Uuid>,
    /// Risk level, once assessed.
    pub risk_level: Option<RiskLevel>,
    /// Flags.
    pub flags: Vec<String>,
    /// Subjects of the assigned caseworkers.
    pub caseworkers: Vec<String>,
    /// The current closure, if any.
    pub closure: Option<Closure>,
    /// A transfer waiting for a decision.
    pub pending_transfer: Option<Transfer>,
}

impl Case {
    /// The wire form.
    pub fn to_proto(&self) -> pb::Case {
        pb::Case {
            id: self.id.to_string(),
            code: self.code.clone(),
            organization_id: self.organization_id.to_string(),
            screening_id: self.screening_id.to_string(),
            status: self.status.to_proto().into(),
            stage: self.stage.to_proto().into(),
            opened_at: Some(haven_proto::timestamp(self.opened_at)),
            version: u64::try_from(self.version).unwrap_or_default(),
            sealed: self.sealed,
            person_id: self.person_id.map(|id| id.to_string()).unwrap_or_default(),
            risk_level: self
                .risk_level
                .map(|level| level.to_proto().into())
                .unwrap_or_default(),
            flags: self.flags.clone(),
            caseworkers: self.caseworkers.clone(),
            closure: self.closure.as_ref().map(Closure::to_proto),
            pending_transfer: self.pending_transfer.as_ref().map(Transfer::to_proto),
        }
    }
}

/// Parses an ISO 8601 calendar date (`2026-11-28`).
pub fn parse_date(text: &str) -> Option<Date> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// Formats a pseudonymous case code: prefix, year, six-digit number.
pub fn case_code(prefix: &str, year: i32, number: i64) -> String {
    format!("{prefix}-{year}-{number:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflow_moves_forward_and_never_closes_by_a_stage_change() {
        assert!(CaseStage::New.can_move_to(CaseStage::Assessment));
        assert!(
            !CaseStage::New.can_move_to(CaseStage::Services),
            "no skipping the plan"
        );
        assert!(CaseStage::Services.can_move_to(CaseStage::Plan));
        for stage in [
            CaseStage::New,
            CaseStage::Assessment,
            CaseStage::Plan,
            CaseStage::Services,
            CaseStage::Monitoring,
        ] {
            assert!(!stage.can_move_to(CaseStage::Closed), "{stage:?}");
            assert!(!stage.can_move_to(stage), "{stage:?}");
        }
        assert!(
            !CaseStage::Closed.can_move_to(CaseStage::Assessment),
            "reopening is its own workflow"
        );
    }

    #[test]
    fn amounts_keep_cents_exactly_and_refuse_what_is_not_money() {
        assert_eq!(Amount::parse("150"), Some(Amount(15_000)));
        assert_eq!(Amount::parse("150.5"), Some(Amount(15_050)));
        assert_eq!(Amount::parse("0.05"), Some(Amount(5)));
        assert_eq!(Amount::parse("-12.30"), Some(Amount(-1_230)));
        for bad in [
            "",
            "1.",
            ".5",
            "1.234",
            "1e3",
            "12,50",
            "abc",
            "--1",
            "9999999999999",
        ] {
            assert_eq!(Amount::parse(bad), None, "{bad}");
        }
        assert_eq!(Amount(15_050).to_string(), "150.50");
        assert_eq!(Amount(-5).to_string(), "-0.05");
    }

    #[test]
    fn finished_services_stay_finished() {
        assert!(ServiceStatus::Planned.can_move_to(ServiceStatus::InProgress));
        assert!(ServiceStatus::InProgress.can_move_to(ServiceStatus::Delivered));
        assert!(!ServiceStatus::Delivered.can_move_to(ServiceStatus::InProgress));
        assert!(!ServiceStatus::Cancelled.can_move_to(ServiceStatus::Planned));
        assert!(!ServiceStatus::InProgress.can_move_to(ServiceStatus::Planned));
    }

    #[test]
    fn codes_are_zero_padded_and_enums_round_trip() {
        assert_eq!(case_code("HV", 2026, 123), "HV-2026-000123");
        for status in [
            CaseStatus::Active,
            CaseStatus::FollowUp,
            CaseStatus::Closed,
            CaseStatus::ClosedReferred,
        ] {
            assert_eq!(CaseStatus::parse(status.as_str()), Some(status));
            assert_eq!(CaseStatus::from_proto(status.to_proto()), Some(status));
        }
        assert_eq!(CaseStatus::from_proto(pb::CaseStatus::Unspecified), None);
    }
}
