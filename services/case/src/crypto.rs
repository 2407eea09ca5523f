//! Encryption of a case's narratives (notes, plan content) under a data key of the
//! case, wrapped by the shared master keyring. Erasing the person destroys the key.

use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use haven_crypto::{
    DataKey, FieldContext, KeyWrapper, MasterKeyring, WrappedKey, decrypt_str, encrypt_str,
};
use haven_error::{HavenError, HavenResult};

/// File of the master keyring under the keys directory (shared with intake).
pub const MASTER_KEYRING_FILE: &str = "master-keys.json";

/// Keys for case narratives, loaded once per process.
#[derive(Clone)]
pub struct CaseCrypto {
    keyring: Arc<dyn KeyWrapper>,
}

impl std::fmt::Debug for CaseCrypto {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("CaseCrypto").finish_non_exhaustive()
    }
}

impl CaseCrypto {
    /// Loads (in development: creates) the master keyring in `keys_dir`.
    pub fn load(keys_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(keys_dir)?;
        let keyring = MasterKeyring::load_or_create(&keys_dir.join(MASTER_KEYRING_FILE))
            .map_err(|error| anyhow::anyhow!("master keyring: {error}"))?;
        Ok(Self::new(Arc::new(keyring)))
    }

    /// From an explicit key wrapper (tests, or a KMS-backed wrapper).
    pub fn new(keyring: Arc<dyn KeyWrapper>) -> Self {
        Self { keyring }
    }

    /// A new data key for a case and its wrapped form to store, bound to the case.
    pub fn new_data_key(&self, case_id: Uuid) -> HavenResult<(DataKey, Vec<u8>)> {
        let (key, wrapped) = self
            .keyring
            .generate_data_key(case_id.as_bytes())
            .map_err(HavenError::internal)?;
        Ok((key, wrapped.to_bytes()))
    }

    /// Unwraps the stored data key of a case.
    pub fn data_key(&self, case_id: Uuid, wrapped: &[u8]) -> HavenResult<DataKey> {
        let wrapped = WrappedKey::from_bytes(wrapped).map_err(HavenError::internal)?;
        self.keyring
            .unwrap_key(&wrapped, case_id.as_bytes())
            .map_err(HavenError::internal)
    }

    /// Re-wraps the stored data key of a case under the active master version.
    pub fn rewrap(&self, case_id: Uuid, wrapped: &[u8]) -> HavenResult<Vec<u8>> {
        let wrapped = WrappedKey::from_bytes(wrapped).map_err(HavenError::internal)?;
        self.keyring
            .rewrap_key(&wrapped, case_id.as_bytes())
            .map(|rewrapped| rewrapped.to_bytes())
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
