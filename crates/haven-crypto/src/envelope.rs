//! Envelope encryption: one random data key per person encrypts that person's
//! fields; the data key is stored only wrapped (encrypted) by a master key.
//!
//! This split is what makes two operations cheap that would otherwise mean
//! re-encrypting every field: erasing a person (delete the wrapped data key and
//! the ciphertexts become noise: crypto-shredding) and rotating the master key
//! (re-wrap the small data keys; the field ciphertexts do not change).

use std::fmt;

use crate::error::{CryptoError, Result};
use crate::secret::SecretBytes;

/// Length of a data key: AES-256.
pub const DATA_KEY_LEN: usize = 32;

/// The key that encrypts the fields of one person.
///
/// It is never printed and wiped from memory when dropped; it is not `Clone`, so
/// a process holds it once and only for as long as it needs it.
pub struct DataKey(SecretBytes<DATA_KEY_LEN>);

impl DataKey {
    /// A fresh key from the operating system's random number generator, for a new
    /// person. Fails only if that generator fails.
    pub fn generate() -> Result<Self> {
        SecretBytes::random().map(Self)
    }

    /// Adopts key bytes produced elsewhere, for a [`KeyWrapper`] backed by a KMS
    /// that returns the plaintext key. The caller's array is a copy: overwrite it.
    pub fn from_bytes(bytes: [u8; DATA_KEY_LEN]) -> Self {
        Self(SecretBytes::from_array(bytes))
    }

    /// The raw key, for a [`KeyWrapper`] implementation that must hand it to a
    /// KMS. Named so that every use stands out in review.
    pub fn expose_secret(&self) -> &[u8; DATA_KEY_LEN] {
        self.0.expose()
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        SecretBytes::from_slice(bytes).map(Self)
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("DataKey([redacted])")
    }
}

/// Largest wrapped payload accepted when parsing; far above what AES-GCM or a
/// KMS produces for a 32-byte key, low enough to reject garbage early.
const MAX_WRAPPED_PAYLOAD_LEN: usize = 4096;

/// A data key encrypted under a master key, as stored next to the person (a
/// BLOB/BYTEA column).
///
/// The master key version travels with it so that any key still in the keyring
/// can unwrap it after a rotation. The payload is opaque to everything but the
/// [`KeyWrapper`] that made it (for the local keyring: `nonce || ciphertext+tag`).
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    master_version: u32,
    payload: Vec<u8>,
}

impl WrappedKey {
    /// Assembles a wrapped key; for [`KeyWrapper`] implementations.
    pub fn new(master_version: u32, payload: Vec<u8>) -> Self {
        Self {
            master_version,
            payload,
        }
    }

    /// The master key version that wrapped this key; a key whose version is not
    /// the active one is due for [`KeyWrapper::rewrap_key`].
    pub fn master_version(&self) -> u32 {
        self.master_version
    }

    /// The wrapper-specific encrypted bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Compact storage form: `master_version (u32, big-endian) || payload`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(4 + self.payload.len());
        bytes.extend_from_slice(&self.master_version.to_be_bytes());
        bytes.extend_from_slice(&self.payload);
        bytes
    }

    /// Parses [`WrappedKey::to_bytes`] output. Checks only the shape; whether the
    /// bytes are authentic is known when the key is unwrapped.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let malformed = CryptoError::Malformed {
            what: "wrapped data key",
        };
        let Some((version_bytes, payload)) = bytes.split_first_chunk::<4>() else {
            return Err(malformed);
        };
        if payload.is_empty() || payload.len() > MAX_WRAPPED_PAYLOAD_LEN {
            return Err(malformed);
        }
        Ok(Self {
            master_version: u32::from_be_bytes(*version_bytes),
            payload: payload.to_vec(),
        })
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WrappedKey")
            .field("master_version", &self.master_version)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Wraps and unwraps data keys under versioned master keys.
///
/// A trait so that the local [`crate::MasterKeyring`] (development, small
/// deployments) and a KMS-backed implementation are interchangeable.
///
/// `context` is authenticated but not encrypted: pass the owner's identity (for a
/// person, the bytes of the person id). A wrapped key copied to another owner then
/// fails to unwrap instead of silently decrypting the wrong person's data.
pub trait KeyWrapper: Send + Sync {
    /// Encrypts `data_key` under the active master key version.
    fn wrap_key(&self, data_key: &DataKey, context: &[u8]) -> Result<WrappedKey>;

    /// Decrypts a wrapped key with the master key version it names. Fails with
    /// [`CryptoError::UnknownMasterKeyVersion`] once that version is retired and
    /// with [`CryptoError::Decryption`] for a wrong context or altered bytes.
    fn unwrap_key(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey>;

    /// The version new keys are wrapped with.
    fn active_version(&self) -> u32;

    /// Re-encrypts a wrapped key under the active version, for the job that
    /// follows a rotation. The data ciphertexts stay as they are because the
    /// data key itself does not change. A key already on the active version is
    /// verified and returned unchanged.
    fn rewrap_key(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<WrappedKey> {
        let data_key = self.unwrap_key(wrapped, context)?;
        if wrapped.master_version() == self.active_version() {
            return Ok(wrapped.clone());
        }
        self.wrap_key(&data_key, context)
    }

    /// A fresh data key for a new owner, with the wrapped form to store. A KMS
    /// implementation can override this with its own generate-data-key call.
    fn generate_data_key(&self, context: &[u8]) -> Result<(DataKey, WrappedKey)> {
        let data_key = DataKey::generate()?;
        let wrapped = self.wrap_key(&data_key, context)?;
        Ok((data_key, wrapped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_key_bytes_round_trip() -> Result<()> {
        let wrapped = WrappedKey::new(7, vec![1, 2, 3]);
        let bytes = wrapped.to_bytes();
        assert_eq!(bytes, [0, 0, 0, 7, 1, 2, 3]);
        assert_eq!(WrappedKey::from_bytes(&bytes)?, wrapped);
        Ok(())
    }

    #[test]
    fn wrapped_key_rejects_truncated_bytes() {
        for bytes in [&[][..], &[0, 0, 0], &[0, 0, 0, 1]] {
            assert!(matches!(
                WrappedKey::from_bytes(bytes),
                Err(CryptoError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn data_key_debug_is_redacted() {
        let key = DataKey::from_bytes([0x5A; DATA_KEY_LEN]);
        let printed = format!("{key:?}");
        assert!(!printed.contains("5a") && !printed.contains("90"));
        assert_eq!(printed, "DataKey([redacted])");
    }
}
