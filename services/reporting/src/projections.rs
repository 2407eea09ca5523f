//! Projections: one implementation per backend (shared SQL). Each event is applied
//! in one transaction with its checkpoint, so it counts exactly once even when a feed
//! is replayed after a crash or a restart.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::{HavenError, HavenResult};
use haven_events::{CheckpointWrite, EventSink};
use haven_proto::common::v1::Event;
use haven_storage::{Database, WritePool, db_error};

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

/// Reads of the projections.
#[async_trait::async_trait]
pub trait Projections: EventSink + std::fmt::Debug {
    /// Counts, for one organisation or for all.
    async fn summary(&self, organization_id: Option<Uuid>) -> HavenResult<Summary>;
    /// Last applied sequence per source.
    async fn checkpoints(&self) -> HavenResult<HashMap<String, u64>>;
}

/// The projections of a database.
pub fn open(database: Database) -> Arc<dyn Projections> {
    match database {
        Database::Sqlite(pool) => Arc::new(SqliteProjections { pool }),
        Database::Postgres(pool) => Arc::new(PostgresProjections { pool }),
    }
}

/// What reporting needs from each event type it understands.
#[derive(Debug)]
enum Effect {
    ScreeningCreated { referral_source: String },
    DecisionRecorded { stage: String },
    ReTraffickingConfirmed,
    CaseOpened { status: String },
    OrganizationCreated { organization_type: String },
    Ignored,
}

#[derive(Deserialize)]
struct ScreeningCreated {
    referral_source: String,
}

#[derive(Deserialize)]
struct DecisionRecorded {
    stage: String,
}

#[derive(Deserialize)]
struct CaseOpened {
    status: String,
}

#[derive(Deserialize)]
struct OrganizationCreated {
    organization_type: String,
}

fn effect(event: &Event) -> HavenResult<Effect> {
    fn parse<T: serde::de::DeserializeOwned>(event: &Event) -> HavenResult<T> {
        serde_json::from_str(&event.payload_json).map_err(HavenError::internal)
    }
    Ok(match (event.source.as_str(), event.event_type.as_str()) {
        ("intake", "screening.created") => Effect::ScreeningCreated {
            referral_source: parse::<ScreeningCreated>(event)?.referral_source,
        },
        ("intake", "screening.decision_recorded") => Effect::DecisionRecorded {
            stage: parse::<DecisionRecorded>(event)?.stage,
        },
        ("intake", "screening.re_trafficking_confirmed") => Effect::ReTraffickingConfirmed,
        ("case", "case.opened") => Effect::CaseOpened {
            status: parse::<CaseOpened>(event)?.status,
        },
        ("referral", "organization.created") => Effect::OrganizationCreated {
            organization_type: parse::<OrganizationCreated>(event)?.organization_type,
        },
        _ => Effect::Ignored,
    })
}

const SUMMARY: &str = "SELECT \
    (SELECT COUNT(*) FROM screenings WHERE $1 IS NULL OR organization_id = $1), \
    (SELECT COUNT(*) FROM screenings WHERE stage = 'identified' AND ($1 IS NULL OR organization_id = $1)), \
    (SELECT COUNT(*) FROM cases WHERE $1 IS NULL OR organization_id = $1), \
    (SELECT COUNT(*) FROM cases WHERE status IN ('active', 'follow_up') AND ($1 IS NULL OR organization_id = $1)), \
    (SELECT COUNT(*) FROM organizations), \
    (SELECT COUNT(*) FROM screenings WHERE re_trafficked AND ($1 IS NULL OR organization_id = $1))";

macro_rules! projections {
    ($name:ident, $pool:ty) => {
        /// Projections on one backend.
        #[derive(Debug)]
        pub struct $name {
            pool: $pool,
        }

        #[async_trait::async_trait]
        impl EventSink for $name {
            async fn checkpoint(&self, source: &str) -> HavenResult<i64> {
                let mut connection = self.pool.acquire().await.map_err(db_error)?;
                CheckpointWrite::checkpoint(&mut *connection, source).await.map_err(db_error)
            }

            #[tracing::instrument(skip_all, fields(source = %event.source, sequence = event.sequence, event_type = %event.event_type))]
            async fn apply(&self, event: &Event) -> HavenResult<()> {
                let sequence = i64::try_from(event.sequence).map_err(HavenError::internal)?;
                let aggregate_id = Uuid::parse_str(&event.aggregate_id).map_err(HavenError::internal)?;
                let organization_id = Uuid::parse_str(&event.organization_id).map_err(HavenError::internal)?;
                let occurred_at = event
                    .occurred_at
                    .as_ref()
                    .and_then(haven_proto::from_timestamp)
                    .unwrap_or_else(OffsetDateTime::now_utc);
                let effect = effect(event)?;
                let mut tx = self.pool.begin_write().await.map_err(db_error)?;
                if !CheckpointWrite::advance_checkpoint(&mut *tx, &event.source, sequence).await.map_err(db_error)? {
                    // Already applied (a replay after a reconnect): nothing to do.
                    return Ok(());
                }
                let applied = match effect {
                    Effect::ScreeningCreated { referral_source } => sqlx::query(
                        "INSERT INTO screenings (id, organization_id, referral_source, stage, created_at) \
                         VALUES ($1, $2, $3, 'screened', $4) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(aggregate_id)
                    .bind(organization_id)
                    .bind(referral_source)
                    .bind(occurred_at)
                    .execute(&mut *tx)
                    .await,
                    Effect::DecisionRecorded { stage } => sqlx::query("UPDATE screenings SET stage = $2 WHERE id = $1")
                        .bind(aggregate_id)
                        .bind(stage)
                        .execute(&mut *tx)
                        .await,
                    Effect::ReTraffickingConfirmed => sqlx::query("UPDATE screenings SET re_trafficked = TRUE WHERE id = $1")
                        .bind(aggregate_id)
                        .execute(&mut *tx)
                        .await,
                    Effect::CaseOpened { status } => sqlx::query(
                        "INSERT INTO cases (id, organization_id, status, opened_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(aggregate_id)
                    .bind(organization_id)
                    .bind(status)
                    .bind(occurred_at)
                    .execute(&mut *tx)
                    .await,
                    Effect::OrganizationCreated { organization_type } => sqlx::query(
                        "INSERT INTO organizations (id, organization_type) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(aggregate_id)
                    .bind(organization_type)
                    .execute(&mut *tx)
                    .await,
                    Effect::Ignored => Ok(Default::default()),
                };
                applied.map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(())
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
        }
    };
}

projections!(SqliteProjections, SqlitePool);
projections!(PostgresProjections, PgPool);
