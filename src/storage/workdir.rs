//! The reconcile's working directory (where a layer is extracted) and the start-up sweep of the
//! ones a killed process left behind.
//!
//! # Guarantees
//!
//! A working directory is `<temp dir>/ocirepository-<namespace>-<name>-<random>`, created 0700,
//! and holds an exclusive `flock` on itself for as long as its [`WorkDir`] lives; it is removed
//! when the [`WorkDir`] drops. The lock dies with the process, so [`sweep`] tells a crashed
//! reconcile's directory (lock free: removed) from a live one of another process sharing the
//! temp dir (lock held: left alone), for example a standalone `ocisource reconcile` or another
//! controller on the same machine. Only directories with the prefix are looked at, symlinks are
//! never followed. A sweep racing the few instructions between a directory's creation and its
//! lock could remove it; the sweep runs once, at start-up, before any reconcile.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Prefix of every working directory.
pub const PREFIX: &str = "ocirepository-";

/// A locked working directory, removed on drop.
#[derive(Debug)]
pub struct WorkDir {
    // Field order: the lock is released after the directory is gone.
    dir: tempfile::TempDir,
    _lock: File,
}

impl WorkDir {
    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Creates and locks a working directory for `namespace/name` in the system temp dir.
///
/// # Errors
///
/// The OS error of creating or locking it.
pub fn create(namespace: &str, name: &str) -> io::Result<WorkDir> {
    create_in(&std::env::temp_dir(), namespace, name)
}

/// As [`create`], in `parent`.
///
/// # Errors
///
/// The OS error of creating or locking it.
pub fn create_in(parent: &Path, namespace: &str, name: &str) -> io::Result<WorkDir> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{namespace}-{name}-"))
        .tempdir_in(parent)?;
    let lock = File::open(dir.path())?;
    lock.try_lock().map_err(io::Error::from)?;
    Ok(WorkDir { dir, _lock: lock })
}

/// Removes the working directories in `parent` that no live process holds (see the module
/// documentation) and returns them. Errors on single entries are skipped: a sweep never stops
/// a start-up.
#[must_use]
pub fn sweep(parent: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(PREFIX.as_bytes())
        {
            continue;
        }
        // DirEntry::file_type does not follow symlinks.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        let Ok(dir) = File::open(&path) else {
            continue;
        };
        if dir.try_lock().is_ok() && fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unlocked_working_directories_are_swept() {
        let parent = tempfile::tempdir().unwrap();
        let live = create_in(parent.path(), "apps", "live").unwrap();
        fs::write(live.path().join("layer.yaml"), b"x").unwrap();
        // What a SIGKILLed reconcile leaves: the directory, no lock.
        let dead = parent.path().join("ocirepository-apps-dead-abc123");
        fs::create_dir_all(dead.join("sub")).unwrap();
        fs::write(dead.join("sub/file"), b"x").unwrap();
        // Not ours: another prefix, a symlink with our prefix, a file with our prefix.
        let other = parent.path().join("other-dir");
        fs::create_dir(&other).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), parent.path().join("ocirepository-link"))
            .unwrap();
        fs::write(parent.path().join("ocirepository-file"), b"x").unwrap();

        let removed = sweep(parent.path());
        assert_eq!(removed, vec![dead.clone()]);
        assert!(!dead.exists());
        assert!(live.path().join("layer.yaml").exists(), "live work is kept");
        assert!(other.exists() && outside.path().exists());
        assert!(parent.path().join("ocirepository-file").exists());
        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists(), "removed on drop");
    }
}
