//! The directory of organisations.

use haven_proto::referral::v1 as referral;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::enums::OrganizationType;
use super::{from_timestamp, non_empty};

/// An organisation that assists victims.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Organization {
    /// Organisation id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// Name.
    pub(crate) name: String,
    /// Kind of organisation.
    pub(crate) organization_type: Option<OrganizationType>,
    /// Settlement where it is based.
    pub(crate) settlement: Option<String>,
    /// Whether it currently takes part.
    pub(crate) active: bool,
    /// When it was added to the directory.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) created_at: Option<OffsetDateTime>,
    /// Incremented by every change; also sent as the `ETag`.
    pub(crate) version: u64,
}

/// One page of organisations.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrganizationPage {
    /// Organisations of this page.
    pub(crate) items: Vec<Organization>,
    /// Cursor of the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

impl From<referral::Organization> for Organization {
    fn from(organization: referral::Organization) -> Self {
        Self {
            id: organization.id,
            name: organization.name,
            organization_type: OrganizationType::from_proto(organization.organization_type),
            settlement: non_empty(organization.settlement),
            active: organization.active,
            created_at: from_timestamp(organization.created_at),
            version: organization.version,
        }
    }
}

/// Body of `POST /v1/organizations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOrganization {
    /// Name.
    pub(crate) name: String,
    /// Kind of organisation.
    pub(crate) organization_type: OrganizationType,
    /// Settlement where it is based.
    #[serde(default)]
    pub(crate) settlement: Option<String>,
    /// The organisation's id as your identity provider's `org` claim carries it, so
    /// its staff act for it; default: a new id. Only directory admins
    /// (`directory_admin`) may name an id other than the caller's organisation's.
    #[serde(default)]
    pub(crate) id: Option<uuid::Uuid>,
}

impl CreateOrganization {
    /// The gRPC request; the referral service checks its fields.
    pub(crate) fn into_proto(self) -> referral::CreateOrganizationRequest {
        referral::CreateOrganizationRequest {
            // Set by the handler from the `Idempotency-Key` header.
            idempotency_key: String::new(),
            name: self.name,
            organization_type: self.organization_type.to_proto(),
            settlement: self.settlement.unwrap_or_default(),
            id: self.id.map(|id| id.to_string()).unwrap_or_default(),
        }
    }
}
