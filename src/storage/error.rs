//! The storage error enum and its integrity sub-enum. Which Flux reason and condition a failure
//! gets is decided once, by the core's error (`core::error`), from the action that failed.
//! Display texts never repeat their source: the reporter joins the chain with `: `.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::digest::DigestParseError;

/// What went wrong in the artifact store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A namespace, name, revision or artifact path would leave the storage root or is not a
    /// single clean path segment where one is required.
    #[error("invalid storage path {path:?}: {reason}")]
    InvalidPath {
        /// The offending input, verbatim.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A path that must be a directory is something else.
    #[error("source path {path:?} is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// `stat` failed.
    #[error("failed to stat source path {path:?}")]
    Stat {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `mkdir -p` failed.
    #[error("failed to create directory {path:?}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The per-artifact lock file could not be opened or locked.
    #[error("failed to acquire lock {path:?}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A `.sourceignore` file could not be read.
    #[error("failed to load source ignore patterns from {path:?}")]
    LoadIgnore {
        /// The file or directory being read.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The `.sourceignore` files of a layer hold more than
    /// [`MAX_IGNORE_BYTES`](super::ignore::MAX_IGNORE_BYTES).
    #[error(".sourceignore files are bigger than the maximum of {limit} bytes")]
    IgnoreTooLarge {
        /// The bound.
        limit: u64,
    },
    /// More ignore patterns than [`MAX_PATTERNS`](super::ignore::MAX_PATTERNS).
    #[error(
        "more than the maximum of {limit} ignore patterns in .sourceignore files and spec.ignore"
    )]
    TooManyIgnorePatterns {
        /// The bound.
        limit: usize,
    },
    /// A blocking step ran past the reconcile deadline and was stopped.
    #[error("{step} did not finish within the timeout of {timeout:?} (spec.timeout)")]
    DeadlineExceeded {
        /// What was running.
        step: &'static str,
        /// `spec.timeout`.
        timeout: Duration,
    },
    /// A copied layer is bigger than the extraction size bound.
    #[error("layer of {size} bytes is bigger than max artifact size of {limit} bytes")]
    LayerTooLarge {
        /// The size announced or seen so far.
        size: u64,
        /// The bound (`--artifact-max-extract-size`).
        limit: u64,
    },
    /// Building or storing the tarball failed; `path` is the entry or file involved.
    #[error("failed to archive {path:?}")]
    Archive {
        /// The file being read or written when it failed.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Storing a given byte stream (copy mode) failed.
    #[error("failed to copy artifact to {path:?}")]
    Copy {
        /// The destination.
        path: PathBuf,
        /// The OS error (or the reader's error).
        #[source]
        source: io::Error,
    },
    /// Linking (or, where the file system has no hard links, copying) a shared entry into an
    /// object's directory failed.
    #[error("failed to link shared artifact {entry:?} to {path:?}")]
    Link {
        /// The shared entry.
        entry: PathBuf,
        /// The object's artifact (or its temporary name).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A shared entry was removed between being found and being linked.
    #[error("shared artifact {path:?} is gone")]
    SharedEntryGone {
        /// The entry.
        path: PathBuf,
    },
    /// Updating the `latest.tar.gz` symlink failed.
    #[error("failed to update symlink {path:?}")]
    Symlink {
        /// The link.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Removing a file or directory failed.
    #[error("failed to remove {path:?}")]
    Remove {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Listing a directory failed.
    #[error("failed to read directory {path:?}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Why a stored artifact failed the integrity check of the storage step (§4.4).
///
/// [`IntegrityError::is_missing`] separates "not there" (Flux: silently rebuilt) from "there but
/// wrong" (Flux: `ArtifactVerificationFailed` warning event, file deleted, then rebuilt).
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    /// The recorded artifact path is not a valid storage path.
    #[error("invalid artifact path {path:?}")]
    InvalidPath {
        /// The recorded path.
        path: String,
    },
    /// `lstat` of the artifact failed (usually: it does not exist).
    #[error("artifact {path:?} not found in storage")]
    Missing {
        /// The local path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The artifact path exists but is not a regular file (a directory, a symlink, ...).
    #[error("artifact {path:?} is not a regular file")]
    NotRegularFile {
        /// The local path.
        path: PathBuf,
    },
    /// `artifact.digest` is empty.
    #[error("artifact has no digest")]
    EmptyDigest,
    /// `artifact.digest` cannot be parsed.
    #[error("failed to parse artifact digest '{digest}'")]
    InvalidDigest {
        /// The recorded digest.
        digest: String,
        /// Why it is invalid.
        #[source]
        source: DigestParseError,
    },
    /// The file's digest differs from `artifact.digest`.
    #[error("computed digest doesn't match '{expected}'")]
    Mismatch {
        /// The recorded digest.
        expected: String,
        /// The digest of the file as stored.
        actual: String,
    },
    /// Reading the file failed part-way.
    #[error("failed to read artifact {path:?}")]
    Read {
        /// The local path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl IntegrityError {
    /// True when the artifact is simply not in storage (no event in Flux), false when it is
    /// there but fails verification.
    #[must_use]
    pub fn is_missing(&self) -> bool {
        matches!(
            self,
            Self::InvalidPath { .. } | Self::Missing { .. } | Self::NotRegularFile { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_does_not_repeat_the_source() {
        let e = Error::Stat {
            path: "/x".into(),
            source: io::Error::other("permission denied"),
        };
        assert_eq!(e.to_string(), "failed to stat source path \"/x\"");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn missing_and_corrupt_artifacts_are_told_apart() {
        assert!(IntegrityError::NotRegularFile { path: "/x".into() }.is_missing());
        assert!(!IntegrityError::EmptyDigest.is_missing());
        assert!(
            !IntegrityError::Mismatch {
                expected: "sha256:a".into(),
                actual: "sha256:b".into()
            }
            .is_missing()
        );
    }
}
