//! The OCIRepository API: the v1 and v1beta2 types, the condition vocabulary, well-known keys,
//! and the CustomResourceDefinition generated from the types.

pub mod conditions;
pub mod duration;
pub mod metadata;
pub mod v1;
pub mod v1beta2;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSON, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

pub use v1::OciRepository;

/// API group of the source kinds.
pub const GROUP: &str = "source.toolkit.fluxcd.io";
/// Kind of the object.
pub const KIND: &str = "OCIRepository";
/// Finalizer the controller adds to every object it reconciles.
pub const FINALIZER: &str = "finalizers.fluxcd.io";
/// Annotation a user (or `flux reconcile`) sets to request a reconcile now.
pub const RECONCILE_REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// Object annotation choosing the platform an image index resolves to (`os/arch[/variant]`),
/// over the controller's `--default-platform`; an ocisource extension (Flux always takes
/// `linux/amd64`). The same key in `status.artifact.metadata` records a platform other than
/// `linux/amd64` that the artifact was pulled for.
pub const PLATFORM_ANNOTATION: &str = "ocisource.io/platform";
/// Event metadata key carrying the artifact revision.
pub const EVENT_REVISION_KEY: &str = "source.toolkit.fluxcd.io/revision";
/// Event metadata key carrying the artifact digest.
pub const EVENT_DIGEST_KEY: &str = "source.toolkit.fluxcd.io/digest";
/// Object annotations with this prefix are copied into event metadata.
pub const EVENT_ANNOTATION_PREFIX: &str = "event.toolkit.fluxcd.io/";

/// Why the CRD could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The per-version CRDs do not merge (a bug in the type definitions).
    #[error("failed to merge the per-version CRDs")]
    Merge(#[source] kube::core::crd::MergeError),
    /// The CRD does not serialise.
    #[error("failed to serialise the CRD")]
    Serialize(#[source] serde_saphyr::ser::Error),
}

/// The OCIRepository CRD with both served versions (v1 storage, v1beta2 deprecated).
///
/// Matches Flux's CRD, including the status default `{observedGeneration: -1}` that makes a
/// fresh object report -1 until its first reconcile (kube's derive cannot express a default on
/// the generated status field, so it is added here).
///
/// # Errors
/// Only if the type definitions of the two versions disagree.
pub fn crd() -> Result<CustomResourceDefinition, CrdError> {
    let mut crd = kube::core::crd::merge_crds(
        vec![v1::OciRepository::crd(), v1beta2::OciRepository::crd()],
        "v1",
    )
    .map_err(CrdError::Merge)?;
    crd.spec.names.list_kind = Some(format!("{KIND}List"));
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        strip_nullable(root);
        as_flux_root(root);
        if let Some(status) = root.properties.as_mut().and_then(|p| p.get_mut("status")) {
            status.default = Some(JSON(serde_json::json!({"observedGeneration": -1})));
        }
        if let Some(artifact) = property(root, &["status", "artifact"]) {
            // Always written by the controller; Flux's type has no `omitempty` on it.
            require(artifact, "digest");
        }
        if let Some(condition) =
            property(root, &["status", "conditions"]).and_then(|c| match c.items.as_mut() {
                Some(JSONSchemaPropsOrArray::Schema(s)) => Some(s.as_mut()),
                _ => None,
            })
        {
            validate_condition(condition);
        }
    }
    Ok(crd)
}

// The root as controller-gen writes it: no title, and the type fields (`apiVersion`, `kind`,
// `metadata`) described, which kube's derive leaves out. Unlike Flux's, `spec` stays required:
// one object without it would fail the typed list of every watch, stopping all reconciles
// (Flux's Go client reads it as an empty spec, which then stalls on its empty URL).
fn as_flux_root(root: &mut JSONSchemaProps) {
    root.title = None;
    let properties = root.properties.get_or_insert_with(Default::default);
    let string = |description: &str| JSONSchemaProps {
        description: Some(description.to_string()),
        type_: Some("string".to_string()),
        ..JSONSchemaProps::default()
    };
    properties.insert(
        "apiVersion".to_string(),
        string("The versioned schema of this representation of the object."),
    );
    properties.insert(
        "kind".to_string(),
        string("The REST resource this object represents, in CamelCase."),
    );
    properties.insert(
        "metadata".to_string(),
        JSONSchemaProps {
            type_: Some("object".to_string()),
            ..JSONSchemaProps::default()
        },
    );
}

// The validations of `metav1.Condition` that controller-gen emits from its markers and the
// k8s-openapi schema lacks.
fn validate_condition(condition: &mut JSONSchemaProps) {
    let Some(properties) = condition.properties.as_mut() else {
        return;
    };
    if let Some(message) = properties.get_mut("message") {
        message.max_length = Some(32768);
    }
    if let Some(generation) = properties.get_mut("observedGeneration") {
        generation.minimum = Some(0.0);
    }
    if let Some(reason) = properties.get_mut("reason") {
        reason.max_length = Some(1024);
        reason.min_length = Some(1);
        reason.pattern = Some("^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$".to_string());
    }
    if let Some(status) = properties.get_mut("status") {
        status.enum_ = Some(
            ["True", "False", "Unknown"]
                .map(|v| JSON(serde_json::json!(v)))
                .to_vec(),
        );
    }
    if let Some(type_) = properties.get_mut("type") {
        type_.max_length = Some(316);
        type_.pattern = Some(
            "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
                .to_string(),
        );
    }
}

fn property<'a>(schema: &'a mut JSONSchemaProps, path: &[&str]) -> Option<&'a mut JSONSchemaProps> {
    path.iter()
        .try_fold(schema, |s, p| s.properties.as_mut()?.get_mut(*p))
}

fn require(schema: &mut JSONSchemaProps, field: &str) {
    let required = schema.required.get_or_insert_with(Vec::new);
    if !required.iter().any(|r| r == field) {
        required.push(field.to_string());
        required.sort();
    }
}

// kube marks every `Option` field `nullable`; Flux's CRD marks none. The difference is visible:
// the API server prunes an explicit `null` of a non-nullable field and then applies its default
// (`provider: null` becomes `generic`), while a nullable field keeps the null.
fn strip_nullable(schema: &mut JSONSchemaProps) {
    schema.nullable = None;
    let children = schema
        .properties
        .iter_mut()
        .flat_map(|p| p.values_mut())
        .chain(match schema.items.as_mut() {
            Some(JSONSchemaPropsOrArray::Schema(s)) => vec![s.as_mut()],
            Some(JSONSchemaPropsOrArray::Schemas(v)) => v.iter_mut().collect(),
            None => vec![],
        })
        .chain(match schema.additional_properties.as_mut() {
            Some(JSONSchemaPropsOrBool::Schema(s)) => Some(s.as_mut()),
            _ => None,
        });
    for child in children {
        strip_nullable(child);
    }
}

/// The CRD as the YAML document committed under `crds/`.
///
/// # Errors
/// See [`crd`].
pub fn crd_yaml() -> Result<String, CrdError> {
    let crd = crd()?;
    let yaml = serde_saphyr::to_string(&crd).map_err(CrdError::Serialize)?;
    Ok(format!("---\n{yaml}"))
}
