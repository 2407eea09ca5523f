//! `/v1/organizations`: the directory of organisations (referral service).

use axum::extract::State;
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::referral::v1 as referral;
use haven_proto::referral::v1::referral_service_client::ReferralServiceClient;
use tonic::transport::Channel;

use super::{created, paths, with_etag};
use crate::dto::organization::{CreateOrganization, OrganizationPage};
use crate::dto::{PageQuery, missing_in_response, next_cursor};
use crate::error::backend_error;
use crate::extract::{Caller, Json, PathId, Query};
use crate::idempotency::{ForwardedKey, mark_replayed};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

pub(super) const BACKEND: &str = "referral";

/// A client of the referral service.
pub(super) fn referral(state: &AppState) -> ReferralServiceClient<Channel> {
    ReferralServiceClient::new(state.backends().referral.channel.clone())
}

fn organization_of(
    organization: Option<referral::Organization>,
) -> Result<referral::Organization, HavenError> {
    organization.ok_or_else(|| missing_in_response("organization"))
}

/// List organisations in the directory.
#[utoipa::path(
    get,
    path = paths::ORGANIZATIONS,
    tag = "organizations",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of organisations", body = OrganizationPage),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "list_organizations", skip_all)]
pub(crate) async fn list_organizations(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> Result<Json<OrganizationPage>, HavenError> {
    let page = query.into_proto()?;
    let request = caller.grpc_request(referral::ListOrganizationsRequest { page: Some(page) })?;
    let response = referral(&state)
        .list_organizations(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(OrganizationPage {
        items: response.organizations,
        next_cursor: next_cursor(response.page),
    }))
}

/// Add an organisation to the directory.
#[utoipa::path(
    post,
    path = paths::ORGANIZATIONS,
    tag = "organizations",
    request_body = CreateOrganization,
    responses(
        (status = 201, description = "Organisation added", body = referral::Organization, headers(
            ("location" = String, description = "URL of the new organisation"),
            ("etag" = String, description = "Version of the organisation"),
        )),
        CommonErrors,
        BodyErrors,
    )
)]
#[tracing::instrument(name = "create_organization", skip_all)]
pub(crate) async fn create_organization(
    State(state): State<AppState>,
    caller: Caller,
    ForwardedKey(idempotency_key): ForwardedKey,
    Json(body): Json<CreateOrganization>,
) -> Result<Response, HavenError> {
    let mut message = body.into_proto();
    message.idempotency_key = idempotency_key;
    let request = caller.grpc_request(message)?;
    let response = referral(&state)
        .create_organization(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let response = response.into_inner();
    let organization = organization_of(response.organization)?;
    tracing::info!(organization_id = %organization.id, replayed = response.replayed, "organization created");
    let location = paths::expand(paths::ORGANIZATION, &organization.id);
    Ok(mark_replayed(
        created(Some(location), organization.version, organization),
        response.replayed,
    ))
}

/// Get one organisation.
#[utoipa::path(
    get,
    path = paths::ORGANIZATION,
    tag = "organizations",
    params(("id" = uuid::Uuid, Path, description = "Organisation id")),
    responses(
        (status = 200, description = "The organisation", body = referral::Organization, headers(
            ("etag" = String, description = "Version of the organisation"),
        )),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "get_organization", skip_all, fields(organization_id = %id))]
pub(crate) async fn get_organization(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(referral::GetOrganizationRequest { id: id.to_string() })?;
    let response = referral(&state)
        .get_organization(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let organization = organization_of(response.into_inner().organization)?;
    Ok(with_etag(organization.version, organization))
}
