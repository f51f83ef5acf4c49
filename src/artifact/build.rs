//! `ocisource build artifact`: the tarball `push artifact` would push, written to a local file
//! (`flux build artifact`): the same walk, ignore rules and headers (see
//! [`tarball`](mod@super::tarball)), so `tar -tzvf` shows what a push would publish.
//!
//! The file is written to a temporary file beside `--output`, made mode 0640 and renamed over
//! it, as flux does. A `--path` of `-` packs stdin as a `<random>.yaml` file.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::Error;
use super::flags::IgnoreArgs;
use super::tarball::{self, BuildError, BuiltLayer};

/// `ocisource build …` subcommands.
#[derive(Subcommand, Clone, Debug)]
pub enum BuildCommand {
    /// Build a directory or a single file into the tarball `push artifact` would push.
    #[command(after_help = super::examples::BUILD)]
    Artifact(BuildArgs),
}

/// The flags of `ocisource build artifact`, named as `flux build artifact`'s.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct BuildArgs {
    /// The directory or file to pack; `-` reads a file from stdin.
    #[arg(long, short = 'p', default_value = "", hide_default_value = true)]
    pub path: String,

    /// Where the artifact tgz file is written.
    #[arg(long, short = 'o', default_value = "artifact.tgz")]
    pub output: PathBuf,

    /// The ignore flags.
    #[command(flatten)]
    pub ignore: IgnoreArgs,

    /// Replace symlinks by copies of their targets before building (flux 2.9's).
    #[arg(long)]
    pub resolve_symlinks: bool,
}

impl BuildArgs {
    /// The flags for packing `path` into `output`, the ignore list at its default.
    pub fn new(path: &str, output: &Path) -> BuildArgs {
        BuildArgs {
            path: path.to_string(),
            output: output.to_path_buf(),
            ignore: IgnoreArgs::default(),
            resolve_symlinks: false,
        }
    }
}

/// Runs `ocisource build artifact`, reporting on stderr as flux does.
///
/// # Errors
///
/// As [`build_artifact`].
pub fn run(args: &BuildArgs) -> Result<(), Error> {
    build_artifact_with(args, |path| {
        eprintln!("► building artifact from {}", path.display());
    })?;
    eprintln!("✔ artifact created at {}", args.output.display());
    Ok(())
}

/// Writes the tarball of `args.path` to `args.output`.
///
/// # Errors
///
/// [`Error::InvalidPath`], [`Error::InvalidIgnorePaths`], [`Error::ReadStdin`],
/// [`Error::Build`] and [`Error::WriteArtifact`].
pub fn build_artifact(args: &BuildArgs) -> Result<BuiltLayer, Error> {
    build_artifact_with(args, |_| {})
}

fn build_artifact_with(args: &BuildArgs, started: impl FnOnce(&Path)) -> Result<BuiltLayer, Error> {
    if args.path.is_empty() {
        return Err(Error::InvalidPath {
            path: String::new(),
            source: None,
        });
    }
    let patterns = args.ignore.patterns()?;
    let source = source_path(&args.path, args.resolve_symlinks)?;
    let path = source.path.clone();
    started(&path);
    let layer = write_tarball(&path, &patterns, &args.output);
    drop(source);
    layer
}

/// The tree to pack and the temporary files it lives in (kept until the build is done).
pub(crate) struct Source {
    /// The directory or file to pack.
    pub path: PathBuf,
    _stdin: Option<tempfile::NamedTempFile>,
    _resolved: Option<tempfile::TempDir>,
}

/// The tree `--path` names: `-` is stdin saved to a temporary `<random>.yaml` file (trailing
/// CR/LF trimmed, as flux's `saveReaderToFile`); it must exist (Flux's text); with `resolve`,
/// the copy with symlinks resolved. Blocking.
pub(crate) fn source_path(path: &str, resolve: bool) -> Result<Source, Error> {
    let stdin = if path == "-" {
        Some(save_stdin().map_err(|source| Error::ReadStdin { source })?)
    } else {
        None
    };
    let path = stdin
        .as_ref()
        .map_or_else(|| PathBuf::from(path), |f| f.path().to_path_buf());
    if let Err(source) = std::fs::metadata(&path) {
        return Err(Error::InvalidPath {
            path: path.display().to_string(),
            source: Some(source),
        });
    }
    let resolved = if resolve {
        Some(
            super::symlinks::resolve_symlinks(&path)
                .map_err(|source| Error::ResolveSymlinks { source })?,
        )
    } else {
        None
    };
    let (path, resolved) = match resolved {
        Some((p, dir)) => (p, Some(dir)),
        None => (path, None),
    };
    Ok(Source {
        path,
        _stdin: stdin,
        _resolved: resolved,
    })
}

fn save_stdin() -> Result<tempfile::NamedTempFile, std::io::Error> {
    let mut data = Vec::new();
    std::io::stdin().lock().read_to_end(&mut data)?;
    while matches!(data.last(), Some(b'\r' | b'\n')) {
        data.pop();
    }
    let mut file = tempfile::Builder::new()
        .prefix("")
        .suffix(".yaml")
        .tempfile()?;
    file.write_all(&data)?;
    file.flush()?;
    Ok(file)
}

/// Builds the tarball of `path` into a temporary file beside `output`, then renames it there.
pub(crate) fn write_tarball(
    path: &Path,
    patterns: &[String],
    output: &Path,
) -> Result<BuiltLayer, Error> {
    let write_err = |source| Error::WriteArtifact {
        path: output.to_path_buf(),
        source,
    };
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file = tempfile::Builder::new()
        .prefix(".artifact-")
        .tempfile_in(dir)
        .map_err(write_err)?;
    let matcher = tarball::ignore_matcher(patterns);
    let out = std::io::BufWriter::new(file);
    let (out, layer) =
        tarball::build_layer(path, &matcher, out).map_err(|source| Error::Build {
            path: path.to_path_buf(),
            source,
        })?;
    let mut file = out.into_inner().map_err(|e| Error::Build {
        path: path.to_path_buf(),
        source: BuildError::Write {
            source: e.into_error(),
        },
    })?;
    file.flush().map_err(write_err)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o640))
        .map_err(write_err)?;
    file.persist(output).map_err(|e| write_err(e.error))?;
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn the_file_holds_the_tarball_push_builds() {
        let src = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(src.path().join("a.yaml"), "a: 1\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(src.path().join("logo.png"), "png").unwrap_or_else(|e| panic!("{e}"));
        let out_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let output = out_dir.path().join("artifact.tgz");
        let args = BuildArgs::new(&src.path().display().to_string(), &output);
        let layer = build_artifact(&args).unwrap_or_else(|e| panic!("{e}"));

        let bytes = std::fs::read(&output).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(layer.digest, crate::registry::Digest::sha256_of(&bytes));
        assert_eq!(layer.size, bytes.len() as u64);
        let mode = std::fs::metadata(&output)
            .unwrap_or_else(|e| panic!("{e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut tar_bytes)
            .unwrap_or_else(|e| panic!("{e}"));
        let patterns: Vec<String> = crate::artifact::DEFAULT_IGNORE_PATHS
            .split(',')
            .map(String::from)
            .collect();
        let mut expected = Vec::new();
        tarball::write_tar(
            src.path(),
            &tarball::ignore_matcher(&patterns),
            &mut expected,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tar_bytes, expected);
        // Nothing but the artifact is left in the output directory.
        let names: Vec<_> = std::fs::read_dir(out_dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|e| e.map(|e| e.file_name()).unwrap_or_default())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("artifact.tgz")]);
    }

    #[test]
    fn flux_texts_for_bad_paths() {
        let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let err = |path: &str| {
            build_artifact(&BuildArgs::new(path, &out.path().join("a.tgz")))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            err("/nonexistent/x"),
            "invalid path '/nonexistent/x', must point to an existing directory or file"
        );
        assert!(err("").starts_with("invalid path ''"));
    }
}
