//! (j) Soak: whether anything grows per reconcile, and whether the work queue is fair.
//! `OCISOURCE_BENCH_SOAK_OBJECTS` objects on 10 repositories (a bearer-auth registry, a
//! docker-config Secret) with an `OCISOURCE_BENCH_SOAK_INTERVAL`-second interval, reconciled by
//! the release controller (`--concurrent` of (h)) for `OCISOURCE_BENCH_SOAK_WARMUP` minutes of
//! warm-up and then `OCISOURCE_BENCH_SOAK_MINUTES` minutes, after all are Ready. Every ten
//! minutes one repository gets a new revision, so downloads, garbage collection and the shared
//! store's sweep run too. The controller's resident memory (`VmRSS`) and its reconcile count
//! (`controller_runtime_reconcile_total`) are sampled every minute; the baseline is the sample at
//! the end of the warm-up, when the bounded caches (remembered events, shared answers, metric
//! series) have filled (the first sample one interval after all were Ready is printed too).
//!
//! Fairness comes from the controller's log: each reconcile logs a `reconciled` line with the
//! object's name. For every object, the longest time between two of its reconciles (and from its
//! last one to the end of the soak) must stay within one interval (plus the controller's default
//! 5% jitter) plus the queue drain time, measured as the time from the controller's start to all
//! Ready, when every object had to wait its turn in one full queue. The same figures for the gaps
//! that ended after the warm-up show the steady state.

use super::*;

pub(super) async fn soak(
    cfg: &Config,
    cp: &ControlPlane,
    client: &Client,
    table: &mut Table,
) -> anyhow::Result<()> {
    const REPOS: usize = 10;
    let (objects, interval, minutes) = (cfg.soak_objects, cfg.soak_interval, cfg.soak_minutes);
    progress(&format!(
        "(j) soak: {objects} objects on {REPOS} repositories, interval {}s, {minutes} min",
        interval.as_secs()
    ));
    let reg = Registry::start(Flavor::Distribution, Security::Bearer);
    let content = tempfile::tempdir()?;
    let write = |repo: usize, round: usize| {
        std::fs::write(
            content.path().join("deploy.yaml"),
            format!("kind: ConfigMap\nmetadata:\n  name: soak-{repo}-{round}\n"),
        )
    };
    let repository = |r: usize| format!("bench/soak-{r}");
    for r in 0..REPOS {
        write(r, 0)?;
        push(&reg, &repository(r), "v1", content.path());
    }
    let ns = "bench-j-soak";
    namespace(client, ns).await?;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "registry"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": reg.docker_config_json()},
    }))?;
    Api::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await?;
    let api: Api<OciRepository> = Api::namespaced(client.clone(), ns);
    let host = reg.host();
    let every = format!("{}s", interval.as_secs());
    create_objects(&api, "soak-", objects, |i| {
        json!({
            "url": format!("oci://{host}/{}", repository(i % REPOS)),
            "interval": every,
            "insecure": true,
            "secretRef": {"name": "registry"},
            "ref": {"tag": "v1"},
        })
    })
    .await?;
    let spawned = Instant::now();
    let (ctl, _) = start_controller_at(cfg, cp, ns, cfg.side_concurrent)?;
    let drain = all_ready(
        &ctl,
        &api,
        "soak-",
        objects,
        spawned,
        "(j)",
        Duration::from_secs(3600),
    )
    .await?;
    progress(&format!(
        "(j) all Ready {:.1} s after the controller's start (the queue drain time)",
        drain.as_secs_f64()
    ));

    let pid = ctl.proc.pid();
    let start = Instant::now();
    let warmup = cfg.soak_warmup;
    let mut samples: Vec<(Duration, u64, u64)> = Vec::new();
    let mut pushes = 0;
    let mut steady_from = Timestamp::now();
    for minute in 1..=warmup + minutes {
        let due = start + Duration::from_secs(60 * minute as u64);
        while Instant::now() < due {
            ensure!(
                ctl.proc.is_running(),
                "(j) controller exited:\n{}",
                ctl.proc.log_tail(4000)
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if minute % 10 == 0 {
            pushes += 1;
            let r = pushes % REPOS;
            write(r, pushes)?;
            push(&reg, &repository(r), "v1", content.path());
        }
        let (rss, _) = proc_memory(pid)?;
        let reconciles = side_by_side::reconciles(&ctl.metrics().await);
        progress(&format!(
            "(j) minute {minute}{}: VmRSS {:.1} MiB, {reconciles} reconciles",
            if minute <= warmup { " (warm-up)" } else { "" },
            rss as f64 / 1024.0
        ));
        samples.push((start.elapsed(), rss, reconciles));
        if minute == warmup {
            steady_from = Timestamp::now();
        }
    }
    let (_, hwm) = proc_memory(pid)?;
    let mut ctl = ctl;
    ctl.proc.stop();
    let fair = Fairness::read(ctl.proc.log_path(), "soak-", steady_from, Timestamp::now())?;
    drop(ctl);

    let first = samples
        .iter()
        .find(|(at, _, _)| *at >= interval)
        .or(samples.first())
        .context("(j) no sample")?;
    let baseline = if warmup == 0 {
        first
    } else {
        samples.get(warmup - 1).context("(j) no sample")?
    };
    let last = samples.last().context("(j) no sample")?;
    let max = samples[warmup.saturating_sub(1)..]
        .iter()
        .map(|s| s.1)
        .max()
        .unwrap_or_default();
    let reconciles = last.2.saturating_sub(baseline.2);
    let growth = last.1 as f64 - baseline.1 as f64;
    let per_thousand = if reconciles > 0 {
        growth / (reconciles as f64 / 1000.0)
    } else {
        0.0
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    table.row(
        "j",
        format!(
            "VmRSS over {minutes} min of {}s intervals after {warmup} min of warm-up, {objects} \
             objects, {pushes} new revisions",
            interval.as_secs()
        ),
        format!(
            "{:.1} MiB one interval after all Ready, {:.1} MiB after the warm-up, {:.1} MiB at \
             the end ({:+.1} MiB over {reconciles} reconciles, {per_thousand:+.1} KiB per \
             1,000), max {:.1} MiB, VmHWM {:.1} MiB",
            mib(first.1),
            mib(baseline.1),
            mib(last.1),
            growth / 1024.0,
            mib(max),
            mib(hwm)
        ),
        "end within 5% of the baseline",
        verdict(last.1 as f64 <= baseline.1 as f64 * 1.05),
    );
    let bound = interval.mul_f64(1.0 + f64::from(JITTER_PERCENT) / 100.0) + drain;
    table.row(
        "j",
        format!(
            "longest time between two reconciles of one object, {objects} objects, {}s \
             interval, queue drain {:.1} s",
            interval.as_secs(),
            drain.as_secs_f64()
        ),
        format!(
            "max {:.1} s ({}), p99 {:.1} s, median {:.1} s; after the warm-up max {:.1} s, p99 \
             {:.1} s; {} reconciles of {} objects logged",
            fair.max.as_secs_f64(),
            fair.worst,
            fair.p99.as_secs_f64(),
            fair.median.as_secs_f64(),
            fair.steady_max.as_secs_f64(),
            fair.steady_p99.as_secs_f64(),
            fair.reconciles,
            fair.objects
        ),
        &format!(
            "≤ {:.1} s (interval + {JITTER_PERCENT}% jitter + drain)",
            bound.as_secs_f64()
        ),
        verdict(fair.objects == objects && fair.max <= bound),
    );
    Ok(())
}

/// The controller's default `--interval-jitter-percentage`.
const JITTER_PERCENT: u8 = 5;

/// The gaps between consecutive reconciles of each object, from a controller's console log.
struct Fairness {
    /// Objects with at least one reconcile.
    objects: usize,
    /// `reconciled` lines.
    reconciles: usize,
    /// The longest gap, and the object that had it.
    max: Duration,
    worst: String,
    p99: Duration,
    median: Duration,
    /// The longest gap and the 99th percentile of those that ended after the warm-up.
    steady_max: Duration,
    steady_p99: Duration,
}

impl Fairness {
    /// Reads the `reconciled` lines of objects named `prefix…` in the log at `path`; the time
    /// from each object's last reconcile to `end` counts as a gap too; `steady_from` is the end
    /// of the warm-up.
    fn read(
        path: &Path,
        prefix: &str,
        steady_from: Timestamp,
        end: Timestamp,
    ) -> anyhow::Result<Fairness> {
        use std::collections::HashMap;
        use std::io::BufRead as _;
        let file = File::open(path).with_context(|| format!("(j) {}", path.display()))?;
        let mut last: HashMap<String, Timestamp> = HashMap::new();
        let mut gaps: Vec<(Duration, String)> = Vec::new();
        let mut steady: Vec<Duration> = Vec::new();
        let mut reconciles = 0;
        for line in std::io::BufReader::new(file).lines() {
            let line = strip_ansi(&line?);
            let Some((at, name)) = reconciled(&line) else {
                continue;
            };
            if !name.starts_with(prefix) {
                continue;
            }
            reconciles += 1;
            if let Some(previous) = last.insert(name.to_string(), at) {
                gaps.push((span(previous, at), name.to_string()));
                if at >= steady_from {
                    steady.push(span(previous, at));
                }
            }
        }
        for (name, at) in &last {
            gaps.push((span(*at, end), name.clone()));
            steady.push(span(*at, end));
        }
        gaps.sort_by_key(|(gap, _)| *gap);
        steady.sort();
        let (max, worst) = gaps.last().cloned().unwrap_or_default();
        let all: Vec<Duration> = gaps.iter().map(|(gap, _)| *gap).collect();
        Ok(Fairness {
            objects: last.len(),
            reconciles,
            max,
            worst,
            p99: quantile(&all, 0.99),
            median: quantile(&all, 0.5),
            steady_max: steady.last().copied().unwrap_or_default(),
            steady_p99: quantile(&steady, 0.99),
        })
    }
}

/// The time and object name of a `reconciled` line of the console log:
/// `<RFC 3339 time>  INFO <target>: reconciled name=<name> namespace=… …`.
fn reconciled(line: &str) -> Option<(Timestamp, &str)> {
    let (at, rest) = line.split_once(' ')?;
    let (_, fields) = rest.split_once(": reconciled ")?;
    let name = fields
        .split_whitespace()
        .find_map(|field| field.strip_prefix("name="))?;
    Some((at.parse().ok()?, name))
}

/// The `q` quantile of `sorted`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn span(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or_default()
}

/// `line` without ANSI colour sequences (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coloured_reconciled_line_gives_its_time_and_name() {
        let line = "\u{1b}[2m2026-12-05T09:35:01.234567Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \
                    \u{1b}[2mocisource::k8s::controller\u{1b}[0m\u{1b}[2m:\u{1b}[0m reconciled \
                    \u{1b}[3mname\u{1b}[0m\u{1b}[2m=\u{1b}[0msoak-0001 \
                    \u{1b}[3mnamespace\u{1b}[0m\u{1b}[2m=\u{1b}[0mbench-j-soak";
        let line = strip_ansi(line);
        let (at, name) = reconciled(&line).unwrap();
        assert_eq!(name, "soak-0001");
        assert_eq!(
            at,
            "2026-12-05T09:35:01.234567Z".parse::<Timestamp>().unwrap()
        );
        assert!(reconciled("2026-12-05T09:35:01Z  WARN x: reconcile failed name=a").is_none());
    }
}
