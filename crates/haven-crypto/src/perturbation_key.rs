//! The key that fixes each record's key for the cell-key perturbation of published
//! statistics.
//!
//! Reporting perturbs every published count by an amount its cell key picks, and a
//! cell's key is the sum of its records' keys. A record's key must stay the same for
//! as long as statistics are published (so the same persons give the same figures in
//! every report, before and after a rebuild of the reporting database) and must be
//! unknown to readers (who could otherwise work the perturbation back out). So it is
//! an HMAC of the record's id under this key, which lives in the key directory with
//! the other keys, never in the database.

use std::fmt;
use std::path::Path;

use hmac::Mac;

use crate::error::Result;
use crate::head_key::domain_mac;
use crate::key_file;
use crate::secret::SecretBytes;

/// Length of the key.
const KEY_LEN: usize = key_file::HEX_KEY_LEN;
/// Domain of every record key.
const DOMAIN: &[u8] = b"haven-reporting/record-key/v1";

/// The secret key of record keys. Never printed; wiped when dropped.
pub struct PerturbationKey(SecretBytes<KEY_LEN>);

impl PerturbationKey {
    /// A fresh random key. Fails only if the operating system's random number
    /// generator fails.
    pub fn generate() -> Result<Self> {
        SecretBytes::random().map(Self)
    }

    /// Adopts a key provisioned elsewhere. The caller's array is a copy: overwrite it.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(SecretBytes::from_array(bytes))
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh key on first
    /// start. Processes starting together all end up with the same key.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        key_file::load_or_create_hex_key(path, "perturbation key").map(Self)
    }

    /// The key of the record `id`: 32 bits, fixed by the id and this key.
    pub fn record_key(&self, id: &[u8]) -> u32 {
        let tag = domain_mac(&self.0, DOMAIN, &[id]).finalize().into_bytes();
        u32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]])
    }
}

impl fmt::Debug for PerturbationKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("PerturbationKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_key_is_fixed_by_id_and_key_and_survives_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perturbation.key");
        let key = PerturbationKey::load_or_create(&path).unwrap();
        let again = PerturbationKey::load_or_create(&path).unwrap();
        assert_eq!(key.record_key(b"case-1"), again.record_key(b"case-1"));
        assert_ne!(key.record_key(b"case-1"), key.record_key(b"case-2"));
        let other = PerturbationKey::generate().unwrap();
        assert_ne!(key.record_key(b"case-1"), other.record_key(b"case-1"));
        assert!(!format!("{key:?}").contains(&hex::encode(key.0.expose())));
    }
}
