//! Encryption of a referral's free texts (purpose, status reason, outcome) under a
//! data key of the referral, wrapped by the shared master keyring. Erasing the person
//! destroys the key, and the texts read as absent.
//!
//! Texts are only ever read with the [`Receipt`] of an audit entry about the referral,
//! appended before: writes seal with a [`SealingKey`], reads open with an
//! [`OpenedKey`].

use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use haven_audit::{AuditedKeys, OpenedKey, Receipt, SealingKey};
use haven_crypto::KeyWrapper;
use haven_error::{HavenError, HavenResult};

/// Table whose row ids the ciphertexts are bound to.
const TABLE: &str = "referrals";

/// A free-text column of a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextColumn {
    /// Why the person is referred.
    Purpose,
    /// Why declined, cancelled or revoked.
    StatusReason,
    /// What came of it.
    Outcome,
}

impl TextColumn {
    /// The column's name, bound into the ciphertext.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purpose => "purpose",
            Self::StatusReason => "status_reason",
            Self::Outcome => "outcome",
        }
    }
}

/// A referral's three texts in plaintext.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferralTexts {
    /// Purpose.
    pub purpose: String,
    /// Status reason.
    pub status_reason: String,
    /// Outcome.
    pub outcome: String,
}

/// How a referral's texts are stored: ciphertexts, or, for rows written before texts
/// were encrypted, their UTF-8 plaintext until the start-up pass encrypts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTexts {
    /// Stored purpose.
    pub purpose: Vec<u8>,
    /// Stored status reason.
    pub status_reason: Vec<u8>,
    /// Stored outcome.
    pub outcome: Vec<u8>,
}

/// The state of a referral's data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredKey {
    /// The wrapped key: the texts are ciphertexts.
    Wrapped(Vec<u8>),
    /// Written before texts were encrypted: the texts are plaintext.
    Legacy,
    /// Destroyed with the person: the texts are unreadable.
    Destroyed,
}

impl StoredKey {
    /// From the stored `data_key` and `shredded` columns.
    pub fn from_columns(data_key: Option<Vec<u8>>, shredded: bool) -> Self {
        match (data_key, shredded) {
            (_, true) => Self::Destroyed,
            (Some(wrapped), false) => Self::Wrapped(wrapped),
            (None, false) => Self::Legacy,
        }
    }
}

/// Keys for referral texts, loaded once per process.
#[derive(Clone, Debug)]
pub struct ReferralCrypto {
    keys: AuditedKeys,
}

impl ReferralCrypto {
    /// Loads (in development: creates) the master keyring in `keys_dir`.
    pub fn load(keys_dir: &Path) -> anyhow::Result<Self> {
        let keys = AuditedKeys::load(keys_dir)
            .map_err(|error| anyhow::anyhow!("master keyring: {error}"))?;
        Ok(Self { keys })
    }

    /// From an explicit key wrapper (tests, or a KMS-backed wrapper).
    pub fn new(keyring: Arc<dyn KeyWrapper>) -> Self {
        Self {
            keys: AuditedKeys::new(keyring),
        }
    }

    /// A new data key for a referral, to seal its first texts with, and its wrapped
    /// form to store, bound to it.
    pub fn generate(&self, referral_id: Uuid) -> HavenResult<(SealingKey, Vec<u8>)> {
        self.keys.generate(referral_id)
    }

    /// The stored data key of a referral, to seal new texts with.
    pub fn sealing_key(&self, referral_id: Uuid, wrapped: &[u8]) -> HavenResult<SealingKey> {
        self.keys.sealing_key(referral_id, wrapped)
    }

    /// The stored data key of a referral, to open its texts with, for the holder of a
    /// receipt of an audit entry about that referral.
    pub fn open(
        &self,
        receipt: &Receipt,
        referral_id: Uuid,
        wrapped: &[u8],
    ) -> HavenResult<OpenedKey> {
        self.keys.open(receipt, referral_id, wrapped)
    }

    /// Re-wraps every stored data key of the referrals under the active master
    /// version; how many changed.
    pub async fn rewrap_all(&self, database: &haven_storage::Database) -> HavenResult<u64> {
        self.keys.rewrap_table(database, "referrals").await
    }

    /// The plaintext of stored texts, for the holder of a receipt of an audit entry
    /// about the referral: decrypted, read as written before encryption, or absent
    /// (empty) once the key was destroyed.
    pub fn open_texts(
        &self,
        receipt: &Receipt,
        referral_id: Uuid,
        key: &StoredKey,
        stored: &StoredTexts,
    ) -> HavenResult<ReferralTexts> {
        if receipt.record_id() != referral_id {
            return Err(HavenError::internal(std::io::Error::other(format!(
                "an audit receipt of {} {} cannot open the texts of referral {referral_id}",
                receipt.entry().record_type,
                receipt.record_id(),
            ))));
        }
        match key {
            StoredKey::Destroyed => Ok(ReferralTexts::default()),
            StoredKey::Legacy => Ok(ReferralTexts {
                purpose: legacy_text(&stored.purpose)?,
                status_reason: legacy_text(&stored.status_reason)?,
                outcome: legacy_text(&stored.outcome)?,
            }),
            StoredKey::Wrapped(wrapped) => {
                let key = self.open(receipt, referral_id, wrapped)?;
                Ok(ReferralTexts {
                    purpose: open(&key, TextColumn::Purpose, referral_id, &stored.purpose)?,
                    status_reason: open(
                        &key,
                        TextColumn::StatusReason,
                        referral_id,
                        &stored.status_reason,
                    )?,
                    outcome: open(&key, TextColumn::Outcome, referral_id, &stored.outcome)?,
                })
            }
        }
    }
}

/// Encrypts one text of a referral, bound to its table, column and row. An empty text
/// stays empty: its absence is no secret (the status tells as much).
pub fn seal(
    key: &SealingKey,
    column: TextColumn,
    referral_id: Uuid,
    text: &str,
) -> HavenResult<Vec<u8>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    key.seal(TABLE, column.as_str(), referral_id.as_bytes(), text)
}

/// Decrypts one text written by [`seal`], with a key opened under an audit receipt.
pub fn open(
    key: &OpenedKey,
    column: TextColumn,
    referral_id: Uuid,
    stored: &[u8],
) -> HavenResult<String> {
    if stored.is_empty() {
        return Ok(String::new());
    }
    key.open(TABLE, column.as_str(), referral_id.as_bytes(), stored)
}

/// Encrypts the three texts of a row written before texts were encrypted.
pub fn seal_legacy(
    key: &SealingKey,
    referral_id: Uuid,
    stored: &StoredTexts,
) -> HavenResult<StoredTexts> {
    Ok(StoredTexts {
        purpose: seal(
            key,
            TextColumn::Purpose,
            referral_id,
            &legacy_text(&stored.purpose)?,
        )?,
        status_reason: seal(
            key,
            TextColumn::StatusReason,
            referral_id,
            &legacy_text(&stored.status_reason)?,
        )?,
        outcome: seal(
            key,
            TextColumn::Outcome,
            referral_id,
            &legacy_text(&stored.outcome)?,
        )?,
    })
}

fn legacy_text(stored: &[u8]) -> HavenResult<String> {
    String::from_utf8(stored.to_vec()).map_err(HavenError::internal)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use haven_audit::{AuditContext, AuditWrite};
    use haven_auth::{Principal, PrincipalKind, Role};
    use haven_storage::{Database, WritePool};

    use super::*;

    fn crypto() -> ReferralCrypto {
        ReferralCrypto::new(Arc::new(haven_crypto::MasterKeyring::generate().unwrap()))
    }

    /// The receipt of a `referral.read` entry about `referral_id`, appended to a
    /// fresh SQLite database.
    async fn receipt_of(referral_id: Uuid) -> Receipt {
        let (_dir, settings) = haven_storage::testing::sqlite_settings();
        let Database::Sqlite(pool) = crate::connect(&settings).await.unwrap() else {
            unreachable!("the test settings name SQLite")
        };
        let context = AuditContext {
            principal: Principal {
                subject: "staff-1".into(),
                organization_id: Uuid::now_v7(),
                roles: vec![Role::CaseWorker],
                kind: PrincipalKind::User,
            },
            purpose: "assistance".into(),
            request_id: "req".into(),
            on_behalf_of: None,
        };
        let mut tx = pool.begin_write().await.unwrap();
        let receipt = tx
            .append_audit(
                crate::SERVICE,
                &context.entry("referral.read", "referral", referral_id),
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        receipt
    }

    #[tokio::test]
    async fn a_text_opens_only_in_its_own_column_and_row() {
        let crypto = crypto();
        let id = Uuid::now_v7();
        let (sealing, wrapped) = crypto.generate(id).unwrap();
        let sealed = seal(&sealing, TextColumn::Purpose, id, "a safe bed tonight").unwrap();
        let key = crypto.open(&receipt_of(id).await, id, &wrapped).unwrap();
        assert_eq!(
            open(&key, TextColumn::Purpose, id, &sealed).unwrap(),
            "a safe bed tonight"
        );
        assert!(open(&key, TextColumn::Outcome, id, &sealed).is_err());
        assert!(open(&key, TextColumn::Purpose, Uuid::now_v7(), &sealed).is_err());
    }

    #[tokio::test]
    async fn legacy_rows_are_encrypted_and_destroyed_keys_read_as_absent() {
        let crypto = crypto();
        let id = Uuid::now_v7();
        let receipt = receipt_of(id).await;
        let legacy = StoredTexts {
            purpose: b"counselling".to_vec(),
            status_reason: Vec::new(),
            outcome: b"attended".to_vec(),
        };
        let (sealing, wrapped) = crypto.generate(id).unwrap();
        let sealed = seal_legacy(&sealing, id, &legacy).unwrap();
        assert_ne!(sealed.purpose, legacy.purpose);
        let opened = crypto
            .open_texts(&receipt, id, &StoredKey::Wrapped(wrapped), &sealed)
            .unwrap();
        assert_eq!(
            opened,
            crypto
                .open_texts(&receipt, id, &StoredKey::Legacy, &legacy)
                .unwrap()
        );
        assert_eq!(
            crypto
                .open_texts(&receipt, id, &StoredKey::Destroyed, &sealed)
                .unwrap(),
            ReferralTexts::default()
        );
    }

    #[tokio::test]
    async fn texts_open_only_with_a_receipt_of_their_referral() {
        let crypto = crypto();
        let id = Uuid::now_v7();
        let (sealing, wrapped) = crypto.generate(id).unwrap();
        let stored = StoredTexts {
            purpose: seal(&sealing, TextColumn::Purpose, id, "counselling").unwrap(),
            status_reason: Vec::new(),
            outcome: Vec::new(),
        };
        let other = receipt_of(Uuid::now_v7()).await;
        assert!(
            crypto
                .open_texts(&other, id, &StoredKey::Wrapped(wrapped), &stored)
                .is_err()
        );
        assert!(
            crypto
                .open_texts(&other, id, &StoredKey::Legacy, &stored)
                .is_err()
        );
    }
}
