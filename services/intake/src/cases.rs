//! Opening cases in the case service, exactly once.
//!
//! Intake calls `OpenCase` right after the decision or consent that makes a person
//! eligible. The case service is idempotent on the screening id, so a retried call
//! returns the same case. If the call fails (case service down), the screening stays
//! eligible with no case, and [`reconcile`] retries until the case is opened: a lost
//! call never means a lost case. While the case service is unreachable, its retries
//! back off with jitter ([`RETRY_WHILE_UNREACHABLE`]) instead of calling it at a
//! fixed pace.

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
use haven_server::retry::{Backoff, is_transient, pause, retry};

use crate::domain::Screening;
use crate::store::ScreeningStore;

/// How often screenings still waiting for a case are looked for.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5);
/// Waits before another round while the case service (or intake's database) is
/// unreachable or busy: 1 s at first, doubling up to 10 s, each stretched at random by
/// up to as much again (so never more than 20 s).
pub const RETRY_WHILE_UNREACHABLE: Backoff =
    Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
/// Screenings handled in one round.
const ROUND_SIZE: u32 = 50;
/// Calls to the case service in a row failing transiently that end a round early.
const UNREACHABLE_AFTER: u32 = 3;
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

/// Opens the cases of screenings still waiting for one, every `every` until
/// `shutdown`. A round that meets a transient failure (the case service or the
/// database unreachable or busy) runs again after [`RETRY_WHILE_UNREACHABLE`]'s
/// backoff until it gets through; any other failure is logged and the screening
/// waits for the next round.
pub async fn reconcile(
    store: Arc<dyn ScreeningStore>,
    opener: CaseOpener,
    every: Duration,
    shutdown: CancellationToken,
) {
    while pause(every, &shutdown).await {
        let round = retry(
            RETRY_WHILE_UNREACHABLE,
            &shutdown,
            || open_waiting_cases(store.as_ref(), &opener),
            |error, wait| {
                tracing::warn!(code = %error.code(), message = error.message(),
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "cases not opened yet; retrying");
            },
        )
        .await;
        match round {
            None => return,
            Some(Ok(())) => {}
            Some(Err(error)) => {
                tracing::warn!(code = %error.code(), message = error.message(),
                    "cannot list screenings awaiting a case");
            }
        }
    }
}

/// One round: opens the case of every screening waiting for one. A failure that is
/// not transient is logged and the round goes on. A transient one fails the round
/// (to be run again) once every screening had its try, or as soon as
/// [`UNREACHABLE_AFTER`] calls in a row failed that way: the case service is away,
/// and the remaining calls would only wait for the same answer.
async fn open_waiting_cases(store: &dyn ScreeningStore, opener: &CaseOpener) -> HavenResult<()> {
    let waiting = store
        .awaiting_case(ROUND_SIZE, opener.when_presumed)
        .await?;
    let mut transient = None;
    let mut failed_in_a_row = 0;
    for screening in waiting {
        let id = screening.id;
        let case_id = match opener.open(&screening).await {
            Ok(case_id) => {
                failed_in_a_row = 0;
                case_id
            }
            Err(error) if is_transient(&error) => {
                failed_in_a_row += 1;
                if failed_in_a_row >= UNREACHABLE_AFTER {
                    return Err(error);
                }
                transient.get_or_insert(error);
                continue;
            }
            Err(error) => {
                tracing::warn!(screening_id = %id, code = %error.code(), message = error.message(),
                    "case service refused to open the case");
                continue;
            }
        };
        match store.link_case(id, case_id).await {
            Ok(_) => {}
            Err(error) if is_transient(&error) => {
                transient.get_or_insert(error);
            }
            Err(error) => {
                tracing::warn!(screening_id = %id, code = %error.code(), message = error.message(),
                    "case opened but not linked");
            }
        }
    }
    transient.map_or(Ok(()), Err)
}
