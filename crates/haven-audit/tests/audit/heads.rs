//! The signed head catches what the chain alone cannot: deleting the newest entries
//! and rewriting an entry with every hash after it recomputed.

use haven_audit::head::Refusal;
use haven_audit::{BreakReason, HeadReport, SignOutcome, VerifyReport, sign_head, verify_signed};
use haven_crypto::AuditHeadKey;
use haven_storage::Database;

use super::support::{
    SERVICE, append_reads, bypass_triggers, bytes_literal, rewrite_and_rehash, run_sql, setup,
};

fn key() -> AuditHeadKey {
    AuditHeadKey::generate().unwrap()
}

async fn signed(database: &Database, key: &AuditHeadKey) -> i64 {
    match sign_head(database, SERVICE, key).await.unwrap() {
        SignOutcome::Signed(head) => head.sequence,
        other => panic!("expected a signed head: {other:?}"),
    }
}

async fn an_untouched_chain_verifies_against_its_signed_head(database: Database) {
    let key = key();
    let empty = verify_signed(&database, SERVICE, &key).await.unwrap();
    assert_eq!(empty.head, HeadReport::Empty);
    assert!(empty.is_ok(), "{empty:?}");

    append_reads(&database, 10).await;
    let unsigned = verify_signed(&database, SERVICE, &key).await.unwrap();
    assert_eq!(unsigned.head, HeadReport::Unsigned { last_sequence: 10 });
    assert!(!unsigned.is_ok());

    assert_eq!(signed(&database, &key).await, 10);
    assert_eq!(
        sign_head(&database, SERVICE, &key).await.unwrap(),
        SignOutcome::Unchanged
    );
    let report = verify_signed(&database, SERVICE, &key).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert!(matches!(
        report.head,
        HeadReport::Signed { head, newer: 0 } if head.sequence == 10
    ));

    // Entries written since the last signing are intact, just not signed yet.
    append_reads(&database, 3).await;
    let report = verify_signed(&database, SERVICE, &key).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert!(matches!(report.head, HeadReport::Signed { newer: 3, .. }));
    assert_eq!(signed(&database, &key).await, 13);
}

async fn deleting_the_newest_entries_is_a_truncation(database: Database) {
    let key = key();
    append_reads(&database, 10).await;
    signed(&database, &key).await;
    bypass_triggers(&database).await;
    run_sql(&database, "DELETE FROM audit_log WHERE sequence > 7")
        .await
        .unwrap();

    let report = verify_signed(&database, SERVICE, &key).await.unwrap();
    assert!(
        matches!(report.chain, VerifyReport::Ok { entries: 7, .. }),
        "the links alone still hold: {report:?}"
    );
    assert!(!report.is_ok());
    assert!(matches!(
        report.head,
        HeadReport::Truncated { head, last_sequence: 7 } if head.sequence == 10
    ));
    let said = report.head.to_string();
    assert!(
        said.starts_with("audit chain truncated: signed up to entry 10")
            && said.contains("it ends at entry 7"),
        "{said}"
    );

    // Appending after the truncation does not hide it: the signer refuses to sign a
    // chain that does not continue from its signed head.
    append_reads(&database, 5).await;
    let report = verify_signed(&database, SERVICE, &key).await.unwrap();
    assert!(
        matches!(report.head, HeadReport::Rewritten { .. }),
        "{report:?}"
    );
    assert!(matches!(
        sign_head(&database, SERVICE, &key).await.unwrap(),
        SignOutcome::Refused(Refusal::Chain(VerifyReport::Broken {
            sequence: 11,
            reason: BreakReason::Reordered,
            ..
        }))
    ));
}

async fn rewriting_and_rehashing_is_a_break(database: Database) {
    let key = key();
    let appended = append_reads(&database, 10).await;
    signed(&database, &key).await;
    bypass_triggers(&database).await;
    let forged_head = rewrite_and_rehash(&database, &appended, 4).await;

    let report = verify_signed(&database, SERVICE, &key).await.unwrap();
    assert!(
        matches!(report.chain, VerifyReport::Ok { entries: 10, head_hash } if head_hash == forged_head),
        "the links alone still hold: {report:?}"
    );
    assert!(!report.is_ok());
    assert!(matches!(
        report.head,
        HeadReport::Rewritten { head } if head.sequence == 10 && head.hash == appended[9].hash
    ));
    assert!(report.head.to_string().contains("rewritten"));
}

async fn a_head_moved_without_the_key_is_forged(database: Database) {
    let key = key();
    let appended = append_reads(&database, 10).await;
    signed(&database, &key).await;
    bypass_triggers(&database).await;
    // Truncate, and point the head at the new last entry, keeping the old tag.
    let statements = format!(
        "DELETE FROM audit_log WHERE sequence > 8; \
         UPDATE audit_head SET sequence = 8, hash = {};",
        bytes_literal(&database, appended[7].hash)
    );
    run_sql(&database, &statements).await.unwrap();
    let report = verify_signed(&database, SERVICE, &key).await.unwrap();
    assert_eq!(report.head, HeadReport::Forged);
    assert!(!report.is_ok());
    assert!(matches!(
        sign_head(&database, SERVICE, &key).await.unwrap(),
        SignOutcome::Refused(Refusal::Forged)
    ));

    // A head signed under another key, or for another service, is forged too.
    run_sql(&database, "DELETE FROM audit_head").await.unwrap();
    let other_key = AuditHeadKey::generate().unwrap();
    signed(&database, &other_key).await;
    let report = verify_signed(&database, SERVICE, &key).await.unwrap();
    assert_eq!(report.head, HeadReport::Forged);
    let report = verify_signed(&database, "intake", &other_key)
        .await
        .unwrap();
    assert_eq!(report.head, HeadReport::Forged);

    // Deleting the head row altogether leaves entries without a signed head.
    run_sql(&database, "DELETE FROM audit_head").await.unwrap();
    let report = verify_signed(&database, SERVICE, &key).await.unwrap();
    assert_eq!(report.head, HeadReport::Unsigned { last_sequence: 8 });
}

haven_storage::backend_suite! {
    setup = setup;
    an_untouched_chain_verifies_against_its_signed_head,
    deleting_the_newest_entries_is_a_truncation,
    rewriting_and_rehashing_is_a_break,
    a_head_moved_without_the_key_is_forged,
}
