//! Opening cases in the case service, exactly once.
//!
//! Intake calls `OpenCase` right after the decision or consent that makes a person
//! eligible. The case service is idempotent on the screening id, so a retried call
//! returns the same case. If the call fails (case service down), the screening stays
//! eligible with no case, and [`reconcile`] retries until the case is opened: a lost
//! call never means a lost case.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

use haven_auth::grpc::ServiceIdentity;
use haven_auth::keys::ServiceTokens;
use haven_error::{HavenError, HavenResult};
use haven_proto::case::v1::OpenCaseRequest;
use haven_proto::case::v1::case_service_client::CaseServiceClient;

use crate::domain::Screening;
use crate::store::ScreeningStore;

/// How often screenings still waiting for a case are retried.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Client of the case service, calling as the intake service.
#[derive(Debug, Clone)]
pub struct CaseOpener {
    client: CaseServiceClient<InterceptedService<Channel, ServiceIdentity>>,
    /// Open cases already for presumed victims (deployment setting).
    when_presumed: bool,
}

impl CaseOpener {
    /// A client for `endpoint`; connects lazily, so intake starts even when the case
    /// service is not up yet.
    pub fn new(
        settings: &haven_config::Settings,
        tokens: Arc<ServiceTokens>,
    ) -> anyhow::Result<Self> {
        let channel = haven_server::client_endpoint(&settings.case.endpoint, settings)
            .map_err(|error| anyhow::anyhow!("case.endpoint: {error:#}"))?
            .connect_timeout(Duration::from_secs(3))
            .connect_lazy();
        Ok(Self {
            client: CaseServiceClient::with_interceptor(channel, ServiceIdentity::new(tokens)),
            when_presumed: settings.intake.open_case_when_presumed,
        })
    }

    /// Opens (or finds) the case of a screening; returns its id.
    pub async fn open(&self, screening: &Screening) -> HavenResult<Uuid> {
        let mut request = tonic::Request::new(OpenCaseRequest {
            screening_id: screening.id.to_string(),
            organization_id: screening.organization_id.to_string(),
            person_id: screening
                .person_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        });
        request.set_timeout(CALL_TIMEOUT);
        haven_telemetry::inject_trace_context(request.metadata_mut());
        let response = self.client.clone().open_case(request).await?.into_inner();
        let case = response.case.ok_or_else(|| {
            HavenError::internal(std::io::Error::other("OpenCase answered without a case"))
        })?;
        Uuid::parse_str(&case.id).map_err(HavenError::internal)
    }
}

/// If the screening needs a case, opens it and links it. Failures are logged and left
/// to [`reconcile`]; the screening is returned as it now stands.
pub async fn open_if_due(
    store: &dyn ScreeningStore,
    opener: &CaseOpener,
    screening: Screening,
) -> Screening {
    if !screening.needs_case(opener.when_presumed) {
        return screening;
    }
    let opened = match opener.open(&screening).await {
        Ok(case_id) => store.link_case(screening.id, case_id).await,
        Err(error) => Err(error),
    };
    match opened {
        // The link comes back without the screening's texts; the caller's copy keeps
        // those it was allowed to open.
        Ok(linked) => Screening {
            case_id: linked.case_id,
            version: linked.version,
            ..screening
        },
        Err(error) => {
            tracing::warn!(screening_id = %screening.id, code = %error.code(), message = error.message(),
                "case not opened yet; will retry");
            screening
        }
    }
}

/// Retries screenings that need a case until `shutdown`.
pub async fn reconcile(
    store: Arc<dyn ScreeningStore>,
    opener: CaseOpener,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
        let waiting = match store.awaiting_case(50, opener.when_presumed).await {
            Ok(waiting) => waiting,
            Err(error) => {
                tracing::warn!(code = %error.code(), "cannot list screenings awaiting a case");
                continue;
            }
        };
        for screening in waiting {
            open_if_due(store.as_ref(), &opener, screening).await;
        }
    }
}
