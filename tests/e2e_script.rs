//! `scripts/e2e.sh`, the end-to-end steps the kind workflow runs with the chart in a cluster, run
//! here with `--install none` against the test bed: the API server, a registry, ocisource as a
//! local process with the beside-Flux selector, and Flux's real source-controller (sharded with
//! `!sharding.fluxcd.io/key`), kustomize-controller and helm-controller. The script passes with
//! all of them, and fails with its reason when ocisource is missing (nothing reconciles the
//! labelled objects) or when source-controller is not sharded (it reconciles them instead), and
//! refuses incomplete arguments (the `--install chart` ones included) before touching a cluster.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::controller::Controller;
use common::controlplane::{ControlPlane, create_namespace};
use common::flux_controller::{self, FluxController, Kind};
use common::registry::{Flavor, Registry, Security};
use common::{Proc, bin};

/// ocisource's `--watch-label-selector` beside Flux (the chart's `besideFlux.enabled=true`).
const OURS: &str = "--watch-label-selector=sharding.fluxcd.io/key=ocisource";
/// source-controller's, as the README's beside-Flux patch sets it.
const THEIRS: &str = "--watch-label-selector=!sharding.fluxcd.io/key";

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ocisource"))
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/e2e.sh")
}

/// Installs every CRD the script's objects and the controllers need (ours for OCIRepository)
/// and creates `namespace`.
async fn prepare(cp: &ControlPlane, namespace: &str) {
    let client = cp.client().await;
    for kind in [Kind::Kustomize, Kind::Helm, Kind::Source] {
        flux_controller::install_crds(&client, kind).await;
    }
    create_namespace(&client, namespace).await;
}

/// Runs `scripts/e2e.sh --install none` against `reg` in `namespace` with the test bed's
/// kubectl and helm (a private Helm home), each wait bounded by `timeout`.
async fn run_script(
    cp: &ControlPlane,
    reg: &Registry,
    namespace: &str,
    artifact_host: Option<String>,
    timeout: Duration,
) -> (Output, Duration) {
    let helm_home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(script());
    cmd.args(["--install", "none", "--registry", &reg.host()])
        .args(["--namespace", namespace])
        .args(["--timeout", &timeout.as_secs().to_string()])
        .arg("--kubeconfig")
        .arg(cp.kubeconfig_path())
        .arg("--ocisource")
        .arg(binary())
        .env("KUBECTL", bin("kubectl"))
        .env("HELM", bin("helm"))
        .env("HELM_CACHE_HOME", helm_home.path().join("cache"))
        .env("HELM_CONFIG_HOME", helm_home.path().join("config"))
        .env("HELM_DATA_HOME", helm_home.path().join("data"))
        .env_remove("E2E_CLUSTER_REGISTRY")
        .env_remove("E2E_IMAGE");
    if let Some(host) = artifact_host {
        cmd.args(["--artifact-host", &host]);
    }
    let begin = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let out = cmd.output().expect("start scripts/e2e.sh");
        drop(helm_home);
        out
    })
    .await
    .unwrap();
    (out, begin.elapsed())
}

/// The script's output and the log tails of the processes it ran against.
fn report(out: &Output, procs: &[&Proc]) -> String {
    let mut text = format!(
        "scripts/e2e.sh exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for proc in procs {
        text.push_str(&format!(
            "\n--- {} log (tail) ---\n{}",
            proc.log_path().display(),
            proc.log_tail(6000)
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn the_e2e_script_passes_with_ocisource_beside_the_real_flux_controllers() {
    const NS: &str = "e2e";
    let cp = ControlPlane::shared();
    prepare(cp, NS).await;
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let ours = Controller::start_named(cp, binary(), NS, &[OURS], "ocisource");
    let source = FluxController::start_with(cp, Kind::Source, NS, &[THEIRS]);
    let kustomize = FluxController::start(cp, Kind::Kustomize, NS);
    let helm = FluxController::start(cp, Kind::Helm, NS);

    let host = format!("127.0.0.1:{}", ours.artifact_port);
    let (out, took) = run_script(cp, &reg, NS, Some(host), Duration::from_secs(120)).await;
    let procs = [&ours.proc, &source.proc, &kustomize.proc, &helm.proc];
    let text = report(&out, &procs);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for step in [
        "ok: OCIRepository e2e-manifests reconciled by ocisource",
        "ok: OCIRepository e2e-chart reconciled by ocisource",
        "ok: unlabelled OCIRepository e2e-flux reconciled by source-controller",
        "ok: ConfigMap e2e-greeting from 2.0.0",
        "ok: HelmRelease e2e-greeter upgraded to chart 2.0.0",
        "PASSED: 1.0.0@sha256:",
    ] {
        assert!(stdout.contains(step), "no `{step}` in:\n{text}");
    }
    eprintln!("scripts/e2e.sh passed in {took:.1?}");

    // A second run in the same namespace starts from a clean slate and passes again.
    let host = format!("127.0.0.1:{}", ours.artifact_port);
    let (again, _) = run_script(cp, &reg, NS, Some(host), Duration::from_secs(120)).await;
    assert!(again.status.success(), "{}", report(&again, &procs));
}

/// Runs the script in `namespace`, where ocisource does not run but source-controller does (with
/// `source_flags`), each wait bounded by `timeout`; checks that it exits 1 with `reason` and the
/// failure dump of the namespace's objects. Returns how long it took.
async fn fails_without_ocisource(
    namespace: &str,
    source_flags: &[&str],
    timeout: Duration,
    reason: &str,
) -> Duration {
    let cp = ControlPlane::shared();
    prepare(cp, namespace).await;
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let source = FluxController::start_with(cp, Kind::Source, namespace, source_flags);

    let (out, took) = run_script(cp, &reg, namespace, None, timeout).await;
    let text = report(&out, &[&source.proc]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failed = stderr
        .lines()
        .find(|l| l.starts_with("e2e: FAILED after"))
        .unwrap_or_else(|| panic!("no failure line in:\n{text}"));
    assert!(failed.contains(reason), "no `{reason}` in:\n{text}");
    eprintln!("{namespace}: {failed}");
    assert!(
        stderr.contains(&format!("---- objects in {namespace} ----"))
            && stderr.contains("---- describe ----"),
        "{text}"
    );
    took
}

#[tokio::test(flavor = "multi_thread")]
async fn the_e2e_script_fails_when_ocisource_is_not_running() {
    // Flux's source-controller as the beside-Flux setup has it: nobody reconciles the labelled
    // objects, and the first wait gives up after its timeout.
    let took = fails_without_ocisource(
        "e2e-no-ocisource",
        &[THEIRS],
        Duration::from_secs(10),
        "the labelled OCIRepositories did not become Ready",
    )
    .await;
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_e2e_script_fails_when_source_controller_reconciles_the_labelled_objects() {
    // source-controller without the beside-Flux patch: every object is its own, and Ready.
    fails_without_ocisource(
        "e2e-unsharded",
        &[],
        Duration::from_secs(60),
        "e2e-manifests was reconciled by Flux's source-controller",
    )
    .await;
}

#[test]
fn the_e2e_script_refuses_incomplete_arguments_before_touching_a_cluster() {
    // Exit 2 and the reason, with no kubeconfig: nothing is contacted.
    for (args, reason) in [
        (&[][..], "--registry (E2E_REGISTRY) is required"),
        (
            &["--registry", "127.0.0.1:1", "--install", "chart"][..],
            "--install chart needs --image REPO:TAG",
        ),
        (
            &[
                "--registry",
                "127.0.0.1:1",
                "--install",
                "chart",
                "--image",
                "localhost:5000/ocisource",
            ][..],
            "--image needs a tag: localhost:5000/ocisource",
        ),
        (
            &["--registry", "127.0.0.1:1", "--install", "kind"][..],
            "--install must be none or chart, not kind",
        ),
        (
            &["--registry", "127.0.0.1:1", "--timeout", "3m"][..],
            "--timeout must be whole seconds",
        ),
        (&["--bogus"][..], "unknown argument --bogus"),
    ] {
        let out = Command::new(script())
            .args(args)
            .env_remove("E2E_REGISTRY")
            .env_remove("E2E_INSTALL")
            .env_remove("E2E_IMAGE")
            .env_remove("E2E_TIMEOUT")
            .env("KUBECONFIG", "/nonexistent")
            .output()
            .expect("start scripts/e2e.sh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert!(
            stderr.contains("scripts/e2e.sh --registry"),
            "usage: {stderr}"
        );
    }
}
