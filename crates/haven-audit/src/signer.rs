//! The background task that keeps a service's head signed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use haven_crypto::{AuditHeadKey, CryptoError};
use haven_storage::Database;

use crate::head::{HEAD_KEY_FILE, Refusal, SignOutcome, sign_head};

/// How often the head is signed: entries newer than the head are at most about this
/// old (plus the time to verify them).
pub const SIGN_EVERY: Duration = Duration::from_secs(1);

/// Signs the head of one service's chain every [`SIGN_EVERY`] and once more after
/// the service has drained ([`HeadSigner::finish`]). Every service whose database
/// holds an audit log runs one from its `serve`.
#[derive(Debug)]
pub struct HeadSigner {
    database: Database,
    service: &'static str,
    key: Arc<AuditHeadKey>,
    task: JoinHandle<()>,
}

impl HeadSigner {
    /// Loads (or, on first start, creates) the head key in `keys_dir` and starts
    /// signing until `shutdown`.
    pub fn start(
        database: Database,
        service: &'static str,
        keys_dir: &Path,
        shutdown: CancellationToken,
    ) -> Result<Self, CryptoError> {
        let key = Arc::new(AuditHeadKey::load_or_create(&keys_dir.join(HEAD_KEY_FILE))?);
        let task = tokio::spawn(run(database.clone(), service, key.clone(), shutdown));
        Ok(Self {
            database,
            service,
            key,
            task,
        })
    }

    /// Waits for the task to stop, then signs the entries written while the service
    /// drained. Call after the server has stopped, before closing the database.
    pub async fn finish(self) {
        let _ = self.task.await;
        let mut last_refusal = None;
        sign_logged(&self.database, self.service, &self.key, &mut last_refusal).await;
    }
}

async fn run(
    database: Database,
    service: &'static str,
    key: Arc<AuditHeadKey>,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(SIGN_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_refusal = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        sign_logged(&database, service, &key, &mut last_refusal).await;
    }
}

/// One signing pass; a refusal is logged once until it changes, so a tampered chain
/// does not flood the log every second.
async fn sign_logged(
    database: &Database,
    service: &str,
    key: &AuditHeadKey,
    last_refusal: &mut Option<Refusal>,
) {
    match sign_head(database, service, key).await {
        Ok(SignOutcome::Refused(refusal)) => {
            if last_refusal.as_ref() != Some(&refusal) {
                tracing::error!(service, problem = %refusal, "audit head not signed: the chain does not verify from the signed head");
                *last_refusal = Some(refusal);
            }
        }
        Ok(SignOutcome::Signed(_) | SignOutcome::Unchanged) => *last_refusal = None,
        Err(error) => {
            tracing::warn!(service, error = %format!("{error:#}"), "audit head not signed");
        }
    }
}
