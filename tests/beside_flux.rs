//! Running beside Flux's own source-controller (v1.7.3), sharded as Flux's sharding guide does
//! it: source-controller keeps every object without the `sharding.fluxcd.io/key` label
//! (`--watch-label-selector=!sharding.fluxcd.io/key`) and ocisource takes the OCIRepository
//! objects labelled `sharding.fluxcd.io/key=ocisource`
//! (`--watch-label-selector=sharding.fluxcd.io/key=ocisource`). Both run with leader election
//! in one namespace and lead their own Lease; each stores, serves and writes only its own
//! objects; relabelling an object hands it over both ways (the new owner stores and serves its
//! own artifact under the one shared finalizer; ocisource drops what it stored, while
//! source-controller keeps its old artifact on disk and serves it until it restarts, and never
//! removes it if the object is deleted elsewhere). ocisource also serves objects stored under
//! source-controller's own OCIRepository CRD.
//!
//! Who wrote an object is read from its managedFields: both controllers name themselves
//! `source-controller`, but ocisource writes the status by server-side apply (operation `Apply`)
//! and its finalizer patch names no field manager (recorded as `unknown`), while
//! source-controller merge-patches both (operation `Update`).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::controller::Controller;
use common::controlplane::{ControlPlane, create_namespace};
use common::flux_controller::{self, FluxController, Kind, UPSTREAM_OCIREPOSITORY_CRD};
use common::object::{OciRepo, is_ready_with_artifact};
use common::registry::{Flavor, Registry, Security};
use common::{crd, tools};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Api, Client};
use ocisource::api::v1::OciRepository;
use serde_json::json;
use sha2::Digest as _;

const NS: &str = "beside-flux";
const KEY: &str = "sharding.fluxcd.io/key";
/// ocisource's `--watch-label-selector`.
const OURS: &str = "sharding.fluxcd.io/key=ocisource";
/// source-controller's `--watch-label-selector`, as in Flux's sharding guide.
const THEIRS: &str = "!sharding.fluxcd.io/key";
const FINALIZER: &str = "finalizers.fluxcd.io";
const TIMEOUT: Duration = Duration::from_secs(120);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ocisource"))
}

/// ocisource and source-controller; their log tails are printed when the test fails.
struct Controllers {
    ours: Controller,
    flux: Option<FluxController>,
}

impl Drop for Controllers {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- ocisource log (tail) ---\n{}",
                self.ours.proc.log_tail(8000)
            );
            if let Some(flux) = &self.flux {
                eprintln!(
                    "--- source-controller log (tail) ---\n{}",
                    flux.proc.log_tail(8000)
                );
            }
        }
    }
}

/// An OCIRepository following `url:v1`, labelled for `shard` when given.
fn oci_repository(name: &str, url: &str, shard: Option<&str>) -> OciRepository {
    let obj = OciRepo::new(name)
        .namespace(NS)
        .url(url)
        .interval("10m")
        .insecure()
        .tag("v1");
    match shard {
        Some(shard) => obj.label(KEY, shard),
        None => obj,
    }
    .object()
}

/// The namespaced API of one of source-controller's other kinds.
fn source_api(client: &Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", kind);
    Api::namespaced_with(
        client.clone(),
        NS,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

/// `(manager, operation, subresource)` of each managedFields entry.
fn writers(meta: &ObjectMeta) -> BTreeSet<(String, String, String)> {
    meta.managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
                m.subresource.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// Whether source-controller ever wrote the object (it merge-patches, operation `Update`).
fn written_by_flux(meta: &ObjectMeta) -> bool {
    writers(meta)
        .iter()
        .any(|(m, op, _)| m == "source-controller" && op == "Update")
}

/// Whether ocisource wrote the status (server-side apply, operation `Apply`).
fn status_applied_by_ocisource(meta: &ObjectMeta) -> bool {
    writers(meta).contains(&(
        "source-controller".to_string(),
        "Apply".to_string(),
        "status".to_string(),
    ))
}

/// Whether a store under `root` holds anything for OCIRepository `name` (both controllers lay
/// artifacts out as `ocirepository/<namespace>/<name>/`).
fn stored(root: &Path, name: &str) -> bool {
    std::fs::read_dir(root.join("ocirepository").join(NS).join(name))
        .is_ok_and(|mut entries| entries.next().is_some())
}

/// Waits until OCIRepository `name` is Ready for its generation with an artifact advertised on
/// 127.0.0.1:`port`; returns it.
async fn wait_served_by(api: &Api<OciRepository>, name: &str, port: u16) -> OciRepository {
    let prefix = format!("http://127.0.0.1:{port}/");
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let obj = api.get(name).await.unwrap();
        if is_ready_with_artifact(&obj, |a| a.url.starts_with(&prefix)) {
            return obj;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for OCIRepository {name} to be Ready from {prefix}; last: {:#?}",
                obj.status
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET url`: the status code and the body.
async fn get(url: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let code = resp.status().as_u16();
    (code, resp.bytes().await.unwrap().to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&sha2::Sha256::digest(bytes)))
}

/// Downloads the object's artifact as a consumer does and checks it against
/// `status.artifact.digest`; returns the digest.
async fn download_verified(obj: &OciRepository) -> String {
    let artifact = obj.status.as_ref().unwrap().artifact.as_ref().unwrap();
    let (code, body) = get(&artifact.url).await;
    assert_eq!(code, 200, "GET {}", artifact.url);
    let digest = sha256(&body);
    assert_eq!(
        artifact.digest.as_deref(),
        Some(digest.as_str()),
        "{}",
        artifact.url
    );
    digest
}

/// Sets or removes (`None`) the shard label.
async fn label<K>(api: &Api<K>, name: &str, shard: Option<&str>)
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": { KEY: shard }}})),
    )
    .await
    .unwrap();
}

fn finalizers(meta: &ObjectMeta) -> Vec<String> {
    meta.finalizers.clone().unwrap_or_default()
}

/// The Lease source-controller elects its leader with: controller-runtime's ID with Flux's
/// suffix for a label selector (`leaderelection.GenerateID`: the first 8 hex digits of the
/// selector's SHA-256).
fn flux_lease_name(selector: &str) -> String {
    let hex = hex(&sha2::Sha256::digest(selector.as_bytes()));
    format!("source-controller-leader-election-{}", &hex[..8])
}

async fn lease_holder(client: &Client, name: &str) -> String {
    let lease = Api::<Lease>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("Lease {name}: {e}"));
    lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default()
}

/// Pushes `apps/config:v1` (one ConfigMap) to `reg` with the real flux CLI.
fn push_config(reg: &Registry) {
    tools::flux_push_file(
        reg,
        "apps/config",
        "v1",
        ("config.yaml", "kind: ConfigMap\n"),
        "https://example.com/config",
        "main@sha1:1111111111111111111111111111111111111111",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sharded_by_label_each_controller_serves_only_its_objects_and_a_relabel_hands_over() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    // Ours for OCIRepository, upstream's for the kinds only source-controller serves.
    flux_controller::install_crds(&client, Kind::Source).await;
    create_namespace(&client, NS).await;

    let reg = Registry::start(Flavor::Distribution, Security::Http);
    push_config(&reg);
    let url = format!("oci://{}/apps/config", reg.host());

    let leader = "--enable-leader-election=true";
    let ctl = Controllers {
        ours: Controller::start_named(
            cp,
            binary(),
            NS,
            &[&format!("--watch-label-selector={OURS}"), leader],
            "ocisource",
        ),
        flux: Some(FluxController::start_with(
            cp,
            Kind::Source,
            NS,
            &[&format!("--watch-label-selector={THEIRS}"), leader],
        )),
    };
    let flux = ctl.flux.as_ref().unwrap();
    let flux_store = flux.store.as_ref().unwrap();
    let (ours_port, flux_port) = (ctl.ours.artifact_port, flux_store.port);
    let (ours_root, flux_root) = (ctl.ours.storage.path(), flux_store.dir.path());

    let repos: Api<OciRepository> = Api::namespaced(client.clone(), NS);
    let pp = PostParams::default();
    repos
        .create(&pp, &oci_repository("ours", &url, Some("ocisource")))
        .await
        .unwrap();
    repos
        .create(&pp, &oci_repository("theirs", &url, None))
        .await
        .unwrap();
    let git = source_api(&client, "GitRepository", "gitrepositories");
    let git_repo = |name: &str, shard: Option<&str>| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name, "namespace": NS,
                         "labels": shard.map(|s| json!({ KEY: s })).unwrap_or(json!({}))},
            "spec": {"url": "https://127.0.0.1:1/org/repo.git", "interval": "10m",
                     "ref": {"branch": "main"}}
        }))
        .unwrap()
    };
    git.create(&pp, &git_repo("git", None)).await.unwrap();
    git.create(&pp, &git_repo("git-in-our-shard", Some("ocisource")))
        .await
        .unwrap();
    let helm = source_api(&client, "HelmRepository", "helmrepositories");
    let helm_repo: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": "charts", "namespace": NS},
        "spec": {"url": "https://127.0.0.1:1/charts", "interval": "10m"}
    }))
    .unwrap();
    helm.create(&pp, &helm_repo).await.unwrap();

    // (a) The labelled object is ocisource's: its artifact, its finalizer, its status write;
    // source-controller neither writes it nor stores anything for it.
    let ours = wait_served_by(&repos, "ours", ours_port).await;
    let ours_digest = download_verified(&ours).await;
    assert_eq!(finalizers(&ours.metadata), [FINALIZER]);
    assert!(status_applied_by_ocisource(&ours.metadata), "{ours:#?}");
    assert!(
        !written_by_flux(&ours.metadata),
        "{:?}",
        writers(&ours.metadata)
    );
    assert!(stored(ours_root, "ours"));
    assert!(!stored(flux_root, "ours"));

    // (b) The unlabelled one is source-controller's alone.
    let theirs = wait_served_by(&repos, "theirs", flux_port).await;
    let theirs_flux_url = theirs
        .status
        .as_ref()
        .unwrap()
        .artifact
        .as_ref()
        .unwrap()
        .url
        .clone();
    let theirs_flux_digest = download_verified(&theirs).await;
    assert_eq!(finalizers(&theirs.metadata), [FINALIZER]);
    assert!(written_by_flux(&theirs.metadata));
    assert!(
        !status_applied_by_ocisource(&theirs.metadata),
        "{:?}",
        writers(&theirs.metadata)
    );
    assert!(stored(flux_root, "theirs"));
    assert!(!stored(ours_root, "theirs"));

    // (c) Git and Helm sources stay source-controller's: reconciled by it (the fetch fails, there
    // is no network), with its finalizer and status. One labelled for our shard is nobody's.
    for (api, name) in [(&git, "git"), (&helm, "charts")] {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let obj = api.get(name).await.unwrap();
            let conditions = obj.data["status"]["conditions"].as_array().cloned();
            if conditions.is_some_and(|c| c.iter().any(|c| c["type"] == "Ready"))
                && written_by_flux(&obj.metadata)
            {
                assert_eq!(finalizers(&obj.metadata), [FINALIZER]);
                break;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{name} was not reconciled by source-controller: {obj:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let orphan = git.get("git-in-our-shard").await.unwrap();
    assert!(finalizers(&orphan.metadata).is_empty(), "{orphan:#?}");
    // Only the CRD's default (observedGeneration -1), no condition.
    assert_eq!(
        orphan.data["status"],
        json!({"observedGeneration": -1}),
        "{orphan:#?}"
    );
    assert!(!written_by_flux(&orphan.metadata));

    // (e) Both lead at once, each its own Lease in the same namespace.
    let ours_lease = ocisource::k8s::manager::lease_name(OURS);
    assert_eq!(lease_holder(&client, &ours_lease).await, "ocisource");
    let flux_holder = lease_holder(&client, &flux_lease_name(THEIRS)).await;
    assert!(!flux_holder.is_empty() && flux_holder != "ocisource");

    // (d) Unlabelled, "ours" goes to source-controller: it stores and serves its own artifact
    // under the same finalizer; ocisource removes its copy and no longer serves it.
    let ours_url = ours
        .status
        .as_ref()
        .unwrap()
        .artifact
        .as_ref()
        .unwrap()
        .url
        .clone();
    label(&repos, "ours", None).await;
    let moved = wait_served_by(&repos, "ours", flux_port).await;
    let moved_digest = download_verified(&moved).await;
    assert_ne!(
        moved_digest, ours_digest,
        "Flux's tarball bytes differ from ours"
    );
    assert_eq!(finalizers(&moved.metadata), [FINALIZER]);
    assert!(written_by_flux(&moved.metadata));
    assert!(stored(flux_root, "ours"));
    common::eventually(
        "ocisource to drop its artifact of ours",
        TIMEOUT,
        || async { !stored(ours_root, "ours") && get(&ours_url).await.0 == 404 },
    )
    .await;

    // Labelled, "theirs" comes to ocisource. source-controller keeps its old artifact on disk
    // and keeps serving it: it forgets an object that leaves its selector.
    label(&repos, "theirs", Some("ocisource")).await;
    let came = wait_served_by(&repos, "theirs", ours_port).await;
    assert_eq!(download_verified(&came).await, ours_digest);
    assert_eq!(finalizers(&came.metadata), [FINALIZER]);
    assert!(status_applied_by_ocisource(&came.metadata));
    assert!(stored(flux_root, "theirs"));
    let (code, body) = get(&theirs_flux_url).await;
    assert_eq!(code, 200, "{theirs_flux_url}");
    assert_eq!(sha256(&body), theirs_flux_digest);

    // And back: "ours" returns to ocisource with source-controller's artifact in its status
    // (same path, other digest); ocisource stores its own again.
    label(&repos, "ours", Some("ocisource")).await;
    let back = wait_served_by(&repos, "ours", ours_port).await;
    let path = |o: &OciRepository| {
        o.status
            .as_ref()
            .unwrap()
            .artifact
            .as_ref()
            .unwrap()
            .path
            .clone()
    };
    assert_eq!(path(&back), path(&moved));
    assert_eq!(download_verified(&back).await, ours_digest);
    assert_eq!(finalizers(&back.metadata), [FINALIZER]);

    // And "theirs" back to source-controller, where its old artifact still lies at the path
    // ocisource's status names, with other bytes: it verifies the digest and stores anew.
    label(&repos, "theirs", None).await;
    let returned = wait_served_by(&repos, "theirs", flux_port).await;
    assert_eq!(path(&returned), path(&came));
    assert_eq!(download_verified(&returned).await, theirs_flux_digest);
    assert_eq!(finalizers(&returned.metadata), [FINALIZER]);

    // Deleting after the handovers: each owner removes its artifacts and the shared finalizer.
    for name in ["ours", "theirs"] {
        repos.delete(name, &DeleteParams::default()).await.unwrap();
    }
    common::eventually("both objects to be deleted", TIMEOUT, || async {
        repos.get_opt("ours").await.unwrap().is_none()
            && repos.get_opt("theirs").await.unwrap().is_none()
    })
    .await;
    for name in ["ours", "theirs"] {
        assert!(!stored(ours_root, name), "{name}");
    }
    assert!(!stored(flux_root, "theirs"));
    // What source-controller stored for "ours" before handing it back stays on its disk.
    assert!(stored(flux_root, "ours"));
    assert!(ctl.ours.proc.is_running() && flux.proc.is_running());
}

/// Every property path of a CRD version's schema under `root` (`spec` or `status`).
fn property_paths(crd: &CustomResourceDefinition, version: &str, root: &str) -> BTreeSet<String> {
    fn walk(s: &JSONSchemaProps, at: &str, out: &mut BTreeSet<String>) {
        for (k, child) in s.properties.iter().flatten() {
            let path = format!("{at}.{k}");
            out.insert(path.clone());
            walk(child, &path, out);
        }
        if let Some(JSONSchemaPropsOrArray::Schema(items)) = &s.items {
            walk(items, &format!("{at}[]"), out);
        }
    }
    let schema = common::crd::schema_of(crd, version);
    let mut out = BTreeSet::new();
    walk(&schema.properties.as_ref().unwrap()[root], root, &mut out);
    out
}

fn read_crd(path: &Path) -> CustomResourceDefinition {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn ocisource_serves_objects_under_source_controllers_own_crd() {
    // Ours and upstream's v1.7.3 CRD keep the same status fields, and ours keeps every spec
    // field upstream's does: nothing either writes is pruned by the other.
    let upstream_file = flux_controller::crds_dir(Kind::Source).join(UPSTREAM_OCIREPOSITORY_CRD);
    let upstream = read_crd(&upstream_file);
    let ours = read_crd(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/ocirepository.yaml"));
    for version in ["v1", "v1beta2"] {
        assert_eq!(
            property_paths(&ours, version, "status"),
            property_paths(&upstream, version, "status"),
            "{version}"
        );
        let missing: Vec<_> = property_paths(&upstream, version, "spec")
            .difference(&property_paths(&ours, version, "spec"))
            .cloned()
            .collect();
        assert!(missing.is_empty(), "{version}: {missing:?}");
    }

    // CRDs are cluster-wide: a control plane of its own, with upstream's CRD only.
    let cp = ControlPlane::start();
    let client = cp.client().await;
    crd::install_file(&client, &upstream_file).await;
    create_namespace(&client, NS).await;
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    push_config(&reg);
    let ctl = Controllers {
        ours: Controller::start(
            &cp,
            binary(),
            NS,
            &[&format!("--watch-label-selector={OURS}")],
        ),
        flux: None,
    };
    let repos: Api<OciRepository> = Api::namespaced(client.clone(), NS);
    let url = format!("oci://{}/apps/config", reg.host());
    repos
        .create(
            &PostParams::default(),
            &oci_repository("ours", &url, Some("ocisource")),
        )
        .await
        .unwrap();
    let obj = wait_served_by(&repos, "ours", ctl.ours.artifact_port).await;
    download_verified(&obj).await;
    assert_eq!(finalizers(&obj.metadata), [FINALIZER]);
}
