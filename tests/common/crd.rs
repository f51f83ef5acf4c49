//! Installs CRDs on a test-bed API server: the committed OCIRepository CRD, or any other.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

/// Server-side applies `crds/ocirepository.yaml` and waits until the API server serves it.
pub async fn install(client: &Client) {
    install_file(
        client,
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crds/ocirepository.yaml"
        )),
    )
    .await;
}

/// Server-side applies the CRD in `path` (one YAML document) and waits until it is Established.
pub async fn install_file(client: &Client, path: &Path) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("failed to read CRD {}: {e}", path.display()));
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("failed to parse CRD {}: {e}", path.display()));
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap();
    crds.patch(
        &name,
        &PatchParams::apply("ocisource-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    for _ in 0..100 {
        let established = crds
            .get(&name)
            .await
            .unwrap()
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            // Discovery of a new group can lag behind Established by a moment.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("CRD {name} not established");
}

/// The OpenAPI schema of `crd`'s `version`; fails when the version or its schema is missing.
pub fn schema_of(crd: &CustomResourceDefinition, version: &str) -> JSONSchemaProps {
    let v = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == version)
        .unwrap_or_else(|| panic!("version {version} missing"));
    v.schema.clone().unwrap().open_api_v3_schema.unwrap()
}
