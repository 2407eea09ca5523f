//! Three replicas of every service on one Postgres give the results one would: the
//! path is driven through three gateways while backend replicas are killed (SIGKILL)
//! or frozen (SIGSTOP) at random and started again, and afterwards every
//! acknowledged screening, case and referral exists exactly once, each identified
//! screening has exactly one case (opened by intake's call or by its reconciler,
//! whichever replica ran it), every follower of every replica has applied every
//! event once (the followers take turns on the shared checkpoints), and reporting's
//! figures equal the truth: the hand counts, and every indicator a lone reporting
//! service computes by applying every feed from the start on a database of its own.
//! (Without reporting's advisory lock, replicas applying two feeds at once miscount
//! a referral here.)
//!
//! Statutory clocks are rows with a due time whose state is computed when read: no
//! timer fires, so there is nothing a second replica could fire twice. Haven sends
//! no webhooks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use uuid::Uuid;

use haven_auth::keys::{DevTokenRequest, KeyMaterial};
use haven_cli::ServiceName;
use haven_e2e::processes::{Cluster, ClusterSpec};
use haven_e2e::{TestStack, authorized};
use haven_intake::search_limit::SEARCHES_PER_WINDOW;
use haven_proto::intake::v1 as intake;
use haven_proto::intake::v1::intake_service_client::IntakeServiceClient;
use haven_proto::reporting::v1 as reporting;
use haven_proto::reporting::v1::reporting_service_client::ReportingServiceClient;

/// The child processes' entry point, run with `--exact`.
const CHILD_TEST: &str = "replica_process";
/// Concurrent clients, and the people each records.
const CLIENTS: usize = 6;
const PEOPLE_PER_CLIENT: usize = 8;
/// How long one request may keep being retried before the test gives up.
const RETRY_FOR: Duration = Duration::from_secs(90);

/// A child process: one service replica, as `haven serve <service>` runs it, until
/// killed. Returns at once in an ordinary test run.
#[test]
#[ignore = "runs only as a child process of the replica tests"]
fn replica_process() {
    haven_e2e::child::run_child_if_asked();
}

/// A REST client in front of several gateways: each attempt goes to the next one,
/// and an answer that says "not now" (5xx, a 409 with `Retry-After`) or a broken
/// connection is retried with the same Idempotency-Key.
struct Gateways {
    http: reqwest::Client,
    urls: Vec<String>,
    next: AtomicUsize,
    /// Every answer (or transport failure) seen, retried ones included.
    seen: Mutex<BTreeMap<String, u64>>,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

impl Gateways {
    fn new(urls: Vec<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            urls,
            next: AtomicUsize::new(0),
            seen: Mutex::new(BTreeMap::new()),
        }
    }

    fn count(&self, what: String) {
        *self.seen.lock().unwrap().entry(what).or_default() += 1;
    }

    async fn send(
        &self,
        token: &str,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Answer {
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        loop {
            let url = &self.urls[self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len()];
            let mut request = match body {
                Some(body) => self.http.post(format!("{url}{path}")).json(body),
                None => self.http.get(format!("{url}{path}")),
            };
            request = request.bearer_auth(token);
            if let Some(key) = key {
                request = request.header("idempotency-key", key);
            }
            let retry = match request.send().await {
                Err(error) => {
                    self.count(format!(
                        "transport error ({})",
                        if error.is_timeout() {
                            "timeout"
                        } else {
                            "connection"
                        }
                    ));
                    true
                }
                Ok(response) => {
                    let status = response.status();
                    self.count(status.as_u16().to_string());
                    let busy = status == StatusCode::CONFLICT
                        && response.headers().contains_key("retry-after");
                    if status.is_server_error() || busy {
                        true
                    } else {
                        let body = response.json().await.unwrap_or(Value::Null);
                        return Answer { status, body };
                    }
                }
            };
            assert!(retry);
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} still failing after {RETRY_FOR:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn post(&self, token: &str, path: &str, body: Value, key: &str) -> Value {
        let answer = self.send(token, path, Some(&body), Some(key)).await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "POST {path}: {}",
            answer.body
        );
        answer.body
    }

    async fn get(&self, token: &str, path: &str) -> Value {
        let answer = self.send(token, path, None, None).await;
        assert_eq!(answer.status, StatusCode::OK, "GET {path}: {}", answer.body);
        answer.body
    }
}

struct Tokens {
    officer: String,
    worker: String,
    analyst: String,
}

/// What the clients were told was done, one entry per person.
#[derive(Debug, Clone)]
struct Acknowledged {
    screening: Uuid,
    case: Uuid,
    referral: Uuid,
}

fn id(value: &Value) -> Uuid {
    Uuid::parse_str(
        value["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {value}")),
    )
    .unwrap()
}

/// One person's path: screening, two consents, identification (which opens the
/// case), a referral to the shelter. Each create carries its own Idempotency-Key,
/// kept across retries.
async fn path(gateways: &Gateways, tokens: &Tokens, facility: Uuid, index: usize) -> Acknowledged {
    let key = Uuid::new_v4();
    let source = ["police", "hotline", "ngo_outreach"][index % 3];
    let birth_year = 1980 + (index % 20) as i32;
    let screening = gateways
        .post(
            &tokens.officer,
            "/v1/screenings",
            json!({"referral_source": source, "settlement": "Gəncə",
                "person": {"given_name": "Z", "birth_year": birth_year, "gender": "female"},
                "exploitation": {"types": ["forced_labour"]}}),
            &format!("{key}-screening"),
        )
        .await;
    let screening = id(&screening);
    for purpose in ["assistance", "data_sharing"] {
        gateways
            .post(
                &tokens.officer,
                &format!("/v1/screenings/{screening}/consents"),
                json!({"purpose": purpose, "given": true, "method": "written"}),
                &format!("{key}-{purpose}"),
            )
            .await;
    }
    let decided = gateways
        .post(
            &tokens.officer,
            &format!("/v1/screenings/{screening}/decisions"),
            json!({"stage": "identified", "deciding_organization_type": "police", "legal_basis": "art. 17"}),
            &format!("{key}-decision"),
        )
        .await;
    // A case service replica that died during intake's call leaves the case to the
    // reconciler of some intake replica.
    let mut case = decided["case_id"]
        .as_str()
        .map(|case| Uuid::parse_str(case).unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while case.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "screening {screening} got no case within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let read = gateways
            .get(&tokens.officer, &format!("/v1/screenings/{screening}"))
            .await;
        case = read["case_id"]
            .as_str()
            .map(|case| Uuid::parse_str(case).unwrap());
    }
    let case = case.unwrap();
    let referral = gateways
        .post(
            &tokens.worker,
            "/v1/referrals",
            json!({"case_id": case, "facility_id": facility, "service_type": "shelter",
                "purpose": "a bed", "urgency": "urgent"}),
            &format!("{key}-referral"),
        )
        .await;
    Acknowledged {
        screening,
        case,
        referral: id(&referral),
    }
}

/// Kills or freezes a random backend replica, never the last one of its service
/// standing, brings it back, and again, until `done`. Returns what it did.
async fn chaos(cluster: &mut Cluster, done: &AtomicBool, seed: u64) -> Vec<String> {
    let mut random = StdRng::seed_from_u64(seed);
    let mut actions = Vec::new();
    tokio::time::sleep(Duration::from_secs(1)).await;
    while !done.load(Ordering::Relaxed) {
        let backends: Vec<usize> = (0..cluster.processes.len())
            .filter(|&index| cluster.processes[index].service != ServiceName::Gateway)
            .collect();
        let victim = backends[random.random_range(0..backends.len())];
        let freeze = random.random_ratio(1, 4);
        let down_for = Duration::from_millis(random.random_range(300..2_000));
        let name = cluster.processes[victim].name();
        if freeze {
            cluster.freeze(victim);
            tokio::time::sleep(down_for).await;
            cluster.thaw(victim);
            actions.push(format!("froze {name} for {down_for:?}"));
        } else {
            cluster.kill(victim);
            tokio::time::sleep(down_for).await;
            cluster.restart(victim).await;
            actions.push(format!("killed {name}, back after {down_for:?} + start"));
        }
        tokio::time::sleep(Duration::from_millis(random.random_range(200..1_500))).await;
    }
    actions
}

async fn three_replicas_of_each_service_give_exactly_once_results_while_replicas_die() {
    let started = std::time::Instant::now();
    let Some(mut cluster) = Cluster::start(ClusterSpec {
        replicas: 3,
        gateways: 3,
        child_test: CHILD_TEST,
    })
    .await
    else {
        return;
    };
    eprintln!(
        "{} processes ready after {:?}",
        cluster.processes.len(),
        started.elapsed()
    );
    let keys = KeyMaterial::load_or_create(&cluster.settings).unwrap();
    let token = |subject: &str, roles: &[&str], organization: Uuid| {
        keys.mint_dev_token(
            &cluster.settings.auth,
            &DevTokenRequest {
                subject: subject.to_owned(),
                organization_id: organization,
                roles: roles.iter().map(|role| (*role).to_owned()).collect(),
                ttl_seconds: 900,
            },
        )
        .unwrap()
    };
    let organization = Uuid::new_v4();
    let shelter = Uuid::new_v4();
    let tokens = Tokens {
        officer: token("officer", &["admin", "intake_officer"], organization),
        worker: token("aysel", &["case_worker"], organization),
        analyst: token("analyst", &["analyst"], organization),
    };
    let gateways = Gateways::new(cluster.gateway_urls());
    gateways
        .post(
            &token("directory-admin", &["admin"], shelter),
            "/v1/organizations",
            json!({"id": shelter, "name": format!("Shelter {shelter}"), "organization_type": "ngo"}),
            "shelter",
        )
        .await;
    let facility = gateways
        .post(
            &token("farida", &["referral_coordinator"], shelter),
            "/v1/facilities",
            json!({"name": "Shelter Şəki", "settlement": "Şəki", "service_types": ["shelter"], "capacity_total": 1000}),
            "facility",
        )
        .await;
    let facility = id(&facility);

    let seed: u64 = rand::random();
    eprintln!("chaos seed {seed}");
    let done = AtomicBool::new(false);
    let drive = async {
        let clients = (0..CLIENTS).map(|client| {
            let (gateways, tokens) = (&gateways, &tokens);
            async move {
                let mut acknowledged = Vec::new();
                for person in 0..PEOPLE_PER_CLIENT {
                    acknowledged.push(
                        path(
                            gateways,
                            tokens,
                            facility,
                            client * PEOPLE_PER_CLIENT + person,
                        )
                        .await,
                    );
                }
                acknowledged
            }
        });
        let acknowledged: Vec<Acknowledged> = futures::future::join_all(clients)
            .await
            .into_iter()
            .flatten()
            .collect();
        done.store(true, Ordering::Relaxed);
        acknowledged
    };
    let (acknowledged, actions) = tokio::join!(drive, chaos(&mut cluster, &done, seed));
    eprintln!("chaos: {actions:#?}");
    eprintln!(
        "peak memory (MiB) and CPU (s) per process: {:?}",
        cluster.usage()
    );
    eprintln!("answers seen: {:?}", gateways.seen.lock().unwrap());
    // A replica that dies with a call in flight costs a 503 to retry, never a 500.
    assert_eq!(
        gateways.seen.lock().unwrap().get("500"),
        None,
        "a replica's death answered 500"
    );
    assert!(
        actions
            .iter()
            .filter(|action| action.starts_with("killed"))
            .count()
            >= 3,
        "too few kills to mean anything: {actions:?}"
    );
    let exited = cluster.exited();
    assert!(
        exited.is_empty(),
        "processes died by themselves:\n{}",
        exited.join("\n")
    );
    let people = acknowledged.len();
    assert_eq!(people, CLIENTS * PEOPLE_PER_CLIENT);

    // Exactly once, in each owner's own tables.
    let database = PgPoolOptions::new()
        .max_connections(2)
        .connect(&cluster.database_url)
        .await
        .unwrap();
    let screenings: HashMap<Uuid, Option<Uuid>> =
        sqlx::query_as("SELECT id, case_id FROM intake.screenings WHERE organization_id = $1")
            .bind(organization)
            .fetch_all(&database)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let cases: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT id, screening_id FROM \"case\".cases WHERE organization_id = $1")
            .bind(organization)
            .fetch_all(&database)
            .await
            .unwrap();
    let referrals: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, case_id FROM referral.referrals WHERE from_organization_id = $1",
    )
    .bind(organization)
    .fetch_all(&database)
    .await
    .unwrap();
    assert_eq!(screenings.len(), people, "one screening per person");
    assert_eq!(cases.len(), people, "one case per identified person");
    assert_eq!(
        referrals.len(),
        people,
        "one referral per acknowledged request"
    );
    let case_of: HashMap<Uuid, Uuid> = cases
        .iter()
        .map(|(case, screening)| (*screening, *case))
        .collect();
    let referred: HashSet<(Uuid, Uuid)> = referrals.iter().copied().collect();
    for acked in &acknowledged {
        assert_eq!(
            screenings.get(&acked.screening),
            Some(&Some(acked.case)),
            "{acked:?}"
        );
        assert_eq!(
            case_of.get(&acked.screening),
            Some(&acked.case),
            "{acked:?}"
        );
        assert!(
            referred.contains(&(acked.referral, acked.case)),
            "{acked:?}"
        );
    }
    // Intake linked each case once (one event each, whoever's reconciler won).
    let links: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT aggregate_id, COUNT(*) FROM intake.outbox_events \
         WHERE event_type = 'screening.case_opened' AND organization_id = $1 GROUP BY aggregate_id",
    )
    .bind(organization)
    .fetch_all(&database)
    .await
    .unwrap();
    assert_eq!(links.len(), people);
    assert!(links.iter().all(|(_, events)| *events == 1), "{links:?}");

    // Every follower, on whichever replica, catches up to the end of its feeds...
    let followers: &[(&str, &[&str])] = &[
        ("intake", &["case"]),
        ("case", &["intake", "referral"]),
        ("referral", &["intake"]),
        ("reporting", &["intake", "case", "referral"]),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut behind = Vec::new();
        for (follower, sources) in followers {
            for source in *sources {
                let (end,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT COALESCE(MAX(sequence), 0) FROM \"{source}\".outbox_events"
                )))
                .fetch_one(&database)
                .await
                .unwrap();
                let at: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT sequence FROM \"{follower}\".event_checkpoints WHERE source = $1"
                )))
                .bind(source)
                .fetch_optional(&database)
                .await
                .unwrap();
                let at = at.map_or(0, |(at,)| at);
                if at != end {
                    behind.push(format!("{follower} at {at} of {source}'s {end}"));
                }
            }
        }
        if behind.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "followers never caught up: {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // ...having applied each event once: referral learnt each screening's person once,
    // and reporting's projections and figures equal the truth.
    let (learnt,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM referral.screening_persons WHERE screening_id = ANY($1)",
    )
    .bind(screenings.keys().copied().collect::<Vec<Uuid>>())
    .fetch_one(&database)
    .await
    .unwrap();
    assert_eq!(learnt as usize, people);
    for (table, column) in [
        ("screenings", "organization_id"),
        ("cases", "organization_id"),
        ("referrals", "from_organization_id"),
    ] {
        let (projected,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM reporting.{table} WHERE {column} = $1"
        )))
        .bind(organization)
        .fetch_one(&database)
        .await
        .unwrap();
        assert_eq!(projected as usize, people, "reporting.{table}");
    }
    let summary = gateways.get(&tokens.analyst, "/v1/reports/summary").await;
    for figure in [
        "screenings_total",
        "identified_total",
        "cases_total",
        "cases_open",
    ] {
        assert_eq!(summary[figure], people, "{figure}: {summary}");
    }
    let reporting = haven_reporting::connect(&cluster.settings).await.unwrap();
    let record_keys =
        haven_reporting::RecordKeys::load(&haven_auth::keys::keys_dir(cluster.data_dir())).unwrap();
    let facts = haven_reporting::projections::open(reporting.clone(), record_keys)
        .facts(&haven_reporting::projections::ReportScope {
            organization_id: Some(organization),
            ..Default::default()
        })
        .await
        .unwrap();
    let table = |name: &str| {
        facts
            .tables
            .iter()
            .find(|table| table.name == name)
            .unwrap()
            .total
            .n
    };
    assert_eq!(table("referrals_by_status") as usize, people);
    assert_eq!(facts.days_to_identification.days.len(), people);
    reporting.close().await;

    // The counters the replicas kept, taking turns under chaos, are what one
    // reporting service applying every feed alone from the start computes.
    let alone = alone_in_a_fresh_database(&cluster).await;
    let mut replicas = ReportingServiceClient::new(
        tonic::transport::Endpoint::from_shared(format!(
            "http://{}",
            cluster.service_address(ServiceName::Reporting)
        ))
        .unwrap()
        .connect()
        .await
        .unwrap(),
    );
    let mut alone_client = ReportingServiceClient::new(
        tonic::transport::Endpoint::from_shared(format!("http://{}", alone.address))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let expected = figures(&mut replicas, &tokens.analyst, organization).await;
    assert_eq!(expected.0.screenings_total as usize, people);
    assert!(!expected.1.tables.is_empty(), "{:?}", expected.1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = figures(&mut alone_client, &tokens.analyst, organization).await;
        if got.0.checkpoints == expected.0.checkpoints {
            assert_eq!(
                got, expected,
                "reporting replicas and a lone reporting disagree"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lone reporting never caught up: {:?} of {:?}",
            got.0.checkpoints,
            expected.0.checkpoints
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    alone.shutdown.cancel();
    database.close().await;
    eprintln!(
        "{people} paths exactly once through {} actions in {:?}",
        actions.len(),
        started.elapsed()
    );
}

/// A reporting service of its own, on a fresh database, following the cluster's feeds.
struct LoneReporting {
    address: SocketAddr,
    shutdown: CancellationToken,
}

async fn alone_in_a_fresh_database(cluster: &Cluster) -> LoneReporting {
    let server = haven_storage::testing::postgres().await.unwrap();
    let mut settings = cluster.settings.clone();
    settings.database.url = Some(haven_config::Secret::new(server.fresh_database().await));
    settings.reporting.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = haven_cli::bind(ServiceName::Reporting, &settings)
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(haven_cli::serve(
        ServiceName::Reporting,
        listener,
        settings,
        shutdown.clone(),
    ));
    LoneReporting { address, shutdown }
}

/// The summary and the organisation's indicators, without the time they were made.
async fn figures(
    client: &mut ReportingServiceClient<Channel>,
    token: &str,
    organization: Uuid,
) -> (
    reporting::GetSummaryResponse,
    reporting::GetIndicatorsResponse,
) {
    let Ok(summary) = client
        .get_summary(authorized(reporting::GetSummaryRequest::default(), token))
        .await
    else {
        // Not serving yet.
        return Default::default();
    };
    let mut summary = summary.into_inner();
    summary.generated_at = None;
    let mut indicators = client
        .get_indicators(authorized(
            reporting::GetIndicatorsRequest {
                scope: Some(reporting::Scope {
                    organization_id: organization.to_string(),
                    ..reporting::Scope::default()
                }),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    indicators.generated_at = None;
    (summary, indicators)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_three_replicas_of_each_service_give_exactly_once_results_while_replicas_die() {
    three_replicas_of_each_service_give_exactly_once_results_while_replicas_die().await;
}

/// A second intake server on the stack's database, as another replica would be.
async fn second_intake(
    stack: &TestStack,
    shutdown: CancellationToken,
) -> IntakeServiceClient<Channel> {
    let mut settings = stack.settings.clone();
    settings.intake.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = haven_cli::bind(ServiceName::Intake, &settings)
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(haven_cli::serve(
        ServiceName::Intake,
        listener,
        settings,
        shutdown,
    ));
    let target = format!("grpc://{address}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while haven_cli::healthcheck::check(&target).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second intake never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    IntakeServiceClient::new(channel)
}

/// The duplicate-search limit guards the blind index against guessing names one
/// after another; a user who spreads searches over the replicas gets no more.
async fn the_duplicate_search_limit_holds_across_intake_replicas(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token_as("officer", &["intake_officer"], organization);
    let screening: Value = stack
        .post(
            &officer,
            "/v1/screenings",
            json!({"referral_source": "police",
            "person": {"given_name": "Leyla", "family_name": "Məmmədova", "birth_year": 1992}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let request = || {
        authorized(
            intake::FindMatchesRequest {
                screening_id: screening["id"].as_str().unwrap().to_owned(),
            },
            &officer,
        )
    };
    let shutdown = CancellationToken::new();
    let mut first = IntakeServiceClient::new(stack.channel(ServiceName::Intake).await);
    let mut second = second_intake(&stack, shutdown.clone()).await;
    for search in 0..SEARCHES_PER_WINDOW {
        let replica = if search % 2 == 0 {
            &mut first
        } else {
            &mut second
        };
        replica.find_matches(request()).await.unwrap();
    }
    for replica in [&mut first, &mut second] {
        let refused = replica.find_matches(request()).await.unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::ResourceExhausted,
            "{refused:?}"
        );
    }
    // Another user is not held back by this one.
    let colleague = stack.token_as("colleague", &["intake_officer"], organization);
    let mut other = request();
    haven_auth::grpc::attach_bearer(&mut other, &colleague).unwrap();
    second.find_matches(other).await.unwrap();
    shutdown.cancel();
    stack.stop().await;
}

haven_e2e::on_both_backends! {
    the_duplicate_search_limit_holds_across_intake_replicas,
}
