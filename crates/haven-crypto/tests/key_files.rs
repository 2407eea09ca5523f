//! Key files on disk: round trip, permissions, and processes starting together.

// This crate's own tests exercise the raw paths the services may not call.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::sync::{Arc, Barrier};

use haven_crypto::{BlindIndex, BlindIndexKey, DataKey, KeyWrapper, MasterKeyring, WrappedKey};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PERSON: &[u8] = b"person-1";

#[cfg(unix)]
fn mode(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[test]
fn keyring_file_round_trip_keeps_every_version() -> TestResult {
    let directory = tempfile::tempdir()?;
    let path = directory.path().join("keys").join("master-keyring.json");

    let mut keyring = MasterKeyring::load_or_create(&path)?;
    assert_eq!(keyring.versions(), [1]);
    let (_, wrapped_v1) = keyring.generate_data_key(PERSON)?;
    keyring.rotate()?;
    let (_, wrapped_v2) = keyring.generate_data_key(PERSON)?;
    keyring.save(&path)?;

    let reloaded = MasterKeyring::load(&path)?;
    assert_eq!(reloaded.active_version(), 2);
    assert_eq!(reloaded.versions(), [1, 2]);
    reloaded.unwrap_key(&wrapped_v1, PERSON)?;
    reloaded.unwrap_key(&wrapped_v2, PERSON)?;

    let text = std::fs::read_to_string(&path)?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(json["active"], 2);
    assert_eq!(json["keys"].as_object().map(|keys| keys.len()), Some(2));
    assert_eq!(json["keys"]["1"].as_str().map(str::len), Some(64));

    // load_or_create on an existing file reads it rather than replacing it.
    let again = MasterKeyring::load_or_create(&path)?;
    again.unwrap_key(&wrapped_v1, PERSON)?;
    Ok(())
}

#[test]
fn a_keyring_written_by_hand_in_the_documented_format_loads() -> TestResult {
    let directory = tempfile::tempdir()?;
    let path = directory.path().join("keyring.json");
    let one = "11".repeat(32);
    let two = "22".repeat(32);
    std::fs::write(
        &path,
        format!(r#"{{"active": 2, "keys": {{"1": "{one}", "2": "{two}"}}}}"#),
    )?;
    let keyring = MasterKeyring::load(&path)?;
    assert_eq!(keyring.active_version(), 2);
    assert_eq!(keyring.versions(), [1, 2]);
    Ok(())
}

#[test]
fn a_missing_keyring_is_an_error_for_load() -> TestResult {
    let directory = tempfile::tempdir()?;
    assert!(MasterKeyring::load(&directory.path().join("absent.json")).is_err());
    assert!(BlindIndexKey::load(&directory.path().join("absent.json")).is_err());
    Ok(())
}

#[cfg(unix)]
#[test]
fn key_files_are_owner_only_also_after_save() -> TestResult {
    let directory = tempfile::tempdir()?;
    let keyring_path = directory.path().join("master-keyring.json");
    let index_path = directory.path().join("blind-index.key");

    let mut keyring = MasterKeyring::load_or_create(&keyring_path)?;
    assert_eq!(mode(&keyring_path)?, 0o600);
    // A file left world-readable by someone else is 0600 again after a save.
    std::fs::set_permissions(
        &keyring_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    keyring.rotate()?;
    keyring.save(&keyring_path)?;
    assert_eq!(mode(&keyring_path)?, 0o600);

    BlindIndexKey::load_or_create(&index_path)?;
    assert_eq!(mode(&index_path)?, 0o600);

    let names: Vec<String> = std::fs::read_dir(directory.path())?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    assert_eq!(names.len(), 2, "no temporary files left behind: {names:?}");
    Ok(())
}

#[test]
fn processes_creating_the_keyring_together_agree_on_one() -> TestResult {
    let directory = tempfile::tempdir()?;
    let path = Arc::new(directory.path().join("master-keyring.json"));
    let starters = 8;
    let barrier = Arc::new(Barrier::new(starters));
    let handles: Vec<_> = (0..starters)
        .map(|_| {
            let path = Arc::clone(&path);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                MasterKeyring::load_or_create(&path)
            })
        })
        .collect();
    let mut keyrings = Vec::new();
    for handle in handles {
        let keyring = handle.join().map_err(|_| "a starter panicked")??;
        keyrings.push(keyring);
    }

    // A key wrapped by any of them unwraps with every other one and with the file.
    let from_file = MasterKeyring::load(&path)?;
    for wrapper in &keyrings {
        let (_, wrapped) = wrapper.generate_data_key(PERSON)?;
        for other in keyrings.iter().chain(std::iter::once(&from_file)) {
            other.unwrap_key(&wrapped, PERSON)?;
        }
    }
    Ok(())
}

#[test]
fn processes_creating_the_blind_index_key_together_agree_on_one() -> TestResult {
    let directory = tempfile::tempdir()?;
    let path = Arc::new(directory.path().join("blind-index.key"));
    let starters = 8;
    let barrier = Arc::new(Barrier::new(starters));
    let handles: Vec<_> = (0..starters)
        .map(|_| {
            let path = Arc::clone(&path);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                BlindIndexKey::load_or_create(&path)
            })
        })
        .collect();
    let mut values = Vec::new();
    for handle in handles {
        let key = handle.join().map_err(|_| "a starter panicked")??;
        values.push(BlindIndex::new(&key).values("Aynur Məmmədova", Some(1990)));
    }
    let reloaded = BlindIndex::new(&BlindIndexKey::load(&path)?);
    values.push(reloaded.values("Aynur Məmmədova", Some(1990)));
    assert!(values.windows(2).all(|pair| pair[0] == pair[1]));
    Ok(())
}

#[test]
fn blind_index_key_file_round_trip() -> TestResult {
    let directory = tempfile::tempdir()?;
    let path = directory.path().join("blind-index.key");
    let key = BlindIndexKey::generate()?;
    key.save(&path)?;
    let reloaded = BlindIndexKey::load(&path)?;
    assert_eq!(
        BlindIndex::new(&key).values("Çingiz", Some(1985)),
        BlindIndex::new(&reloaded).values("Çingiz", Some(1985))
    );
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    assert_eq!(json["key"].as_str().map(str::len), Some(64));
    Ok(())
}

#[test]
fn a_wrapped_key_from_another_keyring_file_is_unknown_or_fails() -> TestResult {
    let directory = tempfile::tempdir()?;
    let first = MasterKeyring::load_or_create(&directory.path().join("one.json"))?;
    let second = MasterKeyring::load_or_create(&directory.path().join("two.json"))?;
    let wrapped = first.wrap_key(&DataKey::generate()?, PERSON)?;
    let wrapped = WrappedKey::from_bytes(&wrapped.to_bytes())?;
    assert!(second.unwrap_key(&wrapped, PERSON).is_err());
    Ok(())
}
