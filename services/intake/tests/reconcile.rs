//! Opening the cases of screenings that wait for one (`cases::reconcile`) against a
//! stand-in case service on 127.0.0.1: while the case service is unavailable the
//! rounds back off instead of calling it at every tick, a refusal does not hold up
//! the other screenings, every case is opened once the service answers again, and
//! shutdown ends the loop at once. On SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body::Frame;
use prost::Message;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::keys::{KeyMaterial, ServiceTokens};
use haven_auth::{Principal, PrincipalKind, Role, Scope};
use haven_config::Settings;
use haven_events::EventSignal;
use haven_intake::assessment::AssessmentParts;
use haven_intake::cases::{CaseOpener, reconcile};
use haven_intake::domain::{
    ConsentMethod, ConsentPurpose, DecidingOrganizationType, IdentificationStage, ReferralSource,
};
use haven_intake::persons::PersonCrypto;
use haven_intake::store::{self, NewConsent, NewDecision, NewScreening, Reach, ScreeningStore};
use haven_proto::case::v1::{Case, OpenCaseRequest, OpenCaseResponse};

/// How the stand-in case service answers `OpenCase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `UNAVAILABLE`, as a service that is restarting.
    Unavailable,
    /// Opens a case, except for `refused`, which is `INVALID_ARGUMENT`.
    Open { refused: Option<Uuid> },
}

#[derive(Debug)]
struct CaseService {
    mode: Mutex<Mode>,
    calls: AtomicU32,
    /// Screening ids it opened a case for, each call.
    opened: Mutex<Vec<String>>,
}

impl CaseService {
    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

/// Answers every call as `OpenCase`, the only call intake's reconciler makes.
async fn open_case(State(service): State<Arc<CaseService>>, body: Body) -> Response {
    service.calls.fetch_add(1, Ordering::SeqCst);
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    // A gRPC message: compression flag, length, then the message.
    let request = OpenCaseRequest::decode(&body[5..]).unwrap();
    let mode = *service.mode.lock().unwrap();
    match mode {
        Mode::Unavailable => grpc_error(14, "restarting"),
        Mode::Open { refused }
            if refused.is_some_and(|id| id.to_string() == request.screening_id) =>
        {
            grpc_error(3, "invalid field `person_id`: is unknown")
        }
        Mode::Open { .. } => {
            service.opened.lock().unwrap().push(request.screening_id);
            let reply = OpenCaseResponse {
                case: Some(Case {
                    id: Uuid::new_v4().to_string(),
                    ..Case::default()
                }),
                created: true,
            };
            let message = reply.encode_to_vec();
            let mut framed = BytesMut::with_capacity(5 + message.len());
            framed.put_u8(0);
            framed.put_u32(u32::try_from(message.len()).unwrap());
            framed.put_slice(&message);
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            grpc_response(Body::new(Unary {
                message: Some(framed.freeze()),
                trailers: Some(trailers),
            }))
        }
    }
}

/// A gRPC error as a trailers-only response.
fn grpc_error(code: u16, message: &'static str) -> Response {
    let mut response = grpc_response(Body::empty());
    let headers = response.headers_mut();
    headers.insert("grpc-status", HeaderValue::from(code));
    headers.insert("grpc-message", HeaderValue::from_static(message));
    response
}

fn grpc_response(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

/// A body of one message followed by trailers.
struct Unary {
    message: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl http_body::Body for Unary {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(message) = this.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        Poll::Ready(
            this.trailers
                .take()
                .map(|trailers| Ok(Frame::trailers(trailers))),
        )
    }
}

async fn start_case_service(mode: Mode) -> (Arc<CaseService>, SocketAddr) {
    let service = Arc::new(CaseService {
        mode: Mutex::new(mode),
        calls: AtomicU32::new(0),
        opened: Mutex::default(),
    });
    let router = axum::Router::new()
        .fallback(open_case)
        .with_state(service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (service, address)
}

struct Fixture {
    store: Arc<dyn ScreeningStore>,
    settings: Settings,
}

async fn setup(settings: &Settings) -> Fixture {
    let database = haven_intake::connect(settings).await.unwrap();
    let crypto = PersonCrypto::load(&settings.data_dir.join("keys")).unwrap();
    Fixture {
        store: store::open(database, EventSignal::default(), crypto, "AZ"),
        settings: settings.clone(),
    }
}

impl Fixture {
    fn opener(&self, case_service: SocketAddr) -> CaseOpener {
        let mut settings = self.settings.clone();
        settings.case.endpoint = format!("http://{case_service}");
        let keys = KeyMaterial::load_or_create(&settings).unwrap();
        let tokens = Arc::new(ServiceTokens::new(&settings.auth, &keys, "intake"));
        CaseOpener::new(&settings, tokens).unwrap()
    }

    /// Starts the reconciler, one round every `every`.
    fn reconcile(
        &self,
        case_service: SocketAddr,
        every: Duration,
    ) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(reconcile(
            self.store.clone(),
            self.opener(case_service),
            every,
            shutdown.clone(),
        ));
        (shutdown, task)
    }

    /// A screening of an identified person who consents to assistance.
    async fn eligible_screening(&self, organization_id: Uuid) -> Uuid {
        let context = AuditContext {
            principal: Principal {
                subject: "officer-1".into(),
                organization_id,
                roles: vec![Role::IntakeOfficer],
                kind: PrincipalKind::User,
            },
            purpose: "assistance".into(),
            request_id: "req-1".into(),
            on_behalf_of: None,
        };
        let scope = Reach::from(Scope::Organization(organization_id));
        let screening = NewScreening {
            organization_id,
            screened_by: "officer-1".into(),
            referral_source: ReferralSource::Hotline,
            screened_at: OffsetDateTime::now_utc(),
            settlement: "Ganja".into(),
            language: "az".into(),
            interpreter_used: false,
            is_minor: false,
            assessment: AssessmentParts::default(),
            coordinates: None,
            guardian: None,
        };
        let created = self
            .store
            .create_screening(&context, screening, None)
            .await
            .unwrap();
        let consent = NewConsent {
            purpose: ConsentPurpose::Assistance,
            given: true,
            method: ConsentMethod::Written,
            recorded_by: "officer-1".into(),
            by_guardian: false,
            organization_types: vec![],
            once: None,
        };
        self.store
            .record_consent(&context, scope, created.id, consent)
            .await
            .unwrap()
            .unwrap();
        let decision = NewDecision {
            stage: IdentificationStage::Identified,
            deciding_organization_type: DecidingOrganizationType::Police,
            legal_basis: "Law on Combating Trafficking, art. 17".into(),
            decided_at: OffsetDateTime::now_utc(),
            reasons: String::new(),
            recorded_by: "officer-1".into(),
            deciding_organization_id: None,
            once: None,
        };
        self.store
            .record_decision(&context, scope, created.id, decision, &[])
            .await
            .unwrap()
            .unwrap();
        created.id
    }

    async fn awaiting(&self) -> BTreeSet<Uuid> {
        let waiting = self.store.awaiting_case(50, false).await.unwrap();
        waiting.into_iter().map(|screening| screening.id).collect()
    }
}

async fn stops_promptly(shutdown: CancellationToken, task: tokio::task::JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("the reconciler did not stop within a second of shutdown")
        .unwrap();
}

async fn cases_wait_with_backoff_while_the_case_service_is_away_then_all_open(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let mut screenings = BTreeSet::new();
    for _ in 0..5 {
        screenings.insert(fixture.eligible_screening(organization).await);
    }
    let (case_service, address) = start_case_service(Mode::Unavailable).await;
    let (shutdown, task) = fixture.reconcile(address, Duration::from_millis(50));

    // A fixed pace would call 5 times every 50 ms. The first round gives up after
    // three failed calls, and the next waits at least a second.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(case_service.calls(), 3);
    assert_eq!(fixture.awaiting().await, screenings);

    case_service.set(Mode::Open { refused: None });
    let started = Instant::now();
    while !fixture.awaiting().await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "cases not opened after the case service came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opened: BTreeSet<Uuid> = case_service
        .opened
        .lock()
        .unwrap()
        .iter()
        .map(|id| Uuid::parse_str(id).unwrap())
        .collect();
    assert_eq!(opened, screenings);
    stops_promptly(shutdown, task).await;
}

async fn a_refused_screening_does_not_hold_up_the_others(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let refused = fixture.eligible_screening(organization).await;
    let others = [
        fixture.eligible_screening(organization).await,
        fixture.eligible_screening(organization).await,
    ];
    let (case_service, address) = start_case_service(Mode::Open {
        refused: Some(refused),
    })
    .await;
    let (shutdown, task) = fixture.reconcile(address, Duration::from_millis(200));

    let started = Instant::now();
    while fixture.awaiting().await.len() > 1 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the other cases were not opened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fixture.awaiting().await, BTreeSet::from([refused]));
    let opened = case_service.opened.lock().unwrap().clone();
    for other in others {
        assert_eq!(
            opened.iter().filter(|id| **id == other.to_string()).count(),
            1
        );
    }
    stops_promptly(shutdown, task).await;
}

async fn shutdown_ends_the_reconciler_while_it_backs_off(fixture: Fixture) {
    fixture.eligible_screening(Uuid::new_v4()).await;
    let (case_service, address) = start_case_service(Mode::Unavailable).await;
    let (shutdown, task) = fixture.reconcile(address, Duration::from_millis(10));
    let started = Instant::now();
    while case_service.calls() == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "no call made");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stops_promptly(shutdown, task).await;
}

haven_storage::backend_suite! {
    setup = setup;
    cases_wait_with_backoff_while_the_case_service_is_away_then_all_open,
    a_refused_screening_does_not_hold_up_the_others,
    shutdown_ends_the_reconciler_while_it_backs_off,
}
