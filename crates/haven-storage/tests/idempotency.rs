//! Idempotency keys claimed in a create's transaction behave the same on SQLite and
//! Postgres, on a `Tx` and on the connection of a store still on sqlx transactions:
//! the first claim runs, a retry replays, another request with the key is refused,
//! and a key whose create rolled back is free again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use haven_config::Settings;
use haven_error::ErrorCode;
use haven_storage::Database;
use haven_storage::idempotency::{CallerKey, Claim, IdempotencyKey, claim, earlier};
use haven_storage::sql;
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

fn caller_key(organization_id: Uuid, key: &str, request: &[u8]) -> CallerKey {
    let key = IdempotencyKey::from_request("idempotency_key", "thing.create", key, request)
        .unwrap()
        .unwrap();
    CallerKey::of(organization_id, "user-1", Some(key)).unwrap()
}

async fn keys_stored(database: &Database) -> i64 {
    sql::query_scalar("SELECT COUNT(*) FROM idempotency_keys")
        .fetch_one(database)
        .await
        .unwrap()
}

async fn a_claim_runs_once_and_replays_after(database: Database) {
    let organization = Uuid::new_v4();
    let once = caller_key(organization, "order-1", b"first");

    let mut tx = database.begin_write().await.unwrap();
    assert_eq!(claim(&mut tx, None, "ignored").await.unwrap(), Claim::Run);
    assert_eq!(
        claim(&mut tx, Some(&once), "record-1").await.unwrap(),
        Claim::Run
    );
    tx.commit().await.unwrap();
    assert_eq!(keys_stored(&database).await, 1, "no key, no row");

    let mut tx = database.begin_write().await.unwrap();
    assert_eq!(
        claim(&mut tx, Some(&once), "record-2").await.unwrap(),
        Claim::Replay("record-1".to_owned())
    );
    assert_eq!(
        earlier(&mut tx, &once).await.unwrap().as_deref(),
        Some("record-1")
    );
    let other_request = caller_key(organization, "order-1", b"second");
    let refused = claim(&mut tx, Some(&other_request), "record-3")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Unprocessable);
    assert_eq!(
        earlier(&mut tx, &other_request).await.unwrap_err().code(),
        ErrorCode::Unprocessable
    );
    // The key belongs to its organisation: another one may use the same.
    let elsewhere = caller_key(Uuid::new_v4(), "order-1", b"first");
    assert_eq!(earlier(&mut tx, &elsewhere).await.unwrap(), None);
    tx.commit().await.unwrap();
    assert_eq!(keys_stored(&database).await, 1);
}

async fn a_key_whose_create_rolled_back_is_free(database: Database) {
    let once = caller_key(Uuid::new_v4(), "order-2", b"body");
    let mut tx = database.begin_write().await.unwrap();
    assert_eq!(
        claim(&mut tx, Some(&once), "record-1").await.unwrap(),
        Claim::Run
    );
    tx.rollback().await.unwrap();
    assert_eq!(keys_stored(&database).await, 0);

    let mut tx = database.begin_write().await.unwrap();
    assert_eq!(earlier(&mut tx, &once).await.unwrap(), None);
    assert_eq!(
        claim(&mut tx, Some(&once), "record-2").await.unwrap(),
        Claim::Run
    );
    tx.commit().await.unwrap();
    let mut tx = database.begin_read().await.unwrap();
    assert_eq!(
        earlier(&mut tx, &once).await.unwrap().as_deref(),
        Some("record-2")
    );
}

haven_storage::backend_suite! {
    setup = setup;
    a_claim_runs_once_and_replays_after,
    a_key_whose_create_rolled_back_is_free,
}
