//! Chaos: the compose topology as processes (one Postgres, the four services and the
//! gateway each in its own OS process), a load of clients walking the path and
//! retrying with their Idempotency-Keys, and meanwhile: SIGKILL of each service in
//! turn, SIGKILL of the gateway between a backend's commit and its answer, a backend
//! frozen past the request deadline, and Postgres stopped (`-m immediate`) and
//! started again.
//!
//! It asserts what a user would notice: every acknowledged write exists exactly
//! once, no call hangs longer than the request deadline and a little, no `500`,
//! reporting's figures equal the truth once it has caught up, and every process
//! reports not-ready while its database is away. The figures are printed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection as _;
use uuid::Uuid;

use haven_auth::keys::{DevTokenRequest, KeyMaterial};
use haven_cli::ServiceName;
use haven_config::{Secret, Settings};
use haven_e2e::child::ServiceProcess;
use haven_e2e::postgres_process::PostgresProcess;

/// The child's entry point, run with `--exact`.
const ENTRY_POINT: &str = "chaos_service_child";
/// The gateway's deadline for a backend call.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(3_000);
/// Clients walking the path at once.
const CLIENTS: usize = 4;
/// How long one write may be retried before the test calls it lost.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// The child process: one service alone, until it is killed or stopped.
#[test]
#[ignore = "runs only as a child process of the chaos test"]
fn chaos_service_child() {
    haven_e2e::child::run_child_if_asked();
}

/// The processes, their ports and their common environment.
struct Topology {
    dir: tempfile::TempDir,
    postgres: PostgresProcess,
    ports: BTreeMap<&'static str, u16>,
    running: BTreeMap<&'static str, ServiceProcess>,
    environment: Vec<(String, String)>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Topology {
    async fn start(postgres: PostgresProcess) -> Self {
        postgres.create_database("haven").await;
        let dir = tempfile::tempdir().unwrap();
        let mut ports = BTreeMap::new();
        for service in ServiceName::ALL {
            ports.insert(service.as_str(), free_port());
        }
        ports.insert("metrics", free_port());
        let mut environment = vec![
            (
                "HAVEN__DATA_DIR".to_owned(),
                dir.path().display().to_string(),
            ),
            ("HAVEN__DATABASE__URL".to_owned(), postgres.url("haven")),
            (
                "HAVEN__DATABASE__LOCK_TIMEOUT_MS".to_owned(),
                "1000".to_owned(),
            ),
            (
                "HAVEN__DATABASE__ACQUIRE_TIMEOUT_SECONDS".to_owned(),
                "2".to_owned(),
            ),
            (
                "HAVEN__GATEWAY__REQUEST_TIMEOUT_MS".to_owned(),
                REQUEST_TIMEOUT.as_millis().to_string(),
            ),
            (
                "HAVEN__GATEWAY__METRICS_LISTEN".to_owned(),
                format!("127.0.0.1:{}", ports["metrics"]),
            ),
            (
                "HAVEN__GATEWAY__RATE_LIMIT_BURST".to_owned(),
                "100000".to_owned(),
            ),
            (
                "HAVEN__GATEWAY__RATE_LIMIT_PER_MINUTE".to_owned(),
                "1000000".to_owned(),
            ),
            (
                "HAVEN__TELEMETRY__LOG_FILTER".to_owned(),
                "error".to_owned(),
            ),
        ];
        for service in ServiceName::ALL {
            let name = service.as_str().to_uppercase();
            let port = ports[service.as_str()];
            environment.push((
                format!("HAVEN__{name}__LISTEN"),
                format!("127.0.0.1:{port}"),
            ));
            if service != ServiceName::Gateway {
                environment.push((
                    format!("HAVEN__{name}__ENDPOINT"),
                    format!("http://127.0.0.1:{port}"),
                ));
            }
        }
        // What `haven keys init` and the migrate job do before compose starts the
        // services.
        haven_cli::operations::init_keys(&haven_auth::keys::keys_dir(dir.path())).unwrap();
        let settings = Self::settings_of(&environment);
        KeyMaterial::load_or_create(&settings).unwrap();
        haven_cli::migrate(&settings).await.unwrap();
        let mut topology = Self {
            dir,
            postgres,
            ports,
            running: BTreeMap::new(),
            environment,
        };
        for service in ServiceName::ALL {
            topology.launch(service);
        }
        topology.wait_ready(Duration::from_secs(30)).await;
        topology
    }

    /// The settings the children read from their environment.
    fn settings_of(environment: &[(String, String)]) -> Settings {
        let mut settings = Settings::default();
        for (name, value) in environment {
            if name == "HAVEN__DATA_DIR" {
                settings.data_dir = value.into();
            }
            if name == "HAVEN__DATABASE__URL" {
                settings.database.url = Some(Secret::new(value.clone()));
            }
        }
        settings
    }

    fn launch(&mut self, service: ServiceName) {
        let process =
            ServiceProcess::start(ENTRY_POINT, service, &self.environment, self.dir.path());
        self.running.insert(service.as_str(), process);
    }

    fn process(&self, service: ServiceName) -> &ServiceProcess {
        &self.running[service.as_str()]
    }

    fn kill(&mut self, service: ServiceName) {
        if let Some(process) = self.running.remove(service.as_str()) {
            process.kill();
        }
    }

    fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports["gateway"])
    }

    /// Health targets of every process: the gateway's own readiness and each
    /// backend's gRPC health.
    fn health_targets(&self) -> Vec<(&'static str, String)> {
        ServiceName::ALL
            .into_iter()
            .map(|service| {
                let port = self.ports[service.as_str()];
                let target = match service {
                    ServiceName::Gateway => format!("http://127.0.0.1:{port}/readyz"),
                    _ => format!("grpc://127.0.0.1:{port}"),
                };
                (service.as_str(), target)
            })
            .collect()
    }

    /// Waits until every process reports ready; how long it took.
    async fn wait_ready(&self, within: Duration) -> Duration {
        self.wait_health(true, within).await
    }

    /// Waits until every process reports `ready` (or every one not ready).
    async fn wait_health(&self, ready: bool, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let mut pending = Vec::new();
            for (name, target) in self.health_targets() {
                if haven_cli::healthcheck::check(&target).await.is_ok() != ready {
                    pending.push(name);
                }
            }
            if pending.is_empty() {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "{pending:?} did not report {} within {within:?}",
                if ready { "ready" } else { "not ready" }
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What the clients saw.
#[derive(Debug, Default)]
struct Observed {
    /// Answers by status (`0`: no answer, the connection failed).
    statuses: BTreeMap<u16, u64>,
    /// The longest a single call took.
    longest_call: Duration,
    /// Acknowledged screenings, cases and payments, by the key that made them.
    screenings: BTreeMap<String, String>,
    cases: BTreeMap<String, String>,
    payments: BTreeMap<String, String>,
    /// Writes given up on, with the last answer.
    lost: Vec<String>,
    /// Answers no retry can fix (a 4xx the path does not expect).
    unexpected: Vec<String>,
}

/// One client: walks the path (screening, consent, identification that opens a
/// case, a payment on it) until `until`, retrying each write with its key.
async fn client(
    http: reqwest::Client,
    gateway: String,
    token: String,
    until: Instant,
    observed: Arc<Mutex<Observed>>,
) {
    while Instant::now() < until {
        let Some(screening) = write(
            &http,
            &gateway,
            &token,
            "/v1/screenings".to_owned(),
            json!({"referral_source": "police", "settlement": "Gəncə"}),
            &observed,
        )
        .await
        else {
            continue;
        };
        let screening_id = screening["id"].as_str().unwrap().to_owned();
        observed.lock().unwrap().screenings.insert(
            screening["__key"].as_str().unwrap().to_owned(),
            screening_id.clone(),
        );
        let consent = json!({"purpose": "assistance", "given": true, "method": "written"});
        if write(
            &http,
            &gateway,
            &token,
            format!("/v1/screenings/{screening_id}/consents"),
            consent,
            &observed,
        )
        .await
        .is_none()
        {
            continue;
        }
        let decision = json!({"stage": "identified", "deciding_organization_type": "police",
            "legal_basis": "Law on Combating Trafficking in Persons, art. 17"});
        let Some(decided) = write(
            &http,
            &gateway,
            &token,
            format!("/v1/screenings/{screening_id}/decisions"),
            decision,
            &observed,
        )
        .await
        else {
            continue;
        };
        // Intake opens the case; while case is away the opener does it later.
        let Some(case_id) = case_of(&http, &gateway, &token, &screening_id, &decided).await else {
            observed
                .lock()
                .unwrap()
                .lost
                .push(format!("no case for identified screening {screening_id}"));
            continue;
        };
        observed
            .lock()
            .unwrap()
            .cases
            .insert(screening_id.clone(), case_id.clone());
        let payment = json!({"amount": "150.00", "currency": "AZN", "paid_on": "2026-11-01", "purpose": "rent"});
        if let Some(paid) = write(
            &http,
            &gateway,
            &token,
            format!("/v1/cases/{case_id}/payments"),
            payment,
            &observed,
        )
        .await
        {
            let key = paid["__key"].as_str().unwrap().to_owned();
            observed
                .lock()
                .unwrap()
                .payments
                .insert(key, paid["id"].as_str().unwrap_or_default().to_owned());
        }
    }
}

/// The case intake opened for a screening: from the decision's answer, or read
/// back until the case-opening reconciler has opened it.
async fn case_of(
    http: &reqwest::Client,
    gateway: &str,
    token: &str,
    screening: &str,
    decided: &Value,
) -> Option<String> {
    if let Some(case) = decided["case_id"].as_str() {
        return Some(case.to_owned());
    }
    let started = Instant::now();
    while started.elapsed() < GIVE_UP_AFTER {
        if let Ok(response) = http
            .get(format!("{gateway}/v1/screenings/{screening}"))
            .bearer_auth(token)
            .send()
            .await
            && response.status() == StatusCode::OK
        {
            let body: Value = response.json().await.unwrap_or_default();
            if let Some(case) = body["case_id"].as_str() {
                return Some(case.to_owned());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// POSTs `body` with a fresh Idempotency-Key, retrying with the same key on
/// anything a retry may fix (no answer, 503, 504, 409 "in progress") until it is
/// acknowledged; the answer with `__key` added, or `None` if given up.
async fn write(
    http: &reqwest::Client,
    gateway: &str,
    token: &str,
    path: String,
    body: Value,
    observed: &Mutex<Observed>,
) -> Option<Value> {
    let key = Uuid::new_v4().to_string();
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < GIVE_UP_AFTER {
        let call = Instant::now();
        let answer = http
            .post(format!("{gateway}{path}"))
            .bearer_auth(token)
            .header("idempotency-key", &key)
            .json(&body)
            .send()
            .await;
        let took = call.elapsed();
        let status = answer
            .as_ref()
            .map_or(0, |response| response.status().as_u16());
        {
            let mut observed = observed.lock().unwrap();
            *observed.statuses.entry(status).or_default() += 1;
            observed.longest_call = observed.longest_call.max(took);
        }
        match answer {
            Ok(response) if response.status().is_success() => {
                let mut value: Value = response.json().await.unwrap_or_default();
                value["__key"] = Value::String(key);
                return Some(value);
            }
            Ok(response)
                if matches!(
                    response.status(),
                    StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT
                        | StatusCode::CONFLICT
                        | StatusCode::INTERNAL_SERVER_ERROR
                ) =>
            {
                last = format!(
                    "{} {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                );
            }
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                observed
                    .lock()
                    .unwrap()
                    .unexpected
                    .push(format!("POST {path}: {status} {text}"));
                return None;
            }
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    observed
        .lock()
        .unwrap()
        .lost
        .push(format!("POST {path} never acknowledged: {last}"));
    None
}

/// Counts the rows of `table` in the schema of `service` (the database holds only
/// what the test wrote).
async fn count(url: &str, service: &str, table: &str) -> i64 {
    let mut connection = sqlx::postgres::PgConnection::connect(url).await.unwrap();
    let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM \"{service}\".{table}"
    )))
    .fetch_one(&mut connection)
    .await
    .unwrap();
    let _ = connection.close().await;
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_acknowledged_is_lost_or_doubled_whatever_dies() {
    let Some(postgres) = PostgresProcess::start().await else {
        return;
    };
    let mut topology = Topology::start(postgres).await;
    let settings = Topology::settings_of(&topology.environment);
    let keys = KeyMaterial::load_or_create(&settings).unwrap();
    let organization = Uuid::new_v4();
    let token = keys
        .mint_dev_token(
            &settings.auth,
            &DevTokenRequest {
                subject: "chaos".to_owned(),
                organization_id: organization,
                roles: ["admin", "intake_officer", "case_worker"]
                    .map(str::to_owned)
                    .to_vec(),
                ttl_seconds: 3_600,
            },
        )
        .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let observed = Arc::new(Mutex::new(Observed::default()));
    let until = Instant::now() + Duration::from_secs(36);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(client(
                http.clone(),
                topology.gateway_url(),
                token.clone(),
                until,
                observed.clone(),
            ))
        })
        .collect();

    let mut recoveries: Vec<(String, Duration)> = Vec::new();
    let pause = || tokio::time::sleep(Duration::from_secs(2));
    pause().await;
    // Each service killed in turn, and started again.
    for service in [
        ServiceName::Intake,
        ServiceName::Case,
        ServiceName::Referral,
        ServiceName::Reporting,
    ] {
        topology.kill(service);
        tokio::time::sleep(Duration::from_millis(500)).await;
        topology.launch(service);
        let took = topology.wait_ready(Duration::from_secs(30)).await;
        recoveries.push((format!("{} killed", service.as_str()), took));
        pause().await;
    }
    // The gateway killed between a backend's commit and its answer: case is frozen
    // with calls in flight, the gateway is frozen, case commits and answers into
    // the frozen gateway, which is then killed.
    topology.process(ServiceName::Case).signal("STOP");
    tokio::time::sleep(Duration::from_millis(400)).await;
    topology.process(ServiceName::Gateway).signal("STOP");
    topology.process(ServiceName::Case).signal("CONT");
    tokio::time::sleep(Duration::from_millis(500)).await;
    topology.kill(ServiceName::Gateway);
    topology.launch(ServiceName::Gateway);
    let took = topology.wait_ready(Duration::from_secs(30)).await;
    recoveries.push(("gateway killed after a commit".to_owned(), took));
    pause().await;
    // A backend frozen past the request deadline.
    topology.process(ServiceName::Case).signal("STOP");
    tokio::time::sleep(REQUEST_TIMEOUT + Duration::from_secs(1)).await;
    topology.process(ServiceName::Case).signal("CONT");
    let took = topology.wait_ready(Duration::from_secs(30)).await;
    recoveries.push(("case frozen past the deadline".to_owned(), took));
    pause().await;
    // Postgres stopped at once: every process says it is not ready, then recovers
    // without a restart.
    topology.postgres.stop_immediately();
    let noticed = topology.wait_health(false, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    topology.postgres.resume().await;
    let took = topology.wait_ready(Duration::from_secs(40)).await;
    recoveries.push(("Postgres stopped (-m immediate)".to_owned(), took));

    for client in clients {
        client.await.unwrap();
    }
    let observed = std::mem::take(&mut *observed.lock().unwrap());

    // Exactly once, against the databases themselves.
    let url = topology.postgres.url("haven");
    let screenings = count(&url, "intake", "screenings").await;
    let cases = count(&url, "case", "cases").await;
    let payments = count(&url, "case", "payments").await;
    let distinct = |ids: &BTreeMap<String, String>| ids.values().collect::<BTreeSet<_>>().len();

    // Reporting catches up with the truth.
    let started = Instant::now();
    let summary = loop {
        let summary: Value = http
            .get(format!("{}/v1/reports/summary", topology.gateway_url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        if summary["screenings_total"] == screenings && summary["cases_total"] == cases {
            break summary;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "reporting never caught up: {summary}, truth {screenings} screenings, {cases} cases"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    println!("chaos: {CLIENTS} clients for 36 s, request deadline {REQUEST_TIMEOUT:?}");
    println!(
        "  acknowledged: {} screenings, {} cases, {} payments",
        observed.screenings.len(),
        observed.cases.len(),
        observed.payments.len()
    );
    println!("  stored:       {screenings} screenings, {cases} cases, {payments} payments");
    println!(
        "  lost: {}, unexpected answers: {}",
        observed.lost.len(),
        observed.unexpected.len()
    );
    println!(
        "  answers by status (0: connection failed): {:?}",
        observed.statuses
    );
    println!("  longest call: {:?}", observed.longest_call);
    println!("  not ready noticed within {noticed:?} of Postgres stopping");
    for (what, took) in &recoveries {
        println!("  recovered from {what} in {took:?}");
    }
    println!("  reporting: {summary}");
    // What each process used (debug build; the processes started last ran for less
    // than the whole load): a basis for Kubernetes requests and limits.
    for (name, process) in &topology.running {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", process.id())).unwrap_or_default();
        let peak = status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))
            .unwrap_or("VmHWM: unknown")
            .trim_start_matches("VmHWM:")
            .trim()
            .to_owned();
        // utime and stime, fields 14 and 15 of /proc/<pid>/stat, in clock ticks.
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", process.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map_or(Vec::new(), |(_, rest)| rest.split(' ').collect());
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|index| fields.get(*index)?.parse::<u64>().ok())
            .sum();
        println!(
            "  {name}: peak resident memory {peak}, CPU {:.1} s",
            ticks as f64 / 100.0
        );
    }

    assert!(observed.lost.is_empty(), "lost: {:?}", observed.lost);
    assert!(
        observed.unexpected.is_empty(),
        "unexpected: {:?}",
        observed.unexpected
    );
    assert!(!observed.screenings.is_empty() && !observed.payments.is_empty());
    assert_eq!(observed.statuses.get(&500), None, "no 500s");
    assert_eq!(
        screenings as usize,
        observed.screenings.len(),
        "screenings stored once each"
    );
    assert_eq!(distinct(&observed.screenings), observed.screenings.len());
    assert_eq!(
        cases as usize,
        observed.cases.len(),
        "one case per identified screening"
    );
    assert_eq!(
        payments as usize,
        observed.payments.len(),
        "payments stored once each"
    );
    assert_eq!(distinct(&observed.payments), observed.payments.len());
    assert!(
        observed.longest_call < REQUEST_TIMEOUT + Duration::from_secs(3),
        "a call hung for {:?}",
        observed.longest_call
    );
    for process in std::mem::take(&mut topology.running).into_values() {
        process.kill();
    }
}
