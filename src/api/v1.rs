//! `source.toolkit.fluxcd.io/v1` OCIRepository: the served storage version, field for field as
//! Flux declares it (names, defaults, enums and patterns), plus the `Artifact` it publishes.
// kube's `printcolumn(...)` repeats keys such as `type_` by design, one group per column.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::metadata::Metadata;

/// Pattern of `spec.url`.
pub const URL_PATTERN: &str = r"^oci://.*$";
/// Pattern of `spec.interval` (Go duration units up to hours).
pub const INTERVAL_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";
/// Pattern of `spec.timeout` (no hours, as in Flux).
pub const TIMEOUT_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$";
/// Pattern of `status.artifact.digest`.
pub const DIGEST_PATTERN: &str = r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$";
/// Default of `spec.timeout`.
pub const DEFAULT_TIMEOUT: &str = "60s";

/// Desired state of an OCIRepository: where to look, what to resolve, how to authenticate and
/// verify, and how to build the artifact.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "OCIRepository",
    root = "OciRepository",
    doc = "A Flux source that resolves a reference in an OCI repository and serves the selected layer as an artifact",
    plural = "ocirepositories",
    singular = "ocirepository",
    shortname = "ocirepo",
    namespaced,
    status = "OciRepositoryStatus",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct OciRepositorySpec {
    /// Address of the OCI repository, `oci://<host>[:port]/<path>`, without tag or digest.
    #[schemars(pattern(URL_PATTERN))]
    pub url: String,

    /// What to resolve in the repository: digest, then semver, then tag; defaults to the
    /// `latest` tag.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<OciRepositoryRef>,

    /// Which layer of the artifact becomes the stored artifact, and how; defaults to the first
    /// layer, extracted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_selector: Option<OciLayerSelector>,

    /// Cloud provider used to log in to the registry when no static credentials are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<Provider>,

    /// Secret with registry credentials (`kubernetes.io/dockerconfigjson` or
    /// `kubernetes.io/dockercfg`) in the object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// Signature verification of the artifact before it is pulled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<OciRepositoryVerification>,

    /// ServiceAccount in the object's namespace whose image pull secrets are used as
    /// registry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Secret with TLS material for the registry: `tls.crt` + `tls.key` (client certificate)
    /// and/or `ca.crt` (extra CA). The legacy keys `certFile`, `keyFile` and `caFile` are
    /// deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,

    /// Secret with the proxy (`address`, optional `username` and `password`) used to reach the
    /// registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,

    /// How often the repository is checked for a new revision (jittered).
    #[schemars(pattern(INTERVAL_PATTERN))]
    pub interval: String,

    /// Time limit of the registry operations of one reconcile; defaults to 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TIMEOUT_PATTERN), extend("default" = DEFAULT_TIMEOUT))]
    pub timeout: Option<String>,

    /// Exclusion patterns in `.gitignore` syntax applied when building the artifact. When set
    /// (even empty) it replaces the default exclusions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,

    /// Allow plain HTTP, and an unverified TLS connection when no certSecretRef is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,

    /// Stop reconciling this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// The reference to resolve in the repository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OciRepositoryRef {
    /// Manifest digest (`sha256:<hex>`) to pull; takes precedence over semver and tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,

    /// Semver constraint; the highest matching tag is pulled. Takes precedence over tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,

    /// Regular expression a tag must match to be considered by the semver constraint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_filter: Option<String>,

    /// Tag to pull; defaults to `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// Selects the layer of the artifact that becomes the stored artifact.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OciLayerSelector {
    /// Media type of the layer to select (exact match); the first matching layer wins. Empty
    /// selects the first layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,

    /// `extract` (default) unpacks the layer and re-archives it; `copy` stores the compressed
    /// layer as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<LayerOperation>,
}

/// What is done with the selected layer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LayerOperation {
    /// Unpack the gzipped tarball and build a normalised tarball from its files.
    #[default]
    Extract,
    /// Store the compressed layer bytes unchanged.
    Copy,
}

/// Cloud provider for registry login.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// No cloud login; static credentials or anonymous.
    #[default]
    Generic,
    /// Amazon ECR.
    Aws,
    /// Azure Container Registry.
    Azure,
    /// Google Artifact Registry / Container Registry.
    Gcp,
}

/// Signature verification settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = require_provider)]
pub struct OciRepositoryVerification {
    /// The signing technology: `cosign` or `notation`.
    #[serde(default)]
    #[schemars(extend("default" = "cosign"))]
    pub provider: VerificationProvider,

    /// Secret with the trusted material: cosign `*.pub` keys, or notation `trustpolicy.json`
    /// and `*.crt`/`*.pem` certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// Keyless cosign: accepted (issuer, subject) regular expressions; any entry may match.
    #[serde(
        rename = "matchOIDCIdentity",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub match_oidc_identity: Option<Vec<OidcIdentityMatch>>,

    /// Secret with a Sigstore `trusted_root.json` for self-hosted Sigstore infrastructure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root_secret_ref: Option<LocalObjectReference>,
}

// Flux's CRD both defaults and requires `verify.provider`; serde's default (needed to read a
// manifest the API server would accept) makes schemars drop it from `required`.
fn require_provider(schema: &mut schemars::Schema) {
    if let Some(required) = schema
        .ensure_object()
        .entry("required")
        .or_insert_with(|| serde_json::json!([]))
        .as_array_mut()
    {
        required.push("provider".into());
    }
}

/// Signing technology.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerificationProvider {
    /// Sigstore cosign, with keys or keyless.
    #[default]
    Cosign,
    /// Notary Project notation.
    Notation,
}

/// Identity accepted for a keyless cosign signature.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct OidcIdentityMatch {
    /// Regular expression matched against the OIDC issuer of the Fulcio certificate.
    pub issuer: String,
    /// Regular expression matched against the identity (subject) of the Fulcio certificate.
    pub subject: String,
}

/// A reference to an object in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct LocalObjectReference {
    /// Name of the referent.
    pub name: String,
}

/// Observed state of an OCIRepository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OciRepositoryStatus {
    /// The last generation reconciled to an end (success, stall, suspend); -1 before that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Conditions of the object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// Stable URL of the latest artifact (`.../latest.tar.gz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,

    /// The artifact of the last successful reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,

    /// `spec.ignore` as used for the current artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,

    /// `spec.layerSelector` as used for the current artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_layer_selector: Option<OciLayerSelector>,

    /// The last handled value of the `reconcile.fluxcd.io/requestedAt` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// A stored artifact, as published in `status.artifact`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Path of the file relative to the storage root.
    pub path: String,

    /// HTTP address of the file on the artifact server.
    pub url: String,

    /// Source revision: `<tag>@<algo>:<hex>` or `<algo>:<hex>`.
    pub revision: String,

    /// Digest of the stored file, `<algo>:<checksum>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DIGEST_PATTERN))]
    pub digest: Option<String>,

    /// When the file was last written.
    pub last_update_time: Time,

    /// Size of the file in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,

    /// Upstream metadata: the OCI manifest annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}
