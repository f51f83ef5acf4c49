//! The GitHub workflows and the shell scripts, linted with the test bed's actionlint (which runs
//! the test bed's shellcheck on every `run:` step) and shellcheck (settings in `.shellcheckrc`):
//! `.github/workflows/*.yaml`, `scripts/*.sh`, `testbed/*.sh` and `.ci/run`. Each linter is also
//! shown a seeded fault, so that one that checks nothing fails here.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::bin;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files directly in `dir` (relative to the repository) whose names end with `suffix`.
fn files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

fn shell_scripts() -> Vec<PathBuf> {
    let mut out = files("scripts", ".sh");
    out.extend(files("testbed", ".sh"));
    out.push(root().join(".ci/run"));
    out
}

/// actionlint on `files`, with the test bed's shellcheck and without pyflakes (no Python steps).
fn actionlint(files: &[PathBuf]) -> Output {
    let shellcheck = format!("-shellcheck={}", bin("shellcheck").display());
    Command::new(bin("actionlint"))
        .args([&shellcheck, "-pyflakes=", "-no-color"])
        .args(files)
        .current_dir(root())
        .output()
        .expect("run actionlint")
}

fn shellcheck(files: &[PathBuf]) -> Output {
    Command::new(bin("shellcheck"))
        .arg("--external-sources")
        .args(files)
        .current_dir(root())
        .output()
        .expect("run shellcheck")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_workflows_pass_actionlint_and_their_run_steps_pass_shellcheck() {
    let workflows = files(".github/workflows", ".yaml");
    let names: Vec<_> = workflows
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["ci.yaml", "e2e.yaml"]);
    let out = actionlint(&workflows);
    assert!(out.status.success(), "actionlint:\n{}", text(&out));
}

#[test]
fn the_shell_scripts_pass_shellcheck() {
    let scripts = shell_scripts();
    assert!(
        scripts.iter().any(|p| p.ends_with("scripts/e2e.sh")),
        "{scripts:?}"
    );
    let out = shellcheck(&scripts);
    assert!(out.status.success(), "shellcheck:\n{}", text(&out));
}

#[test]
fn the_linters_catch_seeded_faults() {
    let dir = tempfile::tempdir().unwrap();
    // An input actions/checkout does not have, and an unquoted expansion in a run step.
    let workflow = dir.path().join("faulty.yaml");
    std::fs::write(
        &workflow,
        "name: faulty\non: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      \
         - uses: actions/checkout@v5\n        with:\n          fetch-deep: 1\n      \
         - run: ls $HOME\n",
    )
    .unwrap();
    let out = actionlint(std::slice::from_ref(&workflow));
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("input \"fetch-deep\" is not defined"),
        "{report}"
    );
    assert!(report.contains("SC2086"), "{report}");

    let script = dir.path().join("faulty.sh");
    std::fs::write(&script, "#!/usr/bin/env bash\ncd $1\n").unwrap();
    let out = shellcheck(std::slice::from_ref(&script));
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("SC2086"), "{report}");
}
