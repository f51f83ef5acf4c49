//! Flux's consumers of our `status.artifact` (kustomize-controller, and helm-controller through
//! `HelmRelease.spec.chartRef`), and Flux's own source-controller that ocisource runs beside, as
//! processes against a test-bed control plane, confined to one namespace like
//! [`super::controller::Controller`].
//!
//! Install the consumers, and the CRDs they watch besides ours, with
//! `testbed/install-consumers.sh`, and source-controller with
//! `testbed/install-source-controller.sh`; the CRDs live in `crds/` next to each binary.

use std::path::{Path, PathBuf};
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
    /// helm-controller v1.4.3.
    Helm,
    /// source-controller v1.7.3, with its own artifact store and server.
    Source,
}

/// The file name of source-controller's own OCIRepository CRD in its `crds/` directory.
pub const UPSTREAM_OCIREPOSITORY_CRD: &str = "source.toolkit.fluxcd.io_ocirepositories.yaml";

impl Kind {
    /// The test-bed component name of the binary.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kustomize => "kustomize-controller",
            Kind::Helm => "helm-controller",
            Kind::Source => "source-controller",
        }
    }

    /// The CRDs it needs besides OCIRepository: its own kind, and the source kinds it also
    /// watches (helm-controller's ExternalArtifact only behind a feature gate that stays off);
    /// for source-controller, every other kind it serves.
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
            Kind::Source => &[
                "source.toolkit.fluxcd.io_gitrepositories.yaml",
                "source.toolkit.fluxcd.io_helmrepositories.yaml",
                "source.toolkit.fluxcd.io_helmcharts.yaml",
                "source.toolkit.fluxcd.io_buckets.yaml",
            ],
        }
    }

    /// Flags besides the common ones: no remote bases for kustomize-controller; helm-controller
    /// retries a not-yet-ready source every 2 s instead of 30 s.
    fn extra_args(self) -> &'static [&'static str] {
        match self {
            Kind::Kustomize => &["--no-remote-bases=true"],
            Kind::Helm => &["--requeue-dependency=2s"],
            Kind::Source => &[],
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

/// The directory `crds/` installed next to `kind`'s binary.
pub fn crds_dir(kind: Kind) -> PathBuf {
    beside_bin(kind.name(), "crds")
}

// controller-runtime takes the leader election namespace from the in-cluster ServiceAccount
// mount only (Flux sets no LeaderElectionNamespace): give the process that file, as a Pod has
// it, in a private mount namespace over a tmpfs /run, leaving the host untouched.
const IN_CLUSTER_NAMESPACE: &str = r#"
mount -t tmpfs -o size=1m tmpfs /run || exit 97
mkdir -p /run/secrets/kubernetes.io/serviceaccount || exit 97
printf %s "$0" >/run/secrets/kubernetes.io/serviceaccount/namespace || exit 97
exec "$@"
"#;

/// `program` run with `/var/run/secrets/kubernetes.io/serviceaccount/namespace` holding
/// `namespace`, as in a Pod (needs `unshare`, util-linux, and the right to mount, as root has).
fn in_cluster_namespace(namespace: &str, program: &Path) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(IN_CLUSTER_NAMESPACE)
        .arg(namespace)
        .arg(program);
    cmd
}

/// source-controller's artifact store and the port of its artifact server.
pub struct ArtifactStore {
    /// `--storage-path`.
    pub dir: TempDir,
    /// `--storage-addr` and `--storage-adv-addr` port on 127.0.0.1.
    pub port: u16,
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
    /// The artifact store ([`Kind::Source`] only).
    pub store: Option<ArtifactStore>,
    _logs: TempDir,
}

impl FluxController {
    /// Starts `kind` as the control plane's admin, watching only `namespace`, without leader
    /// election or event forwarding; waits until `/readyz` answers 200.
    pub fn start(cp: &ControlPlane, kind: Kind, namespace: &str) -> FluxController {
        FluxController::start_with(cp, kind, namespace, &[])
    }

    /// [`FluxController::start`] with `extra` flags after the common ones (the last value of a
    /// repeated flag wins, e.g. `--enable-leader-election=true`, which also runs it with the
    /// in-cluster namespace file its Lease needs). source-controller stores artifacts in a temp
    /// dir and serves them on a free loopback port.
    pub fn start_with(
        cp: &ControlPlane,
        kind: Kind,
        namespace: &str,
        extra: &[&str],
    ) -> FluxController {
        FluxController::start_in(cp, kind, namespace, extra, None)
    }

    /// [`FluxController::start_with`] over the artifact store `store` of an earlier run (a
    /// restart), else a new one.
    pub fn start_in(
        cp: &ControlPlane,
        kind: Kind,
        namespace: &str,
        extra: &[&str],
        store: Option<ArtifactStore>,
    ) -> FluxController {
        let logs = tempfile::tempdir().unwrap();
        let (health_port, metrics_port) = (free_port(), free_port());
        let store = store.or_else(|| {
            (kind == Kind::Source).then(|| ArtifactStore {
                dir: tempfile::tempdir().unwrap(),
                port: free_port(),
            })
        });
        let leader_election = extra
            .iter()
            .any(|a| *a == "--enable-leader-election" || *a == "--enable-leader-election=true");
        let mut cmd = if leader_election {
            in_cluster_namespace(namespace, &bin(kind.name()))
        } else {
            Command::new(bin(kind.name()))
        };
        if let Some(store) = &store {
            cmd.arg(format!("--storage-path={}", store.dir.path().display()))
                .arg(format!("--storage-addr=127.0.0.1:{}", store.port))
                .arg(format!("--storage-adv-addr=127.0.0.1:{}", store.port));
        }
        cmd.arg(format!("--health-addr=127.0.0.1:{health_port}"))
            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
            .arg("--events-addr=")
            .arg("--enable-leader-election=false")
            .arg("--watch-all-namespaces=false")
            .args(kind.extra_args())
            .arg("--log-encoding=console")
            .args(extra)
            .env("RUNTIME_NAMESPACE", namespace)
            .env("KUBECONFIG", cp.kubeconfig_path());
        let proc = Proc::spawn(kind.name(), &cmd, logs.path());
        let fc = FluxController {
            kind,
            proc,
            metrics_port,
            health_port,
            store,
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
