//! OCIRepository objects and their conditions, as the integration tests write and read them:
//! [`OciRepo`] builds an object field by field (only the fields a test sets), and the
//! condition helpers read the status of a typed object or of the JSON `ocisource reconcile`
//! prints.

use std::time::Duration;

use kube::Api;
use ocisource::api::v1::{Artifact, OciRepository};
use serde_json::{Map, Value, json};

/// An OCIRepository under construction; [`OciRepo::build`] gives its JSON, [`OciRepo::object`]
/// the typed object. Nothing is defaulted: the spec holds exactly what was set.
#[derive(Clone, Debug)]
pub struct OciRepo {
    api_version: String,
    metadata: Map<String, Value>,
    spec: Map<String, Value>,
    status: Option<Value>,
}

impl OciRepo {
    /// An object named `name` (API version `v1`, no namespace, empty spec).
    pub fn new(name: &str) -> Self {
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(name));
        Self {
            api_version: "v1".into(),
            metadata,
            spec: Map::new(),
            status: None,
        }
    }

    /// The API version (`v1`, `v1beta2`).
    pub fn version(mut self, version: &str) -> Self {
        self.api_version = version.into();
        self
    }

    /// `metadata.namespace`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.metadata.insert("namespace".into(), json!(namespace));
        self
    }

    /// One `metadata.labels` entry.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        let labels = self.metadata.entry("labels").or_insert_with(|| json!({}));
        labels[key] = json!(value);
        self
    }

    /// Any `metadata` field (`generation`, `annotations`, …).
    pub fn meta(mut self, key: &str, value: Value) -> Self {
        self.metadata.insert(key.into(), value);
        self
    }

    /// `spec.url`.
    pub fn url(self, url: impl Into<String>) -> Self {
        self.spec("url", json!(url.into()))
    }

    /// `spec.interval`.
    pub fn interval(self, interval: &str) -> Self {
        self.spec("interval", json!(interval))
    }

    /// `spec.timeout`.
    pub fn timeout(self, timeout: &str) -> Self {
        self.spec("timeout", json!(timeout))
    }

    /// `spec.insecure: true`.
    pub fn insecure(self) -> Self {
        self.spec("insecure", json!(true))
    }

    /// `spec.ref.tag`.
    pub fn tag(self, tag: &str) -> Self {
        self.spec("ref", json!({ "tag": tag }))
    }

    /// `spec.ref.semver`.
    pub fn semver(self, range: &str) -> Self {
        self.spec("ref", json!({ "semver": range }))
    }

    /// `spec.secretRef.name`.
    pub fn secret(self, name: &str) -> Self {
        self.spec("secretRef", json!({ "name": name }))
    }

    /// `spec.verify`: `provider`, and the Secret holding its keys when given.
    pub fn verify(self, provider: &str, secret: Option<&str>) -> Self {
        let mut verify = json!({ "provider": provider });
        if let Some(secret) = secret {
            verify["secretRef"] = json!({ "name": secret });
        }
        self.spec("verify", verify)
    }

    /// Any `spec` field.
    pub fn spec(mut self, key: &str, value: Value) -> Self {
        self.spec.insert(key.into(), value);
        self
    }

    /// Every field of `fields` (a JSON object) into `spec`.
    pub fn spec_fields(mut self, fields: Value) -> Self {
        if let Value::Object(fields) = fields {
            self.spec.extend(fields);
        }
        self
    }

    /// `status`.
    pub fn status(mut self, status: Value) -> Self {
        self.status = Some(status);
        self
    }

    /// The object as JSON.
    pub fn build(self) -> Value {
        let mut obj = json!({
            "apiVersion": format!("source.toolkit.fluxcd.io/{}", self.api_version),
            "kind": "OCIRepository",
            "metadata": self.metadata,
            "spec": self.spec,
        });
        if let Some(status) = self.status {
            obj["status"] = status;
        }
        obj
    }

    /// The typed object.
    pub fn object(self) -> OciRepository {
        serde_json::from_value(self.build()).expect("a valid OCIRepository")
    }
}

/// The condition `type_` of a typed object: (status, reason, message).
pub fn condition(obj: &OciRepository, type_: &str) -> Option<(String, String, String)> {
    let c = obj
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The Ready condition of a typed object: (status, reason, message).
pub fn ready(obj: &OciRepository) -> Option<(String, String, String)> {
    condition(obj, "Ready")
}

/// Ready=True for the current generation.
pub fn is_ready(obj: &OciRepository) -> bool {
    ready(obj).is_some_and(|r| r.0 == "True")
        && obj.status.as_ref().and_then(|s| s.observed_generation) == obj.metadata.generation
}

/// Ready=True for the current generation, with an artifact for which `artifact` holds.
pub fn is_ready_with_artifact(
    obj: &OciRepository,
    artifact: impl FnOnce(&Artifact) -> bool,
) -> bool {
    obj.status.as_ref().is_some_and(|status| {
        status.observed_generation == obj.metadata.generation
            && status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
            && status.artifact.as_ref().is_some_and(artifact)
    })
}

/// The condition `type_` of an object printed as JSON: (status, reason, message).
pub fn json_condition(obj: &Value, type_: &str) -> Option<(String, String, String)> {
    let c = obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    let text = |key: &str| c[key].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

/// The Ready message of an object printed as JSON (empty when there is none).
pub fn json_ready_message(obj: &Value) -> String {
    json_condition(obj, "Ready")
        .map(|(_, _, message)| message)
        .unwrap_or_default()
}

/// Asserts that the typed object's condition `type_` has `status` and `reason`.
#[track_caller]
pub fn assert_condition(obj: &OciRepository, type_: &str, status: &str, reason: &str) {
    let got = condition(obj, type_);
    assert_eq!(
        got.as_ref().map(|(s, r, _)| (s.as_str(), r.as_str())),
        Some((status, reason)),
        "{type_} of {:?}: {got:?}",
        obj.metadata.name
    );
}

/// Polls the object `name` every 100 ms until `done` holds for it, for at most a minute;
/// panics with `what` and the last status when it never does.
pub async fn wait_for(
    api: &Api<OciRepository>,
    name: &str,
    what: &str,
    mut done: impl FnMut(&OciRepository) -> bool,
) -> OciRepository {
    for _ in 0..600 {
        if let Some(obj) = api.get_opt(name).await.unwrap()
            && done(&obj)
        {
            return obj;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = api.get_opt(name).await.unwrap();
    panic!(
        "timed out waiting for {what}; last: {:#?}",
        last.map(|o| o.status)
    );
}

/// Asks for a reconcile of `name` as `flux reconcile` does (`reconcile.fluxcd.io/requestedAt`
/// set to `token`) and waits until the controller has handled it; returns the object then.
pub async fn request_and_wait(api: &Api<OciRepository>, name: &str, token: &str) -> OciRepository {
    let patch = serde_json::json!({
        "metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}
    });
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    wait_for(api, name, &format!("requestedAt {token} handled"), |o| {
        handled(o, token)
    })
    .await
}

/// Whether the object's status says the reconcile request `token` was handled.
pub fn handled(obj: &OciRepository, token: &str) -> bool {
    obj.status
        .as_ref()
        .and_then(|s| s.last_handled_reconcile_at.as_deref())
        == Some(token)
}
