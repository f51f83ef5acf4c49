//! `ocisource push artifact` against the real test bed: what ours pushes is read by the real
//! `flux pull artifact`, `crane` and our own reconciler; next to the real `flux push artifact`
//! it writes the same layout, annotations, config blob and tar bytes; credentials come from
//! `--creds` or a Docker config (basic and bearer registries), TLS from `--ca-file`,
//! `SSL_CERT_FILE` or a client certificate.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use common::artifact::{content_dir, expected_files, files_of, gunzip};
use common::object::OciRepo;
use common::registry::{Flavor, PASSWORD, Registry, Security, USER};
use common::tools;
use ocisource::artifact::{Error as PushError, OutputFormat, PushArgs, Pushed, push_artifact};
use ocisource::registry::{
    BlobSource, Client, Credential, Digest, Error, Repository, RequestCounts, TlsMaterial,
    TransportConfig,
};
use serde_json::{Value, json};

const SOURCE: &str = "https://github.com/example/app";
const REVISION: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";

fn args(reg: &Registry, repo_tag: &str, path: &Path) -> PushArgs {
    let mut a = PushArgs::new(
        &format!("oci://{}/{repo_tag}", reg.host()),
        &path.display().to_string(),
        SOURCE,
        REVISION,
    );
    a.registry.insecure_registry = reg.insecure();
    if let Some(ca) = reg.ca_path() {
        a.registry.ca_file = Some(ca);
    }
    a
}

async fn push(a: &PushArgs) -> Pushed {
    push_artifact(a)
        .await
        .unwrap_or_else(|e| panic!("push failed: {}", chain(&e)))
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}

/// A registry GET with the test bed's own client and credentials.
async fn get(reg: &Registry, path: &str) -> Vec<u8> {
    let resp = reg
        .request(reqwest::Method::GET, path)
        .await
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/octet-stream",
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    resp.bytes().await.unwrap().to_vec()
}

/// Runs the `ocisource` binary with `env` (and a scrubbed HOME/DOCKER_CONFIG/SSL_CERT_FILE).
/// `ocisource push artifact URL --path PATH --source SOURCE --revision REVISION EXTRA...`.
fn push_cli(url: &str, path: &str, extra: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut args = vec![
        "push",
        "artifact",
        url,
        "--path",
        path,
        "--source",
        SOURCE,
        "--revision",
        REVISION,
    ];
    args.extend_from_slice(extra);
    ocisource(&args, env, None)
}

fn ocisource(args: &[&str], env: &[(&str, &Path)], stdin: Option<&[u8]>) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocisource"));
    cmd.args(args)
        .env("HOME", home.path())
        .env_remove("DOCKER_CONFIG")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn docker_config_dir(entries: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        json!({ "auths": entries }).to_string(),
    )
    .unwrap();
    dir
}

fn auth_only_entry(reg: &Registry) -> Value {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    json!({ reg.host(): { "auth": auth } })
}

/// The digest of `repo:tag`, resolved by our registry client with the test bed's credentials.
fn resolve(reg: &Registry, repo: &str, tag: &str) -> Digest {
    let (client, cred) = common::artifact::client_for(reg);
    let repo = Repository::parse(&format!("{}/{repo}", reg.host())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(client.resolve_digest(&repo, tag, &cred))
        .unwrap()
}

#[tokio::test]
async fn flux_pull_reads_the_files_ours_pushed() {
    for flavor in [Flavor::Distribution, Flavor::Referrers] {
        let reg = Registry::start(flavor, Security::Http);
        let content = content_dir();
        let pushed = push(&args(&reg, "apps/web:v1.0.0", content.path())).await;
        assert_eq!(pushed.repository, format!("{}/apps/web", reg.host()));
        assert_eq!(pushed.tag, "v1.0.0");
        assert_eq!(
            pushed.url,
            format!("oci://{}/apps/web@{}", reg.host(), pushed.digest)
        );
        assert_eq!(
            tools::crane_digest(&reg, "apps/web:v1.0.0"),
            pushed.digest.to_string()
        );

        let out = tempfile::tempdir().unwrap();
        let report = tools::flux_pull_artifact(&reg, "apps/web:v1.0.0", out.path());
        assert!(report.contains(&format!("source {SOURCE}")), "{report}");
        assert!(report.contains(&format!("revision {REVISION}")), "{report}");
        assert!(
            report.contains(&format!("digest {}@{}", pushed.repository, pushed.digest)),
            "{report}"
        );
        assert_eq!(files_of(out.path()), expected_files(), "{flavor:?}");
        let mode = std::fs::metadata(out.path().join("scripts/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "file modes are preserved");
    }
}

#[tokio::test]
async fn ours_and_flux_write_the_same_artifact_but_for_the_gzip_bytes() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = content_dir();
    let extra = [
        "--reproducible",
        "-a",
        "org.example/team=web",
        "-a",
        "foo=bar",
    ];
    let flux_digest = tools::flux_push_artifact(
        &reg,
        "apps/web",
        "flux",
        content.path(),
        SOURCE,
        REVISION,
        &extra,
    );
    let mut a = args(&reg, "apps/web:ours", content.path());
    a.reproducible = true;
    a.annotations = vec!["org.example/team=web".into(), "foo=bar".into()];
    let ours = push(&a).await;

    let flux_raw = get(&reg, &format!("/v2/apps/web/manifests/{flux_digest}")).await;
    let ours_raw = get(&reg, &format!("/v2/apps/web/manifests/{}", ours.digest)).await;
    let flux_m: Value = serde_json::from_slice(&flux_raw).unwrap();
    let ours_m: Value = serde_json::from_slice(&ours_raw).unwrap();

    // Same layout, media types, annotations (created included) and config blob.
    for m in [&flux_m, &ours_m] {
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.cncf.flux.config.v1+json"
        );
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        assert_eq!(
            m["layers"][0]["mediaType"],
            "application/vnd.cncf.flux.content.v1.tar+gzip"
        );
    }
    assert_eq!(ours_m["annotations"], flux_m["annotations"]);
    assert_eq!(
        ours_m["annotations"]["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(
        ours_m["config"], flux_m["config"],
        "the config blob is identical"
    );

    // The tar inside the layer is byte-identical; the gzip around it is not (zlib-rs vs Go's
    // compress/flate), so the layer and manifest digests differ.
    let flux_layer = get(
        &reg,
        &format!(
            "/v2/apps/web/blobs/{}",
            flux_m["layers"][0]["digest"].as_str().unwrap()
        ),
    )
    .await;
    let ours_layer = get(&reg, &format!("/v2/apps/web/blobs/{}", ours.layer.digest)).await;
    assert_eq!(gunzip(&ours_layer), gunzip(&flux_layer));
    assert_eq!(&ours_layer[..10], &flux_layer[..10], "gzip headers match");
    assert_ne!(ours_m["layers"][0]["digest"], flux_m["layers"][0]["digest"]);
    assert_ne!(ours.digest.to_string(), flux_digest);

    // With the layer descriptor swapped, the manifests are the same bytes.
    let swapped = String::from_utf8(ours_raw)
        .unwrap()
        .replace(
            ours_m["layers"][0]["digest"].as_str().unwrap(),
            flux_m["layers"][0]["digest"].as_str().unwrap(),
        )
        .replace(
            &format!("\"size\":{}", ours_m["layers"][0]["size"]),
            &format!("\"size\":{}", flux_m["layers"][0]["size"]),
        );
    assert_eq!(swapped, String::from_utf8(flux_raw).unwrap());
}

#[tokio::test]
async fn the_creds_flag_authenticates_to_a_basic_auth_registry() {
    let reg = Registry::start(Flavor::Distribution, Security::Basic);
    let content = content_dir();
    let mut a = args(&reg, "apps/web:v1", content.path());
    a.registry.creds = format!("{USER}:{PASSWORD}");
    let pushed = push(&a).await;
    let out = tempfile::tempdir().unwrap();
    tools::flux_pull_artifact(&reg, "apps/web:v1", out.path());
    assert_eq!(files_of(out.path()), expected_files());
    assert_eq!(
        tools::crane_digest(&reg, "apps/web:v1"),
        pushed.digest.to_string()
    );

    // A wrong password and no credentials at all are refused, and no password is echoed.
    for creds in [format!("{USER}:not-the-password"), String::new()] {
        let mut a = args(&reg, "apps/web:v2", content.path());
        a.registry.creds = creds.clone();
        let err = push_artifact(&a).await.unwrap_err();
        let text = chain(&err);
        assert!(
            matches!(
                &err,
                PushError::PushLayer {
                    source: Error::Unauthorized { .. },
                    ..
                }
            ),
            "{text}"
        );
        assert!(text.contains("UNAUTHORIZED"), "{text}");
        assert!(
            !text.contains("not-the-password") && !text.contains(PASSWORD),
            "{text}"
        );
    }
}

#[test]
fn docker_config_credentials_work_with_basic_and_bearer_registries() {
    for (flavor, security) in [
        (Flavor::Distribution, Security::Basic),
        (Flavor::Distribution, Security::Bearer),
        (Flavor::Referrers, Security::Bearer),
    ] {
        let reg = Registry::start(flavor, security);
        let content = content_dir();
        // Only the `auth` field (base64 user:password), as `docker login` writes it.
        let docker = docker_config_dir(auth_only_entry(&reg));
        let url = format!("oci://{}/apps/web:v1", reg.host());
        let path = content.path().display().to_string();
        let out = push_cli(
            &url,
            &path,
            &["-o", "json"],
            &[("DOCKER_CONFIG", docker.path())],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{flavor:?}/{security:?}: {stderr}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        // crane 0.22 refuses a token realm on a private address: read back with our client.
        let digest = resolve(&reg, "apps/web", "v1").to_string();
        assert_eq!(v["digest"], digest.as_str());
        assert_eq!(v["tag"], "v1");
        assert_eq!(v["repository"], format!("{}/apps/web", reg.host()));
        assert_eq!(v["url"], format!("oci://{}/apps/web@{digest}", reg.host()));
        if security == Security::Bearer {
            assert!(reg.token_requests() > 0);
        }

        // Without DOCKER_CONFIG, `~/.docker/config.json` is read.
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".docker")).unwrap();
        std::fs::copy(
            docker.path().join("config.json"),
            home.path().join(".docker/config.json"),
        )
        .unwrap();
        let url2 = format!("oci://{}/apps/web:v2", reg.host());
        let out = push_cli(&url2, &path, &[], &[("HOME", home.path())]);
        assert!(
            out.status.success(),
            "{flavor:?}/{security:?} via ~/.docker: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        // No entry for the registry: the push is anonymous and refused.
        let home_docker = docker_config_dir(json!({"other.example": {"auth": "dTpw"}}));
        let out = push_cli(&url, &path, &[], &[("DOCKER_CONFIG", home_docker.path())]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "anonymous push to {security:?} succeeded"
        );
        assert!(stderr.contains("UNAUTHORIZED"), "{stderr}");
        assert!(!stderr.contains(PASSWORD), "{stderr}");
    }
}

#[test]
fn without_output_flag_flux_lines_go_to_stderr_and_stdin_is_pushed_as_a_yaml_file() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let url = format!("oci://{}/apps/stdin:v1", reg.host());
    let out = ocisource(
        &[
            "push",
            "artifact",
            &url,
            "-f",
            "-",
            "--source",
            SOURCE,
            "--revision",
            REVISION,
            "--insecure-registry",
        ],
        &[],
        Some(b"kind: ConfigMap\n\n\r\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty());
    let digest = tools::crane_digest(&reg, "apps/stdin:v1");
    assert!(
        stderr.contains(&format!(
            "► pushing artifact to {}/apps/stdin:v1\n",
            reg.host()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "✔ artifact successfully pushed to {}/apps/stdin@{digest}",
            reg.host()
        )),
        "{stderr}"
    );
    let pulled = tempfile::tempdir().unwrap();
    tools::flux_pull_artifact(&reg, "apps/stdin:v1", pulled.path());
    let files = files_of(pulled.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let (name, content) = files.into_iter().next().unwrap();
    assert!(name.ends_with(".yaml"), "{name}");
    assert_eq!(
        content, "kind: ConfigMap",
        "trailing CR/LF trimmed as flux does"
    );
}

#[tokio::test]
async fn https_registries_are_trusted_through_the_ca_file_or_ssl_cert_file() {
    let reg = Registry::start(Flavor::Distribution, Security::Https);
    let content = content_dir();

    // --ca-file (in addition to the system roots).
    let pushed = push(&args(&reg, "apps/web:ca-file", content.path())).await;
    assert_eq!(
        tools::crane_digest(&reg, "apps/web:ca-file"),
        pushed.digest.to_string()
    );

    // No CA: the certificate is refused with Go's words.
    let mut a = args(&reg, "apps/web:no-ca", content.path());
    a.registry.ca_file = None;
    let err = push_artifact(&a).await.unwrap_err();
    let text = chain(&err);
    assert!(
        text.contains("certificate signed by unknown authority"),
        "{text}"
    );

    // --insecure-registry without a CA skips verification, as crane.Insecure does.
    let mut a = args(&reg, "apps/web:insecure", content.path());
    a.registry.ca_file = None;
    a.registry.insecure_registry = true;
    push(&a).await;

    // SSL_CERT_FILE, as the Go tools honour it.
    let url = format!("oci://{}/apps/web:ssl-cert-file", reg.host());
    let path = content.path().display().to_string();
    let ca = reg.ca_path().unwrap();
    let out = push_cli(&url, &path, &["-o", "yaml"], &[("SSL_CERT_FILE", &ca)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = tools::crane_digest(&reg, "apps/web:ssl-cert-file");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("digest: {digest}\n")), "{text}");
}

#[tokio::test]
async fn mtls_registries_get_the_client_certificate() {
    let reg = Registry::start(Flavor::Distribution, Security::Mtls);
    let content = content_dir();
    let mut a = args(&reg, "apps/web:v1", content.path());
    a.registry.cert_file = reg.client_cert_path();
    a.registry.key_file = reg.client_key_path();
    let pushed = push(&a).await;
    // Read back with our client (crane cannot present a client certificate).
    let repo = Repository::parse(&format!("{}/apps/web", reg.host())).unwrap();
    let client = Client::new(&TransportConfig {
        tls: TlsMaterial {
            ca_pem: reg.ca_pem().map(String::into_bytes),
            cert_pem: reg.client_cert_pem().map(String::into_bytes),
            key_pem: reg.client_key_pem().map(String::into_bytes),
            secret_name: None,
        },
        ..TransportConfig::default()
    })
    .unwrap();
    let digest = client
        .resolve_digest(&repo, "v1", &Credential::Anonymous)
        .await
        .unwrap();
    assert_eq!(digest, pushed.digest);

    let mut a = args(&reg, "apps/web:v2", content.path());
    a.registry.cert_file = None;
    a.registry.key_file = None;
    let err = push_artifact(&a).await.unwrap_err();
    assert!(
        matches!(
            &err,
            PushError::PushLayer {
                source: Error::Tls { .. } | Error::Network { .. },
                ..
            }
        ),
        "{}",
        chain(&err)
    );
}

#[tokio::test]
async fn our_reconciler_reports_the_revision_push_printed() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let content = content_dir();
    let mut a = args(&reg, "apps/podinfo:6.1.4", content.path());
    a.output = Some(OutputFormat::Json);
    let pushed = push(&a).await;
    let printed: Value = serde_json::from_str(&pushed.render(a.output)).unwrap();

    let storage = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = OciRepo::new("podinfo")
        .namespace("apps")
        .url(format!("oci://{}/apps/podinfo", reg.host()))
        .interval("1m")
        .insecure()
        .tag("6.1.4")
        .build();
    let file = dir.path().join("ocirepository.json");
    std::fs::write(&file, manifest.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ocisource"))
        .arg("reconcile")
        .arg("-f")
        .arg(&file)
        .arg("--storage-path")
        .arg(storage.path())
        .args(["-o", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let obj: Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = &obj["status"];
    let revision = format!("6.1.4@{}", printed["digest"].as_str().unwrap());
    assert_eq!(status["artifact"]["revision"], revision.as_str());
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "True");
    assert_eq!(
        ready["message"],
        format!("stored artifact for digest '{revision}'")
    );
    let meta = &status["artifact"]["metadata"];
    assert_eq!(meta["org.opencontainers.image.source"], SOURCE);
    assert_eq!(meta["org.opencontainers.image.revision"], REVISION);

    // The stored tarball holds the pushed files.
    let stored = storage
        .path()
        .join(status["artifact"]["path"].as_str().unwrap());
    let extracted = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&stored)
        .arg("-C")
        .arg(extracted.path())
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(files_of(extracted.path()), expected_files());
}

#[tokio::test]
async fn blob_uploads_skip_existing_blobs_and_follow_either_kind_of_location() {
    // distribution answers the upload POST with an absolute Location, go-containerregistry's
    // registry with a relative one; both behind bearer auth (push,pull scope).
    for flavor in [Flavor::Distribution, Flavor::Referrers] {
        let reg = Registry::start(flavor, Security::Bearer);
        let client = Client::new(&TransportConfig::default()).unwrap();
        let cred = Credential::Basic {
            username: USER.into(),
            password: PASSWORD.into(),
        };
        let repo = Repository::parse(&format!("{}/apps/blobs", reg.host())).unwrap();
        let data = bytes::Bytes::from_static(b"hello, blob");
        let digest = Digest::sha256_of(&data);
        let size = data.len() as u64;
        let source = BlobSource::Bytes(data.clone());

        assert!(!client.blob_exists(&repo, &digest, &cred).await.unwrap());
        // One token, asked for `push,pull` up front (a pull token would be refused at the POST
        // and cost a second one).
        assert_eq!(client.request_counts().token, 1, "{flavor:?}");
        let before = client.request_counts();
        assert!(
            client
                .push_blob(&repo, &digest, size, &source, &cred)
                .await
                .unwrap()
        );
        let first = client.request_counts() - before;
        assert_eq!((first.blob_head, first.blob_upload), (1, 2), "{flavor:?}");
        assert_eq!(first.token, 0, "{flavor:?}: the push token is reused");
        let before = client.request_counts();
        assert!(
            !client
                .push_blob(&repo, &digest, size, &source, &cred)
                .await
                .unwrap()
        );
        let second: RequestCounts = client.request_counts() - before;
        assert_eq!((second.blob_head, second.blob_upload), (1, 0), "{flavor:?}");
        assert_eq!(second.token, 0, "the push token is cached");
        assert_eq!(
            get(&reg, &format!("/v2/apps/blobs/blobs/{digest}")).await,
            data
        );

        // A file source streams from disk.
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        file.write_all(&big).unwrap();
        let big_digest = Digest::sha256_of(&big);
        let source = BlobSource::open(file.path()).unwrap();
        assert!(
            client
                .push_blob(&repo, &big_digest, big.len() as u64, &source, &cred)
                .await
                .unwrap()
        );
        assert_eq!(
            get(&reg, &format!("/v2/apps/blobs/blobs/{big_digest}")).await,
            big
        );

        // Content that does not hash to the digest is refused by the registry.
        let wrong = Digest::sha256_of(b"something else");
        let err = client
            .push_blob(&repo, &wrong, size, &BlobSource::Bytes(data.clone()), &cred)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("DIGEST_INVALID"),
            "{flavor:?}: {err}"
        );

        // A manifest naming the blob: its digest is the SHA-256 of the bytes sent.
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","size":{size},"digest":"{digest}"}},"layers":[]}}"#
        );
        let m = bytes::Bytes::from(manifest);
        let pushed = client
            .push_manifest(
                &repo,
                "t1",
                "application/vnd.oci.image.manifest.v1+json",
                m.clone(),
                &cred,
            )
            .await
            .unwrap();
        assert_eq!(pushed, Digest::sha256_of(&m));
        assert_eq!(
            client.resolve_digest(&repo, "t1", &cred).await.unwrap(),
            pushed
        );
        assert!(
            client
                .push_manifest(&repo, "bad/tag", "x", m, &cred)
                .await
                .is_err()
        );
    }
}
