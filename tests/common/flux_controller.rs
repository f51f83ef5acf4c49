//! Flux's consumers of our `status.artifact` (kustomize-controller, and helm-controller through
//! `HelmRelease.spec.chartRef`) as processes against a test-bed control plane, confined to one
//! namespace like [`super::controller::Controller`].
//!
//! Install them, and the CRDs they watch besides ours, with `testbed/install-consumers.sh`; the
//! CRDs live in `crds/` next to each binary.

use std::process::Command;
use std::time::Duration;

use kube::Client;
use tempfile::TempDir;

use super::controlplane::ControlPlane;
use super::{Proc, beside_bin, bin, crd, free_port, loopback_get_ok, wait_until};

/// Which Flux controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// kustomize-controller v1.6.0.
    Kustomize,
    /// helm-controller v1.4.0.
    Helm,
}

impl Kind {
    /// The test-bed component name of the binary.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kustomize => "kustomize-controller",
            Kind::Helm => "helm-controller",
        }
    }

    /// The CRDs it needs besides OCIRepository: its own kind, and the source kinds it also
    /// watches (helm-controller's ExternalArtifact only behind a feature gate that stays off).
    fn crds(self) -> &'static [&'static str] {
        match self {
            Kind::Kustomize => &[
                "kustomize.toolkit.fluxcd.io_kustomizations.yaml",
                "source.toolkit.fluxcd.io_gitrepositories.yaml",
                "source.toolkit.fluxcd.io_buckets.yaml",
            ],
            Kind::Helm => &[
                "helm.toolkit.fluxcd.io_helmreleases.yaml",
                "source.toolkit.fluxcd.io_helmcharts.yaml",
            ],
        }
    }

    /// Flags besides the common ones: no remote bases for kustomize-controller; helm-controller
    /// retries a not-yet-ready source every 2 s instead of 30 s.
    fn extra_args(self) -> &'static [&'static str] {
        match self {
            Kind::Kustomize => &["--no-remote-bases=true"],
            Kind::Helm => &["--requeue-dependency=2s"],
        }
    }
}

/// Server-side applies the CRDs `kind` needs (ours included) and waits until they are
/// Established.
pub async fn install_crds(client: &Client, kind: Kind) {
    crd::install(client).await;
    let dir = beside_bin(kind.name(), "crds");
    for file in kind.crds() {
        crd::install_file(client, &dir.join(file)).await;
    }
}

/// A running Flux controller with its own ports and log directory.
pub struct FluxController {
    /// Which one.
    pub kind: Kind,
    /// The process.
    pub proc: Proc,
    /// `/metrics` port.
    pub metrics_port: u16,
    /// `/healthz`, `/readyz` port.
    pub health_port: u16,
    _logs: TempDir,
}

impl FluxController {
    /// Starts `kind` as the control plane's admin, watching only `namespace`, without leader
    /// election or event forwarding; waits until `/readyz` answers 200.
    pub fn start(cp: &ControlPlane, kind: Kind, namespace: &str) -> FluxController {
        let logs = tempfile::tempdir().unwrap();
        let (health_port, metrics_port) = (free_port(), free_port());
        let mut cmd = Command::new(bin(kind.name()));
        cmd.arg(format!("--health-addr=127.0.0.1:{health_port}"))
            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
            .arg("--events-addr=")
            .arg("--enable-leader-election=false")
            .arg("--watch-all-namespaces=false")
            .args(kind.extra_args())
            .arg("--log-encoding=console")
            .env("RUNTIME_NAMESPACE", namespace)
            .env("KUBECONFIG", cp.kubeconfig_path());
        let proc = Proc::spawn(kind.name(), &cmd, logs.path());
        let fc = FluxController {
            kind,
            proc,
            metrics_port,
            health_port,
            _logs: logs,
        };
        wait_until(
            &format!("{} ready", kind.name()),
            Duration::from_secs(60),
            || {
                assert!(
                    fc.proc.is_running(),
                    "{} exited:\n{}",
                    kind.name(),
                    fc.proc.log_tail(4000)
                );
                loopback_get_ok(fc.health_port, "/readyz")
            },
        );
        fc
    }
}
