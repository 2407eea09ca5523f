//! `Idempotency-Key` kept by the service that owns the write, in the write's own
//! transaction, so a retry finds the first result whatever died in between.
//!
//! Each service has an `idempotency_keys` table (its own migration; columns below).
//! A create that carries a key claims it first thing in its write transaction with
//! [`claim`]:
//!
//! - no row yet: the row is inserted pointing at the id the create is about to
//!   write; it commits with the write or rolls back with it, so a key never outlives
//!   a create that did not happen, and never points at one that did not commit;
//! - a row with the same request fingerprint: [`Claim::Replay`] with the id the first
//!   request created; the create writes nothing and answers with that record;
//! - a row with another fingerprint: `422`.
//!
//! Two identical requests at once: on Postgres the second insert waits on the first
//! transaction's key (`ON CONFLICT DO NOTHING`) and, once it commits, reads it back
//! and replays it; if it rolled back, the second request runs. On SQLite writers are
//! serialised by `BEGIN IMMEDIATE`. Neither ever creates a second record.
//!
//! Keys are scoped to the caller (organisation and subject). Only hashes are kept:
//! the key's (the client typed it and could have put anything in it) and the
//! request's, never the request or the response. Keys are kept as long as the
//! record, so a retry days later still finds the first result.

use haven_error::{ErrorCode, HavenError};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::sql::{self, DbResult, Tx};

/// Longest key accepted.
pub const MAX_KEY_CHARS: usize = 128;

/// What a client must send as a key, for problems.
pub const KEY_RULE: &str = "must be 1 to 128 printable ASCII characters";

/// A client's key for one create, bound to the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// `sha256:<hex>` of the key the client chose.
    pub key: String,
    /// SHA-256 of the operation and the request without the key.
    pub request_hash: Vec<u8>,
}

impl IdempotencyKey {
    /// The key a client sent (`""`: none) with request `operation` (e.g.
    /// `payment.record`, so two operations never share a fingerprint), whose encoded
    /// form without the key is `request`. `field` names the key in a refusal.
    pub fn from_request(
        field: &str,
        operation: &str,
        key: &str,
        request: &[u8],
    ) -> Result<Option<Self>, HavenError> {
        if key.is_empty() {
            return Ok(None);
        }
        if !is_valid_key(key) {
            return Err(HavenError::invalid_field(field, KEY_RULE));
        }
        let key_hash: String = Sha256::digest(key.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let request_hash = Sha256::new()
            .chain_update(operation.as_bytes())
            .chain_update([0])
            .chain_update(request)
            .finalize()
            .to_vec();
        Ok(Some(Self {
            key: format!("sha256:{key_hash}"),
            request_hash,
        }))
    }
}

/// Whether `key` is 1 to [`MAX_KEY_CHARS`] printable ASCII characters (space
/// included).
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_CHARS
        && key.bytes().all(|byte| matches!(byte, b' '..=b'~'))
}

/// A key with the caller it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerKey {
    /// The caller's organisation.
    pub organization_id: Uuid,
    /// The caller (token subject).
    pub subject: String,
    /// The key and its request.
    pub key: IdempotencyKey,
}

impl CallerKey {
    /// `key` (if any) of the caller `subject` of `organization_id`.
    pub fn of(organization_id: Uuid, subject: &str, key: Option<IdempotencyKey>) -> Option<Self> {
        key.map(|key| Self {
            organization_id,
            subject: subject.to_owned(),
            key,
        })
    }
}

impl CallerKey {
    /// The key a caller sent in the `idempotency_key` field of a gRPC request (`""`:
    /// none), taken out of `message` so the request is fingerprinted without it.
    /// `operation` names the create (e.g. `payment.record`).
    pub fn from_message<M: prost::Message>(
        organization_id: Uuid,
        subject: &str,
        operation: &str,
        message: &mut M,
        key_field: impl FnOnce(&mut M) -> &mut String,
    ) -> Result<Option<Self>, HavenError> {
        let key = std::mem::take(key_field(message));
        let key = IdempotencyKey::from_request(
            "idempotency_key",
            operation,
            &key,
            &message.encode_to_vec(),
        )?;
        Ok(Self::of(organization_id, subject, key))
    }
}

/// What [`claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The create runs (no key, or the key is now claimed in this transaction).
    Run,
    /// An earlier request with this key and request created the record with this id:
    /// answer with it, write nothing.
    Replay(String),
}

impl Claim {
    /// The id to answer with on a replay.
    pub fn replayed(&self) -> Option<&str> {
        match self {
            Self::Run => None,
            Self::Replay(record_id) => Some(record_id),
        }
    }
}

/// A create's answer: the record, and whether an earlier request with the same key
/// created it.
#[derive(Debug, Clone, PartialEq)]
pub struct Created<T> {
    /// The record (as it stands now on a replay).
    pub record: T,
    /// `true` when nothing was written: the record is the one the first request made.
    pub replayed: bool,
}

impl<T> Created<T> {
    /// A record this request created.
    pub fn new(record: T) -> Self {
        Self {
            record,
            replayed: false,
        }
    }

    /// A record an earlier request created.
    pub fn replay(record: T) -> Self {
        Self {
            record,
            replayed: true,
        }
    }
}

/// Claims `once` (if any) for the record `record_id` the create is about to write,
/// in the create's write transaction `tx` (a [`Tx`]; a store still on sqlx
/// transactions passes its connection, `&mut *tx`). Call it before any other write of
/// the transaction, so a concurrent duplicate waits here holding nothing.
pub async fn claim<C>(
    tx: &mut C,
    once: Option<&CallerKey>,
    record_id: &str,
) -> Result<Claim, HavenError>
where
    C: KeyRows + Send,
{
    let Some(once) = once else {
        return Ok(Claim::Run);
    };
    if let Some(earlier) = tx.earlier_key(once).await? {
        return same_request(once, earlier);
    }
    let now = OffsetDateTime::now_utc();
    if tx.insert_key(once, record_id, now).await? {
        return Ok(Claim::Run);
    }
    // A concurrent request with this key committed first (this insert waited for it):
    // read committed, so this statement sees its row.
    match tx.earlier_key(once).await? {
        Some(earlier) => same_request(once, earlier),
        None => Err(in_progress()),
    }
}

/// Whether `once` was already used: the id of the record the first request created
/// (`422` if with another request), without claiming anything. For the checks a
/// create makes before its transaction (is the case still open?): a retry of a
/// create that succeeded gets its record even if they would now refuse it.
pub async fn earlier<C>(tx: &mut C, once: &CallerKey) -> Result<Option<String>, HavenError>
where
    C: KeyRows + Send,
{
    match tx.earlier_key(once).await? {
        Some(earlier) => Ok(same_request(once, earlier)?.replayed().map(str::to_owned)),
        None => Ok(None),
    }
}

/// The stored row of a key: its request fingerprint and record id.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EarlierKey {
    /// Fingerprint of the first request.
    pub request_hash: Vec<u8>,
    /// Id of what it created.
    pub record_id: String,
}

fn same_request(once: &CallerKey, earlier: EarlierKey) -> Result<Claim, HavenError> {
    if earlier.request_hash != once.key.request_hash {
        return Err(HavenError::new(
            ErrorCode::Unprocessable,
            "this Idempotency-Key was used with a different request",
        ));
    }
    Ok(Claim::Replay(earlier.record_id))
}

/// 409: should the first request's key vanish between the insert and the read
/// (it rolled back just then), the client retries.
fn in_progress() -> HavenError {
    HavenError::new(
        ErrorCode::Conflict,
        "a request with this Idempotency-Key is in progress; retry",
    )
}

/// The rows of `idempotency_keys`, read and written inside a create's transaction.
#[async_trait::async_trait]
pub trait KeyRows {
    /// The row of `once`, if any.
    async fn earlier_key(&mut self, once: &CallerKey) -> DbResult<Option<EarlierKey>>;
    /// Inserts the row of `once`; `false` if a row for the key already exists.
    async fn insert_key(
        &mut self,
        once: &CallerKey,
        record_id: &str,
        now: OffsetDateTime,
    ) -> DbResult<bool>;
}

const SELECT_KEY: &str = "SELECT request_hash, record_id FROM idempotency_keys \
    WHERE organization_id = $1 AND subject = $2 AND key = $3";
const INSERT_KEY: &str = "INSERT INTO idempotency_keys \
    (organization_id, subject, key, request_hash, record_id, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";

#[async_trait::async_trait]
impl KeyRows for Tx {
    async fn earlier_key(&mut self, once: &CallerKey) -> DbResult<Option<EarlierKey>> {
        sql::query_as(SELECT_KEY)
            .bind(once.organization_id)
            .bind(&once.subject)
            .bind(&once.key.key)
            .fetch_optional(self)
            .await
    }

    async fn insert_key(
        &mut self,
        once: &CallerKey,
        record_id: &str,
        now: OffsetDateTime,
    ) -> DbResult<bool> {
        let inserted = sql::query(INSERT_KEY)
            .bind(once.organization_id)
            .bind(&once.subject)
            .bind(&once.key.key)
            .bind(&once.key.request_hash)
            .bind(record_id)
            .bind(now)
            .execute(self)
            .await?;
        Ok(inserted == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_and_hashed_with_their_operation() {
        assert_eq!(
            IdempotencyKey::from_request("k", "a", "", b"{}").unwrap(),
            None
        );
        for invalid in ["tab\there", "clé", &"k".repeat(MAX_KEY_CHARS + 1)] {
            assert!(IdempotencyKey::from_request("k", "a", invalid, b"{}").is_err());
        }
        let key = |operation: &str, request: &[u8]| {
            IdempotencyKey::from_request("k", operation, "order 42 ~!", request)
                .unwrap()
                .unwrap()
        };
        let base = key("payment.record", b"one");
        assert!(base.key.starts_with("sha256:"));
        assert!(!base.key.contains("order"));
        assert_eq!(base, key("payment.record", b"one"));
        assert_ne!(
            base.request_hash,
            key("payment.record", b"two").request_hash
        );
        assert_ne!(base.request_hash, key("service.add", b"one").request_hash);
    }
}
