//! A fake intake service (and its indicator sets), a fake referral service and a fake
//! reporting service speaking real gRPC, plus the health protocol answering SERVING for
//! all four services, so the gateway can be tested end to end without the real
//! services. It remembers the metadata of every call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use haven_error::HavenError;
use haven_proto::intake::v1 as intake;
use haven_proto::intake::v1::indicator_set_service_server::{
    IndicatorSetService, IndicatorSetServiceServer,
};
use haven_proto::intake::v1::intake_service_server::{IntakeService, IntakeServiceServer};
use haven_proto::referral::v1::referral_service_server::ReferralServiceServer;
use haven_proto::reporting::v1::reporting_service_server::ReportingServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::fake_referral::{FakeReferral, ReferralRequests};
use crate::fake_reporting::{FakeReporting, ReportingRequests};

/// Screening id that answers NotFound.
pub const MISSING_ID: &str = "00000000-0000-4000-8000-000000000404";
/// Screening id whose lookup fails with internal text that must not leak.
pub const BROKEN_ID: &str = "00000000-0000-4000-8000-000000000500";
/// Screening id whose lookup never finishes in time.
pub const SLOW_ID: &str = "00000000-0000-4000-8000-000000000504";
/// Text of the internal failure.
pub const SECRET_TEXT: &str = "connection to db-primary:5432 refused for user haven";
/// Case opened when a decision identifies the person.
pub const CASE_ID: &str = "5a1d2c3b-0000-4000-8000-00000000ca5e";
/// Version every publication answers with.
pub const PUBLISHED_VERSION: u32 = 2;

/// Metadata of one call the fake received.
#[derive(Debug, Clone)]
pub struct SeenCall {
    pub method: &'static str,
    pub authorization: Option<String>,
    pub request_id: Option<String>,
    pub grpc_timeout: Option<String>,
    pub purpose: Option<String>,
}

/// A running fake.
pub struct FakeBackend {
    pub endpoint: String,
    seen: Arc<Mutex<Vec<SeenCall>>>,
    referral_requests: Arc<Mutex<ReferralRequests>>,
    reporting_requests: Arc<Mutex<ReportingRequests>>,
    /// `idempotency_key` of every publication of an indicator set, in order.
    idempotency_keys: Arc<Mutex<Vec<String>>>,
    shutdown: CancellationToken,
}

impl FakeBackend {
    pub async fn start() -> Self {
        let (reporter, health) = tonic_health::server::health_reporter();
        for service in [
            "haven.intake.v1.IntakeService",
            "haven.case.v1.CaseService",
            "haven.referral.v1.ReferralService",
            "haven.reporting.v1.ReportingService",
        ] {
            reporter
                .set_service_status(service, tonic_health::ServingStatus::Serving)
                .await;
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let idempotency_keys = Arc::new(Mutex::new(Vec::new()));
        let referral_requests = Arc::new(Mutex::new(ReferralRequests::default()));
        let reporting_requests = Arc::new(Mutex::new(ReportingRequests::default()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(IntakeServiceServer::new(FakeIntake { seen: seen.clone() }))
            .add_service(IndicatorSetServiceServer::new(FakeIndicatorSets {
                seen: seen.clone(),
                keys: idempotency_keys.clone(),
            }))
            .add_service(ReferralServiceServer::new(FakeReferral {
                seen: seen.clone(),
                requests: referral_requests.clone(),
            }))
            .add_service(ReportingServiceServer::new(FakeReporting {
                seen: seen.clone(),
                requests: reporting_requests.clone(),
            }))
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener),
                shutdown.clone().cancelled_owned(),
            );
        tokio::spawn(server);
        Self {
            endpoint,
            seen,
            referral_requests,
            reporting_requests,
            idempotency_keys,
            shutdown,
        }
    }

    /// The `idempotency_key` of every indicator set publication so far.
    pub fn idempotency_keys(&self) -> Vec<String> {
        self.idempotency_keys.lock().unwrap().clone()
    }

    /// The calls received so far.
    pub fn calls(&self) -> Vec<SeenCall> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests the fake referral service received so far.
    pub fn referral_requests(&self) -> ReferralRequests {
        self.referral_requests.lock().unwrap().clone()
    }

    /// The requests the fake reporting service received so far.
    pub fn reporting_requests(&self) -> ReportingRequests {
        self.reporting_requests.lock().unwrap().clone()
    }
}

impl Drop for FakeBackend {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

struct FakeIntake {
    seen: Arc<Mutex<Vec<SeenCall>>>,
}

impl FakeIntake {
    fn record<T>(&self, method: &'static str, request: &Request<T>) {
        record_call(&self.seen, method, request);
    }
}

pub fn record_call<T>(seen: &Mutex<Vec<SeenCall>>, method: &'static str, request: &Request<T>) {
    let text = |key: &str| {
        request
            .metadata()
            .get(key)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    seen.lock().unwrap().push(SeenCall {
        method,
        authorization: text("authorization"),
        request_id: text("x-request-id"),
        grpc_timeout: text("grpc-timeout"),
        purpose: text("x-haven-purpose"),
    });
}

fn timestamp(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn screening(id: &str) -> intake::Screening {
    intake::Screening {
        id: id.to_owned(),
        organization_id: "0b8f6f5e-7a4c-4f4e-9a57-6a9f2b1d3c4e".to_owned(),
        screened_by: "user-7".to_owned(),
        referral_source: intake::ReferralSource::NgoOutreach as i32,
        screened_at: timestamp(1_767_319_445),
        settlement: String::new(),
        language: "az".to_owned(),
        interpreter_used: false,
        is_minor: false,
        stage: intake::IdentificationStage::Screened as i32,
        case_id: String::new(),
        consents: Vec::new(),
        decisions: Vec::new(),
        created_at: timestamp(1_767_319_500),
        version: 1,
        person_id: String::new(),
        person_code: String::new(),
        indicators: None,
        exploitation: None,
        risk: None,
        re_trafficked: false,
        coordinates: None,
        guardian: None,
    }
}

#[tonic::async_trait]
impl IntakeService for FakeIntake {
    async fn create_screening(
        &self,
        request: Request<intake::CreateScreeningRequest>,
    ) -> Result<Response<intake::CreateScreeningResponse>, Status> {
        self.record("create_screening", &request);
        let body = request.into_inner();
        let mut created = screening("7f1c9a52-3b7e-4d1a-9a0e-5c2f1e3d4b6a");
        created.referral_source = body.referral_source;
        created.settlement = body.settlement;
        created.is_minor = body.is_minor;
        created.guardian = body.guardian;
        if body.screened_at.is_some() {
            created.screened_at = body.screened_at;
        }
        Ok(Response::new(intake::CreateScreeningResponse {
            replayed: false,
            screening: Some(created),
        }))
    }

    async fn get_screening(
        &self,
        request: Request<intake::GetScreeningRequest>,
    ) -> Result<Response<intake::GetScreeningResponse>, Status> {
        self.record("get_screening", &request);
        let id = request.into_inner().id;
        match id.as_str() {
            MISSING_ID => Err(HavenError::not_found("screening").into_status()),
            BROKEN_ID => Err(Status::internal(SECRET_TEXT)),
            SLOW_ID => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Err(Status::internal("too late"))
            }
            _ => Ok(Response::new(intake::GetScreeningResponse {
                screening: Some(screening(&id)),
            })),
        }
    }

    async fn list_screenings(
        &self,
        request: Request<intake::ListScreeningsRequest>,
    ) -> Result<Response<intake::ListScreeningsResponse>, Status> {
        self.record("list_screenings", &request);
        let page = request.into_inner().page.unwrap_or_default();
        let next_cursor = if page.cursor.is_empty() { "page-2" } else { "" };
        Ok(Response::new(intake::ListScreeningsResponse {
            screenings: vec![screening("11111111-1111-4111-8111-111111111111")],
            page: Some(haven_proto::common::v1::PageResponse {
                next_cursor: next_cursor.to_owned(),
            }),
        }))
    }

    async fn record_consent(
        &self,
        request: Request<intake::RecordConsentRequest>,
    ) -> Result<Response<intake::RecordConsentResponse>, Status> {
        self.record("record_consent", &request);
        let body = request.into_inner();
        let mut updated = screening(&body.screening_id);
        updated.consents.push(intake::Consent {
            id: "c0c0c0c0-0000-4000-8000-000000000001".to_owned(),
            purpose: body.purpose,
            given: body.given,
            method: body.method,
            recorded_by: "user-7".to_owned(),
            recorded_at: timestamp(1_767_320_000),
            by_guardian: body.by_guardian,
            organization_types: body.organization_types,
        });
        updated.version = 2;
        Ok(Response::new(intake::RecordConsentResponse {
            screening: Some(updated),
        }))
    }

    async fn record_decision(
        &self,
        request: Request<intake::RecordDecisionRequest>,
    ) -> Result<Response<intake::RecordDecisionResponse>, Status> {
        self.record("record_decision", &request);
        let body = request.into_inner();
        let mut updated = screening(&body.screening_id);
        updated.stage = body.stage;
        if body.stage == intake::IdentificationStage::Identified as i32 {
            updated.case_id = CASE_ID.to_owned();
        }
        updated.decisions.push(intake::Decision {
            id: "dec1dec1-0000-4000-8000-000000000001".to_owned(),
            stage: body.stage,
            deciding_organization_type: body.deciding_organization_type,
            legal_basis: body.legal_basis,
            decided_at: body.decided_at,
            reasons: body.reasons,
            recorded_by: "user-7".to_owned(),
            recorded_at: timestamp(1_767_320_100),
            deciding_organization_id: body.deciding_organization_id,
        });
        updated.version = 3;
        Ok(Response::new(intake::RecordDecisionResponse {
            screening: Some(updated),
        }))
    }

    async fn get_person(
        &self,
        request: Request<intake::GetPersonRequest>,
    ) -> Result<Response<intake::GetPersonResponse>, Status> {
        self.record("get_person", &request);
        let id = request.into_inner().id;
        Ok(Response::new(intake::GetPersonResponse {
            person: Some(intake::Person {
                id,
                code: "HVP-2026-000001".to_owned(),
                organization_id: "0b0b0b0b-0000-4000-8000-000000000001".to_owned(),
                details: Some(intake::PersonDetails {
                    given_name: "Aynur".to_owned(),
                    ..Default::default()
                }),
                erased: false,
                created_at: timestamp(1_767_320_000),
            }),
        }))
    }

    async fn erase_person(
        &self,
        _request: Request<intake::ErasePersonRequest>,
    ) -> Result<Response<intake::ErasePersonResponse>, Status> {
        Err(Status::not_found("person not found"))
    }

    async fn find_matches(
        &self,
        _request: Request<intake::FindMatchesRequest>,
    ) -> Result<Response<intake::FindMatchesResponse>, Status> {
        Err(Status::not_found("screening not found"))
    }

    async fn list_person_access(
        &self,
        _request: Request<intake::ListPersonAccessRequest>,
    ) -> Result<Response<intake::ListPersonAccessResponse>, Status> {
        Err(Status::not_found("person not found"))
    }

    async fn update_screening(
        &self,
        _request: Request<intake::UpdateScreeningRequest>,
    ) -> Result<Response<intake::UpdateScreeningResponse>, Status> {
        Err(Status::not_found("screening not found"))
    }

    async fn confirm_match(
        &self,
        _request: Request<intake::ConfirmMatchRequest>,
    ) -> Result<Response<intake::ConfirmMatchResponse>, Status> {
        Err(Status::not_found("screening not found"))
    }

    async fn share_for_referral(
        &self,
        _request: Request<intake::ShareForReferralRequest>,
    ) -> Result<Response<intake::ShareForReferralResponse>, Status> {
        Err(Status::permission_denied("for the referral service only"))
    }
}

/// Indicator sets: publication only, which the idempotency tests use as their create.
/// Like intake, it answers a key it has seen as a replay.
struct FakeIndicatorSets {
    seen: Arc<Mutex<Vec<SeenCall>>>,
    keys: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl IndicatorSetService for FakeIndicatorSets {
    async fn list_indicator_sets(
        &self,
        request: Request<intake::ListIndicatorSetsRequest>,
    ) -> Result<Response<intake::ListIndicatorSetsResponse>, Status> {
        record_call(&self.seen, "list_indicator_sets", &request);
        Err(Status::unimplemented("not faked"))
    }

    async fn get_indicator_set(
        &self,
        request: Request<intake::GetIndicatorSetRequest>,
    ) -> Result<Response<intake::GetIndicatorSetResponse>, Status> {
        record_call(&self.seen, "get_indicator_set", &request);
        Err(Status::unimplemented("not faked"))
    }

    async fn publish_indicator_set(
        &self,
        request: Request<intake::PublishIndicatorSetRequest>,
    ) -> Result<Response<intake::PublishIndicatorSetResponse>, Status> {
        record_call(&self.seen, "publish_indicator_set", &request);
        let body = request.into_inner();
        let replayed = {
            let mut keys = self.keys.lock().unwrap();
            let replayed = !body.idempotency_key.is_empty() && keys.contains(&body.idempotency_key);
            keys.push(body.idempotency_key.clone());
            replayed
        };
        Ok(Response::new(intake::PublishIndicatorSetResponse {
            replayed,
            set: Some(intake::IndicatorSet {
                version: PUBLISHED_VERSION,
                name: body.name,
                groups: body.groups,
                published_at: timestamp(1_767_320_200),
                published_by: "user-7".to_owned(),
            }),
        }))
    }
}
