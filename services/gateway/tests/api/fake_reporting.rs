//! A fake reporting service: fixed indicators with suppressed figures, an export and
//! a release ledger. It keeps the requests tests look into.

use std::sync::{Arc, Mutex};

use haven_proto::reporting::v1 as reporting;
use haven_proto::reporting::v1::reporting_service_server::ReportingService;
use tonic::{Request, Response, Status};

use crate::fake_backend::{SeenCall, record_call};

/// Id of the release every export answers with.
pub const RELEASE_ID: &str = "4e1ea5e0-0000-4000-8000-000000000001";
/// The file every export answers with.
pub const EXPORT_CSV: &str = "record_id,gender,age_group,exploitation\r\n\
                              1,female,18-20,\"sexual, forced labour\"\r\n";
/// The hash the export answers with (the service computes it; the fake only
/// passes it on).
pub const EXPORT_SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// The threshold the indicators were suppressed with.
pub const THRESHOLD: u32 = 11;

/// Requests the fake received whose fields tests check.
#[derive(Debug, Clone, Default)]
pub struct ReportingRequests {
    pub indicators: Vec<reporting::GetIndicatorsRequest>,
    pub exports: Vec<reporting::ExportCtdcRequest>,
    pub releases: Vec<reporting::ListReleasesRequest>,
}

pub struct FakeReporting {
    pub seen: Arc<Mutex<Vec<SeenCall>>>,
    pub requests: Arc<Mutex<ReportingRequests>>,
}

impl FakeReporting {
    fn keep<T>(&self, method: &'static str, request: Request<T>) -> T {
        record_call(&self.seen, method, &request);
        request.into_inner()
    }

    fn requests(&self) -> std::sync::MutexGuard<'_, ReportingRequests> {
        self.requests.lock().unwrap()
    }
}

fn timestamp(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn cell(labels: &[&str], value: u64, suppressed: bool) -> reporting::Cell {
    reporting::Cell {
        labels: labels.iter().map(|label| (*label).to_owned()).collect(),
        value,
        suppressed,
        complementary: false,
    }
}

#[tonic::async_trait]
impl ReportingService for FakeReporting {
    async fn get_summary(
        &self,
        request: Request<reporting::GetSummaryRequest>,
    ) -> Result<Response<reporting::GetSummaryResponse>, Status> {
        self.keep("get_summary", request);
        Ok(Response::new(reporting::GetSummaryResponse {
            screenings_total: 40,
            ..Default::default()
        }))
    }

    async fn get_indicators(
        &self,
        request: Request<reporting::GetIndicatorsRequest>,
    ) -> Result<Response<reporting::GetIndicatorsResponse>, Status> {
        let body = self.keep("get_indicators", request);
        self.requests().indicators.push(body.clone());
        Ok(Response::new(reporting::GetIndicatorsResponse {
            scope: body.scope,
            tables: vec![
                reporting::Table {
                    name: "screenings_by_source".to_owned(),
                    dimensions: vec!["referral_source".to_owned()],
                    cells: vec![
                        cell(&["hotline"], 24, false),
                        // Suppressed by the service: the value it sends is 0.
                        cell(&["police"], 0, true),
                        cell(&["ngo_outreach"], 0, true),
                        // A real zero.
                        cell(&["embassy"], 0, false),
                    ],
                    total: 38,
                    total_suppressed: false,
                    total_complementary: false,
                },
                reporting::Table {
                    name: "identified_by_gender_and_age".to_owned(),
                    dimensions: vec!["gender".to_owned(), "age_group".to_owned()],
                    cells: vec![
                        cell(&["female", "18-24"], 12, false),
                        cell(&["male", "under 18, unaccompanied"], 0, true),
                    ],
                    total: 0,
                    total_suppressed: true,
                    total_complementary: false,
                },
            ],
            measures: vec![
                reporting::Measure {
                    name: "median_days_to_identification".to_owned(),
                    value: 9.5,
                    base: 24,
                    suppressed: false,
                    unit: "days".to_owned(),
                },
                reporting::Measure {
                    name: "re_trafficked_ratio".to_owned(),
                    value: 0.0,
                    base: 0,
                    suppressed: true,
                    unit: "ratio".to_owned(),
                },
            ],
            threshold: THRESHOLD,
            max_perturbation: 2,
            generated_at: timestamp(1_767_319_445),
        }))
    }

    type ExportCtdcStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<reporting::ExportCtdcPart, Status>> + Send>,
    >;

    async fn export_ctdc(
        &self,
        request: Request<reporting::ExportCtdcRequest>,
    ) -> Result<Response<Self::ExportCtdcStream>, Status> {
        let body = self.keep("export_ctdc", request);
        self.requests().exports.push(body);
        // The summary, then the file in two parts (as the real service streams it).
        let (head, tail) = EXPORT_CSV.split_at(EXPORT_CSV.find('\n').map_or(0, |end| end + 1));
        let parts = vec![
            Ok(reporting::ExportCtdcPart {
                summary: Some(reporting::ExportCtdcResponse {
                    csv: String::new(),
                    rows: 1,
                    withheld: 3,
                    without_consent: 2,
                    k: 5,
                    sha256: EXPORT_SHA256.to_owned(),
                    release_id: RELEASE_ID.to_owned(),
                }),
                csv_chunk: String::new(),
            }),
            Ok(reporting::ExportCtdcPart {
                summary: None,
                csv_chunk: head.to_owned(),
            }),
            Ok(reporting::ExportCtdcPart {
                summary: None,
                csv_chunk: tail.to_owned(),
            }),
        ];
        Ok(Response::new(Box::pin(futures::stream::iter(parts))))
    }

    async fn list_releases(
        &self,
        request: Request<reporting::ListReleasesRequest>,
    ) -> Result<Response<reporting::ListReleasesResponse>, Status> {
        let body = self.keep("list_releases", request);
        self.requests().releases.push(body);
        Ok(Response::new(reporting::ListReleasesResponse {
            releases: vec![reporting::Release {
                id: RELEASE_ID.to_owned(),
                kind: "ctdc_export".to_owned(),
                parameters_json: r#"{"k":5,"scope":{"from":"2026-01-01","to":"2026-03-31"}}"#
                    .to_owned(),
                rows: 1,
                withheld: 3,
                sha256: EXPORT_SHA256.to_owned(),
                released_by: "user-7".to_owned(),
                organization_id: "0b8f6f5e-7a4c-4f4e-9a57-6a9f2b1d3c4e".to_owned(),
                released_at: timestamp(1_767_320_000),
                epsilon: None,
            }],
        }))
    }

    async fn release_private_counts(
        &self,
        request: Request<reporting::ReleasePrivateCountsRequest>,
    ) -> Result<Response<reporting::ReleasePrivateCountsResponse>, Status> {
        let body = self.keep("release_private_counts", request);
        Ok(Response::new(reporting::ReleasePrivateCountsResponse {
            scope: body.scope,
            release_id: RELEASE_ID.to_owned(),
            epsilon: body.epsilon,
            noise_sd: 9.9,
            tables: vec![reporting::PrivateTable {
                name: "by_gender".to_owned(),
                cells: vec![reporting::PrivateCell {
                    label: "Female".to_owned(),
                    count: 41,
                }],
            }],
            budgets: Vec::new(),
            released_at: timestamp(1_767_320_000),
        }))
    }

    async fn get_privacy_budget(
        &self,
        request: Request<reporting::GetPrivacyBudgetRequest>,
    ) -> Result<Response<reporting::GetPrivacyBudgetResponse>, Status> {
        self.keep("get_privacy_budget", request);
        Ok(Response::new(reporting::GetPrivacyBudgetResponse {
            budget_per_dataset: 1.0,
            datasets: Vec::new(),
        }))
    }
}
