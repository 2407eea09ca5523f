//! Directory values.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_proto::referral::v1 as pb;

/// Kind of organisation (HTCDS organisation types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrganizationType {
    /// Government body.
    Government,
    /// Non-governmental organisation.
    Ngo,
    /// International organisation.
    InternationalOrganization,
    /// Private company.
    Private,
    /// Anything else.
    Other,
}

haven_storage::stored_enum!(OrganizationType, pb::OrganizationType,
    Government => "government" / Government,
    Ngo => "ngo" / Ngo,
    InternationalOrganization => "international_organization" / InternationalOrganization,
    Private => "private" / Private,
    Other => "other" / Other,
);

/// An organisation in the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    /// Id.
    pub id: Uuid,
    /// Name, unique in the directory.
    pub name: String,
    /// Kind.
    pub organization_type: OrganizationType,
    /// Settlement of its main office.
    pub settlement: String,
    /// Whether it takes referrals.
    pub active: bool,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Incremented on every change.
    pub version: i64,
    /// Position in creation order, for cursors.
    pub position: i64,
}

impl Organization {
    /// The wire form.
    pub fn to_proto(&self) -> pb::Organization {
        pb::Organization {
            id: self.id.to_string(),
            name: self.name.clone(),
            organization_type: self.organization_type.to_proto().into(),
            settlement: self.settlement.clone(),
            active: self.active,
            created_at: Some(haven_proto::timestamp(self.created_at)),
            version: u64::try_from(self.version).unwrap_or_default(),
        }
    }
}
