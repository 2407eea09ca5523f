//! Indicator counters. Every indicator is a sum of contributions: each screening
//! (person) and each case (with its services, payments, referrals, assessments and
//! follow-ups) contributes rows `(indicator, label, sublabel, n, amount)`, counted
//! under its anchor: the day and month it was screened or opened, its organisation
//! and its region. When an event changes a screening or a case, its contribution is
//! read before and after the change and the difference is added to the counters, in
//! the same transaction. A report then sums counters over whole months and the days
//! at either end of its period, whatever the number of events behind them.

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::facts::{Durations, Facts, ReportScope};
use crate::publication::{Count, RawTable};

/// File of the perturbation key under the keys directory.
pub const PERTURBATION_KEY_FILE: &str = "perturbation.key";

/// The record keys of cell-key perturbation ([`crate::publication`]): a record's key
/// is an HMAC of its id under the perturbation key of the keys directory. Fixed by
/// the id, so a rebuild, or a new reporting database, gives every record the same
/// key; unknown without the key, so a reader of reports cannot work the perturbation
/// back out.
#[derive(Clone, Debug)]
pub struct RecordKeys {
    key: std::sync::Arc<haven_crypto::PerturbationKey>,
}

impl RecordKeys {
    /// The keys of `keys_dir` (the key is created there when missing: development,
    /// or `haven keys init`).
    pub fn load(keys_dir: &std::path::Path) -> anyhow::Result<RecordKeys> {
        std::fs::create_dir_all(keys_dir)?;
        let key =
            haven_crypto::PerturbationKey::load_or_create(&keys_dir.join(PERTURBATION_KEY_FILE))
                .map_err(|error| anyhow::anyhow!("perturbation key: {error}"))?;
        Ok(RecordKeys::new(key))
    }

    /// The keys under `key`.
    pub fn new(key: haven_crypto::PerturbationKey) -> RecordKeys {
        RecordKeys {
            key: std::sync::Arc::new(key),
        }
    }

    /// The key of the record `id`.
    pub fn of(&self, id: Uuid) -> u32 {
        self.key.record_key(id.as_bytes())
    }
}

/// A summed cell key as stored (a sum of record keys, any size) as a cell key.
pub(crate) fn cell_key(sum: i64) -> u32 {
    u32::try_from(sum.rem_euclid(1 << 32)).unwrap_or_default()
}

/// Counters by day.
pub(crate) const DAY: i32 = 0;
/// Counters by month.
pub(crate) const MONTH: i32 = 1;

/// What an event can change the contribution of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Root {
    /// A screening: the person's categories and time to identification.
    Screening(Uuid),
    /// A part of a case: what is recorded in it, and its referrals.
    Case(Uuid, CasePart),
}

impl Root {
    /// The screening or case, whose record key its contribution carries.
    pub(crate) fn id(self) -> Uuid {
        match self {
            Root::Screening(id) | Root::Case(id, _) => id,
        }
    }
}

/// Victims: presumed or identified.
const VICTIM: &str = "s.stage IN ('identified', 'presumed_victim', 'reasonable_grounds_positive')";
const STATUS: &str = "CASE WHEN s.stage = 'identified' THEN 'identified' ELSE 'presumed' END";

/// Where a screening is counted: when, by whom, where. `$1`: the screening.
const SCREENING_ANCHOR: &str = "SELECT s.created_at AS at, s.organization_id AS organization_id, s.region AS region FROM screenings s WHERE s.id = $1";

/// Where a case is counted (with the region of its screening, if known). `$1`: the case.
const CASE_ANCHOR: &str = "SELECT c.opened_at AS at, c.organization_id AS organization_id, COALESCE(s.region, '') AS region \
    FROM cases c LEFT JOIN screenings s ON s.id = c.screening_id WHERE c.id = $1";

/// A screening's contribution. `$1`: the screening.
pub(crate) fn screening_contribution() -> String {
    let one = |indicator: &str, label: &str, sublabel: &str, filter: &str| {
        format!(
            "SELECT '{indicator}' AS indicator, {label} AS label, {sublabel} AS sublabel, 1 AS n, 0 AS amount \
             FROM screenings s WHERE s.id = $1{filter}"
        )
    };
    let victim = format!(" AND {VICTIM}");
    let labelled = |indicator: &str, kind: &str| {
        format!(
            "SELECT '{indicator}', l.value, '', 1, 0 FROM screening_labels l JOIN screenings s ON s.id = l.screening_id \
             WHERE s.id = $1 AND l.kind = '{kind}' AND {VICTIM} \
             UNION ALL SELECT '{indicator}', 'unknown', '', 1, 0 FROM screenings s WHERE s.id = $1 AND {VICTIM} \
             AND NOT EXISTS (SELECT 1 FROM screening_labels l WHERE l.screening_id = s.id AND l.kind = '{kind}')"
        )
    };
    let parts = [
        one("screenings_by_source", "s.referral_source", "''", ""),
        one(
            "victims_by_sex",
            STATUS,
            "COALESCE(s.gender, 'unknown')",
            &victim,
        ),
        one(
            "victims_by_age_band",
            STATUS,
            "COALESCE(s.age_band, 'unknown')",
            &victim,
        ),
        one(
            "victims_by_citizenship",
            STATUS,
            "COALESCE(s.citizenship, 'unknown')",
            &victim,
        ),
        labelled("victims_by_exploitation_type", "exploitation"),
        labelled("victims_by_means_of_control", "means"),
        one(
            "victims_re_trafficked",
            "CASE WHEN s.re_trafficked THEN 'yes' ELSE 'no' END",
            "''",
            &victim,
        ),
        one(
            "days_to_identification",
            "CAST((s.identified_epoch - s.created_epoch) / 86400 AS TEXT)",
            "''",
            " AND s.identified_epoch IS NOT NULL AND s.created_epoch IS NOT NULL",
        ),
    ];
    contribution(SCREENING_ANCHOR, &parts)
}

/// The parts of a case's contribution an event can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CasePart {
    /// Everything: the case's anchor (organisation, region) changed.
    All,
    /// Status, stage, closure reason.
    Status,
    /// Services delivered and time to the first.
    Services,
    /// Cash assistance.
    Cash,
    /// Assessment scores.
    Outcomes,
    /// Follow-ups.
    FollowUps,
    /// The case's referrals.
    Referrals,
}

impl CasePart {
    /// Every part but `All`.
    pub(crate) const EACH: [CasePart; 6] = [
        CasePart::Status,
        CasePart::Services,
        CasePart::Cash,
        CasePart::Outcomes,
        CasePart::FollowUps,
        CasePart::Referrals,
    ];

    /// The part of the case an event of `event_type` (from case or referral) changes.
    pub(crate) fn changed_by(event_type: &str) -> CasePart {
        match event_type {
            "case.stage_changed" | "case.closed" | "case.reopened" => CasePart::Status,
            "case.service_added" | "case.service_updated" => CasePart::Services,
            "case.payment_recorded" => CasePart::Cash,
            "case.assessed" => CasePart::Outcomes,
            "case.follow_up_scheduled" | "case.follow_up_done" => CasePart::FollowUps,
            kind if kind.starts_with("referral.") => CasePart::Referrals,
            _ => CasePart::All,
        }
    }
}

/// A case's contribution, part by part. `$1`: the case.
const CASE_PARTS: [(CasePart, &str); 15] = [
    (
        CasePart::Status,
        "SELECT 'cases_by_status' AS indicator, c.status AS label, '' AS sublabel, 1 AS n, 0 AS amount \
        FROM cases c WHERE c.id = $1",
    ),
    (
        CasePart::Status,
        "SELECT 'cases_by_stage' AS indicator, c.stage AS label, '' AS sublabel, 1 AS n, 0 AS amount \
        FROM cases c WHERE c.id = $1",
    ),
    (
        CasePart::Status,
        "SELECT 'closure_reasons' AS indicator, c.closure_reason AS label, '' AS sublabel, 1 AS n, 0 AS amount \
        FROM cases c WHERE c.id = $1 AND c.closure_reason IS NOT NULL",
    ),
    (
        CasePart::Services,
        "SELECT 'days_to_first_service' AS indicator, \
        CAST((c.first_service_epoch - s.created_epoch) / 86400 AS TEXT) AS label, '' AS sublabel, 1 AS n, 0 AS amount \
        FROM cases c JOIN screenings s ON s.id = c.screening_id \
        WHERE c.id = $1 AND c.first_service_epoch IS NOT NULL AND s.created_epoch IS NOT NULL",
    ),
    (
        CasePart::Services,
        "SELECT 'services_delivered_by_type' AS indicator, v.service_type AS label, '' AS sublabel, 1 AS n, 0 AS amount \
        FROM case_services v WHERE v.case_id = $1 AND v.status = 'delivered'",
    ),
    (
        CasePart::Services,
        "SELECT 'services_delivered_by_provider' AS indicator, v.provider AS label, '' AS sublabel, 1 AS n, 0 AS amount \
        FROM case_services v WHERE v.case_id = $1 AND v.status = 'delivered'",
    ),
    (
        CasePart::Cash,
        "SELECT 'cash' AS indicator, p.currency AS label, '' AS sublabel, 1 AS n, SUM(p.amount_minor) AS amount \
        FROM payments p WHERE p.case_id = $1 GROUP BY p.currency",
    ),
    (
        CasePart::Outcomes,
        "SELECT 'outcomes_first' AS indicator, a.domain AS label, '' AS sublabel, 1 AS n, a.first_score AS amount \
        FROM assessment_scores a WHERE a.case_id = $1 AND a.assessments >= 2",
    ),
    (
        CasePart::Outcomes,
        "SELECT 'outcomes_latest' AS indicator, a.domain AS label, '' AS sublabel, 1 AS n, a.latest_score AS amount \
        FROM assessment_scores a WHERE a.case_id = $1 AND a.assessments >= 2",
    ),
    (
        CasePart::FollowUps,
        "SELECT 'follow_ups' AS indicator, CASE WHEN f.done THEN 'done' ELSE 'open' END AS label, \
        CASE WHEN f.done THEN '' ELSE f.due_on END AS sublabel, 1 AS n, 0 AS amount FROM follow_ups f WHERE f.case_id = $1",
    ),
    (
        CasePart::Referrals,
        "SELECT 'referrals_by_status' AS indicator, r.status AS label, '' AS sublabel, 1 AS n, 0 AS amount \
        FROM referrals r WHERE r.case_id = $1",
    ),
    (
        CasePart::Referrals,
        "SELECT 'referrals_answered' AS indicator, \
        CASE WHEN r.accepted_at IS NOT NULL THEN 'accepted' ELSE 'declined' END AS label, '' AS sublabel, 1 AS n, 0 AS amount \
        FROM referrals r WHERE r.case_id = $1 AND (r.accepted_at IS NOT NULL OR r.status = 'declined')",
    ),
    (
        CasePart::Referrals,
        "SELECT 'days_to_accept' AS indicator, \
        CAST((r.accepted_epoch - r.requested_epoch) / 86400 AS TEXT) AS label, '' AS sublabel, 1 AS n, 0 AS amount \
        FROM referrals r WHERE r.case_id = $1 AND r.accepted_epoch IS NOT NULL AND r.requested_epoch IS NOT NULL",
    ),
    // Deadlines of open referrals: whether one has passed depends on when the report
    // is read, so the deadline is the sublabel.
    (
        CasePart::Referrals,
        "SELECT 'referral_deadlines' AS indicator, 'acceptance' AS label, \
        CAST(r.accept_by_epoch AS TEXT) AS sublabel, 1 AS n, 0 AS amount \
        FROM referrals r WHERE r.case_id = $1 AND r.status = 'requested' AND r.accept_by_epoch IS NOT NULL",
    ),
    (
        CasePart::Referrals,
        "SELECT 'referral_deadlines' AS indicator, 'outcome' AS label, r.outcome_due_on AS sublabel, 1 AS n, 0 AS amount \
        FROM referrals r WHERE r.case_id = $1 AND r.status IN ('accepted', 'in_progress') AND r.outcome_due_on IS NOT NULL",
    ),
];

/// The query of one part of a case's contribution (or all). `$1`: the case.
pub(crate) fn case_contribution(part: CasePart) -> String {
    let parts: Vec<String> = CASE_PARTS
        .iter()
        .filter(|(of, _)| part == CasePart::All || *of == part)
        .map(|(_, sql)| (*sql).to_owned())
        .collect();
    contribution(CASE_ANCHOR, &parts)
}

/// The rows of `parts`, each with the anchor (one query: nothing when the anchor is
/// not known yet).
fn contribution(anchor: &str, parts: &[String]) -> String {
    format!(
        "WITH anchor AS ({anchor}) SELECT a.at, a.organization_id, a.region, x.indicator, x.label, x.sublabel, \
         CAST(x.n AS BIGINT), CAST(x.amount AS BIGINT) FROM anchor a CROSS JOIN ({}) x",
        parts.join(" UNION ALL ")
    )
}

/// The counters a report reads: `$1..$2` months, `$3..$4` and `$5..$6` days,
/// `$7` organisation, `$8` region.
pub(crate) const READ: &str = "SELECT indicator, label, sublabel, CAST(SUM(n) AS BIGINT), CAST(SUM(amount) AS BIGINT), \
    CAST(SUM(ckey) AS BIGINT) \
    FROM indicator_counts \
    WHERE ((grain = 1 AND bucket >= $1 AND bucket < $2) OR (grain = 0 AND bucket >= $3 AND bucket < $4) \
        OR (grain = 0 AND bucket >= $5 AND bucket < $6)) \
      AND ($7 IS NULL OR organization_id = $7) AND ($8 IS NULL OR region = $8) \
    GROUP BY indicator, label, sublabel";

/// Adds changes to counters: the start of the statement, then the values.
pub(crate) const ADD: &str = "INSERT INTO indicator_counts \
    (grain, bucket, organization_id, region, indicator, label, sublabel, n, amount, ckey) ";
/// The end of [`ADD`].
pub(crate) const ADD_CONFLICT: &str = " ON CONFLICT (grain, bucket, organization_id, region, indicator, label, sublabel) \
    DO UPDATE SET n = indicator_counts.n + excluded.n, amount = indicator_counts.amount + excluded.amount, \
    ckey = indicator_counts.ckey + excluded.ckey";

/// One summed counter: indicator, label, sublabel, n, amount, sum of record keys.
pub(crate) type Row = (String, String, String, i64, i64, i64);

/// One contribution row: its anchor (when, organisation, region), then a [`Row`].
pub(crate) type ContributionRow = (
    OffsetDateTime,
    Uuid,
    String,
    String,
    String,
    String,
    i64,
    i64,
);

/// A counter's key: grain, bucket, organisation, region, indicator, label, sublabel.
pub(crate) type Key = (i32, i64, Uuid, String, String, String, String);

/// Changes to a counter: n, amount, sum of record keys.
pub(crate) type Change = (i64, i64, i64);

/// Changes to the counters, from contributions taken away and added.
#[derive(Debug, Default)]
pub(crate) struct Delta {
    changes: HashMap<Key, Change>,
}

impl Delta {
    /// Counts contribution `rows` of the record whose key is `record_key` with `sign`
    /// (-1: before the event, +1: after).
    pub(crate) fn add(&mut self, rows: &[ContributionRow], sign: i64, record_key: u32) {
        for (at, organization_id, region, indicator, label, sublabel, n, amount) in rows {
            let day = epoch_day(*at);
            for (grain, bucket) in [(DAY, day), (MONTH, month_of_day(day))] {
                let entry = self
                    .changes
                    .entry((
                        grain,
                        bucket,
                        *organization_id,
                        region.clone(),
                        indicator.clone(),
                        label.clone(),
                        sublabel.clone(),
                    ))
                    .or_default();
                entry.0 += sign * n;
                entry.1 += sign * amount;
                entry.2 += sign * n * i64::from(record_key);
            }
        }
    }

    /// The counters that change, with their changes.
    pub(crate) fn into_changes(self) -> impl Iterator<Item = (Key, Change)> {
        self.changes
            .into_iter()
            .filter(|(_, (n, amount, key))| *n != 0 || *amount != 0 || *key != 0)
    }
}

/// Days since 1970-01-01.
pub(crate) fn epoch_day(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(86_400)
}

/// `year * 12 + month - 1` of a day.
pub(crate) fn month_of_day(day: i64) -> i64 {
    let date = time::Date::from_julian_day(
        i32::try_from(day + 2_440_588)
            .unwrap_or(i32::MAX)
            .min(time::Date::MAX.to_julian_day()),
    )
    .unwrap_or(time::Date::MAX);
    i64::from(date.year()) * 12 + i64::from(date.month() as u8) - 1
}

/// The first day of a month (`year * 12 + month - 1`).
fn first_day_of_month(month: i64) -> i64 {
    let year = i32::try_from(month.div_euclid(12)).unwrap_or(i32::MAX);
    let number = u8::try_from(month.rem_euclid(12) + 1).unwrap_or(1);
    time::Month::try_from(number)
        .ok()
        .and_then(|month| time::Date::from_calendar_date(year, month, 1).ok())
        .map_or(i64::MAX, |date| i64::from(date.to_julian_day()) - 2_440_588)
}

/// The buckets of a report's period: whole months `[months.0, months.1)` and the
/// days before and after them. Empty ranges are `(0, 0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Buckets {
    pub(crate) months: (i64, i64),
    pub(crate) head_days: (i64, i64),
    pub(crate) tail_days: (i64, i64),
}

impl Buckets {
    /// Splits `[from, until)` (whole days) into days and whole months.
    pub(crate) fn of(scope: &ReportScope) -> Buckets {
        let from = scope.from.map(epoch_day);
        let until = scope.until.map(|until| {
            // A period ending during a day counts that day.
            let day = epoch_day(until);
            if until.unix_timestamp().rem_euclid(86_400) == 0 {
                day
            } else {
                day + 1
            }
        });
        let first_month = from.map_or(i64::MIN, |from| {
            let month = month_of_day(from);
            if first_day_of_month(month) == from {
                month
            } else {
                month + 1
            }
        });
        let end_month = until.map_or(i64::MAX, month_of_day);
        if first_month >= end_month {
            return Buckets {
                months: (0, 0),
                head_days: (from.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX)),
                tail_days: (0, 0),
            };
        }
        Buckets {
            months: (first_month, end_month),
            head_days: from.map_or((0, 0), |from| (from, first_day_of_month(first_month))),
            tail_days: until.map_or((0, 0), |until| (first_day_of_month(end_month), until)),
        }
    }
}

/// Tables with one dimension (`label`) or two (`label`, `sublabel`).
fn table(
    name: &'static str,
    dimensions: Vec<&'static str>,
    cells: &BTreeMap<(String, String), Count>,
) -> RawTable {
    let two = dimensions.len() == 2;
    RawTable::additive(
        name,
        dimensions,
        cells
            .iter()
            .filter(|(_, count)| count.n > 0)
            .map(|((label, sublabel), count)| {
                let labels = if two {
                    vec![label.clone(), sublabel.clone()]
                } else {
                    vec![label.clone()]
                };
                (labels, *count)
            })
            .collect(),
    )
}

/// A summed counter as a count with its cell key.
fn count_of(n: i64, key_sum: i64) -> Count {
    Count::new(u64::try_from(n).unwrap_or_default(), cell_key(key_sum))
}

/// Sorted durations in days from a histogram (negative ones count as 0), with how
/// many there are.
fn durations(cells: &BTreeMap<(String, String), Count>) -> Durations {
    let mut days: Vec<(i64, Count)> = cells
        .iter()
        .filter_map(|((label, _), count)| {
            label.parse::<i64>().ok().map(|days| (days.max(0), *count))
        })
        .collect();
    days.sort_unstable_by_key(|(days, _)| *days);
    Durations {
        base: days.iter().map(|(_, count)| *count).sum(),
        days: days
            .into_iter()
            .flat_map(|(days, count)| {
                std::iter::repeat_n(days as f64, usize::try_from(count.n).unwrap_or_default())
            })
            .collect(),
    }
}

/// An indicator's cells: (label, sublabel) → (n, amount, sum of record keys).
type Cells = BTreeMap<(String, String), (i64, i64, i64)>;

/// The indicators from summed counters `(indicator, label, sublabel, n, amount)`, as
/// seen at `now` (for what is overdue). Cells are in byte order of their labels.
pub(crate) fn facts(rows: Vec<Row>, now: OffsetDateTime) -> Facts {
    let mut indicators: HashMap<String, Cells> = HashMap::new();
    for (indicator, label, sublabel, n, amount, key) in rows {
        let entry = indicators
            .entry(indicator)
            .or_default()
            .entry((label, sublabel))
            .or_default();
        entry.0 += n;
        entry.1 += amount;
        entry.2 += key;
    }
    let counts = |indicator: &str| -> BTreeMap<(String, String), Count> {
        indicators
            .get(indicator)
            .map(|cells| {
                cells
                    .iter()
                    .map(|(labels, (n, _, key))| (labels.clone(), count_of(*n, *key)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let victims: Count = counts("victims_by_sex").values().copied().sum();
    // A multi-valued category: a cell per value, `unknown` last; persons once in the total.
    let labelled = |name: &'static str, dimension: &'static str, indicator: &str| {
        let all = counts(indicator);
        let unknown = all
            .get(&("unknown".to_owned(), String::new()))
            .copied()
            .unwrap_or_default();
        let mut cells: Vec<(Vec<String>, Count)> = all
            .iter()
            .filter(|((label, _), count)| label != "unknown" && count.n > 0)
            .map(|((label, _), count)| (vec![label.clone()], *count))
            .collect();
        if unknown.n > 0 {
            cells.push((vec!["unknown".to_owned()], unknown));
        }
        RawTable {
            name,
            dimensions: vec![dimension],
            cells,
            total: victims,
        }
    };
    let today = now.date().to_string();
    let mut follow_ups: BTreeMap<(String, String), Count> = BTreeMap::new();
    for ((state, due_on), count) in counts("follow_ups") {
        let state = match state.as_str() {
            "done" => "done",
            _ if due_on < today => "overdue",
            _ => "upcoming",
        };
        *follow_ups
            .entry((state.to_owned(), String::new()))
            .or_default() += count;
    }
    let mut overdue: BTreeMap<(String, String), Count> = BTreeMap::new();
    for ((awaiting, deadline), count) in counts("referral_deadlines") {
        let passed = match awaiting.as_str() {
            "acceptance" => deadline
                .parse::<i64>()
                .is_ok_and(|at| at < now.unix_timestamp()),
            _ => deadline < today,
        };
        if passed {
            *overdue.entry((awaiting, String::new())).or_default() += count;
        }
    }
    let answered = counts("referrals_answered");
    let accepted = answered
        .get(&("accepted".to_owned(), String::new()))
        .copied()
        .unwrap_or_default();
    let cash = indicators
        .get("cash")
        .map(|cells| {
            cells
                .iter()
                .filter(|(_, (cases, _, _))| *cases > 0)
                .map(|((currency, _), (cases, total, key))| {
                    (currency.clone(), *total, count_of(*cases, *key))
                })
                .collect()
        })
        .unwrap_or_default();
    let latest = indicators
        .get("outcomes_latest")
        .cloned()
        .unwrap_or_default();
    let outcomes = indicators
        .get("outcomes_first")
        .map(|cells| {
            cells
                .iter()
                .filter(|(_, (cases, _, _))| *cases > 0)
                .map(|((domain, sublabel), (cases, first, key))| {
                    let latest = latest
                        .get(&(domain.clone(), sublabel.clone()))
                        .map_or(0, |(_, sum, _)| *sum);
                    let mean = |sum: i64| sum as f64 / *cases as f64;
                    (
                        domain.clone(),
                        mean(*first),
                        mean(latest),
                        count_of(*cases, *key),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let tables = vec![
        table(
            "screenings_by_source",
            vec!["referral_source"],
            &counts("screenings_by_source"),
        ),
        table(
            "victims_by_sex",
            vec!["status", "sex"],
            &counts("victims_by_sex"),
        ),
        table(
            "victims_by_age_band",
            vec!["status", "age_band"],
            &counts("victims_by_age_band"),
        ),
        table(
            "victims_by_citizenship",
            vec!["status", "citizenship"],
            &counts("victims_by_citizenship"),
        ),
        labelled(
            "victims_by_exploitation_type",
            "exploitation_type",
            "victims_by_exploitation_type",
        ),
        labelled(
            "victims_by_means_of_control",
            "means_of_control",
            "victims_by_means_of_control",
        ),
        table(
            "victims_re_trafficked",
            vec!["re_trafficked"],
            &counts("victims_re_trafficked"),
        ),
        table(
            "cases_by_status",
            vec!["status"],
            &counts("cases_by_status"),
        ),
        table("cases_by_stage", vec!["stage"], &counts("cases_by_stage")),
        table(
            "closure_reasons",
            vec!["reason"],
            &counts("closure_reasons"),
        ),
        table(
            "services_delivered_by_type",
            vec!["service_type"],
            &counts("services_delivered_by_type"),
        ),
        table(
            "referrals_by_status",
            vec!["status"],
            &counts("referrals_by_status"),
        ),
        table(
            "services_delivered_by_provider",
            vec!["provider_organization_id"],
            &counts("services_delivered_by_provider"),
        ),
        table("follow_ups", vec!["state"], &follow_ups),
        table("referrals_overdue", vec!["awaiting"], &overdue),
    ];
    Facts {
        tables,
        days_to_identification: durations(&counts("days_to_identification")),
        days_to_first_service: durations(&counts("days_to_first_service")),
        days_to_accept: durations(&counts("days_to_accept")),
        referrals_answered: answered.values().copied().sum(),
        referrals_accepted: accepted.n,
        cash,
        outcomes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(from: Option<time::Date>, until: Option<time::Date>) -> ReportScope {
        ReportScope {
            from: from.map(|date| date.midnight().assume_utc()),
            until: until.map(|date| date.midnight().assume_utc()),
            ..ReportScope::default()
        }
    }

    fn day(date: time::Date) -> i64 {
        epoch_day(date.midnight().assume_utc())
    }

    fn month(year: i64, month: i64) -> i64 {
        year * 12 + month - 1
    }

    #[test]
    fn months_and_days_are_counted_from_1970() {
        assert_eq!(month_of_day(0), month(1970, 1));
        assert_eq!(
            month_of_day(day(time::macros::date!(2024 - 02 - 29))),
            month(2024, 2)
        );
        assert_eq!(
            first_day_of_month(month(2024, 3)),
            day(time::macros::date!(2024 - 03 - 01))
        );
        assert_eq!(month_of_day(-1), month(1969, 12));
    }

    #[test]
    fn a_period_is_whole_months_and_the_days_around_them() {
        use time::macros::date;
        // A 13-month project starting mid-month.
        let buckets = Buckets::of(&scope(
            Some(date!(2025 - 03 - 15)),
            Some(date!(2026 - 04 - 15)),
        ));
        assert_eq!(buckets.months, (month(2025, 4), month(2026, 4)));
        assert_eq!(
            buckets.head_days,
            (day(date!(2025 - 03 - 15)), day(date!(2025 - 04 - 01)))
        );
        assert_eq!(
            buckets.tail_days,
            (day(date!(2026 - 04 - 01)), day(date!(2026 - 04 - 15)))
        );
        // Whole months only.
        let buckets = Buckets::of(&scope(
            Some(date!(2025 - 01 - 01)),
            Some(date!(2026 - 01 - 01)),
        ));
        assert_eq!(buckets.months, (month(2025, 1), month(2026, 1)));
        assert_eq!(buckets.head_days.0, buckets.head_days.1, "no days before");
        assert_eq!(buckets.tail_days.0, buckets.tail_days.1, "no days after");
        // Within one month: days only.
        let buckets = Buckets::of(&scope(
            Some(date!(2025 - 05 - 03)),
            Some(date!(2025 - 05 - 20)),
        ));
        assert_eq!(buckets.months, (0, 0));
        assert_eq!(
            buckets.head_days,
            (day(date!(2025 - 05 - 03)), day(date!(2025 - 05 - 20)))
        );
        // Open ends: every month before or after.
        let buckets = Buckets::of(&scope(None, Some(date!(2025 - 05 - 20))));
        assert_eq!(buckets.months, (i64::MIN, month(2025, 5)));
        assert_eq!(
            buckets.tail_days,
            (day(date!(2025 - 05 - 01)), day(date!(2025 - 05 - 20)))
        );
        let buckets = Buckets::of(&scope(Some(date!(2025 - 05 - 20)), None));
        assert_eq!(buckets.months, (month(2025, 6), i64::MAX));
        assert_eq!(
            buckets.head_days,
            (day(date!(2025 - 05 - 20)), day(date!(2025 - 06 - 01)))
        );
        assert_eq!(Buckets::of(&scope(None, None)).months, (i64::MIN, i64::MAX));
    }

    #[test]
    fn contributions_before_and_after_leave_only_the_change() {
        let row = |indicator: &str, label: &str, amount: i64| {
            (
                time::macros::datetime!(2025-05-03 10:00 UTC),
                Uuid::nil(),
                "Gəncə".to_owned(),
                indicator.to_owned(),
                label.to_owned(),
                String::new(),
                1,
                amount,
            )
        };
        let mut delta = Delta::default();
        delta.add(
            &[row("cases_by_status", "active", 0), row("cash", "AZN", 500)],
            -1,
            7,
        );
        delta.add(
            &[row("cases_by_status", "closed", 0), row("cash", "AZN", 750)],
            1,
            7,
        );
        let mut changes: Vec<(i32, String, Change)> = delta
            .into_changes()
            .map(|(key, change)| (key.0, key.5, change))
            .collect();
        changes.sort();
        assert_eq!(
            changes,
            [
                (DAY, "AZN".to_owned(), (0, 250, 0)),
                (DAY, "active".to_owned(), (-1, 0, -7)),
                (DAY, "closed".to_owned(), (1, 0, 7)),
                (MONTH, "AZN".to_owned(), (0, 250, 0)),
                (MONTH, "active".to_owned(), (-1, 0, -7)),
                (MONTH, "closed".to_owned(), (1, 0, 7)),
            ]
        );
    }

    #[test]
    fn record_keys_are_fixed_by_id_and_key_and_cell_keys_wrap() {
        let key = |byte| RecordKeys::new(haven_crypto::PerturbationKey::from_bytes([byte; 32]));
        let keys = key(7);
        let id = Uuid::from_u128(42);
        assert_eq!(keys.of(id), key(7).of(id));
        assert_ne!(keys.of(id), key(8).of(id));
        assert_ne!(keys.of(id), keys.of(Uuid::from_u128(43)));
        assert_eq!(cell_key(1 << 32), 0);
        assert_eq!(cell_key(-1), u32::MAX);
        assert_eq!(cell_key(3 * (1 << 32) + 5), 5);
    }

    #[test]
    fn what_is_overdue_depends_on_when_the_report_is_read() {
        let now = time::macros::datetime!(2026-11-28 12:00 UTC);
        let row = |indicator: &str, label: &str, sublabel: &str| {
            (
                indicator.to_owned(),
                label.to_owned(),
                sublabel.to_owned(),
                1,
                0,
                0,
            )
        };
        let facts = facts(
            vec![
                row("follow_ups", "done", ""),
                row("follow_ups", "open", "2026-11-27"),
                row("follow_ups", "open", "2026-11-28"),
                row(
                    "referral_deadlines",
                    "acceptance",
                    &(now.unix_timestamp() - 1).to_string(),
                ),
                row(
                    "referral_deadlines",
                    "acceptance",
                    &(now.unix_timestamp() + 60).to_string(),
                ),
                row("referral_deadlines", "outcome", "2026-12-01"),
            ],
            now,
        );
        let cells = |name: &str| -> Vec<(String, u64)> {
            facts
                .tables
                .iter()
                .find(|table| table.name == name)
                .map(|table| {
                    table
                        .cells
                        .iter()
                        .map(|(labels, count)| (labels[0].clone(), count.n))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(
            cells("follow_ups"),
            [
                ("done".to_owned(), 1),
                ("overdue".to_owned(), 1),
                ("upcoming".to_owned(), 1)
            ]
        );
        assert_eq!(cells("referrals_overdue"), [("acceptance".to_owned(), 1)]);
    }
}
