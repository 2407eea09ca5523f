//! The services a referral needs: case (which case, whose, its screening) and intake
//! (consent at the time of use, and the few fields a referral discloses).

use std::sync::Arc;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::grpc::ServiceIdentity;
use haven_auth::keys::ServiceTokens;
use haven_error::{HavenError, HavenResult};
use haven_proto::case::v1::case_service_client::CaseServiceClient;
use haven_proto::case::v1::{CaseStatus, GetCaseRequest};
use haven_proto::intake::v1::ShareForReferralRequest;
use haven_proto::intake::v1::intake_service_client::IntakeServiceClient;

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What a referral needs to know of a case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseFacts {
    /// Its code.
    pub code: String,
    /// Its owner.
    pub organization_id: Uuid,
    /// Its screening.
    pub screening_id: Uuid,
    /// Closed cases are not referred.
    pub open: bool,
}

/// Clients of case and intake, calling as the referral service.
#[derive(Debug, Clone)]
pub struct Peers {
    cases: CaseServiceClient<InterceptedService<Channel, ServiceIdentity>>,
    intake: IntakeServiceClient<InterceptedService<Channel, ServiceIdentity>>,
}

fn lazy(settings: &haven_config::Settings, url: &str, key: &str) -> anyhow::Result<Channel> {
    Ok(haven_server::client_endpoint(url, settings)
        .map_err(|error| anyhow::anyhow!("{key}: {error:#}"))?
        .connect_timeout(Duration::from_secs(3))
        .connect_lazy())
}

impl Peers {
    /// Clients connecting lazily, so referral starts before the others are up.
    pub fn new(
        settings: &haven_config::Settings,
        tokens: Arc<ServiceTokens>,
    ) -> anyhow::Result<Self> {
        let cases = lazy(settings, &settings.case.endpoint, "case.endpoint")?;
        let intake = lazy(settings, &settings.intake.endpoint, "intake.endpoint")?;
        Ok(Self {
            cases: CaseServiceClient::with_interceptor(cases, ServiceIdentity::new(tokens.clone())),
            intake: IntakeServiceClient::with_interceptor(intake, ServiceIdentity::new(tokens)),
        })
    }

    /// The case, or `None` if it does not exist (or is sealed). Case's audit trail
    /// records the user of `context` as the reader.
    pub async fn case(&self, context: &AuditContext, id: Uuid) -> HavenResult<Option<CaseFacts>> {
        let mut request = tonic::Request::new(GetCaseRequest { id: id.to_string() });
        request.set_timeout(CALL_TIMEOUT);
        context.forward(&mut request)?;
        haven_telemetry::inject_trace_context(request.metadata_mut());
        let case = match self.cases.clone().get_case(request).await {
            Ok(response) => response.into_inner().case,
            Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
            Err(status) => return Err(HavenError::unavailable("case service", status)),
        };
        let case = case.ok_or_else(|| {
            HavenError::internal(std::io::Error::other("GetCase answered without a case"))
        })?;
        let open = !matches!(
            CaseStatus::try_from(case.status),
            Ok(CaseStatus::Closed | CaseStatus::ClosedReferred)
        );
        Ok(Some(CaseFacts {
            code: case.code,
            organization_id: Uuid::parse_str(&case.organization_id)
                .map_err(HavenError::internal)?,
            screening_id: Uuid::parse_str(&case.screening_id).map_err(HavenError::internal)?,
            open,
        }))
    }

    /// Checks the data-sharing consent for an organisation type and returns the named
    /// fields (none when `fields` is empty). A refusal comes back as intake's error
    /// (`FailedPrecondition` with the reason). Intake's audit trail records the user
    /// of `context` (the receiving organisation's reader) as the one who read them.
    pub async fn share(
        &self,
        context: &AuditContext,
        screening_id: Uuid,
        organization_type: &str,
        receiving_organization_id: Uuid,
        fields: &[String],
    ) -> HavenResult<Vec<(String, String)>> {
        let mut request = tonic::Request::new(ShareForReferralRequest {
            screening_id: screening_id.to_string(),
            organization_type: organization_type.to_owned(),
            fields: fields.to_vec(),
            receiving_organization_id: receiving_organization_id.to_string(),
        });
        request.set_timeout(CALL_TIMEOUT);
        context.forward(&mut request)?;
        haven_telemetry::inject_trace_context(request.metadata_mut());
        match self.intake.clone().share_for_referral(request).await {
            Ok(response) => Ok(response
                .into_inner()
                .fields
                .into_iter()
                .map(|field| (field.name, field.value))
                .collect()),
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::FailedPrecondition
                        | tonic::Code::NotFound
                        | tonic::Code::InvalidArgument
                ) =>
            {
                Err(HavenError::from_status(&status))
            }
            Err(status) => Err(HavenError::unavailable("intake service", status)),
        }
    }
}
