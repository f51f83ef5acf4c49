//! The Helm chart (`deploy/charts/ocisource`) and the kustomize base (`deploy/`) seen from the
//! tests: rendering with the test bed's helm and kubectl's kustomize, objects as JSON, Helm's
//! labels stripped, server-side applies (real or dry-run) of any kind, and a kubeconfig holding
//! a ServiceAccount's TokenRequest token.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use kube::{Api, Client};
use serde_json::{Value, json};

use super::bin;
use super::controlplane::ControlPlane;

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/charts/ocisource")
}

/// The repository's `deploy/` directory.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// The test bed's helm with a private home (no repositories, no cache shared with other tests).
pub fn helm(home: &Path) -> Command {
    let mut cmd = Command::new(bin("helm"));
    cmd.env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    cmd
}

/// The test bed's kubectl (for its built-in kustomize and `apply -k`).
pub fn kubectl() -> Command {
    Command::new(bin("kubectl"))
}

/// Runs `cmd` and returns its output whether it succeeded or not.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("failed to start {:?}: {e}", cmd.get_program()))
}

/// `helm template <release> <chart> -n <namespace>` with `--set`/`--set-string` style `args`;
/// the rendered objects (hooks included).
pub fn template(release: &str, namespace: &str, args: &[&str]) -> Vec<Value> {
    let home = tempfile::tempdir().unwrap();
    let out = output(
        helm(home.path())
            .args(["template", release])
            .arg(chart_dir())
            .args(["--namespace", namespace])
            .args(args),
    );
    assert!(
        out.status.success(),
        "helm template {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&String::from_utf8_lossy(&out.stdout))
}

/// The objects of a multi-document YAML stream (empty documents dropped).
pub fn documents(yaml: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{yaml}"));
    docs.into_iter()
        .filter(|d| !d.is_null() && d.get("kind").is_some())
        .collect()
}

/// `kubectl kustomize <dir>`: the objects.
pub fn kustomize(dir: &Path) -> Vec<Value> {
    let out = output(kubectl().arg("kustomize").arg(dir));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&String::from_utf8_lossy(&out.stdout))
}

/// The labels Helm adds and kustomize does not.
pub const HELM_LABELS: [&str; 3] = [
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
];

/// `obj` without Helm's labels (on the object and on a pod template).
pub fn without_helm_labels(mut obj: Value) -> Value {
    for pointer in ["/metadata/labels", "/spec/template/metadata/labels"] {
        if let Some(labels) = obj.pointer_mut(pointer).and_then(Value::as_object_mut) {
            for l in HELM_LABELS {
                labels.remove(l);
            }
        }
    }
    obj
}

/// `kind/namespace/name` of an object.
pub fn key(obj: &Value) -> String {
    format!(
        "{}/{}/{}",
        obj["kind"].as_str().unwrap_or(""),
        obj["metadata"]["namespace"].as_str().unwrap_or(""),
        obj["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// The one object of `kind` named `name` in `objs`; panics when there is none.
pub fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            panic!(
                "no {kind} {name} among {:?}",
                objs.iter().map(key).collect::<Vec<_>>()
            )
        })
}

/// The kinds of `objs` with their names, sorted.
pub fn keys(objs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = objs.iter().map(key).collect();
    k.sort();
    k
}

/// The manager container's arguments of the Deployment in `objs`.
pub fn args(objs: &[Value]) -> Vec<String> {
    let d = objs
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment");
    d["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect()
}

/// The API of `obj`'s kind, namespaced when the object names a namespace.
pub async fn api_for(client: &Client, obj: &Value) -> Api<DynamicObject> {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, obj["kind"].as_str().expect("kind"));
    let (resource, _) = pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("the API server does not serve {gvk:?}: {e}"));
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Server-side applies `obj` (as `manager`), for real or as a dry run; the API server's
/// answer, or its refusal as text.
pub async fn apply(
    client: &Client,
    obj: &Value,
    manager: &str,
    dry_run: bool,
) -> Result<DynamicObject, String> {
    let api = api_for(client, obj).await;
    let dynamic: DynamicObject = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    let mut params = PatchParams::apply(manager).force();
    params.dry_run = dry_run;
    let name = obj["metadata"]["name"].as_str().expect("name");
    api.patch(name, &params, &Patch::Apply(&dynamic))
        .await
        .map_err(|e| format!("{}: {e}", key(obj)))
}

/// Creates namespace `name` unless it exists.
pub async fn namespace(client: &Client, name: &str) {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    apply(client, &ns, "ocisource-tests", false)
        .await
        .unwrap_or_else(|e| panic!("namespace {name}: {e}"));
}

/// A kubeconfig that authenticates as ServiceAccount `namespace/name` with a bound token from
/// the TokenRequest API (no impersonation: the API server sees the account's own token).
pub async fn service_account_kubeconfig(
    cp: &ControlPlane,
    client: &Client,
    namespace: &str,
    name: &str,
    dir: &Path,
) -> PathBuf {
    let request: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600}
    }))
    .unwrap();
    let issued: TokenRequest = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"));
    let token = issued.status.expect("a token").token;
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let yaml = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: sa
  user:
    token: {token}
contexts:
- name: test
  context:
    cluster: test
    user: sa
    namespace: {namespace}
current-context: test
",
        server = q(&cp.server_url()),
        ca = q(&cp.ca_path().display().to_string()),
        token = q(&token),
        namespace = q(namespace),
    );
    let path = dir.join(format!("kubeconfig-{namespace}-{name}"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A client from `kubeconfig` (its current context).
pub async fn client_for(kubeconfig: &Path) -> Client {
    super::controlplane::client_from(kubeconfig)
        .await
        .unwrap_or_else(|e| panic!("client from {}: {e}", kubeconfig.display()))
}
