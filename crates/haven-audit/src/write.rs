//! Appending to the chain inside the caller's transaction.

use sqlx::{PgConnection, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::HavenError;
use haven_storage::{Database, WritePool, db_error};

use crate::entry::{AuditEntry, NewAuditEntry};
use crate::hash::AuditHash;
use crate::keys::Receipt;
use crate::validation;

/// Appending to `audit_log`, on a connection inside the caller's transaction:
/// `tx.append_audit(SERVICE, &entry)` with `tx` the transaction of the audited
/// operation, so the entry commits or rolls back with it.
///
/// Appends are serialised until commit so that sequences follow commit order without
/// gaps and each entry chains onto the one committed before it:
/// - SQLite: the transaction must come from [`WritePool::begin_write`]
///   (`BEGIN IMMEDIATE`). A deferred transaction is still safe (a competing writer
///   makes it fail) but may fail under load.
/// - Postgres: the append takes a transaction-scoped advisory lock keyed by
///   `audit:<service>` and holds it until commit, so append late in the transaction.
///   Use READ COMMITTED (the default): under REPEATABLE READ or SERIALIZABLE a
///   snapshot taken before the lock makes the append fail on a duplicate sequence.
#[async_trait::async_trait]
pub trait AuditWrite {
    /// Validates `entry`, chains it onto the last entry and inserts it; returns the
    /// [`Receipt`] of the stored entry, which opens the record's data key
    /// ([`AuditedKeys::open`](crate::AuditedKeys::open)). `service` names the writing
    /// service (it keys the Postgres lock). An invalid entry fails with
    /// [`sqlx::Error::InvalidArgument`]: fail the operation with it.
    async fn append_audit(
        &mut self,
        service: &str,
        entry: &NewAuditEntry,
    ) -> Result<Receipt, sqlx::Error>;
}

/// Appends `entry` in a transaction of its own, for an event that has no operation
/// to share a transaction with, such as a denied attempt. Audited operations use
/// [`AuditWrite::append_audit`] in their own transaction instead.
#[tracing::instrument(skip_all, fields(action = entry.action, record_id = %entry.record_id))]
pub async fn append(
    database: &Database,
    service: &str,
    entry: &NewAuditEntry,
) -> Result<AuditEntry, HavenError> {
    let appended = on_pool!(database, |pool| {
        let mut tx = pool.begin_write().await.map_err(db_error)?;
        let appended = tx.append_audit(service, entry).await.map_err(write_error)?;
        tx.commit().await.map_err(db_error)?;
        appended.into_entry()
    });
    Ok(appended)
}

/// An invalid entry is a bug in the calling service, not the client's fault.
fn write_error(error: sqlx::Error) -> HavenError {
    match error {
        sqlx::Error::InvalidArgument(_) => HavenError::internal(error),
        other => db_error(other),
    }
}

const SELECT_LAST: &str = "SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1";

const INSERT_ENTRY: &str = "INSERT INTO audit_log (sequence, entry_id, occurred_at, actor, \
    actor_kind, organization_id, action, record_type, record_id, purpose, request_id, \
    outcome, previous_hash, hash, via) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

/// Stable lock key per service, so services sharing one Postgres database do not
/// serialise each other, and distinct from the outbox's key for the same service.
fn lock_key(service: &str) -> i64 {
    // FNV-1a: stable across builds, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"audit:".iter().chain(service.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// The sequence and previous hash of the entry after `last` (the stored sequence and
/// hash of the current last entry, if any).
fn next_link(last: Option<(i64, Vec<u8>)>) -> Result<(i64, AuditHash), sqlx::Error> {
    let Some((sequence, hash)) = last else {
        return Ok((1, AuditHash::ZERO));
    };
    let hash = AuditHash::from_slice(&hash).ok_or_else(|| {
        sqlx::Error::Protocol(format!("audit entry {sequence} has a malformed hash"))
    })?;
    let next = sequence
        .checked_add(1)
        .ok_or_else(|| sqlx::Error::Protocol("the audit chain has no sequence left".to_owned()))?;
    Ok((next, hash))
}

/// Now, truncated to the microsecond both backends store, so the hash computed here
/// matches the value read back.
pub(crate) fn now_to_the_microsecond() -> Result<OffsetDateTime, sqlx::Error> {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

macro_rules! impl_audit_write {
    ($connection:ty, $lock:expr) => {
        #[async_trait::async_trait]
        impl AuditWrite for $connection {
            #[tracing::instrument(skip_all, fields(action = entry.action, record_id = %entry.record_id))]
            async fn append_audit(
                &mut self,
                service: &str,
                entry: &NewAuditEntry,
            ) -> Result<Receipt, sqlx::Error> {
                validation::check(entry)?;
                if let Some(lock) = $lock {
                    sqlx::query(lock).bind(lock_key(service)).execute(&mut *self).await?;
                }
                let last: Option<(i64, Vec<u8>)> =
                    sqlx::query_as(SELECT_LAST).fetch_optional(&mut *self).await?;
                let (sequence, previous_hash) = next_link(last)?;
                let mut appended = AuditEntry {
                    sequence,
                    entry_id: Uuid::now_v7(),
                    occurred_at: now_to_the_microsecond()?,
                    actor: entry.actor.clone(),
                    actor_kind: entry.actor_kind,
                    organization_id: entry.organization_id,
                    action: entry.action.to_owned(),
                    record_type: entry.record_type.to_owned(),
                    record_id: entry.record_id,
                    purpose: entry.purpose.clone(),
                    request_id: entry.request_id.clone(),
                    outcome: entry.outcome,
                    previous_hash,
                    hash: AuditHash::ZERO,
                    via: entry.via.clone(),
                };
                appended.hash = appended.computed_hash();
                sqlx::query(INSERT_ENTRY)
                    .bind(appended.sequence)
                    .bind(appended.entry_id)
                    .bind(appended.occurred_at)
                    .bind(&appended.actor)
                    .bind(appended.actor_kind.as_str())
                    .bind(appended.organization_id)
                    .bind(&appended.action)
                    .bind(&appended.record_type)
                    .bind(appended.record_id)
                    .bind(&appended.purpose)
                    .bind(&appended.request_id)
                    .bind(appended.outcome.map(|outcome| outcome.as_str()))
                    .bind(appended.previous_hash.as_bytes().as_slice())
                    .bind(appended.hash.as_bytes().as_slice())
                    .bind(appended.via.as_deref())
                    .execute(&mut *self)
                    .await?;
                Ok(Receipt::new(appended))
            }
        }
    };
}

// SQLite: the `BEGIN IMMEDIATE` write transaction already serialises writers.
impl_audit_write!(SqliteConnection, None::<&'static str>);
// Postgres: a transaction-scoped advisory lock serialises appends until commit, so
// the next append reads this entry as the last one and no sequence is skipped.
impl_audit_write!(PgConnection, Some("SELECT pg_advisory_xact_lock($1)"));

#[async_trait::async_trait]
impl AuditWrite for haven_storage::sql::Tx {
    async fn append_audit(
        &mut self,
        service: &str,
        entry: &NewAuditEntry,
    ) -> Result<Receipt, sqlx::Error> {
        match self {
            haven_storage::sql::Tx::Sqlite(tx) => tx.append_audit(service, entry).await,
            haven_storage::sql::Tx::Postgres(tx) => tx.append_audit(service, entry).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{lock_key, next_link};
    use crate::hash::AuditHash;

    #[test]
    fn lock_keys_are_stable_per_service_and_differ_from_the_outbox() {
        assert_eq!(lock_key("case"), lock_key("case"));
        assert_ne!(lock_key("case"), lock_key("intake"));
        // The outbox keys its lock with the bare service name.
        let mut outbox_key: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in b"case" {
            outbox_key ^= u64::from(*byte);
            outbox_key = outbox_key.wrapping_mul(0x0100_0000_01b3);
        }
        assert_ne!(
            lock_key("case"),
            i64::from_ne_bytes(outbox_key.to_ne_bytes())
        );
    }

    #[test]
    fn the_first_entry_starts_at_one_from_zero() {
        assert_eq!(next_link(None).ok(), Some((1, AuditHash::ZERO)));
        assert_eq!(
            next_link(Some((41, vec![9; 32]))).ok(),
            Some((42, AuditHash::from_bytes([9; 32])))
        );
        assert!(next_link(Some((41, vec![9; 31]))).is_err());
    }
}
