//! The local master keyring: versioned AES-256 master keys kept in a 0600 JSON
//! file, implementing [`KeyWrapper`].
//!
//! File format (versions as decimal strings, keys as hex):
//!
//! ```json
//! {"active": 2, "keys": {"1": "<64 hex digits>", "2": "<64 hex digits>"}}
//! ```
//!
//! Rotation is an operator action: load, [`MasterKeyring::rotate`],
//! [`MasterKeyring::save`], let every service see the new file (a running service
//! holds a [`crate::ReloadingKeyring`], which follows it), re-wrap the stored data
//! keys, then [`MasterKeyring::retire`] the old version and save again.
//! Two processes rotating the same file at once would each lose the other's new
//! key, so run rotation from one place.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cipher::{self, Encoder};
use crate::envelope::{DataKey, KeyWrapper, WrappedKey};
use crate::error::{CryptoError, Result};
use crate::key_file;
use crate::secret::{SecretBytes, wipe, wipe_string};

/// Length of a master key: AES-256.
const MASTER_KEY_LEN: usize = 32;
/// Domain of the associated data when wrapping a data key.
const WRAP_DOMAIN: &str = "haven-crypto/data-key/v1";

/// Versioned master keys. Exactly one version is active and wraps new data keys;
/// every version still held can unwrap what it wrapped, until it is retired.
pub struct MasterKeyring {
    active: u32,
    keys: BTreeMap<u32, SecretBytes<MASTER_KEY_LEN>>,
}

/// The keyring file's JSON shape.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    active: u32,
    keys: BTreeMap<u32, String>,
}

impl MasterKeyring {
    /// A new keyring holding one random key, version 1, active. Fails only if the
    /// operating system's random number generator fails.
    pub fn generate() -> Result<Self> {
        let mut keys = BTreeMap::new();
        keys.insert(1, SecretBytes::random()?);
        Ok(Self { active: 1, keys })
    }

    /// Reads a keyring file. A missing file is an error here: production must not
    /// silently start with a new, empty keyring that cannot read existing data.
    pub fn load(path: &Path) -> Result<Self> {
        match key_file::read(path)? {
            Some(contents) => Self::parse(path, contents),
            None => Err(CryptoError::KeyFileIo {
                path: path.to_path_buf(),
                source: std::io::ErrorKind::NotFound.into(),
            }),
        }
    }

    /// Reads the keyring file, or creates it with a fresh version 1 if it does not
    /// exist (development and first start). When several processes start at once,
    /// exactly one file is created and all of them use it.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        if let Some(contents) = key_file::read(path)? {
            return Self::parse(path, contents);
        }
        let keyring = Self::generate()?;
        let mut contents = keyring.to_file_contents()?;
        let created = key_file::create_if_absent(path, &contents);
        wipe(&mut contents);
        if created? {
            Ok(keyring)
        } else {
            Self::load(path)
        }
    }

    /// Writes the keyring to `path` (mode 0600), replacing any previous file in
    /// one atomic rename, so a reader never sees a partial keyring.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut contents = self.to_file_contents()?;
        let saved = key_file::replace(path, &contents);
        wipe(&mut contents);
        saved
    }

    /// Adds a new random key with the next version number and makes it active.
    /// Older versions keep unwrapping. Returns the new version. The change is in
    /// memory only until [`MasterKeyring::save`].
    pub fn rotate(&mut self) -> Result<u32> {
        let highest = self.keys.keys().next_back().copied().unwrap_or(0);
        let version = highest
            .checked_add(1)
            .ok_or(CryptoError::VersionsExhausted { version: highest })?;
        self.keys.insert(version, SecretBytes::random()?);
        self.active = version;
        Ok(version)
    }

    /// Removes an old version once every data key it wrapped has been re-wrapped.
    /// Keys still wrapped under it become unreadable, which is the point: a
    /// leaked old master key stops mattering. The active version cannot be retired.
    pub fn retire(&mut self, version: u32) -> Result<()> {
        if version == self.active {
            return Err(CryptoError::RetireActiveKey { version });
        }
        match self.keys.remove(&version) {
            Some(_) => Ok(()),
            None => Err(CryptoError::UnknownMasterKeyVersion { version }),
        }
    }

    /// The versions held, ascending; for operators deciding what to retire.
    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    fn parse(path: &Path, mut contents: Vec<u8>) -> Result<Self> {
        let parsed = serde_json::from_slice::<KeyringFile>(&contents);
        wipe(&mut contents);
        let invalid = |reason| CryptoError::KeyFileInvalid {
            path: path.to_path_buf(),
            reason,
        };
        // The parser's own message could quote the file, so it is not kept.
        let file = parsed.map_err(|_| {
            invalid(r#"expected {"active": <version>, "keys": {"<version>": "<hex>"}}"#)
        })?;
        let mut keys = BTreeMap::new();
        let mut problem = None;
        // Every hex string is wiped, also after the first problem is found.
        for (version, hex_key) in file.keys {
            let key = decode_key(&hex_key);
            wipe_string(hex_key);
            match key {
                _ if version == 0 => problem = problem.or(Some("key versions start at 1")),
                Some(key) => {
                    keys.insert(version, key);
                }
                None => problem = problem.or(Some("a key is not 64 hexadecimal digits")),
            }
        }
        if let Some(reason) = problem {
            return Err(invalid(reason));
        }
        if !keys.contains_key(&file.active) {
            return Err(invalid("the active version has no key"));
        }
        Ok(Self {
            active: file.active,
            keys,
        })
    }

    fn to_file_contents(&self) -> Result<Vec<u8>> {
        let file = KeyringFile {
            active: self.active,
            keys: self
                .keys
                .iter()
                .map(|(version, key)| (*version, hex::encode(key.expose())))
                .collect(),
        };
        let serialised = serde_json::to_vec_pretty(&file);
        for hex_key in file.keys.into_values() {
            wipe_string(hex_key);
        }
        let mut contents = serialised.map_err(|_| CryptoError::Malformed {
            what: "master keyring",
        })?;
        contents.push(b'\n');
        Ok(contents)
    }

    fn key(&self, version: u32) -> Result<&SecretBytes<MASTER_KEY_LEN>> {
        self.keys
            .get(&version)
            .ok_or(CryptoError::UnknownMasterKeyVersion { version })
    }
}

fn decode_key(hex_key: &str) -> Option<SecretBytes<MASTER_KEY_LEN>> {
    let mut bytes = hex::decode(hex_key.trim()).ok()?;
    let key = SecretBytes::from_slice(&bytes);
    wipe(&mut bytes);
    key
}

fn wrap_associated_data(version: u32, context: &[u8]) -> Vec<u8> {
    Encoder::new(WRAP_DOMAIN)
        .u32(version)
        .field(context)
        .finish()
}

impl KeyWrapper for MasterKeyring {
    fn wrap_key(&self, data_key: &DataKey, context: &[u8]) -> Result<WrappedKey> {
        let master_key = self.key(self.active)?;
        let payload = cipher::seal(
            master_key.expose(),
            &wrap_associated_data(self.active, context),
            data_key.expose_secret(),
        )?;
        Ok(WrappedKey::new(self.active, payload))
    }

    fn unwrap_key(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey> {
        let version = wrapped.master_version();
        let master_key = self.key(version)?;
        let mut plaintext = cipher::open(
            master_key.expose(),
            &wrap_associated_data(version, context),
            wrapped.payload(),
            "wrapped data key",
        )?;
        let data_key = DataKey::from_slice(&plaintext);
        wipe(&mut plaintext);
        data_key.ok_or(CryptoError::Malformed {
            what: "wrapped data key",
        })
    }

    fn active_version(&self) -> u32 {
        self.active
    }
}

impl fmt::Debug for MasterKeyring {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("MasterKeyring")
            .field("active", &self.active)
            .field("versions", &self.versions())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn debug_lists_versions_but_no_key() -> TestResult {
        let mut keyring = MasterKeyring::generate()?;
        keyring.rotate()?;
        let printed = format!("{keyring:?}");
        assert_eq!(printed, "MasterKeyring { active: 2, versions: [1, 2], .. }");
        for version in keyring.versions() {
            let hex_key = hex::encode(keyring.key(version)?.expose());
            assert!(!printed.contains(&hex_key[..8]));
        }
        Ok(())
    }

    #[test]
    fn invalid_files_are_rejected_without_quoting_them() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("keyring.json");
        let secret_looking = "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0ffff";
        let cases = [
            format!(
                r#"{{"active": 1, "keys": {{"1": "{}"}}}}"#,
                &secret_looking[..62]
            ),
            format!(r#"{{"active": 2, "keys": {{"1": "{secret_looking}"}}}}"#),
            format!(r#"{{"active": 0, "keys": {{"0": "{secret_looking}"}}}}"#),
            format!(r#"{{"active": 1, "keys": {{"1": {secret_looking:?}}}, "x": 1}}"#),
            format!(r#"{{"active": "1", "keys": {{"1": "{secret_looking}"}}}}"#),
            String::from("not json"),
        ];
        for contents in cases {
            std::fs::write(&path, &contents)?;
            let error = match MasterKeyring::load(&path) {
                Ok(_) => return Err(format!("accepted {contents}").into()),
                Err(error) => error,
            };
            assert!(matches!(error, CryptoError::KeyFileInvalid { .. }));
            assert!(!error.to_string().contains(&secret_looking[..16]));
        }
        Ok(())
    }
}
