//! The product promise, checked with the real consumer: Flux's kustomize-controller v1.6.0
//! applies what our `status.artifact` points at, unchanged. It downloads the tarball from our
//! artifact server, verifies `artifact.digest`, applies it, reports our revision as
//! `lastAppliedRevision`, and follows a new revision when our artifact changes. The real flux
//! CLI reads and reconciles both objects on the same control plane.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::controller::Controller;
use common::controlplane::ControlPlane;
use common::kustomize_controller::{self, KustomizeController};
use common::registry::{Flavor, Registry, Security};
use common::tools;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use ocisource::api::v1::OciRepository;
use serde_json::{Value, json};

const NS: &str = "consumers";
const TIMEOUT: Duration = Duration::from_secs(120);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ocisource"))
}

/// Both controllers; their log tails are printed when the test fails.
struct Controllers {
    ours: Controller,
    kustomize: KustomizeController,
}

impl Drop for Controllers {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- ocisource controller log (tail) ---\n{}\n\
                 --- kustomize-controller log (tail) ---\n{}",
                self.ours.proc.log_tail(8000),
                self.kustomize.proc.log_tail(8000)
            );
        }
    }
}

fn kustomizations(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "kustomizations");
    Api::namespaced_with(client.clone(), NS, &resource)
}

/// The Ready condition's status, reason and message.
fn ready_of(conditions: &Value) -> Option<(String, String, String)> {
    let c = conditions
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
        c["message"].as_str()?.to_string(),
    ))
}

/// Sets `reconcile.fluxcd.io/requestedAt` to a fresh value, as `flux reconcile` does; returns it.
async fn request_reconcile<K>(api: &Api<K>, name: &str) -> String
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let requested = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {
            "reconcile.fluxcd.io/requestedAt": requested
        }}})),
    )
    .await
    .unwrap();
    requested
}

/// Waits until the Kustomization has handled `requested` and is Ready=False; returns the
/// condition's reason and message.
async fn wait_failed(api: &Api<DynamicObject>, name: &str, requested: &str) -> (String, String) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let obj = api.get(name).await.unwrap();
        let status = &obj.data["status"];
        if status["lastHandledReconcileAt"] == requested
            && let Some((s, reason, message)) = ready_of(&status["conditions"])
            && s == "False"
        {
            return (reason, message);
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for Kustomization {name} to fail; last status: {status:#}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the Kustomization is Ready=True for its generation with `revision` applied.
async fn wait_applied(api: &Api<DynamicObject>, name: &str, revision: &str) -> DynamicObject {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let obj = api.get(name).await.unwrap();
        let status = &obj.data["status"];
        let ready = ready_of(&status["conditions"]);
        if ready.as_ref().is_some_and(|r| r.0 == "True")
            && status["observedGeneration"].as_i64() == obj.metadata.generation
            && status["lastAppliedRevision"] == revision
        {
            return obj;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for Kustomization {name} to apply {revision}; last status: {status:#}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the OCIRepository is Ready=True for its generation with an artifact revision
/// `revision`.
async fn wait_artifact(api: &Api<OciRepository>, name: &str, revision: &str) -> OciRepository {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let obj = api.get(name).await.unwrap();
        if let Some(status) = &obj.status
            && status.observed_generation == obj.metadata.generation
            && status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
            && status
                .artifact
                .as_ref()
                .is_some_and(|a| a.revision == revision)
        {
            return obj;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for OCIRepository {name} to store {revision}; last status: {:#?}",
                obj.status
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until ConfigMap `name` holds `data` (or, with `None`, is gone).
async fn wait_config_map(api: &Api<ConfigMap>, name: &str, data: Option<(&str, &str)>) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let cm = api.get_opt(name).await.unwrap();
        let now = cm.as_ref().map(|cm| cm.data.clone().unwrap_or_default());
        let done = match (data, &now) {
            (Some((k, v)), Some(d)) => d.get(k).map(String::as_str) == Some(v),
            (None, None) => true,
            _ => false,
        };
        if done {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for ConfigMap {name} to be {data:?}; now: {now:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The row of `name` in a `flux get` table: NAME REVISION SUSPENDED READY MESSAGE.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{table}"))
}

/// A revision as `flux get` prints it: hex runs of 40+ characters cut to 8.
fn truncated(revision: &str) -> String {
    match revision.split_once("@sha256:") {
        Some((tag, hex)) => format!("{tag}@sha256:{}", &hex[..8]),
        None => revision.to_string(),
    }
}

/// Writes `configmaps.yaml` (no kustomization.yaml: kustomize-controller generates one): the
/// ConfigMap `greeting` with `message`, and with `with_extra` a second ConfigMap `extra`.
fn write_manifests(dir: &Path, message: &str, with_extra: bool) {
    let mut yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\ndata:\n  message: {message}\n"
    );
    if with_extra {
        yaml.push_str(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  note: pruned later\n",
        );
    }
    std::fs::write(dir.join("configmaps.yaml"), yaml).unwrap();
}

/// `ocisource push artifact ... -o json`: the pushed manifest digest.
fn ocisource_push(reg: &Registry, repo_tag: &str, path: &Path, revision: &str) -> String {
    let out = tools::run(
        std::process::Command::new(binary())
            .args(["push", "artifact"])
            .arg(format!("oci://{}/{repo_tag}", reg.host()))
            .arg("--path")
            .arg(path)
            .args([
                "--source",
                "https://example.com/config",
                "--revision",
                revision,
            ])
            .args(["--insecure-registry", "-o", "json"]),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["digest"].as_str().unwrap().to_string()
}

async fn create_namespace(client: &Client) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn kustomize_controller_applies_and_follows_our_artifact() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    kustomize_controller::install_crds(&client).await;
    create_namespace(&client).await;

    // v1, pushed by the real flux CLI: two ConfigMaps.
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = tempfile::tempdir().unwrap();
    write_manifests(content.path(), "hello from v1", true);
    let first = tools::flux_push_artifact(
        &reg,
        "apps/config",
        "latest",
        content.path(),
        "https://example.com/config",
        "main@sha1:1111111111111111111111111111111111111111",
        &[],
    );

    let controllers = Controllers {
        ours: Controller::start(cp, binary(), NS, &[]),
        kustomize: KustomizeController::start(cp, NS),
    };

    let repos: Api<OciRepository> = Api::namespaced(client.clone(), NS);
    let repo: OciRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "config", "namespace": NS},
        "spec": {
            "url": format!("oci://{}/apps/config", reg.host()),
            "interval": "10m",
            "insecure": true,
            "ref": {"tag": "latest"}
        }
    }))
    .unwrap();
    repos.create(&PostParams::default(), &repo).await.unwrap();

    let ks_api = kustomizations(&client);
    let ks: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "app", "namespace": NS},
        "spec": {
            "interval": "1m",
            "sourceRef": {"kind": "OCIRepository", "name": "config"},
            "path": "./",
            "prune": true,
            "targetNamespace": NS
        }
    }))
    .unwrap();
    ks_api.create(&PostParams::default(), &ks).await.unwrap();

    // kustomize-controller downloads our artifact, verifies its digest and applies it.
    let rev1 = format!("latest@{first}");
    let repo = wait_artifact(&repos, "config", &rev1).await;
    let artifact = repo.status.as_ref().unwrap().artifact.clone().unwrap();
    let applied = wait_applied(&ks_api, "app", &rev1).await;
    assert_eq!(
        applied.data["status"]["lastAttemptedRevision"],
        rev1.as_str()
    );
    assert_eq!(
        ready_of(&applied.data["status"]["conditions"]).unwrap().2,
        format!("Applied revision: {rev1}")
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    wait_config_map(&config_maps, "greeting", Some(("message", "hello from v1"))).await;
    wait_config_map(&config_maps, "extra", Some(("note", "pruned later"))).await;

    // The flux CLI sees our object as Ready with our revision, and reconciles it.
    let kubeconfig = cp.kubeconfig_path();
    let table = tools::flux_cluster(kubeconfig, ["get", "sources", "oci", "-n", NS]);
    let cols = row(&table, "config");
    assert_eq!(cols[1], truncated(&rev1), "{table}");
    assert_eq!(cols[3], "True", "{table}");
    let out = tools::flux_cluster(
        kubeconfig,
        ["reconcile", "source", "oci", "config", "-n", NS],
    );
    assert!(out.contains(&format!("fetched revision {rev1}")), "{out}");
    let repo = repos.get("config").await.unwrap();
    let status = repo.status.unwrap();
    assert!(status.last_handled_reconcile_at.is_some());
    assert_eq!(status.artifact.unwrap().digest, artifact.digest);
    let table = tools::flux_cluster(kubeconfig, ["get", "kustomizations", "-n", NS]);
    let cols = row(&table, "app");
    assert_eq!(cols[1], truncated(&rev1), "{table}");
    assert_eq!(cols[3], "True", "{table}");

    // It checks our digest: a stored tarball that no longer matches it is refused.
    let stored = controllers.ours.storage.path().join(&artifact.path);
    let original = std::fs::read(&stored).unwrap();
    std::fs::write(&stored, b"not the published tarball").unwrap();
    let requested = request_reconcile(&ks_api, "app").await;
    let (reason, message) = wait_failed(&ks_api, "app", &requested).await;
    assert_eq!(reason, "ArtifactFailed", "{message}");
    assert!(
        message.contains(artifact.digest.as_deref().unwrap()),
        "{message}"
    );
    std::fs::write(&stored, &original).unwrap();

    // v2 on the same tag, pushed by ocisource: one ConfigMap changed, the other gone.
    write_manifests(content.path(), "hello from v2", false);
    let second = ocisource_push(
        &reg,
        "apps/config:latest",
        content.path(),
        "main@sha1:2222222222222222222222222222222222222222",
    );
    assert_ne!(second, first);
    let requested = request_reconcile(&repos, "config").await;
    let rev2 = format!("latest@{second}");
    let repo = wait_artifact(&repos, "config", &rev2).await;
    assert_eq!(
        repo.status.unwrap().last_handled_reconcile_at.as_deref(),
        Some(requested.as_str())
    );
    // kustomize-controller follows our artifact revision without being asked.
    wait_applied(&ks_api, "app", &rev2).await;
    wait_config_map(&config_maps, "greeting", Some(("message", "hello from v2"))).await;
    wait_config_map(&config_maps, "extra", None).await;

    // What a user runs after a push: the source first, then the Kustomization.
    let out = tools::flux_cluster(
        kubeconfig,
        [
            "reconcile",
            "kustomization",
            "app",
            "--with-source",
            "-n",
            NS,
        ],
    );
    assert!(out.contains(&format!("fetched revision {rev2}")), "{out}");
    assert!(out.contains(&format!("applied revision {rev2}")), "{out}");
    let table = tools::flux_cluster(kubeconfig, ["get", "sources", "oci", "-n", NS]);
    let cols = row(&table, "config");
    assert_eq!(cols[1], truncated(&rev2), "{table}");
    assert_eq!(cols[3], "True", "{table}");
}
