//! Encryption of a referral's free texts (purpose, status reason, outcome) under a
//! data key of the referral, wrapped by the shared master keyring. Erasing the person
//! destroys the key, and the texts read as absent.

use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use haven_crypto::{DataKey, FieldContext, KeyWrapper, RecordKeys, decrypt_str, encrypt_str};
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
    keys: RecordKeys,
}

impl ReferralCrypto {
    /// Loads (in development: creates) the master keyring in `keys_dir`.
    pub fn load(keys_dir: &Path) -> anyhow::Result<Self> {
        let keys = RecordKeys::load(keys_dir)
            .map_err(|error| anyhow::anyhow!("master keyring: {error}"))?;
        Ok(Self { keys })
    }

    /// From an explicit key wrapper (tests, or a KMS-backed wrapper).
    pub fn new(keyring: Arc<dyn KeyWrapper>) -> Self {
        Self {
            keys: RecordKeys::new(keyring),
        }
    }

    /// A new data key for a referral and its wrapped form to store, bound to it.
    pub fn new_data_key(&self, referral_id: Uuid) -> HavenResult<(DataKey, Vec<u8>)> {
        self.keys
            .generate(referral_id.as_bytes())
            .map_err(HavenError::internal)
    }

    /// Unwraps the stored data key of a referral.
    pub fn data_key(&self, referral_id: Uuid, wrapped: &[u8]) -> HavenResult<DataKey> {
        self.keys
            .unwrap(referral_id.as_bytes(), wrapped)
            .map_err(HavenError::internal)
    }

    /// Re-wraps the stored data key of a referral under the active master version.
    pub fn rewrap(&self, referral_id: Uuid, wrapped: &[u8]) -> HavenResult<Vec<u8>> {
        self.keys
            .rewrap(referral_id.as_bytes(), wrapped)
            .map_err(HavenError::internal)
    }

    /// The plaintext of stored texts: decrypted, read as written before encryption,
    /// or absent (empty) once the key was destroyed.
    pub fn open_texts(
        &self,
        referral_id: Uuid,
        key: &StoredKey,
        stored: &StoredTexts,
    ) -> HavenResult<ReferralTexts> {
        match key {
            StoredKey::Destroyed => Ok(ReferralTexts::default()),
            StoredKey::Legacy => Ok(ReferralTexts {
                purpose: legacy_text(&stored.purpose)?,
                status_reason: legacy_text(&stored.status_reason)?,
                outcome: legacy_text(&stored.outcome)?,
            }),
            StoredKey::Wrapped(wrapped) => {
                let key = self.data_key(referral_id, wrapped)?;
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
    key: &DataKey,
    column: TextColumn,
    referral_id: Uuid,
    text: &str,
) -> HavenResult<Vec<u8>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    encrypt_str(
        key,
        text,
        &FieldContext::new(TABLE, column.as_str(), referral_id.as_bytes()),
    )
    .map_err(HavenError::internal)
}

/// Decrypts one text written by [`seal`].
pub fn open(
    key: &DataKey,
    column: TextColumn,
    referral_id: Uuid,
    stored: &[u8],
) -> HavenResult<String> {
    if stored.is_empty() {
        return Ok(String::new());
    }
    decrypt_str(
        key,
        stored,
        &FieldContext::new(TABLE, column.as_str(), referral_id.as_bytes()),
    )
    .map_err(HavenError::internal)
}

/// Encrypts the three texts of a row written before texts were encrypted.
pub fn seal_legacy(
    key: &DataKey,
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

    use super::*;

    fn crypto() -> ReferralCrypto {
        ReferralCrypto::new(Arc::new(haven_crypto::MasterKeyring::generate().unwrap()))
    }

    #[test]
    fn a_text_opens_only_in_its_own_column_and_row() {
        let crypto = crypto();
        let id = Uuid::now_v7();
        let (key, _) = crypto.new_data_key(id).unwrap();
        let sealed = seal(&key, TextColumn::Purpose, id, "a safe bed tonight").unwrap();
        assert_eq!(
            open(&key, TextColumn::Purpose, id, &sealed).unwrap(),
            "a safe bed tonight"
        );
        assert!(open(&key, TextColumn::Outcome, id, &sealed).is_err());
        assert!(open(&key, TextColumn::Purpose, Uuid::now_v7(), &sealed).is_err());
    }

    #[test]
    fn legacy_rows_are_encrypted_and_destroyed_keys_read_as_absent() {
        let crypto = crypto();
        let id = Uuid::now_v7();
        let legacy = StoredTexts {
            purpose: b"counselling".to_vec(),
            status_reason: Vec::new(),
            outcome: b"attended".to_vec(),
        };
        let (key, wrapped) = crypto.new_data_key(id).unwrap();
        let sealed = seal_legacy(&key, id, &legacy).unwrap();
        assert_ne!(sealed.purpose, legacy.purpose);
        let opened = crypto
            .open_texts(id, &StoredKey::Wrapped(wrapped), &sealed)
            .unwrap();
        assert_eq!(
            opened,
            crypto.open_texts(id, &StoredKey::Legacy, &legacy).unwrap()
        );
        assert_eq!(
            crypto
                .open_texts(id, &StoredKey::Destroyed, &sealed)
                .unwrap(),
            ReferralTexts::default()
        );
    }
}
