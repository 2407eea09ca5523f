//! Keyed blind indexes over names, the only way persons are searched for
//! duplicates.
//!
//! A value is HMAC-SHA256, under a key of its own (separate from the master
//! keys), of a name's phonetic skeleton ([`crate::name_skeleton`]) and the birth
//! year. Equal skeletons and years give equal values, so the database can find
//! candidates with an equality lookup, while the values reveal neither the name
//! nor, without the key, anything that can be tested against a list of names.
//!
//! What equal values still reveal, to someone who reads the index table, is that
//! two records share a name (and year). Part values are produced only with a
//! birth year for that reason: a bare surname value would show at a glance how
//! many persons share each surname, the first step of a frequency attack.

use std::fmt;
use std::path::Path;
use std::sync::LazyLock;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::cipher::Encoder;
use crate::error::{CryptoError, Result};
use crate::key_file;
use crate::normalise::name_part_skeletons;
use crate::secret::{SecretBytes, wipe, wipe_string};

/// Length of a blind index key.
const KEY_LEN: usize = key_file::HEX_KEY_LEN;
/// Length of a blind index value: the SHA-256 output, untruncated, so unrelated
/// names never collide by chance.
pub const BLIND_INDEX_LEN: usize = 32;
/// Domain of the HMAC input.
const INDEX_DOMAIN: &str = "haven-crypto/blind-index/v1";

/// Words that mark a patronymic in Azerbaijani names ("Rəşid qızı", daughter of
/// Rəşid). The marker and the father's name before it are left out of the index,
/// so "Aynur Rəşid qızı Məmmədova" and "Aynur Məmmədova" match.
const PATRONYMIC_MARKERS: [&str; 15] = [
    "oğlu", "oglu", "ogly", "oglı", "оглы", "оғлу", "qızı", "qizi", "gizi", "kizi", "kyzy", "gyzy",
    "кызы", "гызы", "гизи",
];

static PATRONYMIC_SKELETONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut skeletons: Vec<String> = PATRONYMIC_MARKERS
        .iter()
        .flat_map(|marker| name_part_skeletons(marker))
        .collect();
    skeletons.sort();
    skeletons.dedup();
    skeletons
});

/// The secret key of the blind indexes.
///
/// Kept apart from the master keys: it never rotates with them (changing it means
/// recomputing every index from decrypted names), and a leak of one must not
/// expose the other. Never printed; wiped when dropped.
pub struct BlindIndexKey(SecretBytes<KEY_LEN>);

impl BlindIndexKey {
    /// A fresh random key. Fails only if the operating system's random number
    /// generator fails.
    pub fn generate() -> Result<Self> {
        SecretBytes::random().map(Self)
    }

    /// Adopts a key provisioned elsewhere (a secret manager). The caller's array
    /// is a copy: overwrite it.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(SecretBytes::from_array(bytes))
    }

    /// Reads a key file. A missing file is an error: a new key would silently
    /// stop every existing index from matching.
    pub fn load(path: &Path) -> Result<Self> {
        key_file::load_hex_key(path).map(Self)
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh key on first
    /// start. Processes starting together all end up with the same key.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        key_file::load_or_create_hex_key(path, "blind index key").map(Self)
    }

    /// Writes the key to `path` (mode 0600) in one atomic rename.
    pub fn save(&self, path: &Path) -> Result<()> {
        key_file::save_hex_key(path, &self.0, "blind index key")
    }
}

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("BlindIndexKey([redacted])")
    }
}

/// What a blind index value was computed over. Hashed into the value, so values
/// of different kinds never match each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum BlindIndexKind {
    /// All parts of the name, in sorted order (so word order does not matter),
    /// with the birth year or explicitly without one.
    FullName,
    /// One part of the name (a given name or surname) with the birth year.
    NamePart,
}

impl BlindIndexKind {
    /// A stable code for a database column.
    pub fn code(self) -> u8 {
        match self {
            Self::FullName => 1,
            Self::NamePart => 2,
        }
    }

    /// Reverses [`BlindIndexKind::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::FullName),
            2 => Some(Self::NamePart),
            _ => None,
        }
    }
}

/// One blind index value: the bytes to store and look up, and their kind.
///
/// Not a secret (without the key it cannot be linked to a name), so it prints;
/// but it identifies a name, so it is stored only in the index table and never
/// logged next to a person.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlindIndexValue {
    kind: BlindIndexKind,
    bytes: [u8; BLIND_INDEX_LEN],
}

impl BlindIndexValue {
    /// Rebuilds a value read from the database.
    pub fn from_bytes(kind: BlindIndexKind, bytes: [u8; BLIND_INDEX_LEN]) -> Self {
        Self { kind, bytes }
    }

    /// Rebuilds a value from a database column of unchecked length.
    pub fn from_slice(kind: BlindIndexKind, bytes: &[u8]) -> Result<Self> {
        let bytes =
            <[u8; BLIND_INDEX_LEN]>::try_from(bytes).map_err(|_| CryptoError::Malformed {
                what: "blind index value",
            })?;
        Ok(Self { kind, bytes })
    }

    /// What the value was computed over.
    pub fn kind(&self) -> BlindIndexKind {
        self.kind
    }

    /// The 32 bytes, for a BLOB/BYTEA column.
    pub fn as_bytes(&self) -> &[u8; BLIND_INDEX_LEN] {
        &self.bytes
    }

    /// Lower-case hex, for text columns and test output.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }
}

impl fmt::Debug for BlindIndexValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("BlindIndexValue")
            .field("kind", &self.kind)
            .field("bytes", &self.to_hex())
            .finish()
    }
}

/// Computes blind index values; build it once per process from the key.
#[derive(Clone)]
pub struct BlindIndex {
    // Keyed once; each value starts from a clone of this state.
    mac: Hmac<Sha256>,
}

impl BlindIndex {
    /// Prepares the keyed hash.
    pub fn new(key: &BlindIndexKey) -> Self {
        // HMAC pads a key shorter than the hash block (64 bytes) with zeros, so
        // padding here is standard HMAC of the 32-byte key, and it cannot fail.
        let mut padded = [0u8; 64];
        padded[..KEY_LEN].copy_from_slice(key.0.expose());
        let mut block = hmac::digest::Key::<Hmac<Sha256>>::from(padded);
        let mac = Hmac::<Sha256>::new(&block);
        wipe(&mut padded);
        wipe(block.as_mut_slice());
        Self { mac }
    }

    /// The values to store for a person, and equally the values to look up when
    /// searching for duplicates of a name (any value in common is a candidate):
    ///
    /// - one [`BlindIndexKind::FullName`] value over all name parts, sorted, with
    ///   the birth year (or marked as without one), so "Aynur Məmmədova" and
    ///   "Мамедова Айнур" give the same value;
    /// - with a birth year, one [`BlindIndexKind::NamePart`] value per distinct
    ///   part, so a search can match on surname and year alone.
    ///
    /// An Azerbaijani patronymic ("Rəşid qızı") is left out. A name with no
    /// letters gives no values.
    pub fn values(&self, full_name: &str, birth_year: Option<i32>) -> Vec<BlindIndexValue> {
        let mut parts = without_patronymic(name_part_skeletons(full_name));
        if parts.is_empty() {
            return Vec::new();
        }
        parts.sort();
        let mut values = vec![self.value(BlindIndexKind::FullName, birth_year, &parts)];
        if let Some(year) = birth_year {
            parts.dedup();
            for part in &parts {
                values.push(self.value(
                    BlindIndexKind::NamePart,
                    Some(year),
                    std::slice::from_ref(part),
                ));
            }
        }
        for part in parts {
            wipe_string(part);
        }
        values
    }

    fn value(
        &self,
        kind: BlindIndexKind,
        birth_year: Option<i32>,
        parts: &[String],
    ) -> BlindIndexValue {
        let mut encoder = Encoder::new(INDEX_DOMAIN);
        encoder.byte(kind.code());
        match birth_year {
            Some(year) => encoder.byte(1).field(&year.to_be_bytes()),
            None => encoder.byte(0),
        };
        encoder.u32(u32::try_from(parts.len()).unwrap_or(u32::MAX));
        for part in parts {
            encoder.field(part.as_bytes());
        }
        let mut input = encoder.finish();
        let bytes: [u8; BLIND_INDEX_LEN] = self
            .mac
            .clone()
            .chain_update(&input)
            .finalize()
            .into_bytes()
            .into();
        wipe(&mut input);
        BlindIndexValue { kind, bytes }
    }
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("BlindIndex([redacted])")
    }
}

/// Drops each patronymic marker and the father's name just before it.
fn without_patronymic(parts: Vec<String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::with_capacity(parts.len());
    for part in parts {
        if PATRONYMIC_SKELETONS.binary_search(&part).is_ok() {
            if let Some(fathers_name) = kept.pop() {
                wipe_string(fathers_name);
            }
            wipe_string(part);
            continue;
        }
        kept.push(part);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_codes_round_trip() {
        for kind in [BlindIndexKind::FullName, BlindIndexKind::NamePart] {
            assert_eq!(BlindIndexKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(BlindIndexKind::from_code(0), None);
    }

    #[test]
    fn patronymic_markers_reduce_to_a_few_skeletons() {
        assert_eq!(*PATRONYMIC_SKELETONS, ["KIzI", "OKlI", "OKlU"]);
    }

    #[test]
    fn standard_hmac_of_the_32_byte_key() -> std::result::Result<(), hmac::digest::InvalidLength> {
        let key_bytes = [0x42u8; KEY_LEN];
        let index = BlindIndex::new(&BlindIndexKey::from_bytes(key_bytes));
        let reference = Hmac::<Sha256>::new_from_slice(&key_bytes)?;
        let message = b"message";
        assert_eq!(
            index
                .mac
                .clone()
                .chain_update(message)
                .finalize()
                .into_bytes(),
            reference.chain_update(message).finalize().into_bytes()
        );
        Ok(())
    }

    #[test]
    fn debug_output_hides_the_key() {
        let key = BlindIndexKey::from_bytes([0x42; KEY_LEN]);
        assert_eq!(format!("{key:?}"), "BlindIndexKey([redacted])");
        assert_eq!(
            format!("{:?}", BlindIndex::new(&key)),
            "BlindIndex([redacted])"
        );
    }
}
