//! The core reconcile run in-process, as the controller runs it (one store, the secrets and one
//! shared client pool) but without an API server: for counting what one reconcile costs. The
//! resolution cache is off unless a test turns it on ([`InProcess::sharing`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use ocisource::api::v1::{OciRepository, OciRepositoryStatus};
use ocisource::core::ports::{NoProgress, NoVerifier};
use ocisource::core::reconcile::{self, Outcome, Ports, Settings};
use ocisource::core::resolution_cache::{self, ResolutionCache};
use ocisource::core::shared_artifacts::SharedArtifacts;
use ocisource::registry::{ClientPool, RequestCounts};
use ocisource::standalone::secrets::DirSecrets;
use ocisource::storage::{ExtractLimits, Storage};
use serde_json::{Value, json};
use std::time::Duration;

use super::registry::Registry;

/// The namespace of the objects and of the `creds` Secret.
pub const NAMESPACE: &str = "apps";

/// What one in-process reconcile needs.
pub struct InProcess {
    settings: Settings,
    secrets: DirSecrets,
    pool: ClientPool,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl InProcess {
    /// A core whose secrets directory holds `creds`, a dockerconfigjson Secret for `reg`.
    pub fn new(reg: &Registry) -> InProcess {
        InProcess::with_resolutions(
            reg,
            ResolutionCache::disabled(),
            SharedArtifacts::disabled(),
        )
    }

    /// As [`InProcess::new`], with the controller's resolution cache (`window` as
    /// `--resolution-cache-window`).
    pub fn sharing(reg: &Registry, window: Duration) -> InProcess {
        InProcess::with_resolutions(
            reg,
            ResolutionCache::new(window, resolution_cache::DEFAULT_CAPACITY),
            SharedArtifacts::default(),
        )
    }

    fn with_resolutions(
        reg: &Registry,
        resolutions: ResolutionCache,
        shared: SharedArtifacts,
    ) -> InProcess {
        let storage = tempfile::tempdir().unwrap();
        let secrets = tempfile::tempdir().unwrap();
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": NAMESPACE},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": reg.docker_config_json()},
        });
        std::fs::write(secrets.path().join("creds.json"), secret.to_string()).unwrap();
        InProcess {
            settings: Settings {
                storage: Storage::new(storage.path(), "localhost:9090").unwrap(),
                limits: ExtractLimits::default(),
                object_level_workload_identity: false,
                default_service_account: None,
                cloud_tokens: Default::default(),
                default_platform: Default::default(),
                resolutions,
                shared,
            },
            secrets: DirSecrets::load(secrets.path()).unwrap(),
            pool: ClientPool::new(),
            _dirs: (storage, secrets),
        }
    }

    /// Adds (or replaces) the Secret `doc` (a manifest) in the secrets directory.
    pub fn add_secret(&mut self, doc: &Value) {
        let name = doc["metadata"]["name"].as_str().unwrap();
        let dir = self._dirs.1.path();
        std::fs::write(dir.join(format!("{name}.json")), doc.to_string()).unwrap();
        self.secrets = DirSecrets::load(dir).unwrap();
    }

    /// The resolution cache's counters: resolutions that asked the registry, and shared ones.
    pub fn resolutions(&self) -> (u64, u64) {
        let r = &self.settings.resolutions;
        (r.runs(), r.shared())
    }

    /// The artifact store's root directory.
    pub fn storage_root(&self) -> &std::path::Path {
        self.settings.storage.root()
    }

    /// The registry requests sent so far.
    pub fn requests(&self) -> RequestCounts {
        self.pool.request_counts()
    }

    /// One reconcile of `obj`; its status becomes the outcome's, as the controller's status
    /// write would make it. Returns the outcome and the registry requests it sent.
    pub async fn reconcile(&self, obj: &mut OciRepository) -> (Outcome, RequestCounts) {
        let before = self.requests();
        let ports = Ports {
            secrets: &self.secrets,
            verifier: &NoVerifier,
            progress: &NoProgress,
            registries: &self.pool,
        };
        let outcome =
            reconcile::reconcile(obj, &self.settings, ports, Time(Timestamp::now())).await;
        obj.status = Some(outcome.status.clone());
        (outcome, self.requests() - before)
    }
}

/// A fresh object (generation 1, the CRD's status default) using the `creds` Secret.
pub fn object(name: &str, url: &str, reference: Value) -> OciRepository {
    let mut obj: OciRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
        "spec": {
            "url": url,
            "interval": "1m",
            "insecure": true,
            "secretRef": {"name": "creds"},
            "ref": reference,
        },
    }))
    .unwrap();
    obj.status = Some(OciRepositoryStatus {
        observed_generation: Some(-1),
        ..Default::default()
    });
    obj
}
