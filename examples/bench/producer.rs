//! (g) The producer CLI against the flux CLI: `ocisource push artifact` and `flux push
//! artifact` of the same generated tree (the generator of (b): ~200 MiB and ~1 GiB by
//! default) to the same registry, then `ocisource pull artifact` and `flux pull artifact` of the
//! same (flux-pushed) artifact, in the same run, each under GNU time: wall time, CPU time, peak
//! RSS, and the ocisource / flux ratios.
//!
//! Every push goes to a fresh repository, so that no blob is already there and skipped. The
//! order within a run alternates, so that neither tool always runs after the other. Sizes come
//! from `OCISOURCE_BENCH_PRODUCER_MIB` (comma-separated MiB, default `200,1024`; `OCISOURCE_BENCH_1G=0`
//! drops sizes over 512 MiB); a size of at most 512 MiB runs `OCISOURCE_BENCH_RUNS` times,
//! a larger one once. Small sizes (e.g. `OCISOURCE_BENCH_PRODUCER_MIB=4`) make a smoke run.

use super::*;

const SOURCE: &str = "https://example.com/bench";
const REVISION: &str = "main@sha1:0123456789abcdef";

/// One size: the tree and each run's timings.
struct SizeRun {
    label: String,
    files: u64,
    bytes: u64,
    /// `(ocisource, flux)` per run.
    push: Vec<(Timing, Timing)>,
    /// `(ocisource, flux)` per run.
    pull: Vec<(Timing, Timing)>,
}

pub(super) fn producer(cfg: &Config, work: &Path, table: &mut Table) -> anyhow::Result<()> {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    for (i, size_mib) in cfg.producer_mib.iter().copied().enumerate() {
        if !cfg.one_gib && size_mib > 512 {
            table.row(
                "g",
                format!("push and pull of ~{size_mib} MiB"),
                "skipped (OCISOURCE_BENCH_1G=0)".to_string(),
                "",
                Verdict::Info,
            );
            continue;
        }
        let runs = if size_mib > 512 { 1 } else { cfg.runs };
        let sized = size_run(cfg, &reg, work, size_mib, runs, 20 + i as u64)?;
        report(&sized, table);
    }
    Ok(())
}

fn report(s: &SizeRun, table: &mut Table) {
    table.row(
        "g",
        format!(
            "tree {}: {} files, {:.0} MiB",
            s.label,
            s.files,
            mib(s.bytes)
        ),
        String::new(),
        "",
        Verdict::Info,
    );
    for (verb, pairs) in [("push", &s.push), ("pull", &s.pull)] {
        let n = pairs.len();
        let best = |pick: fn(&(Timing, Timing)) -> Timing| {
            pairs
                .iter()
                .map(pick)
                .min_by_key(|t| t.wall)
                .expect("at least one run")
        };
        let (ours, flux) = (best(|p| p.0), best(|p| p.1));
        let peak = |pick: fn(&(Timing, Timing)) -> Timing| {
            pairs.iter().map(|p| pick(p).max_rss_kib).max().unwrap_or(0) as f64 / 1024.0
        };
        let mut ratios: Vec<f64> = pairs
            .iter()
            .map(|(o, f)| secs(o.wall) / secs(f.wall))
            .collect();
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        table.row(
            "g",
            format!("{verb} {}: ocisource vs flux, best of {n}", s.label),
            format!(
                "{:.2} s vs {:.2} s wall, {:.2} s vs {:.2} s CPU",
                secs(ours.wall),
                secs(flux.wall),
                secs(ours.cpu),
                secs(flux.cpu)
            ),
            "",
            Verdict::Info,
        );
        table.row(
            "g",
            format!(
                "{verb} {}: ratio ocisource / flux, wall (median of {n})",
                s.label
            ),
            format!("{median:.2}x"),
            "",
            Verdict::Info,
        );
        table.row(
            "g",
            format!("{verb} {}: peak RSS ocisource vs flux", s.label),
            format!("{:.1} MiB vs {:.1} MiB", peak(|p| p.0), peak(|p| p.1)),
            "",
            Verdict::Info,
        );
    }
}

fn size_run(
    cfg: &Config,
    reg: &Registry,
    work: &Path,
    size_mib: u64,
    runs: usize,
    seed: u64,
) -> anyhow::Result<SizeRun> {
    let label = format!("~{size_mib} MiB");
    let dir = work.join(format!("producer-{seed}"));
    let content = dir.join("content");
    std::fs::create_dir_all(&content)?;
    progress(&format!("(g) generating the {label} tree"));
    let generated = generate(&content, size_mib * MIB, seed)?;
    let home = tools::ToolHome::new(reg);
    let mut sized = SizeRun {
        label: label.clone(),
        files: generated.files,
        bytes: generated.bytes,
        push: Vec::new(),
        pull: Vec::new(),
    };
    for run in 1..=runs {
        let repo = format!("bench/producer-{seed}-{run}");
        let ours_url = home.oci_url(&format!("{repo}-ocisource:v1"));
        let flux_url = home.oci_url(&format!("{repo}-flux:v1"));
        // Both push the same tree with the same flags, each to its own repository.
        let push_to = |mut cmd: Command, url: &str, what: &str| -> anyhow::Result<Timing> {
            cmd.args(["push", "artifact", url, "--path"])
                .arg(&content)
                .args([
                    "--source",
                    SOURCE,
                    "--revision",
                    REVISION,
                    "--insecure-registry",
                ]);
            checked(what, &mut cmd)
        };
        let ours_push = || push_to(home.command_for(&cfg.bin), &ours_url, "ocisource push");
        let flux_push = || push_to(home.command("flux"), &flux_url, "flux push");
        let push = if run % 2 == 1 {
            let o = ours_push()?;
            (o, flux_push()?)
        } else {
            let f = flux_push()?;
            (ours_push()?, f)
        };

        // Both pull the flux-pushed artifact: the same layer bytes for each.
        let out = dir.join("out");
        let pull_into = |cmd: &mut Command, what: &str, extra: &[&str]| -> anyhow::Result<Timing> {
            std::fs::create_dir_all(&out)?;
            cmd.args(["pull", "artifact", &flux_url, "--output"])
                .arg(&out)
                .arg("--insecure-registry")
                .args(extra);
            let t = checked(what, cmd)?;
            let files = count_files(&out)?;
            ensure!(
                files == generated.files,
                "{what} extracted {files} files, the tree has {}",
                generated.files
            );
            std::fs::remove_dir_all(&out)?;
            Ok(t)
        };
        // The controller's extraction bounds are on by default; the ~1 GiB tree is above the
        // size bound, and flux has none.
        let ours_pull = || {
            pull_into(
                &mut home.command_for(&cfg.bin),
                "ocisource pull",
                &[
                    "--artifact-max-extract-size=-1",
                    "--artifact-max-extract-entries=-1",
                ],
            )
        };
        let flux_pull = || pull_into(&mut home.command("flux"), "flux pull", &[]);
        let pull = if run % 2 == 1 {
            let o = ours_pull()?;
            (o, flux_pull()?)
        } else {
            let f = flux_pull()?;
            (ours_pull()?, f)
        };
        progress(&format!(
            "(g) {label} run {run}/{runs}: push {:.2} s vs flux {:.2} s (RSS {:.1} vs {:.1} MiB); \
             pull {:.2} s vs flux {:.2} s (RSS {:.1} vs {:.1} MiB); load {}",
            secs(push.0.wall),
            secs(push.1.wall),
            push.0.max_rss_kib as f64 / 1024.0,
            push.1.max_rss_kib as f64 / 1024.0,
            secs(pull.0.wall),
            secs(pull.1.wall),
            pull.0.max_rss_kib as f64 / 1024.0,
            pull.1.max_rss_kib as f64 / 1024.0,
            loadavg()
        ));
        sized.push.push(push);
        sized.pull.push(pull);
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(sized)
}

/// `cmd` under GNU time, failing with its output when it fails.
fn checked(what: &str, cmd: &mut Command) -> anyhow::Result<Timing> {
    let (out, timing) = timed(cmd)?;
    ensure!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(timing)
}

/// Regular files under `dir`.
fn count_files(dir: &Path) -> anyhow::Result<u64> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            n += count_files(&entry.path())?;
        } else if kind.is_file() {
            n += 1;
        }
    }
    Ok(n)
}
