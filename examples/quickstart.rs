//! Quickstart: a local control plane (kube-apiserver + etcd from the test bed) with the
//! OCIRepository CRD installed and every manifest of `examples/` applied, listed the way
//! `kubectl get ocirepo` shows them.
//!
//! Run through `scripts/quickstart.sh`, which installs the control plane first. Pass `--hold` to
//! keep the control plane running (its kubeconfig is printed) until Ctrl-C.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;

use common::controlplane::ControlPlane;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use ocisource::api::v1;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let hold = std::env::args().any(|a| a == "--hold");
    println!("starting a local kube-apiserver + etcd ...");
    let cp = ControlPlane::start();
    let client = cp.client().await;

    common::crd::install(&client).await;
    println!("installed the OCIRepository CRD (v1 storage, v1beta2 deprecated)");

    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&examples)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let obj: DynamicObject = serde_saphyr::from_str(&std::fs::read_to_string(&file)?)?;
        let Some(types) = obj.types.clone() else {
            continue;
        };
        if types.kind != "OCIRepository" {
            continue;
        }
        let (group, version) = types.api_version.split_once('/').unwrap_or_default();
        let gvk = GroupVersionKind::gvk(group, version, &types.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, "ocirepositories");
        let ns = obj
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        let name = obj.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("ocisource-quickstart"),
            &Patch::Apply(&obj),
        )
        .await?;
        println!("applied {} ({})", file.display(), types.api_version);
    }

    print_table(&client).await?;
    if hold {
        println!("\nexport KUBECONFIG={}", cp.kubeconfig_path().display());
        println!("holding the control plane; Ctrl-C stops it");
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}

async fn print_table(client: &Client) -> anyhow::Result<()> {
    let api: Api<v1::OciRepository> = Api::all(client.clone());
    let list = api.list(&Default::default()).await?;
    println!(
        "\n{:<10} {:<24} {:<64} {:<6} {:<7} OBSERVED-GENERATION",
        "NAMESPACE", "NAME", "URL", "READY", "STATUS"
    );
    for obj in list {
        let status = obj.status.unwrap_or_default();
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
        println!(
            "{:<10} {:<24} {:<64} {:<6} {:<7} {}",
            obj.metadata.namespace.unwrap_or_default(),
            obj.metadata.name.unwrap_or_default(),
            obj.spec.url,
            ready.map(|c| c.status.as_str()).unwrap_or(""),
            ready.map(|c| c.message.as_str()).unwrap_or(""),
            status
                .observed_generation
                .map(|g| g.to_string())
                .unwrap_or_default(),
        );
    }
    println!("\n(no controller runs yet: objects report observedGeneration -1 until reconciled)");
    Ok(())
}
