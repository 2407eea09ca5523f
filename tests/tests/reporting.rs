//! Indicators from events, end to end: people walk through intake, case and referral
//! over REST; reporting, fed only by the event feeds, gives the hand-computed counts,
//! suppresses small cells, exports only consenting persons k-anonymised, and records
//! every export in the release ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use haven_cli::ServiceName;
use haven_e2e::{Backend, TestStack, authorized};
use haven_proto::reporting::v1 as pb;
use haven_proto::reporting::v1::reporting_service_client::ReportingServiceClient;
use haven_reporting::projections::{Facts, ReportScope};
use haven_reporting::publication::{Figure, perturb, publish};

/// A person: sex, birth year, citizenship, exploitation, source, and how far intake
/// goes (`identified`, `presumed_victim` or only screened), and whether they consent
/// to reporting.
struct Person {
    gender: &'static str,
    birth_year: i32,
    citizenship: &'static str,
    exploitation: &'static str,
    source: &'static str,
    stage: Option<&'static str>,
    reporting: bool,
}

const PEOPLE: [Person; 7] = [
    Person {
        gender: "female",
        birth_year: 1995,
        citizenship: "az",
        exploitation: "sexual_exploitation",
        source: "police",
        stage: Some("identified"),
        reporting: true,
    },
    Person {
        gender: "female",
        birth_year: 1994,
        citizenship: "az",
        exploitation: "sexual_exploitation",
        source: "police",
        stage: Some("identified"),
        reporting: true,
    },
    Person {
        gender: "female",
        birth_year: 1993,
        citizenship: "az",
        exploitation: "sexual_exploitation",
        source: "hotline",
        stage: Some("identified"),
        reporting: true,
    },
    Person {
        gender: "male",
        birth_year: 1980,
        citizenship: "uz",
        exploitation: "forced_labour",
        source: "labour_inspection",
        stage: Some("identified"),
        reporting: false,
    },
    Person {
        gender: "female",
        birth_year: 2001,
        citizenship: "az",
        exploitation: "forced_labour",
        source: "police",
        stage: Some("presumed_victim"),
        reporting: true,
    },
    Person {
        gender: "male",
        birth_year: 1990,
        citizenship: "az",
        exploitation: "forced_labour",
        source: "hotline",
        stage: None,
        reporting: false,
    },
    Person {
        gender: "female",
        birth_year: 1996,
        citizenship: "az",
        exploitation: "sexual_exploitation",
        source: "police",
        stage: Some("identified"),
        reporting: true,
    },
];

async fn walk(stack: &TestStack, officer: &str, person: &Person) -> (String, Option<String>) {
    let screening: Value = stack
        .post(officer, "/v1/screenings", json!({
            "referral_source": person.source, "settlement": "Gəncə",
            "person": {"given_name": "X", "birth_year": person.birth_year, "gender": person.gender, "citizenships": [person.citizenship]},
            "exploitation": {"types": [person.exploitation], "means_of_control": ["threats"]}}))
        .await
        .json()
        .await
        .unwrap();
    let id = screening["id"].as_str().unwrap().to_owned();
    let consent = |purpose: &str, given: bool| json!({"purpose": purpose, "given": given, "method": "written"});
    stack
        .post(
            officer,
            &format!("/v1/screenings/{id}/consents"),
            consent("assistance", true),
        )
        .await;
    stack
        .post(
            officer,
            &format!("/v1/screenings/{id}/consents"),
            consent("reporting", person.reporting),
        )
        .await;
    let Some(stage) = person.stage else {
        return (id, None);
    };
    let decided: Value = stack
        .post(officer, &format!("/v1/screenings/{id}/decisions"), json!({"stage": stage, "deciding_organization_type": "police", "legal_basis": "art. 17"}))
        .await
        .json()
        .await
        .unwrap();
    (id, decided["case_id"].as_str().map(str::to_owned))
}

async fn indicators_until(
    client: &mut ReportingServiceClient<tonic::transport::Channel>,
    token: &str,
    scope: pb::Scope,
    done: impl Fn(&pb::GetIndicatorsResponse) -> bool,
) -> pb::GetIndicatorsResponse {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let response = match client
            .get_indicators(authorized(
                pb::GetIndicatorsRequest {
                    scope: Some(scope.clone()),
                },
                token,
            ))
            .await
        {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let logs = haven_e2e::logs().text();
                let errors: Vec<&str> =
                    logs.lines().filter(|line| line.contains("ERROR")).collect();
                panic!("{status:?}\n{}", errors.join("\n"));
            }
        };
        if done(&response) {
            return response;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "indicators never caught up: {response:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the streamed export: the summary, with the file joined from its parts.
async fn run_export(
    client: &mut ReportingServiceClient<tonic::transport::Channel>,
    token: &str,
    scope: pb::Scope,
) -> pb::ExportCtdcResponse {
    let mut parts = client
        .export_ctdc(authorized(
            pb::ExportCtdcRequest { scope: Some(scope) },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut summary = parts
        .message()
        .await
        .unwrap()
        .and_then(|part| part.summary)
        .expect("the summary comes first");
    while let Some(part) = parts.message().await.unwrap() {
        assert!(part.summary.is_none());
        summary.csv.push_str(&part.csv_chunk);
    }
    summary
}

fn cells(response: &pb::GetIndicatorsResponse, name: &str) -> Vec<(String, Option<u64>)> {
    let table = response
        .tables
        .iter()
        .find(|table| table.name == name)
        .unwrap_or_else(|| panic!("no table {name}"));
    table
        .cells
        .iter()
        .map(|cell| {
            (
                cell.labels.join("/"),
                (!cell.suppressed).then_some(cell.value),
            )
        })
        .collect()
}

fn total(response: &pb::GetIndicatorsResponse, name: &str) -> Option<u64> {
    let table = response
        .tables
        .iter()
        .find(|table| table.name == name)
        .unwrap();
    (!table.total_suppressed).then_some(table.total)
}

/// Reporting's figures for `organization` before publication (exact counts with their
/// cell keys), read from its database, polled until `done` holds: every event the
/// test expects has been counted.
async fn counted_until(
    stack: &TestStack,
    organization: Uuid,
    done: impl Fn(&Facts) -> bool,
) -> Facts {
    let database = haven_reporting::connect(&stack.settings).await.unwrap();
    let keys =
        haven_reporting::RecordKeys::load(&haven_auth::keys::keys_dir(&stack.settings.data_dir))
            .unwrap();
    let projections = haven_reporting::projections::open(database, keys);
    let scope = ReportScope {
        organization_id: Some(organization),
        ..ReportScope::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let facts = projections.facts(&scope).await.unwrap();
        if done(&facts) {
            return facts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "figures never reached the hand counts: {facts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A table's exact counts (cells sorted by their labels joined by `/`) and total.
fn raw_table(facts: &Facts, name: &str) -> Published {
    let table = facts
        .tables
        .iter()
        .find(|table| table.name == name)
        .unwrap_or_else(|| panic!("no table {name}"));
    let mut cells: Vec<(String, Option<u64>)> = table
        .cells
        .iter()
        .map(|(labels, count)| (labels.join("/"), Some(count.n)))
        .collect();
    cells.sort();
    (cells, Some(table.total.n))
}

/// A table as reporting publishes `facts` with `threshold`: perturbed, suppressed.
fn published_table(facts: &Facts, name: &str, threshold: u64) -> Published {
    let table = facts
        .tables
        .iter()
        .find(|table| table.name == name)
        .unwrap_or_else(|| panic!("no table {name}"))
        .clone();
    let published = publish(table, threshold);
    let mut cells: Vec<(String, Option<u64>)> = published
        .cells
        .iter()
        .map(|(labels, figure)| (labels.join("/"), figure.value()))
        .collect();
    cells.sort();
    (cells, Figure::value(published.total))
}

/// A table of a gRPC report, as [`published_table`] gives it.
fn pb_table(report: &pb::GetIndicatorsResponse, name: &str) -> Published {
    let mut cells = cells(report, name);
    cells.sort();
    (cells, total(report, name))
}

async fn indicators_match_hand_counts_and_exports_protect_people(backend: Backend) {
    let Some((dir, mut settings)) = haven_e2e::settings(backend).await else {
        return;
    };
    // Small thresholds so a handful of people give visible figures; the defaults (11)
    // are checked below on the same data.
    settings.reporting.suppression_threshold = 2;
    settings.reporting.k_anonymity = 3;
    let stack = TestStack::start_with(dir, settings).await;
    let organization = Uuid::new_v4();
    let officer = stack.token_as("officer", &["admin", "intake_officer"], organization);
    let worker = stack.token_as("aysel", &["case_worker"], organization);
    let supervisor = stack.token_as("rashad", &["supervisor"], organization);
    let analyst = stack.token_as("analyst", &["analyst"], organization);

    let mut walked = Vec::new();
    for person in &PEOPLE {
        walked.push(walk(&stack, &officer, person).await);
    }
    // Case work on the first identified person: a delivered shelter stay, a payment,
    // two assessments (safety 2 then 4), a follow-up done, and an approved closure.
    let case = walked[0].1.clone().unwrap();
    let service: Value = stack
        .post(&worker, &format!("/v1/cases/{case}/services"), json!({"type": "shelter", "provider_organization_id": organization, "status": "delivered"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(service["status"], "delivered");
    stack.post(&worker, &format!("/v1/cases/{case}/payments"), json!({"amount": "120.50", "currency": "AZN", "paid_on": "2026-11-01", "purpose": "rent"})).await;
    for score in [2, 4] {
        stack
            .post(
                &worker,
                &format!("/v1/cases/{case}/assessments"),
                json!({"kind": "individual", "scores": [{"domain": "safety", "score": score}]}),
            )
            .await;
    }
    let case_now = stack.get(&worker, &format!("/v1/cases/{case}")).await;
    let etag = case_now.headers()["etag"].to_str().unwrap().to_owned();
    let closing = stack
        .http
        .post(stack.url(&format!("/v1/cases/{case}/closure")))
        .bearer_auth(&worker)
        .header("if-match", &etag)
        .json(&json!({"reason": "goals_achieved"}))
        .send()
        .await
        .unwrap();
    let etag = closing.headers()["etag"].to_str().unwrap().to_owned();
    let approved = stack
        .http
        .post(stack.url(&format!("/v1/cases/{case}/closure/approve")))
        .bearer_auth(&supervisor)
        .header("if-match", &etag)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);

    let mut client = ReportingServiceClient::new(stack.channel(ServiceName::Reporting).await);
    let scope = pb::Scope {
        organization_id: organization.to_string(),
        ..pb::Scope::default()
    };
    // Every event counted (read from reporting's own figures, exact), then the report.
    let facts = counted_until(&stack, organization, |facts| {
        raw_table(facts, "screenings_by_source").1 == Some(7)
            && raw_table(facts, "victims_by_sex").1 == Some(6)
            && raw_table(facts, "closure_reasons").0.len() == 1
            && !facts.cash.is_empty()
    })
    .await;
    let report = indicators_until(&mut client, &analyst, scope.clone(), |_| true).await;
    // What leaves is exactly the publication of those figures: perturbed, suppressed.
    for table in &report.tables {
        assert_eq!(
            pb_table(&report, &table.name),
            published_table(&facts, &table.name, 2),
            "{}",
            table.name
        );
    }
    // Hand counts: sources police 4, hotline 2, labour inspection 1.
    assert_eq!(
        raw_table(&facts, "screenings_by_source").0,
        [
            ("hotline".to_owned(), Some(2)),
            ("labour_inspection".to_owned(), Some(1)),
            ("police".to_owned(), Some(4))
        ]
    );
    // Labour inspection (1) is suppressed; as the total is published, the next
    // smallest cell (hotline, 2) goes too, so the total cannot give it away; police is
    // perturbed by at most 2 and never below the threshold.
    let sources = cells(&report, "screenings_by_source");
    assert_eq!(sources[0], ("hotline".to_owned(), None));
    assert_eq!(sources[1], ("labour_inspection".to_owned(), None));
    assert!(matches!(sources[2].1, Some(2..=6)), "{sources:?}");
    // Victims: identified 5 (4 women, 1 man), presumed 1 (a woman). The lone man and
    // the lone presumed woman are below 2; complementary suppression hides another.
    let by_sex = cells(&report, "victims_by_sex");
    assert_eq!(raw_table(&facts, "victims_by_sex").1, Some(6));
    assert_eq!(
        raw_table(&facts, "victims_by_sex").0,
        [
            ("identified/female".to_owned(), Some(4)),
            ("identified/male".to_owned(), Some(1)),
            ("presumed/female".to_owned(), Some(1))
        ]
    );
    assert!(by_sex.iter().filter(|(_, value)| value.is_none()).count() >= 2);
    assert_eq!(
        raw_table(&facts, "victims_by_exploitation_type").0,
        [
            ("forced_labour".to_owned(), Some(2)),
            ("sexual_exploitation".to_owned(), Some(4))
        ]
    );
    assert_eq!(
        cells(&report, "cases_by_status")
            .iter()
            .find(|(labels, _)| labels == "closed")
            .map(|(_, value)| *value),
        Some(None),
        "one closed case: suppressed"
    );
    let measure = |name: &str| {
        report
            .measures
            .iter()
            .find(|measure| measure.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .clone()
    };
    let cash = measure("cash_assistance_total_AZN");
    assert_eq!(
        (cash.base, cash.suppressed),
        (0, true),
        "one paid case is not published, nor is its count"
    );
    assert!(measure("outcome_safety_latest_mean").suppressed);
    assert!(report.threshold == 2);

    // The readable page for a donor: rendered on the server, charts included.
    let page = stack
        .get(
            &analyst,
            &format!(
                "/v1/reports/indicators?organization_id={organization}&from=2025-03-15&format=html\
                 &title=Safe%20Return%20%E2%80%94%2013%20months"
            ),
        )
        .await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = page.text().await.unwrap();
    assert!(page.contains("<h1>Safe Return — 13 months</h1>"), "{page}");
    assert!(page.contains("From 2025-03-15 to today"), "{page}");
    let police = sources[2].1.unwrap();
    assert!(
        page.contains("<svg")
            && page.contains("screenings by source")
            && page.contains(&format!(">{police}</text>")),
        "{page}"
    );

    // A title of more than one line is refused, with the field named.
    let refused = stack
        .get(
            &analyst,
            "/v1/reports/indicators?format=html&title=one%0Atwo",
        )
        .await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "title", "{problem}");

    // With the default threshold of 11, no count from this small office is published.
    use haven_reporting::publication::Count;
    // (Checked on the same data with the pure function the service uses.)
    let raw = haven_reporting::publication::RawTable::additive(
        "screenings_by_source",
        vec!["referral_source"],
        vec![
            (vec!["police".into()], Count::new(4, 1)),
            (vec!["hotline".into()], Count::new(2, 2)),
            (vec!["labour_inspection".into()], Count::new(1, 3)),
        ],
    );
    let strict = haven_reporting::publication::publish(raw, 11);
    assert!(
        strict
            .cells
            .iter()
            .all(|(_, figure)| figure.value().is_none())
            && strict.total.value().is_none()
    );

    // The export: victims 6, of whom 4 consented to reporting (the Uzbek man did not,
    // the presumed woman did... and the screened-only man is no victim). With k = 3,
    // the three Azerbaijani women of 1993-96 form one class; the presumed woman of
    // 2001 (band 24--26) stands alone and is withheld.
    let export = run_export(&mut client, &analyst, scope.clone()).await;
    assert_eq!(export.without_consent, 1, "{export:?}");
    assert_eq!(export.rows + export.withheld, 5);
    assert_eq!(export.rows, 4, "{}", export.csv);
    assert_eq!(export.withheld, 1);
    assert!(!export.csv.contains("X,"), "no names");
    // Registered this year (the screenings carry no earlier date).
    let row = format!(
        "{},Case Management,Female,30--38,Adult,AZ,0,1,0",
        time::OffsetDateTime::now_utc().year()
    );
    assert!(
        export
            .csv
            .lines()
            .skip(1)
            .all(|line| line.starts_with(&row)),
        "{}",
        export.csv
    );
    use sha2::Digest as _;
    assert_eq!(
        export.sha256,
        hex::encode(sha2::Sha256::digest(export.csv.as_bytes()))
    );

    // The two-export attack: one more consenting victim of the same class, then the
    // export again. The release holds her back until k - 1 more have come (a class
    // changes between releases by 0 or at least k rows), so the two files are the same
    // and subtracting them shows no one.
    let newcomer = Person {
        gender: "female",
        birth_year: 1995,
        citizenship: "az",
        exploitation: "sexual_exploitation",
        source: "police",
        stage: Some("identified"),
        reporting: true,
    };
    let newcomer = walk(&stack, &officer, &newcomer).await;
    let export_until = |done: fn(&pb::ExportCtdcResponse) -> bool| {
        let (mut client, analyst, scope) = (client.clone(), analyst.clone(), scope.clone());
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let export = run_export(&mut client, &analyst, scope.clone()).await;
                if done(&export) || tokio::time::Instant::now() > deadline {
                    return export;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let again = export_until(|export| export.rows + export.withheld == 6).await;
    assert_eq!(
        again.rows + again.withheld,
        6,
        "the newcomer is counted: {again:?}"
    );
    assert_eq!((again.rows, again.withheld), (4, 2));
    assert_eq!(again.csv, export.csv, "the same file: nobody to isolate");
    assert_eq!(again.sha256, export.sha256);

    // Withdrawing consent to reporting takes a person out: the class still has the 4
    // consenting people the file shows, so the file stays the same...
    let withdraw = |screening: String| {
        let (stack, officer) = (&stack, &officer);
        async move {
            stack
                .post(
                    officer,
                    &format!("/v1/screenings/{screening}/consents"),
                    json!({"purpose": "reporting", "given": false, "method": "verbal"}),
                )
                .await;
        }
    };
    withdraw(walked[6].0.clone()).await;
    let second = export_until(|export| export.without_consent == 2).await;
    assert_eq!(second.without_consent, 2);
    assert_eq!(second.rows, 4);
    assert_eq!(second.csv, export.csv);
    // ...and when one more withdraws, the class drops by whole batches of k (here to
    // nothing, as 1 row would be fewer than k), never by the one person who left.
    withdraw(newcomer.0.clone()).await;
    let third = export_until(|export| export.without_consent == 3).await;
    assert_eq!(third.without_consent, 3);
    assert_eq!(third.rows, 0, "{}", third.csv);

    // The ledger has every export, newest first, with its hash and who made it.
    let releases = client
        .list_releases(authorized(pb::ListReleasesRequest { limit: 100 }, &analyst))
        .await
        .unwrap()
        .into_inner()
        .releases;
    assert!(releases.len() >= 4);
    assert_eq!(releases[0].id, third.release_id);
    assert_eq!(releases[0].sha256, third.sha256);
    assert_eq!(releases[0].released_by, "analyst");
    assert!(
        releases
            .iter()
            .any(|release| release.id == export.release_id
                && release.rows == 4
                && release.withheld == 1)
    );

    // Reports are for analysts, supervisors and admins only.
    let denied = client
        .get_indicators(authorized(
            pb::GetIndicatorsRequest {
                scope: Some(scope.clone()),
            },
            &worker,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_indicators_match_hand_counts_and_exports_protect_people() {
    indicators_match_hand_counts_and_exports_protect_people(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_indicators_match_hand_counts_and_exports_protect_people() {
    indicators_match_hand_counts_and_exports_protect_people(Backend::Postgres).await;
}

// Counts under differential privacy: with a budget of 100 and a release of ε = 99 the
// noise is all but nil (each of 7 tables gets ε ≈ 14), so the counts are the truth;
// the next release would take the year past its budget and is refused, leaving both
// ledgers as they were.
async fn private_counts_spend_the_budget_and_are_refused_past_it(backend: Backend) {
    let Some((dir, mut settings)) = haven_e2e::settings(backend).await else {
        return;
    };
    settings.reporting.privacy_budget = 100.0;
    let stack = TestStack::start_with(dir, settings).await;
    let organization = Uuid::new_v4();
    let officer = stack.token_as("officer", &["admin", "intake_officer"], organization);
    let analyst = stack.token_as("analyst", &["analyst"], organization);
    let worker = stack.token_as("aysel", &["case_worker"], organization);
    for person in &PEOPLE {
        walk(&stack, &officer, person).await;
    }
    // The feed is applied in order: once the last decision counts, every consent does.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let summary: Value = stack
            .get(&officer, "/v1/reports/summary")
            .await
            .json()
            .await
            .unwrap();
        if summary["identified_total"] == 5 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{summary}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let today = time::OffsetDateTime::now_utc().date();
    let year = today.year();
    let period = |epsilon: f64| json!({"from": format!("{year}-01-01"), "to": today.to_string(), "epsilon": epsilon});

    let released = stack
        .post(&analyst, "/v1/releases/private_counts", period(99.0))
        .await;
    assert_eq!(released.status(), 201);
    let released: Value = released.json().await.unwrap();
    let count = |table: &str, label: &str| -> u64 {
        released["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|found| found["name"] == table)
            .and_then(|found| {
                found["cells"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|cell| cell["label"] == label)
            })
            .and_then(|cell| cell["count"].as_u64())
            .unwrap_or_else(|| panic!("no {table}/{label} in {released}"))
    };
    // Five victims consent to reporting, all women; one in forced labour.
    assert_eq!(count("by_year", &year.to_string()), 5, "{released}");
    assert_eq!(count("by_gender", "Female"), 5);
    assert_eq!(
        count("by_gender", "Male"),
        0,
        "listed although no one is counted"
    );
    assert_eq!(count("forced_labour", "yes"), 1);
    assert_eq!(count("sexual_exploitation", "yes"), 4);
    let dataset = format!("victims_registered_{year}");
    assert_eq!(
        released["budgets"],
        json!([{"dataset": dataset, "budget": 100.0, "spent": 99.0, "remaining": 1.0}])
    );

    let refused = stack
        .post(&analyst, "/v1/releases/private_counts", period(2.0))
        .await;
    assert_eq!(refused.status(), 409);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains(&dataset) && detail.contains("at most ε = 1"),
        "{problem}"
    );

    let budget: Value = stack
        .get(&analyst, "/v1/privacy_budget")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(budget["budget_per_dataset"], 100.0);
    assert_eq!(
        budget["datasets"],
        json!([{"dataset": dataset, "budget": 100.0, "spent": 99.0, "remaining": 1.0}])
    );
    let releases: Value = stack
        .get(&analyst, "/v1/releases")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        releases["items"][0]["id"], released["release_id"],
        "the refused one is not in the ledger"
    );
    assert_eq!(releases["items"][0]["kind"], "private_counts");
    assert_eq!(releases["items"][0]["epsilon"], 99.0);

    // Wrong requests are refused before anything is spent.
    for (body, field) in [
        (
            json!({"from": format!("{year}-01-01"), "to": today.to_string(), "epsilon": 0.0}),
            "epsilon",
        ),
        (
            json!({"from": "2000-01-01", "to": today.to_string(), "epsilon": 0.5}),
            "to",
        ),
        (
            json!({"from": format!("{year}-01-01"), "to": today.to_string(), "region": "Atlantis", "epsilon": 0.5}),
            "region",
        ),
    ] {
        let response = stack
            .post(&analyst, "/v1/releases/private_counts", body.clone())
            .await;
        assert_eq!(response.status(), 400, "{body}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let missing = stack
        .post(
            &analyst,
            "/v1/releases/private_counts",
            json!({"from": "2026-01-01", "epsilon": 0.5}),
        )
        .await;
    assert!(missing.status().is_client_error());
    let forbidden = stack
        .post(&worker, "/v1/releases/private_counts", period(0.5))
        .await;
    assert_eq!(forbidden.status(), 403);
    let budget_after: Value = stack
        .get(&analyst, "/v1/privacy_budget")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(budget_after, budget);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_private_counts_spend_the_budget_and_are_refused_past_it() {
    private_counts_spend_the_budget_and_are_refused_past_it(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_private_counts_spend_the_budget_and_are_refused_past_it() {
    private_counts_spend_the_budget_and_are_refused_past_it(Backend::Postgres).await;
}

// Every indicator against a hand count. Twelve people are screened by one
// organisation over the past month; eight are identified and get cases, two are
// presumed victims, two are only screened. Their cases get services, payments,
// assessments, follow-ups, referrals to a shelter of another organisation and
// closures, all over REST. Every cell is at least 2, so with a threshold of 2 nothing
// is suppressed and each published figure is the hand count itself.

/// A person screened `screened_days_ago` days before the test started, decided
/// `decided_days_ago` days before it (when `stage` is set).
struct Screened {
    gender: &'static str,
    age: i32,
    citizenship: &'static str,
    exploitation: &'static [&'static str],
    means: &'static [&'static str],
    source: &'static str,
    stage: Option<&'static str>,
    screened_days_ago: i64,
    decided_days_ago: i64,
}

const fn identified(
    gender: &'static str,
    age: i32,
    citizenship: &'static str,
    exploitation: &'static [&'static str],
    means: &'static [&'static str],
    source: &'static str,
    (screened_days_ago, decided_days_ago): (i64, i64),
) -> Screened {
    Screened {
        gender,
        age,
        citizenship,
        exploitation,
        means,
        source,
        stage: Some("identified"),
        screened_days_ago,
        decided_days_ago,
    }
}

const SEXUAL: &[&str] = &["sexual_exploitation"];
const LABOUR: &[&str] = &["forced_labour"];
const BOTH: &[&str] = &["forced_labour", "sexual_exploitation"];
const THREATS: &[&str] = &["threats"];
const THREATS_AND_DEBT: &[&str] = &["debt_bondage", "threats"];
const DOCUMENTS: &[&str] = &["withheld_documents"];

/// Days to identification (screened − decided): 1, 2, 3, 4, 5, 6, 7, 20.
/// Days to the first service (all added on the day of the test): the screened days,
/// 10, 10, 12, 12, 20, 20, 30, 30.
const TWELVE: [Screened; 12] = [
    identified("female", 19, "az", SEXUAL, THREATS, "police", (10, 9)),
    identified("female", 19, "az", SEXUAL, THREATS, "police", (10, 8)),
    identified("female", 33, "az", SEXUAL, THREATS, "police", (12, 9)),
    identified("female", 33, "az", SEXUAL, THREATS, "police", (12, 8)),
    identified(
        "male",
        44,
        "uz",
        LABOUR,
        THREATS_AND_DEBT,
        "police",
        (20, 15),
    ),
    identified(
        "male",
        44,
        "uz",
        LABOUR,
        THREATS_AND_DEBT,
        "police",
        (20, 14),
    ),
    identified("female", 33, "az", BOTH, DOCUMENTS, "hotline", (30, 23)),
    identified("female", 33, "az", BOTH, DOCUMENTS, "hotline", (30, 10)),
    Screened {
        gender: "female",
        age: 25,
        citizenship: "az",
        exploitation: &[],
        means: &[],
        source: "police",
        stage: Some("presumed_victim"),
        screened_days_ago: 3,
        decided_days_ago: 2,
    },
    Screened {
        gender: "female",
        age: 25,
        citizenship: "az",
        exploitation: &[],
        means: &[],
        source: "police",
        stage: Some("presumed_victim"),
        screened_days_ago: 3,
        decided_days_ago: 2,
    },
    Screened {
        gender: "female",
        age: 30,
        citizenship: "az",
        exploitation: &[],
        means: &[],
        source: "ngo_outreach",
        stage: None,
        screened_days_ago: 40,
        decided_days_ago: 0,
    },
    Screened {
        gender: "female",
        age: 31,
        citizenship: "az",
        exploitation: &[],
        means: &[],
        source: "ngo_outreach",
        stage: None,
        screened_days_ago: 40,
        decided_days_ago: 0,
    },
];

/// What walking one person through intake left: the screening, its person and the
/// case intake opened (identified persons only).
struct Walked {
    screening: String,
    person: String,
    case: Option<String>,
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn screen(
    stack: &TestStack,
    officer: &str,
    start: time::OffsetDateTime,
    person: &Screened,
) -> Walked {
    let screened_at = start - time::Duration::days(person.screened_days_ago);
    let mut body = json!({
        "referral_source": person.source, "settlement": "Gəncə", "screened_at": rfc3339(screened_at),
        "person": {"given_name": "Y", "birth_year": screened_at.year() - person.age,
            "gender": person.gender, "citizenships": [person.citizenship]}});
    if !person.exploitation.is_empty() || !person.means.is_empty() {
        body["exploitation"] =
            json!({"types": person.exploitation, "means_of_control": person.means});
    }
    let created = stack.post(officer, "/v1/screenings", body).await;
    assert_eq!(created.status(), 201);
    let screening: Value = created.json().await.unwrap();
    let id = screening["id"].as_str().unwrap().to_owned();
    for purpose in ["assistance", "data_sharing", "reporting"] {
        let consent = stack
            .post(
                officer,
                &format!("/v1/screenings/{id}/consents"),
                json!({"purpose": purpose, "given": true, "method": "written"}),
            )
            .await;
        assert_eq!(consent.status(), 201, "consent to {purpose}");
    }
    let mut case = None;
    if let Some(stage) = person.stage {
        let decided_at = start - time::Duration::days(person.decided_days_ago);
        let decided = stack
            .post(officer, &format!("/v1/screenings/{id}/decisions"), json!({"stage": stage,
                "deciding_organization_type": "police", "legal_basis": "art. 17", "decided_at": rfc3339(decided_at)}))
            .await;
        assert_eq!(decided.status(), 201);
        let decided: Value = decided.json().await.unwrap();
        case = decided["case_id"].as_str().map(str::to_owned);
        assert_eq!(case.is_some(), stage == "identified", "{decided}");
    }
    Walked {
        screening: id,
        person: screening["person_id"].as_str().unwrap().to_owned(),
        case,
    }
}

/// Sends `body` with `If-Match: etag`; returns the status, the new ETag and the body.
async fn with_if_match(
    stack: &TestStack,
    token: &str,
    method: reqwest::Method,
    path: &str,
    etag: &str,
    body: Value,
) -> (u16, String, Value) {
    let response = stack
        .http
        .request(method, stack.url(path))
        .bearer_auth(token)
        .header("if-match", etag)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, etag, response.json().await.unwrap_or(Value::Null))
}

async fn etag_of(stack: &TestStack, token: &str, path: &str) -> String {
    let response = stack.get(token, path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.headers()["etag"].to_str().unwrap().to_owned()
}

/// POSTs and expects `201 Created`; returns the ETag and the body.
async fn create(stack: &TestStack, token: &str, path: &str, body: Value) -> (String, Value) {
    let response = stack.post(token, path, body).await;
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "POST {path}: {body}");
    (etag, body)
}

async fn move_stage(stack: &TestStack, worker: &str, case: &str, stage: &str) {
    let path = format!("/v1/cases/{case}");
    let etag = etag_of(stack, worker, &path).await;
    let (status, _, body) = with_if_match(
        stack,
        worker,
        reqwest::Method::POST,
        &format!("{path}/stage"),
        &etag,
        json!({"stage": stage}),
    )
    .await;
    assert_eq!(status, 200, "{stage}: {body}");
}

/// Closure requested by the caseworker and approved by the supervisor.
async fn close(stack: &TestStack, worker: &str, supervisor: &str, case: &str, reason: &str) {
    let path = format!("/v1/cases/{case}");
    let etag = etag_of(stack, worker, &path).await;
    let post = reqwest::Method::POST;
    let closure = format!("{path}/closure");
    let (status, etag, body) = with_if_match(
        stack,
        worker,
        post.clone(),
        &closure,
        &etag,
        json!({"reason": reason}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = with_if_match(
        stack,
        supervisor,
        post,
        &format!("{closure}/approve"),
        &etag,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Moves a referral with `If-Match`; returns the new ETag.
async fn referral_step(
    stack: &TestStack,
    token: &str,
    referral: &str,
    etag: &str,
    step: &str,
    body: Value,
) -> String {
    let (status, etag, body) = with_if_match(
        stack,
        token,
        reqwest::Method::POST,
        &format!("/v1/referrals/{referral}/{step}"),
        etag,
        body,
    )
    .await;
    assert_eq!(status, 200, "{step}: {body}");
    etag
}

/// The indicators as a user reads them over REST (JSON), polled until `done` holds.
async fn rest_indicators_until(
    stack: &TestStack,
    token: &str,
    organization: Uuid,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let response = stack
            .get(
                token,
                &format!("/v1/reports/indicators?organization_id={organization}"),
            )
            .await;
        assert_eq!(response.status(), 200);
        let report: Value = response.json().await.unwrap();
        if done(&report) {
            return report;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "indicators never reached the hand counts: {report:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A published table: its cells (labels joined by `/`, sorted; `None` when
/// suppressed) and its total.
type Published = (Vec<(String, Option<u64>)>, Option<u64>);

fn rest_table(report: &Value, name: &str) -> Published {
    let table = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|table| table["name"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {report:#}"));
    let mut cells: Vec<(String, Option<u64>)> = table["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cell| {
            let labels: Vec<&str> = cell["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|label| label.as_str().unwrap())
                .collect();
            (labels.join("/"), cell["value"].as_u64())
        })
        .collect();
    cells.sort();
    (cells, table["total"].as_u64())
}

/// `(value, base)` of a published measure; `None` when suppressed.
fn rest_measure(report: &Value, name: &str) -> (Option<f64>, Option<u64>) {
    let measure = report["measures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|measure| measure["name"] == name)
        .unwrap_or_else(|| panic!("no measure {name} in {report:#}"));
    (measure["value"].as_f64(), measure["base"].as_u64())
}

fn expected(cells: &[(&str, u64)]) -> Published {
    let mut cells: Vec<(String, Option<u64>)> = cells
        .iter()
        .map(|(labels, value)| ((*labels).to_owned(), Some(*value)))
        .collect();
    cells.sort();
    let total = cells.iter().filter_map(|(_, value)| *value).sum();
    (cells, Some(total))
}

async fn every_indicator_matches_a_hand_count(backend: Backend) {
    let Some((dir, mut settings)) = haven_e2e::settings(backend).await else {
        return;
    };
    settings.reporting.suppression_threshold = 2;
    let stack = TestStack::start_with(dir, settings).await;
    let start = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let today = start.date();
    let organization = Uuid::new_v4();
    let clinic = Uuid::new_v4();
    let shelter_ngo = Uuid::new_v4();
    let officer = stack.token_as("officer", &["admin", "intake_officer"], organization);
    let worker = stack.token_as("aysel", &["case_worker"], organization);
    let supervisor = stack.token_as("rashad", &["supervisor"], organization);
    let analyst = stack.token_as("analyst", &["analyst"], organization);
    let shelter_analyst = stack.token_as("planner", &["analyst"], shelter_ngo);

    let mut walked = Vec::new();
    for person in &TWELVE {
        walked.push(screen(&stack, &officer, start, person).await);
    }
    let cases: Vec<String> = walked.iter().filter_map(|one| one.case.clone()).collect();
    assert_eq!(cases.len(), 8);
    // The last two identified women were trafficked before: each is confirmed as the
    // same person as one of the two screened earlier.
    for (again, before) in [(6, 10), (7, 11)] {
        let confirmed = stack
            .post(
                &officer,
                &format!("/v1/screenings/{}/matches/confirm", walked[again].screening),
                json!({"person_id": walked[before].person}),
            )
            .await;
        assert_eq!(confirmed.status(), 201);
        let confirmed: Value = confirmed.json().await.unwrap();
        assert_eq!(confirmed["re_trafficked"], true);
    }

    // Cases 1 and 2: assessed twice (safety 2 → 4, 3 → 5), a delivered medical
    // service from a clinic and a delivered shelter stay of their own, a payment each
    // (100.00 and 50.50 AZN), then closed with their goals achieved.
    for (index, (first, latest), amount) in [(0, (2, 4), "100.00"), (1, (3, 5), "50.50")] {
        let case = &cases[index];
        move_stage(&stack, &worker, case, "assessment").await;
        for score in [first, latest] {
            create(
                &stack,
                &worker,
                &format!("/v1/cases/{case}/assessments"),
                json!({"kind": "individual", "scores": [{"domain": "safety", "score": score}]}),
            )
            .await;
        }
        for (kind, provider) in [("medical", clinic), ("shelter", organization)] {
            create(
                &stack,
                &worker,
                &format!("/v1/cases/{case}/services"),
                json!({"type": kind, "provider_organization_id": provider, "status": "delivered"}),
            )
            .await;
        }
        create(&stack, &worker, &format!("/v1/cases/{case}/payments"),
            json!({"amount": amount, "currency": "AZN", "paid_on": today.to_string(), "purpose": "rent"}))
        .await;
    }
    // Cases 5 and 6: assessment then plan; one assessment only (not an outcome), a
    // psychological service started and later delivered, and three follow-ups each:
    // one done (though due five days ago), one overdue, one upcoming.
    for case in &cases[4..6] {
        move_stage(&stack, &worker, case, "assessment").await;
        create(
            &stack,
            &worker,
            &format!("/v1/cases/{case}/assessments"),
            json!({"kind": "individual", "scores": [{"domain": "safety", "score": 1}]}),
        )
        .await;
        move_stage(&stack, &worker, case, "plan").await;
        let (etag, service) = create(&stack, &worker, &format!("/v1/cases/{case}/services"),
            json!({"type": "psychological", "provider_organization_id": organization, "status": "in_progress"}))
        .await;
        let (status, _, body) = with_if_match(
            &stack,
            &worker,
            reqwest::Method::PATCH,
            &format!(
                "/v1/cases/{case}/services/{}",
                service["id"].as_str().unwrap()
            ),
            &etag,
            json!({"status": "delivered"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let due = |days: i64| (today + time::Duration::days(days)).to_string();
        let (etag, done) = create(
            &stack,
            &worker,
            &format!("/v1/cases/{case}/follow_ups"),
            json!({"kind": "visit", "due_on": due(-5)}),
        )
        .await;
        let (status, _, body) = with_if_match(
            &stack,
            &worker,
            reqwest::Method::POST,
            &format!(
                "/v1/cases/{case}/follow_ups/{}/outcome",
                done["id"].as_str().unwrap()
            ),
            &etag,
            json!({"outcome": "completed"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        for days in [-3, 7] {
            create(
                &stack,
                &worker,
                &format!("/v1/cases/{case}/follow_ups"),
                json!({"kind": "call", "due_on": due(days)}),
            )
            .await;
        }
    }
    // Cases 7 and 8 stay new, with legal aid planned for one and started for the
    // other: neither is delivered.
    for (case, status) in [(&cases[6], "planned"), (&cases[7], "in_progress")] {
        create(&stack, &worker, &format!("/v1/cases/{case}/services"),
            json!({"type": "legal_aid", "provider_organization_id": organization, "status": status}))
        .await;
    }

    // Referrals to a shelter NGO's facility with four places. Cases 3 and 4: accepted,
    // started and completed (the stay is recorded as a delivered shelter service of
    // the NGO). Cases 5 and 6: accepted, holding a place. Cases 7 and 8: declined.
    // Cases 5 and 6 again: an answer due within seconds, never given.
    let admin = stack.token_as("directory-admin", &["admin"], shelter_ngo);
    let (_, _) = create(&stack, &admin, "/v1/organizations",
        json!({"id": shelter_ngo, "name": format!("Shelter NGO {shelter_ngo}"), "organization_type": "ngo"}))
    .await;
    let coordinator = stack.token_as("farida", &["referral_coordinator"], shelter_ngo);
    let (_, facility) = create(&stack, &coordinator, "/v1/facilities", json!({
        "name": "Shelter Sumqayıt", "settlement": "Sumqayıt", "service_types": ["shelter"], "capacity_total": 4}))
    .await;
    let refer = |case: &str, extra: Value| {
        let mut body = json!({"case_id": case, "facility_id": facility["id"], "service_type": "shelter",
            "purpose": "safe accommodation", "urgency": "routine"});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    for case in &cases[2..4] {
        let (etag, referral) =
            create(&stack, &worker, "/v1/referrals", refer(case, json!({}))).await;
        let id = referral["id"].as_str().unwrap();
        let etag = referral_step(&stack, &coordinator, id, &etag, "accept", json!({})).await;
        let etag = referral_step(&stack, &coordinator, id, &etag, "start", json!({})).await;
        referral_step(
            &stack,
            &coordinator,
            id,
            &etag,
            "complete",
            json!({"outcome": "stayed, then moved to family"}),
        )
        .await;
    }
    for case in &cases[4..6] {
        // The outcome is due tomorrow: not overdue.
        let tomorrow = today + time::Duration::days(1);
        let body = refer(case, json!({"outcome_due_on": tomorrow.to_string()}));
        let (etag, referral) = create(&stack, &worker, "/v1/referrals", body).await;
        let id = referral["id"].as_str().unwrap();
        referral_step(&stack, &coordinator, id, &etag, "accept", json!({})).await;
    }
    for case in &cases[6..8] {
        let (etag, referral) =
            create(&stack, &worker, "/v1/referrals", refer(case, json!({}))).await;
        let id = referral["id"].as_str().unwrap();
        referral_step(
            &stack,
            &coordinator,
            id,
            &etag,
            "decline",
            json!({"reason": "no place for this need"}),
        )
        .await;
    }
    let answer_by = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    for case in &cases[4..6] {
        create(
            &stack,
            &worker,
            "/v1/referrals",
            refer(case, json!({"accept_by": rfc3339(answer_by)})),
        )
        .await;
    }
    let facility_now: Value = stack
        .get(
            &coordinator,
            &format!("/v1/facilities/{}", facility["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(facility_now["capacity_free"], 2, "two places held");

    // The completed stays reach the cases before cases 3 and 4 close, referred
    // elsewhere.
    for case in &cases[2..4] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let services: Value = stack
                .get(&worker, &format!("/v1/cases/{case}/services"))
                .await
                .json()
                .await
                .unwrap();
            if services["items"].as_array().unwrap().len() == 1 {
                assert_eq!(services["items"][0]["status"], "delivered");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{services}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for (case, reason) in [
        (&cases[0], "goals_achieved"),
        (&cases[1], "goals_achieved"),
        (&cases[2], "referred_elsewhere"),
        (&cases[3], "referred_elsewhere"),
    ] {
        close(&stack, &worker, &supervisor, case, reason).await;
    }

    // Wait until every event is counted (reporting's own exact figures) and the answer
    // deadline has passed.
    let facts = counted_until(&stack, organization, |facts| {
        raw_table(facts, "victims_re_trafficked").1 == Some(10)
            && raw_table(facts, "closure_reasons").1 == Some(4)
            && raw_table(facts, "services_delivered_by_type").1 == Some(8)
            && raw_table(facts, "follow_ups").1 == Some(6)
            && raw_table(facts, "referrals_by_status").0.len() == 4
            && raw_table(facts, "referrals_overdue").1 == Some(2)
            && facts.cash.first().is_some_and(|(_, _, cases)| cases.n == 2)
            && facts
                .outcomes
                .first()
                .is_some_and(|(_, _, _, cases)| cases.n == 2)
    })
    .await;
    let report = rest_indicators_until(&stack, &analyst, organization, |_| true).await;
    assert_eq!(report["threshold"], 2);
    assert_eq!(report["max_perturbation"], 2);
    // Every table and measure is checked below: a new one needs a hand count here.
    let names = |key: &str| {
        let mut names: Vec<String> = report[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names("tables"),
        [
            "cases_by_stage",
            "cases_by_status",
            "closure_reasons",
            "follow_ups",
            "places_held_by_month",
            "referrals_by_status",
            "referrals_overdue",
            "screenings_by_source",
            "services_delivered_by_provider",
            "services_delivered_by_type",
            "victims_by_age_band",
            "victims_by_citizenship",
            "victims_by_exploitation_type",
            "victims_by_means_of_control",
            "victims_by_sex",
            "victims_re_trafficked",
        ]
    );
    assert_eq!(
        names("measures"),
        [
            "cash_assistance_total_AZN",
            "days_referral_to_acceptance_median",
            "days_referral_to_acceptance_p90",
            "days_screening_to_first_service_median",
            "days_screening_to_first_service_p90",
            "days_screening_to_identification_median",
            "days_screening_to_identification_p90",
            "outcome_safety_first_mean",
            "outcome_safety_latest_mean",
            "referral_acceptance_rate",
        ]
    );
    // What a reader gets is exactly the publication of reporting's figures, table by
    // table: perturbed, and suppressed below the threshold.
    for name in names("tables") {
        assert_eq!(
            rest_table(&report, &name),
            published_table(&facts, &name, 2),
            "{name}"
        );
    }
    // The figures themselves, exact, against the hand counts.
    let table = |name: &str| raw_table(&facts, name);

    // Screenings: police 8 (six identified, two presumed), hotline 2, NGO outreach 2.
    assert_eq!(
        table("screenings_by_source"),
        expected(&[("hotline", 2), ("ngo_outreach", 2), ("police", 8)])
    );
    // Victims: 8 identified (6 women, 2 men) and 2 presumed women; the two only
    // screened are no victims.
    assert_eq!(
        table("victims_by_sex"),
        expected(&[
            ("identified/female", 6),
            ("identified/male", 2),
            ("presumed/female", 2)
        ])
    );
    // Age at screening: 19 → 18--20, 33 → 30--38, 44 → 39--47, 25 → 24--26.
    assert_eq!(
        table("victims_by_age_band"),
        expected(&[
            ("identified/18--20", 2),
            ("identified/30--38", 4),
            ("identified/39--47", 2),
            ("presumed/24--26", 2)
        ])
    );
    assert_eq!(
        table("victims_by_citizenship"),
        expected(&[
            ("identified/AZ", 6),
            ("identified/UZ", 2),
            ("presumed/AZ", 2)
        ])
    );
    // Multi-valued: two women suffered both forms, so the cells add up to 12 while
    // the total counts the 10 victims once; the presumed two have none recorded.
    let mut exploitation = expected(&[
        ("forced_labour", 4),
        ("sexual_exploitation", 6),
        ("unknown", 2),
    ]);
    exploitation.1 = Some(10);
    assert_eq!(table("victims_by_exploitation_type"), exploitation);
    let mut means = expected(&[
        ("debt_bondage", 2),
        ("threats", 6),
        ("unknown", 2),
        ("withheld_documents", 2),
    ]);
    means.1 = Some(10);
    assert_eq!(table("victims_by_means_of_control"), means);
    assert_eq!(
        table("victims_re_trafficked"),
        expected(&[("no", 8), ("yes", 2)])
    );

    // Cases: 1-2 closed (goals achieved), 3-4 closed referred elsewhere, 5-6 active in
    // plan, 7-8 active and new.
    assert_eq!(
        table("cases_by_status"),
        expected(&[("active", 4), ("closed", 2), ("closed_referred", 2)])
    );
    assert_eq!(
        table("cases_by_stage"),
        expected(&[("closed", 4), ("new", 2), ("plan", 2)])
    );
    assert_eq!(
        table("closure_reasons"),
        expected(&[("goals_achieved", 2), ("referred_elsewhere", 2)])
    );

    // Services delivered: medical 2 (the clinic), shelter 2 (own) + 2 (the NGO, from
    // the completed referrals), psychological 2 (own, delivered after starting).
    // Planned and started legal aid is not delivered.
    assert_eq!(
        table("services_delivered_by_type"),
        expected(&[("medical", 2), ("psychological", 2), ("shelter", 4)])
    );
    assert_eq!(
        table("services_delivered_by_provider"),
        expected(&[
            (&clinic.to_string(), 2),
            (&organization.to_string(), 4),
            (&shelter_ngo.to_string(), 2)
        ])
    );

    // Referrals: completed 2, accepted 2, declined 2, requested 2. Answered: 4 accepted
    // at some point + 2 declined = 6, so 4/6 accepted. All accepted the day they were
    // sent: 0 days. The two never answered are past their deadline; the accepted two
    // have their outcome due tomorrow. No outcome can be overdue here: the API refuses
    // an outcome date in the past, so that cell is absent.
    assert_eq!(
        table("referrals_by_status"),
        expected(&[
            ("accepted", 2),
            ("completed", 2),
            ("declined", 2),
            ("requested", 2)
        ])
    );
    assert_eq!(table("referrals_overdue"), expected(&[("acceptance", 2)]));
    // Measures are rounded (rates to 0.05, days to 5, money to two significant
    // figures, scores to 0.1) and their bases perturbed like counts.
    let measure = |name: &str| rest_measure(&report, name);
    let base = |count| Some(perturb(count, 2));
    assert_eq!(facts.referrals_answered.n, 6);
    assert_eq!(facts.referrals_accepted, 4);
    assert_eq!(
        measure("referral_acceptance_rate"),
        (Some(0.65), base(facts.referrals_answered))
    );
    assert_eq!(facts.days_to_accept.days, [0.0; 4]);
    let accept = base(facts.days_to_accept.base);
    assert_eq!(
        measure("days_referral_to_acceptance_median"),
        (Some(0.0), accept)
    );
    assert_eq!(
        measure("days_referral_to_acceptance_p90"),
        (Some(0.0), accept)
    );

    // Follow-ups of cases 5 and 6: done 2, overdue 2, upcoming 2.
    assert_eq!(
        table("follow_ups"),
        expected(&[("done", 2), ("overdue", 2), ("upcoming", 2)])
    );

    // Durations, nearest rank over 8 identified persons: identification
    // [1, 2, 3, 4, 5, 6, 7, 20] → median (4th) 4, published 5, p90 (8th) 20; first
    // service [10, 10, 12, 12, 20, 20, 30, 30] → median 12, published 10, p90 30.
    assert_eq!(
        facts.days_to_identification.days,
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 20.0]
    );
    assert_eq!(
        facts.days_to_first_service.days,
        [10.0, 10.0, 12.0, 12.0, 20.0, 20.0, 30.0, 30.0]
    );
    let identified = base(facts.days_to_identification.base);
    let served = base(facts.days_to_first_service.base);
    assert_eq!(
        measure("days_screening_to_identification_median"),
        (Some(5.0), identified)
    );
    assert_eq!(
        measure("days_screening_to_identification_p90"),
        (Some(20.0), identified)
    );
    assert_eq!(
        measure("days_screening_to_first_service_median"),
        (Some(10.0), served)
    );
    assert_eq!(
        measure("days_screening_to_first_service_p90"),
        (Some(30.0), served)
    );

    // Cash 100.00 + 50.50 over 2 cases (published 150); safety of the twice-assessed
    // cases: first (2 + 3) / 2, latest (4 + 5) / 2. The once-assessed cases 5 and 6
    // are no outcome.
    let (_, cash, paid) = facts.cash[0].clone();
    assert_eq!((cash, paid.n), (15_050, 2));
    assert_eq!(
        measure("cash_assistance_total_AZN"),
        (Some(150.0), base(paid))
    );
    let (_, first, latest, assessed) = facts.outcomes[0].clone();
    assert_eq!((first, latest, assessed.n), (2.5, 4.5, 2));
    assert_eq!(
        measure("outcome_safety_first_mean"),
        (Some(2.5), base(assessed))
    );
    assert_eq!(
        measure("outcome_safety_latest_mean"),
        (Some(4.5), base(assessed))
    );

    // Places are held in the NGO's facilities, not the referring organisation's.
    assert_eq!(table("places_held_by_month"), (Vec::new(), Some(0)));
    // For the NGO: 4 acceptances held a place, the 2 completed stays freed theirs, so
    // 2 are held at the end of this month (the months before had none).
    let ngo = counted_until(&stack, shelter_ngo, |facts| {
        raw_table(facts, "places_held_by_month").1 == Some(2)
    })
    .await;
    let now = time::OffsetDateTime::now_utc();
    let month = format!("{}-{:02}", now.year(), now.month() as u8);
    assert_eq!(
        raw_table(&ngo, "places_held_by_month"),
        expected(&[(&month, 2)])
    );
    let held = rest_indicators_until(&stack, &shelter_analyst, shelter_ngo, |_| true).await;
    assert_eq!(
        rest_table(&held, "places_held_by_month"),
        published_table(&ngo, "places_held_by_month", 2)
    );

    // The headline summary agrees.
    let summary = stack
        .summary_until(
            &analyst,
            &format!("?organization_id={organization}"),
            |summary| summary["cases_open"] == 4,
        )
        .await;
    assert_eq!(summary["screenings_total"], 12);
    assert_eq!(summary["identified_total"], 8);
    assert_eq!(summary["cases_total"], 8);
    assert_eq!(summary["re_trafficked_total"], 2);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_indicator_matches_a_hand_count() {
    every_indicator_matches_a_hand_count(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_indicator_matches_a_hand_count() {
    every_indicator_matches_a_hand_count(Backend::Postgres).await;
}
