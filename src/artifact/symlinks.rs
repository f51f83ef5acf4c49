//! `--resolve-symlinks` (flux 2.9's, on `push` and `build artifact`): the tree is copied into a
//! temporary directory with every symlink replaced by what it points to, and the artifact is
//! built from the copy, so trees made of links (Nix store outputs, for instance) can be
//! published.
//!
//! As flux does it: a symlinked file becomes a copy of its target with the target's mode, a
//! symlinked directory a copy of its contents (directories made with the target's mode, less the
//! umask); a link back to a directory being copied (a cycle) becomes an empty directory;
//! special files are skipped; a broken link fails the build. A single-file path becomes a copy
//! under its own base name. The copy's root is the temporary directory itself (mode 0700).

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The resolved copy of `path`: the path to build from and the directory to keep alive until
/// the build is done.
///
/// # Errors
///
/// An I/O error naming the link that could not be resolved or the file that could not be
/// copied.
pub fn resolve_symlinks(path: &Path) -> io::Result<(PathBuf, tempfile::TempDir)> {
    let abs = std::path::absolute(path)?;
    let meta = fs::metadata(&abs).map_err(|e| named("resolving symlink for", &abs, e))?;
    let tmp = tempfile::Builder::new()
        .prefix("ocisource-artifact-")
        .tempdir()?;
    if !meta.is_dir() {
        let real = fs::canonicalize(&abs).map_err(|e| named("resolving symlink for", &abs, e))?;
        let name = abs.file_name().unwrap_or(real.as_os_str());
        let dst = tmp.path().join(name);
        copy_file(&real, &dst)?;
        return Ok((dst, tmp));
    }
    let mut visited = HashSet::new();
    copy_dir(&abs, tmp.path(), &mut visited)?;
    Ok((tmp.path().to_path_buf(), tmp))
}

fn named(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

fn copy_dir(src: &Path, dst: &Path, visited: &mut HashSet<PathBuf>) -> io::Result<()> {
    let real = fs::canonicalize(src).map_err(|e| named("resolving symlink", src, e))?;
    if !visited.insert(real.clone()) {
        // A link back to a directory being copied: stop here, as flux does.
        return Ok(());
    }
    let result = copy_entries(src, dst, visited);
    visited.remove(&real);
    result
}

fn copy_entries(src: &Path, dst: &Path, visited: &mut HashSet<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let src_path = entry.path();
        let dst_path = dst.join(entry.file_name());
        let real =
            fs::canonicalize(&src_path).map_err(|e| named("resolving symlink", &src_path, e))?;
        let meta = fs::metadata(&real).map_err(|e| named("stat resolved path", &real, e))?;
        if meta.is_dir() {
            DirBuilder::new()
                .recursive(true)
                .mode(meta.permissions().mode() & 0o7777)
                .create(&dst_path)?;
            copy_dir(&real, &dst_path, visited)?;
        } else if meta.is_file() {
            copy_file(&real, &dst_path)?;
        }
    }
    Ok(())
}

fn copy_file(src: &Path, dst: &Path) -> io::Result<()> {
    let mode = fs::metadata(src)?.permissions().mode() & 0o7777;
    let mut input = File::open(src)?;
    if let Some(parent) = dst.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
    }
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(dst)?;
    io::copy(&mut input, &mut out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn names(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
                let p = e.unwrap_or_else(|e| panic!("{e}")).path();
                let m = p.symlink_metadata().unwrap_or_else(|e| panic!("{e}"));
                assert!(!m.is_symlink(), "{} is still a link", p.display());
                out.push(p.strip_prefix(root).unwrap_or(&p).display().to_string());
                if m.is_dir() {
                    stack.push(p);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn links_become_copies_and_cycles_stop() {
        let store = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        fs::create_dir(store.path().join("lib")).unwrap_or_else(|e| panic!("{e}"));
        fs::write(store.path().join("lib/a.yaml"), "a").unwrap_or_else(|e| panic!("{e}"));
        fs::write(store.path().join("run.sh"), "x").unwrap_or_else(|e| panic!("{e}"));
        fs::set_permissions(
            store.path().join("run.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let tree = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let t = tree.path();
        symlink(store.path().join("lib"), t.join("lib")).unwrap_or_else(|e| panic!("{e}"));
        symlink(store.path().join("run.sh"), t.join("run.sh")).unwrap_or_else(|e| panic!("{e}"));
        fs::create_dir(t.join("sub")).unwrap_or_else(|e| panic!("{e}"));
        symlink(t, t.join("sub/loop")).unwrap_or_else(|e| panic!("{e}"));

        let (root, _keep) = resolve_symlinks(t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            names(&root),
            ["lib", "lib/a.yaml", "run.sh", "sub", "sub/loop"]
        );
        let mode = fs::metadata(root.join("run.sh"))
            .unwrap_or_else(|e| panic!("{e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "the target's mode");

        // A single linked file keeps the link's name; a broken link fails.
        let (file, _keep) = resolve_symlinks(&t.join("run.sh")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.file_name().and_then(|n| n.to_str()), Some("run.sh"));
        assert_eq!(fs::read_to_string(&file).unwrap_or_default(), "x");
        symlink(t.join("gone"), t.join("broken")).unwrap_or_else(|e| panic!("{e}"));
        let err = resolve_symlinks(t)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("resolving symlink "), "{err}");
    }
}
