//! The container image built without a container engine: scripts/image.sh packs the binary this
//! test run already has (the release image is the same script without `--binary`), pushes it to a
//! test-bed registry, and we pull it back with crane: the config (user, entrypoint, command,
//! labels, platform), the layers (CA bundle, passwd, /tmp) and the binary, run from the
//! extracted layers with the layers' own loader and libraries.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::registry::{Flavor, Registry, Security};
use common::tools;
use serde_json::Value;

/// The commit build.rs recorded for this build, the one `--version` of the binary names.
const COMMIT: &str = env!("OCISOURCE_COMMIT");

#[test]
fn image_script_pushes_a_runnable_nonroot_image() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let reference = format!("{}/ocisource/ocisource", reg.host());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/image.sh");
    let out = tools::run(
        Command::new("bash")
            .arg(&script)
            .args(["--binary", env!("CARGO_BIN_EXE_ocisource"), "--insecure"])
            .arg(&reference)
            .env("CRANE", common::bin("crane"))
            .env("OCISOURCE_COMMIT", COMMIT),
    );
    // No tag given: the crate version; the script prints the pushed reference with its digest.
    let tagged = format!("ocisource/ocisource:{}", env!("CARGO_PKG_VERSION"));
    let digest = tools::crane_digest(&reg, &tagged);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}/{tagged}@{digest}", reg.host())
    );

    let manifest: Value = serde_json::from_str(&tools::crane_manifest(&reg, &tagged)).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "base and binary layers: {manifest}");
    for layer in layers {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }

    let config: Value = serde_json::from_str(&tools::crane(
        &reg,
        ["config", &format!("{}/{tagged}", reg.host())],
    ))
    .unwrap();
    assert_eq!(config["os"], "linux");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(config["architecture"], arch);
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/usr/local/bin/ocisource"])
    );
    assert_eq!(c["Cmd"], serde_json::json!(["controller"]));
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"),
        "{env:?}"
    );
    assert!(env.contains(&"MALLOC_ARENA_MAX=2"), "{env:?}");
    let labels = &c["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/ocisource/ocisource"
    );
    assert_eq!(labels["org.opencontainers.image.revision"], COMMIT);
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");

    // The flattened filesystem, as a runtime would unpack it.
    let root = tempfile::tempdir().unwrap();
    let fs_tar = root.path().join("fs.tar");
    tools::crane(
        &reg,
        [
            "export",
            &format!("{}/{tagged}", reg.host()),
            fs_tar.to_str().unwrap(),
        ],
    );
    let dir = root.path().join("rootfs");
    std::fs::create_dir(&dir).unwrap();
    tools::run(
        Command::new("tar")
            .arg("-xpf")
            .arg(&fs_tar)
            .arg("-C")
            .arg(&dir),
    );

    let passwd = std::fs::read_to_string(dir.join("etc/passwd")).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    let group = std::fs::read_to_string(dir.join("etc/group")).unwrap();
    assert!(group.contains("nonroot:x:65532:"), "{group}");
    let bundle = std::fs::read_to_string(dir.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(bundle.contains("-----BEGIN CERTIFICATE-----"));
    let tmp = std::fs::metadata(dir.join("tmp")).unwrap();
    assert!(tmp.is_dir());
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    assert!(
        !dir.join("bin/sh").exists() && !dir.join("usr/bin/sh").exists(),
        "no shell in the image"
    );

    // Run the binary with the layer's loader and only the layer's libraries.
    let binary = dir.join("usr/local/bin/ocisource");
    let loader = find(&dir, &|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("ld-linux"))
    });
    assert_eq!(
        loader.len(),
        1,
        "one dynamic loader in the image: {loader:?}"
    );
    let mut lib_dirs: Vec<PathBuf> = find(&dir, &|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("lib") && n.contains(".so"))
    })
    .into_iter()
    .filter_map(|p| p.parent().map(Path::to_path_buf))
    .collect();
    lib_dirs.sort();
    lib_dirs.dedup();
    let lib_path = std::env::join_paths(&lib_dirs).unwrap();
    let version = tools::run(
        Command::new(&loader[0])
            .arg("--inhibit-cache")
            .arg("--library-path")
            .arg(&lib_path)
            .arg(&binary)
            .arg("--version")
            .env_clear(),
    );
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!(
            "ocisource {} (commit {COMMIT})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(!COMMIT.is_empty());
}

/// Regular files under `dir` for which `pick` holds.
fn find(dir: &Path, pick: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            found.extend(find(&path, pick));
        } else if meta.is_file() && pick(&path) {
            found.push(path);
        }
    }
    found
}

/// The Dockerfile and scripts/image.sh build the same image: same cargo command and features,
/// user, entrypoint, command, label keys, and the Dockerfile's version is the crate's.
#[test]
fn dockerfile_and_image_script_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let script = std::fs::read_to_string(root.join("scripts/image.sh")).unwrap();

    let build = "cargo build --release --locked --features aws,azure,gcp";
    assert!(dockerfile.contains(build), "Dockerfile: {build}");
    assert!(script.contains(build), "image.sh: {build}");
    assert!(dockerfile.contains("OCISOURCE_COMMIT=\"$REVISION\""));

    assert!(dockerfile.contains("\nUSER 65532:65532\n"));
    assert!(script.contains("--user 65532:65532"));
    assert!(dockerfile.contains("\nENTRYPOINT [\"/usr/local/bin/ocisource\"]\n"));
    assert!(script.contains("--entrypoint /usr/local/bin/ocisource"));
    assert!(dockerfile.contains("\nCMD [\"controller\"]\n"));
    assert!(script.contains("--cmd controller"));
    assert!(dockerfile.contains("\nENV MALLOC_ARENA_MAX=2\n"));
    assert!(script.contains("--env MALLOC_ARENA_MAX=2 "));
    assert!(
        dockerfile.contains(":nonroot\n"),
        "a nonroot distroless base"
    );

    assert!(
        dockerfile.contains(&format!("ARG VERSION={}\n", env!("CARGO_PKG_VERSION"))),
        "the Dockerfile's ARG VERSION is Cargo.toml's version"
    );
    let label_keys = |text: &str| -> Vec<String> {
        let mut keys: Vec<String> = text
            .match_indices("org.opencontainers.image.")
            .map(|(i, _)| {
                text[i..]
                    .split(['=', ' ', '"', '*'])
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            // The header comments' `org.opencontainers.image.*` is no key.
            .filter(|k| k.len() > "org.opencontainers.image.".len())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let keys = label_keys(&dockerfile);
    assert_eq!(keys, label_keys(&script));
    for key in ["source", "revision", "version", "licenses"] {
        assert!(
            keys.contains(&format!("org.opencontainers.image.{key}")),
            "{keys:?}"
        );
    }
    assert!(
        dockerfile.contains("linux/amd64") && dockerfile.contains("linux/arm64"),
        "both platforms"
    );
}
