//! A reporting process killed in the middle of catching up double-counts nothing.
//!
//! The stack runs in this process and records activity over REST. A second reporting
//! service runs in a child process (this test binary again, running only
//! [`reporting_child_process`], see `haven_e2e::child`) with its own empty database, following the stack's
//! intake, case and referral feeds. It is killed with SIGKILL while catching up,
//! started again on the same database, and once caught up its figures must equal the
//! in-process reporting's exactly, and the hand counts: each event applied once,
//! none lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use haven_cli::ServiceName;
use haven_config::Settings;
use haven_e2e::child::ServiceProcess;
use haven_e2e::{Backend, TestStack, authorized};
use haven_proto::reporting::v1 as pb;
use haven_proto::reporting::v1::reporting_service_client::ReportingServiceClient;
use haven_reporting::projections::{Facts, ReportScope};

/// The child's entry point, run with `--exact`.
const CHILD_TEST: &str = "reporting_child_process";

/// The child process: the reporting service alone, with settings from the
/// environment as `haven serve reporting` reads them, until it is killed.
#[test]
#[ignore = "runs only as the child process of the restart tests"]
fn reporting_child_process() {
    haven_e2e::child::run_child_if_asked();
}

/// Starts the child reporting with `environment` (the `HAVEN__` settings) and waits
/// until it listens; it is killed (SIGKILL) when dropped.
fn start_child(environment: &[(String, String)], dir: &Path) -> ServiceProcess {
    ServiceProcess::start(CHILD_TEST, ServiceName::Reporting, environment, dir)
}

/// A client of the child reporting.
async fn client_of(child: &ServiceProcess) -> ReportingServiceClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(child.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    ReportingServiceClient::new(channel)
}

/// Records activity over REST, one person after another so each feed mixes every
/// kind of event: a screening with consent and an identification decision (so a
/// case), a delivered service and an assessment for the case, for every other case a
/// second assessment (a double-applied assessment would turn a once-assessed case
/// into an outcome), for every fifth a follow-up; and two referrals to a shelter of
/// another organisation, one accepted.
async fn activity(stack: &TestStack, organization: Uuid, shelter: Uuid, people: usize) {
    let officer = stack.token_as("officer", &["admin", "intake_officer"], organization);
    let worker = stack.token_as("aysel", &["case_worker"], organization);
    let mut cases = Vec::new();
    for index in 0..people {
        let source = ["police", "hotline", "ngo_outreach"][index % 3];
        let screening: Value = stack
            .post(&officer, "/v1/screenings", json!({"referral_source": source, "settlement": "Gəncə",
                "person": {"given_name": "Z", "birth_year": 1980 + (index % 20) as i32,
                    "gender": if index % 4 == 0 { "male" } else { "female" }, "citizenships": ["az"]},
                "exploitation": {"types": ["forced_labour"], "means_of_control": ["threats"]}}))
            .await
            .json()
            .await
            .unwrap();
        let id = screening["id"].as_str().unwrap().to_owned();
        for purpose in ["assistance", "data_sharing"] {
            let consent = stack
                .post(
                    &officer,
                    &format!("/v1/screenings/{id}/consents"),
                    json!({"purpose": purpose, "given": true, "method": "written"}),
                )
                .await;
            assert_eq!(consent.status(), 201);
        }
        let decided: Value = stack
            .post(&officer, &format!("/v1/screenings/{id}/decisions"),
                json!({"stage": "identified", "deciding_organization_type": "police", "legal_basis": "art. 17"}))
            .await
            .json()
            .await
            .unwrap();
        let case = decided["case_id"].as_str().unwrap().to_owned();
        let service = stack
            .post(&worker, &format!("/v1/cases/{case}/services"),
                json!({"type": "medical", "provider_organization_id": organization, "status": "delivered"}))
            .await;
        assert_eq!(service.status(), 201);
        let scores: &[i64] = if index % 2 == 0 { &[2, 4] } else { &[3] };
        for score in scores {
            let assessed = stack
                .post(
                    &worker,
                    &format!("/v1/cases/{case}/assessments"),
                    json!({"kind": "individual", "scores": [{"domain": "safety", "score": score}]}),
                )
                .await;
            assert_eq!(assessed.status(), 201);
        }
        if index % 5 == 0 {
            let follow_up = stack
                .post(
                    &worker,
                    &format!("/v1/cases/{case}/follow_ups"),
                    json!({"kind": "call", "due_on": "2099-01-01"}),
                )
                .await;
            assert_eq!(follow_up.status(), 201);
        }
        cases.push(case);
    }
    let coordinator = stack.token_as("farida", &["referral_coordinator"], shelter);
    let facilities: Value = stack
        .get(&coordinator, "/v1/facilities")
        .await
        .json()
        .await
        .unwrap();
    let facility = facilities["items"][0]["id"].clone();
    for (index, case) in cases.iter().take(2).enumerate() {
        let created = stack
            .post(
                &worker,
                "/v1/referrals",
                json!({"case_id": case, "facility_id": facility,
                "service_type": "shelter", "purpose": "a bed", "urgency": "urgent"}),
            )
            .await;
        assert_eq!(created.status(), 201);
        if index == 0 {
            let etag = created.headers()["etag"].to_str().unwrap().to_owned();
            let id = created.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let accepted = stack
                .http
                .post(stack.url(&format!("/v1/referrals/{id}/accept")))
                .bearer_auth(&coordinator)
                .header("if-match", etag)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(accepted.status(), 200);
        }
    }
}

/// Registers the shelter organisation and its facility.
async fn shelter(stack: &TestStack) -> Uuid {
    let shelter = Uuid::new_v4();
    let admin = stack.token_as("directory-admin", &["admin"], shelter);
    let registered = stack
        .post(&admin, "/v1/organizations", json!({"id": shelter, "name": format!("Shelter {shelter}"), "organization_type": "ngo"}))
        .await;
    assert_eq!(registered.status(), 201);
    let coordinator = stack.token_as("farida", &["referral_coordinator"], shelter);
    let facility = stack
        .post(
            &coordinator,
            "/v1/facilities",
            json!({"name": "Shelter Şəki", "settlement": "Şəki",
            "service_types": ["shelter"], "capacity_total": 100}),
        )
        .await;
    assert_eq!(facility.status(), 201);
    shelter
}

async fn summary(
    client: &mut ReportingServiceClient<tonic::transport::Channel>,
    token: &str,
) -> Result<pb::GetSummaryResponse, tonic::Status> {
    client
        .get_summary(authorized(pb::GetSummaryRequest::default(), token))
        .await
        .map(tonic::Response::into_inner)
}

async fn indicators(
    client: &mut ReportingServiceClient<tonic::transport::Channel>,
    token: &str,
    organization: Uuid,
) -> pb::GetIndicatorsResponse {
    let scope = pb::Scope {
        organization_id: organization.to_string(),
        ..pb::Scope::default()
    };
    let mut response = client
        .get_indicators(authorized(
            pb::GetIndicatorsRequest { scope: Some(scope) },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    response.generated_at = None;
    response
}

/// The figures without the time they were computed.
fn counts(mut summary: pb::GetSummaryResponse) -> pb::GetSummaryResponse {
    summary.generated_at = None;
    summary
}

/// The unsuppressed facts and the checkpoints of a reporting database.
async fn stored(settings: &Settings, organization: Uuid) -> (Facts, HashMap<String, u64>) {
    let database = haven_reporting::connect(settings).await.unwrap();
    let keys =
        haven_reporting::RecordKeys::load(&haven_auth::keys::keys_dir(&settings.data_dir)).unwrap();
    let projections = haven_reporting::projections::open(database.clone(), keys);
    let scope = ReportScope {
        organization_id: Some(organization),
        ..ReportScope::default()
    };
    let facts = projections.facts(&scope).await.unwrap();
    let checkpoints = projections.checkpoints().await.unwrap();
    database.close().await;
    (facts, checkpoints)
}

/// The checkpoints of a reporting database.
async fn checkpoints(settings: &Settings) -> HashMap<String, u64> {
    let database = haven_reporting::connect(settings).await.unwrap();
    let keys =
        haven_reporting::RecordKeys::load(&haven_auth::keys::keys_dir(&settings.data_dir)).unwrap();
    let checkpoints = haven_reporting::projections::open(database.clone(), keys)
        .checkpoints()
        .await
        .unwrap();
    database.close().await;
    checkpoints
}

/// Copies the stack's generated keys, so the child verifies the same user tokens and
/// signs service tokens the feeds accept.
fn copy_keys(from: &Path, to: &Path) {
    let (from, to) = (
        haven_auth::keys::keys_dir(from),
        haven_auth::keys::keys_dir(to),
    );
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A child reporting database: its directory, and the settings the child runs with
/// (also used here to read its database after a kill).
struct ChildDatabase {
    dir: tempfile::TempDir,
    settings: Settings,
    environment: Vec<(String, String)>,
}

async fn child_database(stack: &TestStack) -> ChildDatabase {
    let dir = tempfile::tempdir().unwrap();
    copy_keys(&stack.settings.data_dir, dir.path());
    let mut environment = vec![
        (
            "HAVEN__DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        (
            "HAVEN__INTAKE__ENDPOINT".to_owned(),
            stack.stack.endpoint(ServiceName::Intake),
        ),
        (
            "HAVEN__CASE__ENDPOINT".to_owned(),
            stack.stack.endpoint(ServiceName::Case),
        ),
        (
            "HAVEN__REFERRAL__ENDPOINT".to_owned(),
            stack.stack.endpoint(ServiceName::Referral),
        ),
        (
            "HAVEN__REPORTING__LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        (
            "HAVEN__REPORTING__SUPPRESSION_THRESHOLD".to_owned(),
            stack.settings.reporting.suppression_threshold.to_string(),
        ),
    ];
    if stack.backend == Backend::Postgres {
        let server = haven_storage::testing::postgres().await.unwrap();
        environment.push((
            "HAVEN__DATABASE__URL".to_owned(),
            server.fresh_database().await,
        ));
    }
    let settings = Settings::load_from(None, environment.clone()).unwrap();
    ChildDatabase {
        dir,
        settings,
        environment,
    }
}

/// How many events a (child) reporting service has applied, over all feeds, by its
/// summary; `None` while it does not answer.
async fn applied(
    client: &mut ReportingServiceClient<tonic::transport::Channel>,
    token: &str,
) -> Option<u64> {
    let summary = summary(client, token).await.ok()?;
    Some(summary.checkpoints.values().sum())
}

/// Runs the child on `database` and kills it once it has applied more than `after`
/// events but not all `end`. Returns how many it had applied when it died, or `None`
/// if it caught up first (then it is killed caught up).
async fn kill_mid_way(database: &ChildDatabase, token: &str, after: u64, end: u64) -> Option<u64> {
    let child = start_child(&database.environment, database.dir.path());
    let mut client = client_of(&child).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let killed = loop {
        if let Some(applied) = applied(&mut client, token).await {
            if applied > after && applied < end {
                break true;
            }
            if applied >= end {
                break false;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the child did not get past {after} of {end} events within 30 s"
        );
    };
    drop(client);
    child.kill();
    // What the database holds after the kill: only whole transactions.
    let at_death = checkpoints(&database.settings).await.values().sum();
    (killed && at_death < end).then_some(at_death)
}

async fn a_killed_reporting_process_double_counts_nothing(stack: TestStack) {
    let organization = Uuid::new_v4();
    let analyst = stack.token_as("analyst", &["analyst"], organization);
    let shelter = shelter(&stack).await;
    const ROUND: usize = 60;
    let mut people = ROUND;
    activity(&stack, organization, shelter, ROUND).await;
    let mut reference = ReportingServiceClient::new(stack.channel(ServiceName::Reporting).await);

    let mut kills = Vec::new();
    let mut database = None;
    for attempt in 1..=4 {
        // The in-process reporting, never killed, has applied everything: the counts
        // are complete and the checkpoints have settled.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut previous = None;
        let end = loop {
            let summary = counts(summary(&mut reference, &analyst).await.unwrap());
            let complete = summary.screenings_total == people as u64
                && summary.identified_total == people as u64
                && summary.cases_total == people as u64;
            if complete && previous.as_ref() == Some(&summary) {
                break summary.checkpoints.values().sum::<u64>();
            }
            assert!(tokio::time::Instant::now() < deadline, "{summary:?}");
            previous = Some(summary);
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // A fresh, empty reporting database for the child, killed while catching up
        // once past a quarter of the events, restarted, killed past half, and past
        // three quarters.
        let fresh = child_database(&stack).await;
        let mut previous = 0;
        for quarter in 1..=3 {
            let after = (end * quarter / 4).max(previous);
            match kill_mid_way(&fresh, &analyst, after, end).await {
                Some(at_death) => {
                    assert!(
                        at_death >= previous,
                        "a restart lost applied events: {at_death} < {previous}"
                    );
                    kills.push((at_death, end));
                    previous = at_death;
                }
                None => break,
            }
        }
        database = Some(fresh);
        if !kills.is_empty() {
            break;
        }
        // Too fast to catch: more to catch up with next time.
        eprintln!("attempt {attempt}: the child caught up before a kill; adding activity");
        activity(&stack, organization, shelter, ROUND).await;
        people += ROUND;
    }
    assert!(
        kills
            .iter()
            .any(|(at_death, end)| 0 < *at_death && at_death < end),
        "no kill happened in the middle of catching up: {kills:?}"
    );
    eprintln!("killed mid-way, events applied (at death, of): {kills:?}");
    let database = database.unwrap();

    // Started again on the same database, it catches up.
    let child = start_child(&database.environment, database.dir.path());
    let mut client = client_of(&child).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let expected = counts(summary(&mut reference, &analyst).await.unwrap());
        let got = summary(&mut client, &analyst).await.map(counts);
        if got.as_ref().is_ok_and(|got| *got == expected) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted child never caught up: {got:?}\nexpected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The published indicators agree exactly...
    assert_eq!(
        indicators(&mut client, &analyst, organization).await,
        indicators(&mut reference, &analyst, organization).await
    );
    // ...and so do the unsuppressed facts and checkpoints in the two databases.
    let (facts, checkpoints) = stored(&database.settings, organization).await;
    let (expected_facts, expected_checkpoints) = stored(&stack.settings, organization).await;
    assert_eq!(checkpoints, expected_checkpoints);
    assert_eq!(facts, expected_facts);
    // Hand counts: nothing counted twice, nothing lost. Each round of activity
    // referred two cases and accepted one.
    let summary = counts(summary(&mut client, &analyst).await.unwrap());
    let rounds = (people / ROUND) as u64;
    let people = people as u64;
    assert_eq!(summary.screenings_total, people);
    assert_eq!(summary.identified_total, people);
    assert_eq!((summary.cases_total, summary.cases_open), (people, people));
    let twice = people.div_ceil(2);
    let outcomes: Vec<(String, f64, f64, u64)> = facts
        .outcomes
        .iter()
        .map(|(domain, first, latest, cases)| (domain.clone(), *first, *latest, cases.n))
        .collect();
    assert_eq!(
        outcomes,
        [("safety".to_owned(), 2.0, 4.0, twice)],
        "only the cases assessed twice are outcomes, each counted once"
    );
    assert_eq!(
        (facts.referrals_answered.n, facts.referrals_accepted),
        (rounds, rounds)
    );
    let table = |name: &str| {
        facts
            .tables
            .iter()
            .find(|table| table.name == name)
            .unwrap()
            .clone()
    };
    assert_eq!(table("services_delivered_by_type").total.n, people);
    assert_eq!(table("referrals_by_status").total.n, 2 * rounds);
    assert_eq!(table("follow_ups").total.n, people.div_ceil(5));
    assert_eq!(facts.days_to_identification.days.len() as u64, people);
    drop(client);
    child.kill();
    stack.stop().await;
}

haven_e2e::on_both_backends! {
    a_killed_reporting_process_double_counts_nothing,
}
