//! The Kubernetes-free reconcile core: the reconcile steps, how the source step reaches the
//! registry ([`connect`]) and resolves the reference ([`resolve`]), and the pure status summary.
//! It takes values and ports (traits) and returns an outcome; it never holds a `kube::Client`
//! and never reads the clock.

pub mod access;
pub mod conditions;
pub mod connect;
pub mod error;
pub mod events;
pub mod message;
pub mod ports;
pub mod reconcile;
pub mod resolution_cache;
pub mod resolve;
pub mod semver;
pub mod shared_artifacts;
pub mod single_flight;
pub mod summary;
pub mod verification;
pub mod verification_cache;

use crate::cloud::TokenCache;
use crate::registry::Platform;
use crate::storage::{ExtractLimits, Storage};
use resolution_cache::ResolutionCache;
use shared_artifacts::SharedArtifacts;

/// Process-wide settings of the reconciler, made once by the process (controller manager or
/// standalone run) and handed to every reconcile.
#[derive(Debug)]
pub struct Settings {
    /// The artifact store.
    pub storage: Storage,
    /// Extraction limits.
    pub limits: ExtractLimits,
    /// Feature gate `ObjectLevelWorkloadIdentity`.
    pub object_level_workload_identity: bool,
    /// `--default-service-account` (RFC-0010 lockdown): the service account of the object's
    /// namespace that cloud login uses when the object names none. Only consulted for a cloud
    /// provider without static credentials; needs the gate.
    pub default_service_account: Option<String>,
    /// The cloud registry credentials of this process (`--token-cache-max-size`,
    /// `--token-cache-max-duration`), shared by every object's cloud login.
    pub cloud_tokens: TokenCache,
    /// `--default-platform`: what an image index resolves to unless the object's
    /// [`crate::api::PLATFORM_ANNOTATION`] names another (`linux/amd64`, as Flux).
    pub default_platform: Platform,
    /// Tag digests and tag lists shared by the objects of this process
    /// (`--resolution-cache-window`); [`ResolutionCache::disabled`] asks per object, as Flux.
    pub resolutions: ResolutionCache,
    /// Artifact contents shared by the objects of this process (`--artifact-sharing`);
    /// [`SharedArtifacts::disabled`] stores a copy per object, as Flux.
    pub shared: SharedArtifacts,
}
