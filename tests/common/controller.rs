//! `ocisource controller` as a process against a test-bed control plane, confined to one
//! namespace so that tests sharing a control plane do not fight over objects.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::controlplane::ControlPlane;
use super::{Proc, free_port, loopback_get_ok, wait_until};

/// A running controller with its own storage and ports.
pub struct Controller {
    /// The process.
    pub proc: Proc,
    /// Artifact server port.
    pub artifact_port: u16,
    /// `/metrics` port.
    pub metrics_port: u16,
    /// `/healthz`, `/readyz` port.
    pub health_port: u16,
    /// The artifact store.
    pub storage: TempDir,
    _logs: TempDir,
    // Its own TMPDIR unless one was given: the start-up sweep of working directories then
    // never reaches into the machine's /tmp, where other tests' processes work.
    _tmp: Option<TempDir>,
}

impl Controller {
    /// Starts `binary controller` watching only `namespace` (unless `extra` sets
    /// `--watch-all-namespaces`), named `name` (its `HOSTNAME`), with `extra` flags; does not
    /// wait for readiness.
    pub fn spawn(
        cp: &ControlPlane,
        binary: &Path,
        namespace: &str,
        extra: &[&str],
        name: &str,
    ) -> Controller {
        Controller::spawn_with(cp.kubeconfig_path(), binary, namespace, extra, name)
    }

    /// [`Controller::spawn`] with the identity of `kubeconfig` instead of the admin's.
    pub fn spawn_with(
        kubeconfig: &Path,
        binary: &Path,
        namespace: &str,
        extra: &[&str],
        name: &str,
    ) -> Controller {
        let storage = tempfile::tempdir().unwrap();
        Controller::spawn_in(kubeconfig, binary, namespace, extra, name, storage, None)
    }

    /// [`Controller::spawn_with`] over an existing `storage` directory and, when given, with
    /// `tmpdir` as its `TMPDIR` (for what a previous run left behind; else a private one).
    pub fn spawn_in(
        kubeconfig: &Path,
        binary: &Path,
        namespace: &str,
        extra: &[&str],
        name: &str,
        storage: TempDir,
        tmpdir: Option<&Path>,
    ) -> Controller {
        Controller::spawn_at(
            kubeconfig,
            binary,
            namespace,
            extra,
            name,
            storage,
            tmpdir,
            free_port(),
        )
    }

    /// Stops the controller and starts it again over the same store, serving on the same
    /// artifact port (so that its advertised URLs stay the same); does not wait for readiness.
    pub fn restart(
        self,
        kubeconfig: &Path,
        binary: &Path,
        namespace: &str,
        extra: &[&str],
        name: &str,
    ) -> Controller {
        let Controller {
            proc,
            artifact_port,
            storage,
            ..
        } = self;
        drop(proc);
        Controller::spawn_at(
            kubeconfig,
            binary,
            namespace,
            extra,
            name,
            storage,
            None,
            artifact_port,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_at(
        kubeconfig: &Path,
        binary: &Path,
        namespace: &str,
        extra: &[&str],
        name: &str,
        storage: TempDir,
        tmpdir: Option<&Path>,
        artifact_port: u16,
    ) -> Controller {
        let logs = tempfile::tempdir().unwrap();
        let (health_port, metrics_port) = (free_port(), free_port());
        let mut cmd = Command::new(binary);
        super::offline_tuf(&mut cmd);
        cmd.arg("controller")
            .arg(format!("--storage-path={}", storage.path().display()))
            .arg(format!("--storage-addr=127.0.0.1:{artifact_port}"))
            .arg(format!("--storage-adv-addr=127.0.0.1:{artifact_port}"))
            .arg(format!("--health-addr=127.0.0.1:{health_port}"))
            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
            .arg("--log-encoding=console");
        // The controller refuses a repeated flag: `extra` may choose the watch itself.
        if !extra
            .iter()
            .any(|a| a.starts_with("--watch-all-namespaces"))
        {
            cmd.arg("--watch-all-namespaces=false");
        }
        cmd.args(extra)
            .env("RUNTIME_NAMESPACE", namespace)
            .env("HOSTNAME", name)
            .env("KUBECONFIG", kubeconfig);
        let private = tmpdir.is_none().then(|| tempfile::tempdir().unwrap());
        let tmp = tmpdir.or(private.as_ref().map(TempDir::path));
        if let Some(tmp) = tmp {
            cmd.env("TMPDIR", tmp);
        }
        let proc = Proc::spawn(name, &cmd, logs.path());
        Controller {
            proc,
            artifact_port,
            metrics_port,
            health_port,
            storage,
            _logs: logs,
            _tmp: private,
        }
    }

    /// Starts a controller and waits until `/readyz` answers 200.
    pub fn start(cp: &ControlPlane, binary: &Path, namespace: &str, extra: &[&str]) -> Controller {
        Controller::start_named(cp, binary, namespace, extra, "controller")
    }

    /// [`Controller::start`] with `name` as its `HOSTNAME` (its leader election identity).
    pub fn start_named(
        cp: &ControlPlane,
        binary: &Path,
        namespace: &str,
        extra: &[&str],
        name: &str,
    ) -> Controller {
        let ctl = Controller::spawn(cp, binary, namespace, extra, name);
        wait_until("controller ready", Duration::from_secs(60), || {
            assert!(
                ctl.proc.is_running(),
                "controller exited:\n{}",
                ctl.proc.log_tail(4000)
            );
            ctl.ready()
        });
        ctl
    }

    /// Whether `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        loopback_get_ok(self.health_port, "/readyz")
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics_port);
        reqwest::get(url).await.unwrap().text().await.unwrap()
    }

    /// Whether the artifact server accepts connections.
    pub fn serves_artifacts(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.artifact_port)).is_ok()
    }
}
