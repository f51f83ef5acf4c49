//! The performance budgets of `docs/benchmarks.md` that can be checked exactly, against the real
//! test bed: an unchanged source costs one manifest `HEAD` (no blob, no manifest `GET`, no token
//! exchange while the token is valid), a semver object one tag listing more, and an unchanged
//! reconcile in the controller writes nothing to the API server (neither the object nor an
//! Event). The timing and memory budgets live in the benchmark (`scripts/bench.sh`).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::controller::Controller;
use common::controlplane::ControlPlane;
use common::in_process::{InProcess, object};
use common::object::OciRepo;
use common::registry::{Flavor, Registry, Security};
use common::{eventually, tools, wait_until};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{PostParams, WatchEvent, WatchParams};
use kube::{Api, Client, ResourceExt};
use ocisource::api::conditions::types;
use ocisource::api::v1::OciRepository;
use ocisource::core::reconcile::Outcome;
use ocisource::core::summary::Ending;
use ocisource::registry::RequestCounts;
use serde_json::json;

fn assert_ready(outcome: &Outcome) {
    let ready = outcome
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == types::READY);
    assert!(
        matches!(outcome.ending, Ending::Success) && ready.is_some_and(|c| c.status == "True"),
        "not Ready: {:?}\n{:#?}",
        outcome.ending,
        outcome.status
    );
}

fn content_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deploy.yaml"), "kind: Deployment\n").unwrap();
    dir
}

fn push(reg: &Registry, repo: &str, tag: &str, content: &Path) -> String {
    tools::flux_push_artifact(
        reg,
        repo,
        tag,
        content,
        "https://example.com/app",
        "main@sha1:0123456789abcdef",
        &[],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_tag_costs_one_manifest_head_and_no_token() {
    let reg = Registry::start(Flavor::Distribution, Security::Bearer);
    let content = content_dir();
    let digest = push(&reg, "apps/web", "v1.0.0", content.path());
    let core = InProcess::new(&reg);
    let url = format!("oci://{}/apps/web", reg.host());
    let mut obj = object("web", &url, json!({"tag": "v1.0.0"}));

    let (first, pulled) = core.reconcile(&mut obj).await;
    assert_ready(&first);
    let artifact = first.status.artifact.clone().unwrap();
    assert_eq!(artifact.revision, format!("v1.0.0@{digest}"));
    assert!(
        pulled.manifest_get >= 1 && pulled.blob >= 1,
        "the first reconcile pulls: {pulled:?}"
    );
    assert!(pulled.token >= 1, "bearer auth needs a token: {pulled:?}");

    let tokens = reg.token_requests();
    let (second, spent) = core.reconcile(&mut obj).await;
    assert_ready(&second);
    assert_eq!(
        spent,
        RequestCounts {
            manifest_head: 1,
            ..RequestCounts::default()
        },
        "an unchanged source costs exactly one manifest HEAD"
    );
    assert_eq!(
        reg.token_requests(),
        tokens,
        "the token server saw no request"
    );
    assert_eq!(
        second.status, first.status,
        "an unchanged source leaves the status as it was (the controller then writes nothing)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_semver_costs_one_tag_listing_and_one_manifest_head() {
    let reg = Registry::start(Flavor::Distribution, Security::Bearer);
    let content = content_dir();
    push(&reg, "apps/api", "1.0.0", content.path());
    std::fs::write(content.path().join("deploy.yaml"), "kind: StatefulSet\n").unwrap();
    let digest = push(&reg, "apps/api", "1.1.0", content.path());
    let core = InProcess::new(&reg);
    let url = format!("oci://{}/apps/api", reg.host());
    let mut obj = object("api", &url, json!({"semver": ">=1.0.0"}));

    let (first, _) = core.reconcile(&mut obj).await;
    assert_ready(&first);
    assert_eq!(
        first.status.artifact.as_ref().unwrap().revision,
        format!("1.1.0@{digest}")
    );

    let tokens = reg.token_requests();
    let (second, spent) = core.reconcile(&mut obj).await;
    assert_ready(&second);
    assert_eq!(
        spent,
        RequestCounts {
            tags: 1,
            manifest_head: 1,
            ..RequestCounts::default()
        },
        "an unchanged semver source costs one tag listing and one manifest HEAD"
    );
    assert_eq!(reg.token_requests(), tokens);
    assert_eq!(second.status, first.status);
}

// ---------------------------------------------------------------------------------------------
// The controller

/// Manifest `HEAD`s of `repo` the registry has answered so far, from its request log
/// (distribution logs every completed request at level info).
fn manifest_heads(reg: &Registry, repo: &str) -> usize {
    let log = std::fs::read_to_string(reg.dir().join("registry.log")).unwrap();
    // logfmt: the value is quoted only when it needs to be.
    let uri = format!("/v2/{repo}/manifests/");
    log.lines()
        .filter(|l| {
            l.contains("response completed")
                && l.contains("http.request.method=HEAD ")
                && (l.contains(&format!("http.request.uri={uri}"))
                    || l.contains(&format!("http.request.uri=\"{uri}")))
        })
        .count()
}

/// Write requests (any verb but GET, LIST, WATCH) the API server has served so far for
/// `resource`, by verb, from its `apiserver_request_total` metric.
async fn api_writes(client: &Client, resource: &str) -> Writes {
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(req).await.unwrap();
    let label = format!("resource=\"{resource}\"");
    let mut writes = Writes::default();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{") && l.contains(&label))
    {
        let verb = line
            .split("verb=\"")
            .nth(1)
            .and_then(|v| v.split('"').next());
        let n = line.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok());
        if let (Some(verb), Some(n)) = (verb, n)
            && !matches!(verb, "GET" | "LIST" | "WATCH")
        {
            *writes.0.entry(verb.to_string()).or_default() += n as u64;
        }
    }
    writes
}

/// Write requests by verb.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Writes(std::collections::BTreeMap<String, u64>);

impl Writes {
    fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

impl std::ops::Sub for Writes {
    type Output = Writes;

    fn sub(mut self, rhs: Writes) -> Writes {
        for (verb, n) in rhs.0 {
            let e = self.0.entry(verb).or_default();
            *e = e.saturating_sub(n);
        }
        self.0.retain(|_, n| *n > 0);
        self
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_reconcile_writes_nothing_to_the_api() {
    const NS: &str = "budget";
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    common::crd::install(&client).await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = content_dir();
    push(&reg, "apps/web", "stable", content.path());
    let ctl = Controller::start(cp, Path::new(env!("CARGO_BIN_EXE_ocisource")), NS, &[]);

    let api: Api<OciRepository> = Api::namespaced(client.clone(), NS);
    let obj = OciRepo::new("web")
        .url(format!("oci://{}/apps/web", reg.host()))
        .interval("2s")
        .insecure()
        .tag("stable")
        .object();
    // Every write to the object, from its creation on.
    let writes = Arc::new(AtomicUsize::new(0));
    let mut stream = api
        .watch(&WatchParams::default().fields("metadata.name=web"), "0")
        .await
        .unwrap()
        .boxed();
    let counter = writes.clone();
    let watching = tokio::spawn(async move {
        while let Some(Ok(event)) = stream.next().await {
            if matches!(event, WatchEvent::Modified(_)) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    api.create(&PostParams::default(), &obj).await.unwrap();

    eventually("Ready", Duration::from_secs(60), || async {
        assert!(ctl.proc.is_running(), "{}", ctl.proc.log_tail(4000));
        let obj = api.get("web").await.unwrap();
        let status = obj.status.unwrap_or_default();
        status.observed_generation == obj.metadata.generation
            && status
                .conditions
                .iter()
                .any(|c| c.type_ == types::READY && c.status == "True")
    })
    .await;
    // Start counting once the first unchanged reconcile has run: the writes of the first one
    // (status, NewArtifact event) are then behind us.
    let heads_at_ready = manifest_heads(&reg, "apps/web");
    wait_until("an unchanged reconcile", Duration::from_secs(30), || {
        manifest_heads(&reg, "apps/web") > heads_at_ready
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A new object costs the finalizer, one progress report and the final status (Flux: the
    // finalizer, three progress patches and the final status); a reconcile slower than the
    // progress interval may add one more progress write.
    let to_ready = writes.load(Ordering::SeqCst);
    eprintln!("writes to the object until Ready and one unchanged reconcile: {to_ready}");
    assert!(
        (3..=4).contains(&to_ready),
        "{to_ready} writes to get a new object Ready"
    );
    watching.abort();

    let version = api.get("web").await.unwrap().resource_version();
    let heads = manifest_heads(&reg, "apps/web");
    let object_writes = api_writes(&client, "ocirepositories").await;
    let event_writes = api_writes(&client, "events").await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let reconciles = manifest_heads(&reg, "apps/web") - heads;
    let object_writes = api_writes(&client, "ocirepositories").await - object_writes;
    let event_writes = api_writes(&client, "events").await - event_writes;
    let events: Vec<String> = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client, NS)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| {
            let count = e.series.map_or(1, |s| s.count);
            format!("{} x{count}", e.reason.unwrap_or_default())
        })
        .collect();
    // Flux records its `ArtifactUpToDate` trace event as a Kubernetes Event on every unchanged
    // reconcile; we only log it, so that an unchanged source costs no API write at all.
    eprintln!(
        "{reconciles} unchanged reconciles: object writes {:?}, Event writes {:?}; events {events:?}",
        object_writes.0, event_writes.0
    );

    assert!(
        reconciles >= 2,
        "the controller kept reconciling every 2s ({reconciles} manifest HEADs in 7s)\n{}",
        ctl.proc.log_tail(4000)
    );
    assert_eq!(
        api.get("web").await.unwrap().resource_version(),
        version,
        "an unchanged reconcile does not write the object"
    );
    assert_eq!(
        object_writes.total(),
        0,
        "no write request for any OCIRepository: {:?}",
        object_writes.0
    );
    assert_eq!(
        event_writes.total(),
        0,
        "no Event recorded or patched: {:?}; {events:?}",
        event_writes.0
    );
}
