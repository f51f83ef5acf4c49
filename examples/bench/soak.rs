//! (j) Soak: whether anything grows per reconcile. `OCISOURCE_BENCH_SOAK_OBJECTS` objects on 10
//! repositories (a bearer-auth registry, a docker-config Secret) with an
//! `OCISOURCE_BENCH_SOAK_INTERVAL`-second interval, reconciled by the release controller
//! (`--concurrent` of (h)) for `OCISOURCE_BENCH_SOAK_MINUTES` minutes after all are Ready. Every
//! ten minutes one repository gets a new revision, so downloads, garbage collection and the
//! shared store's sweep run too. The controller's resident memory (`VmRSS`) and its reconcile
//! count (`controller_runtime_reconcile_total`) are sampled every minute; the baseline is the
//! first sample one interval after all were Ready, when every object has had its first interval
//! reconcile.

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
    let (ctl, _) = start_controller_at(cfg, cp, ns, cfg.side_concurrent)?;
    all_ready(
        &ctl,
        &api,
        "soak-",
        objects,
        Instant::now(),
        "(j)",
        Duration::from_secs(3600),
    )
    .await?;

    let pid = ctl.proc.pid();
    let start = Instant::now();
    let mut samples: Vec<(Duration, u64, u64)> = Vec::new();
    let mut pushes = 0;
    for minute in 1..=minutes {
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
            "(j) minute {minute}: VmRSS {:.1} MiB, {reconciles} reconciles",
            rss as f64 / 1024.0
        ));
        samples.push((start.elapsed(), rss, reconciles));
    }
    let (_, hwm) = proc_memory(pid)?;
    drop(ctl);

    let baseline = samples
        .iter()
        .find(|(at, _, _)| *at >= interval)
        .or(samples.first())
        .context("(j) no sample")?;
    let last = samples.last().context("(j) no sample")?;
    let max = samples.iter().map(|s| s.1).max().unwrap_or_default();
    let reconciles = last.2.saturating_sub(baseline.2);
    let growth = last.1 as f64 - baseline.1 as f64;
    let per_thousand = if reconciles > 0 {
        growth / (reconciles as f64 / 1000.0)
    } else {
        0.0
    };
    table.row(
        "j",
        format!(
            "VmRSS over {minutes} min of {}s intervals, {objects} objects, {pushes} new revisions",
            interval.as_secs()
        ),
        format!(
            "{:.1} MiB after one interval, {:.1} MiB at the end ({:+.1} MiB over {reconciles} \
             reconciles, {per_thousand:+.1} KiB per 1,000), max {:.1} MiB, VmHWM {:.1} MiB",
            baseline.1 as f64 / 1024.0,
            last.1 as f64 / 1024.0,
            growth / 1024.0,
            max as f64 / 1024.0,
            hwm as f64 / 1024.0
        ),
        "end within 5% of the baseline",
        verdict(last.1 as f64 <= baseline.1 as f64 * 1.05),
    );
    Ok(())
}
