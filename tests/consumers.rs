//! The product promise, checked with the real consumers. Flux's kustomize-controller v1.6.0
//! applies what our `status.artifact` points at, unchanged. It downloads the tarball from our
//! artifact server, verifies `artifact.digest`, applies it, reports our revision as
//! `lastAppliedRevision`, and follows a new revision when our artifact changes. The real flux
//! CLI reads and reconciles both objects on the same control plane. Flux's helm-controller
//! v1.4.3 installs the Helm chart our artifact carries (stored as pushed, in copy mode) through
//! `HelmRelease.spec.chartRef`, names our revision's digest in its release history, and
//! upgrades the release when our artifact follows a newer chart version; the flux CLI reconciles
//! both objects.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::controller::Controller;
use common::controlplane::{ControlPlane, create_namespace};
use common::flux_controller::{self, FluxController, Kind};
use common::object::{OciRepo, is_ready_with_artifact};
use common::registry::{Flavor, Registry, Security};
use common::tools;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use ocisource::api::v1::OciRepository;
use serde_json::{Value, json};

const NS: &str = "consumers";
/// The helm-controller test's namespace: tests run in parallel on one control plane.
const HELM_NS: &str = "consumers-helm";
const TIMEOUT: Duration = Duration::from_secs(120);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ocisource"))
}

/// Both controllers; their log tails are printed when the test fails.
struct Controllers {
    ours: Controller,
    consumer: FluxController,
}

impl Drop for Controllers {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- ocisource controller log (tail) ---\n{}\n\
                 --- {} log (tail) ---\n{}",
                self.ours.proc.log_tail(8000),
                self.consumer.kind.name(),
                self.consumer.proc.log_tail(8000)
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

/// Waits until the Kustomization (or HelmRelease) has handled `requested` and is Ready=False;
/// returns the condition's reason and message.
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
            panic!("timed out waiting for {name} to fail; last status: {status:#}");
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
        if is_ready_with_artifact(&obj, |a| a.revision == revision) {
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

fn helm_releases(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("helm.toolkit.fluxcd.io", "v2", "HelmRelease");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "helmreleases");
    Api::namespaced_with(client.clone(), HELM_NS, &resource)
}

/// The chart version helm-controller derives from an OCIRepository artifact revision
/// `<version>@sha256:<hex>`: the version with the digest's first 12 hex characters as build
/// metadata.
fn chart_version_of(version: &str, digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    format!("{version}+{}", &hex[..12])
}

/// Waits until the HelmRelease is Ready=True for its generation, with release `revision` of
/// `chart_version` deployed from the chart pushed as `digest`; returns its status.
async fn wait_released(
    api: &Api<DynamicObject>,
    name: &str,
    revision: i64,
    chart_version: &str,
    digest: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let obj = api.get(name).await.unwrap();
        let status = &obj.data["status"];
        let ready = ready_of(&status["conditions"]);
        let latest = &status["history"][0];
        if ready.as_ref().is_some_and(|r| r.0 == "True")
            && status["observedGeneration"].as_i64() == obj.metadata.generation
            && status["lastAttemptedRevision"] == chart_version
            && status["lastAttemptedRevisionDigest"] == digest
            && latest["version"].as_i64() == Some(revision)
            && latest["chartVersion"] == chart_version
            && latest["ociDigest"] == digest
            && latest["status"] == "deployed"
        {
            return status.clone();
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for HelmRelease {name} to deploy {chart_version} as release \
                 {revision}; last status: {status:#}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Writes the chart `greeter` at `version` (with [`tools::write_minimal_chart`]) with a
/// template whose ConfigMap `<release>-greeting` holds the value `greeting` and the chart
/// version helm-controller installed.
fn write_chart(parent: &Path, version: &str) -> std::path::PathBuf {
    let dir = tools::write_minimal_chart(parent, "greeter", version);
    std::fs::write(
        dir.join("templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\n\
         data:\n  greeting: {{ .Values.greeting | quote }}\n  chart: {{ .Chart.Version | quote }}\n",
    )
    .unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn kustomize_controller_applies_and_follows_our_artifact() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    flux_controller::install_crds(&client, Kind::Kustomize).await;
    create_namespace(&client, NS).await;

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
        consumer: FluxController::start(cp, Kind::Kustomize, NS),
    };

    let repos: Api<OciRepository> = Api::namespaced(client.clone(), NS);
    let repo = OciRepo::new("config")
        .namespace(NS)
        .url(format!("oci://{}/apps/config", reg.host()))
        .interval("10m")
        .insecure()
        .tag("latest")
        .object();
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

#[tokio::test(flavor = "multi_thread")]
async fn helm_controller_installs_and_upgrades_our_chart_artifact() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    flux_controller::install_crds(&client, Kind::Helm).await;
    create_namespace(&client, HELM_NS).await;

    // Chart 0.1.0, pushed by the real helm CLI.
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let charts = tempfile::tempdir().unwrap();
    let first = tools::helm_package_and_push(
        &reg,
        &write_chart(&charts.path().join("v1"), "0.1.0"),
        "charts",
    );
    assert_eq!(first.version, "0.1.0");

    let controllers = Controllers {
        ours: Controller::start(cp, binary(), HELM_NS, &[]),
        consumer: FluxController::start(cp, Kind::Helm, HELM_NS),
    };

    // Our OCIRepository follows the newest 0.x chart and stores the chart layer as pushed.
    let repos: Api<OciRepository> = Api::namespaced(client.clone(), HELM_NS);
    let repo = OciRepo::new("greeter")
        .namespace(HELM_NS)
        .url(format!("oci://{}/{}", reg.host(), first.repository))
        .interval("10m")
        .insecure()
        .semver(">=0.1.0 <1.0.0")
        .spec(
            "layerSelector",
            json!({
                "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                "operation": "copy"
            }),
        )
        .object();
    repos.create(&PostParams::default(), &repo).await.unwrap();

    let hr_api = helm_releases(&client);
    let hr: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "app", "namespace": HELM_NS},
        "spec": {
            "interval": "1m",
            "chartRef": {"kind": "OCIRepository", "name": "greeter"},
            "values": {"greeting": "hello from values"}
        }
    }))
    .unwrap();
    hr_api.create(&PostParams::default(), &hr).await.unwrap();

    // helm-controller downloads our artifact, verifies its digest, loads the chart and installs
    // it, naming our revision's digest in the chart version and the release history.
    let rev1 = format!("0.1.0@{}", first.digest);
    let repo = wait_artifact(&repos, "greeter", &rev1).await;
    let artifact = repo.status.unwrap().artifact.unwrap();
    let version1 = chart_version_of("0.1.0", &first.digest);
    let status = wait_released(&hr_api, "app", 1, &version1, &first.digest).await;
    assert_eq!(status["history"][0]["chartName"], "greeter", "{status:#}");
    assert_eq!(
        ready_of(&status["conditions"]).unwrap().1,
        "InstallSucceeded",
        "{status:#}"
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), HELM_NS);
    wait_config_map(
        &config_maps,
        "app-greeting",
        Some(("greeting", "hello from values")),
    )
    .await;
    wait_config_map(&config_maps, "app-greeting", Some(("chart", &version1))).await;

    // It checks our digest: a stored chart that no longer matches it is refused.
    let stored = controllers.ours.storage.path().join(&artifact.path);
    let original = std::fs::read(&stored).unwrap();
    std::fs::write(&stored, b"not the pushed chart").unwrap();
    let requested = request_reconcile(&hr_api, "app").await;
    let (reason, message) = wait_failed(&hr_api, "app", &requested).await;
    assert_eq!(reason, "ArtifactFailed", "{message}");
    assert!(
        message.contains(artifact.digest.as_deref().unwrap()),
        "{message}"
    );
    std::fs::write(&stored, &original).unwrap();

    // Chart 0.2.0: our OCIRepository follows it when asked, helm-controller upgrades.
    let second = tools::helm_package_and_push(
        &reg,
        &write_chart(&charts.path().join("v2"), "0.2.0"),
        "charts",
    );
    assert_eq!(second.repository, first.repository);
    let requested = request_reconcile(&repos, "greeter").await;
    let rev2 = format!("0.2.0@{}", second.digest);
    let repo = wait_artifact(&repos, "greeter", &rev2).await;
    assert_eq!(
        repo.status.unwrap().last_handled_reconcile_at.as_deref(),
        Some(requested.as_str())
    );
    let version2 = chart_version_of("0.2.0", &second.digest);
    let status = wait_released(&hr_api, "app", 2, &version2, &second.digest).await;
    assert_eq!(
        ready_of(&status["conditions"]).unwrap().1,
        "UpgradeSucceeded",
        "{status:#}"
    );
    assert_eq!(
        status["history"][1]["chartVersion"],
        version1.as_str(),
        "{status:#}"
    );
    assert_eq!(status["history"][1]["status"], "superseded", "{status:#}");
    wait_config_map(&config_maps, "app-greeting", Some(("chart", &version2))).await;
    wait_config_map(
        &config_maps,
        "app-greeting",
        Some(("greeting", "hello from values")),
    )
    .await;

    // What a user runs after a push: the source first, then the HelmRelease; the flux CLI
    // reports our revision and the chart version helm-controller derived from it.
    let kubeconfig = cp.kubeconfig_path();
    let out = tools::flux_cluster(
        kubeconfig,
        [
            "reconcile",
            "helmrelease",
            "app",
            "--with-source",
            "-n",
            HELM_NS,
        ],
    );
    assert!(out.contains(&format!("fetched revision {rev2}")), "{out}");
    assert!(
        out.contains(&format!("applied revision {version2}")),
        "{out}"
    );
    let table = tools::flux_cluster(kubeconfig, ["get", "helmreleases", "-n", HELM_NS]);
    let cols = row(&table, "app");
    assert_eq!(cols[1], version2, "{table}");
    assert_eq!(cols[3], "True", "{table}");
}
