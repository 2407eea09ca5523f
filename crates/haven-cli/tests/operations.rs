//! Operator commands on a real data directory: `haven audit verify` names the first
//! tampered entry, `haven keys rotate`/`retire` move persons' keys to a new master key,
//! `haven keys init` creates keys once and never replaces them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use uuid::Uuid;

use haven_audit::{ActorKind, AuditWrite, NewAuditEntry};

const HAVEN: &str = env!("CARGO_BIN_EXE_haven");

fn haven(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(HAVEN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HAVEN__DATA_DIR", data_dir)
        .current_dir(data_dir)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn audit_verify_passes_an_intact_chain_and_names_a_tampered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = haven(dir.path(), &["audit", "verify"]);
    assert!(fresh.status.success(), "{}", text(&fresh.stderr));
    assert!(text(&fresh.stdout).contains("intake: audit chain intact, 0 entries"));

    // Write three entries into the case service's trail, as the service would.
    let settings = haven_config::Settings {
        data_dir: dir.path().to_path_buf(),
        ..haven_config::Settings::default()
    };
    let database = haven_case::connect(&settings).await.unwrap();
    let haven_storage::Database::Sqlite(pool) = &database else {
        panic!("sqlite expected")
    };
    let mut tx = pool.begin().await.unwrap();
    for _ in 0..3 {
        let entry = NewAuditEntry {
            actor: "worker-1".into(),
            actor_kind: ActorKind::User,
            organization_id: Uuid::new_v4(),
            action: "case.read",
            record_type: "case",
            record_id: Uuid::new_v4(),
            purpose: "assistance".into(),
            request_id: "req".into(),
            outcome: None,
            via: None,
        };
        AuditWrite::append_audit(&mut *tx, "case", &entry)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    // Without the head key only the links can be checked: entries are unverifiable.
    let keyless = haven(dir.path(), &["audit", "verify"]);
    assert!(!keyless.status.success());
    assert!(
        text(&keyless.stdout).contains("case: signed head not checked"),
        "{}",
        text(&keyless.stdout)
    );
    // Sign the head, as the running case service would.
    let key = haven_crypto::AuditHeadKey::load_or_create(
        &dir.path().join("keys").join(haven_audit::HEAD_KEY_FILE),
    )
    .unwrap();
    haven_audit::sign_head(&database, "case", &key)
        .await
        .unwrap();
    let intact = haven(dir.path(), &["audit", "verify"]);
    assert!(intact.status.success(), "{}", text(&intact.stdout));
    assert!(text(&intact.stdout).contains("case: audit chain intact, 3 entries"));
    assert!(
        text(&intact.stdout).contains("signed head at entry 3"),
        "{}",
        text(&intact.stdout)
    );

    // Someone with database access rewrites who read entry 2.
    let triggers: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (trigger,) in triggers {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER \"{trigger}\"")))
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE sequence = 2")
        .execute(pool)
        .await
        .unwrap();
    database.close().await;

    let tampered = haven(dir.path(), &["audit", "verify"]);
    assert!(!tampered.status.success());
    let report = text(&tampered.stdout);
    assert!(
        report.contains("case: audit chain broken at entry 2"),
        "{report}"
    );
    assert!(report.contains("altered"), "{report}");
}

#[test]
fn keys_rotate_then_retire_the_old_version_but_never_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let rotated = haven(dir.path(), &["keys", "rotate"]);
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    let told = text(&rotated.stdout);
    assert!(told.contains("master key version 2 is active"), "{told}");
    // What is left to do, in order, and never a restart.
    let steps: Vec<usize> = ["  1. ", "  2. back up", "  3. ", "  4. "]
        .iter()
        .map(|step| {
            told.find(step)
                .unwrap_or_else(|| panic!("no step `{step}`: {told}"))
        })
        .collect();
    assert!(steps.windows(2).all(|pair| pair[0] < pair[1]), "{told}");
    assert!(told.contains("haven keys retire 1"), "{told}");
    assert!(!told.contains("restart the services"), "{told}");
    let active = haven(dir.path(), &["keys", "retire", "2"]);
    assert!(!active.status.success());
    assert!(text(&active.stderr).contains("active master key"));
    let retired = haven(dir.path(), &["keys", "retire", "1"]);
    assert!(retired.status.success(), "{}", text(&retired.stderr));
    let keyring =
        std::fs::read_to_string(dir.path().join("keys").join("master-keys.json")).unwrap();
    let keyring: serde_json::Value = serde_json::from_str(&keyring).unwrap();
    assert_eq!(keyring["active"], 2);
    assert!(keyring["keys"].get("1").is_none());
}

#[test]
fn keys_init_creates_the_keys_once_and_never_replaces_them() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("secret");
    let target = keys.to_str().unwrap();
    let created = haven(dir.path(), &["keys", "init", target]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let mut files: Vec<String> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "audit-head.key",
            "blind-index.key",
            "master-keys.json",
            "perturbation.key"
        ],
        "a master keyring, a blind-index key, an audit head key and a perturbation key"
    );
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|file| std::fs::read(keys.join(file)).unwrap())
        .collect();

    let again = haven(dir.path(), &["keys", "init", target]);
    assert!(!again.status.success(), "a second init must fail");
    assert!(
        text(&again.stderr).contains("never replaces keys"),
        "{}",
        text(&again.stderr)
    );
    let after: Vec<Vec<u8>> = files
        .iter()
        .map(|file| std::fs::read(keys.join(file)).unwrap())
        .collect();
    assert_eq!(before, after, "the existing keys are untouched");
}
