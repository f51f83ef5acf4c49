//! Quickstart: the main job on a local control plane.
//!
//! 1. starts kube-apiserver + etcd and a local OCI registry (the test bed's pinned builds),
//! 2. installs the OCIRepository CRD and applies every manifest of `examples/`,
//! 3. publishes `examples/content` with `ocisource push artifact`,
//! 4. runs `ocisource controller` and creates an OCIRepository for it,
//! 5. waits for Ready=True and fetches the artifact back from the artifact server, checking its
//!    digest.
//!
//! Run through `scripts/quickstart.sh`, which installs the components first. `--hold` keeps
//! everything running (the kubeconfig is printed) until Ctrl-C.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use common::controlplane::ControlPlane;
use common::registry::{Flavor, Registry, Security};
use common::{Proc, free_port};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use ocisource::api::v1::OciRepository;
use serde_json::json;
use sha2::{Digest as _, Sha256};

const NAMESPACE: &str = "quickstart";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let hold = std::env::args().any(|a| a == "--hold");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let binary = ocisource_binary()?;
    let work = tempfile::tempdir()?;

    println!("▶ starting a local kube-apiserver + etcd and an OCI registry");
    let cp = ControlPlane::start();
    let registry = Registry::start(Flavor::Distribution, Security::Http);
    let client = cp.client().await;
    common::crd::install(&client).await;
    println!("✔ installed the OCIRepository CRD (v1 storage, v1beta2 deprecated)");
    apply_examples(&client, &root.join("examples")).await?;

    let url = format!("oci://{}/quickstart/hello", registry.host());
    println!("▶ ocisource push artifact {url}:v1.0.0 --path examples/content");
    let out = Command::new(&binary)
        .args(["push", "artifact", &format!("{url}:v1.0.0")])
        .arg("--path")
        .arg(root.join("examples/content"))
        .args([
            "--source",
            "https://github.com/example/hello",
            "--revision",
            "main@sha1:4f1c9d2e",
            "--insecure-registry",
            "-o",
            "json",
        ])
        .output()?;
    if !out.status.success() {
        bail!("push failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    println!("✔ pushed {}", pushed["url"].as_str().unwrap_or_default());

    let storage = work.path().join("storage");
    std::fs::create_dir_all(&storage)?;
    let (artifact_port, health_port, metrics_port) = (free_port(), free_port(), free_port());
    let mut cmd = Command::new(&binary);
    cmd.arg("controller")
        .arg(format!("--storage-path={}", storage.display()))
        .arg(format!("--storage-addr=127.0.0.1:{artifact_port}"))
        .arg(format!("--storage-adv-addr=127.0.0.1:{artifact_port}"))
        .arg(format!("--health-addr=127.0.0.1:{health_port}"))
        .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
        .arg("--watch-all-namespaces=false")
        .arg("--log-encoding=console")
        .env("RUNTIME_NAMESPACE", NAMESPACE)
        .env("KUBECONFIG", cp.kubeconfig_path());
    let controller = Proc::spawn("controller", &cmd, work.path());
    println!(
        "▶ ocisource controller (logs: {})",
        controller.log_path().display()
    );

    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let api: Api<OciRepository> = Api::namespaced(client.clone(), NAMESPACE);
    let obj: OciRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "hello"},
        "spec": {"url": url, "interval": "1m", "insecure": true, "ref": {"semver": ">= 1.0.0"}}
    }))?;
    api.create(&PostParams::default(), &obj).await?;

    let mut ready = None;
    for _ in 0..600 {
        let obj = api.get("hello").await?;
        let status = obj.status.clone().unwrap_or_default();
        if status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
        {
            ready = Some(obj);
            break;
        }
        if !controller.is_running() {
            bail!("the controller exited:\n{}", controller.log_tail(4000));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let obj = ready.context("the OCIRepository did not become ready in 60s")?;
    let status = obj.status.unwrap_or_default();
    let artifact = status.artifact.context("no artifact")?;
    let message = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    println!("✔ Ready=True: {message}");
    println!("  revision: {}", artifact.revision);
    println!("  url:      {}", artifact.url);

    let body = reqwest::get(&artifact.url)
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let digest: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let digest = format!("sha256:{digest}");
    if Some(&digest) != artifact.digest.as_ref() {
        bail!(
            "served bytes have digest {digest}, status says {:?}",
            artifact.digest
        );
    }
    let file = work.path().join("artifact.tar.gz");
    std::fs::write(&file, &body)?;
    let list = Command::new("tar").arg("-tzf").arg(&file).output()?;
    println!(
        "✔ fetched {} bytes from the artifact server, digest {digest} matches; contents:",
        body.len()
    );
    for entry in String::from_utf8_lossy(&list.stdout).lines() {
        println!("    {entry}");
    }

    print_table(&client).await?;
    if hold {
        println!("\nexport KUBECONFIG={}", cp.kubeconfig_path().display());
        println!("holding the control plane, registry and controller; Ctrl-C stops them");
        tokio::signal::ctrl_c().await?;
    }
    drop(controller);
    Ok(())
}

fn ocisource_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("OCISOURCE_BIN") {
        return Ok(PathBuf::from(path));
    }
    // target/<profile>/examples/quickstart -> target/<profile>/ocisource
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("ocisource"))
        .context("cannot locate the ocisource binary")?;
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --bin ocisource`",
            bin.display()
        );
    }
    Ok(bin)
}

async fn apply_examples(client: &Client, dir: &Path) -> anyhow::Result<()> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut applied = 0;
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
        applied += 1;
    }
    println!(
        "✔ applied {applied} example OCIRepository manifests (v1 and v1beta2) to namespace default"
    );
    Ok(())
}

async fn print_table(client: &Client) -> anyhow::Result<()> {
    let api: Api<OciRepository> = Api::all(client.clone());
    let list = api.list(&Default::default()).await?;
    println!(
        "\n{:<11} {:<22} {:<6} {:<8} STATUS",
        "NAMESPACE", "NAME", "READY", "OBSERVED"
    );
    for obj in list {
        let status = obj.status.unwrap_or_default();
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
        let mut message = ready.map(|c| c.message.clone()).unwrap_or_default();
        message.truncate(70);
        println!(
            "{:<11} {:<22} {:<6} {:<8} {}",
            obj.metadata.namespace.unwrap_or_default(),
            obj.metadata.name.unwrap_or_default(),
            ready.map(|c| c.status.as_str()).unwrap_or("-"),
            status
                .observed_generation
                .map(|g| g.to_string())
                .unwrap_or_default(),
            message,
        );
    }
    println!(
        "\n(the examples in `default` point at public registries and no controller watches that namespace here)"
    );
    Ok(())
}
