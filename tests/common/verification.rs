//! Signature verification as the tests see it: standalone reconciles with a verification
//! Secret from a secrets directory, objects with `spec.verify`, and the assertions on
//! `SourceVerified`, `Ready` and the stored artifact shared by the cosign and notation tests.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use ocisource::api::v1::OciRepository;
use serde_json::{Value, json};

use super::controller::Controller;
use super::controlplane::{ControlPlane, create_namespace};
use super::registry::Registry;
use super::tools;

use super::object::{condition as cond, json_condition as condition, wait_for};
use super::standalone::{Run, assert_kstatus_sound, run_reconcile};

/// An OCIRepository in namespace `apps` following `tag` of `url` (plain HTTP), verified by
/// `provider` with Secret `keys`, plus `extra` spec fields (which may replace `verify`).
pub fn verified_manifest(name: &str, url: &str, tag: &str, provider: &str, extra: Value) -> Value {
    let mut spec = json!({
        "url": url, "interval": "1m", "insecure": true, "ref": {"tag": tag},
        "verify": {"provider": provider, "secretRef": {"name": "keys"}},
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": spec,
    })
}

/// Pushes a one-file artifact (`deploy.yaml` holding `text`) with `flux push artifact`; its
/// digest.
pub fn push(reg: &Registry, repo: &str, tag: &str, text: &str) -> String {
    tools::flux_push_file(reg, repo, tag, ("deploy.yaml", text), "src", "rev")
}

/// `ocisource reconcile` of `manifest` with Secrets from `secrets`.
pub fn reconcile(manifest: &Value, storage: &Path, secrets: &Path) -> Run {
    run_reconcile(manifest, storage, Some(secrets))
}

/// `ocisource reconcile` of `manifest` (Secrets from `secrets`) into a fresh store; asserts it
/// verified and stored `revision`.
pub fn verifies(manifest: &Value, secrets: &Path, revision: &str) {
    let storage = tempfile::tempdir().unwrap();
    assert_verified(&reconcile(manifest, storage.path(), secrets), revision);
}

/// `ocisource reconcile` of `manifest` (Secrets from `secrets`) into a fresh store; asserts it
/// was refused with `message` and stored nothing.
pub fn is_refused(manifest: &Value, secrets: &Path, message: &str) {
    let storage = tempfile::tempdir().unwrap();
    assert_refused(
        &reconcile(manifest, storage.path(), secrets),
        message,
        storage.path(),
    );
}

/// A secrets directory holding Secret `apps/<name>` with `entries` (name → content) as
/// `stringData`.
pub fn write_secret(dir: &Path, name: &str, entries: &[(&str, String)]) {
    let data: serde_json::Map<String, Value> = entries
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
        .collect();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "apps"},
        "stringData": data,
    });
    std::fs::write(
        dir.join(format!("{name}.yaml")),
        serde_json::to_string(&secret).unwrap(),
    )
    .unwrap();
}

/// A secrets directory with only the verification Secret `keys`.
pub fn keys_dir(entries: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_secret(dir.path(), "keys", entries);
    dir
}

/// Secret `regcred` (docker config) for `reg` in the secrets directory `dir`.
pub fn write_registry_credentials(dir: &Path, reg: &Registry) {
    let regcred = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "regcred", "namespace": "apps"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": reg.docker_config_json()},
    });
    std::fs::write(
        dir.join("regcred.yaml"),
        serde_json::to_string(&regcred).unwrap(),
    )
    .unwrap();
}

/// Asserts a verification failure with `message`: SourceVerified=False and Ready=False with
/// it, no FetchFailed, nothing pulled or stored.
pub fn assert_refused(run: &Run, message: &str, storage: &Path) {
    assert_eq!(run.code, 1, "{}", run.stderr);
    let expected = Some(("False".into(), "VerificationError".into(), message.into()));
    assert_eq!(condition(&run.obj, "SourceVerified"), expected);
    assert_eq!(condition(&run.obj, "Ready"), expected);
    assert!(condition(&run.obj, "FetchFailed").is_none());
    assert!(run.obj["status"].get("artifact").is_none());
    assert_eq!(
        super::files_under(storage),
        Vec::<PathBuf>::new(),
        "nothing stored"
    );
    assert_kstatus_sound(&run.obj);
}

/// The `Ready` condition's message of a run (empty without one).
pub fn ready_message(run: &Run) -> String {
    condition(&run.obj, "Ready")
        .map(|c| c.2)
        .unwrap_or_default()
}

/// Asserts that a failed reconcile will be retried (`Reconciling` with `ProgressingWithRetry`).
pub fn assert_retried(run: &Run) {
    assert!(
        run.obj["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Reconciling" && c["reason"] == "ProgressingWithRetry"),
        "retried: {}",
        run.obj["status"]
    );
}

/// Asserts a verified, stored artifact at `revision`.
pub fn assert_verified(run: &Run, revision: &str) {
    assert_eq!(run.code, 0, "{}\n{}", run.obj["status"], run.stderr);
    assert_eq!(
        condition(&run.obj, "SourceVerified"),
        Some((
            "True".into(),
            "Succeeded".into(),
            format!("verified signature of revision {revision}")
        ))
    );
    assert_eq!(
        condition(&run.obj, "Ready"),
        Some((
            "True".into(),
            "Succeeded".into(),
            format!("stored artifact for digest '{revision}'")
        ))
    );
    assert_eq!(run.obj["status"]["artifact"]["revision"], revision);
    assert_kstatus_sound(&run.obj);
}

/// Asserts that `manifest` (following a tag) verifies and stores `<tag>@<digest>`, then, pinned
/// to `digest` under another name, `digest`.
pub fn assert_tag_and_digest_verify(
    manifest: &Value,
    digest: &str,
    storage: &Path,
    secrets: &Path,
) {
    let tag = manifest["spec"]["ref"]["tag"].as_str().unwrap();
    let run = reconcile(manifest, storage, secrets);
    assert_verified(&run, &format!("{tag}@{digest}"));
    let mut pinned = manifest.clone();
    pinned["metadata"]["name"] =
        format!("{}-pinned", manifest["metadata"]["name"].as_str().unwrap()).into();
    pinned["spec"]["ref"] = json!({"digest": digest});
    let run = reconcile(&pinned, storage, secrets);
    assert_verified(&run, digest);
}

/// The stored artifact's revision.
pub fn revision(obj: &OciRepository) -> Option<String> {
    Some(obj.status.as_ref()?.artifact.as_ref()?.revision.clone())
}

/// The controller on the shared control plane, watching a new namespace `ns` that holds the
/// verification Secret `secret` (its `stringData`) and the OCIRepository `app` following tag
/// `stable` of `url` (plain HTTP) verified as `verify`; retries back off from 200 ms to 1 s.
pub async fn controller_with_verified_object(
    ns: &str,
    secret: (&str, Value),
    url: &str,
    verify: Value,
) -> (Api<OciRepository>, Controller) {
    controller_with_verified_object_and_flags(ns, secret, url, verify, &[]).await
}

/// [`controller_with_verified_object`] with more controller flags.
pub async fn controller_with_verified_object_and_flags(
    ns: &str,
    secret: (&str, Value),
    url: &str,
    verify: Value,
    flags: &[&str],
) -> (Api<OciRepository>, Controller) {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    super::crd::install(&client).await;
    create_namespace(&client, ns).await;
    let (name, data) = secret;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "stringData": data,
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    // Integration tests know the binary; the examples that include this module never call it.
    let Some(bin) = option_env!("CARGO_BIN_EXE_ocisource") else {
        panic!("the controller runs from integration tests only");
    };
    let mut extra = vec!["--min-retry-delay=200ms", "--max-retry-delay=1s"];
    extra.extend_from_slice(flags);
    let ctl = Controller::start(cp, Path::new(bin), ns, &extra);
    let api: Api<OciRepository> = Api::namespaced(client, ns);
    let obj: OciRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "app", "namespace": ns},
        "spec": {
            "url": url, "interval": "10m", "insecure": true,
            "ref": {"tag": "stable"},
            "verify": verify,
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    (api, ctl)
}

/// Waits until `app` is Ready at `revision` and asserts that `SourceVerified` says it verified
/// it.
pub async fn wait_verified(api: &Api<OciRepository>, revision: &str) -> OciRepository {
    let obj = wait_for(api, "app", &format!("{revision} verified"), |o| {
        self::revision(o).as_deref() == Some(revision)
            && cond(o, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        cond(&obj, "SourceVerified"),
        Some((
            "True".into(),
            "Succeeded".into(),
            format!("verified signature of revision {revision}")
        ))
    );
    obj
}

/// Requests a reconcile of `app` (`requestedAt` set to `token`) and waits for the verification
/// failure it ends in.
pub async fn request_until_refused(api: &Api<OciRepository>, token: &str) -> OciRepository {
    let request = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}});
    api.patch("app", &PatchParams::default(), &Patch::Merge(&request))
        .await
        .unwrap();
    wait_for(api, "app", "verification failure", |o| {
        cond(o, "Ready").is_some_and(|c| c.1 == "VerificationError")
    })
    .await
}

/// Removes `spec.verify` from `app` and waits until `SourceVerified` is gone and `app` Ready.
pub async fn remove_verify(api: &Api<OciRepository>) -> OciRepository {
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"verify": null}})),
    )
    .await
    .unwrap();
    wait_for(api, "app", "SourceVerified removed", |o| {
        cond(o, "SourceVerified").is_none()
            && o.status.as_ref().and_then(|s| s.observed_generation) == o.metadata.generation
            && cond(o, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await
}
