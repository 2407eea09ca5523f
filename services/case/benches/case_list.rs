//! Case-list latency on a realistic load: 100,000 cases over ten organisations, with
//! caseworkers, risk levels, stages, follow-ups and approved plan actions, on SQLite
//! and on Postgres. Prints p50 and p99 of one page (50 cases, as a caseworker's
//! screen asks for) for each filter a caseworker or supervisor uses.
//!
//! `cargo bench -p haven-case --bench case_list` (set `HAVEN_BENCH_CASES` for another
//! size). Postgres needs `initdb`/`postgres` on the machine; without them only
//! SQLite is measured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Instant;

use sqlx::QueryBuilder;
use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::{Principal, PrincipalKind, Role, Scope};
use haven_case::crypto::CaseCrypto;
use haven_case::domain::{CaseStage, CaseStatus, RiskLevel};
use haven_case::store::{self, CaseFilter, CaseStore, StoreOptions};
use haven_config::Settings;
use haven_crypto::MasterKeyring;
use haven_events::EventSignal;
use haven_storage::Database;

const ORGANIZATIONS: usize = 10;
const CASEWORKERS: usize = 40;
const ITERATIONS: usize = 200;
const PAGE: u32 = 50;
const BATCH: usize = 1_000;

/// A small deterministic generator, so both backends hold the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % below
    }
}

struct Row {
    id: Uuid,
    code: String,
    organization: Uuid,
    status: &'static str,
    stage: &'static str,
    risk: &'static str,
    caseworker: String,
    follow_up_due: String,
    action_due: Option<String>,
}

fn rows(count: usize, organizations: &[Uuid]) -> Vec<Row> {
    let mut random = Lcg(7);
    let today = OffsetDateTime::now_utc().date();
    let stages = [
        (CaseStage::New, CaseStatus::Active),
        (CaseStage::Assessment, CaseStatus::Active),
        (CaseStage::Plan, CaseStatus::Active),
        (CaseStage::Services, CaseStatus::Active),
        (CaseStage::Monitoring, CaseStatus::FollowUp),
        (CaseStage::Closed, CaseStatus::Closed),
    ];
    let risks = [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High];
    (0..count)
        .map(|number| {
            let (stage, status) = stages[random.next(stages.len())];
            // About one follow-up in ten is overdue, and one plan action in ten.
            let follow_up_due = today + time::Duration::days(random.next(100) as i64 - 10);
            let action_due = (random.next(3) == 0)
                .then(|| (today + time::Duration::days(random.next(300) as i64 - 30)).to_string());
            Row {
                id: Uuid::now_v7(),
                code: format!("BM-2026-{number:06}"),
                organization: organizations[number % organizations.len()],
                status: status.as_str(),
                stage: stage.as_str(),
                risk: risks[random.next(risks.len())].as_str(),
                caseworker: format!("worker-{}", random.next(CASEWORKERS)),
                follow_up_due: follow_up_due.to_string(),
                action_due,
            }
        })
        .collect()
}

macro_rules! load {
    ($pool:expr, $rows:expr) => {{
        let now = OffsetDateTime::now_utc();
        for chunk in $rows.chunks(BATCH) {
            let mut tx = $pool.begin().await.unwrap();
            QueryBuilder::new(
                "INSERT INTO cases (id, code, organization_id, screening_id, status, stage, opened_at, version, person_id, risk_level, caseworkers) ",
            )
            .push_values(chunk, |mut row, case| {
                row.push_bind(case.id)
                    .push_bind(&case.code)
                    .push_bind(case.organization)
                    .push_bind(Uuid::new_v4())
                    .push_bind(case.status)
                    .push_bind(case.stage)
                    .push_bind(now)
                    .push_bind(1_i64)
                    .push_bind(Uuid::new_v4())
                    .push_bind(case.risk)
                    .push_bind(format!("[\"{}\"]", case.caseworker));
            })
            .build()
            .execute(&mut *tx)
            .await
            .unwrap();
            QueryBuilder::new("INSERT INTO case_caseworkers (case_id, subject) ")
                .push_values(chunk, |mut row, case| {
                    row.push_bind(case.id).push_bind(&case.caseworker);
                })
                .build()
                .execute(&mut *tx)
                .await
                .unwrap();
            QueryBuilder::new("INSERT INTO follow_ups (id, case_id, kind, due_on, assigned_to, version) ")
                .push_values(chunk, |mut row, case| {
                    row.push_bind(Uuid::now_v7())
                        .push_bind(case.id)
                        .push_bind("visit")
                        .push_bind(&case.follow_up_due)
                        .push_bind(&case.caseworker)
                        .push_bind(1_i64);
                })
                .build()
                .execute(&mut *tx)
                .await
                .unwrap();
            let with_actions: Vec<&Row> = chunk.iter().filter(|case| case.action_due.is_some()).collect();
            if !with_actions.is_empty() {
                QueryBuilder::new("INSERT INTO plan_actions (id, case_id, plan_version, due_on, status, active) ")
                    .push_values(with_actions, |mut row, case| {
                        row.push_bind(Uuid::now_v7())
                            .push_bind(case.id)
                            .push_bind(1_i32)
                            .push_bind(case.action_due.clone())
                            .push_bind("planned")
                            .push_bind(true);
                    })
                    .build()
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
        // Fresh statistics, as a running database would have.
        sqlx::query("ANALYZE").execute($pool).await.unwrap();
    }};
}

fn supervisor(organization: Uuid) -> AuditContext {
    AuditContext {
        principal: Principal {
            subject: "bench-supervisor".into(),
            organization_id: organization,
            roles: vec![Role::Supervisor],
            kind: PrincipalKind::User,
        },
        purpose: "assistance".into(),
        request_id: "bench".into(),
        on_behalf_of: None,
    }
}

async fn measure(
    store: &Arc<dyn CaseStore>,
    organization: Uuid,
    name: &str,
    filter: CaseFilter,
    after: Option<i64>,
) {
    let context = supervisor(organization);
    let scope = Scope::Organization(organization);
    let mut samples = Vec::with_capacity(ITERATIONS);
    let mut returned = 0;
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        let cases = store
            .list_cases(&context, scope, &filter, after, PAGE)
            .await
            .unwrap();
        samples.push(started.elapsed());
        returned = cases.len();
    }
    samples.sort();
    let percentile = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "  {name:<36} p50 {:>8.2} ms   p99 {:>8.2} ms   ({returned} cases per page)",
        percentile(0.50).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
    );
}

async fn run(backend: &str, settings: Settings, count: usize) {
    let database = haven_case::connect(&settings).await.unwrap();
    let organizations: Vec<Uuid> = (0..ORGANIZATIONS).map(|_| Uuid::new_v4()).collect();
    let data = rows(count, &organizations);
    let started = Instant::now();
    match &database {
        Database::Sqlite(pool) => load!(pool, data),
        Database::Postgres(pool) => load!(pool, data),
    }
    println!(
        "{backend}: {count} cases loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let store = store::open(
        database.clone(),
        EventSignal::default(),
        CaseCrypto::new(Arc::new(MasterKeyring::generate().unwrap())),
        StoreOptions {
            code_prefix: "BM".into(),
            allow_self_approval: false,
        },
    );
    let organization = organizations[0];
    let deep = data
        .iter()
        .filter(|case| case.organization == organization)
        .count()
        / 2;
    let deep_cursor: i64 = {
        // The position of the organisation's middle case: page 100 and beyond.
        let cases = store
            .list_cases(
                &supervisor(organization),
                Scope::Organization(organization),
                &CaseFilter::default(),
                None,
                1,
            )
            .await
            .unwrap();
        cases[0].position + (deep * ORGANIZATIONS) as i64
    };
    measure(
        &store,
        organization,
        "first page, no filter",
        CaseFilter::default(),
        None,
    )
    .await;
    measure(
        &store,
        organization,
        "deep page (cursor at the middle)",
        CaseFilter::default(),
        Some(deep_cursor),
    )
    .await;
    measure(
        &store,
        organization,
        "status = active",
        CaseFilter {
            status: Some(CaseStatus::Active),
            ..CaseFilter::default()
        },
        None,
    )
    .await;
    measure(
        &store,
        organization,
        "caseworker = one of 40",
        CaseFilter {
            caseworker: Some("worker-7".into()),
            ..CaseFilter::default()
        },
        None,
    )
    .await;
    measure(
        &store,
        organization,
        "risk = high and stage = services",
        CaseFilter {
            risk_level: Some(RiskLevel::High),
            stage: Some(CaseStage::Services),
            ..CaseFilter::default()
        },
        None,
    )
    .await;
    measure(
        &store,
        organization,
        "overdue follow-up",
        CaseFilter {
            overdue_follow_up: true,
            ..CaseFilter::default()
        },
        None,
    )
    .await;
    measure(
        &store,
        organization,
        "overdue plan action",
        CaseFilter {
            overdue_plan_action: true,
            ..CaseFilter::default()
        },
        None,
    )
    .await;
    measure(
        &store,
        organization,
        "caseworker + overdue follow-up",
        CaseFilter {
            caseworker: Some("worker-7".into()),
            overdue_follow_up: true,
            ..CaseFilter::default()
        },
        None,
    )
    .await;
    database.close().await;
}

fn main() {
    let count = std::env::var("HAVEN_BENCH_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "case list, {PAGE} per page, {ITERATIONS} runs per filter; every page read is audited"
        );
        let (_dir, settings) = haven_storage::testing::sqlite_settings();
        run("sqlite", settings, count).await;
        match haven_storage::testing::postgres_settings().await {
            Some((_dir, settings)) => run("postgres", settings, count).await,
            None => println!("postgres: not available on this machine, skipped"),
        }
    });
}
