//! Fixed-size secret bytes: random generation, best-effort wiping, no printing.

use std::fmt;

use aes_gcm::aead::Generate;

use crate::error::{CryptoError, Result};

/// Key material held on the heap so that moving the owner never leaves copies of
/// the bytes behind, and overwritten with zeros when dropped.
///
/// The wipe is best effort without `unsafe` (no volatile writes): `black_box`
/// keeps the compiler from discarding the zeroing as a dead store, but copies made
/// before the value was boxed, or by the allocator, are out of reach.
pub(crate) struct SecretBytes<const N: usize>(Box<[u8; N]>);

impl<const N: usize> SecretBytes<N> {
    /// Fresh bytes from the operating system's random number generator.
    pub(crate) fn random() -> Result<Self> {
        let mut secret = Self(Box::new([0u8; N]));
        *secret.0 = random_array()?;
        Ok(secret)
    }

    /// Takes ownership of bytes obtained elsewhere (a key file, a KMS response).
    pub(crate) fn from_array(bytes: [u8; N]) -> Self {
        Self(Box::new(bytes))
    }

    /// Copies bytes of the right length; `None` otherwise.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != N {
            return None;
        }
        let mut secret = Self(Box::new([0u8; N]));
        secret.0.copy_from_slice(bytes);
        Some(secret)
    }

    /// The bytes, for the cipher or MAC that uses them.
    pub(crate) fn expose(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> Drop for SecretBytes<N> {
    fn drop(&mut self) {
        wipe(self.0.as_mut_slice());
    }
}

impl<const N: usize> fmt::Debug for SecretBytes<N> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

/// Random bytes from the operating system, for keys and nonces.
pub(crate) fn random_array<const N: usize>() -> Result<[u8; N]> {
    <[u8; N]>::try_generate().map_err(|_| CryptoError::Randomness)
}

/// Overwrites a buffer that held secret material (key file text, hex strings).
pub(crate) fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

/// Wipes and frees a string that held secret material.
pub(crate) fn wipe_string(text: String) {
    let mut bytes = text.into_bytes();
    wipe(&mut bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let secret = SecretBytes::<4>::from_array([0xAB, 0xCD, 0xEF, 0x12]);
        let printed = format!("{secret:?}");
        assert_eq!(printed, "[redacted]");
    }

    #[test]
    fn random_secrets_differ() -> Result<()> {
        let first = SecretBytes::<32>::random()?;
        let second = SecretBytes::<32>::random()?;
        assert_ne!(first.expose(), second.expose());
        Ok(())
    }

    #[test]
    fn from_slice_checks_the_length() {
        assert!(SecretBytes::<32>::from_slice(&[0u8; 31]).is_none());
        assert!(SecretBytes::<32>::from_slice(&[0u8; 33]).is_none());
        assert!(SecretBytes::<32>::from_slice(&[7u8; 32]).is_some());
    }
}
