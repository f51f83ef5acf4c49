//! Failing neighbours: objects pointing at a dead registry must not delay healthy ones. The real
//! controller (`--concurrent=2`, the default) on the real control plane brings M healthy objects
//! to Ready on a real registry, once alone and once behind N objects whose registry refuses
//! connections; the healthy objects' time to all-Ready must stay about the same, because a dead
//! endpoint fails at once and goes back to the per-object backoff instead of holding a worker.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::controller::Controller;
use common::controlplane::{ControlPlane, create_namespace};
use common::object::{OciRepo, is_ready, ready};
use common::registry::{Flavor, Registry, Security};
use common::tools;
use kube::Api;
use kube::api::{ListParams, PostParams};
use ocisource::api::v1::OciRepository;

/// Healthy objects: enough for a steady stream through two workers, quick on two cores.
const HEALTHY: usize = 40;
/// Objects whose registry is a closed loopback port, created first so they reach the workers
/// first.
const FAILING: usize = 4;

fn object(name: &str, url: &str) -> OciRepository {
    OciRepo::new(name)
        .label("role", name.split('-').next().unwrap())
        .url(url)
        .interval("10m")
        .insecure()
        .tag("v1")
        .object()
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts a controller on `ns`, creates `failing` dead-registry objects and then the healthy
/// ones, and returns the time from the first healthy creation to all healthy Ready.
async fn time_to_ready(cp: &ControlPlane, reg: &Registry, ns: &str, failing: usize) -> Duration {
    let client = cp.client().await;
    create_namespace(&client, ns).await;
    let ctl = Controller::start(
        cp,
        Path::new(env!("CARGO_BIN_EXE_ocisource")),
        ns,
        &["--concurrent=2"],
    );
    let api: Api<OciRepository> = Api::namespaced(client, ns);
    let dead = format!("oci://127.0.0.1:{}/apps/web", closed_port());
    for i in 0..failing {
        api.create(&PostParams::default(), &object(&format!("dead-{i}"), &dead))
            .await
            .unwrap();
    }
    let healthy = format!("oci://{}/apps/web", reg.host());
    let started = Instant::now();
    for i in 0..HEALTHY {
        api.create(
            &PostParams::default(),
            &object(&format!("healthy-{i}"), &healthy),
        )
        .await
        .unwrap();
    }
    let healthy_only = ListParams::default().labels("role=healthy");
    loop {
        let list = api.list(&healthy_only).await.unwrap();
        let done = list.items.iter().filter(|o| is_ready(o)).count();
        if done == HEALTHY {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{done}/{HEALTHY} healthy objects Ready after 5 minutes\n{}",
            ctl.proc.log_tail(4000)
        );
        assert!(ctl.proc.is_running(), "{}", ctl.proc.log_tail(4000));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    eprintln!("{ns}: {HEALTHY} healthy objects Ready in {took:?} behind {failing} failing ones");
    // The dead neighbours failed, with Flux's text, and stay with the per-object backoff.
    let dead_only = ListParams::default().labels("role=dead");
    for obj in api.list(&dead_only).await.unwrap().items {
        let (status, _, message) = ready(&obj).unwrap_or_default();
        assert_eq!(status, "False", "{message}");
        assert!(
            message.starts_with("failed to determine artifact digest: Get \"https://127.0.0.1:")
                && message.contains("connect: connection refused; Get \"http://127.0.0.1:"),
            "{message}"
        );
    }
    took
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_neighbours_do_not_delay_healthy_objects() {
    let cp = ControlPlane::shared();
    common::crd::install(&cp.client().await).await;
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = tempfile::tempdir().unwrap();
    std::fs::write(content.path().join("deploy.yaml"), "kind: Deployment\n").unwrap();
    tools::flux_push_artifact(
        &reg,
        "apps/web",
        "v1",
        content.path(),
        "https://example.com/app",
        "main@sha1:0123456789abcdef",
        &[],
    );

    // Alone before and after, so that neither cold caches nor a loaded machine decide.
    let first = time_to_ready(cp, &reg, "neighbours-alone-1", 0).await;
    let behind = time_to_ready(cp, &reg, "neighbours-failing", FAILING).await;
    let second = time_to_ready(cp, &reg, "neighbours-alone-2", 0).await;
    let alone = first.min(second);
    eprintln!(
        "failing neighbours: {HEALTHY} healthy objects to Ready at --concurrent=2: {alone:?} alone \
         ({first:?}, {second:?}), {behind:?} behind {FAILING} objects on a dead registry"
    );
    assert!(
        behind.as_secs_f64() <= 1.5 * alone.as_secs_f64() + 2.0,
        "failing neighbours delayed healthy objects: {behind:?} vs {alone:?} alone"
    );
}
