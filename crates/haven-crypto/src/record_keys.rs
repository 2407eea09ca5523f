//! Data keys of records (a person, a screening's narratives, a case), each stored in
//! its record wrapped by the master keyring and bound to the id of the record that
//! owns it: a wrapped key copied to another record does not open. Destroying the
//! stored key makes the record's ciphertexts unreadable (erasure).

use std::path::Path;
use std::sync::Arc;

use crate::{DataKey, KeyWrapper, ReloadingKeyring, Result, WrappedKey};

/// File of the master keyring under the keys directory, shared by every service that
/// encrypts.
pub const MASTER_KEYRING_FILE: &str = "master-keys.json";

/// Per-record data keys under one master keyring.
#[derive(Clone)]
pub struct RecordKeys {
    keyring: Arc<dyn KeyWrapper>,
}

impl std::fmt::Debug for RecordKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RecordKeys")
            .field("active_version", &self.keyring.active_version())
            .finish_non_exhaustive()
    }
}

impl RecordKeys {
    /// The master keyring of `keys_dir` (created there when missing: development),
    /// followed as it changes: a rotation is picked up without a restart (see
    /// [`ReloadingKeyring`]).
    pub fn load(keys_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(keys_dir).map_err(|source| crate::CryptoError::KeyFileIo {
            path: keys_dir.to_path_buf(),
            source,
        })?;
        let keyring = ReloadingKeyring::load_or_create(&keys_dir.join(MASTER_KEYRING_FILE))?;
        Ok(Self::new(Arc::new(keyring)))
    }

    /// From an explicit key wrapper (tests, or a KMS-backed wrapper).
    pub fn new(keyring: Arc<dyn KeyWrapper>) -> Self {
        Self { keyring }
    }

    /// A new data key for `owner` and the wrapped form to store with it.
    pub fn generate(&self, owner: &[u8]) -> Result<(DataKey, Vec<u8>)> {
        let (key, wrapped) = self.keyring.generate_data_key(owner)?;
        Ok((key, wrapped.to_bytes()))
    }

    /// The data key `owner` stored as `stored`.
    pub fn unwrap(&self, owner: &[u8], stored: &[u8]) -> Result<DataKey> {
        self.keyring
            .unwrap_key(&WrappedKey::from_bytes(stored)?, owner)
    }

    /// `stored` wrapped again under the active master version (after a rotation).
    pub fn rewrap(&self, owner: &[u8], stored: &[u8]) -> Result<Vec<u8>> {
        self.keyring
            .rewrap_key(&WrappedKey::from_bytes(stored)?, owner)
            .map(|wrapped| wrapped.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKeyring;

    #[test]
    fn a_key_opens_only_for_its_owner_and_survives_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let keys = RecordKeys::load(dir.path()).unwrap();
        let (key, stored) = keys.generate(b"case-1").unwrap();
        assert_eq!(
            keys.unwrap(b"case-1", &stored).unwrap().expose_secret(),
            key.expose_secret()
        );
        assert!(
            keys.unwrap(b"case-2", &stored).is_err(),
            "bound to its owner"
        );

        let path = dir.path().join(MASTER_KEYRING_FILE);
        let mut keyring = MasterKeyring::load(&path).unwrap();
        keyring.rotate().unwrap();
        keyring.save(&path).unwrap();
        let rotated = RecordKeys::load(dir.path()).unwrap();
        let rewrapped = rotated.rewrap(b"case-1", &stored).unwrap();
        assert_ne!(rewrapped, stored);
        assert_eq!(
            rotated
                .unwrap(b"case-1", &rewrapped)
                .unwrap()
                .expose_secret(),
            key.expose_secret()
        );
    }
}
