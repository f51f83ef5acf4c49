//! Why a producer verb failed: one variant per failed action, shared by every verb.

use std::path::PathBuf;

use crate::registry;

use crate::core::semver::{FilterError, SemverError};
use crate::storage::extract::ExtractError;

use super::tarball::BuildError;

/// Why a verb failed. Messages are lower-case, exclude their source (the caller joins the
/// chain) and never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// The artifact file could not be written.
    #[error("failed to write the artifact to {}", path.display())]
    WriteArtifact {
        /// The `--output` file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `--output` of `pull artifact` is not an existing directory (Flux's text).
    #[error("invalid output path {path}")]
    InvalidOutput {
        /// The flag value.
        path: String,
    },
    /// The artifact could not be resolved or its manifest or layer read.
    #[error("failed to pull artifact from {url}")]
    Pull {
        /// `<repository>:<tag>` or `<repository>@<digest>`.
        url: String,
        /// What failed.
        #[source]
        source: registry::Error,
    },
    /// The manifest has no layer (Flux's text).
    #[error("no layers found in artifact")]
    NoLayers,
    /// The first layer could not be extracted (bounded, as the controller extracts).
    #[error("failed to untar first layer")]
    Extract {
        /// What failed.
        #[source]
        source: ExtractError,
    },
    /// The extracted files could not be moved into the output directory.
    #[error("failed to place the extracted files at {}", path.display())]
    Place {
        /// The file or directory that could not be placed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `--tag` value is not a valid tag.
    #[error("invalid tag {tag:?}")]
    InvalidTag {
        /// The flag value.
        tag: String,
        /// What is wrong.
        #[source]
        source: registry::Error,
    },
    /// Tagging failed (Flux's text).
    #[error("tagging artifact failed")]
    Tag {
        /// What failed.
        #[source]
        source: registry::Error,
    },
    /// `--filter-semver` is not a valid constraint (Flux's text: `semver '<c>' parse error`).
    #[error(transparent)]
    InvalidSemver(SemverError),
    /// `--filter-regex` is not a valid Go regular expression (Flux's text).
    #[error("regex '{expression}' parse error")]
    InvalidRegex {
        /// The flag value.
        expression: String,
        /// Go's words.
        #[source]
        source: GoRegexError,
    },
    /// The tags could not be listed (Flux's text).
    #[error("listing tags failed")]
    ListTags {
        /// What failed.
        #[source]
        source: registry::Error,
    },
    /// A tag's manifest could not be read (Flux's text).
    #[error("fetching manifest failed")]
    FetchManifest {
        /// What failed.
        #[source]
        source: registry::Error,
    },
    /// The remote artifact's first layer differs from the local build (Flux's text).
    #[error("the remote artifact contents differs from the local one")]
    Differs,
    /// A Docker credential helper gave no credential.
    #[error("failed to get credentials for {server} from the docker credential helper")]
    CredentialHelper {
        /// The registry key handed to the helper.
        server: String,
        /// What went wrong.
        #[source]
        source: super::credentials::HelperError,
    },
    /// The `--provider` login failed (Flux's text).
    #[error("error during login with provider")]
    CloudLogin {
        /// Why.
        #[source]
        source: crate::cloud::CloudError,
    },
    /// `verify artifact` flags that cannot be used together, or missing material.
    #[error("{reason}")]
    VerifyFlags {
        /// What is wrong.
        reason: String,
    },
    /// A verification material file (key, trusted root, policy, certificate) could not be
    /// read.
    #[error("failed to read verification material {}", path.display())]
    ReadMaterial {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A verification material file does not parse as what its flag names.
    #[error("invalid verification material {}", path.display())]
    InvalidMaterial {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The tag could not be resolved to a digest.
    #[error("failed to determine the digest of {url}")]
    Resolve {
        /// `<repository>:<tag>`.
        url: String,
        /// What failed.
        #[source]
        source: registry::Error,
    },
    /// `--resolve-symlinks` could not copy the tree (Flux's text).
    #[error("resolving symlinks failed")]
    ResolveSymlinks {
        /// The link or file that failed.
        #[source]
        source: std::io::Error,
    },
}

/// A Go `regexp` compile error as Go prints it: ``error parsing regexp: <code>: `<fragment>` ``.
#[derive(Debug, thiserror::Error)]
#[error("error parsing regexp")]
pub struct GoRegexError {
    /// The code and fragment.
    #[source]
    pub source: FilterError,
}
