//! The project's benchmark: measures the performance budgets of `docs/benchmarks.md` on real
//! components (test-bed registry and control plane, the real flux CLI, the release binary) and
//! prints one table. Run it through `scripts/bench.sh`, which installs the test bed and builds
//! the release binaries first.
//!
//! (a) unchanged source: registry requests and blob downloads per unchanged reconcile (in process,
//!     one shared client pool, bearer auth), and API writes per unchanged reconcile (controller
//!     process, object with `interval: 2s`).
//! (b) artifact pipeline: `ocisource reconcile` of a fresh object (pull, gunzip, untar, archive,
//!     gzip, digest) on a generated ~200 MiB artifact pushed with `flux push artifact`, against
//!     `gzip -dc | tar -x` then `tar -c | gzip | sha256sum` on the same layer; peak RSS for
//!     ~200 MiB and ~1 GiB.
//! (c) 1,000 OCIRepository objects on a local control plane: time until all are Ready and the
//!     controller's resident memory then.
//! (d) failing neighbours: healthy objects' time to all Ready at `--concurrent=2` (source-
//!     controller's default) alone, then with objects on dead registries (a closed loopback port,
//!     an unresolvable host) created just before them, side by side.
//! (e) signature verification: objects on one cosign-signed artifact with and without `verify`,
//!     with one shared verification and with one each, and an unchanged verified source
//!     (`examples/bench/verification.rs`).
//! (f) one poll per repository: objects spread over a few repositories, registry requests per
//!     interval once all are Ready, against one per object (`examples/bench/polls.rs`).
//! (g) producer CLI: `ocisource push|pull artifact` against `flux push|pull artifact` on the
//!     same generated ~200 MiB and ~1 GiB trees and registry, wall and CPU time, peak RSS and
//!     ratios (`examples/bench/producer.rs`).
//! (h) side by side with Flux's source-controller: the same objects on the same control plane
//!     and registry, reconciled by each controller alone: time to all Ready, CPU seconds, peak
//!     RSS, registry requests by kind (downloads among them), the store on disk and API writes
//!     per object (counted exactly from the API server's audit log), then a restart over the
//!     same store, with ratios (`examples/bench/side_by_side.rs`).
//! (i) push to Ready: the registry's push notifications to the controller's receiver, from `flux
//!     push artifact` returning until every object on the tag reports the new revision, against
//!     polling (`examples/bench/push.rs`).
//! (j) soak (only when named): resident memory sampled every minute over an hour of intervals,
//!     with new revisions every ten minutes (`examples/bench/soak.rs`).
//!
//! Environment: `OCISOURCE_BIN` (the release `ocisource`; default: next to this example's
//! directory), `OCISOURCE_BENCH_1G=0` skips the ~1 GiB run, `OCISOURCE_BENCH_OBJECTS` (1000),
//! `OCISOURCE_BENCH_CONCURRENT` (the controller's `--concurrent`, 16), `OCISOURCE_BENCH_RUNS`
//! (back-to-back pipeline pairs for ~200 MiB; 5), `OCISOURCE_BENCH_SECTIONS` (which of a, b, c,
//! d, e, f, g, h, i, j to run; `abcdefghi`), `OCISOURCE_BENCH_HEALTHY` (healthy objects of (d), 200),
//! `OCISOURCE_BENCH_FAILING` (failing objects of (d), 4), `OCISOURCE_BENCH_VERIFIED` (objects of
//! (e), 100), `OCISOURCE_BENCH_POLLS` (objects of (f), 1000), `OCISOURCE_BENCH_POLL_REPOS`
//! (their repositories, 10), `OCISOURCE_BENCH_POLL_INTERVAL` (their `spec.interval` in seconds,
//! 60), `OCISOURCE_BENCH_POLL_ROUNDS` (intervals measured, 2),
//! `OCISOURCE_BENCH_PRODUCER_MIB` (tree sizes of (g) in MiB, `200,1024`; small sizes
//! make a smoke run), `OCISOURCE_BENCH_SIDE_OBJECTS` (object counts of (h), `1000`; e.g.
//! `1000,10000`), `OCISOURCE_BENCH_SIDE_REPOS` (repository counts of (h), each run with every
//! object count, `10,1000`), `OCISOURCE_BENCH_SIDE_CONCURRENT` (`--concurrent` of both
//! controllers in (h), 2: their default), `OCISOURCE_BENCH_SIDE_RESTART` (0 skips (h)'s
//! restart over the same store, 1), `OCISOURCE_BENCH_SOAK_OBJECTS` (objects of (j), 1000),
//! `OCISOURCE_BENCH_SOAK_INTERVAL` (their interval in seconds, 60), `OCISOURCE_BENCH_SOAK_MINUTES`
//! (how long (j) runs, 60; (j) runs only when named in the sections), `OCISOURCE_BENCH_PUSH_OBJECTS` (objects of (i), 10),
//! `OCISOURCE_BENCH_PUSH_ROUNDS` (pushes measured, 5), `OCISOURCE_BENCH_PUSH_BASELINE_INTERVAL`
//! (the polling baseline's `spec.interval` in seconds, 60). The local control plane starts only
//! for (a), (c), (d), (e), (f), (h), (i) and (j); with (h) its API server keeps an audit log of write requests.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "bench/polls.rs"]
mod polls;
#[path = "bench/producer.rs"]
mod producer;
#[path = "bench/push.rs"]
mod push_notifications;
#[path = "bench/side_by_side.rs"]
mod side_by_side;
#[path = "bench/soak.rs"]
mod soak;
#[path = "bench/verification.rs"]
mod verification;

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use common::controller::Controller;
use common::controlplane::ControlPlane;
use common::in_process::{self, InProcess};
use common::object::handled;
use common::registry::{Flavor, Registry, Security};
use common::tools;
use common::writes::{Writes, api_writes};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt as _};
use ocisource::api::v1::{OciRepository, OciRepositoryStatus};
use serde_json::json;

const MIB: u64 = 1 << 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::from_env()?;
    preflight(&cfg)?;
    let work = tempfile::Builder::new()
        .prefix("ocisource-bench-")
        .tempdir()
        .context("create the bench work directory")?;
    let started = Instant::now();
    let load_start = loadavg();
    let mut table = Table::default();

    let control_plane = if cfg
        .sections
        .contains(['a', 'c', 'd', 'e', 'f', 'h', 'i', 'j'])
    {
        progress("starting a local control plane (kube-apiserver + etcd)");
        // (h) counts each controller's writes in the audit log.
        let cp = if cfg.sections.contains('h') {
            ControlPlane::start_audited()
        } else {
            ControlPlane::start()
        };
        let client = cp.client().await;
        common::crd::install(&client).await;
        Some((cp, client))
    } else {
        None
    };

    if let Some((cp, client)) = &control_plane
        && cfg.sections.contains('a')
    {
        unchanged_source(&cfg, cp, client, &mut table).await?;
    }
    if cfg.sections.contains('b') {
        pipeline(&cfg, work.path(), &mut table)?;
    }
    if let Some((cp, client)) = &control_plane {
        if cfg.sections.contains('c') {
            many_objects(&cfg, cp, client, &mut table).await?;
        }
        if cfg.sections.contains('d') {
            failing_neighbours(&cfg, cp, client, &mut table).await?;
        }
        if cfg.sections.contains('e') {
            verification::verification(&cfg, cp, client, &mut table).await?;
        }
        if cfg.sections.contains('f') {
            polls::polls(&cfg, cp, client, &mut table).await?;
        }
    }
    if cfg.sections.contains('g') {
        producer::producer(&cfg, work.path(), &mut table)?;
    }
    if let Some((cp, client)) = &control_plane
        && cfg.sections.contains('h')
    {
        side_by_side::side_by_side(&cfg, cp, client, &mut table).await?;
    }
    if let Some((cp, client)) = &control_plane
        && cfg.sections.contains('i')
    {
        push_notifications::push_to_ready(&cfg, cp, client, &mut table).await?;
    }
    if let Some((cp, client)) = &control_plane
        && cfg.sections.contains('j')
    {
        soak::soak(&cfg, cp, client, &mut table).await?;
    }

    print_report(&cfg, &table, &load_start, started.elapsed());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Configuration and checks

struct Config {
    bin: PathBuf,
    one_gib: bool,
    objects: usize,
    concurrent: usize,
    runs: usize,
    sections: String,
    healthy: usize,
    failing: usize,
    verified: usize,
    poll_objects: usize,
    poll_repos: usize,
    poll_interval: Duration,
    poll_rounds: usize,
    producer_mib: Vec<u64>,
    side_objects: Vec<usize>,
    side_repos: Vec<usize>,
    side_concurrent: usize,
    side_restart: bool,
    soak_objects: usize,
    soak_interval: Duration,
    soak_minutes: usize,
    soak_warmup: usize,
    push_objects: usize,
    push_rounds: usize,
    push_baseline_interval: Duration,
}

impl Config {
    fn from_env() -> anyhow::Result<Config> {
        let bin = match std::env::var_os("OCISOURCE_BIN") {
            Some(p) => PathBuf::from(p),
            None => std::env::current_exe()?
                .parent()
                .and_then(Path::parent)
                .context("locate the target directory")?
                .join("ocisource"),
        };
        let num = |name: &str, default: usize| -> anyhow::Result<usize> {
            match std::env::var(name) {
                Ok(v) => v
                    .parse()
                    .with_context(|| format!("{name}={v}: not a number")),
                Err(_) => Ok(default),
            }
        };
        let counts = |name: &str, default: &str| -> anyhow::Result<Vec<usize>> {
            std::env::var(name)
                .unwrap_or_else(|_| default.into())
                .split(',')
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .with_context(|| format!("{name}: {v:?} is no positive count"))
                })
                .collect()
        };
        Ok(Config {
            bin,
            one_gib: std::env::var("OCISOURCE_BENCH_1G").map_or(true, |v| v != "0"),
            objects: num("OCISOURCE_BENCH_OBJECTS", 1000)?,
            concurrent: num("OCISOURCE_BENCH_CONCURRENT", 16)?,
            runs: num("OCISOURCE_BENCH_RUNS", 5)?.max(1),
            sections: std::env::var("OCISOURCE_BENCH_SECTIONS")
                .unwrap_or_else(|_| "abcdefghi".into()),
            healthy: num("OCISOURCE_BENCH_HEALTHY", 200)?.max(1),
            failing: num("OCISOURCE_BENCH_FAILING", 4)?,
            verified: num("OCISOURCE_BENCH_VERIFIED", 100)?.max(2),
            poll_objects: num("OCISOURCE_BENCH_POLLS", 1000)?.max(1),
            poll_repos: num("OCISOURCE_BENCH_POLL_REPOS", 10)?.max(1),
            poll_interval: Duration::from_secs(
                num("OCISOURCE_BENCH_POLL_INTERVAL", 60)?.max(2) as u64
            ),
            poll_rounds: num("OCISOURCE_BENCH_POLL_ROUNDS", 2)?.max(1),
            producer_mib: std::env::var("OCISOURCE_BENCH_PRODUCER_MIB")
                .unwrap_or_else(|_| "200,1024".into())
                .split(',')
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .with_context(|| format!("OCISOURCE_BENCH_PRODUCER_MIB: {v:?} is no size"))
                })
                .collect::<anyhow::Result<_>>()?,
            side_objects: counts("OCISOURCE_BENCH_SIDE_OBJECTS", "1000")?,
            side_repos: counts("OCISOURCE_BENCH_SIDE_REPOS", "10,1000")?,
            side_concurrent: num("OCISOURCE_BENCH_SIDE_CONCURRENT", 2)?.max(1),
            side_restart: num("OCISOURCE_BENCH_SIDE_RESTART", 1)? != 0,
            soak_objects: num("OCISOURCE_BENCH_SOAK_OBJECTS", 1000)?.max(1),
            soak_interval: Duration::from_secs(
                num("OCISOURCE_BENCH_SOAK_INTERVAL", 60)?.max(1) as u64
            ),
            soak_minutes: num("OCISOURCE_BENCH_SOAK_MINUTES", 60)?.max(2),
            soak_warmup: num("OCISOURCE_BENCH_SOAK_WARMUP", 10)?,
            push_objects: num("OCISOURCE_BENCH_PUSH_OBJECTS", 10)?.max(1),
            push_rounds: num("OCISOURCE_BENCH_PUSH_ROUNDS", 5)?.max(1),
            push_baseline_interval: Duration::from_secs(
                num("OCISOURCE_BENCH_PUSH_BASELINE_INTERVAL", 60)?.max(1) as u64,
            ),
        })
    }
}

/// Fails early, naming what to install, when a component is missing.
fn preflight(cfg: &Config) -> anyhow::Result<()> {
    ensure!(
        cfg.bin.is_file(),
        "the ocisource binary is not at {}: run scripts/bench.sh (it builds \
         `cargo build --release --bin ocisource`) or set OCISOURCE_BIN",
        cfg.bin.display()
    );
    for tool in [
        "kube-apiserver",
        "etcd",
        "docker-registry",
        "ocitestbed",
        "flux",
        "crane",
    ] {
        common::bin(tool); // panics with the install command
    }
    if cfg.sections.contains('h') {
        common::bin("source-controller");
    }
    for (tool, package) in [
        ("gzip", "gzip"),
        ("tar", "tar"),
        ("sha256sum", "coreutils"),
        ("bash", "bash"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ensure!(found, "`{tool}` is missing: apt-get install {package}");
    }
    ensure!(
        Path::new("/usr/bin/time").is_file(),
        "/usr/bin/time is missing: apt-get install time (scripts/bench.sh does it)"
    );
    Ok(())
}

fn progress(msg: &str) {
    eprintln!("[bench] {msg}");
}

// ---------------------------------------------------------------------------------------------
// (a) Unchanged source

async fn unchanged_source(
    cfg: &Config,
    cp: &ControlPlane,
    client: &Client,
    table: &mut Table,
) -> anyhow::Result<()> {
    const ROUNDS: u64 = 10;
    progress("(a) unchanged source, in process, bearer-auth registry");
    let reg = Registry::start(Flavor::Distribution, Security::Bearer);
    let content = tempfile::tempdir()?;
    std::fs::write(content.path().join("deploy.yaml"), "kind: Deployment\n")?;
    push(&reg, "bench/tag", "v1.0.0", content.path());
    push(&reg, "bench/semver", "1.0.0", content.path());
    push(&reg, "bench/semver", "1.1.0", content.path());
    let core = InProcess::new(&reg);

    for (name, repo, reference, budget) in [
        ("tag", "bench/tag", json!({"tag": "v1.0.0"}), 1u64),
        ("semver", "bench/semver", json!({"semver": ">=1.0.0"}), 2),
    ] {
        let url = format!("oci://{}/{repo}", reg.host());
        let mut obj = in_process::object(name, &url, reference);
        let first = core.reconcile(&mut obj).await.0.status;
        ensure!(
            is_ready(&first),
            "(a) {name}: first reconcile not Ready: {first:#?}"
        );
        let tokens = reg.token_requests();
        let before = core.requests();
        let mut latencies = Vec::new();
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let status = core.reconcile(&mut obj).await.0.status;
            latencies.push(t.elapsed());
            ensure!(
                status == first,
                "(a) {name}: an unchanged reconcile changed the status"
            );
        }
        let spent = core.requests() - before;
        let per = |n: u64| n as f64 / ROUNDS as f64;
        table.row(
            "a",
            format!("registry requests / unchanged reconcile ({name})"),
            format!(
                "{:.2} ({:.2} tags, {:.2} HEAD, {:.2} GET, {:.2} token, {:.2} ping)",
                per(spent.total()),
                per(spent.tags),
                per(spent.manifest_head),
                per(spent.manifest_get),
                per(spent.token),
                per(spent.ping)
            ),
            if budget == 1 {
                "1 (1 HEAD)"
            } else {
                "2 (1 tags + 1 HEAD)"
            },
            verdict(spent.total() == budget * ROUNDS && spent.token == 0),
        );
        table.row(
            "a",
            format!("blob downloads / unchanged reconcile ({name})"),
            format!("{:.2} ({} bytes)", per(spent.blob), spent.blob_bytes),
            "0",
            verdict(spent.blob == 0),
        );
        table.row(
            "a",
            format!("token server requests over {ROUNDS} reconciles ({name})"),
            format!("{}", reg.token_requests() - tokens),
            "0 (token cached)",
            verdict(reg.token_requests() == tokens),
        );
        latencies.sort();
        table.row(
            "a",
            format!("unchanged reconcile latency, median ({name})"),
            format!("{:.2} ms", ms(latencies[latencies.len() / 2])),
            "",
            Verdict::Info,
        );
    }
    drop(reg);

    progress("(a) API writes of the controller for an unchanged source (interval 2s)");
    const NS: &str = "bench-a";
    namespace(client, NS).await?;
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    push(&reg, "bench/web", "stable", content.path());
    let (ctl, _) = start_controller(cfg, cp, NS)?;
    let api: Api<OciRepository> = Api::namespaced(client.clone(), NS);
    let obj: OciRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "web"},
        "spec": {
            "url": format!("oci://{}/bench/web", reg.host()),
            "interval": "2s",
            "insecure": true,
            "ref": {"tag": "stable"},
        },
    }))?;
    api.create(&PostParams::default(), &obj).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !api.get("web").await.map(|o| object_ready(&o))? {
        ensure!(
            ctl.proc.is_running(),
            "controller exited:\n{}",
            ctl.proc.log_tail(4000)
        );
        ensure!(
            Instant::now() < deadline,
            "(a) the object did not become Ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let heads_at_ready = manifest_heads(&reg, "bench/web")?;
    while manifest_heads(&reg, "bench/web")? <= heads_at_ready {
        ensure!(Instant::now() < deadline, "(a) no unchanged reconcile");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let version = api.get("web").await?.resource_version();
    let heads = manifest_heads(&reg, "bench/web")?;
    let objects = api_writes(client, "ocirepositories").await?;
    let events = api_writes(client, "events").await?;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let reconciles = manifest_heads(&reg, "bench/web")? - heads;
    let objects = api_writes(client, "ocirepositories").await? - objects;
    let events = api_writes(client, "events").await? - events;
    let unchanged = api.get("web").await?.resource_version() == version;
    ensure!(
        reconciles > 0,
        "(a) the controller did not reconcile in 12s"
    );
    let per = |n: u64| n as f64 / reconciles as f64;
    table.row(
        "a",
        "API writes / unchanged reconcile: the object (controller, 2s interval)".to_string(),
        format!(
            "{:.2} ({} over {reconciles} reconciles; resourceVersion {})",
            per(objects.total()),
            objects.describe(),
            if unchanged { "unchanged" } else { "CHANGED" }
        ),
        "0",
        verdict(objects.total() == 0 && unchanged),
    );
    table.row(
        "a",
        "API writes / unchanged reconcile: Events".to_string(),
        format!(
            "{:.2} ({} over {reconciles} reconciles)",
            per(events.total()),
            events.describe()
        ),
        "0",
        verdict(events.total() == 0),
    );
    let (rss, hwm) = proc_memory(ctl.proc.pid())?;
    table.row(
        "a",
        "controller resident memory with 1 object, idle".to_string(),
        format!(
            "VmRSS {:.1} MiB, VmHWM {:.1} MiB",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        ),
        "",
        Verdict::Info,
    );
    Ok(())
}

fn is_ready(status: &OciRepositoryStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn object_ready(obj: &OciRepository) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        is_ready(s)
            && s.observed_generation.is_some()
            && s.observed_generation == obj.metadata.generation
    })
}

/// Manifest `HEAD`s of `repo` the registry answered so far (distribution logs each completed
/// request at level info).
fn manifest_heads(reg: &Registry, repo: &str) -> anyhow::Result<u64> {
    let prefix = format!("/v2/{repo}/manifests/");
    Ok(registry_requests(reg)?
        .iter()
        .filter(|(method, uri)| method == "HEAD" && uri.starts_with(&prefix))
        .count() as u64)
}

/// `(method, uri)` of every request the registry completed so far.
fn registry_requests(reg: &Registry) -> anyhow::Result<Vec<(String, String)>> {
    let log = std::fs::read_to_string(reg.dir().join("registry.log"))?;
    let field = |line: &str, key: &str| -> Option<String> {
        let at = line.find(key)? + key.len();
        let rest = &line[at..];
        let value = match rest.strip_prefix('"') {
            Some(quoted) => &quoted[..quoted.find('"')?],
            None => rest.split(' ').next()?,
        };
        Some(value.to_string())
    };
    Ok(log
        .lines()
        .filter(|l| l.contains("response completed"))
        .filter_map(|l| {
            Some((
                field(l, "http.request.method=")?,
                field(l, "http.request.uri=")?,
            ))
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// (b) Artifact pipeline

struct Pipeline {
    label: &'static str,
    uncompressed: u64,
    files: u64,
    layer: u64,
    /// `(ocisource, baseline)` of each back-to-back run.
    pairs: Vec<(Timing, Timing)>,
}

impl Pipeline {
    fn best(&self, pick: impl Fn(&(Timing, Timing)) -> Timing) -> Timing {
        self.pairs
            .iter()
            .map(pick)
            .min_by_key(|t| t.wall)
            .expect("at least one run")
    }

    fn peak_rss_kib(&self) -> u64 {
        self.pairs
            .iter()
            .map(|p| p.0.max_rss_kib)
            .max()
            .unwrap_or(0)
    }

    /// The median over the runs of ocisource / baseline, by wall or CPU time.
    fn median_ratio(&self, of: impl Fn(&Timing) -> Duration) -> f64 {
        let mut r: Vec<f64> = self
            .pairs
            .iter()
            .map(|(o, b)| secs(of(o)) / secs(of(b)))
            .collect();
        r.sort_by(f64::total_cmp);
        let n = r.len();
        if n % 2 == 1 {
            r[n / 2]
        } else {
            (r[n / 2 - 1] + r[n / 2]) / 2.0
        }
    }
}

fn pipeline(cfg: &Config, work: &Path, table: &mut Table) -> anyhow::Result<()> {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let small = pipeline_run(cfg, &reg, work, "~200 MiB", 200 * MIB, 1)?;
    table.row(
        "b",
        format!(
            "artifact {}: {} files, {:.0} MiB, layer {:.0} MiB",
            small.label,
            small.files,
            mib(small.uncompressed),
            mib(small.layer)
        ),
        String::new(),
        "",
        Verdict::Info,
    );
    let throughput = |p: &Pipeline, t: &Timing| {
        format!(
            "{:.2} s wall ({:.0} MiB/s), {:.2} s CPU",
            secs(t.wall),
            mib(p.uncompressed) / secs(t.wall),
            secs(t.cpu)
        )
    };
    let n = small.pairs.len();
    table.row(
        "b",
        format!("ocisource reconcile of a fresh object, best of {n}"),
        throughput(&small, &small.best(|p| p.0)),
        "",
        Verdict::Info,
    );
    table.row(
        "b",
        format!("baseline gzip -dc|tar -x; tar -c|gzip|sha256sum, best of {n}"),
        throughput(&small, &small.best(|p| p.1)),
        "",
        Verdict::Info,
    );
    let ratio = small.median_ratio(|t| t.wall);
    table.row(
        "b",
        format!("pipeline ratio ocisource / baseline, wall (~200 MiB, median of {n} pairs)"),
        format!(
            "{ratio:.2}x (CPU time: {:.2}x)",
            small.median_ratio(|t| t.cpu)
        ),
        "<= 1.5x",
        verdict(ratio <= 1.5),
    );
    table.row(
        "b",
        "peak RSS of ocisource reconcile (~200 MiB)".to_string(),
        format!("{:.1} MiB", small.peak_rss_kib() as f64 / 1024.0),
        "",
        Verdict::Info,
    );
    if cfg.one_gib {
        let big = pipeline_run(cfg, &reg, work, "~1 GiB", 1024 * MIB, 2)?;
        let rss_ratio = big.peak_rss_kib() as f64 / small.peak_rss_kib() as f64;
        table.row(
            "b",
            format!(
                "peak RSS of ocisource reconcile (~1 GiB: {} files, {:.0} MiB, layer {:.0} MiB)",
                big.files,
                mib(big.uncompressed),
                mib(big.layer)
            ),
            format!(
                "{:.1} MiB ({rss_ratio:.2}x the ~200 MiB run)",
                big.peak_rss_kib() as f64 / 1024.0
            ),
            "~1x (size-independent)",
            verdict(rss_ratio <= 1.25),
        );
        let (o, b) = big.pairs[0];
        let ratio = secs(o.wall) / secs(b.wall);
        table.row(
            "b",
            "pipeline ratio ocisource / baseline, wall (~1 GiB, one pair)".to_string(),
            format!(
                "{ratio:.2}x ({:.1} s vs {:.1} s; CPU {:.1} s vs {:.1} s)",
                secs(o.wall),
                secs(b.wall),
                secs(o.cpu),
                secs(b.cpu)
            ),
            "<= 1.5x",
            verdict(ratio <= 1.5),
        );
    } else {
        table.row(
            "b",
            "peak RSS for ~1 GiB".to_string(),
            "skipped (OCISOURCE_BENCH_1G=0)".to_string(),
            "~1x",
            Verdict::Info,
        );
    }
    Ok(())
}

fn pipeline_run(
    cfg: &Config,
    reg: &Registry,
    work: &Path,
    label: &'static str,
    target: u64,
    seed: u64,
) -> anyhow::Result<Pipeline> {
    let dir = work.join(format!("artifact-{seed}"));
    std::fs::create_dir_all(&dir)?;
    progress(&format!("(b) generating the {label} artifact"));
    let t = Instant::now();
    let content = dir.join("content");
    let generated = generate(&content, target, seed)?;
    progress(&format!(
        "(b) generated {} files, {:.0} MiB in {:.1} s; pushing with flux",
        generated.files,
        mib(generated.bytes),
        secs(t.elapsed())
    ));
    let t = Instant::now();
    let repo = format!("bench/pipeline-{seed}");
    push(reg, &repo, "v1", &content);
    std::fs::remove_dir_all(&content)?;
    let manifest: serde_json::Value =
        serde_json::from_str(&tools::crane_manifest(reg, &format!("{repo}:v1")))?;
    let layer_digest = manifest["layers"][0]["digest"]
        .as_str()
        .context("no layer in the pushed manifest")?
        .to_string();
    let layer = dir.join("layer.tgz");
    let home = tools::ToolHome::new(reg);
    let status = home
        .command("crane")
        .args([
            "blob",
            &format!("{}/{repo}@{layer_digest}", reg.host()),
            "--insecure",
        ])
        .stdout(File::create(&layer)?)
        .status()?;
    ensure!(status.success(), "crane blob failed");
    let layer_size = std::fs::metadata(&layer)?.len();
    progress(&format!(
        "(b) pushed and fetched the layer ({:.0} MiB) in {:.1} s",
        mib(layer_size),
        secs(t.elapsed())
    ));

    let manifest_file = dir.join("ocirepository.json");
    std::fs::write(
        &manifest_file,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": format!("pipeline-{seed}"), "namespace": "bench"},
            "spec": {
                "url": format!("oci://{}/{repo}", reg.host()),
                "interval": "10m",
                "timeout": "30m",
                "insecure": true,
                "ref": {"tag": "v1"},
            },
        })
        .to_string(),
    )?;
    let runs = if target > 512 * MIB { 1 } else { cfg.runs };
    let mut pairs = Vec::new();
    for run in 1..=runs {
        // Alternate the order so that neither side always runs right after the other.
        let (o, b) = if run % 2 == 1 {
            let b = baseline(&layer, &dir.join("baseline"))?;
            (
                ocisource_reconcile(cfg, &manifest_file, &dir.join("storage"))?,
                b,
            )
        } else {
            let o = ocisource_reconcile(cfg, &manifest_file, &dir.join("storage"))?;
            (o, baseline(&layer, &dir.join("baseline"))?)
        };
        progress(&format!(
            "(b) {label} run {run}/{runs}: ocisource {:.2} s wall, {:.2} s CPU, peak RSS {:.1} MiB; \
             baseline {:.2} s wall, {:.2} s CPU; ratio {:.2}x; load {}",
            secs(o.wall),
            secs(o.cpu),
            o.max_rss_kib as f64 / 1024.0,
            secs(b.wall),
            secs(b.cpu),
            secs(o.wall) / secs(b.wall),
            loadavg()
        ));
        pairs.push((o, b));
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(Pipeline {
        label,
        uncompressed: generated.bytes,
        files: generated.files,
        layer: layer_size,
        pairs,
    })
}

/// Wall time, CPU time (user + system, children included) and peak RSS of a command.
#[derive(Clone, Copy, Debug)]
struct Timing {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: u64,
}

/// Runs `cmd` under GNU time (`/usr/bin/time`); returns its output and timing.
fn timed(cmd: &mut Command) -> anyhow::Result<(std::process::Output, Timing)> {
    let report = tempfile::NamedTempFile::new()?;
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .arg("-o")
        .arg(report.path())
        .args(["-f", "%U %S %M"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    // The wrapped command keeps the environment and directory it was given (a tool home).
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let t = Instant::now();
    let out = wrapped.output()?;
    let wall = t.elapsed();
    let text = std::fs::read_to_string(report.path())?;
    let fields: Vec<&str> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let [user, system, rss] = fields[..] else {
        bail!("unexpected /usr/bin/time report: {text}");
    };
    let cpu = user.parse::<f64>()? + system.parse::<f64>()?;
    Ok((
        out,
        Timing {
            wall,
            cpu: Duration::from_secs_f64(cpu),
            max_rss_kib: rss.parse()?,
        },
    ))
}

/// `gzip -dc layer | tar -x`, then `tar -c | gzip | sha256sum`: the plain-tools pipeline.
fn baseline(layer: &Path, out: &Path) -> anyhow::Result<Timing> {
    const SCRIPT: &str = r#"set -euo pipefail
mkdir "$2"
gzip -dc "$1" | tar -x -C "$2"
tar -c -C "$2" . | gzip | sha256sum >/dev/null
"#;
    let (output, timing) = timed(
        Command::new("bash")
            .args(["-c", SCRIPT, "baseline"])
            .arg(layer)
            .arg(out),
    )?;
    ensure!(
        output.status.success(),
        "the baseline pipeline failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::remove_dir_all(out)?;
    Ok(timing)
}

/// `ocisource reconcile` of a fresh object into an empty store.
fn ocisource_reconcile(cfg: &Config, manifest: &Path, storage: &Path) -> anyhow::Result<Timing> {
    let (out, timing) = timed(
        Command::new(&cfg.bin)
            .arg("reconcile")
            .arg("-f")
            .arg(manifest)
            .arg("--storage-path")
            .arg(storage)
            .args(["-o", "json"])
            .args([
                "--artifact-max-extract-size=-1",
                "--artifact-max-extract-entries=-1",
            ]),
    )?;
    ensure!(
        out.status.success(),
        "ocisource reconcile failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let obj: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        obj["status"]["artifact"]["digest"].is_string(),
        "no artifact stored: {}",
        obj["status"]
    );
    std::fs::remove_dir_all(storage)?;
    Ok(timing)
}

struct Generated {
    files: u64,
    bytes: u64,
}

/// A deterministic, realistic artifact: 20,000 Kubernetes-like YAML files of 1-8 KiB in 200
/// directories (100 files a MiB of `target` below 200 MiB), then binary files of 20-50 MiB of pseudo-random (incompressible) bytes until
/// `target` bytes.
fn generate(dir: &Path, target: u64, seed: u64) -> anyhow::Result<Generated> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x00C1_5EED);
    let mut g = Generated { files: 0, bytes: 0 };
    // 200 directories (~90 MiB of YAML) from ~200 MiB up; one a MiB for the small trees of a
    // smoke run, so that the YAML stays about half of the target.
    let dirs = (target / MIB).clamp(1, 200);
    for d in 0..dirs {
        let sub = dir.join(format!("clusters/team-{:02}/app-{d:03}", d % 20));
        std::fs::create_dir_all(&sub)?;
        for f in 0..100u64 {
            let size = 1024 + rng.below(7 * 1024 + 1) as usize;
            let text = yaml(&mut rng, d, f, size);
            std::fs::write(sub.join(format!("resource-{f:03}.yaml")), &text)?;
            g.files += 1;
            g.bytes += text.len() as u64;
        }
    }
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    let mut i = 0;
    while g.bytes < target {
        let size = ((20 + rng.below(31)) * MIB).min((target - g.bytes).max(MIB));
        let mut out =
            BufWriter::with_capacity(1 << 20, File::create(bin.join(format!("blob-{i:02}.bin")))?);
        let mut buf = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            rng.fill(&mut buf[..n]);
            out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        out.flush()?;
        g.files += 1;
        g.bytes += size;
        i += 1;
    }
    Ok(g)
}

const WORDS: &[&str] = &[
    "frontend",
    "backend",
    "payments",
    "gateway",
    "worker",
    "cache",
    "search",
    "billing",
    "metrics",
    "ingest",
    "auth",
    "catalog",
    "orders",
    "inventory",
    "mailer",
    "scheduler",
];

fn yaml(rng: &mut Rng, d: u64, f: u64, size: usize) -> String {
    let word = |rng: &mut Rng| WORDS[rng.below(WORDS.len() as u64) as usize];
    let app = word(rng);
    let mut s = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}-{d:03}-{f:03}\n  \
         namespace: team-{:02}\n  labels:\n    app.kubernetes.io/name: {app}\n    \
         app.kubernetes.io/part-of: {}\n    app.kubernetes.io/version: v{}.{}.{}\n\
         spec:\n  replicas: {}\n  selector:\n    matchLabels:\n      app: {app}\n  template:\n    \
         metadata:\n      labels:\n        app: {app}\n    spec:\n      containers:\n      \
         - name: {app}\n        image: registry.example.com/team-{:02}/{app}:{:016x}\n        \
         resources:\n          requests: {{cpu: {}m, memory: {}Mi}}\n        env:\n",
        d % 20,
        word(rng),
        rng.below(5),
        rng.below(30),
        rng.below(100),
        1 + rng.below(5),
        d % 20,
        rng.next(),
        50 * (1 + rng.below(20)),
        64 * (1 + rng.below(16)),
    );
    while s.len() < size {
        let _ = write!(
            s,
            "        - name: {}_{}_{:04X}\n          value: \"{}-{:08x}.{}.svc.cluster.local:{}\"\n",
            word(rng).to_uppercase(),
            word(rng).to_uppercase(),
            rng.below(0x10000),
            word(rng),
            rng.next() as u32,
            word(rng),
            1024 + rng.below(60000),
        );
    }
    s
}

/// SplitMix64: deterministic and fast.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Many objects

async fn many_objects(
    cfg: &Config,
    cp: &ControlPlane,
    client: &Client,
    table: &mut Table,
) -> anyhow::Result<()> {
    const NS: &str = "bench-c";
    const TAGS: u64 = 4;
    progress(&format!(
        "(c) {} objects, controller --concurrent={}",
        cfg.objects, cfg.concurrent
    ));
    namespace(client, NS).await?;
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = tempfile::tempdir()?;
    for t in 1..=TAGS {
        std::fs::write(
            content.path().join("deploy.yaml"),
            format!("kind: ConfigMap\nmetadata: {{name: v{t}}}\n"),
        )?;
        push(&reg, "bench/app", &format!("v{t}"), content.path());
    }
    let requests_before = registry_requests(&reg)?.len();
    let objects_before = api_writes(client, "ocirepositories").await?;
    let events_before = api_writes(client, "events").await?;

    let (ctl, startup) = start_controller(cfg, cp, NS)?;
    table.row(
        "c",
        "controller start-up: process spawn -> /readyz 200 (harness polls the pid at 100 ms)"
            .to_string(),
        format!("{:.0} ms", ms(startup)),
        "< 1 s",
        verdict(startup < Duration::from_secs(1)),
    );
    let api: Api<OciRepository> = Api::namespaced(client.clone(), NS);
    let url = format!("oci://{}/bench/app", reg.host());
    let t0 = Instant::now();
    create_objects(&api, "app-", cfg.objects, |i| {
        json!({
            "url": url,
            "interval": "10m",
            "insecure": true,
            "ref": {"tag": format!("v{}", i as u64 % TAGS + 1)},
        })
    })
    .await?;
    let created = t0.elapsed();
    progress(&format!(
        "(c) created {} objects in {:.1} s",
        cfg.objects,
        secs(created)
    ));
    let all_ready = all_ready(
        &ctl,
        &api,
        "app-",
        cfg.objects,
        t0,
        "(c)",
        Duration::from_secs(1800),
    )
    .await?;
    let (rss, hwm) = proc_memory(ctl.proc.pid())?;
    let requests = registry_requests(&reg)?;
    let requests = &requests[requests_before..];
    let count =
        |pred: &dyn Fn(&(String, String)) -> bool| requests.iter().filter(|r| pred(r)).count();
    let heads = count(&|(m, u)| m == "HEAD" && u.contains("/manifests/"));
    let gets = count(&|(m, u)| m == "GET" && u.contains("/manifests/"));
    let blobs = count(&|(m, u)| m == "GET" && u.contains("/blobs/"));
    let mut object_writes = api_writes(client, "ocirepositories").await? - objects_before;
    // The creates are the bench's own writes.
    if let Some(posts) = object_writes.0.get_mut("POST") {
        *posts = posts.saturating_sub(cfg.objects as u64);
    }
    object_writes.0.retain(|_, n| *n > 0);
    let event_writes = api_writes(client, "events").await? - events_before;
    let mut reasons = std::collections::BTreeMap::<String, i64>::new();
    for e in Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await?
    {
        let n = e.series.map_or(1, |s| i64::from(s.count));
        *reasons.entry(e.reason.unwrap_or_default()).or_default() += n;
    }

    table.row(
        "c",
        format!(
            "{} objects ({TAGS} tags, --concurrent={}): create -> all Ready",
            cfg.objects, cfg.concurrent
        ),
        format!(
            "{:.1} s ({:.0} objects/s; creating took {:.1} s)",
            secs(all_ready),
            cfg.objects as f64 / secs(all_ready),
            secs(created)
        ),
        "",
        Verdict::Info,
    );
    table.row(
        "c",
        format!("controller resident memory with {} objects", cfg.objects),
        format!(
            "VmRSS {:.1} MiB, VmHWM {:.1} MiB",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        ),
        "< 64 MiB",
        verdict(hwm < 64 * 1024),
    );
    table.row(
        "c",
        "registry requests to get them Ready".to_string(),
        format!(
            "{} ({heads} manifest HEAD, {gets} manifest GET, {blobs} blob GET)",
            requests.len()
        ),
        "",
        Verdict::Info,
    );
    let per_object = |w: &Writes| {
        format!(
            "{} ({:.1} per object: {})",
            w.total(),
            w.total() as f64 / cfg.objects as f64,
            w.describe()
        )
    };
    table.row(
        "c",
        "controller API writes to get them Ready: the objects".to_string(),
        per_object(&object_writes),
        "",
        Verdict::Info,
    );
    table.row(
        "c",
        "controller API writes to get them Ready: Events".to_string(),
        format!(
            "{}; recorded: {}",
            per_object(&event_writes),
            reasons
                .iter()
                .map(|(r, n)| format!("{r} x{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "",
        Verdict::Info,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (d) Failing neighbours

async fn failing_neighbours(
    cfg: &Config,
    cp: &ControlPlane,
    client: &Client,
    table: &mut Table,
) -> anyhow::Result<()> {
    progress(&format!(
        "(d) {} healthy objects alone, then behind {} failing ones, --concurrent=2",
        cfg.healthy, cfg.failing
    ));
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = tempfile::tempdir()?;
    std::fs::write(content.path().join("deploy.yaml"), "kind: ConfigMap\n")?;
    push(&reg, "bench/healthy", "v1", content.path());
    // A port that was free a moment ago: nothing listens there, so connections are refused.
    let dead = format!("127.0.0.1:{}", common::free_port());
    let failing: Vec<String> = (0..cfg.failing)
        .map(|i| {
            if i % 2 == 0 {
                format!("oci://{dead}/gone/app{i}")
            } else {
                format!("oci://registry-{i}.ocisource-bench.invalid/app")
            }
        })
        .collect();
    // Two interleaved pairs, so that neither side gets all the warm-up (first controller,
    // first pulls) or all of a load change on the shared machine.
    let (mut alone, mut beside) = (Vec::new(), Vec::new());
    for round in 1..=2 {
        let ns = format!("bench-d-alone-{round}");
        alone.push(healthy_ready_time(cfg, cp, client, &ns, &reg, &[]).await?);
        let ns = format!("bench-d-beside-{round}");
        beside.push(healthy_ready_time(cfg, cp, client, &ns, &reg, &failing).await?);
    }
    let mean = |v: &[Duration]| v.iter().map(|d| secs(*d)).sum::<f64>() / v.len() as f64;
    let list = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.1}", secs(*d)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ratio = mean(&beside) / mean(&alone);
    table.row(
        "d",
        format!(
            "{} healthy objects: create -> all Ready, alone / beside {} failing \
             (closed port, unresolvable host), --concurrent=2, 2 interleaved pairs",
            cfg.healthy, cfg.failing
        ),
        format!(
            "{:.1} s ({}) / {:.1} s ({}): {ratio:.2}x",
            mean(&alone),
            list(&alone),
            mean(&beside),
            list(&beside)
        ),
        "<= 1.5x",
        verdict(ratio <= 1.5),
    );
    Ok(())
}

/// Creates `failing` objects (one per URL), then the healthy ones on `reg`, in a new namespace
/// watched by a fresh controller at `--concurrent=2`; returns the time from the first healthy
/// create until every healthy object is Ready.
async fn healthy_ready_time(
    cfg: &Config,
    cp: &ControlPlane,
    client: &Client,
    ns: &str,
    reg: &Registry,
    failing: &[String],
) -> anyhow::Result<Duration> {
    namespace(client, ns).await?;
    let ctl = Controller::spawn(cp, &cfg.bin, ns, &["--concurrent=2"], ns);
    let t = Instant::now();
    while !ctl.ready() {
        ensure!(
            ctl.proc.is_running() && t.elapsed() < Duration::from_secs(60),
            "controller not ready:\n{}",
            ctl.proc.log_tail(4000)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let api: Api<OciRepository> = Api::namespaced(client.clone(), ns);
    let object = |name: String, url: &str, tag: &str| -> anyhow::Result<OciRepository> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": name},
            "spec": {"url": url, "interval": "10m", "insecure": true, "ref": {"tag": tag}},
        }))?)
    };
    for (i, url) in failing.iter().enumerate() {
        api.create(
            &PostParams::default(),
            &object(format!("failing-{i}"), url, "v1")?,
        )
        .await?;
    }
    let url = format!("oci://{}/bench/healthy", reg.host());
    let t0 = Instant::now();
    create_objects(
        &api,
        "healthy-",
        cfg.healthy,
        |_| json!({"url": url, "interval": "10m", "insecure": true, "ref": {"tag": "v1"}}),
    )
    .await?;
    all_ready(
        &ctl,
        &api,
        "healthy-",
        cfg.healthy,
        t0,
        "(d)",
        Duration::from_secs(900),
    )
    .await
}

fn proc_memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// Starts the release controller for `namespace` with the configured `--concurrent`; returns it
/// and the time from spawn to `/readyz` answering 200.
fn start_controller(
    cfg: &Config,
    cp: &ControlPlane,
    namespace: &str,
) -> anyhow::Result<(Controller, Duration)> {
    start_controller_at(cfg, cp, namespace, cfg.concurrent)
}

/// [`start_controller`] with `--concurrent={concurrent}`.
fn start_controller_at(
    cfg: &Config,
    cp: &ControlPlane,
    namespace: &str,
    concurrent: usize,
) -> anyhow::Result<(Controller, Duration)> {
    start_controller_with(cfg, cp, namespace, concurrent, &[])
}

/// [`start_controller_at`] with the `extra` flags too.
fn start_controller_with(
    cfg: &Config,
    cp: &ControlPlane,
    namespace: &str,
    concurrent: usize,
    extra: &[&str],
) -> anyhow::Result<(Controller, Duration)> {
    let concurrent = format!("--concurrent={concurrent}");
    let mut flags = vec![concurrent.as_str()];
    flags.extend_from_slice(extra);
    let t = Instant::now();
    let ctl = Controller::spawn(cp, &cfg.bin, namespace, &flags, "controller");
    while !ctl.ready() {
        ensure!(
            ctl.proc.is_running(),
            "controller exited:\n{}",
            ctl.proc.log_tail(4000)
        );
        ensure!(
            t.elapsed() < Duration::from_secs(60),
            "controller not ready after 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok((ctl, t.elapsed()))
}

/// Creates `count` OCIRepository objects `{prefix}{i:04}` in `api`'s namespace, 16 at a time,
/// with `spec(i)` as their spec.
async fn create_objects(
    api: &Api<OciRepository>,
    prefix: &str,
    count: usize,
    spec: impl Fn(usize) -> serde_json::Value,
) -> anyhow::Result<()> {
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let obj = serde_json::from_value::<OciRepository>(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "OCIRepository",
                "metadata": {"name": format!("{prefix}{i:04}")},
                "spec": spec(i),
            }));
            async move {
                api.create(&PostParams::default(), &obj?).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Waits until `objects` objects of `api` named `{prefix}...` are Ready, reporting progress
/// every 15 s; returns the time since `t0`.
async fn all_ready(
    ctl: &Controller,
    api: &Api<OciRepository>,
    prefix: &str,
    objects: usize,
    t0: Instant,
    section: &str,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let wait = Wait {
        section,
        what: "Ready",
        t0,
        timeout,
        poll: Duration::from_millis(250),
    };
    wait.until(ctl, api, objects, |o| {
        o.name_any().starts_with(prefix) && object_ready(o)
    })
    .await
}

/// How [`Wait::until`] waits: `section` and `what` name it in progress lines and errors.
struct Wait<'a> {
    section: &'a str,
    what: &'a str,
    t0: Instant,
    timeout: Duration,
    poll: Duration,
}

impl Wait<'_> {
    /// Lists `api` every `poll` until `objects` objects satisfy `done` (the controller must keep
    /// running), reporting progress every 15 s; returns the time since `t0`.
    async fn until(
        &self,
        ctl: &Controller,
        api: &Api<OciRepository>,
        objects: usize,
        done: impl Fn(&OciRepository) -> bool,
    ) -> anyhow::Result<Duration> {
        let (section, what) = (self.section, self.what);
        let mut last_report = Instant::now();
        loop {
            ensure!(
                ctl.proc.is_running(),
                "controller exited:\n{}",
                ctl.proc.log_tail(4000)
            );
            let list = api.list(&ListParams::default()).await?;
            let count = list.items.iter().filter(|o| done(o)).count();
            if count == objects {
                return Ok(self.t0.elapsed());
            }
            if last_report.elapsed() > Duration::from_secs(15) {
                progress(&format!(
                    "{section} {count}/{objects} {what} after {:.0} s",
                    secs(self.t0.elapsed())
                ));
                last_report = Instant::now();
            }
            ensure!(
                self.t0.elapsed() < self.timeout,
                "{section} only {count}/{objects} objects {what} after {:.0} s",
                secs(self.timeout)
            );
            tokio::time::sleep(self.poll).await;
        }
    }
}

async fn namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

fn push(reg: &Registry, repo: &str, tag: &str, content: &Path) -> String {
    tools::flux_push_artifact(
        reg,
        repo,
        tag,
        content,
        "https://example.com/bench",
        "main@sha1:0123456789abcdef",
        &[],
    )
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

// ---------------------------------------------------------------------------------------------
// The report

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Over,
    Info,
}

fn verdict(ok: bool) -> Verdict {
    if ok { Verdict::Ok } else { Verdict::Over }
}

#[derive(Default)]
struct Table {
    rows: Vec<(&'static str, String, String, String, Verdict)>,
}

impl Table {
    fn row(
        &mut self,
        section: &'static str,
        what: String,
        value: String,
        budget: &str,
        v: Verdict,
    ) {
        progress(&format!("({section}) {what}: {value}"));
        self.rows
            .push((section, what, value, budget.to_string(), v));
    }
}

fn print_report(cfg: &Config, table: &Table, load_start: &str, elapsed: Duration) {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, usize::from);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    println!();
    println!(
        "ocisource benchmark — commit {commit}{} — {}",
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        },
        Timestamp::now().strftime("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "machine: nproc {nproc}, {cpu}, {:.1} GiB RAM; load average {load_start} at start, {} at \
         end; total {:.0} s",
        mem as f64 / 1024.0 / 1024.0,
        loadavg(),
        secs(elapsed)
    );
    println!(
        "binary: {} ({}); controller --concurrent={}",
        cfg.bin.display(),
        if cfg.bin.components().any(|c| c.as_os_str() == "release") {
            "release"
        } else {
            "NOT a release build"
        },
        cfg.concurrent
    );
    let w1 = table
        .rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0);
    let w2 = table
        .rows
        .iter()
        .map(|r| r.2.chars().count())
        .max()
        .unwrap_or(0);
    let w3 = table
        .rows
        .iter()
        .map(|r| r.3.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    println!();
    println!(
        "    {:<w1$}  {:<w2$}  {:<w3$}  verdict",
        "measure", "value", "budget"
    );
    let mut section = "";
    for (s, what, value, budget, v) in &table.rows {
        if *s != section {
            section = s;
            let title = match *s {
                "a" => "(a) unchanged source",
                "b" => "(b) artifact pipeline",
                "c" => "(c) controller with many objects",
                "d" => "(d) failing neighbours",
                "e" => "(e) signature verification",
                "f" => "(f) one poll per repository",
                "g" => "(g) producer CLI against flux",
                "h" => "(h) side by side with source-controller",
                "i" => "(i) push to Ready (registry notifications)",
                _ => "(j) soak: resident memory over an hour of intervals",
            };
            println!("{title}");
        }
        let v = match v {
            Verdict::Ok => "ok",
            Verdict::Over => "OVER BUDGET",
            Verdict::Info => "",
        };
        println!("    {what:<w1$}  {value:<w2$}  {budget:<w3$}  {v}");
    }
    let over = table.rows.iter().filter(|r| r.4 == Verdict::Over).count();
    println!();
    println!(
        "{}",
        if over == 0 {
            "all budgets met".to_string()
        } else {
            format!("{over} measure(s) over budget")
        }
    );
}

fn git(args: &[&str]) -> String {
    Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
