//! Garbage collection of previous artifacts (§4.11) and removal of a deleted object's directory.
//!
//! # The rule
//!
//! In the directory of the current artifact, the *candidates* are the regular files (symlinks
//! such as `latest.tar.gz` excluded) whose name does not end in `.lock`, ordered by modification
//! time, oldest first, ties broken by file name. Then:
//!
//! 1. every candidate other than the current artifact that is older than the TTL
//!    (`now - mtime > ttl`) is garbage;
//! 2. if more than `records` candidates survive step 1, the oldest survivors other than the
//!    current artifact are garbage too, until exactly `records` survive (or only the current
//!    artifact is left, which is always kept, also with `records = 0`).
//!
//! So at most `max(records, 1)` files remain, and none but the current one is older than the TTL.
//! Each garbage file's `<file>.lock` sibling is removed with it; other `.lock` files are left.
//!
//! # Deliberate difference from upstream
//!
//! Upstream (`getGarbageFiles`, source-controller v1.6 and fluxcd/pkg `artifact/storage`) counts
//! the survivors of step 2 as `total - collected - len(garbage)`, but `garbage` already includes
//! the `collected` files, so when step 1 found something it stops early and keeps more than
//! `records` files. Example: five files `a..e`, `e` current, only `a` expired, `records = 2`:
//! upstream keeps `c, d, e`; this module keeps `d, e`. Without TTL garbage both keep the same
//! (upstream's test: `a, b, c, d` with `d` current keeps `c, d`). Upstream also keys files by
//! mtime in a map, so files with identical mtimes shadow each other; ties are ordered by name
//! here. There is no 1000-entry walk limit (upstream stops collecting past it).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::error::Error;
use super::path::LOCK_SUFFIX;

/// Default `--artifact-retention-ttl`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// Default `--artifact-retention-records`.
pub const DEFAULT_RECORDS: usize = 2;

/// The retention flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// `--artifact-retention-ttl`: files older than this (other than the current) are removed.
    pub ttl: Duration,
    /// `--artifact-retention-records`: at most this many files (the current included) remain.
    pub records: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            records: DEFAULT_RECORDS,
        }
    }
}

/// One candidate file for [`select_garbage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The file.
    pub path: PathBuf,
    /// Its modification time.
    pub modified: SystemTime,
}

/// Applies the rule in the module documentation to `candidates` and returns the garbage, oldest
/// first. Pure: no filesystem access, `now` from the caller.
#[must_use]
pub fn select_garbage(
    candidates: &[Candidate],
    current: &Path,
    retention: &Retention,
    now: SystemTime,
) -> Vec<PathBuf> {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| {
        a.modified
            .cmp(&b.modified)
            .then_with(|| a.path.cmp(&b.path))
    });
    let expired = |c: &Candidate| {
        // A future mtime yields an error here: not expired.
        now.duration_since(c.modified)
            .is_ok_and(|age| age > retention.ttl)
    };
    let mut garbage = vec![false; sorted.len()];
    for (i, c) in sorted.iter().enumerate() {
        garbage[i] = c.path != current && expired(c);
    }
    let mut survivors = garbage.iter().filter(|g| !**g).count();
    for (i, c) in sorted.iter().enumerate() {
        if survivors <= retention.records {
            break;
        }
        if !garbage[i] && c.path != current {
            garbage[i] = true;
            survivors -= 1;
        }
    }
    sorted
        .iter()
        .zip(garbage)
        .filter(|(_, g)| *g)
        .map(|(c, _)| c.path.clone())
        .collect()
}

/// Lists the candidates of `dir`: regular files, not symlinks, not `*.lock`.
///
/// # Errors
///
/// [`Error::ReadDir`] when the directory cannot be listed; a missing directory yields no
/// candidates.
pub fn candidates(dir: &Path) -> Result<Vec<Candidate>, Error> {
    let err = |source| Error::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(err)?;
        if entry
            .file_name()
            .as_encoded_bytes()
            .ends_with(LOCK_SUFFIX.as_bytes())
        {
            continue;
        }
        // DirEntry::metadata does not follow symlinks.
        let meta = match entry.metadata() {
            Ok(m) => m,
            // Removed concurrently: nothing to collect.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err(e)),
        };
        if !meta.is_file() {
            continue;
        }
        out.push(Candidate {
            path: entry.path(),
            modified: meta.modified().map_err(err)?,
        });
    }
    Ok(out)
}

/// Collects garbage in the directory of `current` (an absolute local path) and returns the
/// artifact files removed. Every garbage file is attempted; its `.lock` sibling goes with it.
///
/// # Errors
///
/// [`Error::ReadDir`] when the directory cannot be listed, or the first [`Error::Remove`] after
/// all removals were attempted.
pub fn collect(
    current: &Path,
    retention: &Retention,
    now: SystemTime,
) -> Result<Vec<PathBuf>, Error> {
    let Some(dir) = current.parent() else {
        return Ok(Vec::new());
    };
    let garbage = select_garbage(&candidates(dir)?, current, retention, now);
    let mut removed = Vec::with_capacity(garbage.len());
    let mut first_error = None;
    for path in garbage {
        match remove_file_if_exists(&path) {
            Ok(()) => removed.push(path.clone()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        let mut lock = path.into_os_string();
        lock.push(LOCK_SUFFIX);
        if let Err(e) = remove_file_if_exists(Path::new(&lock)) {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

/// Removes the partial files a killed process left in the store: in every object directory
/// (`<root>/ocirepository/<ns>/<name>/`), the temporary files the store writes beside an
/// artifact (`.<artifact>.<random>.tmp`, regular files) whose artifact lock is free. A writer
/// holds that lock for as long as its temporary file exists, so a live write (of any process
/// sharing the volume) is never touched; symlinks are never followed. Errors on single entries
/// are skipped, so a sweep never stops a start-up. Returns the files removed.
#[must_use]
pub fn sweep_partial_files(root: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for ns in real_dirs(&root.join(super::path::KIND_DIR)) {
        for dir in real_dirs(&ns) {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(artifact) = name.to_str().and_then(partial_of) else {
                    continue;
                };
                if !entry.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let lock = dir.join(format!("{artifact}{LOCK_SUFFIX}"));
                let Ok(Some(_held)) = super::lock::ArtifactLock::try_acquire(&lock) else {
                    continue;
                };
                if fs::remove_file(entry.path()).is_ok() {
                    removed.push(entry.path());
                }
            }
        }
    }
    removed
}

/// The artifact a store temporary file (`.<artifact>.<random>.tmp`) was being written for.
fn partial_of(name: &str) -> Option<&str> {
    let inner = name
        .strip_prefix(super::archive::TMP_PREFIX)?
        .strip_suffix(super::archive::TMP_SUFFIX)?;
    let (artifact, random) = inner.rsplit_once('.')?;
    (!random.is_empty() && !artifact.is_empty()).then_some(artifact)
}

fn real_dirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes `dir` and everything below it. Returns `Some(dir)` when something was there.
///
/// # Errors
///
/// [`Error::Remove`] when the removal fails.
pub fn remove_dir(dir: &Path) -> Result<Option<PathBuf>, Error> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(Some(dir.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Remove {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn remove_file_if_exists(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Remove {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unlocked_partial_files_of_the_store_are_swept() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("ocirepository/apps/podinfo");
        fs::create_dir_all(&dir).unwrap();
        let artifact = "sha256:abc.tar.gz";
        let stale = dir.join(format!(".{artifact}.X1y2Z3.tmp"));
        let live = dir.join(".sha256:def.tar.gz.A1b2C3.tmp");
        for f in [&stale, &live] {
            fs::write(f, b"partial").unwrap();
        }
        let _writer =
            crate::storage::lock::ArtifactLock::acquire(&dir.join("sha256:def.tar.gz.lock"))
                .unwrap();
        // Never swept: finished artifacts, locks, other names, symlinks, files elsewhere.
        let keep = [
            dir.join(artifact),
            dir.join(format!("{artifact}.lock")),
            dir.join("notes.tmp"),
            root.path().join(".x.tar.gz.a.tmp"),
        ];
        for f in &keep {
            fs::write(f, b"keep").unwrap();
        }
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, b"victim").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(".sha256:ghi.tar.gz.a.tmp")).unwrap();

        let removed = sweep_partial_files(root.path());
        assert_eq!(removed, vec![stale.clone()]);
        assert!(!stale.exists());
        assert!(live.exists(), "a write in progress is left alone");
        for f in &keep {
            assert!(f.exists(), "{}", f.display());
        }
        assert_eq!(fs::read(&victim).unwrap(), b"victim");
    }
    use std::fs::{File, FileTimes};

    const T0: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    /// Files named by letter, created one second apart starting at T0.
    fn files(names: &str) -> Vec<Candidate> {
        names
            .chars()
            .enumerate()
            .map(|(i, c)| Candidate {
                path: PathBuf::from(c.to_string()),
                modified: at(i as u64),
            })
            .collect()
    }

    fn keep(names: &str, current: char, ttl: u64, records: usize, now: u64) -> String {
        let cands = files(names);
        let retention = Retention {
            ttl: Duration::from_secs(ttl),
            records,
        };
        let garbage = select_garbage(&cands, Path::new(&current.to_string()), &retention, at(now));
        cands
            .iter()
            .filter(|c| !garbage.contains(&c.path))
            .map(|c| c.path.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn retention_table() {
        // (files, current, ttl, records, now) => kept
        let table = [
            // Upstream's own case: all young, two records.
            (("abcd", 'd', 60, 2, 4), "cd"),
            // Everything expired but the current one.
            (("abcd", 'd', 60, 2, 1000), "d"),
            // The off-by-one case: `a` expired; upstream keeps "cde".
            (("abcde", 'e', 3, 2, 4), "de"),
            // More records than files.
            (("abc", 'c', 60, 5, 3), "abc"),
            // records = 0 still keeps the current artifact.
            (("abc", 'c', 60, 0, 3), "c"),
            // The current artifact is kept even when it is the oldest and expired.
            (("abcd", 'a', 2, 2, 4), "ad"),
            // TTL boundary: exactly ttl old is not expired (upstream: diff > ttl).
            (("ab", 'b', 3, 5, 3), "ab"),
            (("ab", 'b', 3, 5, 4), "b"),
            // Current not among the candidates (missing): `records` newest remain.
            (("abc", 'z', 60, 2, 3), "bc"),
            // Defaults: current plus at most one previous artifact younger than 60 s.
            (("abcde", 'e', 60, 2, 30), "de"),
        ];
        for ((names, current, ttl, records, now), want) in table {
            assert_eq!(
                keep(names, current, ttl, records, now),
                want,
                "files={names} current={current} ttl={ttl} records={records} now={now}"
            );
        }
    }

    #[test]
    fn equal_mtimes_are_ordered_by_name() {
        let cands: Vec<Candidate> = ["c", "a", "b"]
            .iter()
            .map(|n| Candidate {
                path: PathBuf::from(n),
                modified: at(0),
            })
            .collect();
        let garbage = select_garbage(
            &cands,
            Path::new("b"),
            &Retention {
                ttl: Duration::from_secs(60),
                records: 1,
            },
            at(1),
        );
        assert_eq!(garbage, vec![PathBuf::from("a"), PathBuf::from("c")]);
    }

    fn touch(path: &Path, secs: u64) {
        let f = File::create(path).unwrap();
        f.set_times(FileTimes::new().set_modified(at(secs)))
            .unwrap();
    }

    #[test]
    fn collect_removes_garbage_with_lock_siblings_and_ignores_symlinks_and_locks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
            touch(&d.join(format!("{n}.tar.gz")), i as u64);
        }
        touch(&d.join("a.tar.gz.lock"), 0);
        touch(&d.join("b.tar.gz.lock"), 0);
        touch(&d.join("orphan.tar.gz.lock"), 0);
        std::os::unix::fs::symlink(d.join("d.tar.gz"), d.join("latest.tar.gz")).unwrap();
        let current = d.join("d.tar.gz");
        let removed = collect(&current, &Retention::default(), at(10)).unwrap();
        assert_eq!(removed, vec![d.join("a.tar.gz"), d.join("b.tar.gz")]);
        let mut left: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "c.tar.gz",
                "d.tar.gz",
                "latest.tar.gz",
                "orphan.tar.gz.lock"
            ]
        );
    }

    #[test]
    fn collect_in_a_missing_directory_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("nope/x.tar.gz");
        assert!(
            collect(&current, &Retention::default(), at(0))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn remove_dir_reports_whether_something_was_removed() {
        let dir = tempfile::tempdir().unwrap();
        let obj = dir.path().join("ocirepository/ns/name");
        fs::create_dir_all(&obj).unwrap();
        fs::write(obj.join("x.tar.gz"), b"x").unwrap();
        assert_eq!(remove_dir(&obj).unwrap(), Some(obj.clone()));
        assert!(!obj.exists());
        assert_eq!(remove_dir(&obj).unwrap(), None);
        assert!(dir.path().join("ocirepository/ns").exists());
    }
}
