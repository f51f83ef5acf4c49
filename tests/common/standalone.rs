//! `ocisource reconcile` (standalone mode) as the tests run it.

use std::path::Path;
use std::process::Command;

use ocisource::api::v1::OciRepository;
use ocisource::core::summary::kstatus_violations;
use serde_json::Value;

use super::rss::{Measured, run_measured};

/// `ocisource reconcile -f <manifest> --storage-path <storage> -o json`, the manifest written
/// into `dir` (which must outlive the command).
pub fn reconcile_command(manifest: &Value, storage: &Path, dir: &Path) -> Command {
    let file = dir.join("ocirepository.yaml");
    std::fs::write(&file, serde_json::to_string(manifest).unwrap()).unwrap();
    // Integration tests know the binary; the examples that include this module never call it.
    let Some(bin) = option_env!("CARGO_BIN_EXE_ocisource") else {
        panic!("ocisource reconcile runs from integration tests only");
    };
    let mut cmd = Command::new(bin);
    super::offline_tuf(&mut cmd);
    cmd.arg("reconcile")
        .arg("-f")
        .arg(&file)
        .arg("--storage-path")
        .arg(storage)
        .args(["-o", "json"]);
    cmd
}

/// [`reconcile_command`] with `args`, run to completion with its peak RSS; the printed object
/// (`Value::Null` when it printed none).
pub fn reconcile_measured(manifest: &Value, storage: &Path, args: &[&str]) -> (Measured, Value) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = reconcile_command(manifest, storage, dir.path());
    cmd.args(args);
    let m = run_measured(&mut cmd);
    let obj = serde_json::from_str(&m.stdout).unwrap_or(Value::Null);
    (m, obj)
}

/// What one `ocisource reconcile` did.
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// The printed object.
    pub obj: Value,
    /// Its stderr.
    pub stderr: String,
}

/// `ocisource reconcile` of `manifest`, with Secrets from `secrets` when given; fails when it
/// prints no object.
pub fn run_reconcile(manifest: &Value, storage: &Path, secrets: Option<&Path>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = reconcile_command(manifest, storage, dir.path());
    if let Some(s) = secrets {
        cmd.arg("--secrets-dir").arg(s);
    }
    run_command(&mut cmd)
}

/// Runs a [`reconcile_command`] (with any further flags); fails when it prints no object.
pub fn run_command(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let obj = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no object printed ({e}); stderr:\n{stderr}"));
    Run {
        code: out.status.code().unwrap(),
        obj,
        stderr,
    }
}

/// Asserts that a printed object's conditions read as kstatus expects.
pub fn assert_kstatus_sound(obj: &Value) {
    let typed: OciRepository = serde_json::from_value(obj.clone()).unwrap();
    let status = typed.status.unwrap();
    let violations = kstatus_violations(
        &status.conditions,
        typed.metadata.generation.unwrap(),
        status.observed_generation,
    );
    assert!(violations.is_empty(), "{violations:?}");
}
