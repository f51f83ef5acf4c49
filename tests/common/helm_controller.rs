//! Flux's helm-controller (the consumer of our `status.artifact` for Helm charts, through
//! `HelmRelease.spec.chartRef`) as a process against a test-bed control plane, confined to one
//! namespace like [`super::controller::Controller`].
//!
//! Install it, and the CRDs it watches besides ours, with `testbed/install-consumers.sh`; the
//! CRDs live in `crds/` next to its binary.

use std::process::Command;
use std::time::Duration;

use kube::Client;
use tempfile::TempDir;

use super::controlplane::ControlPlane;
use super::{Proc, beside_bin, bin, crd, free_port, loopback_get_ok, wait_until};

/// The test-bed component name of the binary.
const NAME: &str = "helm-controller";

/// The CRDs helm-controller needs besides OCIRepository: its HelmRelease, and the HelmChart it
/// also watches (ExternalArtifact only behind a feature gate that stays off here).
const CRDS: [&str; 2] = [
    "helm.toolkit.fluxcd.io_helmreleases.yaml",
    "source.toolkit.fluxcd.io_helmcharts.yaml",
];

/// Server-side applies the CRDs helm-controller needs (ours included) and waits until they are
/// Established.
pub async fn install_crds(client: &Client) {
    crd::install(client).await;
    let dir = beside_bin(NAME, "crds");
    for file in CRDS {
        crd::install_file(client, &dir.join(file)).await;
    }
}

/// A running helm-controller with its own ports and log directory.
pub struct HelmController {
    /// The process.
    pub proc: Proc,
    /// `/metrics` port.
    pub metrics_port: u16,
    /// `/healthz`, `/readyz` port.
    pub health_port: u16,
    _logs: TempDir,
}

impl HelmController {
    /// Starts helm-controller as the control plane's admin, watching only `namespace`, without
    /// leader election or event forwarding, retrying a not-yet-ready source every 2 s (instead
    /// of 30 s); waits until `/readyz` answers 200.
    pub fn start(cp: &ControlPlane, namespace: &str) -> HelmController {
        let logs = tempfile::tempdir().unwrap();
        let (health_port, metrics_port) = (free_port(), free_port());
        let mut cmd = Command::new(bin(NAME));
        cmd.arg(format!("--health-addr=127.0.0.1:{health_port}"))
            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
            .arg("--events-addr=")
            .arg("--enable-leader-election=false")
            .arg("--watch-all-namespaces=false")
            .arg("--requeue-dependency=2s")
            .arg("--log-encoding=console")
            .env("RUNTIME_NAMESPACE", namespace)
            .env("KUBECONFIG", cp.kubeconfig_path());
        let proc = Proc::spawn(NAME, &cmd, logs.path());
        let hc = HelmController {
            proc,
            metrics_port,
            health_port,
            _logs: logs,
        };
        wait_until("helm-controller ready", Duration::from_secs(60), || {
            assert!(
                hc.proc.is_running(),
                "helm-controller exited:\n{}",
                hc.proc.log_tail(4000)
            );
            loopback_get_ok(hc.health_port, "/readyz")
        });
        hc
    }
}
