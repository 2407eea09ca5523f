//! Upkeep of what is stored encrypted: re-wrapping every data key under the active
//! master key, and encrypting the typed texts written in the clear before they were
//! encrypted.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::HavenResult;
use haven_storage::ForgetDeleted;
use haven_storage::sql;

use super::Screenings;

/// Erasure reasons still in the clear, 500 after position `$1`.
const PLAINTEXT_ERASURE_REASONS: &str = "SELECT seq, id, erasure_reason FROM persons WHERE seq > $1 AND erasure_reason IS NOT NULL \
     AND erasure_reason <> '' AND erasure_reason_ciphertext IS NULL ORDER BY seq LIMIT 500";
const SEAL_ERASURE_REASON: &str = "UPDATE persons SET erasure_key = $2, erasure_reason_ciphertext = $3, erasure_reason = NULL \
     WHERE id = $1 AND erasure_reason = $4 AND erasure_reason_ciphertext IS NULL";
/// Decisions with a reason or legal basis still in the clear, 500 after position `$1`.
const PLAINTEXT_DECISIONS: &str = "SELECT d.seq, d.id, d.screening_id, d.reasons, d.legal_basis, \
     d.reasons_ciphertext IS NULL AS reasons_unsealed, \
     d.legal_basis_ciphertext IS NULL AS legal_basis_unsealed, p.erased_at \
     FROM decisions d JOIN screenings s ON s.id = d.screening_id LEFT JOIN persons p ON p.id = s.person_id \
     WHERE d.seq > $1 AND (d.reasons <> '' OR d.legal_basis <> '') ORDER BY d.seq LIMIT 500";
const SEAL_DECISION_TEXTS: &str = "UPDATE decisions SET reasons = '', legal_basis = '', \
     reasons_ciphertext = COALESCE($2, reasons_ciphertext), \
     legal_basis_ciphertext = COALESCE($3, legal_basis_ciphertext) \
     WHERE id = $1 AND reasons = $4 AND legal_basis = $5";

/// A decision whose reasons or legal basis are still stored in the clear.
#[derive(sqlx::FromRow)]
struct PlaintextDecision {
    seq: i64,
    id: Uuid,
    screening_id: Uuid,
    reasons: String,
    legal_basis: String,
    /// No ciphertext of the reasons yet.
    reasons_unsealed: bool,
    /// No ciphertext of the legal basis yet.
    legal_basis_unsealed: bool,
    /// When the screened person was erased.
    erased_at: Option<OffsetDateTime>,
}

impl Screenings {
    #[tracing::instrument(skip_all)]
    pub(super) async fn rewrap_person_keys(&self) -> HavenResult<u64> {
        let mut rewrapped = 0;
        // Persons' keys, the screenings' keys that seal decision reasons, and the keys
        // of erasure reasons.
        for (table, column) in [
            ("persons", "wrapped_key"),
            ("screenings", "wrapped_key"),
            ("persons", "erasure_key"),
        ] {
            let mut after = 0_i64;
            loop {
                let select = format!(
                    "SELECT seq, id, {column} FROM {table} WHERE seq > $1 AND {column} IS NOT NULL ORDER BY seq LIMIT 500"
                );
                let batch: Vec<(i64, Uuid, Vec<u8>)> = sql::query_as(sqlx::AssertSqlSafe(select))
                    .bind(after)
                    .fetch_all(&self.database)
                    .await?;
                let Some((last, _, _)) = batch.last() else {
                    break;
                };
                after = *last;
                let mut tx = self.database.begin_write().await?;
                for (_, id, wrapped) in &batch {
                    let new_wrapped = self.crypto.rewrap(*id, wrapped)?;
                    if &new_wrapped != wrapped {
                        // Only if nobody shredded the key meanwhile.
                        let update = format!(
                            "UPDATE {table} SET {column} = $2 WHERE id = $1 AND {column} IS NOT NULL"
                        );
                        sql::query(sqlx::AssertSqlSafe(update))
                            .bind(id)
                            .bind(new_wrapped)
                            .execute(&mut tx)
                            .await?;
                        rewrapped += 1;
                    }
                }
                tx.commit().await?;
            }
        }
        Ok(rewrapped)
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn encrypt_plaintext_texts(&self) -> HavenResult<u64> {
        let mut encrypted = 0;
        // Reasons of erasures recorded before they were encrypted: each under an
        // erasure key of its own, as an erasure stores it now.
        let mut after = 0_i64;
        loop {
            let mut tx = self.database.begin_write().await?;
            let batch: Vec<(i64, Uuid, String)> = sql::query_as(PLAINTEXT_ERASURE_REASONS)
                .bind(after)
                .fetch_all(&mut tx)
                .await?;
            let Some((last, _, _)) = batch.last() else {
                break;
            };
            after = *last;
            for (_, id, reason) in &batch {
                let (erasure_key, wrapped_erasure_key) = self.crypto.generate(*id)?;
                let sealed_reason =
                    erasure_key.seal("persons", "erasure_reason", id.as_bytes(), reason)?;
                encrypted += sql::query(SEAL_ERASURE_REASON)
                    .bind(id)
                    .bind(wrapped_erasure_key)
                    .bind(sealed_reason)
                    .bind(reason)
                    .execute(&mut tx)
                    .await?;
            }
            tx.commit().await?;
        }
        // Reasons and legal bases of decisions recorded before they were encrypted:
        // under the screening's key, as a decision stores them now. A plain copy left
        // beside a ciphertext only goes; so does the text of an erased person, which
        // the erasure should have taken and no new key may keep.
        let mut blanked = 0;
        let mut after = 0_i64;
        loop {
            let mut tx = self.database.begin_write().await?;
            let batch: Vec<PlaintextDecision> = sql::query_as(PLAINTEXT_DECISIONS)
                .bind(after)
                .fetch_all(&mut tx)
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for decision in &batch {
                let mut reasons = None;
                let mut legal_basis = None;
                if decision.erased_at.is_none() {
                    if decision.reasons_unsealed && !decision.reasons.is_empty() {
                        reasons = Some(
                            self.seal_decision_text(
                                &mut tx,
                                decision.screening_id,
                                decision.id,
                                "reasons",
                                &decision.reasons,
                            )
                            .await?,
                        );
                    }
                    if decision.legal_basis_unsealed && !decision.legal_basis.is_empty() {
                        legal_basis = Some(
                            self.seal_decision_text(
                                &mut tx,
                                decision.screening_id,
                                decision.id,
                                "legal_basis",
                                &decision.legal_basis,
                            )
                            .await?,
                        );
                    }
                }
                let sealed = u64::from(reasons.is_some()) + u64::from(legal_basis.is_some());
                let updated = sql::query(SEAL_DECISION_TEXTS)
                    .bind(decision.id)
                    .bind(reasons)
                    .bind(legal_basis)
                    .bind(&decision.reasons)
                    .bind(&decision.legal_basis)
                    .execute(&mut tx)
                    .await?;
                if updated == 1 {
                    encrypted += sealed;
                    blanked += u64::from(sealed == 0);
                }
            }
            tx.commit().await?;
        }
        if encrypted > 0 || blanked > 0 {
            tracing::info!(
                texts = encrypted,
                dropped = blanked,
                "typed texts written in the clear are now encrypted"
            );
            // No plain copy may stay in the database files.
            self.database.forget_deleted().await?;
        }
        Ok(encrypted)
    }
}
