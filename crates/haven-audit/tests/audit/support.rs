//! Fixture and helpers shared by the suites.

use std::time::Duration;

use uuid::Uuid;

use haven_audit::{ActorKind, AuditEntry, AuditHash, AuditWrite, NewAuditEntry, Outcome};
use haven_config::Settings;
use haven_storage::{Database, WritePool};

/// The service writing the entries (keys the Postgres lock).
pub const SERVICE: &str = "case";

/// A fresh, migrated database.
pub async fn setup(settings: &Settings) -> Database {
    Database::connect(settings, "audit", &[haven_audit::MIGRATIONS])
        .await
        .unwrap()
}

/// A valid entry about a person.
pub fn read_of(record_id: Uuid) -> NewAuditEntry {
    NewAuditEntry {
        actor: "user-0190".to_owned(),
        actor_kind: ActorKind::User,
        organization_id: Uuid::from_u128(7),
        action: "person.read",
        record_type: "person",
        record_id,
        purpose: "assistance".to_owned(),
        request_id: format!("req-{}", Uuid::new_v4().simple()),
        outcome: Some(Outcome::Allowed),
        via: None,
    }
}

/// How a test transaction ends.
#[derive(Debug, Clone, Copy)]
pub enum End {
    /// Commit at once.
    Commit,
    /// Keep the transaction open a while, as an operation doing more work would,
    /// then commit.
    CommitAfter(Duration),
    /// Roll back.
    Rollback,
}

/// Appends `entries` in one write transaction, then ends it as `end` says.
pub async fn in_transaction(
    database: &Database,
    entries: &[NewAuditEntry],
    end: End,
) -> Vec<AuditEntry> {
    macro_rules! run {
        ($pool:expr) => {{
            let mut tx = $pool.begin_write().await.unwrap();
            let mut appended = Vec::new();
            for entry in entries {
                appended.push(tx.append_audit(SERVICE, entry).await.unwrap().into_entry());
            }
            match end {
                End::Commit => tx.commit().await.unwrap(),
                End::CommitAfter(pause) => {
                    tokio::time::sleep(pause).await;
                    tx.commit().await.unwrap();
                }
                End::Rollback => tx.rollback().await.unwrap(),
            }
            appended
        }};
    }
    match database {
        Database::Sqlite(pool) => run!(pool),
        Database::Postgres(pool) => run!(pool),
    }
}

/// Appends `count` reads of fresh records in one transaction.
pub async fn append_reads(database: &Database, count: usize) -> Vec<AuditEntry> {
    let entries: Vec<NewAuditEntry> = (0..count).map(|_| read_of(Uuid::new_v4())).collect();
    in_transaction(database, &entries, End::Commit).await
}

/// Runs SQL directly, as someone with access to the database would.
pub async fn run_sql(database: &Database, sql: &str) -> Result<(), sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match database {
        Database::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        Database::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
    }
}

/// Gets the append-only triggers out of the way, as an attacker with database
/// access could.
pub async fn bypass_triggers(database: &Database) {
    let sql = match database {
        Database::Sqlite(_) => {
            "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;"
        }
        Database::Postgres(_) => "ALTER TABLE audit_log DISABLE TRIGGER USER",
    };
    run_sql(database, sql).await.unwrap();
}

/// A SQL literal of `hash` as bytes.
pub fn bytes_literal(database: &Database, hash: AuditHash) -> String {
    match database {
        Database::Sqlite(_) => format!("X'{hash}'"),
        Database::Postgres(_) => format!("'\\x{hash}'"),
    }
}

/// Rewrites the `purpose` of entry `sequence` and recomputes every hash from it to
/// the end, as a careful attacker with database access would. `appended` is the
/// whole chain as written. Returns the forged head hash.
pub async fn rewrite_and_rehash(
    database: &Database,
    appended: &[AuditEntry],
    sequence: i64,
) -> AuditHash {
    let start = usize::try_from(sequence - 1).unwrap();
    let mut previous_hash = if start == 0 {
        AuditHash::ZERO
    } else {
        appended[start - 1].hash
    };
    let mut statements = String::new();
    for original in &appended[start..] {
        let mut forged = original.clone();
        if forged.sequence == sequence {
            forged.purpose = "curiosity".to_owned();
        }
        forged.previous_hash = previous_hash;
        forged.hash = forged.computed_hash();
        previous_hash = forged.hash;
        statements.push_str(&format!(
            "UPDATE audit_log SET purpose = '{}', previous_hash = {}, hash = {} \
             WHERE sequence = {};",
            forged.purpose,
            bytes_literal(database, forged.previous_hash),
            bytes_literal(database, forged.hash),
            forged.sequence
        ));
    }
    run_sql(database, &statements).await.unwrap();
    previous_hash
}
