//! Catchment search over 10,000 facilities, on SQLite and on Postgres: p50/p99 of one
//! search (candidates from the database by service type and bounding box, exact
//! great-circle distance, profile filter, nearest first), and of the coverage report.
//!
//! `cargo bench -p haven-referral --bench facility_search` (`HAVEN_BENCH_FACILITIES`
//! for another size). Postgres needs `initdb`/`postgres`; without them only SQLite
//! is measured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Instant;

use sqlx::QueryBuilder;
use time::OffsetDateTime;
use uuid::Uuid;

use haven_config::Settings;
use haven_events::EventSignal;
use haven_referral::crypto::ReferralCrypto;
use haven_referral::domain::{OrganizationType, Profile, SERVICE_TYPES, nearest};
use haven_referral::geo::Gazetteer;
use haven_referral::store::{self, DirectoryStore, NewOrganization};
use haven_storage::Database;

const ITERATIONS: usize = 300;
const BATCH: usize = 500;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % below
    }

    fn unit(&mut self) -> f64 {
        self.next(1_000_000) as f64 / 1_000_000.0
    }
}

struct Row {
    id: Uuid,
    latitude: f64,
    longitude: f64,
    capacity: i64,
    free: i64,
    services: Vec<&'static str>,
}

/// Facilities scattered around the gazetteer's settlements (within ~60 km of one).
fn rows(count: usize, gazetteer: &Gazetteer) -> Vec<Row> {
    let mut random = Lcg(11);
    let settlements = gazetteer.settlements();
    (0..count)
        .map(|_| {
            let near = settlements[random.next(settlements.len())].point;
            let capacity = random.next(30) as i64;
            let mut services = vec![SERVICE_TYPES[random.next(SERVICE_TYPES.len())]];
            if random.next(3) == 0 {
                services.push("shelter");
            }
            services.dedup();
            Row {
                id: Uuid::now_v7(),
                latitude: near.latitude + (random.unit() - 0.5) * 1.0,
                longitude: near.longitude + (random.unit() - 0.5) * 1.2,
                capacity,
                free: if capacity == 0 {
                    0
                } else {
                    random.next(capacity as usize + 1) as i64
                },
                services,
            }
        })
        .collect()
}

macro_rules! load {
    ($pool:expr, $organization:expr, $rows:expr) => {{
        let now = OffsetDateTime::now_utc();
        for chunk in $rows.chunks(BATCH) {
            let mut tx = $pool.begin().await.unwrap();
            QueryBuilder::new(
                "INSERT INTO facilities (id, organization_id, name, address, settlement, latitude, longitude, capacity_total, \
                 capacity_free, accepts, languages, opening_hours, contact_phone, contact_email, active, version, created_by, created_at) ",
            )
            .push_values(chunk, |mut row, facility| {
                row.push_bind(facility.id)
                    .push_bind($organization)
                    .push_bind("Bench facility")
                    .push_bind("")
                    .push_bind("bench")
                    .push_bind(facility.latitude)
                    .push_bind(facility.longitude)
                    .push_bind(facility.capacity)
                    .push_bind(facility.free)
                    .push_bind("{\"genders\":[],\"age_groups\":[],\"minors\":false,\"families\":true}")
                    .push_bind("[\"az\",\"ru\"]")
                    .push_bind("")
                    .push_bind("")
                    .push_bind("")
                    .push_bind(true)
                    .push_bind(1_i64)
                    .push_bind("bench")
                    .push_bind(now);
            })
            .build()
            .execute(&mut *tx)
            .await
            .unwrap();
            let services: Vec<(Uuid, &str)> = chunk
                .iter()
                .flat_map(|facility| facility.services.iter().map(move |kind| (facility.id, *kind)))
                .collect();
            QueryBuilder::new("INSERT INTO facility_services (facility_id, service_type) ")
                .push_values(services, |mut row, (id, kind)| {
                    row.push_bind(id).push_bind(kind);
                })
                .build()
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        sqlx::query("ANALYZE").execute($pool).await.unwrap();
    }};
}

fn report(name: &str, mut samples: Vec<std::time::Duration>, found: usize) {
    samples.sort();
    let percentile = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "  {name:<44} p50 {:>7.2} ms   p99 {:>7.2} ms   ({found} found)",
        percentile(0.50).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
    );
}

async fn run(backend: &str, settings: Settings, count: usize) {
    let database = haven_referral::connect(&settings).await.unwrap();
    let crypto = ReferralCrypto::load(&haven_auth::keys::keys_dir(&settings.data_dir)).unwrap();
    let store: Arc<dyn DirectoryStore> =
        store::open(database.clone(), EventSignal::default(), crypto);
    let organization = store
        .create_organization(
            NewOrganization {
                id: None,
                name: "Bench network".into(),
                organization_type: OrganizationType::Ngo,
                settlement: "Bakı".into(),
                created_by: "bench".into(),
            },
            None,
        )
        .await
        .unwrap()
        .record
        .id;
    let gazetteer = Gazetteer::default_settlements();
    let data = rows(count, &gazetteer);
    let started = Instant::now();
    match &database {
        Database::Sqlite(pool) => load!(pool, organization, data),
        Database::Postgres(pool) => load!(pool, organization, data),
    }
    println!(
        "{backend}: {count} facilities loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let searches = [
        (
            "shelter within 150 km of Baku",
            "shelter",
            "Bakı",
            150.0,
            Profile::default(),
        ),
        (
            "shelter within 150 km of Ganja, woman 34",
            "shelter",
            "Gəncə",
            150.0,
            Profile {
                gender: Some("female".into()),
                age: Some(34),
                ..Profile::default()
            },
        ),
        (
            "legal aid within 50 km of Lankaran",
            "legal_aid",
            "Lənkəran",
            50.0,
            Profile::default(),
        ),
        (
            "medical within 300 km of Shaki, speaks ru",
            "medical",
            "Şəki",
            300.0,
            Profile {
                language: Some("ru".into()),
                ..Profile::default()
            },
        ),
    ];
    for (name, kind, settlement, radius, profile) in searches {
        let center = gazetteer.find(settlement).unwrap().point;
        let mut samples = Vec::with_capacity(ITERATIONS);
        let mut found = 0;
        for _ in 0..ITERATIONS {
            let started = Instant::now();
            let candidates = store
                .facilities_in(kind, center.bounding_box(radius), false)
                .await
                .unwrap();
            let matches = nearest(candidates, center, radius, &profile, 20);
            samples.push(started.elapsed());
            found = matches.len();
        }
        report(name, samples, found);
    }
    let mut samples = Vec::with_capacity(ITERATIONS);
    let mut uncovered = 0;
    for _ in 0..ITERATIONS / 10 {
        let started = Instant::now();
        let points = store.facility_points("vocational_training").await.unwrap();
        uncovered = gazetteer
            .settlements()
            .iter()
            .filter(|settlement| {
                !points
                    .iter()
                    .any(|(_, point)| settlement.point.distance_km(*point) <= 150.0)
            })
            .count();
        samples.push(started.elapsed());
    }
    report(
        "coverage report (vocational training, 150 km)",
        samples,
        uncovered,
    );
    database.close().await;
}

fn main() {
    let count = std::env::var("HAVEN_BENCH_FACILITIES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("facility search, {ITERATIONS} runs each, nearest 20 with free capacity");
        let (_dir, settings) = haven_storage::testing::sqlite_settings();
        run("sqlite", settings, count).await;
        match haven_storage::testing::postgres_settings().await {
            Some((_dir, settings)) => run("postgres", settings, count).await,
            None => println!("postgres: not available on this machine, skipped"),
        }
    });
}
