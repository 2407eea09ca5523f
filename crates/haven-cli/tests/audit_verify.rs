//! `haven audit verify` covers every service database that keeps an audit log, found
//! here independently of the CLI (every SQLite file in the data directory, every
//! Postgres schema with an `audit_log` table), and reports tampering in each of them,
//! referral's disclosure reads included. On SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use uuid::Uuid;

use haven_audit::{
    ActorKind, AuditEntry, AuditHash, AuditWrite, HeadReport, NewAuditEntry, Outcome,
};
use haven_config::Settings;
use haven_storage::{Database, WritePool};

const HAVEN: &str = env!("CARGO_BIN_EXE_haven");

/// Runs the `haven` binary with the test's data directory and database.
fn haven(settings: &Settings, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(HAVEN);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HAVEN__DATA_DIR", &settings.data_dir)
        .current_dir(&settings.data_dir);
    if let Some(url) = &settings.database.url {
        command.env("HAVEN__DATABASE__URL", url.expose());
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every database holding an audit log, by service name, found without the CLI's
/// list of services.
async fn audit_logs(settings: &Settings) -> Vec<(String, Database)> {
    let mut found = Vec::new();
    match &settings.database.url {
        None => {
            let mut files: Vec<_> = std::fs::read_dir(&settings.data_dir)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "db"))
                .collect();
            files.sort();
            for path in files {
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(SqliteConnectOptions::new().filename(&path))
                    .await
                    .unwrap();
                let tables: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                let service = path.file_stem().unwrap().to_string_lossy().into_owned();
                if tables > 0 {
                    found.push((service, Database::Sqlite(pool)));
                } else {
                    pool.close().await;
                }
            }
        }
        Some(url) => {
            let base = PgConnectOptions::from_str(url.expose()).unwrap();
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(base.clone())
                .await
                .unwrap();
            let schemas: Vec<String> = sqlx::query_scalar(
                "SELECT table_schema::text FROM information_schema.tables \
                 WHERE table_name = 'audit_log' ORDER BY table_schema",
            )
            .fetch_all(&admin)
            .await
            .unwrap();
            admin.close().await;
            for schema in schemas {
                let pool = PgPoolOptions::new()
                    .max_connections(2)
                    .connect_with(base.clone().options([("search_path", schema.as_str())]))
                    .await
                    .unwrap();
                found.push((schema, Database::Postgres(pool)));
            }
        }
    }
    found
}

fn entry(action: &'static str) -> NewAuditEntry {
    NewAuditEntry {
        actor: "coordinator-7".into(),
        actor_kind: ActorKind::User,
        organization_id: Uuid::new_v4(),
        action,
        record_type: "referral",
        record_id: Uuid::new_v4(),
        purpose: "referral".into(),
        request_id: Uuid::new_v4().to_string(),
        outcome: Some(Outcome::Allowed),
        via: None,
    }
}

async fn append_two(database: &Database, service: &str) {
    let entries = [
        entry("referral.disclosure.read"),
        entry("referral.disclosure.read"),
    ];
    match database {
        Database::Sqlite(pool) => {
            let mut tx = pool.begin_write().await.unwrap();
            for entry in &entries {
                tx.append_audit(service, entry).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
        Database::Postgres(pool) => {
            let mut tx = pool.begin_write().await.unwrap();
            for entry in &entries {
                tx.append_audit(service, entry).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
    }
}

/// Deletes the first of the two entries, as someone with database access could: the
/// triggers are dropped or disabled first.
async fn delete_first_entry(database: &Database) {
    match database {
        Database::Sqlite(pool) => {
            sqlx::raw_sql(
                "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; \
                 DELETE FROM audit_log WHERE sequence = 1",
            )
            .execute(pool)
            .await
            .unwrap();
        }
        Database::Postgres(pool) => {
            sqlx::raw_sql(
                "ALTER TABLE audit_log DISABLE TRIGGER USER; \
                 DELETE FROM audit_log WHERE sequence = 1",
            )
            .execute(pool)
            .await
            .unwrap();
        }
    }
}

async fn verify_covers_every_audit_log_and_names_each_break(settings: Settings) {
    let migrated = haven(&settings, &["migrate"]);
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    let logs = audit_logs(&settings).await;
    let services: Vec<&str> = logs.iter().map(|(service, _)| service.as_str()).collect();
    for expected in ["case", "intake", "referral"] {
        assert!(
            services.contains(&expected),
            "{expected} keeps an audit log: {services:?}"
        );
    }
    // Sign each head with the key in the data directory, as each running service
    // would.
    let key = haven_crypto::AuditHeadKey::load_or_create(
        &settings
            .data_dir
            .join("keys")
            .join(haven_audit::HEAD_KEY_FILE),
    )
    .unwrap();
    for (service, database) in &logs {
        append_two(database, service).await;
        haven_audit::sign_head(database, service, &key)
            .await
            .unwrap();
    }
    let intact = haven(&settings, &["audit", "verify"]);
    let report = text(&intact.stdout);
    assert!(intact.status.success(), "{report}{}", text(&intact.stderr));
    for service in &services {
        assert!(
            report.contains(&format!("{service}: audit chain intact, 2 entries")),
            "verify must cover {service}: {report}"
        );
    }

    // Break one trail after another: each break is reported, by service.
    for (index, (service, database)) in logs.iter().enumerate() {
        delete_first_entry(database).await;
        let tampered = haven(&settings, &["audit", "verify"]);
        let report = text(&tampered.stdout);
        assert!(!tampered.status.success(), "{report}");
        for (earlier, _) in &logs[..=index] {
            assert!(
                report.contains(&format!(
                    "{earlier}: audit chain broken at entry 1: entry deleted"
                )),
                "{report}"
            );
        }
        assert!(
            text(&tampered.stderr).contains(service.as_str()),
            "{}",
            text(&tampered.stderr)
        );
    }
    for (_, database) in logs {
        database.close().await;
    }
}

/// Appends `count` entries in one transaction; returns them as stored.
async fn append(database: &Database, service: &str, count: usize) -> Vec<AuditEntry> {
    let entries: Vec<NewAuditEntry> = (0..count)
        .map(|_| entry("referral.disclosure.read"))
        .collect();
    let mut appended = Vec::new();
    match database {
        Database::Sqlite(pool) => {
            let mut tx = pool.begin_write().await.unwrap();
            for entry in &entries {
                appended.push(tx.append_audit(service, entry).await.unwrap().into_entry());
            }
            tx.commit().await.unwrap();
        }
        Database::Postgres(pool) => {
            let mut tx = pool.begin_write().await.unwrap();
            for entry in &entries {
                appended.push(tx.append_audit(service, entry).await.unwrap().into_entry());
            }
            tx.commit().await.unwrap();
        }
    }
    appended
}

/// Runs `sql` with the append-only triggers out of the way, as someone with database
/// access could.
async fn tamper(database: &Database, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match database {
        Database::Sqlite(pool) => {
            sqlx::raw_sql(
                "DROP TRIGGER IF EXISTS audit_log_no_update; \
                 DROP TRIGGER IF EXISTS audit_log_no_delete;",
            )
            .execute(pool)
            .await
            .unwrap();
            sqlx::raw_sql(sql).execute(pool).await.unwrap();
        }
        Database::Postgres(pool) => {
            sqlx::raw_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
                .execute(pool)
                .await
                .unwrap();
            sqlx::raw_sql(sql).execute(pool).await.unwrap();
        }
    }
}

/// SQL that rewrites the purpose of `chain[index]` and recomputes every hash after
/// it, so that the links verify on their own.
fn rewrite_and_rehash_sql(database: &Database, chain: &[AuditEntry], index: usize) -> String {
    let literal = |hash: AuditHash| match database {
        Database::Sqlite(_) => format!("X'{hash}'"),
        Database::Postgres(_) => format!("'\\x{hash}'"),
    };
    let mut previous_hash = if index == 0 {
        AuditHash::ZERO
    } else {
        chain[index - 1].hash
    };
    let mut statements = String::new();
    for (position, original) in chain.iter().enumerate().skip(index) {
        let mut forged = original.clone();
        if position == index {
            forged.purpose = "curiosity".to_owned();
        }
        forged.previous_hash = previous_hash;
        forged.hash = forged.computed_hash();
        previous_hash = forged.hash;
        statements.push_str(&format!(
            "UPDATE audit_log SET purpose = '{}', previous_hash = {}, hash = {} \
             WHERE sequence = {};",
            forged.purpose,
            literal(forged.previous_hash),
            literal(forged.hash),
            forged.sequence
        ));
    }
    statements
}

/// The services sign their heads while they run; afterwards deleting the newest
/// entries of one trail and rewriting and rehashing another are both reported as
/// breaks, though each chain's links still hold, and the untouched trail verifies.
async fn signed_heads_catch_truncation_and_rehashing(mut settings: Settings) {
    let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    settings.gateway.listen = any_port;
    settings.gateway.metrics_listen = any_port;
    settings.intake.listen = any_port;
    settings.case.listen = any_port;
    settings.referral.listen = any_port;
    settings.reporting.listen = any_port;
    // The real services, each signing its head in the background.
    let stack = haven_cli::start(settings).await.unwrap();
    let settings = stack.settings.clone();

    let logs = audit_logs(&settings).await;
    let mut chains = Vec::new();
    for (service, database) in &logs {
        let chain = append(database, service, 6).await;
        assert_eq!(chain[0].sequence, 1, "{service} starts empty");
        chains.push(chain);
    }
    // The running services sign the new heads within about a second, with the key
    // they created in the data directory.
    let key_path = settings
        .data_dir
        .join("keys")
        .join(haven_audit::HEAD_KEY_FILE);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for (service, database) in &logs {
        loop {
            let signed = match haven_crypto::AuditHeadKey::load(&key_path) {
                Ok(key) => haven_audit::verify_signed(database, service, &key)
                    .await
                    .unwrap(),
                Err(_) => haven_audit::SignedReport {
                    chain: haven_audit::verify(database).await.unwrap(),
                    head: HeadReport::Unsigned { last_sequence: 0 },
                },
            };
            if signed.is_ok()
                && matches!(signed.head, HeadReport::Signed { head, newer: 0 } if head.sequence == 6)
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{service}: head not signed: {signed:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    stack.stop().await.unwrap();

    let position = |name: &str| {
        logs.iter()
            .position(|(service, _)| service == name)
            .unwrap()
    };
    let (intake, case) = (position("intake"), position("case"));
    tamper(&logs[intake].1, "DELETE FROM audit_log WHERE sequence > 4").await;
    let rewrite = rewrite_and_rehash_sql(&logs[case].1, &chains[case], 1);
    tamper(&logs[case].1, &rewrite).await;

    let tampered = haven(&settings, &["audit", "verify"]);
    let report = text(&tampered.stdout);
    assert!(!tampered.status.success(), "{report}");
    // The links alone hold in both: only the signed head shows what happened.
    assert!(
        report.contains("intake: audit chain intact, 4 entries"),
        "{report}"
    );
    assert!(
        report.contains("intake: audit chain truncated: signed up to entry 6"),
        "{report}"
    );
    assert!(report.contains("it ends at entry 4"), "{report}");
    assert!(
        report.contains("case: audit chain intact, 6 entries"),
        "{report}"
    );
    assert!(
        report.contains("case: audit chain rewritten: entry 6"),
        "{report}"
    );
    assert!(
        report.contains("referral: audit chain intact, 6 entries")
            && !report.contains("referral: audit chain truncated")
            && !report.contains("referral: audit chain rewritten"),
        "{report}"
    );
    let stderr = text(&tampered.stderr);
    assert!(
        stderr.contains("intake") && stderr.contains("case") && !stderr.contains("referral"),
        "{stderr}"
    );
    for (_, database) in logs {
        database.close().await;
    }
}

#[tokio::test]
async fn sqlite_signed_heads_catch_truncation_and_rehashing() {
    let (_dir, settings) = haven_storage::testing::sqlite_settings();
    signed_heads_catch_truncation_and_rehashing(settings).await;
}

#[tokio::test]
async fn postgres_signed_heads_catch_truncation_and_rehashing() {
    let Some((_dir, settings)) = haven_storage::testing::postgres_settings().await else {
        return;
    };
    signed_heads_catch_truncation_and_rehashing(settings).await;
}

#[tokio::test]
async fn sqlite_verify_covers_every_audit_log_and_names_each_break() {
    let (_dir, settings) = haven_storage::testing::sqlite_settings();
    verify_covers_every_audit_log_and_names_each_break(settings).await;
}

#[tokio::test]
async fn postgres_verify_covers_every_audit_log_and_names_each_break() {
    let Some((_dir, settings)) = haven_storage::testing::postgres_settings().await else {
        return;
    };
    verify_covers_every_audit_log_and_names_each_break(settings).await;
}
