//! A key claimed inside a [`Tx`] on either backend: the first create runs, a retry of
//! the same request replays it, another request under the key is refused, and a claim
//! whose transaction rolled back leaves no key behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use haven_config::Settings;
use haven_error::ErrorCode;
use haven_storage::Database;
use haven_storage::idempotency::{CallerKey, Claim, IdempotencyKey, claim};
use haven_storage::sql::{self, Tx};
use uuid::Uuid;

async fn setup(settings: &Settings) -> Database {
    let database = Database::connect(settings, "keytest", &[]).await.unwrap();
    let table = match database {
        Database::Sqlite(_) => {
            "CREATE TABLE idempotency_keys (organization_id BLOB NOT NULL, subject TEXT NOT NULL, \
             key TEXT NOT NULL, request_hash BLOB NOT NULL, record_id TEXT NOT NULL, \
             created_at TEXT NOT NULL, PRIMARY KEY (organization_id, subject, key))"
        }
        Database::Postgres(_) => {
            "CREATE TABLE idempotency_keys (organization_id UUID NOT NULL, subject TEXT NOT NULL, \
             key TEXT NOT NULL, request_hash BYTEA NOT NULL, record_id TEXT NOT NULL, \
             created_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (organization_id, subject, key))"
        }
    };
    sql::query(table).execute(&database).await.unwrap();
    database
}

fn caller_key(organization_id: Uuid, request: &[u8]) -> CallerKey {
    let key = IdempotencyKey::from_request("key", "thing.create", "retry-1", request)
        .unwrap()
        .unwrap();
    CallerKey::of(organization_id, "officer-1", Some(key)).unwrap()
}

async fn claim_in(database: &Database, once: &CallerKey, record_id: &str) -> (Tx, Claim) {
    let mut tx = database.begin_write().await.unwrap();
    let claimed = claim(&mut tx, Some(once), record_id).await.unwrap();
    (tx, claimed)
}

async fn a_key_claimed_in_a_transaction_replays_its_record(database: Database) {
    let organization_id = Uuid::new_v4();
    let once = caller_key(organization_id, b"{\"name\":\"first\"}");

    // Rolled back: the key was never used.
    let (tx, claimed) = claim_in(&database, &once, "dropped").await;
    assert_eq!(claimed, Claim::Run);
    tx.rollback().await.unwrap();

    let (tx, claimed) = claim_in(&database, &once, "kept").await;
    assert_eq!(claimed, Claim::Run);
    tx.commit().await.unwrap();

    let (tx, claimed) = claim_in(&database, &once, "again").await;
    assert_eq!(claimed, Claim::Replay("kept".to_owned()));
    drop(tx);

    let other_request = caller_key(organization_id, b"{\"name\":\"second\"}");
    let mut tx = database.begin_write().await.unwrap();
    let refused = claim(&mut tx, Some(&other_request), "other")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Unprocessable);
    drop(tx);

    let mut tx = database.begin_write().await.unwrap();
    assert_eq!(claim(&mut tx, None, "unkeyed").await.unwrap(), Claim::Run);
}

haven_storage::backend_suite! {
    setup = setup;
    a_key_claimed_in_a_transaction_replays_its_record,
}
