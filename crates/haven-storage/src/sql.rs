//! Statements written once and run on either backend.
//!
//! A store is plain Rust over a [`Database`]: it builds a statement with [`query`],
//! [`query_as`] or [`query_scalar`], binds its arguments, and runs it on the pool or on
//! a [`Tx`]. The arguments are kept as [`Arg`]s and bound to the backend's own driver
//! when the statement runs, so each statement is still encoded and decoded with the
//! native types of SQLite and of Postgres (`sqlx::any` cannot decode a Postgres
//! `uuid` or `timestamptz`). Both backends take `$n` placeholders.
//!
//! Failures are [`DbError`]s; `?` turns one into a [`HavenError`] through
//! [`db_error`], and [`DbError::is_unique_violation`] tells a conflict apart.
//!
//! ```ignore
//! let mut tx = database.begin_write().await?;
//! let row: Option<CaseRow> = sql::query_as(SELECT_CASE).bind(id).fetch_optional(&mut tx).await?;
//! sql::query(BUMP).bind(id).bind(version).execute(&mut tx).await?;
//! tx.commit().await?;
//! ```

use std::marker::PhantomData;

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, FromRow, Postgres, SqlSafeStr, SqlStr, Sqlite, Transaction, Type};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use haven_error::HavenError;

use crate::{Database, WritePool, db_error, is_unique_violation};

/// A statement that failed; `?` makes it a [`HavenError`] (see [`db_error`]).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DbError(#[from] pub sqlx::Error);

impl DbError {
    /// Whether the statement broke a unique constraint.
    pub fn is_unique_violation(&self) -> bool {
        is_unique_violation(&self.0)
    }
}

impl From<DbError> for HavenError {
    fn from(error: DbError) -> Self {
        db_error(error.0)
    }
}

/// A statement's result on either backend.
pub type DbResult<T> = Result<T, DbError>;

/// One bound argument, typed so that a `NULL` still has its column type.
#[derive(Debug, Clone)]
pub enum Arg {
    /// A UUID (a BLOB in SQLite, `uuid` in Postgres).
    Uuid(Option<Uuid>),
    /// A 64-bit integer.
    Int(Option<i64>),
    /// A 32-bit integer.
    Int32(Option<i32>),
    /// A double.
    Real(Option<f64>),
    /// A boolean.
    Bool(Option<bool>),
    /// Text.
    Text(Option<String>),
    /// Bytes.
    Bytes(Option<Vec<u8>>),
    /// An instant.
    Time(Option<OffsetDateTime>),
    /// A calendar date.
    Date(Option<Date>),
}

/// A value that can be bound to a statement on both backends.
pub trait Bind {
    /// The argument carrying this value.
    fn into_arg(self) -> Arg;
    /// A `NULL` of this value's type.
    fn null() -> Arg
    where
        Self: Sized;
}

macro_rules! bind_owned {
    ($($type:ty => $variant:ident),+ $(,)?) => {$(
        impl Bind for $type {
            fn into_arg(self) -> Arg {
                Arg::$variant(Some(self.into()))
            }
            fn null() -> Arg {
                Arg::$variant(None)
            }
        }
    )+};
}

bind_owned!(
    Uuid => Uuid,
    i64 => Int,
    i32 => Int32,
    u32 => Int,
    f64 => Real,
    bool => Bool,
    String => Text,
    Vec<u8> => Bytes,
    OffsetDateTime => Time,
    Date => Date,
);

impl Bind for &str {
    fn into_arg(self) -> Arg {
        Arg::Text(Some(self.to_owned()))
    }
    fn null() -> Arg {
        Arg::Text(None)
    }
}

impl Bind for &[u8] {
    fn into_arg(self) -> Arg {
        Arg::Bytes(Some(self.to_vec()))
    }
    fn null() -> Arg {
        Arg::Bytes(None)
    }
}

impl<T: Bind + Clone> Bind for &T {
    fn into_arg(self) -> Arg {
        self.clone().into_arg()
    }
    fn null() -> Arg {
        T::null()
    }
}

impl<T: Bind> Bind for Option<T> {
    fn into_arg(self) -> Arg {
        match self {
            Some(value) => value.into_arg(),
            None => T::null(),
        }
    }
    fn null() -> Arg {
        T::null()
    }
}

/// A row type both drivers can decode (derive [`sqlx::FromRow`]).
pub trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

impl<R> Row for R where R: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// A single column value both drivers can decode.
pub trait Value:
    for<'r> Decode<'r, Sqlite>
    + Type<Sqlite>
    + for<'r> Decode<'r, Postgres>
    + Type<Postgres>
    + Send
    + Unpin
{
}

impl<T> Value for T where
    T: for<'r> Decode<'r, Sqlite>
        + Type<Sqlite>
        + for<'r> Decode<'r, Postgres>
        + Type<Postgres>
        + Send
        + Unpin
{
}

/// An open transaction on either backend. Dropped without [`Tx::commit`], it rolls back.
#[derive(Debug)]
pub enum Tx {
    /// On SQLite.
    Sqlite(Transaction<'static, Sqlite>),
    /// On Postgres.
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Commits.
    pub async fn commit(self) -> DbResult<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Rolls back (dropping the transaction does too, later).
    pub async fn rollback(self) -> DbResult<()> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await?,
            Tx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

impl Database {
    /// Begins a transaction meant to write (`BEGIN IMMEDIATE` on SQLite, so that two
    /// writers never deadlock on an upgrade).
    pub async fn begin_write(&self) -> DbResult<Tx> {
        Ok(match self {
            Database::Sqlite(pool) => Tx::Sqlite(pool.begin_write().await?),
            Database::Postgres(pool) => Tx::Postgres(pool.begin_write().await?),
        })
    }

    /// Begins a transaction that only reads: one consistent snapshot on SQLite, and
    /// on Postgres a READ COMMITTED transaction unless the caller sets otherwise.
    pub async fn begin_read(&self) -> DbResult<Tx> {
        Ok(match self {
            Database::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Database::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }
}

/// Where a statement runs: the pool (a connection of its own) or a transaction.
#[derive(Debug)]
pub enum On<'e> {
    /// Any connection of the pool.
    Pool(&'e Database),
    /// Inside this transaction.
    Tx(&'e mut Tx),
}

impl<'e> From<&'e Database> for On<'e> {
    fn from(database: &'e Database) -> Self {
        On::Pool(database)
    }
}

impl<'e> From<&'e mut Tx> for On<'e> {
    fn from(tx: &'e mut Tx) -> Self {
        On::Tx(tx)
    }
}

/// A statement and its arguments, not yet bound to a backend.
#[derive(Debug, Clone)]
pub struct Query {
    sql: SqlStr,
    args: Vec<Arg>,
}

/// A statement whose rows decode as `R`.
#[derive(Debug, Clone)]
pub struct QueryAs<R> {
    query: Query,
    row: PhantomData<fn() -> R>,
}

/// A statement whose rows are one value of type `T`.
#[derive(Debug, Clone)]
pub struct QueryScalar<T> {
    query: Query,
    value: PhantomData<fn() -> T>,
}

/// A statement to execute or whose rows are read raw.
pub fn query(sql: impl SqlSafeStr) -> Query {
    Query {
        sql: sql.into_sql_str(),
        args: Vec::new(),
    }
}

/// A statement whose rows decode as `R`.
pub fn query_as<R: Row>(sql: impl SqlSafeStr) -> QueryAs<R> {
    QueryAs {
        query: query(sql),
        row: PhantomData,
    }
}

/// A statement returning one column; each row decodes as `T`.
pub fn query_scalar<T: Value>(sql: impl SqlSafeStr) -> QueryScalar<T> {
    QueryScalar {
        query: query(sql),
        value: PhantomData,
    }
}

/// Binds the collected arguments to a statement of one backend's driver.
macro_rules! bind_all {
    ($statement:expr, $args:expr) => {{
        let mut statement = $statement;
        for arg in $args {
            statement = match arg {
                Arg::Uuid(value) => statement.bind(value),
                Arg::Int(value) => statement.bind(value),
                Arg::Int32(value) => statement.bind(value),
                Arg::Real(value) => statement.bind(value),
                Arg::Bool(value) => statement.bind(value),
                Arg::Text(value) => statement.bind(value),
                Arg::Bytes(value) => statement.bind(value),
                Arg::Time(value) => statement.bind(value),
                Arg::Date(value) => statement.bind(value),
            };
        }
        statement
    }};
}

/// Runs `$run` (a method of sqlx's query types taking an executor) on the backend
/// `$on` points at, with the statement built for that backend by `$build`.
macro_rules! run_on {
    ($on:expr, $build:ident $(<$($generic:ty),*>)?, $args:expr, $sql:expr, |$statement:ident, $executor:ident| $run:expr) => {
        match $on.into() {
            On::Pool(Database::Sqlite(pool)) => {
                let $statement = bind_all!(sqlx::$build::<Sqlite $($(, $generic)*)?>($sql), $args);
                let $executor = pool;
                $run
            }
            On::Pool(Database::Postgres(pool)) => {
                let $statement = bind_all!(sqlx::$build::<Postgres $($(, $generic)*)?>($sql), $args);
                let $executor = pool;
                $run
            }
            On::Tx(Tx::Sqlite(tx)) => {
                let $statement = bind_all!(sqlx::$build::<Sqlite $($(, $generic)*)?>($sql), $args);
                let $executor = &mut **tx;
                $run
            }
            On::Tx(Tx::Postgres(tx)) => {
                let $statement = bind_all!(sqlx::$build::<Postgres $($(, $generic)*)?>($sql), $args);
                let $executor = &mut **tx;
                $run
            }
        }
    };
}

impl Query {
    /// Binds the next `$n` argument.
    #[must_use]
    pub fn bind(mut self, value: impl Bind) -> Self {
        self.args.push(value.into_arg());
        self
    }

    /// Runs the statement; returns how many rows it changed.
    pub async fn execute<'e>(self, on: impl Into<On<'e>>) -> DbResult<u64> {
        let Query { sql, args } = self;
        let done = run_on!(on, query, args, sql, |statement, executor| statement
            .execute(executor)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done)
    }
}

impl<R: Row> QueryAs<R> {
    /// Binds the next `$n` argument.
    #[must_use]
    pub fn bind(mut self, value: impl Bind) -> Self {
        self.query = self.query.bind(value);
        self
    }

    /// The first row, if any.
    pub async fn fetch_optional<'e>(self, on: impl Into<On<'e>>) -> DbResult<Option<R>> {
        let Query { sql, args } = self.query;
        Ok(run_on!(
            on,
            query_as<R>,
            args,
            sql,
            |statement, executor| statement.fetch_optional(executor).await
        )?)
    }

    /// The first row; no row is an error ([`sqlx::Error::RowNotFound`]).
    pub async fn fetch_one<'e>(self, on: impl Into<On<'e>>) -> DbResult<R> {
        let Query { sql, args } = self.query;
        Ok(run_on!(
            on,
            query_as<R>,
            args,
            sql,
            |statement, executor| statement.fetch_one(executor).await
        )?)
    }

    /// Every row.
    pub async fn fetch_all<'e>(self, on: impl Into<On<'e>>) -> DbResult<Vec<R>> {
        let Query { sql, args } = self.query;
        Ok(run_on!(
            on,
            query_as<R>,
            args,
            sql,
            |statement, executor| statement.fetch_all(executor).await
        )?)
    }
}

impl<T: Value> QueryScalar<T> {
    /// Binds the next `$n` argument.
    #[must_use]
    pub fn bind(mut self, value: impl Bind) -> Self {
        self.query = self.query.bind(value);
        self
    }

    /// The value of the first row, if any.
    pub async fn fetch_optional<'e>(self, on: impl Into<On<'e>>) -> DbResult<Option<T>> {
        let Query { sql, args } = self.query;
        Ok(run_on!(
            on,
            query_scalar<T>,
            args,
            sql,
            |statement, executor| statement.fetch_optional(executor).await
        )?)
    }

    /// The value of the first row; no row is an error.
    pub async fn fetch_one<'e>(self, on: impl Into<On<'e>>) -> DbResult<T> {
        let Query { sql, args } = self.query;
        Ok(run_on!(
            on,
            query_scalar<T>,
            args,
            sql,
            |statement, executor| statement.fetch_one(executor).await
        )?)
    }

    /// The values of every row.
    pub async fn fetch_all<'e>(self, on: impl Into<On<'e>>) -> DbResult<Vec<T>> {
        let Query { sql, args } = self.query;
        Ok(run_on!(
            on,
            query_scalar<T>,
            args,
            sql,
            |statement, executor| statement.fetch_all(executor).await
        )?)
    }
}
