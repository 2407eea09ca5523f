//! The one error type of this crate.
//!
//! Messages name what failed and where (a key version, a file path, a format
//! byte), never a key, a plaintext or a ciphertext, so an error can be logged as
//! it is.

use std::io;
use std::path::PathBuf;

/// Why a cryptographic operation or a key file failed.
///
/// Decryption failures are deliberately one variant: telling "wrong key" from
/// "wrong context" from "tampered" would hand an attacker an oracle, and AEAD
/// cannot tell them apart anyway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Authentication failed: the key, the associated data (owner, table, column,
    /// row) or the bytes themselves are not the ones used to encrypt.
    #[error("decryption failed: wrong key, wrong context or tampered ciphertext")]
    Decryption,

    /// Encryption refused its input (AES-GCM caps a message at about 64 GiB).
    #[error("encryption failed: input too long")]
    Encryption,

    /// A wrapped key names a master key version this keyring does not hold:
    /// never created here, or already retired.
    #[error("unknown master key version {version}")]
    UnknownMasterKeyVersion {
        /// The version the wrapped key names.
        version: u32,
    },

    /// Retiring the active master key would leave nothing to wrap new keys with.
    #[error("master key version {version} is active and cannot be retired")]
    RetireActiveKey {
        /// The active version.
        version: u32,
    },

    /// Rotation ran out of version numbers.
    #[error("no master key version is left after {version}")]
    VersionsExhausted {
        /// The highest version in the keyring.
        version: u32,
    },

    /// Stored bytes do not have the shape of what they claim to be.
    #[error("malformed {what}")]
    Malformed {
        /// Which kind of value, e.g. "encrypted field".
        what: &'static str,
    },

    /// A ciphertext written by a format this build does not know.
    #[error("unsupported {what} format {format}")]
    UnsupportedFormat {
        /// Which kind of value, e.g. "encrypted field".
        what: &'static str,
        /// The format byte found.
        format: u8,
    },

    /// The operating system's random number generator failed.
    #[error("the operating system random number generator failed")]
    Randomness,

    /// A key file could not be read or written.
    #[error("key file {path}: {source}")]
    KeyFileIo {
        /// The file, or the temporary file next to it.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },

    /// A key file was read but its content is not a valid key file. The reason
    /// is a fixed text: parser messages can quote the file, hence the key.
    #[error("key file {path} is invalid: {reason}")]
    KeyFileInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, without quoting the content.
        reason: &'static str,
    },
}

/// Result with [`CryptoError`] as the default error.
pub type Result<T, E = CryptoError> = std::result::Result<T, E>;
