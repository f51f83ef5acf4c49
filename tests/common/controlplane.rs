//! A real kube-apiserver backed by a real etcd, both on loopback with free ports, started the way
//! controller-runtime's envtest starts them: self-signed serving certificate, RBAC authorization,
//! a static token for the admin (group `system:masters`) and a generated kubeconfig that verifies
//! the serving certificate. There is no kubelet or controller-manager: Pods never run, but every
//! API object, RBAC, Leases, Events, CRDs and status subresources behave for real.
//!
//! Install the pinned binaries with `testbed/install-controlplane.sh`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use tempfile::TempDir;

use super::{Proc, bin, free_port};

/// The admin user of the static token file; member of `system:masters`.
pub const ADMIN_USER: &str = "ocisource-test-admin";

/// The Service IP range given to kube-apiserver (no Service ever gets a working IP here).
const SERVICE_CLUSTER_IP_RANGE: &str = "10.0.0.0/24";

// Cold start takes a few seconds on an idle 2-core machine, but test-bed builds or a parallel test
// binary can make it many times slower; a hang still fails with the logs.
const READY_TIMEOUT: Duration = Duration::from_secs(180);
// The client's own read timeout is minutes long: don't let one stuck probe outlive the deadline.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running etcd + kube-apiserver pair.
///
/// Fields drop in order: the API server, etcd, then the janitor that removes the directory once
/// they have exited.
pub struct ControlPlane {
    apiserver: Mutex<Option<Proc>>,
    etcd: Proc,
    // A `static` (see `shared`) is never dropped, so the TempDir alone would leak the etcd data
    // (WAL files are preallocated, 64 MiB each) on every test run. The janitor is a Proc, stopped
    // when the test process dies whichever way it does, and removes the directory then.
    _janitor: Proc,
    starts: AtomicUsize,
    port: u16,
    etcd_url: String,
    admin_token: String,
    kubeconfig: PathBuf,
    audit: bool,
    dir: TempDir,
}

/// The audit policy of [`ControlPlane::start_audited`]: one `Metadata` event (who, which verb,
/// which object, which answer) per write request, written when the response completes; reads
/// are not logged.
const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted", "Panic"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
"#;

impl ControlPlane {
    /// Starts etcd and kube-apiserver and blocks until `/readyz` answers `ok` and the `default`
    /// namespace exists. Panics with the logs when they don't come up.
    pub fn start() -> ControlPlane {
        ControlPlane::start_with(false)
    }

    /// [`ControlPlane::start`] with an audit log of every write request (create, update, patch,
    /// delete) at level `Metadata`, one JSON event a line at [`ControlPlane::audit_log_path`]:
    /// the benchmark counts each controller's writes by their `userAgent`. The log is written
    /// before the response is sent (the log backend's blocking mode) and never rotated.
    pub fn start_audited() -> ControlPlane {
        ControlPlane::start_with(true)
    }

    /// The audit log of a control plane started with [`ControlPlane::start_audited`].
    pub fn audit_log_path(&self) -> Option<PathBuf> {
        self.audit.then(|| self.dir.path().join("audit.log"))
    }

    fn start_with(audit: bool) -> ControlPlane {
        let etcd_bin = bin("etcd");
        let apiserver_bin = bin("kube-apiserver");
        let begin = Instant::now();

        let dir = tempfile::Builder::new()
            .prefix("ocisource-controlplane-")
            .tempdir()
            .expect("create control-plane temp dir");
        let janitor = start_janitor(dir.path());

        let etcd = start_etcd(&etcd_bin, dir.path());
        let etcd_url = etcd.1;
        let etcd = etcd.0;

        let admin_token = random_token();
        std::fs::write(
            dir.path().join("tokens.csv"),
            format!("{admin_token},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n"),
        )
        .expect("write token file");
        write_service_account_key(dir.path());
        if audit {
            std::fs::write(dir.path().join("audit-policy.yaml"), AUDIT_POLICY)
                .expect("write audit policy");
        }

        let cp = ControlPlane {
            apiserver: Mutex::new(None),
            etcd,
            _janitor: janitor,
            starts: AtomicUsize::new(0),
            port: free_port(),
            etcd_url,
            admin_token,
            kubeconfig: dir.path().join("kubeconfig"),
            audit,
            dir,
        };
        cp.start_apiserver_with(&apiserver_bin);
        eprintln!(
            "control plane ready at {} in {:.1?} (etcd {}, logs in {})",
            cp.server_url(),
            begin.elapsed(),
            cp.etcd_url,
            cp.dir.path().display()
        );
        cp
    }

    /// The control plane shared by every test of this test binary, started on first use.
    ///
    /// Its processes stop and its directory is removed when the test process exits.
    /// When it fails to start, the first caller panics with the reason and later callers panic
    /// at once instead of waiting for the same failure again.
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        let started = SHARED.get_or_init(|| {
            std::panic::catch_unwind(ControlPlane::start).map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            })
        });
        match started {
            Ok(cp) => cp,
            Err(why) => panic!("the shared control plane failed to start: {why}"),
        }
    }

    /// A kubeconfig for the admin (static token, CA of the serving certificate).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The bearer token of [`ADMIN_USER`].
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The etcd client URL used by the API server.
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// The directory holding etcd data, certificates, kubeconfigs and process logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// PEM file of the CA that signed the API server's serving certificate.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// An admin client that verifies the serving certificate.
    pub async fn client(&self) -> Client {
        client_from(&self.kubeconfig)
            .await
            .unwrap_or_else(|e| panic!("failed to build admin client: {e}"))
    }

    /// A kubeconfig for `user`, a non-admin identity that RBAC treats like any other user
    /// (member of `system:authenticated` only; `system:serviceaccount:NS:NAME` names act as that
    /// ServiceAccount, with its groups).
    ///
    /// It authenticates with the admin token and impersonates `user` (kubeconfig `as:`): every
    /// request is authorized as `user`, and no restart is needed to add users, which a static
    /// token file would require.
    pub fn user_kubeconfig(&self, user: &str) -> PathBuf {
        let safe: String = user
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = self.dir.path().join(format!("kubeconfig-{safe}"));
        std::fs::write(&path, self.kubeconfig_yaml(Some(user))).expect("write user kubeconfig");
        path
    }

    /// A client acting as `user`; see [`ControlPlane::user_kubeconfig`].
    pub async fn user_client(&self, user: &str) -> Client {
        client_from(&self.user_kubeconfig(user))
            .await
            .unwrap_or_else(|e| panic!("failed to build client for {user}: {e}"))
    }

    /// Stops kube-apiserver and starts it again on the same port and etcd; blocks until ready.
    pub fn restart_apiserver(&self) {
        self.stop_apiserver();
        self.start_apiserver();
    }

    /// Stops kube-apiserver (TERM, then KILL after 5 s) and waits for it to exit; etcd stays up.
    pub fn stop_apiserver(&self) {
        let old = self
            .apiserver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(old);
    }

    /// Starts kube-apiserver when it is stopped, on the same port, and blocks until ready.
    pub fn start_apiserver(&self) {
        self.start_apiserver_with(&bin("kube-apiserver"));
    }

    /// Whether kube-apiserver is running.
    pub fn apiserver_running(&self) -> bool {
        let guard = self.apiserver.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().is_some_and(Proc::is_running)
    }

    fn start_apiserver_with(&self, apiserver_bin: &Path) {
        let mut guard = self.apiserver.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_some_and(Proc::is_running) {
            return;
        }
        *guard = None;
        let n = self.starts.fetch_add(1, Ordering::SeqCst);
        // Each start keeps its own log, so a restart doesn't erase what happened before it.
        let name = if n == 0 {
            "kube-apiserver".to_string()
        } else {
            format!("kube-apiserver-{n}")
        };
        let mut cmd = Command::new(apiserver_bin);
        cmd.args(self.apiserver_args());
        let proc = Proc::spawn(&name, &cmd, self.dir.path());
        self.wait_ready(&proc);
        *guard = Some(proc);
    }

    fn apiserver_args(&self) -> Vec<String> {
        let d = self.dir.path();
        let p = |name: &str| d.join(name).display().to_string();
        let mut args = vec![
            format!("--etcd-servers={}", self.etcd_url),
            format!("--cert-dir={}", p("apiserver-certs")),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            // The endpoint reconciler refuses a loopback advertise address, and nothing here
            // reaches the API through the `kubernetes` Service anyway.
            "--endpoint-reconciler-type=none".into(),
            format!("--secure-port={}", self.port),
            format!("--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"),
            format!("--service-account-issuer={}", self.server_url()),
            format!("--service-account-key-file={}", p("service-account.pub")),
            format!(
                "--service-account-signing-key-file={}",
                p("service-account.key")
            ),
            "--authorization-mode=RBAC".into(),
            format!("--token-auth-file={}", p("tokens.csv")),
            "--allow-privileged=true".into(),
            // Nothing scrapes it; skip its handlers.
            "--profiling=false".into(),
        ];
        if self.audit {
            args.extend([
                format!("--audit-policy-file={}", p("audit-policy.yaml")),
                format!("--audit-log-path={}", p("audit.log")),
                "--audit-log-format=json".into(),
                "--audit-log-mode=blocking".into(),
                // 0 would mean lumberjack's default of 100 MB before a rotation; a bench run at
                // 10,000 objects writes more, and a rotated file would lose counts.
                "--audit-log-maxsize=1000000".into(),
            ]);
        }
        args
    }

    /// Waits for the serving certificate, writes the kubeconfig, then polls `/readyz` with the
    /// admin client (so TLS verification and the token are exercised) and waits for the
    /// `default` namespace, created by a post-start hook shortly after readiness.
    fn wait_ready(&self, proc: &Proc) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let cert = self.dir.path().join("apiserver-certs/apiserver.crt");
        let mut last_err = String::from("serving certificate not written yet");
        let fail = |why: &str| -> ! {
            panic!(
                "kube-apiserver on {} not ready: {why}\n--- {} (tail) ---\n{}\n--- etcd log (tail) ---\n{}",
                self.server_url(),
                proc.log_path().display(),
                tail(proc, 6000),
                tail(&self.etcd, 2000),
            )
        };
        loop {
            if !proc.is_running() {
                fail("the process exited");
            }
            if !self.etcd.is_running() {
                fail("etcd exited");
            }
            if Instant::now() > deadline {
                fail(&format!(
                    "timed out after {READY_TIMEOUT:?}; last: {last_err}"
                ));
            }
            if self.kubeconfig.exists() || self.write_kubeconfig(&cert) {
                // The timer must be created inside the runtime that `block_on` builds.
                let kubeconfig = self.kubeconfig.clone();
                let probed = block_on(async {
                    tokio::time::timeout(PROBE_TIMEOUT, probe(kubeconfig))
                        .await
                        .unwrap_or_else(|_| Err(format!("no answer in {PROBE_TIMEOUT:?}")))
                });
                match probed {
                    Ok(()) => return,
                    Err(e) => last_err = e,
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Extracts the CA from the generated serving certificate file (leaf first, then its CA)
    /// and writes the admin kubeconfig; false while the certificate isn't complete yet.
    fn write_kubeconfig(&self, cert: &Path) -> bool {
        let Ok(pem) = std::fs::read_to_string(cert) else {
            return false;
        };
        let blocks: Vec<&str> = pem
            .split_inclusive("-----END CERTIFICATE-----")
            .filter(|b| b.contains("-----BEGIN CERTIFICATE-----"))
            .collect();
        let [_leaf, ca] = blocks.as_slice() else {
            return false;
        };
        std::fs::write(self.ca_path(), format!("{}\n", ca.trim())).expect("write ca.crt");
        std::fs::write(&self.kubeconfig, self.kubeconfig_yaml(None)).expect("write kubeconfig");
        true
    }

    fn kubeconfig_yaml(&self, impersonate: Option<&str>) -> String {
        // JSON strings are valid YAML double-quoted scalars: no escaping to get wrong.
        let q = |s: &str| serde_json::to_string(s).expect("quote string");
        let user = impersonate.unwrap_or(ADMIN_USER);
        let mut yaml = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: ocisource-test
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    token: {token}
",
            server = q(&self.server_url()),
            ca = q(&self.ca_path().display().to_string()),
            user = q(user),
            token = q(&self.admin_token),
        );
        if let Some(as_user) = impersonate {
            yaml.push_str(&format!("    as: {}\n", q(as_user)));
        }
        yaml.push_str(&format!(
            "contexts:
- name: ocisource-test
  context:
    cluster: ocisource-test
    user: {user}
    namespace: default
current-context: ocisource-test
",
            user = q(user)
        ));
        yaml
    }
}

/// The last whole lines of a process log within `max` bytes.
fn tail(proc: &Proc, max: usize) -> String {
    let t = proc.log_tail(max);
    let whole = std::fs::metadata(proc.log_path()).is_ok_and(|m| m.len() <= t.len() as u64);
    match t.split_once('\n') {
        Some((_, rest)) if !whole => rest.to_string(),
        _ => t,
    }
}

/// Builds a client from a kubeconfig file (its current context).
pub async fn client_from(kubeconfig: &Path) -> Result<Client, String> {
    let kc = Kubeconfig::read_from(kubeconfig).map_err(|e| format!("read kubeconfig: {e}"))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("load kubeconfig: {e}"))?;
    Client::try_from(config).map_err(|e| format!("create client: {e}"))
}

async fn probe(kubeconfig: PathBuf) -> Result<(), String> {
    let client = client_from(&kubeconfig).await?;
    let req = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let body = client
        .request_text(req)
        .await
        .map_err(|e| format!("GET /readyz: {e}"))?;
    if body.trim() != "ok" {
        return Err(format!("GET /readyz answered {body:?}"));
    }
    Api::<Namespace>::all(client)
        .get("default")
        .await
        .map_err(|e| format!("GET namespace default: {e}"))?;
    Ok(())
}

// `start` is synchronous and may be called from inside a Tokio runtime (an async test), where
// `block_on` would panic; a scoped thread with its own runtime works from both.
fn block_on<F: Future + Send>(fut: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build Tokio runtime")
                .block_on(fut)
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

fn start_etcd(etcd_bin: &Path, dir: &Path) -> (Proc, String) {
    let client_url = format!("http://127.0.0.1:{}", free_port());
    let peer_url = format!("http://127.0.0.1:{}", free_port());
    let mut cmd = Command::new(etcd_bin);
    cmd.args([
        "--name=default".to_string(),
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=default={peer_url}"),
        // Throwaway data: durability only costs time (envtest does the same).
        "--unsafe-no-fsync=true".to_string(),
    ]);
    let proc = Proc::spawn("etcd", &cmd, dir);
    // The API server retries etcd for a while, but an etcd that fails to start should fail here
    // with its own log rather than as an API-server timeout.
    let health = format!("{}/health", client_url.trim_start_matches("http://"));
    let deadline = Instant::now() + READY_TIMEOUT;
    while !etcd_healthy(&health) {
        if !proc.is_running() || Instant::now() > deadline {
            panic!(
                "etcd on {client_url} did not become healthy\n--- {} (tail) ---\n{}",
                proc.log_path().display(),
                tail(&proc, 6000)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (proc, client_url)
}

// A plain HTTP/1.0 GET: etcd's client URL is plain HTTP here and this avoids another client.
fn etcd_healthy(host_and_path: &str) -> bool {
    use std::io::{Read, Write};
    let Some((host, path)) = host_and_path.split_once('/') else {
        return false;
    };
    let Ok(mut s) = std::net::TcpStream::connect(host) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200")
}

// The janitor removes `dir` when stopped, after the processes whose pid files are in it (written
// there by `Proc::spawn`) have exited, at most 4 s later so that it beats Proc's 5 s KILL.
const JANITOR: &str = r#"
dir=$1
cleanup() {
  for _ in $(seq 40); do
    alive=0
    for f in "$dir"/*.pid; do
      [ "$f" = "$dir/janitor.pid" ] && continue
      pid=$(cat "$f" 2>/dev/null) || continue
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  rm -rf "$dir"
  kill "$nap" 2>/dev/null
  exit 0
}
trap cleanup TERM INT
while :; do sleep 60 & nap=$!; wait "$nap"; done
"#;

fn start_janitor(dir: &Path) -> Proc {
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(JANITOR).arg("janitor").arg(dir);
    Proc::spawn("janitor", &cmd, dir)
}

/// A random bearer token (128 bits from the kernel).
fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a fresh ECDSA P-256 key pair: kube-apiserver signs ServiceAccount tokens with
/// `service-account.key` (PKCS#8) and verifies them with `service-account.pub`.
fn write_service_account_key(dir: &Path) {
    let key = rcgen::KeyPair::generate().expect("generate service-account key");
    std::fs::write(dir.join("service-account.key"), key.serialize_pem())
        .expect("write service-account key");
    std::fs::write(dir.join("service-account.pub"), key.public_key_pem())
        .expect("write service-account public key");
}

/// The shared control plane with the CRD installed and a new `namespace`; returns it and an
/// admin client.
pub async fn shared_with_namespace(namespace: &str) -> (&'static ControlPlane, Client) {
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    crate::common::crd::install(&client).await;
    create_namespace(&client, namespace).await;
    (cp, client)
}

/// Creates the namespace `name`, which must not exist yet.
pub async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}
