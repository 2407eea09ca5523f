//! gRPC health that follows the service's own database: NOT_SERVING while it is
//! unreachable, SERVING again once it answers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// How often the probe runs.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// A probe that takes longer than this counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

type Probe = dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync;

/// Whether the service can do its work, typically a database ping.
#[derive(Clone)]
pub struct Readiness(Arc<Probe>);

impl Readiness {
    /// A probe answering `true` when the service is ready.
    pub fn new<F, Fut>(probe: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        Self(Arc::new(move || Box::pin(probe())))
    }

    /// Ready while `database` answers a ping.
    pub fn database(database: haven_storage::Database) -> Self {
        Self::new(move || {
            let database = database.clone();
            async move { database.ping().await.is_ok() }
        })
    }

    async fn probe(&self) -> bool {
        tokio::time::timeout(PROBE_TIMEOUT, (self.0)())
            .await
            .unwrap_or(false)
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Readiness")
    }
}

/// Probes until `shutdown`, switching every name in `names` (and the server as a
/// whole) between SERVING and NOT_SERVING when the answer changes.
pub(crate) async fn follow(
    readiness: Readiness,
    reporter: HealthReporter,
    names: Vec<&'static str>,
    shutdown: CancellationToken,
) {
    let mut serving = true;
    let mut interval = tokio::time::interval(PROBE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let ready = readiness.probe().await;
        // Shutting down reports NOT_SERVING itself; never overwrite it.
        if ready == serving || shutdown.is_cancelled() {
            continue;
        }
        serving = ready;
        let status = if ready {
            tracing::info!(services = ?names, "database reachable again: serving");
            ServingStatus::Serving
        } else {
            tracing::warn!(services = ?names, "database unreachable: not serving");
            ServingStatus::NotServing
        };
        for name in names.iter().copied().chain([""]) {
            reporter.set_service_status(name, status).await;
        }
    }
}
