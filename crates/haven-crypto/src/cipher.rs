//! AES-256-GCM with random nonces, and the unambiguous encoding of associated
//! data, shared by data-key wrapping and field encryption.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

use crate::error::{CryptoError, Result};
use crate::secret::random_array;

/// Length of an AES-GCM nonce: 96 bits, the size GCM is designed for.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of the authentication tag appended to every ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// Encrypts under a fresh random nonce; returns `nonce || ciphertext || tag`.
///
/// Random 96-bit nonces stay safe for about 2^32 messages per key; a data key
/// encrypts the fields of one person and a master key wraps one small key per
/// person, both far below that.
pub(crate) fn seal(key: &[u8; 32], associated_data: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let nonce_bytes: [u8; NONCE_LEN] = random_array()?;
    let nonce = Nonce::from(nonce_bytes);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: associated_data,
            },
        )
        .map_err(|_| CryptoError::Encryption)?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(&nonce_bytes);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// Reverses [`seal`]. `what` names the value in the error if it is too short to
/// be a sealed message.
pub(crate) fn open(
    key: &[u8; 32],
    associated_data: &[u8],
    sealed: &[u8],
    what: &'static str,
) -> Result<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed { what });
    }
    let (nonce_bytes, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_from(nonce_bytes).map_err(|_| CryptoError::Malformed { what })?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad: associated_data,
            },
        )
        .map_err(|_| CryptoError::Decryption)
}

/// Builds associated data (or MAC input) in which no two different lists of
/// fields can produce the same bytes: every field is preceded by its length.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    /// Starts with a domain label, so that bytes built for one purpose never
    /// verify for another.
    pub(crate) fn new(domain: &str) -> Self {
        let mut encoder = Self::default();
        encoder.field(domain.as_bytes());
        encoder
    }

    /// Appends a variable-length field.
    pub(crate) fn field(&mut self, value: &[u8]) -> &mut Self {
        let length = u64::try_from(value.len()).unwrap_or(u64::MAX);
        self.bytes.extend_from_slice(&length.to_be_bytes());
        self.bytes.extend_from_slice(value);
        self
    }

    /// Appends a fixed-width integer.
    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a single tag byte.
    pub(crate) fn byte(&mut self, value: u8) -> &mut Self {
        self.bytes.push(value);
        self
    }

    /// The encoded bytes.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_binds_the_associated_data() -> Result<()> {
        let key = [9u8; 32];
        let sealed = seal(&key, b"context", b"secret")?;
        assert_eq!(sealed.len(), NONCE_LEN + b"secret".len() + TAG_LEN);
        assert_eq!(open(&key, b"context", &sealed, "test")?, b"secret");
        assert!(matches!(
            open(&key, b"other", &sealed, "test"),
            Err(CryptoError::Decryption)
        ));
        Ok(())
    }

    #[test]
    fn nonces_are_fresh() -> Result<()> {
        let key = [1u8; 32];
        let first = seal(&key, b"", b"same")?;
        let second = seal(&key, b"", b"same")?;
        assert_ne!(first, second);
        Ok(())
    }

    #[test]
    fn encoding_is_unambiguous() {
        let joined = Encoder::new("d").field(b"ab").field(b"c").finish();
        let shifted = Encoder::new("d").field(b"a").field(b"bc").finish();
        assert_ne!(joined, shifted);
    }
}
