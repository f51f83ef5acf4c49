//! Every example manifest parses into our types and serialises back without losing or adding a
//! field; a full status does the same.

use std::path::PathBuf;

use ocisource::api::{v1, v1beta2};

fn examples() -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"));
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    out.sort();
    out
}

fn ocirepository_examples() -> Vec<(PathBuf, String)> {
    examples()
        .into_iter()
        .filter(|(_, text)| {
            let v: serde_json::Value = serde_saphyr::from_str(text).unwrap();
            v["kind"] == "OCIRepository"
        })
        .collect()
}

#[test]
fn examples_cover_every_kind_the_issue_names() {
    let all: String = ocirepository_examples()
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    for needle in [
        "tag:",
        "digest: sha256:",
        "semver:",
        "semverFilter:",
        "operation: copy",
        "provider: aws",
        "provider: gcp",
        "provider: azure",
        "serviceAccountName:",
        "certSecretRef:",
        "proxySecretRef:",
        "insecure: true",
        "ignore: |",
        "suspend:",
        "provider: cosign",
        "matchOIDCIdentity:",
        "trustedRootSecretRef:",
        "provider: notation",
        "source.toolkit.fluxcd.io/v1beta2",
    ] {
        assert!(all.contains(needle), "no example uses {needle:?}");
    }
}

#[test]
fn every_example_round_trips_without_losing_a_field() {
    let examples = ocirepository_examples();
    assert!(
        examples.len() >= 14,
        "found only {} examples",
        examples.len()
    );
    for (path, text) in examples {
        let raw: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let back = match raw["apiVersion"].as_str() {
            Some("source.toolkit.fluxcd.io/v1") => {
                let obj: v1::OciRepository = serde_saphyr::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&obj).unwrap()
            }
            Some("source.toolkit.fluxcd.io/v1beta2") => {
                let obj: v1beta2::OciRepository = serde_saphyr::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&obj).unwrap()
            }
            other => panic!("{}: unexpected apiVersion {other:?}", path.display()),
        };
        assert_eq!(raw, back, "{} does not round-trip", path.display());
    }
}

#[test]
fn typed_fields_carry_the_example_values() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ocirepository-helm-chart.yaml"
    ))
    .unwrap();
    let obj: v1::OciRepository = serde_saphyr::from_str(&text).unwrap();
    let selector = obj.spec.layer_selector.unwrap();
    assert_eq!(selector.operation, Some(v1::LayerOperation::Copy));
    assert_eq!(
        selector.media_type.as_deref(),
        Some("application/vnd.cncf.helm.chart.content.v1.tar+gzip")
    );
    assert_eq!(
        obj.spec.reference.unwrap().semver.as_deref(),
        Some(">= 6.0.0")
    );

    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ocirepository-cosign-keyless.yaml"
    ))
    .unwrap();
    let obj: v1::OciRepository = serde_saphyr::from_str(&text).unwrap();
    let verify = obj.spec.verify.unwrap();
    assert_eq!(verify.provider, v1::VerificationProvider::Cosign);
    let ids = verify.match_oidc_identity.unwrap();
    assert_eq!(
        ids[0].issuer,
        r"^https://token\.actions\.githubusercontent\.com$"
    );
}

#[test]
fn verify_provider_defaults_to_cosign_like_the_api_server() {
    let obj: v1::OciRepositoryVerification =
        serde_json::from_value(serde_json::json!({"secretRef": {"name": "keys"}})).unwrap();
    assert_eq!(obj.provider, v1::VerificationProvider::Cosign);
}

#[test]
fn v1beta2_converts_to_the_same_v1_object() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ocirepository-v1beta2.yaml"
    ))
    .unwrap();
    let beta: v1beta2::OciRepository = serde_saphyr::from_str(&text).unwrap();
    let v1obj: v1::OciRepository = beta.clone().into();
    assert_eq!(v1obj.spec, beta.spec.inner);
    assert_eq!(v1obj.metadata, beta.metadata);
    let json = serde_json::to_value(&v1obj).unwrap();
    assert_eq!(json["apiVersion"], "source.toolkit.fluxcd.io/v1");
}

#[test]
fn a_full_status_round_trips() {
    let status = serde_json::json!({
        "observedGeneration": 3,
        "url": "http://source-controller.flux-system.svc.cluster.local./ocirepository/apps/podinfo/latest.tar.gz",
        "artifact": {
            "path": "ocirepository/apps/podinfo/sha256:a081a2c9.tar.gz",
            "url": "http://source-controller.flux-system.svc.cluster.local./ocirepository/apps/podinfo/sha256:a081a2c9.tar.gz",
            "revision": "6.2.3@sha256:a081a2c9",
            "digest": "sha256:9f3bc0f3",
            "lastUpdateTime": "2025-08-08T09:35:45Z",
            "size": 1105,
            "metadata": {
                "org.opencontainers.image.created": "2025-08-08T12:31:41+03:00",
                "org.opencontainers.image.revision": "6.2.3@sha1:b3b00fe3",
                "org.opencontainers.image.source": "https://github.com/stefanprodan/podinfo.git"
            }
        },
        "conditions": [{
            "type": "Ready",
            "status": "True",
            "reason": "Succeeded",
            "message": "stored artifact for digest '6.2.3@sha256:a081a2c9'",
            "observedGeneration": 3,
            "lastTransitionTime": "2025-08-08T09:35:45Z"
        }],
        "observedIgnore": "",
        "observedLayerSelector": {"mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip"},
        "lastHandledReconcileAt": "2025-08-08T09:35:40.123456789Z"
    });
    let typed: v1::OciRepositoryStatus = serde_json::from_value(status.clone()).unwrap();
    assert_eq!(
        typed.observed_ignore.as_deref(),
        Some(""),
        "empty ignore is not nil"
    );
    assert_eq!(serde_json::to_value(&typed).unwrap(), status);

    let mut beta = status.clone();
    beta["contentConfigChecksum"] = "sha256:abc".into();
    let typed: v1beta2::OciRepositoryStatus = serde_json::from_value(beta.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), beta);
}

#[test]
fn consumer_examples_reference_example_sources() {
    let all = examples();
    let names: Vec<String> = ocirepository_examples()
        .iter()
        .map(|(_, t)| {
            let v: serde_json::Value = serde_saphyr::from_str(t).unwrap();
            v["metadata"]["name"].as_str().unwrap().to_string()
        })
        .collect();
    let find = |file: &str| -> serde_json::Value {
        let (_, text) = all.iter().find(|(p, _)| p.ends_with(file)).unwrap();
        serde_saphyr::from_str(text).unwrap()
    };
    let ks = find("kustomization.yaml");
    assert_eq!(ks["spec"]["sourceRef"]["kind"], "OCIRepository");
    assert!(
        names.contains(
            &ks["spec"]["sourceRef"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        )
    );
    let hr = find("helmrelease.yaml");
    assert_eq!(hr["spec"]["chartRef"]["kind"], "OCIRepository");
    let chart = hr["spec"]["chartRef"]["name"].as_str().unwrap();
    assert!(names.contains(&chart.to_string()));
    let source = find("ocirepository-helm-chart.yaml");
    assert_eq!(source["metadata"]["name"], chart);
    assert_eq!(source["spec"]["layerSelector"]["operation"], "copy");
}
