//! `ocisource diff artifact`: whether a local directory or file differs from a remote
//! artifact (`flux diff artifact`): the local tarball is built exactly as `push artifact` would
//! build it and compared with the remote first layer.
//!
//! Flux compares the gzip bytes (digest and size), so its answer depends on the gzip encoder
//! of the CLI that pushed. Ours compares the gzip bytes first and, when they differ, the tar
//! inside: the remote layer is decompressed as it streams and hashed, reading at most one byte
//! more than the local tar (so a compression bomb costs nothing), then drained so the layer's
//! digest is still checked. The tar bytes are what flux and ocisource both write identically,
//! so an artifact pushed by either CLI from the same tree shows no difference; flux's own
//! `diff artifact` reports a difference for artifacts ocisource pushed (their gzip differs).

use std::io::{self, Read};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use sha2::Digest as _;

use crate::registry::{self, Digest};

use super::connect::RegistryArgs;
use super::flags::IgnoreArgs;
use super::reference::{parse_reference, redact_oci_url};
use super::tarball::{self, BuildError, BuiltLayer};
use super::{Error, blocking};

/// `ocisource diff …` subcommands.
#[derive(Subcommand, Clone, Debug)]
pub enum DiffCommand {
    /// Tell whether a local directory or file differs from a remote artifact (as `flux diff
    /// artifact`).
    #[command(after_help = super::examples::DIFF)]
    Artifact(DiffArgs),
}

/// The flags of `ocisource diff artifact`, named as `flux diff artifact`'s.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct DiffArgs {
    /// The artifact, `oci://<host>/<repository>[:<tag>|@<digest>]`.
    #[arg(value_name = "URL")]
    pub url: String,

    /// The local directory or file to compare.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub path: String,

    /// The ignore flags.
    #[command(flatten)]
    pub ignore: IgnoreArgs,

    /// The registry flags.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl DiffArgs {
    /// The flags for comparing `path` with `url`, everything else at its default.
    pub fn new(url: &str, path: &str) -> DiffArgs {
        DiffArgs {
            url: url.to_string(),
            path: path.to_string(),
            ignore: IgnoreArgs::default(),
            registry: RegistryArgs::default(),
        }
    }
}

/// Runs `ocisource diff artifact`: `✔ no changes detected` on stderr, or the difference as an
/// error.
///
/// # Errors
///
/// As [`diff_artifact`].
pub async fn run(args: &DiffArgs) -> Result<(), Error> {
    diff_artifact(args).await?;
    eprintln!("✔ no changes detected");
    Ok(())
}

/// Compares `args.path` with the first layer of `args.url`.
///
/// # Errors
///
/// [`Error::Differs`] when they differ; [`Error::InvalidPath`], [`Error::InvalidUrl`],
/// [`Error::InvalidIgnorePaths`], credential and client errors, [`Error::Build`],
/// [`Error::Pull`] and [`Error::NoLayers`] when the comparison cannot be made.
pub async fn diff_artifact(args: &DiffArgs) -> Result<(), Error> {
    if args.path.is_empty() {
        return Err(Error::InvalidPath {
            path: String::new(),
            source: None,
        });
    }
    if let Err(source) = parse_reference(&args.url) {
        return Err(Error::InvalidUrl {
            url: redact_oci_url(&args.url),
            source,
        });
    }
    let path = PathBuf::from(&args.path);
    if let Err(source) = std::fs::metadata(&path) {
        return Err(Error::InvalidPath {
            path: args.path.clone(),
            source: Some(source),
        });
    }
    let patterns = args.ignore.patterns()?;
    let build_path = path.clone();
    let local = blocking(
        move || {
            let matcher = tarball::ignore_matcher(&patterns);
            tarball::build_layer(&build_path, &matcher, io::sink())
                .map(|(_, layer)| layer)
                .map_err(|source| Error::Build {
                    path: build_path.clone(),
                    source,
                })
        },
        |source| Error::Build {
            path: path.clone(),
            source: BuildError::Write { source },
        },
    )
    .await?;

    let remote = args.registry.remote(&args.url).await?;
    let manifest = remote.manifest().await?;
    let layer = manifest.layers.first().ok_or(Error::NoLayers)?;
    if layer.digest == local.digest && layer.size == local.size {
        return Ok(());
    }
    let reader = remote.open(layer).await?;
    let url = remote.url();
    let read_err = |source| Error::Pull {
        url: url.clone(),
        source: registry::Error::Io {
            message: "failed to read the first layer".into(),
            source,
        },
    };
    let same = blocking(move || same_tar(reader, &local), |e| e)
        .await
        .map_err(read_err)?;
    if same { Ok(()) } else { Err(Error::Differs) }
}

/// Whether the gzip stream `reader` holds exactly the tar of `local`; the stream is read to its
/// end when it does, so the blob's digest check runs.
fn same_tar<R: Read>(reader: R, local: &BuiltLayer) -> Result<bool, io::Error> {
    let mut input = io::BufReader::new(reader);
    let mut magic = [0u8; 2];
    let got = read_full(&mut input, &mut magic)?;
    if got < 2 || magic != [0x1f, 0x8b] {
        return Ok(false);
    }
    let chained = io::Cursor::new(magic).chain(input);
    let mut gz = flate2::read::MultiGzDecoder::new(chained);
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut total: u64 = 0;
    loop {
        let n = match gz.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A corrupt or cut gzip stream is a different artifact (the blob reader reports its
            // own failures, a digest mismatch included, with other kinds); other reads fail.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput
                        | io::ErrorKind::InvalidData
                        | io::ErrorKind::UnexpectedEof
                ) && registry::Error::from_io(&e).is_none() =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        total += n as u64;
        if total > local.tar_size {
            return Ok(false);
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    if total != local.tar_size || Digest::from_sha256(hasher.finalize().into()) != local.diff_id {
        return Ok(false);
    }
    // Anything after the gzip members is drained so the blob's digest is verified.
    io::copy(&mut gz.into_inner(), &mut io::sink())?;
    Ok(true)
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(buf.get_mut(got..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn layer_of(files: &[(&str, &str)]) -> (Vec<u8>, BuiltLayer) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap_or_else(|e| panic!("{e}"));
        }
        tarball::build_layer(dir.path(), &tarball::ignore_matcher(&[]), Vec::new())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn regzip(gz: &[u8], level: u32) -> Vec<u8> {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut tar)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        enc.write_all(&tar).unwrap_or_else(|e| panic!("{e}"));
        enc.finish().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_same_tar_under_another_gzip_is_no_difference() {
        let (gz, local) = layer_of(&[("a.yaml", "a: 1\n")]);
        let other_gzip = regzip(&gz, 9);
        assert_ne!(other_gzip, gz);
        let same = |bytes: &[u8]| same_tar(bytes, &local).unwrap_or_else(|e| panic!("{e}"));
        assert!(same(&gz));
        assert!(same(&other_gzip));
        let (changed, _) = layer_of(&[("a.yaml", "a: 2\n")]);
        assert!(!same(&changed));
        let (more, _) = layer_of(&[("a.yaml", "a: 1\n"), ("b", "")]);
        assert!(!same(&more));
        assert!(!same(b"not gzip at all"));
        assert!(!same(&gz[..gz.len() / 2]) || gz.len() < 4);
    }

    #[test]
    fn a_bomb_is_cut_off_after_the_local_size() {
        let (_, local) = layer_of(&[("a", "x")]);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&vec![0u8; 16 << 20])
            .unwrap_or_else(|e| panic!("{e}"));
        let bomb = enc.finish().unwrap_or_else(|e| panic!("{e}"));
        let mut counted = CountingReader {
            inner: &bomb[..],
            read: 0,
        };
        assert!(!same_tar(&mut counted, &local).unwrap_or_else(|e| panic!("{e}")));
        assert!(
            counted.read < bomb.len(),
            "stopped before the end of the bomb"
        );
    }

    struct CountingReader<R> {
        inner: R,
        read: usize,
    }

    impl<R: Read> Read for CountingReader<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n;
            Ok(n)
        }
    }
}
