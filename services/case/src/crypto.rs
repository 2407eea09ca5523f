//! Encryption of a case's narratives (notes, plan content) under a data key of the
//! case, wrapped by the shared master keyring. Erasing the person destroys the key.

use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use haven_crypto::{DataKey, FieldContext, KeyWrapper, RecordKeys, decrypt_str, encrypt_str};
use haven_error::{HavenError, HavenResult};

pub use haven_crypto::MASTER_KEYRING_FILE;

/// Keys for case narratives, loaded once per process.
#[derive(Clone, Debug)]
pub struct CaseCrypto {
    keys: RecordKeys,
}

impl CaseCrypto {
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

    /// A new data key for a case and its wrapped form to store, bound to the case.
    pub fn new_data_key(&self, case_id: Uuid) -> HavenResult<(DataKey, Vec<u8>)> {
        self.keys
            .generate(case_id.as_bytes())
            .map_err(HavenError::internal)
    }

    /// Unwraps the stored data key of a case.
    pub fn data_key(&self, case_id: Uuid, wrapped: &[u8]) -> HavenResult<DataKey> {
        self.keys
            .unwrap(case_id.as_bytes(), wrapped)
            .map_err(HavenError::internal)
    }

    /// Re-wraps the stored data key of a case under the active master version.
    pub fn rewrap(&self, case_id: Uuid, wrapped: &[u8]) -> HavenResult<Vec<u8>> {
        self.keys
            .rewrap(case_id.as_bytes(), wrapped)
            .map_err(HavenError::internal)
    }
    /// Encrypts a text bound to its table, column and row.
    pub fn seal(
        key: &DataKey,
        table: &str,
        column: &str,
        row_id: &[u8],
        text: &str,
    ) -> HavenResult<Vec<u8>> {
        encrypt_str(key, text, &FieldContext::new(table, column, row_id))
            .map_err(HavenError::internal)
    }

    /// Decrypts a text written by [`CaseCrypto::seal`].
    pub fn open(
        key: &DataKey,
        table: &str,
        column: &str,
        row_id: &[u8],
        stored: &[u8],
    ) -> HavenResult<String> {
        decrypt_str(key, stored, &FieldContext::new(table, column, row_id))
            .map_err(HavenError::internal)
    }
}
