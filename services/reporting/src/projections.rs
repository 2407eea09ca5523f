//! Projections: the reporting service's own tables, fed by the intake, case and
//! referral event feeds and read by reports and releases. One store over the
//! [`Database`] whose statements run on either backend; each event is applied in one
//! transaction with its checkpoint, so it counts exactly once even when a feed is
//! replayed after a crash or a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::HavenResult;
use haven_events::EventSink;
use haven_storage::Database;
use haven_storage::sql::{self, DbResult, Tx};

use crate::counts;
pub use crate::facts::{Durations, Facts, ReportScope};
use crate::privacy::{BudgetUse, Spend};
use crate::publication::CtdcRecord;

mod apply;
mod events;
mod releases;
mod reports;

pub use events::age_band;

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
    Arc::new(ProjectionStore { database, keys })
}

/// The projections, on either backend.
#[derive(Debug)]
pub struct ProjectionStore {
    database: Database,
    keys: counts::RecordKeys,
}

/// Postgres: a report reads one snapshot, so its tables agree with each other.
const BEGIN_SNAPSHOT_POSTGRES: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
/// Postgres: one applier at a time, until its transaction ends.
const SERIALIZE_APPLIERS_POSTGRES: &str =
    "SELECT pg_advisory_xact_lock(hashtext('haven.reporting.apply'))";

/// Begins a read transaction over one snapshot of the projections: SQLite's
/// transactions already read one; Postgres reads one at repeatable read.
async fn begin_snapshot(database: &Database) -> DbResult<Tx> {
    Ok(match database {
        Database::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN").await?),
        Database::Postgres(pool) => Tx::Postgres(pool.begin_with(BEGIN_SNAPSHOT_POSTGRES).await?),
    })
}

/// Makes `tx` the only one applying events or recording classes until it ends.
/// SQLite's write transactions already are; on Postgres a transaction-scoped advisory
/// lock does it.
async fn serialize_appliers(tx: &mut Tx) -> DbResult<()> {
    if let Tx::Postgres(_) = tx {
        sql::query(SERIALIZE_APPLIERS_POSTGRES).execute(tx).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Projections for ProjectionStore {
    async fn summary(&self, organization_id: Option<Uuid>) -> HavenResult<Summary> {
        reports::summary(&self.database, organization_id).await
    }

    async fn checkpoints(&self) -> HavenResult<HashMap<String, u64>> {
        apply::checkpoints(&self.database).await
    }

    async fn facts(&self, scope: &ReportScope) -> HavenResult<Facts> {
        reports::facts(&self.database, &self.keys, scope).await
    }

    async fn export_records(&self, scope: &ReportScope) -> HavenResult<(Vec<CtdcRecord>, u64)> {
        reports::export_records(&self.database, scope).await
    }

    async fn released_classes(&self, dataset: &str) -> HavenResult<BTreeMap<String, u64>> {
        releases::released_classes(&self.database, dataset).await
    }

    async fn record_release(
        &self,
        release: NewRelease,
        change: LedgerChange<'_>,
    ) -> HavenResult<(Release, Vec<BudgetUse>)> {
        releases::record_release(&self.database, release, change).await
    }

    async fn privacy_budget(&self) -> HavenResult<Vec<BudgetUse>> {
        releases::privacy_budget(&self.database).await
    }

    async fn releases(&self, limit: u32) -> HavenResult<Vec<Release>> {
        releases::releases(&self.database, limit).await
    }

    async fn rebuild(&self) -> HavenResult<()> {
        apply::rebuild(&self.database).await
    }
}
