//! Acceptance: the upstream reconciler test list (spec §9) replayed through
//! `ocisource::core::reconcile::reconcile` in-process, against the real test-bed registries with
//! artifacts pushed by the real flux and helm CLIs.
//!
//! Each test drives objects through successive reconciles the way the controller does: the
//! outcome's status is fed back as the object's status, a spec change bumps the generation. One
//! shared `ClientPool` per test counts the registry requests (that is how "pulled or not" is
//! checked), a `Recorder` keeps the intermediate status patches, `DirSecrets` holds the Secrets
//! and ServiceAccounts, and every final status is checked against the kstatus invariants (and
//! every intermediate patch against the in-progress subset).
//!
//! Faults a real registry will not produce (5xx, 429, lies about digests) come from a tiny
//! in-test registry ([`Fake`]); the proxy cases use a tiny in-test forward proxy
//! ([`ForwardProxy`]). Hostile layers are built byte by byte ([`Tar`]) and pushed with plain
//! distribution-API calls ([`push_layer`]). The verification decisions (when to verify, what
//! a failure keeps) go through a stub [`Verifier`] that can answer anything; the real cosign
//! verifier is exercised with real signatures in `tests/verify_cosign.rs`.
//!
//! The whole file runs in about 12 s on two cores (20 s with the cores saturated); no test
//! sleeps, the only waits are the registry client's own retries (bounded by `spec.timeout`).
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::fake_registry::{Fake, Reply, Req, status};
use common::object::OciRepo;
use common::tarball::Tar;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::registry::{Flavor, PASSWORD, Registry, Security, USER};
use common::{free_port, tools};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use ocisource::api::PLATFORM_ANNOTATION;
use ocisource::api::v1::{OciRepository, OciRepositoryStatus};
use ocisource::core::events::{Event, Severity};
use ocisource::core::ports::{NoVerifier, ProgressSink, Verification, Verifier, VerifyRequest};
use ocisource::core::reconcile::{self, Ports, Settings};
use ocisource::core::shared_artifacts::SharedArtifacts;
use ocisource::core::summary::{Ending, Next, kstatus_violations};
use ocisource::registry::{ClientPool, Digest, RequestCounts};
use ocisource::standalone::secrets::DirSecrets;
use ocisource::storage::{ExtractLimits, Retention, Storage};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const NS: &str = "apps";
const ADV: &str = "storage.flux-system.svc:80";
const SOURCE: &str = "https://github.com/example/podinfo";
const ORIGIN: &str = "main@sha1:b3b00fe35424a45d373bf4c7214178bc36fd7872";
const FLUX_LAYER: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

// ---------------------------------------------------------------------------------------------
// The harness

/// Keeps every intermediate status the reconcile publishes.
#[derive(Default)]
struct Recorder(Mutex<Vec<OciRepositoryStatus>>);

impl ProgressSink for Recorder {
    async fn progress(&self, status: &OciRepositoryStatus) {
        self.0.lock().unwrap().push(status.clone());
    }
}

/// One controller's worth of state: a store, a registry client pool and the Secrets.
struct Bed {
    root: tempfile::TempDir,
    settings: Settings,
    pool: ClientPool,
    secrets_dir: tempfile::TempDir,
    secrets: DirSecrets,
}

impl Bed {
    fn new() -> Bed {
        Bed::with(ExtractLimits::default(), Retention::default())
    }

    /// A bed storing a copy per object (`--artifact-sharing=false`), as Flux.
    fn without_sharing() -> Bed {
        let mut bed = Bed::new();
        bed.settings.shared = SharedArtifacts::disabled();
        bed
    }

    fn with(limits: ExtractLimits, retention: Retention) -> Bed {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::new(root.path(), ADV)
            .unwrap()
            .with_retention(retention);
        Bed {
            settings: Settings {
                storage,
                limits,
                object_level_workload_identity: false,
                default_service_account: None,
                cloud_tokens: Default::default(),
                default_platform: Default::default(),
                resolutions: ocisource::core::resolution_cache::ResolutionCache::disabled(),
                shared: SharedArtifacts::default(),
            },
            root,
            pool: ClientPool::new(),
            secrets_dir: tempfile::tempdir().unwrap(),
            secrets: DirSecrets::default(),
        }
    }

    /// The same store and limits with other settings (another advertised address, the feature
    /// gate on), as a restarted controller would have them.
    fn settings(&self, adv: &str, gate: bool) -> Settings {
        Settings {
            storage: Storage::new(self.root.path(), adv)
                .unwrap()
                .with_retention(self.settings.storage.retention()),
            limits: self.settings.limits,
            object_level_workload_identity: gate,
            default_service_account: None,
            cloud_tokens: Default::default(),
            default_platform: Default::default(),
            resolutions: ocisource::core::resolution_cache::ResolutionCache::disabled(),
            shared: if self.settings.shared.is_enabled() {
                SharedArtifacts::default()
            } else {
                SharedArtifacts::disabled()
            },
        }
    }

    /// Adds a Secret or ServiceAccount manifest and reloads the directory.
    fn add(&mut self, doc: Value) {
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        let kind = doc["kind"].as_str().unwrap().to_lowercase();
        std::fs::write(
            self.secrets_dir.path().join(format!("{kind}-{name}.json")),
            serde_json::to_string(&doc).unwrap(),
        )
        .unwrap();
        self.secrets = DirSecrets::load(self.secrets_dir.path()).unwrap();
    }

    fn docker_secret(&mut self, name: &str, config: &str) {
        self.add(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NS},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": config},
        }));
    }

    fn opaque_secret(&mut self, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        self.add(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NS},
            "type": "Opaque",
            "stringData": data,
        }));
    }

    fn service_account(&mut self, name: &str, pull_secrets: &[&str]) {
        let refs: Vec<Value> = pull_secrets.iter().map(|s| json!({"name": s})).collect();
        self.add(json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": NS},
            "imagePullSecrets": refs,
        }));
    }

    fn stored(&self, round: &Round) -> PathBuf {
        self.root.path().join(&round.artifact().path)
    }

    async fn run(&self, obj: &mut OciRepository) -> Round {
        self.run_with(obj, &self.settings, &NoVerifier, now()).await
    }

    /// One reconcile; the new status becomes the object's.
    async fn run_with<V: Verifier>(
        &self,
        obj: &mut OciRepository,
        settings: &Settings,
        verifier: &V,
        now: Time,
    ) -> Round {
        let recorder = Recorder::default();
        let before = self.pool.request_counts();
        let ports = Ports {
            secrets: &self.secrets,
            verifier,
            progress: &recorder,
            registries: &self.pool,
        };
        let started = Instant::now();
        let outcome = reconcile::reconcile(obj, settings, ports, now).await;
        let elapsed = started.elapsed();
        let requests = self.pool.request_counts() - before;
        let patches = recorder.0.into_inner().unwrap();
        let generation = obj.metadata.generation.unwrap();
        let status = outcome.status;

        let mut violations =
            kstatus_violations(&status.conditions, generation, status.observed_generation);
        if obj.spec.suspend == Some(true) {
            // As in Flux, a suspended object's summary refreshes Ready only: the other
            // conditions keep the generation they were last set at (upstream runs no condition
            // checks on suspended objects). The object is still kstatus Current.
            violations.retain(|v| !v.starts_with("condition "));
            assert_eq!(status.observed_generation, Some(generation));
        }
        assert!(
            violations.is_empty(),
            "final status of {}: {violations:?}\n{status:#?}",
            obj.metadata.name.as_deref().unwrap()
        );
        for patch in &patches {
            assert_in_progress_sound(patch);
        }
        obj.status = Some(status.clone());
        Round {
            status,
            ending: outcome.ending,
            next: outcome.next,
            events: outcome.events,
            patches,
            requests,
            elapsed,
        }
    }
}

/// The in-progress subset of the kstatus checks (FAIL0002/0004/0005/0011): Ready present,
/// Reconciling True while the work is under way, never Stalled, Ready=Unknown only while
/// Reconciling.
fn assert_in_progress_sound(patch: &OciRepositoryStatus) {
    let ready = cond(patch, "Ready").expect("Ready in every patch");
    let reconciling = cond(patch, "Reconciling").expect("Reconciling in every patch");
    assert_eq!(reconciling.0, "True", "{patch:#?}");
    assert!(cond(patch, "Stalled").is_none(), "{patch:#?}");
    if ready.0 == "Unknown" {
        assert_eq!(
            (ready.1.as_str(), ready.2.as_str()),
            (reconciling.1.as_str(), reconciling.2.as_str()),
            "Ready=Unknown mirrors Reconciling"
        );
    }
}

struct Round {
    status: OciRepositoryStatus,
    ending: Ending,
    next: Next,
    events: Vec<Event>,
    patches: Vec<OciRepositoryStatus>,
    requests: RequestCounts,
    elapsed: Duration,
}

impl Round {
    fn cond(&self, t: &str) -> Option<(String, String, String)> {
        cond(&self.status, t)
    }

    fn ready(&self) -> (String, String, String) {
        self.cond("Ready").expect("Ready")
    }

    /// Panics with the status unless Ready is True with an artifact.
    #[track_caller]
    fn assert_ready(&self) {
        assert_eq!(
            self.ready().0,
            "True",
            "not Ready: {:#?}\nevents: {:#?}",
            self.status,
            self.events
        );
        assert_eq!(self.ending, Ending::Success);
        assert_eq!(self.next, Next::AfterInterval);
        let message = format!("stored artifact for digest '{}'", self.revision());
        assert_eq!(
            self.ready(),
            ("True".into(), "Succeeded".into(), message.clone())
        );
        assert_eq!(
            self.cond("ArtifactInStorage"),
            Some(("True".into(), "Succeeded".into(), message))
        );
    }

    /// `(reason, message)` of FetchFailed, which must be True, with Ready False mirroring it and
    /// the reconcile retried.
    #[track_caller]
    /// [`Round::fetch_failed`] with `reason`, its message starting with `prefix`; the message.
    fn fetch_failed_with(&self, reason: &str, prefix: &str) -> String {
        let (got, message) = self.fetch_failed();
        assert_eq!(got, reason);
        assert!(message.starts_with(prefix), "{message}");
        message
    }

    fn fetch_failed(&self) -> (String, String) {
        let (status, reason, message) = self
            .cond("FetchFailed")
            .unwrap_or_else(|| panic!("no FetchFailed: {:#?}", self.status));
        assert_eq!(status, "True");
        assert_eq!(
            self.ready(),
            ("False".into(), reason.clone(), message.clone())
        );
        assert_eq!(
            self.cond("Reconciling").map(|c| c.1),
            Some("ProgressingWithRetry".into())
        );
        match &self.ending {
            Ending::Failed {
                reason: r,
                message: m,
            } => {
                assert_eq!((*r, m.as_str()), (reason.as_str(), message.as_str()));
            }
            other => panic!("ending {other:?}"),
        }
        assert!(matches!(
            self.next,
            Next::Retry {
                reason: Some(_),
                ..
            }
        ));
        let warnings: Vec<&Event> = self
            .events
            .iter()
            .filter(|e| e.severity == Severity::Error)
            .collect();
        assert_eq!(warnings.len(), 1, "{:#?}", self.events);
        assert_eq!(
            (warnings[0].reason.as_str(), warnings[0].message.as_str()),
            (reason.as_str(), message.as_str())
        );
        (reason, message)
    }

    fn artifact(&self) -> &ocisource::api::v1::Artifact {
        self.status.artifact.as_ref().expect("an artifact")
    }

    fn revision(&self) -> String {
        self.artifact().revision.clone()
    }

    fn events_of(&self, severity: Severity) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.severity == severity)
            .collect()
    }

    /// The Reconciling message of each intermediate patch.
    fn progress(&self) -> Vec<String> {
        self.patches
            .iter()
            .map(|p| cond(p, "Reconciling").unwrap().2)
            .collect()
    }
}

fn cond(status: &OciRepositoryStatus, t: &str) -> Option<(String, String, String)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn later(secs: i64) -> Time {
    Time(
        Timestamp::now()
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap(),
    )
}

/// A new object as the API server stores it: generation 1, observedGeneration -1.
fn repository(name: &str, spec: Value) -> OciRepository {
    OciRepo::new(name)
        .namespace(NS)
        .meta("generation", json!(1))
        .interval("10m")
        .spec_fields(spec)
        .status(json!({"observedGeneration": -1}))
        .object()
}

/// A spec change (JSON merge, `null` removes): the API server bumps the generation.
fn edit_spec(obj: &mut OciRepository, patch: Value) {
    let mut spec = serde_json::to_value(&obj.spec).unwrap();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            spec.as_object_mut().unwrap().remove(k);
        } else {
            spec[k] = v.clone();
        }
    }
    obj.spec = serde_json::from_value(spec).unwrap();
    obj.metadata.generation = Some(obj.metadata.generation.unwrap() + 1);
}

fn status_mut(obj: &mut OciRepository) -> &mut OciRepositoryStatus {
    obj.status.as_mut().unwrap()
}

/// `flux push artifact` of a tree holding `text`, with the origin annotations; the digest.
/// A registry holding `text` at `app:v1`, a test bed, and object `name` following that tag.
struct AtV1 {
    reg: Registry,
    digest: String,
    url: String,
    bed: Bed,
    obj: OciRepository,
}

fn at_v1(name: &str, text: &str) -> AtV1 {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let digest = push(&reg, "app", "v1", text);
    let url = format!("oci://{}/app", reg.host());
    let obj = repository(
        name,
        json!({"url": url, "insecure": true, "ref": {"tag": "v1"}}),
    );
    AtV1 {
        reg,
        digest,
        url,
        bed: Bed::new(),
        obj,
    }
}

fn push(reg: &Registry, repo: &str, tag: &str, text: &str) -> String {
    let dir = common::artifact::deploy_with_overlay(text);
    tools::flux_push_artifact(reg, repo, tag, dir.path(), SOURCE, ORIGIN, &[])
}

fn sha256(bytes: &[u8]) -> String {
    Digest::sha256_of(bytes).to_string()
}

/// The entry names of a stored tar.gz.
fn entries(path: &Path) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    names
}

/// The regular files (artifacts and lock files) in a directory, by name.
fn files_in(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

// ---------------------------------------------------------------------------------------------
// §9 authStrategy, CertSecret, ProxySecret

fn wrong_password_config(reg: &Registry) -> String {
    json!({"auths": {reg.host(): {
        "username": USER,
        "password": "not-the-password",
        "auth": base64::engine::general_purpose::STANDARD.encode(format!("{USER}:not-the-password")),
    }}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_comes_from_the_secret_or_the_service_accounts_pull_secrets() {
    let reg = Registry::start(Flavor::Distribution, Security::Basic);
    let digest = push(&reg, "private/app", "v1", "kind: A\n");
    let url = format!("oci://{}/private/app", reg.host());
    let mut bed = Bed::new();
    bed.docker_secret("good", &reg.docker_config_json());
    bed.docker_secret("wrong", &wrong_password_config(&reg));
    bed.service_account("puller", &["good"]);
    bed.service_account("wrong-puller", &["wrong"]);
    let spec = |extra: Value| {
        let mut s = json!({"url": url, "insecure": true, "ref": {"tag": "v1"}});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    };

    // Auth required, none given.
    let mut obj = repository("anonymous", spec(json!({})));
    let r = bed.run(&mut obj).await;
    let message = r.fetch_failed_with(
        "OCIArtifactPullFailed",
        "failed to determine artifact digest: ",
    );
    assert!(message.contains("UNAUTHORIZED"), "{message}");
    assert!(r.status.artifact.is_none());
    assert_eq!(
        r.status.observed_generation,
        Some(-1),
        "retried, not observed"
    );

    for (name, extra) in [
        ("by-secret", json!({"secretRef": {"name": "good"}})),
        ("by-sa", json!({"serviceAccountName": "puller"})),
    ] {
        let mut obj = repository(name, spec(extra));
        let r = bed.run(&mut obj).await;
        r.assert_ready();
        assert_eq!(r.revision(), format!("v1@{digest}"), "{name}");
        assert_eq!(r.status.observed_generation, Some(1));
    }

    for (name, extra) in [
        ("wrong-secret", json!({"secretRef": {"name": "wrong"}})),
        ("wrong-sa", json!({"serviceAccountName": "wrong-puller"})),
    ] {
        let mut obj = repository(name, spec(extra));
        let r = bed.run(&mut obj).await;
        let (reason, message) = r.fetch_failed();
        assert_eq!(reason, "OCIArtifactPullFailed", "{name}");
        assert!(message.contains("UNAUTHORIZED"), "{name}: {message}");
        assert!(!format!("{:?}{:?}", r.status, r.events).contains("not-the-password"));
    }

    // A static secret wins over a cloud provider.
    let mut obj = repository(
        "azure",
        spec(json!({"provider": "azure", "secretRef": {"name": "good"}})),
    );
    bed.run(&mut obj).await.assert_ready();

    // Missing secret or service account: AuthenticationFailed before any request.
    let mut obj = repository("absent", spec(json!({"secretRef": {"name": "absent"}})));
    let r = bed.run(&mut obj).await;
    assert_eq!(
        r.fetch_failed(),
        (
            "AuthenticationFailed".into(),
            "failed to get credential: failed to get secret 'apps/absent': secrets \"absent\" not found"
                .into()
        )
    );
    assert_eq!(r.requests.total(), 0);
    // Flux records a trace (Kubernetes Normal) event for the missing secretRef on every
    // attempt, before the Warning.
    let seen: Vec<_> = r
        .events
        .iter()
        .map(|e| (e.severity, e.reason.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        seen[0],
        (
            Severity::Trace,
            "AuthenticationFailed",
            "auth secret 'absent' not found"
        ),
        "{seen:?}"
    );
    assert_eq!(seen[1].0, Severity::Error, "{seen:?}");
    let mut obj = repository("no-sa", spec(json!({"serviceAccountName": "ghost"})));
    let r = bed.run(&mut obj).await;
    assert_eq!(
        r.fetch_failed(),
        (
            "AuthenticationFailed".into(),
            "failed to get credential: serviceaccount 'apps/ghost' not found".into()
        )
    );
    assert!(!format!("{:?}", r.events).contains(PASSWORD));
    assert!(
        r.events.iter().all(|e| e.severity != Severity::Trace),
        "no trace event without a secretRef: {:?}",
        r.events
    );
    let mut obj = repository(
        "no-tls",
        spec(json!({"certSecretRef": {"name": "gone-tls"}})),
    );
    let r = bed.run(&mut obj).await;
    let url = obj.spec.url.clone();
    assert_eq!(
        r.fetch_failed(),
        (
            "AuthenticationFailed".into(),
            format!("failed to generate transport for '{url}': secret 'apps/gone-tls' not found")
        )
    );
    let mut obj = repository(
        "no-proxy",
        spec(json!({"proxySecretRef": {"name": "gone-proxy"}})),
    );
    let r = bed.run(&mut obj).await;
    assert_eq!(
        r.fetch_failed(),
        (
            "AuthenticationFailed".into(),
            "failed to get proxy address: secret 'apps/gone-proxy' not found".into()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bearer_token_registry_is_pulled_with_a_cached_token() {
    let reg = Registry::start(Flavor::Referrers, Security::Bearer);
    let digest = push(&reg, "team/app", "v1", "kind: B\n");
    let mut bed = Bed::new();
    bed.docker_secret("creds", &reg.docker_config_json());
    let url = format!("oci://{}/team/app", reg.host());

    let mut anonymous = repository(
        "anonymous",
        json!({"url": url, "insecure": true, "ref": {"tag": "v1"}}),
    );
    let r = bed.run(&mut anonymous).await;
    assert_eq!(r.fetch_failed().0, "OCIArtifactPullFailed");

    let mut obj = repository(
        "bearer",
        json!({"url": url, "insecure": true, "ref": {"tag": "v1"}, "secretRef": {"name": "creds"}}),
    );
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.revision(), format!("v1@{digest}"));
    assert!(r.requests.token >= 1, "{:?}", r.requests);

    let again = bed.run(&mut obj).await;
    again.assert_ready();
    assert_eq!(
        (
            again.requests.token,
            again.requests.manifest_head,
            again.requests.blob
        ),
        (0, 1, 0),
        "the token is reused and nothing is pulled: {:?}",
        again.requests
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn https_trusts_the_ca_from_ca_crt_or_the_legacy_ca_file() {
    let reg = Registry::start(Flavor::Distribution, Security::Https);
    let digest = push(&reg, "app", "v1", "kind: C\n");
    let ca = reg.ca_pem().unwrap();
    let url = format!("oci://{}/app", reg.host());
    let mut bed = Bed::new();
    bed.opaque_secret("ca", &[("ca.crt", &ca)]);
    bed.opaque_secret("legacy", &[("caFile", &ca)]);
    bed.opaque_secret("both", &[("ca.crt", &ca), ("caFile", "not a certificate")]);
    bed.opaque_secret("invalid", &[("ca.crt", "not a certificate")]);

    for secret in ["ca", "legacy", "both"] {
        let mut obj = repository(
            secret,
            json!({"url": url, "ref": {"tag": "v1"}, "certSecretRef": {"name": secret}}),
        );
        let r = bed.run(&mut obj).await;
        r.assert_ready();
        assert_eq!(r.revision(), format!("v1@{digest}"), "{secret}");
    }

    let mut obj = repository("no-ca", json!({"url": url, "ref": {"tag": "v1"}}));
    let r = bed.run(&mut obj).await;
    let message = r.fetch_failed_with(
        "OCIArtifactPullFailed",
        "failed to determine artifact digest: ",
    );
    assert!(
        message.contains(
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        ),
        "{message}"
    );

    let mut obj = repository(
        "invalid",
        json!({"url": url, "ref": {"tag": "v1"}, "certSecretRef": {"name": "invalid"}}),
    );
    let r = bed.run(&mut obj).await;
    assert_eq!(
        r.fetch_failed(),
        (
            "AuthenticationFailed".into(),
            format!(
                "failed to generate transport for '{url}': cannot append certificate into certificate pool: invalid CA certificate"
            )
        )
    );
    assert_eq!(r.requests.total(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn mtls_needs_the_client_certificate_from_the_cert_secret() {
    let reg = Registry::start(Flavor::Distribution, Security::Mtls);
    let charts = tempfile::tempdir().unwrap();
    let chart = tools::write_minimal_chart(charts.path(), "podinfo", "6.1.6");
    let pushed = tools::helm_package_and_push(&reg, &chart, "charts");
    let url = format!("oci://{}/{}", reg.host(), pushed.repository);
    let (ca, cert, key) = (
        reg.ca_pem().unwrap(),
        reg.client_cert_pem().unwrap(),
        reg.client_key_pem().unwrap(),
    );
    let mut bed = Bed::new();
    bed.opaque_secret(
        "client",
        &[("ca.crt", &ca), ("tls.crt", &cert), ("tls.key", &key)],
    );
    bed.opaque_secret("ca-only", &[("ca.crt", &ca)]);
    bed.opaque_secret(
        "bad-key",
        &[("caFile", &ca), ("certFile", &cert), ("keyFile", "invalid")],
    );
    let spec = |secret: Option<&str>| {
        let mut s = json!({"url": url, "ref": {"tag": "6.1.6"}});
        if let Some(name) = secret {
            s["certSecretRef"] = json!({"name": name});
        }
        s
    };

    let mut obj = repository("client", spec(Some("client")));
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.revision(), format!("6.1.6@{}", pushed.digest));
    assert!(
        entries(&bed.stored(&r)).contains(&"podinfo/Chart.yaml".to_string()),
        "the chart layer is extracted"
    );

    let mut obj = repository("no-secret", spec(None));
    let r = bed.run(&mut obj).await;
    let (reason, message) = r.fetch_failed();
    assert_eq!(reason, "OCIArtifactPullFailed");
    assert!(
        message.contains("tls: failed to verify certificate: x509:"),
        "{message}"
    );

    let mut obj = repository("ca-only", spec(Some("ca-only")));
    let r = bed.run(&mut obj).await;
    let message = r.fetch_failed_with(
        "OCIArtifactPullFailed",
        "failed to determine artifact digest: ",
    );
    assert!(message.contains("remote error: tls: "), "{message}");

    let mut obj = repository("bad-key", spec(Some("bad-key")));
    let r = bed.run(&mut obj).await;
    assert_eq!(
        r.fetch_failed(),
        (
            "AuthenticationFailed".into(),
            format!(
                "failed to generate transport for '{url}': tls: failed to find any PEM data in key input"
            )
        )
    );
}

/// A forward proxy: CONNECT tunnels and absolute-form requests alike go to `upstream`, whatever
/// host they name (so a registry name only the proxy resolves proves it was used), and each
/// connection's target and `Proxy-Authorization` are recorded. Requests after the first on a
/// connection are relayed as bytes; Go's HTTP servers accept absolute-form request lines.
struct ForwardProxy {
    addr: SocketAddr,
    targets: Targets,
}

type Targets = Arc<Mutex<Vec<(String, Option<String>)>>>;

impl ForwardProxy {
    async fn start(upstream: String) -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let targets = Targets::default();
        let seen = Arc::clone(&targets);
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(relay(conn, upstream.clone(), Arc::clone(&seen)));
            }
        });
        ForwardProxy { addr, targets }
    }

    /// The target of each connection so far, with its `Proxy-Authorization` header.
    fn targets(&self) -> Vec<(String, Option<String>)> {
        self.targets.lock().unwrap().clone()
    }
}

async fn relay(conn: TcpStream, upstream: String, targets: Targets) {
    let mut conn = BufReader::new(conn);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        head.extend_from_slice(line.as_bytes());
        if line == "\r\n" {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let first = text.lines().next().unwrap_or("").to_string();
    let auth = text.lines().find_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case("proxy-authorization"))
            .map(|(_, v)| v.trim().to_string())
    });
    let mut parts = first.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let Ok(mut up) = TcpStream::connect(&upstream).await else {
        return;
    };
    if method == "CONNECT" {
        targets.lock().unwrap().push((target.to_string(), auth));
        if conn
            .get_mut()
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    } else {
        let host = target
            .strip_prefix("http://")
            .and_then(|t| t.split('/').next())
            .unwrap_or(target);
        targets.lock().unwrap().push((host.to_string(), auth));
        if up.write_all(&head).await.is_err() {
            return;
        }
    }
    let buffered = conn.buffer().to_vec();
    if up.write_all(&buffered).await.is_err() {
        return;
    }
    let mut conn = conn.into_inner();
    let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
}

fn port_of(host: &str) -> String {
    host.rsplit(':').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_secret_routes_the_pull_and_a_broken_proxy_fails_it() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let digest = push(&reg, "app", "v1", "kind: P\n");
    let proxy = ForwardProxy::start(reg.host()).await;
    let closed = free_port();
    let mut bed = Bed::new();
    bed.opaque_secret("proxy", &[("address", &format!("http://{}", proxy.addr))]);
    bed.opaque_secret(
        "proxy-auth",
        &[
            ("address", &format!("http://{}", proxy.addr)),
            ("username", "proxy-user"),
            ("password", "proxy-pass"),
        ],
    );
    bed.opaque_secret(
        "broken",
        &[(
            "address",
            &format!("http://someone:proxy-secret@127.0.0.1:{closed}"),
        )],
    );
    bed.opaque_secret("no-address", &[("username", "someone")]);
    // Only the proxy knows this name.
    let host = format!("registry.ocisource.invalid:{}", port_of(&reg.host()));
    let url = format!("oci://{host}/app");
    let spec = |secret: &str| {
        json!({"url": url, "insecure": true, "timeout": "5s", "ref": {"digest": digest},
               "proxySecretRef": {"name": secret}})
    };

    let mut obj = repository("proxied", spec("proxy"));
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.revision(), digest);
    let targets = proxy.targets();
    assert!(!targets.is_empty());
    assert!(
        targets.iter().all(|t| *t == (host.clone(), None)),
        "{targets:?}"
    );

    // Proxy credentials from the secret (§9 getProxyURL).
    let mut obj = repository("proxied-auth", spec("proxy-auth"));
    bed.run(&mut obj).await.assert_ready();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("proxy-user:proxy-pass")
    );
    let authed: Vec<_> = proxy.targets().into_iter().skip(targets.len()).collect();
    assert!(!authed.is_empty());
    assert!(
        authed
            .iter()
            .all(|t| *t == (host.clone(), Some(basic.clone()))),
        "{authed:?}"
    );

    // A digest reference makes no request before the pull: the broken proxy fails the pull.
    let mut obj = repository("broken", spec("broken"));
    let r = bed.run(&mut obj).await;
    r.fetch_failed_with(
        "OCIArtifactPullFailed",
        &format!("failed to pull artifact from '{url}'"),
    );
    assert!(r.status.artifact.is_none());
    assert_eq!(r.requests.manifest_head + r.requests.tags, 0);
    assert!(
        !format!("{:?}{:?}", r.status, r.events).contains("proxy-secret"),
        "the proxy password never shows"
    );

    let mut obj = repository("no-address", spec("no-address"));
    let r = bed.run(&mut obj).await;
    assert_eq!(
        r.fetch_failed(),
        (
            "AuthenticationFailed".into(),
            "failed to get proxy address: secret 'apps/no-address': key 'address' not found".into()
        )
    );

    // HTTPS with the private CA through a CONNECT tunnel (the certificate names localhost).
    let tls = Registry::start(Flavor::Referrers, Security::Https);
    let tls_digest = push(&tls, "app", "v1", "kind: T\n");
    let tls_proxy = ForwardProxy::start(tls.host()).await;
    let tls_host = format!("localhost:{}", port_of(&tls.host()));
    bed.opaque_secret(
        "tls-proxy",
        &[("address", &format!("http://{}", tls_proxy.addr))],
    );
    bed.opaque_secret("tls-ca", &[("ca.crt", &tls.ca_pem().unwrap())]);
    let mut obj = repository(
        "proxied-tls",
        json!({"url": format!("oci://{tls_host}/app"), "ref": {"tag": "v1"},
               "proxySecretRef": {"name": "tls-proxy"}, "certSecretRef": {"name": "tls-ca"}}),
    );
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.revision(), format!("v1@{tls_digest}"));
    let targets = tls_proxy.targets();
    assert!(!targets.is_empty());
    assert!(
        targets.iter().all(|t| *t == (tls_host.clone(), None)),
        "{targets:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// §9 remoteReference, MediaType, invalidURL, feature gate, cloud providers

#[tokio::test(flavor = "multi_thread")]
async fn references_resolve_by_fluxs_precedence_and_report_the_new_revision() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let mut digests = BTreeMap::new();
    for tag in ["6.1.4", "6.1.5", "6.1.6", "6.1.6-rc.1", "latest"] {
        digests.insert(
            tag,
            push(&reg, "podinfo", tag, &format!("version: {tag}\n")),
        );
    }
    let host = reg.host();
    let url = format!("oci://{host}/podinfo");
    let bed = Bed::new();
    let (bed_ref, url_ref) = (&bed, &url);
    let run = move |name: &'static str, reference: Value| {
        let mut obj = repository(
            name,
            json!({"url": url_ref, "insecure": true, "ref": reference}),
        );
        let bed = bed_ref;
        async move {
            let r = bed.run(&mut obj).await;
            (obj, r)
        }
    };

    // No reference: latest. The progress patches are Flux's timeline (§4.15).
    let (_, r) = run("none", json!({})).await;
    r.assert_ready();
    let revision = format!("latest@{}", digests["latest"]);
    assert_eq!(r.revision(), revision);
    let drift = format!("building artifact: new revision '{revision}' for '{host}/podinfo:latest'");
    assert_eq!(
        r.progress(),
        vec![
            "processing object: new generation -1 -> 1".to_string(),
            "building artifact".to_string(),
            drift.clone(),
        ]
    );
    for patch in &r.patches {
        assert_eq!(cond(patch, "Ready").unwrap().0, "Unknown");
        assert!(cond(patch, "ArtifactOutdated").is_none(), "no artifact yet");
    }
    assert_eq!(r.status.observed_generation, Some(1));
    assert!(r.cond("Reconciling").is_none());
    let meta = r.artifact().metadata.clone().unwrap();
    assert_eq!(meta["org.opencontainers.image.source"], SOURCE);
    assert_eq!(meta["org.opencontainers.image.revision"], ORIGIN);
    assert_eq!(
        r.artifact().path,
        format!("ocirepository/apps/none/{}.tar.gz", digests["latest"])
    );
    assert_eq!(
        r.artifact().url,
        format!(
            "http://{ADV}/ocirepository/apps/none/{}.tar.gz",
            digests["latest"]
        )
    );
    assert_eq!(
        r.status.url.as_deref(),
        Some(format!("http://{ADV}/ocirepository/apps/none/latest.tar.gz").as_str())
    );
    let stored = bed.stored(&r);
    assert_eq!(
        r.artifact().digest.as_deref(),
        Some(sha256(&std::fs::read(&stored).unwrap()).as_str())
    );
    assert_eq!(
        r.artifact().size,
        Some(std::fs::metadata(&stored).unwrap().len() as i64)
    );
    assert_eq!(
        entries(&stored),
        [
            ".",
            "deploy.yaml",
            "overlays",
            "overlays/kustomization.yaml"
        ]
    );

    let (_, r) = run("tag", json!({"tag": "6.1.5"})).await;
    r.assert_ready();
    assert_eq!(r.revision(), format!("6.1.5@{}", digests["6.1.5"]));

    let (_, r) = run("semver", json!({"semver": ">= 6.1.5"})).await;
    r.assert_ready();
    assert_eq!(r.revision(), format!("6.1.6@{}", digests["6.1.6"]));
    assert_eq!(r.requests.tags, 1);

    let d = digests["6.1.4"].clone();
    let (_, r) = run("digest", json!({"digest": d})).await;
    r.assert_ready();
    assert_eq!(
        r.revision(),
        d,
        "a digest reference's revision is the bare digest"
    );
    assert!(r.progress().contains(&format!(
        "building artifact: new revision '{d}' for '{host}/podinfo@{d}'"
    )));
    assert_eq!(r.requests.manifest_head + r.requests.tags, 0);

    let (_, r) = run("semver-tag", json!({"semver": "<= 6.1.5", "tag": "6.1.6"})).await;
    r.assert_ready();
    assert_eq!(
        r.revision(),
        format!("6.1.5@{}", digests["6.1.5"]),
        "semver beats tag"
    );

    let (_, r) = run(
        "all",
        json!({"digest": d, "semver": ">= 6.1.5", "tag": "6.1.6"}),
    )
    .await;
    r.assert_ready();
    assert_eq!(r.revision(), d, "digest beats semver and tag");

    let (_, r) = run("missing-tag", json!({"tag": "6.1.9"})).await;
    let message = r.fetch_failed_with(
        "OCIArtifactPullFailed",
        "failed to determine artifact digest: ",
    );
    assert!(message.contains(" MANIFEST_UNKNOWN"), "{message}");

    let (_, r) = run("no-match", json!({"semver": "<= 6.1.0"})).await;
    assert_eq!(
        r.fetch_failed(),
        (
            "ReadOperationFailed".into(),
            format!(
                "failed to determine the artifact tag for '{url}': no match found for semver: <= 6.1.0"
            )
        )
    );

    let (_, r) = run("bad-digest", json!({"digest": "invalid"})).await;
    r.fetch_failed_with(
        "OCIArtifactPullFailed",
        "failed to determine artifact digest",
    );
    assert_eq!(r.requests.total(), 0);

    // semverFilter (§9 getArtifactRef).
    let (_, r) = run(
        "filter",
        json!({"semver": ">= 6.1.x-0", "semverFilter": ".*-rc.*"}),
    )
    .await;
    r.assert_ready();
    assert_eq!(
        r.revision(),
        format!("6.1.6-rc.1@{}", digests["6.1.6-rc.1"])
    );
    let (_, r) = run(
        "filter-none",
        json!({"semver": ">= 6.1.x-0", "semverFilter": ".*-alpha.*"}),
    )
    .await;
    let (reason, message) = r.fetch_failed();
    assert_eq!(reason, "ReadOperationFailed");
    assert!(
        message.starts_with(&format!(
            "failed to determine the artifact tag for '{url}': "
        )),
        "{message}"
    );

    // Media types (§9 MediaType).
    let mut obj = repository(
        "media-type",
        json!({"url": url, "insecure": true, "ref": {"tag": "6.1.6"},
               "layerSelector": {"mediaType": FLUX_LAYER}}),
    );
    bed.run(&mut obj).await.assert_ready();
    let mut obj = repository(
        "unknown-media-type",
        json!({"url": url, "insecure": true, "ref": {"tag": "6.1.6"},
               "layerSelector": {"mediaType": "application/x-unknown"}}),
    );
    let r = bed.run(&mut obj).await;
    assert_eq!(
        r.fetch_failed(),
        (
            "OCIArtifactLayerOperationFailed".into(),
            "failed to find layer with media type 'application/x-unknown' in artifact".into()
        )
    );
}

/// Flux 2.9: with the Helm chart media type selected, `helm push`'s `_` tags (for `+` build
/// metadata) take part in semver selection; either 6.2.1 tag is acceptable.
#[tokio::test(flavor = "multi_thread")]
async fn helm_chart_tags_with_build_metadata_resolve_by_semver() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let charts = tempfile::tempdir().unwrap();
    let mut pushed = BTreeMap::new();
    for version in ["6.1.0", "6.2.1", "6.2.1+ref.1234567"] {
        let dir = tempfile::tempdir_in(charts.path()).unwrap();
        let chart = tools::write_minimal_chart(dir.path(), "podinfo", version);
        let p = tools::helm_package_and_push(&reg, &chart, "charts");
        pushed.insert(p.version.clone(), p.digest);
    }
    assert!(pushed.contains_key("6.2.1_ref.1234567"), "{pushed:?}");
    let bed = Bed::new();
    let mut obj = repository(
        "chart",
        json!({"url": format!("oci://{}/charts/podinfo", reg.host()), "insecure": true,
               "ref": {"semver": ">= 6.2.0"},
               "layerSelector": {"mediaType": reconcile::HELM_CHART_MEDIA_TYPE, "operation": "copy"}}),
    );
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    let revision = r.revision();
    let (tag, digest) = revision.split_once('@').unwrap();
    assert!(["6.2.1", "6.2.1_ref.1234567"].contains(&tag), "{revision}");
    assert_eq!(pushed[tag], digest);
    let bytes = std::fs::read(bed.stored(&r)).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "the chart .tgz as pushed");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_urls_and_the_workload_identity_gate_stall_and_providers_fail_closed() {
    let mut bed = Bed::new();
    bed.service_account("app", &[]);

    let mut obj = repository("tagged", json!({"url": "oci://ghcr.io/test/test:v1"}));
    let r = bed.run(&mut obj).await;
    let (_, reason, message) = r.cond("Stalled").unwrap();
    assert_eq!(reason, "URLInvalid");
    assert!(
        message.starts_with("URL validation failed for 'oci://ghcr.io/test/test:v1'"),
        "{message}"
    );
    assert_eq!(r.cond("FetchFailed").unwrap().1, "URLInvalid");
    assert_eq!(r.ready().0, "False", "not Unknown");
    assert_eq!(r.ready().1, "URLInvalid");
    assert!(r.cond("Reconciling").is_none());
    assert_eq!(r.status.observed_generation, Some(1));
    assert_eq!(r.next, Next::Nothing);
    assert_eq!(r.events_of(Severity::Error)[0].reason, "URLInvalid");

    // No oci:// prefix (the CRD pattern forbids it; a reconcile still stalls on it).
    let mut obj = repository("no-scheme", json!({"url": "ghcr.io/stefanprodan/charts"}));
    let r = bed.run(&mut obj).await;
    let (_, reason, message) = r.cond("Stalled").unwrap();
    assert_eq!(reason, "URLInvalid");
    assert!(
        message.starts_with("URL validation failed for 'ghcr.io/stefanprodan/charts'"),
        "{message}"
    );
    assert_eq!(r.requests.total(), 0);

    let ecr = "oci://123456789012.dkr.ecr.us-east-1.amazonaws.com/podinfo";
    let mut obj = repository("aws", json!({"url": ecr, "provider": "aws"}));
    let r = bed.run(&mut obj).await;
    r.fetch_failed_with("AuthenticationFailed", "failed to get credential from aws");
    let mut obj = repository(
        "gated",
        json!({"url": ecr, "provider": "aws", "serviceAccountName": "app"}),
    );
    let r = bed.run(&mut obj).await;
    assert_eq!(
        r.cond("Stalled"),
        Some((
            "True".into(),
            "FeatureGateDisabled".into(),
            "to use spec.serviceAccountName for provider authentication please enable the ObjectLevelWorkloadIdentity feature gate in the controller".into()
        ))
    );
    assert!(r.cond("FetchFailed").is_none());
    assert_eq!(r.status.observed_generation, Some(1));

    // With the gate on, a requestedAt bump retries and the provider fails (no cloud login here).
    let gate_on = bed.settings(ADV, true);
    obj.metadata.annotations = Some(BTreeMap::from([(
        "reconcile.fluxcd.io/requestedAt".to_string(),
        "now".to_string(),
    )]));
    let r = bed.run_with(&mut obj, &gate_on, &NoVerifier, now()).await;
    r.fetch_failed_with("AuthenticationFailed", "failed to get credential from aws");
    assert!(r.cond("Stalled").is_none());
    assert_eq!(r.status.last_handled_reconcile_at.as_deref(), Some("now"));
}

// ---------------------------------------------------------------------------------------------
// §9 noop, §4.5.12

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_source_is_not_pulled_again() {
    unchanged_source_not_pulled(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_source_is_not_pulled_again_without_sharing() {
    unchanged_source_not_pulled(false).await;
}

async fn unchanged_source_not_pulled(sharing: bool) {
    let AtV1 {
        reg,
        digest,
        mut bed,
        mut obj,
        ..
    } = at_v1("noop", "kind: N\n");
    if !sharing {
        bed = Bed::without_sharing();
    }

    let first = bed.run(&mut obj).await;
    first.assert_ready();
    assert_eq!(first.requests.blob, 1, "{:?}", first.requests);
    let revision = format!("v1@{digest}");

    // Same revision, same content config: one HEAD, nothing pulled, nothing patched.
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(
        (
            r.requests.manifest_head,
            r.requests.manifest_get,
            r.requests.blob
        ),
        (1, 0, 0),
        "{:?}",
        r.requests
    );
    assert!(r.patches.is_empty(), "Ready stays True: {:#?}", r.patches);
    assert_eq!(r.status.artifact, first.status.artifact);
    assert_eq!(
        r.events,
        vec![Event::trace(
            "ArtifactUpToDate",
            format!("artifact up-to-date with remote revision: '{revision}'")
        )]
    );

    // Conditions keep their transition times when nothing changes (an hour later here).
    let ltt = |s: &OciRepositoryStatus| {
        s.conditions
            .iter()
            .map(|c| (c.type_.clone(), c.last_transition_time.clone()))
            .collect::<Vec<_>>()
    };
    let r = bed
        .run_with(&mut obj, &bed.settings, &NoVerifier, later(3600))
        .await;
    assert_eq!(ltt(&r.status), ltt(&first.status));

    // A new generation without a source change: patched with Ready kept True (no drift),
    // nothing pulled, the generation observed.
    edit_spec(&mut obj, json!({"interval": "5m"}));
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.requests.blob, 0);
    assert_eq!(r.progress(), ["processing object: new generation 1 -> 2"]);
    assert_eq!(cond(&r.patches[0], "Ready").unwrap().0, "True");
    assert_eq!(r.status.observed_generation, Some(2));

    // observedIgnore set while spec.ignore is nil: rebuilt; with sharing, from the stored
    // content of the same layer and ignore rules, without a download.
    status_mut(&mut obj).observed_ignore = Some("*.md".into());
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.requests.blob, u64::from(!sharing));
    assert_eq!(r.status.observed_ignore, None);

    // spec.ignore set: pulled once, observed, then left alone. The digest changes without a
    // revision change: NewArtifact.
    edit_spec(&mut obj, json!({"ignore": "overlays/"}));
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.requests.blob, 1);
    assert_eq!(r.progress()[0], "processing object: new generation 2 -> 3");
    assert_eq!(r.status.observed_ignore.as_deref(), Some("overlays/"));
    assert_eq!(r.revision(), revision);
    assert_eq!(entries(&bed.stored(&r)), [".", "deploy.yaml"]);
    assert_ne!(r.artifact().digest, first.artifact().digest);
    assert_eq!(r.events_of(Severity::Info)[0].reason, "NewArtifact");
    let r = bed.run(&mut obj).await;
    assert_eq!(r.requests.blob, 0);

    // A layer selector not yet observed: pulled (with sharing, the selected layer is the one
    // stored already: linked again); then observed equal: not pulled.
    edit_spec(
        &mut obj,
        json!({"layerSelector": {"mediaType": FLUX_LAYER}}),
    );
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.requests.blob, u64::from(!sharing));
    assert_eq!(
        serde_json::to_value(&r.status.observed_layer_selector).unwrap(),
        json!({"mediaType": FLUX_LAYER})
    );
    let r = bed.run(&mut obj).await;
    assert_eq!(r.requests.blob, 0);
    // The observed media type differs: pulled again (or linked again).
    status_mut(&mut obj)
        .observed_layer_selector
        .as_mut()
        .unwrap()
        .media_type = Some("application/x-other".into());
    let r = bed.run(&mut obj).await;
    assert_eq!(r.requests.blob, u64::from(!sharing));

    // operation: copy stores the layer as pushed.
    edit_spec(
        &mut obj,
        json!({"layerSelector": {"mediaType": FLUX_LAYER, "operation": "copy"}}),
    );
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.requests.blob, 1);
    let manifest: Value =
        serde_json::from_str(&tools::crane_manifest(&reg, &format!("app@{digest}"))).unwrap();
    assert_eq!(
        r.artifact().digest.as_deref(),
        manifest["layers"][0]["digest"].as_str()
    );

    // The observed operation differs from the spec's: pulled again (or linked again).
    status_mut(&mut obj)
        .observed_layer_selector
        .as_mut()
        .unwrap()
        .operation = Some(ocisource::api::v1::LayerOperation::Extract);
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.requests.blob, u64::from(!sharing));
    let r = bed.run(&mut obj).await;
    assert_eq!(r.requests.blob, 0);

    // requestedAt: patched at once (Ready kept True), recorded, nothing pulled.
    obj.metadata.annotations = Some(BTreeMap::from([(
        "reconcile.fluxcd.io/requestedAt".to_string(),
        "2026-01-01T00:00:00Z".to_string(),
    )]));
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.patches.len(), 1);
    assert_eq!(cond(&r.patches[0], "Ready").unwrap().0, "True");
    assert_eq!(
        r.status.last_handled_reconcile_at.as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
    assert_eq!(r.requests.blob, 0);

    // A digest reference: a new revision string (pulled, or linked with sharing: the same
    // content), then zero registry traffic.
    edit_spec(&mut obj, json!({"ref": {"digest": digest}}));
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.revision(), digest);
    assert_eq!(r.requests.blob, u64::from(!sharing));
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.requests.total(), 0, "{:?}", r.requests);

    // Suspended: nothing is done, the new generation is observed, Ready kept.
    edit_spec(&mut obj, json!({"suspend": true}));
    let generation = obj.metadata.generation;
    let r = bed.run(&mut obj).await;
    assert_eq!(r.ending, Ending::Done);
    assert_eq!(r.next, Next::Nothing);
    assert_eq!(r.requests.total(), 0);
    assert!(r.patches.is_empty());
    assert_eq!(r.status.observed_generation, generation);
    assert_eq!(r.ready().0, "True");
}

// ---------------------------------------------------------------------------------------------
// §9 reconcileStorage, §4.11

#[tokio::test(flavor = "multi_thread")]
async fn storage_drift_is_detected_and_repaired() {
    storage_drift(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_drift_is_detected_and_repaired_without_sharing() {
    storage_drift(false).await;
}

async fn storage_drift(sharing: bool) {
    // The registry must outlive the reconciles: bound, not dropped.
    let AtV1 {
        reg: _registry,
        mut bed,
        mut obj,
        ..
    } = at_v1("drift", "kind: S\n");
    if !sharing {
        bed = Bed::without_sharing();
    }
    let first = bed.run(&mut obj).await;
    first.assert_ready();
    let stored = bed.stored(&first);
    let bytes = std::fs::read(&stored).unwrap();

    // The file disappeared: rebuilt, same digest, no event (the digest did not change).
    std::fs::remove_file(&stored).unwrap();
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert!(
        r.progress()
            .contains(&"building artifact: disappeared from storage".to_string()),
        "{:?}",
        r.progress()
    );
    let gone = r
        .patches
        .iter()
        .find(|p| {
            cond(p, "Reconciling").unwrap().2 == "building artifact: disappeared from storage"
        })
        .unwrap();
    assert_eq!(
        cond(gone, "Ready").unwrap().0,
        "Unknown",
        "drift makes Ready Unknown"
    );
    assert!(
        gone.artifact.is_none() && gone.url.is_none(),
        "artifact cleared"
    );
    assert!(cond(gone, "ArtifactInStorage").is_none());
    // With sharing the stored content is linked again; Flux downloads it again.
    assert_eq!(r.requests.blob, u64::from(!sharing));
    assert_eq!(std::fs::read(&stored).unwrap(), bytes);
    assert_eq!(r.artifact().digest, first.artifact().digest);
    assert!(r.events_of(Severity::Info).is_empty(), "{:#?}", r.events);

    // The file was corrupted: a Warning, deleted, rebuilt.
    std::fs::write(&stored, b"tampered").unwrap();
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    let warnings = r.events_of(Severity::Error);
    assert_eq!(warnings.len(), 1, "{:#?}", r.events);
    assert_eq!(warnings[0].reason, "ArtifactVerificationFailed");
    assert!(
        warnings[0]
            .message
            .starts_with("failed to verify integrity of artifact: "),
        "{}",
        warnings[0].message
    );
    assert!(
        r.progress()
            .contains(&"building artifact: disappeared from storage".to_string())
    );
    assert_eq!(std::fs::read(&stored).unwrap(), bytes);
    // The corrupt bytes were shared: never linked again, downloaded again.
    assert_eq!(r.requests.blob, 1);

    // The file was replaced by a symlink to a file outside the store: not followed, not
    // written through, replaced by a regular file.
    let victim = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(victim.path(), b"outside").unwrap();
    std::fs::remove_file(&stored).unwrap();
    std::os::unix::fs::symlink(victim.path(), &stored).unwrap();
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert!(
        r.progress()
            .contains(&"building artifact: disappeared from storage".to_string())
    );
    assert!(std::fs::symlink_metadata(&stored).unwrap().is_file());
    assert_eq!(std::fs::read(&stored).unwrap(), bytes);
    assert_eq!(std::fs::read(victim.path()).unwrap(), b"outside");

    // An empty digest counts as a mismatch.
    status_mut(&mut obj).artifact.as_mut().unwrap().digest = None;
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(
        r.events_of(Severity::Error)[0].reason,
        "ArtifactVerificationFailed"
    );
    assert_eq!(r.artifact().digest, first.artifact().digest);

    // Another advertised address: URLs rewritten, nothing else.
    let moved = bed.settings("cdn.example.org:8080", false);
    let r = bed.run_with(&mut obj, &moved, &NoVerifier, now()).await;
    r.assert_ready();
    assert_eq!(
        r.artifact().url,
        format!("http://cdn.example.org:8080/{}", first.artifact().path)
    );
    assert_eq!(
        r.status.url.as_deref(),
        Some("http://cdn.example.org:8080/ocirepository/apps/drift/latest.tar.gz")
    );
    assert!(r.patches.is_empty(), "Ready untouched: {:#?}", r.patches);
    assert_eq!(r.requests.blob, 0);
    assert_eq!(
        r.cond("Ready").map(|c| c.2),
        first.cond("Ready").map(|c| c.2)
    );
}

// ---------------------------------------------------------------------------------------------
// One copy per artifact (`--artifact-sharing`, a difference from Flux)

#[tokio::test(flavor = "multi_thread")]
async fn objects_selecting_the_same_content_share_one_download_and_one_file() {
    use std::os::unix::fs::MetadataExt as _;
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let layer = Tar::default().file("app.yaml", b"kind: Shared\n").gz();
    push_layer(&reg, "app", "v1", &layer).await;
    push_layer(&reg, "mirror", "stable", &layer).await;
    let bed = Bed::new();
    let spec = |repo: &str, tag: &str, extra: Value| {
        let mut spec = json!({"url": format!("oci://{}/{repo}", reg.host()), "insecure": true,
                              "ref": {"tag": tag}});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        spec
    };
    let inode = |r: &Round| std::fs::metadata(bed.stored(r)).unwrap().ino();

    // The same layer in another repository, under another tag: one download, one file under
    // each object's own name, the same digest, the same events and conditions.
    let mut a = repository("a", spec("app", "v1", json!({})));
    let mut b = repository("b", spec("mirror", "stable", json!({})));
    let ra = bed.run(&mut a).await;
    ra.assert_ready();
    assert_eq!(ra.requests.blob, 1, "{:?}", ra.requests);
    let rb = bed.run(&mut b).await;
    rb.assert_ready();
    assert_eq!(rb.requests.blob, 0, "{:?}", rb.requests);
    assert_eq!(
        rb.requests.manifest_get, 1,
        "its own manifest, with its own credentials"
    );
    assert_eq!(rb.artifact().digest, ra.artifact().digest);
    assert_eq!(rb.artifact().size, ra.artifact().size);
    assert!(
        rb.artifact()
            .path
            .starts_with(&format!("ocirepository/{NS}/b/"))
    );
    assert_eq!(inode(&rb), inode(&ra));
    assert_eq!(entries(&bed.stored(&rb)), entries(&bed.stored(&ra)));
    let reasons = |r: &Round| {
        r.events
            .iter()
            .map(|e| e.reason.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(reasons(&rb), reasons(&ra));
    assert_eq!(rb.cond("ArtifactInStorage").unwrap().1, "Succeeded");
    assert_eq!(
        rb.status
            .url
            .as_deref()
            .map(|u| u.ends_with("/b/latest.tar.gz")),
        Some(true)
    );

    // Objects that need a new content at the same time wait for one download.
    let other = Tar::default().file("app.yaml", b"kind: Burst\n").gz();
    push_layer(&reg, "app", "v2", &other).await;
    let mut burst: Vec<_> = (0..5)
        .map(|i| repository(&format!("burst{i}"), spec("app", "v2", json!({}))))
        .collect();
    let before = bed.pool.request_counts();
    let rounds = futures::future::join_all(burst.iter_mut().map(|o| bed.run(o))).await;
    let spent = bed.pool.request_counts() - before;
    assert_eq!(spent.blob, 1, "{spent:?}");
    for r in &rounds {
        r.assert_ready();
        assert_eq!(inode(r), inode(&rounds[0]));
    }

    // Other ignore rules or another operation make other bytes: their own download, then shared.
    let mut ignoring = repository("ignoring", spec("app", "v1", json!({"ignore": "*.md"})));
    let r = bed.run(&mut ignoring).await;
    r.assert_ready();
    assert_eq!(r.requests.blob, 1);
    assert_ne!(inode(&r), inode(&ra));
    let copy = json!({"layerSelector": {"mediaType": FLUX_LAYER, "operation": "copy"}});
    let mut copies = [
        repository("copy1", spec("app", "v1", copy.clone())),
        repository("copy2", spec("mirror", "stable", copy)),
    ];
    let r1 = bed.run(&mut copies[0]).await;
    let r2 = bed.run(&mut copies[1]).await;
    r1.assert_ready();
    r2.assert_ready();
    assert_eq!((r1.requests.blob, r2.requests.blob), (1, 0));
    assert_eq!(std::fs::read(bed.stored(&r2)).unwrap(), layer);
    assert_eq!(inode(&r1), inode(&r2));
    assert_eq!(
        bed.settings.shared.stored(),
        4,
        "a, the burst, ignoring, copy1"
    );
    assert_eq!(
        bed.settings.shared.shared(),
        6,
        "b, four of the burst, copy2"
    );

    // A deleted object lets go of its name only; the entry goes once nobody links it for the
    // retention TTL, and the next object downloads again.
    let storage = &bed.settings.storage;
    reconcile::cleanup(storage, NS, "a").unwrap();
    assert!(bed.stored(&rb).is_file());
    let later = std::time::SystemTime::now() + 2 * storage.retention().ttl;
    let swept = storage.sweep_shared(later);
    assert_eq!(
        swept.len(),
        0,
        "b links the entry of a; every other entry is linked"
    );
    reconcile::cleanup(storage, NS, "b").unwrap();
    assert_eq!(storage.sweep_shared(later).len(), 1);
    let mut again = repository("again", spec("app", "v1", json!({})));
    let r = bed.run(&mut again).await;
    r.assert_ready();
    assert_eq!(r.requests.blob, 1);
    assert_eq!(r.artifact().digest, ra.artifact().digest);
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_collection_keeps_the_retention_records_and_drops_expired_files() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let url = format!("oci://{}/app", reg.host());
    let bed = Bed::with(
        ExtractLimits::default(),
        Retention {
            ttl: Duration::from_secs(600),
            records: 2,
        },
    );
    let mut obj = repository(
        "gc",
        json!({"url": url, "insecure": true, "ref": {"tag": "live"}}),
    );
    let mut names = vec![];
    let mut last = None;
    for i in 1..=4 {
        push(&reg, "app", "live", &format!("release: {i}\n"));
        let r = bed.run(&mut obj).await;
        r.assert_ready();
        names.push(file_name(&r.artifact().path));
        if i == 4 {
            assert!(
                r.events.contains(&Event::trace(
                    "GarbageCollectionSucceeded",
                    "garbage collected 1 artifacts"
                )),
                "{:#?}",
                r.events
            );
        }
        last = Some(r);
    }
    let last = last.unwrap();
    let dir = bed.stored(&last).parent().unwrap().to_path_buf();
    let artifacts = |dir: &Path| -> Vec<String> {
        files_in(dir)
            .into_iter()
            .filter(|f| !f.ends_with(".lock"))
            .collect()
    };
    // GC runs before the new artifact is written: the 2 records plus the new one.
    let mut expect = names[1..].to_vec();
    expect.sort();
    assert_eq!(artifacts(&dir), expect);
    assert!(!files_in(&dir).contains(&format!("{}.lock", names[0])));

    // Past the TTL only the current artifact survives, with its lock file.
    let r = bed
        .run_with(&mut obj, &bed.settings, &NoVerifier, later(3600))
        .await;
    r.assert_ready();
    assert!(r.events.contains(&Event::trace(
        "GarbageCollectionSucceeded",
        "garbage collected 2 artifacts"
    )));
    assert_eq!(artifacts(&dir), vec![names[3].clone()]);
    assert_eq!(
        files_in(&dir),
        vec![names[3].clone(), format!("{}.lock", names[3])]
    );
    assert!(dir.join("latest.tar.gz").exists());

    // Deletion removes the object's directory.
    let removed = reconcile::cleanup(&bed.settings.storage, NS, "gc").unwrap();
    assert_eq!(removed.as_deref(), Some(dir.as_path()));
    assert!(!dir.exists());
}

// ---------------------------------------------------------------------------------------------
// §9 notify

#[tokio::test(flavor = "multi_thread")]
async fn events_follow_fluxs_notify_rules() {
    let AtV1 {
        reg,
        digest: first_digest,
        url,
        bed,
        mut obj,
    } = at_v1("events", "kind: E\n");
    let message = |rev: &str| {
        format!(
            "stored artifact with revision '{rev}' from '{url}', origin source '{SOURCE}', origin revision '{ORIGIN}'"
        )
    };

    let r = bed.run(&mut obj).await;
    r.assert_ready();
    let revision = format!("v1@{first_digest}");
    let digest = r.artifact().digest.clone().unwrap();
    let new_artifact = Event {
        severity: Severity::Info,
        reason: "NewArtifact".into(),
        message: message(&revision),
        metadata: BTreeMap::from([
            ("source.toolkit.fluxcd.io/revision".into(), revision.clone()),
            ("source.toolkit.fluxcd.io/digest".into(), digest.clone()),
        ]),
    };
    assert_eq!(r.events, vec![new_artifact.clone()]);

    // Nothing changed: only the trace event.
    let r = bed.run(&mut obj).await;
    assert!(
        r.events.iter().all(|e| e.severity == Severity::Trace),
        "{:#?}",
        r.events
    );

    // A failure: one Warning, no Info, the artifact kept.
    edit_spec(&mut obj, json!({"secretRef": {"name": "absent"}}));
    let r = bed.run(&mut obj).await;
    r.fetch_failed();
    assert!(r.events_of(Severity::Info).is_empty());
    assert_eq!(r.artifact().digest.as_deref(), Some(digest.as_str()));
    assert_eq!(r.status.observed_generation, Some(1));

    // Recovery with the same digest: Succeeded.
    edit_spec(&mut obj, json!({"secretRef": null}));
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(
        r.events,
        vec![
            Event::trace(
                "ArtifactUpToDate",
                format!("artifact up-to-date with remote revision: '{revision}'")
            ),
            Event {
                reason: "Succeeded".into(),
                ..new_artifact.clone()
            }
        ]
    );
    assert_eq!(r.status.observed_generation, Some(3));

    // The tag moves: ArtifactOutdated while building, then NewArtifact.
    let second_digest = push(&reg, "app", "v1", "kind: E2\n");
    let new_revision = format!("v1@{second_digest}");
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    let outdated = format!("new revision '{new_revision}' for '{}/app:v1'", reg.host());
    let patch = r.patches.last().unwrap();
    assert_eq!(
        cond(patch, "ArtifactOutdated"),
        Some(("True".into(), "NewRevision".into(), outdated.clone()))
    );
    assert_eq!(
        cond(patch, "Ready"),
        Some((
            "Unknown".into(),
            "Progressing".into(),
            format!("building artifact: {outdated}")
        ))
    );
    assert!(r.cond("ArtifactOutdated").is_none());
    let info = r.events_of(Severity::Info);
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].reason, "NewArtifact");
    assert_eq!(info[0].message, message(&new_revision));
    assert_eq!(
        info[0].metadata["source.toolkit.fluxcd.io/digest"],
        r.artifact().digest.clone().unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// §5 / §9 verification logic through the Verifier port (the cryptography is not built yet)

#[derive(Clone, Copy)]
enum Answer {
    Verified,
    Ignored,
    Failed,
}

struct StubVerifier {
    answer: Mutex<Answer>,
    calls: AtomicUsize,
}

impl StubVerifier {
    fn new(answer: Answer) -> StubVerifier {
        StubVerifier {
            answer: Mutex::new(answer),
            calls: AtomicUsize::new(0),
        }
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Verifier for StubVerifier {
    async fn verify(&self, _request: VerifyRequest<'_>) -> Verification {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = *self.answer.lock().unwrap();
        match answer {
            Answer::Verified => Verification::Verified,
            Answer::Ignored => Verification::Ignored,
            Answer::Failed => Verification::Failed("no matching signatures were found".into()),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_gates_the_pull_and_is_redone_only_when_needed() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let digest = push(&reg, "app", "v1", "kind: V\n");
    let url = format!("oci://{}/app", reg.host());
    let bed = Bed::new();
    let verifier = StubVerifier::new(Answer::Verified);
    let mut obj = repository(
        "verified",
        json!({"url": url, "insecure": true, "ref": {"tag": "v1"},
               "verify": {"provider": "cosign", "secretRef": {"name": "cosign-pub"}}}),
    );
    let r = bed
        .run_with(&mut obj, &bed.settings, &verifier, now())
        .await;
    r.assert_ready();
    let revision = format!("v1@{digest}");
    assert_eq!(
        r.cond("SourceVerified"),
        Some((
            "True".into(),
            "Succeeded".into(),
            format!("verified signature of revision {revision}")
        ))
    );
    assert_eq!(verifier.calls(), 1);

    // Same revision and generation: not verified again, the condition untouched.
    status_mut(&mut obj)
        .conditions
        .iter_mut()
        .find(|c| c.type_ == "SourceVerified")
        .unwrap()
        .reason = "CustomReason".into();
    let r = bed
        .run_with(&mut obj, &bed.settings, &verifier, now())
        .await;
    assert_eq!(verifier.calls(), 1);
    assert_eq!(r.cond("SourceVerified").unwrap().1, "CustomReason");

    // A new generation: verified again.
    edit_spec(&mut obj, json!({"interval": "5m"}));
    let r = bed
        .run_with(&mut obj, &bed.settings, &verifier, now())
        .await;
    r.assert_ready();
    assert_eq!(verifier.calls(), 2);
    assert_eq!(r.cond("SourceVerified").unwrap().1, "Succeeded");

    // A new revision that fails verification: nothing pulled, the old artifact kept.
    let before = r.status.artifact.clone();
    let stored = bed.stored(&r);
    let bytes = std::fs::read(&stored).unwrap();
    let moved = push(&reg, "app", "v1", "kind: V2\n");
    verifier.answer(Answer::Failed);
    let r = bed
        .run_with(&mut obj, &bed.settings, &verifier, now())
        .await;
    let failure =
        "failed to verify the signature using provider 'cosign': no matching signatures were found";
    assert_eq!(
        r.cond("SourceVerified"),
        Some(("False".into(), "VerificationError".into(), failure.into()))
    );
    assert_eq!(
        r.ready(),
        ("False".into(), "VerificationError".into(), failure.into())
    );
    assert!(r.cond("FetchFailed").is_none());
    assert_eq!(
        r.cond("ArtifactOutdated").unwrap().2,
        format!("new revision 'v1@{moved}' for '{}/app:v1'", reg.host())
    );
    assert_eq!(r.requests.blob + r.requests.manifest_get, 0);
    assert_eq!(r.status.artifact, before);
    assert_eq!(std::fs::read(&stored).unwrap(), bytes);
    assert!(matches!(
        r.next,
        Next::Retry {
            reason: Some("VerificationError"),
            ..
        }
    ));

    // An ignored outcome (notation audit): pulled, no SourceVerified.
    verifier.answer(Answer::Ignored);
    let r = bed
        .run_with(&mut obj, &bed.settings, &verifier, now())
        .await;
    r.assert_ready();
    assert_eq!(r.revision(), format!("v1@{moved}"));
    assert!(r.cond("SourceVerified").is_none());

    // verify removed: the condition goes.
    verifier.answer(Answer::Verified);
    edit_spec(&mut obj, json!({"interval": "6m"}));
    let r = bed
        .run_with(&mut obj, &bed.settings, &verifier, now())
        .await;
    assert_eq!(r.cond("SourceVerified").unwrap().0, "True");
    edit_spec(&mut obj, json!({"verify": null}));
    let calls = verifier.calls();
    let r = bed
        .run_with(&mut obj, &bed.settings, &verifier, now())
        .await;
    r.assert_ready();
    assert!(r.cond("SourceVerified").is_none());
    assert_eq!(verifier.calls(), calls);

    // The provider label in messages; the built-in verifier fails closed.
    verifier.answer(Answer::Failed);
    for (name, verify, label) in [
        ("keyless", json!({"provider": "cosign"}), "cosign keyless"),
        (
            "notation",
            json!({"provider": "notation", "secretRef": {"name": "trust"}}),
            "notation",
        ),
    ] {
        let mut obj = repository(
            name,
            json!({"url": url, "insecure": true, "ref": {"tag": "v1"}, "verify": verify}),
        );
        let r = bed
            .run_with(&mut obj, &bed.settings, &verifier, now())
            .await;
        assert!(
            r.ready().2.starts_with(&format!(
                "failed to verify the signature using provider '{label}': "
            )),
            "{:?}",
            r.ready()
        );
        assert!(r.status.artifact.is_none());
    }
    let mut obj = repository(
        "builtin",
        json!({"url": url, "insecure": true, "ref": {"tag": "v1"}, "verify": {"provider": "cosign"}}),
    );
    let r = bed.run(&mut obj).await;
    assert_eq!(r.ready().1, "VerificationError");
    assert!(r.status.artifact.is_none());
}

// ---------------------------------------------------------------------------------------------
// Hostile artifacts through the full reconcile

/// A Flux-style image manifest (flux config and content media types, origin annotations).
fn flux_manifest(config: &[u8], layer: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": FLUX_CONFIG, "digest": sha256(config), "size": config.len()},
        "layers": [{"mediaType": FLUX_LAYER, "digest": sha256(layer), "size": layer.len()}],
        "annotations": {
            "org.opencontainers.image.source": SOURCE,
            "org.opencontainers.image.revision": ORIGIN,
        },
    }))
    .unwrap()
}

/// Pushes `layer` as a one-layer Flux artifact to `repo:tag` of a plain-HTTP, anonymous
/// registry with the distribution API (monolithic uploads); returns the manifest digest.
async fn push_layer(reg: &Registry, repo: &str, tag: &str, layer: &[u8]) -> String {
    let http = reqwest::Client::new();
    let base = reg.url();
    let config = b"{}".to_vec();
    for blob in [&config, &layer.to_vec()] {
        let resp = http
            .post(format!("{base}/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202, "{:?}", resp.text().await);
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let resp = http
            .put(format!("{location}{sep}digest={}", sha256(blob)))
            .header("content-type", "application/octet-stream")
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.text().await);
    }
    put_manifest(reg, repo, tag, OCI_MANIFEST, &flux_manifest(&config, layer)).await
}

/// `PUT /v2/<repo>/manifests/<tag>`; the digest of `body`.
async fn put_manifest(
    reg: &Registry,
    repo: &str,
    tag: &str,
    media_type: &str,
    body: &[u8],
) -> String {
    let resp = reqwest::Client::new()
        .put(format!("{}/v2/{repo}/manifests/{tag}", reg.url()))
        .header("content-type", media_type)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.text().await);
    sha256(body)
}

/// An index of a linux/arm64 and a linux/amd64 child, tagged `multi` in `app`; its digest.
async fn push_two_platform_index(reg: &Registry) -> String {
    let mut children = vec![];
    for (arch, text) in [("arm64", "arch: arm64\n"), ("amd64", "arch: amd64\n")] {
        let layer = Tar::default().file("arch.yaml", text.as_bytes()).gz();
        let digest = push_layer(reg, "app", &format!("only-{arch}"), &layer).await;
        let size = flux_manifest(b"{}", &layer).len();
        children.push(
            json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                             "platform": {"os": "linux", "architecture": arch}}),
        );
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": children,
    }))
    .unwrap();
    put_manifest(
        reg,
        "app",
        "multi",
        "application/vnd.oci.image.index.v1+json",
        &index,
    )
    .await
}

/// The `arch.yaml` the stored artifact of `r` holds.
fn stored_arch(bed: &Bed, r: &Round) -> String {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(bed.stored(r)).unwrap(),
    ));
    let mut text = String::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().ends_with("arch.yaml") {
            entry.read_to_string(&mut text).unwrap();
        }
    }
    text
}

/// A registry with [`push_two_platform_index`], its index digest, a bed and an object following
/// the index's tag.
async fn two_platform_bed() -> (Registry, String, Bed, OciRepository) {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let index_digest = push_two_platform_index(&reg).await;
    let obj = repository(
        "multi",
        json!({"url": format!("oci://{}/app", reg.host()), "insecure": true, "ref": {"tag": "multi"}}),
    );
    (reg, index_digest, Bed::new(), obj)
}

fn annotate(obj: &mut OciRepository, platform: Option<&str>) {
    let annotations = obj.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match platform {
        Some(p) => annotations.insert(PLATFORM_ANNOTATION.to_string(), p.to_string()),
        None => annotations.remove(PLATFORM_ANNOTATION),
    };
}

/// §4.5.13: an OCI index is pulled through its linux/amd64 child; the revision keeps the index
/// digest.
#[tokio::test(flavor = "multi_thread")]
async fn an_index_is_served_from_its_linux_amd64_child() {
    let (_reg, index_digest, bed, mut obj) = two_platform_bed().await;
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.revision(), format!("multi@{index_digest}"));
    assert_eq!(stored_arch(&bed, &r), "arch: amd64\n");
    assert!(
        r.artifact()
            .metadata
            .as_ref()
            .is_none_or(|m| !m.contains_key(PLATFORM_ANNOTATION)),
        "linux/amd64 is not recorded, as Flux's artifact has no such key"
    );
}

/// An ocisource extension: the `ocisource.io/platform` annotation (or `--default-platform`)
/// picks another child; the artifact records it, a change of platform pulls again under the
/// same revision, an index without that platform fails the pull, a malformed value stalls.
#[tokio::test(flavor = "multi_thread")]
async fn the_platform_annotation_or_default_picks_another_index_child() {
    let (reg, index_digest, bed, mut obj) = two_platform_bed().await;
    annotate(&mut obj, Some("linux/arm64"));
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.revision(), format!("multi@{index_digest}"));
    assert_eq!(stored_arch(&bed, &r), "arch: arm64\n");
    assert_eq!(
        r.artifact().metadata.as_ref().unwrap()[PLATFORM_ANNOTATION],
        "linux/arm64"
    );

    // Unchanged: nothing pulled again.
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!((r.requests.manifest_get, r.requests.blob), (0, 0));

    // Back to the default: same revision, pulled again for linux/amd64.
    annotate(&mut obj, None);
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(stored_arch(&bed, &r), "arch: amd64\n");
    assert!(r.requests.blob > 0);

    // The controller's default.
    let mut arm_default = bed.settings(ADV, false);
    arm_default.default_platform = "linux/arm64".parse().unwrap();
    let r = bed
        .run_with(&mut obj, &arm_default, &NoVerifier, now())
        .await;
    r.assert_ready();
    assert_eq!(stored_arch(&bed, &r), "arch: arm64\n");

    annotate(&mut obj, Some("linux/s390x"));
    let r = bed.run(&mut obj).await;
    let message = r.fetch_failed_with("OCIArtifactPullFailed", "failed to pull artifact");
    assert!(
        message.contains(&format!(
            "no child with platform linux/s390x in index {}/app@{index_digest}",
            reg.host()
        )),
        "{message}"
    );
    assert_eq!(
        stored_arch(&bed, &r),
        "arch: arm64\n",
        "the previous artifact is kept"
    );

    annotate(&mut obj, Some("arm64"));
    let r = bed.run(&mut obj).await;
    let (_, reason, message) = r.cond("Stalled").unwrap();
    assert_eq!(reason, "InvalidPlatform");
    assert_eq!(
        message,
        "invalid annotation 'ocisource.io/platform': invalid platform 'arm64': want \
         os/architecture[/variant], e.g. linux/arm64"
    );
}

/// §4.7: default excludes, `.sourceignore` in the artifact and `spec.ignore` (either disables the
/// defaults), VCS files always out; a rebuild with an ineffective ignore keeps the digest and
/// emits nothing (§4.8).
#[tokio::test(flavor = "multi_thread")]
async fn ignore_rules_shape_the_stored_tarball() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let url = format!("oci://{}/app", reg.host());
    let bed = Bed::new();
    let tree = || {
        Tar::default()
            .file("deploy.yaml", b"kind: D\n")
            .file("logo.png", b"png")
            .file("bundle.tar.gz", b"tgz")
            .file(".github/ci.yml", b"on: push\n")
            .file(".gitignore", b"*.tmp\n")
    };

    push_layer(&reg, "app", "defaults", &tree().gz()).await;
    let mut obj = repository(
        "defaults",
        json!({"url": url, "insecure": true, "ref": {"tag": "defaults"}}),
    );
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(entries(&bed.stored(&r)), [".", "deploy.yaml"]);

    // spec.ignore replaces the default excludes (VCS files stay out).
    edit_spec(&mut obj, json!({"ignore": "logo.png"}));
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(
        entries(&bed.stored(&r)),
        [
            ".",
            ".github",
            ".github/ci.yml",
            "bundle.tar.gz",
            "deploy.yaml"
        ]
    );
    assert_eq!(r.events_of(Severity::Info)[0].reason, "NewArtifact");

    // So does a .sourceignore inside the artifact.
    push_layer(
        &reg,
        "app",
        "sourceignore",
        &tree().file(".sourceignore", b"# ours\ndeploy.yaml\n").gz(),
    )
    .await;
    let mut obj = repository(
        "sourceignore",
        json!({"url": url, "insecure": true, "ref": {"tag": "sourceignore"}}),
    );
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(
        entries(&bed.stored(&r)),
        [
            ".",
            ".github",
            ".github/ci.yml",
            ".sourceignore",
            "bundle.tar.gz",
            "logo.png"
        ]
    );

    // An ignore that changes nothing: rebuilt (not yet observed), same digest, no event.
    push_layer(
        &reg,
        "app",
        "plain",
        &Tar::default().file("deploy.yaml", b"kind: D\n").gz(),
    )
    .await;
    let mut obj = repository(
        "plain",
        json!({"url": url, "insecure": true, "ref": {"tag": "plain"}}),
    );
    let first = bed.run(&mut obj).await;
    first.assert_ready();
    edit_spec(&mut obj, json!({"ignore": "nothing-matches"}));
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.requests.blob, 1);
    assert_eq!(r.artifact().digest, first.artifact().digest);
    assert!(r.events_of(Severity::Info).is_empty(), "{:#?}", r.events);
}

/// The reconcile working directories of an object left in the temp dir.
fn leftover_work_dirs(name: &str) -> Vec<PathBuf> {
    let prefix = format!("ocirepository-{NS}-{name}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_layers_fail_cleanly_and_the_previous_artifact_stays_served() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let url = format!("oci://{}/app", reg.host());
    let bed = Bed::with(
        ExtractLimits {
            max_size: Some(1 << 20),
            max_entries: Some(100),
        },
        Retention::default(),
    );
    let good_digest = push(&reg, "app", "live", "kind: Good\n");
    let mut obj = repository(
        "hostile",
        json!({"url": url, "insecure": true, "ref": {"tag": "live"}}),
    );
    let good = bed.run(&mut obj).await;
    good.assert_ready();
    let stored = bed.stored(&good);
    let good_bytes = std::fs::read(&stored).unwrap();
    let dir = stored.parent().unwrap().to_path_buf();
    let good_files = files_in(&dir);

    // Names next to the reconcile's working directory (both live in the temp dir), so `../x`
    // from inside it would land exactly there; the hard link (below) targets an existing
    // outside file.
    let tmp = std::env::temp_dir();
    let linked = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(linked.path(), b"outside").unwrap();
    let unique = linked
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let escaped = tmp.join(format!("{unique}-traversal"));
    let absolute = tmp.join(format!("{unique}-absolute"));
    let traversal = format!("../{unique}-traversal");
    let absolute_name = absolute.display().to_string();
    let link_target = format!("../{unique}");

    let bomb = Tar::default().file("zeros", &vec![0u8; 8 << 20]).gz();
    assert!(bomb.len() < 64 << 10);
    let mut many = Tar::default();
    for i in 0..200 {
        many = many.file(&format!("f{i}"), b"x");
    }
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "traversal",
            Tar::default()
                .file("ok.yaml", b"a")
                .file(&traversal, b"pwned")
                .gz(),
            format!("tar contained invalid name error {traversal:?}"),
        ),
        (
            "absolute",
            Tar::default().file(&absolute_name, b"pwned").gz(),
            format!("tar contained invalid name error {absolute_name:?}"),
        ),
        (
            "device",
            Tar::default().special(b'3', "dev/null").gz(),
            "tar file entry dev/null contained unsupported file type character device".into(),
        ),
        (
            "gzip bomb",
            bomb,
            "tar \"zeros\" is bigger than max archive size of 1048576 bytes".into(),
        ),
        (
            "entry bomb",
            many.gz(),
            "tar has more than the maximum of 100 entries".into(),
        ),
        (
            "not gzip",
            Tar::default().file("ok.yaml", b"a").tar(),
            "requires gzip-compressed body: gzip: invalid header".into(),
        ),
    ];
    for (what, layer, expected) in cases {
        let digest = push_layer(&reg, "app", "live", &layer).await;
        let r = bed.run(&mut obj).await;
        let (reason, message) = r.fetch_failed();
        assert_eq!(
            reason, "OCIArtifactLayerOperationFailed",
            "{what}: {message}"
        );
        assert!(
            message.starts_with("failed to extract layer contents from artifact: "),
            "{what}: {message}"
        );
        assert!(message.contains(&expected), "{what}: {message}");
        // The previous artifact stays served.
        assert_eq!(r.status.artifact, good.status.artifact, "{what}");
        assert_eq!(r.status.url, good.status.url, "{what}");
        assert_eq!(std::fs::read(&stored).unwrap(), good_bytes, "{what}");
        assert_eq!(files_in(&dir), good_files, "{what}: nothing new stored");
        assert_eq!(
            r.cond("ArtifactOutdated").unwrap().2,
            format!("new revision 'live@{digest}' for '{}/app:live'", reg.host()),
            "{what}"
        );
        assert_eq!(r.cond("ArtifactInStorage"), good.cond("ArtifactInStorage"));
        // Nothing outside the working directory, which is gone.
        assert!(!escaped.exists() && !absolute.exists(), "{what}");
        assert_eq!(std::fs::read(linked.path()).unwrap(), b"outside", "{what}");
        assert!(leftover_work_dirs("hostile").is_empty(), "{what}");
    }

    // A manifest without layers.
    let config = b"{}";
    let empty = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": FLUX_CONFIG, "digest": sha256(config), "size": config.len()},
        "layers": [],
    }))
    .unwrap();
    put_manifest(&reg, "app", "live", OCI_MANIFEST, &empty).await;
    let r = bed.run(&mut obj).await;
    assert_eq!(
        r.fetch_failed(),
        (
            "OCIArtifactLayerOperationFailed".into(),
            "no layers found in artifact".into()
        )
    );
    assert_eq!(r.status.artifact, good.status.artifact);
    assert_eq!(std::fs::read(&stored).unwrap(), good_bytes);

    // The tag is rolled back: nothing to pull, the failure clears, recovery is announced.
    tools::crane_tag(&reg, &format!("app@{good_digest}"), "live");
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.requests.blob, 0);
    assert!(r.cond("ArtifactOutdated").is_none() && r.cond("FetchFailed").is_none());
    assert_eq!(r.status.artifact, good.status.artifact);
    assert_eq!(r.events_of(Severity::Info)[0].reason, "Succeeded");

    // Symlinks are skipped, not followed: a good layer with one is served without it.
    let layer = Tar::default()
        .link(b'2', "passwd", "/etc/passwd")
        .file("ok.yaml", b"kind: Fine\n")
        .gz();
    let digest = push_layer(&reg, "app", "live", &layer).await;
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.revision(), format!("live@{digest}"));
    assert_eq!(entries(&bed.stored(&r)), [".", "ok.yaml"]);
    assert_eq!(r.events_of(Severity::Info)[0].reason, "NewArtifact");

    // Hard links become empty files, as Flux writes them: their targets, inside or outside,
    // are never read, so links cannot multiply the archive's size either.
    let layer = Tar::default()
        .file("ok.yaml", b"kind: Fine\n")
        .link(b'1', "evil", &link_target)
        .link(b'1', "again", "ok.yaml")
        .gz();
    let digest = push_layer(&reg, "app", "live", &layer).await;
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.revision(), format!("live@{digest}"));
    let stored = bed.stored(&r);
    assert_eq!(entries(&stored), [".", "again", "evil", "ok.yaml"]);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&stored).unwrap(),
    ));
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let want = if name == "ok.yaml" { 11 } else { 0 };
        if name != "." {
            assert_eq!(entry.header().size().unwrap(), want, "{name}");
        }
    }
    assert_eq!(std::fs::read(linked.path()).unwrap(), b"outside");
}

// ---------------------------------------------------------------------------------------------
// Faults through the reconcile, from an in-test registry

/// One artifact the fake serves.
#[derive(Clone)]
struct Served {
    manifest: Vec<u8>,
    digest: String,
    config: Vec<u8>,
    layer: Vec<u8>,
}

impl Served {
    fn new(text: &str) -> Served {
        let layer = Tar::default().file("deploy.yaml", text.as_bytes()).gz();
        let config = b"{}".to_vec();
        let manifest = flux_manifest(&config, &layer);
        Served {
            digest: sha256(&manifest),
            manifest,
            config,
            layer,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    /// Every manifest request answers 500.
    ServerError,
    /// Every manifest request answers 401 UNAUTHORIZED.
    Unauthorized,
    /// The manifest by digest is 404 (the tag still resolves).
    ManifestGone,
    /// The layer blob is 404.
    BlobGone,
    /// The manifest by digest has other bytes than its digest.
    ManifestLie,
    /// The layer blob has other bytes (a valid gzip stream still) than its digest.
    BlobLie,
    /// The first tag `HEAD` answers 429 with `Retry-After: 1`, the first blob `GET` 503.
    SlowDown,
    /// Every manifest request answers 429 with `Retry-After: 600`.
    Throttled,
}

struct FakeState {
    tag: Served,
    all: Vec<Served>,
    fault: Fault,
    /// Pending one-shot failures of `SlowDown`: (head 429, blob 503).
    once: (bool, bool),
}

fn registry_error(code: &str, message: &str) -> Vec<u8> {
    json!({"errors": [{"code": code, "message": message}]})
        .to_string()
        .into_bytes()
}

fn fake_handler(state: Arc<Mutex<FakeState>>) -> impl Fn(&Req) -> Reply + Send + Sync + 'static {
    move |req| {
        let mut s = state.lock().unwrap();
        if req.path == "/v2/" {
            return status(200, &[], b"{}");
        }
        let json = [("content-type", "application/json")];
        if let Some(reference) = req.path.strip_prefix("/v2/app/manifests/") {
            match s.fault {
                Fault::ServerError => return status(500, &json, b"{}"),
                Fault::Throttled => {
                    return status(
                        429,
                        &[("retry-after", "600")],
                        &registry_error("TOOMANYREQUESTS", "slow down"),
                    );
                }
                Fault::Unauthorized => {
                    return status(
                        401,
                        &json,
                        &registry_error("UNAUTHORIZED", "authentication required"),
                    );
                }
                Fault::SlowDown if req.method == "HEAD" && s.once.0 => {
                    s.once.0 = false;
                    return status(429, &[("retry-after", "1")], b"");
                }
                _ => {}
            }
            let served = if reference == "v1" {
                Some(s.tag.clone())
            } else {
                s.all.iter().find(|a| a.digest == reference).cloned()
            };
            let Some(served) = served else {
                return status(
                    404,
                    &json,
                    &registry_error("MANIFEST_UNKNOWN", "manifest unknown"),
                );
            };
            if reference != "v1" && s.fault == Fault::ManifestGone {
                return status(
                    404,
                    &json,
                    &registry_error("MANIFEST_UNKNOWN", "manifest unknown"),
                );
            }
            let mut body = served.manifest.clone();
            if reference != "v1" && s.fault == Fault::ManifestLie {
                body.push(b' ');
            }
            return status(
                200,
                &[
                    ("content-type", OCI_MANIFEST),
                    ("docker-content-digest", &served.digest),
                ],
                &body,
            );
        }
        if let Some(digest) = req.path.strip_prefix("/v2/app/blobs/") {
            if s.fault == Fault::SlowDown && s.once.1 {
                s.once.1 = false;
                return status(503, &json, b"{}");
            }
            for a in &s.all {
                if sha256(&a.config) == digest {
                    return status(200, &[], &a.config);
                }
                if sha256(&a.layer) == digest {
                    return match s.fault {
                        Fault::BlobGone => {
                            status(404, &json, &registry_error("BLOB_UNKNOWN", "blob unknown"))
                        }
                        Fault::BlobLie => {
                            // The gzip header's MTIME: ignored by decoders, seen by the digest.
                            let mut lie = a.layer.clone();
                            lie[4] ^= 0xff;
                            status(200, &[], &lie)
                        }
                        _ => status(200, &[], &a.layer),
                    };
                }
            }
            return status(404, &json, &registry_error("BLOB_UNKNOWN", "blob unknown"));
        }
        status(
            404,
            &json,
            &registry_error("NAME_UNKNOWN", "repository unknown"),
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_faults_fail_the_reconcile_and_keep_the_served_artifact() {
    let first = Served::new("kind: First\n");
    let state = Arc::new(Mutex::new(FakeState {
        tag: first.clone(),
        all: vec![first.clone()],
        fault: Fault::None,
        once: (false, false),
    }));
    let fake = Fake::start(fake_handler(Arc::clone(&state))).await;
    let url = format!("oci://{}/app", fake.addr);
    let bed = Bed::new();
    // spec.timeout bounds the registry calls and their retries (README difference 2).
    let mut obj = repository(
        "faults",
        json!({"url": url, "insecure": true, "timeout": "3s", "ref": {"tag": "v1"}}),
    );
    let set = |fault: Fault| state.lock().unwrap().fault = fault;

    let good = bed.run(&mut obj).await;
    good.assert_ready();
    assert_eq!(good.revision(), format!("v1@{}", first.digest));
    let stored = bed.stored(&good);
    let good_bytes = std::fs::read(&stored).unwrap();
    let kept = |r: &Round, what: &str| {
        assert_eq!(r.status.artifact, good.status.artifact, "{what}");
        assert_eq!(std::fs::read(&stored).unwrap(), good_bytes, "{what}");
    };

    // 5xx: retried within the timeout, then a retryable failure.
    set(Fault::ServerError);
    let r = bed.run(&mut obj).await;
    let message = r.fetch_failed_with(
        "OCIArtifactPullFailed",
        "failed to determine artifact digest: ",
    );
    assert!(
        message.contains("500") || message.contains("deadline"),
        "{message}"
    );
    assert!(r.requests.retries >= 1, "{:?}", r.requests);
    kept(&r, "5xx");

    // 429 asking for longer than the timeout allows: no wait is started.
    set(Fault::Throttled);
    let r = bed.run(&mut obj).await;
    let (reason, message) = r.fetch_failed();
    assert_eq!(reason, "OCIArtifactPullFailed");
    assert!(
        message.contains("429") || message.contains("TOOMANYREQUESTS"),
        "{message}"
    );
    assert!(r.elapsed < Duration::from_millis(2500), "{:?}", r.elapsed);
    kept(&r, "429");

    // Recovery with the same digest: Succeeded, not NewArtifact.
    set(Fault::None);
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.events_of(Severity::Info)[0].reason, "Succeeded");

    // 401.
    set(Fault::Unauthorized);
    let r = bed.run(&mut obj).await;
    let (reason, message) = r.fetch_failed();
    assert_eq!(reason, "OCIArtifactPullFailed");
    assert!(message.contains("UNAUTHORIZED"), "{message}");
    kept(&r, "401");

    // The tag moves to a second artifact that cannot be fetched in various ways.
    let second = Served::new("kind: Second\n");
    {
        let mut s = state.lock().unwrap();
        s.tag = second.clone();
        s.all.push(second.clone());
    }
    let pending = format!(
        "new revision 'v1@{}' for '{}/app:v1'",
        second.digest, fake.addr
    );
    for (fault, reason, prefix, needle) in [
        (
            Fault::ManifestGone,
            "OCIArtifactPullFailed",
            format!("failed to pull artifact from '{url}': "),
            "MANIFEST_UNKNOWN",
        ),
        (
            Fault::ManifestLie,
            "OCIArtifactPullFailed",
            format!("failed to pull artifact from '{url}': "),
            "digest mismatch",
        ),
        (
            Fault::BlobGone,
            "OCIArtifactLayerOperationFailed",
            "failed to extract the first layer from artifact: ".to_string(),
            "BLOB_UNKNOWN",
        ),
        (
            Fault::BlobLie,
            "OCIArtifactLayerOperationFailed",
            "failed to extract layer contents from artifact: ".to_string(),
            "digest mismatch",
        ),
    ] {
        set(fault);
        let r = bed.run(&mut obj).await;
        let (got, message) = r.fetch_failed();
        assert_eq!(got, reason, "{fault:?}: {message}");
        assert!(message.starts_with(&prefix), "{fault:?}: {message}");
        assert!(message.contains(needle), "{fault:?}: {message}");
        assert_eq!(r.cond("ArtifactOutdated").unwrap().2, pending, "{fault:?}");
        kept(&r, &format!("{fault:?}"));
        assert!(leftover_work_dirs("faults").is_empty());
    }

    // 429 with Retry-After and a 503 on the blob: both retried, the new artifact stored.
    state.lock().unwrap().once = (true, true);
    set(Fault::SlowDown);
    let r = bed.run(&mut obj).await;
    r.assert_ready();
    assert_eq!(r.revision(), format!("v1@{}", second.digest));
    assert!(r.requests.retries >= 2, "{:?}", r.requests);
    assert!(r.elapsed >= Duration::from_secs(1), "Retry-After honoured");
    assert_eq!(r.events_of(Severity::Info)[0].reason, "NewArtifact");
    assert_eq!(
        entries(&bed.stored(&r)),
        [".", "deploy.yaml"],
        "the second artifact's content"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(&second.layer[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("kind: Second"));

    // Copy mode reads the same verified stream: a lying blob stores nothing.
    set(Fault::BlobLie);
    let mut copy = repository(
        "faults-copy",
        json!({"url": url, "insecure": true, "timeout": "3s", "ref": {"tag": "v1"},
               "layerSelector": {"mediaType": FLUX_LAYER, "operation": "copy"}}),
    );
    let r = bed.run(&mut copy).await;
    let message = r.fetch_failed_with(
        "OCIArtifactLayerOperationFailed",
        "failed to copy layer from artifact: ",
    );
    assert!(message.contains("digest mismatch"), "{message}");
    assert!(r.status.artifact.is_none());
    let dir = bed.root.path().join("ocirepository/apps/faults-copy");
    assert!(!dir.exists() || files_in(&dir).iter().all(|f| f.ends_with(".lock")));
    assert!(leftover_work_dirs("faults-copy").is_empty());
}
