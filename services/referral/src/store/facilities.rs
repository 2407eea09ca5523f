//! Facilities of directory organisations and the services they offer: added and
//! edited by their organisation, listed, and searched by service type and place.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::Scope;
use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_events::{NewEvent, OutboxWrite};
use haven_storage::idempotency::{CallerKey, Claim, Created, claim};
use haven_storage::sql::{self, On, Tx};
use haven_storage::{Database, db_error};

use super::rows::{FacilityRow, corrupt, replayed_id};
use super::{Directory, FacilityFilter};
use crate::SERVICE;
use crate::domain::{Facility, FacilityDetails};
use crate::geo::{BoundingBox, Point};

/// Facility columns with its service types folded into one comma-separated text (a
/// literal, so that each statement below is one constant).
macro_rules! select_facility {
    () => {
        "SELECT f.seq, f.id, f.organization_id, f.name, f.address, f.settlement, f.latitude, \
         f.longitude, f.capacity_total, f.capacity_free, f.accepts, f.languages, f.opening_hours, f.contact_phone, \
         f.contact_email, f.active, f.version, f.created_at, \
         (SELECT STRING_AGG(s.service_type, ',') FROM facility_services s WHERE s.facility_id = f.id) AS service_types \
         FROM facilities f"
    };
}

const SELECT_BY_ID: &str = concat!(select_facility!(), " WHERE f.id = $1");
const SELECT_PAGE: &str = concat!(
    select_facility!(),
    " WHERE f.seq > $1 AND ($2 IS NULL OR f.organization_id = $2) \
     AND ($3 IS NULL OR EXISTS (SELECT 1 FROM facility_services s WHERE s.facility_id = f.id AND s.service_type = $3)) \
     AND ($4 IS NULL OR f.settlement = $4) AND ($5 = FALSE OR f.active) ORDER BY f.seq LIMIT $6"
);
const SELECT_WITHIN: &str = concat!(
    select_facility!(),
    " WHERE f.active AND f.latitude BETWEEN $2 AND $3 AND f.longitude BETWEEN $4 AND $5 \
     AND ($6 OR f.capacity_total = 0 OR f.capacity_free > 0) \
     AND EXISTS (SELECT 1 FROM facility_services s WHERE s.facility_id = f.id AND s.service_type = $1)"
);
const SELECT_POINTS: &str = "SELECT f.id, f.latitude, f.longitude FROM facilities f WHERE f.active \
     AND EXISTS (SELECT 1 FROM facility_services s WHERE s.facility_id = f.id AND s.service_type = $1)";
const SELECT_ORGANIZATION: &str = "SELECT id FROM organizations WHERE id = $1";
const INSERT: &str = "INSERT INTO facilities (id, organization_id, name, address, settlement, latitude, longitude, capacity_total, \
     capacity_free, accepts, languages, opening_hours, contact_phone, contact_email, active, version, created_by, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $14, 1, $15, $16)";
const UPDATE: &str = "UPDATE facilities SET name = $3, address = $4, settlement = $5, latitude = $6, longitude = $7, \
     capacity_total = $8, capacity_free = $9, accepts = $10, languages = $11, opening_hours = $12, \
     contact_phone = $13, contact_email = $14, active = $15, version = version + 1 WHERE id = $1 AND version = $2";
const DELETE_SERVICES: &str = "DELETE FROM facility_services WHERE facility_id = $1";
const INSERT_SERVICE: &str =
    "INSERT INTO facility_services (facility_id, service_type) VALUES ($1, $2)";

/// Adds a facility of a directory organisation (a retry with `once` answers with the
/// first one).
pub(super) async fn create(
    directory: &Directory,
    context: &AuditContext,
    organization_id: Uuid,
    details: FacilityDetails,
    once: Option<&CallerKey>,
) -> HavenResult<Created<Facility>> {
    let mut tx = directory.database.begin_write().await?;
    let id = Uuid::now_v7();
    if let Claim::Replay(earlier) = claim(&mut tx, once, &id.to_string()).await? {
        let facility = facility_by_id(&mut tx, replayed_id(&earlier)?)
            .await?
            .ok_or_else(|| corrupt("facility"))?;
        return Ok(Created::replay(facility));
    }
    let known: Option<Uuid> = sql::query_scalar(SELECT_ORGANIZATION)
        .bind(organization_id)
        .fetch_optional(&mut tx)
        .await?;
    if known.is_none() {
        return Err(HavenError::invalid_field(
            "organization_id",
            "is not in the directory: add the organisation first (POST /v1/organizations)",
        ));
    }
    sql::query(INSERT)
        .bind(id)
        .bind(organization_id)
        .bind(&details.name)
        .bind(&details.address)
        .bind(&details.settlement)
        .bind(details.point.latitude)
        .bind(details.point.longitude)
        .bind(i64::from(details.capacity_total))
        .bind(serde_json::to_string(&details.accepts).map_err(HavenError::internal)?)
        .bind(serde_json::to_string(&details.languages).map_err(HavenError::internal)?)
        .bind(&details.opening_hours)
        .bind(&details.contact_phone)
        .bind(&details.contact_email)
        .bind(details.active)
        .bind(&context.principal.subject)
        .bind(OffsetDateTime::now_utc())
        .execute(&mut tx)
        .await?;
    set_services(&mut tx, id, &details.service_types).await?;
    let event = NewEvent {
        event_type: "facility.created",
        aggregate_id: id,
        organization_id,
        payload: serde_json::json!({
            "facility_id": id,
            "settlement": details.settlement,
            "service_types": details.service_types,
            "capacity_total": details.capacity_total,
        }),
    };
    OutboxWrite::append_event(&mut tx, SERVICE, &event)
        .await
        .map_err(db_error)?;
    let facility = facility_by_id(&mut tx, id)
        .await?
        .ok_or_else(|| corrupt("facility"))?;
    tx.commit().await?;
    directory.signal.notify();
    Ok(Created::new(facility))
}

/// Facilities in creation order after the cursor position.
pub(super) async fn list(
    database: &Database,
    filter: &FacilityFilter,
    after: Option<i64>,
    limit: u32,
) -> HavenResult<Vec<Facility>> {
    let rows: Vec<FacilityRow> = sql::query_as(SELECT_PAGE)
        .bind(after.unwrap_or(0))
        .bind(filter.organization_id)
        .bind(filter.service_type.as_deref())
        .bind(filter.settlement.as_deref())
        .bind(filter.active_only)
        .bind(i64::from(limit))
        .fetch_all(database)
        .await?;
    rows.into_iter().map(Facility::try_from).collect()
}

/// Replaces a facility's details at `expected_version`; `None` outside `scope`.
pub(super) async fn update(
    directory: &Directory,
    context: &AuditContext,
    scope: Scope,
    id: Uuid,
    expected_version: i64,
    details: FacilityDetails,
) -> HavenResult<Option<Facility>> {
    let mut tx = directory.database.begin_write().await?;
    let Some(facility) = facility_by_id(&mut tx, id)
        .await?
        .filter(|facility| scope.contains(facility.organization_id))
    else {
        return Ok(None);
    };
    if facility.version != expected_version {
        return Err(HavenError::new(
            ErrorCode::PreconditionFailed,
            format!(
                "the facility changed since you read it (now at version {})",
                facility.version
            ),
        ));
    }
    let free = facility.free_places_with_total(details.capacity_total);
    let updated = sql::query(UPDATE)
        .bind(id)
        .bind(expected_version)
        .bind(&details.name)
        .bind(&details.address)
        .bind(&details.settlement)
        .bind(details.point.latitude)
        .bind(details.point.longitude)
        .bind(i64::from(details.capacity_total))
        .bind(free)
        .bind(serde_json::to_string(&details.accepts).map_err(HavenError::internal)?)
        .bind(serde_json::to_string(&details.languages).map_err(HavenError::internal)?)
        .bind(&details.opening_hours)
        .bind(&details.contact_phone)
        .bind(&details.contact_email)
        .bind(details.active)
        .execute(&mut tx)
        .await?;
    if updated != 1 {
        return Err(HavenError::new(
            ErrorCode::PreconditionFailed,
            "the facility changed since you read it",
        ));
    }
    set_services(&mut tx, id, &details.service_types).await?;
    let event = NewEvent {
        event_type: "facility.updated",
        aggregate_id: id,
        organization_id: facility.organization_id,
        payload: serde_json::json!({
            "facility_id": id,
            "service_types": details.service_types,
            "capacity_total": details.capacity_total,
            "active": details.active,
            "by": context.principal.subject,
        }),
    };
    OutboxWrite::append_event(&mut tx, SERVICE, &event)
        .await
        .map_err(db_error)?;
    let facility = facility_by_id(&mut tx, id)
        .await?
        .ok_or_else(|| corrupt("facility"))?;
    tx.commit().await?;
    directory.signal.notify();
    Ok(Some(facility))
}

/// Active facilities offering `service_type` inside `frame` (with room unless
/// `include_full`).
pub(super) async fn within(
    database: &Database,
    service_type: &str,
    frame: BoundingBox,
    include_full: bool,
) -> HavenResult<Vec<Facility>> {
    let rows: Vec<FacilityRow> = sql::query_as(SELECT_WITHIN)
        .bind(service_type)
        .bind(frame.min_latitude)
        .bind(frame.max_latitude)
        .bind(frame.min_longitude)
        .bind(frame.max_longitude)
        .bind(include_full)
        .fetch_all(database)
        .await?;
    rows.into_iter().map(Facility::try_from).collect()
}

/// Id and position of every active facility offering `service_type`.
pub(super) async fn points(
    database: &Database,
    service_type: &str,
) -> HavenResult<Vec<(Uuid, Point)>> {
    let rows: Vec<(Uuid, f64, f64)> = sql::query_as(SELECT_POINTS)
        .bind(service_type)
        .fetch_all(database)
        .await?;
    rows.into_iter()
        .map(|(id, latitude, longitude)| {
            Point::new(latitude, longitude)
                .map(|point| (id, point))
                .ok_or_else(|| corrupt("facility"))
        })
        .collect()
}

/// The facility `id`, on the pool or inside a transaction.
pub(super) async fn facility_by_id<'e>(
    on: impl Into<On<'e>>,
    id: Uuid,
) -> HavenResult<Option<Facility>> {
    let row: Option<FacilityRow> = sql::query_as(SELECT_BY_ID)
        .bind(id)
        .fetch_optional(on)
        .await?;
    row.map(Facility::try_from).transpose()
}

/// Replaces the service types a facility offers.
async fn set_services(tx: &mut Tx, facility_id: Uuid, service_types: &[String]) -> HavenResult<()> {
    sql::query(DELETE_SERVICES)
        .bind(facility_id)
        .execute(&mut *tx)
        .await?;
    for service_type in service_types {
        sql::query(INSERT_SERVICE)
            .bind(facility_id)
            .bind(service_type)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
