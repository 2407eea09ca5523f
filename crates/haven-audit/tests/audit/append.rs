//! Appending entries and reading them back.

use std::time::Duration;

use uuid::Uuid;

use haven_audit::{ActorKind, AuditHash, NewAuditEntry, VerifyReport, entries_for_record, verify};
use haven_storage::Database;

use super::support::{End, SERVICE, append_reads, in_transaction, read_of, run_sql, setup};

async fn many_entries_form_one_valid_chain(database: Database) {
    // More than one verifier batch, most of them chained inside one transaction.
    let mut appended = append_reads(&database, 2_500).await;
    for _ in 0..3 {
        appended.push(
            haven_audit::append(&database, SERVICE, &read_of(Uuid::new_v4()))
                .await
                .unwrap(),
        );
    }
    let sequences: Vec<i64> = appended.iter().map(|entry| entry.sequence).collect();
    assert_eq!(sequences, (1..=2_503).collect::<Vec<i64>>());
    assert_eq!(appended[0].previous_hash, AuditHash::ZERO);
    for pair in appended.windows(2) {
        assert_eq!(pair[1].previous_hash, pair[0].hash);
    }
    for entry in &appended {
        assert_eq!(entry.computed_hash(), entry.hash);
    }
    let report = verify(&database).await.unwrap();
    assert_eq!(
        report,
        VerifyReport::Ok {
            entries: 2_503,
            head_hash: appended[2_502].hash,
        }
    );
}

async fn concurrent_appends_stay_gap_free(database: Database) {
    // All eight tasks are spawned before any is awaited, and each transaction stays
    // open after its append: without serialisation two writers would chain onto the
    // same entry.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let database = database.clone();
            tokio::spawn(async move {
                let mut sequences = Vec::new();
                for _ in 0..25 {
                    let appended = in_transaction(
                        &database,
                        &[read_of(Uuid::new_v4())],
                        End::CommitAfter(Duration::from_millis(2)),
                    )
                    .await;
                    sequences.push(appended[0].sequence);
                }
                sequences
            })
        })
        .collect();
    let mut sequences = Vec::new();
    for task in tasks {
        sequences.extend(task.await.unwrap());
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=200).collect::<Vec<i64>>());
    let report = verify(&database).await.unwrap();
    assert!(
        matches!(report, VerifyReport::Ok { entries: 200, .. }),
        "{report}"
    );
}

async fn a_rolled_back_operation_leaves_no_trace(database: Database) {
    append_reads(&database, 3).await;
    let abandoned = Uuid::new_v4();
    let rolled_back = in_transaction(
        &database,
        &[read_of(abandoned), read_of(abandoned)],
        End::Rollback,
    )
    .await;
    assert_eq!(rolled_back[0].sequence, 4, "numbered while in flight");
    let next = append_reads(&database, 1).await;
    assert_eq!(next[0].sequence, 4, "the rolled-back sequences are reused");
    assert!(
        entries_for_record(&database, "person", abandoned, 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let report = verify(&database).await.unwrap();
    assert_eq!(
        report,
        VerifyReport::Ok {
            entries: 4,
            head_hash: next[0].hash,
        }
    );
}

async fn an_invalid_entry_fails_the_write_and_writes_nothing(database: Database) {
    let malformed = NewAuditEntry {
        action: "Read Person",
        ..read_of(Uuid::new_v4())
    };
    let error = haven_audit::append(&database, SERVICE, &malformed)
        .await
        .unwrap_err();
    assert_eq!(error.code(), haven_error::ErrorCode::Internal);
    let report = verify(&database).await.unwrap();
    assert!(
        matches!(report, VerifyReport::Ok { entries: 0, head_hash } if head_hash.is_zero()),
        "{report}"
    );
}

async fn updates_and_deletes_are_refused(database: Database) {
    let appended = append_reads(&database, 3).await;
    let mut attempts = vec![
        "UPDATE audit_log SET purpose = 'rewritten' WHERE sequence = 2",
        "DELETE FROM audit_log WHERE sequence = 3",
        "DELETE FROM audit_log",
    ];
    if let Database::Postgres(_) = database {
        attempts.push("TRUNCATE audit_log");
    }
    for sql in attempts {
        let error = run_sql(&database, sql).await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
    let report = verify(&database).await.unwrap();
    assert_eq!(
        report,
        VerifyReport::Ok {
            entries: 3,
            head_hash: appended[2].hash,
        }
    );
}

async fn a_records_entries_come_back_alone_in_order(database: Database) {
    let person = Uuid::new_v4();
    let other = Uuid::new_v4();
    let by_service = NewAuditEntry {
        actor: "service:referral".to_owned(),
        actor_kind: ActorKind::Service,
        action: "person.update",
        outcome: None,
        ..read_of(person)
    };
    let entries = [
        read_of(person),
        read_of(other),
        by_service,
        read_of(other),
        read_of(person).with_outcome(haven_audit::Outcome::Denied),
    ];
    let mut appended = Vec::new();
    for entry in &entries {
        appended.push(
            haven_audit::append(&database, SERVICE, entry)
                .await
                .unwrap(),
        );
    }
    let expected: Vec<_> = [0, 2, 4].map(|index| appended[index].clone()).into();

    let all = entries_for_record(&database, "person", person, 0, 100)
        .await
        .unwrap();
    assert_eq!(all, expected, "stored and read back field for field");

    let first_page = entries_for_record(&database, "person", person, 0, 2)
        .await
        .unwrap();
    assert_eq!(first_page, expected[..2]);
    let after = first_page[1].sequence;
    let second_page = entries_for_record(&database, "person", person, after, 2)
        .await
        .unwrap();
    assert_eq!(second_page, expected[2..]);

    assert!(
        entries_for_record(&database, "case", person, 0, 100)
            .await
            .unwrap()
            .is_empty(),
        "the record type is part of the key"
    );
}

haven_storage::backend_suite! {
    setup = setup;
    many_entries_form_one_valid_chain,
    concurrent_appends_stay_gap_free,
    a_rolled_back_operation_leaves_no_trace,
    an_invalid_entry_fails_the_write_and_writes_nothing,
    updates_and_deletes_are_refused,
    a_records_entries_come_back_alone_in_order,
}
