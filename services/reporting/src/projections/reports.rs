//! Reads for reports: the headline counts, the facts of the indicators, and the
//! records of the CTDC export.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::HavenResult;
use haven_storage::{Database, sql};

use super::{Facts, ReportScope, Summary, begin_snapshot};
use crate::counts::{self, RecordKeys};
use crate::publication::{Count, CtdcRecord, RawTable};

/// Victims: presumed or identified.
const VICTIM_STAGES: &str = "('identified', 'presumed_victim', 'reasonable_grounds_positive')";
/// The scope of screenings (`s`), binding $1 from, $2 until, $3 organisation, $4 region.
const SCREENING_SCOPE: &str = "($1 IS NULL OR s.created_at >= $1) AND ($2 IS NULL OR s.created_at < $2) \
    AND ($3 IS NULL OR s.organization_id = $3) AND ($4 IS NULL OR s.region = $4)";

const SUMMARY: &str = "SELECT \
    (SELECT COUNT(*) FROM screenings WHERE $1 IS NULL OR organization_id = $1), \
    (SELECT COUNT(*) FROM screenings WHERE stage = 'identified' AND ($1 IS NULL OR organization_id = $1)), \
    (SELECT COUNT(*) FROM cases WHERE $1 IS NULL OR organization_id = $1), \
    (SELECT COUNT(*) FROM cases WHERE status IN ('active', 'follow_up') AND ($1 IS NULL OR organization_id = $1)), \
    (SELECT COUNT(*) FROM organizations), \
    (SELECT COUNT(*) FROM screenings WHERE re_trafficked AND ($1 IS NULL OR organization_id = $1))";

/// Places held per referral and day: `$1` organisation of the facilities, or all.
const OCCUPANCY_CHANGES: &str = "SELECT o.changed_day, o.referral_id, CAST(SUM(o.delta) AS BIGINT) FROM occupancy_changes o \
    JOIN referrals r ON r.id = o.referral_id WHERE ($1 IS NULL OR r.to_organization_id = $1) \
    GROUP BY o.changed_day, o.referral_id ORDER BY 1";

/// Counts, for one organisation or for all.
pub(super) async fn summary(
    database: &Database,
    organization_id: Option<Uuid>,
) -> HavenResult<Summary> {
    let (screenings, identified, cases, open, organizations, re_trafficked): (
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = sql::query_as(SUMMARY)
        .bind(organization_id)
        .fetch_one(database)
        .await?;
    let count = |value: i64| u64::try_from(value).unwrap_or_default();
    Ok(Summary {
        screenings_total: count(screenings),
        identified_total: count(identified),
        cases_total: count(cases),
        cases_open: count(open),
        organizations_total: count(organizations),
        re_trafficked_total: count(re_trafficked),
    })
}

/// The material of the indicators in `scope`, before suppression.
pub(super) async fn facts(
    database: &Database,
    keys: &RecordKeys,
    scope: &ReportScope,
) -> HavenResult<Facts> {
    // One read transaction: the counters and the places held are of one moment.
    let mut snapshot = begin_snapshot(database).await?;
    let buckets = counts::Buckets::of(scope);
    let rows: Vec<counts::Row> = sql::query_as(counts::READ)
        .bind(buckets.months.0)
        .bind(buckets.months.1)
        .bind(buckets.head_days.0)
        .bind(buckets.head_days.1)
        .bind(buckets.tail_days.0)
        .bind(buckets.tail_days.1)
        .bind(scope.organization_id)
        .bind(scope.region.as_deref())
        .fetch_all(&mut snapshot)
        .await?;
    // Places held at the end of each month, in the facilities of the
    // organisation (or all), from daily changes.
    let changes: Vec<(i64, Uuid, i64)> = sql::query_as(OCCUPANCY_CHANGES)
        .bind(scope.organization_id)
        .fetch_all(&mut snapshot)
        .await?;
    // Each change as one place (with the referral's key) taken or given back.
    let changes: Vec<(i64, Count, i64)> = changes
        .into_iter()
        .filter(|(_, _, delta)| *delta != 0)
        .map(|(day, referral, delta)| {
            (
                day,
                Count::new(delta.unsigned_abs(), keys.of(referral)),
                delta.signum(),
            )
        })
        .collect();
    snapshot.commit().await?;
    let now = OffsetDateTime::now_utc();
    let mut facts = counts::facts(rows, now);
    facts.tables.push(occupancy_by_month(&changes, scope, now));
    Ok(facts)
}

/// The victims in `scope` whose newest consent covers reporting, as CTDC records
/// (before k-anonymity), and how many others were left out for lack of consent.
pub(super) async fn export_records(
    database: &Database,
    scope: &ReportScope,
) -> HavenResult<(Vec<CtdcRecord>, u64)> {
    type ExportRow = (
        OffsetDateTime,
        Option<String>,
        Option<String>,
        bool,
        Option<String>,
        String,
        Option<bool>,
    );
    let rows: Vec<ExportRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT s.created_at, s.gender, s.age_band, s.is_minor, s.citizenship, s.exploitation_types, s.reporting_consent \
         FROM screenings s WHERE s.stage IN {VICTIM_STAGES} AND {SCREENING_SCOPE}"
    )))
    .bind(scope.from)
    .bind(scope.until)
    .bind(scope.organization_id)
    .bind(scope.region.as_deref())
    .fetch_all(database)
    .await?;
    let mut records = Vec::new();
    let mut without_consent = 0;
    for (screened_at, gender, age_band, is_minor, citizenship, exploitation, consent) in rows {
        // Only persons whose newest answer on reporting is yes.
        if consent != Some(true) {
            without_consent += 1;
            continue;
        }
        let types: Vec<&str> = exploitation
            .split(',')
            .filter(|kind| !kind.is_empty())
            .collect();
        let minor_band =
            age_band.as_deref() == Some("0--8") || age_band.as_deref() == Some("9--17");
        records.push(CtdcRecord {
            year_of_registration: screened_at.year(),
            gender: match gender.as_deref() {
                Some("female") => "Female",
                Some("male") => "Male",
                Some("transgender_or_other") => "Transgender/NonConforming",
                _ => "",
            }
            .to_owned(),
            age_broad: age_band.clone().unwrap_or_default(),
            majority_status: if is_minor || minor_band {
                "Minor"
            } else if age_band.is_some() {
                "Adult"
            } else {
                ""
            }
            .to_owned(),
            citizenship: citizenship.unwrap_or_default(),
            is_forced_labour: types.contains(&"forced_labour"),
            is_sexual_exploit: types.contains(&"sexual_exploitation"),
            is_other_exploit: types
                .iter()
                .any(|kind| *kind != "forced_labour" && *kind != "sexual_exploitation"),
        });
    }
    Ok((records, without_consent))
}

/// Places held at the end of each month of the scope (at most the last 24 months),
/// from `(day, change)` rows ordered by day.
fn occupancy_by_month(
    changes: &[(i64, Count, i64)],
    scope: &ReportScope,
    now: OffsetDateTime,
) -> RawTable {
    let day_of = |at: OffsetDateTime| at.unix_timestamp().div_euclid(86_400);
    let last = scope.until.map_or(now, |until| until.min(now));
    let Some(&(first_day, _, _)) = changes.first() else {
        return RawTable {
            name: "places_held_by_month",
            dimensions: vec!["month"],
            cells: Vec::new(),
            total: Count::ZERO,
        };
    };
    let first = scope
        .from
        .map_or(first_day, |from| day_of(from).max(first_day));
    let start = OffsetDateTime::from_unix_timestamp(first * 86_400)
        .unwrap_or(now)
        .date();
    let mut cells = Vec::new();
    let (mut year, mut month) = (start.year(), start.month());
    loop {
        let next = month.next();
        let next_year = if next == time::Month::January {
            year + 1
        } else {
            year
        };
        let month_end = time::Date::from_calendar_date(next_year, next, 1)
            .map(|date| date.midnight().assume_utc())
            .unwrap_or(now);
        let cutoff = day_of(month_end.min(last + time::Duration::days(1)));
        // Places held: entries minus departures, and the keys of the referrals
        // holding them (a referral that came and left adds nothing to either).
        let (held, key): (i64, i64) = changes.iter().filter(|(day, _, _)| *day < cutoff).fold(
            (0, 0),
            |(held, key), (_, change, sign)| {
                let places = sign * i64::try_from(change.n).unwrap_or_default();
                (held + places, key + places * i64::from(change.key))
            },
        );
        cells.push((
            vec![format!("{year}-{:02}", month as u8)],
            Count::new(
                u64::try_from(held).unwrap_or_default(),
                counts::cell_key(key),
            ),
        ));
        if month_end > last || cells.len() >= 24 * 40 {
            break;
        }
        (year, month) = (next_year, next);
    }
    if cells.len() > 24 {
        cells.drain(..cells.len() - 24);
    }
    let total = cells.last().map_or(Count::ZERO, |(_, held)| *held);
    RawTable {
        name: "places_held_by_month",
        dimensions: vec!["month"],
        cells,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_held_are_counted_at_each_month_end() {
        let day = |date: time::Date| date.midnight().assume_utc().unix_timestamp() / 86_400;
        let change = |n: u64, key: u32, sign: i64| (Count::new(n, key), sign);
        let changes = [
            (day(time::macros::date!(2026 - 09 - 03)), change(3, 5, 1)),
            (day(time::macros::date!(2026 - 09 - 20)), change(1, 5, -1)),
            (day(time::macros::date!(2026 - 10 - 31)), change(2, 9, 1)),
            (day(time::macros::date!(2026 - 11 - 02)), change(4, 7, -1)),
        ]
        .map(|(day, (count, sign))| (day, count, sign));
        let now = time::macros::datetime!(2026-11-28 12:00 UTC);
        let table = occupancy_by_month(&changes, &ReportScope::default(), now);
        let cells: Vec<(String, u64)> = table
            .cells
            .iter()
            .map(|(labels, held)| (labels[0].clone(), held.n))
            .collect();
        assert_eq!(
            cells,
            [
                ("2026-09".to_owned(), 2),
                ("2026-10".to_owned(), 4),
                ("2026-11".to_owned(), 0)
            ]
        );
        assert_eq!(table.total.n, 0, "the latest month");
        // Two places of key 5 and two of key 9 held at the end of October.
        assert_eq!(table.cells[1].1.key, 2 * 5 + 2 * 9);
        assert!(
            occupancy_by_month(&[], &ReportScope::default(), now)
                .cells
                .is_empty()
        );
    }
}
