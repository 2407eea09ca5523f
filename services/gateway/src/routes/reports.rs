//! `/v1/reports`: statistics (reporting service).

use axum::extract::State;
use haven_error::HavenError;
use haven_proto::reporting::v1 as reporting;
use haven_proto::reporting::v1::reporting_service_client::ReportingServiceClient;

use crate::dto::report::{Summary, SummaryQuery};
use crate::error::backend_error;
use crate::extract::{Caller, Json, Query};
use crate::openapi::CommonErrors;
use crate::state::AppState;

/// Totals of screenings, identifications, cases and organisations.
#[utoipa::path(
    get,
    path = "/v1/reports/summary",
    tag = "reports",
    params(SummaryQuery),
    responses(
        (status = 200, description = "The summary", body = Summary),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "get_summary", skip_all)]
pub(crate) async fn get_summary(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<SummaryQuery>,
) -> Result<Json<Summary>, HavenError> {
    let request = caller.grpc_request(reporting::GetSummaryRequest::from(query))?;
    let response = ReportingServiceClient::new(state.backends().reporting.channel.clone())
        .get_summary(request)
        .await
        .map_err(backend_error("reporting"))?;
    Ok(Json(Summary::from(response.into_inner())))
}
