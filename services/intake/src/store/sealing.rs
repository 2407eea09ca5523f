//! Sealing with a case: intake follows the case service's feed, and a sealed case
//! seals the screenings linked to it and their persons, also when the link comes
//! after the seal.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::{HavenError, HavenResult};
use haven_events::{CheckpointWrite, EventSink};
use haven_proto::common::v1::Event;
use haven_storage::db_error;
use haven_storage::sql::{self, Tx};

use super::Screenings;

// The case id is $1.
const REMEMBER_SEALED_CASE: &str = "INSERT INTO sealed_cases (case_id, sealed_at) VALUES ($1, $2) ON CONFLICT (case_id) DO NOTHING";
const SEAL_PERSONS_OF_CASE: &str = "UPDATE persons SET sealed = TRUE, version = version + 1 \
    WHERE sealed = FALSE AND id IN (SELECT person_id FROM screenings WHERE case_id = $1)";
const SEAL_SCREENINGS_OF_CASE: &str = "UPDATE screenings SET sealed = TRUE, version = version + 1 \
    WHERE case_id = $1 AND sealed = FALSE";
const SEALED_CASE_OF_SCREENING: &str = "SELECT c.case_id FROM sealed_cases c \
    JOIN screenings s ON s.case_id = c.case_id WHERE s.id = $1";

/// The case a `case.sealed` event of the case service seals; `None` for any other
/// event.
fn sealed_case(event: &Event) -> HavenResult<Option<Uuid>> {
    if event.source != "case" || event.event_type != "case.sealed" {
        return Ok(None);
    }
    Uuid::parse_str(&event.aggregate_id)
        .map(Some)
        .map_err(HavenError::internal)
}

impl Screenings {
    /// Seals the screenings of a sealed case and their persons.
    pub(super) async fn seal_case(tx: &mut Tx, case_id: Uuid) -> HavenResult<()> {
        sql::query(REMEMBER_SEALED_CASE)
            .bind(case_id)
            .bind(OffsetDateTime::now_utc())
            .execute(&mut *tx)
            .await?;
        for statement in [SEAL_PERSONS_OF_CASE, SEAL_SCREENINGS_OF_CASE] {
            sql::query(statement)
                .bind(case_id)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// The case of screening `id`, if that case is known to be sealed.
    pub(super) async fn sealed_case_of(tx: &mut Tx, id: Uuid) -> HavenResult<Option<Uuid>> {
        Ok(sql::query_scalar(SEALED_CASE_OF_SCREENING)
            .bind(id)
            .fetch_optional(tx)
            .await?)
    }
}

#[async_trait::async_trait]
impl EventSink for Screenings {
    async fn checkpoint(&self, source: &str) -> HavenResult<i64> {
        let mut tx = self.database.begin_read().await?;
        let sequence = tx.checkpoint(source).await.map_err(db_error)?;
        tx.commit().await?;
        Ok(sequence)
    }

    #[tracing::instrument(skip_all, fields(source = %event.source, sequence = event.sequence, event_type = %event.event_type))]
    async fn apply(&self, event: &Event) -> HavenResult<()> {
        let sequence = i64::try_from(event.sequence).map_err(HavenError::internal)?;
        let mut tx = self.database.begin_write().await?;
        if !tx
            .advance_checkpoint(&event.source, sequence)
            .await
            .map_err(db_error)?
        {
            return Ok(());
        }
        if let Some(case_id) = sealed_case(event)? {
            Self::seal_case(&mut tx, case_id).await?;
            tracing::info!(case_id = %case_id, "screenings and person sealed with their case");
        }
        tx.commit().await?;
        Ok(())
    }
}
