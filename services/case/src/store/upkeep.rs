//! Keeping stored data encrypted under current keys.

use super::*;

/// Keeping stored data encrypted under current keys.
#[async_trait::async_trait]
pub trait Upkeep {
    /// Encrypts the free texts of rows written before texts were encrypted, and
    /// empties their plaintext; the texts of an erased person's case are dropped.
    /// Idempotent: one transaction per column, rows in the clear only. Returns how
    /// many texts were encrypted or dropped.
    async fn encrypt_plaintext_texts(&self) -> HavenResult<u64>;
    /// Re-wraps every case data key under the active master key version; returns how
    /// many were re-wrapped.
    async fn rewrap_keys(&self) -> HavenResult<u64>;
}

#[async_trait::async_trait]
impl Upkeep for Cases {
    async fn encrypt_plaintext_texts(&self) -> HavenResult<u64> {
        let mut replaced = 0;
        for text in CaseText::ALL {
            let mut tx = self.database.begin_write().await?;
            let rows: Vec<PlaintextRow> =
                sql::query_as(sqlx::AssertSqlSafe(text.plaintext_rows_query()))
                    .fetch_all(&mut tx)
                    .await?;
            for row in rows {
                let key = self.text_key(&mut tx, row.case_id).await?;
                let sealed = text.seal(key.as_ref(), &text.plaintext_row(&row)?, &row.text)?;
                replaced += sql::query(sqlx::AssertSqlSafe(text.replace_plaintext_statement()))
                    .bind(sealed)
                    .bind(row.seq)
                    .bind(&row.text)
                    .execute(&mut tx)
                    .await?;
            }
            tx.commit().await?;
        }
        if replaced > 0 {
            tracing::info!(
                texts = replaced,
                "free texts written in the clear are now encrypted"
            );
            // No plaintext copy may stay in the database files.
            self.database.forget_deleted().await?;
        }
        Ok(replaced)
    }

    async fn rewrap_keys(&self) -> HavenResult<u64> {
        self.crypto.rewrap_all(&self.database).await
    }
}

/// The case service follows intake's feed to destroy a case's data key when
/// the person is erased: notes and plans become unreadable with the rest.
#[async_trait::async_trait]
impl EventSink for Cases {
    async fn checkpoint(&self, source: &str) -> HavenResult<i64> {
        let mut tx = self.database.begin_read().await?;
        let checkpoint = CheckpointWrite::checkpoint(&mut tx, source)
            .await
            .map_err(db_error)?;
        tx.commit().await?;
        Ok(checkpoint)
    }

    #[tracing::instrument(skip_all, fields(source = %event.source, sequence = event.sequence, event_type = %event.event_type))]
    async fn apply(&self, event: &Event) -> HavenResult<()> {
        let sequence = i64::try_from(event.sequence).map_err(HavenError::internal)?;
        let mut tx = self.database.begin_write().await?;
        if !CheckpointWrite::advance_checkpoint(&mut tx, &event.source, sequence)
            .await
            .map_err(db_error)?
        {
            return Ok(());
        }
        if event.event_type == "person.erased" {
            let person_id = Uuid::parse_str(&event.aggregate_id).map_err(HavenError::internal)?;
            let shredded = sql::query(
                "UPDATE cases SET data_key = NULL, shredded = TRUE WHERE person_id = $1",
            )
            .bind(person_id)
            .execute(&mut tx)
            .await?;
            // The person's cases' past events keep their place in the feed but
            // lose what they said, so a replay cannot rebuild them.
            let cases: Vec<(Uuid,)> = sql::query_as("SELECT id FROM cases WHERE person_id = $1")
                .bind(person_id)
                .fetch_all(&mut tx)
                .await?;
            let case_ids: Vec<Uuid> = cases.into_iter().map(|(id,)| id).collect();
            let redacted = OutboxWrite::redact_events(&mut tx, &case_ids)
                .await
                .map_err(db_error)?;
            tracing::info!(person_id = %person_id, cases = shredded, events_redacted = redacted, "case data keys destroyed and events redacted after erasure");
        }
        if event.event_type == "referral.completed" {
            self.record_referred_service(&mut tx, event).await?;
        }
        tx.commit().await?;
        if event.event_type == "person.erased" {
            // No copy of the destroyed keys may stay in the database files
            // (forget_deleted logs when it cannot clear them).
            let _ = self.database.forget_deleted().await;
        }
        Ok(())
    }
}
