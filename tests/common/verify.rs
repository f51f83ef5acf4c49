//! What the verification tests share: one standalone reconcile with a secrets directory, the
//! conditions it ends with, and the assertions of a verified or refused artifact.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use ocisource::api::v1::OciRepository;
use ocisource::core::summary::kstatus_violations;
use serde_json::{Value, json};

use super::controller::Controller;
use super::controlplane::{ControlPlane, create_namespace};
use super::standalone::reconcile_command;

/// A standalone reconcile: exit code, the printed object, stderr.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// The object printed.
    pub obj: Value,
    /// stderr.
    pub stderr: String,
}

/// `ocisource reconcile -f` of `manifest` with Secrets from `secrets`.
pub fn reconcile(manifest: &Value, storage: &Path, secrets: &Path) -> Run {
    reconcile_with(manifest, storage, Some(secrets))
}

/// `ocisource reconcile -f` of `manifest`, with `--secrets-dir` when `secrets` is given.
pub fn reconcile_with(manifest: &Value, storage: &Path, secrets: Option<&Path>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = reconcile_command(manifest, storage, dir.path());
    if let Some(s) = secrets {
        cmd.arg("--secrets-dir").arg(s);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let obj = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no object printed ({e}); stderr:\n{stderr}"));
    Run {
        code: out.status.code().unwrap(),
        obj,
        stderr,
    }
}

/// Condition `t` of a printed object: (status, reason, message).
pub fn condition(obj: &Value, t: &str) -> Option<(String, String, String)> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
        .map(|c| {
            (
                c["status"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
}

/// Asserts the object's conditions follow kstatus.
pub fn assert_kstatus_sound(obj: &Value) {
    let typed: OciRepository = serde_json::from_value(obj.clone()).unwrap();
    let status = typed.status.unwrap();
    let violations = kstatus_violations(
        &status.conditions,
        typed.metadata.generation.unwrap(),
        status.observed_generation,
    );
    assert!(violations.is_empty(), "{violations:?}");
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

/// Condition `t` of a typed object: (status, reason, message).
pub fn cond(obj: &OciRepository, t: &str) -> Option<(String, String, String)> {
    let status = obj.status.as_ref()?;
    let c = status.conditions.iter().find(|c| c.type_ == t)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The stored artifact's revision.
pub fn revision(obj: &OciRepository) -> Option<String> {
    Some(obj.status.as_ref()?.artifact.as_ref()?.revision.clone())
}

/// On the shared control plane: namespace `ns` with Secret `secret` (`stringData`), the
/// controller (`binary`) watching it, and OCIRepository `app` following tag `stable` of `url`
/// with `verify`. The controller (running while held) and the namespace's OCIRepository API.
pub async fn controller_verifying(
    binary: &Path,
    ns: &str,
    secret: (&str, Value),
    url: &str,
    verify: Value,
) -> (Controller, Api<OciRepository>) {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    super::crd::install(&client).await;
    create_namespace(&client, ns).await;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": secret.0, "namespace": ns},
        "stringData": secret.1,
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let ctl = Controller::start(
        cp,
        binary,
        ns,
        &["--min-retry-delay=200ms", "--max-retry-delay=1s"],
    );
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
    (ctl, api)
}
