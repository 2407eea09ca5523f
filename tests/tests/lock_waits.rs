//! No request waits on a lock past its deadline: while something else holds the lock
//! an audited read needs (another session holding the case service's audit chain on
//! Postgres, another writer holding SQLite's write lock), the read answers `503` with
//! `Retry-After` once `database.lock_timeout_ms` has passed, well before the gateway's
//! deadline, and answers normally as soon as the lock is free. Before, it waited for
//! the lock until the gateway gave up with `504`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use uuid::Uuid;

use haven_e2e::{Backend, TestStack};
use haven_storage::{Database, WritePool as _};

async fn a_request_behind_a_held_lock_answers_503_before_its_deadline(backend: Backend) {
    let Some((dir, mut settings)) = haven_e2e::settings(backend).await else {
        return;
    };
    settings.database.lock_timeout_ms = 600;
    settings.gateway.request_timeout_ms = 8_000;
    let stack = TestStack::start_with(dir, settings).await;
    let organization = Uuid::new_v4();
    let token = stack.token(&["intake_officer", "case_worker"], organization);
    let (_, case) = stack.identified_case(&token).await;
    let path = format!("/v1/cases/{case}");
    assert_eq!(stack.get(&token, &path).await.status(), 200);

    // Another session takes the lock every audited read of a case needs.
    let database = haven_case::connect(&stack.settings).await.unwrap();
    let holder = match &database {
        Database::Sqlite(pool) => Holder::Sqlite(pool.begin_write().await.unwrap()),
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .unwrap();
            Holder::Postgres(tx)
        }
    };
    let started = Instant::now();
    let response = stack.get(&token, &path).await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert!(
        waited < Duration::from_secs(4),
        "answered after {waited:?}, the gateway's deadline is 8 s"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 503, "{problem}");

    drop(holder);
    assert_eq!(stack.get(&token, &path).await.status(), 200);
    database.close().await;
    stack.stop().await;
}

/// A transaction holding the lock until dropped (rolled back).
#[allow(dead_code)]
enum Holder {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_request_behind_a_held_lock_answers_503_before_its_deadline() {
    a_request_behind_a_held_lock_answers_503_before_its_deadline(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_request_behind_a_held_lock_answers_503_before_its_deadline() {
    a_request_behind_a_held_lock_answers_503_before_its_deadline(Backend::Postgres).await;
}
