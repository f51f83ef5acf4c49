//! Per-artifact exclusive locks (§4.6.6): an OS file lock (`flock` on Linux) on
//! `<artifact>.lock`, released when the guard drops. The lock file stays on disk, as upstream;
//! garbage collection removes it together with its artifact.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::Error;

/// Guarantees, while held:
/// - no other [`ArtifactLock`] on the same lock file exists, in this process or another one
///   sharing the storage volume (the lock is per open file description, so threads of one process
///   exclude each other too);
/// - the lock is released when the guard drops, and by the kernel if the process dies.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArtifactLock {
    file: File,
    path: PathBuf,
}

impl ArtifactLock {
    /// Blocks until the exclusive lock on `path` is held, creating the file (0600) if needed.
    /// Blocking: call it from a blocking context (`spawn_blocking`) in async code.
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] when the file cannot be opened or locked.
    pub fn acquire(path: &Path) -> Result<Self, Error> {
        let file = open(path)?;
        file.lock().map_err(|source| Error::Lock {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Takes the lock if it is free; `Ok(None)` when another holder has it.
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] when the file cannot be opened or the lock call fails.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>, Error> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self {
                file,
                path: path.to_path_buf(),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(source)) => Err(Error::Lock {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the locked file is still the one named by [`ArtifactLock::path`]: false once
    /// somebody removed (or replaced) the lock file, which a lock that is itself removed when
    /// unused (the shared store's) must check after every acquisition.
    pub(crate) fn is_current(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), std::fs::metadata(&self.path)) {
            (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
            _ => false,
        }
    }
}

impl Drop for ArtifactLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock anyway; unlocking first makes it immediate
        // even if the descriptor were duplicated. Nothing useful can be done with an error here.
        let _ = self.file.unlock();
    }
}

fn open(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| Error::Lock {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_held_lock_excludes_others_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.gz.lock");
        let first = ArtifactLock::acquire(&path).unwrap();
        assert!(ArtifactLock::try_acquire(&path).unwrap().is_none());
        drop(first);
        let again = ArtifactLock::try_acquire(&path).unwrap();
        assert!(again.is_some());
        assert!(path.exists(), "the lock file stays on disk");
    }

    #[test]
    fn acquire_blocks_until_the_holder_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.lock");
        let held = ArtifactLock::acquire(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            let lock = ArtifactLock::acquire(&p).unwrap();
            tx.send(()).unwrap();
            drop(lock);
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(held);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
    }

    #[test]
    fn a_lock_in_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let err = ArtifactLock::acquire(&dir.path().join("no/such/dir.lock")).unwrap_err();
        assert!(matches!(err, Error::Lock { .. }));
    }
}
