//! The artifact store: layout and URLs, secure joins, bounded streaming extraction,
//! deterministic archiving with ignore rules, atomic digesting writes, integrity checks, locks,
//! the `latest.tar.gz` symlink and garbage collection. No network.
//!
//! [`Storage`] ties the pieces to a root directory and an advertised address; the sub-modules
//! can be used on their own (`extract` needs no storage at all).
//!
//! All operations are blocking file-system calls; async callers run them on a blocking thread.

pub mod archive;
pub mod deadline;
pub mod digest;
pub mod error;
pub mod extract;
pub mod gc;
pub mod ignore;
pub mod lock;
pub mod path;
pub mod shared;
pub mod workdir;

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use archive::{Staged, Stored};
pub use deadline::Deadline;
pub use digest::{Digest, DigestAlgorithm};
pub use error::{Error, IntegrityError};
pub use extract::{ExtractError, ExtractLimits, Extracted, extract};
pub use gc::Retention;
pub use ignore::IgnoreMatcher;
pub use lock::ArtifactLock;
pub use shared::{SharedEntry, SharedKey};

const VERIFY_BUF: usize = 128 * 1024;

/// The artifact store rooted at `--storage-path`.
#[derive(Clone, Debug)]
pub struct Storage {
    root: PathBuf,
    advertised_addr: String,
    algorithm: DigestAlgorithm,
    retention: Retention,
}

impl Storage {
    /// Opens the store at `root` (which must exist and be a directory; it is made absolute
    /// without resolving symlinks) advertising `advertised_addr` (`host[:port]` or an
    /// `http(s)://` prefix). Digest algorithm and retention start at their defaults.
    ///
    /// # Errors
    ///
    /// [`Error::Stat`] when `root` cannot be inspected, [`Error::NotADirectory`] when it is not a
    /// directory.
    pub fn new(
        root: impl Into<PathBuf>,
        advertised_addr: impl Into<String>,
    ) -> Result<Self, Error> {
        let root = root.into();
        let root = std::path::absolute(&root).map_err(|source| Error::Stat {
            path: root.clone(),
            source,
        })?;
        let meta = fs::metadata(&root).map_err(|source| Error::Stat {
            path: root.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(Error::NotADirectory { path: root });
        }
        Ok(Self {
            root,
            advertised_addr: advertised_addr.into(),
            algorithm: DigestAlgorithm::default(),
            retention: Retention::default(),
        })
    }

    /// Uses `algorithm` for new artifact digests (`--artifact-digest-algo`).
    #[must_use]
    pub fn with_digest_algorithm(mut self, algorithm: DigestAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Uses `retention` for garbage collection (`--artifact-retention-ttl/-records`).
    #[must_use]
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The absolute storage root.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The advertised address.
    #[must_use]
    pub fn advertised_addr(&self) -> &str {
        &self.advertised_addr
    }

    /// The digest algorithm for new artifacts.
    #[must_use]
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The retention policy.
    #[must_use]
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// `ocirepository/<ns>/<name>/<algo>:<hex>.tar.gz` for a revision (see [`path::artifact_path`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for an unclean namespace or name or a revision without a digest.
    pub fn artifact_path(
        &self,
        namespace: &str,
        name: &str,
        revision: &str,
    ) -> Result<String, Error> {
        path::artifact_path(namespace, name, revision)
    }

    /// `artifact.url` for a storage-relative path (see [`path::artifact_url`]).
    #[must_use]
    pub fn artifact_url(&self, artifact_path: &str) -> String {
        path::artifact_url(&self.advertised_addr, artifact_path)
    }

    /// `status.url` for the directory of a storage-relative artifact path (see
    /// [`path::latest_url`]).
    #[must_use]
    pub fn latest_url(&self, artifact_path: &str) -> String {
        path::latest_url(&self.advertised_addr, artifact_path)
    }

    /// The local path of a storage-relative path, guaranteed to be inside the root.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] (see [`path::secure_join`]).
    pub fn local_path(&self, artifact_path: &str) -> Result<PathBuf, Error> {
        path::secure_join(&self.root, artifact_path)
    }

    /// Whether the artifact exists as a regular file (a symlink does not count).
    #[must_use]
    pub fn exists(&self, artifact_path: &str) -> bool {
        self.local_path(artifact_path)
            .and_then(|p| {
                fs::symlink_metadata(&p).map_err(|source| Error::Stat { path: p, source })
            })
            .is_ok_and(|m| m.is_file())
    }

    /// Verifies the stored file against `digest` (any supported algorithm), streaming it.
    /// Checks run in Flux's order: present and regular ([`IntegrityError::is_missing`]), then
    /// digest non-empty, parsable and matching.
    ///
    /// # Errors
    ///
    /// The [`IntegrityError`] that describes the first failed check.
    pub fn verify(&self, artifact_path: &str, digest: &str) -> Result<(), IntegrityError> {
        let local = self
            .local_path(artifact_path)
            .map_err(|_| IntegrityError::InvalidPath {
                path: artifact_path.to_owned(),
            })?;
        match fs::symlink_metadata(&local) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(IntegrityError::NotRegularFile { path: local }),
            Err(source) => {
                return Err(IntegrityError::Missing {
                    path: local,
                    source,
                });
            }
        }
        if digest.is_empty() {
            return Err(IntegrityError::EmptyDigest);
        }
        let expected: Digest = digest
            .parse()
            .map_err(|source| IntegrityError::InvalidDigest {
                digest: digest.to_owned(),
                source,
            })?;
        let read_err = |source| IntegrityError::Read {
            path: local.clone(),
            source,
        };
        let mut file = File::open(&local).map_err(read_err)?;
        let mut hasher = expected.algorithm().hasher();
        let mut buf = vec![0u8; VERIFY_BUF];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(e)),
            }
        }
        let actual = hasher.finalize();
        if actual == expected {
            Ok(())
        } else {
            Err(IntegrityError::Mismatch {
                expected: expected.to_string(),
                actual: actual.to_string(),
            })
        }
    }

    /// Creates the artifact's directory (and missing parents) with mode 0700.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a bad path, [`Error::CreateDir`] when creation fails.
    pub fn create_artifact_dir(&self, artifact_path: &str) -> Result<PathBuf, Error> {
        let local = self.local_path(artifact_path)?;
        let dir = parent_of(&local, artifact_path)?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| Error::CreateDir {
                path: dir.clone(),
                source,
            })?;
        Ok(dir)
    }

    /// Blocks until the exclusive lock `<artifact>.lock` is held.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a bad path, [`Error::Lock`] when locking fails (for example
    /// because the directory does not exist yet).
    pub fn lock(&self, artifact_path: &str) -> Result<ArtifactLock, Error> {
        ArtifactLock::acquire(&self.lock_path(artifact_path)?)
    }

    /// Takes `<artifact>.lock` if it is free.
    ///
    /// # Errors
    ///
    /// As [`Storage::lock`].
    pub fn try_lock(&self, artifact_path: &str) -> Result<Option<ArtifactLock>, Error> {
        ArtifactLock::try_acquire(&self.lock_path(artifact_path)?)
    }

    fn lock_path(&self, artifact_path: &str) -> Result<PathBuf, Error> {
        let mut lock = self.local_path(artifact_path)?.into_os_string();
        lock.push(path::LOCK_SUFFIX);
        Ok(PathBuf::from(lock))
    }

    /// Archives `dir` (filtered by `matcher`) as the artifact, atomically, with the configured
    /// digest algorithm. The artifact directory must exist ([`Storage::create_artifact_dir`]).
    ///
    /// # Errors
    ///
    /// [`Error::Stat`] / [`Error::NotADirectory`] for a bad `dir`, [`Error::InvalidPath`] for a
    /// bad artifact path, [`Error::DeadlineExceeded`] once `deadline` has passed,
    /// [`Error::Archive`] for anything else.
    pub fn archive(
        &self,
        artifact_path: &str,
        dir: &Path,
        matcher: &IgnoreMatcher,
        deadline: Option<&Deadline>,
    ) -> Result<Stored, Error> {
        let dest = self.local_path(artifact_path)?;
        archive::archive_dir(dir, matcher, &dest, self.algorithm, deadline)
    }

    /// Stores `reader`'s bytes unchanged as the artifact (copy mode), atomically, with the
    /// configured digest algorithm.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a bad artifact path, [`Error::Copy`] otherwise.
    pub fn copy(&self, artifact_path: &str, reader: impl Read) -> Result<Stored, Error> {
        let dest = self.local_path(artifact_path)?;
        archive::copy_into(reader, &dest, self.algorithm)
    }

    /// Streams `reader`'s bytes (copy mode) into a temporary file in the artifact's directory
    /// (created if missing), at most `max_size` bytes and until `deadline`; [`Staged::commit`]
    /// makes them the artifact, dropping the [`Staged`] removes them. One pass, one copy. The
    /// artifact lock is held from here until then: do not take it again meanwhile.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`], [`Error::CreateDir`], or those of [`archive::stage_copy`].
    pub fn stage_copy(
        &self,
        artifact_path: &str,
        reader: impl Read,
        max_size: Option<u64>,
        deadline: Option<&Deadline>,
    ) -> Result<Staged, Error> {
        self.create_artifact_dir(artifact_path)?;
        let lock = self.lock(artifact_path)?;
        let dest = self.local_path(artifact_path)?;
        Ok(archive::stage_copy(reader, &dest, self.algorithm, max_size, deadline)?.with_lock(lock))
    }

    /// Removes what a killed process left in the store: partial temporary files whose artifact
    /// lock is free (see [`gc::sweep_partial_files`]). For start-up.
    #[must_use]
    pub fn sweep_partial_files(&self) -> Vec<PathBuf> {
        gc::sweep_partial_files(&self.root)
    }

    /// Points `<dir>/latest.tar.gz` at the artifact's absolute path (via `latest.tar.gz.tmp` and a
    /// rename, so readers never see it missing) and returns the `status.url`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a bad path, [`Error::Symlink`] when the link cannot be made.
    pub fn symlink_latest(&self, artifact_path: &str) -> Result<String, Error> {
        let target = self.local_path(artifact_path)?;
        let dir = parent_of(&target, artifact_path)?;
        let link = dir.join(path::LATEST);
        let tmp = dir.join(format!("{}.tmp", path::LATEST));
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Symlink { path, source }
        };
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(&tmp)(e)),
            _ => {}
        }
        std::os::unix::fs::symlink(&target, &tmp).map_err(err(&tmp))?;
        fs::rename(&tmp, &link).map_err(err(&link))?;
        Ok(self.latest_url(artifact_path))
    }

    /// Removes the artifact file after a failed integrity check, with the shared entry it is a
    /// link to (see [`shared`]); a missing file is fine.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a bad path, [`Error::Remove`] when removal fails.
    pub fn remove(&self, artifact_path: &str) -> Result<(), Error> {
        let local = self.local_path(artifact_path)?;
        if let Ok(meta) = fs::symlink_metadata(&local)
            && meta.is_file()
        {
            self.evict_shared(&meta);
        }
        gc::remove_file_if_exists(&local)
    }

    /// Garbage-collects the directory of the current artifact under the retention policy (see
    /// [`gc`] for the exact rule) and returns the files removed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`], [`Error::ReadDir`] or the first [`Error::Remove`].
    pub fn garbage_collect(
        &self,
        current_artifact_path: &str,
        now: SystemTime,
    ) -> Result<Vec<PathBuf>, Error> {
        let current = self.local_path(current_artifact_path)?;
        gc::collect(&current, &self.retention, now)
    }

    /// Removes everything stored for a deleted object: `ocirepository/<ns>/<name>/`. Returns the
    /// directory when something was removed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for an unclean namespace or name, [`Error::Remove`] on failure.
    pub fn remove_all(&self, namespace: &str, name: &str) -> Result<Option<PathBuf>, Error> {
        let dir = self.local_path(&path::artifact_dir(namespace, name)?)?;
        gc::remove_dir(&dir)
    }
}

fn parent_of(local: &Path, artifact_path: &str) -> Result<PathBuf, Error> {
    local
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::InvalidPath {
            path: artifact_path.to_owned(),
            reason: "path has no parent directory",
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const REV: &str = "v1@sha256:3b6cdcb3f6d9c2b6a8e1a0c8d1e5f7a9b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0";

    fn store() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::new(
            dir.path(),
            "source-controller.flux-system.svc.cluster.local.",
        )
        .unwrap();
        (dir, s)
    }

    fn sample_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("foo.txt"), b"foo").unwrap();
        d
    }

    #[test]
    fn new_requires_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Storage::new(dir.path().join("missing"), "h"),
            Err(Error::Stat { .. })
        ));
        fs::write(dir.path().join("f"), b"").unwrap();
        assert!(matches!(
            Storage::new(dir.path().join("f"), "h"),
            Err(Error::NotADirectory { .. })
        ));
    }

    #[test]
    fn full_artifact_cycle() {
        let (root, s) = store();
        let src = sample_dir();
        let path = s.artifact_path("apps", "podinfo", REV).unwrap();
        let dir = s.create_artifact_dir(&path).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let lock = s.lock(&path).unwrap();
        let m = ignore::matcher_for(src.path(), None, None).unwrap();
        let stored = s.archive(&path, src.path(), &m, None).unwrap();
        drop(lock);
        assert!(s.exists(&path));
        s.verify(&path, &stored.digest.to_string()).unwrap();
        let url = s.symlink_latest(&path).unwrap();
        assert_eq!(
            url,
            "http://source-controller.flux-system.svc.cluster.local./ocirepository/apps/podinfo/latest.tar.gz"
        );
        let link = root.path().join("ocirepository/apps/podinfo/latest.tar.gz");
        assert_eq!(fs::read_link(&link).unwrap(), s.local_path(&path).unwrap());
        // Re-pointing works over an existing link.
        s.symlink_latest(&path).unwrap();
        assert!(
            s.local_path(&path)
                .unwrap()
                .with_extension("gz.lock")
                .exists()
        );
        assert_eq!(
            s.artifact_url(&path),
            format!("http://source-controller.flux-system.svc.cluster.local./{path}")
        );
    }

    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn verify_tells_missing_from_corrupt() {
        let (_root, s) = store();
        let path = s.artifact_path("ns", "n", REV).unwrap();
        let missing = s.verify(&path, "sha256:00").unwrap_err();
        assert!(missing.is_missing(), "{missing}");
        let bad = s.verify("../../etc/passwd", "x").unwrap_err();
        assert!(matches!(bad, IntegrityError::InvalidPath { .. }));

        s.create_artifact_dir(&path).unwrap();
        let stored = s.copy(&path, &b"blob"[..]).unwrap();
        assert!(matches!(
            s.verify(&path, ""),
            Err(IntegrityError::EmptyDigest)
        ));
        assert!(matches!(
            s.verify(&path, "sha256:nothex"),
            Err(IntegrityError::InvalidDigest { .. })
        ));
        let other = format!("sha256:{}", "0".repeat(64));
        let mismatch = s.verify(&path, &other).unwrap_err();
        assert!(!mismatch.is_missing());
        assert_eq!(
            mismatch.to_string(),
            format!("computed digest doesn't match '{other}'")
        );
        s.verify(&path, &stored.digest.to_string()).unwrap();

        // A directory in place of the artifact is "missing", as Flux's Lstat check.
        let dpath = s.artifact_path("ns", "dir", REV).unwrap();
        fs::create_dir_all(s.local_path(&dpath).unwrap()).unwrap();
        assert!(matches!(
            s.verify(&dpath, &stored.digest.to_string()),
            Err(IntegrityError::NotRegularFile { .. })
        ));

        s.remove(&path).unwrap();
        s.remove(&path).unwrap();
        assert!(!s.exists(&path));
    }

    #[test]
    fn verify_accepts_digests_of_other_algorithms() {
        let (_root, s) = store();
        let s = s.with_digest_algorithm(DigestAlgorithm::Blake3);
        let path = s.artifact_path("ns", "n", REV).unwrap();
        s.create_artifact_dir(&path).unwrap();
        let stored = s.copy(&path, &b"blob"[..]).unwrap();
        assert!(stored.digest.to_string().starts_with("blake3:"));
        s.verify(&path, &stored.digest.to_string()).unwrap();
    }

    #[test]
    fn garbage_collect_and_remove_all() {
        let (root, s) = store();
        let s = s.with_retention(Retention {
            ttl: Duration::from_secs(60),
            records: 2,
        });
        let mut paths = Vec::new();
        for (i, hex) in ["a", "b", "c", "d"].iter().enumerate() {
            let rev = format!("sha256:{}", hex.repeat(64));
            let p = s.artifact_path("ns", "n", &rev).unwrap();
            s.create_artifact_dir(&p).unwrap();
            s.copy(&p, &b"x"[..]).unwrap();
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + i as u64);
            File::options()
                .write(true)
                .open(s.local_path(&p).unwrap())
                .unwrap()
                .set_modified(t)
                .unwrap();
            paths.push(p);
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_010);
        let removed = s.garbage_collect(&paths[3], now).unwrap();
        assert_eq!(removed.len(), 2);
        assert!(!s.exists(&paths[0]) && !s.exists(&paths[1]));
        assert!(s.exists(&paths[2]) && s.exists(&paths[3]));

        let dir = s.remove_all("ns", "n").unwrap();
        assert_eq!(dir, Some(root.path().join("ocirepository/ns/n")));
        assert_eq!(s.remove_all("ns", "n").unwrap(), None);
        assert!(s.remove_all("..", "n").is_err());
    }

    #[test]
    fn hostile_recorded_paths_never_escape_the_root() {
        let (root, s) = store();
        for p in [
            "../x",
            "ocirepository/../../x",
            "..",
            "a/../../../etc/passwd",
        ] {
            assert!(s.local_path(p).is_err(), "{p}");
            assert!(s.copy(p, &b"x"[..]).is_err());
            assert!(s.remove(p).is_err());
            assert!(s.garbage_collect(p, SystemTime::now()).is_err());
        }
        // Absolute-looking paths are rooted inside, as Flux's secure join does.
        assert_eq!(
            s.local_path("/etc/passwd").unwrap(),
            root.path().join("etc/passwd")
        );
    }
}
