//! The test bed seen from Rust: finding the pinned components, picking free ports, and running
//! processes that never outlive the test binary.
//!
//! Each integration test file does `mod common;` and uses only what it needs, hence the
//! `dead_code` allowance below.
#![allow(dead_code)]

pub mod artifact;
pub mod chart;
pub mod controller;
pub mod controlplane;
pub mod crd;
pub mod fake_image;
pub mod fake_registry;
pub mod flux_controller;
pub mod in_process;
pub mod object;
pub mod private_pull;
pub mod registry;
pub mod rss;
pub mod standalone;
pub mod static_server;
pub mod tarball;
pub mod tools;
pub mod verification;
pub mod writes;

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where the binary's TUF client is pointed unless a test names a mirror: a loopback port
/// nothing listens on, so that no test ever reaches the public-good Sigstore repository.
pub const DEAD_TUF_MIRROR: &str = "http://127.0.0.1:9";

/// Points `cmd` (the binary) at [`DEAD_TUF_MIRROR`] and a TUF cache under the temp directory,
/// through the environment, so that a test's own `--sigstore-tuf-*` flags still win.
pub fn offline_tuf(cmd: &mut Command) -> &mut Command {
    cmd.env("SIGSTORE_TUF_MIRROR", DEAD_TUF_MIRROR)
        .env("TUF_ROOT", std::env::temp_dir().join("ocisource-tests-tuf"))
}

/// The directory holding the test-bed components (symlinks made by `testbed/install.sh`).
pub fn testbed_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OCISOURCE_TESTBED_BIN") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("OCISOURCE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is not set");
            PathBuf::from(home).join(".cache/ocisource")
        });
    cache.join("testbed/bin")
}

/// Path of the test-bed component `name` (e.g. `kube-apiserver`, `flux`).
///
/// Panics with the install command when it is missing: a test never skips silently.
pub fn bin(name: &str) -> PathBuf {
    let path = testbed_bin_dir().join(name);
    if !path.exists() {
        panic!(
            "test-bed component `{name}` not found at {}: run `testbed/install.sh` \
             (the README's test command runs it for you)",
            path.display()
        );
    }
    path
}

/// The directory `sub` installed next to the test-bed component `name` (e.g. `crds/` beside
/// kustomize-controller).
///
/// Panics with the install command when it is missing, as [`bin`] does.
pub fn beside_bin(name: &str, sub: &str) -> PathBuf {
    let link = bin(name);
    let real = std::fs::canonicalize(&link)
        .unwrap_or_else(|e| panic!("failed to resolve {}: {e}", link.display()));
    let dir = real
        .parent()
        .expect("a test-bed component lives in a directory")
        .join(sub);
    if !dir.is_dir() {
        panic!(
            "`{sub}` of test-bed component `{name}` not found at {}: run `testbed/install.sh` \
             (the README's test command runs it for you)",
            dir.display()
        );
    }
    dir
}

/// A loopback TCP port that was free a moment ago and that this process has not handed out
/// before (tests in one binary run in parallel).
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral port")
            .port();
        if given.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// Whether `GET http://127.0.0.1:<port><path>` answers 200 (a probe of a test-bed process).
pub fn loopback_get_ok(port: u16, path: &str) -> bool {
    use std::io::Write;
    std::net::TcpStream::connect(("127.0.0.1", port))
        .ok()
        .and_then(|mut s| {
            s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
                .ok()?;
            let mut buf = String::new();
            s.read_to_string(&mut buf).ok()?;
            Some(buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200"))
        })
        .unwrap_or(false)
}

/// [`wait_until`] for async checks, awaited in the test's own runtime. (Blocking on a Tokio-driven
/// future inside a Tokio test, e.g. with `futures::executor::block_on`, livelocks once the task's
/// cooperative budget is spent: the wait would then spin instead of timing out.)
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !ready().await {
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `ready` every 100 ms until it returns true; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// The wrapper holds the child and reads its stdin, a pipe whose write end only the test process
// has. When the test process goes away for any reason (normal exit, panic, abort, SIGKILL) the
// pipe closes, `read` sees EOF, and the wrapper stops the child. This is what lets a process live
// in a `static` (never dropped) without leaking past the test binary.
const WRAPPER: &str = r#"
"$@" </dev/null &
child=$!
echo "$child" > "$OCISOURCE_PROC_PIDFILE"
while read -r _; do :; done
kill -TERM "$child" 2>/dev/null
for _ in $(seq 100); do kill -0 "$child" 2>/dev/null || exit 0; sleep 0.05; done
kill -KILL "$child" 2>/dev/null
"#;

/// A test-bed process: stopped on drop and whenever the test process dies.
///
/// Its stdout and stderr go to `<dir>/<name>.log`.
pub struct Proc {
    name: String,
    wrapper: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd` (its program, arguments, environment and working directory are kept),
    /// logging to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, cmd: &Command, log_dir: &Path) -> Proc {
        let log = log_dir.join(format!("{name}.log"));
        let pidfile = log_dir.join(format!("{name}.pid"));
        let _ = std::fs::remove_file(&pidfile);
        let out = File::create(&log).expect("create process log");
        let err = out.try_clone().expect("clone log handle");
        let mut wrapper = Command::new("bash");
        wrapper
            .arg("-c")
            .arg(WRAPPER)
            .arg(format!("ocisource-test-{name}"))
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .env("OCISOURCE_PROC_PIDFILE", &pidfile)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapper.env(k, v),
                None => wrapper.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapper.current_dir(dir);
        }
        let mut wrapper = wrapper
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {name}: {e}"));
        let stdin = wrapper.stdin.take();
        let mut pid = 0;
        wait_until(&format!("{name} to start"), Duration::from_secs(10), || {
            pid = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            pid != 0
        });
        Proc {
            name: name.to_string(),
            wrapper,
            stdin,
            pid,
            log,
        }
    }

    /// The process id of the started program (not of the wrapper).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the program is still running.
    pub fn is_running(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
    }

    /// Path of the process log.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `max` bytes of the process log, for failure messages.
    pub fn log_tail(&self, max: usize) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        let start = s.len().saturating_sub(max);
        let start = (start..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[start..].to_string()
    }

    /// Stops the program (TERM, then KILL after 5 s) and waits for it.
    pub fn stop(&mut self) {
        if self.stdin.take().is_some() {
            let _ = self.wrapper.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proc")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .finish()
    }
}

/// Every file below `dir`, recursively (directories are descended, not listed).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
