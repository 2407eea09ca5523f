//! The key that signs audit chain heads.
//!
//! An audit chain is hashed without a key, so someone with write access to the
//! database can delete its newest entries, or rewrite an entry and recompute every
//! hash after it, and leave a chain that verifies. The services therefore sign the
//! chain's head (its last sequence and hash) with HMAC-SHA256 under this key, which
//! lives in the key directory, never in the database: a truncated or rehashed chain
//! no longer matches a head that can be forged only with the key.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::Result;
use crate::key_file;
use crate::secret::{SecretBytes, wipe};

/// Length of the key.
const KEY_LEN: usize = key_file::HEX_KEY_LEN;
/// Length of a head tag (the untruncated HMAC-SHA256 output).
pub const HEAD_TAG_LEN: usize = 32;
/// Domain of every tag, so a tag made for anything else never passes as a head's.
const HEAD_DOMAIN: &[u8] = b"haven-audit/head/v1";

/// The secret key of audit head signatures. Never printed; wiped when dropped.
pub struct AuditHeadKey(SecretBytes<KEY_LEN>);

impl AuditHeadKey {
    /// A fresh random key. Fails only if the operating system's random number
    /// generator fails.
    pub fn generate() -> Result<Self> {
        SecretBytes::random().map(Self)
    }

    /// Adopts a key provisioned elsewhere. The caller's array is a copy: overwrite it.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(SecretBytes::from_array(bytes))
    }

    /// Reads a key file. A missing file is an error: verifying against a new key
    /// would report every signed head as forged.
    pub fn load(path: &Path) -> Result<Self> {
        key_file::load_hex_key(path).map(Self)
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh key on first
    /// start. Processes starting together all end up with the same key.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        key_file::load_or_create_hex_key(path, "audit head key").map(Self)
    }

    /// The tag over `parts`, each length-prefixed (8 bytes big-endian) after the
    /// domain, so no two different part lists share a tag.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; HEAD_TAG_LEN] {
        self.mac(parts).finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag over `parts`, compared in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        self.mac(parts).verify_slice(tag).is_ok()
    }

    fn mac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        domain_mac(&self.0, HEAD_DOMAIN, parts)
    }
}

/// HMAC-SHA256 under `key` over `domain` then `parts`, each length-prefixed (8 bytes
/// big-endian), so no two different part lists, nor two domains, share a tag.
pub(crate) fn domain_mac(
    key: &SecretBytes<KEY_LEN>,
    domain: &[u8],
    parts: &[&[u8]],
) -> Hmac<Sha256> {
    // HMAC pads a key shorter than the hash block (64 bytes) with zeros, so padding
    // here is standard HMAC of the 32-byte key, and it cannot fail.
    let mut padded = [0u8; 64];
    padded[..KEY_LEN].copy_from_slice(key.expose());
    let mut block = hmac::digest::Key::<Hmac<Sha256>>::from(padded);
    let mut mac = Hmac::<Sha256>::new(&block);
    wipe(&mut padded);
    wipe(block.as_mut_slice());
    for part in std::iter::once(domain).chain(parts.iter().copied()) {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

impl fmt::Debug for AuditHeadKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("AuditHeadKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::AuditHeadKey;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn tags_verify_only_under_the_same_key_and_parts() -> TestResult {
        let key = AuditHeadKey::generate()?;
        let other = AuditHeadKey::generate()?;
        let tag = key.tag(&[b"intake", &7_i64.to_be_bytes()]);
        assert!(key.verify(&[b"intake", &7_i64.to_be_bytes()], &tag));
        assert!(!key.verify(&[b"intake", &8_i64.to_be_bytes()], &tag));
        assert!(!key.verify(&[b"case", &7_i64.to_be_bytes()], &tag));
        assert!(!other.verify(&[b"intake", &7_i64.to_be_bytes()], &tag));
        // Moving bytes between parts changes the tag.
        assert_ne!(key.tag(&[b"ab", b"c"]), key.tag(&[b"a", b"bc"]));
        Ok(())
    }

    #[test]
    fn the_key_file_is_created_once_and_read_back() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("keys").join("audit-head.key");
        let created = AuditHeadKey::load_or_create(&path)?;
        let loaded = AuditHeadKey::load(&path)?;
        let again = AuditHeadKey::load_or_create(&path)?;
        let tag = created.tag(&[b"head"]);
        assert!(loaded.verify(&[b"head"], &tag));
        assert!(again.verify(&[b"head"], &tag));
        assert!(AuditHeadKey::load(&directory.path().join("absent")).is_err());
        assert!(!format!("{created:?}").contains(&hex::encode(tag)));
        Ok(())
    }
}
