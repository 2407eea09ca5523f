//! Projections: one implementation per backend (shared SQL). Each event is applied
//! in one transaction with its checkpoint, so it counts exactly once even when a feed
//! is replayed after a crash or a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::{HavenError, HavenResult};
use haven_events::{CheckpointWrite, EventSink};
use haven_proto::common::v1::Event;
use haven_storage::{Database, WritePool, db_error};

use crate::counts::{self, CasePart, Root};
pub use crate::facts::{Durations, Facts, ReportScope};
use crate::privacy::{self, BudgetUse, Spend};
use crate::publication::{Count, CtdcRecord, RawTable};

/// Headline counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Screenings recorded.
    pub screenings_total: u64,
    /// Screenings whose current stage is `identified`.
    pub identified_total: u64,
    /// Cases opened.
    pub cases_total: u64,
    /// Cases active or in follow-up.
    pub cases_open: u64,
    /// Organisations in the directory.
    pub organizations_total: u64,
    /// Screenings confirmed as re-trafficking.
    pub re_trafficked_total: u64,
}

/// A release to record in the ledger.
#[derive(Debug, Clone)]
pub struct NewRelease {
    /// e.g. `ctdc_export`.
    pub kind: &'static str,
    /// The parameters (JSON).
    pub parameters: String,
    /// Rows published.
    pub rows: u64,
    /// Rows withheld.
    pub withheld: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Who released it.
    pub released_by: String,
    /// For which organisation.
    pub organization_id: Uuid,
}

/// A release of the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: String,
    /// Parameters (JSON).
    pub parameters: String,
    /// Rows published.
    pub rows: u64,
    /// Rows withheld.
    pub withheld: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Who.
    pub released_by: String,
    /// For which organisation.
    pub organization_id: Uuid,
    /// When.
    pub released_at: OffsetDateTime,
    /// The privacy loss spent from each dataset, for a release under differential
    /// privacy.
    pub epsilon: Option<f64>,
}

/// What a release changes in the ledgers besides its own entry: every release goes
/// through [`Projections::record_release`] with one of these, in one transaction.
#[derive(Debug, Clone, Copy)]
pub enum LedgerChange<'a> {
    /// A k-anonymous release of `dataset`: the classes it published, replacing
    /// `previous` (the classes read before the release was built).
    Classes {
        /// The dataset (the export's scope and k).
        dataset: &'a str,
        /// What the last release published, as read before this one.
        previous: &'a BTreeMap<String, u64>,
        /// What this release publishes.
        classes: &'a BTreeMap<String, u64>,
    },
    /// A release under differential privacy: the privacy loss it spends.
    Budget(&'a Spend),
}

/// Victims: presumed or identified.
const VICTIM_STAGES: &str = "('identified', 'presumed_victim', 'reasonable_grounds_positive')";
/// The scope of screenings (`s`), binding $1 from, $2 until, $3 organisation, $4 region.
const SCREENING_SCOPE: &str = "($1 IS NULL OR s.created_at >= $1) AND ($2 IS NULL OR s.created_at < $2) \
    AND ($3 IS NULL OR s.organization_id = $3) AND ($4 IS NULL OR s.region = $4)";
static SCREENING_CONTRIBUTION: LazyLock<String> = LazyLock::new(counts::screening_contribution);
static CASE_CONTRIBUTIONS: LazyLock<HashMap<CasePart, String>> = LazyLock::new(|| {
    std::iter::once(CasePart::All)
        .chain(CasePart::EACH)
        .map(|part| (part, counts::case_contribution(part)))
        .collect()
});

/// Events that change nothing any indicator counts (consent to reporting matters only
/// to the export, which reads the projections).
const UNCOUNTED: [&str; 2] = ["screening.consent_recorded", "screening.case_opened"];

/// Counters written per statement (9 values each, well under SQLite's 32,766).
const COUNTER_BATCH: usize = 500;

/// A write transaction on the pool's backend.
type WriteTransaction<P> = sqlx::Transaction<'static, <P as WritePool>::Db>;

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

/// Reads of the projections.
#[async_trait::async_trait]
pub trait Projections: EventSink + std::fmt::Debug {
    /// Counts, for one organisation or for all.
    async fn summary(&self, organization_id: Option<Uuid>) -> HavenResult<Summary>;
    /// Last applied sequence per source.
    async fn checkpoints(&self) -> HavenResult<HashMap<String, u64>>;
    /// The material of the indicators in `scope`, before suppression.
    async fn facts(&self, scope: &ReportScope) -> HavenResult<Facts>;
    /// The victims in `scope` whose newest consent covers reporting, as CTDC records
    /// (before k-anonymity), and how many others were left out for lack of consent.
    async fn export_records(&self, scope: &ReportScope) -> HavenResult<(Vec<CtdcRecord>, u64)>;
    /// What the last release of `dataset` published, per class (row) of the file.
    async fn released_classes(&self, dataset: &str) -> HavenResult<BTreeMap<String, u64>>;
    /// Records a release in the ledger with its change to the class or budget ledger,
    /// in one transaction, and answers the budgets it spent from (after it). Nothing
    /// is recorded if another release of the same classes was recorded since they
    /// were read (`Conflict`: try again), or if a dataset's budget would be exceeded
    /// (`Conflict`, saying what is left).
    async fn record_release(
        &self,
        release: NewRelease,
        change: LedgerChange<'_>,
    ) -> HavenResult<(Release, Vec<BudgetUse>)>;
    /// What releases under differential privacy have spent, per dataset.
    async fn privacy_budget(&self) -> HavenResult<Vec<BudgetUse>>;
    /// The newest releases.
    async fn releases(&self, limit: u32) -> HavenResult<Vec<Release>>;
    /// Empties every projection and checkpoint (not the ledger), so the feeds are
    /// applied again from the start. Run with the service stopped.
    async fn rebuild(&self) -> HavenResult<()>;
}

/// The projections of a database.
pub fn open(database: Database, keys: counts::RecordKeys) -> Arc<dyn Projections> {
    match database {
        Database::Sqlite(pool) => Arc::new(SqliteProjections { pool, keys }),
        Database::Postgres(pool) => Arc::new(PostgresProjections { pool, keys }),
    }
}

/// A value bound into a projection statement.
#[derive(Debug, Clone)]
enum Value {
    Id(Uuid),
    OptionalId(Option<Uuid>),
    Text(String),
    OptionalText(Option<String>),
    Int(i64),
    OptionalInt(Option<i64>),
    Bool(bool),
    Time(OffsetDateTime),
}

/// One write of a projection.
#[derive(Debug)]
struct Statement {
    sql: &'static str,
    values: Vec<Value>,
}

fn statement(sql: &'static str, values: Vec<Value>) -> Statement {
    Statement { sql, values }
}

/// CTDC's broad age bands, from the age at screening.
pub fn age_band(age: i32) -> &'static str {
    match age {
        i32::MIN..=8 => "0--8",
        9..=17 => "9--17",
        18..=20 => "18--20",
        21..=23 => "21--23",
        24..=26 => "24--26",
        27..=29 => "27--29",
        30..=38 => "30--38",
        39..=47 => "39--47",
        _ => "48+",
    }
}

fn text(payload: &serde_json::Value, name: &str) -> Option<String> {
    payload[name].as_str().map(str::to_owned)
}

fn id(payload: &serde_json::Value, name: &str) -> Option<Uuid> {
    payload[name]
        .as_str()
        .and_then(|value| Uuid::parse_str(value).ok())
}

fn list(payload: &serde_json::Value, name: &str) -> Option<String> {
    payload[name].as_array().map(|values| {
        let mut values: Vec<&str> = values
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        values.sort_unstable();
        values.join(",")
    })
}

fn values(payload: &serde_json::Value, name: &str) -> Vec<String> {
    payload[name]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// One row per value of a multi-valued category of a screening.
fn labels(screening: Uuid, kind: &'static str, values: Vec<String>) -> Vec<Statement> {
    values
        .into_iter()
        .map(|value| {
            statement(
                "INSERT INTO screening_labels (screening_id, kind, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                vec![Value::Id(screening), Value::Text(kind.to_owned()), Value::Text(value)],
            )
        })
        .collect()
}

fn time_of(payload: &serde_json::Value, name: &str) -> Option<OffsetDateTime> {
    payload[name]
        .as_i64()
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
}

/// What one event changes in the projections. Unknown events change nothing; an
/// event missing a field it should carry is an error (the feed retries, and the log
/// says which).
fn statements(
    event: &Event,
    aggregate: Uuid,
    organization: Uuid,
    at: OffsetDateTime,
) -> HavenResult<Vec<Statement>> {
    let payload: serde_json::Value =
        serde_json::from_str(&event.payload_json).map_err(HavenError::internal)?;
    // Erasure emptied this event: it says nothing any more, and counts nothing.
    if haven_events::is_redacted(&payload) {
        return Ok(Vec::new());
    }
    let missing = |field: &str| {
        HavenError::internal(std::io::Error::other(format!(
            "{} without {field}",
            event.event_type
        )))
    };
    use Value::*;
    Ok(match (event.source.as_str(), event.event_type.as_str()) {
        ("intake", "screening.created") => {
            let screened_at = time_of(&payload, "screened_at").unwrap_or(at);
            let age = payload["birth_year"].as_i64().map(|year| i64::from(screened_at.year()) - year);
            let mut writes = vec![statement(
                "INSERT INTO screenings (id, organization_id, referral_source, stage, created_at, gender, age_band, is_minor, \
                 citizenship, exploitation_types, region, created_epoch) \
                 VALUES ($1, $2, $3, 'screened', $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
                vec![
                    Id(aggregate),
                    Id(organization),
                    Text(text(&payload, "referral_source").ok_or_else(|| missing("referral_source"))?),
                    Time(screened_at),
                    OptionalText(text(&payload, "gender")),
                    OptionalText(age.and_then(|age| i32::try_from(age).ok()).map(|age| age_band(age).to_owned())),
                    Bool(payload["is_minor"].as_bool().unwrap_or(false)),
                    OptionalText(payload["citizenships"].as_array().and_then(|all| all.first()).and_then(|first| first.as_str()).map(str::to_uppercase)),
                    Text(list(&payload, "exploitation_types").unwrap_or_default()),
                    Text(text(&payload, "settlement").unwrap_or_default()),
                    Int(screened_at.unix_timestamp()),
                ],
            )];
            writes.extend(labels(aggregate, "exploitation", values(&payload, "exploitation_types")));
            writes.extend(labels(aggregate, "means", values(&payload, "means_of_control")));
            writes
        }
        ("intake", "screening.updated") => {
            let mut writes = Vec::new();
            for (field, kind) in [("exploitation_types", "exploitation"), ("means_of_control", "means")] {
                let Some(joined) = list(&payload, field) else { continue };
                if kind == "exploitation" {
                    // The export reads the types as one column.
                    writes.push(statement(
                        "UPDATE screenings SET exploitation_types = $2 WHERE id = $1",
                        vec![Id(aggregate), Text(joined)],
                    ));
                }
                writes.push(statement(
                    "DELETE FROM screening_labels WHERE screening_id = $1 AND kind = $2",
                    vec![Id(aggregate), Text(kind.to_owned())],
                ));
                writes.extend(labels(aggregate, kind, values(&payload, field)));
            }
            writes
        }
        ("intake", "screening.decision_recorded") => {
            let stage = text(&payload, "stage").ok_or_else(|| missing("stage"))?;
            let decided_at = time_of(&payload, "decided_at").unwrap_or(at);
            let mut writes = vec![statement("UPDATE screenings SET stage = $2 WHERE id = $1", vec![Id(aggregate), Text(stage.clone())])];
            if stage == "identified" {
                writes.push(statement(
                    "UPDATE screenings SET identified_epoch = COALESCE(identified_epoch, $2) WHERE id = $1",
                    vec![Id(aggregate), Int(decided_at.unix_timestamp())],
                ));
            }
            writes
        }
        ("intake", "screening.consent_recorded") if payload["purpose"] == "reporting" => vec![statement(
            "UPDATE screenings SET reporting_consent = $2 WHERE id = $1",
            vec![Id(aggregate), Bool(payload["given"].as_bool().unwrap_or(false))],
        )],
        ("intake", "screening.case_opened") => vec![statement(
            "UPDATE screenings SET case_id = $2 WHERE id = $1",
            vec![Id(aggregate), OptionalId(id(&payload, "case_id"))],
        )],
        ("intake", "screening.re_trafficking_confirmed") => {
            vec![statement("UPDATE screenings SET re_trafficked = TRUE WHERE id = $1", vec![Id(aggregate)])]
        }
        ("case", "case.opened") => vec![statement(
            "INSERT INTO cases (id, organization_id, status, opened_at, screening_id, stage) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO NOTHING",
            vec![
                Id(aggregate),
                Id(organization),
                Text(text(&payload, "status").ok_or_else(|| missing("status"))?),
                Time(at),
                OptionalId(id(&payload, "screening_id")),
                Text(text(&payload, "stage").unwrap_or_else(|| "new".to_owned())),
            ],
        )],
        ("case", "case.stage_changed") => vec![statement(
            "UPDATE cases SET stage = $2, status = COALESCE($3, status) WHERE id = $1",
            vec![Id(aggregate), Text(text(&payload, "to").ok_or_else(|| missing("to"))?), OptionalText(text(&payload, "status"))],
        )],
        ("case", "case.closed") => vec![statement(
            "UPDATE cases SET stage = 'closed', status = $2, closure_reason = $3 WHERE id = $1",
            vec![
                Id(aggregate),
                Text(text(&payload, "status").ok_or_else(|| missing("status"))?),
                OptionalText(text(&payload, "reason")),
            ],
        )],
        ("case", "case.reopened") => vec![statement(
            "UPDATE cases SET stage = $2, status = 'active', closure_reason = NULL WHERE id = $1",
            vec![Id(aggregate), Text(text(&payload, "stage").unwrap_or_else(|| "assessment".to_owned()))],
        )],
        ("case", "case.transferred") => vec![statement(
            "UPDATE cases SET organization_id = $2 WHERE id = $1",
            vec![Id(aggregate), Id(id(&payload, "to").ok_or_else(|| missing("to"))?)],
        )],
        ("case", "case.service_added") => {
            let service = id(&payload, "service_id").ok_or_else(|| missing("service_id"))?;
            let provider = id(&payload, "provider_organization_id").ok_or_else(|| missing("provider_organization_id"))?;
            vec![
                statement(
                    "INSERT INTO case_services (id, case_id, service_type, provider_id, status, recorded_at, provider) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                    vec![
                        Id(service),
                        Id(aggregate),
                        Text(text(&payload, "type").ok_or_else(|| missing("type"))?),
                        Id(provider),
                        Text(text(&payload, "status").unwrap_or_else(|| "planned".to_owned())),
                        Time(at),
                        Text(provider.to_string()),
                    ],
                ),
                statement(
                    "UPDATE cases SET first_service_epoch = COALESCE(first_service_epoch, $2) WHERE id = $1",
                    vec![Id(aggregate), Int(at.unix_timestamp())],
                ),
            ]
        }
        ("case", "case.service_updated") => vec![statement(
            "UPDATE case_services SET status = $2 WHERE id = $1",
            vec![
                Id(id(&payload, "service_id").ok_or_else(|| missing("service_id"))?),
                Text(text(&payload, "to").ok_or_else(|| missing("to"))?),
            ],
        )],
        ("case", "case.payment_recorded") => {
            let amount = text(&payload, "amount").ok_or_else(|| missing("amount"))?;
            let minor = parse_amount(&amount).ok_or_else(|| missing("a readable amount"))?;
            vec![statement(
                "INSERT INTO payments (id, case_id, currency, amount_minor, recorded_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO NOTHING",
                vec![
                    Id(id(&payload, "payment_id").ok_or_else(|| missing("payment_id"))?),
                    Id(aggregate),
                    Text(text(&payload, "currency").ok_or_else(|| missing("currency"))?),
                    Int(minor),
                    Time(at),
                ],
            )]
        }
        ("case", "case.assessed") => payload["scores"]
            .as_object()
            .ok_or_else(|| missing("scores"))?
            .iter()
            .filter_map(|(domain, score)| score.as_i64().map(|score| (domain.clone(), score)))
            .map(|(domain, score)| {
                statement(
                    "INSERT INTO assessment_scores (case_id, domain, first_score, latest_score, assessments) VALUES ($1, $2, $3, $3, 1) \
                     ON CONFLICT (case_id, domain) DO UPDATE SET latest_score = $3, assessments = assessment_scores.assessments + 1",
                    vec![Id(aggregate), Text(domain), Int(score)],
                )
            })
            .collect(),
        ("case", "case.follow_up_scheduled") => vec![statement(
            "INSERT INTO follow_ups (id, case_id, due_on) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
            vec![
                Id(id(&payload, "follow_up_id").ok_or_else(|| missing("follow_up_id"))?),
                Id(aggregate),
                Text(text(&payload, "due_on").ok_or_else(|| missing("due_on"))?),
            ],
        )],
        ("case", "case.follow_up_done") => vec![statement(
            "UPDATE follow_ups SET done = TRUE WHERE id = $1",
            vec![Id(id(&payload, "follow_up_id").ok_or_else(|| missing("follow_up_id"))?)],
        )],
        ("referral", "organization.created") => vec![statement(
            "INSERT INTO organizations (id, organization_type) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            vec![Id(aggregate), Text(text(&payload, "organization_type").ok_or_else(|| missing("organization_type"))?)],
        )],
        ("referral", "referral.requested") => vec![statement(
            "INSERT INTO referrals (id, case_id, from_organization_id, to_organization_id, service_type, status, requested_at, \
             requested_epoch, accept_by_epoch, outcome_due_on, facility_id) \
             VALUES ($1, $2, $3, $4, $5, 'requested', $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
            vec![
                Id(aggregate),
                Id(id(&payload, "case_id").ok_or_else(|| missing("case_id"))?),
                Id(id(&payload, "from_organization_id").ok_or_else(|| missing("from_organization_id"))?),
                Id(id(&payload, "to_organization_id").ok_or_else(|| missing("to_organization_id"))?),
                Text(text(&payload, "service_type").ok_or_else(|| missing("service_type"))?),
                Time(at),
                Int(at.unix_timestamp()),
                OptionalInt(payload["accept_by"].as_i64()),
                OptionalText(text(&payload, "outcome_due_on")),
                OptionalId(id(&payload, "facility_id")),
            ],
        )],
        ("referral", kind) if kind.starts_with("referral.") => {
            let status = text(&payload, "status").ok_or_else(|| missing("status"))?;
            let mut writes = vec![statement("UPDATE referrals SET status = $2 WHERE id = $1", vec![Id(aggregate), Text(status.clone())])];
            let day = at.unix_timestamp().div_euclid(86_400);
            match status.as_str() {
                // A place held (facilities that count places).
                "accepted" if payload["capacity_reserved"] == true => writes.push(statement(
                    "INSERT INTO occupancy_changes (referral_id, facility_id, delta, changed_day) \
                     SELECT id, facility_id, 1, $2 FROM referrals WHERE id = $1 AND facility_id IS NOT NULL \
                     ON CONFLICT DO NOTHING",
                    vec![Id(aggregate), Int(day)],
                )),
                // Released, if one was held.
                "completed" | "cancelled" | "revoked" => writes.push(statement(
                    "INSERT INTO occupancy_changes (referral_id, facility_id, delta, changed_day) \
                     SELECT referral_id, facility_id, -1, $2 FROM occupancy_changes WHERE referral_id = $1 AND delta = 1 \
                     ON CONFLICT DO NOTHING",
                    vec![Id(aggregate), Int(day)],
                )),
                _ => {}
            }
            if status == "accepted" {
                writes.push(statement(
                    "UPDATE referrals SET accepted_at = COALESCE(accepted_at, $2), accepted_epoch = COALESCE(accepted_epoch, $3) \
                     WHERE id = $1",
                    vec![Id(aggregate), Time(at), Int(at.unix_timestamp())],
                ));
            }
            writes
        }
        _ => Vec::new(),
    })
}

/// "150.00" or "-12.5" in hundredths.
fn parse_amount(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (units, cents) = digits.split_once('.').unwrap_or((digits, ""));
    let units: i64 = units.parse().ok()?;
    let cents: i64 = match cents.len() {
        0 => 0,
        1 => cents.parse::<i64>().ok()? * 10,
        2 => cents.parse().ok()?,
        _ => return None,
    };
    let value = units.checked_mul(100)?.checked_add(cents)?;
    Some(if negative { -value } else { value })
}

const SUMMARY: &str = "SELECT \
    (SELECT COUNT(*) FROM screenings WHERE $1 IS NULL OR organization_id = $1), \
    (SELECT COUNT(*) FROM screenings WHERE stage = 'identified' AND ($1 IS NULL OR organization_id = $1)), \
    (SELECT COUNT(*) FROM cases WHERE $1 IS NULL OR organization_id = $1), \
    (SELECT COUNT(*) FROM cases WHERE status IN ('active', 'follow_up') AND ($1 IS NULL OR organization_id = $1)), \
    (SELECT COUNT(*) FROM organizations), \
    (SELECT COUNT(*) FROM screenings WHERE re_trafficked AND ($1 IS NULL OR organization_id = $1))";

macro_rules! projections {
    ($name:ident, $pool:ty, $begin_read:literal, $serialize:literal) => {
        /// Projections on one backend.
        #[derive(Debug)]
        pub struct $name {
            pool: $pool,
            keys: counts::RecordKeys,
        }

        #[async_trait::async_trait]
        impl EventSink for $name {
            async fn checkpoint(&self, source: &str) -> HavenResult<i64> {
                let mut connection = self.pool.acquire().await.map_err(db_error)?;
                CheckpointWrite::checkpoint(&mut *connection, source).await.map_err(db_error)
            }

            async fn apply(&self, event: &Event) -> HavenResult<()> {
                self.apply_together(std::slice::from_ref(event)).await
            }

            async fn apply_batch(&self, events: &[Event]) -> HavenResult<()> {
                if self.apply_together(events).await.is_ok() {
                    return Ok(());
                }
                // One of them cannot be applied: apply those before it, so that the
                // checkpoint stops just before it and the log names it.
                for event in events {
                    self.apply_together(std::slice::from_ref(event)).await?;
                }
                Ok(())
            }
        }

        impl $name {
            /// Applies `events` (of one feed, in order) in one transaction with their
            /// checkpoint and the counters they change.
            #[tracing::instrument(skip_all, fields(events = events.len()))]
            async fn apply_together(&self, events: &[Event]) -> HavenResult<()> {
                let keys = &self.keys;
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                // One transaction at a time across the feeds: a person's or a case's
                // contribution is read before and after a change, and a change
                // committed by another feed in between would be counted twice.
                if !$serialize.is_empty() {
                    sqlx::query($serialize).execute(&mut *tx).await.map_err(db_error)?;
                }
                let mut delta = counts::Delta::default();
                for event in events {
                    Self::apply_in(&mut tx, event, &mut delta, keys).await?;
                }
                let changes: Vec<(counts::Key, counts::Change)> = delta.into_changes().collect();
                for batch in changes.chunks(COUNTER_BATCH) {
                    let mut add = sqlx::QueryBuilder::new(counts::ADD);
                    add.push_values(batch, |mut row, ((grain, bucket, organization_id, region, indicator, label, sublabel), (n, amount, key))| {
                        row.push_bind(*grain)
                            .push_bind(*bucket)
                            .push_bind(*organization_id)
                            .push_bind(region.clone())
                            .push_bind(indicator.clone())
                            .push_bind(label.clone())
                            .push_bind(sublabel.clone())
                            .push_bind(*n)
                            .push_bind(*amount)
                            .push_bind(*key);
                    });
                    add.push(counts::ADD_CONFLICT);
                    add.build().execute(&mut *tx).await.map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(())
            }

            /// Applies one event in `tx`, adding what it changes in the counters to
            /// `delta`. An event at or below the checkpoint changes nothing.
            #[tracing::instrument(skip_all, fields(source = %event.source, sequence = event.sequence, event_type = %event.event_type))]
            async fn apply_in(
                tx: &mut WriteTransaction<$pool>,
                event: &Event,
                delta: &mut counts::Delta,
                keys: &counts::RecordKeys,
            ) -> HavenResult<()> {
                let sequence = i64::try_from(event.sequence).map_err(HavenError::internal)?;
                let aggregate_id = Uuid::parse_str(&event.aggregate_id).map_err(HavenError::internal)?;
                let organization_id = Uuid::parse_str(&event.organization_id).map_err(HavenError::internal)?;
                let occurred_at = event
                    .occurred_at
                    .as_ref()
                    .and_then(haven_proto::from_timestamp)
                    .unwrap_or_else(OffsetDateTime::now_utc);
                let statements = statements(event, aggregate_id, organization_id, occurred_at)?;
                if !CheckpointWrite::advance_checkpoint(&mut **tx, &event.source, sequence).await.map_err(db_error)? {
                    // Already applied (a replay after a reconnect): nothing to do.
                    return Ok(());
                }
                let roots = if statements.is_empty() || UNCOUNTED.contains(&event.event_type.as_str()) {
                    Vec::new()
                } else {
                    Self::roots(tx, event, aggregate_id).await?
                };
                for root in &roots {
                    delta.add(&Self::contribution(tx, *root).await?, -1, keys.of(root.id()));
                }
                for statement in statements {
                    let mut query = sqlx::query(statement.sql);
                    for value in statement.values {
                        query = match value {
                            Value::Id(value) => query.bind(value),
                            Value::OptionalId(value) => query.bind(value),
                            Value::Text(value) => query.bind(value),
                            Value::OptionalText(value) => query.bind(value),
                            Value::Int(value) => query.bind(value),
                            Value::OptionalInt(value) => query.bind(value),
                            Value::Bool(value) => query.bind(value),
                            Value::Time(value) => query.bind(value),
                        };
                    }
                    query.execute(&mut **tx).await.map_err(db_error)?;
                }
                for root in &roots {
                    delta.add(&Self::contribution(tx, *root).await?, 1, keys.of(root.id()));
                }
                Ok(())
            }

            /// The screenings and cases whose contribution to the indicators `event`
            /// can change.
            async fn roots(tx: &mut WriteTransaction<$pool>, event: &Event, aggregate: Uuid) -> HavenResult<Vec<Root>> {
                Ok(match event.source.as_str() {
                    "intake" => {
                        let mut roots = vec![Root::Screening(aggregate)];
                        if event.event_type == "screening.created" {
                            // A case that arrived before its screening is counted
                            // in the screening's region from now on.
                            let cases: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM cases WHERE screening_id = $1")
                                .bind(aggregate)
                                .fetch_all(&mut **tx)
                                .await
                                .map_err(db_error)?;
                            roots.extend(cases.into_iter().map(|(case,)| Root::Case(case, CasePart::All)));
                        }
                        roots
                    }
                    "case" => vec![Root::Case(aggregate, CasePart::changed_by(&event.event_type))],
                    "referral" if event.event_type.starts_with("referral.") => {
                        let known: Option<(Uuid,)> = sqlx::query_as("SELECT case_id FROM referrals WHERE id = $1")
                            .bind(aggregate)
                            .fetch_optional(&mut **tx)
                            .await
                            .map_err(db_error)?;
                        let case = known.map(|(case,)| case).or_else(|| {
                            serde_json::from_str::<serde_json::Value>(&event.payload_json)
                                .ok()
                                .and_then(|payload| id(&payload, "case_id"))
                        });
                        case.map(|case| Root::Case(case, CasePart::Referrals)).into_iter().collect()
                    }
                    _ => Vec::new(),
                })
            }

            /// What `root` contributes to the indicators now, each row with where it
            /// is counted.
            async fn contribution(tx: &mut WriteTransaction<$pool>, root: Root) -> HavenResult<Vec<counts::ContributionRow>> {
                let (contribution, id) = match root {
                    Root::Screening(id) => (SCREENING_CONTRIBUTION.as_str(), id),
                    Root::Case(id, part) => (CASE_CONTRIBUTIONS[&part].as_str(), id),
                };
                sqlx::query_as(contribution).bind(id).fetch_all(&mut **tx).await.map_err(db_error)
            }
        }

        #[async_trait::async_trait]
        impl Projections for $name {
            async fn summary(&self, organization_id: Option<Uuid>) -> HavenResult<Summary> {
                let (screenings, identified, cases, open, organizations, re_trafficked): (i64, i64, i64, i64, i64, i64) =
                    sqlx::query_as(SUMMARY)
                        .bind(organization_id)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_error)?;
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

            async fn checkpoints(&self) -> HavenResult<HashMap<String, u64>> {
                let rows: Vec<(String, i64)> = sqlx::query_as("SELECT source, sequence FROM event_checkpoints")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(rows
                    .into_iter()
                    .map(|(source, sequence)| (source, u64::try_from(sequence).unwrap_or_default()))
                    .collect())
            }
            async fn facts(&self, scope: &ReportScope) -> HavenResult<Facts> {
                let keys = &self.keys;
                // One read transaction: the counters and the places held are of one moment.
                let mut snapshot = self.pool.begin_with($begin_read).await.map_err(db_error)?;
                let buckets = counts::Buckets::of(scope);
                let rows: Vec<counts::Row> = sqlx::query_as(counts::READ)
                    .bind(buckets.months.0)
                    .bind(buckets.months.1)
                    .bind(buckets.head_days.0)
                    .bind(buckets.head_days.1)
                    .bind(buckets.tail_days.0)
                    .bind(buckets.tail_days.1)
                    .bind(scope.organization_id)
                    .bind(scope.region.as_deref())
                    .fetch_all(&mut *snapshot)
                    .await
                    .map_err(db_error)?;
                // Places held at the end of each month, in the facilities of the
                // organisation (or all), from daily changes.
                let changes: Vec<(i64, Uuid, i64)> = sqlx::query_as(
                    "SELECT o.changed_day, o.referral_id, CAST(SUM(o.delta) AS BIGINT) FROM occupancy_changes o \
                     JOIN referrals r ON r.id = o.referral_id WHERE ($1 IS NULL OR r.to_organization_id = $1) \
                     GROUP BY o.changed_day, o.referral_id ORDER BY 1",
                )
                .bind(scope.organization_id)
                .fetch_all(&mut *snapshot)
                .await
                .map_err(db_error)?;
                // Each change as one place (with the referral's key) taken or given back.
                let changes: Vec<(i64, Count, i64)> = changes
                    .into_iter()
                    .filter(|(_, _, delta)| *delta != 0)
                    .map(|(day, referral, delta)| (day, Count::new(delta.unsigned_abs(), keys.of(referral)), delta.signum()))
                    .collect();
                snapshot.commit().await.map_err(db_error)?;
                let now = OffsetDateTime::now_utc();
                let mut facts = counts::facts(rows, now);
                facts.tables.push(occupancy_by_month(&changes, scope, now));
                Ok(facts)
            }

            async fn export_records(&self, scope: &ReportScope) -> HavenResult<(Vec<CtdcRecord>, u64)> {
                let rows: Vec<(OffsetDateTime, Option<String>, Option<String>, bool, Option<String>, String, Option<bool>)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT s.created_at, s.gender, s.age_band, s.is_minor, s.citizenship, s.exploitation_types, s.reporting_consent \
                         FROM screenings s WHERE s.stage IN {VICTIM_STAGES} AND {SCREENING_SCOPE}"
                    )))
                    .bind(scope.from)
                    .bind(scope.until)
                    .bind(scope.organization_id)
                    .bind(scope.region.as_deref())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                let mut records = Vec::new();
                let mut without_consent = 0;
                for (screened_at, gender, age_band, is_minor, citizenship, exploitation, consent) in rows {
                    // Only persons whose newest answer on reporting is yes.
                    if consent != Some(true) {
                        without_consent += 1;
                        continue;
                    }
                    let types: Vec<&str> = exploitation.split(',').filter(|kind| !kind.is_empty()).collect();
                    let minor_band = age_band.as_deref() == Some("0--8") || age_band.as_deref() == Some("9--17");
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
                        is_forced_labour: types.iter().any(|kind| *kind == "forced_labour"),
                        is_sexual_exploit: types.iter().any(|kind| *kind == "sexual_exploitation"),
                        is_other_exploit: types
                            .iter()
                            .any(|kind| *kind != "forced_labour" && *kind != "sexual_exploitation"),
                    });
                }
                Ok((records, without_consent))
            }

            async fn released_classes(&self, dataset: &str) -> HavenResult<BTreeMap<String, u64>> {
                let rows: Vec<(String, i64)> = sqlx::query_as("SELECT class, released FROM release_classes WHERE dataset = $1")
                    .bind(dataset)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(rows.into_iter().map(|(class, released)| (class, u64::try_from(released).unwrap_or_default())).collect())
            }

            async fn record_release(
                &self,
                release: NewRelease,
                change: LedgerChange<'_>,
            ) -> HavenResult<(Release, Vec<BudgetUse>)> {
                let id = Uuid::now_v7();
                let released_at = OffsetDateTime::now_utc();
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                let mut budgets = Vec::new();
                let mut epsilon_micro = None;
                match change {
                    LedgerChange::Classes { dataset, previous, classes } => {
                        if !$serialize.is_empty() {
                            sqlx::query($serialize).execute(&mut *tx).await.map_err(db_error)?;
                        }
                        let stored: Vec<(String, i64)> = sqlx::query_as("SELECT class, released FROM release_classes WHERE dataset = $1")
                            .bind(dataset)
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(db_error)?;
                        let stored: BTreeMap<String, u64> = stored
                            .into_iter()
                            .map(|(class, released)| (class, u64::try_from(released).unwrap_or_default()))
                            .collect();
                        if &stored != previous {
                            return Err(HavenError::new(
                                haven_error::ErrorCode::Conflict,
                                "another release of the same data was made at the same time; release again",
                            ));
                        }
                        sqlx::query("DELETE FROM release_classes WHERE dataset = $1")
                            .bind(dataset)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_error)?;
                        for (class, released) in classes {
                            sqlx::query("INSERT INTO release_classes (dataset, class, released) VALUES ($1, $2, $3)")
                                .bind(dataset)
                                .bind(class)
                                .bind(i64::try_from(*released).unwrap_or(i64::MAX))
                                .execute(&mut *tx)
                                .await
                                .map_err(db_error)?;
                        }
                    }
                    LedgerChange::Budget(spend) => {
                        // One statement per dataset adds the spend only while it stays
                        // within the budget; datasets in ascending order, so concurrent
                        // releases lock them in the same order.
                        for dataset in &spend.datasets {
                            let spent: Option<(i64,)> = sqlx::query_as(
                                "INSERT INTO privacy_budget (dataset, spent_micro) VALUES ($1, $2) \
                                 ON CONFLICT (dataset) DO UPDATE SET spent_micro = privacy_budget.spent_micro + excluded.spent_micro \
                                 WHERE privacy_budget.spent_micro + excluded.spent_micro <= $3 \
                                 RETURNING spent_micro",
                            )
                            .bind(dataset)
                            .bind(spend.epsilon_micro)
                            .bind(spend.budget_micro)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_error)?;
                            let Some((spent_micro,)) = spent else {
                                let (spent_micro,): (i64,) = sqlx::query_as("SELECT spent_micro FROM privacy_budget WHERE dataset = $1")
                                    .bind(dataset)
                                    .fetch_one(&mut *tx)
                                    .await
                                    .map_err(db_error)?;
                                return Err(HavenError::new(
                                    haven_error::ErrorCode::Conflict,
                                    privacy::over_budget(dataset, spent_micro, spend),
                                ));
                            };
                            budgets.push(BudgetUse { dataset: dataset.clone(), spent_micro });
                        }
                        epsilon_micro = Some(spend.epsilon_micro);
                    }
                }
                sqlx::query(
                    "INSERT INTO releases (id, kind, parameters, row_count, withheld, sha256, released_by, organization_id, released_at, epsilon_micro) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(id)
                .bind(release.kind)
                .bind(&release.parameters)
                .bind(i64::try_from(release.rows).unwrap_or(i64::MAX))
                .bind(i64::try_from(release.withheld).unwrap_or(i64::MAX))
                .bind(&release.sha256)
                .bind(&release.released_by)
                .bind(release.organization_id)
                .bind(released_at)
                .bind(epsilon_micro)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                let release = Release {
                    id,
                    kind: release.kind.to_owned(),
                    parameters: release.parameters,
                    rows: release.rows,
                    withheld: release.withheld,
                    sha256: release.sha256,
                    released_by: release.released_by,
                    organization_id: release.organization_id,
                    released_at,
                    epsilon: epsilon_micro.map(privacy::micros),
                };
                Ok((release, budgets))
            }

            async fn privacy_budget(&self) -> HavenResult<Vec<BudgetUse>> {
                let rows: Vec<(String, i64)> = sqlx::query_as("SELECT dataset, spent_micro FROM privacy_budget ORDER BY dataset")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(rows.into_iter().map(|(dataset, spent_micro)| BudgetUse { dataset, spent_micro }).collect())
            }

            async fn releases(&self, limit: u32) -> HavenResult<Vec<Release>> {
                type Row = (Uuid, String, String, i64, i64, String, String, Uuid, OffsetDateTime, Option<i64>);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT id, kind, parameters, row_count, withheld, sha256, released_by, organization_id, released_at, epsilon_micro \
                     FROM releases ORDER BY seq DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(rows
                    .into_iter()
                    .map(|(id, kind, parameters, rows, withheld, sha256, released_by, organization_id, released_at, epsilon_micro)| Release {
                        id,
                        kind,
                        parameters,
                        rows: u64::try_from(rows).unwrap_or_default(),
                        withheld: u64::try_from(withheld).unwrap_or_default(),
                        sha256,
                        released_by,
                        organization_id,
                        released_at,
                        epsilon: epsilon_micro.map(privacy::micros),
                    })
                    .collect())
            }

            async fn rebuild(&self) -> HavenResult<()> {
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                for table in [
                    "screenings",
                    "cases",
                    "organizations",
                    "case_services",
                    "payments",
                    "referrals",
                    "assessment_scores",
                    "follow_ups",
                    "screening_labels",
                    "occupancy_changes",
                    "indicator_counts",
                    "event_checkpoints",
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)
            }

        }
    };
}

// A report reads one snapshot, so its tables agree with each other. Events are
// applied one at a time: SQLite's write transactions already are; on Postgres a
// transaction-scoped advisory lock does it.
projections!(SqliteProjections, SqlitePool, "BEGIN", "");
projections!(
    PostgresProjections,
    PgPool,
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    "SELECT pg_advisory_xact_lock(hashtext('haven.reporting.apply'))"
);

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
