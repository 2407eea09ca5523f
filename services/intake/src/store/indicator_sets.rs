//! Indicator sets: versioned definitions of the indicators a screening answers, the
//! shipped default as version 1 and each publication as the next version.

use time::OffsetDateTime;

use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_storage::idempotency::{CallerKey, Claim, Created, claim};
use haven_storage::sql;

use super::Screenings;
use super::rows::IndicatorSetRow;
use crate::assessment::{IndicatorSet, IndicatorSetDefinition};

const INSERT_DEFAULT_SET: &str = "INSERT INTO indicator_sets (version, name, definition, published_at, published_by) \
     VALUES (1, $1, $2, $3, 'haven') ON CONFLICT (version) DO NOTHING";
const SELECT_SETS: &str = "SELECT version, definition, published_at, published_by FROM indicator_sets ORDER BY version DESC";
/// Version `$1`, or the newest when `$1` is NULL.
const SELECT_SET_OR_NEWEST: &str = "SELECT version, definition, published_at, published_by FROM indicator_sets \
     WHERE ($1 IS NULL OR version = $1) ORDER BY version DESC LIMIT 1";
const SELECT_SET: &str =
    "SELECT version, definition, published_at, published_by FROM indicator_sets WHERE version = $1";
const NEXT_VERSION: &str = "SELECT COALESCE(MAX(version), 0) + 1 FROM indicator_sets";
const INSERT_SET: &str = "INSERT INTO indicator_sets (version, name, definition, published_at, published_by) VALUES ($1, $2, $3, $4, $5)";

impl Screenings {
    pub(super) async fn ensure_default_indicator_set(&self) -> HavenResult<()> {
        let definition: IndicatorSetDefinition =
            serde_json::from_str(crate::assessment::DEFAULT_SET).map_err(HavenError::internal)?;
        let json = serde_json::to_string(&definition).map_err(HavenError::internal)?;
        sql::query(INSERT_DEFAULT_SET)
            .bind(&definition.name)
            .bind(json)
            .bind(OffsetDateTime::now_utc())
            .execute(&self.database)
            .await?;
        Ok(())
    }

    pub(super) async fn list_indicator_sets(&self) -> HavenResult<Vec<IndicatorSet>> {
        let rows: Vec<IndicatorSetRow> =
            sql::query_as(SELECT_SETS).fetch_all(&self.database).await?;
        rows.into_iter().map(IndicatorSet::try_from).collect()
    }

    pub(super) async fn get_indicator_set(
        &self,
        version: Option<i32>,
    ) -> HavenResult<Option<IndicatorSet>> {
        let row: Option<IndicatorSetRow> = sql::query_as(SELECT_SET_OR_NEWEST)
            .bind(version)
            .fetch_optional(&self.database)
            .await?;
        row.map(IndicatorSet::try_from).transpose()
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn publish_indicator_set(
        &self,
        definition: IndicatorSetDefinition,
        published_by: &str,
        once: Option<&CallerKey>,
    ) -> HavenResult<Created<IndicatorSet>> {
        let json = serde_json::to_string(&definition).map_err(HavenError::internal)?;
        let mut tx = self.database.begin_write().await?;
        let version: i32 = sql::query_scalar(NEXT_VERSION).fetch_one(&mut tx).await?;
        if let Claim::Replay(earlier) = claim(&mut tx, once, &version.to_string()).await? {
            let earlier: i32 = earlier.parse().map_err(|_| {
                HavenError::internal(std::io::Error::other(
                    "stored idempotency key is not a version",
                ))
            })?;
            let row: IndicatorSetRow = sql::query_as(SELECT_SET)
                .bind(earlier)
                .fetch_one(&mut tx)
                .await?;
            return IndicatorSet::try_from(row).map(Created::replay);
        }
        // A concurrent publication takes the same version: the loser is told to retry.
        let inserted = sql::query(INSERT_SET)
            .bind(version)
            .bind(&definition.name)
            .bind(json)
            .bind(OffsetDateTime::now_utc())
            .bind(published_by)
            .execute(&mut tx)
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if error.is_unique_violation() => {
                return Err(HavenError::new(
                    ErrorCode::Conflict,
                    "another version was published at the same time; retry",
                ));
            }
            Err(error) => return Err(error.into()),
        }
        let row: IndicatorSetRow = sql::query_as(SELECT_SET)
            .bind(version)
            .fetch_one(&mut tx)
            .await?;
        tx.commit().await?;
        let set = IndicatorSet::try_from(row)?;
        tracing::info!(version = set.version, "indicator set published");
        Ok(Created::new(set))
    }
}
