//! The test bed's registries work as the other tests assume: both flavors under every security
//! setup accept a pushed OCI artifact and give it back, the referrers API exists only where it
//! should, and the security is real (wrong credentials and missing client certificates fail).
#![allow(missing_docs, clippy::expect_used)]

mod common;

use common::registry::{Flavor, Registry, Security, USER};
use oci_client::Reference;
use oci_client::secrets::RegistryAuth;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

const REPO: &str = "testbed/app";
const TAG: &str = "v1";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.ocisource.testbed.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
const REFERRER_TYPE: &str = "application/vnd.ocisource.testbed.signature.v1";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";

fn sha256(data: &[u8]) -> String {
    // oci-client's own helper, so the test needs no hashing crate.
    oci_client::client::ImageLayer::new(data.to_vec(), String::new(), None).sha256_digest()
}

fn descriptor(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(data), "size": data.len()})
}

/// Pushes and reads through oci-client, or through raw requests where oci-client cannot go
/// (it has no client-certificate option, so mTLS).
enum Via<'a> {
    Oci(oci_client::Client, &'a Registry),
    Raw(&'a Registry),
}

impl<'a> Via<'a> {
    async fn new(reg: &'a Registry) -> Via<'a> {
        if reg.security() == Security::Mtls {
            return Via::Raw(reg);
        }
        let client = oci_client::Client::new(reg.oci_client_config());
        // push_blob and push_manifest_raw don't take credentials; register them up front.
        client
            .store_auth_if_needed(&reg.host(), &reg.oci_auth())
            .await;
        Via::Oci(client, reg)
    }

    fn reference(reg: &Registry, reference: &str) -> Reference {
        let sep = if reference.contains(':') { "@" } else { ":" };
        format!("{}/{REPO}{sep}{reference}", reg.host())
            .parse()
            .expect("reference")
    }

    async fn push_blob(&self, data: &[u8]) -> String {
        let digest = sha256(data);
        match self {
            Via::Oci(client, reg) => {
                client
                    .push_blob(&Self::reference(reg, TAG), data.to_vec(), &digest)
                    .await
                    .expect("oci-client push_blob");
            }
            Via::Raw(reg) => {
                let resp = reg
                    .request(Method::POST, &format!("/v2/{REPO}/blobs/uploads/"))
                    .await
                    .send()
                    .await
                    .expect("start upload");
                assert_eq!(resp.status(), StatusCode::ACCEPTED, "start upload");
                let location = resp.headers()[header::LOCATION]
                    .to_str()
                    .expect("Location")
                    .to_string();
                // distribution answers an absolute URL, ggcr a path.
                let path = location.strip_prefix(&reg.url()).unwrap_or(&location);
                let sep = if path.contains('?') { '&' } else { '?' };
                let resp = reg
                    .request(Method::PUT, &format!("{path}{sep}digest={digest}"))
                    .await
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(data.to_vec())
                    .send()
                    .await
                    .expect("finish upload");
                assert_eq!(resp.status(), StatusCode::CREATED, "finish upload");
            }
        }
        digest
    }

    async fn push_manifest(&self, reference: &str, manifest: &[u8]) -> String {
        match self {
            Via::Oci(client, reg) => {
                client
                    .push_manifest_raw(
                        &Self::reference(reg, reference),
                        manifest.to_vec(),
                        header::HeaderValue::from_static(MANIFEST_TYPE),
                    )
                    .await
                    .expect("oci-client push_manifest_raw");
            }
            Via::Raw(reg) => {
                let resp = put_manifest(reg, reference, manifest).await;
                assert_eq!(resp.status(), StatusCode::CREATED, "push manifest");
            }
        }
        sha256(manifest)
    }

    async fn manifest(&self, reference: &str) -> (Vec<u8>, String) {
        match self {
            Via::Oci(client, reg) => {
                let (bytes, digest) = client
                    .pull_manifest_raw(
                        &Self::reference(reg, reference),
                        &reg.oci_auth(),
                        &[MANIFEST_TYPE],
                    )
                    .await
                    .expect("oci-client pull_manifest_raw");
                (bytes.to_vec(), digest)
            }
            Via::Raw(reg) => {
                let resp = reg
                    .request(Method::GET, &format!("/v2/{REPO}/manifests/{reference}"))
                    .await
                    .header(header::ACCEPT, MANIFEST_TYPE)
                    .send()
                    .await
                    .expect("get manifest");
                assert_eq!(resp.status(), StatusCode::OK, "get manifest");
                let digest = resp.headers()["docker-content-digest"]
                    .to_str()
                    .expect("digest header")
                    .to_string();
                (resp.bytes().await.expect("manifest body").to_vec(), digest)
            }
        }
    }

    async fn tags(&self) -> Vec<String> {
        match self {
            Via::Oci(client, reg) => {
                client
                    .list_tags(&Self::reference(reg, TAG), &reg.oci_auth(), None, None)
                    .await
                    .expect("oci-client list_tags")
                    .tags
            }
            Via::Raw(reg) => {
                let resp = reg
                    .request(Method::GET, &format!("/v2/{REPO}/tags/list"))
                    .await
                    .send()
                    .await
                    .expect("list tags");
                assert_eq!(resp.status(), StatusCode::OK, "list tags");
                let body: Value = resp.json().await.expect("tags JSON");
                serde_json::from_value(body["tags"].clone()).expect("tags array")
            }
        }
    }

    async fn blob(&self, layer: &Value) -> Vec<u8> {
        match self {
            Via::Oci(client, reg) => {
                let descriptor: oci_client::manifest::OciDescriptor =
                    serde_json::from_value(layer.clone()).expect("descriptor");
                let mut out = Vec::new();
                client
                    .pull_blob(&Self::reference(reg, TAG), &descriptor, &mut out)
                    .await
                    .expect("oci-client pull_blob");
                out
            }
            Via::Raw(reg) => {
                let digest = layer["digest"].as_str().expect("digest");
                let resp = reg
                    .request(Method::GET, &format!("/v2/{REPO}/blobs/{digest}"))
                    .await
                    .send()
                    .await
                    .expect("get blob");
                assert_eq!(resp.status(), StatusCode::OK, "get blob");
                resp.bytes().await.expect("blob body").to_vec()
            }
        }
    }
}

async fn put_manifest(reg: &Registry, reference: &str, manifest: &[u8]) -> reqwest::Response {
    reg.request(Method::PUT, &format!("/v2/{REPO}/manifests/{reference}"))
        .await
        .header(header::CONTENT_TYPE, MANIFEST_TYPE)
        .body(manifest.to_vec())
        .send()
        .await
        .expect("put manifest")
}

async fn exercise(flavor: Flavor, security: Security) {
    let reg = Registry::start(flavor, security);
    let via = Via::new(&reg).await;

    // An artifact like Flux's: custom config type, one layer, annotations on the manifest.
    let config = br#"{"ocisource":"testbed"}"#;
    let layer = b"hello from the ocisource test bed\n";
    via.push_blob(config).await;
    via.push_blob(layer).await;
    let layer_desc = descriptor(LAYER_TYPE, layer);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor(CONFIG_TYPE, config),
        "layers": [layer_desc],
        "annotations": {
            "org.opencontainers.image.source": "https://example.test/ocisource",
            "org.opencontainers.image.revision": "v1@sha1:0123456789abcdef0123456789abcdef01234567",
        },
    }))
    .expect("manifest JSON");
    let digest = via.push_manifest(TAG, &manifest).await;

    let (got, got_digest) = via.manifest(TAG).await;
    assert_eq!(got, manifest, "manifest read back by tag");
    assert_eq!(got_digest, digest, "manifest digest");
    let (by_digest, _) = via.manifest(&digest).await;
    assert_eq!(by_digest, manifest, "manifest read back by digest");
    assert!(via.tags().await.contains(&TAG.to_string()), "tag listed");
    assert_eq!(via.blob(&layer_desc).await, layer, "layer read back");

    // A signature-like referrer: empty config, artifactType, subject = the artifact.
    via.push_blob(b"{}").await;
    let payload = b"signature payload";
    via.push_blob(payload).await;
    let referrer = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": REFERRER_TYPE,
        "config": descriptor(EMPTY_TYPE, b"{}"),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": {"mediaType": MANIFEST_TYPE, "digest": digest, "size": manifest.len()},
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }))
    .expect("referrer JSON");
    let referrer_digest = sha256(&referrer);
    let resp = put_manifest(&reg, &referrer_digest, &referrer).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "push referrer");
    let oci_subject = resp.headers().get("oci-subject").cloned();

    let referrers_path = format!("/v2/{REPO}/referrers/{digest}");
    let resp = reg
        .request(Method::GET, &referrers_path)
        .await
        .send()
        .await
        .expect("referrers");
    match flavor {
        Flavor::Distribution => {
            assert_eq!(
                resp.status(),
                StatusCode::NOT_FOUND,
                "distribution 2.8 has no referrers API"
            );
            assert_eq!(oci_subject, None, "no OCI-Subject without referrers API");
        }
        Flavor::Referrers => {
            assert_eq!(resp.status(), StatusCode::OK, "referrers API");
            let index: Value = resp.json().await.expect("referrers index");
            assert_eq!(
                index["manifests"],
                json!([{
                    "mediaType": MANIFEST_TYPE,
                    "digest": referrer_digest,
                    "size": referrer.len(),
                    "artifactType": REFERRER_TYPE,
                    "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
                }]),
                "referrers of the artifact"
            );
            assert_eq!(
                oci_subject.as_ref().and_then(|v| v.to_str().ok()),
                Some(digest.as_str()),
                "OCI-Subject on a manifest push with subject"
            );
            let filtered = reg
                .request(
                    Method::GET,
                    &format!("{referrers_path}?artifactType=other/type"),
                )
                .await
                .send()
                .await
                .expect("filtered referrers");
            assert_eq!(
                filtered
                    .headers()
                    .get("oci-filters-applied")
                    .map(|v| v.as_bytes()),
                Some(&b"artifactType"[..])
            );
            let index: Value = filtered.json().await.expect("filtered index");
            assert_eq!(index["manifests"], json!([]), "artifactType filter");
            if let Via::Oci(client, _) = &via {
                let subject = Via::reference(&reg, &digest);
                let index = client
                    .pull_referrers(&subject, Some(REFERRER_TYPE))
                    .await
                    .expect("oci-client pull_referrers");
                assert_eq!(index.manifests.len(), 1, "oci-client sees the referrer");
                assert_eq!(index.manifests[0].digest, referrer_digest);
            }
        }
    }

    check_security(&reg, &digest).await;
}

/// The security setup is enforced, not just offered.
async fn check_security(reg: &Registry, digest: &str) {
    let manifest_path = format!("/v2/{REPO}/manifests/{digest}");
    let manifest_url = format!("{}{manifest_path}", reg.url());
    let wrong = RegistryAuth::Basic(USER.into(), "wrong-password".into());
    let subject = format!("{}/{REPO}@{digest}", reg.host())
        .parse::<Reference>()
        .expect("ref");
    match reg.security() {
        Security::Http => {}
        Security::Https => {
            // Without the private CA, TLS verification fails.
            let client = oci_client::Client::new(Default::default());
            let err = client
                .pull_manifest_raw(&subject, &RegistryAuth::Anonymous, &[MANIFEST_TYPE])
                .await
                .expect_err("server certificate must not verify without the CA");
            assert!(format!("{err:?}").contains("ertificate"), "{err:?}");
        }
        Security::Mtls => {
            let ca =
                reqwest::Certificate::from_pem(reg.ca_pem().expect("CA").as_bytes()).expect("CA");
            let no_cert = reqwest::Client::builder()
                .tls_certs_only([ca])
                .build()
                .expect("client");
            let err = no_cert
                .get(format!("{}/v2/", reg.url()))
                .send()
                .await
                .expect_err("TLS must fail without a client certificate");
            assert!(err.is_connect() || err.is_request(), "{err:?}");
            // oci-client has no way to present one.
            let client = oci_client::Client::new(reg.oci_client_config());
            client
                .pull_manifest_raw(&subject, &RegistryAuth::Anonymous, &[MANIFEST_TYPE])
                .await
                .expect_err("oci-client cannot pass mTLS");
        }
        Security::Basic => {
            let http = reg.http_client();
            let anonymous = http.get(&manifest_url).send().await.expect("anonymous");
            assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
            let challenge = anonymous.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .expect("challenge");
            assert!(challenge.starts_with("Basic realm="), "{challenge}");
            let v2 = http
                .get(format!("{}/v2/", reg.url()))
                .send()
                .await
                .expect("/v2/");
            assert_eq!(v2.status(), StatusCode::UNAUTHORIZED, "/v2/ needs auth too");
            let bad = reg
                .authorize(&manifest_path, USER, "wrong-password")
                .await
                .expect("basic header")
                .expect("basic header");
            let resp = http
                .get(&manifest_url)
                .header(header::AUTHORIZATION, bad)
                .send()
                .await
                .expect("wrong password");
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "wrong password");
            let client = oci_client::Client::new(reg.oci_client_config());
            client
                .pull_manifest_raw(&subject, &wrong, &[MANIFEST_TYPE])
                .await
                .expect_err("oci-client with a wrong password");
        }
        Security::Bearer => {
            let http = reg.http_client();
            let anonymous = http.get(&manifest_url).send().await.expect("anonymous");
            assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
            let challenge = anonymous.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .expect("challenge")
                .to_string();
            let realm = reg.token_realm().expect("realm");
            assert!(
                challenge.starts_with(&format!("Bearer realm=\"{realm}\"")),
                "{challenge}"
            );
            assert!(
                challenge.contains(&format!("scope=\"repository:{REPO}:pull\"")),
                "{challenge}"
            );
            let v2 = http
                .get(format!("{}/v2/", reg.url()))
                .send()
                .await
                .expect("/v2/");
            assert_eq!(
                v2.status(),
                StatusCode::UNAUTHORIZED,
                "/v2/ needs a token too"
            );
            assert!(v2.headers().contains_key(header::WWW_AUTHENTICATE));

            let refused = reg.authorize(&manifest_path, USER, "wrong-password").await;
            assert_eq!(
                refused,
                Err(StatusCode::UNAUTHORIZED),
                "token server, wrong password"
            );

            // An anonymous token carries no access: the registry refuses it.
            let token: Value = http
                .get(&realm)
                .query(&[
                    ("service", common::registry::TOKEN_SERVICE.to_string()),
                    ("scope", format!("repository:{REPO}:pull")),
                ])
                .send()
                .await
                .expect("anonymous token")
                .json()
                .await
                .expect("token JSON");
            let resp = http
                .get(&manifest_url)
                .bearer_auth(token["token"].as_str().expect("token"))
                .send()
                .await
                .expect("anonymous token use");
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "anonymous token");

            let before = reg.token_requests();
            assert!(before > 0, "tokens were issued");
            let client = oci_client::Client::new(reg.oci_client_config());
            client
                .pull_manifest_raw(&subject, &wrong, &[MANIFEST_TYPE])
                .await
                .expect_err("oci-client with a wrong password");
            let good = oci_client::Client::new(reg.oci_client_config());
            good.pull_manifest_raw(&subject, &reg.oci_auth(), &[MANIFEST_TYPE])
                .await
                .expect("oci-client with the right password");
            assert_eq!(reg.token_requests(), before + 1, "one token for one pull");
        }
    }
}

macro_rules! cases {
    ($($name:ident: $flavor:ident, $security:ident;)*) => {$(
        #[tokio::test]
        async fn $name() {
            exercise(Flavor::$flavor, Security::$security).await;
        }
    )*};
}

cases! {
    distribution_http: Distribution, Http;
    distribution_https: Distribution, Https;
    distribution_mtls: Distribution, Mtls;
    distribution_basic: Distribution, Basic;
    distribution_bearer: Distribution, Bearer;
    referrers_http: Referrers, Http;
    referrers_https: Referrers, Https;
    referrers_mtls: Referrers, Mtls;
    referrers_basic: Referrers, Basic;
    referrers_bearer: Referrers, Bearer;
}
