//! Organisations of the directory: added once (a name is unique), read by anyone.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_events::{NewEvent, OutboxWrite};
use haven_storage::idempotency::{CallerKey, Claim, Created, claim};
use haven_storage::{Database, db_error, sql};

use super::rows::{OrganizationRow, replayed_id};
use super::{Directory, NewOrganization};
use crate::SERVICE;
use crate::domain::Organization;

const SELECT_BY_ID: &str = "SELECT seq, id, name, organization_type, settlement, active, created_at, version \
    FROM organizations WHERE id = $1";
const SELECT_PAGE: &str = "SELECT seq, id, name, organization_type, settlement, active, created_at, version \
    FROM organizations WHERE seq > $1 ORDER BY seq LIMIT $2";
const INSERT: &str = "INSERT INTO organizations (id, name, organization_type, settlement, active, created_by, \
    created_at, version) VALUES ($1, $2, $3, $4, TRUE, $5, $6, 1)";

/// Adds an organisation (a retry with `once` answers with the first one).
pub(super) async fn create(
    directory: &Directory,
    new: NewOrganization,
    once: Option<&CallerKey>,
) -> HavenResult<Created<Organization>> {
    let id = new.id.unwrap_or_else(Uuid::now_v7);
    let mut tx = directory.database.begin_write().await?;
    if let Claim::Replay(earlier) = claim(&mut tx, once, &id.to_string()).await? {
        let row: OrganizationRow = sql::query_as(SELECT_BY_ID)
            .bind(replayed_id(&earlier)?)
            .fetch_one(&mut tx)
            .await?;
        return Organization::try_from(row).map(Created::replay);
    }
    let inserted = sql::query(INSERT)
        .bind(id)
        .bind(&new.name)
        .bind(new.organization_type.as_str())
        .bind(&new.settlement)
        .bind(&new.created_by)
        .bind(OffsetDateTime::now_utc())
        .execute(&mut tx)
        .await;
    match inserted {
        Ok(_) => {}
        Err(error) if error.is_unique_violation() => {
            return Err(HavenError::new(
                ErrorCode::AlreadyExists,
                "an organisation with this name or id is already in the directory",
            ));
        }
        Err(error) => return Err(error.into()),
    }
    let event = NewEvent {
        event_type: "organization.created",
        aggregate_id: id,
        organization_id: id,
        payload: serde_json::json!({ "organization_type": new.organization_type.as_str() }),
    };
    OutboxWrite::append_event(&mut tx, SERVICE, &event)
        .await
        .map_err(db_error)?;
    let row: OrganizationRow = sql::query_as(SELECT_BY_ID)
        .bind(id)
        .fetch_one(&mut tx)
        .await?;
    tx.commit().await?;
    directory.signal.notify();
    Organization::try_from(row).map(Created::new)
}

/// One organisation.
pub(super) async fn get(database: &Database, id: Uuid) -> HavenResult<Option<Organization>> {
    let row: Option<OrganizationRow> = sql::query_as(SELECT_BY_ID)
        .bind(id)
        .fetch_optional(database)
        .await?;
    row.map(Organization::try_from).transpose()
}

/// Organisations in creation order after the cursor position.
pub(super) async fn list(
    database: &Database,
    after: Option<i64>,
    limit: u32,
) -> HavenResult<Vec<Organization>> {
    let rows: Vec<OrganizationRow> = sql::query_as(SELECT_PAGE)
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(database)
        .await?;
    rows.into_iter().map(Organization::try_from).collect()
}
