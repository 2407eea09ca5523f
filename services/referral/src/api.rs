//! The gRPC face of the referral service.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use haven_auth::Action;
use haven_auth::grpc::principal;
use haven_error::HavenError;
use haven_proto::common::v1::PageResponse;
use haven_proto::referral::v1 as pb;
use haven_proto::referral::v1::referral_service_server::ReferralService;
use haven_storage::cursor;

use crate::domain::{Organization, OrganizationType};
use crate::store::{DirectoryStore, NewOrganization};

/// Implements `haven.referral.v1.ReferralService`.
#[derive(Debug, Clone)]
pub struct ReferralApi {
    store: Arc<dyn DirectoryStore>,
}

impl ReferralApi {
    /// The API over a store.
    pub fn new(store: Arc<dyn DirectoryStore>) -> Self {
        Self { store }
    }
}

fn name(value: &str) -> Result<String, HavenError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
        return Err(HavenError::invalid_field(
            "name",
            "must be 1 to 200 printable characters",
        ));
    }
    Ok(value.to_owned())
}

#[tonic::async_trait]
impl ReferralService for ReferralApi {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::CreateOrganizationResponse>, Status> {
        let caller = principal(&request)?;
        caller.require(Action::OrganizationCreate)?;
        let message = request.into_inner();
        let organization_type = pb::OrganizationType::try_from(message.organization_type)
            .ok()
            .and_then(OrganizationType::from_proto)
            .ok_or_else(|| {
                HavenError::invalid_field(
                    "organization_type",
                    "is required and must be one of the listed values",
                )
            })?;
        let settlement = message.settlement.trim().to_owned();
        if settlement.chars().count() > 200 {
            return Err(
                HavenError::invalid_field("settlement", "must be at most 200 characters").into(),
            );
        }
        let organization = self
            .store
            .create_organization(NewOrganization {
                name: name(&message.name)?,
                organization_type,
                settlement,
                created_by: caller.subject,
            })
            .await?;
        Ok(Response::new(pb::CreateOrganizationResponse {
            organization: Some(organization.to_proto()),
        }))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::GetOrganizationResponse>, Status> {
        principal(&request)?.require(Action::OrganizationRead)?;
        let id = Uuid::parse_str(&request.get_ref().id)
            .map_err(|_| HavenError::invalid_field("id", "must be a UUID"))?;
        let organization = self
            .store
            .get_organization(id)
            .await?
            .ok_or_else(|| HavenError::not_found("organization"))?;
        Ok(Response::new(pb::GetOrganizationResponse {
            organization: Some(organization.to_proto()),
        }))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        principal(&request)?.require(Action::OrganizationRead)?;
        let page = request.into_inner().page.unwrap_or_default();
        let limit = cursor::limit(page.limit)?;
        let organizations = self
            .store
            .list_organizations(cursor::decode(&page.cursor)?, limit)
            .await?;
        let next_cursor = if organizations.len() == limit as usize {
            organizations
                .last()
                .map(|org| cursor::encode(org.position))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: organizations.iter().map(Organization::to_proto).collect(),
            page: Some(PageResponse { next_cursor }),
        }))
    }
}
