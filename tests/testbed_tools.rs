//! The test bed's producer tools against both registry flavors: the real `flux push artifact`,
//! `helm push`, `cosign sign` and the notation-go signer write into the registries, and Rust
//! reads everything back over the OCI distribution API with `oci-client`, as the controller will.
//! The keyless signatures of `sigstore-testca` are checked with the real `cosign verify`.
//!
//! A missing tool or registry fails the test with the install command (never a skip).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::registry::{Flavor, Registry, Security};
use common::tools;
use oci_client::Client;
use oci_client::Reference;
use oci_client::manifest::{OciDescriptor, OciImageIndex};
use oci_client::secrets::RegistryAuth;
use serde_json::Value;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
const COSIGN_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const NOTARY_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
const JWS: &str = "application/jose+json";
const COSE: &str = "application/cose";

const SOURCE: &str = "https://github.com/example/app";
const REVISION: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";

#[tokio::test]
async fn tools_against_distribution_over_http() {
    exercise(Flavor::Distribution, Security::Http).await;
}

#[tokio::test]
async fn tools_against_referrers_registry_over_http() {
    exercise(Flavor::Referrers, Security::Http).await;
}

#[tokio::test]
async fn tools_against_distribution_with_basic_auth() {
    exercise(Flavor::Distribution, Security::Basic).await;
}

#[tokio::test]
async fn tools_against_referrers_registry_over_https_with_private_ca() {
    exercise(Flavor::Referrers, Security::Https).await;
}

#[tokio::test]
async fn tools_against_referrers_registry_with_bearer_tokens() {
    exercise(Flavor::Referrers, Security::Bearer).await;
}

/// The OCI view of one registry, as the controller has it.
struct Oci {
    client: Client,
    auth: RegistryAuth,
    host: String,
}

impl Oci {
    async fn new(reg: &Registry) -> Oci {
        let client = Client::new(reg.oci_client_config());
        let auth = reg.oci_auth();
        client.store_auth_if_needed(&reg.host(), &auth).await;
        Oci {
            client,
            auth,
            host: reg.host(),
        }
    }

    fn reference(&self, reference: &str) -> Reference {
        let full = format!("{}/{reference}", self.host);
        full.parse()
            .unwrap_or_else(|e| panic!("bad reference {full}: {e}"))
    }

    /// The raw manifest at `reference` (`repo:tag` or `repo@digest`), parsed, and its digest.
    async fn manifest(&self, reference: &str, accept: &[&str]) -> (Value, String) {
        let (raw, digest) = self
            .client
            .pull_manifest_raw(&self.reference(reference), &self.auth, accept)
            .await
            .unwrap_or_else(|e| panic!("pull manifest {reference}: {e}"));
        let json = serde_json::from_slice(&raw)
            .unwrap_or_else(|e| panic!("manifest {reference} is not JSON: {e}"));
        (json, digest)
    }

    async fn tags(&self, repo: &str) -> Vec<String> {
        self.client
            .list_tags(
                &self.reference(&format!("{repo}:latest")),
                &self.auth,
                None,
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("list tags of {repo}: {e}"))
            .tags
    }

    /// The blob that `descriptor` (a manifest's JSON descriptor) points to; oci-client checks
    /// its digest.
    async fn blob(&self, repo: &str, descriptor: &Value) -> Vec<u8> {
        let desc: OciDescriptor = serde_json::from_value(descriptor.clone())
            .unwrap_or_else(|e| panic!("bad descriptor {descriptor}: {e}"));
        let mut out = Vec::new();
        self.client
            .pull_blob(&self.reference(&format!("{repo}:latest")), &desc, &mut out)
            .await
            .unwrap_or_else(|e| panic!("pull blob {} from {repo}: {e}", desc.digest));
        assert_eq!(out.len() as i64, desc.size, "blob size of {}", desc.digest);
        out
    }

    async fn referrers(&self, repo: &str, digest: &str, artifact_type: &str) -> OciImageIndex {
        self.client
            .pull_referrers(
                &self.reference(&format!("{repo}@{digest}")),
                Some(artifact_type),
            )
            .await
            .unwrap_or_else(|e| panic!("referrers of {repo}@{digest}: {e}"))
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{key}` in {v}"))
}

/// A small Flux source tree: manifests in two directories, plus a file `flux push` ignores.
fn write_source_tree(dir: &Path) -> PathBuf {
    let root = dir.join("source");
    std::fs::create_dir_all(root.join("apps/web")).expect("create source tree");
    std::fs::write(
        root.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- apps/web/configmap.yaml\n",
    )
    .expect("write kustomization");
    std::fs::write(
        root.join("apps/web/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  color: blue\n",
    )
    .expect("write configmap");
    // Dropped by the CLI's default ignore rules (`*.png`).
    std::fs::write(root.join("logo.png"), [0x89, b'P', b'N', b'G']).expect("write png");
    root
}

/// Relative path -> contents of every regular file under `root`.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    std::fs::read(&path).expect("read file"),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn sig_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

async fn exercise(flavor: Flavor, security: Security) {
    let reg = Registry::start(flavor, security);
    let oci = Oci::new(&reg).await;
    let work = tempfile::tempdir().expect("work dir");

    // --- flux push artifact -------------------------------------------------------------
    let source = write_source_tree(work.path());
    let repo = "flux/app";
    let digest = tools::flux_push_artifact(
        &reg,
        repo,
        "v1.0.0",
        &source,
        SOURCE,
        REVISION,
        &["--annotations", "org.example/team=platform"],
    );
    assert!(digest.starts_with("sha256:"), "flux push digest {digest}");

    let (manifest, got) = oci
        .manifest(&format!("{repo}:v1.0.0"), &[OCI_MANIFEST])
        .await;
    assert_eq!(got, digest, "tag v1.0.0 resolves to the pushed digest");
    assert_eq!(str_at(&manifest, "mediaType"), OCI_MANIFEST);
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(str_at(&manifest["config"], "mediaType"), FLUX_CONFIG);
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "one layer: {manifest}");
    assert_eq!(str_at(&layers[0], "mediaType"), FLUX_CONTENT);
    let ann = &manifest["annotations"];
    assert_eq!(str_at(ann, "org.opencontainers.image.source"), SOURCE);
    assert_eq!(str_at(ann, "org.opencontainers.image.revision"), REVISION);
    let created = str_at(ann, "org.opencontainers.image.created");
    assert!(
        created.ends_with('Z') && created.contains('T'),
        "created is RFC3339 UTC: {created}"
    );
    assert_eq!(str_at(ann, "org.example/team"), "platform");

    let layer = oci.blob(repo, &layers[0]).await;
    assert_eq!(&layer[..2], &[0x1f, 0x8b], "the content layer is gzip");
    let config = oci.blob(repo, &manifest["config"]).await;
    serde_json::from_slice::<Value>(&config).expect("the flux config blob is JSON");
    assert!(oci.tags(repo).await.contains(&"v1.0.0".to_string()));

    // --- flux pull artifact: the CLI reads back what it pushed ---------------------------------
    let pulled = work.path().join("pulled");
    let report = tools::flux_pull_artifact(&reg, &format!("{repo}@{digest}"), &pulled);
    assert!(report.contains(REVISION), "flux pull report:\n{report}");
    let mut expected = files(&source);
    expected.remove("logo.png");
    assert_eq!(
        files(&pulled),
        expected,
        "flux pull restores the pushed tree"
    );

    // --- helm push -------------------------------------------------------------------------
    let chart_dir = tools::write_minimal_chart(work.path(), "hello", "0.1.0");
    let chart = tools::helm_package_and_push(&reg, &chart_dir, "charts");
    assert_eq!(chart.name, "hello");
    assert_eq!(chart.version, "0.1.0");
    assert_eq!(chart.repository, "charts/hello");
    let (chart_manifest, got) = oci
        .manifest(&format!("{}:0.1.0", chart.repository), &[OCI_MANIFEST])
        .await;
    assert_eq!(got, chart.digest);
    assert_eq!(str_at(&chart_manifest["config"], "mediaType"), HELM_CONFIG);
    let chart_layers = chart_manifest["layers"].as_array().expect("layers");
    assert_eq!(chart_layers.len(), 1, "{chart_manifest}");
    assert_eq!(str_at(&chart_layers[0], "mediaType"), HELM_CHART);
    let chart_config: Value =
        serde_json::from_slice(&oci.blob(&chart.repository, &chart_manifest["config"]).await)
            .expect("helm config JSON");
    assert_eq!(chart_config["name"], "hello");
    assert_eq!(chart_config["version"], "0.1.0");
    let tgz = oci.blob(&chart.repository, &chart_layers[0]).await;
    assert_eq!(&tgz[..2], &[0x1f, 0x8b], "the chart layer is the .tgz");

    // --- cosign: key pair, offline signature, `sha256-<hex>.sig` tag ----------------------
    let keys = tools::cosign_generate_key_pair(&work.path().join("cosign"));
    tools::cosign_sign_key(&reg, &format!("{repo}@{digest}"), &keys);
    let sig = format!("{}.sig", sig_tag(&digest));
    assert!(
        oci.tags(repo).await.contains(&sig),
        "cosign wrote tag {sig}"
    );
    let (sig_manifest, _) = oci
        .manifest(
            &format!("{repo}:{sig}"),
            &[
                OCI_MANIFEST,
                "application/vnd.docker.distribution.manifest.v2+json",
            ],
        )
        .await;
    let sig_layers = sig_manifest["layers"].as_array().expect("layers");
    assert_eq!(sig_layers.len(), 1, "{sig_manifest}");
    assert_eq!(str_at(&sig_layers[0], "mediaType"), COSIGN_SIMPLESIGNING);
    assert!(
        !str_at(&sig_layers[0]["annotations"], COSIGN_SIGNATURE_ANNOTATION).is_empty(),
        "signature annotation"
    );
    let payload: Value = serde_json::from_slice(&oci.blob(repo, &sig_layers[0]).await)
        .expect("simple signing payload");
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"], digest,
        "{payload}"
    );
    let verified = tools::cosign_verify_key(&reg, &format!("{repo}@{digest}"), &keys);
    assert!(verified.contains(&digest), "cosign verify:\n{verified}");

    // --- notation: JWS on the artifact, COSE on the chart ------------------------------------
    let key = tools::notation_generate_test_cert(&work.path().join("notation"), "ocisource-test");
    // On the referrers registry, let the signer use the referrers API (the CLI's default is the
    // tag schema); on distribution it must fall back to the `sha256-<hex>` index tag.
    let extra: &[&str] = match flavor {
        Flavor::Referrers => &["--force-referrers-tag=false"],
        Flavor::Distribution => &[],
    };
    for (subject_repo, subject_digest, format, envelope) in [
        (repo, digest.as_str(), "jws", JWS),
        (
            chart.repository.as_str(),
            chart.digest.as_str(),
            "cose",
            COSE,
        ),
    ] {
        let subject = format!("{subject_repo}@{subject_digest}");
        let out = tools::notation_sign(&reg, &subject, &key, format, extra);
        assert!(out.contains("Successfully signed"), "notation sign:\n{out}");

        let signatures: Vec<(String, Option<String>)> = match flavor {
            Flavor::Referrers => {
                // The registry answers the push with OCI-Subject, so the signer keeps no
                // fallback tag: the signature is reachable through the referrers API only.
                assert!(
                    !oci.tags(subject_repo)
                        .await
                        .contains(&sig_tag(subject_digest)),
                    "no referrers tag on a registry with the referrers API"
                );
                oci.referrers(subject_repo, subject_digest, NOTARY_SIGNATURE)
                    .await
                    .manifests
                    .into_iter()
                    .map(|d| (d.digest, d.artifact_type))
                    .collect()
            }
            Flavor::Distribution => {
                let (index, _) = oci
                    .manifest(
                        &format!("{subject_repo}:{}", sig_tag(subject_digest)),
                        &[OCI_INDEX],
                    )
                    .await;
                assert_eq!(str_at(&index, "mediaType"), OCI_INDEX);
                index["manifests"]
                    .as_array()
                    .expect("manifests")
                    .iter()
                    .map(|d| {
                        (
                            str_at(d, "digest").to_string(),
                            d["artifactType"].as_str().map(str::to_string),
                        )
                    })
                    .collect()
            }
        };
        assert_eq!(
            signatures.len(),
            1,
            "one notation signature: {signatures:?}"
        );
        let (sig_digest, artifact_type) = &signatures[0];
        assert_eq!(artifact_type.as_deref(), Some(NOTARY_SIGNATURE));

        let (sig_manifest, _) = oci
            .manifest(&format!("{subject_repo}@{sig_digest}"), &[OCI_MANIFEST])
            .await;
        assert_eq!(str_at(&sig_manifest["subject"], "digest"), subject_digest);
        let sig_layers = sig_manifest["layers"].as_array().expect("layers");
        assert_eq!(sig_layers.len(), 1, "{sig_manifest}");
        assert_eq!(str_at(&sig_layers[0], "mediaType"), envelope);
        let env = oci.blob(subject_repo, &sig_layers[0]).await;
        assert!(!env.is_empty(), "signature envelope");

        let out = tools::notation_verify(&reg, &subject, &key.cert);
        assert!(
            out.contains("Successfully verified"),
            "notation verify:\n{out}"
        );
    }
}

/// Of the producer tools only helm and cosign can present a client certificate (flux push,
/// the notation signer and crane cannot), so an mTLS registry gets a chart and a cosign
/// signature, read back with the registry helper's mTLS HTTP client (oci-client has no client
/// certificates).
#[tokio::test]
async fn helm_and_cosign_against_mtls_registry() {
    let reg = Registry::start(Flavor::Distribution, Security::Mtls);
    let work = tempfile::tempdir().expect("work dir");
    let chart_dir = tools::write_minimal_chart(work.path(), "secure", "1.2.3");
    let chart = tools::helm_package_and_push(&reg, &chart_dir, "charts");
    assert_eq!(chart.repository, "charts/secure");
    assert_eq!(chart.version, "1.2.3");

    let get = |path: String| {
        let reg = &reg;
        async move {
            let resp = reg
                .request(reqwest::Method::GET, &path)
                .await
                .header(reqwest::header::ACCEPT, OCI_MANIFEST)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {path}: {e}"));
            assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
            resp.json::<Value>()
                .await
                .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
        }
    };
    let manifest = get(format!(
        "/v2/{}/manifests/{}",
        chart.repository, chart.digest
    ))
    .await;
    assert_eq!(str_at(&manifest["layers"][0], "mediaType"), HELM_CHART);

    let keys = tools::cosign_generate_key_pair(&work.path().join("cosign"));
    let subject = format!("{}@{}", chart.repository, chart.digest);
    tools::cosign_sign_key(&reg, &subject, &keys);
    let tags = get(format!("/v2/{}/tags/list", chart.repository)).await;
    let sig = format!("{}.sig", sig_tag(&chart.digest));
    assert!(
        tags["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .any(|t| t == sig.as_str()),
        "cosign wrote {sig}: {tags}"
    );
    let verified = tools::cosign_verify_key(&reg, &subject, &keys);
    assert!(
        verified.contains(&chart.digest),
        "cosign verify:\n{verified}"
    );
}

/// `sigstore-testca` makes keyless signatures the real cosign v2.6.5 accepts offline with the
/// CA's trusted root, on both layouts, and refuses for another identity or another root.
#[test]
fn sigstore_testca_signatures_verify_with_cosign_offline() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let ca = tools::TestCa::init(&work.path().join("ca"));
    let other = tools::TestCa::init(&work.path().join("other"));
    let issuer = "https://issuer.example";
    for layout in ["bundle", "sig"] {
        let digest = tools::flux_push_file(
            &reg,
            "app",
            layout,
            ("deploy.yaml", &format!("kind: {layout}\n")),
            SOURCE,
            REVISION,
        );
        let reference = format!("app@{digest}");
        ca.sign(&reg, &reference, "dev@example.com", issuer, layout, &[]);
        let out = ca
            .cosign_verify(
                &reg,
                &reference,
                "^dev@example\\.com$",
                "^https://issuer\\.example$",
                layout,
            )
            .unwrap_or_else(|e| panic!("{layout}: cosign refused: {e}"));
        assert!(out.contains(&digest), "{layout}: {out}");
        let wrong = ca.cosign_verify(&reg, &reference, "^ops@", ".*", layout);
        assert!(
            wrong.is_err(),
            "{layout}: another identity accepted: {wrong:?}"
        );
        let untrusted = other.cosign_verify(&reg, &reference, ".*", ".*", layout);
        assert!(
            untrusted.is_err(),
            "{layout}: another root accepted: {untrusted:?}"
        );
    }
}
