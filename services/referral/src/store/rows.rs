//! The rows of the directory's tables as stored, and what they decode into: an
//! organisation, a facility, a referral with its texts still sealed.

use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::Receipt;
use haven_error::{HavenError, HavenResult};

use crate::crypto::{ReferralCrypto, StoredKey, StoredTexts};
use crate::domain::{
    Acceptance, Facility, FacilityDetails, Organization, OrganizationType, Referral,
    ReferralStatus, Urgency,
};
use crate::geo::Point;

#[derive(Debug, FromRow)]
pub(super) struct OrganizationRow {
    pub(super) seq: i64,
    pub(super) id: Uuid,
    pub(super) name: String,
    pub(super) organization_type: String,
    pub(super) settlement: String,
    pub(super) active: bool,
    pub(super) created_at: OffsetDateTime,
    pub(super) version: i64,
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

#[derive(Debug, FromRow)]
pub(super) struct FacilityRow {
    pub(super) seq: i64,
    pub(super) id: Uuid,
    pub(super) organization_id: Uuid,
    pub(super) name: String,
    pub(super) address: String,
    pub(super) settlement: String,
    pub(super) latitude: f64,
    pub(super) longitude: f64,
    pub(super) capacity_total: i64,
    pub(super) capacity_free: i64,
    pub(super) accepts: String,
    pub(super) languages: String,
    pub(super) opening_hours: String,
    pub(super) contact_phone: String,
    pub(super) contact_email: String,
    pub(super) active: bool,
    pub(super) version: i64,
    pub(super) created_at: OffsetDateTime,
    pub(super) service_types: Option<String>,
}

/// The id an idempotency key recorded.
pub(super) fn replayed_id(record_id: &str) -> HavenResult<Uuid> {
    Uuid::parse_str(record_id).map_err(|_| corrupt("idempotency key"))
}

pub(super) fn corrupt(what: &str) -> HavenError {
    HavenError::internal(std::io::Error::other(format!(
        "stored {what} is not readable"
    )))
}

impl TryFrom<FacilityRow> for Facility {
    type Error = HavenError;

    fn try_from(row: FacilityRow) -> HavenResult<Self> {
        let mut service_types: Vec<String> = row
            .service_types
            .unwrap_or_default()
            .split(',')
            .filter(|kind| !kind.is_empty())
            .map(str::to_owned)
            .collect();
        service_types.sort();
        Ok(Facility {
            id: row.id,
            organization_id: row.organization_id,
            details: FacilityDetails {
                name: row.name,
                address: row.address,
                settlement: row.settlement,
                point: Point::new(row.latitude, row.longitude)
                    .ok_or_else(|| corrupt("facility"))?,
                service_types,
                capacity_total: u32::try_from(row.capacity_total)
                    .map_err(|_| corrupt("facility"))?,
                accepts: serde_json::from_str::<Acceptance>(&row.accepts)
                    .map_err(|_| corrupt("facility"))?,
                languages: serde_json::from_str(&row.languages).map_err(|_| corrupt("facility"))?,
                opening_hours: row.opening_hours,
                contact_phone: row.contact_phone,
                contact_email: row.contact_email,
                active: row.active,
            },
            capacity_free: u32::try_from(row.capacity_free).map_err(|_| corrupt("facility"))?,
            version: row.version,
            created_at: row.created_at,
            position: row.seq,
        })
    }
}

#[derive(Debug, FromRow)]
pub(super) struct ReferralRow {
    pub(super) seq: i64,
    pub(super) id: Uuid,
    pub(super) case_id: Uuid,
    pub(super) case_code: String,
    pub(super) screening_id: Uuid,
    pub(super) from_organization_id: Uuid,
    pub(super) to_organization_id: Uuid,
    pub(super) facility_id: Uuid,
    pub(super) service_type: String,
    pub(super) purpose: Vec<u8>,
    pub(super) urgency: String,
    pub(super) requested_by: String,
    pub(super) requested_at: OffsetDateTime,
    pub(super) accept_by: OffsetDateTime,
    pub(super) outcome_due_on: String,
    pub(super) status: String,
    pub(super) status_reason: Vec<u8>,
    pub(super) outcome: Vec<u8>,
    pub(super) capacity_reserved: bool,
    pub(super) version: i64,
    pub(super) updated_at: OffsetDateTime,
    pub(super) data_key: Option<Vec<u8>>,
    pub(super) shredded: bool,
}

/// A referral as stored, its texts still sealed: `referral` holds every other field,
/// and its texts stay empty until [`SealedReferral::open`] opens them with the receipt
/// of an audit entry about the referral. Authorising and moving a referral need only
/// `referral`; what is returned to a caller is opened.
#[derive(Debug)]
pub(super) struct SealedReferral {
    /// The referral without its texts.
    pub(super) referral: Referral,
    pub(super) key: StoredKey,
    pub(super) texts: StoredTexts,
}

impl SealedReferral {
    /// The referral with its texts (absent once the person was erased), for the holder
    /// of a receipt of an audit entry about it.
    pub(super) fn open(self, crypto: &ReferralCrypto, receipt: &Receipt) -> HavenResult<Referral> {
        let texts = crypto.open_texts(receipt, self.referral.id, &self.key, &self.texts)?;
        Ok(Referral {
            purpose: texts.purpose,
            status_reason: texts.status_reason,
            outcome: texts.outcome,
            ..self.referral
        })
    }
}

impl ReferralRow {
    /// The referral, its texts still sealed.
    pub(super) fn into_sealed(self) -> HavenResult<SealedReferral> {
        let key = StoredKey::from_columns(self.data_key, self.shredded);
        let texts = StoredTexts {
            purpose: self.purpose,
            status_reason: self.status_reason,
            outcome: self.outcome,
        };
        let referral = Referral {
            id: self.id,
            case_id: self.case_id,
            case_code: self.case_code,
            screening_id: self.screening_id,
            from_organization_id: self.from_organization_id,
            to_organization_id: self.to_organization_id,
            facility_id: self.facility_id,
            service_type: self.service_type,
            purpose: String::new(),
            urgency: Urgency::parse(&self.urgency).ok_or_else(|| corrupt("referral"))?,
            requested_by: self.requested_by,
            requested_at: self.requested_at,
            accept_by: self.accept_by,
            outcome_due_on: time::Date::parse(
                &self.outcome_due_on,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|_| corrupt("referral"))?,
            status: ReferralStatus::parse(&self.status).ok_or_else(|| corrupt("referral"))?,
            status_reason: String::new(),
            outcome: String::new(),
            capacity_reserved: self.capacity_reserved,
            version: self.version,
            updated_at: self.updated_at,
            position: self.seq,
        };
        Ok(SealedReferral {
            referral,
            key,
            texts,
        })
    }
}
