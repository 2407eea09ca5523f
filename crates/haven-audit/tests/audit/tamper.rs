//! Someone with database access rewrites history; the verifier names the first
//! broken link.

use haven_audit::{AuditHash, BreakReason, VerifyReport, verify, verify_against};
use haven_storage::Database;

use super::support::{append_reads, bypass_triggers, bytes_literal, run_sql, setup};

fn broken(sequence: i64, entry_id: Option<uuid::Uuid>, reason: BreakReason) -> VerifyReport {
    VerifyReport::Broken {
        sequence,
        entry_id,
        reason,
    }
}

async fn an_altered_entry_is_named(database: Database) {
    let appended = append_reads(&database, 10).await;
    bypass_triggers(&database).await;
    run_sql(
        &database,
        "UPDATE audit_log SET purpose = 'curiosity' WHERE sequence = 6",
    )
    .await
    .unwrap();
    let report = verify(&database).await.unwrap();
    assert_eq!(
        report,
        broken(6, Some(appended[5].entry_id), BreakReason::Altered)
    );
    assert_eq!(
        report.to_string(),
        format!(
            "audit chain broken at entry 6 ({}): entry altered — stored hash does not match \
             its contents",
            appended[5].entry_id
        )
    );
}

async fn an_entry_rewritten_with_its_hash_breaks_the_next_link(database: Database) {
    let appended = append_reads(&database, 10).await;
    bypass_triggers(&database).await;
    let mut forged = appended[3].clone();
    forged.purpose = "curiosity".to_owned();
    let forged_hash = forged.computed_hash();
    let sql = format!(
        "UPDATE audit_log SET purpose = 'curiosity', hash = {} WHERE sequence = 4",
        bytes_literal(&database, forged_hash)
    );
    run_sql(&database, &sql).await.unwrap();
    let report = verify(&database).await.unwrap();
    assert_eq!(
        report,
        broken(5, Some(appended[4].entry_id), BreakReason::Reordered)
    );
}

async fn a_deleted_entry_is_named_as_a_gap(database: Database) {
    let appended = append_reads(&database, 10).await;
    bypass_triggers(&database).await;
    run_sql(&database, "DELETE FROM audit_log WHERE sequence = 4")
        .await
        .unwrap();
    let report = verify(&database).await.unwrap();
    assert_eq!(report, broken(4, None, BreakReason::Gap { resumes_at: 5 }));
    assert!(
        report
            .to_string()
            .starts_with("audit chain broken at entry 4: entry deleted — entry 4 is missing"),
        "{report}"
    );

    // Deleting the oldest entries is the first gap now.
    run_sql(&database, "DELETE FROM audit_log WHERE sequence <= 2")
        .await
        .unwrap();
    let report = verify(&database).await.unwrap();
    assert_eq!(report, broken(1, None, BreakReason::Gap { resumes_at: 3 }));
    assert!(report.to_string().contains("entries 1 to 2 are missing"));
    assert_eq!(appended.len(), 10);
}

async fn swapped_entries_are_named_at_the_first(database: Database) {
    // Across the verifier's batch boundary (1,000 entries).
    let appended = append_reads(&database, 1_200).await;
    bypass_triggers(&database).await;
    run_sql(
        &database,
        "UPDATE audit_log SET sequence = 999999999 WHERE sequence = 1000; \
         UPDATE audit_log SET sequence = 1000 WHERE sequence = 1001; \
         UPDATE audit_log SET sequence = 1001 WHERE sequence = 999999999;",
    )
    .await
    .unwrap();
    let report = verify(&database).await.unwrap();
    // Entry 1000's place now holds what was entry 1001.
    assert_eq!(
        report,
        broken(1000, Some(appended[1000].entry_id), BreakReason::Reordered)
    );
}

async fn a_changed_first_link_is_a_wrong_start(database: Database) {
    let appended = append_reads(&database, 3).await;
    bypass_triggers(&database).await;
    run_sql(
        &database,
        "UPDATE audit_log SET previous_hash = hash WHERE sequence = 1",
    )
    .await
    .unwrap();
    let report = verify(&database).await.unwrap();
    assert_eq!(
        report,
        broken(1, Some(appended[0].entry_id), BreakReason::WrongStart)
    );
}

async fn an_unreadable_entry_is_named(database: Database) {
    append_reads(&database, 10).await;
    bypass_triggers(&database).await;
    let sql = match database {
        Database::Sqlite(_) => {
            "UPDATE audit_log SET occurred_at = 'last tuesday' WHERE sequence = 7"
        }
        Database::Postgres(_) => {
            "ALTER TABLE audit_log ALTER COLUMN purpose DROP NOT NULL; \
             UPDATE audit_log SET purpose = NULL WHERE sequence = 7;"
        }
    };
    run_sql(&database, sql).await.unwrap();
    let report = verify(&database).await.unwrap();
    assert_eq!(report, broken(7, None, BreakReason::Unreadable));
}

async fn deleting_the_newest_entries_shows_only_against_a_recorded_head(database: Database) {
    let appended = append_reads(&database, 10).await;
    let VerifyReport::Ok { head_hash, .. } = verify(&database).await.unwrap() else {
        panic!("fresh chain must verify");
    };
    assert_eq!(head_hash, appended[9].hash);
    assert!(verify_against(&database, head_hash).await.unwrap().is_ok());

    bypass_triggers(&database).await;
    run_sql(&database, "DELETE FROM audit_log WHERE sequence > 8")
        .await
        .unwrap();
    // On its own, a shorter chain is a valid chain.
    assert_eq!(
        verify(&database).await.unwrap(),
        VerifyReport::Ok {
            entries: 8,
            head_hash: appended[7].hash,
        }
    );
    let truncated = VerifyReport::HeadMissing {
        recorded_head: head_hash,
        entries: 8,
        head_hash: appended[7].hash,
    };
    assert_eq!(
        verify_against(&database, head_hash).await.unwrap(),
        truncated
    );
    assert!(
        truncated
            .to_string()
            .starts_with("audit chain does not contain the recorded head ")
    );
    // Heads recorded earlier are still in the chain.
    assert!(
        verify_against(&database, appended[4].hash)
            .await
            .unwrap()
            .is_ok()
    );
    assert!(
        verify_against(&database, AuditHash::ZERO)
            .await
            .unwrap()
            .is_ok()
    );

    // Appending again does not bring the recorded head back.
    append_reads(&database, 2).await;
    assert!(matches!(
        verify_against(&database, head_hash).await.unwrap(),
        VerifyReport::HeadMissing { entries: 10, .. }
    ));
}

async fn a_rewritten_tail_shows_only_against_a_recorded_head(database: Database) {
    let appended = append_reads(&database, 10).await;
    let recorded_head = appended[9].hash;
    bypass_triggers(&database).await;
    // Rewrite entry 4 and recompute every hash after it, as a careful attacker would.
    let mut previous_hash = appended[2].hash;
    let mut statements = String::new();
    for original in &appended[3..] {
        let mut forged = original.clone();
        if forged.sequence == 4 {
            forged.purpose = "curiosity".to_owned();
        }
        forged.previous_hash = previous_hash;
        forged.hash = forged.computed_hash();
        previous_hash = forged.hash;
        statements.push_str(&format!(
            "UPDATE audit_log SET purpose = '{}', previous_hash = {}, hash = {} \
             WHERE sequence = {};",
            forged.purpose,
            bytes_literal(&database, forged.previous_hash),
            bytes_literal(&database, forged.hash),
            forged.sequence
        ));
    }
    run_sql(&database, &statements).await.unwrap();
    assert!(
        matches!(
            verify(&database).await.unwrap(),
            VerifyReport::Ok { entries: 10, head_hash } if head_hash == previous_hash
        ),
        "documented limit: a fully recomputed chain verifies on its own"
    );
    assert_eq!(
        verify_against(&database, recorded_head).await.unwrap(),
        VerifyReport::HeadMissing {
            recorded_head,
            entries: 10,
            head_hash: previous_hash,
        }
    );
}

haven_storage::backend_suite! {
    setup = setup;
    an_altered_entry_is_named,
    an_entry_rewritten_with_its_hash_breaks_the_next_link,
    a_deleted_entry_is_named_as_a_gap,
    swapped_entries_are_named_at_the_first,
    a_changed_first_link_is_a_wrong_start,
    an_unreadable_entry_is_named,
    deleting_the_newest_entries_shows_only_against_a_recorded_head,
    a_rewritten_tail_shows_only_against_a_recorded_head,
}
