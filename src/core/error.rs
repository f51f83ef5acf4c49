//! The reconcile error: one variant per failed action, each knowing its consequences (whether it
//! stalls, Flux's reason, and the negative condition it sets). Display texts are Flux's message
//! prefixes; the cause chain is rendered by [`super::message::render`].

use crate::api::conditions::{reasons, types};
use crate::registry;
use crate::storage;

use super::access::AccessError;
use super::semver::SemverError;

/// Whether an error waits for a spec change or is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Only a spec change can fix it: no retry.
    Stalled,
    /// Retried with backoff.
    Transient,
    /// Retried with backoff, without a reason or event (Flux's plain errors).
    Plain,
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `spec.url` is not a valid repository address.
    #[error("URL validation failed for '{url}'")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why.
        #[source]
        source: registry::Error,
    },
    /// The object's platform annotation is not `os/arch[/variant]`.
    #[error("invalid annotation '{}'", crate::api::PLATFORM_ANNOTATION)]
    InvalidPlatform {
        /// Why.
        #[source]
        source: registry::InvalidPlatform,
    },
    /// `serviceAccountName` with a cloud provider needs a feature gate.
    #[error(
        "to use spec.serviceAccountName for provider authentication please enable the ObjectLevelWorkloadIdentity feature gate in the controller"
    )]
    FeatureGateDisabled,
    /// A credential Secret or the service account could not be read.
    #[error("failed to get credential")]
    Credentials {
        /// Why.
        #[source]
        source: AccessError,
    },
    /// The proxy Secret is missing or unusable.
    #[error("failed to get proxy address")]
    Proxy {
        /// Why.
        #[source]
        source: AccessError,
    },
    /// The docker config in a credential Secret is malformed.
    #[error("failed to get credential")]
    Keychain {
        /// Why.
        #[source]
        source: registry::Error,
    },
    /// Cloud provider login failed or is not available.
    #[error("failed to get credential from {provider}")]
    CloudLogin {
        /// `aws`, `azure` or `gcp`.
        provider: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The TLS Secret is missing or malformed, or the HTTP client cannot be built.
    #[error("failed to generate transport for '{url}'")]
    Transport {
        /// `spec.url`.
        url: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Listing tags failed.
    #[error("failed to determine the artifact tag for '{url}'")]
    ListTags {
        /// `spec.url`.
        url: String,
        /// Why.
        #[source]
        source: registry::Error,
    },
    /// No tag satisfies the semver constraint, or the constraint or filter is invalid.
    #[error("failed to determine the artifact tag for '{url}'")]
    SelectTag {
        /// `spec.url`.
        url: String,
        /// Why.
        #[source]
        source: SemverError,
    },
    /// The digest of the reference could not be determined.
    #[error("failed to determine artifact digest")]
    ResolveDigest {
        /// Why.
        #[source]
        source: registry::Error,
    },
    /// The signature did not verify.
    #[error("failed to verify the signature using provider '{provider}'")]
    Verify {
        /// `cosign`, `cosign keyless` or `notation`.
        provider: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The manifest could not be pulled.
    #[error("failed to pull artifact from '{url}'")]
    Pull {
        /// `spec.url`.
        url: String,
        /// Why.
        #[source]
        source: registry::Error,
    },
    /// The manifest has no layers.
    #[error("no layers found in artifact")]
    NoLayers,
    /// No layer has the selected media type.
    #[error("failed to find layer with media type '{media_type}' in artifact")]
    NoLayerWithMediaType {
        /// The selected media type.
        media_type: String,
    },
    /// The layer blob could not be opened.
    #[error("failed to extract the first layer from artifact")]
    OpenLayer {
        /// Why.
        #[source]
        source: registry::Error,
    },
    /// The layer could not be extracted.
    #[error("failed to extract layer contents from artifact")]
    Extract {
        /// Why.
        #[source]
        source: storage::ExtractError,
    },
    /// The layer could not be copied for `operation: copy`.
    #[error("failed to copy layer from artifact")]
    CopyLayer {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The temporary working directory could not be created.
    #[error("failed to create temporary working directory")]
    TempDir {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The working directory vanished.
    #[error("failed to stat source path")]
    StatSource {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The working path is not a directory.
    #[error("source path '{path}' is not a directory")]
    SourceNotDir {
        /// The path.
        path: String,
    },
    /// The artifact directory could not be created.
    #[error("failed to create artifact directory")]
    CreateDir {
        /// Why.
        #[source]
        source: storage::Error,
    },
    /// The per-artifact lock could not be taken.
    #[error("failed to acquire lock for artifact")]
    Lock {
        /// Why.
        #[source]
        source: storage::Error,
    },
    /// `.sourceignore` files could not be read.
    #[error("failed to load source ignore patterns from repository")]
    SourceIgnore {
        /// Why.
        #[source]
        source: storage::Error,
    },
    /// The copied layer could not be stored.
    #[error("unable to copy artifact to storage")]
    StoreCopy {
        /// Why.
        #[source]
        source: storage::Error,
    },
    /// The tarball could not be stored.
    #[error("unable to archive artifact to storage")]
    Archive {
        /// Why.
        #[source]
        source: storage::Error,
    },
    /// A corrupt artifact could not be removed.
    #[error("failed to remove artifact after digest mismatch")]
    RemoveCorrupt {
        /// Why.
        #[source]
        source: storage::Error,
    },
    /// A background task failed (a bug or a panic in a blocking section).
    #[error("internal task failed")]
    Task {
        /// Why.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl Error {
    /// Whether it stalls, is retried with a reason, or is a plain retry.
    pub fn class(&self) -> Class {
        match self {
            Error::InvalidUrl { .. }
            | Error::InvalidPlatform { .. }
            | Error::FeatureGateDisabled => Class::Stalled,
            Error::RemoveCorrupt { .. } | Error::Task { .. } => Class::Plain,
            _ => Class::Transient,
        }
    }

    /// Flux's reason for it.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidUrl { .. } => reasons::URL_INVALID,
            Error::InvalidPlatform { .. } => reasons::INVALID_PLATFORM,
            Error::FeatureGateDisabled => reasons::FEATURE_GATE_DISABLED,
            Error::Credentials { .. }
            | Error::Proxy { .. }
            | Error::Keychain { .. }
            | Error::CloudLogin { .. }
            | Error::Transport { .. } => reasons::AUTHENTICATION_FAILED,
            Error::ListTags { .. } | Error::SelectTag { .. } => reasons::READ_OPERATION_FAILED,
            Error::ResolveDigest { .. } | Error::Pull { .. } => reasons::OCI_ARTIFACT_PULL_FAILED,
            Error::Verify { .. } => reasons::VERIFICATION_ERROR,
            Error::NoLayers
            | Error::NoLayerWithMediaType { .. }
            | Error::OpenLayer { .. }
            | Error::Extract { .. }
            | Error::CopyLayer { .. } => reasons::OCI_ARTIFACT_LAYER_OPERATION_FAILED,
            Error::TempDir { .. } | Error::CreateDir { .. } => reasons::DIRECTORY_CREATION_FAILED,
            Error::StatSource { .. } => reasons::STAT_OPERATION_FAILED,
            Error::SourceNotDir { .. } => reasons::INVALID_PATH,
            Error::StoreCopy { .. } | Error::Archive { .. } => reasons::ARCHIVE_OPERATION_FAILED,
            Error::Lock { .. } | Error::RemoveCorrupt { .. } | Error::Task { .. } => {
                reasons::FAILED
            }
            Error::SourceIgnore { .. } => reasons::SOURCE_IGNORE_ERROR,
        }
    }

    /// Whether it failed a step after the layer was fetched (storing, archiving, ignore rules,
    /// locks): `FetchFailed` no longer holds then.
    pub fn after_fetch(&self) -> bool {
        matches!(
            self,
            Error::TempDir { .. }
                | Error::CreateDir { .. }
                | Error::StatSource { .. }
                | Error::SourceNotDir { .. }
                | Error::StoreCopy { .. }
                | Error::Archive { .. }
                | Error::Lock { .. }
                | Error::SourceIgnore { .. }
        )
    }

    /// The negative condition it sets to True, if any (`SourceVerified=False` is set by the
    /// verification step itself; a feature-gate stall sets only `Stalled`).
    pub fn condition(&self) -> Option<&'static str> {
        match self {
            Error::InvalidUrl { .. }
            | Error::InvalidPlatform { .. }
            | Error::Credentials { .. }
            | Error::Proxy { .. }
            | Error::Keychain { .. }
            | Error::CloudLogin { .. }
            | Error::Transport { .. }
            | Error::ListTags { .. }
            | Error::SelectTag { .. }
            | Error::ResolveDigest { .. }
            | Error::Pull { .. }
            | Error::NoLayers
            | Error::NoLayerWithMediaType { .. }
            | Error::OpenLayer { .. }
            | Error::Extract { .. }
            | Error::CopyLayer { .. } => Some(types::FETCH_FAILED),
            Error::TempDir { .. }
            | Error::CreateDir { .. }
            | Error::StatSource { .. }
            | Error::SourceNotDir { .. }
            | Error::StoreCopy { .. }
            | Error::Archive { .. } => Some(types::STORAGE_OPERATION_FAILED),
            Error::FeatureGateDisabled
            | Error::Verify { .. }
            | Error::Lock { .. }
            | Error::SourceIgnore { .. }
            | Error::RemoveCorrupt { .. }
            | Error::Task { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io() -> std::io::Error {
        std::io::Error::other("boom")
    }

    #[test]
    fn each_error_maps_to_fluxs_class_reason_and_condition() {
        let cases: Vec<(Error, Class, &str, Option<&str>)> = vec![
            (
                Error::FeatureGateDisabled,
                Class::Stalled,
                "FeatureGateDisabled",
                None,
            ),
            (
                Error::NoLayers,
                Class::Transient,
                "OCIArtifactLayerOperationFailed",
                Some("FetchFailed"),
            ),
            (
                Error::TempDir { source: io() },
                Class::Transient,
                "DirectoryCreationFailed",
                Some("StorageOperationFailed"),
            ),
            (
                Error::StatSource { source: io() },
                Class::Transient,
                "StatOperationFailed",
                Some("StorageOperationFailed"),
            ),
            (
                Error::SourceNotDir { path: "/x".into() },
                Class::Transient,
                "InvalidPath",
                Some("StorageOperationFailed"),
            ),
            (
                Error::Verify {
                    provider: "cosign".into(),
                    source: "bad".into(),
                },
                Class::Transient,
                "VerificationError",
                None,
            ),
            (
                Error::CloudLogin {
                    provider: "aws".into(),
                    source: "no".into(),
                },
                Class::Transient,
                "AuthenticationFailed",
                Some("FetchFailed"),
            ),
        ];
        for (e, class, reason, condition) in cases {
            assert_eq!(
                (e.class(), e.reason(), e.condition()),
                (class, reason, condition),
                "{e}"
            );
        }
    }

    #[test]
    fn messages_are_fluxs_prefixes() {
        let e = Error::NoLayerWithMediaType {
            media_type: "application/x".into(),
        };
        assert_eq!(
            e.to_string(),
            "failed to find layer with media type 'application/x' in artifact"
        );
        let e = Error::SourceNotDir {
            path: "/tmp/x".into(),
        };
        assert_eq!(e.to_string(), "source path '/tmp/x' is not a directory");
        assert!(
            Error::FeatureGateDisabled
                .to_string()
                .starts_with("to use spec.serviceAccountName")
        );
    }
}
