//! Build script: records the git commit the binary was built from, for `ocisource --version`.
//!
//! Order: `OCISOURCE_COMMIT` from the environment (the Dockerfile and scripts/image.sh set it;
//! a source tarball has no .git), then `git rev-parse HEAD`, then "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=OCISOURCE_COMMIT");
    let commit = std::env::var("OCISOURCE_COMMIT")
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .or_else(git_head)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=OCISOURCE_COMMIT={commit}");
}

/// The checked-out commit, and the files whose change moves it (so that cargo reruns us).
fn git_head() -> Option<String> {
    let head = git(&["rev-parse", "HEAD"])?;
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &branch])
    {
        println!("cargo:rerun-if-changed={p}");
    }
    Some(head)
}

/// One line of a git command's output; None when git or the repository is missing.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let line = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!line.is_empty()).then_some(line)
}
