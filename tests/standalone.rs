//! `ocisource reconcile` end to end: artifacts pushed by the real flux and helm CLIs into the
//! test-bed registries, reconciled by the binary, checked in its printed status and in the
//! artifact store.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::fake_image::{FLUX_LAYER, Image, sha256};
use common::fake_registry::{Fake, Reply};
use common::object::{OciRepo, json_condition as condition};
use common::registry::{Flavor, Registry, Security};
use common::rss::DEPLOYMENT_MEMORY_LIMIT;
use common::standalone::{Run, assert_kstatus_sound, reconcile_measured, run_reconcile};
use common::tarball::{Tar, noise};
use common::tools;
use ocisource::api::v1::OciRepository;
use ocisource::core::reconcile;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// Asserts that `run` exited 1 with `FetchFailed` for `reason`, and returns its message.
fn fetch_failed(run: &Run, reason: &str) -> String {
    assert_eq!(run.code, 1);
    let (_, got, message) = condition(&run.obj, "FetchFailed").unwrap();
    assert_eq!(got, reason, "{message}");
    message
}

fn reconcile(manifest: &Value, storage: &Path, secrets: Option<&Path>) -> Run {
    run_reconcile(manifest, storage, secrets)
}

fn manifest(name: &str, url: &str, extra: Value) -> Value {
    OciRepo::new(name)
        .namespace("apps")
        .url(url)
        .interval("1m")
        .insecure()
        .spec_fields(extra)
        .build()
}

fn sha256_file(path: &Path) -> String {
    let hash = Sha256::digest(std::fs::read(path).unwrap());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Lists the files of a stored tar.gz with their contents.
fn untar(path: &Path) -> Vec<(String, String)> {
    let out = Command::new("tar").arg("-tzf").arg(path).output().unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(path)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let mut files = vec![];
    for name in String::from_utf8_lossy(&out.stdout).lines() {
        let p = dir.path().join(name);
        if p.is_file() {
            files.push((
                name.trim_start_matches("./").to_string(),
                std::fs::read_to_string(p).unwrap(),
            ));
        }
    }
    files.sort();
    files
}

#[test]
fn a_flux_artifact_is_pulled_stored_and_reported_ready_then_left_alone() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = common::artifact::deploy_with_overlay("kind: Deployment\n");
    let digest = tools::flux_push_artifact(
        &reg,
        "apps/podinfo",
        "v1.0.0",
        content.path(),
        "https://github.com/example/podinfo",
        "main@sha1:0123456789abcdef",
        &[],
    );
    let storage = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/apps/podinfo", reg.host());
    let m = manifest("podinfo", &url, json!({"ref": {"tag": "v1.0.0"}}));
    let first = reconcile(&m, storage.path(), None);
    assert_eq!(first.code, 0, "{}\n{}", first.obj["status"], first.stderr);

    let status = &first.obj["status"];
    let revision = format!("v1.0.0@{digest}");
    let path = format!("ocirepository/apps/podinfo/{digest}.tar.gz");
    assert_eq!(status["artifact"]["revision"], revision.as_str());
    assert_eq!(status["artifact"]["path"], path.as_str());
    assert_eq!(
        status["artifact"]["url"],
        format!("http://localhost:9090/{path}")
    );
    assert_eq!(
        status["url"],
        "http://localhost:9090/ocirepository/apps/podinfo/latest.tar.gz"
    );
    let stored = storage.path().join(&path);
    assert_eq!(status["artifact"]["digest"], sha256_file(&stored).as_str());
    assert_eq!(
        status["artifact"]["size"].as_u64().unwrap(),
        std::fs::metadata(&stored).unwrap().len()
    );
    let meta = &status["artifact"]["metadata"];
    assert_eq!(
        meta["org.opencontainers.image.source"],
        "https://github.com/example/podinfo"
    );
    assert_eq!(
        meta["org.opencontainers.image.revision"],
        "main@sha1:0123456789abcdef"
    );
    let message = format!("stored artifact for digest '{revision}'");
    assert_eq!(
        condition(&first.obj, "Ready"),
        Some(("True".into(), "Succeeded".into(), message.clone()))
    );
    assert_eq!(
        condition(&first.obj, "ArtifactInStorage"),
        Some(("True".into(), "Succeeded".into(), message))
    );
    assert_eq!(status["observedGeneration"], 1);
    assert_kstatus_sound(&first.obj);
    assert_eq!(
        untar(&stored),
        vec![
            ("deploy.yaml".to_string(), "kind: Deployment\n".to_string()),
            (
                "overlays/kustomization.yaml".to_string(),
                "resources: []\n".to_string()
            ),
        ]
    );
    assert!(
        storage
            .path()
            .join("ocirepository/apps/podinfo/latest.tar.gz")
            .exists(),
        "latest.tar.gz symlink"
    );

    // Fed back in, the output is the previous status: nothing is rebuilt.
    let second = reconcile(&first.obj, storage.path(), None);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        second.obj["status"]["artifact"],
        first.obj["status"]["artifact"]
    );
    assert_eq!(
        second.obj["status"]["conditions"],
        first.obj["status"]["conditions"]
    );
}

#[test]
fn semver_and_digest_references_resolve_like_flux() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let content = common::artifact::deploy_with_overlay("kind: Deployment\n");
    let mut digests = std::collections::BTreeMap::new();
    for tag in ["6.1.4", "6.1.5", "6.1.6", "6.2.0-rc.1", "latest"] {
        let d = tools::flux_push_artifact(&reg, "podinfo", tag, content.path(), "src", tag, &[]);
        digests.insert(tag, d);
    }
    let storage = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/podinfo", reg.host());

    let run = reconcile(
        &manifest("sv", &url, json!({"ref": {"semver": ">= 6.1 <= 6.1.5"}})),
        storage.path(),
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.obj["status"]["artifact"]["revision"],
        format!("6.1.5@{}", digests["6.1.5"])
    );

    let run = reconcile(
        &manifest("pre", &url, json!({"ref": {"semver": ">= 6.1.0-0"}})),
        storage.path(),
        None,
    );
    assert_eq!(
        run.obj["status"]["artifact"]["revision"],
        format!("6.2.0-rc.1@{}", digests["6.2.0-rc.1"])
    );

    let run = reconcile(&manifest("latest", &url, json!({})), storage.path(), None);
    assert_eq!(
        run.obj["status"]["artifact"]["revision"],
        format!("latest@{}", digests["latest"])
    );

    let d = &digests["6.1.4"];
    let run = reconcile(
        &manifest(
            "dig",
            &url,
            json!({"ref": {"digest": d, "semver": ">= 6.1.5", "tag": "6.1.6"}}),
        ),
        storage.path(),
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.obj["status"]["artifact"]["revision"],
        d.as_str(),
        "digest beats semver and tag"
    );

    let run = reconcile(
        &manifest("none", &url, json!({"ref": {"semver": "<= 6.1.0"}})),
        storage.path(),
        None,
    );
    assert_eq!(run.code, 1);
    let (status, reason, message) = condition(&run.obj, "FetchFailed").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "ReadOperationFailed")
    );
    assert_eq!(
        message,
        format!(
            "failed to determine the artifact tag for '{url}': no match found for semver: <= 6.1.0"
        )
    );
    assert_eq!(
        condition(&run.obj, "Ready").unwrap().1,
        "ReadOperationFailed"
    );
    assert!(run.obj["status"].get("artifact").is_none());
    assert_kstatus_sound(&run.obj);
}

#[test]
fn reference_errors_stall_or_retry_with_fluxs_reasons() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = common::artifact::deploy_with_overlay("kind: Deployment\n");
    tools::flux_push_artifact(&reg, "app", "v1", content.path(), "src", "rev", &[]);
    let storage = tempfile::tempdir().unwrap();

    let bad = format!("oci://{}/app:v1", reg.host());
    let run = reconcile(&manifest("tagged", &bad, json!({})), storage.path(), None);
    assert_eq!(run.code, 2, "a tag in the URL stalls");
    let (_, reason, message) = condition(&run.obj, "Stalled").unwrap();
    assert_eq!(reason, "URLInvalid");
    assert!(
        message.starts_with(&format!("URL validation failed for '{bad}'")),
        "{message}"
    );
    assert!(
        message.ends_with(
            "repository can only contain the characters \
             `abcdefghijklmnopqrstuvwxyz0123456789_-./`: app:v1"
        ),
        "{message}"
    );
    assert_eq!(condition(&run.obj, "Ready").unwrap().0, "False");
    assert!(condition(&run.obj, "Reconciling").is_none());
    assert_eq!(run.obj["status"]["observedGeneration"], 1);
    assert_kstatus_sound(&run.obj);

    let url = format!("oci://{}/app", reg.host());
    let run = reconcile(
        &manifest("missing", &url, json!({"ref": {"tag": "v9"}})),
        storage.path(),
        None,
    );
    let message = fetch_failed(&run, "OCIArtifactPullFailed");
    assert!(
        message.starts_with("failed to determine artifact digest"),
        "{message}"
    );
    assert!(message.contains("MANIFEST_UNKNOWN"), "{message}");
    let (_, reason, _) = condition(&run.obj, "Reconciling").unwrap();
    assert_eq!(reason, "ProgressingWithRetry");
    assert_eq!(
        run.obj["status"]["observedGeneration"], -1,
        "a retried error observes nothing"
    );

    let run = reconcile(
        &manifest("baddigest", &url, json!({"ref": {"digest": "invalid"}})),
        storage.path(),
        None,
    );
    assert_eq!(
        condition(&run.obj, "FetchFailed").unwrap().1,
        "OCIArtifactPullFailed"
    );

    let run = reconcile(
        &manifest(
            "mt",
            &url,
            json!({"ref": {"tag": "v1"}, "layerSelector": {"mediaType": "application/x-unknown"}}),
        ),
        storage.path(),
        None,
    );
    let message = fetch_failed(&run, "OCIArtifactLayerOperationFailed");
    assert_eq!(
        message,
        "failed to find layer with media type 'application/x-unknown' in artifact"
    );
}

#[test]
fn credentials_come_from_the_secrets_directory() {
    let reg = Registry::start(Flavor::Distribution, Security::Basic);
    let content = common::artifact::deploy_with_overlay("kind: Deployment\n");
    let digest =
        tools::flux_push_artifact(&reg, "private/app", "v1", content.path(), "s", "r", &[]);
    let storage = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/private/app", reg.host());

    let anonymous = reconcile(
        &manifest("anon", &url, json!({"ref": {"tag": "v1"}})),
        storage.path(),
        None,
    );
    assert_eq!(anonymous.code, 1);
    let message = condition(&anonymous.obj, "FetchFailed").unwrap().2;
    assert!(message.contains("UNAUTHORIZED"), "{message}");

    let secrets = tempfile::tempdir().unwrap();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "regcred", "namespace": "apps"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": reg.docker_config_json()},
    });
    std::fs::write(
        secrets.path().join("regcred.yaml"),
        serde_json::to_string(&secret).unwrap(),
    )
    .unwrap();
    let m = manifest(
        "authed",
        &url,
        json!({"ref": {"tag": "v1"}, "secretRef": {"name": "regcred"}}),
    );
    let run = reconcile(&m, storage.path(), Some(secrets.path()));
    assert_eq!(run.code, 0, "{}\n{}", run.obj["status"], run.stderr);
    assert_eq!(
        run.obj["status"]["artifact"]["revision"],
        format!("v1@{digest}")
    );
    let (_, password) = reg.credentials().unwrap();
    assert!(!run.stderr.contains(&password) && !run.obj.to_string().contains(&password));

    let m = manifest("nosecret", &url, json!({"secretRef": {"name": "absent"}}));
    let run = reconcile(&m, storage.path(), Some(secrets.path()));
    let message = fetch_failed(&run, "AuthenticationFailed");
    assert_eq!(
        message,
        "failed to get credential: failed to get secret 'apps/absent': secrets \"absent\" not found"
    );
}

#[test]
fn a_helm_chart_is_stored_as_pushed_in_copy_mode() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let charts = tempfile::tempdir().unwrap();
    let chart_dir = tools::write_minimal_chart(charts.path(), "podinfo", "6.2.1");
    let pushed = tools::helm_package_and_push(&reg, &chart_dir, "charts");
    let storage = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/{}", reg.host(), pushed.repository);
    let m = manifest(
        "chart",
        &url,
        json!({
            "ref": {"semver": ">= 6.0.0"},
            "layerSelector": {
                "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                "operation": "copy"
            }
        }),
    );
    let run = reconcile(&m, storage.path(), None);
    assert_eq!(run.code, 0, "{}\n{}", run.obj["status"], run.stderr);
    let artifact = &run.obj["status"]["artifact"];
    assert_eq!(artifact["revision"], format!("6.2.1@{}", pushed.digest));
    let stored = storage.path().join(artifact["path"].as_str().unwrap());
    let bytes = std::fs::read(&stored).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "the chart .tgz itself");
    let manifest: Value = serde_json::from_str(&tools::crane_manifest(
        &reg,
        &format!("{}:6.2.1", pushed.repository),
    ))
    .unwrap();
    let layer_digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        artifact["digest"],
        layer_digest.as_str(),
        "copy mode keeps the layer bytes"
    );
    assert_eq!(
        run.obj["status"]["observedLayerSelector"]["operation"], "copy",
        "observed verbatim"
    );
}

#[test]
fn cloud_providers_need_the_gate_for_service_accounts_and_static_secrets_win() {
    let storage = tempfile::tempdir().unwrap();
    let ecr = "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/app";
    let run = reconcile(
        &manifest("aws", ecr, json!({"provider": "aws"})),
        storage.path(),
        None,
    );
    let message = fetch_failed(&run, "AuthenticationFailed");
    assert!(
        message.starts_with("failed to get credential from aws"),
        "{message}"
    );

    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(
        secrets.path().join("sa.yaml"),
        "kind: ServiceAccount\napiVersion: v1\nmetadata: {name: app}\n",
    )
    .unwrap();
    let m = manifest(
        "gated",
        ecr,
        json!({"provider": "aws", "serviceAccountName": "app"}),
    );
    let run = reconcile(&m, storage.path(), Some(secrets.path()));
    assert_eq!(run.code, 2, "stalls until the gate is on");
    let (_, reason, message) = condition(&run.obj, "Stalled").unwrap();
    assert_eq!(reason, "FeatureGateDisabled");
    assert_eq!(
        message,
        "to use spec.serviceAccountName for provider authentication please enable the ObjectLevelWorkloadIdentity feature gate in the controller"
    );
    assert!(condition(&run.obj, "FetchFailed").is_none());

    // A static secret wins over the provider: no cloud login is attempted.
    let reg = Registry::start(Flavor::Distribution, Security::Basic);
    let content = common::artifact::deploy_with_overlay("kind: Deployment\n");
    tools::flux_push_artifact(&reg, "app", "v1", content.path(), "s", "r", &[]);
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "regcred"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": reg.docker_config_json()},
    });
    std::fs::write(
        secrets.path().join("regcred.yaml"),
        serde_json::to_string(&secret).unwrap(),
    )
    .unwrap();
    let url = format!("oci://{}/app", reg.host());
    let m = manifest(
        "azure",
        &url,
        json!({"provider": "azure", "secretRef": {"name": "regcred"}, "ref": {"tag": "v1"}}),
    );
    let run = reconcile(&m, storage.path(), Some(secrets.path()));
    assert_eq!(run.code, 0, "{}\n{}", run.obj["status"], run.stderr);
}

#[test]
fn a_status_path_outside_the_objects_directory_is_never_touched() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = common::artifact::deploy_with_overlay("kind: Deployment\n");
    let digest = tools::flux_push_artifact(&reg, "app", "v1", content.path(), "s", "r", &[]);
    let storage = tempfile::tempdir().unwrap();
    let victim = storage.path().join("ocirepository/apps/other");
    std::fs::create_dir_all(&victim).unwrap();
    let victim_file = victim.join("sha256:0000.tar.gz");
    std::fs::write(&victim_file, b"another object's artifact").unwrap();

    let url = format!("oci://{}/app", reg.host());
    let mut m = manifest("mine", &url, json!({"ref": {"tag": "v1"}}));
    m["status"] = json!({
        "observedGeneration": 1,
        "artifact": {
            "path": "ocirepository/apps/other/sha256:0000.tar.gz",
            "url": "http://localhost:9090/ocirepository/apps/other/sha256:0000.tar.gz",
            "revision": format!("v1@{digest}"),
            "digest": "sha256:deadbeef",
            "lastUpdateTime": "2026-01-01T00:00:00Z"
        }
    });
    m["metadata"]["generation"] = json!(1);
    let run = reconcile(&m, storage.path(), None);
    assert_eq!(run.code, 0, "{}\n{}", run.obj["status"], run.stderr);
    assert_eq!(
        std::fs::read(&victim_file).unwrap(),
        b"another object's artifact",
        "the foreign file is neither verified away nor collected"
    );
    let path = run.obj["status"]["artifact"]["path"].as_str().unwrap();
    assert!(path.starts_with("ocirepository/apps/mine/"), "{path}");
}

/// Values the CRD would refuse reach the standalone mode unchecked: they never crash it. (kube's
/// duration parser panicked on `1s-1s`; ours answers as Go's does.)
#[test]
fn a_malformed_timeout_does_not_crash_the_reconcile() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = common::artifact::deploy_with_overlay("kind: Deployment\n");
    tools::flux_push_artifact(&reg, "app", "v1", content.path(), "s", "r", &[]);
    let storage = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/app", reg.host());
    for timeout in ["1s-1s", "1h-0.5m", "--1s", "99999999999999999999h"] {
        let m = manifest(
            "odd",
            &url,
            json!({"ref": {"tag": "v1"}, "timeout": timeout}),
        );
        let run = reconcile(&m, storage.path(), None);
        assert_eq!(
            run.code, 0,
            "{timeout}: the default timeout applies\n{}",
            run.stderr
        );
        assert_eq!(condition(&run.obj, "Ready").unwrap().0, "True");
    }
}

/// Unusable input: exit 1, nothing on stdout, one line on stderr (tools drive this interface).
#[test]
fn unusable_input_gets_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let alias_bomb: String = (0..9u8)
        .map(|i| {
            let (name, prev) = ((b'a' + i) as char, (b'a' + i - 1) as char);
            let items = if i == 0 {
                ["\"x\""; 9].join(",")
            } else {
                vec![format!("*{prev}"); 9].join(",")
            };
            format!("{name}: &{name} [{items}]\n")
        })
        .collect();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("bad.yaml"), "kind: Secret\nmetadata: [\n").unwrap();
    let good =
        serde_json::to_string(&manifest("ok", "oci://127.0.0.1:1/app/x", json!({}))).unwrap();
    let cases: [(&str, String, Option<&Path>); 5] = [
        ("not yaml", "{{{{".into(), None),
        ("alias bomb", alias_bomb, None),
        (
            "another kind",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n".into(),
            None,
        ),
        ("a broken secret", good, Some(secrets.as_path())),
        ("no file", String::new(), None),
    ];
    for (what, text, secrets_dir) in cases {
        let file = dir.path().join("in.yaml");
        let _ = std::fs::remove_file(&file);
        if what != "no file" {
            std::fs::write(&file, &text).unwrap();
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocisource"));
        cmd.arg("reconcile").arg("-f").arg(&file);
        cmd.arg("--storage-path").arg(dir.path().join("store"));
        if let Some(s) = secrets_dir {
            cmd.arg("--secrets-dir").arg(s);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(out.stdout.is_empty(), "{what}: nothing on stdout");
        assert_eq!(stderr.lines().count(), 1, "{what}: one line:\n{stderr}");
        assert!(stderr.starts_with("error: "), "{what}: {stderr}");
    }
}

/// No credential from `spec.url` or a docker-config key, and no control character from a
/// registry's answer, reaches the status (README difference 6): parse errors quote pieces of
/// the URL without its scheme, and a registry may answer with escape sequences.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_and_control_characters_never_reach_messages() {
    use common::fake_registry::{Fake, ok, status};

    let storage = tempfile::tempdir().unwrap();
    let message_of = |run: &Run| {
        condition(&run.obj, "Ready")
            .unwrap_or_else(|| panic!("no Ready: {}\n{}", run.obj, run.stderr))
            .2
    };
    let secrets = ["s3cr3t", "pa ss", "hunter2", "tokenvalue"];
    let clean = |text: &str, what: &str| {
        for s in secrets {
            assert!(!text.contains(s), "{what}: {s} leaked in {text}");
        }
    };

    for url in [
        "oci://user:hunter2@registry.example.com/app?token=s3cr3t",
        "oci://user:pa ss@bad host/app",
        "oci://registry.example.com/App?token=tokenvalue",
        "oci://us%er:hunter2@host:99999/app",
        "oci://registry.example.com/app:v1?token=s3cr3t",
    ] {
        let run = reconcile(&manifest("bad-url", url, json!({})), storage.path(), None);
        let message = message_of(&run);
        assert!(
            message.starts_with("URL validation failed for 'oci://"),
            "{message}"
        );
        clean(&message, url);
        clean(&run.obj["status"].to_string(), url);
        clean(&run.stderr, url);
    }

    let docker_secrets = tempfile::tempdir().unwrap();
    for key in [
        "https://user:hunter2@host.example",
        "user:hunter2@host.example:99999",
        "http://us er:pa ss@h",
    ] {
        let config = json!({"auths": {key: {"auth": "dTpw"}}}).to_string();
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "regcred"},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": config},
        });
        std::fs::write(
            docker_secrets.path().join("regcred.yaml"),
            serde_json::to_string(&secret).unwrap(),
        )
        .unwrap();
        let m = manifest(
            "bad-key",
            "oci://127.0.0.1:1/app",
            json!({"secretRef": {"name": "regcred"}}),
        );
        let run = reconcile(&m, storage.path(), Some(docker_secrets.path()));
        let message = message_of(&run);
        assert!(
            message.starts_with("failed to get credential: "),
            "{message}"
        );
        clean(&message, key);
        clean(&run.stderr, key);
    }

    // A registry error whose text carries ANSI colours, a terminal title, a bell, a line break
    // and a right-to-left override.
    let body = json!({"errors": [{
        "code": "MANIFEST_UNKNOWN",
        "message": "\u{1b}[31mno such\r\n\u{1b}]0;pwned\u{7}manifest\u{202e}\u{0}\u{1b}[0m",
    }]})
    .to_string();
    let fake = Fake::start(move |req| {
        if req.path == "/v2/" {
            return ok(&[], b"{}");
        }
        status(
            404,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
    })
    .await;
    let url = format!("oci://{}/app", fake.host());
    let run = tokio::task::spawn_blocking({
        let storage = storage.path().to_path_buf();
        move || reconcile(&manifest("ansi", &url, json!({})), &storage, None)
    })
    .await
    .unwrap();
    let message = message_of(&run);
    assert!(message.contains("MANIFEST_UNKNOWN"), "{message}");
    assert!(message.contains("no such manifest"), "{message}");
    assert!(
        !message.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "{message:?}"
    );
    assert!(!message.contains("pwned"), "{message:?}");
}

// Hostile layers served by an in-test fake registry (no test bed needed).

/// The same reconcile run in-process, for what the binary does not print (events).
async fn reconcile_in_process(manifest: &Value, storage: &Path) -> reconcile::Outcome {
    let mut obj: OciRepository = serde_json::from_value(manifest.clone()).unwrap();
    obj.metadata.generation = Some(1);
    let settings = reconcile::Settings {
        storage: ocisource::storage::Storage::new(storage, "localhost:9090").unwrap(),
        limits: ocisource::storage::ExtractLimits::default(),
        object_level_workload_identity: false,
        default_service_account: None,
        cloud_tokens: Default::default(),
        default_platform: Default::default(),
        resolutions: ocisource::core::resolution_cache::ResolutionCache::disabled(),
        shared: ocisource::core::shared_artifacts::SharedArtifacts::disabled(),
    };
    let pool = ocisource::registry::ClientPool::new();
    let ports = reconcile::Ports {
        secrets: &ocisource::standalone::secrets::DirSecrets::default(),
        verifier: &ocisource::core::ports::NoVerifier,
        progress: &ocisource::core::ports::NoProgress,
        registries: &pool,
    };
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    reconcile::reconcile(&obj, &settings, ports, now).await
}

/// The message of the warning event with `reason`.
fn warning(outcome: &reconcile::Outcome, reason: &str) -> String {
    outcome
        .events
        .iter()
        .find(|e| e.reason == reason)
        .map(|e| e.message.clone())
        .unwrap_or_else(|| panic!("no {reason} event in {:?}", outcome.events))
}

fn fake_manifest(fake: &Fake, name: &str, extra: Value) -> Value {
    let mut extra = extra;
    extra["ref"] = json!({"tag": "v1"});
    manifest(name, &format!("oci://{}/app", fake.host()), extra)
}

/// Every file below `dir` (recursively), relative names.
fn files_below(dir: &Path) -> Vec<String> {
    common::files_under(dir)
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).unwrap().is_file())
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

/// A few-KB layer whose `.sourceignore` holds 800,000 one-character lines: each line was kept
/// as a pattern of some 470 bytes, so the process grew past the Deployment's 256 MiB limit. Now
/// loading stops at the pattern bound with a clear message, in a few MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_sourceignore_is_refused_in_bounded_memory() {
    let lines = "a\n".repeat(800_000);
    let layer = Tar::default()
        .file(".sourceignore", lines.as_bytes())
        .file("deploy.yaml", b"kind: A\n")
        .gz();
    assert!(layer.len() < 8 << 10, "{}", layer.len());
    let fake = Image::new(layer, FLUX_LAYER, None).serve(None).await;
    let storage = tempfile::tempdir().unwrap();
    let m = fake_manifest(&fake, "ignores", json!({}));
    let (run, obj) = reconcile_measured(&m, storage.path(), &[]);
    eprintln!(
        "hostile .sourceignore: peak RSS {} MiB in {:?}",
        run.peak_rss >> 20,
        run.elapsed
    );
    assert!(
        run.peak_rss < DEPLOYMENT_MEMORY_LIMIT / 4,
        "peak RSS {} MiB",
        run.peak_rss >> 20
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(obj["status"]["artifact"].is_null());
    assert!(
        files_below(storage.path())
            .iter()
            .all(|f| f.ends_with(".lock"))
    );
    // As in Flux, SourceIgnoreError sets no condition: the message is the warning event's.
    let outcome = reconcile_in_process(&m, storage.path()).await;
    assert_eq!(
        warning(&outcome, "SourceIgnoreError"),
        "failed to load source ignore patterns from repository: more than the maximum of 5000 ignore patterns in .sourceignore files and spec.ignore"
    );

    // Few patterns, but more text than any real ignore file.
    let lines = "# a comment line of some length\n".repeat(40_000);
    let layer = Tar::default().file(".sourceignore", lines.as_bytes()).gz();
    let fake = Image::new(layer, FLUX_LAYER, None).serve(None).await;
    let m = fake_manifest(&fake, "patterns", json!({}));
    let outcome = reconcile_in_process(&m, storage.path()).await;
    assert_eq!(
        warning(&outcome, "SourceIgnoreError"),
        "failed to load source ignore patterns from repository: .sourceignore files are bigger than the maximum of 1048576 bytes"
    );
}

/// Every archived path is matched against every ignore pattern; a layer with thousands of
/// patterns and files kept a reconcile busy far past `spec.timeout`. The archive step now stops
/// at the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_matching_stops_at_the_reconcile_deadline() {
    // Patterns that never match, made of characters every name holds (so no cheap
    // rejection): each one is a full backtracking match against every path segment.
    let patterns: String = (0..4_900).map(|i| format!("*e*l*i*f*{i}*\n")).collect();
    let mut tar = Tar::default().file(".sourceignore", patterns.as_bytes());
    // Few, long names: extraction is quick, matching is not.
    let filler = "x".repeat(60);
    for d in 0..6 {
        for f in 0..100 {
            tar = tar.file(&format!("d{d}/file-0123456789-{filler}-{f:03}.yaml"), b"");
        }
    }
    let fake = Image::new(tar.gz(), FLUX_LAYER, None).serve(None).await;
    let storage = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(2);
    let m = fake_manifest(&fake, "slow", json!({"timeout": "2s"}));
    let (run, obj) = reconcile_measured(&m, storage.path(), &[]);
    let ratio = run.elapsed.as_secs_f64() / timeout.as_secs_f64();
    eprintln!(
        "ignore matching: {:?}, {ratio:.2}x the timeout",
        run.elapsed
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let (_, reason, message) = condition(&obj, "Ready").unwrap();
    assert_eq!(reason, "ArchiveOperationFailed", "{message}");
    assert!(
        message.ends_with(
            "archiving the artifact did not finish within the timeout of 2s (spec.timeout)"
        ),
        "{message}"
    );
    assert!(ratio <= 1.5, "{ratio:.2}x the timeout");
    assert!(
        files_below(storage.path())
            .iter()
            .all(|f| f.ends_with(".lock")),
        "no partial artifact: {:?}",
        files_below(storage.path())
    );
}

/// `operation: copy` stored any blob whatever `--artifact-max-extract-size` said. The announced
/// size is now checked before the download, and what is within the bound is streamed once into
/// the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_mode_keeps_to_the_size_limit() {
    let media = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
    let selector = json!({"layerSelector": {"mediaType": media, "operation": "copy"}});
    let blob = noise(2 << 20);
    let fake = Image::new(blob.clone(), media, None).serve(None).await;
    let storage = tempfile::tempdir().unwrap();
    let m = fake_manifest(&fake, "chart", selector.clone());
    let (run, obj) = reconcile_measured(
        &m,
        storage.path(),
        &["--artifact-max-extract-size", "1048576"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let (status, reason, message) = condition(&obj, "FetchFailed").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "OCIArtifactLayerOperationFailed")
    );
    assert_eq!(
        message,
        "failed to copy layer from artifact: layer of 2097152 bytes is bigger than max artifact size of 1048576 bytes"
    );
    assert_eq!(
        fake.count("GET", "/v2/app/blobs/"),
        0,
        "refused before the download"
    );
    assert!(obj["status"]["artifact"].is_null());
    assert!(
        files_below(storage.path()).is_empty(),
        "{:?}",
        files_below(storage.path())
    );

    // Within the bound: stored as served, nothing else left in the store.
    let (run, obj) = reconcile_measured(
        &m,
        storage.path(),
        &["--artifact-max-extract-size", "4194304"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    let path = obj["status"]["artifact"]["path"].as_str().unwrap();
    let stored = storage.path().join(path);
    assert_eq!(std::fs::read(&stored).unwrap(), blob);
    assert_eq!(obj["status"]["artifact"]["digest"], sha256(&blob));
    let mut left = files_below(storage.path());
    left.sort();
    let lock = format!("{path}.lock");
    assert_eq!(left, [path.to_string(), lock]);
}

/// A reconcile killed mid-download leaves its working directory and a partial file in the
/// store; the controller's start-up sweep removes exactly those, and never a live one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_killed_reconcile_leaves_is_swept_at_start_up() {
    let media = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
    let blob = noise(1 << 20);
    let len = blob.len();
    let stall: Arc<dyn Fn() -> Reply + Send + Sync> =
        Arc::new(move || Reply::Stall { length: len });
    let fake = Image::new(blob, media, None).serve(Some(stall)).await;
    let storage = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spawn = |name: &str| {
        let m = fake_manifest(
            &fake,
            name,
            json!({"layerSelector": {"mediaType": media, "operation": "copy"}}),
        );
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, serde_json::to_string(&m).unwrap()).unwrap();
        Command::new(env!("CARGO_BIN_EXE_ocisource"))
            .arg("reconcile")
            .arg("-f")
            .arg(&file)
            .arg("--storage-path")
            .arg(storage.path())
            .env("TMPDIR", tmp.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let partials = || -> Vec<String> {
        files_below(storage.path())
            .into_iter()
            .filter(|f| f.ends_with(".tmp"))
            .collect()
    };
    let wait_for_partial = || {
        let start = std::time::Instant::now();
        while partials().is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no partial file appeared"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut victim = spawn("killed");
    wait_for_partial();
    victim.kill().unwrap();
    victim.wait().unwrap();
    let workdirs = || -> usize { std::fs::read_dir(tmp.path()).unwrap().count() };
    assert_eq!(workdirs(), 1, "the working directory is left behind");
    assert_eq!(partials().len(), 1);

    // A live reconcile of the same kind, stalled too: its files must survive the sweep.
    let mut live = spawn("live");
    let start = std::time::Instant::now();
    while workdirs() < 2 {
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
    while partials().len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            partials()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let store = ocisource::storage::Storage::new(storage.path(), "localhost").unwrap();
    let files = store.sweep_partial_files();
    let dirs = ocisource::storage::workdir::sweep(tmp.path());
    assert_eq!((files.len(), dirs.len()), (1, 1), "{files:?} {dirs:?}");
    assert_eq!(partials().len(), 1, "the live partial file is kept");
    assert_eq!(workdirs(), 1, "the live working directory is kept");
    live.kill().unwrap();
    live.wait().unwrap();
}

/// Standalone input reaches paths (the working directory's name, the store): names the API
/// server would refuse are input errors, as they would be at `kubectl apply`.
#[test]
fn names_the_api_server_would_refuse_are_input_errors() {
    let storage = tempfile::tempdir().unwrap();
    for (field, name, namespace) in [
        ("metadata.name", "../../escape", "apps"),
        ("metadata.name", "a/b", "apps"),
        ("metadata.name", "Upper", "apps"),
        ("metadata.namespace", "ok", "../x"),
        ("metadata.namespace", "ok", "a.b"),
    ] {
        let mut m = manifest(name, "oci://127.0.0.1:1/app", json!({}));
        m["metadata"]["namespace"] = json!(namespace);
        let (run, obj) = reconcile_measured(&m, storage.path(), &[]);
        assert_eq!(run.status.code(), Some(1), "{name}: {}", run.stderr);
        assert!(obj.is_null(), "{name}: nothing printed");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        let value = if field == "metadata.name" {
            name
        } else {
            namespace
        };
        assert!(
            run.stderr.contains(&format!(
                "{field}: Invalid value: {value:?}: a lowercase RFC 1123"
            )),
            "{}",
            run.stderr
        );
    }
    assert!(files_below(storage.path()).is_empty());
}

/// A recorded `status.artifact.path` that is not an artifact file of the object's own
/// directory (`<dir>/..` left the object stuck, a `.lock` file was accepted as the artifact) is
/// treated as missing: the artifact is rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_path_that_is_no_artifact_of_the_object_is_rebuilt() {
    let layer = Tar::default().file("deploy.yaml", b"kind: A\n").gz();
    let fake = Image::new(layer, FLUX_LAYER, None).serve(None).await;
    let storage = tempfile::tempdir().unwrap();
    let m = fake_manifest(&fake, "mine", json!({}));
    let (run, first) = reconcile_measured(&m, storage.path(), &[]);
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    let good = first["status"]["artifact"].clone();
    let path = good["path"].as_str().unwrap().to_string();
    let lock = format!("{path}.lock");
    let empty = sha256(b"");
    for (recorded, digest) in [
        ("ocirepository/apps/mine/..".to_string(), empty.clone()),
        (lock, empty.clone()),
        (
            "ocirepository/apps/mine/latest.tar.gz".to_string(),
            good["digest"].as_str().unwrap().to_string(),
        ),
    ] {
        let mut m = first.clone();
        m["status"]["artifact"]["path"] = json!(recorded);
        m["status"]["artifact"]["digest"] = json!(digest);
        m["status"]["artifact"]["revision"] = json!("v1@sha256:0000");
        let (run, obj) = reconcile_measured(&m, storage.path(), &[]);
        assert_eq!(
            run.status.code(),
            Some(0),
            "{recorded}: {}\n{}",
            obj["status"],
            run.stderr
        );
        assert_eq!(obj["status"]["artifact"]["path"], json!(path), "{recorded}");
        assert_eq!(
            obj["status"]["artifact"]["digest"], good["digest"],
            "{recorded}"
        );
        assert!(storage.path().join(&path).is_file());
    }
}

/// A layer of directories 500 deep with 3,000 siblings at the bottom: the walks that read the
/// ignore files and build the tarball kept a full copy of the path (a string per segment) for
/// every pending entry, some 30 KB each here, so memory grew with depth times width. Both walks now
/// hold one path and the pending names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_and_wide_tree_is_archived_in_bounded_memory() {
    let mut deep = String::new();
    let mut tar = Tar::default();
    let long = |tar: Tar, name: &str| {
        let mut record = name.as_bytes().to_vec();
        record.push(0);
        tar.meta(b'L', &record).dir("long")
    };
    for _ in 0..500 {
        deep.push_str("d/");
        tar = long(tar, &deep);
    }
    for i in 0..3_000 {
        tar = long(tar, &format!("{deep}s{i}/"));
    }
    let layer = tar.gz();
    let fake = Image::new(layer, FLUX_LAYER, None).serve(None).await;
    let storage = tempfile::tempdir().unwrap();
    let m = fake_manifest(&fake, "deep", json!({}));
    let (run, obj) = reconcile_measured(&m, storage.path(), &[]);
    eprintln!(
        "deep and wide tree: peak RSS {} MiB in {:?}",
        run.peak_rss >> 20,
        run.elapsed
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{}",
        obj["status"],
        run.stderr
    );
    assert!(
        run.peak_rss < DEPLOYMENT_MEMORY_LIMIT / 4,
        "peak RSS {} MiB",
        run.peak_rss >> 20
    );
}
