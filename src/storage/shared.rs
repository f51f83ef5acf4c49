//! One copy per artifact: content that several objects select (the same layer, taken the same
//! way, filtered by the same ignore rules) is stored once and hard-linked into each object's
//! directory, where Flux keeps a copy per object (its issue #2114). Objects keep Flux's layout
//! and URLs (`ocirepository/<ns>/<name>/<digest>.tar.gz`); only the file behind the name is
//! shared.
//!
//! # Layout
//!
//! `<root>/.shared/<key>/`, one directory per [`SharedKey`] (64 hex digits), holds:
//! - `<algo>:<hex>.tar.gz`: the stored bytes, named by their digest (the `artifact.digest`
//!   of every object that links them);
//! - `entry.tar.gz.lock`: the key's lock, held while the entry is written, linked or swept;
//! - `.entry.tar.gz.<random>.tmp`: an entry being written (the start-up sweep removes those
//!   of a killed run, as beside artifacts).
//!
//! The artifact server never serves it: it only answers `ocirepository/<ns>/<name>/<file>`.
//!
//! # References
//!
//! An object's artifact is a hard link to the entry, so the file system counts the references:
//! an entry whose link count is 1 (only its own name) is used by no object.
//! [`Storage::sweep_shared`] removes such an entry once it has been unused for the retention
//! TTL (its ctime, which every link and unlink sets, is that old). Nothing is ever written in
//! place: every store is a new file renamed over the old name, so no object can change the
//! bytes of another. Where the file system refuses a hard link (another device, no hard links,
//! the link limit), the entry is copied instead: still one download, one copy per object.
//!
//! A stored file that fails its integrity check is removed with every shared entry of the same
//! inode ([`Storage::remove`]), so the next reconcile downloads it again.

use std::fs::{self, DirBuilder, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

use super::archive::{self, Stored};
use super::deadline::Deadline;
use super::digest::Digest;
use super::error::Error;
use super::ignore::IgnoreMatcher;
use super::lock::ArtifactLock;
use super::path::{ARTIFACT_EXT, LOCK_SUFFIX, is_artifact_file_name};
use super::{Storage, gc};

/// The directory of shared entries under the storage root.
pub const SHARED_DIR: &str = ".shared";

/// The name entries are staged under (and their lock is named after).
const ENTRY: &str = "entry.tar.gz";

/// Bumped whenever the bytes stored for the same inputs change (archive format, layout), so
/// that entries of an older store are never linked for new artifacts.
const FORMAT: &[u8] = b"ocisource shared artifact 1";

/// How often an acquisition retries when the lock file it locked was removed meanwhile.
const LOCK_ATTEMPTS: usize = 8;

/// What identifies stored bytes before they exist: a hash over everything that shapes them
/// (the caller's parts, length-prefixed, after the store's format version).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SharedKey([u8; 32]);

impl SharedKey {
    /// The key of `parts` (for an artifact: the layer digest, the operation, the ignore rules,
    /// the digest algorithm and the extraction limits). Different sequences of parts never
    /// share a key.
    pub fn new<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> SharedKey {
        let mut h = Sha256::new();
        for part in std::iter::once(FORMAT).chain(parts) {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        SharedKey(h.finalize().into())
    }

    /// The 32 bytes of the hash.
    #[must_use]
    pub fn bytes(&self) -> [u8; 32] {
        self.0
    }

    fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedKey({})", self.hex())
    }
}

/// A stored shared entry: its file and what was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedEntry {
    /// The entry's file (`<root>/.shared/<key>/<algo>:<hex>.tar.gz`).
    pub file: PathBuf,
    /// Digest and size of its bytes.
    pub stored: Stored,
}

impl Storage {
    fn shared_dir(&self, key: &SharedKey) -> PathBuf {
        self.root.join(SHARED_DIR).join(key.hex())
    }

    /// The entry stored under `key`, if any. Read only: nothing is locked.
    ///
    /// # Errors
    ///
    /// [`Error::ReadDir`] when the key's directory cannot be listed.
    pub fn shared_entry(&self, key: &SharedKey) -> Result<Option<SharedEntry>, Error> {
        find_entry(&self.shared_dir(key))
    }

    /// Archives `dir` (filtered by `matcher`) as the entry of `key`, unless one exists already
    /// (then that one is returned and `dir` is not read).
    ///
    /// # Errors
    ///
    /// [`Error::CreateDir`] / [`Error::Lock`] for the key's directory and lock, and those of
    /// [`Storage::archive`].
    pub fn archive_shared(
        &self,
        key: &SharedKey,
        dir: &Path,
        matcher: &IgnoreMatcher,
        deadline: Option<&Deadline>,
    ) -> Result<SharedEntry, Error> {
        self.store_once(key, |staging| {
            archive::stage_archive(dir, matcher, staging, self.algorithm, deadline)
        })
    }

    /// Streams `reader`'s bytes (copy mode) into the entry of `key`, at most `max_size` bytes
    /// and until `deadline`, unless one exists already (then `reader` is not read).
    ///
    /// # Errors
    ///
    /// [`Error::CreateDir`] / [`Error::Lock`] for the key's directory and lock, and those of
    /// [`archive::stage_copy`].
    pub fn copy_shared(
        &self,
        key: &SharedKey,
        reader: impl Read,
        max_size: Option<u64>,
        deadline: Option<&Deadline>,
    ) -> Result<SharedEntry, Error> {
        self.store_once(key, |staging| {
            archive::stage_copy(reader, staging, self.algorithm, max_size, deadline)
        })
    }

    /// The entry of `key`, found under the key's lock, else staged by `stage` (given the
    /// staging name) and renamed to its digest's name.
    fn store_once(
        &self,
        key: &SharedKey,
        stage: impl FnOnce(&Path) -> Result<archive::Staged, Error>,
    ) -> Result<SharedEntry, Error> {
        let sdir = self.shared_dir(key);
        let _held = lock_key(&sdir)?;
        if let Some(entry) = find_entry(&sdir)? {
            return Ok(entry);
        }
        let staged = stage(&sdir.join(ENTRY))?;
        let file = sdir.join(format!("{}{ARTIFACT_EXT}", staged.stored().digest));
        let stored = staged.commit_as(file.clone())?;
        Ok(SharedEntry { file, stored })
    }

    /// Makes `entry` the object's artifact at `artifact_path`: a hard link (a copy where the
    /// file system refuses one) created beside it and renamed over it, under the key's and the
    /// artifact's locks. The file's modification time becomes now, as if it had been written
    /// for this object (garbage collection orders an object's files by it).
    ///
    /// # Errors
    ///
    /// [`Error::SharedEntryGone`] when the entry was swept meanwhile, [`Error::InvalidPath`] /
    /// [`Error::CreateDir`] / [`Error::Lock`] for the artifact, [`Error::Link`] otherwise.
    pub fn link_shared(&self, entry: &SharedEntry, artifact_path: &str) -> Result<Stored, Error> {
        let sdir = entry.file.parent().ok_or_else(|| Error::SharedEntryGone {
            path: entry.file.clone(),
        })?;
        let _key = lock_key(sdir)?;
        if !fs::symlink_metadata(&entry.file).is_ok_and(|m| m.is_file()) {
            return Err(Error::SharedEntryGone {
                path: entry.file.clone(),
            });
        }
        let dir = self.create_artifact_dir(artifact_path)?;
        let _own = self.lock(artifact_path)?;
        let dest = self.local_path(artifact_path)?;
        let link_err = |path: &Path, source| Error::Link {
            entry: entry.file.clone(),
            path: path.to_path_buf(),
            source,
        };
        let same_file = |a: &Metadata, b: &Metadata| a.dev() == b.dev() && a.ino() == b.ino();
        if let (Ok(current), Ok(shared)) = (fs::symlink_metadata(&dest), fs::metadata(&entry.file))
            && same_file(&current, &shared)
        {
            // Already this entry (a rename between two links of one file would do nothing and
            // leave the temporary name behind).
            let _ = File::open(&dest).and_then(|f| f.set_modified(SystemTime::now()));
            return Ok(entry.stored.clone());
        }
        let file_name = dest.file_name().map(|n| n.to_string_lossy().into_owned());
        let tmp = tempfile::Builder::new()
            .prefix(&format!(
                "{}{}.",
                archive::TMP_PREFIX,
                file_name.unwrap_or_default()
            ))
            .suffix(archive::TMP_SUFFIX)
            .make_in(&dir, |p| link_or_copy(&entry.file, p))
            .map_err(|e| link_err(&dir, e))?;
        tmp.persist(&dest).map_err(|e| link_err(&dest, e.error))?;
        // Only the garbage collection order depends on it; the artifact is in place either way.
        let _ = File::open(&dest).and_then(|f| f.set_modified(SystemTime::now()));
        Ok(entry.stored.clone())
    }

    /// Removes the shared entries no object has used for the retention TTL (link count 1,
    /// ctime older than `now - ttl`), and what a killed run left of entries being written.
    /// Entries whose lock is held are left for the next sweep; errors on single entries are
    /// skipped. Returns the entry files removed.
    #[must_use]
    pub fn sweep_shared(&self, now: SystemTime) -> Vec<PathBuf> {
        let ttl = self.retention.ttl;
        let mut removed = Vec::new();
        let Ok(keys) = fs::read_dir(self.root.join(SHARED_DIR)) else {
            return removed;
        };
        for key in keys.flatten() {
            if !key.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let sdir = key.path();
            let Ok(Some(held)) = try_lock_key(&sdir) else {
                continue;
            };
            let mut kept = 0usize;
            for file in fs::read_dir(&sdir).into_iter().flatten().flatten() {
                let name = file.file_name();
                let name = name.to_string_lossy();
                let Ok(meta) = file.metadata() else {
                    continue;
                };
                if name.ends_with(LOCK_SUFFIX) {
                    continue;
                }
                let unused = meta.is_file() && meta.nlink() == 1 && unused_for(&meta, now) > ttl;
                // Under the key's lock nothing is being written: a staged file is a leftover.
                let leftover = name.starts_with(archive::TMP_PREFIX);
                if (unused || leftover) && fs::remove_file(file.path()).is_ok() {
                    if unused {
                        removed.push(file.path());
                    }
                } else {
                    kept += 1;
                }
            }
            if kept == 0 {
                // The lock file goes first: whoever opened it meanwhile sees it was replaced
                // (`lock_key`) and starts again in a new directory.
                let _ = fs::remove_file(held.path());
                let _ = fs::remove_dir(&sdir);
            }
        }
        removed
    }

    /// Removes every shared entry that is the same file (inode) as `meta`'s: after a failed
    /// integrity check, so that the corrupt bytes are never linked again.
    pub(super) fn evict_shared(&self, meta: &Metadata) {
        if meta.nlink() <= 1 {
            return;
        }
        let Ok(keys) = fs::read_dir(self.root.join(SHARED_DIR)) else {
            return;
        };
        for key in keys.flatten() {
            let sdir = key.path();
            for file in fs::read_dir(&sdir).into_iter().flatten().flatten() {
                let same = file
                    .metadata()
                    .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
                if same && let Ok(_held) = lock_key(&sdir) {
                    let _ = gc::remove_file_if_exists(&file.path());
                }
            }
        }
    }
}

/// How long ago the inode last changed (a link, an unlink, a new mtime); zero for a time in
/// the future.
fn unused_for(meta: &Metadata, now: SystemTime) -> Duration {
    let changed = u64::try_from(meta.ctime()).map_or(SystemTime::UNIX_EPOCH, |secs| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    });
    now.duration_since(changed).unwrap_or_default()
}

/// The entry in `sdir`: its one file with an artifact name.
fn find_entry(sdir: &Path) -> Result<Option<SharedEntry>, Error> {
    let entries = match fs::read_dir(sdir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::ReadDir {
                path: sdir.to_path_buf(),
                source,
            });
        }
    };
    for file in entries.flatten() {
        let name = file.file_name();
        let Some(name) = name.to_str().filter(|n| is_artifact_file_name(n)) else {
            continue;
        };
        let Some(digest) = name
            .strip_suffix(ARTIFACT_EXT)
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            continue;
        };
        // `DirEntry::metadata` does not follow symlinks: only a regular file is an entry.
        let Ok(meta) = file.metadata() else {
            continue;
        };
        if meta.is_file() {
            return Ok(Some(SharedEntry {
                file: file.path(),
                stored: Stored {
                    digest,
                    size: meta.len(),
                },
            }));
        }
    }
    Ok(None)
}

/// Takes the key's lock, creating its directory; retried when the sweep removed the lock file
/// between its opening and its locking.
fn lock_key(sdir: &Path) -> Result<ArtifactLock, Error> {
    let path = sdir.join(format!("{ENTRY}{LOCK_SUFFIX}"));
    let mut attempt = 0;
    loop {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(sdir)
            .map_err(|source| Error::CreateDir {
                path: sdir.to_path_buf(),
                source,
            })?;
        let lock = ArtifactLock::acquire(&path)?;
        if lock.is_current() {
            return Ok(lock);
        }
        attempt += 1;
        if attempt >= LOCK_ATTEMPTS {
            return Err(Error::Lock {
                path,
                source: io::Error::other("the lock file was removed while being locked"),
            });
        }
    }
}

/// Takes the key's lock if it is free and still current; never creates anything.
fn try_lock_key(sdir: &Path) -> Result<Option<ArtifactLock>, Error> {
    let path = sdir.join(format!("{ENTRY}{LOCK_SUFFIX}"));
    if !path.exists() {
        // An entry directory without a lock file: made by hand or half removed; take it.
        return ArtifactLock::try_acquire(&path);
    }
    Ok(ArtifactLock::try_acquire(&path)?.filter(ArtifactLock::is_current))
}

/// A hard link to `entry` at `path`, or a copy where the file system refuses the link.
fn link_or_copy(entry: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(entry, path) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::CrossesDevices
                    | io::ErrorKind::PermissionDenied
                    | io::ErrorKind::Unsupported
                    | io::ErrorKind::TooManyLinks
            ) =>
        {
            fs::copy(entry, path).map(|_| ())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::ignore;
    use crate::storage::path::artifact_path;
    use std::os::unix::fs::PermissionsExt;

    const REV: &str = "v1@sha256:3b6cdcb3f6d9c2b6a8e1a0c8d1e5f7a9b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0";
    const HOUR: Duration = Duration::from_secs(3600);

    fn store() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::new(dir.path(), "h").unwrap();
        (dir, s)
    }

    fn key(name: &str) -> SharedKey {
        SharedKey::new([name.as_bytes()])
    }

    fn source(content: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("app.yaml"), content).unwrap();
        d
    }

    fn archive(s: &Storage, k: &SharedKey, dir: &Path) -> SharedEntry {
        let m = ignore::matcher_for(dir, None, None).unwrap();
        s.archive_shared(k, dir, &m, None).unwrap()
    }

    fn names_in(dir: &Path) -> Vec<std::ffi::OsString> {
        fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect()
    }

    fn entry_dirs(root: &Path) -> usize {
        fs::read_dir(root.join(SHARED_DIR)).map_or(0, Iterator::count)
    }

    #[test]
    fn keys_differ_with_any_part_and_its_boundaries() {
        assert_eq!(key("a"), key("a"));
        assert_ne!(key("a"), key("b"));
        assert_ne!(
            SharedKey::new([&b"ab"[..], b"c"]),
            SharedKey::new([&b"a"[..], b"bc"])
        );
        assert_ne!(SharedKey::new([&b""[..]]), SharedKey::new([]));
        assert_eq!(format!("{:?}", key("a")).len(), "SharedKey()".len() + 64);
    }

    #[test]
    fn objects_of_one_key_share_one_file_under_their_own_names() {
        let (_root, s) = store();
        let k = key("layer");
        let src = source("kind: ConfigMap\n");
        let entry = archive(&s, &k, src.path());
        assert_eq!(s.shared_entry(&k).unwrap(), Some(entry.clone()));
        assert_eq!(
            entry.file.file_name().unwrap().to_str().unwrap(),
            format!("{}.tar.gz", entry.stored.digest)
        );
        // A second archive of the key reuses the entry without reading its directory.
        let again = archive(&s, &k, src.path());
        let missing = src.path().join("missing");
        let m = ignore::IgnoreMatcher::default();
        assert_eq!(s.archive_shared(&k, &missing, &m, None).unwrap(), again);

        let a = artifact_path("apps", "a", REV).unwrap();
        let b = artifact_path("team", "b", REV).unwrap();
        let stored_a = s.link_shared(&entry, &a).unwrap();
        let stored_b = s.link_shared(&entry, &b).unwrap();
        assert_eq!(stored_a, entry.stored);
        assert_eq!(stored_b, entry.stored);
        for p in [&a, &b] {
            s.verify(p, &entry.stored.digest.to_string()).unwrap();
            let meta = fs::metadata(s.local_path(p).unwrap()).unwrap();
            assert_eq!(meta.ino(), fs::metadata(&entry.file).unwrap().ino());
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(fs::metadata(&entry.file).unwrap().nlink(), 3);
        // Linking again over the object's own artifact keeps one name per object.
        s.link_shared(&entry, &a).unwrap();
        assert_eq!(fs::metadata(&entry.file).unwrap().nlink(), 3);
        let names = names_in(s.local_path(&a).unwrap().parent().unwrap());
        assert_eq!(names.len(), 2, "the artifact and its lock: {names:?}");
    }

    #[test]
    fn a_link_is_dated_now_for_the_objects_garbage_collection() {
        let (_root, s) = store();
        let entry = archive(&s, &key("k"), source("x").path());
        let old = SystemTime::now() - 10 * HOUR;
        File::open(&entry.file).unwrap().set_modified(old).unwrap();
        let a = artifact_path("ns", "a", REV).unwrap();
        s.link_shared(&entry, &a).unwrap();
        let modified = fs::metadata(s.local_path(&a).unwrap())
            .unwrap()
            .modified()
            .unwrap();
        assert!(modified > old + 9 * HOUR);
    }

    #[test]
    fn copies_are_shared_and_bounded() {
        let (root, s) = store();
        let k = key("copy");
        let entry = s
            .copy_shared(&k, &b"chart bytes"[..], Some(100), None)
            .unwrap();
        assert_eq!(entry.stored.size, 11);
        let again = s
            .copy_shared(&k, &b"never read"[..], Some(100), None)
            .unwrap();
        assert_eq!(again, entry);

        let big = key("big");
        let err = s
            .copy_shared(&big, &[0u8; 200][..], Some(100), None)
            .unwrap_err();
        assert!(matches!(err, Error::LayerTooLarge { .. }), "{err}");
        assert_eq!(s.shared_entry(&big).unwrap(), None);
        let left = names_in(&root.path().join(SHARED_DIR).join(big.hex()));
        assert_eq!(left.len(), 1, "only the lock file: {left:?}");
    }

    #[test]
    fn the_sweep_removes_entries_unused_for_the_ttl_and_leftovers() {
        let (root, s) = store();
        let used = archive(&s, &key("used"), source("a").path());
        let unused = archive(&s, &key("unused"), source("b").path());
        let a = artifact_path("ns", "a", REV).unwrap();
        s.link_shared(&used, &a).unwrap();
        let leftover = used.file.with_file_name(".entry.tar.gz.x1y2.tmp");
        fs::write(&leftover, b"partial").unwrap();

        // Within the TTL nothing but the leftover goes.
        assert!(s.sweep_shared(SystemTime::now()).is_empty());
        assert!(!leftover.exists());
        assert!(unused.file.exists() && used.file.exists());

        let later = SystemTime::now() + 2 * s.retention().ttl;
        assert_eq!(s.sweep_shared(later), vec![unused.file.clone()]);
        assert_eq!(
            entry_dirs(root.path()),
            1,
            "the unused key's directory went too"
        );
        assert!(matches!(
            s.link_shared(&unused, &a),
            Err(Error::SharedEntryGone { .. })
        ));

        // Once the object lets go (deletion), the entry is unused too.
        s.remove_all("ns", "a").unwrap();
        assert_eq!(s.sweep_shared(later), vec![used.file.clone()]);
        assert_eq!(entry_dirs(root.path()), 0);
        // A key swept away is made again from scratch.
        let remade = archive(&s, &key("used"), source("a").path());
        assert_eq!(remade.stored, used.stored);
    }

    #[test]
    fn an_entry_being_linked_or_written_is_not_swept() {
        let (_root, s) = store();
        let k = key("busy");
        let entry = archive(&s, &k, source("a").path());
        let held = lock_key(&s.shared_dir(&k)).unwrap();
        let later = SystemTime::now() + 2 * s.retention().ttl;
        assert!(s.sweep_shared(later).is_empty());
        drop(held);
        assert_eq!(s.sweep_shared(later), vec![entry.file]);
    }

    #[test]
    fn a_corrupt_artifact_takes_its_shared_entry_with_it() {
        let (_root, s) = store();
        let k = key("k");
        let entry = archive(&s, &k, source("a").path());
        let a = artifact_path("ns", "a", REV).unwrap();
        let b = artifact_path("ns", "b", REV).unwrap();
        s.link_shared(&entry, &a).unwrap();
        s.link_shared(&entry, &b).unwrap();
        s.remove(&a).unwrap();
        assert!(!s.exists(&a));
        assert_eq!(s.shared_entry(&k).unwrap(), None);
        // The other object's name stays until its own check removes it.
        assert!(s.exists(&b));
        // A file that is no link evicts nothing.
        let other = archive(&s, &key("other"), source("b").path());
        s.create_artifact_dir(&a).unwrap();
        s.copy(&a, &b"own"[..]).unwrap();
        s.remove(&a).unwrap();
        assert_eq!(s.shared_entry(&key("other")).unwrap(), Some(other));
    }

    #[test]
    fn a_lock_file_removed_while_waited_for_is_taken_anew() {
        let (_root, s) = store();
        let sdir = s.shared_dir(&key("k"));
        let first = lock_key(&sdir).unwrap();
        let waiter = {
            let sdir = sdir.clone();
            std::thread::spawn(move || {
                let lock = lock_key(&sdir).unwrap();
                assert!(lock.is_current());
                assert!(sdir.is_dir());
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        // What the sweep does to an empty key: the lock file, then the directory.
        fs::remove_file(first.path()).unwrap();
        fs::remove_dir(&sdir).unwrap();
        drop(first);
        waiter.join().unwrap();
    }

    #[test]
    fn link_or_copy_falls_back_to_a_copy_across_devices() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::write(&src, b"bytes").unwrap();
        let dst = dir.path().join("dst");
        link_or_copy(&src, &dst).unwrap();
        assert_eq!(fs::read(&dst).unwrap(), b"bytes");
        // /dev/shm is another file system on Linux: the link fails with EXDEV, the copy works.
        if let Ok(shm) = tempfile::tempdir_in("/dev/shm") {
            let across = shm.path().join("dst");
            link_or_copy(&src, &across).unwrap();
            assert_eq!(fs::read(&across).unwrap(), b"bytes");
            assert_eq!(fs::metadata(&across).unwrap().nlink(), 1);
        }
    }
}
