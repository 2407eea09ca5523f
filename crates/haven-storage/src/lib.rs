//! Database access shared by every service.
//!
//! The URL in settings picks the backend: embedded SQLite (default, one file per
//! service under the data directory) or Postgres (one schema per service, selected
//! with `search_path`). Each service keeps one storage implementation per backend;
//! this crate gives them the pool, migrations and transaction helpers.

pub mod idempotency;
pub mod sql;
#[cfg(feature = "testing")]
pub mod testing;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};

use haven_config::Settings;
use haven_error::HavenError;

/// A service's database, on one of the two backends.
#[derive(Debug, Clone)]
pub enum Database {
    /// Embedded SQLite file.
    Sqlite(SqlitePool),
    /// Postgres, with `search_path` set to the service's schema.
    Postgres(PgPool),
}

/// The migrations of one component, one set per backend.
#[derive(Debug, Clone, Copy)]
pub struct MigrationSet {
    /// Bookkeeping table, e.g. `_sqlx_migrations` for a service's own schema and
    /// `_haven_events_migrations` for the shared outbox tables, so the two sets never
    /// collide.
    pub table: &'static str,
    /// Builds the SQLite migrator (`sqlx::migrate!("migrations/sqlite")`).
    pub sqlite: fn() -> Migrator,
    /// Builds the Postgres migrator.
    pub postgres: fn() -> Migrator,
}

impl Database {
    /// Opens the database of `service` (e.g. `case`) as settings say, creating the
    /// SQLite file or the Postgres schema if needed, and applies `migrations` in order.
    pub async fn connect(
        settings: &Settings,
        service: &str,
        migrations: &[MigrationSet],
    ) -> anyhow::Result<Self> {
        match &settings.database.url {
            Some(url) => {
                // Migrations wait for their locks (the migration lock of a replica
                // starting at the same time, tables busy with requests) as long as
                // they must: they run on connections without the lock timeout that
                // bounds requests.
                let migrating =
                    Self::connect_postgres(settings, url.expose(), service, Waits::Unbounded)
                        .await?;
                let migrated = migrating.migrate(migrations).await;
                migrating.close().await;
                migrated?;
                Self::connect_postgres(settings, url.expose(), service, Waits::Bounded).await
            }
            None => {
                let database = Self::connect_sqlite(settings, service).await?;
                database.migrate(migrations).await?;
                Ok(database)
            }
        }
    }

    async fn connect_sqlite(settings: &Settings, service: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir).map_err(|error| {
            anyhow::anyhow!(
                "cannot create data_dir {}: {error}",
                settings.data_dir.display()
            )
        })?;
        let path = settings.data_dir.join(format!("{service}.db"));
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // A writer waits this long for the single write lock, then the request
            // fails as unavailable (503) rather than outliving its deadline.
            .busy_timeout(Duration::from_millis(settings.database.lock_timeout_ms))
            .foreign_keys(true)
            // Deleted and overwritten content is zeroed in the file, not left in free
            // space: erasure must leave no copy of a destroyed key behind.
            .pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.database.max_connections)
            .acquire_timeout(Duration::from_secs(
                settings.database.acquire_timeout_seconds,
            ))
            .connect_with(options)
            .await
            .map_err(|error| anyhow::anyhow!("cannot open {}: {error}", path.display()))?;
        Ok(Self::Sqlite(pool))
    }

    async fn connect_postgres(
        settings: &Settings,
        url: &str,
        schema: &str,
        waits: Waits,
    ) -> anyhow::Result<Self> {
        debug_assert!(schema.chars().all(|c| c.is_ascii_lowercase()));
        let base = PgConnectOptions::from_str(url).map_err(|error| {
            anyhow::anyhow!("database.url is not a valid Postgres URL: {error}")
        })?;
        let bootstrap = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(
                settings.database.acquire_timeout_seconds,
            ))
            .connect_with(base.clone())
            .await
            .map_err(|error| anyhow::anyhow!("cannot connect to Postgres: {error}"))?;
        // Replicas starting together may race to create the schema; losing is fine.
        let created = sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .execute(&bootstrap)
        .await;
        if let Err(error) = created
            && !is_unique_violation(&error)
        {
            return Err(anyhow::anyhow!("cannot create schema {schema}: {error}"));
        }
        bootstrap.close().await;
        // No statement waits for a lock longer than `lock_timeout_ms` (the request then
        // fails as unavailable, 503, and is retried), and a session that stops
        // between statements with a transaction open (a frozen process) loses it
        // after a minute, releasing what it locked.
        let lock_timeout = settings.database.lock_timeout_ms.to_string();
        let options = match waits {
            Waits::Bounded => base.options([
                ("search_path", schema),
                ("lock_timeout", lock_timeout.as_str()),
                (
                    "idle_in_transaction_session_timeout",
                    IDLE_IN_TRANSACTION_TIMEOUT_MS,
                ),
            ]),
            Waits::Unbounded => base.options([("search_path", schema)]),
        };
        let pool = PgPoolOptions::new()
            .max_connections(settings.database.max_connections)
            .acquire_timeout(Duration::from_secs(
                settings.database.acquire_timeout_seconds,
            ))
            .connect_with(options)
            .await
            .map_err(|error| anyhow::anyhow!("cannot connect to Postgres: {error}"))?;
        Ok(Self::Postgres(pool))
    }

    /// Applies each set of migrations, in order.
    pub async fn migrate(&self, migrations: &[MigrationSet]) -> anyhow::Result<()> {
        for set in migrations {
            match self {
                Self::Sqlite(pool) => {
                    let mut migrator = (set.sqlite)();
                    migrator.dangerous_set_table_name(set.table);
                    migrator.run(pool).await
                }
                Self::Postgres(pool) => {
                    let mut migrator = (set.postgres)();
                    migrator.dangerous_set_table_name(set.table);
                    migrator.run(pool).await
                }
            }
            .map_err(|error| anyhow::anyhow!("migrations ({}): {error}", set.table))?;
        }
        Ok(())
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<(), HavenError> {
        let result = match self {
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        };
        result.map_err(|error| HavenError::unavailable("the database", error))
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

impl From<SqlitePool> for Database {
    fn from(pool: SqlitePool) -> Self {
        Self::Sqlite(pool)
    }
}

impl From<PgPool> for Database {
    fn from(pool: PgPool) -> Self {
        Self::Postgres(pool)
    }
}

/// A pool that can start a write transaction. On SQLite the transaction takes the
/// write lock up front (`BEGIN IMMEDIATE`), so two writers queue instead of failing
/// with `SQLITE_BUSY` when a read lock would have to be upgraded.
#[async_trait::async_trait]
pub trait WritePool: Send + Sync {
    /// The backend.
    type Db: sqlx::Database;
    /// Begins a transaction meant to write.
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>, sqlx::Error>;
}

#[async_trait::async_trait]
impl WritePool for SqlitePool {
    type Db = Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

#[async_trait::async_trait]
impl WritePool for PgPool {
    type Db = Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// Removing what a committed erasure left in the database files outside the live rows.
///
/// - SQLite: `secure_delete` (set on every connection) zeroes deleted content in the
///   pages, but until a checkpoint the WAL still holds older page images; this copies
///   the WAL into the database file and truncates it to zero bytes
///   (`wal_checkpoint(TRUNCATE)`), retrying while readers hold older snapshots.
/// - Postgres: nothing can be done from a connection. The old row version stays in
///   the table's files until vacuum reuses its space, in the WAL until the segment is
///   recycled after a checkpoint, and in WAL archives and base backups for as long as
///   they are kept (see the README on erasure).
#[async_trait::async_trait]
pub trait ForgetDeleted: Send + Sync {
    /// Runs after the erasing transaction committed. An error means a copy may remain
    /// (the erasure itself stands): report it so the caller can retry.
    async fn forget_deleted(&self) -> Result<(), HavenError>;
}

/// How often a busy checkpoint is retried before giving up.
const CHECKPOINT_ATTEMPTS: u32 = 50;
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(100);

#[async_trait::async_trait]
impl ForgetDeleted for SqlitePool {
    async fn forget_deleted(&self) -> Result<(), HavenError> {
        for _ in 0..CHECKPOINT_ATTEMPTS {
            // (busy, frames in the WAL, frames checkpointed): busy = 1 when a reader or
            // writer kept the checkpoint from completing and truncating the WAL.
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(self)
                .await
                .map_err(db_error)?;
            if busy == 0 {
                return Ok(());
            }
            tokio::time::sleep(CHECKPOINT_PAUSE).await;
        }
        tracing::warn!("the write-ahead log could not be checkpointed after an erasure");
        Err(HavenError::unavailable(
            "the database",
            std::io::Error::other(
                "write-ahead log busy; the erasure is committed, retry it to clear the log",
            ),
        ))
    }
}

#[async_trait::async_trait]
impl ForgetDeleted for PgPool {
    async fn forget_deleted(&self) -> Result<(), HavenError> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl ForgetDeleted for Database {
    async fn forget_deleted(&self) -> Result<(), HavenError> {
        match self {
            Self::Sqlite(pool) => pool.forget_deleted().await,
            Self::Postgres(pool) => pool.forget_deleted().await,
        }
    }
}

/// Implements `as_str`/`parse` (the stored and REST spelling) and
/// `to_proto`/`from_proto` for a domain enum that mirrors a protobuf enum.
///
/// ```ignore
/// haven_storage::stored_enum!(CaseStatus, pb::CaseStatus, Active => "active" / Active);
/// ```
#[macro_export]
macro_rules! stored_enum {
    ($type:ident, $proto:ty, $($variant:ident => $text:literal / $wire:ident),+ $(,)?) => {
        impl $type {
            /// The stored (and REST) spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Parses the stored spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }

            /// The protobuf value.
            pub fn to_proto(self) -> $proto {
                match self { $(Self::$variant => <$proto>::$wire),+ }
            }

            /// From a protobuf value; `None` for UNSPECIFIED.
            pub fn from_proto(value: $proto) -> Option<Self> {
                match value { $(<$proto>::$wire => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

/// Whether a query failed on a unique constraint (either backend).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The name of the constraint a query violated, if the backend reports it.
pub fn violated_constraint(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.constraint().map(str::to_owned).or_else(|| {
            // SQLite names the columns in the message instead of the constraint.
            Some(db.message().to_owned())
        }),
        _ => None,
    }
}

/// Maps a database error to a [`HavenError`]: connection trouble is `Unavailable`
/// (retrying may help), anything else `Internal`. The cause is only logged.
pub fn db_error(error: sqlx::Error) -> HavenError {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            HavenError::unavailable("the database", error)
        }
        sqlx::Error::Database(ref database) if is_lock_wait(database.as_ref()) => {
            HavenError::unavailable("the database (busy)", error)
        }
        other => HavenError::internal(other),
    }
}

/// Whether a pool's statements give up waiting for locks.
#[derive(Debug, Clone, Copy)]
enum Waits {
    /// After `database.lock_timeout_ms`: the pool of requests.
    Bounded,
    /// Never: the pool of migrations.
    Unbounded,
}

/// Milliseconds a Postgres session may stay idle inside a transaction.
const IDLE_IN_TRANSACTION_TIMEOUT_MS: &str = "60000";

/// Whether a database error says that a statement gave up waiting for a lock (or was
/// chosen to break a deadlock): nothing was written, and the request may be retried.
fn is_lock_wait(error: &dyn sqlx::error::DatabaseError) -> bool {
    match error.code().as_deref() {
        // Postgres: lock_not_available (lock_timeout), deadlock_detected, and a
        // session ended for idling in a transaction.
        Some("55P03" | "40P01" | "25P03") => true,
        // SQLite: SQLITE_BUSY and its extended codes (busy_timeout passed).
        Some(code) => {
            error
                .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                .is_some()
                && code.parse::<u32>().is_ok_and(|code| code & 0xff == 5)
        }
        None => false,
    }
}

/// Cursor over `(created_at, id)` ordering, encoded opaquely for clients.
pub mod cursor {
    use haven_error::HavenError;

    /// Largest page a client may ask for.
    pub const MAX_LIMIT: u32 = 100;
    /// Page size when the client does not say.
    pub const DEFAULT_LIMIT: u32 = 50;

    /// Validates a requested page size: 0 means the default, above 100 is an error.
    pub fn limit(requested: u32) -> Result<u32, HavenError> {
        match requested {
            0 => Ok(DEFAULT_LIMIT),
            limit if limit <= MAX_LIMIT => Ok(limit),
            _ => Err(HavenError::invalid_field("limit", "must be at most 100")),
        }
    }

    /// Encodes a position (the sort key of the last row returned).
    pub fn encode(position: i64) -> String {
        format!("c{position:x}")
    }

    /// Decodes a cursor; empty means the first page.
    pub fn decode(cursor: &str) -> Result<Option<i64>, HavenError> {
        if cursor.is_empty() {
            return Ok(None);
        }
        cursor
            .strip_prefix('c')
            .and_then(|hex| i64::from_str_radix(hex, 16).ok())
            .map(Some)
            .ok_or_else(|| HavenError::invalid_field("cursor", "is not a cursor this API returned"))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn cursors_round_trip_and_garbage_is_refused() {
            assert_eq!(super::decode(&super::encode(12345)).unwrap(), Some(12345));
            assert_eq!(super::decode("").unwrap(), None);
            assert!(super::decode("zzz").is_err());
            assert!(super::limit(101).is_err());
            assert_eq!(super::limit(0).unwrap(), 50);
        }
    }
}
