//! Encryption of a case's narratives (notes, plan content) under a data key of the
//! case, wrapped by the shared master keyring. Erasing the person destroys the key.
//!
//! Writes seal with a [`SealingKey`]; a read opens the key only with the [`Receipt`]
//! of the audit entry about the case it appended first ([`CaseCrypto::open`]).

use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use haven_audit::{AuditedKeys, OpenedKey, Receipt, SealingKey};
use haven_crypto::KeyWrapper;
use haven_error::HavenResult;

pub use haven_crypto::MASTER_KEYRING_FILE;

/// Keys for case narratives, loaded once per process.
#[derive(Clone, Debug)]
pub struct CaseCrypto {
    keys: AuditedKeys,
}

impl CaseCrypto {
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

    /// A new data key for a case, to encrypt with, and its wrapped form to store,
    /// bound to the case.
    pub fn generate(&self, case_id: Uuid) -> HavenResult<(SealingKey, Vec<u8>)> {
        self.keys.generate(case_id)
    }

    /// The stored data key of a case, to encrypt new texts with.
    pub fn sealing_key(&self, case_id: Uuid, wrapped: &[u8]) -> HavenResult<SealingKey> {
        self.keys.sealing_key(case_id, wrapped)
    }

    /// The stored data key of a case, to decrypt with: only for the receipt of an
    /// audit entry about that case.
    pub fn open(&self, receipt: &Receipt, case_id: Uuid, wrapped: &[u8]) -> HavenResult<OpenedKey> {
        self.keys.open(receipt, case_id, wrapped)
    }

    /// Re-wraps every stored data key of the cases under the active master
    /// version; how many changed.
    pub async fn rewrap_all(&self, database: &haven_storage::Database) -> HavenResult<u64> {
        self.keys.rewrap_table(database, "cases").await
    }
}
