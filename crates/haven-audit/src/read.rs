//! Reading the entries about one record.

use uuid::Uuid;

use haven_error::HavenError;
use haven_storage::{Database, db_error};

use crate::entry::AuditEntry;
use crate::row::{AuditRow, COLUMNS};

/// The entries about the record `record_type`/`record_id` with a sequence above
/// `after_sequence` (0 for the first page), oldest first, at most `limit`: "who
/// accessed this person, when, and why". Pass the last sequence returned to get the
/// next page.
///
/// This does not authorise: the caller checks that its principal may see the record
/// (and its audit trail) first, and validates `limit` as a page size.
#[tracing::instrument(skip(database), fields(backend = database.backend_name()))]
pub async fn entries_for_record(
    database: &Database,
    record_type: &str,
    record_id: Uuid,
    after_sequence: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>, HavenError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE record_type = $1 AND record_id = $2 \
         AND sequence > $3 ORDER BY sequence LIMIT $4"
    );
    let sql = sqlx::AssertSqlSafe(sql);
    let rows: Vec<AuditRow> = on_pool!(database, |pool| {
        sqlx::query_as(sql)
            .bind(record_type)
            .bind(record_id)
            .bind(after_sequence)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
    })
    .map_err(db_error)?;
    rows.into_iter()
        .map(|row| AuditEntry::try_from(row).map_err(HavenError::internal))
        .collect()
}
