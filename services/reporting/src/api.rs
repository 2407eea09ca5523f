//! The gRPC face of the reporting service.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use haven_auth::Action;
use haven_auth::grpc::principal;
use haven_error::HavenError;
use haven_error::fields::optional_date as date;
use haven_proto::reporting::v1 as pb;
use haven_proto::reporting::v1::reporting_service_server::ReportingService;

use haven_audit::AuditContext;
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::privacy::{self, BudgetUse};
use crate::projections::{LedgerChange, NewRelease, Projections, ReportScope};
use crate::publication::{
    self, Figure, MAX_PERTURBATION, PublishedTable, ctdc_classes, measure, percentile, publish,
    release_counts, release_csv, steps,
};

/// Implements `haven.reporting.v1.ReportingService`.
#[derive(Debug, Clone)]
pub struct ReportingApi {
    projections: Arc<dyn Projections>,
    threshold: u32,
    k: u32,
    privacy_budget: f64,
    gazetteer: Arc<haven_geo::Gazetteer>,
}

impl ReportingApi {
    /// The API over projections, publishing with the deployment's thresholds.
    pub fn new(
        projections: Arc<dyn Projections>,
        settings: &haven_config::ReportingSettings,
        gazetteer: haven_geo::Gazetteer,
    ) -> Self {
        Self {
            projections,
            threshold: settings.suppression_threshold,
            k: settings.k_anonymity,
            privacy_budget: settings.privacy_budget,
            gazetteer: Arc::new(gazetteer),
        }
    }
}

/// The scope of a request: dates inclusive, in UTC.
/// The region is a settlement of the gazetteer in any of its spellings (records hold
/// its local name), or `other`; the period starts no later than `today`.
fn report_scope(
    scope: Option<pb::Scope>,
    gazetteer: &haven_geo::Gazetteer,
    today: time::Date,
) -> Result<(ReportScope, pb::Scope), HavenError> {
    let mut scope = scope.unwrap_or_default();
    let from = date("scope.from", &scope.from)?;
    if from.is_some_and(|from| from > today) {
        return Err(HavenError::invalid_field(
            "scope.from",
            "is after today: there is nothing to count yet",
        ));
    }
    let to = date("scope.to", &scope.to)?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(HavenError::invalid_field(
            "scope.to",
            "is before scope.from",
        ));
    }
    let organization_id =
        match scope.organization_id.trim() {
            "" => None,
            id => Some(Uuid::parse_str(id).map_err(|_| {
                HavenError::invalid_field("scope.organization_id", "must be a UUID")
            })?),
        };
    let region = Some(scope.region.trim().to_owned()).filter(|region| !region.is_empty());
    if region
        .as_ref()
        .is_some_and(|region| region.chars().count() > 200)
    {
        return Err(HavenError::invalid_field(
            "scope.region",
            "is at most 200 characters",
        ));
    }
    let region = match region {
        None => None,
        Some(other) if other.eq_ignore_ascii_case(OTHER_SETTLEMENT) => {
            Some(OTHER_SETTLEMENT.to_owned())
        }
        Some(typed) => Some(
            gazetteer
                .find(&typed)
                .map(|found| found.name.clone())
                .ok_or_else(|| {
                    HavenError::invalid_field(
                        "scope.region",
                        "is not a settlement of the gazetteer (GET /v1/settlements lists them; \
                         any spelling of a name works), nor `other`",
                    )
                })?,
        ),
    };
    // The answer names the region as the records do.
    scope.region = region.clone().unwrap_or_default();
    Ok((
        ReportScope {
            from: from.map(|date| date.midnight().assume_utc()),
            until: to
                .and_then(|date| date.next_day())
                .map(|date| date.midnight().assume_utc()),
            organization_id,
            region,
        },
        scope,
    ))
}

/// What screenings outside the gazetteer record as their settlement.
const OTHER_SETTLEMENT: &str = "other";

/// Whole lines, about 64 KiB a part, so no message comes near the size limit.
fn csv_chunks(csv: &str) -> Vec<String> {
    const PART: usize = 64 * 1024;
    let mut parts = Vec::new();
    let mut part = String::new();
    for line in csv.split_inclusive('\n') {
        if !part.is_empty() && part.len() + line.len() > PART {
            parts.push(std::mem::take(&mut part));
        }
        part.push_str(line);
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
}

fn table_proto(table: PublishedTable) -> pb::Table {
    pb::Table {
        name: table.name.to_owned(),
        dimensions: table
            .dimensions
            .iter()
            .map(|name| (*name).to_owned())
            .collect(),
        cells: table
            .cells
            .into_iter()
            .map(|(labels, figure)| pb::Cell {
                labels,
                value: figure.value().unwrap_or_default(),
                suppressed: figure.value().is_none(),
                complementary: figure == Figure::Complementary,
            })
            .collect(),
        total: table.total.value().unwrap_or_default(),
        total_suppressed: table.total.value().is_none(),
        total_complementary: table.total == Figure::Complementary,
    }
}

fn measure_proto(measure: publication::Measure) -> pb::Measure {
    pb::Measure {
        name: measure.name,
        value: measure.value.unwrap_or_default(),
        base: measure.base,
        suppressed: measure.value.is_none(),
        unit: measure.unit,
    }
}

#[tonic::async_trait]
impl ReportingService for ReportingApi {
    async fn get_summary(
        &self,
        request: Request<pb::GetSummaryRequest>,
    ) -> Result<Response<pb::GetSummaryResponse>, Status> {
        let caller = principal(&request)?;
        caller.require(Action::SummaryRead)?;
        // Exact counts, for running the caller's own organisation: another
        // organisation's, or all of them, go out only through the perturbed indicators.
        let own = caller.organization_id;
        match request.get_ref().organization_id.as_str() {
            "" => {}
            id => {
                let asked = Uuid::parse_str(id)
                    .map_err(|_| HavenError::invalid_field("organization_id", "must be a UUID"))?;
                if asked != own {
                    return Err(HavenError::new(
                        haven_error::ErrorCode::PermissionDenied,
                        "the summary gives your own organisation's exact counts only; \
                         other organisations' figures are in the indicators, perturbed",
                    )
                    .into());
                }
            }
        }
        let summary = self.projections.summary(Some(own)).await?;
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

    async fn get_indicators(
        &self,
        request: Request<pb::GetIndicatorsRequest>,
    ) -> Result<Response<pb::GetIndicatorsResponse>, Status> {
        principal(&request)?.require(Action::ReportRead)?;
        let (scope, echoed) = report_scope(
            request.into_inner().scope,
            &self.gazetteer,
            OffsetDateTime::now_utc().date(),
        )?;
        let facts = self.projections.facts(&scope).await?;
        let threshold = u64::from(self.threshold);
        let mut measures = Vec::new();
        for (name, durations) in [
            (
                "days_screening_to_identification",
                &facts.days_to_identification,
            ),
            (
                "days_screening_to_first_service",
                &facts.days_to_first_service,
            ),
            ("days_referral_to_acceptance", &facts.days_to_accept),
        ] {
            for (suffix, fraction) in [("median", 0.5), ("p90", 0.9)] {
                let value = percentile(&durations.days, fraction).unwrap_or(f64::NAN);
                measures.push(measure(
                    format!("{name}_{suffix}"),
                    value,
                    durations.base,
                    steps::DAYS,
                    "days",
                    threshold,
                ));
            }
        }
        let answered = facts.referrals_answered;
        let rate = facts.referrals_accepted as f64 / answered.n as f64;
        measures.push(measure(
            "referral_acceptance_rate",
            rate,
            answered,
            steps::RATIO,
            "ratio",
            threshold,
        ));
        for (currency, total, cases) in &facts.cash {
            measures.push(measure(
                format!("cash_assistance_total_{currency}"),
                *total as f64 / 100.0,
                *cases,
                steps::AMOUNT,
                currency.clone(),
                threshold,
            ));
        }
        for (domain, first, latest, cases) in &facts.outcomes {
            measures.push(measure(
                format!("outcome_{domain}_first_mean"),
                *first,
                *cases,
                steps::SCORE,
                "score",
                threshold,
            ));
            measures.push(measure(
                format!("outcome_{domain}_latest_mean"),
                *latest,
                *cases,
                steps::SCORE,
                "score",
                threshold,
            ));
        }
        Ok(Response::new(pb::GetIndicatorsResponse {
            scope: Some(echoed),
            tables: facts
                .tables
                .into_iter()
                .map(|table| table_proto(publish(table, threshold)))
                .collect(),
            measures: measures.into_iter().map(measure_proto).collect(),
            threshold: self.threshold,
            max_perturbation: u32::try_from(MAX_PERTURBATION).unwrap_or(u32::MAX),
            generated_at: Some(haven_proto::timestamp(OffsetDateTime::now_utc())),
        }))
    }

    type ExportCtdcStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::ExportCtdcPart, Status>> + Send>>;

    async fn export_ctdc(
        &self,
        request: Request<pb::ExportCtdcRequest>,
    ) -> Result<Response<Self::ExportCtdcStream>, Status> {
        let context = AuditContext::from_request(&request, Action::ReportExport)?;
        let (scope, echoed) = report_scope(
            request.into_inner().scope,
            &self.gazetteer,
            OffsetDateTime::now_utc().date(),
        )?;
        let (records, without_consent) = self.projections.export_records(&scope).await?;
        // A release of a dataset (this scope and k) changes each class of identical
        // rows by 0 or by at least k rows since the last release of the same dataset,
        // so comparing two releases isolates no one (see `release_counts`).
        let dataset = serde_json::json!({
            "kind": "ctdc_export",
            "from": echoed.from,
            "to": echoed.to,
            "organization_id": echoed.organization_id,
            "region": echoed.region,
            "k": self.k,
        })
        .to_string();
        let current = ctdc_classes(&records);
        let previous = self.projections.released_classes(&dataset).await?;
        let classes = release_counts(&current, &previous, u64::from(self.k));
        let rows: u64 = classes.values().sum();
        let withheld = records.len() as u64 - rows;
        let csv = release_csv(&classes);
        let sha256 = hex::encode(sha2::Sha256::digest(csv.as_bytes()));
        let parameters = serde_json::json!({
            "from": echoed.from,
            "to": echoed.to,
            "organization_id": echoed.organization_id,
            "region": echoed.region,
            "k": self.k,
            "without_consent": without_consent,
        });
        let (release, _) = self
            .projections
            .record_release(
                NewRelease {
                    kind: "ctdc_export",
                    parameters: parameters.to_string(),
                    rows,
                    withheld,
                    sha256: sha256.clone(),
                    released_by: context.principal.subject.clone(),
                    organization_id: context.principal.organization_id,
                },
                LedgerChange::Classes {
                    dataset: &dataset,
                    previous: &previous,
                    classes: &classes,
                },
            )
            .await?;
        tracing::info!(release_id = %release.id, rows, withheld, "anonymised export released");
        let summary = pb::ExportCtdcPart {
            summary: Some(pb::ExportCtdcResponse {
                csv: String::new(),
                rows,
                withheld,
                without_consent,
                k: self.k,
                sha256,
                release_id: release.id.to_string(),
            }),
            csv_chunk: String::new(),
        };
        let parts = std::iter::once(summary).chain(csv_chunks(&csv).into_iter().map(|chunk| {
            pb::ExportCtdcPart {
                summary: None,
                csv_chunk: chunk,
            }
        }));
        let parts: Vec<Result<pb::ExportCtdcPart, Status>> = parts.map(Ok).collect();
        Ok(Response::new(Box::pin(futures::stream::iter(parts))))
    }

    async fn list_releases(
        &self,
        request: Request<pb::ListReleasesRequest>,
    ) -> Result<Response<pb::ListReleasesResponse>, Status> {
        principal(&request)?.require(Action::ReleaseRead)?;
        let limit = match request.get_ref().limit {
            0 => 50,
            limit @ 1..=200 => limit,
            _ => return Err(HavenError::invalid_field("limit", "must be 1 to 200").into()),
        };
        let releases = self.projections.releases(limit).await?;
        Ok(Response::new(pb::ListReleasesResponse {
            releases: releases
                .into_iter()
                .map(|release| pb::Release {
                    id: release.id.to_string(),
                    kind: release.kind,
                    parameters_json: release.parameters,
                    rows: release.rows,
                    withheld: release.withheld,
                    sha256: release.sha256,
                    released_by: release.released_by,
                    organization_id: release.organization_id.to_string(),
                    released_at: Some(haven_proto::timestamp(release.released_at)),
                    epsilon: release.epsilon,
                })
                .collect(),
        }))
    }

    async fn release_private_counts(
        &self,
        request: Request<pb::ReleasePrivateCountsRequest>,
    ) -> Result<Response<pb::ReleasePrivateCountsResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::ReportExport)?;
        let request = request.into_inner();
        let (scope, echoed) = report_scope(
            request.scope,
            &self.gazetteer,
            OffsetDateTime::now_utc().date(),
        )?;
        let from = scope.from.map(|from| from.date());
        let to = scope
            .until
            .map(|until| until.date().previous_day().unwrap_or(until.date()));
        let spend = privacy::spend(from, to, request.epsilon, self.privacy_budget)?;
        let (Some(from), Some(to)) = (from, to) else {
            return Err(HavenError::internal("a checked spend has a period").into());
        };
        let (records, _) = self.projections.export_records(&scope).await?;
        let (tables, noise_sd) = privacy::private_tables(
            &records,
            from.year()..=to.year(),
            request.epsilon,
            &mut rand::rng(),
        );
        let published: Vec<pb::PrivateTable> = tables
            .into_iter()
            .map(|table| pb::PrivateTable {
                name: table.name.to_owned(),
                cells: table
                    .cells
                    .into_iter()
                    .map(|(label, count)| pb::PrivateCell { label, count })
                    .collect(),
            })
            .collect();
        // The ledger keeps a hash of what was published, as for a file.
        let digest = serde_json::to_string(
            &published
                .iter()
                .map(|table| {
                    (
                        &table.name,
                        table
                            .cells
                            .iter()
                            .map(|cell| (&cell.label, cell.count))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>(),
        )
        .map_err(|error| HavenError::internal(error.to_string()))?;
        let parameters = serde_json::json!({
            "from": echoed.from,
            "to": echoed.to,
            "organization_id": echoed.organization_id,
            "region": echoed.region,
            "epsilon": privacy::micros(spend.epsilon_micro),
            "mechanism": "discrete_laplace",
            "datasets": spend.datasets,
        });
        let cells: usize = published.iter().map(|table| table.cells.len()).sum();
        let (release, budgets) = self
            .projections
            .record_release(
                NewRelease {
                    kind: "private_counts",
                    parameters: parameters.to_string(),
                    rows: cells as u64,
                    withheld: 0,
                    sha256: hex::encode(sha2::Sha256::digest(digest.as_bytes())),
                    released_by: context.principal.subject.clone(),
                    organization_id: context.principal.organization_id,
                },
                LedgerChange::Budget(&spend),
            )
            .await?;
        tracing::info!(
            release_id = %release.id,
            epsilon = request.epsilon,
            datasets = ?spend.datasets,
            "counts released under differential privacy"
        );
        Ok(Response::new(pb::ReleasePrivateCountsResponse {
            scope: Some(echoed),
            release_id: release.id.to_string(),
            epsilon: privacy::micros(spend.epsilon_micro),
            noise_sd,
            tables: published,
            budgets: budgets
                .iter()
                .map(|used| budget_use(used, self.privacy_budget))
                .collect(),
            released_at: Some(haven_proto::timestamp(release.released_at)),
        }))
    }

    async fn get_privacy_budget(
        &self,
        request: Request<pb::GetPrivacyBudgetRequest>,
    ) -> Result<Response<pb::GetPrivacyBudgetResponse>, Status> {
        principal(&request)?.require(Action::ReleaseRead)?;
        let datasets = self.projections.privacy_budget().await?;
        Ok(Response::new(pb::GetPrivacyBudgetResponse {
            budget_per_dataset: self.privacy_budget,
            datasets: datasets
                .iter()
                .map(|used| budget_use(used, self.privacy_budget))
                .collect(),
        }))
    }
}

/// A dataset's budget as published.
fn budget_use(used: &BudgetUse, budget: f64) -> pb::BudgetUse {
    let spent = privacy::micros(used.spent_micro);
    pb::BudgetUse {
        dataset: used.dataset.clone(),
        budget,
        spent,
        remaining: privacy::micros(
            ((budget * privacy::MICROS).floor() as i64 - used.spent_micro).max(0),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{csv_chunks, pb, report_scope};

    #[test]
    fn a_region_is_a_settlement_in_any_spelling_and_a_period_starts_by_today() {
        let gazetteer = haven_geo::Gazetteer::default_settlements();
        let today = time::macros::date!(2026 - 12 - 02);
        let region = |typed: &str| {
            report_scope(
                Some(pb::Scope {
                    region: typed.to_owned(),
                    ..pb::Scope::default()
                }),
                &gazetteer,
                today,
            )
        };
        for typed in ["Gəncə", "Ganja", "ganja", " GANJA "] {
            let (scope, echoed) = region(typed).unwrap();
            assert_eq!(scope.region.as_deref(), Some("Gəncə"), "{typed}");
            assert_eq!(echoed.region, "Gəncə");
        }
        assert_eq!(region("Other").unwrap().0.region.as_deref(), Some("other"));
        assert_eq!(region("").unwrap().0.region, None);
        let unknown = region("Atlantis").unwrap_err();
        assert_eq!(unknown.violations()[0].field, "scope.region");
        let future = report_scope(
            Some(pb::Scope {
                from: "2026-12-03".to_owned(),
                ..pb::Scope::default()
            }),
            &gazetteer,
            today,
        )
        .unwrap_err();
        assert_eq!(future.violations()[0].field, "scope.from");
    }

    #[test]
    fn a_large_file_goes_in_whole_line_parts_that_join_back() {
        let csv: String = (0..20_000)
            .map(|row| format!("2026,Case Management,Female,18--20,Adult,AZ,0,1,{row}\n"))
            .collect();
        let parts = csv_chunks(&csv);
        assert!(parts.len() > 10);
        assert!(
            parts
                .iter()
                .all(|part| part.len() <= 64 * 1024 && part.ends_with('\n'))
        );
        assert_eq!(parts.concat(), csv);
        assert!(csv_chunks("").is_empty());
    }
}
