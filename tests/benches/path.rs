//! Benchmark of the first path (create screening → consent → identified decision,
//! which opens the case → read the case), through each layer in one run:
//!
//! - REST through the gateway (HTTP → gateway → gRPC → services → SQL),
//! - the same calls over gRPC directly to the services,
//! - the bare SQL transactions alone (the storage calls, no network).
//!
//! Prints p50/p99 latency of one whole path and throughput (paths/s) with several
//! concurrent clients, per backend, so each layer's cost is a ratio anyone can
//! reproduce:
//!
//! ```text
//! cargo bench -p haven-e2e --bench path
//! HAVEN_BENCH_PATHS=1000 HAVEN_BENCH_CLIENTS=16 cargo bench -p haven-e2e --bench path
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use haven_auth::Scope;
use haven_cli::ServiceName;
use haven_e2e::{Backend, TestStack, authorized};
use haven_proto::case::v1::case_service_client::CaseServiceClient;
use haven_proto::intake::v1 as intake;
use haven_proto::intake::v1::intake_service_client::IntakeServiceClient;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    p50: Duration,
    p99: Duration,
    throughput: f64,
}

/// Runs `paths` sequentially for latency, then `paths` again over `clients` concurrent
/// tasks for throughput.
async fn measure<F, Fut>(paths: usize, clients: usize, run: F) -> Figures
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let run = Arc::new(run);
    for _ in 0..paths.min(20) {
        run().await; // warm-up: connections, caches, prepared statements
    }
    let mut latencies = Vec::with_capacity(paths);
    for _ in 0..paths {
        let start = Instant::now();
        run().await;
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let percentile = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];

    let per_client = paths.div_ceil(clients);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let run = run.clone();
            tokio::spawn(async move {
                for _ in 0..per_client {
                    run().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let throughput = (per_client * clients) as f64 / start.elapsed().as_secs_f64();
    Figures {
        p50: percentile(0.50),
        p99: percentile(0.99),
        throughput,
    }
}

async fn rest_path(stack: Arc<TestStack>, officer: Arc<String>, case_worker: Arc<String>) {
    let created: Value = stack
        .post(
            &officer,
            "/v1/screenings",
            json!({"referral_source": "hotline"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let consent = json!({"purpose": "assistance", "given": true, "method": "written"});
    assert_eq!(
        stack
            .post(&officer, &format!("/v1/screenings/{id}/consents"), consent)
            .await
            .status(),
        201
    );
    let decision = json!({"stage": "identified", "deciding_organization_type": "police", "legal_basis": "art. 17"});
    let decided: Value = stack
        .post(
            &officer,
            &format!("/v1/screenings/{id}/decisions"),
            decision,
        )
        .await
        .json()
        .await
        .unwrap();
    let case_id = decided["case_id"].as_str().unwrap();
    assert_eq!(
        stack
            .get(&case_worker, &format!("/v1/cases/{case_id}"))
            .await
            .status(),
        200
    );
}

async fn grpc_path(
    mut intake_client: IntakeServiceClient<tonic::transport::Channel>,
    mut case_client: CaseServiceClient<tonic::transport::Channel>,
    officer: Arc<String>,
    case_worker: Arc<String>,
) {
    let screening = intake_client
        .create_screening(authorized(
            intake::CreateScreeningRequest {
                referral_source: intake::ReferralSource::Hotline.into(),
                ..Default::default()
            },
            &officer,
        ))
        .await
        .unwrap()
        .into_inner()
        .screening
        .unwrap();
    intake_client
        .record_consent(authorized(
            intake::RecordConsentRequest {
                screening_id: screening.id.clone(),
                purpose: intake::ConsentPurpose::Assistance.into(),
                given: true,
                method: intake::ConsentMethod::Written.into(),
                ..Default::default()
            },
            &officer,
        ))
        .await
        .unwrap();
    let decided = intake_client
        .record_decision(authorized(
            intake::RecordDecisionRequest {
                screening_id: screening.id,
                stage: intake::IdentificationStage::Identified.into(),
                deciding_organization_type: intake::DecidingOrganizationType::Police.into(),
                legal_basis: "art. 17".into(),
                ..Default::default()
            },
            &officer,
        ))
        .await
        .unwrap()
        .into_inner()
        .screening
        .unwrap();
    case_client
        .get_case(authorized(
            haven_proto::case::v1::GetCaseRequest {
                id: decided.case_id,
            },
            &case_worker,
        ))
        .await
        .unwrap();
}

struct SqlOnly {
    screenings: Arc<dyn haven_intake::store::ScreeningStore>,
    cases: Arc<dyn haven_case::store::CaseStore>,
    organization: Uuid,
    officer: haven_audit::AuditContext,
    intake: haven_audit::AuditContext,
}

async fn sql_path(sql: Arc<SqlOnly>) {
    use haven_intake::domain::{
        ConsentMethod, ConsentPurpose, DecidingOrganizationType, IdentificationStage,
        ReferralSource,
    };
    use haven_intake::store::{NewConsent, NewDecision, NewScreening};
    let scope = Scope::Organization(sql.organization);
    let now = time::OffsetDateTime::now_utc();
    let screening = sql
        .screenings
        .create_screening(
            &sql.officer,
            NewScreening {
                organization_id: sql.organization,
                screened_by: "bench".into(),
                referral_source: ReferralSource::Hotline,
                screened_at: now,
                settlement: String::new(),
                language: String::new(),
                interpreter_used: false,
                is_minor: false,
                assessment: Default::default(),
                coordinates: None,
                guardian: None,
            },
            None,
        )
        .await
        .unwrap();
    let consent = NewConsent {
        purpose: ConsentPurpose::Assistance,
        given: true,
        method: ConsentMethod::Written,
        recorded_by: "bench".into(),
        by_guardian: false,
        organization_types: vec![],
        once: None,
    };
    sql.screenings
        .record_consent(&sql.officer, scope.into(), screening.id, consent)
        .await
        .unwrap();
    let decision = NewDecision {
        stage: IdentificationStage::Identified,
        deciding_organization_type: DecidingOrganizationType::Police,
        legal_basis: "art. 17".into(),
        decided_at: now,
        reasons: String::new(),
        recorded_by: "bench".into(),
        deciding_organization_id: None,
        once: None,
    };
    sql.screenings
        .record_decision(&sql.officer, scope.into(), screening.id, decision, &[])
        .await
        .unwrap();
    let (case, _) = sql
        .cases
        .open_case(
            &sql.intake,
            haven_case::store::NewCase {
                screening_id: screening.id,
                organization_id: sql.organization,
                person_id: None,
            },
        )
        .await
        .unwrap();
    sql.screenings
        .link_case(screening.id, case.id)
        .await
        .unwrap();
    sql.cases
        .get_case(&sql.officer, scope, case.id)
        .await
        .unwrap()
        .unwrap();
}

fn audit_context(
    organization: Uuid,
    role: haven_auth::Role,
    kind: haven_auth::PrincipalKind,
) -> haven_audit::AuditContext {
    haven_audit::AuditContext {
        principal: haven_auth::Principal {
            subject: "bench".into(),
            organization_id: organization,
            roles: vec![role],
            kind,
        },
        purpose: "assistance".into(),
        request_id: String::new(),
        on_behalf_of: None,
    }
}

fn report(layer: &str, figures: &Figures, baseline: Option<&Figures>) {
    let ratio = baseline
        .map(|base| {
            format!(
                "{:>6.1}x",
                figures.p50.as_secs_f64() / base.p50.as_secs_f64()
            )
        })
        .unwrap_or_else(|| "  1.0x".to_owned());
    println!(
        "  {layer:<22} p50 {:>9.3} ms   p99 {:>9.3} ms   {:>8.1} paths/s   p50 vs SQL {ratio}",
        figures.p50.as_secs_f64() * 1e3,
        figures.p99.as_secs_f64() * 1e3,
        figures.throughput,
    );
}

async fn bench_backend(backend: Backend, paths: usize, clients: usize) {
    let Some((dir, mut settings)) = haven_e2e::settings(backend).await else {
        println!("{backend:?}: skipped (no Postgres available)");
        return;
    };
    settings.telemetry.log_filter = "warn".into();
    let stack = Arc::new(TestStack::start_with(dir, settings).await);
    let organization = Uuid::new_v4();
    let officer = Arc::new(stack.token(&["intake_officer"], organization));
    let case_worker = Arc::new(stack.token(&["case_worker"], organization));

    let sql = {
        let intake_database = haven_intake::connect(&stack.settings).await.unwrap();
        let case_database = haven_case::connect(&stack.settings).await.unwrap();
        Arc::new(SqlOnly {
            screenings: haven_intake::store::open(
                intake_database,
                haven_events::EventSignal::default(),
                haven_intake::persons::PersonCrypto::load(&stack.settings.data_dir.join("keys"))
                    .unwrap(),
                "BENCH",
            ),
            cases: haven_case::store::open(
                case_database,
                haven_events::EventSignal::default(),
                haven_case::crypto::CaseCrypto::load(&stack.settings.data_dir.join("keys"))
                    .unwrap(),
                haven_case::store::StoreOptions {
                    code_prefix: "BENCH".into(),
                    allow_self_approval: false,
                },
            ),
            organization,
            officer: audit_context(
                organization,
                haven_auth::Role::IntakeOfficer,
                haven_auth::PrincipalKind::User,
            ),
            intake: audit_context(
                Uuid::nil(),
                haven_auth::Role::Service,
                haven_auth::PrincipalKind::Service,
            ),
        })
    };
    let sql_figures = measure(paths, clients, move || sql_path(sql.clone())).await;

    let intake_channel = stack.channel(ServiceName::Intake).await;
    let case_channel = stack.channel(ServiceName::Case).await;
    let (grpc_officer, grpc_worker) = (officer.clone(), case_worker.clone());
    let grpc_figures = measure(paths, clients, move || {
        grpc_path(
            IntakeServiceClient::new(intake_channel.clone()),
            CaseServiceClient::new(case_channel.clone()),
            grpc_officer.clone(),
            grpc_worker.clone(),
        )
    })
    .await;

    let rest_stack = stack.clone();
    let rest_figures = measure(paths, clients, move || {
        rest_path(rest_stack.clone(), officer.clone(), case_worker.clone())
    })
    .await;

    println!(
        "{backend:?} — {paths} paths sequential (latency), {clients} concurrent clients (throughput):"
    );
    report("bare SQL transactions", &sql_figures, None);
    report("gRPC to the services", &grpc_figures, Some(&sql_figures));
    report("REST via the gateway", &rest_figures, Some(&sql_figures));
    if let Ok(stack) = Arc::try_unwrap(stack) {
        stack.stop().await;
    }
}

fn main() {
    let paths = env_number("HAVEN_BENCH_PATHS", 300);
    let clients = env_number("HAVEN_BENCH_CLIENTS", 8);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("Haven path benchmark: one path = create screening, consent, identified decision (opens the case), read the case\n");
        bench_backend(Backend::Sqlite, paths, clients).await;
        bench_backend(Backend::Postgres, paths, clients).await;
    });
}
