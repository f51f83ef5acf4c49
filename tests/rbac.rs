//! The shipped RBAC (`deploy/base/rbac.yaml`) is enough: the controller runs as its ServiceAccount
//! (impersonated, with that account's groups) with leader election on, reconciles an object that
//! reads a service account's pull secret from a private registry, records events, and removes its
//! finalizer on deletion, without a single `forbidden` answer.

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use common::controller::Controller;
use common::controlplane::ControlPlane;
use common::private_pull::{PrivateArtifact, ready_revision};
use common::registry::{PASSWORD, USER};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use ocisource::api::v1::OciRepository;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const NS: &str = "flux-system";
const IDENTITY: &str = "system:serviceaccount:flux-system:ocisource";

async fn apply<K>(api: Api<K>, doc: &Value)
where
    K: kube::Resource + Clone + std::fmt::Debug + DeserializeOwned + serde::Serialize,
{
    let obj: K = serde_json::from_value(doc.clone()).unwrap();
    let name = doc["metadata"]["name"].as_str().unwrap();
    api.patch(
        name,
        &PatchParams::apply("ocisource-tests").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {name}: {e}"));
}

/// Applies every document of `deploy/base/rbac.yaml`.
async fn apply_shipped_rbac(client: &Client) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/base/rbac.yaml"
    ))
    .unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    assert!(!docs.is_empty());
    for doc in &docs {
        let c = client.clone();
        let ns = doc["metadata"]["namespace"].as_str().unwrap_or(NS);
        match doc["kind"].as_str().unwrap() {
            "ServiceAccount" => apply(Api::<ServiceAccount>::namespaced(c, ns), doc).await,
            "ClusterRole" => apply(Api::<ClusterRole>::all(c), doc).await,
            "ClusterRoleBinding" => apply(Api::<ClusterRoleBinding>::all(c), doc).await,
            "Role" => apply(Api::<Role>::namespaced(c, ns), doc).await,
            "RoleBinding" => apply(Api::<RoleBinding>::namespaced(c, ns), doc).await,
            other => panic!("deploy/base/rbac.yaml: unexpected kind {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_rbac_is_enough_to_reconcile_record_and_clean_up() {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    common::crd::install(&client).await;
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    let _ = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await;
    apply_shipped_rbac(&client).await;

    let private = PrivateArtifact::push("apps/private");
    private.puller(&client, NS).await;

    let kubeconfig = cp.user_kubeconfig(IDENTITY);
    let ctl = Controller::spawn_with(
        &kubeconfig,
        Path::new(env!("CARGO_BIN_EXE_ocisource")),
        NS,
        &["--enable-leader-election", "--log-level=debug"],
        "ocisource-rbac",
    );
    let log = private
        .reconcile_record_and_clean_up(&client, NS, &[], &ctl)
        .await;
    // Even at debug level, the pull secret's password never reaches the log, in clear or in
    // its base64 forms.
    let b64 = base64::engine::general_purpose::STANDARD;
    for secret in [
        PASSWORD.to_string(),
        b64.encode(format!("{USER}:{PASSWORD}")),
        b64.encode(PASSWORD),
    ] {
        assert!(!log.contains(&secret), "a credential in the debug log");
    }
    assert!(log.contains("DEBUG"), "the log is at debug level");
}

/// With `CacheSecretsAndConfigMaps`, Secrets come from a watch: the controller runs as an
/// identity that may list and watch Secrets but not get them, and still reads a pull secret
/// created after it started.
#[tokio::test(flavor = "multi_thread")]
async fn with_the_cache_gate_secrets_are_watched_not_fetched() {
    const NS: &str = "cached";
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    common::crd::install(&client).await;
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let rule = |group: &str, resources: &[&str], verbs: &[&str]| json!({"apiGroups": [group], "resources": resources, "verbs": verbs});
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "ctl", "namespace": NS},
        "rules": [
            rule("source.toolkit.fluxcd.io", &["ocirepositories"], &["get", "list", "watch", "patch", "update"]),
            rule("source.toolkit.fluxcd.io", &["ocirepositories/status", "ocirepositories/finalizers"], &["get", "patch", "update"]),
            rule("", &["secrets"], &["list", "watch"]),
            rule("", &["events"], &["create", "patch"]),
        ]
    });
    apply(Api::<Role>::namespaced(client.clone(), NS), &role).await;
    let identity = format!("system:serviceaccount:{NS}:ctl");
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "ctl", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ctl"},
        "subjects": [{"kind": "ServiceAccount", "name": "ctl", "namespace": NS}]
    });
    apply(Api::<RoleBinding>::namespaced(client.clone(), NS), &binding).await;

    let private = PrivateArtifact::push("apps/cached");
    let ctl = Controller::spawn_with(
        &cp.user_kubeconfig(&identity),
        Path::new(env!("CARGO_BIN_EXE_ocisource")),
        NS,
        &["--feature-gates=CacheSecretsAndConfigMaps=true"],
        "ocisource-cached",
    );
    let api: Api<OciRepository> = Api::namespaced(client.clone(), NS);
    private
        .create(&api, "cached", &[], json!({"secretRef": {"name": "late"}}))
        .await;

    // The Secret does not exist yet: the reconcile fails as without the cache.
    let mut message = String::new();
    for _ in 0..300 {
        let obj = api.get("cached").await.unwrap();
        if let Some(c) = obj
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            && c.reason == "AuthenticationFailed"
        {
            message = c.message.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        message,
        format!(
            "failed to get credential: failed to get secret '{NS}/late': Secret \"late\" not found"
        ),
        "{}",
        ctl.proc.log_tail(4000)
    );

    private.pull_secret(&client, NS, "late").await;
    let revision = ready_revision(&api, "cached", &ctl).await;
    assert_eq!(
        revision,
        Some(format!("v1@{}", private.digest)),
        "the watched Secret was used; last status {:#?}\n{}",
        api.get("cached").await.unwrap().status,
        ctl.proc.log_tail(4000)
    );
    let log = std::fs::read_to_string(ctl.proc.log_path()).unwrap();
    assert!(
        !log.contains("forbidden"),
        "no Secret was fetched directly:\n{}",
        ctl.proc.log_tail(8000)
    );
}
