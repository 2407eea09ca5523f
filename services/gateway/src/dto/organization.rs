//! The directory of organisations: the REST shapes that differ from the proto
//! messages (a page, a create body without the server-set idempotency key); an
//! organisation itself is `referral::Organization`.

use haven_proto::referral::v1 as referral;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::enums::OrganizationType;

/// One page of organisations.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrganizationPage {
    /// Organisations of this page.
    pub(crate) items: Vec<referral::Organization>,
    /// Cursor of the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
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
            organization_type: self.organization_type as i32,
            settlement: self.settlement.unwrap_or_default(),
            id: self.id.map(|id| id.to_string()).unwrap_or_default(),
        }
    }
}
