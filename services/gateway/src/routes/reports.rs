//! `/v1/reports`, `/v1/exports` and `/v1/releases`: statistics, the anonymised CTDC
//! export and the ledger of what was published (reporting service). Nothing here is
//! organisation-scoped: the reporting service answers figures without personal data.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use haven_error::HavenError;
use haven_proto::reporting::v1 as reporting;
use haven_proto::reporting::v1::reporting_service_client::ReportingServiceClient;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use tonic::transport::Channel;

use crate::dto::report::{
    ExportCtdc, Indicators, IndicatorsFormat, IndicatorsQuery, PrivacyBudget, PrivateCounts,
    PrivateCountsRequest, ReleaseList, ReleaseQuery, Summary, SummaryQuery,
};
use crate::error::backend_error;
use crate::extract::{Caller, Json, Query};
use crate::openapi::{BodyErrors, CommonErrors};
use crate::routes::paths;
use crate::state::AppState;

/// Name of the backend in logs.
const BACKEND: &str = "reporting";
/// Media type of the CSV answers.
const TEXT_CSV: &str = "text/csv; charset=utf-8";
/// Records in the export.
const X_HAVEN_ROWS: &str = "x-haven-rows";
/// Records left out of the export by k-anonymity.
const X_HAVEN_WITHHELD: &str = "x-haven-withheld";
/// Persons left out of the export because their consent does not cover reporting.
const X_HAVEN_WITHOUT_CONSENT: &str = "x-haven-without-consent";
/// The k of the export.
const X_HAVEN_K: &str = "x-haven-k";
/// The export's entry in the release ledger.
const X_HAVEN_RELEASE_ID: &str = "x-haven-release-id";
/// SHA-256 of the export, hex.
const X_HAVEN_SHA256: &str = "x-haven-sha256";

/// Headers of the export a browser client may read (CORS).
pub(crate) const EXPORT_HEADERS: [&str; 6] = [
    X_HAVEN_ROWS,
    X_HAVEN_WITHHELD,
    X_HAVEN_WITHOUT_CONSENT,
    X_HAVEN_K,
    X_HAVEN_RELEASE_ID,
    X_HAVEN_SHA256,
];

fn reporting(state: &AppState) -> ReportingServiceClient<Channel> {
    ReportingServiceClient::new(state.backends().reporting.channel.clone())
}

/// A reporting error as REST answers it: the scope's fields are flat here (`region`,
/// not `scope.region`).
fn reporting_error(status: tonic::Status) -> HavenError {
    backend_error(BACKEND)(status).without_field_prefix("scope.")
}

/// `status` with a CSV body.
fn csv(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_CSV))],
        body,
    )
        .into_response()
}

/// Your own organisation's totals of screenings, identifications and cases (and the
/// number of organisations in the directory): exact counts for running the
/// organisation, so only for its admins, supervisors and analysts, and never for
/// another organisation (`403`). Figures that leave the organisation come from the
/// indicators, which are perturbed and suppressed.
#[utoipa::path(
    get,
    path = paths::REPORT_SUMMARY,
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
    let response = reporting(&state)
        .get_summary(request)
        .await
        .map_err(reporting_error)?;
    Ok(Json(Summary::from(response.into_inner())))
}

/// Indicators for a period, an organisation and a region: tables of counts and
/// figures that are not counts. Every count is perturbed by at most
/// `max_perturbation` (cell-key perturbation: the same persons give the same value in
/// every report, so subtracting two reports gives noise, not a person) and has
/// passed small-cell suppression (with complementary suppression): a suppressed count
/// is `null` with `suppressed: true`, never 0. Measures (medians, rates, totals) rest
/// on at least the threshold and are rounded. With `format=csv`, the same as
/// `text/csv`: a `table,labels,value,note` header, one row per cell (labels joined by
/// ` / `), a `total` row per table and one row per measure (table `measures`); a count
/// below the threshold is written `<` and the threshold (e.g. `<11`), one withheld
/// only to protect another is empty, and the note says which. With `format=html`, a
/// readable page with bar charts drawn on the server (nothing is fetched from
/// elsewhere to view it).
#[utoipa::path(
    get,
    path = paths::REPORT_INDICATORS,
    tag = "reports",
    params(IndicatorsQuery),
    responses(
        (status = 200, description = "The indicators", content(
            (Indicators = "application/json"),
            (String = "text/csv"),
            (String = "text/html"),
        )),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "get_indicators", skip_all)]
pub(crate) async fn get_indicators(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<IndicatorsQuery>,
) -> Result<Response, HavenError> {
    let (message, format, title) = query.into_proto()?;
    let request = caller.grpc_request(message)?;
    let response = reporting(&state)
        .get_indicators(request)
        .await
        .map_err(reporting_error)?;
    let indicators = Indicators::from(response.into_inner());
    Ok(match format {
        IndicatorsFormat::Json => Json(indicators).into_response(),
        IndicatorsFormat::Csv => csv(StatusCode::OK, indicators.to_csv()),
        IndicatorsFormat::Html => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            indicators.to_html(title.as_deref()),
        )
            .into_response(),
    })
}

/// Publish a record-level export in CTDC columns (Counter Trafficking Data
/// Collaborative). The file is anonymised: no names or contact details, only persons
/// whose consent covers reporting, k-anonymised over the published columns (records
/// of an equivalence class smaller than k are withheld).
/// Every export is recorded in the release ledger (`GET /v1/releases`) with its
/// parameters, counts and SHA-256, and is its own release: `Idempotency-Key` is not
/// honoured, and re-running the export is the retry.
#[utoipa::path(
    post,
    path = paths::CTDC_EXPORT,
    tag = "reports",
    request_body = ExportCtdc,
    responses(
        (status = 201, description = "The anonymised CSV, with a header row, recorded in the release ledger",
            content_type = "text/csv", body = String, headers(
            ("x-haven-rows" = u64, description = "Records in the file"),
            ("x-haven-withheld" = u64, description = "Records left out because their equivalence class was smaller than k"),
            ("x-haven-without-consent" = u64, description = "Persons left out because their consent does not cover reporting"),
            ("x-haven-k" = u32, description = "The k of k-anonymity applied"),
            ("x-haven-release-id" = String, description = "The export's entry in the release ledger"),
            ("x-haven-sha256" = String, description = "SHA-256 of the file, hex"),
        )),
        CommonErrors,
        BodyErrors,
    )
)]
#[tracing::instrument(name = "export_ctdc", skip_all)]
pub(crate) async fn export_ctdc(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ExportCtdc>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto()?)?;
    let mut parts = reporting(&state)
        .export_ctdc(request)
        .await
        .map_err(reporting_error)?
        .into_inner();
    // The summary comes first; the file follows in parts, passed on as they come.
    let export = parts
        .message()
        .await
        .map_err(reporting_error)?
        .and_then(|part| part.summary)
        .ok_or_else(|| crate::dto::missing_in_response("export summary"))?;
    tracing::info!(
        release_id = %export.release_id,
        rows = export.rows,
        withheld = export.withheld,
        "CTDC export released"
    );
    let headers = export_headers(&export)?;
    let body = axum::body::Body::from_stream(
        parts.map(|part| part.map(|part| axum::body::Bytes::from(part.csv_chunk))),
    );
    let mut response = (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_CSV))],
        body,
    )
        .into_response();
    response.headers_mut().extend(headers);
    Ok(response)
}

/// The `x-haven-*` headers of an export.
fn export_headers(export: &reporting::ExportCtdcResponse) -> Result<HeaderMap, HavenError> {
    let values = [
        (X_HAVEN_ROWS, export.rows.to_string()),
        (X_HAVEN_WITHHELD, export.withheld.to_string()),
        (X_HAVEN_WITHOUT_CONSENT, export.without_consent.to_string()),
        (X_HAVEN_K, export.k.to_string()),
        (X_HAVEN_RELEASE_ID, export.release_id.clone()),
        (X_HAVEN_SHA256, export.sha256.clone()),
    ];
    let mut headers = HeaderMap::new();
    for (name, value) in values {
        let value = HeaderValue::try_from(value)
            .map_err(|_| HavenError::internal(format!("backend answered an invalid {name}")))?;
        headers.insert(HeaderName::from_static(name), value);
    }
    Ok(headers)
}

/// The release ledger: every export published, newest first.
#[utoipa::path(
    get,
    path = paths::RELEASES,
    tag = "reports",
    params(ReleaseQuery),
    responses(
        (status = 200, description = "Releases, newest first", body = ReleaseList),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "list_releases", skip_all)]
pub(crate) async fn list_releases(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ReleaseQuery>,
) -> Result<Json<ReleaseList>, HavenError> {
    let request = caller.grpc_request(query.into_proto()?)?;
    let response = reporting(&state)
        .list_releases(request)
        .await
        .map_err(reporting_error)?;
    Ok(Json(ReleaseList::from(response.into_inner())))
}

/// Victim counts of a period under differential privacy: one-way tables (year,
/// gender, age band, majority status, each form of exploitation) over fixed labels,
/// each count with discrete Laplace noise. Spends `epsilon` from the privacy budget
/// of each calendar year the period touches; refused with `409` when a year's budget
/// would be exceeded. Recorded in the release ledger.
#[utoipa::path(
    post,
    path = paths::PRIVATE_COUNT_RELEASES,
    tag = "reports",
    request_body = PrivateCountsRequest,
    responses(
        (status = 201, description = "The counts, recorded in the release and privacy budget ledgers", body = PrivateCounts),
        CommonErrors,
        BodyErrors,
    )
)]
#[tracing::instrument(name = "release_private_counts", skip_all)]
pub(crate) async fn release_private_counts(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<PrivateCountsRequest>,
) -> Result<(StatusCode, Json<PrivateCounts>), HavenError> {
    let request = caller.grpc_request(body.into_proto()?)?;
    let response = reporting(&state)
        .release_private_counts(request)
        .await
        .map_err(reporting_error)?;
    Ok((
        StatusCode::CREATED,
        Json(PrivateCounts::from(response.into_inner())),
    ))
}

/// The privacy budget ledger: the budget of each dataset (the victim records of one
/// calendar year) and what releases under differential privacy have spent of it.
#[utoipa::path(
    get,
    path = paths::PRIVACY_BUDGET,
    tag = "reports",
    responses(
        (status = 200, description = "The privacy budget ledger", body = PrivacyBudget),
        CommonErrors,
    )
)]
#[tracing::instrument(name = "get_privacy_budget", skip_all)]
pub(crate) async fn get_privacy_budget(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PrivacyBudget>, HavenError> {
    let request = caller.grpc_request(reporting::GetPrivacyBudgetRequest {})?;
    let response = reporting(&state)
        .get_privacy_budget(request)
        .await
        .map_err(reporting_error)?;
    Ok(Json(PrivacyBudget::from(response.into_inner())))
}
