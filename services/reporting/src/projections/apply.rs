//! Applying the feeds: each batch of events in one transaction with its checkpoint
//! and the indicator counters it changes, so an event counts exactly once even when
//! a feed is replayed after a crash or a restart.

use std::collections::HashMap;
use std::sync::LazyLock;

use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::{HavenError, HavenResult};
use haven_events::{CheckpointWrite, EventSink};
use haven_proto::common::v1::Event;
use haven_storage::sql::{self, Tx};
use haven_storage::{Database, db_error};

use super::events::{id, statements};
use super::{ProjectionStore, serialize_appliers};
use crate::counts::{self, CasePart, Root};

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

/// Counters written per statement (10 values each, well under SQLite's 32,766).
const COUNTER_BATCH: usize = 500;

/// The values of one counter row of [`counts::ADD`].
const COUNTER_VALUES: usize = 10;

/// The tables a rebuild empties: every projection, the counters and the checkpoints.
const PROJECTED_TABLES: [&str; 12] = [
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
];

#[async_trait::async_trait]
impl EventSink for ProjectionStore {
    async fn checkpoint(&self, source: &str) -> HavenResult<i64> {
        // One row read: a connection of the pool, no transaction.
        let checkpoint = match &self.database {
            Database::Sqlite(pool) => {
                let mut connection = pool.acquire().await.map_err(db_error)?;
                CheckpointWrite::checkpoint(&mut *connection, source).await
            }
            Database::Postgres(pool) => {
                let mut connection = pool.acquire().await.map_err(db_error)?;
                CheckpointWrite::checkpoint(&mut *connection, source).await
            }
        };
        checkpoint.map_err(db_error)
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

impl ProjectionStore {
    /// Applies `events` (of one feed, in order) in one transaction with their
    /// checkpoint and the counters they change.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn apply_together(&self, events: &[Event]) -> HavenResult<()> {
        let mut tx = self.database.begin_write().await?;
        // One transaction at a time across the feeds: a person's or a case's
        // contribution is read before and after a change, and a change
        // committed by another feed in between would be counted twice.
        serialize_appliers(&mut tx).await?;
        let mut delta = counts::Delta::default();
        for event in events {
            self.apply_in(&mut tx, event, &mut delta).await?;
        }
        let changes: Vec<(counts::Key, counts::Change)> = delta.into_changes().collect();
        for batch in changes.chunks(COUNTER_BATCH) {
            add_counters(batch).execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Applies one event in `tx`, adding what it changes in the counters to
    /// `delta`. An event at or below the checkpoint changes nothing.
    #[tracing::instrument(skip_all, fields(source = %event.source, sequence = event.sequence, event_type = %event.event_type))]
    async fn apply_in(
        &self,
        tx: &mut Tx,
        event: &Event,
        delta: &mut counts::Delta,
    ) -> HavenResult<()> {
        let sequence = i64::try_from(event.sequence).map_err(HavenError::internal)?;
        let aggregate_id = Uuid::parse_str(&event.aggregate_id).map_err(HavenError::internal)?;
        let organization_id =
            Uuid::parse_str(&event.organization_id).map_err(HavenError::internal)?;
        let occurred_at = event
            .occurred_at
            .as_ref()
            .and_then(haven_proto::from_timestamp)
            .unwrap_or_else(OffsetDateTime::now_utc);
        let statements = statements(event, aggregate_id, organization_id, occurred_at)?;
        if !CheckpointWrite::advance_checkpoint(tx, &event.source, sequence)
            .await
            .map_err(db_error)?
        {
            // Already applied (a replay after a reconnect): nothing to do.
            return Ok(());
        }
        let roots = if statements.is_empty() || UNCOUNTED.contains(&event.event_type.as_str()) {
            Vec::new()
        } else {
            roots(tx, event, aggregate_id).await?
        };
        for root in &roots {
            delta.add(&contribution(tx, *root).await?, -1, self.keys.of(root.id()));
        }
        for statement in statements {
            statement.execute(&mut *tx).await?;
        }
        for root in &roots {
            delta.add(&contribution(tx, *root).await?, 1, self.keys.of(root.id()));
        }
        Ok(())
    }
}

/// Last applied sequence per source.
pub(super) async fn checkpoints(database: &Database) -> HavenResult<HashMap<String, u64>> {
    let rows: Vec<(String, i64)> = sql::query_as("SELECT source, sequence FROM event_checkpoints")
        .fetch_all(database)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(source, sequence)| (source, u64::try_from(sequence).unwrap_or_default()))
        .collect())
}

/// Empties every projection and checkpoint (not the ledger), so the feeds are applied
/// again from the start.
pub(super) async fn rebuild(database: &Database) -> HavenResult<()> {
    let mut tx = database.begin_write().await?;
    for table in PROJECTED_TABLES {
        sql::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The screenings and cases whose contribution to the indicators `event` can change.
async fn roots(tx: &mut Tx, event: &Event, aggregate: Uuid) -> HavenResult<Vec<Root>> {
    Ok(match event.source.as_str() {
        "intake" => {
            let mut roots = vec![Root::Screening(aggregate)];
            if event.event_type == "screening.created" {
                // A case that arrived before its screening is counted in the
                // screening's region from now on.
                let cases: Vec<(Uuid,)> =
                    sql::query_as("SELECT id FROM cases WHERE screening_id = $1")
                        .bind(aggregate)
                        .fetch_all(&mut *tx)
                        .await?;
                roots.extend(
                    cases
                        .into_iter()
                        .map(|(case,)| Root::Case(case, CasePart::All)),
                );
            }
            roots
        }
        "case" => vec![Root::Case(
            aggregate,
            CasePart::changed_by(&event.event_type),
        )],
        "referral" if event.event_type.starts_with("referral.") => {
            let known: Option<(Uuid,)> =
                sql::query_as("SELECT case_id FROM referrals WHERE id = $1")
                    .bind(aggregate)
                    .fetch_optional(&mut *tx)
                    .await?;
            let case = known.map(|(case,)| case).or_else(|| {
                serde_json::from_str::<serde_json::Value>(&event.payload_json)
                    .ok()
                    .and_then(|payload| id(&payload, "case_id"))
            });
            case.map(|case| Root::Case(case, CasePart::Referrals))
                .into_iter()
                .collect()
        }
        _ => Vec::new(),
    })
}

/// What `root` contributes to the indicators now, each row with where it is counted.
async fn contribution(tx: &mut Tx, root: Root) -> HavenResult<Vec<counts::ContributionRow>> {
    let (contribution, id) = match root {
        Root::Screening(id) => (SCREENING_CONTRIBUTION.as_str(), id),
        Root::Case(id, part) => (CASE_CONTRIBUTIONS[&part].as_str(), id),
    };
    Ok(sql::query_as(contribution).bind(id).fetch_all(tx).await?)
}

/// One statement adding `batch` to the counters: [`counts::ADD`], a row of values
/// per counter, then [`counts::ADD_CONFLICT`].
fn add_counters(batch: &[(counts::Key, counts::Change)]) -> sql::Query {
    let rows: Vec<String> = (0..batch.len())
        .map(|row| {
            let first = row * COUNTER_VALUES + 1;
            let placeholders: Vec<String> = (first..first + COUNTER_VALUES)
                .map(|number| format!("${number}"))
                .collect();
            format!("({})", placeholders.join(", "))
        })
        .collect();
    let statement = format!(
        "{}VALUES {}{}",
        counts::ADD,
        rows.join(", "),
        counts::ADD_CONFLICT
    );
    let mut add = sql::query(sqlx::AssertSqlSafe(statement));
    for ((grain, bucket, organization_id, region, indicator, label, sublabel), (n, amount, key)) in
        batch
    {
        add = add
            .bind(*grain)
            .bind(*bucket)
            .bind(*organization_id)
            .bind(region.as_str())
            .bind(indicator.as_str())
            .bind(label.as_str())
            .bind(sublabel.as_str())
            .bind(*n)
            .bind(*amount)
            .bind(*key);
    }
    add
}
