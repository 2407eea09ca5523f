//! The gRPC face of the case service.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::{Action, Scope};
use haven_error::HavenError;
use haven_proto::case::v1 as pb;
use haven_proto::case::v1::case_service_server::CaseService;
use haven_proto::common::v1::PageResponse;
use haven_storage::cursor;

use crate::domain::{AssessmentKind, CaseStage, CaseStatus, NeedDomain};
use crate::store::{CaseFilter, CaseStore, NewCase};

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

/// Parses a UUID field of a request.
pub fn parse_id(field: &str, value: &str) -> Result<Uuid, HavenError> {
    Uuid::parse_str(value).map_err(|_| HavenError::invalid_field(field, "must be a UUID"))
}

impl CaseApi {
    /// A sealed case does not exist for those who may not read it: 404, like a
    /// missing one.
    async fn ensure_visible(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
    ) -> Result<(), HavenError> {
        let visible = self
            .store
            .get_case(context, scope, id)
            .await?
            .filter(|case| !case.sealed || context.principal.can(Action::CaseReadSealed));
        visible
            .map(|_| ())
            .ok_or_else(|| HavenError::not_found("case"))
    }
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
        let page = message.page.unwrap_or_default();
        let limit = cursor::limit(page.limit)?;
        let after = cursor::decode(&page.cursor)?;
        let status = match pb::CaseStatus::try_from(message.status) {
            Ok(pb::CaseStatus::Unspecified) => None,
            Ok(status) => CaseStatus::from_proto(status),
            Err(_) => return Err(HavenError::invalid_field("status", "unknown status").into()),
        };
        let cases = self
            .store
            .list_cases(
                &context,
                Scope::of(caller),
                &CaseFilter {
                    status,
                    include_sealed: caller.can(Action::CaseReadSealed),
                },
                after,
                limit,
            )
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
        if legal_basis.is_empty() || legal_basis.chars().count() > 500 {
            return Err(HavenError::invalid_field(
                "legal_basis",
                "is required, at most 500 characters",
            )
            .into());
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
        self.ensure_visible(&context, scope, id).await?;
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
        let message = request.into_inner();
        let case_id = parse_id("case_id", &message.case_id)?;
        let kind = pb::AssessmentKind::try_from(message.kind)
            .ok()
            .and_then(AssessmentKind::from_proto)
            .ok_or_else(|| {
                HavenError::invalid_field("kind", "is required: individual, household or community")
            })?;
        if message.scores.is_empty() {
            return Err(HavenError::invalid_field("scores", "score at least one domain").into());
        }
        let mut scores = Vec::with_capacity(message.scores.len());
        for score in message.scores {
            let domain = pb::NeedDomain::try_from(score.domain)
                .ok()
                .and_then(NeedDomain::from_proto)
                .ok_or_else(|| HavenError::invalid_field("scores.domain", "unknown domain"))?;
            if scores.iter().any(|(seen, _)| *seen == domain) {
                return Err(HavenError::invalid_field(
                    "scores.domain",
                    "each domain is scored once",
                )
                .into());
            }
            let value = u8::try_from(score.score)
                .ok()
                .filter(|value| (1..=5).contains(value))
                .ok_or_else(|| {
                    HavenError::invalid_field(
                        "scores.score",
                        "must be 1 (critical) to 5 (fully met)",
                    )
                })?;
            scores.push((domain, value));
        }
        let now = time::OffsetDateTime::now_utc();
        let assessed_at = match message.assessed_at {
            None => now,
            Some(at) => haven_proto::from_timestamp(&at)
                .filter(|at| *at <= now + time::Duration::minutes(5))
                .ok_or_else(|| {
                    HavenError::invalid_field("assessed_at", "must be a time, not in the future")
                })?,
        };
        let scope = Scope::of(&context.principal);
        self.ensure_visible(&context, scope, case_id).await?;
        let assessment = self
            .store
            .add_assessment(&context, scope, case_id, kind, scores, assessed_at)
            .await?
            .ok_or_else(|| HavenError::not_found("case"))?;
        Ok(Response::new(pb::AddAssessmentResponse {
            assessment: Some(assessment.to_proto()),
        }))
    }

    async fn list_assessments(
        &self,
        request: Request<pb::ListAssessmentsRequest>,
    ) -> Result<Response<pb::ListAssessmentsResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::CaseRead)?;
        let case_id = parse_id("case_id", &request.get_ref().case_id)?;
        let scope = Scope::of(&context.principal);
        self.ensure_visible(&context, scope, case_id).await?;
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
}
