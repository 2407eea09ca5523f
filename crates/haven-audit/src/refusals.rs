//! Denied and not-found calls, recorded without letting them flood the trail.
//!
//! A caller probing other organisations' ids gets `404`s, and before this left no
//! trace. [`RefusalRecorder`] counts refused calls in memory per actor, organisation,
//! method and outcome, and once per [`WINDOW`] writes **one** audit entry per such
//! key (outcome `denied` or `not_found`, record type `probe`, the first request id of
//! the window) and one warn log line with the count. However many probes arrive, the
//! trail grows by at most one entry per key and window, so the recorder cannot be
//! turned into a way to fill the database. What is counted but not yet written when
//! the process dies is lost (at most one window).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use haven_auth::grpc::{RefusalSink, RefusedCall};
use haven_auth::{Principal, PrincipalKind};
use haven_storage::Database;

use crate::entry::{ActorKind, NewAuditEntry, Outcome};

/// How often counted refusals are written.
pub const WINDOW: Duration = Duration::from_secs(5);
/// Keys counted in one window at most; beyond it, refusals are only counted in the
/// log line (a caller cycling through subjects cannot grow memory without bound).
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    actor: String,
    kind: PrincipalKind,
    organization_id: Uuid,
    method: String,
    not_found: bool,
}

#[derive(Debug)]
struct Tally {
    count: u64,
    first_request_id: String,
}

/// Counts refused calls and writes them to the service's audit trail once per window.
#[derive(Debug)]
pub struct RefusalRecorder {
    service: &'static str,
    counts: Mutex<HashMap<Key, Tally>>,
    overflow: Mutex<u64>,
}

impl RefusalRecorder {
    /// Starts the recorder of `service`'s `database`; it writes until `shutdown`,
    /// and once more then.
    pub fn start(
        database: Database,
        service: &'static str,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let recorder = Arc::new(Self {
            service,
            counts: Mutex::new(HashMap::new()),
            overflow: Mutex::new(0),
        });
        let writer = recorder.clone();
        tokio::spawn(async move {
            loop {
                let stopping = tokio::select! {
                    () = tokio::time::sleep(WINDOW) => false,
                    () = shutdown.cancelled() => true,
                };
                writer.flush(&database).await;
                if stopping {
                    return;
                }
            }
        });
        recorder
    }

    /// Writes what was counted since the last flush: one entry per key.
    pub async fn flush(&self, database: &Database) {
        let counted: Vec<(Key, Tally)> = match self.counts.lock() {
            Ok(mut counts) => counts.drain().collect(),
            Err(_) => return,
        };
        let overflow = self
            .overflow
            .lock()
            .map(|mut overflow| std::mem::take(&mut *overflow))
            .unwrap_or_default();
        if overflow > 0 {
            tracing::warn!(
                service = self.service,
                count = overflow,
                "refused calls beyond the recorder's keys"
            );
        }
        for (key, tally) in counted {
            tracing::warn!(
                service = self.service,
                actor = %key.actor,
                organization_id = %key.organization_id,
                method = %key.method,
                outcome = if key.not_found { "not_found" } else { "denied" },
                count = tally.count,
                "refused calls"
            );
            let entry = NewAuditEntry {
                actor: key.actor.clone(),
                actor_kind: ActorKind::from(key.kind),
                organization_id: key.organization_id,
                action: action_of(&key.method),
                record_type: "probe",
                record_id: Uuid::nil(),
                purpose: "refused".to_owned(),
                request_id: tally.first_request_id,
                outcome: Some(if key.not_found {
                    Outcome::NotFound
                } else {
                    Outcome::Denied
                }),
                via: None,
            };
            if let Err(error) = crate::write::append(database, self.service, &entry).await {
                tracing::warn!(service = self.service, %error, "cannot record refused calls");
            }
        }
    }
}

impl RefusalSink for RefusalRecorder {
    fn record(&self, call: RefusedCall) {
        let Principal {
            subject,
            organization_id,
            kind,
            ..
        } = call.principal;
        let key = Key {
            actor: subject,
            kind,
            organization_id,
            method: call.method,
            not_found: call.not_found,
        };
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        if let Some(tally) = counts.get_mut(&key) {
            tally.count += 1;
        } else if counts.len() < MAX_KEYS {
            counts.insert(
                key,
                Tally {
                    count: 1,
                    first_request_id: call.request_id,
                },
            );
        } else if let Ok(mut overflow) = self.overflow.lock() {
            *overflow += 1;
        }
    }
}

/// The audit action of a refused call to `method`
/// (`/haven.intake.v1.IntakeService/GetScreening` → `intake.get_screening.refused`),
/// interned: there are as many as there are Haven methods.
fn action_of(method: &str) -> &'static str {
    static ACTIONS: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let Ok(mut actions) = ACTIONS.get_or_init(Default::default).lock() else {
        return "call.refused";
    };
    if let Some(action) = actions.get(method) {
        return action;
    }
    let service = method
        .trim_start_matches('/')
        .split('.')
        .nth(1)
        .filter(|part| part.chars().all(|c| c.is_ascii_lowercase()))
        .unwrap_or("call");
    let name = method.rsplit('/').next().unwrap_or_default();
    let mut snake = String::new();
    for character in name.chars() {
        if character.is_ascii_uppercase() {
            if !snake.is_empty() {
                snake.push('_');
            }
            snake.push(character.to_ascii_lowercase());
        } else if character.is_ascii_lowercase() || character.is_ascii_digit() {
            snake.push(character);
        }
    }
    if snake.is_empty() || actions.len() > 1_000 {
        return "call.refused";
    }
    let action: &'static str = Box::leak(format!("{service}.{snake}.refused").into_boxed_str());
    actions.insert(method.to_owned(), action);
    action
}

#[cfg(test)]
mod tests {
    #[test]
    fn actions_name_the_service_and_the_method() {
        assert_eq!(
            super::action_of("/haven.intake.v1.IntakeService/GetScreening"),
            "intake.get_screening.refused"
        );
        assert_eq!(
            super::action_of("/haven.case.v1.CaseService/ListPlans"),
            "case.list_plans.refused"
        );
    }
}
