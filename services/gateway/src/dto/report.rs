//! Statistics, the anonymised CTDC export and the release ledger. Nothing here is
//! personal data: every count has passed the reporting service's small-cell
//! suppression, and the export is k-anonymised.

use std::collections::BTreeMap;

use haven_error::HavenError;
use haven_proto::reporting::v1 as reporting;
use haven_server::csv_file::{Cell, CsvFile, LineEnd};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{MAX_PAGE_SIZE, from_timestamp, non_empty, optional_date, require_text};

/// The caller's own organisation's totals, exact, computed from the services' event
/// feeds (operational figures, not for publication). Contains no personal data.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Summary {
    /// Screenings recorded.
    pub(crate) screenings_total: u64,
    /// Persons identified as victims.
    pub(crate) identified_total: u64,
    /// Cases opened.
    pub(crate) cases_total: u64,
    /// Cases not closed.
    pub(crate) cases_open: u64,
    /// Organisations in the directory.
    pub(crate) organizations_total: u64,
    /// Screened persons confirmed as trafficked again.
    pub(crate) re_trafficked_total: u64,
    /// How far each feed has been applied, e.g. `{"intake": 42}`.
    pub(crate) checkpoints: BTreeMap<String, u64>,
    /// When the figures were computed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) generated_at: Option<OffsetDateTime>,
}

impl From<reporting::GetSummaryResponse> for Summary {
    fn from(summary: reporting::GetSummaryResponse) -> Self {
        Self {
            screenings_total: summary.screenings_total,
            identified_total: summary.identified_total,
            cases_total: summary.cases_total,
            cases_open: summary.cases_open,
            organizations_total: summary.organizations_total,
            re_trafficked_total: summary.re_trafficked_total,
            checkpoints: summary.checkpoints.into_iter().collect(),
            generated_at: from_timestamp(summary.generated_at),
        }
    }
}

/// Query of `GET /v1/reports/summary`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SummaryQuery {
    /// Your own organisation (the default); any other is refused.
    pub(crate) organization_id: Option<Uuid>,
}

impl From<SummaryQuery> for reporting::GetSummaryRequest {
    fn from(query: SummaryQuery) -> Self {
        Self {
            organization_id: query
                .organization_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }
    }
}

/// Checks the parts of a scope into the proto scope: dates written `YYYY-MM-DD`,
/// `from` not after `to`, a region that is not blank. Parts left out do not filter.
fn scope(
    from: Option<String>,
    to: Option<String>,
    organization_id: Option<Uuid>,
    region: Option<String>,
) -> Result<reporting::Scope, HavenError> {
    let from = optional_date("from", from)?;
    let to = optional_date("to", to)?;
    // Both are `YYYY-MM-DD` with a four-digit year: text order is calendar order.
    if !from.is_empty() && !to.is_empty() && from > to {
        return Err(HavenError::invalid_field("to", "must not be before `from`"));
    }
    if let Some(region) = &region {
        require_text("region", region)?;
    }
    Ok(reporting::Scope {
        from,
        to,
        organization_id: organization_id.map(|id| id.to_string()).unwrap_or_default(),
        region: region.unwrap_or_default(),
    })
}

/// Which records the figures count. `null` parts did not filter.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Scope {
    /// First day counted, `YYYY-MM-DD`.
    pub(crate) from: Option<String>,
    /// Last day counted, `YYYY-MM-DD`.
    pub(crate) to: Option<String>,
    /// The organisation whose records were counted.
    #[schema(format = Uuid)]
    pub(crate) organization_id: Option<String>,
    /// The region (settlement of the screening) counted.
    pub(crate) region: Option<String>,
}

impl From<reporting::Scope> for Scope {
    fn from(scope: reporting::Scope) -> Self {
        Self {
            from: non_empty(scope.from),
            to: non_empty(scope.to),
            organization_id: non_empty(scope.organization_id),
            region: non_empty(scope.region),
        }
    }
}

/// How `GET /v1/reports/indicators` answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IndicatorsFormat {
    /// `application/json` (default).
    #[default]
    Json,
    /// `text/csv`: one row per cell and a `total` row per table.
    Csv,
    /// `text/html`: a readable page with bar charts, drawn on the server (inline SVG,
    /// nothing fetched from elsewhere), to print or send to a donor.
    Html,
}

/// Query of `GET /v1/reports/indicators`. Parameters left out do not filter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IndicatorsQuery {
    /// First day counted, `YYYY-MM-DD` (inclusive).
    pub(crate) from: Option<String>,
    /// Last day counted, `YYYY-MM-DD` (inclusive); not before `from`.
    pub(crate) to: Option<String>,
    /// Count only the records of this organisation.
    pub(crate) organization_id: Option<Uuid>,
    /// Count only screenings in this region (settlement).
    pub(crate) region: Option<String>,
    /// `json` (default), `csv` or `html`.
    #[param(inline)]
    pub(crate) format: Option<IndicatorsFormat>,
    /// The heading of the HTML page, e.g. the project's name (at most 200
    /// characters).
    pub(crate) title: Option<String>,
}

/// Longest title of an HTML report.
const TITLE_MAX_CHARS: usize = 200;

impl IndicatorsQuery {
    /// Validates the query into the gRPC request and the format asked for.
    pub(crate) fn into_proto(
        self,
    ) -> Result<
        (
            reporting::GetIndicatorsRequest,
            IndicatorsFormat,
            Option<String>,
        ),
        HavenError,
    > {
        let scope = scope(self.from, self.to, self.organization_id, self.region)?;
        let title = match self.title.map(|title| title.trim().to_owned()) {
            Some(title) if title.chars().count() > TITLE_MAX_CHARS => {
                return Err(HavenError::invalid_field(
                    "title",
                    format!("at most {TITLE_MAX_CHARS} characters"),
                ));
            }
            Some(title) if title.chars().any(char::is_control) => {
                return Err(HavenError::invalid_field(
                    "title",
                    "must be one line of text",
                ));
            }
            Some(title) if title.is_empty() => None,
            title => title,
        };
        Ok((
            reporting::GetIndicatorsRequest { scope: Some(scope) },
            self.format.unwrap_or_default(),
            title,
        ))
    }
}

/// One cell of a table. A suppressed cell has `value: null`, never 0: a 0 is a real
/// zero. Every other count is perturbed by at most `max_perturbation` of the
/// indicators, the same way for the same persons in every report.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IndicatorCell {
    /// Its labels, one per dimension of the table.
    pub(crate) labels: Vec<String>,
    /// The count, perturbed; `null` when suppressed.
    pub(crate) value: Option<u64>,
    /// Whether the count was suppressed (below the threshold, or to protect one that
    /// is).
    pub(crate) suppressed: bool,
    /// Whether it was suppressed only to protect another cell: it is not small
    /// itself.
    pub(crate) complementary: bool,
}

/// A table of counts by one or more dimensions.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IndicatorTable {
    /// e.g. `screenings_by_source`.
    pub(crate) name: String,
    /// e.g. `["referral_source"]`.
    pub(crate) dimensions: Vec<String>,
    /// Its cells.
    pub(crate) cells: Vec<IndicatorCell>,
    /// The total of the table, perturbed from its own persons (so it can differ
    /// from the sum of the cells by a few); `null` when suppressed.
    pub(crate) total: Option<u64>,
    /// Whether the total was suppressed.
    pub(crate) total_suppressed: bool,
    /// Whether it was suppressed only to protect a cell.
    pub(crate) total_complementary: bool,
}

impl From<reporting::Table> for IndicatorTable {
    fn from(table: reporting::Table) -> Self {
        Self {
            name: table.name,
            dimensions: table.dimensions,
            cells: table
                .cells
                .into_iter()
                .map(|cell| IndicatorCell {
                    labels: cell.labels,
                    value: (!cell.suppressed).then_some(cell.value),
                    suppressed: cell.suppressed,
                    complementary: cell.complementary,
                })
                .collect(),
            total: (!table.total_suppressed).then_some(table.total),
            total_suppressed: table.total_suppressed,
            total_complementary: table.total_complementary,
        }
    }
}

/// A figure that is not a count (a rate, a median, an amount) and how many persons
/// or records it rests on. Suppressed when that base is below the threshold: then
/// both `value` and `base` are `null`, as the base would be a small count.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IndicatorMeasure {
    /// e.g. `median_days_to_identification`.
    pub(crate) name: String,
    /// The figure; `null` when suppressed.
    pub(crate) value: Option<f64>,
    /// How many persons or records it rests on; `null` when suppressed.
    pub(crate) base: Option<u64>,
    /// Whether the figure was suppressed.
    pub(crate) suppressed: bool,
    /// e.g. `days`, `AZN`, `ratio`, `score`.
    pub(crate) unit: Option<String>,
}

impl From<reporting::Measure> for IndicatorMeasure {
    fn from(measure: reporting::Measure) -> Self {
        let shown = !measure.suppressed;
        Self {
            name: measure.name,
            value: shown.then_some(measure.value),
            base: shown.then_some(measure.base),
            suppressed: measure.suppressed,
            unit: non_empty(measure.unit),
        }
    }
}

/// Indicators for a period, organisation and region. Every count has been perturbed
/// (cell-key perturbation) and has passed small-cell suppression (with complementary
/// suppression); contains no personal data.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Indicators {
    /// Which records were counted.
    pub(crate) scope: Scope,
    /// Counts below this were suppressed.
    pub(crate) threshold: u32,
    /// Every published count differs from the true one by at most this much; the
    /// same persons always give the same value, in any report.
    pub(crate) max_perturbation: u32,
    /// When the figures were computed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) generated_at: Option<OffsetDateTime>,
    /// Tables of counts.
    pub(crate) tables: Vec<IndicatorTable>,
    /// Figures that are not counts.
    pub(crate) measures: Vec<IndicatorMeasure>,
}

impl From<reporting::GetIndicatorsResponse> for Indicators {
    fn from(response: reporting::GetIndicatorsResponse) -> Self {
        Self {
            scope: Scope::from(response.scope.unwrap_or_default()),
            threshold: response.threshold,
            max_perturbation: response.max_perturbation,
            generated_at: from_timestamp(response.generated_at),
            tables: response
                .tables
                .into_iter()
                .map(IndicatorTable::from)
                .collect(),
            measures: response
                .measures
                .into_iter()
                .map(IndicatorMeasure::from)
                .collect(),
        }
    }
}

impl Indicators {
    /// The tables and measures as CSV: a `table,labels,value,note` header, one row
    /// per cell (labels joined by ` / `) and a `total` row per table, then one row per
    /// measure (table `measures`). The note says what the value is: a count
    /// `perturbed by at most 2`, a count below the threshold written `<11`, a count
    /// withheld (empty) only to protect a small one, or a measure's unit and base.
    pub(crate) fn to_csv(&self) -> String {
        let small = format!("<{}", self.threshold);
        let perturbed = format!("perturbed by at most {}", self.max_perturbation);
        let below = format!("fewer than {}", self.threshold);
        let count = |value: Option<u64>, complementary: bool| -> (String, &str) {
            match value {
                Some(0) => ("0".to_owned(), ""),
                Some(value) => (value.to_string(), &perturbed),
                None if complementary => (String::new(), "withheld to protect a small count"),
                None => (small.clone(), &below),
            }
        };
        let mut csv = CsvFile::new(["table", "labels", "value", "note"], LineEnd::CrLf);
        for table in &self.tables {
            for cell in &table.cells {
                let (value, note) = count(cell.value, cell.complementary);
                csv.row([
                    Cell::Text(&table.name),
                    Cell::Text(&cell.labels.join(" / ")),
                    Cell::Figure(&value),
                    Cell::Text(note),
                ]);
            }
            let (value, note) = count(table.total, table.total_complementary);
            csv.row([
                Cell::Text(&table.name),
                Cell::Text("total"),
                Cell::Figure(&value),
                Cell::Text(note),
            ]);
        }
        for measure in &self.measures {
            let unit = measure.unit.as_deref().unwrap_or("");
            let (value, note) = match (measure.value, measure.base) {
                (Some(value), Some(base)) => (
                    value.to_string(),
                    format!("{unit}, from {base} (perturbed)"),
                ),
                _ => (String::new(), format!("withheld: rests on {below}")),
            };
            csv.row([
                Cell::Text("measures"),
                Cell::Text(&measure.name),
                Cell::Figure(&value),
                Cell::Text(&note),
            ]);
        }
        csv.finish()
    }
}

/// Body of `POST /v1/exports/ctdc`: which records to export. Parts left out do not
/// filter.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportCtdc {
    /// First day exported, `YYYY-MM-DD` (inclusive).
    #[serde(default)]
    pub(crate) from: Option<String>,
    /// Last day exported, `YYYY-MM-DD` (inclusive); not before `from`.
    #[serde(default)]
    pub(crate) to: Option<String>,
    /// Export only the records of this organisation.
    #[serde(default)]
    pub(crate) organization_id: Option<Uuid>,
    /// Export only screenings in this region (settlement).
    #[serde(default)]
    pub(crate) region: Option<String>,
}

impl ExportCtdc {
    /// Validates the body into the gRPC request.
    pub(crate) fn into_proto(self) -> Result<reporting::ExportCtdcRequest, HavenError> {
        Ok(reporting::ExportCtdcRequest {
            scope: Some(scope(
                self.from,
                self.to,
                self.organization_id,
                self.region,
            )?),
        })
    }
}

/// Query of `GET /v1/releases`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReleaseQuery {
    /// At most this many, newest first: 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
}

impl ReleaseQuery {
    /// Validates the query into the gRPC request.
    pub(crate) fn into_proto(self) -> Result<reporting::ListReleasesRequest, HavenError> {
        if let Some(limit) = self.limit
            && !(1..=MAX_PAGE_SIZE).contains(&limit)
        {
            return Err(HavenError::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        Ok(reporting::ListReleasesRequest {
            limit: self.limit.unwrap_or(0),
        })
    }
}

/// One publication of the release ledger.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Release {
    /// Release id, also sent as `x-haven-release-id` with the export.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// What was published, e.g. `ctdc_export`.
    pub(crate) kind: String,
    /// The parameters it was published with (e.g. the scope, k).
    #[schema(value_type = Object)]
    pub(crate) parameters: serde_json::Value,
    /// Records published.
    pub(crate) rows: u64,
    /// Records left out because their equivalence class was smaller than k.
    pub(crate) withheld: u64,
    /// SHA-256 of the published file, hex.
    pub(crate) sha256: String,
    /// Who published it (subject of the token).
    pub(crate) released_by: String,
    /// The organisation of the publisher.
    #[schema(format = Uuid)]
    pub(crate) organization_id: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) released_at: Option<OffsetDateTime>,
    /// For a release under differential privacy, the privacy loss (ε) it spent from
    /// each dataset it touched; `null` for others.
    pub(crate) epsilon: Option<f64>,
}

impl From<reporting::Release> for Release {
    fn from(release: reporting::Release) -> Self {
        let parameters = if release.parameters_json.trim().is_empty() {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_str(&release.parameters_json).unwrap_or_else(|_| {
                tracing::warn!(
                    release_id = %release.id,
                    "release parameters are not JSON; answering null"
                );
                serde_json::Value::Null
            })
        };
        Self {
            id: release.id,
            kind: release.kind,
            parameters,
            rows: release.rows,
            withheld: release.withheld,
            sha256: release.sha256,
            released_by: release.released_by,
            organization_id: non_empty(release.organization_id),
            released_at: from_timestamp(release.released_at),
            epsilon: release.epsilon,
        }
    }
}

/// The release ledger, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReleaseList {
    /// Releases, newest first.
    pub(crate) items: Vec<Release>,
}

impl From<reporting::ListReleasesResponse> for ReleaseList {
    fn from(response: reporting::ListReleasesResponse) -> Self {
        Self {
            items: response.releases.into_iter().map(Release::from).collect(),
        }
    }
}

/// Body of `POST /v1/releases/private_counts`: the period (required), the optional
/// organisation and region, and the privacy loss to spend.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrivateCountsRequest {
    /// First day counted, `YYYY-MM-DD` (inclusive).
    pub(crate) from: String,
    /// Last day counted, `YYYY-MM-DD` (inclusive); at most ten calendar years after
    /// `from`'s.
    pub(crate) to: String,
    /// Count only the records of this organisation.
    #[serde(default)]
    pub(crate) organization_id: Option<Uuid>,
    /// Count only screenings in this region (a settlement, in any spelling).
    #[serde(default)]
    pub(crate) region: Option<String>,
    /// The privacy loss (ε) to spend from the budget of each calendar year the period
    /// touches: at least 0.01. Smaller ε, more noise.
    pub(crate) epsilon: f64,
}

impl PrivateCountsRequest {
    /// Validates the body into the gRPC request.
    pub(crate) fn into_proto(self) -> Result<reporting::ReleasePrivateCountsRequest, HavenError> {
        Ok(reporting::ReleasePrivateCountsRequest {
            scope: Some(scope(
                Some(self.from),
                Some(self.to),
                self.organization_id,
                self.region,
            )?),
            epsilon: self.epsilon,
        })
    }
}

/// One label of a private table and its published count.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PrivateCell {
    /// The label, from a fixed set (`unknown` where the record does not say).
    pub(crate) label: String,
    /// The count with noise added, shown as at least zero.
    pub(crate) count: u64,
}

/// A one-way table over a fixed set of labels: every label is listed, counted or not.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PrivateTable {
    /// e.g. `by_gender`, `forced_labour`.
    pub(crate) name: String,
    /// Every label with its count.
    pub(crate) cells: Vec<PrivateCell>,
}

/// A dataset's privacy budget and what releases have spent of it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BudgetUse {
    /// e.g. `victims_registered_2026`: the victim records registered in that year.
    pub(crate) dataset: String,
    /// The budget (ε) of the dataset.
    pub(crate) budget: f64,
    /// What releases have spent.
    pub(crate) spent: f64,
    /// What is left.
    pub(crate) remaining: f64,
}

impl From<reporting::BudgetUse> for BudgetUse {
    fn from(used: reporting::BudgetUse) -> Self {
        Self {
            dataset: used.dataset,
            budget: used.budget,
            spent: used.spent,
            remaining: used.remaining,
        }
    }
}

/// Counts released under differential privacy, recorded in both ledgers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PrivateCounts {
    /// Which records were counted.
    pub(crate) scope: Option<Scope>,
    /// The release's entry in the release ledger.
    #[schema(format = Uuid)]
    pub(crate) release_id: String,
    /// The privacy loss spent from each dataset.
    pub(crate) epsilon: f64,
    /// The standard deviation of the noise added to each count.
    pub(crate) noise_sd: f64,
    /// The tables.
    pub(crate) tables: Vec<PrivateTable>,
    /// The budgets spent from, after this release.
    pub(crate) budgets: Vec<BudgetUse>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) released_at: Option<OffsetDateTime>,
}

impl From<reporting::ReleasePrivateCountsResponse> for PrivateCounts {
    fn from(response: reporting::ReleasePrivateCountsResponse) -> Self {
        Self {
            scope: response.scope.map(Scope::from),
            release_id: response.release_id,
            epsilon: response.epsilon,
            noise_sd: response.noise_sd,
            tables: response
                .tables
                .into_iter()
                .map(|table| PrivateTable {
                    name: table.name,
                    cells: table
                        .cells
                        .into_iter()
                        .map(|cell| PrivateCell {
                            label: cell.label,
                            count: cell.count,
                        })
                        .collect(),
                })
                .collect(),
            budgets: response.budgets.into_iter().map(BudgetUse::from).collect(),
            released_at: from_timestamp(response.released_at),
        }
    }
}

/// The privacy budget ledger.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PrivacyBudget {
    /// The budget (ε) of each dataset.
    pub(crate) budget_per_dataset: f64,
    /// Datasets that releases have spent from, oldest year first.
    pub(crate) datasets: Vec<BudgetUse>,
}

impl From<reporting::GetPrivacyBudgetResponse> for PrivacyBudget {
    fn from(response: reporting::GetPrivacyBudgetResponse) -> Self {
        Self {
            budget_per_dataset: response.budget_per_dataset,
            datasets: response.datasets.into_iter().map(BudgetUse::from).collect(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use haven_server::csv_file::text_cell as csv_field;

    fn field_of(error: &HavenError) -> &str {
        &error.violations()[0].field
    }

    /// Indicators with a table of every kind of cell and a shown and a withheld
    /// measure.
    pub(crate) fn indicators() -> Indicators {
        Indicators::from(reporting::GetIndicatorsResponse {
            scope: Some(reporting::Scope {
                from: "2026-01-01".to_owned(),
                to: "2026-03-31".to_owned(),
                organization_id: String::new(),
                region: "Ganja".to_owned(),
            }),
            tables: vec![reporting::Table {
                name: "screenings_by_source".to_owned(),
                dimensions: vec!["referral_source".to_owned(), "gender".to_owned()],
                cells: vec![
                    reporting::Cell {
                        labels: vec!["hotline".to_owned(), "female".to_owned()],
                        value: 24,
                        suppressed: false,
                        complementary: false,
                    },
                    reporting::Cell {
                        labels: vec!["police, border".to_owned(), "=male".to_owned()],
                        value: 0,
                        suppressed: true,
                        complementary: false,
                    },
                    reporting::Cell {
                        labels: vec!["ngo_outreach".to_owned(), "male".to_owned()],
                        value: 0,
                        suppressed: false,
                        complementary: false,
                    },
                    reporting::Cell {
                        labels: vec!["labour_inspection".to_owned(), "female".to_owned()],
                        value: 0,
                        suppressed: true,
                        complementary: true,
                    },
                ],
                total: 0,
                total_suppressed: true,
                total_complementary: false,
            }],
            measures: vec![
                reporting::Measure {
                    name: "median_days_to_identification".to_owned(),
                    value: 12.5,
                    base: 31,
                    suppressed: false,
                    unit: "days".to_owned(),
                },
                reporting::Measure {
                    name: "mean_cash_assistance".to_owned(),
                    value: 0.0,
                    base: 4,
                    suppressed: true,
                    unit: String::new(),
                },
            ],
            threshold: 11,
            max_perturbation: 2,
            generated_at: Some(prost_types::Timestamp {
                seconds: 1_767_319_445,
                nanos: 0,
            }),
        })
    }

    #[test]
    fn scopes_name_the_wrong_part() {
        let date = |value: &str| Some(value.to_owned());
        for (from, to, region, field) in [
            (date("2026-02-30"), None, None, "from"),
            (None, date("31.03.2026"), None, "to"),
            (date("2026-04-01"), date("2026-03-31"), None, "to"),
            (None, None, date("  "), "region"),
        ] {
            let error = scope(from, to, None, region).unwrap_err();
            assert_eq!(field_of(&error), field);
        }
        let same_day = scope(date("2026-03-01"), date("2026-03-01"), None, None).unwrap();
        assert_eq!(
            (same_day.from.as_str(), same_day.to.as_str()),
            ("2026-03-01", "2026-03-01")
        );
        let open = scope(None, None, Some(Uuid::nil()), date("Ganja")).unwrap();
        assert_eq!(open.from, "");
        assert_eq!(open.organization_id, Uuid::nil().to_string());
        assert_eq!(open.region, "Ganja");
    }

    #[test]
    fn suppressed_figures_are_null_never_zero() {
        let json = serde_json::to_value(indicators()).unwrap();
        let table = &json["tables"][0];
        assert_eq!(
            table["cells"][1],
            serde_json::json!({"labels": ["police, border", "=male"], "value": null, "suppressed": true,
                               "complementary": false})
        );
        // A real zero stays a zero.
        assert_eq!(table["cells"][2]["value"], 0);
        assert_eq!(table["total"], serde_json::Value::Null);
        assert_eq!(table["total_suppressed"], true);
        assert_eq!(
            json["measures"][1],
            serde_json::json!({"name": "mean_cash_assistance", "value": null, "base": null,
                               "suppressed": true, "unit": null})
        );
        assert_eq!(json["measures"][0]["value"], 12.5);
        assert_eq!(json["measures"][0]["base"], 31);
        assert_eq!(
            json["scope"],
            serde_json::json!({"from": "2026-01-01", "to": "2026-03-31",
                               "organization_id": null, "region": "Ganja"})
        );
        assert_eq!(json["threshold"], 11);
        assert_eq!(json["generated_at"], "2026-01-02T02:04:05Z");
    }

    #[test]
    fn csv_notes_perturbed_small_and_protecting_cells_and_carries_the_measures() {
        assert_eq!(
            indicators().to_csv(),
            "table,labels,value,note\r\n\
             screenings_by_source,hotline / female,24,perturbed by at most 2\r\n\
             screenings_by_source,\"police, border / =male\",<11,fewer than 11\r\n\
             screenings_by_source,ngo_outreach / male,0,\r\n\
             screenings_by_source,labour_inspection / female,,withheld to protect a small count\r\n\
             screenings_by_source,total,<11,fewer than 11\r\n\
             measures,median_days_to_identification,12.5,\"days, from 31 (perturbed)\"\r\n\
             measures,mean_cash_assistance,,withheld: rests on fewer than 11\r\n"
        );
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("-1,2"), "\"'-1,2\"");
        assert_eq!(csv_field("Gəncə"), "Gəncə");
    }

    #[test]
    fn release_parameters_are_an_object_and_limits_are_checked() {
        let release = |parameters_json: &str| {
            serde_json::to_value(Release::from(reporting::Release {
                id: "r1".to_owned(),
                kind: "ctdc_export".to_owned(),
                parameters_json: parameters_json.to_owned(),
                ..Default::default()
            }))
            .unwrap()
        };
        assert_eq!(
            release(r#"{"k": 11, "scope": {"from": "2026-01-01"}}"#)["parameters"],
            serde_json::json!({"k": 11, "scope": {"from": "2026-01-01"}})
        );
        assert_eq!(release("")["parameters"], serde_json::json!({}));
        assert_eq!(release("{broken")["parameters"], serde_json::Value::Null);
        assert_eq!(release("")["organization_id"], serde_json::Value::Null);
        for bad in [0, MAX_PAGE_SIZE + 1] {
            let error = ReleaseQuery { limit: Some(bad) }.into_proto().unwrap_err();
            assert_eq!(field_of(&error), "limit");
        }
        assert_eq!(ReleaseQuery::default().into_proto().unwrap().limit, 0);
    }

    #[test]
    fn a_report_title_is_one_line_of_at_most_200_characters() {
        let query = |title: &str| IndicatorsQuery {
            from: None,
            to: None,
            organization_id: None,
            region: None,
            format: Some(IndicatorsFormat::Html),
            title: Some(title.to_owned()),
        };
        let (_, _, title) = query("  Safe Return, 13 months  ").into_proto().unwrap();
        assert_eq!(title.as_deref(), Some("Safe Return, 13 months"));
        assert_eq!(query("   ").into_proto().unwrap().2, None);
        for bad in ["x".repeat(TITLE_MAX_CHARS + 1), "two\nlines".to_owned()] {
            let error = query(&bad).into_proto().unwrap_err();
            assert_eq!(field_of(&error), "title");
        }
    }

    #[test]
    fn checkpoints_are_an_object_and_generated_at_rfc3339() {
        let summary = Summary::from(reporting::GetSummaryResponse {
            screenings_total: 4,
            identified_total: 2,
            cases_total: 2,
            cases_open: 1,
            organizations_total: 3,
            re_trafficked_total: 1,
            checkpoints: [("intake".to_owned(), 42), ("case".to_owned(), 7)].into(),
            generated_at: Some(prost_types::Timestamp {
                seconds: 1_767_319_445,
                nanos: 0,
            }),
        });
        let json = serde_json::to_value(summary).unwrap();
        assert_eq!(
            json["checkpoints"],
            serde_json::json!({"case": 7, "intake": 42})
        );
        assert_eq!(json["generated_at"], "2026-01-02T02:04:05Z");
        assert_eq!(json["identified_total"], 2);
    }
}
