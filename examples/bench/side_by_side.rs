//! (h) Side by side with Flux's source-controller: the same objects reconciled by each controller
//! alone, one after the other, on the same control plane and the same registry.
//!
//! For each size (`OCISOURCE_BENCH_SIDE_OBJECTS` × `OCISOURCE_BENCH_SIDE_REPOS`), each controller
//! gets a fresh namespace holding N new OCIRepository objects spread round-robin over R
//! repositories (each pushed once, before any controller runs, with its own small content and
//! one tag: R distinct artifacts), on a bearer-auth registry (a docker-config Secret in the namespace; the token server
//! counts the tokens it issues). The controller starts after its objects exist, with the same
//! `--concurrent` (`OCISOURCE_BENCH_SIDE_CONCURRENT`, 2: both controllers' default, which Flux's
//! install keeps) and otherwise its defaults, and is stopped once all are Ready. The order of the
//! two alternates from one size to the next, so that neither always runs first. Measured per
//! controller:
//! - controller spawn -> all Ready (a watch, not a list per poll, so that 10,000 objects cost the
//!   API server little beyond the controller's own work);
//! - CPU seconds (utime + stime of the process, `/proc/<pid>/stat`) and peak RSS (`VmHWM`) at
//!   all Ready;
//! - registry requests by kind, from the registry log (completed requests, and the warnings for
//!   requests refused with a 401 challenge), and the tokens the token server issued; blob `GET`s
//!   are the downloads;
//! - the artifact store on disk at all Ready: artifact names, distinct files (inodes) and their
//!   bytes (apparent and allocated), so that hard links count once;
//! - API writes per object by verb and resource, from the API server's audit log
//!   ([`ControlPlane::start_audited`]), counted by the controller's `userAgent` (ocisource sends
//!   `ocisource/v…`, source-controller client-go's `source-controller/…`), so the bench's own
//!   creates are not among them.
//!
//! Then (unless `OCISOURCE_BENCH_SIDE_RESTART=0`) the controller is restarted over the same
//! store and objects, all Ready, and measured until its `controller_runtime_reconcile_total`
//! counts one reconcile per object: the time, CPU, peak RSS, registry requests (downloads
//! among them) and API writes of a start-up.
//!
//! Objects get `interval: 60m`, so no second reconcile falls inside a measurement. Objects stay
//! behind when a run ends (their finalizers would need the stopped controller).
//!
//! `OCISOURCE_BENCH_SIDE_ONLY=ocisource` (or `source-controller`) runs that controller alone, for
//! investigations: its figures are in the progress lines, and the report gets no row.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead as _, BufReader, Seek as _, SeekFrom};

use super::common::Proc;
use super::common::flux_controller::{self, FluxController, Kind};
use futures::StreamExt as _;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;

use super::*;

/// The two controllers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Ocisource,
    SourceController,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Ocisource => "ocisource",
            Which::SourceController => "source-controller",
        }
    }

    /// How the controller's API requests begin their `User-Agent`.
    fn agent_prefix(self) -> &'static str {
        match self {
            Which::Ocisource => "ocisource/",
            Which::SourceController => "source-controller/",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Which::Ocisource => "ours",
            Which::SourceController => "flux",
        }
    }
}

/// What one controller spent on one size.
struct Run {
    ready: Duration,
    cpu: Duration,
    hwm_kib: u64,
    requests: Requests,
    writes: Writes,
    disk: Disk,
    restart: Option<Restart>,
}

/// What a restart over the same store and Ready objects cost until each was reconciled once.
struct Restart {
    reconciled: Duration,
    cpu: Duration,
    hwm_kib: u64,
    requests: Requests,
    writes: Writes,
}

/// The running controller of a run.
enum Running {
    Ours(super::common::controller::Controller),
    Flux(FluxController),
}

impl Running {
    fn proc(&self) -> &Proc {
        match self {
            Running::Ours(c) => &c.proc,
            Running::Flux(f) => &f.proc,
        }
    }

    fn metrics_port(&self) -> u16 {
        match self {
            Running::Ours(c) => c.metrics_port,
            Running::Flux(f) => f.metrics_port,
        }
    }

    fn store(&self) -> anyhow::Result<&Path> {
        match self {
            Running::Ours(c) => Ok(c.storage.path()),
            Running::Flux(f) => Ok(f
                .store
                .as_ref()
                .context("(h) source-controller without a store")?
                .dir
                .path()),
        }
    }

    /// Stops the process and starts the same controller over the same store.
    fn restart(self, cfg: &Config, cp: &ControlPlane, ns: &str) -> Running {
        let concurrent = format!("--concurrent={}", cfg.side_concurrent);
        match self {
            Running::Ours(c) => Running::Ours(c.restart(
                cp.kubeconfig_path(),
                &cfg.bin,
                ns,
                &[&concurrent],
                "controller",
            )),
            Running::Flux(f) => {
                let FluxController { proc, store, .. } = f;
                drop(proc);
                Running::Flux(FluxController::start_in(
                    cp,
                    Kind::Source,
                    ns,
                    &[&concurrent],
                    store,
                ))
            }
        }
    }
}

/// The artifact store on disk.
#[derive(Clone, Copy, Debug, Default)]
struct Disk {
    /// Regular files named `*.tar.gz` (every object's artifact, and shared entries).
    names: u64,
    /// Distinct files (device and inode) among them.
    files: u64,
    /// Their sizes, each file once.
    bytes: u64,
    /// Their allocated blocks, each file once.
    allocated: u64,
}

impl Disk {
    fn of(root: &Path) -> anyhow::Result<Disk> {
        use std::os::unix::fs::MetadataExt as _;
        let mut disk = Disk::default();
        let mut seen = HashSet::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let meta = entry.metadata()?;
                if meta.is_dir() {
                    dirs.push(entry.path());
                } else if meta.is_file() && entry.file_name().to_string_lossy().ends_with(".tar.gz")
                {
                    disk.names += 1;
                    if seen.insert((meta.dev(), meta.ino())) {
                        disk.files += 1;
                        disk.bytes += meta.len();
                        disk.allocated += meta.blocks() * 512;
                    }
                }
            }
        }
        Ok(disk)
    }

    fn describe(&self) -> String {
        format!(
            "{} artifact names, {} files, {:.1} KiB ({:.1} KiB allocated)",
            self.names,
            self.files,
            self.bytes as f64 / 1024.0,
            self.allocated as f64 / 1024.0
        )
    }
}

/// Registry requests by kind.
#[derive(Clone, Copy, Debug, Default)]
struct Requests {
    manifest_head: u64,
    manifest_get: u64,
    blob_get: u64,
    tags: u64,
    /// Requests refused with 401 and a `WWW-Authenticate` challenge (the `/v2/` ping among them).
    challenges: u64,
    token: u64,
    other: u64,
}

impl Requests {
    fn total(&self) -> u64 {
        self.manifest_head
            + self.manifest_get
            + self.blob_get
            + self.tags
            + self.challenges
            + self.token
            + self.other
    }

    fn describe(&self) -> String {
        format!(
            "{} ({} manifest HEAD, {} manifest GET, {} blob GET, {} tag list, {} 401 challenge, \
             {} token, {} other)",
            self.total(),
            self.manifest_head,
            self.manifest_get,
            self.blob_get,
            self.tags,
            self.challenges,
            self.token,
            self.other
        )
    }

    /// Sorts `(method, uri)` registry log entries by kind; challenges and tokens are counted
    /// apart.
    fn classify(requests: &[(String, String)], challenges: u64, token: u64) -> Requests {
        let mut r = Requests {
            challenges,
            token,
            ..Requests::default()
        };
        for (method, uri) in requests {
            let path = uri.split('?').next().unwrap_or_default();
            match method.as_str() {
                "HEAD" if path.contains("/manifests/") => r.manifest_head += 1,
                "GET" if path.contains("/manifests/") => r.manifest_get += 1,
                "GET" if path.contains("/blobs/") => r.blob_get += 1,
                "GET" if path.ends_with("/tags/list") => r.tags += 1,
                _ => r.other += 1,
            }
        }
        r
    }
}

pub(super) async fn side_by_side(
    cfg: &Config,
    cp: &ControlPlane,
    client: &Client,
    table: &mut Table,
) -> anyhow::Result<()> {
    let audit = cp
        .audit_log_path()
        .context("(h) needs a control plane started with an audit log")?;
    // source-controller needs every source kind it serves; ours is Flux's OCIRepository CRD.
    flux_controller::install_crds(client, Kind::Source).await;
    let max_repos = cfg.side_repos.iter().copied().max().unwrap_or(1);
    progress(&format!(
        "(h) ocisource beside source-controller: objects {:?} x repositories {:?}, \
         --concurrent={}; pushing {max_repos} repositories",
        cfg.side_objects, cfg.side_repos, cfg.side_concurrent
    ));
    let reg = Registry::start(Flavor::Distribution, Security::Bearer);
    let t = Instant::now();
    // Four pushes at a time: a thousand repositories would otherwise take a quarter of an hour.
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let r = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if r >= max_repos {
                            return Ok(());
                        }
                        let content = tempfile::tempdir()?;
                        std::fs::write(
                            content.path().join("deploy.yaml"),
                            format!("kind: ConfigMap\nmetadata:\n  name: side-{r:04}\n"),
                        )?;
                        push(&reg, &repository(r), "v1", content.path());
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("(h) a push thread panicked"))??;
        }
        Ok(())
    })?;
    progress(&format!(
        "(h) pushed {max_repos} repositories in {:.1} s",
        secs(t.elapsed())
    ));

    let only = std::env::var("OCISOURCE_BENCH_SIDE_ONLY").ok();
    let mut size = 0;
    for &objects in &cfg.side_objects {
        for &repos in &cfg.side_repos {
            let order = if size % 2 == 0 {
                [Which::Ocisource, Which::SourceController]
            } else {
                [Which::SourceController, Which::Ocisource]
            };
            size += 1;
            let mut runs = BTreeMap::new();
            for which in order {
                if only.as_deref().is_some_and(|o| o != which.name()) {
                    continue;
                }
                let run = run(cfg, cp, client, &reg, &audit, which, objects, repos).await?;
                runs.insert(which.short(), run);
            }
            let (Some(ours), Some(flux)) = (runs.get("ours"), runs.get("flux")) else {
                if only.is_some() {
                    continue;
                }
                bail!("(h) a controller's run is missing");
            };
            report(cfg, table, objects, repos, ours, flux);
        }
    }
    Ok(())
}

fn repository(r: usize) -> String {
    format!("bench/side-{r:04}")
}

/// One controller alone on `objects` new objects over `repos` repositories.
#[allow(clippy::too_many_arguments)]
async fn run(
    cfg: &Config,
    cp: &ControlPlane,
    client: &Client,
    reg: &Registry,
    audit: &Path,
    which: Which,
    objects: usize,
    repos: usize,
) -> anyhow::Result<Run> {
    let ns = format!("bench-h-{objects}x{repos}-{}", which.short());
    progress(&format!(
        "(h) {}: {objects} objects on {repos} repositories in {ns}",
        which.name()
    ));
    namespace(client, &ns).await?;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "registry"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": reg.docker_config_json()},
    }))?;
    Api::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await?;
    let api: Api<OciRepository> = Api::namespaced(client.clone(), &ns);
    let host = reg.host();
    let t = Instant::now();
    create_objects(&api, "side-", objects, |i| {
        json!({
            "url": format!("oci://{host}/{}", repository(i % repos)),
            "interval": "60m",
            "insecure": true,
            "secretRef": {"name": "registry"},
            "ref": {"tag": "v1"},
        })
    })
    .await?;
    progress(&format!(
        "(h) created {objects} objects in {:.1} s",
        secs(t.elapsed())
    ));

    let requests_before = registry_requests(reg)?.len();
    let challenges_before = registry_challenges(reg)?;
    let tokens_before = reg.token_requests();
    let audit_from = std::fs::metadata(audit).map_or(0, |m| m.len());
    let concurrent = format!("--concurrent={}", cfg.side_concurrent);
    // A watch begins with a list, so polling it first once the controller is up misses nothing.
    let watch = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    let t0 = Instant::now();
    let running = match which {
        Which::Ocisource => {
            Running::Ours(start_controller_at(cfg, cp, &ns, cfg.side_concurrent)?.0)
        }
        Which::SourceController => Running::Flux(FluxController::start_with(
            cp,
            Kind::Source,
            &ns,
            &[&concurrent],
        )),
    };
    let proc = running.proc();
    let ready = watch_ready(watch, proc, objects, t0, Duration::from_secs(3600)).await?;
    let cpu = cpu_time(proc.pid())?;
    let (_, hwm_kib) = proc_memory(proc.pid())?;
    let disk = Disk::of(running.store()?)?;

    let requests = &registry_requests(reg)?[requests_before..];
    let tokens = reg.token_requests().saturating_sub(tokens_before) as u64;
    let challenges = registry_challenges(reg)? - challenges_before;
    let requests = Requests::classify(requests, challenges, tokens);
    let (writes, agents) = audit_writes(audit, audit_from, which.agent_prefix())?;
    progress(&format!(
        "(h) {}: all Ready in {:.1} s, CPU {:.2} s, VmHWM {:.1} MiB; registry {}; disk {}; API \
         writes {} (user agents {})",
        which.name(),
        secs(ready),
        secs(cpu),
        hwm_kib as f64 / 1024.0,
        requests.describe(),
        disk.describe(),
        writes.describe(),
        agents.iter().cloned().collect::<Vec<_>>().join(", ")
    ));
    ensure!(
        writes.total() > 0,
        "(h) no audit event of {} matched the user agent {:?}: is the prefix right?",
        which.name(),
        which.agent_prefix()
    );
    let restart = if cfg.side_restart {
        Some(restart(cfg, cp, reg, audit, which, &ns, objects, running).await?)
    } else {
        None
    };
    Ok(Run {
        ready,
        cpu,
        hwm_kib,
        requests,
        writes,
        disk,
        restart,
    })
}

/// Restarts the controller over its store and Ready objects and measures it until each object
/// was reconciled once.
#[allow(clippy::too_many_arguments)]
async fn restart(
    cfg: &Config,
    cp: &ControlPlane,
    reg: &Registry,
    audit: &Path,
    which: Which,
    ns: &str,
    objects: usize,
    running: Running,
) -> anyhow::Result<Restart> {
    let requests_before = registry_requests(reg)?.len();
    let challenges_before = registry_challenges(reg)?;
    let tokens_before = reg.token_requests();
    let audit_from = std::fs::metadata(audit).map_or(0, |m| m.len());
    let t0 = Instant::now();
    let running = running.restart(cfg, cp, ns);
    let url = format!("http://127.0.0.1:{}/metrics", running.metrics_port());
    let http = reqwest::Client::new();
    loop {
        ensure!(
            running.proc().is_running(),
            "(h) {} exited after its restart:\n{}",
            which.name(),
            running.proc().log_tail(4000)
        );
        ensure!(
            t0.elapsed() < Duration::from_secs(3600),
            "(h) {} did not reconcile {objects} objects within an hour of its restart",
            which.name()
        );
        let text = match http.get(&url).send().await {
            Ok(resp) => resp.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if reconciles(&text) >= objects as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reconciled = t0.elapsed();
    let proc = running.proc();
    let cpu = cpu_time(proc.pid())?;
    let (_, hwm_kib) = proc_memory(proc.pid())?;
    drop(running);
    let requests = &registry_requests(reg)?[requests_before..];
    let tokens = reg.token_requests().saturating_sub(tokens_before) as u64;
    let challenges = registry_challenges(reg)? - challenges_before;
    let requests = Requests::classify(requests, challenges, tokens);
    let (writes, _) = audit_writes(audit, audit_from, which.agent_prefix())?;
    progress(&format!(
        "(h) {} restarted: {objects} objects reconciled in {:.1} s, CPU {:.2} s, VmHWM {:.1} MiB; \
         registry {}; API writes {}",
        which.name(),
        secs(reconciled),
        secs(cpu),
        hwm_kib as f64 / 1024.0,
        requests.describe(),
        writes.describe(),
    ));
    Ok(Restart {
        reconciled,
        cpu,
        hwm_kib,
        requests,
        writes,
    })
}

/// The sum of `controller_runtime_reconcile_total{controller="ocirepository",…}` in a metrics
/// text (every result counts).
pub(super) fn reconciles(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("controller_runtime_reconcile_total{")
                && l.contains("controller=\"ocirepository\"")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Follows `watch` until `objects` objects are Ready; returns the time since `t0`.
async fn watch_ready(
    mut watch: futures::stream::BoxStream<
        'static,
        Result<watcher::Event<OciRepository>, watcher::Error>,
    >,
    proc: &Proc,
    objects: usize,
    t0: Instant,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let mut ready = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_report = Instant::now();
    loop {
        tokio::select! {
            event = watch.next() => match event {
                Some(Ok(
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o),
                )) => {
                    if object_ready(&o) {
                        ready.insert(o.name_any());
                    } else {
                        ready.remove(&o.name_any());
                    }
                    if ready.len() >= objects {
                        return Ok(t0.elapsed());
                    }
                }
                Some(Ok(watcher::Event::Delete(o))) => {
                    ready.remove(&o.name_any());
                }
                Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {}
                Some(Err(e)) => progress(&format!("(h) watch error, retrying: {e}")),
                None => bail!("(h) the watch ended"),
            },
            _ = tick.tick() => {
                ensure!(
                    proc.is_running(),
                    "controller exited:\n{}",
                    proc.log_tail(4000)
                );
                ensure!(
                    t0.elapsed() < timeout,
                    "(h) only {}/{objects} objects Ready after {:.0} s",
                    ready.len(),
                    secs(timeout)
                );
                if last_report.elapsed() > Duration::from_secs(15) {
                    progress(&format!(
                        "(h) {}/{objects} Ready after {:.0} s",
                        ready.len(),
                        secs(t0.elapsed())
                    ));
                    last_report = Instant::now();
                }
            }
        }
    }
}

/// Requests the registry refused for want of a token so far. distribution logs "response
/// completed" only for 2xx and 3xx answers (what [`registry_requests`] reads); a request without
/// a valid token gets a warning instead.
fn registry_challenges(reg: &Registry) -> anyhow::Result<u64> {
    let log = std::fs::read_to_string(reg.dir().join("registry.log"))?;
    Ok(log
        .lines()
        .filter(|l| l.contains("error authorizing context"))
        .count() as u64)
}

/// User + system CPU time of a running process, all threads, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces; fields 14 and 15
    // (utime, stime) are the 12th and 13th after it.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc/<pid>/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no field {} in /proc/{pid}/stat", i + 3))
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks()))
}

/// `sysconf(_SC_CLK_TCK)`, from `getconf` (100 on Linux unless it says otherwise).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// Write events of the audit log from byte `from` on whose `userAgent` starts with `prefix`,
/// by `"<verb> <resource>[/<subresource>]"` (and the status code when not 2xx); and the user
/// agents that matched.
fn audit_writes(
    path: &Path,
    from: u64,
    prefix: &str,
) -> anyhow::Result<(Writes, BTreeSet<String>)> {
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    file.seek(SeekFrom::Start(from))?;
    let mut writes = Writes::default();
    let mut agents = BTreeSet::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let agent = event["userAgent"].as_str().unwrap_or_default();
        if event["stage"] != "ResponseComplete" || !agent.starts_with(prefix) {
            continue;
        }
        agents.insert(agent.to_string());
        let verb = event["verb"].as_str().unwrap_or("?");
        let object = &event["objectRef"];
        let mut resource = object["resource"].as_str().unwrap_or("?").to_string();
        if let Some(sub) = object["subresource"].as_str() {
            resource = format!("{resource}/{sub}");
        }
        let code = event["responseStatus"]["code"].as_u64().unwrap_or(0);
        let key = if (200..300).contains(&code) {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource} (HTTP {code})")
        };
        *writes.0.entry(key).or_default() += 1;
    }
    Ok((writes, agents))
}

fn ratio(ours: f64, theirs: f64) -> String {
    if theirs > 0.0 {
        format!("{:.2}x", ours / theirs)
    } else {
        "n/a".to_string()
    }
}

fn report(cfg: &Config, table: &mut Table, objects: usize, repos: usize, ours: &Run, flux: &Run) {
    let what = |m: &str| format!("{objects} objects / {repos} repos: {m}");
    let n = objects as f64;
    table.row(
        "h",
        what(&format!(
            "controller spawn -> all Ready (--concurrent={})",
            cfg.side_concurrent
        )),
        format!(
            "ocisource {:.1} s, source-controller {:.1} s: {}",
            secs(ours.ready),
            secs(flux.ready),
            ratio(secs(ours.ready), secs(flux.ready))
        ),
        "",
        Verdict::Info,
    );
    table.row(
        "h",
        what("CPU seconds at all Ready"),
        format!(
            "ocisource {:.2} s, source-controller {:.2} s: {}",
            secs(ours.cpu),
            secs(flux.cpu),
            ratio(secs(ours.cpu), secs(flux.cpu))
        ),
        "",
        Verdict::Info,
    );
    let memory = ours.hwm_kib as f64 / flux.hwm_kib.max(1) as f64;
    // Issue 11 §6 sets the memory budget at 10,000 objects.
    let (budget, v) = if objects >= 10_000 {
        ("< 0.25x", verdict(memory < 0.25))
    } else {
        ("", Verdict::Info)
    };
    table.row(
        "h",
        what("peak RSS (VmHWM) at all Ready"),
        format!(
            "ocisource {:.1} MiB, source-controller {:.1} MiB: {}",
            ours.hwm_kib as f64 / 1024.0,
            flux.hwm_kib as f64 / 1024.0,
            ratio(ours.hwm_kib as f64, flux.hwm_kib as f64)
        ),
        budget,
        v,
    );
    table.row(
        "h",
        what("registry requests"),
        format!(
            "ocisource {}; source-controller {}: {}",
            ours.requests.describe(),
            flux.requests.describe(),
            ratio(ours.requests.total() as f64, flux.requests.total() as f64)
        ),
        "",
        Verdict::Info,
    );
    table.row(
        "h",
        what("layer downloads (blob GETs)"),
        format!(
            "ocisource {}, source-controller {}: {}",
            ours.requests.blob_get,
            flux.requests.blob_get,
            ratio(ours.requests.blob_get as f64, flux.requests.blob_get as f64)
        ),
        "",
        Verdict::Info,
    );
    table.row(
        "h",
        what("artifact store on disk at all Ready"),
        format!(
            "ocisource {}; source-controller {}: {} of the bytes",
            ours.disk.describe(),
            flux.disk.describe(),
            ratio(ours.disk.allocated as f64, flux.disk.allocated as f64)
        ),
        "",
        Verdict::Info,
    );
    if let (Some(o), Some(f)) = (&ours.restart, &flux.restart) {
        table.row(
            "h",
            what("restart over the same store: each Ready object reconciled once"),
            format!(
                "ocisource {:.1} s, CPU {:.2} s, VmHWM {:.1} MiB, {} downloads, registry {}, {} API \
                 writes; source-controller {:.1} s, CPU {:.2} s, VmHWM {:.1} MiB, {} downloads, \
                 registry {}, {} API writes: {} of the time",
                secs(o.reconciled),
                secs(o.cpu),
                o.hwm_kib as f64 / 1024.0,
                o.requests.blob_get,
                o.requests.total(),
                o.writes.total(),
                secs(f.reconciled),
                secs(f.cpu),
                f.hwm_kib as f64 / 1024.0,
                f.requests.blob_get,
                f.requests.total(),
                f.writes.total(),
                ratio(secs(o.reconciled), secs(f.reconciled))
            ),
            "0 downloads, 0 writes",
            verdict(o.requests.blob_get == 0 && o.writes.total() == 0),
        );
    }
    let per_object = |w: &Writes| {
        let parts: Vec<String> =
            w.0.iter()
                .map(|(k, c)| format!("{:.2} {k}", *c as f64 / n))
                .collect();
        format!("{:.2} ({})", w.total() as f64 / n, parts.join(", "))
    };
    table.row(
        "h",
        what("API writes per object"),
        format!(
            "ocisource {}; source-controller {}: {}",
            per_object(&ours.writes),
            per_object(&flux.writes),
            ratio(ours.writes.total() as f64, flux.writes.total() as f64)
        ),
        "",
        Verdict::Info,
    );
}
