//! The scenario the RBAC tests share (`tests/rbac.rs` for `deploy/`, `tests/chart.rs` for the
//! chart): a controller running as a restricted identity reconciles an object that reads a pull
//! secret through a service account, records its event and removes its finalizer on deletion,
//! without one `forbidden` answer.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret, ServiceAccount};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use ocisource::api::v1::OciRepository;
use serde_json::{Value, json};

use super::controller::Controller;
use super::object::OciRepo;
use super::registry::{Flavor, Registry, Security};
use super::tools;

/// A basic-auth registry holding a one-file artifact, pushed with the real flux CLI.
pub struct PrivateArtifact {
    /// The registry (stopped on drop).
    pub reg: Registry,
    /// The repository, e.g. `apps/private`.
    pub repo: String,
    /// The digest of `<repo>:v1`.
    pub digest: String,
}

impl PrivateArtifact {
    /// Starts the registry and pushes `<repo>:v1`.
    pub fn push(repo: &str) -> Self {
        let reg = Registry::start(Flavor::Distribution, Security::Basic);
        let digest = tools::flux_push_file(
            &reg,
            repo,
            "v1",
            ("app.yaml", "kind: ConfigMap\n"),
            "https://example.com/app",
            "main@sha1:2222",
        );
        PrivateArtifact {
            reg,
            repo: repo.to_string(),
            digest,
        }
    }

    /// The object `name` following `v1` with `extra` spec fields and `labels`, created in `api`.
    pub async fn create(
        &self,
        api: &Api<OciRepository>,
        name: &str,
        labels: &[(&str, &str)],
        extra: Value,
    ) {
        let mut obj = OciRepo::new(name)
            .url(format!("oci://{}/{}", self.reg.host(), self.repo))
            .interval("10m")
            .insecure()
            .tag("v1");
        for (k, v) in labels {
            obj = obj.label(k, v);
        }
        let obj = obj.spec_fields(extra).object();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }

    /// Creates in `namespace` the docker-config Secret `name` holding the registry's credentials.
    pub async fn pull_secret(&self, client: &Client, namespace: &str, name: &str) {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": namespace},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": self.reg.docker_config_json()}
        }))
        .unwrap();
        Api::<Secret>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    /// Creates in `namespace` the pull secret `regcred` and the ServiceAccount `puller` that
    /// names it as an image pull secret.
    pub async fn puller(&self, client: &Client, namespace: &str) {
        self.pull_secret(client, namespace, "regcred").await;
        let puller: ServiceAccount = serde_json::from_value(json!({
            "metadata": {"name": "puller", "namespace": namespace},
            "imagePullSecrets": [{"name": "regcred"}]
        }))
        .unwrap();
        Api::<ServiceAccount>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &puller)
            .await
            .unwrap();
    }

    /// The whole life of object `private` (with `labels`) as the `puller` account, reconciled by
    /// `ctl` in `namespace`: Ready with `v1@<digest>`, its `NewArtifact` event recorded, its
    /// finalizer removed on deletion. Returns the controller's log, checked free of
    /// `forbidden` answers.
    pub async fn reconcile_record_and_clean_up(
        &self,
        client: &Client,
        namespace: &str,
        labels: &[(&str, &str)],
        ctl: &Controller,
    ) -> String {
        let api: Api<OciRepository> = Api::namespaced(client.clone(), namespace);
        self.create(
            &api,
            "private",
            labels,
            json!({"serviceAccountName": "puller"}),
        )
        .await;
        let revision = ready_revision(&api, "private", ctl).await;
        assert_eq!(
            revision,
            Some(format!("v1@{}", self.digest)),
            "Ready as the controller's ServiceAccount; last status {:#?}\n{}",
            api.get("private").await.unwrap().status,
            ctl.proc.log_tail(4000)
        );

        let events: Api<Event> = Api::namespaced(client.clone(), namespace);
        super::eventually("NewArtifact recorded", Duration::from_secs(10), || {
            let events = events.clone();
            async move {
                events
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items
                    .iter()
                    .any(|e| {
                        e.involved_object.name.as_deref() == Some("private")
                            && e.reason.as_deref() == Some("NewArtifact")
                    })
            }
        })
        .await;

        api.delete("private", &DeleteParams::default())
            .await
            .unwrap();
        super::eventually("finalizer removed", Duration::from_secs(30), || {
            let api = api.clone();
            async move { api.get_opt("private").await.unwrap().is_none() }
        })
        .await;
        let log = std::fs::read_to_string(ctl.proc.log_path()).unwrap();
        assert!(
            !log.to_lowercase().contains("forbidden"),
            "every request was allowed:\n{}",
            ctl.proc.log_tail(8000)
        );
        log
    }
}

/// The artifact revision once `name` is Ready (`None` after a minute), checking that the
/// controller is still running.
pub async fn ready_revision(
    api: &Api<OciRepository>,
    name: &str,
    ctl: &Controller,
) -> Option<String> {
    for _ in 0..600 {
        let obj = api.get(name).await.unwrap();
        let ready = obj
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        if ready {
            return obj.status.and_then(|s| s.artifact).map(|a| a.revision);
        }
        assert!(
            ctl.proc.is_running(),
            "controller exited:\n{}",
            ctl.proc.log_tail(4000)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
