//! `ocisource push artifact`: packs a directory or a file into a Flux artifact and pushes it,
//! in the format `flux push artifact` writes (spec §7.1), so Flux's OCIRepository (and ours)
//! and `flux pull artifact` read it unchanged: the layer from [`tarball`](mod@super::tarball), the
//! config and manifest from [`image`](mod@super::image), flags named and defaulted as flux's.
//!
//! # Differences from `flux push artifact`
//!
//! - The layer's gzip bytes (hence the layer and manifest digests) differ; the tar bytes, the
//!   config blob and the manifest's layout and annotations are the same (see
//!   [`tarball`](mod@super::tarball)).
//! - `--reproducible` writes `1970-01-01T00:00:00Z` whatever the local time zone (Flux formats
//!   the epoch in the local zone).
//! - A digest reference (`oci://repo@sha256:…`) is refused up front (Flux pushes, then fails to
//!   parse a tag); a symlinked `--path` is followed (Flux pushes an empty tarball).
//! - `--debug` logs our registry requests (flux shows go-containerregistry's HTTP dumps);
//!   `--ca-file`, `--cert-file` and `--key-file` are additions; `--add-ignore-paths` is flux
//!   2.9's.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use clap::{Args, Subcommand};

use crate::registry::{BlobSource, Digest, SentHook};

use super::build::source_path;
use super::connect::RegistryArgs;
use super::flags::IgnoreArgs;
use super::image::{self, Blob, CONFIG_MEDIA_TYPE, CONTENT_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use super::output::{OutputFormat, json_object, yaml_mapping};
use super::progress::{CountingWriter, Progress};
use super::reference::{OCI_PREFIX, parse_artifact_url, redact_oci_url};
use super::tarball::{self, BuildError, BuiltLayer};
use super::{Error, blocking};

/// `created` with `--reproducible`.
pub const REPRODUCIBLE_CREATED: &str = "1970-01-01T00:00:00Z";

/// `ocisource push …` subcommands.
#[derive(Subcommand, Clone, Debug)]
pub enum PushCommand {
    /// Push a directory or a single file as a Flux artifact (the format of `flux push
    /// artifact`).
    #[command(after_help = super::examples::PUSH)]
    Artifact(PushArgs),
}

/// The flags of `ocisource push artifact`, named as `flux push artifact`'s.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct PushArgs {
    /// The artifact reference, `oci://<host>/<repository>[:<tag>]` (tag `latest` if none).
    #[arg(value_name = "URL")]
    pub url: String,

    /// The directory or file to push; `-` reads a file from stdin.
    #[arg(long, short = 'f', required = true)]
    pub path: String,

    /// The source address, e.g. the Git URL (`org.opencontainers.image.source`).
    #[arg(long, required = true)]
    pub source: String,

    /// The source revision, `<branch|tag>@sha1:<commit-sha>` (`org.opencontainers.image.revision`).
    #[arg(long, required = true)]
    pub revision: String,

    /// A custom annotation `<key>=<value>` (repeatable; the value must not contain `=`). It may
    /// override the standard ones.
    #[arg(long, short = 'a', value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// The ignore flags.
    #[command(flatten)]
    pub ignore: IgnoreArgs,

    /// Replace symlinks by copies of their targets before building (flux 2.9's).
    #[arg(long)]
    pub resolve_symlinks: bool,

    /// Set the created annotation to `1970-01-01T00:00:00Z` for reproducible digests.
    #[arg(long)]
    pub reproducible: bool,

    /// Print the result as `json` or `yaml` on stdout.
    #[arg(long, short = 'o')]
    pub output: Option<OutputFormat>,

    /// Log the registry requests (method, URL without credentials, status) on stderr.
    #[arg(long)]
    pub debug: bool,

    /// The registry flags.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl PushArgs {
    /// The flags for pushing `path` to `url` with the given source and revision, everything
    /// else at its default (the same defaults as the command line).
    pub fn new(url: &str, path: &str, source: &str, revision: &str) -> PushArgs {
        PushArgs {
            url: url.to_string(),
            path: path.to_string(),
            source: source.to_string(),
            revision: revision.to_string(),
            annotations: Vec::new(),
            ignore: IgnoreArgs::default(),
            resolve_symlinks: false,
            reproducible: false,
            output: None,
            debug: false,
            registry: RegistryArgs::default(),
        }
    }
}

/// What was pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// `oci://<registry>/<repository>@<digest>`.
    pub url: String,
    /// `<registry>/<repository>`.
    pub repository: String,
    /// The tag pushed.
    pub tag: String,
    /// The manifest digest.
    pub digest: Digest,
    /// The layer (digest, size and `diff_id`).
    pub layer: BuiltLayer,
    /// The config blob's digest.
    pub config_digest: Digest,
}

impl Pushed {
    /// The report: flux's JSON (indented, trailing newline) or YAML for `Some(format)`, else
    /// flux's human line (`✔ artifact successfully pushed to <repo>@<digest>`), which flux
    /// prints on stderr.
    pub fn render(&self, format: Option<OutputFormat>) -> String {
        let digest = self.digest.to_string();
        match format {
            Some(OutputFormat::Json) => {
                let fields = [
                    ("url", self.url.as_str()),
                    ("repository", self.repository.as_str()),
                    ("tag", self.tag.as_str()),
                    ("digest", digest.as_str()),
                ];
                json_object(&fields, 0) + "\n"
            }
            Some(OutputFormat::Yaml) => yaml_mapping(
                &[
                    ("url", self.url.as_str()),
                    ("repository", self.repository.as_str()),
                    ("tag", self.tag.as_str()),
                    ("digest", digest.as_str()),
                ],
                "",
                "",
            ),
            None => format!(
                "✔ artifact successfully pushed to {}@{digest}\n",
                self.repository
            ),
        }
    }
}

/// Runs `ocisource push artifact`: pushes, then prints the report (on stdout with `-o`,
/// otherwise the progress and the human line on stderr, as flux does).
///
/// # Errors
///
/// As [`push_artifact`].
pub async fn run(args: &PushArgs) -> Result<(), Error> {
    if args.output.is_none() {
        let url = redact_oci_url(&args.url);
        let url = url.strip_prefix(OCI_PREFIX).unwrap_or(&url);
        eprintln!("► pushing artifact to {url}");
    }
    let pushed = push_with_progress(args, Progress::on_stderr()).await?;
    let text = pushed.render(args.output);
    if args.output.is_some() {
        let _ = std::io::stdout().write_all(text.as_bytes());
    } else {
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
    Ok(())
}

/// Builds the artifact of `args.path` and pushes it to `args.url`: the layer and the config
/// blob (each skipped if the registry has it), then the manifest under the tag.
///
/// # Errors
///
/// [`Error`]: invalid flags or URL, unreadable path or credentials, build failures, and
/// registry refusals (the registry's category in the source).
pub async fn push_artifact(args: &PushArgs) -> Result<Pushed, Error> {
    push_with_progress(args, Progress::hidden()).await
}

/// [`push_artifact`], the packing and the layer upload shown by `progress`.
async fn push_with_progress(args: &PushArgs, progress: Progress) -> Result<Pushed, Error> {
    if args.source.is_empty() {
        return Err(Error::MissingFlag { flag: "--source" });
    }
    if args.revision.is_empty() {
        return Err(Error::MissingFlag { flag: "--revision" });
    }
    if args.path.is_empty() {
        return Err(Error::InvalidPath {
            path: String::new(),
            source: None,
        });
    }
    let (repo, tag) = parse_artifact_url(&args.url).map_err(|source| Error::InvalidUrl {
        url: redact_oci_url(&args.url),
        source,
    })?;
    // Stdin is saved to a temporary `*.yaml` file first, as flux does; it and a resolved copy
    // live until the layer is built.
    let (path_arg, resolve) = (args.path.clone(), args.resolve_symlinks);
    let source = blocking(
        move || source_path(&path_arg, resolve),
        |source| Error::ReadStdin { source },
    )
    .await?;
    let path = source.path.clone();

    let mut annotations = BTreeMap::new();
    annotations.insert(
        image::CREATED_ANNOTATION.to_string(),
        created(args.reproducible),
    );
    annotations.insert(image::SOURCE_ANNOTATION.to_string(), args.source.clone());
    annotations.insert(
        image::REVISION_ANNOTATION.to_string(),
        args.revision.clone(),
    );
    annotations.extend(parse_annotations(&args.annotations)?);

    let ignore_paths = args.ignore.patterns()?;
    let cred = args.registry.credential(&repo).await?;
    let client = args.registry.client()?;

    // The layer goes to an unnamed temporary file, streamed from there to the registry.
    let build_path = path.clone();
    let packing = progress.counter("packing layer");
    let counted = packing.clone();
    let result = blocking(
        move || {
            let file = tempfile::tempfile().map_err(|source| Error::TempFile { source })?;
            let matcher = tarball::ignore_matcher(&ignore_paths);
            let out = std::io::BufWriter::new(CountingWriter::new(file, counted));
            let (out, layer) =
                tarball::build_layer(&build_path, &matcher, out).map_err(|source| {
                    Error::Build {
                        path: build_path.clone(),
                        source,
                    }
                })?;
            let file = out
                .into_inner()
                .map_err(|e| Error::Build {
                    path: build_path.clone(),
                    source: BuildError::Write {
                        source: e.into_error(),
                    },
                })?
                .into_inner();
            Ok::<_, Error>((file, layer))
        },
        |source| Error::Build {
            path: path.clone(),
            source: BuildError::Write { source },
        },
    )
    .await;
    packing.done();
    let (file, layer) = result?;
    drop(source);

    let config = Bytes::from(image::config_json(&layer.diff_id));
    let config_blob = Blob {
        media_type: CONFIG_MEDIA_TYPE.to_string(),
        digest: Digest::sha256_of(&config),
        size: config.len() as u64,
    };
    let layer_blob = Blob {
        media_type: CONTENT_MEDIA_TYPE.to_string(),
        digest: layer.digest.clone(),
        size: layer.size,
    };
    let manifest = Bytes::from(image::manifest_json(
        &config_blob,
        &layer_blob,
        &annotations,
    ));

    let repository = repo.to_string();
    let uploading = progress.bar("uploading layer", layer_blob.size);
    let sent = uploading.clone();
    let pushed = client
        .push_blob(
            &repo,
            &layer_blob.digest,
            layer_blob.size,
            &BlobSource::TrackedFile(Arc::new(file), SentHook::new(move |n| sent.set(n))),
            &cred,
        )
        .await;
    uploading.done();
    pushed.map_err(|source| Error::PushLayer {
        repository: repository.clone(),
        source,
    })?;
    client
        .push_blob(
            &repo,
            &config_blob.digest,
            config_blob.size,
            &BlobSource::Bytes(config),
            &cred,
        )
        .await
        .map_err(|source| Error::PushConfig {
            repository: repository.clone(),
            source,
        })?;
    let digest = client
        .push_manifest(&repo, &tag, MANIFEST_MEDIA_TYPE, manifest, &cred)
        .await
        .map_err(|source| Error::PushManifest {
            repository: repository.clone(),
            tag: tag.clone(),
            source,
        })?;
    Ok(Pushed {
        url: format!("{OCI_PREFIX}{repository}@{digest}"),
        repository,
        tag,
        digest,
        layer,
        config_digest: config_blob.digest,
    })
}

/// `org.opencontainers.image.created`: now (UTC, whole seconds) or the epoch.
fn created(reproducible: bool) -> String {
    if reproducible {
        return REPRODUCIBLE_CREATED.to_string();
    }
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

/// The `--annotations` values as a map; each must split on `=` into exactly two parts.
fn parse_annotations(values: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for a in values {
        let mut parts = a.split('=');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(k), Some(v), None) => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => {
                return Err(Error::InvalidAnnotation {
                    annotation: a.clone(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
