//! Directory storage: the [`DirectoryStore`] trait and its one implementation,
//! [`Directory`], over the service's [`Database`] (SQLite or Postgres, statements
//! written once for both).
//!
//! Each operation is a transaction script in the module of its aggregate:
//! organisations, facilities, referrals (and the data keys of their texts); the feed
//! of intake's events the service follows is applied in `feed`.

use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::{AuditContext, AuditWrite};
use haven_auth::Scope;
use haven_error::{HavenError, HavenResult};
use haven_events::{EventSignal, EventSink};
use haven_storage::idempotency::{CallerKey, Created};
use haven_storage::{Database, ForgetDeleted, db_error};

use crate::SERVICE;
use crate::crypto::ReferralCrypto;
use crate::domain::{
    Facility, FacilityDetails, Organization, OrganizationType, Referral, ReferralStatus, Side,
    Urgency,
};
use crate::geo::{BoundingBox, Point};

mod facilities;
mod feed;
mod organizations;
mod referrals;
mod rows;
mod texts;

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
    Arc::new(Directory {
        database,
        signal,
        crypto,
    })
}

/// The directory and its referrals, on either backend.
#[derive(Debug)]
pub struct Directory {
    database: Database,
    /// Wakes the service's event feed after a commit that wrote events.
    signal: EventSignal,
    crypto: ReferralCrypto,
}

#[async_trait::async_trait]
impl DirectoryStore for Directory {
    #[tracing::instrument(skip_all)]
    async fn create_organization(
        &self,
        new: NewOrganization,
        once: Option<&CallerKey>,
    ) -> HavenResult<Created<Organization>> {
        organizations::create(self, new, once).await
    }

    #[tracing::instrument(skip_all, fields(organization_id = %id))]
    async fn get_organization(&self, id: Uuid) -> HavenResult<Option<Organization>> {
        organizations::get(&self.database, id).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_organizations(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Organization>> {
        organizations::list(&self.database, after, limit).await
    }

    #[tracing::instrument(skip_all, fields(organization_id = %organization_id))]
    async fn create_facility(
        &self,
        context: &AuditContext,
        organization_id: Uuid,
        details: FacilityDetails,
        once: Option<&CallerKey>,
    ) -> HavenResult<Created<Facility>> {
        facilities::create(self, context, organization_id, details, once).await
    }

    async fn get_facility(&self, id: Uuid) -> HavenResult<Option<Facility>> {
        facilities::facility_by_id(&self.database, id).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_facilities(
        &self,
        filter: &FacilityFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Facility>> {
        facilities::list(&self.database, filter, after, limit).await
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
        facilities::update(self, context, scope, id, expected_version, details).await
    }

    #[tracing::instrument(skip_all)]
    async fn facilities_in(
        &self,
        service_type: &str,
        frame: BoundingBox,
        include_full: bool,
    ) -> HavenResult<Vec<Facility>> {
        facilities::within(&self.database, service_type, frame, include_full).await
    }

    async fn facility_points(&self, service_type: &str) -> HavenResult<Vec<(Uuid, Point)>> {
        facilities::points(&self.database, service_type).await
    }

    #[tracing::instrument(skip_all, fields(case_id = %new.case_id))]
    async fn create_referral(
        &self,
        context: &AuditContext,
        new: NewReferral,
        once: Option<&CallerKey>,
    ) -> HavenResult<Created<Referral>> {
        referrals::create(self, context, new, once).await
    }

    async fn replayed_referral(
        &self,
        context: &AuditContext,
        once: &CallerKey,
    ) -> HavenResult<Option<Referral>> {
        referrals::replayed(self, context, once).await
    }

    #[tracing::instrument(skip_all, fields(referral_id = %id))]
    async fn get_referral(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
    ) -> HavenResult<Option<Referral>> {
        referrals::get(self, context, scope, id).await
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
        referrals::list(self, context, scope, filter, after, limit).await
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
        referrals::change_status(self, context, scope, id, expected_version, change).await
    }

    async fn audit_disclosure(
        &self,
        context: &AuditContext,
        referral: &Referral,
    ) -> HavenResult<()> {
        let entry = context.entry("referral.disclosure.read", "referral", referral.id);
        // Appended on a connection of its own, outside any transaction.
        match &self.database {
            Database::Sqlite(pool) => {
                let mut connection = pool.acquire().await.map_err(db_error)?;
                AuditWrite::append_audit(&mut *connection, SERVICE, &entry).await
            }
            Database::Postgres(pool) => {
                let mut connection = pool.acquire().await.map_err(db_error)?;
                AuditWrite::append_audit(&mut *connection, SERVICE, &entry).await
            }
        }
        .map_err(db_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn encrypt_legacy_texts(&self) -> HavenResult<u64> {
        texts::encrypt_legacy(self).await
    }

    #[tracing::instrument(skip_all)]
    async fn rewrap_keys(&self) -> HavenResult<u64> {
        self.crypto.rewrap_all(&self.database).await
    }
}

impl Directory {
    /// Clears what a committed erasure (or encryption) left in the database files
    /// outside the live rows (see [`ForgetDeleted`]).
    async fn forget_deleted(&self) -> Result<(), HavenError> {
        match &self.database {
            Database::Sqlite(pool) => pool.forget_deleted().await,
            Database::Postgres(pool) => pool.forget_deleted().await,
        }
    }
}
