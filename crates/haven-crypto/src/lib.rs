//! Cryptography for personal data in Haven: field encryption under per-person
//! data keys wrapped by versioned master keys, and keyed blind indexes for
//! duplicate search over names.
//!
//! A leaked name can put a survivor back in a trafficker's hands, so personal
//! fields are stored only encrypted, and the only thing the database can compare
//! is a keyed hash of a phonetic skeleton of the name.
//!
//! - [`MasterKeyring`] holds versioned master keys and implements [`KeyWrapper`],
//!   the interface a KMS can implement too; [`ReloadingKeyring`] is the one a
//!   running service holds, following rotations of the keyring file.
//! - [`DataKey`]: one per person, stored as a [`WrappedKey`]; deleting the
//!   wrapped key erases the person (crypto-shredding).
//! - [`encrypt_field`] / [`decrypt_field`] bind each value to its table, column
//!   and row through [`FieldContext`].
//! - [`BlindIndex`] turns a name and birth year into [`BlindIndexValue`]s under a
//!   separate [`BlindIndexKey`]; [`name_skeleton`] documents the phonetic classes.
//!
//! ```
//! use haven_crypto::{FieldContext, KeyWrapper, MasterKeyring, decrypt_str, encrypt_str};
//!
//! # fn main() -> haven_crypto::Result<()> {
//! let keyring = MasterKeyring::generate()?;
//! let person_id = [7u8; 16];
//! let (data_key, wrapped) = keyring.generate_data_key(&person_id)?;
//! let context = FieldContext::new("persons", "family_name", &person_id);
//! let stored = encrypt_str(&data_key, "Məmmədova", &context)?;
//!
//! // Later: load `wrapped` and `stored` from the row.
//! let data_key = keyring.unwrap_key(&wrapped, &person_id)?;
//! assert_eq!(decrypt_str(&data_key, &stored, &context)?, "Məmmədova");
//! # Ok(())
//! # }
//! ```
//!
//! Services do not call [`decrypt_str`], [`RecordKeys::unwrap`] or the other raw
//! paths to a plaintext: they hold `haven_audit::AuditedKeys`, which decrypts only
//! for the receipt of an audit entry, and the workspace's `clippy.toml` refuses the
//! raw paths everywhere but here and there.

// This crate is where the raw paths live.
#![allow(clippy::disallowed_methods)]

mod blind_index;
mod cipher;
mod envelope;
mod error;
mod field;
mod head_key;
mod key_file;
mod keyring;
mod normalise;
mod perturbation_key;
mod record_keys;
mod reloading_keyring;
mod secret;

pub use blind_index::{
    BLIND_INDEX_LEN, BlindIndex, BlindIndexKey, BlindIndexKind, BlindIndexValue,
};
pub use envelope::{DATA_KEY_LEN, DataKey, KeyWrapper, WrappedKey};
pub use error::{CryptoError, Result};
pub use field::{FieldContext, decrypt_field, decrypt_str, encrypt_field, encrypt_str};
pub use head_key::{AuditHeadKey, HEAD_TAG_LEN};
pub use keyring::MasterKeyring;
pub use normalise::name_skeleton;
pub use perturbation_key::PerturbationKey;
pub use record_keys::{MASTER_KEYRING_FILE, RecordKeys};
pub use reloading_keyring::{RELOAD_INTERVAL, ReloadingKeyring};
