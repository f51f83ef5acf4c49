//! The producer verbs beside `push artifact` (`build`, `pull`, `tag`, `list`, `diff`) against
//! the test bed: the real registries (plain HTTP, HTTPS, mTLS, basic and bearer auth) and the
//! real flux CLI on the other side of every round trip.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::Read as _;
use std::path::Path;

use common::artifact::{content_dir, files_of, ocisource, text};
use common::registry::{Flavor, Registry, Security};
use common::tools::{self, ToolHome};

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn build_writes_the_tar_flux_build_writes() {
    // No registry is involved; a home only isolates the tools.
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let home = ToolHome::new(&reg);
    let content = content_dir();
    let ours = home.dir().join("ours.tgz");
    let flux = home.dir().join("flux.tgz");
    for extra in [
        &[][..],
        &["--ignore-paths", "*.sh,.git/", "--ignore-paths=!logo.png"][..],
    ] {
        let mut args = vec![
            "build",
            "artifact",
            "--path",
            path_str(content.path()),
            "-o",
            path_str(&ours),
        ];
        args.extend_from_slice(extra);
        let out = ocisource(&home, &args, false);
        assert!(out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr,
            format!(
                "► building artifact from {}\n✔ artifact created at {}\n",
                content.path().display(),
                ours.display()
            )
        );
        let mut cmd = home.command("flux");
        cmd.args(["build", "artifact", "--path"])
            .arg(content.path())
            .arg("-o")
            .arg(&flux)
            .args(extra);
        tools::run(&mut cmd);
        let ours_bytes = std::fs::read(&ours).unwrap();
        let flux_bytes = std::fs::read(&flux).unwrap();
        assert_eq!(gunzip(&ours_bytes), gunzip(&flux_bytes), "{extra:?}");
        assert_eq!(&ours_bytes[..10], &flux_bytes[..10], "gzip headers match");
    }

    // A single file, and flux's text for a missing path.
    let file = content.path().join("deploy.yaml");
    let out = ocisource(
        &home,
        &[
            "build",
            "artifact",
            "-p",
            path_str(&file),
            "-o",
            path_str(&ours),
        ],
        false,
    );
    assert!(out.status.success(), "{}", text(&out));
    let unpacked = tempfile::tempdir().unwrap();
    tar::Archive::new(&gunzip(&std::fs::read(&ours).unwrap())[..])
        .unpack(unpacked.path())
        .unwrap();
    assert_eq!(
        files_of(unpacked.path()),
        [("deploy.yaml".to_string(), "kind: Deployment\n".to_string())].into()
    );
    let out = ocisource(&home, &["build", "artifact", "-p", "/nonexistent"], false);
    assert!(!out.status.success());
    assert!(
        text(&out)
            .contains("invalid path '/nonexistent', must point to an existing directory or file"),
        "{}",
        text(&out)
    );
}
