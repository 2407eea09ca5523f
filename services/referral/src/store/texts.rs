//! The data key each referral's texts are sealed under, and the one-time encryption
//! of texts written before referral texts were encrypted.

use uuid::Uuid;

use haven_audit::SealingKey;
use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_storage::sql::{self, Tx};

use super::Directory;
use crate::crypto::{self, StoredKey, StoredTexts};

const SELECT_LEGACY: &str =
    "SELECT id FROM referrals WHERE data_key IS NULL AND shredded = FALSE ORDER BY seq";
const SELECT_KEY_AND_TEXTS: &str =
    "SELECT data_key, shredded, purpose, status_reason, outcome FROM referrals WHERE id = $1";
const ENCRYPT_LEGACY: &str = "UPDATE referrals SET data_key = $2, purpose = $3, status_reason = $4, outcome = $5 \
     WHERE id = $1 AND data_key IS NULL AND shredded = FALSE";

/// The stored key and texts of a referral.
type KeyAndTexts = (Option<Vec<u8>>, bool, Vec<u8>, Vec<u8>, Vec<u8>);

/// The referral's data key, to seal new texts with (it opens none), `None` once the
/// person was erased. A row written before texts were encrypted is encrypted first,
/// under a new key.
pub(super) async fn referral_key(
    directory: &Directory,
    tx: &mut Tx,
    id: Uuid,
) -> HavenResult<Option<SealingKey>> {
    let (data_key, shredded, purpose, status_reason, outcome): KeyAndTexts =
        sql::query_as(SELECT_KEY_AND_TEXTS)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    match StoredKey::from_columns(data_key, shredded) {
        StoredKey::Destroyed => Ok(None),
        StoredKey::Wrapped(wrapped) => directory.crypto.sealing_key(id, &wrapped).map(Some),
        StoredKey::Legacy => {
            let (key, wrapped) = directory.crypto.generate(id)?;
            let texts = StoredTexts {
                purpose,
                status_reason,
                outcome,
            };
            let sealed = crypto::seal_legacy(&key, id, &texts)?;
            let updated = sql::query(ENCRYPT_LEGACY)
                .bind(id)
                .bind(wrapped)
                .bind(sealed.purpose)
                .bind(sealed.status_reason)
                .bind(sealed.outcome)
                .execute(&mut *tx)
                .await?;
            if updated != 1 {
                return Err(HavenError::new(
                    ErrorCode::PreconditionFailed,
                    "the referral changed since you read it",
                ));
            }
            Ok(Some(key))
        }
    }
}

/// Encrypts the texts of every referral written before texts were encrypted, one
/// transaction each; how many.
pub(super) async fn encrypt_legacy(directory: &Directory) -> HavenResult<u64> {
    let legacy: Vec<Uuid> = sql::query_scalar(SELECT_LEGACY)
        .fetch_all(&directory.database)
        .await?;
    let mut encrypted = 0;
    for id in legacy {
        let mut tx = directory.database.begin_write().await?;
        referral_key(directory, &mut tx, id).await?;
        tx.commit().await?;
        encrypted += 1;
    }
    if encrypted > 0 {
        tracing::info!(
            referrals = encrypted,
            "texts of earlier referrals encrypted"
        );
        // No plaintext copy may stay in the database files.
        directory.forget_deleted().await?;
    }
    Ok(encrypted)
}
