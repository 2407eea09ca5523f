//! Directory storage: one trait, one implementation per backend (shared SQL).

use std::sync::Arc;

use sqlx::FromRow;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_events::{EventSignal, NewEvent, OutboxWrite};
use haven_storage::{Database, WritePool, db_error, is_unique_violation};

use crate::SERVICE;
use crate::domain::{Organization, OrganizationType};

/// An organisation to add.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    /// Name.
    pub name: String,
    /// Kind.
    pub organization_type: OrganizationType,
    /// Settlement.
    pub settlement: String,
    /// Who adds it.
    pub created_by: String,
}

/// Persistence of the directory. The directory is shared by every organisation.
#[async_trait::async_trait]
pub trait DirectoryStore: Send + Sync + std::fmt::Debug {
    /// Adds an organisation; a duplicate name is `AlreadyExists`.
    async fn create_organization(&self, new: NewOrganization) -> HavenResult<Organization>;
    /// One organisation.
    async fn get_organization(&self, id: Uuid) -> HavenResult<Option<Organization>>;
    /// Organisations in creation order after the cursor position.
    async fn list_organizations(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Organization>>;
}

/// The store for a database.
pub fn open(database: Database, signal: EventSignal) -> Arc<dyn DirectoryStore> {
    match database {
        Database::Sqlite(pool) => Arc::new(SqliteDirectoryStore { pool, signal }),
        Database::Postgres(pool) => Arc::new(PostgresDirectoryStore { pool, signal }),
    }
}

#[derive(Debug, FromRow)]
struct OrganizationRow {
    seq: i64,
    id: Uuid,
    name: String,
    organization_type: String,
    settlement: String,
    active: bool,
    created_at: OffsetDateTime,
    version: i64,
}

impl TryFrom<OrganizationRow> for Organization {
    type Error = HavenError;

    fn try_from(row: OrganizationRow) -> HavenResult<Self> {
        Ok(Organization {
            id: row.id,
            name: row.name,
            organization_type: OrganizationType::parse(&row.organization_type).ok_or_else(
                || {
                    HavenError::internal(std::io::Error::other(
                        "stored organisation has unknown type",
                    ))
                },
            )?,
            settlement: row.settlement,
            active: row.active,
            created_at: row.created_at,
            version: row.version,
            position: row.seq,
        })
    }
}

const SELECT_BY_ID: &str = "SELECT seq, id, name, organization_type, settlement, active, created_at, version \
    FROM organizations WHERE id = $1";
const SELECT_PAGE: &str = "SELECT seq, id, name, organization_type, settlement, active, created_at, version \
    FROM organizations WHERE seq > $1 ORDER BY seq LIMIT $2";
const INSERT: &str = "INSERT INTO organizations (id, name, organization_type, settlement, active, created_by, \
    created_at, version) VALUES ($1, $2, $3, $4, TRUE, $5, $6, 1)";

macro_rules! directory_store {
    ($name:ident, $pool:ty) => {
        /// Directory storage on one backend.
        #[derive(Debug)]
        pub struct $name {
            pool: $pool,
            signal: EventSignal,
        }

        #[async_trait::async_trait]
        impl DirectoryStore for $name {
            #[tracing::instrument(skip_all)]
            async fn create_organization(&self, new: NewOrganization) -> HavenResult<Organization> {
                let id = Uuid::now_v7();
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let inserted = sqlx::query(INSERT)
                    .bind(id)
                    .bind(&new.name)
                    .bind(new.organization_type.as_str())
                    .bind(&new.settlement)
                    .bind(&new.created_by)
                    .bind(OffsetDateTime::now_utc())
                    .execute(&mut *tx)
                    .await;
                match inserted {
                    Ok(_) => {}
                    Err(error) if is_unique_violation(&error) => {
                        return Err(HavenError::new(
                            ErrorCode::AlreadyExists,
                            "an organisation with this name is already in the directory",
                        ));
                    }
                    Err(error) => return Err(db_error(error)),
                }
                let event = NewEvent {
                    event_type: "organization.created",
                    aggregate_id: id,
                    organization_id: id,
                    payload: serde_json::json!({ "organization_type": new.organization_type.as_str() }),
                };
                OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                let row: OrganizationRow = sqlx::query_as(SELECT_BY_ID).bind(id).fetch_one(&mut *tx).await.map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Organization::try_from(row)
            }

            #[tracing::instrument(skip_all, fields(organization_id = %id))]
            async fn get_organization(&self, id: Uuid) -> HavenResult<Option<Organization>> {
                let row: Option<OrganizationRow> =
                    sqlx::query_as(SELECT_BY_ID).bind(id).fetch_optional(&self.pool).await.map_err(db_error)?;
                row.map(Organization::try_from).transpose()
            }

            #[tracing::instrument(skip_all)]
            async fn list_organizations(&self, after: Option<i64>, limit: u32) -> HavenResult<Vec<Organization>> {
                let rows: Vec<OrganizationRow> = sqlx::query_as(SELECT_PAGE)
                    .bind(after.unwrap_or(0))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.into_iter().map(Organization::try_from).collect()
            }
        }
    };
}

directory_store!(SqliteDirectoryStore, SqlitePool);
directory_store!(PostgresDirectoryStore, PgPool);
