//! The gRPC face of the reporting service.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use haven_auth::Action;
use haven_auth::grpc::principal;
use haven_error::HavenError;
use haven_proto::reporting::v1 as pb;
use haven_proto::reporting::v1::reporting_service_server::ReportingService;

use crate::projections::Projections;

/// Implements `haven.reporting.v1.ReportingService`.
#[derive(Debug, Clone)]
pub struct ReportingApi {
    projections: Arc<dyn Projections>,
}

impl ReportingApi {
    /// The API over projections.
    pub fn new(projections: Arc<dyn Projections>) -> Self {
        Self { projections }
    }
}

#[tonic::async_trait]
impl ReportingService for ReportingApi {
    async fn get_summary(
        &self,
        request: Request<pb::GetSummaryRequest>,
    ) -> Result<Response<pb::GetSummaryResponse>, Status> {
        principal(&request)?.require(Action::ReportRead)?;
        let organization_id = match request.get_ref().organization_id.as_str() {
            "" => None,
            id => Some(
                Uuid::parse_str(id)
                    .map_err(|_| HavenError::invalid_field("organization_id", "must be a UUID"))?,
            ),
        };
        let summary = self.projections.summary(organization_id).await?;
        let checkpoints = self.projections.checkpoints().await?;
        Ok(Response::new(pb::GetSummaryResponse {
            screenings_total: summary.screenings_total,
            identified_total: summary.identified_total,
            cases_total: summary.cases_total,
            cases_open: summary.cases_open,
            organizations_total: summary.organizations_total,
            re_trafficked_total: summary.re_trafficked_total,
            checkpoints,
            generated_at: Some(haven_proto::timestamp(time::OffsetDateTime::now_utc())),
        }))
    }
}
