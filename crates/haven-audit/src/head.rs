//! The signed head: what catches truncation and rehashing.
//!
//! The chain's hashes are unkeyed, so someone with write access to the database can
//! delete the newest entries, or rewrite an entry and recompute every hash after it,
//! and leave a chain that verifies on its own. Each service therefore signs the head
//! of its chain — the last sequence, its hash and the time — with HMAC-SHA256 under
//! [`AuditHeadKey`], a key kept in the key directory ([`HEAD_KEY_FILE`]), never in the
//! database, and stores it in the one-row `audit_head` table ([`sign_head`], run by
//! [`crate::HeadSigner`] about once a second and at shutdown).
//!
//! The tag covers, each part length-prefixed after the key's own domain tag:
//! the service name (UTF-8), the sequence (8 bytes big-endian), the entry's hash
//! (32 bytes) and the signing time (16 bytes big-endian nanoseconds since 1970,
//! a whole number of microseconds). Naming the service keeps one database's head
//! from passing for another's.
//!
//! A head is only ever moved forward over entries that verify from the previous
//! signed head, so the signer never signs a chain that was tampered with behind it.
//! [`check_head`] then reports, with the key: a head whose tag does not verify
//! (forged, or rewritten without the key), a chain shorter than the signed sequence
//! (truncation), a different hash at the signed sequence (rewrite), and how many
//! entries are newer than the signed head (written since the last signing).
//!
//! What a signed head cannot show: someone who deletes the newest entries and puts
//! back an older head row that was validly signed then (a replay), or who empties
//! both tables, which then look like a database never used. The head's signing time
//! is reported so that an operator sees a head older than the services' activity.

use std::fmt;

use time::OffsetDateTime;

use haven_crypto::AuditHeadKey;
use haven_error::HavenError;
use haven_storage::{Database, WritePool, db_error};

use crate::hash::AuditHash;
use crate::report::VerifyReport;
use crate::verify::{is_decode_error, verify_after};
use crate::write::now_to_the_microsecond;

/// The head key's file name in the key directory (next to the master keyring).
pub const HEAD_KEY_FILE: &str = "audit-head.key";

/// A head as stored, with its tag checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHead {
    /// The sequence of the entry signed.
    pub sequence: i64,
    /// That entry's hash.
    pub hash: AuditHash,
    /// When it was signed.
    pub signed_at: OffsetDateTime,
}

/// What the stored head says about the chain, checked with the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadReport {
    /// The chain matches its signed head; `newer` entries were written after the
    /// head was signed (the signer catches up within about a second).
    Signed {
        /// The head.
        head: SignedHead,
        /// Entries after the signed one.
        newer: i64,
    },
    /// Neither entries nor a signed head: a chain never written to.
    Empty,
    /// Entries but no signed head: the head row was deleted, or no service has run
    /// since the entries were written.
    Unsigned {
        /// The last sequence stored.
        last_sequence: i64,
    },
    /// The head's tag does not verify under the key: the head was rewritten without
    /// the key (to match a truncated or rehashed chain), or the key is not the one
    /// the services use.
    Forged,
    /// The chain ends before the signed entry: its newest entries were deleted.
    Truncated {
        /// The head.
        head: SignedHead,
        /// The last sequence stored now (0 when none is left).
        last_sequence: i64,
    },
    /// The entry at the signed sequence no longer has the signed hash: it, or an
    /// entry before it, was rewritten and the chain rehashed.
    Rewritten {
        /// The head.
        head: SignedHead,
    },
}

impl HeadReport {
    /// Whether the chain matches a validly signed head (or is empty and unsigned).
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Signed { .. } | Self::Empty)
    }
}

impl fmt::Display for HeadReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Signed { head, newer } => write!(
                formatter,
                "signed head at entry {} (signed {}), {newer} newer entries not yet signed",
                head.sequence, head.signed_at
            ),
            Self::Empty => formatter.write_str("no entries and no signed head"),
            Self::Unsigned { last_sequence } => write!(
                formatter,
                "audit chain unsigned: {last_sequence} entries but no signed head — the head \
                 was deleted, or no service has run since the entries were written"
            ),
            Self::Forged => formatter.write_str(
                "audit head forged: its signature does not verify under the audit head key \
                 (rewritten without the key, or the key is not the services' key)",
            ),
            Self::Truncated {
                head,
                last_sequence,
            } => write!(
                formatter,
                "audit chain truncated: signed up to entry {} (signed {}) but it ends at \
                 entry {last_sequence} — the newest entries were deleted",
                head.sequence, head.signed_at
            ),
            Self::Rewritten { head } => write!(
                formatter,
                "audit chain rewritten: entry {} no longer has the hash signed {} ({}) — \
                 entries up to it were changed and the chain rehashed",
                head.sequence, head.signed_at, head.hash
            ),
        }
    }
}

/// What one signing pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOutcome {
    /// The head now names this entry.
    Signed(SignedHead),
    /// Nothing new since the signed head (or no entries at all).
    Unchanged,
    /// Not signed: the stored head does not verify, or the entries after it do not
    /// continue the chain from it. Signing would bless the tampering.
    Refused(Refusal),
}

/// Why the signer refused to move the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The stored head's tag does not verify.
    Forged,
    /// The entries after the signed head do not verify from it.
    Chain(VerifyReport),
}

impl fmt::Display for Refusal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forged => HeadReport::Forged.fmt(formatter),
            Self::Chain(report) => report.fmt(formatter),
        }
    }
}

/// Signs the newest entry of `service`'s chain, after verifying every entry since
/// the previous signed head. `Err` only when the database cannot be read or written.
#[tracing::instrument(skip_all, fields(service = %service))]
pub async fn sign_head(
    database: &Database,
    service: &str,
    key: &AuditHeadKey,
) -> Result<SignOutcome, HavenError> {
    let (after, after_hash) = match read_head(database, service, key).await? {
        StoredHead::None => (0, AuditHash::ZERO),
        StoredHead::Invalid => return Ok(SignOutcome::Refused(Refusal::Forged)),
        StoredHead::Valid(head) => (head.sequence, head.hash),
    };
    let (entries, hash) = match verify_after(database, after, after_hash).await? {
        VerifyReport::Ok { entries, head_hash } => (entries, head_hash),
        broken => return Ok(SignOutcome::Refused(Refusal::Chain(broken))),
    };
    if entries == 0 {
        return Ok(SignOutcome::Unchanged);
    }
    let sequence = i64::try_from(entries)
        .ok()
        .and_then(|entries| after.checked_add(entries))
        .ok_or_else(|| HavenError::internal(SequenceOverflow))?;
    let head = SignedHead {
        sequence,
        hash,
        signed_at: now_to_the_microsecond().map_err(db_error)?,
    };
    let tag = tag(key, service, &head);
    on_pool!(database, |pool| {
        let mut tx = pool.begin_write().await.map_err(db_error)?;
        sqlx::query(UPSERT_HEAD)
            .bind(head.sequence)
            .bind(head.hash.as_bytes().as_slice())
            .bind(head.signed_at)
            .bind(tag.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
    });
    Ok(SignOutcome::Signed(head))
}

/// Checks the chain against its signed head. Read the head before walking the chain
/// (as [`crate::verify_signed`] does): entries are signed only once committed, so a
/// head read first never names an entry the walk cannot see.
#[tracing::instrument(skip_all, fields(service = %service))]
pub async fn check_head(
    database: &Database,
    service: &str,
    key: &AuditHeadKey,
) -> Result<HeadReport, HavenError> {
    let stored = read_head(database, service, key).await?;
    compare(database, stored).await
}

/// The head read before the chain was walked, compared with the chain now.
pub(crate) async fn compare(
    database: &Database,
    stored: StoredHead,
) -> Result<HeadReport, HavenError> {
    let last_sequence = last_sequence(database).await?;
    let head = match stored {
        StoredHead::Invalid => return Ok(HeadReport::Forged),
        StoredHead::None if last_sequence == 0 => return Ok(HeadReport::Empty),
        StoredHead::None => return Ok(HeadReport::Unsigned { last_sequence }),
        StoredHead::Valid(head) => head,
    };
    let stored_hash = match hash_at(database, head.sequence).await {
        Ok(stored_hash) => stored_hash,
        Err(error) if is_decode_error(&error) => return Ok(HeadReport::Rewritten { head }),
        Err(error) => return Err(db_error(error)),
    };
    Ok(match stored_hash {
        None if last_sequence < head.sequence => HeadReport::Truncated {
            head,
            last_sequence,
        },
        // Entry missing with later ones present: the chain walk names the gap.
        None => HeadReport::Rewritten { head },
        Some(stored_hash) if stored_hash.as_slice() != head.hash.as_bytes() => {
            HeadReport::Rewritten { head }
        }
        Some(_) => HeadReport::Signed {
            head,
            newer: last_sequence.saturating_sub(head.sequence),
        },
    })
}

/// The head row, read and its tag checked.
#[derive(Debug)]
pub(crate) enum StoredHead {
    /// No row.
    None,
    /// A row whose tag does not verify, or that cannot be read.
    Invalid,
    /// A validly signed head.
    Valid(SignedHead),
}

/// Reads the head row and checks its tag.
pub(crate) async fn read_head(
    database: &Database,
    service: &str,
    key: &AuditHeadKey,
) -> Result<StoredHead, HavenError> {
    const SQL: &str = "SELECT sequence, hash, signed_at, tag FROM audit_head WHERE id = 1";
    let row: Result<Option<HeadRow>, sqlx::Error> = on_pool!(database, |pool| sqlx::query_as(SQL)
        .fetch_optional(pool)
        .await);
    let (sequence, hash, signed_at, stored_tag) = match row {
        Ok(Some(row)) => row,
        Ok(None) => return Ok(StoredHead::None),
        Err(error) if is_decode_error(&error) => return Ok(StoredHead::Invalid),
        Err(error) => return Err(db_error(error)),
    };
    let Some(hash) = AuditHash::from_slice(&hash) else {
        return Ok(StoredHead::Invalid);
    };
    let head = SignedHead {
        sequence,
        hash,
        signed_at,
    };
    let parts = tagged_parts(service, &head);
    let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    if key.verify(&parts, &stored_tag) {
        Ok(StoredHead::Valid(head))
    } else {
        Ok(StoredHead::Invalid)
    }
}

/// The head row as stored: sequence, hash, signing time, tag.
type HeadRow = (i64, Vec<u8>, OffsetDateTime, Vec<u8>);

/// Moves the head forward only: of two signers racing (replicas), the one that
/// signed the later entry wins.
const UPSERT_HEAD: &str = "INSERT INTO audit_head (id, sequence, hash, signed_at, tag) \
    VALUES (1, $1, $2, $3, $4) \
    ON CONFLICT (id) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash, \
    signed_at = excluded.signed_at, tag = excluded.tag \
    WHERE audit_head.sequence < excluded.sequence";

fn tag(key: &AuditHeadKey, service: &str, head: &SignedHead) -> [u8; 32] {
    let parts = tagged_parts(service, head);
    let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    key.tag(&parts)
}

/// The parts the tag covers (see the [module docs](self)).
fn tagged_parts(service: &str, head: &SignedHead) -> [Vec<u8>; 4] {
    [
        service.as_bytes().to_vec(),
        head.sequence.to_be_bytes().to_vec(),
        head.hash.as_bytes().to_vec(),
        head.signed_at.unix_timestamp_nanos().to_be_bytes().to_vec(),
    ]
}

async fn last_sequence(database: &Database) -> Result<i64, HavenError> {
    const SQL: &str = "SELECT COALESCE(MAX(sequence), 0) FROM audit_log";
    let last: i64 = on_pool!(database, |pool| sqlx::query_scalar(SQL)
        .fetch_one(pool)
        .await)
    .map_err(db_error)?;
    Ok(last.max(0))
}

async fn hash_at(database: &Database, sequence: i64) -> Result<Option<Vec<u8>>, sqlx::Error> {
    const SQL: &str = "SELECT hash FROM audit_log WHERE sequence = $1";
    on_pool!(database, |pool| sqlx::query_scalar(SQL)
        .bind(sequence)
        .fetch_optional(pool)
        .await)
}

/// A chain that ran out of 64-bit sequences.
#[derive(Debug)]
struct SequenceOverflow;

impl fmt::Display for SequenceOverflow {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("the audit head sequence overflows")
    }
}

impl std::error::Error for SequenceOverflow {}
