//! `source.toolkit.fluxcd.io/v1beta2` OCIRepository: served and deprecated, as in Flux 2.6 and
//! 2.7, so that manifests written for it still apply. Its schema is v1's plus the deprecated
//! `status.contentConfigChecksum`; with no conversion webhook the API server stores such objects
//! as v1 unchanged, so the controller only ever reads v1.
// kube's `printcolumn(...)` repeats keys such as `type_` by design, one group per column.
#![allow(clippy::duplicated_attributes)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::v1;

/// The deprecation warning the API server returns to clients of this version.
pub const DEPRECATION_WARNING: &str = "v1beta2 OCIRepository is deprecated, upgrade to v1";

/// v1beta2 spec: identical to v1.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1beta2",
    kind = "OCIRepository",
    root = "OciRepository",
    doc = "A Flux source that resolves a reference in an OCI repository and serves the selected layer as an artifact",
    plural = "ocirepositories",
    singular = "ocirepository",
    shortname = "ocirepo",
    namespaced,
    status = "OciRepositoryStatus",
    deprecated = "v1beta2 OCIRepository is deprecated, upgrade to v1",
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
pub struct OciRepositorySpec {
    /// The v1 fields, inline.
    #[serde(flatten)]
    pub inner: v1::OciRepositorySpec,
}

/// v1beta2 status: v1's plus the deprecated content checksum.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OciRepositoryStatus {
    /// The v1 fields, inline.
    #[serde(flatten)]
    pub inner: v1::OciRepositoryStatus,

    /// Deprecated checksum of the content configuration (`<algo>:<checksum>`); never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_config_checksum: Option<String>,
}

impl From<OciRepository> for v1::OciRepository {
    /// The same object as v1, which is what the API server stores.
    fn from(obj: OciRepository) -> Self {
        let mut out = v1::OciRepository::new("", obj.spec.inner);
        out.metadata = obj.metadata;
        out.status = obj.status.map(|s| s.inner);
        out
    }
}
