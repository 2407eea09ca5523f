//! Reporting at scale: how fast the projections catch up on events (in batches of up
//! to 256 per feed, each batch one transaction with its checkpoint and counters, as
//! the followers do), and how long the indicator queries take over what they built, on
//! SQLite and on Postgres.
//!
//! `cargo bench -p haven-reporting --bench projections` applies 1,000,000 events
//! (`HAVEN_BENCH_EVENTS` for another number; ~12 events per person). Postgres needs
//! `initdb`/`postgres`; without them only SQLite is measured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use uuid::Uuid;

use haven_config::Settings;
use haven_proto::common::v1::Event;
use haven_reporting::projections::{self, ReportScope};

/// Timed queries per scope, after a few untimed ones: enough that p99 is not simply
/// the slowest run, which on a shared machine is noise.
const QUERY_RUNS: usize = 200;
const WARM_UP_RUNS: usize = 5;

fn event(
    source: &str,
    sequence: u64,
    kind: &str,
    aggregate: Uuid,
    organization: Uuid,
    payload: serde_json::Value,
) -> Event {
    Event {
        sequence,
        event_id: Uuid::new_v4().to_string(),
        source: source.into(),
        event_type: kind.into(),
        aggregate_id: aggregate.to_string(),
        organization_id: organization.to_string(),
        payload_json: payload.to_string(),
        occurred_at: Some(haven_proto::timestamp(time::OffsetDateTime::now_utc())),
        traceparent: String::new(),
    }
}

/// About twelve events per person over the three feeds, for ten organisations.
fn history(events: usize) -> Vec<Event> {
    let organizations: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    let provider = Uuid::new_v4();
    let mut sequences = [0_u64; 3];
    let mut out = Vec::with_capacity(events);
    let mut person = 0_usize;
    while out.len() < events {
        let organization = organizations[person % organizations.len()];
        let screening = Uuid::new_v4();
        let case = Uuid::new_v4();
        let referral = Uuid::new_v4();
        let mut push = |feed: usize, kind: &str, aggregate: Uuid, payload: serde_json::Value| {
            sequences[feed] += 1;
            let source = ["intake", "case", "referral"][feed];
            out.push(event(
                source,
                sequences[feed],
                kind,
                aggregate,
                organization,
                payload,
            ));
        };
        let screened_at = 1_704_067_200 + (person as i64 % 700) * 86_400;
        push(
            0,
            "screening.created",
            screening,
            serde_json::json!({
            "referral_source": (["police", "hotline", "ngo_outreach", "labour_inspection"][person % 4]), "is_minor": person.is_multiple_of(9),
            "screened_at": screened_at, "gender": (["female", "male"][person % 2]), "birth_year": 1970 + (person % 40) as i64,
            "citizenships": [(["az", "uz", "tj", "np"][person % 4])], "exploitation_types": [(["forced_labour", "sexual_exploitation"][person % 2])],
            "means_of_control": ["threats", "debt_bondage"], "settlement": (["Bakı", "Gəncə", "Lənkəran", "Şəki"][person % 4])}),
        );
        push(
            0,
            "screening.consent_recorded",
            screening,
            serde_json::json!({"purpose": "reporting", "given": !person.is_multiple_of(5)}),
        );
        push(
            0,
            "screening.decision_recorded",
            screening,
            serde_json::json!({"stage": "identified", "decided_at": screened_at + 172_800}),
        );
        push(
            0,
            "screening.case_opened",
            screening,
            serde_json::json!({"case_id": case}),
        );
        push(
            1,
            "case.opened",
            case,
            serde_json::json!({"case_id": case, "screening_id": screening, "status": "active", "stage": "new"}),
        );
        push(
            1,
            "case.stage_changed",
            case,
            serde_json::json!({"from": "new", "to": "assessment", "status": "active"}),
        );
        push(
            1,
            "case.assessed",
            case,
            serde_json::json!({"scores": {"safety": 2, "housing": 1, "health": 3}}),
        );
        push(
            1,
            "case.service_added",
            case,
            serde_json::json!({"service_id": Uuid::new_v4(), "type": (["shelter", "medical", "legal_aid"][person % 3]), "provider_organization_id": provider, "status": "delivered"}),
        );
        push(
            1,
            "case.payment_recorded",
            case,
            serde_json::json!({"payment_id": Uuid::new_v4(), "amount": "75.00", "currency": "AZN"}),
        );
        push(
            1,
            "case.assessed",
            case,
            serde_json::json!({"scores": {"safety": 4, "housing": 3, "health": 4}}),
        );
        push(
            2,
            "referral.requested",
            referral,
            serde_json::json!({"referral_id": referral, "case_id": case, "from_organization_id": organization, "to_organization_id": provider, "service_type": "shelter", "status": "requested"}),
        );
        push(
            2,
            "referral.accepted",
            referral,
            serde_json::json!({"status": "accepted"}),
        );
        person += 1;
    }
    out.truncate(events);
    out
}

async fn run(backend: &str, settings: Settings, events: &[Event]) {
    let database = haven_reporting::connect(&settings).await.unwrap();
    let keys =
        haven_reporting::RecordKeys::load(&haven_auth::keys::keys_dir(&settings.data_dir)).unwrap();
    let projections = projections::open(database.clone(), keys);
    // A catch-up: each feed's events arrive in batches, the feeds taking turns.
    let feeds: Vec<Vec<Event>> = ["intake", "case", "referral"]
        .into_iter()
        .map(|source| {
            events
                .iter()
                .filter(|event| event.source == source)
                .cloned()
                .collect()
        })
        .collect();
    let started = Instant::now();
    let mut chunks: Vec<_> = feeds
        .iter()
        .map(|feed| feed.chunks(haven_events::consumer::MAX_BATCH))
        .collect();
    loop {
        let mut any = false;
        for chunk in chunks.iter_mut().filter_map(Iterator::next) {
            projections.apply_batch(chunk).await.unwrap();
            any = true;
        }
        if !any {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{backend}: {} events caught up in {elapsed:.1} s: {:.0} events/s",
        events.len(),
        events.len() as f64 / elapsed
    );
    let organization = uuid::Uuid::parse_str(&events[0].organization_id).unwrap();
    let scopes = [
        ("all organisations, all time", ReportScope::default()),
        (
            "one organisation, one year",
            ReportScope {
                from: Some(time::macros::datetime!(2024-01-01 0:00 UTC)),
                until: Some(time::macros::datetime!(2025-01-01 0:00 UTC)),
                organization_id: Some(organization),
                region: None,
            },
        ),
    ];
    for (name, scope) in scopes {
        for _ in 0..WARM_UP_RUNS {
            projections.facts(&scope).await.unwrap();
        }
        let mut samples = Vec::with_capacity(QUERY_RUNS);
        for _ in 0..QUERY_RUNS {
            let started = Instant::now();
            let facts = projections.facts(&scope).await.unwrap();
            samples.push(started.elapsed());
            assert!(!facts.tables.is_empty());
        }
        samples.sort();
        let percentile =
            |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
        println!(
            "  indicators, {name:<30} p50 {:>8.1} ms   p99 {:>8.1} ms",
            percentile(0.5).as_secs_f64() * 1e3,
            percentile(0.99).as_secs_f64() * 1e3
        );
    }
    database.close().await;
}

fn main() {
    let count = std::env::var("HAVEN_BENCH_EVENTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    let events = history(count);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "reporting projections: {count} events, then {QUERY_RUNS} indicator queries per scope"
        );
        let (dir, settings) = haven_storage::testing::sqlite_settings();
        run("sqlite", settings, &events).await;
        // Keep the SQLite files to look at query plans: HAVEN_BENCH_KEEP=1.
        if std::env::var_os("HAVEN_BENCH_KEEP").is_some() {
            println!("sqlite files kept in {}", dir.keep().display());
        }
        match haven_storage::testing::postgres_settings().await {
            Some((_dir, settings)) => run("postgres", settings, &events).await,
            None => println!("postgres: not available on this machine, skipped"),
        }
    });
}
