//! `ocisource pull artifact`: the first layer of an artifact extracted into a directory, as
//! `flux pull artifact` does, with the controller's bounded extraction.
//!
//! The tag is resolved once and everything after reads by digest: the manifest is checked
//! against it and the layer against its descriptor while it streams. The layer must be a gzip
//! tarball (the gzip magic is sniffed); it is extracted by
//! [`storage::extract`](mod@crate::storage::extract) into a fresh directory inside `--output`,
//! bounded in bytes and entries (the controller's flags and defaults), symlinks skipped,
//! hard links written as empty files, names leaving the root refused. Only a complete, verified
//! extraction is then moved into `--output`, entry by entry: a directory merges into an existing
//! real directory, a file replaces an existing file, and an existing symlink is replaced, never
//! followed, so nothing is ever written outside `--output`.
//!
//! # Differences from `flux pull artifact`
//!
//! - Extraction is bounded (`--artifact-max-extract-size`, `--artifact-max-extract-entries`,
//!   `-1` disables a bound); flux extracts without limits.
//! - A failed pull leaves `--output` untouched; flux may leave a partial extraction.
//! - A layer that is not gzip is refused (`requires gzip-compressed body`); flux 2.6.4 fails
//!   too, trying to write it as a file at the directory's path (`open <dir>: is a directory`).
//! - An index resolves to its `linux/amd64` manifest, as the controller does.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::registry::{Digest, Repository};
use crate::storage::extract::{
    DEFAULT_MAX_ENTRIES, DEFAULT_MAX_SIZE, ExtractLimits, Extracted, extract,
};

use super::connect::RegistryArgs;
use super::image::{REVISION_ANNOTATION, SOURCE_ANNOTATION};
use super::progress::{CountingReader, Progress};
use super::reference::{OCI_PREFIX, redact_oci_url};
use super::{Error, blocking};

/// `ocisource pull …` subcommands.
#[derive(Subcommand, Clone, Debug)]
pub enum PullCommand {
    /// Pull an artifact and extract its first layer into a directory (as `flux pull
    /// artifact`).
    #[command(after_help = super::examples::PULL)]
    Artifact(PullArgs),
}

/// The flags of `ocisource pull artifact`, named as `flux pull artifact`'s.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct PullArgs {
    /// The artifact, `oci://<host>/<repository>[:<tag>|@<digest>]`.
    #[arg(value_name = "URL")]
    pub url: String,

    /// The existing directory the artifact content is extracted into.
    #[arg(long, short = 'o', default_value = "", hide_default_value = true)]
    pub output: String,

    /// Largest uncompressed size the layer may extract to, in bytes; -1 disables the limit.
    #[arg(long, default_value_t = DEFAULT_MAX_SIZE as i64, allow_negative_numbers = true)]
    pub artifact_max_extract_size: i64,

    /// Largest number of entries the layer may hold; -1 disables the limit.
    #[arg(long, default_value_t = DEFAULT_MAX_ENTRIES as i64, allow_negative_numbers = true)]
    pub artifact_max_extract_entries: i64,

    /// The registry flags.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl PullArgs {
    /// The flags for pulling `url` into `output`, everything else at its default.
    pub fn new(url: &str, output: &Path) -> PullArgs {
        PullArgs {
            url: url.to_string(),
            output: output.display().to_string(),
            artifact_max_extract_size: DEFAULT_MAX_SIZE as i64,
            artifact_max_extract_entries: DEFAULT_MAX_ENTRIES as i64,
            registry: RegistryArgs::default(),
        }
    }
}

/// What was pulled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// `org.opencontainers.image.source` (empty when absent).
    pub source: String,
    /// `org.opencontainers.image.revision` (empty when absent).
    pub revision: String,
    /// The repository.
    pub repository: Repository,
    /// The image manifest's digest.
    pub digest: Digest,
    /// What the extraction wrote.
    pub extracted: Extracted,
}

/// Runs `ocisource pull artifact`, reporting on stderr as flux does.
///
/// # Errors
///
/// As [`pull_artifact`].
pub async fn run(args: &PullArgs) -> Result<(), Error> {
    check_output(&args.output)?;
    let url = redact_oci_url(&args.url);
    eprintln!(
        "► pulling artifact from {}",
        url.strip_prefix(OCI_PREFIX).unwrap_or(&url)
    );
    let pulled = pull_with_progress(args, Progress::on_stderr()).await?;
    eprintln!("✔ source {}", pulled.source);
    eprintln!("✔ revision {}", pulled.revision);
    eprintln!("✔ digest {}@{}", pulled.repository, pulled.digest);
    eprintln!("✔ artifact content extracted to {}", args.output);
    Ok(())
}

fn check_output(output: &str) -> Result<PathBuf, Error> {
    let invalid = || Error::InvalidOutput {
        path: output.to_string(),
    };
    if output.is_empty() {
        return Err(invalid());
    }
    match fs::metadata(output) {
        Ok(m) if m.is_dir() => Ok(PathBuf::from(output)),
        _ => Err(invalid()),
    }
}

/// Pulls `args.url` and extracts its first layer into `args.output`.
///
/// # Errors
///
/// [`Error::InvalidOutput`], [`Error::InvalidUrl`], credential and client errors, [`Error::Pull`]
/// (resolution, manifest or layer refused, digest mismatch), [`Error::NoLayers`],
/// [`Error::Extract`] (not gzip, hostile or too large) and [`Error::Place`].
pub async fn pull_artifact(args: &PullArgs) -> Result<Pulled, Error> {
    pull_with_progress(args, Progress::hidden()).await
}

/// [`pull_artifact`], the layer download shown by `progress`.
async fn pull_with_progress(args: &PullArgs, progress: Progress) -> Result<Pulled, Error> {
    let output = check_output(&args.output)?;
    let remote = args.registry.remote(&args.url).await?;
    let manifest = remote.manifest().await?;
    let layer = manifest.layers.first().ok_or(Error::NoLayers)?;
    let downloading = progress.bar("downloading layer", layer.size);
    let reader = CountingReader::new(remote.open(layer).await?, downloading.clone());
    let limits = ExtractLimits::from_flags(
        args.artifact_max_extract_size,
        args.artifact_max_extract_entries,
    );
    let extracted = blocking(
        move || {
            let staging = tempfile::Builder::new()
                .prefix(".ocisource-pull-")
                .tempdir_in(&output)
                .map_err(|source| Error::Place {
                    path: output.clone(),
                    source,
                })?;
            let extracted = extract(reader, staging.path(), &limits)
                .map_err(|source| Error::Extract { source })?;
            place(staging.path(), &output)
                .map_err(|(path, source)| Error::Place { path, source })?;
            Ok(extracted)
        },
        |source| Error::Place {
            path: PathBuf::from(&args.output),
            source,
        },
    )
    .await;
    downloading.done();
    let extracted = extracted?;
    let annotation = |key: &str| manifest.annotations.get(key).cloned().unwrap_or_default();
    Ok(Pulled {
        source: annotation(SOURCE_ANNOTATION),
        revision: annotation(REVISION_ANNOTATION),
        repository: remote.repo,
        digest: manifest.manifest_digest,
        extracted,
    })
}

/// Moves the entries of `from` (a fresh extraction: real directories and regular files only)
/// into `to`: directories merge into existing real directories, anything else at a target
/// (a file, a symlink) is replaced, never written through.
fn place(from: &Path, to: &Path) -> Result<(), (PathBuf, io::Error)> {
    let entries = fs::read_dir(from).map_err(|e| (from.to_path_buf(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| (from.to_path_buf(), e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let fail = |e| (dst.clone(), e);
        let is_dir = entry.file_type().map_err(fail)?.is_dir();
        match fs::symlink_metadata(&dst) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::rename(&src, &dst).map_err(fail)?;
            }
            Err(e) => return Err(fail(e)),
            Ok(m) if m.is_dir() => {
                if !is_dir {
                    return Err(fail(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "a directory exists where the artifact has a file",
                    )));
                }
                place(&src, &dst)?;
            }
            Ok(m) if m.is_file() && is_dir => {
                return Err(fail(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file exists where the artifact has a directory",
                )));
            }
            Ok(_) => {
                // A file or a symlink (to anything): the link itself is removed, its target
                // is never touched.
                fs::remove_file(&dst).map_err(fail)?;
                fs::rename(&src, &dst).map_err(fail)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for (name, content) in files {
            let p = t.path().join(name);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            fs::write(&p, content).unwrap_or_else(|e| panic!("{e}"));
        }
        t
    }

    #[test]
    fn placing_merges_directories_and_replaces_files_and_symlinks_without_following_them() {
        let outside = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        fs::write(outside.path().join("victim"), "keep").unwrap_or_else(|e| panic!("{e}"));
        let from = tree(&[
            ("a/b.txt", "new"),
            ("c.txt", "new"),
            ("link", "new"),
            ("d/e", "x"),
        ]);
        let to = tree(&[("a/old.txt", "old"), ("c.txt", "old")]);
        symlink(outside.path().join("victim"), to.path().join("link"))
            .unwrap_or_else(|e| panic!("{e}"));
        symlink(outside.path(), to.path().join("d")).unwrap_or_else(|e| panic!("{e}"));
        place(from.path(), to.path()).unwrap_or_else(|(p, e)| panic!("{}: {e}", p.display()));
        let read = |p: &Path| fs::read_to_string(p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&to.path().join("a/b.txt")), "new");
        assert_eq!(read(&to.path().join("a/old.txt")), "old");
        assert_eq!(read(&to.path().join("c.txt")), "new");
        assert_eq!(read(&to.path().join("link")), "new");
        assert_eq!(read(&to.path().join("d/e")), "x");
        assert!(
            !to.path()
                .join("d")
                .symlink_metadata()
                .unwrap_or_else(|e| panic!("{e}"))
                .is_symlink()
        );
        assert_eq!(read(&outside.path().join("victim")), "keep");
        assert!(
            !outside.path().join("e").exists(),
            "nothing written outside"
        );
    }

    #[test]
    fn a_file_never_replaces_a_directory() {
        let from = tree(&[("a", "file")]);
        let to = tree(&[("a/x", "kept")]);
        assert!(place(from.path(), to.path()).is_err());
        assert!(to.path().join("a/x").exists());
    }

    #[test]
    fn the_output_must_be_an_existing_directory() {
        let t = tree(&[("f", "x")]);
        for bad in [
            String::new(),
            t.path().join("f").display().to_string(),
            t.path().join("nope").display().to_string(),
        ] {
            let err = check_output(&bad).err().map(|e| e.to_string());
            assert_eq!(err, Some(format!("invalid output path {bad}")));
        }
        assert!(check_output(&t.path().display().to_string()).is_ok());
    }
}
