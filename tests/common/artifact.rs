//! The producer CLI seen from the tests: a source tree to publish, the files of a directory,
//! and our binary run like a test-bed tool (an isolated home with the registry's Docker config
//! and CA).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Output, Stdio};

use ocisource::registry::{Client, Credential, TlsMaterial, TransportConfig};

use super::registry::Registry;
use super::tools::ToolHome;

/// A directory with `deploy.yaml` holding `text` and an overlay's `kustomization.yaml`.
pub fn deploy_with_overlay(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deploy.yaml"), text).unwrap();
    std::fs::create_dir(dir.path().join("overlays")).unwrap();
    std::fs::write(
        dir.path().join("overlays/kustomization.yaml"),
        "resources: []\n",
    )
    .unwrap();
    dir
}

/// A source tree with nested dirs, an executable, and files flux's default list ignores.
pub fn content_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("overlays/prod")).unwrap();
    std::fs::create_dir_all(r.join("scripts")).unwrap();
    std::fs::create_dir_all(r.join(".git")).unwrap();
    std::fs::write(r.join("deploy.yaml"), "kind: Deployment\n").unwrap();
    std::fs::write(
        r.join("overlays/prod/kustomization.yaml"),
        "resources: []\n",
    )
    .unwrap();
    std::fs::write(r.join("scripts/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        r.join("scripts/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(r.join(".git/config"), "[core]\n").unwrap();
    std::fs::write(r.join(".gitignore"), "*.tmp\n").unwrap();
    std::fs::write(r.join("logo.png"), "png").unwrap();
    dir
}

/// The files flux's default ignore list keeps from [`content_dir`].
pub fn expected_files() -> BTreeMap<String, String> {
    [
        ("deploy.yaml", "kind: Deployment\n"),
        ("overlays/prod/kustomization.yaml", "resources: []\n"),
        ("scripts/run.sh", "#!/bin/sh\necho hi\n"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The regular files under `dir`, relative, with their contents.
pub fn files_of(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// `ocisource <args>` in `home`'s environment (its Docker config and CA), `--insecure-registry`
/// added for a plain-HTTP registry when `registry_flags`; the output, whatever the exit status.
pub fn ocisource(home: &ToolHome, args: &[&str], registry_flags: bool) -> Output {
    // Integration tests know the binary; the examples that include this module never call it.
    let Some(bin) = option_env!("CARGO_BIN_EXE_ocisource") else {
        panic!("the ocisource binary runs from integration tests only");
    };
    let mut cmd = home.command_for(Path::new(bin));
    cmd.args(args).stdin(Stdio::null());
    if registry_flags && home.plain_http() {
        cmd.arg("--insecure-registry");
    }
    cmd.output().unwrap()
}

/// stderr then stdout of `out`, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

/// Our registry client trusting `reg`'s CA (plain HTTP allowed for an HTTP registry) and the
/// test bed's credentials for it.
pub fn client_for(reg: &Registry) -> (Client, Credential) {
    let client = Client::new(&TransportConfig {
        tls: TlsMaterial {
            ca_pem: reg.ca_pem().map(String::into_bytes),
            ..TlsMaterial::default()
        },
        insecure: reg.insecure(),
        ..TransportConfig::default()
    })
    .unwrap();
    let cred = match reg.credentials() {
        Some((username, password)) => Credential::Basic { username, password },
        None => Credential::Anonymous,
    };
    (client, cred)
}

/// `data` gunzipped.
pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(data), &mut out).unwrap();
    out
}
