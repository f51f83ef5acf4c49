//! Condition types and reason strings of Flux's OCIRepository, byte-identical to upstream
//! (`fluxcd/pkg/apis/meta` and `source-controller/api/v1`). Consumers (kstatus, the flux CLI,
//! notification-controller) match on these exact strings.

/// Condition `type` values.
pub mod types {
    /// Summary condition; always present once reconciled.
    pub const READY: &str = "Ready";
    /// Negative polarity: present (True) while a reconcile is in progress.
    pub const RECONCILING: &str = "Reconciling";
    /// Negative polarity: present (True) when reconciling cannot proceed without a spec change.
    pub const STALLED: &str = "Stalled";
    /// Negative polarity: the stored artifact is older than the resolved revision.
    pub const ARTIFACT_OUTDATED: &str = "ArtifactOutdated";
    /// The artifact of the current revision and content configuration is stored.
    pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
    /// Negative polarity: fetching from the registry failed.
    pub const FETCH_FAILED: &str = "FetchFailed";
    /// Negative polarity: a filesystem operation of the artifact store failed.
    pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
    /// Bipolar: True when the signature verified, False when verification failed.
    pub const SOURCE_VERIFIED: &str = "SourceVerified";

    /// The condition types owned by the OCIRepository reconciler.
    pub const OWNED: [&str; 8] = [
        READY,
        RECONCILING,
        STALLED,
        ARTIFACT_OUTDATED,
        ARTIFACT_IN_STORAGE,
        FETCH_FAILED,
        STORAGE_OPERATION_FAILED,
        SOURCE_VERIFIED,
    ];
}

/// Condition `reason` values and event reasons.
pub mod reasons {
    /// Ready=True, ArtifactInStorage=True, SourceVerified=True; recovery event.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Generic failure, e.g. acquiring the artifact lock.
    pub const FAILED: &str = "Failed";
    /// Reconciling=True while work is under way.
    pub const PROGRESSING: &str = "Progressing";
    /// Reconciling=True after an attempt that ended in an error.
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    /// The spec.url cannot be parsed or carries a tag.
    pub const URL_INVALID: &str = "URLInvalid";
    /// The `ocisource.io/platform` annotation is not `os/arch[/variant]` (an ocisource
    /// extension; Flux has no platform choice).
    pub const INVALID_PLATFORM: &str = "InvalidPlatform";
    /// A feature gate needed by the spec is off.
    pub const FEATURE_GATE_DISABLED: &str = "FeatureGateDisabled";
    /// ArtifactOutdated=True: a new revision was resolved.
    pub const NEW_REVISION: &str = "NewRevision";
    /// Credentials, TLS material or proxy settings could not be obtained.
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// Resolving a tag or semver range failed.
    pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";
    /// Resolving the digest or pulling the manifest or blob failed.
    pub const OCI_ARTIFACT_PULL_FAILED: &str = "OCIArtifactPullFailed";
    /// Selecting, extracting or copying the layer failed.
    pub const OCI_ARTIFACT_LAYER_OPERATION_FAILED: &str = "OCIArtifactLayerOperationFailed";
    /// Creating a directory failed.
    pub const DIRECTORY_CREATION_FAILED: &str = "DirectoryCreationFailed";
    /// Stat of the working directory failed.
    pub const STAT_OPERATION_FAILED: &str = "StatOperationFailed";
    /// The working path is not a directory.
    pub const INVALID_PATH: &str = "InvalidPath";
    /// Writing the artifact to storage failed.
    pub const ARCHIVE_OPERATION_FAILED: &str = "ArchiveOperationFailed";
    /// Signature verification failed (SourceVerified=False).
    pub const VERIFICATION_ERROR: &str = "VerificationError";
    /// Patching the object failed.
    pub const PATCH_OPERATION_FAILED: &str = "PatchOperationFailed";
    /// Loading `.sourceignore` patterns failed.
    pub const SOURCE_IGNORE_ERROR: &str = "SourceIgnoreError";
    /// Acquiring a lock failed (unused by OCIRepository, which reports `Failed`).
    pub const ACQUIRE_LOCK_FAILED: &str = "AcquireLockFailed";
    /// Updating the `latest.tar.gz` symlink failed (trace event).
    pub const SYMLINK_UPDATE_FAILED: &str = "SymlinkUpdateFailed";
    /// Nothing changed upstream (trace event).
    pub const ARTIFACT_UP_TO_DATE: &str = "ArtifactUpToDate";
    /// A new artifact was stored (event).
    pub const NEW_ARTIFACT: &str = "NewArtifact";
    /// Old artifacts were removed (trace event).
    pub const GARBAGE_COLLECTION_SUCCEEDED: &str = "GarbageCollectionSucceeded";
    /// Removing artifacts of a deleted object failed.
    pub const GARBAGE_COLLECTION_FAILED: &str = "GarbageCollectionFailed";
    /// The stored file does not match the recorded digest (warning event).
    pub const ARTIFACT_VERIFICATION_FAILED: &str = "ArtifactVerificationFailed";
}

#[cfg(test)]
mod tests {
    use super::{reasons, types};

    // Written out by hand from Flux's sources on purpose: a typo in a constant must fail here.
    #[test]
    fn condition_types_equal_flux_strings() {
        let expected = [
            (types::READY, "Ready"),
            (types::RECONCILING, "Reconciling"),
            (types::STALLED, "Stalled"),
            (types::ARTIFACT_OUTDATED, "ArtifactOutdated"),
            (types::ARTIFACT_IN_STORAGE, "ArtifactInStorage"),
            (types::FETCH_FAILED, "FetchFailed"),
            (types::STORAGE_OPERATION_FAILED, "StorageOperationFailed"),
            (types::SOURCE_VERIFIED, "SourceVerified"),
        ];
        for (ours, flux) in expected {
            assert_eq!(ours, flux);
        }
        assert_eq!(types::OWNED.len(), expected.len());
    }

    #[test]
    fn reasons_equal_flux_strings() {
        let expected = [
            (reasons::SUCCEEDED, "Succeeded"),
            (reasons::FAILED, "Failed"),
            (reasons::PROGRESSING, "Progressing"),
            (reasons::PROGRESSING_WITH_RETRY, "ProgressingWithRetry"),
            (reasons::URL_INVALID, "URLInvalid"),
            (reasons::FEATURE_GATE_DISABLED, "FeatureGateDisabled"),
            (reasons::NEW_REVISION, "NewRevision"),
            (reasons::AUTHENTICATION_FAILED, "AuthenticationFailed"),
            (reasons::READ_OPERATION_FAILED, "ReadOperationFailed"),
            (reasons::OCI_ARTIFACT_PULL_FAILED, "OCIArtifactPullFailed"),
            (
                reasons::OCI_ARTIFACT_LAYER_OPERATION_FAILED,
                "OCIArtifactLayerOperationFailed",
            ),
            (
                reasons::DIRECTORY_CREATION_FAILED,
                "DirectoryCreationFailed",
            ),
            (reasons::STAT_OPERATION_FAILED, "StatOperationFailed"),
            (reasons::INVALID_PATH, "InvalidPath"),
            (reasons::ARCHIVE_OPERATION_FAILED, "ArchiveOperationFailed"),
            (reasons::VERIFICATION_ERROR, "VerificationError"),
            (reasons::PATCH_OPERATION_FAILED, "PatchOperationFailed"),
            (reasons::SOURCE_IGNORE_ERROR, "SourceIgnoreError"),
            (reasons::ACQUIRE_LOCK_FAILED, "AcquireLockFailed"),
            (reasons::SYMLINK_UPDATE_FAILED, "SymlinkUpdateFailed"),
            (reasons::ARTIFACT_UP_TO_DATE, "ArtifactUpToDate"),
            (reasons::NEW_ARTIFACT, "NewArtifact"),
            (
                reasons::GARBAGE_COLLECTION_SUCCEEDED,
                "GarbageCollectionSucceeded",
            ),
            (
                reasons::GARBAGE_COLLECTION_FAILED,
                "GarbageCollectionFailed",
            ),
            (
                reasons::ARTIFACT_VERIFICATION_FAILED,
                "ArtifactVerificationFailed",
            ),
        ];
        for (ours, flux) in expected {
            assert_eq!(ours, flux);
        }
    }
}
