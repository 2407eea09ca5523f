//! Writing and reading small secret files: mode 0600, never half-written.
//!
//! Content is written to a temporary file in the same directory, synced, then
//! either linked into place only if the target is absent (first creation: when
//! several processes start together exactly one wins and the others read the
//! winner's file) or renamed over the target (deliberate replacement). Readers
//! therefore only ever see a complete file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CryptoError, Result};
use crate::secret::{SecretBytes, random_array, wipe, wipe_string};

/// Mode of every key file: owner read/write only.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;
/// Mode of a key directory this crate creates: owner only.
#[cfg(unix)]
const DIRECTORY_MODE: u32 = 0o700;

/// Reads a key file; `None` if it does not exist. The caller wipes the bytes.
pub(crate) fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error(path, error)),
    }
}

/// Creates `path` with `contents` unless it already exists. Returns whether this
/// call created it; `false` means another writer got there first and its file
/// must be used instead.
pub(crate) fn create_if_absent(path: &Path, contents: &[u8]) -> Result<bool> {
    let directory = parent_directory(path);
    ensure_directory(&directory)?;
    let temporary = write_temporary(&directory, path, contents)?;
    let linked = fs::hard_link(&temporary, path);
    let removed = fs::remove_file(&temporary);
    let created = match linked {
        Ok(()) => true,
        Err(error) if error.kind() == ErrorKind::AlreadyExists => false,
        Err(error) => return Err(io_error(path, error)),
    };
    removed.map_err(|error| io_error(&temporary, error))?;
    if created {
        sync_directory(&directory)?;
    }
    Ok(created)
}

/// Replaces `path` (or creates it) with `contents` in one atomic rename.
pub(crate) fn replace(path: &Path, contents: &[u8]) -> Result<()> {
    let directory = parent_directory(path);
    ensure_directory(&directory)?;
    let temporary = write_temporary(&directory, path, contents)?;
    if let Err(error) = fs::rename(&temporary, path) {
        // The rename failed, so the temporary copy of the key is still there.
        let _ = fs::remove_file(&temporary);
        return Err(io_error(path, error));
    }
    sync_directory(&directory)
}

fn parent_directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn ensure_directory(directory: &Path) -> Result<()> {
    if directory.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIRECTORY_MODE);
    }
    builder
        .create(directory)
        .map_err(|error| io_error(directory, error))
}

/// Writes `contents` to a fresh, uniquely named 0600 file next to `target`.
fn write_temporary(directory: &Path, target: &Path, contents: &[u8]) -> Result<PathBuf> {
    let file_name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| String::from("key"));
    let suffix: [u8; 8] = random_array()?;
    let temporary = directory.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        hex::encode(suffix)
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        restrict_permissions(&file)?;
        file.write_all(contents)?;
        file.sync_all()
    });
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary);
        return Err(io_error(&temporary, error));
    }
    Ok(temporary)
}

/// Sets exactly 0600 whatever the umask did to the creation mode.
fn restrict_permissions(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Makes the new directory entry durable, so a crash cannot lose a key that was
/// already used to encrypt data.
fn sync_directory(directory: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(directory)
            .and_then(|handle| handle.sync_all())
            .map_err(|error| io_error(directory, error))?;
    }
    #[cfg(not(unix))]
    let _ = directory;
    Ok(())
}

fn io_error(path: &Path, source: io::Error) -> CryptoError {
    CryptoError::KeyFileIo {
        path: path.to_path_buf(),
        source,
    }
}

/// Length of a key kept as `{"key": "<64 hex digits>"}` (the blind-index and the
/// audit head keys).
pub(crate) const HEX_KEY_LEN: usize = 32;

/// The JSON shape of a hex key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HexKeyFile {
    key: String,
}

/// Reads a hex key file. A missing file is an error: a key made up now would not
/// match what was computed under the old one.
pub(crate) fn load_hex_key(path: &Path) -> Result<SecretBytes<HEX_KEY_LEN>> {
    match read(path)? {
        Some(contents) => parse_hex_key(path, contents),
        None => Err(CryptoError::KeyFileIo {
            path: path.to_path_buf(),
            source: ErrorKind::NotFound.into(),
        }),
    }
}

/// Reads a hex key file, or creates it (mode 0600) with a fresh key on first
/// start. Processes starting together all end up with the same key.
pub(crate) fn load_or_create_hex_key(
    path: &Path,
    what: &'static str,
) -> Result<SecretBytes<HEX_KEY_LEN>> {
    if let Some(contents) = read(path)? {
        return parse_hex_key(path, contents);
    }
    let key = SecretBytes::random()?;
    let mut contents = hex_key_contents(&key, what)?;
    let created = create_if_absent(path, &contents);
    wipe(&mut contents);
    if created? {
        Ok(key)
    } else {
        load_hex_key(path)
    }
}

/// Writes a hex key file (mode 0600) in one atomic rename.
pub(crate) fn save_hex_key(
    path: &Path,
    key: &SecretBytes<HEX_KEY_LEN>,
    what: &'static str,
) -> Result<()> {
    let mut contents = hex_key_contents(key, what)?;
    let saved = replace(path, &contents);
    wipe(&mut contents);
    saved
}

fn parse_hex_key(path: &Path, mut contents: Vec<u8>) -> Result<SecretBytes<HEX_KEY_LEN>> {
    let parsed = serde_json::from_slice::<HexKeyFile>(&contents);
    wipe(&mut contents);
    let invalid = |reason| CryptoError::KeyFileInvalid {
        path: path.to_path_buf(),
        reason,
    };
    // The parser's own message could quote the file, so it is not kept.
    let file = parsed.map_err(|_| invalid(r#"expected {"key": "<hex>"}"#))?;
    let mut bytes = hex::decode(file.key.trim()).unwrap_or_default();
    wipe_string(file.key);
    let key = SecretBytes::from_slice(&bytes);
    wipe(&mut bytes);
    key.ok_or_else(|| invalid("the key is not 64 hexadecimal digits"))
}

fn hex_key_contents(key: &SecretBytes<HEX_KEY_LEN>, what: &'static str) -> Result<Vec<u8>> {
    let file = HexKeyFile {
        key: hex::encode(key.expose()),
    };
    let serialised = serde_json::to_vec(&file);
    wipe_string(file.key);
    let mut contents = serialised.map_err(|_| CryptoError::Malformed { what })?;
    contents.push(b'\n');
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn first_creation_wins_and_later_ones_do_not_overwrite() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("nested").join("key.json");
        assert!(create_if_absent(&path, b"first")?);
        assert!(!create_if_absent(&path, b"second")?);
        assert_eq!(read(&path)?, Some(b"first".to_vec()));
        Ok(())
    }

    #[test]
    fn replace_overwrites_and_leaves_no_temporary_files() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("key.json");
        replace(&path, b"one")?;
        replace(&path, b"two")?;
        assert_eq!(read(&path)?, Some(b"two".to_vec()));
        let entries = fs::read_dir(directory.path())?.count();
        assert_eq!(entries, 1, "only the key file remains");
        Ok(())
    }

    #[test]
    fn missing_file_reads_as_none() -> TestResult {
        let directory = tempfile::tempdir()?;
        assert_eq!(read(&directory.path().join("absent"))?, None);
        Ok(())
    }
}
