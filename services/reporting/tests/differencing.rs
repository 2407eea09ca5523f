//! The differencing attack, played against the published indicators on SQLite and
//! on Postgres: subtract every published cell of a scope from the same cell of a
//! wider scope (a period, an organisation, a region, and their combinations) and see
//! whether the difference pins down a count from 1 to 10, the persons suppression is
//! there to protect.
//!
//! Against exact counts (suppression alone, what reporting published before
//! perturbation) the attack recovers such counts; against perturbed counts it must
//! recover none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use haven_config::Settings;
use haven_proto::common::v1::Event;
use haven_reporting::projections::{self, Facts, Projections, ReportScope};
use haven_reporting::publication::{Figure, MAX_PERTURBATION, PublishedTable, publish};

const THRESHOLD: u64 = 11;

async fn setup(settings: &Settings) -> Arc<dyn Projections> {
    let keys =
        haven_reporting::RecordKeys::load(&haven_auth::keys::keys_dir(&settings.data_dir)).unwrap();
    projections::open(haven_reporting::connect(settings).await.unwrap(), keys)
}

/// A small deterministic generator.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }

    fn pick<'a>(&mut self, weighted: &[(&'a str, u64)]) -> &'a str {
        let total: u64 = weighted.iter().map(|(_, weight)| weight).sum();
        let mut at = self.next(total);
        for (value, weight) in weighted {
            if at < *weight {
                return value;
            }
            at -= weight;
        }
        weighted[0].0
    }
}

const REGIONS: [(&str, u64); 4] = [("Bakı", 50), ("Gəncə", 25), ("Şəki", 15), ("Lənkəran", 10)];

/// `people` screened persons over two years in three organisations and four regions,
/// most of them presumed or identified victims: the intake feed.
fn population(people: usize, organizations: &[Uuid; 3]) -> Vec<Event> {
    let mut random = Lcg(2026);
    let start = datetime!(2025-01-01 08:00 UTC);
    let mut events = Vec::new();
    let mut push = |kind: &str,
                    aggregate: Uuid,
                    organization: Uuid,
                    at: OffsetDateTime,
                    payload: serde_json::Value| {
        let sequence = events.len() as u64 + 1;
        events.push(Event {
            sequence,
            event_id: Uuid::new_v4().to_string(),
            source: "intake".into(),
            event_type: kind.into(),
            aggregate_id: aggregate.to_string(),
            organization_id: organization.to_string(),
            payload_json: payload.to_string(),
            occurred_at: Some(haven_proto::timestamp(at)),
            traceparent: String::new(),
        });
    };
    for _ in 0..people {
        let organization = organizations[random.next(3) as usize];
        let screened_at = start + time::Duration::hours(random.next(2 * 365 * 24) as i64);
        let screening = Uuid::new_v4();
        let mut exploitation = vec![random.pick(&[
            ("forced_labour", 50),
            ("sexual_exploitation", 35),
            ("domestic_servitude", 10),
            ("forced_begging", 5),
        ])];
        if random.next(5) == 0 {
            exploitation.push("forced_criminality");
        }
        push(
            "screening.created",
            screening,
            organization,
            screened_at,
            serde_json::json!({
                "referral_source": random.pick(&[("police", 40), ("hotline", 30), ("ngo_outreach", 20), ("labour_inspection", 10)]),
                "screened_at": screened_at.unix_timestamp(),
                "gender": random.pick(&[("female", 70), ("male", 30)]),
                "birth_year": 1960 + random.next(50) as i64,
                "citizenships": [random.pick(&[("az", 80), ("uz", 8), ("np", 6), ("tj", 4), ("bd", 2)])],
                "settlement": random.pick(&REGIONS),
                "exploitation_types": exploitation,
            }),
        );
        let stage = random.pick(&[("identified", 60), ("presumed_victim", 25), ("", 15)]);
        if !stage.is_empty() {
            let decided_at = screened_at + time::Duration::days(random.next(40) as i64);
            push(
                "screening.decision_recorded",
                screening,
                organization,
                decided_at,
                serde_json::json!({"stage": stage, "decided_at": decided_at.unix_timestamp()}),
            );
        }
    }
    events
}

/// One scope's filters: period, organisation, region (`None`: any).
type Filters = (Option<usize>, Option<usize>, Option<usize>);

const PERIODS: [(OffsetDateTime, OffsetDateTime); 4] = [
    (
        datetime!(2025-01-01 00:00 UTC),
        datetime!(2027-01-01 00:00 UTC),
    ),
    (
        datetime!(2025-01-01 00:00 UTC),
        datetime!(2026-01-01 00:00 UTC),
    ),
    (
        datetime!(2026-01-01 00:00 UTC),
        datetime!(2027-01-01 00:00 UTC),
    ),
    (
        datetime!(2025-04-01 00:00 UTC),
        datetime!(2025-10-01 00:00 UTC),
    ),
];

fn scope_of((period, organization, region): Filters, organizations: &[Uuid; 3]) -> ReportScope {
    ReportScope {
        from: period.map(|period| PERIODS[period].0),
        until: period.map(|period| PERIODS[period].1),
        organization_id: organization.map(|index| organizations[index]),
        region: region.map(|index| REGIONS[index].0.to_owned()),
    }
}

/// Whether every record of scope `narrow` is in scope `wide` too.
fn within(narrow: Filters, wide: Filters) -> bool {
    let period_within = match (narrow.0, wide.0) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(narrow), Some(wide)) => {
            PERIODS[wide].0 <= PERIODS[narrow].0 && PERIODS[narrow].1 <= PERIODS[wide].1
        }
    };
    let same_or_any = |narrow: Option<usize>, wide: Option<usize>| wide.is_none() || narrow == wide;
    narrow != wide
        && period_within
        && same_or_any(narrow.1, wide.1)
        && same_or_any(narrow.2, wide.2)
}

/// What a reader can tell about a true count from what is shown, when counts are
/// shown at most `bound` away from the truth: its smallest and largest possible
/// values (`None`: nothing, the cell was withheld to protect another).
fn possible(figure: Option<Figure>, bound: u64) -> Option<(u64, u64)> {
    match figure {
        // A cell not in the table is empty.
        None | Some(Figure::Shown(0)) => Some((0, 0)),
        Some(Figure::Shown(shown)) => {
            Some((shown.saturating_sub(bound).max(THRESHOLD), shown + bound))
        }
        Some(Figure::Small) => Some((1, THRESHOLD - 1)),
        Some(Figure::Complementary) => None,
    }
}

/// Every figure of a report, by table and labels (a table's total as `total`).
type Figures = BTreeMap<(String, Vec<String>), Figure>;

/// The [`Figures`] of published tables.
fn figures(tables: &[PublishedTable]) -> Figures {
    let mut figures = BTreeMap::new();
    for table in tables {
        for (labels, figure) in &table.cells {
            figures.insert((table.name.to_owned(), labels.clone()), *figure);
        }
        figures.insert(
            (table.name.to_owned(), vec!["total".to_owned()]),
            table.total,
        );
    }
    figures
}

/// The tables as published today.
fn perturbed(facts: &Facts) -> Vec<PublishedTable> {
    facts
        .tables
        .iter()
        .cloned()
        .map(|table| publish(table, THRESHOLD))
        .collect()
}

/// The tables as published with suppression alone: every figure shown is exact.
fn exact(facts: &Facts) -> Vec<PublishedTable> {
    facts
        .tables
        .iter()
        .cloned()
        .map(|table| {
            let counts: Vec<u64> = table.cells.iter().map(|(_, count)| count.n).collect();
            let total = table.total.n;
            let mut published = publish(table, THRESHOLD);
            for ((_, figure), count) in published.cells.iter_mut().zip(counts) {
                if let Figure::Shown(shown) = figure {
                    *shown = count;
                }
            }
            if let Figure::Shown(shown) = &mut published.total {
                *shown = total;
            }
            published
        })
        .collect()
}

/// How many differences of a wide and a narrow scope's figures pin a count from 1
/// to 10 down exactly, with figures shown at most `bound` from the truth; and how
/// many differences were taken.
fn attack(reports: &[(Filters, Figures)], bound: u64) -> (usize, usize) {
    let (mut recovered, mut tried) = (0, 0);
    for (wide_filters, wide) in reports {
        for (narrow_filters, narrow) in reports {
            if !within(*narrow_filters, *wide_filters) {
                continue;
            }
            for (cell, figure) in wide {
                let (Some(whole), Some(part)) = (
                    possible(Some(*figure), bound),
                    possible(narrow.get(cell).copied(), bound),
                ) else {
                    continue;
                };
                tried += 1;
                // The persons in the wide scope but not the narrow one.
                let lowest = whole.0.saturating_sub(part.1);
                let highest = whole.1.saturating_sub(part.0);
                if lowest == highest && (1..THRESHOLD).contains(&lowest) {
                    recovered += 1;
                }
            }
        }
    }
    (recovered, tried)
}

async fn differencing_overlapping_scopes_recovers_no_small_count(
    projections: Arc<dyn Projections>,
) {
    let organizations = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
    let events = population(1_500, &organizations);
    for batch in events.chunks(200) {
        projections.apply_batch(batch).await.unwrap();
    }
    let mut every: Vec<Filters> = Vec::new();
    for period in std::iter::once(None).chain((0..PERIODS.len()).map(Some)) {
        for organization in std::iter::once(None).chain((0..3).map(Some)) {
            for region in std::iter::once(None).chain((0..REGIONS.len()).map(Some)) {
                every.push((period, organization, region));
            }
        }
    }
    let mut published = Vec::new();
    let mut exactly = Vec::new();
    for filters in &every {
        let facts = projections
            .facts(&scope_of(*filters, &organizations))
            .await
            .unwrap();
        published.push((*filters, figures(&perturbed(&facts))));
        exactly.push((*filters, figures(&exact(&facts))));
    }

    let (leaks, tried) = attack(&exactly, 0);
    assert!(
        leaks > 0,
        "exact figures are open to differencing ({tried} differences): the population must have small differences to find"
    );
    let (recovered, tried) = attack(&published, MAX_PERTURBATION);
    eprintln!(
        "differences taken: {tried}; small counts recovered: {leaks} from exact figures, {recovered} from perturbed ones"
    );
    assert_eq!(
        recovered, 0,
        "perturbed figures gave away {recovered} small counts in {tried} differences (exact ones: {leaks})"
    );

    // The same persons give the same figures: the whole period is everybody.
    let everybody = |filters: Filters| {
        &published
            .iter()
            .find(|(candidate, _)| *candidate == filters)
            .unwrap()
            .1
    };
    assert_eq!(
        everybody((None, None, None)),
        everybody((Some(0), None, None))
    );
    assert_eq!(
        everybody((None, Some(1), Some(2))),
        everybody((Some(0), Some(1), Some(2)))
    );
    // And the same figures again, read again.
    let again = projections
        .facts(&scope_of((None, Some(0), None), &organizations))
        .await
        .unwrap();
    assert_eq!(
        &figures(&perturbed(&again)),
        everybody((None, Some(0), None))
    );
}

haven_storage::backend_suite! {
    setup = setup;
    differencing_overlapping_scopes_recovers_no_small_count,
}
