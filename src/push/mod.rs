//! `ocisource push artifact`: packs a directory or a file into a Flux artifact and pushes it,
//! in the format `flux push artifact` writes (spec §7.1), so Flux's OCIRepository (and ours)
//! and `flux pull artifact` read it unchanged.
//!
//! - [`build`]: the layer tarball (Go-identical tar bytes, gzip by zlib-rs).
//! - [`image`]: the config blob and the manifest, serialized as go-containerregistry does.
//! - here: the flags ([`PushArgs`], Flux's names and defaults), credentials (`--creds` or the
//!   Docker config), the upload ([`push_artifact`]) and the report ([`Pushed::render`]).
//!
//! # Credentials and TLS
//!
//! `--creds user[:password]` (a value without `:` is a registry token, as in Flux); without it
//! the `auths` of the Docker config (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`, else the legacy `~/.dockercfg`) are matched against the
//! repository. Credential helpers (`credsStore`, `credHelpers`) are not run. TLS trusts the
//! system roots (with rustls-native-certs, `SSL_CERT_FILE` and `SSL_CERT_DIR` replace them, as
//! Go tools do) plus `--ca-file`; `--cert-file`/`--key-file` present a client certificate;
//! `--insecure-registry` allows plain HTTP and, without `--ca-file`, skips verification.
//!
//! # Differences from `flux push artifact`
//!
//! - The layer's gzip bytes (hence the layer and manifest digests) differ; the tar bytes, the
//!   config blob and the manifest's layout and annotations are the same (see [`build`]).
//! - `--reproducible` writes `1970-01-01T00:00:00Z` whatever the local time zone (Flux formats
//!   the epoch in the local zone).
//! - A digest reference (`oci://repo@sha256:…`) is refused up front (Flux pushes, then fails to
//!   parse a tag); a symlinked `--path` is followed (Flux pushes an empty tarball).
//! - No `--provider` (cloud logins) and no `--debug`; `--ca-file`, `--cert-file` and
//!   `--key-file` are additions.

pub mod build;
pub mod image;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};

use crate::registry::{
    self, BlobSource, Client, Credential, Digest, Keychain, Repository, TlsMaterial,
    TransportConfig,
};
use build::{BuildError, BuiltLayer};
use image::{Blob, CONFIG_MEDIA_TYPE, CONTENT_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

/// The default of `--ignore-paths`: Flux's `excludeOCI`, the VCS excludes then the extension
/// excludes of `fluxcd/pkg/sourceignore`.
pub const DEFAULT_IGNORE_PATHS: &str = ".git/,.gitignore,.gitmodules,.gitattributes,\
*.jpg,*.jpeg,*.gif,*.png,*.wmv,*.flv,*.tar.gz,*.zip";

/// `created` with `--reproducible`.
pub const REPRODUCIBLE_CREATED: &str = "1970-01-01T00:00:00Z";

const OCI_PREFIX: &str = "oci://";

/// `ocisource push …` subcommands.
#[derive(Subcommand, Clone, Debug)]
pub enum PushCommand {
    /// Push a directory or a single file as a Flux artifact (the format of `flux push
    /// artifact`).
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

    /// Paths to ignore, in .gitignore format, comma-separated (CSV, repeatable). An empty
    /// value ignores nothing.
    #[arg(long, default_value = DEFAULT_IGNORE_PATHS)]
    pub ignore_paths: Vec<String>,

    /// Set the created annotation to `1970-01-01T00:00:00Z` for reproducible digests.
    #[arg(long)]
    pub reproducible: bool,

    /// Allow plain HTTP (and, without --ca-file, unverified TLS).
    #[arg(long)]
    pub insecure_registry: bool,

    /// Registry credentials, `<username>[:<password>]` (a value without `:` is a token);
    /// default: the Docker config.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub creds: String,

    /// Print the result as `json` or `yaml` on stdout.
    #[arg(long, short = 'o')]
    pub output: Option<OutputFormat>,

    /// A PEM CA bundle to trust in addition to the system roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,

    /// A PEM client certificate (with --key-file) for mTLS registries.
    #[arg(long, requires = "key_file")]
    pub cert_file: Option<PathBuf>,

    /// The PEM private key of --cert-file.
    #[arg(long, requires = "cert_file")]
    pub key_file: Option<PathBuf>,

    /// Timeout for the whole push (a Go duration).
    #[arg(long, default_value = "5m", value_parser = go_duration)]
    pub timeout: Duration,
}

fn go_duration(s: &str) -> Result<Duration, String> {
    crate::api::duration::parse(s).map_err(|e| e.to_string())
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
            ignore_paths: vec![DEFAULT_IGNORE_PATHS.to_string()],
            reproducible: false,
            insecure_registry: false,
            creds: String::new(),
            output: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            timeout: Duration::from_secs(300),
        }
    }
}

/// How the result is printed.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// `{"url", "repository", "tag", "digest"}`, indented, as flux prints it.
    Json,
    /// The same fields as YAML, keys sorted, as flux prints it.
    Yaml,
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
                let v = serde_json::json!({
                    "url": self.url,
                    "repository": self.repository,
                    "tag": self.tag,
                    "digest": digest,
                });
                // serde_json's `preserve_order` is off: write the fields in flux's order.
                let mut s = String::from("{\n");
                for (i, key) in ["url", "repository", "tag", "digest"].iter().enumerate() {
                    let value = v.get(key).and_then(|v| v.as_str()).unwrap_or_default();
                    s.push_str("  ");
                    image::push_string(&mut s, key);
                    s.push_str(": ");
                    image::push_string(&mut s, value);
                    s.push_str(if i < 3 { ",\n" } else { "\n" });
                }
                s.push_str("}\n");
                s
            }
            Some(OutputFormat::Yaml) => format!(
                "digest: {}\nrepository: {}\ntag: {}\nurl: {}\n",
                yaml_scalar(&digest),
                yaml_scalar(&self.repository),
                yaml_scalar(&self.tag),
                yaml_scalar(&self.url),
            ),
            None => format!(
                "✔ artifact successfully pushed to {}@{digest}\n",
                self.repository
            ),
        }
    }
}

/// Why a push failed. Messages are lower-case, exclude their source (the caller joins the
/// chain) and never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A required flag is empty (Flux's texts).
    #[error("{flag} is required")]
    MissingFlag {
        /// `--source` or `--revision`.
        flag: &'static str,
    },
    /// The artifact URL cannot be used.
    #[error("invalid artifact URL {url:?}")]
    InvalidUrl {
        /// The URL, without credentials.
        url: String,
        /// What is wrong.
        #[source]
        source: registry::Error,
    },
    /// `--path` does not exist (Flux's text).
    #[error("invalid path '{path}', must point to an existing directory or file")]
    InvalidPath {
        /// The path.
        path: String,
        /// The error of the stat.
        #[source]
        source: Option<std::io::Error>,
    },
    /// An annotation is not `key=value` (Flux's text).
    #[error("invalid annotation {annotation}, must be in the format key=value")]
    InvalidAnnotation {
        /// The flag value.
        annotation: String,
    },
    /// An `--ignore-paths` value is not a valid CSV record.
    #[error("invalid --ignore-paths value {value:?}: {reason}")]
    InvalidIgnorePaths {
        /// The flag value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Stdin could not be saved to a temporary file.
    #[error("failed to read the artifact from stdin")]
    ReadStdin {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file could not be read.
    #[error("failed to read {}", path.display())]
    ReadTlsFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Docker config could not be read.
    #[error("failed to read docker config {}", path.display())]
    ReadDockerConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Docker config is not valid.
    #[error("failed to load credentials from docker config {}", path.display())]
    DockerConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: registry::Error,
    },
    /// The registry client could not be set up (TLS material, proxy).
    #[error("failed to set up the registry client")]
    Client {
        /// What is wrong.
        #[source]
        source: registry::Error,
    },
    /// The layer tarball could not be built.
    #[error("failed to build the artifact from '{}'", path.display())]
    Build {
        /// The path being packed.
        path: PathBuf,
        /// What failed.
        #[source]
        source: BuildError,
    },
    /// A temporary file for the layer could not be created.
    #[error("failed to create a temporary file for the layer")]
    TempFile {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The layer blob could not be pushed.
    #[error("failed to push the layer to {repository}")]
    PushLayer {
        /// `<registry>/<repository>`.
        repository: String,
        /// What failed.
        #[source]
        source: registry::Error,
    },
    /// The config blob could not be pushed.
    #[error("failed to push the config to {repository}")]
    PushConfig {
        /// `<registry>/<repository>`.
        repository: String,
        /// What failed.
        #[source]
        source: registry::Error,
    },
    /// The manifest could not be pushed.
    #[error("failed to push the manifest to {repository}:{tag}")]
    PushManifest {
        /// `<registry>/<repository>`.
        repository: String,
        /// The tag.
        tag: String,
        /// What failed.
        #[source]
        source: registry::Error,
    },
}

/// Runs `ocisource push artifact`: pushes, then prints the report (on stdout with `-o`,
/// otherwise the progress and the human line on stderr, as flux does).
///
/// # Errors
///
/// As [`push_artifact`].
pub async fn run(args: &PushArgs) -> Result<(), PushError> {
    if args.output.is_none() {
        let url = redact_oci_url(&args.url);
        let url = url.strip_prefix(OCI_PREFIX).unwrap_or(&url);
        eprintln!("► pushing artifact to {url}");
    }
    let pushed = push_artifact(args).await?;
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
/// [`PushError`]: invalid flags or URL, unreadable path or credentials, build failures, and
/// registry refusals (the registry's category in the source).
pub async fn push_artifact(args: &PushArgs) -> Result<Pushed, PushError> {
    if args.source.is_empty() {
        return Err(PushError::MissingFlag { flag: "--source" });
    }
    if args.revision.is_empty() {
        return Err(PushError::MissingFlag { flag: "--revision" });
    }
    if args.path.is_empty() {
        return Err(PushError::InvalidPath {
            path: String::new(),
            source: None,
        });
    }
    let (repo, tag) = parse_artifact_url(&args.url).map_err(|source| PushError::InvalidUrl {
        url: redact_oci_url(&args.url),
        source,
    })?;
    // A timeout too large to represent means no deadline.
    let deadline = std::time::Instant::now().checked_add(args.timeout);

    // Stdin is saved to a temporary `*.yaml` file first, as flux does; it lives until the end.
    let stdin_file = if args.path == "-" {
        Some(
            blocking(save_stdin, |e| e)
                .await
                .map_err(|source| PushError::ReadStdin { source })?,
        )
    } else {
        None
    };
    let path: PathBuf = match &stdin_file {
        Some(f) => f.path().to_path_buf(),
        None => PathBuf::from(&args.path),
    };
    if let Err(source) = std::fs::metadata(&path) {
        return Err(PushError::InvalidPath {
            path: path.display().to_string(),
            source: Some(source),
        });
    }

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

    let mut ignore_paths = Vec::new();
    for value in &args.ignore_paths {
        ignore_paths.extend(
            split_csv(value).map_err(|reason| PushError::InvalidIgnorePaths {
                value: value.clone(),
                reason,
            })?,
        );
    }

    let cred = if args.creds.is_empty() {
        docker_config_credential(&repo)?
    } else {
        creds_credential(&args.creds)
    };
    let transport = transport_config(args)?;
    let client = Client::new(&transport)
        .map_err(|source| PushError::Client { source })?
        .with_deadline(deadline);

    // The layer goes to an unnamed temporary file, streamed from there to the registry.
    let build_path = path.clone();
    let (file, layer) = blocking(
        move || {
            let file = tempfile::tempfile().map_err(|source| PushError::TempFile { source })?;
            let matcher = build::ignore_matcher(&ignore_paths);
            let out = std::io::BufWriter::new(file);
            let (out, layer) =
                build::build_layer(&build_path, &matcher, out).map_err(|source| {
                    PushError::Build {
                        path: build_path.clone(),
                        source,
                    }
                })?;
            let file = out.into_inner().map_err(|e| PushError::Build {
                path: build_path.clone(),
                source: BuildError::Write {
                    source: e.into_error(),
                },
            })?;
            Ok::<_, PushError>((file, layer))
        },
        |source| PushError::Build {
            path: path.clone(),
            source: BuildError::Write { source },
        },
    )
    .await?;
    drop(stdin_file);

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
    client
        .push_blob(
            &repo,
            &layer_blob.digest,
            layer_blob.size,
            &BlobSource::File(Arc::new(file)),
            &cred,
        )
        .await
        .map_err(|source| PushError::PushLayer {
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
        .map_err(|source| PushError::PushConfig {
            repository: repository.clone(),
            source,
        })?;
    let digest = client
        .push_manifest(&repo, &tag, MANIFEST_MEDIA_TYPE, manifest, &cred)
        .await
        .map_err(|source| PushError::PushManifest {
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

/// Runs blocking work off the async threads; a task that died becomes `lost(…)`.
async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
    lost: impl FnOnce(std::io::Error) -> E,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(lost(std::io::Error::other(e))),
    }
}

/// Saves stdin, trailing CR/LF trimmed, to a temporary `<random>.yaml` file (flux's
/// `saveReaderToFile`).
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

/// Splits `oci://<repository>[:<tag>]` as go-containerregistry's `name.NewTag` does: the tag
/// follows the last `:` when no `/` comes after it; `latest` when there is none.
///
/// # Errors
///
/// [`registry::Error::InvalidReference`] for a missing `oci://`, a digest reference, an empty
/// or invalid tag, or an invalid repository.
pub fn parse_artifact_url(url: &str) -> Result<(Repository, String), registry::Error> {
    let Some(rest) = url.strip_prefix(OCI_PREFIX) else {
        return Err(registry::Error::InvalidReference {
            message: "URL must be in format 'oci://<domain>/<org>/<repo>'".into(),
        });
    };
    if rest.contains('@') {
        return Err(registry::Error::InvalidReference {
            message: "a tag is required to push, not a digest".into(),
        });
    }
    let (base, tag) = match rest.rsplit_once(':') {
        Some((base, tag)) if !tag.contains('/') => {
            if tag.is_empty() {
                return Err(registry::Error::InvalidReference {
                    message: format!("{rest} must specify a tag name after the colon"),
                });
            }
            (base, tag)
        }
        _ => (rest, "latest"),
    };
    registry::check_tag(tag)?;
    Ok((Repository::parse(base)?, tag.to_string()))
}

/// The `--annotations` values as a map; each must split on `=` into exactly two parts.
fn parse_annotations(values: &[String]) -> Result<BTreeMap<String, String>, PushError> {
    let mut out = BTreeMap::new();
    for a in values {
        let mut parts = a.split('=');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(k), Some(v), None) => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => {
                return Err(PushError::InvalidAnnotation {
                    annotation: a.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// `--creds`: `user:password` (split at the first `:`) or a registry token.
fn creds_credential(creds: &str) -> Credential {
    match creds.split_once(':') {
        Some((username, password)) => Credential::Basic {
            username: username.to_string(),
            password: password.to_string(),
        },
        None => Credential::RegistryToken(creds.to_string()),
    }
}

/// The Docker config directory: `$DOCKER_CONFIG`, else `~/.docker`.
fn docker_config_dir() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".docker")),
    }
}

/// The credential for `repo` from the Docker config; anonymous when there is none.
fn docker_config_credential(repo: &Repository) -> Result<Credential, PushError> {
    let mut keychain = Keychain::new();
    let Some(dir) = docker_config_dir() else {
        return Ok(Credential::Anonymous);
    };
    let config = dir.join("config.json");
    let legacy = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".dockercfg"));
    if let Some(bytes) = read_optional(&config)? {
        keychain
            .add_docker_config_json(&bytes)
            .map_err(|source| PushError::DockerConfig {
                path: config.clone(),
                source,
            })?;
        warn_about_helpers(&bytes, &config);
    } else if let Some(legacy) = legacy
        && let Some(bytes) = read_optional(&legacy)?
    {
        keychain
            .add_docker_cfg(&bytes)
            .map_err(|source| PushError::DockerConfig {
                path: legacy.clone(),
                source,
            })?;
    }
    Ok(keychain.resolve(repo))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, PushError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PushError::ReadDockerConfig {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn warn_about_helpers(bytes: &[u8], path: &Path) {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(bytes)
    else {
        return;
    };
    let has_helpers = map.iter().any(|(k, v)| {
        (k.eq_ignore_ascii_case("credsStore") || k.eq_ignore_ascii_case("credHelpers"))
            && !v.is_null()
            && v.as_str() != Some("")
    });
    if has_helpers {
        tracing::warn!(
            path = %path.display(),
            "the docker config names credential helpers; they are not run, use --creds"
        );
    }
}

fn transport_config(args: &PushArgs) -> Result<TransportConfig, PushError> {
    let read = |p: &Option<PathBuf>| -> Result<Option<Vec<u8>>, PushError> {
        p.as_ref()
            .map(|p| {
                std::fs::read(p).map_err(|source| PushError::ReadTlsFile {
                    path: p.clone(),
                    source,
                })
            })
            .transpose()
    };
    Ok(TransportConfig {
        tls: TlsMaterial {
            ca_pem: read(&args.ca_file)?,
            cert_pem: read(&args.cert_file)?,
            key_pem: read(&args.key_file)?,
            secret_name: None,
        },
        insecure: args.insecure_registry,
        ..TransportConfig::default()
    })
}

/// `oci://` URL without userinfo, for messages.
fn redact_oci_url(url: &str) -> String {
    let Some(rest) = url.strip_prefix(OCI_PREFIX) else {
        return crate::core::message::sanitize(url);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{OCI_PREFIX}{host}{path}")
}

/// One CSV record as pflag's `StringSlice` reads a flag value (Go's `encoding/csv`, strict
/// quotes): comma-separated fields, a field starting with `"` is quoted (`""` is a quote), only
/// the first record counts, an empty value is no field at all.
fn split_csv(value: &str) -> Result<Vec<String>, &'static str> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let value = value.replace("\r\n", "\n");
    // encoding/csv skips empty lines before the record.
    let value = value.trim_start_matches('\n');
    let mut fields = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field"),
                    Some('"') => match chars.peek() {
                        Some('"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some(',') | Some('\n') | None => break,
                        Some(_) => return Err("extraneous or missing \" in quoted-field"),
                    },
                    Some(c) => field.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c == '\n' {
                    break;
                }
                if c == '"' {
                    return Err("bare \" in non-quoted-field");
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        match chars.next() {
            Some(',') => continue,
            _ => return Ok(fields),
        }
    }
}

/// `s` as a YAML scalar the way go-yaml writes a string: plain unless it would read back as
/// something else (a bool, null, number or timestamp in YAML 1.1) or starts with an indicator.
fn yaml_scalar(s: &str) -> String {
    if !needs_quotes(s) {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn needs_quotes(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~", ".inf", "-.inf", "+.inf",
        ".nan",
    ];
    let Some(first) = s.chars().next() else {
        return true;
    };
    if "-?:,[]{}#&*!|>'\"%@` ".contains(first)
        && !(first == '-' && s.len() > 1 && !s.starts_with("- "))
    {
        return true;
    }
    if s.ends_with(' ') || s.contains(": ") || s.contains(" #") || s.contains('\n') {
        return true;
    }
    // YAML 1.1 spells these in lower case, Capitalized or UPPER case only.
    let lower = s.to_ascii_lowercase();
    let mut capitalized = lower.clone();
    if let Some(c) = capitalized.get_mut(..1) {
        c.make_ascii_uppercase();
    }
    if WORDS.contains(&lower.as_str())
        && (s == lower || s == capitalized || s == s.to_ascii_uppercase())
    {
        return true;
    }
    // go-yaml only tries numbers and timestamps for scalars starting with these.
    (first.is_ascii_digit() || matches!(first, '-' | '+' | '.'))
        && (is_yaml_number(s) || is_yaml_timestamp(s))
}

fn is_yaml_number(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let digits = |t: &str, radix: u32| {
        !t.is_empty()
            && t.chars().all(|c| c == '_' || c.is_digit(radix))
            && t.chars().any(|c| c != '_')
    };
    if let Some(hex) = body.strip_prefix("0x") {
        return digits(hex, 16);
    }
    if let Some(bin) = body.strip_prefix("0b") {
        return digits(bin, 2);
    }
    if let Some(oct) = body.strip_prefix("0o") {
        return digits(oct, 8);
    }
    if digits(body, 10) {
        return true;
    }
    // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac, 10),
        Some((int, frac)) => digits(int, 10) && (frac.is_empty() || digits(frac, 10)),
        None => digits(mantissa, 10),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => digits(e.strip_prefix(['-', '+']).unwrap_or(e), 10),
    };
    mantissa_ok && exponent_ok
}

fn is_yaml_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8
        && b.iter().take(4).all(u8::is_ascii_digit)
        && b.get(4) == Some(&b'-')
        && b.get(5).is_some_and(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests;
