//! Idempotency records: one storage trait, one implementation per backend (shared
//! SQL), and one behaviour suite run against both.
//!
//! A record is claimed with a single upsert, so two requests racing for one key
//! cannot both win on either backend: the loser reads the winner's record.

use std::sync::Arc;

use haven_error::{HavenError, HavenResult};
use haven_storage::{Database, db_error};
use sqlx::FromRow;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

/// A claim that finds a record, then finds it gone (its owner released it in
/// between), tries again this many times before answering "in progress".
const CLAIM_ATTEMPTS: usize = 3;

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

/// Whose key, and the key: the primary key of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordKey {
    /// Organisation of the caller (`org` claim).
    pub(crate) organization_id: Uuid,
    /// The caller (`sub` claim).
    pub(crate) subject: String,
    /// The `Idempotency-Key` header, already validated.
    pub(crate) key: String,
}

/// A request that wants to run under a key.
#[derive(Debug, Clone)]
pub(crate) struct NewClaim {
    /// The record's primary key.
    pub(crate) key: RecordKey,
    /// HTTP method.
    pub(crate) method: String,
    /// Matched route template, e.g. `/v1/screenings/{id}/consents`.
    pub(crate) route: String,
    /// SHA-256 of method, path and body; the request itself is never stored.
    pub(crate) request_hash: Vec<u8>,
    /// When the claim is made.
    pub(crate) now: OffsetDateTime,
    /// Records created before this have expired: they count as absent.
    pub(crate) expired_before: OffsetDateTime,
    /// Records still in progress that were created before this belong to a request
    /// that can no longer be running (the gateway stopped mid-request): taken over.
    pub(crate) abandoned_before: OffsetDateTime,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The key is this request's: run it, then complete or release the record with
    /// this claim id.
    Claimed {
        /// Identifies this claim, so a request that was taken over cannot overwrite
        /// or delete its successor's record.
        claim_id: Uuid,
    },
    /// The same request already completed: answer with its response.
    Completed(StoredResponse),
    /// The same request is still running.
    InProgress,
    /// The key was used with a different request.
    DifferentRequest,
}

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredResponse {
    /// HTTP status.
    pub(crate) status: u16,
    /// `Content-Type`.
    pub(crate) content_type: Option<String>,
    /// `Location`.
    pub(crate) location: Option<String>,
    /// `ETag`.
    pub(crate) etag: Option<String>,
    /// The body, as sent.
    pub(crate) body: Vec<u8>,
}

/// Persistence of idempotency records.
#[async_trait::async_trait]
pub(crate) trait IdempotencyStore: Send + Sync + std::fmt::Debug {
    /// Claims `claim.key` for a request, or reports what holds it.
    async fn claim(&self, claim: &NewClaim) -> HavenResult<Claim>;
    /// Stores the response of a claimed request; `false` if the claim was lost
    /// (taken over or released) and nothing was stored.
    async fn complete(
        &self,
        key: &RecordKey,
        claim_id: Uuid,
        response: &StoredResponse,
    ) -> HavenResult<bool>;
    /// Deletes a claimed record that is still in progress, so the key can be used
    /// again; `false` if there was nothing of this claim to delete.
    async fn release(&self, key: &RecordKey, claim_id: Uuid) -> HavenResult<bool>;
    /// Deletes at most `limit` records created before `created_before`; returns how
    /// many.
    async fn purge(&self, created_before: OffsetDateTime, limit: u32) -> HavenResult<u64>;
}

/// The store for a database.
pub(crate) fn open(database: &Database) -> Arc<dyn IdempotencyStore> {
    match database {
        Database::Sqlite(pool) => Arc::new(SqliteIdempotencyStore { pool: pool.clone() }),
        Database::Postgres(pool) => Arc::new(PostgresIdempotencyStore { pool: pool.clone() }),
    }
}

/// SQLite keeps timestamps as RFC 3339 text: at whole seconds in UTC every value has
/// the same shape, so comparing the text compares the times.
fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_nanosecond(0).unwrap_or(at)
}

#[derive(Debug, FromRow)]
struct RecordRow {
    request_hash: Vec<u8>,
    state: String,
    status: Option<i32>,
    content_type: Option<String>,
    location: Option<String>,
    etag: Option<String>,
    response_body: Option<Vec<u8>>,
}

impl RecordRow {
    /// What a claim for a request hashing to `request_hash` finds in this record.
    fn claim_for(self, request_hash: &[u8]) -> HavenResult<Claim> {
        if self.request_hash != request_hash {
            return Ok(Claim::DifferentRequest);
        }
        match (self.state.as_str(), self.status, self.response_body) {
            (IN_PROGRESS, _, _) => Ok(Claim::InProgress),
            (COMPLETED, Some(status), Some(body)) => {
                let status = u16::try_from(status).map_err(|_| corrupt_record())?;
                Ok(Claim::Completed(StoredResponse {
                    status,
                    content_type: self.content_type,
                    location: self.location,
                    etag: self.etag,
                    body,
                }))
            }
            _ => Err(corrupt_record()),
        }
    }
}

fn corrupt_record() -> HavenError {
    HavenError::internal(std::io::Error::other(
        "stored idempotency record is inconsistent",
    ))
}

// Inserts a new record, or takes over an expired or abandoned one; touches nothing
// (0 rows) when a live record holds the key.
const CLAIM: &str = "INSERT INTO idempotency_records \
    (organization_id, subject, idempotency_key, claim_id, method, route, request_hash, state, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, 'in_progress', $8) \
    ON CONFLICT (organization_id, subject, idempotency_key) DO UPDATE SET \
    claim_id = excluded.claim_id, method = excluded.method, route = excluded.route, \
    request_hash = excluded.request_hash, state = 'in_progress', status = NULL, \
    content_type = NULL, location = NULL, etag = NULL, response_body = NULL, \
    created_at = excluded.created_at \
    WHERE idempotency_records.created_at < $9 \
    OR (idempotency_records.state = 'in_progress' AND idempotency_records.created_at < $10)";
const SELECT: &str = "SELECT request_hash, state, status, content_type, location, etag, response_body \
    FROM idempotency_records \
    WHERE organization_id = $1 AND subject = $2 AND idempotency_key = $3";
const COMPLETE: &str = "UPDATE idempotency_records SET state = 'completed', status = $5, \
    content_type = $6, location = $7, etag = $8, response_body = $9 \
    WHERE organization_id = $1 AND subject = $2 AND idempotency_key = $3 AND claim_id = $4 \
    AND state = 'in_progress'";
const RELEASE: &str = "DELETE FROM idempotency_records \
    WHERE organization_id = $1 AND subject = $2 AND idempotency_key = $3 AND claim_id = $4 \
    AND state = 'in_progress'";
// Bounded: a backlog of expired records is worked off a batch at a time.
const PURGE: &str = "DELETE FROM idempotency_records \
    WHERE (organization_id, subject, idempotency_key) IN ( \
    SELECT organization_id, subject, idempotency_key FROM idempotency_records \
    WHERE created_at < $1 LIMIT $2)";

macro_rules! idempotency_store {
    ($name:ident, $pool:ty) => {
        /// Idempotency records on one backend.
        #[derive(Debug)]
        pub(crate) struct $name {
            pool: $pool,
        }

        #[async_trait::async_trait]
        impl IdempotencyStore for $name {
            #[tracing::instrument(name = "idempotency.claim", skip_all, fields(route = %claim.route))]
            async fn claim(&self, claim: &NewClaim) -> HavenResult<Claim> {
                let key = &claim.key;
                for _ in 0..CLAIM_ATTEMPTS {
                    let claim_id = Uuid::new_v4();
                    let inserted = sqlx::query(CLAIM)
                        .bind(key.organization_id)
                        .bind(&key.subject)
                        .bind(&key.key)
                        .bind(claim_id)
                        .bind(&claim.method)
                        .bind(&claim.route)
                        .bind(&claim.request_hash)
                        .bind(whole_seconds(claim.now))
                        .bind(whole_seconds(claim.expired_before))
                        .bind(whole_seconds(claim.abandoned_before))
                        .execute(&self.pool)
                        .await
                        .map_err(db_error)?;
                    if inserted.rows_affected() == 1 {
                        return Ok(Claim::Claimed { claim_id });
                    }
                    let existing: Option<RecordRow> = sqlx::query_as(SELECT)
                        .bind(key.organization_id)
                        .bind(&key.subject)
                        .bind(&key.key)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_error)?;
                    if let Some(existing) = existing {
                        return existing.claim_for(&claim.request_hash);
                    }
                }
                // Claimed and released over and over: someone is busy with this key.
                Ok(Claim::InProgress)
            }

            #[tracing::instrument(name = "idempotency.complete", skip_all, fields(status = response.status))]
            async fn complete(
                &self,
                key: &RecordKey,
                claim_id: Uuid,
                response: &StoredResponse,
            ) -> HavenResult<bool> {
                let updated = sqlx::query(COMPLETE)
                    .bind(key.organization_id)
                    .bind(&key.subject)
                    .bind(&key.key)
                    .bind(claim_id)
                    .bind(i32::from(response.status))
                    .bind(&response.content_type)
                    .bind(&response.location)
                    .bind(&response.etag)
                    .bind(&response.body)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(updated.rows_affected() == 1)
            }

            #[tracing::instrument(name = "idempotency.release", skip_all)]
            async fn release(&self, key: &RecordKey, claim_id: Uuid) -> HavenResult<bool> {
                let deleted = sqlx::query(RELEASE)
                    .bind(key.organization_id)
                    .bind(&key.subject)
                    .bind(&key.key)
                    .bind(claim_id)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(deleted.rows_affected() == 1)
            }

            #[tracing::instrument(name = "idempotency.purge", skip_all)]
            async fn purge(&self, created_before: OffsetDateTime, limit: u32) -> HavenResult<u64> {
                let deleted = sqlx::query(PURGE)
                    .bind(whole_seconds(created_before))
                    .bind(i64::from(limit))
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(deleted.rows_affected())
            }
        }
    };
}

idempotency_store!(SqliteIdempotencyStore, SqlitePool);
idempotency_store!(PostgresIdempotencyStore, PgPool);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use haven_config::Settings;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(24 * 3600);

    async fn store_for(settings: &Settings) -> Arc<dyn IdempotencyStore> {
        let database = crate::connect(settings).await.unwrap();
        open(&database)
    }

    fn key(subject: &str, key: &str) -> RecordKey {
        RecordKey {
            organization_id: Uuid::from_u128(7),
            subject: subject.to_owned(),
            key: key.to_owned(),
        }
    }

    /// A claim at `now` for a request whose hash is `hash` repeated.
    fn claim_at(key: RecordKey, hash: u8, now: OffsetDateTime) -> NewClaim {
        NewClaim {
            key,
            method: "POST".to_owned(),
            route: "/v1/screenings".to_owned(),
            request_hash: vec![hash; 32],
            now,
            expired_before: now - DAY,
            abandoned_before: now - HOUR,
        }
    }

    fn created() -> StoredResponse {
        StoredResponse {
            status: 201,
            content_type: Some("application/json".to_owned()),
            location: Some("/v1/screenings/1".to_owned()),
            etag: Some("\"1\"".to_owned()),
            body: br#"{"id":"1"}"#.to_vec(),
        }
    }

    async fn claimed(store: &Arc<dyn IdempotencyStore>, claim: &NewClaim) -> Uuid {
        match store.claim(claim).await.unwrap() {
            Claim::Claimed { claim_id } => claim_id,
            other => panic!("expected a claim, got {other:?}"),
        }
    }

    async fn a_claim_is_in_progress_until_completed_then_replayed(
        store: Arc<dyn IdempotencyStore>,
    ) {
        let now = OffsetDateTime::now_utc();
        let first = claim_at(key("user-1", "k1"), 1, now);
        let claim_id = claimed(&store, &first).await;
        assert_eq!(store.claim(&first).await.unwrap(), Claim::InProgress);
        assert!(
            store
                .complete(&first.key, claim_id, &created())
                .await
                .unwrap()
        );
        assert_eq!(
            store.claim(&first).await.unwrap(),
            Claim::Completed(created())
        );
        // Completed records are not released.
        assert!(!store.release(&first.key, claim_id).await.unwrap());
        assert_eq!(
            store.claim(&first).await.unwrap(),
            Claim::Completed(created())
        );
    }

    async fn a_key_used_with_another_request_is_refused(store: Arc<dyn IdempotencyStore>) {
        let now = OffsetDateTime::now_utc();
        let first = claim_at(key("user-1", "k1"), 1, now);
        let other = claim_at(key("user-1", "k1"), 2, now);
        let claim_id = claimed(&store, &first).await;
        assert_eq!(store.claim(&other).await.unwrap(), Claim::DifferentRequest);
        store
            .complete(&first.key, claim_id, &created())
            .await
            .unwrap();
        assert_eq!(store.claim(&other).await.unwrap(), Claim::DifferentRequest);
    }

    async fn keys_belong_to_one_caller_of_one_organization(store: Arc<dyn IdempotencyStore>) {
        let now = OffsetDateTime::now_utc();
        let mine = claim_at(key("user-1", "k1"), 1, now);
        claimed(&store, &mine).await;
        let colleague = claim_at(key("user-2", "k1"), 2, now);
        claimed(&store, &colleague).await;
        let mut elsewhere = claim_at(key("user-1", "k1"), 3, now);
        elsewhere.key.organization_id = Uuid::from_u128(8);
        claimed(&store, &elsewhere).await;
    }

    async fn a_released_key_can_be_claimed_again_and_only_by_its_claim(
        store: Arc<dyn IdempotencyStore>,
    ) {
        let now = OffsetDateTime::now_utc();
        let first = claim_at(key("user-1", "k1"), 1, now);
        let claim_id = claimed(&store, &first).await;
        assert!(!store.release(&first.key, Uuid::new_v4()).await.unwrap());
        assert!(
            !store
                .complete(&first.key, Uuid::new_v4(), &created())
                .await
                .unwrap()
        );
        assert_eq!(store.claim(&first).await.unwrap(), Claim::InProgress);
        assert!(store.release(&first.key, claim_id).await.unwrap());
        let again = claimed(&store, &first).await;
        assert_ne!(again, claim_id);
    }

    async fn expired_records_count_as_absent_and_are_purged_in_batches(
        store: Arc<dyn IdempotencyStore>,
    ) {
        let long_ago = OffsetDateTime::now_utc() - DAY - HOUR;
        for name in ["k1", "k2", "k3"] {
            let old = claim_at(key("user-1", name), 1, long_ago);
            let claim_id = claimed(&store, &old).await;
            store
                .complete(&old.key, claim_id, &created())
                .await
                .unwrap();
        }
        let now = OffsetDateTime::now_utc();
        // Another request under an expired key is simply new.
        let fresh = claim_at(key("user-1", "k1"), 2, now);
        let claim_id = claimed(&store, &fresh).await;
        assert_eq!(store.claim(&fresh).await.unwrap(), Claim::InProgress);
        store
            .complete(&fresh.key, claim_id, &created())
            .await
            .unwrap();
        // k2 and k3 are left to purge, one batch at a time; k1 is fresh again.
        assert_eq!(store.purge(now - DAY, 1).await.unwrap(), 1);
        assert_eq!(store.purge(now - DAY, 10).await.unwrap(), 1);
        assert_eq!(store.purge(now - DAY, 10).await.unwrap(), 0);
        assert_eq!(
            store.claim(&fresh).await.unwrap(),
            Claim::Completed(created())
        );
    }

    async fn an_abandoned_claim_is_taken_over_and_loses_its_record(
        store: Arc<dyn IdempotencyStore>,
    ) {
        let earlier = OffsetDateTime::now_utc() - 2 * HOUR;
        let stranded = claim_at(key("user-1", "k1"), 1, earlier);
        let stranded_id = claimed(&store, &stranded).await;
        let retry = claim_at(key("user-1", "k1"), 1, OffsetDateTime::now_utc());
        let retry_id = claimed(&store, &retry).await;
        // The stranded request can neither store its answer nor delete the retry's.
        assert!(
            !store
                .complete(&retry.key, stranded_id, &created())
                .await
                .unwrap()
        );
        assert!(!store.release(&retry.key, stranded_id).await.unwrap());
        assert!(
            store
                .complete(&retry.key, retry_id, &created())
                .await
                .unwrap()
        );
        // A completed record is never taken over before it expires.
        let much_later = claim_at(key("user-1", "k1"), 1, OffsetDateTime::now_utc() + HOUR);
        assert_eq!(
            store.claim(&much_later).await.unwrap(),
            Claim::Completed(created())
        );
    }

    haven_storage::backend_suite! {
        setup = store_for;
        a_claim_is_in_progress_until_completed_then_replayed,
        a_key_used_with_another_request_is_refused,
        keys_belong_to_one_caller_of_one_organization,
        a_released_key_can_be_claimed_again_and_only_by_its_claim,
        expired_records_count_as_absent_and_are_purged_in_batches,
        an_abandoned_claim_is_taken_over_and_loses_its_record,
    }
}
