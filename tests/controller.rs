//! `ocisource controller` end to end on the real control plane: a flux-pushed artifact becomes
//! Ready, is served byte-exact by the artifact server, follows requestedAt and moved tags with
//! NewArtifact events, honours suspend, stalls on an invalid URL, and is cleaned up on deletion.

mod common;

use std::path::Path;
use std::time::Duration;

use common::controller::Controller;
use common::controlplane::{ControlPlane, create_namespace, shared_with_namespace};
use common::object::{OciRepo, is_ready, ready, request_and_wait, wait_for};
use common::registry::{Flavor, Registry, Security};
use common::{eventually, tools, wait_until};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use ocisource::api::v1::OciRepository;
use ocisource::core::summary::kstatus_violations;
use serde_json::json;
use sha2::{Digest as _, Sha256};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ocisource"))
}

fn start_controller(cp: &ControlPlane, namespace: &str) -> Controller {
    Controller::start(cp, binary(), namespace, &[])
}

fn spawn_controller(cp: &ControlPlane, namespace: &str, extra: &[&str], name: &str) -> Controller {
    Controller::spawn(cp, binary(), namespace, extra, name)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn event_reasons(client: &Client, ns: &str, name: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

/// The value of `series` (name and labels, exactly as exported) in a `/metrics` text.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A Distribution registry over HTTP holding `repo:v1`, a one-file artifact pushed with
/// `flux push artifact`; the registry and the pushed digest.
fn registry_with_v1(repo: &str) -> (Registry, String) {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let digest = tools::flux_push_file(
        &reg,
        repo,
        "v1",
        ("deploy.yaml", "kind: ConfigMap\n"),
        "s",
        "r",
    );
    (reg, digest)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_artifact_is_served_followed_suspended_and_cleaned_up() {
    let (cp, client) = shared_with_namespace("ctl").await;
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let first_digest = tools::flux_push_file(
        &reg,
        "apps/web",
        "stable",
        ("deploy.yaml", "kind: ConfigMap\n"),
        "https://example.com/web",
        "main@sha1:1111",
    );
    let ctl = Controller::start(cp, binary(), "ctl", &["--concurrent=3"]);

    let api: Api<OciRepository> = Api::namespaced(client.clone(), "ctl");
    let obj = OciRepo::new("web")
        .namespace("ctl")
        .url(format!("oci://{}/apps/web", reg.host()))
        .interval("10m")
        .insecure()
        .tag("stable")
        .object();
    api.create(&PostParams::default(), &obj).await.unwrap();

    let obj = wait_for(&api, "web", "Ready", is_ready).await;
    assert!(
        obj.metadata
            .finalizers
            .as_ref()
            .unwrap()
            .contains(&"finalizers.fluxcd.io".to_string())
    );
    let status = obj.status.clone().unwrap();
    let artifact = status.artifact.clone().unwrap();
    assert_eq!(artifact.revision, format!("stable@{first_digest}"));
    assert_eq!(
        ready(&obj).unwrap(),
        (
            "True".into(),
            "Succeeded".into(),
            format!("stored artifact for digest 'stable@{first_digest}'")
        )
    );
    assert!(
        kstatus_violations(
            &status.conditions,
            obj.metadata.generation.unwrap(),
            status.observed_generation
        )
        .is_empty()
    );
    assert!(artifact.url.starts_with(&format!(
        "http://127.0.0.1:{}/ocirepository/ctl/web/",
        ctl.artifact_port
    )));

    // The artifact server serves exactly the published bytes, at the artifact and latest URLs.
    let http = reqwest::Client::new();
    for url in [artifact.url.clone(), status.url.clone().unwrap()] {
        let body = http
            .get(&url)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            format!("sha256:{}", sha256_hex(&body)),
            artifact.digest.clone().unwrap(),
            "{url}"
        );
    }
    let listing = http
        .get(format!(
            "http://127.0.0.1:{}/ocirepository/ctl/",
            ctl.artifact_port
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 404, "no directory listings");
    eventually("NewArtifact event", Duration::from_secs(10), || async {
        let reasons = event_reasons(&client, "ctl", "web").await;
        reasons.contains(&"NewArtifact".to_string())
    })
    .await;

    let metrics = http
        .get(format!("http://127.0.0.1:{}/metrics", ctl.metrics_port))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gotk_reconcile_duration_seconds_count{kind=\"OCIRepository\",name=\"web\",namespace=\"ctl\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("controller_runtime_reconcile_total{controller=\"ocirepository\",result=\"requeue_after\"}"), "{metrics}");
    assert!(
        metrics.contains("ocisource_registry_requests_total{kind=\"blob\"} 1"),
        "{metrics}"
    );
    // controller-runtime's workqueue and worker metrics; the reconcile that published the event
    // may still be ending, so its work duration is waited for.
    let q = r#"{controller="ocirepository",name="ocirepository"}"#;
    let url = format!("http://127.0.0.1:{}/metrics", ctl.metrics_port);
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = http.get(&url).send().await.unwrap().text().await.unwrap();
        if metric(
            &metrics,
            &format!("workqueue_work_duration_seconds_count{q}"),
        ) > Some(0.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metric(
            &metrics,
            &format!("workqueue_work_duration_seconds_count{q}")
        ) > Some(0.0),
        "a finished reconcile in the metrics: {metrics}"
    );
    assert!(
        metric(&metrics, &format!("workqueue_adds_total{q}")) > Some(0.0),
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            &format!("workqueue_queue_duration_seconds_count{q}")
        ) > Some(0.0),
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            r#"workqueue_depth{controller="ocirepository",name="ocirepository",priority=""}"#
        )
        .is_some(),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            r#"controller_runtime_max_concurrent_reconciles{controller="ocirepository"}"#
        ),
        Some(3.0),
        "the --concurrent value: {metrics}"
    );
    assert!(
        metric(
            &metrics,
            r#"controller_runtime_active_workers{controller="ocirepository"}"#
        )
        .is_some(),
        "{metrics}"
    );

    // A moved tag is picked up on request; requestedAt is acknowledged.
    let second_digest = tools::flux_push_file(
        &reg,
        "apps/web",
        "stable",
        ("deploy.yaml", "kind: Secret\n"),
        "https://example.com/web",
        "main@sha1:2222",
    );
    assert_ne!(first_digest, second_digest);
    let obj = request_and_wait(&api, "web", "first").await;
    let artifact2 = obj.status.clone().unwrap().artifact.unwrap();
    assert_eq!(artifact2.revision, format!("stable@{second_digest}"));
    assert_eq!(
        artifact2.metadata.unwrap()["org.opencontainers.image.revision"],
        "main@sha1:2222"
    );
    let stored = ctl.storage.path().join(&artifact2.path);
    assert!(stored.exists());

    // Suspend: the generation is observed, nothing else moves.
    let patch = json!({"spec": {"suspend": true}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let obj = wait_for(&api, "web", "suspend observed", |o| {
        o.status.as_ref().and_then(|s| s.observed_generation) == o.metadata.generation
            && o.spec.suspend == Some(true)
    })
    .await;
    assert_eq!(
        obj.status.unwrap().artifact.unwrap().revision,
        artifact2.revision
    );

    // Deletion removes the stored files and the finalizer.
    api.delete("web", &DeleteParams::default()).await.unwrap();
    for _ in 0..300 {
        if api.get_opt("web").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        api.get_opt("web").await.unwrap().is_none(),
        "finalizer removed"
    );
    assert!(
        !ctl.storage.path().join("ocirepository/ctl/web").exists(),
        "artifacts removed"
    );
    // Its reconcile duration series goes with it, as Flux's does.
    let metrics = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        !metrics.contains("name=\"web\",namespace=\"ctl\""),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_url_stalls_and_a_missing_tag_retries() {
    let (cp, client) = shared_with_namespace("ctl-bad").await;
    let _ctl = start_controller(cp, "ctl-bad");
    let api: Api<OciRepository> = Api::namespaced(client.clone(), "ctl-bad");
    for (name, url) in [
        ("tagged", "oci://127.0.0.1:1/app:v1"),
        ("unreachable", "oci://127.0.0.1:1/app"),
    ] {
        let obj = OciRepo::new(name)
            .url(url)
            .interval("1m")
            .insecure()
            .timeout("2s")
            .object();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }
    let stalled = wait_for(&api, "tagged", "Stalled", |o| {
        o.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Stalled"))
    })
    .await;
    let (status, reason, _) = ready(&stalled).unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "URLInvalid"));
    assert_eq!(
        stalled.status.unwrap().observed_generation,
        stalled.metadata.generation
    );

    let failing = wait_for(&api, "unreachable", "FetchFailed", |o| {
        o.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "FetchFailed"))
    })
    .await;
    let (status, reason, _) = ready(&failing).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "OCIArtifactPullFailed")
    );
    let st = failing.status.unwrap();
    assert!(
        st.conditions
            .iter()
            .any(|c| c.type_ == "Reconciling" && c.reason == "ProgressingWithRetry")
    );
    assert_eq!(st.observed_generation, Some(-1));
    eventually("Warning event", Duration::from_secs(10), || async {
        let reasons = event_reasons(&client, "ctl-bad", "unreachable").await;
        reasons.contains(&"OCIArtifactPullFailed".to_string())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_leader_reconciles_and_serves_and_a_follower_takes_over() {
    let (cp, client) = shared_with_namespace("ctl-le").await;
    let (reg, _) = registry_with_v1("le/app");

    let election = [
        "--enable-leader-election",
        "--leader-election-lease-duration=4s",
        "--leader-election-renew-deadline=3s",
        "--leader-election-retry-period=1s",
    ];
    let a = spawn_controller(cp, "ctl-le", &election, "replica-a");
    let b = spawn_controller(cp, "ctl-le", &election, "replica-b");
    wait_until("a leader", Duration::from_secs(60), || {
        a.ready() || b.ready()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(a.ready() != b.ready(), "exactly one replica is ready");
    let (mut leader, follower, leader_name) = if a.ready() {
        (a, b, "replica-a")
    } else {
        (b, a, "replica-b")
    };
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "ctl-le");
    let held = leases.get("ocisource-leader-election").await.unwrap();
    assert_eq!(
        held.spec.unwrap().holder_identity.as_deref(),
        Some(leader_name)
    );

    let api: Api<OciRepository> = Api::namespaced(client.clone(), "ctl-le");
    let obj = OciRepo::new("app")
        .url(format!("oci://{}/le/app", reg.host()))
        .interval("10m")
        .insecure()
        .tag("v1")
        .object();
    api.create(&PostParams::default(), &obj).await.unwrap();
    wait_for(&api, "app", "Ready", is_ready).await;
    assert!(leader.serves_artifacts(), "the leader serves artifacts");
    assert!(!follower.serves_artifacts(), "a follower does not");
    for (ctl, status) in [(&leader, 1.0), (&follower, 0.0)] {
        let url = format!("http://127.0.0.1:{}/metrics", ctl.metrics_port);
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        assert_eq!(
            metric(
                &text,
                r#"leader_election_master_status{name="ocisource-leader-election"}"#
            ),
            Some(status),
            "{text}"
        );
    }

    // The leader stops (releasing the lease); the follower takes over and reconciles.
    leader.proc.stop();
    wait_until("takeover", Duration::from_secs(30), || follower.ready());
    assert!(follower.serves_artifacts());
    request_and_wait(&api, "app", "after-takeover").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_recovers_from_an_api_server_restart() {
    // A private control plane: restarting the shared one would disturb the other tests.
    let cp = ControlPlane::start();
    let client = cp.client().await;
    common::crd::install(&client).await;
    create_namespace(&client, "ctl-restart").await;
    let (reg, digest) = registry_with_v1("restart/app");
    let ctl = start_controller(&cp, "ctl-restart");
    let api: Api<OciRepository> = Api::namespaced(client.clone(), "ctl-restart");
    let obj = OciRepo::new("app")
        .url(format!("oci://{}/restart/app", reg.host()))
        .interval("10m")
        .insecure()
        .tag("v1")
        .object();
    api.create(&PostParams::default(), &obj).await.unwrap();
    wait_for(&api, "app", "Ready", is_ready).await;

    cp.restart_apiserver();
    assert!(
        ctl.proc.is_running(),
        "the controller survives:\n{}",
        ctl.proc.log_tail(4000)
    );
    let client = cp.client().await;
    let api: Api<OciRepository> = Api::namespaced(client, "ctl-restart");
    let obj = request_and_wait(&api, "app", "after-restart").await;
    let artifact = obj.status.unwrap().artifact.unwrap();
    assert_eq!(
        artifact.revision,
        format!("v1@{digest}"),
        "no artifact lost"
    );
    assert!(ctl.storage.path().join(&artifact.path).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflicting_status_writer_does_not_stop_the_status_write() {
    let (cp, client) = shared_with_namespace("ctl-conflict").await;
    let (reg, digest) = registry_with_v1("conflict/app");
    let _ctl = start_controller(cp, "ctl-conflict");
    let api: Api<OciRepository> = Api::namespaced(client.clone(), "ctl-conflict");
    let obj = OciRepo::new("app")
        .url(format!("oci://{}/conflict/app", reg.host()))
        .interval("10m")
        .insecure()
        .tag("v1")
        .object();
    api.create(&PostParams::default(), &obj).await.unwrap();
    let ready = wait_for(&api, "app", "Ready", is_ready).await;

    // Another manager takes ownership of status fields with values of its own.
    let intruder = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "status": {"observedGeneration": 99, "url": "http://elsewhere/latest.tar.gz"}
    });
    api.patch_status(
        "app",
        &PatchParams::apply("intruder").force(),
        &Patch::Apply(&intruder),
    )
    .await
    .unwrap();
    let obj = request_and_wait(&api, "app", "after-conflict").await;
    let status = obj.status.unwrap();
    assert_eq!(
        status.observed_generation, obj.metadata.generation,
        "our write wins"
    );
    assert_eq!(
        status.url,
        ready.status.unwrap().url,
        "the intruder's url is replaced"
    );
    assert_eq!(status.artifact.unwrap().revision, format!("v1@{digest}"));
}

async fn metrics_text(ctl: &Controller) -> String {
    let url = format!("http://127.0.0.1:{}/metrics", ctl.metrics_port);
    reqwest::get(&url).await.unwrap().text().await.unwrap()
}

/// All registry requests the controller has made, whatever their kind.
async fn registry_requests(ctl: &Controller) -> f64 {
    metrics_text(ctl)
        .await
        .lines()
        .filter(|l| l.starts_with("ocisource_registry_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zero_interval_reconciles_once_and_then_only_when_asked() {
    let (cp, client) = shared_with_namespace("ctl-zero").await;
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    tools::flux_push_file(
        &reg,
        "apps/zero",
        "stable",
        ("deploy.yaml", "kind: ConfigMap\n"),
        "https://example.com/zero",
        "main@sha1:1111",
    );
    let ctl = start_controller(cp, "ctl-zero");
    let api: Api<OciRepository> = Api::namespaced(client.clone(), "ctl-zero");
    let obj = OciRepo::new("zero")
        .namespace("ctl-zero")
        .url(format!("oci://{}/apps/zero", reg.host()))
        .interval("0s")
        .insecure()
        .tag("stable")
        .object();
    api.create(&PostParams::default(), &obj).await.unwrap();
    wait_for(&api, "zero", "Ready", is_ready).await;

    // The counts are read at scrape time; the reconcile may still be ending after its status
    // write.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_first = registry_requests(&ctl).await;
    assert!(after_first > 0.0, "the first reconcile pulled");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        registry_requests(&ctl).await,
        after_first,
        "interval 0s: no requeue (Flux's RequeueAfter 0)\n{}",
        ctl.proc.log_tail(4000)
    );

    // A reconcile request still works, once.
    request_and_wait(&api, "zero", "now-1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_request = registry_requests(&ctl).await;
    assert!(
        after_request > after_first,
        "the requested reconcile asked the registry"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(registry_requests(&ctl).await, after_request);
}

/// Core v1 Events of `name` in `ns`: (type, reason, message, count).
async fn core_events(client: &Client, ns: &str, name: &str) -> Vec<(String, String, String, i32)> {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.count.unwrap_or(1),
            )
        })
        .collect()
}

/// A new object that keeps failing, as Flux schedules it: the finalizer requeue spends the first
/// 750 ms step, so attempts start at 0, 1.5, 4.5 and 10.5 s (the next at 22.5 s): four in the
/// first 15 s (five with one doubling fewer). Each attempt records Flux's trace event for the
/// missing secret and the Warning.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_failing_object_backs_off_as_flux_and_records_the_missing_secret_each_time() {
    let (cp, client) = shared_with_namespace("ctl-backoff").await;
    let ctl = start_controller(cp, "ctl-backoff");
    let api: Api<OciRepository> = Api::namespaced(client.clone(), "ctl-backoff");
    let obj = OciRepo::new("locked")
        .namespace("ctl-backoff")
        .url("oci://127.0.0.1:1/app")
        .interval("10m")
        .secret("absent")
        .object();
    let created = std::time::Instant::now();
    api.create(&PostParams::default(), &obj).await.unwrap();
    tokio::time::sleep(Duration::from_secs(15).saturating_sub(created.elapsed())).await;
    let errors = metric(
        &metrics_text(&ctl).await,
        r#"controller_runtime_reconcile_total{controller="ocirepository",result="error"}"#,
    );
    assert_eq!(
        errors,
        Some(4.0),
        "attempts in 15 s\n{}",
        ctl.proc.log_tail(4000)
    );

    let trace = (
        "Normal".to_string(),
        "AuthenticationFailed".to_string(),
        "auth secret 'absent' not found".to_string(),
        4,
    );
    let warning = (
        "Warning".to_string(),
        "AuthenticationFailed".to_string(),
        "failed to get credential: failed to get secret 'ctl-backoff/absent': secrets \"absent\" not found"
            .to_string(),
        4,
    );
    let mut events = vec![];
    for _ in 0..50 {
        events = core_events(&client, "ctl-backoff", "locked").await;
        if events.contains(&trace) && events.contains(&warning) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        events.contains(&trace) && events.contains(&warning),
        "{events:#?}"
    );
    assert_eq!(
        api.get_opt("locked")
            .await
            .unwrap()
            .map(|o| ready(&o))
            .unwrap()
            .unwrap()
            .2,
        warning.2
    );
}

/// The first request the controller makes, seen by a stand-in API server, carries the
/// controller's User-Agent.
#[tokio::test(flavor = "multi_thread")]
async fn the_controller_names_itself_to_the_api_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<Option<String>>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let agent = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("user-agent")
                .then(|| v.trim().to_string())
        });
        let _ = tx.send(agent);
        let _ = stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            .await;
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: x\n\
             clusters: [{{name: c, cluster: {{server: \"http://127.0.0.1:{port}\"}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n\
             contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\n"
        ),
    )
    .unwrap();
    let ctl = Controller::spawn_with(&kubeconfig, binary(), "ctl-ua", &[], "ua");
    let agent = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no request reached the API server\n{}",
                ctl.proc.log_tail(4000)
            )
        })
        .unwrap();
    assert_eq!(agent, Some(ocisource::k8s::manager::user_agent()));
    let agent = agent.unwrap();
    assert!(
        agent.starts_with(&format!("ocisource/v{} (", env!("CARGO_PKG_VERSION"))),
        "{agent}"
    );
}

/// What a killed controller left (a working directory in its temp dir, a partial file in its
/// store) is removed when the next one starts; files of a live process and anything not named
/// as ocisource names its own are kept.
#[tokio::test(flavor = "multi_thread")]
async fn leftovers_of_a_killed_run_are_swept_at_start_up() {
    let (cp, _) = shared_with_namespace("ctl-sweep").await;
    let storage = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = storage.path().join("ocirepository/ctl-sweep/app");
    std::fs::create_dir_all(&dir).unwrap();
    let artifact = dir.join("sha256:abc.tar.gz");
    std::fs::write(&artifact, b"served").unwrap();
    let partial = dir.join(".sha256:def.tar.gz.Q1w2E3.tmp");
    std::fs::write(&partial, b"half").unwrap();
    let stale = tmp.path().join("ocirepository-ctl-sweep-app-Zx9Yw8");
    std::fs::create_dir_all(stale.join("deploy")).unwrap();
    std::fs::write(stale.join("deploy/a.yaml"), b"x").unwrap();
    let live = ocisource::storage::workdir::create_in(tmp.path(), "ctl-sweep", "live").unwrap();
    let foreign = tmp.path().join("someone-elses");
    std::fs::create_dir(&foreign).unwrap();

    let ctl = Controller::spawn_in(
        cp.kubeconfig_path(),
        binary(),
        "ctl-sweep",
        &[],
        "sweeper",
        storage,
        Some(tmp.path()),
    );
    common::wait_until("controller ready", Duration::from_secs(60), || {
        assert!(ctl.proc.is_running(), "{}", ctl.proc.log_tail(4000));
        ctl.ready()
    });
    assert!(!partial.exists(), "the partial file is swept");
    assert!(!stale.exists(), "the stale working directory is swept");
    assert!(artifact.exists() && live.path().exists() && foreign.exists());
}

/// Reconciles so far of each object in `ns`, from `gotk_reconcile_duration_seconds_count`.
fn reconcile_counts(text: &str, ns: &str) -> std::collections::BTreeMap<String, u64> {
    let namespace = format!("namespace=\"{ns}\"}}");
    text.lines()
        .filter_map(|l| l.strip_prefix("gotk_reconcile_duration_seconds_count{"))
        .filter(|l| l.contains(&namespace))
        .filter_map(|l| {
            let name = l.split("name=\"").nth(1)?.split('"').next()?;
            let count = l.rsplit(' ').next()?.parse().ok()?;
            Some((name.to_string(), count))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saturated_queue_reconciles_every_object_within_an_interval_and_the_drain() {
    // One worker and more reconciles due than it can do: the queue is never empty, and first
    // in, first out every object still comes round within one interval (plus the 5% jitter) and
    // the time the first pass over all of them took. 1 s is the shortest interval the controller
    // honours; one worker does 300-450 reconciles a second here, so 800 objects keep it behind.
    use futures::StreamExt as _;
    const OBJECTS: usize = 800;
    const INTERVAL: &str = "1s";
    let ns = "ctl-fair";
    let (cp, client) = shared_with_namespace(ns).await;
    let (reg, _) = registry_with_v1("apps/fair");
    let ctl = Controller::start(cp, binary(), ns, &["--concurrent=1"]);
    let api: Api<OciRepository> = Api::namespaced(client.clone(), ns);
    let started = std::time::Instant::now();
    let creates = (0..OBJECTS).map(|i| {
        let obj = OciRepo::new(&format!("fair-{i:03}"))
            .namespace(ns)
            .url(format!("oci://{}/apps/fair", reg.host()))
            .interval(INTERVAL)
            .insecure()
            .tag("v1")
            .object();
        let api = api.clone();
        async move { api.create(&PostParams::default(), &obj).await.unwrap() }
    });
    futures::stream::iter(creates)
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    eventually("all Ready", Duration::from_secs(300), || async {
        let list = api.list(&Default::default()).await.unwrap();
        list.items.iter().filter(|o| is_ready(o)).count() == OBJECTS
    })
    .await;
    let drain = started.elapsed();
    let bound = Duration::from_millis(1050) + drain + Duration::from_secs(2);

    let mut before = reconcile_counts(&ctl.metrics().await, ns);
    assert_eq!(before.len(), OBJECTS);
    for window in 1..=2 {
        tokio::time::sleep(bound).await;
        let text = ctl.metrics().await;
        let depth = metric(
            &text,
            "workqueue_depth{controller=\"ocirepository\",name=\"ocirepository\",priority=\"\"}",
        );
        let after = reconcile_counts(&text, ns);
        let waiting: Vec<&String> = before
            .iter()
            .filter(|(name, count)| after.get(*name).is_none_or(|now| now <= *count))
            .map(|(name, _)| name)
            .collect();
        let done: u64 = after.values().sum::<u64>() - before.values().sum::<u64>();
        eprintln!(
            "window {window} of {bound:?} (drain {drain:?}): {done} reconciles, queue depth \
             {depth:?} at its end"
        );
        assert!(
            depth > Some(0.0),
            "the queue was to stay saturated: depth {depth:?}"
        );
        assert!(
            waiting.is_empty(),
            "window {window} of {bound:?} (drain {drain:?}, queue depth {depth:?}): {} objects \
             not reconciled: {waiting:?}",
            waiting.len()
        );
        before = after;
    }
}
