//! The registry adapter against the real test bed: artifacts pushed by the real `flux push
//! artifact` (and `helm push` for mTLS, where flux cannot go) are resolved, fetched and streamed
//! by `ocisource::registry` over every security setup of both registry flavors; credentials come
//! from the docker config through the keychain, and the failure categories carry the registry's
//! own error codes.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::registry::{Flavor, Registry, Security};
use common::tools;
use ocisource::registry::keychain::{DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE};
use ocisource::registry::{
    Client, Credential, Digest, Error, Keychain, Repository, TlsMaterial, TransportConfig,
};
use sha2::Digest as _;

const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
const SOURCE: &str = "https://github.com/example/app";
const REVISION: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";

/// The transport an OCIRepository with a `certSecretRef` holding this registry's CA (and, for
/// mTLS, the client certificate) would get.
fn transport(reg: &Registry) -> TransportConfig {
    TransportConfig {
        tls: TlsMaterial {
            ca_pem: reg.ca_pem().map(String::into_bytes),
            cert_pem: reg.client_cert_pem().map(String::into_bytes),
            key_pem: reg.client_key_pem().map(String::into_bytes),
            secret_name: Some("registry-tls".into()),
        },
        ..TransportConfig::default()
    }
}

/// The credential the keychain finds in the registry's `.dockerconfigjson`.
fn credential(reg: &Registry, repo: &Repository) -> Credential {
    keychain_for(&reg.docker_config_json()).resolve(repo)
}

fn keychain_for(docker_config_json: &str) -> Keychain {
    let mut data = BTreeMap::new();
    data.insert(
        DOCKER_CONFIG_JSON_KEY.to_string(),
        docker_config_json.as_bytes().to_vec(),
    );
    let mut k = Keychain::new();
    k.add_secret(DOCKER_CONFIG_JSON_TYPE, &data)
        .expect("docker config");
    k
}

fn repository(reg: &Registry, path: &str) -> Repository {
    Repository::parse_oci_url(&format!("oci://{}/{path}", reg.host())).expect("repository URL")
}

fn write_source_tree(dir: &Path) -> PathBuf {
    let root = dir.join("source");
    std::fs::create_dir_all(root.join("apps")).unwrap();
    std::fs::write(
        root.join("apps/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  color: blue\n",
    )
    .unwrap();
    root
}

fn sha256_hex(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a blob to its verified end through the async stream.
async fn read_blob(
    client: &Client,
    repo: &Repository,
    desc: &ocisource::registry::Descriptor,
    cred: &Credential,
) -> Vec<u8> {
    let mut blob = client
        .blob_stream(repo, desc, cred)
        .await
        .expect("open blob");
    let mut out = Vec::new();
    while let Some(chunk) = blob.chunk().await {
        out.extend_from_slice(&chunk.expect("blob chunk"));
    }
    out
}

/// Push with flux, then resolve, fetch, stream and list with our client, and check the request
/// budget of an unchanged source.
async fn exercise(flavor: Flavor, security: Security) {
    let reg = Registry::start(flavor, security);
    let work = tempfile::tempdir().unwrap();
    let source = write_source_tree(work.path());
    let pushed = tools::flux_push_artifact(
        &reg,
        "flux/app",
        "v1.0.0",
        &source,
        SOURCE,
        REVISION,
        &["--annotations", "org.example/team=platform"],
    );
    let repo = repository(&reg, "flux/app");
    let cred = credential(&reg, &repo);
    assert_eq!(
        cred.is_anonymous(),
        reg.credentials().is_none(),
        "keychain: {cred:?}"
    );
    let client = Client::new(&transport(&reg)).expect("client");

    // Tag -> digest equals what flux pushed.
    let digest = client
        .resolve_digest(&repo, "v1.0.0", &cred)
        .await
        .unwrap_or_else(|e| panic!("resolve: {e}"));
    assert_eq!(digest.to_string(), pushed);

    // An unchanged source costs one manifest HEAD: no ping, no token, no GET.
    let before = client.request_counts();
    let again = client.resolve_digest(&repo, "v1.0.0", &cred).await.unwrap();
    assert_eq!(again, digest);
    let delta = client.request_counts() - before;
    assert_eq!(delta.manifest_head, 1, "{delta:?}");
    assert_eq!(delta.total(), 1, "{delta:?}");

    // Manifest by digest: layers and annotations.
    let manifest = client.fetch_manifest(&repo, &digest, &cred).await.unwrap();
    assert_eq!(manifest.digest, digest);
    assert_eq!(manifest.manifest_digest, digest);
    assert_eq!(manifest.layers.len(), 1, "{manifest:?}");
    assert_eq!(manifest.layers[0].media_type, FLUX_CONTENT);
    assert_eq!(
        manifest
            .annotations
            .get("org.opencontainers.image.source")
            .map(String::as_str),
        Some(SOURCE)
    );
    assert_eq!(
        manifest
            .annotations
            .get("org.opencontainers.image.revision")
            .map(String::as_str),
        Some(REVISION)
    );
    assert_eq!(
        manifest
            .annotations
            .get("org.example/team")
            .map(String::as_str),
        Some("platform")
    );

    // The layer, streamed and verified; its sha256 is the layer digest.
    let layer = &manifest.layers[0];
    let bytes = read_blob(&client, &repo, layer, &cred).await;
    assert_eq!(bytes.len() as u64, layer.size);
    assert_eq!(sha256_hex(&bytes), layer.digest.hex());
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip");

    // The same through the blocking reader, as the storage code consumes it.
    let blob = client.blob_stream(&repo, layer, &cred).await.unwrap();
    let reader = blob.into_reader().unwrap();
    let read = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut v = Vec::new();
        reader.read_to_end(&mut v).map(|_| v)
    })
    .await
    .unwrap()
    .expect("blocking read");
    assert_eq!(read, bytes);

    // Tags.
    let tags = client.list_tags(&repo, &cred).await.unwrap();
    assert_eq!(tags, vec!["v1.0.0".to_string()]);

    // A missing tag: NotFound with the registry's code, as Flux reports it.
    match client.resolve_digest(&repo, "no-such-tag", &cred).await {
        Err(e @ Error::NotFound { .. }) => {
            assert!(e.to_string().contains("MANIFEST_UNKNOWN"), "{e}");
            // distribution's detail, printed as Go prints it (Flux: `map[Tag:...]`).
            if flavor == Flavor::Distribution {
                assert!(
                    e.to_string()
                        .ends_with("MANIFEST_UNKNOWN: manifest unknown; map[Tag:no-such-tag]"),
                    "{e}"
                );
            }
        }
        other => panic!("missing tag: {other:?}"),
    }
    // A missing repository when listing tags.
    let missing = repository(&reg, "flux/missing");
    match client
        .list_tags(&missing, &credential(&reg, &missing))
        .await
    {
        Err(Error::NotFound { message }) => assert!(message.contains("NAME_UNKNOWN"), "{message}"),
        other => panic!("missing repository: {other:?}"),
    }
}

#[tokio::test]
async fn distribution_over_http() {
    exercise(Flavor::Distribution, Security::Http).await;
}

#[tokio::test]
async fn distribution_over_https_with_private_ca() {
    exercise(Flavor::Distribution, Security::Https).await;
}

#[tokio::test]
async fn distribution_with_basic_auth() {
    exercise(Flavor::Distribution, Security::Basic).await;
}

#[tokio::test]
async fn distribution_with_bearer_tokens() {
    exercise(Flavor::Distribution, Security::Bearer).await;
}

#[tokio::test]
async fn referrers_registry_over_http() {
    exercise(Flavor::Referrers, Security::Http).await;
}

#[tokio::test]
async fn referrers_registry_over_https_with_private_ca() {
    exercise(Flavor::Referrers, Security::Https).await;
}

#[tokio::test]
async fn referrers_registry_with_basic_auth() {
    exercise(Flavor::Referrers, Security::Basic).await;
}

#[tokio::test]
async fn referrers_registry_with_bearer_tokens() {
    exercise(Flavor::Referrers, Security::Bearer).await;
}

/// mTLS: flux cannot push there, helm can. With the client certificate everything works; without
/// it the handshake fails as a TLS error.
async fn mtls(flavor: Flavor) {
    let reg = Registry::start(flavor, Security::Mtls);
    let work = tempfile::tempdir().unwrap();
    let chart_dir = tools::write_minimal_chart(work.path(), "secure", "1.2.3");
    let chart = tools::helm_package_and_push(&reg, &chart_dir, "charts");
    let repo = repository(&reg, &chart.repository);
    let cred = Credential::Anonymous;

    let client = Client::new(&transport(&reg)).expect("client");
    let digest = client.resolve_digest(&repo, "1.2.3", &cred).await.unwrap();
    assert_eq!(digest.to_string(), chart.digest);
    let manifest = client.fetch_manifest(&repo, &digest, &cred).await.unwrap();
    assert_eq!(manifest.layers[0].media_type, HELM_CHART);
    let bytes = read_blob(&client, &repo, &manifest.layers[0], &cred).await;
    assert_eq!(sha256_hex(&bytes), manifest.layers[0].digest.hex());

    // The CA alone is not enough.
    let mut no_cert = transport(&reg);
    no_cert.tls.cert_pem = None;
    no_cert.tls.key_pem = None;
    let client = Client::new(&no_cert).expect("client");
    match client.resolve_digest(&repo, "1.2.3", &cred).await {
        Err(e @ Error::Tls { .. }) => assert!(e.to_string().contains("tls: "), "{e}"),
        other => panic!("mTLS without a client certificate: {other:?}"),
    }
}

#[tokio::test]
async fn distribution_with_mtls() {
    mtls(Flavor::Distribution).await;
}

#[tokio::test]
async fn referrers_registry_with_mtls() {
    mtls(Flavor::Referrers).await;
}

#[tokio::test]
async fn https_needs_the_ca_unless_insecure() {
    let reg = Registry::start(Flavor::Distribution, Security::Https);
    let work = tempfile::tempdir().unwrap();
    let source = write_source_tree(work.path());
    let pushed = tools::flux_push_artifact(&reg, "app", "v1", &source, SOURCE, REVISION, &[]);
    let repo = repository(&reg, "app");

    // No CA: the private CA is unknown, and the plain-HTTP fallback meets a TLS port.
    let client = Client::new(&TransportConfig::default()).unwrap();
    match client
        .resolve_digest(&repo, "v1", &Credential::Anonymous)
        .await
    {
        Err(e @ Error::Tls { .. }) => assert!(e.to_string().contains("tls: "), "{e}"),
        other => panic!("no CA: {other:?}"),
    }

    // insecure without a CA skips verification, as Flux does.
    let insecure = TransportConfig {
        insecure: true,
        ..TransportConfig::default()
    };
    let client = Client::new(&insecure).unwrap();
    let digest = client
        .resolve_digest(&repo, "v1", &Credential::Anonymous)
        .await
        .unwrap();
    assert_eq!(digest.to_string(), pushed);
}

/// A host name that go-containerregistry would only reach over HTTPS (not loopback, not
/// RFC 1918): 127.0.0.2 forwarded to the registry. Plain HTTP is tried only when `insecure`.
#[tokio::test]
async fn plain_http_needs_insecure_for_other_hosts() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let source = write_source_tree(work.path());
    let pushed = tools::flux_push_artifact(&reg, "app", "v1", &source, SOURCE, REVISION, &[]);

    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = reg.host();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    let repo = Repository::parse_oci_url(&format!("oci://{addr}/app")).unwrap();

    let strict = TransportConfig {
        retry: ocisource::registry::RetryPolicy {
            attempts: 1,
            ..Default::default()
        },
        ..TransportConfig::default()
    };
    let client = Client::new(&strict).unwrap();
    let err = client
        .resolve_digest(&repo, "v1", &Credential::Anonymous)
        .await
        .expect_err("HTTPS only");
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().starts_with("Get \"https://"), "{err}");

    let insecure = TransportConfig {
        insecure: true,
        ..strict
    };
    let client = Client::new(&insecure).unwrap();
    let digest = client
        .resolve_digest(&repo, "v1", &Credential::Anonymous)
        .await
        .unwrap();
    assert_eq!(digest.to_string(), pushed);
    let counts = client.request_counts();
    assert_eq!(counts.ping, 2, "HTTPS tried first, then HTTP: {counts:?}");
}

/// Two resolves with the same credential cost one token; another repository needs its own.
#[tokio::test]
async fn bearer_tokens_are_cached_per_scope() {
    for flavor in [Flavor::Distribution, Flavor::Referrers] {
        let reg = Registry::start(flavor, Security::Bearer);
        let work = tempfile::tempdir().unwrap();
        let source = write_source_tree(work.path());
        tools::flux_push_artifact(&reg, "team/a", "v1", &source, SOURCE, REVISION, &[]);
        tools::flux_push_artifact(&reg, "team/b", "v1", &source, SOURCE, REVISION, &[]);
        let a = repository(&reg, "team/a");
        let b = repository(&reg, "team/b");
        let cred = credential(&reg, &a);
        let client = Client::new(&transport(&reg)).unwrap();

        let issued = reg.token_requests();
        client.resolve_digest(&a, "v1", &cred).await.unwrap();
        client.resolve_digest(&a, "v1", &cred).await.unwrap();
        client.list_tags(&a, &cred).await.unwrap();
        assert_eq!(
            reg.token_requests() - issued,
            1,
            "{flavor:?}: one token for a"
        );
        assert_eq!(client.request_counts().token, 1);
        client.resolve_digest(&b, "v1", &cred).await.unwrap();
        assert_eq!(
            reg.token_requests() - issued,
            2,
            "{flavor:?}: b has its own scope"
        );
    }
}

/// Wrong passwords are `Unauthorized` with the `UNAUTHORIZED` code, via basic auth or the token
/// server; no credentials at all are refused too.
#[tokio::test]
async fn wrong_credentials_are_unauthorized() {
    for (flavor, security) in [
        (Flavor::Distribution, Security::Basic),
        (Flavor::Distribution, Security::Bearer),
        (Flavor::Referrers, Security::Basic),
        (Flavor::Referrers, Security::Bearer),
    ] {
        let reg = Registry::start(flavor, security);
        let work = tempfile::tempdir().unwrap();
        let source = write_source_tree(work.path());
        tools::flux_push_artifact(&reg, "app", "v1", &source, SOURCE, REVISION, &[]);
        let repo = repository(&reg, "app");
        let client = Client::new(&transport(&reg)).unwrap();
        let wrong = keychain_for(&format!(
            r#"{{"auths":{{"{}":{{"username":"ocisource","password":"wrong-password"}}}}}}"#,
            reg.host()
        ))
        .resolve(&repo);
        assert!(!wrong.is_anonymous());
        for cred in [wrong, Credential::Anonymous] {
            match client.resolve_digest(&repo, "v1", &cred).await {
                Err(e @ Error::Unauthorized { .. }) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains("UNAUTHORIZED"),
                        "{flavor:?}/{security:?}: {msg}"
                    );
                    assert!(!msg.contains("wrong-password"), "{msg}");
                }
                other => panic!("{flavor:?}/{security:?} {cred:?}: {other:?}"),
            }
        }
    }
}

/// Every tag comes back at Flux's page size, on both flavors. (Neither test-bed registry
/// paginates with `Link`: distribution 2.8 ignores `n`, go-containerregistry's registry cuts the
/// list at `n` without a `Link`; `Link` pagination is tested against a fake in
/// `registry_faults.rs`.)
#[tokio::test]
async fn tag_listing_returns_every_tag() {
    for flavor in [Flavor::Distribution, Flavor::Referrers] {
        let reg = Registry::start(flavor, Security::Basic);
        let work = tempfile::tempdir().unwrap();
        let source = write_source_tree(work.path());
        tools::flux_push_artifact(&reg, "paged/app", "v0", &source, SOURCE, REVISION, &[]);
        for i in 1..=6 {
            tools::crane_tag(&reg, "paged/app:v0", &format!("v{i}"));
        }
        let mut want = tools::crane_ls(&reg, "paged/app");
        want.sort();
        assert_eq!(want.len(), 7, "{want:?}");

        let repo = repository(&reg, "paged/app");
        let cred = credential(&reg, &repo);
        let client = Client::new(&transport(&reg)).unwrap();
        let mut got = client.list_tags(&repo, &cred).await.unwrap();
        got.sort();
        assert_eq!(got, want, "{flavor:?}");
        assert_eq!(client.request_counts().tags, 1);
    }
}

/// Deadlines bound every call: a call that starts after its deadline fails at once with a
/// network error.
#[tokio::test]
async fn an_expired_deadline_fails_fast() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let repo = repository(&reg, "app");
    let client = Client::new(&transport(&reg))
        .unwrap()
        .with_deadline(Some(Instant::now()));
    let started = Instant::now();
    match client
        .resolve_digest(&repo, "v1", &Credential::Anonymous)
        .await
    {
        Err(e @ Error::Network { .. }) => {
            assert!(e.to_string().contains("deadline exceeded"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Digests from the test bed agree with the digest parser.
#[tokio::test]
async fn pushed_digests_parse() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let source = write_source_tree(work.path());
    let pushed = tools::flux_push_artifact(&reg, "app", "v1", &source, SOURCE, REVISION, &[]);
    let digest: Digest = pushed.parse().unwrap();
    assert_eq!(digest.to_string(), pushed);
    assert_eq!(tools::crane_digest(&reg, "app:v1"), pushed);
}
