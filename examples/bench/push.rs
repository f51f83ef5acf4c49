//! (i) Push to Ready: objects on one tag, a registry (docker-registry) posting its push
//! notifications to the controller's receiver (`--receiver-addr`), and the time from `flux push
//! artifact` returning until every object reports the pushed revision; against the baseline of
//! polling (the same objects and pushes, no notifications, `OCISOURCE_BENCH_PUSH_BASELINE_INTERVAL`
//! seconds between polls; on average half an interval).

use super::*;

pub(super) async fn push_to_ready(
    cfg: &Config,
    cp: &ControlPlane,
    client: &Client,
    table: &mut Table,
) -> anyhow::Result<()> {
    let (objects, rounds) = (cfg.push_objects, cfg.push_rounds);
    let baseline_interval = cfg.push_baseline_interval;
    progress(&format!(
        "(i) {objects} objects on one tag, {rounds} pushes with notifications, then {rounds} \
         polled every {}s",
        baseline_interval.as_secs()
    ));
    let secrets = tempfile::tempdir()?;
    let token = "bench-receiver-secret";
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, token)?;

    let port = common::free_port();
    let reg =
        Registry::start_notifying(&format!("http://127.0.0.1:{port}/hook/distribution"), token);
    let addr = format!("127.0.0.1:{port}");
    let flags = [
        "--receiver-addr",
        addr.as_str(),
        "--receiver-token-file",
        token_file.to_str().context("token path")?,
    ];
    let notified =
        rounds_to_ready(cfg, cp, client, &reg, "bench-i-push", "1h", &flags, rounds).await?;

    let polled_reg = Registry::start(Flavor::Distribution, Security::Http);
    let interval = format!("{}s", baseline_interval.as_secs());
    let polled = rounds_to_ready(
        cfg,
        cp,
        client,
        &polled_reg,
        "bench-i-poll",
        &interval,
        &[],
        rounds,
    )
    .await?;

    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (n_median, n_max) = (median(notified.clone()), *notified.iter().max().unwrap());
    let (p_median, p_max) = (median(polled.clone()), *polled.iter().max().unwrap());
    table.row(
        "i",
        format!("push -> {objects} objects Ready, registry notification (interval 1h)"),
        format!(
            "median {:.0} ms, max {:.0} ms over {rounds} pushes",
            ms(n_median),
            ms(n_max)
        ),
        "< 1 s",
        verdict(n_max < Duration::from_secs(1)),
    );
    table.row(
        "i",
        format!(
            "push -> {objects} objects Ready, polling every {}s (baseline)",
            baseline_interval.as_secs()
        ),
        format!(
            "median {:.1} s, max {:.1} s; notification/polling {:.3}x",
            secs(p_median),
            secs(p_max),
            secs(n_median) / secs(p_median).max(0.001)
        ),
        "",
        Verdict::Info,
    );
    Ok(())
}

/// Creates `objects` objects on `reg`'s `bench/push:stable` with `interval` in `namespace`,
/// starts a controller with `flags`, then pushes `rounds` new revisions, each time waiting
/// until every object reports it; returns the time from each push's return to that moment.
#[allow(clippy::too_many_arguments)]
async fn rounds_to_ready(
    cfg: &Config,
    cp: &ControlPlane,
    client: &Client,
    reg: &Registry,
    namespace_name: &str,
    interval: &str,
    flags: &[&str],
    rounds: usize,
) -> anyhow::Result<Vec<Duration>> {
    namespace(client, namespace_name).await?;
    let content = tempfile::tempdir()?;
    let write = |round: usize| {
        std::fs::write(
            content.path().join("deploy.yaml"),
            format!("kind: ConfigMap\nmetadata:\n  name: round-{round}\n"),
        )
    };
    write(0)?;
    push(reg, "bench/push", "stable", content.path());
    let (ctl, _) = start_controller_with(cfg, cp, namespace_name, cfg.concurrent, flags)?;
    let api: Api<OciRepository> = Api::namespaced(client.clone(), namespace_name);
    let objects = cfg.push_objects;
    create_objects(&api, "push-", objects, |_| {
        json!({
            "url": format!("oci://{}/bench/push", reg.host()),
            "interval": interval,
            "insecure": true,
            "ref": {"tag": "stable"},
        })
    })
    .await?;
    all_ready(
        &ctl,
        &api,
        "push-",
        objects,
        Instant::now(),
        "(i)",
        Duration::from_secs(300),
    )
    .await?;

    let mut latencies = Vec::new();
    for round in 1..=rounds {
        write(round)?;
        let digest = push(reg, "bench/push", "stable", content.path());
        let want = format!("stable@{digest}");
        let wait = Wait {
            section: "(i)",
            what: "on the pushed revision",
            t0: Instant::now(),
            timeout: Duration::from_secs(600),
            poll: Duration::from_millis(10),
        };
        let latency = wait
            .until(&ctl, &api, objects, |o| {
                o.status
                    .as_ref()
                    .and_then(|s| s.artifact.as_ref())
                    .is_some_and(|a| a.revision == want)
            })
            .await?;
        progress(&format!(
            "(i) {namespace_name} round {round}: {:.0} ms",
            ms(latency)
        ));
        latencies.push(latency);
    }
    Ok(latencies)
}
