//! The gRPC face of the case service.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::{Action, Scope};
use haven_error::HavenError;
use haven_error::fields::{
    date as date_field, expected_version, optional_date as optional_date_field, parse_id,
};
use haven_proto::case::v1 as pb;
use haven_proto::case::v1::case_service_server::CaseService;
use haven_proto::common::v1::PageResponse;
use haven_storage::cursor;

use time::OffsetDateTime;

use crate::domain::{
    ActionStatus, Amount, AssessmentKind, CaseStage, ClosureReason, FollowUpKind, FollowUpOutcome,
    NeedDomain, NoteVisibility, PlanAction, PlanGoal, RiskLevel, ServiceStatus, ServiceType,
    payment_totals,
};
use crate::store::{
    CaseChanges, CaseStore, ClosureRequest, FollowUpFilter, NewCase, NewPayment, NewService,
    ServiceChanges,
};

/// Implements `haven.case.v1.CaseService`.
#[derive(Debug, Clone)]
pub struct CaseApi {
    store: Arc<dyn CaseStore>,
}

impl CaseApi {
    /// The API over a store.
    pub fn new(store: Arc<dyn CaseStore>) -> Self {
        Self { store }
    }
}

mod checks;

use checks::*;

fn not_found_case() -> Status {
    HavenError::not_found("case").into()
}

#[tonic::async_trait]
impl CaseService for CaseApi {
    async fn open_case(
        &self,
        request: Request<pb::OpenCaseRequest>,
    ) -> Result<Response<pb::OpenCaseResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseOpen)?;
        let message = request.into_inner();
        let new = NewCase {
            screening_id: parse_id("screening_id", &message.screening_id)?,
            organization_id: parse_id("organization_id", &message.organization_id)?,
            person_id: match message.person_id.as_str() {
                "" => None,
                id => Some(parse_id("person_id", id)?),
            },
        };
        let (case, created) = self.store.open_case(&context, new).await?;
        Ok(Response::new(pb::OpenCaseResponse {
            case: Some(case.to_proto()),
            created,
        }))
    }

    async fn get_case(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::GetCaseResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseRead)?;
        let caller = &context.principal;
        let id = parse_id("id", &request.get_ref().id)?;
        // A sealed case looks exactly like a missing one to those who may not read it.
        let case = self
            .store
            .get_case(&context, Scope::of(caller), id)
            .await?
            .filter(|case| !case.sealed || caller.can(Action::CaseReadSealed))
            .ok_or_else(|| HavenError::not_found("case"))?;
        Ok(Response::new(pb::GetCaseResponse {
            case: Some(case.to_proto()),
        }))
    }

    async fn list_cases(
        &self,
        request: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseRead)?;
        let caller = &context.principal;
        let message = request.into_inner();
        let page = message.page.clone().unwrap_or_default();
        let limit = cursor::limit(page.limit)?;
        let after = cursor::decode(&page.cursor)?;
        let filter = case_filter(&message, caller.can(Action::CaseReadSealed))?;
        let cases = self
            .store
            .list_cases(&context, Scope::of(caller), &filter, after, limit)
            .await?;
        let next_cursor = if cases.len() == limit as usize {
            cases
                .last()
                .map(|case| cursor::encode(case.position))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListCasesResponse {
            cases: cases.iter().map(|case| case.to_proto()).collect(),
            page: Some(PageResponse { next_cursor }),
        }))
    }

    async fn seal_case(
        &self,
        request: Request<pb::SealCaseRequest>,
    ) -> Result<Response<pb::SealCaseResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseSeal)?;
        let message = request.into_inner();
        let id = parse_id("id", &message.id)?;
        let legal_basis = message.legal_basis.trim();
        if legal_basis.is_empty() {
            return Err(HavenError::invalid_field("legal_basis", "is required").into());
        }
        if legal_basis.chars().count() > 500 {
            return Err(
                HavenError::invalid_field("legal_basis", "is longer than 500 characters").into(),
            );
        }
        let case = self
            .store
            .seal_case(&context, Scope::of(&context.principal), id, legal_basis)
            .await?
            .ok_or_else(|| HavenError::not_found("case"))?;
        Ok(Response::new(pb::SealCaseResponse {
            case: Some(case.to_proto()),
        }))
    }

    async fn change_stage(
        &self,
        request: Request<pb::ChangeStageRequest>,
    ) -> Result<Response<pb::ChangeStageResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let message = request.into_inner();
        let id = parse_id("id", &message.id)?;
        if message.expected_version == 0 {
            return Err(HavenError::new(
                haven_error::ErrorCode::PreconditionRequired,
                "expected_version (If-Match) is required to change a case",
            )
            .into());
        }
        let expected_version = i64::try_from(message.expected_version)
            .map_err(|_| HavenError::invalid_field("expected_version", "is too large"))?;
        let stage = pb::CaseStage::try_from(message.stage)
            .ok()
            .and_then(CaseStage::from_proto)
            .ok_or_else(|| {
                HavenError::invalid_field(
                    "stage",
                    "is required and must be one of the listed values",
                )
            })?;
        let scope = Scope::of(&context.principal);
        let case = self
            .store
            .change_stage(&context, scope, id, expected_version, stage)
            .await?
            .ok_or_else(|| HavenError::not_found("case"))?;
        Ok(Response::new(pb::ChangeStageResponse {
            case: Some(case.to_proto()),
        }))
    }

    async fn add_assessment(
        &self,
        request: Request<pb::AddAssessmentRequest>,
    ) -> Result<Response<pb::AddAssessmentResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let mut message = request.into_inner();
        let once = context.caller_key("assessment.add", &mut message, |message| {
            &mut message.idempotency_key
        })?;
        let case_id = parse_id("case_id", &message.case_id)?;
        let kind = pb::AssessmentKind::try_from(message.kind)
            .ok()
            .and_then(AssessmentKind::from_proto)
            .ok_or_else(|| {
                HavenError::invalid_field("kind", "is required: individual, household or community")
            })?;
        let scores = assessment_scores(message.scores)?;
        let assessed_at = assessed_at(message.assessed_at)?;
        let scope = Scope::of(&context.principal);
        let assessment = self
            .store
            .add_assessment(
                &context,
                scope,
                case_id,
                kind,
                scores,
                assessed_at,
                once.as_ref(),
            )
            .await?
            .ok_or_else(|| HavenError::not_found("case"))?;
        Ok(Response::new(pb::AddAssessmentResponse {
            assessment: Some(assessment.record.to_proto()),
            replayed: assessment.replayed,
        }))
    }

    async fn list_assessments(
        &self,
        request: Request<pb::ListAssessmentsRequest>,
    ) -> Result<Response<pb::ListAssessmentsResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseRead)?;
        let case_id = parse_id("case_id", &request.get_ref().case_id)?;
        let scope = Scope::of(&context.principal);
        let assessments = self
            .store
            .list_assessments(&context, scope, case_id)
            .await?
            .ok_or_else(|| HavenError::not_found("case"))?;
        Ok(Response::new(pb::ListAssessmentsResponse {
            assessments: assessments
                .iter()
                .map(|assessment| assessment.to_proto())
                .collect(),
        }))
    }

    async fn update_case(
        &self,
        request: Request<pb::UpdateCaseRequest>,
    ) -> Result<Response<pb::UpdateCaseResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let message = request.into_inner();
        let id = parse_id("id", &message.id)?;
        let expected = expected_version(message.expected_version)?;
        let caseworkers = if message.set_caseworkers {
            // Assigning people to a case is a supervisor's call.
            context.principal.require(Action::CaseAssign)?;
            if message.caseworkers.len() > 10 {
                return Err(HavenError::invalid_field("caseworkers", "at most 10").into());
            }
            let mut subjects: Vec<String> = Vec::new();
            for subject in &message.caseworkers {
                let subject = subject_text("caseworkers", subject)?;
                if !subjects.contains(&subject) {
                    subjects.push(subject);
                }
            }
            Some(subjects)
        } else {
            None
        };
        let changes = CaseChanges {
            risk_level: optional_enum(message.risk_level, "risk_level", |value| {
                pb::RiskLevel::try_from(value)
                    .ok()
                    .map(RiskLevel::from_proto)
            })?,
            flags: if message.set_flags {
                Some(flags(message.flags)?)
            } else {
                None
            },
            caseworkers,
        };
        let scope = Scope::of(&context.principal);
        let case = self
            .store
            .update_case(&context, scope, id, expected, changes)
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::UpdateCaseResponse {
            case: Some(case.to_proto()),
        }))
    }

    async fn request_transfer(
        &self,
        request: Request<pb::RequestTransferRequest>,
    ) -> Result<Response<pb::RequestTransferResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let message = request.into_inner();
        let case_id = parse_id("case_id", &message.case_id)?;
        let expected = expected_version(message.expected_version)?;
        let to = parse_id("to_organization_id", &message.to_organization_id)?;
        let reason = required_text("reason", &message.reason, MAX_REASON)?;
        let transfer = self
            .store
            .request_transfer(
                &context,
                Scope::of(&context.principal),
                case_id,
                expected,
                to,
                &reason,
            )
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::RequestTransferResponse {
            transfer: Some(transfer.to_proto()),
        }))
    }

    async fn decide_transfer(
        &self,
        request: Request<pb::DecideTransferRequest>,
    ) -> Result<Response<pb::DecideTransferResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseTransferDecide)?;
        let message = request.into_inner();
        let id = parse_id("id", &message.id)?;
        let decision = review_decision(message.decision)?;
        let comment = review_comment(decision, &message.comment)?;
        let transfer = self
            .store
            .decide_transfer(
                &context,
                Scope::of(&context.principal),
                id,
                decision,
                &comment,
            )
            .await?
            .ok_or_else(|| HavenError::not_found("transfer"))?;
        Ok(Response::new(pb::DecideTransferResponse {
            transfer: Some(transfer.to_proto()),
        }))
    }

    async fn list_transfers(
        &self,
        request: Request<pb::ListTransfersRequest>,
    ) -> Result<Response<pb::ListTransfersResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseRead)?;
        let message = request.into_inner();
        let case_id = match message.case_id.as_str() {
            "" => None,
            id => Some(parse_id("case_id", id)?),
        };
        let transfers = self
            .store
            .list_transfers(
                &context,
                Scope::of(&context.principal),
                case_id,
                message.pending_only,
            )
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::ListTransfersResponse {
            transfers: transfers
                .iter()
                .map(|transfer| transfer.to_proto())
                .collect(),
        }))
    }

    async fn submit_plan(
        &self,
        request: Request<pb::SubmitPlanRequest>,
    ) -> Result<Response<pb::SubmitPlanResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let message = request.into_inner();
        let case_id = parse_id("case_id", &message.case_id)?;
        if message.goals.is_empty() || message.goals.len() > MAX_GOALS {
            return Err(HavenError::invalid_field("goals", "a plan has 1 to 20 goals").into());
        }
        // Fields are named by their place in the request, e.g.
        // `goals[0].actions[1].due_on`, so a client can point at the one to fix.
        let mut goals = Vec::with_capacity(message.goals.len());
        for (goal_index, goal) in message.goals.into_iter().enumerate() {
            let at = format!("goals[{goal_index}]");
            let domain = required_enum(goal.domain, &format!("{at}.domain"), |value| {
                pb::NeedDomain::try_from(value)
                    .ok()
                    .map(NeedDomain::from_proto)
            })?;
            let goal_text = required_text(&format!("{at}.goal"), &goal.goal, MAX_REASON)?;
            if goal.actions.len() > MAX_GOALS {
                return Err(HavenError::invalid_field(
                    format!("{at}.actions"),
                    "at most 20 actions per goal",
                )
                .into());
            }
            let mut actions = Vec::with_capacity(goal.actions.len());
            for (action_index, action) in goal.actions.into_iter().enumerate() {
                let at = format!("{at}.actions[{action_index}]");
                actions.push(PlanAction {
                    id: Uuid::now_v7(),
                    description: required_text(
                        &format!("{at}.description"),
                        &action.description,
                        MAX_REASON,
                    )?,
                    responsible_organization_id: parse_id(
                        &format!("{at}.responsible_organization_id"),
                        &action.responsible_organization_id,
                    )?,
                    due_on: date_field(&format!("{at}.due_on"), &action.due_on)?,
                    status: ActionStatus::Planned,
                });
            }
            goals.push(PlanGoal {
                domain,
                goal: goal_text,
                actions,
            });
        }
        let plan = self
            .store
            .submit_plan(&context, Scope::of(&context.principal), case_id, goals)
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::SubmitPlanResponse {
            plan: Some(plan.to_proto()),
        }))
    }

    async fn review_plan(
        &self,
        request: Request<pb::ReviewPlanRequest>,
    ) -> Result<Response<pb::ReviewPlanResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CasePlanApprove)?;
        let message = request.into_inner();
        let case_id = parse_id("case_id", &message.case_id)?;
        let version = plan_version(message.plan_version)?;
        let expected = expected_version(message.expected_version)?;
        let decision = review_decision(message.decision)?;
        let comment = review_comment(decision, &message.comment)?;
        let plan = self
            .store
            .review_plan(
                &context,
                Scope::of(&context.principal),
                case_id,
                version,
                expected,
                decision,
                &comment,
            )
            .await?
            .ok_or_else(|| HavenError::not_found("plan"))?;
        Ok(Response::new(pb::ReviewPlanResponse {
            plan: Some(plan.to_proto()),
        }))
    }

    async fn list_plans(
        &self,
        request: Request<pb::ListPlansRequest>,
    ) -> Result<Response<pb::ListPlansResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseRead)?;
        let case_id = parse_id("case_id", &request.get_ref().case_id)?;
        let plans = self
            .store
            .list_plans(&context, Scope::of(&context.principal), case_id)
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::ListPlansResponse {
            plans: plans.iter().map(|plan| plan.to_proto()).collect(),
        }))
    }

    async fn update_plan_action(
        &self,
        request: Request<pb::UpdatePlanActionRequest>,
    ) -> Result<Response<pb::UpdatePlanActionResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let message = request.into_inner();
        let case_id = parse_id("case_id", &message.case_id)?;
        let version = plan_version(message.plan_version)?;
        let action_id = parse_id("action_id", &message.action_id)?;
        let expected = expected_version(message.expected_version)?;
        let status = required_enum(message.status, "status", |value| {
            pb::ActionStatus::try_from(value)
                .ok()
                .map(ActionStatus::from_proto)
        })?;
        let plan = self
            .store
            .update_plan_action(
                &context,
                Scope::of(&context.principal),
                case_id,
                version,
                action_id,
                expected,
                status,
            )
            .await?
            .ok_or_else(|| HavenError::not_found("plan action"))?;
        Ok(Response::new(pb::UpdatePlanActionResponse {
            plan: Some(plan.to_proto()),
        }))
    }

    async fn add_service(
        &self,
        request: Request<pb::AddServiceRequest>,
    ) -> Result<Response<pb::AddServiceResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let mut message = request.into_inner();
        let once = context.caller_key("service.add", &mut message, |message| {
            &mut message.idempotency_key
        })?;
        let case_id = parse_id("case_id", &message.case_id)?;
        let new = NewService {
            service_type: required_enum(message.r#type, "type", |value| {
                pb::ServiceType::try_from(value)
                    .ok()
                    .map(ServiceType::from_proto)
            })?,
            provider_organization_id: parse_id(
                "provider_organization_id",
                &message.provider_organization_id,
            )?,
            planned_on: optional_date_field("planned_on", &message.planned_on)?,
            started_on: optional_date_field("started_on", &message.started_on)?,
            ended_on: optional_date_field("ended_on", &message.ended_on)?,
            status: optional_enum(message.status, "status", |value| {
                pb::ServiceStatus::try_from(value)
                    .ok()
                    .map(ServiceStatus::from_proto)
            })?
            .unwrap_or(ServiceStatus::Planned),
        };
        if let (Some(start), Some(end)) = (new.started_on, new.ended_on)
            && end < start
        {
            return Err(HavenError::invalid_field("ended_on", "is before started_on").into());
        }
        let service = self
            .store
            .add_service(
                &context,
                Scope::of(&context.principal),
                case_id,
                new,
                once.as_ref(),
            )
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::AddServiceResponse {
            service: Some(service.record.to_proto()),
            replayed: service.replayed,
        }))
    }

    async fn update_service(
        &self,
        request: Request<pb::UpdateServiceRequest>,
    ) -> Result<Response<pb::UpdateServiceResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let message = request.into_inner();
        let case_id = parse_id("case_id", &message.case_id)?;
        let id = parse_id("id", &message.id)?;
        let expected = expected_version(message.expected_version)?;
        let changes = ServiceChanges {
            status: optional_enum(message.status, "status", |value| {
                pb::ServiceStatus::try_from(value)
                    .ok()
                    .map(ServiceStatus::from_proto)
            })?,
            started_on: optional_date_field("started_on", &message.started_on)?,
            ended_on: optional_date_field("ended_on", &message.ended_on)?,
        };
        let service = self
            .store
            .update_service(
                &context,
                Scope::of(&context.principal),
                case_id,
                id,
                expected,
                changes,
            )
            .await?
            .ok_or_else(|| HavenError::not_found("service"))?;
        Ok(Response::new(pb::UpdateServiceResponse {
            service: Some(service.to_proto()),
        }))
    }

    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseRead)?;
        let case_id = parse_id("case_id", &request.get_ref().case_id)?;
        let services = self
            .store
            .list_services(&context, Scope::of(&context.principal), case_id)
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::ListServicesResponse {
            services: services.iter().map(|service| service.to_proto()).collect(),
        }))
    }

    async fn record_payment(
        &self,
        request: Request<pb::RecordPaymentRequest>,
    ) -> Result<Response<pb::RecordPaymentResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let mut message = request.into_inner();
        let once = context.caller_key("payment.record", &mut message, |message| {
            &mut message.idempotency_key
        })?;
        let case_id = parse_id("case_id", &message.case_id)?;
        let paid_on = date_field("paid_on", &message.paid_on)?;
        let purpose = required_text("purpose", &message.purpose, 200)?;
        let new = if message.reverses_payment_id.is_empty() {
            let amount = Amount::parse(message.amount.trim())
                .filter(|amount| amount.0 > 0)
                .ok_or_else(|| {
                    HavenError::invalid_field(
                        "amount",
                        "must be a positive amount with at most two decimals, e.g. \"150.00\"",
                    )
                })?;
            let currency = message.currency.trim();
            if currency.len() != 3 || !currency.bytes().all(|byte| byte.is_ascii_uppercase()) {
                return Err(HavenError::invalid_field(
                    "currency",
                    "must be an ISO 4217 code such as AZN",
                )
                .into());
            }
            NewPayment::Payment {
                amount,
                currency: currency.to_owned(),
                paid_on,
                purpose,
                service_id: match message.service_id.as_str() {
                    "" => None,
                    id => Some(parse_id("service_id", id)?),
                },
            }
        } else {
            if !message.amount.is_empty() || !message.currency.is_empty() {
                return Err(HavenError::invalid_field(
                    "amount",
                    "a reversal takes the amount and currency of the payment it reverses; leave them out",
                )
                .into());
            }
            NewPayment::Reversal {
                payment_id: parse_id("reverses_payment_id", &message.reverses_payment_id)?,
                paid_on,
                purpose,
            }
        };
        let payment = self
            .store
            .record_payment(
                &context,
                Scope::of(&context.principal),
                case_id,
                new,
                once.as_ref(),
            )
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::RecordPaymentResponse {
            payment: Some(payment.record.to_proto()),
            replayed: payment.replayed,
        }))
    }

    async fn list_payments(
        &self,
        request: Request<pb::ListPaymentsRequest>,
    ) -> Result<Response<pb::ListPaymentsResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseRead)?;
        let case_id = parse_id("case_id", &request.get_ref().case_id)?;
        let payments = self
            .store
            .list_payments(&context, Scope::of(&context.principal), case_id)
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::ListPaymentsResponse {
            totals: payment_totals(&payments)
                .into_iter()
                .map(|(currency, amount)| pb::CurrencyTotal {
                    currency,
                    amount: amount.to_string(),
                })
                .collect(),
            payments: payments.iter().map(|payment| payment.to_proto()).collect(),
        }))
    }

    async fn schedule_follow_up(
        &self,
        request: Request<pb::ScheduleFollowUpRequest>,
    ) -> Result<Response<pb::ScheduleFollowUpResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let mut message = request.into_inner();
        let once = context.caller_key("follow_up.schedule", &mut message, |message| {
            &mut message.idempotency_key
        })?;
        let case_id = parse_id("case_id", &message.case_id)?;
        let kind = required_enum(message.kind, "kind", |value| {
            pb::FollowUpKind::try_from(value)
                .ok()
                .map(FollowUpKind::from_proto)
        })?;
        let due_on = date_field("due_on", &message.due_on)?;
        let assigned_to = match message.assigned_to.trim() {
            "" => context.principal.subject.clone(),
            subject => subject_text("assigned_to", subject)?,
        };
        let follow_up = self
            .store
            .schedule_follow_up(
                &context,
                Scope::of(&context.principal),
                case_id,
                kind,
                due_on,
                &assigned_to,
                once.as_ref(),
            )
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::ScheduleFollowUpResponse {
            follow_up: Some(follow_up.record.to_proto(OffsetDateTime::now_utc().date())),
            replayed: follow_up.replayed,
        }))
    }

    async fn record_follow_up_outcome(
        &self,
        request: Request<pb::RecordFollowUpOutcomeRequest>,
    ) -> Result<Response<pb::RecordFollowUpOutcomeResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let message = request.into_inner();
        let case_id = parse_id("case_id", &message.case_id)?;
        let id = parse_id("id", &message.id)?;
        let expected = expected_version(message.expected_version)?;
        let outcome = required_enum(message.outcome, "outcome", |value| {
            pb::FollowUpOutcome::try_from(value)
                .ok()
                .map(FollowUpOutcome::from_proto)
        })?;
        let done_at = past_time("done_at", message.done_at)?;
        let follow_up = self
            .store
            .record_follow_up_outcome(
                &context,
                Scope::of(&context.principal),
                case_id,
                id,
                expected,
                outcome,
                done_at,
            )
            .await?
            .ok_or_else(|| HavenError::not_found("follow-up"))?;
        Ok(Response::new(pb::RecordFollowUpOutcomeResponse {
            follow_up: Some(follow_up.to_proto(OffsetDateTime::now_utc().date())),
        }))
    }

    async fn list_follow_ups(
        &self,
        request: Request<pb::ListFollowUpsRequest>,
    ) -> Result<Response<pb::ListFollowUpsResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseRead)?;
        let message = request.into_inner();
        let page = message.page.unwrap_or_default();
        let limit = cursor::limit(page.limit)?;
        let after = cursor::decode(&page.cursor)?;
        let today = OffsetDateTime::now_utc().date();
        let filter = FollowUpFilter {
            case_id: match message.case_id.as_str() {
                "" => None,
                id => Some(parse_id("case_id", id)?),
            },
            assigned_to: match message.assigned_to.trim() {
                "" => None,
                subject => Some(subject_text("assigned_to", subject)?),
            },
            overdue_only: message.overdue_only,
            today,
        };
        let follow_ups = self
            .store
            .list_follow_ups(
                &context,
                Scope::of(&context.principal),
                &filter,
                after,
                limit,
            )
            .await?
            .ok_or_else(not_found_case)?;
        let next_cursor = if follow_ups.len() == limit as usize {
            follow_ups
                .last()
                .map(|(position, _)| cursor::encode(*position))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListFollowUpsResponse {
            follow_ups: follow_ups
                .iter()
                .map(|(_, follow_up)| follow_up.to_proto(today))
                .collect(),
            page: Some(PageResponse { next_cursor }),
        }))
    }

    async fn add_note(
        &self,
        request: Request<pb::AddNoteRequest>,
    ) -> Result<Response<pb::AddNoteResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let message = request.into_inner();
        let case_id = parse_id("case_id", &message.case_id)?;
        let body = required_text("body", &message.body, MAX_NOTE)?;
        let visibility = optional_enum(message.visibility, "visibility", |value| {
            pb::NoteVisibility::try_from(value)
                .ok()
                .map(NoteVisibility::from_proto)
        })?
        .unwrap_or(NoteVisibility::CaseTeam);
        let note = self
            .store
            .add_note(
                &context,
                Scope::of(&context.principal),
                case_id,
                visibility,
                &body,
            )
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::AddNoteResponse {
            note: Some(note.to_proto()),
        }))
    }

    async fn list_notes(
        &self,
        request: Request<pb::ListNotesRequest>,
    ) -> Result<Response<pb::ListNotesResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseNoteRead)?;
        let case_id = parse_id("case_id", &request.get_ref().case_id)?;
        let mut visibilities = vec![NoteVisibility::CaseTeam];
        if context.principal.can(Action::CaseNoteReadRestricted) {
            visibilities.push(NoteVisibility::Supervisors);
        }
        let notes = self
            .store
            .list_notes(
                &context,
                Scope::of(&context.principal),
                case_id,
                &visibilities,
            )
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::ListNotesResponse {
            notes: notes.iter().map(|note| note.to_proto()).collect(),
        }))
    }

    async fn request_closure(
        &self,
        request: Request<pb::RequestClosureRequest>,
    ) -> Result<Response<pb::RequestClosureResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let message = request.into_inner();
        let case_id = parse_id("case_id", &message.case_id)?;
        let expected = expected_version(message.expected_version)?;
        let reason = required_enum(message.reason, "reason", |value| {
            pb::ClosureReason::try_from(value)
                .ok()
                .map(ClosureReason::from_proto)
        })?;
        let reason_text = if reason == ClosureReason::Other {
            required_text("reason_text", &message.reason_text, MAX_REASON)?
        } else {
            optional_text("reason_text", &message.reason_text, MAX_REASON)?
        };
        let override_reason =
            optional_text("override_reason", &message.override_reason, MAX_REASON)?;
        let case = self
            .store
            .request_closure(
                &context,
                Scope::of(&context.principal),
                case_id,
                expected,
                ClosureRequest {
                    reason,
                    reason_text,
                    override_reason,
                },
            )
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::RequestClosureResponse {
            case: Some(case.to_proto()),
        }))
    }

    async fn review_closure(
        &self,
        request: Request<pb::ReviewClosureRequest>,
    ) -> Result<Response<pb::ReviewClosureResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseClosureApprove)?;
        let message = request.into_inner();
        let case_id = parse_id("case_id", &message.case_id)?;
        let expected = expected_version(message.expected_version)?;
        let decision = review_decision(message.decision)?;
        let comment = review_comment(decision, &message.comment)?;
        let case = self
            .store
            .review_closure(
                &context,
                Scope::of(&context.principal),
                case_id,
                expected,
                decision,
                &comment,
            )
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::ReviewClosureResponse {
            case: Some(case.to_proto()),
        }))
    }

    async fn reopen_case(
        &self,
        request: Request<pb::ReopenCaseRequest>,
    ) -> Result<Response<pb::ReopenCaseResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseUpdate)?;
        let message = request.into_inner();
        let case_id = parse_id("case_id", &message.case_id)?;
        let expected = expected_version(message.expected_version)?;
        let reason = required_text("reason", &message.reason, MAX_REASON)?;
        let case = self
            .store
            .reopen_case(
                &context,
                Scope::of(&context.principal),
                case_id,
                expected,
                &reason,
            )
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::ReopenCaseResponse {
            case: Some(case.to_proto()),
        }))
    }

    async fn get_timeline(
        &self,
        request: Request<pb::GetTimelineRequest>,
    ) -> Result<Response<pb::GetTimelineResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseRead)?;
        let case_id = parse_id("case_id", &request.get_ref().case_id)?;
        let entries = self
            .store
            .timeline(&context, Scope::of(&context.principal), case_id)
            .await?
            .ok_or_else(not_found_case)?;
        Ok(Response::new(pb::GetTimelineResponse {
            entries: entries
                .into_iter()
                .map(|entry| pb::TimelineEntry {
                    sequence: u64::try_from(entry.sequence).unwrap_or_default(),
                    occurred_at: Some(haven_proto::timestamp(entry.occurred_at)),
                    r#type: entry.event_type,
                    details_json: entry.details,
                })
                .collect(),
        }))
    }
}
