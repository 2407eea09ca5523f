//! Writing events and checkpoints inside a service's own transactions.

use haven_storage::sql::Tx;
use sqlx::{PgConnection, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

/// A domain event about to be written. The payload must not carry personal data.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Dotted type, e.g. `case.opened`.
    pub event_type: &'static str,
    /// The aggregate the event is about.
    pub aggregate_id: Uuid,
    /// The organisation owning the aggregate.
    pub organization_id: Uuid,
    /// Categorical facts and ids only.
    pub payload: serde_json::Value,
}

/// Appending to the outbox, on a connection inside the caller's transaction.
#[async_trait::async_trait]
pub trait OutboxWrite {
    /// Appends `event`; returns its sequence. `source` names the emitting service and
    /// keys the Postgres advisory lock that orders concurrent writers. An event whose
    /// type or payload field is missing from [`crate::fields::EVENT_FIELDS`] is
    /// refused, so nothing unclassified reaches a feed.
    async fn append_event(&mut self, source: &str, event: &NewEvent) -> Result<i64, sqlx::Error>;

    /// Empties the payload of every event already written about `aggregate_ids`
    /// (erasure): the sequence, type, ids and time stay so followers' positions and
    /// counts hold, but a replay can no longer rebuild what the events said. Returns
    /// how many events were redacted.
    async fn redact_events(&mut self, aggregate_ids: &[Uuid]) -> Result<u64, sqlx::Error>;
}

/// The payload an erased event keeps.
pub const REDACTED_PAYLOAD: &str = r#"{"redacted":true}"#;

/// Whether a payload read from a feed was redacted by erasure.
pub fn is_redacted(payload: &serde_json::Value) -> bool {
    payload.get("redacted") == Some(&serde_json::Value::Bool(true))
}

/// Advancing a consumer's checkpoint, on a connection inside the transaction that
/// applies the event.
#[async_trait::async_trait]
pub trait CheckpointWrite {
    /// Moves the checkpoint of `source` to `sequence` if it is behind. Returns false
    /// when the event was already applied: the caller must then skip it.
    async fn advance_checkpoint(
        &mut self,
        source: &str,
        sequence: i64,
    ) -> Result<bool, sqlx::Error>;

    /// The last applied sequence of `source` (0 if none).
    async fn checkpoint(&mut self, source: &str) -> Result<i64, sqlx::Error>;
}

const INSERT_EVENT: &str = "INSERT INTO outbox_events \
    (sequence, event_id, event_type, aggregate_id, organization_id, payload, occurred_at, trace_id) \
    VALUES ((SELECT COALESCE(MAX(sequence), 0) + 1 FROM outbox_events), $1, $2, $3, $4, $5, $6, $7) \
    RETURNING sequence";

/// Stable lock key per source, so services sharing one Postgres database do not
/// serialise each other.
fn lock_key(source: &str) -> i64 {
    // FNV-1a: stable across builds, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in source.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Refuses an event the field table does not fully classify.
fn refuse_unclassified(event: &NewEvent) -> Result<(), sqlx::Error> {
    let missing = crate::fields::unclassified(event.event_type, &event.payload);
    if missing.is_empty() {
        return Ok(());
    }
    Err(sqlx::Error::Encode(
        format!(
            "event not in the field classification: {}",
            missing.join(", ")
        )
        .into(),
    ))
}

macro_rules! impl_outbox {
    ($connection:ty, $lock:expr) => {
        #[async_trait::async_trait]
        impl OutboxWrite for $connection {
            async fn append_event(&mut self, source: &str, event: &NewEvent) -> Result<i64, sqlx::Error> {
                refuse_unclassified(event)?;
                if let Some(lock) = $lock {
                    sqlx::query(lock).bind(lock_key(source)).execute(&mut *self).await?;
                }
                let trace_id = haven_telemetry::current_trace_id().unwrap_or_default();
                let (sequence,): (i64,) = sqlx::query_as(INSERT_EVENT)
                    .bind(Uuid::new_v4())
                    .bind(event.event_type)
                    .bind(event.aggregate_id)
                    .bind(event.organization_id)
                    .bind(event.payload.to_string())
                    .bind(OffsetDateTime::now_utc())
                    .bind(trace_id)
                    .fetch_one(&mut *self)
                    .await?;
                Ok(sequence)
            }

            async fn redact_events(&mut self, aggregate_ids: &[Uuid]) -> Result<u64, sqlx::Error> {
                let mut redacted = 0;
                for aggregate_id in aggregate_ids {
                    redacted += sqlx::query("UPDATE outbox_events SET payload = $1 WHERE aggregate_id = $2 AND payload <> $1")
                        .bind(REDACTED_PAYLOAD)
                        .bind(aggregate_id)
                        .execute(&mut *self)
                        .await?
                        .rows_affected();
                }
                Ok(redacted)
            }
        }

        #[async_trait::async_trait]
        impl CheckpointWrite for $connection {
            async fn advance_checkpoint(&mut self, source: &str, sequence: i64) -> Result<bool, sqlx::Error> {
                sqlx::query("INSERT INTO event_checkpoints (source, sequence) VALUES ($1, 0) ON CONFLICT (source) DO NOTHING")
                    .bind(source)
                    .execute(&mut *self)
                    .await?;
                let advanced = sqlx::query("UPDATE event_checkpoints SET sequence = $2 WHERE source = $1 AND sequence < $2")
                    .bind(source)
                    .bind(sequence)
                    .execute(&mut *self)
                    .await?;
                Ok(advanced.rows_affected() == 1)
            }

            async fn checkpoint(&mut self, source: &str) -> Result<i64, sqlx::Error> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT sequence FROM event_checkpoints WHERE source = $1")
                    .bind(source)
                    .fetch_optional(&mut *self)
                    .await?;
                Ok(row.map_or(0, |(sequence,)| sequence))
            }
        }
    };
}

// SQLite: the `BEGIN IMMEDIATE` write transaction already serialises writers.
impl_outbox!(SqliteConnection, None::<&'static str>);
// Postgres: a transaction-scoped advisory lock serialises outbox writers until commit,
// so a reader never sees sequence N+1 committed before N.
impl_outbox!(PgConnection, Some("SELECT pg_advisory_xact_lock($1)"));

#[async_trait::async_trait]
impl OutboxWrite for Tx {
    async fn append_event(&mut self, source: &str, event: &NewEvent) -> Result<i64, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.append_event(source, event).await,
            Tx::Postgres(tx) => tx.append_event(source, event).await,
        }
    }

    async fn redact_events(&mut self, aggregate_ids: &[Uuid]) -> Result<u64, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.redact_events(aggregate_ids).await,
            Tx::Postgres(tx) => tx.redact_events(aggregate_ids).await,
        }
    }
}

#[async_trait::async_trait]
impl CheckpointWrite for Tx {
    async fn advance_checkpoint(
        &mut self,
        source: &str,
        sequence: i64,
    ) -> Result<bool, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.advance_checkpoint(source, sequence).await,
            Tx::Postgres(tx) => tx.advance_checkpoint(source, sequence).await,
        }
    }

    async fn checkpoint(&mut self, source: &str) -> Result<i64, sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.checkpoint(source).await,
            Tx::Postgres(tx) => tx.checkpoint(source).await,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(super::lock_key("case"), super::lock_key("case"));
        assert_ne!(super::lock_key("case"), super::lock_key("intake"));
    }
}
