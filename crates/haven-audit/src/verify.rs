//! Walking the whole chain, oldest first, in batches.
//!
//! Each entry is checked in this order, and the first failure is reported:
//! 1. its sequence follows the previous one (else entries are missing, or misplaced),
//! 2. its `previous_hash` is the previous entry's hash (else reordered, or wrong
//!    start for the first entry),
//! 3. its stored hash matches its contents (else altered).
//!
//! What the chain alone cannot show: the hash is unkeyed, so someone who deletes
//! the newest entries, or rewrites an entry and recomputes every hash after it,
//! leaves a chain that verifies. Both are caught against the head the services sign
//! under a key the database does not hold: [`verify_signed`] (see [`crate::head`]).
//! A head hash recorded elsewhere can still be checked with [`verify_against`].

use uuid::Uuid;

use haven_error::HavenError;
use haven_storage::{Database, db_error};

use haven_crypto::AuditHeadKey;

use crate::hash::{self, AuditHash};
use crate::head::{HeadReport, compare, read_head};
use crate::report::{BreakReason, VerifyReport};
use crate::row::{AuditRow, COLUMNS};

/// Entries read per query: bounds memory however long the chain is.
const BATCH: i64 = 1_000;

/// Whether `database` carries an audit trail (the `audit_log` table, in the
/// service's own schema on Postgres). `haven audit verify` asks every service's
/// database, so a service that keeps a trail cannot be left out of verification.
#[tracing::instrument(skip_all, fields(backend = database.backend_name()))]
pub async fn holds_audit_log(database: &Database) -> Result<bool, HavenError> {
    const SQLITE: &str =
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'";
    const POSTGRES: &str = "SELECT COUNT(*) FROM information_schema.tables \
        WHERE table_schema = current_schema() AND table_name = 'audit_log'";
    let tables: i64 = match database {
        Database::Sqlite(pool) => sqlx::query_scalar(SQLITE).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_scalar(POSTGRES).fetch_one(pool).await,
    }
    .map_err(db_error)?;
    Ok(tables > 0)
}

/// Verifies the whole chain. `Err` only when the database cannot be read; a damaged
/// chain is an `Ok` [`VerifyReport::Broken`] naming the first broken link.
#[tracing::instrument(skip_all, fields(backend = database.backend_name()))]
pub async fn verify(database: &Database) -> Result<VerifyReport, HavenError> {
    walk(database, None).await
}

/// Verifies the whole chain and that it still holds `recorded_head`, the head hash of
/// an earlier [`VerifyReport::Ok`] kept outside the database. Reports
/// [`VerifyReport::HeadMissing`] when the chain is intact but that entry is gone.
#[tracing::instrument(skip_all, fields(backend = database.backend_name()))]
pub async fn verify_against(
    database: &Database,
    recorded_head: AuditHash,
) -> Result<VerifyReport, HavenError> {
    walk(database, Some(recorded_head)).await
}

/// The chain checked on its own and against its signed head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReport {
    /// The chain's links.
    pub chain: VerifyReport,
    /// The chain against its signed head.
    pub head: HeadReport,
}

impl SignedReport {
    /// Whether the chain is intact and matches a validly signed head.
    pub fn is_ok(&self) -> bool {
        self.chain.is_ok() && self.head.is_ok()
    }
}

/// Verifies the whole chain of `service` and checks it against the head signed
/// under `key`: a truncated or rehashed chain is reported as broken even though
/// its links hold. `Err` only when the database cannot be read.
#[tracing::instrument(skip_all, fields(service = %service, backend = database.backend_name()))]
pub async fn verify_signed(
    database: &Database,
    service: &str,
    key: &AuditHeadKey,
) -> Result<SignedReport, HavenError> {
    // The head first: it only ever names committed entries, so the walk sees them.
    let stored = read_head(database, service, key).await?;
    let chain = walk(database, None).await?;
    let head = compare(database, stored).await?;
    Ok(SignedReport { chain, head })
}

async fn walk(
    database: &Database,
    recorded_head: Option<AuditHash>,
) -> Result<VerifyReport, HavenError> {
    // Below any valid sequence, so a tampered first entry with sequence ≤ 0 is seen.
    walk_from(database, Chain::new(recorded_head), i64::MIN).await
}

/// Verifies the entries after `sequence`, whose stored hash is `hash` (an entry
/// already verified, such as a signed head): they must continue the chain from it.
/// The report counts only those entries.
pub(crate) async fn verify_after(
    database: &Database,
    sequence: i64,
    hash: AuditHash,
) -> Result<VerifyReport, HavenError> {
    walk_from(database, Chain::resume(sequence, hash), sequence).await
}

async fn walk_from(
    database: &Database,
    mut chain: Chain,
    mut after: i64,
) -> Result<VerifyReport, HavenError> {
    loop {
        let rows = match rows_after(database, after).await {
            Ok(rows) => rows,
            Err(error) if is_decode_error(&error) => {
                match walk_one_by_one(database, &mut chain, after).await? {
                    Progress::CheckedUpTo(sequence) => {
                        after = sequence;
                        continue;
                    }
                    Progress::Broken(report) => return Ok(report),
                    Progress::End => break,
                }
            }
            Err(error) => return Err(db_error(error)),
        };
        let Some(last) = rows.last() else { break };
        after = last.sequence;
        for row in &rows {
            if let Some(report) = chain.check(row) {
                return Ok(report);
            }
        }
    }
    Ok(chain.finish())
}

enum Progress {
    CheckedUpTo(i64),
    Broken(VerifyReport),
    End,
}

/// A batch could not be decoded: reads its rows one at a time to name the first
/// unreadable entry, checking the ones before it as usual.
async fn walk_one_by_one(
    database: &Database,
    chain: &mut Chain,
    after: i64,
) -> Result<Progress, HavenError> {
    let sequences = sequences_after(database, after).await.map_err(db_error)?;
    let Some(last) = sequences.last().copied() else {
        return Ok(Progress::End);
    };
    for sequence in sequences {
        match row_at(database, sequence).await {
            Ok(Some(row)) => {
                if let Some(report) = chain.check(&row) {
                    return Ok(Progress::Broken(report));
                }
            }
            // Deleted while we were reading: the next entry will show the gap.
            Ok(None) => {}
            Err(error) if is_decode_error(&error) => {
                return Ok(Progress::Broken(chain.unreadable(sequence)));
            }
            Err(error) => return Err(db_error(error)),
        }
    }
    Ok(Progress::CheckedUpTo(last))
}

/// The chain as verified so far.
#[derive(Debug)]
struct Chain {
    next_sequence: i64,
    last_hash: AuditHash,
    entries: u64,
    recorded_head: Option<AuditHash>,
    recorded_head_seen: bool,
}

impl Chain {
    fn new(recorded_head: Option<AuditHash>) -> Self {
        Self {
            next_sequence: 1,
            last_hash: AuditHash::ZERO,
            entries: 0,
            recorded_head,
            // A head recorded from an empty chain is in every chain.
            recorded_head_seen: recorded_head.is_none_or(|head| head.is_zero()),
        }
    }

    /// A chain verified up to entry `sequence` with hash `hash`.
    fn resume(sequence: i64, hash: AuditHash) -> Self {
        Self {
            next_sequence: sequence.saturating_add(1),
            last_hash: hash,
            entries: 0,
            recorded_head: None,
            recorded_head_seen: true,
        }
    }

    /// Checks the next stored row; on success it becomes the last verified entry.
    fn check(&mut self, row: &AuditRow) -> Option<VerifyReport> {
        if let Some(report) = self.check_position(row.sequence, Some(row.entry_id)) {
            return Some(report);
        }
        if row.previous_hash.as_slice() != self.last_hash.as_bytes() {
            let reason = if self.next_sequence == 1 {
                BreakReason::WrongStart
            } else {
                BreakReason::Reordered
            };
            return Some(broken(row.sequence, Some(row.entry_id), reason));
        }
        let computed = hash::compute(&row.hashed_fields());
        if row.hash.as_slice() != computed.as_bytes() {
            return Some(broken(
                row.sequence,
                Some(row.entry_id),
                BreakReason::Altered,
            ));
        }
        self.next_sequence = row.sequence.saturating_add(1);
        self.last_hash = computed;
        self.entries += 1;
        if self.recorded_head == Some(computed) {
            self.recorded_head_seen = true;
        }
        None
    }

    /// Whether a row with `sequence` may come next.
    fn check_position(&self, sequence: i64, entry_id: Option<Uuid>) -> Option<VerifyReport> {
        if self.entries == 0 && sequence < 1 {
            return Some(broken(sequence, entry_id, BreakReason::WrongStart));
        }
        if sequence > self.next_sequence {
            let gap = BreakReason::Gap {
                resumes_at: sequence,
            };
            return Some(broken(self.next_sequence, None, gap));
        }
        if sequence < self.next_sequence {
            return Some(broken(sequence, entry_id, BreakReason::Reordered));
        }
        None
    }

    /// The report for a row at `sequence` that cannot be decoded.
    fn unreadable(&self, sequence: i64) -> VerifyReport {
        self.check_position(sequence, None)
            .unwrap_or_else(|| broken(sequence, None, BreakReason::Unreadable))
    }

    fn finish(self) -> VerifyReport {
        match self.recorded_head {
            Some(recorded_head) if !self.recorded_head_seen => VerifyReport::HeadMissing {
                recorded_head,
                entries: self.entries,
                head_hash: self.last_hash,
            },
            _ => VerifyReport::Ok {
                entries: self.entries,
                head_hash: self.last_hash,
            },
        }
    }
}

fn broken(sequence: i64, entry_id: Option<Uuid>, reason: BreakReason) -> VerifyReport {
    VerifyReport::Broken {
        sequence,
        entry_id,
        reason,
    }
}

/// A stored value that does not decode (wrong type, unexpected NULL): evidence of
/// tampering, not a database failure.
pub(crate) fn is_decode_error(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_)
    )
}

async fn rows_after(database: &Database, after: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM audit_log WHERE sequence > $1 ORDER BY sequence LIMIT $2");
    let sql = sqlx::AssertSqlSafe(sql);
    on_pool!(database, |pool| {
        sqlx::query_as(sql)
            .bind(after)
            .bind(BATCH)
            .fetch_all(pool)
            .await
    })
}

async fn sequences_after(database: &Database, after: i64) -> Result<Vec<i64>, sqlx::Error> {
    const SQL: &str =
        "SELECT sequence FROM audit_log WHERE sequence > $1 ORDER BY sequence LIMIT $2";
    on_pool!(database, |pool| {
        sqlx::query_scalar(SQL)
            .bind(after)
            .bind(BATCH)
            .fetch_all(pool)
            .await
    })
}

async fn row_at(database: &Database, sequence: i64) -> Result<Option<AuditRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE sequence = $1");
    let sql = sqlx::AssertSqlSafe(sql);
    on_pool!(database, |pool| {
        sqlx::query_as(sql)
            .bind(sequence)
            .fetch_optional(pool)
            .await
    })
}
