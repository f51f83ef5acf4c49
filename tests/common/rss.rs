//! Peak resident memory of a child process, for the memory bounds of hostile inputs.
//!
//! The peak is the kernel's high-water mark (`VmHWM` in `/proc/<pid>/status`), sampled every
//! 2 ms until the process exits: a zombie no longer reports it, so growth in the last
//! milliseconds before exit can be missed, never counted twice.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The memory limit of the shipped Deployment (`deploy/deployment.yaml`), which every hostile
/// input must stay under.
pub const DEPLOYMENT_MEMORY_LIMIT: u64 = 256 << 20;

/// What [`run_measured`] saw.
#[derive(Debug)]
pub struct Measured {
    /// The exit status.
    pub status: ExitStatus,
    /// Everything the process wrote to stdout.
    pub stdout: String,
    /// Everything the process wrote to stderr.
    pub stderr: String,
    /// The highest resident set size seen, in bytes.
    pub peak_rss: u64,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

/// Runs `cmd` to completion (stdin closed, stdout and stderr captured), sampling its peak RSS.
pub fn run_measured(cmd: &mut Command) -> Measured {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("failed to start {:?}: {e}", cmd.get_program()));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_path)
            .ok()
            .and_then(|s| vm_hwm_kib(&s))
        {
            peak_kib = peak_kib.max(kib);
        }
        match child.try_wait().expect("wait for the child") {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    Measured {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        peak_rss: peak_kib * 1024,
        elapsed: start.elapsed(),
    }
}

fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
