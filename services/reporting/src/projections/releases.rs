//! The release ledger: every release recorded with what it published (the classes of
//! a k-anonymous export) or spent (the privacy loss of a differentially private
//! release), in one transaction.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_storage::Database;
use haven_storage::sql::{self, Tx};

use super::{LedgerChange, NewRelease, Release, serialize_appliers};
use crate::privacy::{self, BudgetUse, Spend};

const SELECT_CLASSES: &str = "SELECT class, released FROM release_classes WHERE dataset = $1";
const DELETE_CLASSES: &str = "DELETE FROM release_classes WHERE dataset = $1";
const INSERT_CLASS: &str =
    "INSERT INTO release_classes (dataset, class, released) VALUES ($1, $2, $3)";
/// Adds the spend to a dataset only while it stays within the budget (`$3`).
const SPEND_BUDGET: &str = "INSERT INTO privacy_budget (dataset, spent_micro) VALUES ($1, $2) \
    ON CONFLICT (dataset) DO UPDATE SET spent_micro = privacy_budget.spent_micro + excluded.spent_micro \
    WHERE privacy_budget.spent_micro + excluded.spent_micro <= $3 \
    RETURNING spent_micro";
const SELECT_SPENT: &str = "SELECT spent_micro FROM privacy_budget WHERE dataset = $1";
const INSERT_RELEASE: &str = "INSERT INTO releases (id, kind, parameters, row_count, withheld, sha256, released_by, organization_id, released_at, epsilon_micro) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const SELECT_BUDGETS: &str = "SELECT dataset, spent_micro FROM privacy_budget ORDER BY dataset";
const SELECT_RELEASES: &str = "SELECT id, kind, parameters, row_count, withheld, sha256, released_by, organization_id, released_at, epsilon_micro \
    FROM releases ORDER BY seq DESC LIMIT $1";

/// A release of the ledger, as stored.
type ReleaseRow = (
    Uuid,
    String,
    String,
    i64,
    i64,
    String,
    String,
    Uuid,
    OffsetDateTime,
    Option<i64>,
);

/// Classes with their counts, as stored.
fn class_counts(rows: Vec<(String, i64)>) -> BTreeMap<String, u64> {
    rows.into_iter()
        .map(|(class, released)| (class, u64::try_from(released).unwrap_or_default()))
        .collect()
}

/// What the last release of `dataset` published, per class (row) of the file.
pub(super) async fn released_classes(
    database: &Database,
    dataset: &str,
) -> HavenResult<BTreeMap<String, u64>> {
    let rows: Vec<(String, i64)> = sql::query_as(SELECT_CLASSES)
        .bind(dataset)
        .fetch_all(database)
        .await?;
    Ok(class_counts(rows))
}

/// Records a release in the ledger with its change to the class or budget ledger, in
/// one transaction, and answers the budgets it spent from (after it).
pub(super) async fn record_release(
    database: &Database,
    release: NewRelease,
    change: LedgerChange<'_>,
) -> HavenResult<(Release, Vec<BudgetUse>)> {
    let id = Uuid::now_v7();
    let released_at = OffsetDateTime::now_utc();
    let mut tx = database.begin_write().await?;
    let mut budgets = Vec::new();
    let mut epsilon_micro = None;
    match change {
        LedgerChange::Classes {
            dataset,
            previous,
            classes,
        } => replace_classes(&mut tx, dataset, previous, classes).await?,
        LedgerChange::Budget(spend) => {
            budgets = spend_budget(&mut tx, spend).await?;
            epsilon_micro = Some(spend.epsilon_micro);
        }
    }
    sql::query(INSERT_RELEASE)
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
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
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

/// Replaces the classes released of `dataset` by `classes`, unless they are no longer
/// `previous` (another release of the same data was recorded since they were read).
async fn replace_classes(
    tx: &mut Tx,
    dataset: &str,
    previous: &BTreeMap<String, u64>,
    classes: &BTreeMap<String, u64>,
) -> HavenResult<()> {
    serialize_appliers(tx).await?;
    let stored: Vec<(String, i64)> = sql::query_as(SELECT_CLASSES)
        .bind(dataset)
        .fetch_all(&mut *tx)
        .await?;
    if &class_counts(stored) != previous {
        return Err(HavenError::new(
            ErrorCode::Conflict,
            "another release of the same data was made at the same time; release again",
        ));
    }
    sql::query(DELETE_CLASSES)
        .bind(dataset)
        .execute(&mut *tx)
        .await?;
    for (class, released) in classes {
        sql::query(INSERT_CLASS)
            .bind(dataset)
            .bind(class)
            .bind(i64::try_from(*released).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Charges `spend` to each of its datasets; answers what each has spent after it, or
/// `Conflict` (saying what is left) if one would go past its budget.
async fn spend_budget(tx: &mut Tx, spend: &Spend) -> HavenResult<Vec<BudgetUse>> {
    let mut budgets = Vec::new();
    // One statement per dataset adds the spend only while it stays within the
    // budget; datasets in ascending order, so concurrent releases lock them in the
    // same order.
    for dataset in &spend.datasets {
        let spent: Option<(i64,)> = sql::query_as(SPEND_BUDGET)
            .bind(dataset)
            .bind(spend.epsilon_micro)
            .bind(spend.budget_micro)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((spent_micro,)) = spent else {
            let (spent_micro,): (i64,) = sql::query_as(SELECT_SPENT)
                .bind(dataset)
                .fetch_one(&mut *tx)
                .await?;
            return Err(HavenError::new(
                ErrorCode::Conflict,
                privacy::over_budget(dataset, spent_micro, spend),
            ));
        };
        budgets.push(BudgetUse {
            dataset: dataset.clone(),
            spent_micro,
        });
    }
    Ok(budgets)
}

/// What releases under differential privacy have spent, per dataset.
pub(super) async fn privacy_budget(database: &Database) -> HavenResult<Vec<BudgetUse>> {
    let rows: Vec<(String, i64)> = sql::query_as(SELECT_BUDGETS).fetch_all(database).await?;
    Ok(rows
        .into_iter()
        .map(|(dataset, spent_micro)| BudgetUse {
            dataset,
            spent_micro,
        })
        .collect())
}

/// The newest releases.
pub(super) async fn releases(database: &Database, limit: u32) -> HavenResult<Vec<Release>> {
    let rows: Vec<ReleaseRow> = sql::query_as(SELECT_RELEASES)
        .bind(i64::from(limit))
        .fetch_all(database)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                kind,
                parameters,
                rows,
                withheld,
                sha256,
                released_by,
                organization_id,
                released_at,
                epsilon_micro,
            )| Release {
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
            },
        )
        .collect())
}
