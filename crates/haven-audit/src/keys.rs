//! The one way from a stored record to its plaintext: through an audit entry.
//!
//! Personal data and narratives are encrypted under a data key per record (a person,
//! a screening, a case, a referral), stored wrapped by the master keyring. A service
//! holds those keys only as [`AuditedKeys`], which hands out two kinds of key:
//!
//! - a [`SealingKey`] encrypts and nothing else: for writing into a record
//!   ([`AuditedKeys::generate`] for a new record, [`AuditedKeys::sealing_key`] for an
//!   existing one). Writing a value reveals nothing that is stored.
//! - an [`OpenedKey`] also decrypts, and [`AuditedKeys::open`] gives one only for a
//!   [`Receipt`] of the same record. A receipt is what
//!   [`AuditWrite::append_audit`](crate::AuditWrite::append_audit) returns, and
//!   nothing else can make one: a read that decrypts has appended its audit entry,
//!   in its transaction, before it sees a plaintext.
//!
//! The raw paths around this module (unwrapping a data key, decrypting a field
//! directly) are listed in the workspace's `clippy.toml` as disallowed methods, so
//! code that reaches past it does not pass CI; this module is the one place that
//! allows them.
#![allow(clippy::disallowed_methods)]

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use haven_crypto::{
    CryptoError, DataKey, FieldContext, KeyWrapper, RecordKeys, decrypt_str, encrypt_str,
};
use haven_error::{HavenError, HavenResult};
use haven_storage::{Database, db_error};

use crate::entry::AuditEntry;

/// Proof that an audit entry about one record was appended, returned by
/// [`AuditWrite::append_audit`](crate::AuditWrite::append_audit) and by nothing else.
/// It opens that record's data key ([`AuditedKeys::open`]) and no other.
///
/// Not `Clone`: one entry, one receipt.
#[derive(Debug)]
pub struct Receipt {
    entry: AuditEntry,
}

impl Receipt {
    pub(crate) fn new(entry: AuditEntry) -> Self {
        Self { entry }
    }

    /// The entry as appended.
    pub fn entry(&self) -> &AuditEntry {
        &self.entry
    }

    /// The entry as appended, giving up the receipt.
    pub fn into_entry(self) -> AuditEntry {
        self.entry
    }

    /// The record the entry is about.
    pub fn record_id(&self) -> Uuid {
        self.entry.record_id
    }
}

/// Per-record data keys under the master keyring, which decrypt only with an audit
/// receipt (see the [module docs](self)).
#[derive(Clone)]
pub struct AuditedKeys {
    keys: RecordKeys,
}

impl fmt::Debug for AuditedKeys {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AuditedKeys")
            .field("keys", &self.keys)
            .finish()
    }
}

impl AuditedKeys {
    /// The master keyring of `keys_dir` (created there when missing: development).
    pub fn load(keys_dir: &Path) -> Result<Self, CryptoError> {
        RecordKeys::load(keys_dir).map(|keys| Self { keys })
    }

    /// From an explicit key wrapper (tests, or a KMS-backed wrapper).
    pub fn new(keyring: Arc<dyn KeyWrapper>) -> Self {
        Self {
            keys: RecordKeys::new(keyring),
        }
    }

    /// A new data key for the record `owner`, to encrypt its first values with, and
    /// the wrapped form to store in the record. The wrap is bound to `owner`: copied
    /// to another record it does not open.
    pub fn generate(&self, owner: Uuid) -> HavenResult<(SealingKey, Vec<u8>)> {
        let (key, stored) = self
            .keys
            .generate(owner.as_bytes())
            .map_err(HavenError::internal)?;
        Ok((SealingKey { key, owner }, stored))
    }

    /// The key of `owner` stored as `stored`, to encrypt new values with.
    pub fn sealing_key(&self, owner: Uuid, stored: &[u8]) -> HavenResult<SealingKey> {
        let key = self
            .keys
            .unwrap(owner.as_bytes(), stored)
            .map_err(HavenError::internal)?;
        Ok(SealingKey { key, owner })
    }

    /// The key of `owner` stored as `stored`, to decrypt with, for the holder of a
    /// receipt of an entry about `owner`. A receipt of another record is refused as
    /// a bug: the read would decrypt one record while auditing another.
    pub fn open(&self, receipt: &Receipt, owner: Uuid, stored: &[u8]) -> HavenResult<OpenedKey> {
        if receipt.record_id() != owner {
            return Err(HavenError::internal(std::io::Error::other(format!(
                "an audit receipt of {} {} cannot open the key of record {owner}",
                receipt.entry.record_type,
                receipt.record_id(),
            ))));
        }
        self.sealing_key(owner, stored).map(OpenedKey)
    }

    /// `stored` wrapped again under the active master version (after a rotation).
    /// The data key itself never leaves this call.
    pub fn rewrap(&self, owner: Uuid, stored: &[u8]) -> HavenResult<Vec<u8>> {
        self.keys
            .rewrap(owner.as_bytes(), stored)
            .map_err(HavenError::internal)
    }

    /// Re-wraps every data key stored in `table` (columns `id` and `data_key`, a
    /// destroyed key being NULL) under the keyring's active version, each row only if
    /// its key is still the one read (a concurrent erasure wins). Returns how many
    /// keys changed. Opens nothing: a re-wrap moves a key from one master key to
    /// another without using it.
    pub async fn rewrap_table(&self, database: &Database, table: &'static str) -> HavenResult<u64> {
        let select = format!("SELECT id, data_key FROM {table} WHERE data_key IS NOT NULL");
        let update = format!("UPDATE {table} SET data_key = $2 WHERE id = $1 AND data_key = $3");
        on_pool!(database, |pool| {
            let keys: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(select))
                .fetch_all(pool)
                .await
                .map_err(db_error)?;
            let mut rewrapped = 0;
            for (owner, wrapped) in keys {
                let new = self.rewrap(owner, &wrapped)?;
                if new != wrapped {
                    sqlx::query(sqlx::AssertSqlSafe(update.clone()))
                        .bind(owner)
                        .bind(new)
                        .bind(wrapped)
                        .execute(pool)
                        .await
                        .map_err(db_error)?;
                    rewrapped += 1;
                }
            }
            Ok(rewrapped)
        })
    }
}

/// A record's data key that only encrypts.
pub struct SealingKey {
    key: DataKey,
    owner: Uuid,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "SealingKey({})", self.owner)
    }
}

impl SealingKey {
    /// The record whose key this is.
    pub fn owner(&self) -> Uuid {
        self.owner
    }

    /// Encrypts `plaintext`, bound to `context` (table, column and row).
    pub fn encrypt_str(&self, plaintext: &str, context: &FieldContext<'_>) -> HavenResult<Vec<u8>> {
        encrypt_str(&self.key, plaintext, context).map_err(HavenError::internal)
    }

    /// Encrypts into `table`.`column` of the row `row_id`.
    pub fn seal(
        &self,
        table: &str,
        column: &str,
        row_id: &[u8],
        plaintext: &str,
    ) -> HavenResult<Vec<u8>> {
        self.encrypt_str(plaintext, &FieldContext::new(table, column, row_id))
    }
}

/// A record's data key opened under an audit receipt: decrypts, and encrypts like a
/// [`SealingKey`].
#[derive(Debug)]
pub struct OpenedKey(SealingKey);

impl std::ops::Deref for OpenedKey {
    type Target = SealingKey;

    fn deref(&self) -> &SealingKey {
        &self.0
    }
}

impl OpenedKey {
    /// Decrypts a value written with the same key and `context`.
    pub fn decrypt_str(&self, stored: &[u8], context: &FieldContext<'_>) -> HavenResult<String> {
        decrypt_str(&self.0.key, stored, context).map_err(HavenError::internal)
    }

    /// Decrypts `table`.`column` of the row `row_id`.
    pub fn open(
        &self,
        table: &str,
        column: &str,
        row_id: &[u8],
        stored: &[u8],
    ) -> HavenResult<String> {
        self.decrypt_str(stored, &FieldContext::new(table, column, row_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{ActorKind, AuditEntry};
    use crate::hash::AuditHash;

    fn receipt_of(record_id: Uuid) -> Receipt {
        Receipt::new(AuditEntry {
            sequence: 1,
            entry_id: Uuid::now_v7(),
            occurred_at: time::OffsetDateTime::UNIX_EPOCH,
            actor: "user-1".into(),
            actor_kind: ActorKind::User,
            organization_id: Uuid::nil(),
            action: "case.read".into(),
            record_type: "case".into(),
            record_id,
            purpose: String::new(),
            request_id: String::new(),
            outcome: None,
            previous_hash: AuditHash::ZERO,
            hash: AuditHash::ZERO,
            via: None,
        })
    }

    #[test]
    fn a_receipt_opens_its_own_record_only() {
        let dir = tempfile::tempdir().unwrap();
        let keys = AuditedKeys::load(dir.path()).unwrap();
        let (case_a, case_b) = (Uuid::now_v7(), Uuid::now_v7());
        let (sealing, stored) = keys.generate(case_a).unwrap();
        let ciphertext = sealing.seal("notes", "body", b"n1", "Aynur").unwrap();

        let opened = keys.open(&receipt_of(case_a), case_a, &stored).unwrap();
        assert_eq!(
            opened.open("notes", "body", b"n1", &ciphertext).unwrap(),
            "Aynur"
        );
        assert!(
            keys.open(&receipt_of(case_b), case_a, &stored).is_err(),
            "a receipt of another record does not open this one"
        );
    }
}
