//! The master keyring of a file, picked up again when the file changes, so that a
//! running service follows `haven keys rotate` without a restart.
//!
//! Rotation writes the keyring file (atomically, by rename) and then re-wraps the
//! stored data keys under the new version. A service that kept the keyring it read
//! at start-up would then meet data keys under a version it has never seen and fail
//! every read of them until restarted. [`ReloadingKeyring`] instead:
//!
//! - on a wrapped key naming a version it does not hold, re-reads the file at once
//!   when the file changed since it was read, and at most once per
//!   [`RELOAD_INTERVAL`] otherwise, then tries again;
//! - before wrapping a new key, looks at the file at most once per
//!   [`RELOAD_INTERVAL`], so new writes move to the newest active version within
//!   about a second of a rotation.
//!
//! A file that cannot be read or parsed any more keeps the keyring already loaded
//! (logged), so a botched edit of the file does not stop a running service.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use crate::envelope::{DataKey, KeyWrapper, WrappedKey};
use crate::error::{CryptoError, Result};
use crate::keyring::MasterKeyring;

/// How often, at most, the file is looked at when nothing says it changed.
pub const RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// A [`MasterKeyring`] read from a file and re-read when the file changes.
pub struct ReloadingKeyring {
    path: PathBuf,
    loaded: RwLock<Loaded>,
}

struct Loaded {
    keyring: Arc<MasterKeyring>,
    /// What the file looked like when `keyring` was read from it.
    identity: Option<FileIdentity>,
    /// When the file was last looked at.
    checked: Instant,
    /// When the file was last read.
    read: Instant,
}

/// Enough of a file's metadata to notice that it was replaced or rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileIdentity {
    length: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl FileIdentity {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            length: metadata.len(),
            modified: metadata.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt as _;
                (metadata.dev(), metadata.ino())
            },
        })
    }
}

/// Why the file is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// Routine: at most once per [`RELOAD_INTERVAL`], re-read only if it changed.
    Routine,
    /// A wrapped key names a version not held: re-read if it changed, or if it was
    /// last read more than [`RELOAD_INTERVAL`] ago.
    UnknownVersion,
}

impl ReloadingKeyring {
    /// Reads the keyring file, or creates it with a fresh version 1 when it does not
    /// exist (development and first start); see [`MasterKeyring::load_or_create`].
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let identity = FileIdentity::of(path);
        let keyring = MasterKeyring::load_or_create(path)?;
        // Read after creating, so a file created just now counts as seen.
        let identity = identity.or_else(|| FileIdentity::of(path));
        let now = Instant::now();
        Ok(Self {
            path: path.to_path_buf(),
            loaded: RwLock::new(Loaded {
                keyring: Arc::new(keyring),
                identity,
                checked: now,
                read: now,
            }),
        })
    }

    /// The versions held right now, ascending.
    pub fn versions(&self) -> Vec<u32> {
        self.current(Trigger::Routine).versions()
    }

    /// The keyring to use, after looking at the file if `trigger` calls for it.
    fn current(&self, trigger: Trigger) -> Arc<MasterKeyring> {
        {
            let loaded = self.read_lock();
            if !loaded.due(trigger) {
                return Arc::clone(&loaded.keyring);
            }
        }
        let mut loaded = self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another caller may have looked while this one waited for the lock.
        if loaded.due(trigger) {
            self.refresh(&mut loaded, trigger);
        }
        Arc::clone(&loaded.keyring)
    }

    fn refresh(&self, loaded: &mut Loaded, trigger: Trigger) {
        let now = Instant::now();
        loaded.checked = now;
        let identity = FileIdentity::of(&self.path);
        let changed = identity.is_some() && identity != loaded.identity;
        let stale = now.duration_since(loaded.read) >= RELOAD_INTERVAL;
        if !(changed || trigger == Trigger::UnknownVersion && stale) {
            return;
        }
        loaded.read = now;
        match MasterKeyring::load(&self.path) {
            Ok(keyring) => {
                let before = loaded.keyring.active_version();
                if keyring.versions() != loaded.keyring.versions()
                    || keyring.active_version() != before
                {
                    tracing::info!(
                        path = %self.path.display(),
                        active_version = keyring.active_version(),
                        previous_active_version = before,
                        versions = ?keyring.versions(),
                        "master keyring reloaded"
                    );
                }
                loaded.keyring = Arc::new(keyring);
                loaded.identity = identity;
            }
            Err(error) => tracing::warn!(
                path = %self.path.display(),
                %error,
                "master keyring file cannot be read; keeping the keys already loaded"
            ),
        }
    }

    fn read_lock(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Loaded {
    fn due(&self, trigger: Trigger) -> bool {
        match trigger {
            Trigger::Routine => self.checked.elapsed() >= RELOAD_INTERVAL,
            // Always worth a look: the file is only read again when it changed or
            // was last read a while ago (see `refresh`).
            Trigger::UnknownVersion => true,
        }
    }
}

impl KeyWrapper for ReloadingKeyring {
    fn wrap_key(&self, data_key: &DataKey, context: &[u8]) -> Result<WrappedKey> {
        self.current(Trigger::Routine).wrap_key(data_key, context)
    }

    fn unwrap_key(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<DataKey> {
        match self.current(Trigger::Routine).unwrap_key(wrapped, context) {
            Err(CryptoError::UnknownMasterKeyVersion { .. }) => self
                .current(Trigger::UnknownVersion)
                .unwrap_key(wrapped, context),
            other => other,
        }
    }

    fn active_version(&self) -> u32 {
        self.current(Trigger::Routine).active_version()
    }
}

impl fmt::Debug for ReloadingKeyring {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ReloadingKeyring")
            .field("path", &self.path)
            .field("keyring", &self.read_lock().keyring)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn a_rotation_by_another_process_is_picked_up_without_a_restart() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("master-keys.json");
        let running = ReloadingKeyring::load_or_create(&path)?;
        let (_, before) = running.generate_data_key(b"person-1")?;
        assert_eq!(before.master_version(), 1);

        // The operator's `haven keys rotate`: a new version, saved, and the stored
        // keys re-wrapped under it.
        let mut operator = MasterKeyring::load(&path)?;
        let version = operator.rotate()?;
        operator.save(&path)?;
        let rewrapped = operator.rewrap_key(&before, b"person-1")?;
        assert_eq!(rewrapped.master_version(), version);

        // The running service reads the re-wrapped key at once.
        let opened = running.unwrap_key(&rewrapped, b"person-1")?;
        let expected = operator.unwrap_key(&rewrapped, b"person-1")?;
        assert_eq!(opened.expose_secret(), expected.expose_secret());
        // And wraps new keys under the new version.
        assert_eq!(running.active_version(), version);
        let (_, after) = running.generate_data_key(b"person-2")?;
        assert_eq!(after.master_version(), version);
        Ok(())
    }

    #[test]
    fn a_version_that_never_existed_still_fails_and_rereads_at_most_once_a_second() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("master-keys.json");
        let running = ReloadingKeyring::load_or_create(&path)?;
        let (_, wrapped) = running.generate_data_key(b"person-1")?;
        let unknown = WrappedKey::new(9, wrapped.payload().to_vec());
        let unknown_fails = || {
            matches!(
                running.unwrap_key(&unknown, b"person-1"),
                Err(CryptoError::UnknownMasterKeyVersion { version: 9 })
            )
        };
        assert!(unknown_fails());
        let first_read = running.read_lock().read;
        for _ in 0..3 {
            assert!(unknown_fails());
        }
        // The file did not change and was read less than a second ago.
        assert_eq!(running.read_lock().read, first_read);
        std::thread::sleep(RELOAD_INTERVAL);
        assert!(unknown_fails());
        assert!(
            running.read_lock().read > first_read,
            "read again after a second"
        );
        Ok(())
    }

    #[test]
    fn a_damaged_file_keeps_the_keys_already_loaded() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("master-keys.json");
        let running = ReloadingKeyring::load_or_create(&path)?;
        let (_, wrapped) = running.generate_data_key(b"person-1")?;
        std::fs::write(&path, "not json")?;
        let unknown = WrappedKey::new(2, wrapped.payload().to_vec());
        assert!(running.unwrap_key(&unknown, b"person-1").is_err());
        assert!(running.unwrap_key(&wrapped, b"person-1").is_ok());
        assert_eq!(running.active_version(), 1);
        Ok(())
    }
}
