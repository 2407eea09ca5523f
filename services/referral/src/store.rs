//! Directory storage: one trait, one implementation per backend (shared SQL).

use std::sync::Arc;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_events::{EventSignal, NewEvent, OutboxWrite};
use haven_storage::idempotency::{CallerKey, Claim, Created, claim, earlier};
use haven_storage::{Database, ForgetDeleted, WritePool, db_error, is_unique_violation};

use haven_audit::{AuditContext, AuditWrite, Receipt, SealingKey};
use haven_auth::Scope;
use haven_events::{CheckpointWrite, EventSink};
use haven_proto::common::v1::Event;

use crate::SERVICE;
use crate::crypto::{self, ReferralCrypto, StoredKey, StoredTexts, TextColumn};
use crate::domain::{
    Facility, FacilityDetails, Organization, OrganizationType, Referral, ReferralStatus, Side,
    Urgency,
};
use crate::geo::{BoundingBox, Point};

mod rows;

use rows::{FacilityRow, OrganizationRow, ReferralRow, SealedReferral, corrupt, replayed_id};

/// An organisation to add.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    /// Its id (as tokens' `org` claim carries it), or `None` for a new one.
    pub id: Option<Uuid>,
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
pub trait DirectoryStore: EventSink + Send + Sync + std::fmt::Debug {
    /// Adds an organisation; a duplicate name is `AlreadyExists`. With `once`, a retry
    /// answers with the organisation the first request added.
    async fn create_organization(
        &self,
        new: NewOrganization,
        once: Option<&CallerKey>,
    ) -> HavenResult<Created<Organization>>;
    /// One organisation.
    async fn get_organization(&self, id: Uuid) -> HavenResult<Option<Organization>>;
    /// Organisations in creation order after the cursor position.
    async fn list_organizations(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Organization>>;
    /// Adds a facility of a directory organisation. With `once`, a retry answers with
    /// the facility the first request added.
    async fn create_facility(
        &self,
        context: &AuditContext,
        organization_id: Uuid,
        details: FacilityDetails,
        once: Option<&CallerKey>,
    ) -> HavenResult<Created<Facility>>;
    /// One facility.
    async fn get_facility(&self, id: Uuid) -> HavenResult<Option<Facility>>;
    /// Facilities in creation order after the cursor position.
    async fn list_facilities(
        &self,
        filter: &FacilityFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Facility>>;
    /// Replaces a facility's details at `expected_version`; `None` outside `scope`.
    async fn update_facility(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        expected_version: i64,
        details: FacilityDetails,
    ) -> HavenResult<Option<Facility>>;
    /// Active facilities offering `service_type` inside `frame` (with room unless
    /// `include_full`): the candidates of a search, before exact distances.
    async fn facilities_in(
        &self,
        service_type: &str,
        frame: BoundingBox,
        include_full: bool,
    ) -> HavenResult<Vec<Facility>>;
    /// Id and position of every active facility offering `service_type`.
    async fn facility_points(&self, service_type: &str) -> HavenResult<Vec<(Uuid, Point)>>;
    /// Records a referral (consent and case already checked by the caller). With
    /// `once`, a retry answers with the referral the first request recorded (its read
    /// audited).
    async fn create_referral(
        &self,
        context: &AuditContext,
        new: NewReferral,
        once: Option<&CallerKey>,
    ) -> HavenResult<Created<Referral>>;
    /// The referral an earlier request with `once` recorded, if any (its read
    /// audited), before the checks of a create: a retry of a referral that was made
    /// gets it even if the case has closed since (`422` if the key came with
    /// another request).
    async fn replayed_referral(
        &self,
        context: &AuditContext,
        once: &CallerKey,
    ) -> HavenResult<Option<Referral>>;
    /// A referral the organisation of `scope` sent or received, its texts decrypted;
    /// the read is audited in the same transaction.
    async fn get_referral(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
    ) -> HavenResult<Option<Referral>>;
    /// Referrals the organisation of `scope` sent or received, after the cursor, their
    /// texts decrypted; one audit entry per referral returned, in the same transaction.
    async fn list_referrals(
        &self,
        context: &AuditContext,
        scope: Scope,
        filter: &ReferralFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Referral>>;
    /// Moves a referral at `expected_version`, holding or releasing a place.
    async fn change_referral_status(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        expected_version: i64,
        change: StatusChange,
    ) -> HavenResult<Option<Referral>>;
    /// Records that the receiving side read what a referral discloses.
    async fn audit_disclosure(
        &self,
        context: &AuditContext,
        referral: &Referral,
    ) -> HavenResult<()>;
    /// Encrypts the texts of referrals written before texts were encrypted (once, at
    /// start-up; a no-op when there are none). Returns how many were encrypted.
    async fn encrypt_legacy_texts(&self) -> HavenResult<u64>;
    /// Re-wraps every referral's data key under the active master key version (after
    /// a rotation, before the old version is retired). Returns how many moved.
    async fn rewrap_keys(&self) -> HavenResult<u64>;
}

/// The audit action of reading a referral's texts.
const READ_ACTION: &str = "referral.read";

/// Filters of a facility list.
#[derive(Debug, Clone, Default)]
pub struct FacilityFilter {
    /// Of this organisation.
    pub organization_id: Option<Uuid>,
    /// Offering this service.
    pub service_type: Option<String>,
    /// In this settlement.
    pub settlement: Option<String>,
    /// Only active ones.
    pub active_only: bool,
}

/// A referral to record.
#[derive(Debug, Clone)]
pub struct NewReferral {
    /// The case.
    pub case_id: Uuid,
    /// Its code.
    pub case_code: String,
    /// Its screening.
    pub screening_id: Uuid,
    /// Sender (the case's owner).
    pub from_organization_id: Uuid,
    /// The facility (its organisation receives).
    pub facility: Facility,
    /// Service type.
    pub service_type: String,
    /// Purpose.
    pub purpose: String,
    /// Urgency.
    pub urgency: Urgency,
    /// Answer due.
    pub accept_by: OffsetDateTime,
    /// Outcome due.
    pub outcome_due_on: time::Date,
}

/// Filters of a referral list.
#[derive(Debug, Clone, Default)]
pub struct ReferralFilter {
    /// Only sent (`Sender`) or received (`Receiver`) ones.
    pub side: Option<Side>,
    /// With this status.
    pub status: Option<ReferralStatus>,
    /// Of this case.
    pub case_id: Option<Uuid>,
    /// Waiting for an answer past their time.
    pub acceptance_overdue: bool,
    /// Accepted or under way past the outcome's due date.
    pub outcome_overdue: bool,
}

/// A move of a referral.
#[derive(Debug, Clone)]
pub struct StatusChange {
    /// The status to move to.
    pub to: ReferralStatus,
    /// Why (declined, cancelled, revoked).
    pub reason: String,
    /// What came of it (completed).
    pub outcome: String,
}

/// The store for a database; referral texts are encrypted with `crypto`.
pub fn open(
    database: Database,
    signal: EventSignal,
    crypto: ReferralCrypto,
) -> Arc<dyn DirectoryStore> {
    match database {
        Database::Sqlite(pool) => Arc::new(SqliteDirectoryStore {
            pool,
            signal,
            crypto,
        }),
        Database::Postgres(pool) => Arc::new(PostgresDirectoryStore {
            pool,
            signal,
            crypto,
        }),
    }
}

/// Facility columns with its service types folded into one comma-separated text.
const SELECT_FACILITY: &str = "SELECT f.seq, f.id, f.organization_id, f.name, f.address, f.settlement, f.latitude, \
    f.longitude, f.capacity_total, f.capacity_free, f.accepts, f.languages, f.opening_hours, f.contact_phone, \
    f.contact_email, f.active, f.version, f.created_at, \
    (SELECT STRING_AGG(s.service_type, ',') FROM facility_services s WHERE s.facility_id = f.id) AS service_types \
    FROM facilities f";
const SELECT_REFERRAL: &str = "SELECT seq, id, case_id, case_code, screening_id, from_organization_id, \
    to_organization_id, facility_id, service_type, purpose, urgency, requested_by, requested_at, accept_by, \
    outcome_due_on, status, status_reason, outcome, capacity_reserved, version, updated_at, data_key, shredded \
    FROM referrals";

const SELECT_BY_ID: &str = "SELECT seq, id, name, organization_type, settlement, active, created_at, version \
    FROM organizations WHERE id = $1";
const SELECT_PAGE: &str = "SELECT seq, id, name, organization_type, settlement, active, created_at, version \
    FROM organizations WHERE seq > $1 ORDER BY seq LIMIT $2";
const INSERT: &str = "INSERT INTO organizations (id, name, organization_type, settlement, active, created_by, \
    created_at, version) VALUES ($1, $2, $3, $4, TRUE, $5, $6, 1)";

macro_rules! directory_store {
    ($name:ident, $pool:ty, $connection:ty) => {
        /// Directory storage on one backend.
        #[derive(Debug)]
        pub struct $name {
            pool: $pool,
            signal: EventSignal,
            crypto: ReferralCrypto,
        }

        #[async_trait::async_trait]
        impl DirectoryStore for $name {
            #[tracing::instrument(skip_all)]
            async fn create_organization(&self, new: NewOrganization, once: Option<&CallerKey>) -> HavenResult<Created<Organization>> {
                let id = new.id.unwrap_or_else(Uuid::now_v7);
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                if let Claim::Replay(earlier) = claim(&mut *tx, once, &id.to_string()).await? {
                    let row: OrganizationRow =
                        sqlx::query_as(SELECT_BY_ID).bind(replayed_id(&earlier)?).fetch_one(&mut *tx).await.map_err(db_error)?;
                    return Organization::try_from(row).map(Created::replay);
                }
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
                            "an organisation with this name or id is already in the directory",
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
                Organization::try_from(row).map(Created::new)
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

            #[tracing::instrument(skip_all, fields(organization_id = %organization_id))]
            async fn create_facility(
                &self,
                context: &AuditContext,
                organization_id: Uuid,
                details: FacilityDetails,
                once: Option<&CallerKey>,
            ) -> HavenResult<Created<Facility>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let id = Uuid::now_v7();
                if let Claim::Replay(earlier) = claim(&mut *tx, once, &id.to_string()).await? {
                    let facility = Self::facility(&mut tx, replayed_id(&earlier)?).await?.ok_or_else(|| corrupt("facility"))?;
                    return Ok(Created::replay(facility));
                }
                let known: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM organizations WHERE id = $1")
                    .bind(organization_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if known.is_none() {
                    return Err(HavenError::invalid_field(
                        "organization_id",
                        "is not in the directory: add the organisation first (POST /v1/organizations)",
                    ));
                }
                sqlx::query(
                    "INSERT INTO facilities (id, organization_id, name, address, settlement, latitude, longitude, capacity_total, \
                     capacity_free, accepts, languages, opening_hours, contact_phone, contact_email, active, version, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $14, 1, $15, $16)",
                )
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
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                Self::set_services(&mut tx, id, &details.service_types).await?;
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
                OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                let facility = Self::facility(&mut tx, id).await?.ok_or_else(|| corrupt("facility"))?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(Created::new(facility))
            }

            async fn get_facility(&self, id: Uuid) -> HavenResult<Option<Facility>> {
                let mut connection = self.pool.acquire().await.map_err(db_error)?;
                Self::facility(&mut connection, id).await
            }

            #[tracing::instrument(skip_all)]
            async fn list_facilities(&self, filter: &FacilityFilter, after: Option<i64>, limit: u32) -> HavenResult<Vec<Facility>> {
                let rows: Vec<FacilityRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT_FACILITY} WHERE f.seq > $1 AND ($2 IS NULL OR f.organization_id = $2) \
                     AND ($3 IS NULL OR EXISTS (SELECT 1 FROM facility_services s WHERE s.facility_id = f.id AND s.service_type = $3)) \
                     AND ($4 IS NULL OR f.settlement = $4) AND ($5 = FALSE OR f.active) ORDER BY f.seq LIMIT $6"
                )))
                .bind(after.unwrap_or(0))
                .bind(filter.organization_id)
                .bind(filter.service_type.as_deref())
                .bind(filter.settlement.as_deref())
                .bind(filter.active_only)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.into_iter().map(Facility::try_from).collect()
            }

            #[tracing::instrument(skip_all, fields(facility_id = %id))]
            async fn update_facility(
                &self,
                context: &AuditContext,
                scope: Scope,
                id: Uuid,
                expected_version: i64,
                details: FacilityDetails,
            ) -> HavenResult<Option<Facility>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(facility) = Self::facility(&mut tx, id).await?.filter(|facility| scope.contains(facility.organization_id)) else {
                    return Ok(None);
                };
                if facility.version != expected_version {
                    return Err(HavenError::new(
                        ErrorCode::PreconditionFailed,
                        format!("the facility changed since you read it (now at version {})", facility.version),
                    ));
                }
                // Places already held stay held: free places follow the new total.
                let held = i64::from(facility.details.capacity_total) - i64::from(facility.capacity_free);
                let free = (i64::from(details.capacity_total) - held).max(0);
                let updated = sqlx::query(
                    "UPDATE facilities SET name = $3, address = $4, settlement = $5, latitude = $6, longitude = $7, \
                     capacity_total = $8, capacity_free = $9, accepts = $10, languages = $11, opening_hours = $12, \
                     contact_phone = $13, contact_email = $14, active = $15, version = version + 1 WHERE id = $1 AND version = $2",
                )
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
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if updated.rows_affected() != 1 {
                    return Err(HavenError::new(ErrorCode::PreconditionFailed, "the facility changed since you read it"));
                }
                Self::set_services(&mut tx, id, &details.service_types).await?;
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
                OutboxWrite::append_event(&mut *tx, SERVICE, &event).await.map_err(db_error)?;
                let facility = Self::facility(&mut tx, id).await?.ok_or_else(|| corrupt("facility"))?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(Some(facility))
            }

            #[tracing::instrument(skip_all)]
            async fn facilities_in(&self, service_type: &str, frame: BoundingBox, include_full: bool) -> HavenResult<Vec<Facility>> {
                let rows: Vec<FacilityRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT_FACILITY} WHERE f.active AND f.latitude BETWEEN $2 AND $3 AND f.longitude BETWEEN $4 AND $5 \
                     AND ($6 OR f.capacity_total = 0 OR f.capacity_free > 0) \
                     AND EXISTS (SELECT 1 FROM facility_services s WHERE s.facility_id = f.id AND s.service_type = $1)"
                )))
                .bind(service_type)
                .bind(frame.min_latitude)
                .bind(frame.max_latitude)
                .bind(frame.min_longitude)
                .bind(frame.max_longitude)
                .bind(include_full)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.into_iter().map(Facility::try_from).collect()
            }

            async fn facility_points(&self, service_type: &str) -> HavenResult<Vec<(Uuid, Point)>> {
                let rows: Vec<(Uuid, f64, f64)> = sqlx::query_as(
                    "SELECT f.id, f.latitude, f.longitude FROM facilities f WHERE f.active \
                     AND EXISTS (SELECT 1 FROM facility_services s WHERE s.facility_id = f.id AND s.service_type = $1)",
                )
                .bind(service_type)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.into_iter()
                    .map(|(id, latitude, longitude)| Point::new(latitude, longitude).map(|point| (id, point)).ok_or_else(|| corrupt("facility")))
                    .collect()
            }

            async fn replayed_referral(&self, context: &AuditContext, once: &CallerKey) -> HavenResult<Option<Referral>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(first) = earlier(&mut *tx, once).await? else {
                    return Ok(None);
                };
                let referral = self.replay(&mut tx, context, &first).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some(referral))
            }

            #[tracing::instrument(skip_all, fields(case_id = %new.case_id))]
            async fn create_referral(&self, context: &AuditContext, new: NewReferral, once: Option<&CallerKey>) -> HavenResult<Created<Referral>> {
                let id = Uuid::now_v7();
                let now = OffsetDateTime::now_utc();
                let (key, wrapped_key) = self.crypto.generate(id)?;
                let purpose = crypto::seal(&key, TextColumn::Purpose, id, &new.purpose)?;
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                if let Claim::Replay(earlier) = claim(&mut *tx, once, &id.to_string()).await? {
                    let referral = self.replay(&mut tx, context, &earlier).await?;
                    tx.commit().await.map_err(db_error)?;
                    return Ok(Created::replay(referral));
                }
                sqlx::query(
                    "INSERT INTO referrals (id, case_id, case_code, screening_id, from_organization_id, to_organization_id, facility_id, \
                     service_type, purpose, urgency, requested_by, requested_at, accept_by, outcome_due_on, status, version, updated_at, data_key) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'requested', 1, $12, $15)",
                )
                .bind(id)
                .bind(new.case_id)
                .bind(&new.case_code)
                .bind(new.screening_id)
                .bind(new.from_organization_id)
                .bind(new.facility.organization_id)
                .bind(new.facility.id)
                .bind(&new.service_type)
                .bind(purpose)
                .bind(new.urgency.as_str())
                .bind(&context.principal.subject)
                .bind(now)
                .bind(new.accept_by)
                .bind(new.outcome_due_on.to_string())
                .bind(wrapped_key)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                let sealed = self.referral(&mut tx, id).await?.ok_or_else(|| corrupt("referral"))?;
                // The request's own entry is the receipt that opens what it returns.
                let receipt = Self::record(&mut tx, context, &sealed.referral, "referral.requested").await?;
                let referral = sealed.open(&self.crypto, &receipt)?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(Created::new(referral))
            }

            #[tracing::instrument(skip_all, fields(referral_id = %id))]
            async fn get_referral(&self, context: &AuditContext, scope: Scope, id: Uuid) -> HavenResult<Option<Referral>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(sealed) = self.referral(&mut tx, id).await?.filter(|sealed| {
                    scope.contains(sealed.referral.from_organization_id) || scope.contains(sealed.referral.to_organization_id)
                }) else {
                    return Ok(None);
                };
                let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry(READ_ACTION, "referral", sealed.referral.id))
                    .await
                    .map_err(db_error)?;
                let referral = sealed.open(&self.crypto, &receipt)?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some(referral))
            }

            #[tracing::instrument(skip_all)]
            async fn list_referrals(
                &self,
                context: &AuditContext,
                scope: Scope,
                filter: &ReferralFilter,
                after: Option<i64>,
                limit: u32,
            ) -> HavenResult<Vec<Referral>> {
                let now = OffsetDateTime::now_utc();
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let organization = scope.organization();
                let rows: Vec<ReferralRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT_REFERRAL} WHERE seq > $1 \
                     AND ($2 IS NULL OR (($3 IS NULL OR $3 = 'sender') AND from_organization_id = $2) \
                                     OR (($3 IS NULL OR $3 = 'receiver') AND to_organization_id = $2)) \
                     AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR case_id = $5) \
                     AND ($6 = FALSE OR (status = 'requested' AND accept_by < $7)) \
                     AND ($8 = FALSE OR (status IN ('accepted', 'in_progress') AND outcome_due_on < $9)) \
                     ORDER BY seq LIMIT $10"
                )))
                .bind(after.unwrap_or(0))
                .bind(organization)
                .bind(filter.side.map(|side| match side {
                    Side::Sender => "sender",
                    Side::Receiver => "receiver",
                }))
                .bind(filter.status.map(ReferralStatus::as_str))
                .bind(filter.case_id)
                .bind(filter.acceptance_overdue)
                .bind(now)
                .bind(filter.outcome_overdue)
                .bind(now.date().to_string())
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
                let mut referrals = Vec::with_capacity(rows.len());
                for row in rows {
                    let sealed = row.into_sealed()?;
                    let receipt = AuditWrite::append_audit(&mut *tx, SERVICE, &context.entry(READ_ACTION, "referral", sealed.referral.id))
                        .await
                        .map_err(db_error)?;
                    referrals.push(sealed.open(&self.crypto, &receipt)?);
                }
                tx.commit().await.map_err(db_error)?;
                Ok(referrals)
            }

            #[tracing::instrument(skip_all, fields(referral_id = %id, to = change.to.as_str()))]
            async fn change_referral_status(
                &self,
                context: &AuditContext,
                scope: Scope,
                id: Uuid,
                expected_version: i64,
                change: StatusChange,
            ) -> HavenResult<Option<Referral>> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let Some(SealedReferral { referral, .. }) = self.referral(&mut tx, id).await? else { return Ok(None) };
                let sender = scope.contains(referral.from_organization_id);
                let receiver = scope.contains(referral.to_organization_id);
                if !sender && !receiver {
                    return Ok(None);
                }
                let allowed = match change.to.moved_by() {
                    Side::Sender => sender,
                    Side::Receiver => receiver,
                };
                if !allowed {
                    return Err(HavenError::new(
                        ErrorCode::PermissionDenied,
                        match change.to.moved_by() {
                            Side::Sender => format!("only the referring organisation can make a referral `{}`", change.to.as_str()),
                            Side::Receiver => format!("only the receiving organisation can make a referral `{}`", change.to.as_str()),
                        },
                    ));
                }
                if referral.version != expected_version {
                    return Err(HavenError::new(
                        ErrorCode::PreconditionFailed,
                        format!("the referral changed since you read it (now at version {})", referral.version),
                    ));
                }
                let next = self.apply_change(&mut tx, &referral, &change).await?;
                // The move's own entry is the receipt that opens what it returns.
                let receipt = Self::record(&mut tx, context, &next.referral, event_type(change.to)).await?;
                let next = next.open(&self.crypto, &receipt)?;
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                Ok(Some(next))
            }

            async fn audit_disclosure(&self, context: &AuditContext, referral: &Referral) -> HavenResult<()> {
                let mut connection = self.pool.acquire().await.map_err(db_error)?;
                AuditWrite::append_audit(&mut *connection, SERVICE, &context.entry("referral.disclosure.read", "referral", referral.id))
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            #[tracing::instrument(skip_all)]
            async fn encrypt_legacy_texts(&self) -> HavenResult<u64> {
                let legacy: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM referrals WHERE data_key IS NULL AND shredded = FALSE ORDER BY seq")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                let mut encrypted = 0;
                for (id,) in legacy {
                    let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                    self.referral_key(&mut tx, id).await?;
                    tx.commit().await.map_err(db_error)?;
                    encrypted += 1;
                }
                if encrypted > 0 {
                    tracing::info!(referrals = encrypted, "texts of earlier referrals encrypted");
                    // No plaintext copy may stay in the database files.
                    self.pool.forget_deleted().await?;
                }
                Ok(encrypted)
            }

            #[tracing::instrument(skip_all)]
            async fn rewrap_keys(&self) -> HavenResult<u64> {
                self.crypto.rewrap_all(&Database::from(self.pool.clone())).await
            }
        }

        impl $name {
            async fn facility(connection: &mut $connection, id: Uuid) -> HavenResult<Option<Facility>> {
                let row: Option<FacilityRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_FACILITY} WHERE f.id = $1")))
                    .bind(id)
                    .fetch_optional(&mut *connection)
                    .await
                    .map_err(db_error)?;
                row.map(Facility::try_from).transpose()
            }

            /// The referral an earlier request with the same key recorded, shown
            /// again: a read, audited like one.
            async fn replay(&self, connection: &mut $connection, context: &AuditContext, record_id: &str) -> HavenResult<Referral> {
                let sealed = self.referral(&mut *connection, replayed_id(record_id)?).await?.ok_or_else(|| corrupt("referral"))?;
                let entry = context.entry(READ_ACTION, "referral", sealed.referral.id);
                let receipt = AuditWrite::append_audit(&mut *connection, SERVICE, &entry).await.map_err(db_error)?;
                sealed.open(&self.crypto, &receipt)
            }

            /// The referral `id`, its texts still sealed.
            async fn referral(&self, connection: &mut $connection, id: Uuid) -> HavenResult<Option<SealedReferral>> {
                let row: Option<ReferralRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_REFERRAL} WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&mut *connection)
                    .await
                    .map_err(db_error)?;
                row.map(ReferralRow::into_sealed).transpose()
            }

            /// The referral's data key, to seal new texts with (it opens none), `None`
            /// once the person was erased. A row written before texts were encrypted is
            /// encrypted first, under a new key.
            async fn referral_key(&self, connection: &mut $connection, id: Uuid) -> HavenResult<Option<SealingKey>> {
                let (data_key, shredded, purpose, status_reason, outcome): (Option<Vec<u8>>, bool, Vec<u8>, Vec<u8>, Vec<u8>) =
                    sqlx::query_as("SELECT data_key, shredded, purpose, status_reason, outcome FROM referrals WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *connection)
                        .await
                        .map_err(db_error)?;
                match StoredKey::from_columns(data_key, shredded) {
                    StoredKey::Destroyed => Ok(None),
                    StoredKey::Wrapped(wrapped) => self.crypto.sealing_key(id, &wrapped).map(Some),
                    StoredKey::Legacy => {
                        let (key, wrapped) = self.crypto.generate(id)?;
                        let sealed = crypto::seal_legacy(&key, id, &StoredTexts { purpose, status_reason, outcome })?;
                        let updated = sqlx::query(
                            "UPDATE referrals SET data_key = $2, purpose = $3, status_reason = $4, outcome = $5 \
                             WHERE id = $1 AND data_key IS NULL AND shredded = FALSE",
                        )
                        .bind(id)
                        .bind(wrapped)
                        .bind(sealed.purpose)
                        .bind(sealed.status_reason)
                        .bind(sealed.outcome)
                        .execute(&mut *connection)
                        .await
                        .map_err(db_error)?;
                        if updated.rows_affected() != 1 {
                            return Err(HavenError::new(ErrorCode::PreconditionFailed, "the referral changed since you read it"));
                        }
                        Ok(Some(key))
                    }
                }
            }

            async fn set_services(connection: &mut $connection, facility_id: Uuid, service_types: &[String]) -> HavenResult<()> {
                sqlx::query("DELETE FROM facility_services WHERE facility_id = $1")
                    .bind(facility_id)
                    .execute(&mut *connection)
                    .await
                    .map_err(db_error)?;
                for service_type in service_types {
                    sqlx::query("INSERT INTO facility_services (facility_id, service_type) VALUES ($1, $2)")
                        .bind(facility_id)
                        .bind(service_type)
                        .execute(&mut *connection)
                        .await
                        .map_err(db_error)?;
                }
                Ok(())
            }

            /// The referral's event (categorical facts only) and audit entry, whose
            /// receipt opens the referral's texts.
            async fn record(connection: &mut $connection, context: &AuditContext, referral: &Referral, event_type: &'static str) -> HavenResult<Receipt> {
                let event = NewEvent {
                    event_type,
                    aggregate_id: referral.id,
                    organization_id: referral.from_organization_id,
                    payload: serde_json::json!({
                        "referral_id": referral.id,
                        "case_id": referral.case_id,
                        "from_organization_id": referral.from_organization_id,
                        "to_organization_id": referral.to_organization_id,
                        "facility_id": referral.facility_id,
                        "service_type": referral.service_type,
                        "urgency": referral.urgency.as_str(),
                        "status": referral.status.as_str(),
                        "on": referral.updated_at.date().to_string(),
                        "accept_by": referral.accept_by.unix_timestamp(),
                        "outcome_due_on": referral.outcome_due_on.to_string(),
                        "capacity_reserved": referral.capacity_reserved,
                    }),
                };
                OutboxWrite::append_event(&mut *connection, SERVICE, &event).await.map_err(db_error)?;
                AuditWrite::append_audit(&mut *connection, SERVICE, &context.entry(event_type, "referral", referral.id))
                    .await
                    .map_err(db_error)
            }

            /// Moves a referral (already authorised and at the expected version),
            /// holding a place on acceptance and releasing it when the stay ends. The
            /// referral moved is returned with its texts sealed.
            async fn apply_change(&self, connection: &mut $connection, referral: &Referral, change: &StatusChange) -> HavenResult<SealedReferral> {
                if !referral.status.can_move_to(change.to) {
                    return Err(HavenError::new(
                        ErrorCode::Conflict,
                        format!("a `{}` referral cannot become `{}`", referral.status.as_str(), change.to.as_str()),
                    ));
                }
                let mut reserved = referral.capacity_reserved;
                if change.to == ReferralStatus::Accepted {
                    // One statement decides, so concurrent acceptances never overbook.
                    let held = sqlx::query(
                        "UPDATE facilities SET capacity_free = capacity_free - 1, version = version + 1 \
                         WHERE id = $1 AND capacity_total > 0 AND capacity_free > 0",
                    )
                    .bind(referral.facility_id)
                    .execute(&mut *connection)
                    .await
                    .map_err(db_error)?;
                    if held.rows_affected() == 1 {
                        reserved = true;
                    } else {
                        let (total,): (i64,) = sqlx::query_as("SELECT capacity_total FROM facilities WHERE id = $1")
                            .bind(referral.facility_id)
                            .fetch_one(&mut *connection)
                            .await
                            .map_err(db_error)?;
                        if total > 0 {
                            return Err(HavenError::new(ErrorCode::Conflict, "no free place left at this facility"));
                        }
                    }
                }
                if reserved && referral.status.releases_place(change.to) {
                    sqlx::query(
                        "UPDATE facilities SET capacity_free = capacity_free + 1, version = version + 1 \
                         WHERE id = $1 AND capacity_free < capacity_total",
                    )
                    .bind(referral.facility_id)
                    .execute(&mut *connection)
                    .await
                    .map_err(db_error)?;
                    reserved = false;
                }
                // A new text is encrypted under the referral's key; an empty one keeps
                // what is stored. Once the person was erased the referral still moves,
                // but keeps no new text.
                let key = self.referral_key(connection, referral.id).await?;
                let seal = |column: TextColumn, text: &str| -> HavenResult<Option<Vec<u8>>> {
                    match &key {
                        Some(key) if !text.is_empty() => crypto::seal(key, column, referral.id, text).map(Some),
                        _ => Ok(None),
                    }
                };
                let status_reason = seal(TextColumn::StatusReason, &change.reason)?;
                let outcome = seal(TextColumn::Outcome, &change.outcome)?;
                let updated = sqlx::query(
                    "UPDATE referrals SET status = $3, status_reason = COALESCE($4, status_reason), outcome = COALESCE($5, outcome), \
                     capacity_reserved = $6, version = version + 1, updated_at = $7 WHERE id = $1 AND version = $2",
                )
                .bind(referral.id)
                .bind(referral.version)
                .bind(change.to.as_str())
                .bind(status_reason)
                .bind(outcome)
                .bind(reserved)
                .bind(OffsetDateTime::now_utc())
                .execute(&mut *connection)
                .await
                .map_err(db_error)?;
                if updated.rows_affected() != 1 {
                    return Err(HavenError::new(ErrorCode::PreconditionFailed, "the referral changed since you read it"));
                }
                self.referral(connection, referral.id).await?.ok_or_else(|| corrupt("referral"))
            }
        }

        /// The referral service follows intake's feed: a withdrawn data-sharing consent
        /// revokes every open referral of the screening (and frees their places).
        #[async_trait::async_trait]
        impl EventSink for $name {
            async fn checkpoint(&self, source: &str) -> HavenResult<i64> {
                let mut connection = self.pool.acquire().await.map_err(db_error)?;
                CheckpointWrite::checkpoint(&mut *connection, source).await.map_err(db_error)
            }

            #[tracing::instrument(skip_all, fields(source = %event.source, sequence = event.sequence, event_type = %event.event_type))]
            async fn apply(&self, event: &Event) -> HavenResult<()> {
                let sequence = i64::try_from(event.sequence).map_err(HavenError::internal)?;
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                if !CheckpointWrite::advance_checkpoint(&mut *tx, &event.source, sequence).await.map_err(db_error)? {
                    return Ok(());
                }
                if event.event_type == "screening.created" {
                    let payload: serde_json::Value = serde_json::from_str(&event.payload_json).map_err(HavenError::internal)?;
                    if let Some((screening_id, person_id)) = screening_person(event, &payload)? {
                        sqlx::query("INSERT INTO screening_persons (screening_id, person_id) VALUES ($1, $2) ON CONFLICT (screening_id) DO NOTHING")
                            .bind(screening_id)
                            .bind(person_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_error)?;
                    }
                }
                if event.event_type == "person.erased" {
                    // The person's referrals keep their workflow; their texts become
                    // unreadable with the rest of the person's data.
                    let person_id = Uuid::parse_str(&event.aggregate_id).map_err(HavenError::internal)?;
                    let shredded = sqlx::query(
                        "UPDATE referrals SET data_key = NULL, shredded = TRUE \
                         WHERE screening_id IN (SELECT screening_id FROM screening_persons WHERE person_id = $1)",
                    )
                    .bind(person_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    tracing::info!(person_id = %person_id, referrals = shredded.rows_affected(), "referral data keys destroyed after erasure");
                }
                // Events read again after an upgrade were applied before: they only
                // teach which person a screening records.
                let replayed: Option<(i64,)> = sqlx::query_as("SELECT until FROM feed_replays WHERE source = $1")
                    .bind(&event.source)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if replayed.is_some_and(|(until,)| sequence <= until) {
                    tx.commit().await.map_err(db_error)?;
                    return Ok(());
                }
                if event.event_type == "screening.consent_recorded" {
                    let payload: serde_json::Value = serde_json::from_str(&event.payload_json).map_err(HavenError::internal)?;
                    let withdrawn = payload["purpose"] == "data_sharing" && payload["given"] == false;
                    if withdrawn {
                        let screening_id = Uuid::parse_str(&event.aggregate_id).map_err(HavenError::internal)?;
                        let open: Vec<(Uuid,)> = sqlx::query_as(
                            "SELECT id FROM referrals WHERE screening_id = $1 AND status IN ('requested', 'accepted', 'in_progress')",
                        )
                        .bind(screening_id)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?;
                        let context = AuditContext {
                            principal: haven_auth::Principal {
                                subject: "service:referral".into(),
                                organization_id: Uuid::nil(),
                                roles: vec![haven_auth::Role::Service],
                                kind: haven_auth::PrincipalKind::Service,
                            },
                            purpose: "consent_withdrawn".into(),
                            request_id: format!("event-{}-{}", event.source, event.sequence),
                            on_behalf_of: None,
                        };
                        let change = StatusChange {
                            to: ReferralStatus::Revoked,
                            reason: "the person withdrew consent to sharing their data".into(),
                            outcome: String::new(),
                        };
                        for (id,) in open {
                            let referral = self.referral(&mut tx, id).await?.ok_or_else(|| corrupt("referral"))?;
                            let next = self.apply_change(&mut tx, &referral.referral, &change).await?;
                            Self::record(&mut tx, &context, &next.referral, "referral.revoked").await?;
                        }
                    }
                }
                tx.commit().await.map_err(db_error)?;
                self.signal.notify();
                if event.event_type == "person.erased" {
                    // No copy of the destroyed keys may stay in the database files
                    // (forget_deleted logs when it cannot clear them).
                    let _ = self.pool.forget_deleted().await;
                }
                Ok(())
            }
        }
    };
}

/// The screening and person a `screening.created` event records, if it names one.
fn screening_person(
    event: &Event,
    payload: &serde_json::Value,
) -> HavenResult<Option<(Uuid, Uuid)>> {
    let Some(person) = payload.get("person_id").and_then(serde_json::Value::as_str) else {
        return Ok(None);
    };
    let person_id = Uuid::parse_str(person).map_err(HavenError::internal)?;
    let screening_id = Uuid::parse_str(&event.aggregate_id).map_err(HavenError::internal)?;
    Ok(Some((screening_id, person_id)))
}

/// The event of a move.
fn event_type(status: ReferralStatus) -> &'static str {
    match status {
        ReferralStatus::Requested => "referral.requested",
        ReferralStatus::Accepted => "referral.accepted",
        ReferralStatus::Declined => "referral.declined",
        ReferralStatus::InProgress => "referral.started",
        ReferralStatus::Completed => "referral.completed",
        ReferralStatus::Cancelled => "referral.cancelled",
        ReferralStatus::Revoked => "referral.revoked",
    }
}

directory_store!(SqliteDirectoryStore, SqlitePool, sqlx::SqliteConnection);
directory_store!(PostgresDirectoryStore, PgPool, sqlx::PgConnection);
