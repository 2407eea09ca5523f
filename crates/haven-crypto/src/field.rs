//! Field-level encryption of personal data with a person's [`DataKey`].
//!
//! Stored form: `format (1 byte) || nonce (12 bytes) || ciphertext || tag (16
//! bytes)`. The associated data binds each value to the table, column and row it
//! was written for, so a ciphertext copied into another person's row, another
//! column or another table fails to decrypt rather than showing up as that
//! person's data.

use crate::cipher::{self, Encoder};
use crate::envelope::DataKey;
use crate::error::{CryptoError, Result};

/// Format byte of the current layout (AES-256-GCM, 96-bit random nonce). A new
/// algorithm gets a new byte so that old rows stay readable.
const FORMAT_AES_256_GCM: u8 = 1;
/// Domain of the associated data of an encrypted field.
const FIELD_DOMAIN: &str = "haven-crypto/field/v1";
const WHAT: &str = "encrypted field";

/// Where an encrypted value lives; authenticated with the value.
///
/// `row_id` is bytes so that every caller encodes an id the same way: for a UUID
/// key pass `id.as_bytes()` (16 bytes), not its text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldContext<'a> {
    /// Table (or collection) name.
    pub table: &'a str,
    /// Column (or attribute) name.
    pub column: &'a str,
    /// Primary key of the row.
    pub row_id: &'a [u8],
}

impl<'a> FieldContext<'a> {
    /// Names the table, column and row a value is written to.
    pub fn new(table: &'a str, column: &'a str, row_id: &'a [u8]) -> Self {
        Self {
            table,
            column,
            row_id,
        }
    }

    fn associated_data(&self, format: u8) -> Vec<u8> {
        Encoder::new(FIELD_DOMAIN)
            .byte(format)
            .field(self.table.as_bytes())
            .field(self.column.as_bytes())
            .field(self.row_id)
            .finish()
    }
}

/// Encrypts one field value for storage. Every call uses a fresh random nonce,
/// so equal plaintexts give unrelated ciphertexts (use a blind index, not the
/// ciphertext, to find equal values).
pub fn encrypt_field(
    data_key: &DataKey,
    plaintext: &[u8],
    context: &FieldContext<'_>,
) -> Result<Vec<u8>> {
    let sealed = cipher::seal(
        data_key.expose_secret(),
        &context.associated_data(FORMAT_AES_256_GCM),
        plaintext,
    )?;
    let mut stored = Vec::with_capacity(1 + sealed.len());
    stored.push(FORMAT_AES_256_GCM);
    stored.extend_from_slice(&sealed);
    Ok(stored)
}

/// Decrypts a value written by [`encrypt_field`] with the same key and context.
/// Any difference in key, context or bytes gives [`CryptoError::Decryption`].
pub fn decrypt_field(
    data_key: &DataKey,
    stored: &[u8],
    context: &FieldContext<'_>,
) -> Result<Vec<u8>> {
    let Some((&format, sealed)) = stored.split_first() else {
        return Err(CryptoError::Malformed { what: WHAT });
    };
    if format != FORMAT_AES_256_GCM {
        return Err(CryptoError::UnsupportedFormat { what: WHAT, format });
    }
    cipher::open(
        data_key.expose_secret(),
        &context.associated_data(format),
        sealed,
        WHAT,
    )
}

/// [`encrypt_field`] for text fields (names, notes, addresses).
pub fn encrypt_str(
    data_key: &DataKey,
    plaintext: &str,
    context: &FieldContext<'_>,
) -> Result<Vec<u8>> {
    encrypt_field(data_key, plaintext.as_bytes(), context)
}

/// [`decrypt_field`] for text fields; fails if the plaintext is not UTF-8, which
/// only happens if a binary field was decrypted as text.
pub fn decrypt_str(
    data_key: &DataKey,
    stored: &[u8],
    context: &FieldContext<'_>,
) -> Result<String> {
    let plaintext = decrypt_field(data_key, stored, context)?;
    String::from_utf8(plaintext).map_err(|error| {
        let mut bytes = error.into_bytes();
        crate::secret::wipe(&mut bytes);
        CryptoError::Malformed {
            what: "decrypted text (not UTF-8)",
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_format_nonce_ciphertext_tag() -> Result<()> {
        let key = DataKey::from_bytes([3; 32]);
        let context = FieldContext::new("persons", "given_name", b"row");
        let stored = encrypt_field(&key, b"Aynur", &context)?;
        assert_eq!(stored[0], FORMAT_AES_256_GCM);
        assert_eq!(stored.len(), 1 + 12 + 5 + 16);
        Ok(())
    }

    #[test]
    fn unknown_format_and_short_input_are_reported_as_such() {
        let key = DataKey::from_bytes([3; 32]);
        let context = FieldContext::new("persons", "given_name", b"row");
        assert!(matches!(
            decrypt_field(&key, &[], &context),
            Err(CryptoError::Malformed { .. })
        ));
        assert!(matches!(
            decrypt_field(&key, &[9; 40], &context),
            Err(CryptoError::UnsupportedFormat { format: 9, .. })
        ));
        assert!(matches!(
            decrypt_field(&key, &[FORMAT_AES_256_GCM; 20], &context),
            Err(CryptoError::Malformed { .. })
        ));
    }
}
