//! Statements written once run the same on SQLite and Postgres: every argument type
//! round-trips, NULLs keep their type, transactions commit or roll back, and a unique
//! violation is told apart from other failures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use haven_config::Settings;
use haven_error::ErrorCode;
use haven_storage::Database;
use haven_storage::sql::{self, DbError};
use time::macros::{date, datetime};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

async fn setup(settings: &Settings) -> Database {
    let database = Database::connect(settings, "sqltest", &[]).await.unwrap();
    let table = match database {
        Database::Sqlite(_) => {
            "CREATE TABLE things (id BLOB PRIMARY KEY, count BIGINT, small INTEGER, \
             ratio DOUBLE PRECISION, flag BOOLEAN, name TEXT UNIQUE, data BLOB, \
             at TIMESTAMPTZ, due DATE)"
        }
        Database::Postgres(_) => {
            "CREATE TABLE things (id UUID PRIMARY KEY, count BIGINT, small INTEGER, \
             ratio DOUBLE PRECISION, flag BOOLEAN, name TEXT UNIQUE, data BYTEA, \
             at TIMESTAMPTZ, due DATE)"
        }
    };
    sql::query(table).execute(&database).await.unwrap();
    database
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Thing {
    id: Uuid,
    count: Option<i64>,
    small: Option<i32>,
    ratio: Option<f64>,
    flag: Option<bool>,
    name: Option<String>,
    data: Option<Vec<u8>>,
    at: Option<OffsetDateTime>,
    due: Option<Date>,
}

const INSERT: &str = "INSERT INTO things (id, count, small, ratio, flag, name, data, at, due) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const SELECT: &str =
    "SELECT id, count, small, ratio, flag, name, data, at, due FROM things WHERE id = $1";

async fn every_type_round_trips_and_nulls_keep_their_type(database: Database) {
    let full = Thing {
        id: Uuid::new_v4(),
        count: Some(i64::MAX),
        small: Some(-7),
        ratio: Some(0.25),
        flag: Some(true),
        name: Some("Chișinău".to_owned()),
        data: Some(vec![0, 1, 255]),
        at: Some(datetime!(2026-12-02 10:00:00.123456 UTC)),
        due: Some(date!(2027 - 01 - 31)),
    };
    let inserted = sql::query(INSERT)
        .bind(full.id)
        .bind(full.count)
        .bind(full.small)
        .bind(full.ratio)
        .bind(full.flag)
        .bind(full.name.as_deref())
        .bind(full.data.as_deref())
        .bind(full.at)
        .bind(full.due)
        .execute(&database)
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    let empty = Thing {
        id: Uuid::new_v4(),
        count: None,
        small: None,
        ratio: None,
        flag: None,
        name: None,
        data: None,
        at: None,
        due: None,
    };
    sql::query(INSERT)
        .bind(empty.id)
        .bind(None::<i64>)
        .bind(None::<i32>)
        .bind(None::<f64>)
        .bind(None::<bool>)
        .bind(None::<&str>)
        .bind(None::<Vec<u8>>)
        .bind(None::<OffsetDateTime>)
        .bind(None::<Date>)
        .execute(&database)
        .await
        .unwrap();

    for thing in [&full, &empty] {
        let read: Thing = sql::query_as(SELECT)
            .bind(thing.id)
            .fetch_one(&database)
            .await
            .unwrap();
        assert_eq!(&read, thing);
    }
    let count: i64 = sql::query_scalar("SELECT COUNT(*) FROM things")
        .fetch_one(&database)
        .await
        .unwrap();
    assert_eq!(count, 2);
    let missing: Option<Thing> = sql::query_as(SELECT)
        .bind(Uuid::new_v4())
        .fetch_optional(&database)
        .await
        .unwrap();
    assert_eq!(missing, None);
}

async fn transactions_commit_or_roll_back(database: Database) {
    let kept = Uuid::new_v4();
    let mut tx = database.begin_write().await.unwrap();
    sql::query("INSERT INTO things (id, name) VALUES ($1, $2)")
        .bind(kept)
        .bind("kept")
        .execute(&mut tx)
        .await
        .unwrap();
    // The transaction sees its own write before commit.
    let inside: Vec<String> = sql::query_scalar("SELECT name FROM things")
        .fetch_all(&mut tx)
        .await
        .unwrap();
    assert_eq!(inside, ["kept"]);
    tx.commit().await.unwrap();

    let mut tx = database.begin_write().await.unwrap();
    sql::query("INSERT INTO things (id, name) VALUES ($1, $2)")
        .bind(Uuid::new_v4())
        .bind("dropped")
        .execute(&mut tx)
        .await
        .unwrap();
    drop(tx);
    let mut tx = database.begin_write().await.unwrap();
    sql::query("INSERT INTO things (id, name) VALUES ($1, $2)")
        .bind(Uuid::new_v4())
        .bind("rolled back")
        .execute(&mut tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let names: Vec<String> = sql::query_scalar("SELECT name FROM things")
        .fetch_all(&database)
        .await
        .unwrap();
    assert_eq!(names, ["kept"]);
}

async fn a_unique_violation_is_told_apart(database: Database) {
    let insert = |name: &'static str| {
        sql::query("INSERT INTO things (id, name) VALUES ($1, $2)")
            .bind(Uuid::new_v4())
            .bind(name)
    };
    insert("once").execute(&database).await.unwrap();
    let error: DbError = insert("once").execute(&database).await.unwrap_err();
    assert!(error.is_unique_violation(), "{error}");

    let error = sql::query("SELECT no_such_column FROM things")
        .execute(&database)
        .await
        .unwrap_err();
    assert!(!error.is_unique_violation());
    // Anything but connection trouble is the server's fault, never the client's.
    let error: haven_error::HavenError = error.into();
    assert_eq!(error.code(), ErrorCode::Internal);
}

haven_storage::backend_suite! {
    setup = setup;
    every_type_round_trips_and_nulls_keep_their_type,
    transactions_commit_or_roll_back,
    a_unique_violation_is_told_apart,
}
