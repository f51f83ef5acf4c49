//! The generated CRD: committed copy in sync with the code, and the validation facts of Flux's
//! CRD (names, versions, defaults, enums, patterns, required fields, printer columns).

mod common;

use common::crd::schema_of;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::Value;

fn prop<'a>(schema: &'a JSONSchemaProps, path: &str) -> &'a JSONSchemaProps {
    path.split('.').fold(schema, |s, p| {
        s.properties
            .as_ref()
            .and_then(|m| m.get(p))
            .unwrap_or_else(|| panic!("property {p} of {path} missing"))
    })
}

fn enum_values(s: &JSONSchemaProps) -> Vec<String> {
    s.enum_
        .as_ref()
        .unwrap_or_else(|| panic!("no enum"))
        .iter()
        .map(|v| v.0.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn committed_crd_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/ocirepository.yaml"
    ))
    .unwrap();
    let generated = ocisource::api::crd_yaml().unwrap();
    assert!(
        committed == generated,
        "crds/ocirepository.yaml is stale: run `cargo run -- crds > crds/ocirepository.yaml`"
    );
}

#[test]
fn the_crd_serves_v1_as_storage_and_v1beta2_deprecated() {
    let crd = ocisource::api::crd().unwrap();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("ocirepositories.source.toolkit.fluxcd.io")
    );
    assert_eq!(crd.spec.group, "source.toolkit.fluxcd.io");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.kind, "OCIRepository");
    assert_eq!(crd.spec.names.plural, "ocirepositories");
    assert_eq!(crd.spec.names.singular.as_deref(), Some("ocirepository"));
    assert_eq!(
        crd.spec.names.short_names,
        Some(vec!["ocirepo".to_string()])
    );

    let versions: Vec<_> = crd
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.served, v.storage, v.deprecated))
        .collect();
    assert_eq!(
        versions,
        vec![
            ("v1", true, true, None),
            ("v1beta2", true, false, Some(true))
        ]
    );
    let beta = &crd.spec.versions[1];
    assert_eq!(
        beta.deprecation_warning.as_deref(),
        Some("v1beta2 OCIRepository is deprecated, upgrade to v1")
    );
    for v in &crd.spec.versions {
        assert!(v.subresources.as_ref().unwrap().status.is_some());
        let columns: Vec<_> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| (c.name.as_str(), c.type_.as_str(), c.json_path.as_str()))
            .collect();
        assert_eq!(
            columns,
            vec![
                ("URL", "string", ".spec.url"),
                (
                    "Ready",
                    "string",
                    ".status.conditions[?(@.type==\"Ready\")].status"
                ),
                (
                    "Status",
                    "string",
                    ".status.conditions[?(@.type==\"Ready\")].message"
                ),
                ("Age", "date", ".metadata.creationTimestamp"),
            ]
        );
    }
}

#[test]
fn both_versions_carry_flux_validation() {
    let crd = ocisource::api::crd().unwrap();
    for version in ["v1", "v1beta2"] {
        let root = schema_of(&crd, version);
        let spec = prop(&root, "spec");
        let mut required = spec.required.clone().unwrap();
        required.sort();
        assert_eq!(required, vec!["interval", "url"], "{version}");

        assert_eq!(prop(spec, "url").pattern.as_deref(), Some("^oci://.*$"));
        assert_eq!(
            prop(spec, "interval").pattern.as_deref(),
            Some(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")
        );
        let timeout = prop(spec, "timeout");
        assert_eq!(
            timeout.pattern.as_deref(),
            Some(r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$")
        );
        assert_eq!(timeout.default.as_ref().unwrap().0, "60s");

        let provider = prop(spec, "provider");
        assert_eq!(enum_values(provider), ["generic", "aws", "azure", "gcp"]);
        assert_eq!(provider.default.as_ref().unwrap().0, "generic");

        assert_eq!(
            enum_values(prop(spec, "layerSelector.operation")),
            ["extract", "copy"]
        );
        for key in ["mediaType", "operation"] {
            prop(spec, &format!("layerSelector.{key}"));
        }
        for key in ["digest", "semver", "semverFilter", "tag"] {
            assert_eq!(
                prop(spec, &format!("ref.{key}")).type_.as_deref(),
                Some("string")
            );
        }
        for secret in ["secretRef", "certSecretRef", "proxySecretRef"] {
            assert_eq!(prop(spec, secret).required, Some(vec!["name".to_string()]));
        }
        for key in ["serviceAccountName", "ignore"] {
            assert_eq!(prop(spec, key).type_.as_deref(), Some("string"));
        }
        for key in ["insecure", "suspend"] {
            assert_eq!(prop(spec, key).type_.as_deref(), Some("boolean"));
        }

        let verify = prop(spec, "verify");
        assert_eq!(verify.required, Some(vec!["provider".to_string()]));
        let vp = prop(verify, "provider");
        assert_eq!(enum_values(vp), ["cosign", "notation"]);
        assert_eq!(vp.default.as_ref().unwrap().0, "cosign");
        for secret in ["secretRef", "trustedRootSecretRef"] {
            assert_eq!(
                prop(verify, secret).required,
                Some(vec!["name".to_string()])
            );
        }
        let matcher = prop(verify, "matchOIDCIdentity");
        assert_eq!(matcher.type_.as_deref(), Some("array"));
        let item = match matcher.items.as_ref().unwrap() {
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(s) => s,
            other => panic!("unexpected items {other:?}"),
        };
        assert_eq!(
            item.required,
            Some(vec!["issuer".to_string(), "subject".to_string()])
        );

        let status = prop(&root, "status");
        assert_eq!(
            status.default.as_ref().unwrap().0,
            serde_json::json!({"observedGeneration": -1})
        );
        let artifact = prop(status, "artifact");
        let mut required = artifact.required.clone().unwrap();
        required.sort();
        assert_eq!(
            required,
            ["digest", "lastUpdateTime", "path", "revision", "url"]
        );
        assert_eq!(
            prop(artifact, "digest").pattern.as_deref(),
            Some(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
        );
        for key in [
            "observedGeneration",
            "conditions",
            "url",
            "observedIgnore",
            "observedLayerSelector",
            "lastHandledReconcileAt",
        ] {
            prop(status, key);
        }
        let checksum = status
            .properties
            .as_ref()
            .unwrap()
            .contains_key("contentConfigChecksum");
        assert_eq!(
            checksum,
            version == "v1beta2",
            "contentConfigChecksum in {version}"
        );
    }
}

#[test]
fn no_field_is_nullable_as_in_flux() {
    let yaml = ocisource::api::crd_yaml().unwrap();
    assert!(!yaml.contains("nullable"));
}

/// Deliberate differences from source-controller v1.7.0's CRD, by path under `spec`; every
/// description is also our own wording (descriptions are not compared).
const DELIBERATE: &[(&str, &str)] = &[
    (
        "versions[v1].schema.openAPIV3Schema.required",
        "spec required: an object without it would break the typed watch of all objects",
    ),
    (
        "versions[v1].schema.openAPIV3Schema.properties.spec.properties.verify.properties.trustedRootSecretRef",
        "Flux 2.9's field for self-hosted Sigstore, accepted so manifests written for later Flux apply",
    ),
    (
        "versions[v1beta2].schema.openAPIV3Schema.properties.spec.properties.verify.properties.trustedRootSecretRef",
        "the same field in v1beta2, whose schema must stay structurally identical to v1's",
    ),
    (
        "versions[v1beta2].schema.openAPIV3Schema.required",
        "spec required in v1beta2 too",
    ),
];

// Differences between `ours` and `theirs` below `path`, descriptions aside; versions are matched
// by name.
fn differences(path: &str, ours: &Value, theirs: &Value, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
            for key in keys.into_iter().filter(|k| *k != "description") {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differences(&here, x, y, out),
                    (Some(_), None) => out.push(format!("{here} (ours only)")),
                    (None, _) => out.push(format!("{here} (upstream only)")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if path == "versions" => {
            let name = |v: &Value| v["name"].as_str().unwrap_or_default().to_string();
            let names_a: Vec<_> = a.iter().map(name).collect();
            let names_b: Vec<_> = b.iter().map(name).collect();
            if names_a != names_b {
                out.push(format!("{path}: {names_a:?} vs upstream {names_b:?}"));
                return;
            }
            for (x, y) in a.iter().zip(b) {
                differences(&format!("{path}[{}]", name(x)), x, y, out);
            }
        }
        // JSON Schema numbers: `0.0` (an f64 in k8s-openapi) is upstream's `0`.
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) if a != b => out.push(format!("{path}: {a} vs upstream {b}")),
        _ => {}
    }
}

#[test]
fn the_crd_matches_source_controller_v1_7_field_by_field() {
    let file = common::beside_bin("kustomize-controller", "crds")
        .join("source.toolkit.fluxcd.io_ocirepositories.yaml");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "source-controller's CRD not found at {} ({e}): run `testbed/install-consumers.sh`",
            file.display()
        )
    });
    let upstream: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(
        upstream["metadata"]["annotations"]["controller-gen.kubebuilder.io/version"], "v0.19.0",
        "the CRD of source-controller v1.7.0"
    );
    let ours = serde_json::to_value(ocisource::api::crd().unwrap()).unwrap();
    assert_eq!(ours["metadata"]["name"], upstream["metadata"]["name"]);
    let mut found = vec![];
    differences("", &ours["spec"], &upstream["spec"], &mut found);
    found.sort();
    let mut expected: Vec<String> = DELIBERATE
        .iter()
        .map(|(path, _)| format!("{path} (ours only)"))
        .collect();
    expected.sort();
    assert_eq!(found, expected, "differences from upstream's CRD");
}
