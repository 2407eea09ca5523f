//! The referral service follows intake's feed: it learns which person each screening
//! records, destroys the data keys of an erased person's referrals, and a withdrawn
//! data-sharing consent revokes every open referral of the screening (and frees their
//! places).

use uuid::Uuid;

use haven_audit::AuditContext;
use haven_error::{HavenError, HavenResult};
use haven_events::{CheckpointWrite, EventSink};
use haven_proto::common::v1::Event;
use haven_storage::sql::{self, Tx};
use haven_storage::{Database, db_error};

use super::rows::corrupt;
use super::{Directory, StatusChange, referrals};
use crate::domain::ReferralStatus;

const INSERT_SCREENING_PERSON: &str = "INSERT INTO screening_persons (screening_id, person_id) VALUES ($1, $2) \
     ON CONFLICT (screening_id) DO NOTHING";
const SHRED_KEYS: &str = "UPDATE referrals SET data_key = NULL, shredded = TRUE \
     WHERE screening_id IN (SELECT screening_id FROM screening_persons WHERE person_id = $1)";
const SELECT_REPLAYED_UNTIL: &str = "SELECT until FROM feed_replays WHERE source = $1";
const SELECT_OPEN: &str = "SELECT id FROM referrals WHERE screening_id = $1 \
     AND status IN ('requested', 'accepted', 'in_progress')";

#[async_trait::async_trait]
impl EventSink for Directory {
    async fn checkpoint(&self, source: &str) -> HavenResult<i64> {
        // Read on a connection of its own, outside any transaction.
        match &self.database {
            Database::Sqlite(pool) => {
                let mut connection = pool.acquire().await.map_err(db_error)?;
                CheckpointWrite::checkpoint(&mut *connection, source).await
            }
            Database::Postgres(pool) => {
                let mut connection = pool.acquire().await.map_err(db_error)?;
                CheckpointWrite::checkpoint(&mut *connection, source).await
            }
        }
        .map_err(db_error)
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
        if event.event_type == "screening.created" {
            let payload: serde_json::Value =
                serde_json::from_str(&event.payload_json).map_err(HavenError::internal)?;
            if let Some((screening_id, person_id)) = screening_person(event, &payload)? {
                sql::query(INSERT_SCREENING_PERSON)
                    .bind(screening_id)
                    .bind(person_id)
                    .execute(&mut tx)
                    .await?;
            }
        }
        if event.event_type == "person.erased" {
            // The person's referrals keep their workflow; their texts become
            // unreadable with the rest of the person's data.
            let person_id = Uuid::parse_str(&event.aggregate_id).map_err(HavenError::internal)?;
            let shredded = sql::query(SHRED_KEYS)
                .bind(person_id)
                .execute(&mut tx)
                .await?;
            tracing::info!(person_id = %person_id, referrals = shredded, "referral data keys destroyed after erasure");
        }
        // Events read again after an upgrade were applied before: they only teach
        // which person a screening records.
        let replayed_until: Option<i64> = sql::query_scalar(SELECT_REPLAYED_UNTIL)
            .bind(&event.source)
            .fetch_optional(&mut tx)
            .await?;
        if replayed_until.is_some_and(|until| sequence <= until) {
            tx.commit().await?;
            return Ok(());
        }
        if event.event_type == "screening.consent_recorded" {
            let payload: serde_json::Value =
                serde_json::from_str(&event.payload_json).map_err(HavenError::internal)?;
            let withdrawn = payload["purpose"] == "data_sharing" && payload["given"] == false;
            if withdrawn {
                let screening_id =
                    Uuid::parse_str(&event.aggregate_id).map_err(HavenError::internal)?;
                revoke_open_referrals(self, &mut tx, event, screening_id).await?;
            }
        }
        tx.commit().await?;
        self.signal.notify();
        if event.event_type == "person.erased" {
            // No copy of the destroyed keys may stay in the database files
            // (forget_deleted logs when it cannot clear them).
            let _ = self.forget_deleted().await;
        }
        Ok(())
    }
}

/// Revokes every open referral of the screening whose data-sharing consent `event`
/// withdrew, as the referral service itself.
async fn revoke_open_referrals(
    directory: &Directory,
    tx: &mut Tx,
    event: &Event,
    screening_id: Uuid,
) -> HavenResult<()> {
    let open: Vec<Uuid> = sql::query_scalar(SELECT_OPEN)
        .bind(screening_id)
        .fetch_all(&mut *tx)
        .await?;
    let context = AuditContext {
        principal: haven_auth::Principal {
            subject: "service:referral".into(),
            organization_id: Uuid::nil(),
            roles: vec![haven_auth::Role::Service],
            kind: haven_auth::PrincipalKind::Service,
        },
        purpose: "consent_withdrawn".into(),
        request_id: format!("event-{}-{}", event.source, event.sequence),
        on_behalf_of: None,
    };
    let change = StatusChange {
        to: ReferralStatus::Revoked,
        reason: "the person withdrew consent to sharing their data".into(),
        outcome: String::new(),
    };
    for id in open {
        let referral = referrals::sealed_referral(tx, id)
            .await?
            .ok_or_else(|| corrupt("referral"))?;
        let next = referrals::apply_change(directory, tx, &referral.referral, &change).await?;
        referrals::record(tx, &context, &next.referral, "referral.revoked").await?;
    }
    Ok(())
}

/// The screening and person a `screening.created` event records, if it names one.
fn screening_person(
    event: &Event,
    payload: &serde_json::Value,
) -> HavenResult<Option<(Uuid, Uuid)>> {
    let Some(person) = payload.get("person_id").and_then(serde_json::Value::as_str) else {
        return Ok(None);
    };
    let person_id = Uuid::parse_str(person).map_err(HavenError::internal)?;
    let screening_id = Uuid::parse_str(&event.aggregate_id).map_err(HavenError::internal)?;
    Ok(Some((screening_id, person_id)))
}
