//! (f) One poll per repository: many objects spread over a few repositories (same registry,
//! anonymous, one transport), one controller with the default `--resolution-cache-window`:
//! - create -> all Ready, and the registry requests of that burst;
//! - registry requests per interval once all are Ready (unchanged sources), measured over
//!   `OCISOURCE_BENCH_POLL_ROUNDS` intervals, against the one manifest `HEAD` per object and
//!   interval that polling per object costs (Flux);
//! - the controller's `ocisource_registry_resolutions_total` over the same time.

use super::*;

pub(super) async fn polls(
    cfg: &Config,
    cp: &ControlPlane,
    client: &Client,
    table: &mut Table,
) -> anyhow::Result<()> {
    const NS: &str = "bench-f";
    let (objects, repos) = (cfg.poll_objects, cfg.poll_repos);
    let interval = cfg.poll_interval;
    progress(&format!(
        "(f) {objects} objects on {repos} repositories, interval {}s, --concurrent={}",
        interval.as_secs(),
        cfg.concurrent
    ));
    namespace(client, NS).await?;
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = tempfile::tempdir()?;
    std::fs::write(content.path().join("deploy.yaml"), "kind: ConfigMap\n")?;
    for r in 0..repos {
        push(
            &reg,
            &format!("bench/poll-{r:02}"),
            "stable",
            content.path(),
        );
    }
    let (ctl, _) = start_controller(cfg, cp, NS)?;
    let api: Api<OciRepository> = Api::namespaced(client.clone(), NS);
    let before = registry_requests(&reg)?.len();
    let t0 = Instant::now();
    create_objects(&api, "poll-", objects, |i| {
        json!({
            "url": format!("oci://{}/bench/poll-{:02}", reg.host(), i % repos),
            "interval": format!("{}s", interval.as_secs()),
            "insecure": true,
            "ref": {"tag": "stable"},
        })
    })
    .await?;
    let ready = all_ready(
        &ctl,
        &api,
        "poll-",
        objects,
        t0,
        "(f)",
        Duration::from_secs(1800),
    )
    .await?;
    let requests = registry_requests(&reg)?;
    let burst = &requests[before..];
    let heads = |r: &[(String, String)]| {
        r.iter()
            .filter(|(m, u)| m == "HEAD" && u.contains("/manifests/"))
            .count()
    };
    table.row(
        "f",
        format!("{objects} objects on {repos} repositories: create -> all Ready"),
        format!(
            "{:.1} s; {} registry requests ({} manifest HEAD; one each: {objects})",
            secs(ready),
            burst.len(),
            heads(burst)
        ),
        "",
        Verdict::Info,
    );

    let rounds = cfg.poll_rounds;
    let counter = |metrics: &str, kind: &str| -> u64 {
        let series = format!("ocisource_registry_resolutions_total{{kind=\"{kind}\"}}");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str())?.trim().parse().ok())
            .unwrap_or(0)
    };
    let metrics = ctl.metrics().await;
    let (runs, shared) = (counter(&metrics, "run"), counter(&metrics, "shared"));
    let before = registry_requests(&reg)?.len();
    progress(&format!(
        "(f) measuring {rounds} intervals of {}s",
        interval.as_secs()
    ));
    tokio::time::sleep(interval * rounds as u32).await;
    ensure!(
        ctl.proc.is_running(),
        "controller exited:\n{}",
        ctl.proc.log_tail(4000)
    );
    let steady = &registry_requests(&reg)?[before..];
    let metrics = ctl.metrics().await;
    let (runs, shared) = (
        counter(&metrics, "run") - runs,
        counter(&metrics, "shared") - shared,
    );
    let per_interval = steady.len() as f64 / rounds as f64;
    table.row(
        "f",
        format!(
            "registry requests per interval, {objects} unchanged objects on {repos} repositories ({rounds} intervals)"
        ),
        format!(
            "{per_interval:.1} ({:.1} manifest HEAD; polling per object: {objects}); resolutions: {runs} run, {shared} shared",
            heads(steady) as f64 / rounds as f64
        ),
        &format!("≤ 2 × {repos} repositories"),
        verdict(per_interval <= 2.0 * repos as f64),
    );
    Ok(())
}
