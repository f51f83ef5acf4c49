//! Deterministic tar.gz of a directory (§4.7) and atomic, digesting writes into storage.
//!
//! # Format
//!
//! The directory is walked in lexical (byte) order, depth first, starting with the root itself
//! as `.`. Only regular files and directories are archived (symlinks, devices and sockets are
//! skipped), minus what the [`IgnoreMatcher`] excludes. Every header is normalised: name relative
//! to the root with `/` separators and no trailing slash, uid/gid 0, empty user and group names,
//! all times zero, mode 0750 for directories, 0700 for files with any execute bit and 0600 for
//! other files. Headers are GNU format; a name of 100 bytes or more is carried by a GNU long-name
//! record. The gzip stream has no file name, a zero mtime and the default compression level.
//! Identical trees (names, types, execute bits and contents) give identical bytes. The bytes are
//! not Go's (Flux's golden digests differ); consumers only check the digest published with them.
//!
//! # Deadline
//!
//! Given a [`Deadline`], archiving and copying check it before every entry and every buffer of
//! data (128 KiB), so they stop within moments of `spec.timeout` with
//! [`Error::DeadlineExceeded`]; the partial temporary file is removed.

use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::GzBuilder;

use super::deadline::Deadline;
use super::digest::{Digest, DigestAlgorithm, DigestWriter};
use super::error::Error;
use super::ignore::IgnoreMatcher;
use super::lock::ArtifactLock;

const BUF_SIZE: usize = 128 * 1024;
const BLOCK: usize = 512;
const NAME_FIELD: usize = 100;
const ARCHIVING: &str = "archiving the artifact";
const COPYING: &str = "copying the layer";

/// A file written into storage: digest and size of the exact bytes stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Digest of the stored bytes (`artifact.digest`).
    pub digest: Digest,
    /// Size of the stored file in bytes (`artifact.size`).
    pub size: u64,
}

/// Writes the deterministic tar.gz of `dir` to `out` and returns `out` after the gzip trailer.
///
/// # Errors
///
/// [`Error::Archive`] naming the file that could not be read or the output that could not be
/// written, [`Error::DeadlineExceeded`] once `deadline` has passed.
pub fn write_tar_gz<W: Write>(
    dir: &Path,
    matcher: &IgnoreMatcher,
    out: W,
    deadline: Option<&Deadline>,
) -> Result<W, Error> {
    let check = || deadline.map_or(Ok(()), |d| d.check(ARCHIVING));
    let gz = GzBuilder::new().mtime(0).write(out, Compression::default());
    let mut tar = BufWriter::with_capacity(BUF_SIZE, gz);
    let mut buf = vec![0u8; BUF_SIZE];
    let out_err = |source| Error::Archive {
        path: dir.to_path_buf(),
        source,
    };

    let root_meta = fs::metadata(dir).map_err(|source| Error::Archive {
        path: dir.to_path_buf(),
        source,
    })?;
    // One path, name and segment list, grown on the way down and cut on the way up, plus the
    // pending children of each open directory: memory stays proportional to the depth plus
    // the entries, where a copy of the path per pending entry grew with depth x width.
    let mut path = dir.to_path_buf();
    let mut name: Vec<u8> = Vec::new();
    let mut segments: Vec<String> = Vec::new();
    let mut levels: Vec<Level> = Vec::new();
    let mut current = Some(root_meta);
    loop {
        if let Some(meta) = current.take() {
            // Before matching: a hostile ignore list makes each entry cost every pattern.
            check()?;
            let is_dir = meta.is_dir();
            let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
            let excluded = matcher.is_excluded(&segs, is_dir);
            let entry_name: &[u8] = if name.is_empty() { b"." } else { &name };
            if !excluded {
                if is_dir {
                    write_header(&mut tar, entry_name, tar::EntryType::Directory, 0o750, 0)
                        .map_err(out_err)?;
                } else {
                    let mode = if meta.permissions().mode() & 0o111 != 0 {
                        0o700
                    } else {
                        0o600
                    };
                    let size = meta.len();
                    write_header(&mut tar, entry_name, tar::EntryType::Regular, mode, size)
                        .map_err(out_err)?;
                    copy_file(&path, size, &mut tar, &mut buf, &check)?;
                }
            }
            // Flux walks into excluded directories because a later `!` pattern may re-include
            // a descendant; without any `!` pattern the whole subtree is excluded and skipped.
            if is_dir && (!excluded || matcher.has_inclusion()) {
                let children = sorted_children(&path, false)
                    .map_err(|(path, source)| Error::Archive { path, source })?;
                levels.push(Level {
                    children: children.into_iter(),
                });
            } else if !segments.is_empty() {
                leave(&mut path, &mut name, &mut segments);
            }
        }
        let Some(level) = levels.last_mut() else {
            break;
        };
        match level.children.next() {
            Some((file_name, meta)) => {
                if !name.is_empty() {
                    name.push(b'/');
                }
                name.extend_from_slice(file_name.as_bytes());
                segments.push(file_name.to_string_lossy().into_owned());
                path.push(&file_name);
                current = Some(meta);
            }
            None => {
                levels.pop();
                if !segments.is_empty() {
                    leave(&mut path, &mut name, &mut segments);
                }
            }
        }
    }
    write_zeros(&mut tar, 2 * BLOCK).map_err(out_err)?;
    let gz = tar.into_inner().map_err(|e| out_err(e.into_error()))?;
    gz.finish().map_err(out_err)
}

/// The pending children of an open directory of the archive walk, in lexical order.
struct Level {
    children: std::vec::IntoIter<(std::ffi::OsString, Metadata)>,
}

// Cuts the last segment off the walk's path, archive name and segment list.
fn leave(path: &mut PathBuf, name: &mut Vec<u8>, segments: &mut Vec<String>) {
    path.pop();
    segments.pop();
    let cut = name.iter().rposition(|b| *b == b'/').unwrap_or(0);
    name.truncate(cut);
}

/// The regular files and directories (or only the directories) of `dir`, symlinks and other
/// types skipped, sorted by name bytes as Go's `filepath.Walk` visits them.
///
/// # Errors
/// The path that could not be read, with the IO error.
pub(crate) fn sorted_children(
    dir: &Path,
    dirs_only: bool,
) -> Result<Vec<(std::ffi::OsString, Metadata)>, (PathBuf, io::Error)> {
    let mut children = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| (dir.to_path_buf(), e))? {
        let entry = entry.map_err(|e| (dir.to_path_buf(), e))?;
        // DirEntry::metadata does not follow symlinks, like Go's Lstat-based walk.
        let meta = entry.metadata().map_err(|e| (entry.path(), e))?;
        if meta.is_dir() || (!dirs_only && meta.is_file()) {
            children.push((entry.file_name(), meta));
        }
    }
    children.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(children)
}

/// An entry of the lexical, Lstat-based directory walk shared by the store and `push`.
pub(crate) struct WalkItem {
    /// Path on disk.
    pub(crate) path: PathBuf,
    /// Archive name: `/`-joined path relative to the walk root (empty for the root).
    pub(crate) name: Vec<u8>,
    /// The same name as path segments, for ignore matching.
    pub(crate) segments: Vec<String>,
    /// Metadata, symlinks not followed.
    pub(crate) meta: Metadata,
}

/// Pushes the regular files and directories of `parent` onto `stack` so that they pop in lexical
/// byte order, as Go's `filepath.Walk` visits them; other entry types (symlinks, devices) are
/// skipped.
///
/// # Errors
/// The path that could not be read, with the IO error.
pub(crate) fn walk_children(
    parent: &WalkItem,
    stack: &mut Vec<WalkItem>,
) -> Result<(), (PathBuf, std::io::Error)> {
    let mut children = Vec::new();
    for entry in fs::read_dir(&parent.path).map_err(|e| (parent.path.clone(), e))? {
        let entry = entry.map_err(|e| (parent.path.clone(), e))?;
        // DirEntry::metadata does not follow symlinks, like Go's Lstat-based walk.
        let meta = entry.metadata().map_err(|e| (entry.path(), e))?;
        if meta.is_file() || meta.is_dir() {
            children.push((entry.file_name(), meta));
        }
    }
    children.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (file_name, meta) in children.into_iter().rev() {
        let name = if parent.segments.is_empty() {
            file_name.as_bytes().to_vec()
        } else {
            let mut name = parent.name.clone();
            name.push(b'/');
            name.extend_from_slice(file_name.as_bytes());
            name
        };
        let mut segments = parent.segments.clone();
        segments.push(file_name.to_string_lossy().into_owned());
        stack.push(WalkItem {
            path: parent.path.join(&file_name),
            name,
            segments,
            meta,
        });
    }
    Ok(())
}

fn write_header<W: Write>(
    out: &mut W,
    name: &[u8],
    kind: tar::EntryType,
    mode: u32,
    size: u64,
) -> io::Result<()> {
    if name.len() >= NAME_FIELD {
        // GNU tar's convention: the full name, NUL-terminated, in a preceding `L` record.
        let mut long = normalised_header(b"././@LongLink", tar::EntryType::GNULongName, 0o644);
        long.set_size(name.len() as u64 + 1);
        long.set_cksum();
        out.write_all(long.as_bytes())?;
        out.write_all(name)?;
        out.write_all(&[0])?;
        write_zeros(out, padding(name.len() as u64 + 1))?;
    }
    let mut header = normalised_header(name, kind, mode);
    header.set_size(size);
    header.set_cksum();
    out.write_all(header.as_bytes())
}

fn normalised_header(name: &[u8], kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    let field = &mut header.as_old_mut().name;
    let n = name.len().min(NAME_FIELD);
    if let (Some(dst), Some(src)) = (field.get_mut(..n), name.get(..n)) {
        dst.copy_from_slice(src);
    }
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(0);
    header
}

/// Where [`copy_exact`] failed.
pub(crate) enum CopyError {
    /// Reading the file failed, or it ended before `size` bytes.
    Read(io::Error),
    /// Writing the output failed.
    Write(io::Error),
}

/// Copies exactly `size` bytes of `file` (the size its tar header announced) to `out` through
/// `buf`; a file that shrank since it was measured is an error, and bytes it grew by are left.
pub(crate) fn copy_exact<R: Read, W: Write>(
    file: &mut R,
    size: u64,
    out: &mut W,
    buf: &mut [u8],
) -> Result<(), CopyError> {
    let mut remaining = size;
    while remaining > 0 {
        let want = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let chunk = buf.get_mut(..want).unwrap_or_default();
        let n = match file.read(chunk) {
            Ok(0) => {
                return Err(CopyError::Read(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while being archived",
                )));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        out.write_all(chunk.get(..n).unwrap_or_default())
            .map_err(CopyError::Write)?;
        remaining -= n as u64;
    }
    Ok(())
}

fn copy_file<W: Write>(
    path: &Path,
    size: u64,
    out: &mut W,
    buf: &mut [u8],
    check: &dyn Fn() -> Result<(), Error>,
) -> Result<(), Error> {
    let err = |source| Error::Archive {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(err)?;
    let mut remaining = size;
    while remaining > 0 {
        check()?;
        let n = remaining.min(BUF_SIZE as u64);
        copy_exact(&mut file, n, out, buf).map_err(|e| match e {
            CopyError::Read(e) | CopyError::Write(e) => err(e),
        })?;
        remaining -= n;
    }
    write_zeros(out, padding(size)).map_err(err)
}

fn padding(len: u64) -> usize {
    let rem = (len % BLOCK as u64) as usize;
    if rem == 0 { 0 } else { BLOCK - rem }
}

fn write_zeros<W: Write>(out: &mut W, n: usize) -> io::Result<()> {
    const ZEROS: [u8; 2 * BLOCK] = [0; 2 * BLOCK];
    let mut left = n;
    while left > 0 {
        let k = left.min(ZEROS.len());
        out.write_all(ZEROS.get(..k).unwrap_or_default())?;
        left -= k;
    }
    Ok(())
}

/// Prefix of the temporary files the store writes next to an artifact (`.<file>.<random>.tmp`).
pub const TMP_PREFIX: &str = ".";

/// Suffix of the temporary files the store writes next to an artifact.
pub const TMP_SUFFIX: &str = ".tmp";

/// Bytes written to a temporary file next to their destination, digested, not yet visible under
/// the destination's name. Dropping it removes the file; [`Staged::commit`] renames it.
#[derive(Debug)]
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
    stored: Stored,
    // Held from before the temporary file exists until it is renamed or removed, so that the
    // start-up sweep never takes a live write for a crashed one.
    lock: Option<ArtifactLock>,
    make_err: fn(PathBuf, io::Error) -> Error,
}

impl Staged {
    /// Digest and size of the staged bytes.
    #[must_use]
    pub fn stored(&self) -> &Stored {
        &self.stored
    }

    /// Renames the file over its destination.
    ///
    /// # Errors
    ///
    /// [`Error::Copy`] (copy mode) or [`Error::Archive`] when the rename fails (the temporary
    /// file is removed).
    pub fn commit(self) -> Result<Stored, Error> {
        let Self {
            tmp,
            dest,
            stored,
            lock,
            make_err,
        } = self;
        tmp.persist(&dest)
            .map_err(|e| make_err(dest.clone(), e.error))?;
        drop(lock);
        Ok(stored)
    }

    /// Renames the file to `dest` instead of the destination it was staged for (a shared
    /// entry is named by its digest, known only once written).
    ///
    /// # Errors
    ///
    /// As [`Staged::commit`].
    pub(crate) fn commit_as(mut self, dest: PathBuf) -> Result<Stored, Error> {
        self.dest = dest;
        self.commit()
    }

    pub(crate) fn with_lock(mut self, lock: ArtifactLock) -> Self {
        self.lock = Some(lock);
        self
    }
}

/// Writes `write`'s bytes to a temporary file (0600) in the directory of `dest`, hashed and
/// counted; nothing is visible under `dest` until the [`Staged`] is committed, and on any error
/// the temporary file is removed. `make_err` builds the errors of the file itself (creation,
/// flush, the final rename).
fn stage<F>(
    dest: &Path,
    algorithm: DigestAlgorithm,
    make_err: fn(PathBuf, io::Error) -> Error,
    write: F,
) -> Result<Staged, Error>
where
    F: FnOnce(&mut DigestWriter<&File>) -> Result<(), Error>,
{
    let dir = dest.parent().unwrap_or(Path::new("."));
    let file_name = dest.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{TMP_PREFIX}{}.", file_name.unwrap_or_default()))
        .suffix(TMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(|e| make_err(dir.to_path_buf(), e))?;
    let stored = {
        let mut writer = DigestWriter::new(tmp.as_file(), algorithm);
        write(&mut writer)?;
        writer
            .flush()
            .map_err(|e| make_err(tmp.path().to_path_buf(), e))?;
        let (_, digest, size) = writer.finish();
        Stored { digest, size }
    };
    // tempfile creates the file 0600, the mode Flux sets on stored artifacts; make it explicit
    // in case a default ever changes.
    tmp.as_file_mut()
        .set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| make_err(tmp.path().to_path_buf(), e))?;
    Ok(Staged {
        tmp,
        dest: dest.to_path_buf(),
        stored,
        lock: None,
        make_err,
    })
}

/// Archives `dir` into `dest` atomically, computing digest and size in the same pass.
///
/// # Errors
///
/// [`Error::Stat`] / [`Error::NotADirectory`] for a bad `dir`, [`Error::DeadlineExceeded`]
/// once `deadline` has passed, [`Error::Archive`] otherwise.
pub fn archive_dir(
    dir: &Path,
    matcher: &IgnoreMatcher,
    dest: &Path,
    algorithm: DigestAlgorithm,
    deadline: Option<&Deadline>,
) -> Result<Stored, Error> {
    stage_archive(dir, matcher, dest, algorithm, deadline)?.commit()
}

/// Archives `dir` into a temporary file next to `dest`, computing digest and size in the same
/// pass; the bytes become `dest` (or another name) only when committed.
///
/// # Errors
///
/// As [`archive_dir`].
pub(crate) fn stage_archive(
    dir: &Path,
    matcher: &IgnoreMatcher,
    dest: &Path,
    algorithm: DigestAlgorithm,
    deadline: Option<&Deadline>,
) -> Result<Staged, Error> {
    let meta = fs::metadata(dir).map_err(|source| Error::Stat {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(Error::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let make_err = |path, source| Error::Archive { path, source };
    stage(dest, algorithm, make_err, |w| {
        write_tar_gz(dir, matcher, w, deadline).map(|_| ())
    })
}

/// Stores the bytes of `reader` into `dest` atomically (copy mode), computing digest and size
/// on the fly.
///
/// # Errors
///
/// [`Error::Copy`] when reading or writing fails; a reader error is kept as the source.
pub fn copy_into(
    reader: impl Read,
    dest: &Path,
    algorithm: DigestAlgorithm,
) -> Result<Stored, Error> {
    stage_copy(reader, dest, algorithm, None, None)?.commit()
}

/// Streams the bytes of `reader` into a temporary file next to `dest` (copy mode), digesting
/// and counting them, and stops past `max_size` bytes or `deadline`. The bytes become the
/// artifact only with [`Staged::commit`].
///
/// # Errors
///
/// [`Error::LayerTooLarge`] past `max_size`, [`Error::DeadlineExceeded`] past `deadline`,
/// [`Error::Copy`] when reading or writing fails (a reader error is kept as the source).
pub fn stage_copy(
    mut reader: impl Read,
    dest: &Path,
    algorithm: DigestAlgorithm,
    max_size: Option<u64>,
    deadline: Option<&Deadline>,
) -> Result<Staged, Error> {
    let make_err = |path, source| Error::Copy { path, source };
    stage(dest, algorithm, make_err, |w| {
        let mut buf = vec![0u8; BUF_SIZE];
        let mut total = 0u64;
        loop {
            if let Some(d) = deadline {
                d.check(COPYING)?;
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(make_err(dest.to_path_buf(), e)),
            };
            total = total.saturating_add(n as u64);
            if let Some(limit) = max_size
                && total > limit
            {
                return Err(Error::LayerTooLarge { size: total, limit });
            }
            w.write_all(buf.get(..n).unwrap_or_default())
                .map_err(|e| make_err(dest.to_path_buf(), e))?;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::ignore::{matcher_for, read_patterns};
    use flate2::read::GzDecoder;
    use std::os::unix::fs::symlink;

    fn tree(root: &Path) {
        fs::create_dir_all(root.join("b/sub")).unwrap();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::write(root.join("b/sub/z.txt"), b"zz").unwrap();
        fs::write(root.join("a.yaml"), b"kind: A\n").unwrap();
        fs::write(root.join("run.sh"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("logo.png"), b"png").unwrap();
        fs::write(root.join(".git/HEAD"), b"ref").unwrap();
        symlink("/etc/passwd", root.join("link")).unwrap();
    }

    fn archive(root: &Path, spec_ignore: Option<&str>) -> Vec<u8> {
        let m = matcher_for(root, spec_ignore, None).unwrap();
        write_tar_gz(root, &m, Vec::new(), None).unwrap()
    }

    struct Entry {
        name: String,
        kind: tar::EntryType,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        uname: Vec<u8>,
        data: Vec<u8>,
    }

    fn read_back(gz: &[u8]) -> Vec<Entry> {
        let mut a = tar::Archive::new(GzDecoder::new(gz));
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                Entry {
                    name: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                    kind: h.entry_type(),
                    mode: h.mode().unwrap(),
                    uid: h.uid().unwrap(),
                    gid: h.gid().unwrap(),
                    mtime: h.mtime().unwrap(),
                    uname: h.username_bytes().unwrap_or_default().to_vec(),
                    data,
                }
            })
            .collect()
    }

    #[test]
    fn same_tree_same_bytes_regardless_of_times_and_owners() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        tree(one.path());
        tree(two.path());
        let past = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400);
        File::options()
            .write(true)
            .open(two.path().join("a.yaml"))
            .unwrap()
            .set_modified(past)
            .unwrap();
        assert_eq!(archive(one.path(), None), archive(two.path(), None));
        assert_eq!(archive(one.path(), None), archive(one.path(), None));
    }

    #[test]
    fn headers_are_normalised_and_order_is_lexical_with_the_root_first() {
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path());
        let entries = read_back(&archive(dir.path(), None));
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        // .git and logo.png fall to the defaults, the symlink is skipped.
        assert_eq!(
            names,
            [".", "a.yaml", "b", "b/sub", "b/sub/z.txt", "run.sh"]
        );
        for e in &entries {
            assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 0), "{}", e.name);
            assert!(e.uname.is_empty());
            let want = match (e.kind, e.name.as_str()) {
                (tar::EntryType::Directory, _) => 0o750,
                (_, "run.sh") => 0o700,
                _ => 0o600,
            };
            assert_eq!(e.mode, want, "{}", e.name);
        }
        assert_eq!(entries[1].data, b"kind: A\n");
        assert_eq!(entries[4].data, b"zz");
    }

    #[test]
    fn spec_ignore_and_negation_shape_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path());
        let names =
            |gz: Vec<u8>| -> Vec<String> { read_back(&gz).into_iter().map(|e| e.name).collect() };
        let got = names(archive(dir.path(), Some("b/\n!b/sub/z.txt\n")));
        // `b` and `b/sub` are excluded, the re-included file is still archived (as Flux).
        assert_eq!(got, [".", "a.yaml", "b/sub/z.txt", "logo.png", "run.sh"]);
        let m = IgnoreMatcher::with_defaults(read_patterns("b/", &[]));
        let got = names(write_tar_gz(dir.path(), &m, Vec::new(), None).unwrap());
        assert_eq!(got, [".", "a.yaml", "logo.png", "run.sh"]);
    }

    #[test]
    fn long_names_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let long = "n".repeat(120);
        fs::write(dir.path().join(&long), b"long").unwrap();
        let entries = read_back(&archive(dir.path(), None));
        assert_eq!(entries[1].name, long);
        assert_eq!(entries[1].data, b"long");
    }

    #[test]
    fn archive_dir_is_atomic_and_reports_digest_and_size() {
        let src = tempfile::tempdir().unwrap();
        let store = tempfile::tempdir().unwrap();
        tree(src.path());
        let dest = store.path().join("sha256:abc.tar.gz");
        let m = matcher_for(src.path(), None, None).unwrap();
        let stored = archive_dir(src.path(), &m, &dest, DigestAlgorithm::Sha256, None).unwrap();
        let bytes = fs::read(&dest).unwrap();
        assert_eq!(stored.size, bytes.len() as u64);
        let mut h = DigestAlgorithm::Sha256.hasher();
        h.update(&bytes);
        assert_eq!(stored.digest, h.finalize());
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(store.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn archive_dir_checks_its_source() {
        let store = tempfile::tempdir().unwrap();
        let dest = store.path().join("x.tar.gz");
        let m = IgnoreMatcher::default();
        let missing = archive_dir(
            &store.path().join("nope"),
            &m,
            &dest,
            DigestAlgorithm::Sha256,
            None,
        );
        assert!(matches!(missing, Err(Error::Stat { .. })), "{missing:?}");
        fs::write(store.path().join("file"), b"").unwrap();
        let not_dir = archive_dir(
            &store.path().join("file"),
            &m,
            &dest,
            DigestAlgorithm::Sha256,
            None,
        );
        assert!(
            matches!(not_dir, Err(Error::NotADirectory { .. })),
            "{not_dir:?}"
        );
        assert!(!dest.exists());
    }

    #[test]
    fn copy_into_failing_reader_leaves_nothing() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("digest mismatch"))
            }
        }
        let store = tempfile::tempdir().unwrap();
        let dest = store.path().join("x.tar.gz");
        let err = copy_into(Failing, &dest, DigestAlgorithm::Sha256).unwrap_err();
        assert!(matches!(err, Error::Copy { .. }));
        assert_eq!(fs::read_dir(store.path()).unwrap().count(), 0);
    }

    #[test]
    fn staged_copies_are_bounded_and_invisible_until_committed() {
        let store = tempfile::tempdir().unwrap();
        let dest = store.path().join("sha256:abc.tar.gz");
        let blob = vec![7u8; 300_000];
        // The streamed count is checked whatever a descriptor announced.
        let e = stage_copy(
            &blob[..],
            &dest,
            DigestAlgorithm::Sha256,
            Some(299_999),
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer of 300000 bytes is bigger than max artifact size of 299999 bytes"
        );
        assert_eq!(fs::read_dir(store.path()).unwrap().count(), 0);

        let past = Deadline::new(
            std::time::Instant::now() - std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(1),
        );
        let e =
            stage_copy(&blob[..], &dest, DigestAlgorithm::Sha256, None, Some(&past)).unwrap_err();
        assert!(matches!(e, Error::DeadlineExceeded { .. }), "{e:?}");
        assert_eq!(fs::read_dir(store.path()).unwrap().count(), 0);

        let staged = stage_copy(
            &blob[..],
            &dest,
            DigestAlgorithm::Sha256,
            Some(300_000),
            None,
        )
        .unwrap();
        assert!(!dest.exists(), "not visible before the commit");
        let names: Vec<String> = fs::read_dir(store.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1);
        assert!(
            names[0].starts_with(".sha256:abc.tar.gz.") && names[0].ends_with(".tmp"),
            "{names:?}"
        );
        let stored = staged.commit().unwrap();
        assert_eq!(stored.size, 300_000);
        assert_eq!(fs::read(&dest).unwrap(), blob);
        assert_eq!(fs::read_dir(store.path()).unwrap().count(), 1);

        // Dropped instead of committed: nothing left.
        let other = store.path().join("sha256:def.tar.gz");
        drop(stage_copy(&blob[..], &other, DigestAlgorithm::Sha256, None, None).unwrap());
        assert_eq!(fs::read_dir(store.path()).unwrap().count(), 1);
    }

    #[test]
    fn copy_into_digest_equals_the_blob_digest_for_every_algorithm() {
        let store = tempfile::tempdir().unwrap();
        let blob: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for algo in DigestAlgorithm::ALL {
            let dest = store.path().join(format!("{algo}.tgz"));
            let stored = copy_into(&blob[..], &dest, algo).unwrap();
            let mut h = algo.hasher();
            h.update(&blob);
            assert_eq!(stored.digest, h.finalize());
            assert_eq!(stored.size, blob.len() as u64);
            assert_eq!(fs::read(&dest).unwrap(), blob);
        }
    }
}
