//! Envelope encryption as the services use it: per-person data keys wrapped by
//! the master keyring, fields bound to their table, column and row.

// This crate's own tests exercise the raw paths the services may not call.
#![allow(clippy::disallowed_methods)]

use haven_crypto::{
    CryptoError, DataKey, FieldContext, KeyWrapper, MasterKeyring, WrappedKey, decrypt_field,
    decrypt_str, encrypt_field, encrypt_str,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PERSON_A: [u8; 16] = *b"person-aaaaaaaaa";
const PERSON_B: [u8; 16] = *b"person-bbbbbbbbb";

fn is_decryption_failure<T>(result: Result<T, CryptoError>) -> bool {
    matches!(result, Err(CryptoError::Decryption))
}

#[test]
fn a_field_round_trips_through_wrapped_key_and_storage_bytes() -> TestResult {
    let keyring = MasterKeyring::generate()?;
    let (data_key, wrapped) = keyring.generate_data_key(&PERSON_A)?;
    let context = FieldContext::new("persons", "family_name", &PERSON_A);
    let stored = encrypt_str(&data_key, "Məmmədova", &context)?;
    assert!(
        !stored.windows(5).any(|window| window == "Məmm".as_bytes()),
        "the plaintext is not visible in the stored bytes"
    );

    // What a repository would read back from two BYTEA columns.
    let wrapped = WrappedKey::from_bytes(&wrapped.to_bytes())?;
    let data_key = keyring.unwrap_key(&wrapped, &PERSON_A)?;
    assert_eq!(decrypt_str(&data_key, &stored, &context)?, "Məmmədova");

    let binary = encrypt_field(&data_key, &[0, 159, 255], &context)?;
    assert_eq!(decrypt_field(&data_key, &binary, &context)?, [0, 159, 255]);
    let empty = encrypt_field(&data_key, b"", &context)?;
    assert_eq!(decrypt_field(&data_key, &empty, &context)?, b"");
    Ok(())
}

#[test]
fn equal_plaintexts_give_different_ciphertexts() -> TestResult {
    let data_key = DataKey::generate()?;
    let context = FieldContext::new("persons", "given_name", &PERSON_A);
    let first = encrypt_str(&data_key, "Aynur", &context)?;
    let second = encrypt_str(&data_key, "Aynur", &context)?;
    assert_ne!(first, second);
    Ok(())
}

#[test]
fn ciphertext_moved_to_another_row_column_or_table_does_not_decrypt() -> TestResult {
    let data_key = DataKey::generate()?;
    let original = FieldContext::new("persons", "family_name", &PERSON_A);
    let stored = encrypt_str(&data_key, "Cəfərov", &original)?;

    let moved = [
        FieldContext::new("persons", "family_name", &PERSON_B),
        FieldContext::new("persons", "given_name", &PERSON_A),
        FieldContext::new("contacts", "family_name", &PERSON_A),
        // Same bytes overall, split differently: the encoding is length-prefixed.
        FieldContext::new("personsf", "amily_name", &PERSON_A),
    ];
    for context in moved {
        assert!(
            is_decryption_failure(decrypt_str(&data_key, &stored, &context)),
            "decrypted under {context:?}"
        );
    }
    assert_eq!(decrypt_str(&data_key, &stored, &original)?, "Cəfərov");
    Ok(())
}

#[test]
fn any_changed_byte_is_detected() -> TestResult {
    let data_key = DataKey::generate()?;
    let context = FieldContext::new("persons", "notes", &PERSON_A);
    let stored = encrypt_str(&data_key, "met at the border crossing", &context)?;
    // Byte 0 is the format; every other position is nonce, ciphertext or tag.
    for position in 1..stored.len() {
        let mut tampered = stored.clone();
        tampered[position] ^= 0x01;
        assert!(
            is_decryption_failure(decrypt_field(&data_key, &tampered, &context)),
            "flipping byte {position} went unnoticed"
        );
    }
    let mut truncated = stored.clone();
    truncated.pop();
    assert!(is_decryption_failure(decrypt_field(
        &data_key, &truncated, &context
    )));
    Ok(())
}

#[test]
fn another_key_cannot_decrypt() -> TestResult {
    let context = FieldContext::new("persons", "family_name", &PERSON_A);
    let stored = encrypt_str(&DataKey::generate()?, "Xəlilov", &context)?;
    assert!(is_decryption_failure(decrypt_str(
        &DataKey::generate()?,
        &stored,
        &context
    )));
    Ok(())
}

#[test]
fn a_key_wrapped_for_one_person_does_not_unwrap_for_another() -> TestResult {
    let keyring = MasterKeyring::generate()?;
    let (_, wrapped_for_a) = keyring.generate_data_key(&PERSON_A)?;
    assert!(is_decryption_failure(
        keyring.unwrap_key(&wrapped_for_a, &PERSON_B)
    ));
    assert!(keyring.unwrap_key(&wrapped_for_a, &PERSON_A).is_ok());
    Ok(())
}

#[test]
fn a_tampered_wrapped_key_does_not_unwrap() -> TestResult {
    let keyring = MasterKeyring::generate()?;
    let (_, wrapped) = keyring.generate_data_key(&PERSON_A)?;
    let bytes = wrapped.to_bytes();
    for position in 4..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[position] ^= 0x80;
        let tampered = WrappedKey::from_bytes(&tampered)?;
        assert!(is_decryption_failure(
            keyring.unwrap_key(&tampered, &PERSON_A)
        ));
    }
    Ok(())
}

#[test]
fn rotation_rewrap_and_retirement() -> TestResult {
    let mut keyring = MasterKeyring::generate()?;
    assert_eq!(keyring.active_version(), 1);
    let (data_key, wrapped_v1) = keyring.generate_data_key(&PERSON_A)?;
    let context = FieldContext::new("persons", "family_name", &PERSON_A);
    let stored = encrypt_str(&data_key, "Hüseynov", &context)?;
    drop(data_key);
    assert_eq!(wrapped_v1.master_version(), 1);

    assert_eq!(keyring.rotate()?, 2);
    assert_eq!(keyring.active_version(), 2);
    assert_eq!(keyring.versions(), [1, 2]);

    // Old wrapped keys still unwrap after the rotation.
    let data_key = keyring.unwrap_key(&wrapped_v1, &PERSON_A)?;
    assert_eq!(decrypt_str(&data_key, &stored, &context)?, "Hüseynov");

    // New keys are wrapped under v2; re-wrapping moves old ones to v2.
    let (_, wrapped_new) = keyring.generate_data_key(&PERSON_B)?;
    assert_eq!(wrapped_new.master_version(), 2);
    let wrapped_v2 = keyring.rewrap_key(&wrapped_v1, &PERSON_A)?;
    assert_eq!(wrapped_v2.master_version(), 2);
    assert_eq!(keyring.rewrap_key(&wrapped_v2, &PERSON_A)?, wrapped_v2);
    assert!(is_decryption_failure(
        keyring.rewrap_key(&wrapped_v1, &PERSON_B)
    ));

    // The active version cannot be retired; v1 can.
    assert!(matches!(
        keyring.retire(2),
        Err(CryptoError::RetireActiveKey { version: 2 })
    ));
    keyring.retire(1)?;
    assert_eq!(keyring.versions(), [2]);
    assert!(matches!(
        keyring.unwrap_key(&wrapped_v1, &PERSON_A),
        Err(CryptoError::UnknownMasterKeyVersion { version: 1 })
    ));
    assert!(matches!(
        keyring.retire(1),
        Err(CryptoError::UnknownMasterKeyVersion { version: 1 })
    ));

    // The field ciphertext was never touched, and the re-wrapped key opens it.
    let data_key = keyring.unwrap_key(&wrapped_v2, &PERSON_A)?;
    assert_eq!(decrypt_str(&data_key, &stored, &context)?, "Hüseynov");
    Ok(())
}

#[test]
fn rotation_continues_after_the_highest_version_even_when_older_ones_are_retired() -> TestResult {
    let mut keyring = MasterKeyring::generate()?;
    keyring.rotate()?;
    keyring.retire(1)?;
    assert_eq!(keyring.rotate()?, 3);
    assert_eq!(keyring.versions(), [2, 3]);
    Ok(())
}

#[test]
fn crypto_shredding_deleting_the_wrapped_key_makes_the_field_unreadable() -> TestResult {
    let keyring = MasterKeyring::generate()?;
    let (data_key, wrapped) = keyring.generate_data_key(&PERSON_A)?;
    let context = FieldContext::new("persons", "family_name", &PERSON_A);
    let stored = encrypt_str(&data_key, "Quliyev", &context)?;

    // Erasure: the only copies of the data key are dropped.
    drop(data_key);
    drop(wrapped);

    // The keyring still works, but nothing it can unwrap opens the field: other
    // persons' keys fail, and so does any fresh key.
    let (other_key, _) = keyring.generate_data_key(&PERSON_A)?;
    assert!(is_decryption_failure(decrypt_str(
        &other_key, &stored, &context
    )));
    for _ in 0..16 {
        assert!(is_decryption_failure(decrypt_str(
            &DataKey::generate()?,
            &stored,
            &context
        )));
    }
    Ok(())
}

#[test]
fn errors_and_debug_output_carry_no_secret() -> TestResult {
    let keyring = MasterKeyring::generate()?;
    let (data_key, wrapped) = keyring.generate_data_key(&PERSON_A)?;
    let key_hex = hex_of(data_key.expose_secret());
    let context = FieldContext::new("persons", "family_name", &PERSON_A);
    let stored = encrypt_str(&data_key, "Şükürov", &context)?;

    let printed = format!("{data_key:?} {keyring:?} {wrapped:?} {context:?}");
    assert!(!printed.contains(&key_hex[..8]));

    let failure = decrypt_str(&DataKey::generate()?, &stored, &context)
        .err()
        .ok_or("a fresh key decrypted the field")?;
    let message = format!("{failure} {failure:?}");
    assert!(!message.contains("Şükürov") && !message.contains(&key_hex[..8]));
    Ok(())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
