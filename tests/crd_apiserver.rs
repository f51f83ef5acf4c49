//! The committed CRD on a real kube-apiserver: every example applies through v1 and v1beta2 and
//! reads back as v1 with Flux's defaults, and invalid objects are rejected as Flux's CRD rejects
//! them.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::controlplane::ControlPlane;
use common::object::OciRepo;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use ocisource::api::v1;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

fn resource(version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("source.toolkit.fluxcd.io", version, "OCIRepository"),
        "ocirepositories",
    )
}

/// The shared control plane with the CRD installed (once per test binary).
async fn client_with_crd() -> Client {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    let client = ControlPlane::shared().client().await;
    INSTALLED
        .get_or_init(|| common::crd::install(&client))
        .await;
    client
}

async fn namespace(client: &Client, name: &str) -> String {
    static CREATED: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let created = CREATED.get_or_init(Default::default);
    if created.lock().unwrap().contains(&name.to_string()) {
        return name.to_string();
    }
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
    created.lock().unwrap().push(name.to_string());
    name.to_string()
}

fn example_manifests() -> Vec<(String, Value)> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"));
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let value: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if value["kind"] == "OCIRepository" {
            out.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                value,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 14, "examples missing");
    out
}

/// Sends a raw create and returns (status code, Warning headers, body).
async fn raw_create(
    client: &Client,
    version: &str,
    ns: &str,
    body: &Value,
) -> (u16, Vec<String>, Value) {
    let req = http::Request::post(format!(
        "/apis/source.toolkit.fluxcd.io/{version}/namespaces/{ns}/ocirepositories"
    ))
    .header("content-type", "application/json")
    .body(serde_json::to_vec(body).unwrap().into())
    .unwrap();
    let resp = client.send(req).await.unwrap();
    let status = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let bytes = resp.into_body().collect_bytes().await.unwrap();
    (
        status,
        warnings,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn as_version(mut obj: Value, version: &str, ns: &str, suffix: &str) -> Value {
    obj["apiVersion"] = json!(format!("source.toolkit.fluxcd.io/{version}"));
    obj["metadata"]["namespace"] = json!(ns);
    let name = format!("{}-{suffix}", obj["metadata"]["name"].as_str().unwrap());
    obj["metadata"]["name"] = json!(name);
    obj
}

#[tokio::test]
async fn every_example_applies_through_both_versions_and_reads_back_as_v1() {
    let client = client_with_crd().await;
    let ns = namespace(&client, "crd-examples").await;
    let typed: Api<v1::OciRepository> = Api::namespaced(client.clone(), &ns);

    for (file, example) in example_manifests() {
        for version in ["v1", "v1beta2"] {
            let obj = as_version(example.clone(), version, &ns, version);
            let name = obj["metadata"]["name"].as_str().unwrap().to_string();
            let (code, warnings, body) = raw_create(&client, version, &ns, &obj).await;
            assert_eq!(code, 201, "{file} via {version}: {body}");
            let deprecated = warnings
                .iter()
                .any(|w| w.contains("v1beta2 OCIRepository is deprecated, upgrade to v1"));
            assert_eq!(
                deprecated,
                version == "v1beta2",
                "{file} via {version}: {warnings:?}"
            );

            let got = typed.get(&name).await.unwrap();
            let mut expected: v1::OciRepositorySpec =
                serde_json::from_value(obj["spec"].clone()).unwrap();
            // The API server applies the CRD defaults, as for Flux.
            expected.timeout.get_or_insert_with(|| "60s".into());
            expected.provider.get_or_insert(v1::Provider::Generic);
            assert_eq!(got.spec, expected, "{file} via {version}");
            let status = got.status.expect("status defaulted");
            assert_eq!(status.observed_generation, Some(-1), "{file} via {version}");
        }
    }
}

#[tokio::test]
async fn dynamic_reads_of_both_versions_see_the_same_object() {
    let client = client_with_crd().await;
    let ns = namespace(&client, "crd-versions").await;
    let (_, example) = example_manifests()
        .into_iter()
        .find(|(f, _)| f == "ocirepository-semver.yaml")
        .unwrap();
    let obj = as_version(example, "v1beta2", &ns, "both");
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    let (code, _, body) = raw_create(&client, "v1beta2", &ns, &obj).await;
    assert_eq!(code, 201, "{body}");

    let v1: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource("v1"));
    let beta: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource("v1beta2"));
    let a = v1.get(&name).await.unwrap();
    let b = beta.get(&name).await.unwrap();
    assert_eq!(a.types.unwrap().api_version, "source.toolkit.fluxcd.io/v1");
    assert_eq!(
        b.types.unwrap().api_version,
        "source.toolkit.fluxcd.io/v1beta2"
    );
    assert_eq!(a.data["spec"], b.data["spec"]);
    assert_eq!(a.data["spec"]["ref"]["semverFilter"], ".*-rc.*");
}

#[tokio::test]
async fn an_explicit_null_is_pruned_and_defaulted_as_in_flux() {
    let client = client_with_crd().await;
    let ns = namespace(&client, "crd-null").await;
    let obj = OciRepo::new("nulls")
        .namespace(&ns)
        .url("oci://example.com/app")
        .interval("1m")
        .spec("provider", Value::Null)
        .spec("timeout", Value::Null)
        .build();
    let (code, _, body) = raw_create(&client, "v1", &ns, &obj).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["provider"], "generic");
    assert_eq!(body["spec"]["timeout"], "60s");
}

#[tokio::test]
async fn invalid_objects_are_rejected_like_flux_does() {
    let client = client_with_crd().await;
    let ns = namespace(&client, "crd-invalid").await;
    let valid = json!({"url": "oci://example.com/app", "interval": "5m"});
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "url-scheme",
            json!({"url": "https://example.com/app"}),
            "spec.url",
        ),
        ("interval-unit", json!({"interval": "5x"}), "spec.interval"),
        ("timeout-hours", json!({"timeout": "1h"}), "spec.timeout"),
        (
            "operation-move",
            json!({"layerSelector": {"operation": "move"}}),
            "spec.layerSelector.operation",
        ),
        (
            "verify-gpg",
            json!({"verify": {"provider": "gpg"}}),
            "spec.verify.provider",
        ),
        ("provider-ibm", json!({"provider": "ibm"}), "spec.provider"),
        (
            "secretref-noname",
            json!({"secretRef": {}}),
            "spec.secretRef.name",
        ),
        (
            "oidc-no-subject",
            json!({"verify": {"provider": "cosign", "matchOIDCIdentity": [{"issuer": ".*"}]}}),
            "spec.verify.matchOIDCIdentity[0].subject",
        ),
    ];
    for version in ["v1", "v1beta2"] {
        for (name, overlay, field) in &cases {
            let mut spec = valid.clone();
            for (k, v) in overlay.as_object().unwrap() {
                spec[k] = v.clone();
            }
            let obj = json!({
                "apiVersion": format!("source.toolkit.fluxcd.io/{version}"),
                "kind": "OCIRepository",
                "metadata": {"name": format!("{name}-{version}"), "namespace": ns},
                "spec": spec,
            });
            let (code, _, body) = raw_create(&client, version, &ns, &obj).await;
            assert_eq!(code, 422, "{name} via {version} was accepted: {body}");
            let message = body["message"].as_str().unwrap_or_default();
            assert!(message.contains(field), "{name} via {version}: {message}");
        }
        for missing in ["url", "interval"] {
            let mut spec = valid.clone();
            spec.as_object_mut().unwrap().remove(missing);
            let obj = json!({
                "apiVersion": format!("source.toolkit.fluxcd.io/{version}"),
                "kind": "OCIRepository",
                "metadata": {"name": format!("missing-{missing}-{version}"), "namespace": ns},
                "spec": spec,
            });
            let (code, _, body) = raw_create(&client, version, &ns, &obj).await;
            assert_eq!(
                code, 422,
                "missing {missing} via {version} was accepted: {body}"
            );
            let message = body["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(&format!("spec.{missing}")) && message.contains("Required"),
                "missing {missing} via {version}: {message}"
            );
        }
    }
}

/// A merge patch of the status subresource: (HTTP status, body).
async fn raw_patch_status(client: &Client, ns: &str, name: &str, body: &Value) -> (u16, Value) {
    let req = http::Request::patch(format!(
        "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/ocirepositories/{name}/status"
    ))
    .header("content-type", "application/merge-patch+json")
    .body(serde_json::to_vec(body).unwrap().into())
    .unwrap();
    let resp = client.send(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Flux's status validations hold on the real API server: a condition must have a known
/// status, a reason and type of the right shape, and an artifact a digest. Unlike Flux's CRD,
/// `spec` is required (an object without one would break the controller's typed watch).
#[tokio::test]
async fn status_validations_are_fluxs() {
    let client = client_with_crd().await;
    let ns = namespace(&client, "crd-status").await;
    for version in ["v1", "v1beta2"] {
        let bare = json!({
            "apiVersion": format!("source.toolkit.fluxcd.io/{version}"),
            "kind": "OCIRepository",
            "metadata": {"name": format!("bare-{version}"), "namespace": ns},
        });
        let (code, _, body) = raw_create(&client, version, &ns, &bare).await;
        assert_eq!(code, 422, "an object without spec via {version}: {body}");
    }
    let obj = OciRepo::new("status")
        .namespace(&ns)
        .url("oci://example.com/app")
        .interval("5m")
        .build();
    let (code, _, body) = raw_create(&client, "v1", &ns, &obj).await;
    assert_eq!(code, 201, "{body}");
    let condition = json!({
        "type": "Ready", "status": "True", "reason": "Succeeded",
        "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1,
    });
    let artifact = json!({
        "path": "ocirepository/ns/status/sha256:ab.tar.gz",
        "url": "http://localhost:9090/ocirepository/ns/status/sha256:ab.tar.gz",
        "revision": "latest@sha256:ab",
        "digest": "sha256:ab",
        "lastUpdateTime": "2026-01-01T00:00:00Z",
    });
    let good = json!({"status": {"conditions": [condition], "artifact": artifact}});
    let (code, body) = raw_patch_status(&client, &ns, "status", &good).await;
    assert_eq!(code, 200, "{body}");

    let with = |field: &str, value: Value| {
        let mut c = condition.clone();
        c[field] = value;
        json!({"status": {"conditions": [c]}})
    };
    // A merge patch removes a field with null.
    let mut no_digest = artifact.clone();
    no_digest["digest"] = Value::Null;
    let cases = [
        (
            with("status", json!("Maybe")),
            "status.conditions[0].status",
        ),
        (with("reason", json!("")), "status.conditions[0].reason"),
        (
            with("reason", json!("not a reason")),
            "status.conditions[0].reason",
        ),
        (with("type", json!("-bad-")), "status.conditions[0].type"),
        (
            with("observedGeneration", json!(-1)),
            "status.conditions[0].observedGeneration",
        ),
        (
            with("message", json!("x".repeat(32769))),
            "status.conditions[0].message",
        ),
        (
            json!({"status": {"artifact": no_digest}}),
            "status.artifact.digest",
        ),
    ];
    for (patch, field) in cases {
        let (code, body) = raw_patch_status(&client, &ns, "status", &patch).await;
        assert_eq!(code, 422, "{field} was accepted: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{field}: {message}");
    }
}
