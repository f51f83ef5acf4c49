//! The layer tarball of `flux push artifact` (fluxcd/pkg `oci/build.go`), tar bytes identical
//! to the Go implementation's.
//!
//! # Format
//!
//! The path is walked like Go's `filepath.Walk`: the root first, then each directory's entries
//! in byte order of their names, depth first, without following symlinks. Only regular files
//! and directories are archived (symlinks, sockets and devices are skipped). A directory input
//! yields a `.` root entry and names relative to it with `/` separators and no trailing slash;
//! a single-file input is one entry under its base name. Entries matching the ignore patterns
//! (gitignore syntax, the `--ignore-paths` values, later patterns win) are left out, but an
//! excluded directory is still walked, as Flux does, so a `!` pattern can bring a descendant
//! back. The root is never excluded.
//!
//! Headers are what Go's `archive/tar` writes for `tar.FileInfoHeader` with uid/gid 0, empty
//! user/group names and zero times: USTAR (`ustar\0` `00`) with the file's permission bits
//! plus setuid/setgid/sticky as its mode, a long ASCII name split into prefix and name at a
//! `/` when it fits, and otherwise (non-ASCII names, unsplittable long names, files of 8 GiB or
//! more) a PAX extended header (`<dir>/PaxHeaders.0/<file>`) carrying `path` and/or `size`
//! before a USTAR-magic header holding the ASCII-only, truncated name. Numbers are zero-padded
//! octal with a NUL, the checksum six digits, a NUL and a space. The archive ends with two zero
//! blocks and no further padding. Identical trees therefore give the tar bytes (and `diff_id`)
//! that `flux build artifact` gives.
//!
//! The gzip stream has Go's header (no name, zero mtime, XFL 0, OS 255) and the default level,
//! but its deflate bytes come from zlib-rs, not Go's `compress/flate`: the compressed bytes and
//! so the layer digest differ from flux's for the same tree.
//!
//! # Differences from Flux
//!
//! A root path that is a symlink is followed (Flux walks nothing and pushes an empty tarball),
//! and a root that is neither a directory nor a regular file is refused.

use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use sha2::Digest as _;

use crate::registry::Digest;
use crate::storage::archive::{CopyError, WalkItem, copy_exact, walk_children};
use crate::storage::ignore::{IgnoreMatcher, read_patterns};

const BLOCK: usize = 512;
const NAME_SIZE: usize = 100;
const PREFIX_SIZE: usize = 155;
const BUF_SIZE: usize = 128 << 10;
/// Files of this size or more do not fit USTAR's 11 octal digits.
const MAX_USTAR_SIZE: u64 = 1 << 33;

/// What building the layer tarball can fail on.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The path does not exist or cannot be read.
    #[error("invalid path '{}', must point to an existing directory or file", path.display())]
    InvalidPath {
        /// The path given.
        path: PathBuf,
        /// Why it cannot be used.
        #[source]
        source: io::Error,
    },
    /// The path is neither a directory nor a regular file.
    #[error("invalid path '{}', must point to an existing directory or file", path.display())]
    UnsupportedPath {
        /// The path given.
        path: PathBuf,
    },
    /// A directory could not be listed or an entry could not be inspected.
    #[error("failed to walk {}", path.display())]
    Walk {
        /// The directory or entry.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file could not be read, or it changed size while being archived.
    #[error("failed to read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The tarball could not be written.
    #[error("failed to write the layer tarball")]
    Write {
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The layer written by [`build_layer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltLayer {
    /// SHA-256 of the gzip bytes: the layer's digest in the manifest.
    pub digest: Digest,
    /// Size of the gzip bytes.
    pub size: u64,
    /// SHA-256 of the uncompressed tar: the `diff_id` in the config.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
}

/// The ignore matcher for `--ignore-paths` values: each value's lines are gitignore patterns
/// (`#` comments and blank lines skipped), later patterns win, nothing else is implied (the VCS
/// and extension excludes are the flag's default value, not a rule).
pub fn ignore_matcher(ignore_paths: &[String]) -> IgnoreMatcher {
    IgnoreMatcher::new(read_patterns(&ignore_paths.join("\n"), &[]))
}

/// Writes the gzipped layer tarball of `path` (a directory or a single file) to `out`.
///
/// # Errors
///
/// [`BuildError`] naming the path that could not be read or the write that failed.
pub fn build_layer<W: Write>(
    path: &Path,
    ignore: &IgnoreMatcher,
    out: W,
) -> Result<(W, BuiltLayer), BuildError> {
    let gz_out = HashWriter::new(out);
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(gz_out, Compression::default());
    let tar_out = HashWriter::new(gz);
    let mut tar = BufWriter::with_capacity(BUF_SIZE, tar_out);
    write_tar(path, ignore, &mut tar)?;
    let write_err = |source| BuildError::Write { source };
    let tar_out = tar.into_inner().map_err(|e| write_err(e.into_error()))?;
    let (gz, diff_id, tar_size) = tar_out.finish();
    let gz_out = gz.finish().map_err(write_err)?;
    let (out, digest, size) = gz_out.finish();
    Ok((
        out,
        BuiltLayer {
            digest,
            size,
            diff_id,
            tar_size,
        },
    ))
}

/// Writes the (uncompressed) tarball of `path` to `out`.
///
/// # Errors
///
/// As [`build_layer`].
pub fn write_tar<W: Write>(
    path: &Path,
    ignore: &IgnoreMatcher,
    out: &mut W,
) -> Result<(), BuildError> {
    // The root is followed if it is a symlink (see the module docs).
    let root_meta = fs::metadata(path).map_err(|source| BuildError::InvalidPath {
        path: path.to_path_buf(),
        source,
    })?;
    let write_err = |source| BuildError::Write { source };
    if root_meta.is_file() {
        let name = path
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .ok_or_else(|| BuildError::UnsupportedPath {
                path: path.to_path_buf(),
            })?;
        write_file(path, &name, &root_meta, out)?;
    } else if root_meta.is_dir() {
        let has_inclusion = ignore.has_inclusion();
        let mut buf = vec![0u8; BUF_SIZE];
        let mut stack = vec![WalkItem {
            path: path.to_path_buf(),
            name: b".".to_vec(),
            segments: Vec::new(),
            meta: root_meta,
        }];
        while let Some(item) = stack.pop() {
            let is_dir = item.meta.is_dir();
            let segments: Vec<&str> = item.segments.iter().map(String::as_str).collect();
            let excluded = ignore.is_excluded(&segments, is_dir);
            if !excluded {
                if is_dir {
                    write_header(out, &item.name, TYPE_DIR, mode_of(&item.meta), 0)
                        .map_err(write_err)?;
                } else {
                    write_file_with(&item.path, &item.name, &item.meta, out, &mut buf)?;
                }
            }
            // Flux walks into excluded directories (a later `!` pattern may re-include a
            // descendant); without `!` patterns nothing below can come back.
            if is_dir && (!excluded || has_inclusion) {
                walk_children(&item, &mut stack)
                    .map_err(|(path, source)| BuildError::Walk { path, source })?;
            }
        }
    } else {
        return Err(BuildError::UnsupportedPath {
            path: path.to_path_buf(),
        });
    }
    out.write_all(&[0u8; 2 * BLOCK]).map_err(write_err)
}

/// Permission bits plus setuid, setgid and sticky, as `tar.FileInfoHeader` keeps them.
fn mode_of(meta: &Metadata) -> u64 {
    u64::from(meta.permissions().mode() & 0o7777)
}

fn write_file<W: Write>(
    path: &Path,
    name: &[u8],
    meta: &Metadata,
    out: &mut W,
) -> Result<(), BuildError> {
    let mut buf = vec![0u8; BUF_SIZE];
    write_file_with(path, name, meta, out, &mut buf)
}

fn write_file_with<W: Write>(
    path: &Path,
    name: &[u8],
    meta: &Metadata,
    out: &mut W,
    buf: &mut [u8],
) -> Result<(), BuildError> {
    let size = meta.len();
    let read_err = |source| BuildError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Open before writing the header, so an unreadable file fails cleanly.
    let mut file = File::open(path).map_err(read_err)?;
    write_header(out, name, TYPE_REG, mode_of(meta), size)
        .map_err(|source| BuildError::Write { source })?;
    copy_exact(&mut file, size, out, buf).map_err(|e| match e {
        CopyError::Read(e) => read_err(e),
        CopyError::Write(source) => BuildError::Write { source },
    })?;
    // Go's tar writer refuses to write more than the header's size ("write too long").
    let mut probe = [0u8; 1];
    loop {
        match file.read(&mut probe) {
            Ok(0) => break,
            Ok(_) => {
                return Err(read_err(io::Error::other(
                    "the file grew while being archived",
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        }
    }
    write_padding(out, size).map_err(|source| BuildError::Write { source })
}

// ---------------------------------------------------------------------------------------------
// Go's archive/tar header encoding, for the headers `build` produces.

const TYPE_REG: u8 = b'0';
const TYPE_DIR: u8 = b'5';
const TYPE_PAX: u8 = b'x';

type Block = [u8; BLOCK];

// Field offsets and sizes of the V7/USTAR header.
const F_NAME: (usize, usize) = (0, 100);
const F_MODE: (usize, usize) = (100, 8);
const F_UID: (usize, usize) = (108, 8);
const F_GID: (usize, usize) = (116, 8);
const F_SIZE: (usize, usize) = (124, 12);
const F_MTIME: (usize, usize) = (136, 12);
const F_CHKSUM: (usize, usize) = (148, 8);
const F_TYPE: usize = 156;
const F_MAGIC: (usize, usize) = (257, 6);
const F_VERSION: (usize, usize) = (263, 2);
const F_DEVMAJOR: (usize, usize) = (329, 8);
const F_DEVMINOR: (usize, usize) = (337, 8);
const F_PREFIX: (usize, usize) = (345, 155);

fn field(blk: &mut Block, (off, len): (usize, usize)) -> &mut [u8] {
    blk.get_mut(off..off + len).unwrap_or_default()
}

/// Go's `formatter.formatString`: copy (truncating), NUL-terminate when shorter, and never
/// leave a truncated name ending in `/`.
fn format_string(b: &mut [u8], s: &[u8]) {
    let n = s.len().min(b.len());
    if let (Some(dst), Some(src)) = (b.get_mut(..n), s.get(..n)) {
        dst.copy_from_slice(src);
    }
    if let Some(nul) = b.get_mut(s.len()) {
        *nul = 0;
    }
    if s.len() > b.len() && b.last() == Some(&b'/') {
        let head = s.get(..b.len() - 1).unwrap_or_default();
        let kept = head.iter().rposition(|&c| c != b'/').map_or(0, |i| i + 1);
        if let Some(nul) = b.get_mut(kept) {
            *nul = 0;
        }
    }
}

/// Whether `x` fits in an octal field of `len` bytes (digits plus a NUL).
fn fits_in_octal(len: usize, x: u64) -> bool {
    len >= 22 || x < 1u64 << (3 * (len as u64 - 1))
}

/// Go's `formatter.formatOctal`: zero-padded octal leaving room for a NUL; 0 when it does not
/// fit (the caller has arranged a PAX record for that case).
fn format_octal(b: &mut [u8], x: u64) {
    let x = if fits_in_octal(b.len(), x) { x } else { 0 };
    let s = format!("{x:o}");
    let width = b.len().saturating_sub(1);
    let padded = format!("{s:0>width$}");
    format_string(b, padded.as_bytes());
}

fn is_ascii(s: &[u8]) -> bool {
    s.iter().all(|&c| c < 0x80)
}

/// Go's `toASCII`: drops every non-ASCII (and NUL) byte.
fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|&c| c != 0 && c < 0x80).collect()
}

/// Go's `splitUSTARPath`: a long ASCII name split at a `/` into a prefix of at most 155 and a
/// name of at most 100 bytes.
fn split_ustar_path(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length = name.len();
    if length <= NAME_SIZE || !is_ascii(name) {
        return None;
    } else if length > PREFIX_SIZE + 1 {
        length = PREFIX_SIZE + 1;
    } else if name.get(length - 1) == Some(&b'/') {
        length -= 1;
    }
    let i = name.get(..length)?.iter().rposition(|&c| c == b'/')?;
    let nlen = name.len() - i - 1;
    if i == 0 || nlen > NAME_SIZE || nlen == 0 || i > PREFIX_SIZE {
        return None;
    }
    Some((name.get(..i)?, name.get(i + 1..)?))
}

/// Go's `templateV7Plus` for our headers: uid/gid 0, empty user/group, zero times (written as
/// the Unix epoch), device numbers 0.
fn template(name: &[u8], typeflag: u8, mode: u64, size: u64) -> Block {
    let mut blk = [0u8; BLOCK];
    blk[F_TYPE] = typeflag;
    format_string(field(&mut blk, F_NAME), name);
    format_octal(field(&mut blk, F_MODE), mode);
    format_octal(field(&mut blk, F_UID), 0);
    format_octal(field(&mut blk, F_GID), 0);
    format_octal(field(&mut blk, F_SIZE), size);
    format_octal(field(&mut blk, F_MTIME), 0);
    format_octal(field(&mut blk, F_DEVMAJOR), 0);
    format_octal(field(&mut blk, F_DEVMINOR), 0);
    blk
}

/// Go's `block.SetFormat` for USTAR and PAX: the magic, then the checksum (six octal digits,
/// NUL, space), computed with the checksum field as spaces.
fn finish_block(blk: &mut Block) {
    field(blk, F_MAGIC).copy_from_slice(b"ustar\0");
    field(blk, F_VERSION).copy_from_slice(b"00");
    field(blk, F_CHKSUM).copy_from_slice(b"        ");
    let sum: u64 = blk.iter().map(|&b| u64::from(b)).sum();
    let chk = field(blk, F_CHKSUM);
    format_octal(chk.get_mut(..7).unwrap_or_default(), sum);
    if let Some(last) = chk.get_mut(7) {
        *last = b' ';
    }
}

/// A PAX record, `"<len> <key>=<value>\n"` with the length counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = key.len() + value.len() + 3;
    let mut size = body_len + body_len.to_string().len();
    if (size.to_string().len() + body_len) != size {
        size = size.to_string().len() + body_len;
    }
    let mut rec = format!("{size} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

/// Writes the header(s) of one entry as Go's `tar.Writer.WriteHeader` would.
fn write_header<W: Write>(
    out: &mut W,
    name: &[u8],
    typeflag: u8,
    mode: u64,
    size: u64,
) -> io::Result<()> {
    let size_fits = size < MAX_USTAR_SIZE;
    let name_ok = is_ascii(name) && name.len() <= NAME_SIZE;
    let split = if name_ok {
        None
    } else {
        split_ustar_path(name)
    };
    if size_fits && (name_ok || split.is_some()) {
        // USTAR.
        let (prefix, short) = split.unwrap_or((&[], name));
        let mut blk = template(short, typeflag, mode, size);
        format_string(field(&mut blk, F_PREFIX), prefix);
        finish_block(&mut blk);
        return out.write_all(&blk);
    }
    // PAX: records sorted by key ("path" < "size").
    let mut records = Vec::new();
    if !(is_ascii(name) && name.len() <= NAME_SIZE) {
        records.extend(pax_record("path", name));
    }
    if !size_fits {
        records.extend(pax_record("size", size.to_string().as_bytes()));
    }
    let (dir, file) = match name.iter().rposition(|&c| c == b'/') {
        Some(i) => (
            name.get(..i).unwrap_or_default(),
            name.get(i + 1..).unwrap_or_default(),
        ),
        None => (&[][..], name),
    };
    let mut ext_name = Vec::new();
    if !dir.is_empty() {
        ext_name.extend_from_slice(dir);
        ext_name.push(b'/');
    }
    ext_name.extend_from_slice(b"PaxHeaders.0/");
    ext_name.extend_from_slice(file);
    let mut ext_name = to_ascii(&ext_name);
    ext_name.truncate(NAME_SIZE);
    while ext_name.last() == Some(&b'/') {
        ext_name.pop();
    }
    // Go's `writeRawFile`: only name, mode, uid, gid, size and mtime are formatted.
    let mut ext = [0u8; BLOCK];
    ext[F_TYPE] = TYPE_PAX;
    format_string(field(&mut ext, F_NAME), &ext_name);
    format_octal(field(&mut ext, F_MODE), 0);
    format_octal(field(&mut ext, F_UID), 0);
    format_octal(field(&mut ext, F_GID), 0);
    format_octal(field(&mut ext, F_SIZE), records.len() as u64);
    format_octal(field(&mut ext, F_MTIME), 0);
    finish_block(&mut ext);
    out.write_all(&ext)?;
    out.write_all(&records)?;
    write_padding(out, records.len() as u64)?;

    let mut blk = template(&to_ascii(name), typeflag, mode, size);
    finish_block(&mut blk);
    out.write_all(&blk)
}

fn write_padding<W: Write>(out: &mut W, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem == 0 {
        return Ok(());
    }
    out.write_all([0u8; BLOCK].get(..BLOCK - rem).unwrap_or_default())
}

/// A writer that hashes (SHA-256) and counts what passes through.
struct HashWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    fn finish(self) -> (W, Digest, u64) {
        let digest = Digest::from_sha256(self.hasher.finalize().into());
        (self.inner, digest, self.count)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or_default();
        self.hasher.update(written);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(root: &Path, rel: &str, content: &str, mode: u32) {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        fs::write(&p, content).unwrap_or_else(|e| panic!("{e}"));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("{e}"));
    }

    fn dir(root: &Path, rel: &str, mode: u32) {
        let p = root.join(rel);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("{e}"));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("{e}"));
    }

    /// A tree exercising every header case; `flux build artifact` (v2.6.4) of it has a known
    /// tar digest.
    fn fixture() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let r = t.path();
        write(r, "a.txt", "hello\n", 0o644);
        write(r, "bin.sh", "#!/bin/sh\n", 0o755);
        write(r, "suid", "s", 0o4755);
        write(r, ".git/config", "x", 0o644);
        write(r, ".gitignore", "x", 0o644);
        write(r, "img.png", "p", 0o644);
        write(r, "keep/n.yaml", "k: v\n", 0o600);
        dir(r, "keep", 0o700);
        dir(r, "empty", 0o755);
        symlink("a.txt", r.join("link")).unwrap_or_else(|e| panic!("{e}"));
        symlink("keep", r.join("dirlink")).unwrap_or_else(|e| panic!("{e}"));
        write(r, "ünï.txt", "u", 0o644);
        let long = format!("{}/{}/f.txt", "d".repeat(60), "e".repeat(60));
        write(r, &long, "long\n", 0o644);
        dir(r, &"d".repeat(60), 0o755);
        dir(r, &format!("{}/{}", "d".repeat(60), "e".repeat(60)), 0o755);
        write(
            r,
            &format!("{}.txt", "g".repeat(120)),
            &"z".repeat(1000),
            0o640,
        );
        dir(r, ".git", 0o755);
        fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap_or_else(|e| panic!("{e}"));
        t
    }

    fn tar_of(path: &Path, ignore_paths: &[&str]) -> Vec<u8> {
        let patterns: Vec<String> = ignore_paths.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        write_tar(path, &ignore_matcher(&patterns), &mut out).unwrap_or_else(|e| panic!("{e}"));
        out
    }

    fn sha256_hex(data: &[u8]) -> String {
        Digest::sha256_of(data).hex().to_string()
    }

    /// `(name, mode, size)` of each entry, read back with the tar crate (PAX and USTAR prefix
    /// resolved).
    fn entries(tar_bytes: &[u8]) -> Vec<(String, u32, u64)> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut out = Vec::new();
        for e in archive.entries().unwrap_or_else(|e| panic!("{e}")) {
            let e = e.unwrap_or_else(|e| panic!("{e}"));
            let name = e
                .path()
                .unwrap_or_else(|e| panic!("{e}"))
                .display()
                .to_string();
            let h = e.header();
            out.push((
                name,
                h.mode().unwrap_or_else(|e| panic!("{e}")),
                h.size().unwrap_or_else(|e| panic!("{e}")),
            ));
        }
        out
    }

    // The goldens are the SHA-256 of the tar inside `flux build artifact` v2.6.4's output for
    // the same fixture (with the same --ignore-paths).
    #[test]
    fn the_tar_bytes_equal_flux_build_with_the_default_ignore_list() {
        let t = fixture();
        // `--ignore-paths`'s default, one pattern per comma.
        let defaults: Vec<&str> = crate::artifact::DEFAULT_IGNORE_PATHS.split(',').collect();
        assert_eq!(defaults.len(), 12);
        let tar_bytes = tar_of(t.path(), &defaults);
        assert_eq!(
            sha256_hex(&tar_bytes),
            "58d3212949b08bd707b31aad13b794ba30ee956fe16f1a1d5ab4d2d65006adeb"
        );
        let long = format!("{}/{}", "d".repeat(60), "e".repeat(60));
        let g = format!("{}.txt", "g".repeat(120));
        assert_eq!(
            entries(&tar_bytes),
            vec![
                (".".to_string(), 0o755, 0),
                ("a.txt".into(), 0o644, 6),
                ("bin.sh".into(), 0o755, 10),
                ("d".repeat(60), 0o755, 0),
                (long.clone(), 0o755, 0),
                (format!("{long}/f.txt"), 0o644, 5),
                ("empty".into(), 0o755, 0),
                (g, 0o640, 1000),
                ("keep".into(), 0o700, 0),
                ("keep/n.yaml".into(), 0o600, 5),
                ("suid".into(), 0o4755, 1),
                ("ünï.txt".into(), 0o644, 1),
            ]
        );
    }

    #[test]
    fn an_empty_ignore_list_keeps_everything_but_symlinks() {
        let t = fixture();
        let tar_bytes = tar_of(t.path(), &[]);
        assert_eq!(
            sha256_hex(&tar_bytes),
            "a2579c051417d3735c707ac7d147db8c298bfe7c65b7f6afdc434ac4c58bc7e8"
        );
        let names: Vec<String> = entries(&tar_bytes).into_iter().map(|e| e.0).collect();
        for kept in [".git", ".git/config", ".gitignore", "img.png"] {
            assert!(
                names.contains(&kept.to_string()),
                "{kept} missing: {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n.contains("link")), "{names:?}");
    }

    #[test]
    fn negations_bring_back_files_below_excluded_directories() {
        let t = fixture();
        let tar_bytes = tar_of(t.path(), &["*.txt", "keep/", "!keep/n.yaml", "!ünï.txt"]);
        assert_eq!(
            sha256_hex(&tar_bytes),
            "7bbf76d9c2a546beb25f904c17995c979eb9166f03bcd6ee8f279f9d57104215"
        );
        let names: Vec<String> = entries(&tar_bytes).into_iter().map(|e| e.0).collect();
        // `keep` itself stays excluded, its re-included child is archived alone (as in Flux).
        assert!(names.contains(&"keep/n.yaml".to_string()));
        assert!(!names.contains(&"keep".to_string()));
        assert!(!names.contains(&"a.txt".to_string()));
        assert!(names.contains(&"ünï.txt".to_string()));
    }

    #[test]
    fn a_single_file_is_stored_under_its_base_name_with_its_mode_and_is_never_ignored() {
        let t = fixture();
        let tar_bytes = tar_of(&t.path().join("suid"), &["suid", "*"]);
        assert_eq!(
            sha256_hex(&tar_bytes),
            "af980cf00821b319c0bbc0345baf032fa95f51c018b96c2538e2bdd522ea73aa"
        );
        assert_eq!(entries(&tar_bytes), vec![("suid".to_string(), 0o4755, 1)]);
    }

    #[test]
    fn a_symlinked_root_is_followed() {
        let t = fixture();
        let link = t.path().join("dirlink");
        let names: Vec<String> = entries(&tar_of(&link, &[]))
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, vec![".".to_string(), "n.yaml".to_string()]);
    }

    #[test]
    fn missing_paths_and_special_files_are_refused() {
        let t = fixture();
        let mut out = Vec::new();
        let m = ignore_matcher(&[]);
        assert!(matches!(
            write_tar(&t.path().join("nope"), &m, &mut out),
            Err(BuildError::InvalidPath { .. })
        ));
        assert!(matches!(
            write_tar(Path::new("/dev/null"), &m, &mut out),
            Err(BuildError::UnsupportedPath { .. })
        ));
    }

    #[test]
    fn headers_use_gos_ustar_layout() {
        let t = fixture();
        let tar_bytes = tar_of(&t.path().join("a.txt"), &[]);
        let h = tar_bytes.get(..BLOCK).unwrap_or_default();
        assert_eq!(h.get(0..6), Some(&b"a.txt\0"[..]));
        assert_eq!(h.get(100..108), Some(&b"0000644\0"[..]));
        assert_eq!(h.get(108..116), Some(&b"0000000\0"[..]));
        assert_eq!(h.get(124..136), Some(&b"00000000006\0"[..]));
        assert_eq!(h.get(136..148), Some(&b"00000000000\0"[..]));
        assert_eq!(
            h.get(154..156),
            Some(&b"\0 "[..]),
            "checksum: 6 digits, NUL, space"
        );
        assert_eq!(h.get(156), Some(&b'0'));
        assert_eq!(h.get(257..265), Some(&b"ustar\x0000"[..]));
        assert_eq!(
            h.get(265..329),
            Some(&[0u8; 64][..]),
            "empty user and group names"
        );
        assert_eq!(h.get(329..345), Some(&b"0000000\x000000000\0"[..]));
        // Header, one data block, two zero blocks, no record padding.
        assert_eq!(tar_bytes.len(), 4 * BLOCK);
    }

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("path", b"x"), b"9 path=x\n");
        // 3 + 4 + 92 = 99 -> with "99 " it would be 101: the length needs 3 digits.
        let v = vec![b'a'; 92];
        let rec = pax_record("path", &v);
        assert_eq!(rec.len(), 102);
        assert!(rec.starts_with(b"102 path="));
        let v = vec![b'a'; 91];
        let rec = pax_record("path", &v);
        assert_eq!(rec.len(), 101);
        assert!(rec.starts_with(b"101 path="));
        let v = vec![b'a'; 90];
        assert!(pax_record("path", &v).starts_with(b"99 path="));
    }

    #[test]
    fn huge_files_get_a_pax_size_record() {
        let mut out = Vec::new();
        write_header(&mut out, b"big.bin", TYPE_REG, 0o644, MAX_USTAR_SIZE)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.get(0..21), Some(&b"PaxHeaders.0/big.bin\0"[..]));
        let rec = format!("19 size={MAX_USTAR_SIZE}\n");
        assert_eq!(out.get(BLOCK..BLOCK + rec.len()), Some(rec.as_bytes()));
        let main = out.get(2 * BLOCK..3 * BLOCK).unwrap_or_default();
        assert_eq!(main.get(0..8), Some(&b"big.bin\0"[..]));
        assert_eq!(main.get(124..136), Some(&b"00000000000\0"[..]));
    }

    #[test]
    fn long_names_split_at_a_slash_or_fall_back_to_pax() {
        let name = format!("{}/{}", "p".repeat(150), "n".repeat(99));
        assert_eq!(
            split_ustar_path(name.as_bytes()),
            Some(("p".repeat(150).as_bytes(), "n".repeat(99).as_bytes()))
        );
        assert_eq!(split_ustar_path("n".repeat(101).as_bytes()), None);
        assert_eq!(
            split_ustar_path(format!("{}/x", "p".repeat(156)).as_bytes()),
            None
        );
        assert_eq!(split_ustar_path(b"short/name"), None);
    }

    #[test]
    fn the_gzip_header_is_gos() {
        let t = fixture();
        let (out, layer) = build_layer(&t.path().join("a.txt"), &ignore_matcher(&[]), Vec::new())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out.get(..10),
            Some(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff][..])
        );
        assert_eq!(layer.size, out.len() as u64);
        assert_eq!(layer.digest, Digest::sha256_of(&out));
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut tar_bytes)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(layer.diff_id, Digest::sha256_of(&tar_bytes));
        assert_eq!(layer.tar_size, tar_bytes.len() as u64);
    }
}
