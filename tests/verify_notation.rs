//! Notation (Notary Project) verification end to end: artifacts pushed with the real flux CLI
//! into the test-bed registries, signed by the test bed's notation signer (notation-go v1.3.2,
//! JWS and COSE envelopes, signature manifests stored through the OCI referrers API or the
//! referrers tag schema), then reconciled by the binary in standalone mode (the verification
//! Secret from `--secrets-dir`) and by the controller against the real API server. The
//! signer's own `notation verify` is the ground truth that a signature is good.
//!
//! The cases follow the notation rows of spec §9 (`verifyOCISourceSignatureNotation`,
//! `verifyOCISourceTrustPolicyNotation`). Flux's multi-line texts read with spaces for line
//! feeds, as every ocisource condition message does.

mod common;

use std::path::Path;

use common::fake_registry::{Fake, ok, status};
use common::object::{condition as cond, json_condition as condition};
use common::registry::{Flavor, Registry, Security};
use common::standalone::{Run, assert_kstatus_sound};
use common::tools::{self, NotationKey};
use common::verification::{
    assert_refused, assert_retried, assert_tag_and_digest_verify, assert_verified,
    controller_with_verified_object, is_refused, keys_dir, push, reconcile, remove_verify,
    request_until_refused, revision, verified_manifest, verifies, wait_verified,
    write_registry_credentials, write_secret,
};
use k8s_openapi::ByteString;
use k8s_openapi::jiff::Timestamp;
use ocisource::registry::{Client, Credential, Digest, TransportConfig};
use ocisource::verify::notation::{self, Verdict};
use serde_json::{Value, json};

const NOTARY_SUBJECT: &str = "x509.subject: C=US, ST=WA, O=Notary";
const OTHER_SUBJECT: &str = "x509.subject: C=US, ST=WA, O=Acme";

/// A trust policy with one statement `test-statement-name` for every repository, at `level`,
/// trusting store `ca:flux` and `identities`.
fn policy(level: &str, identities: &[&str]) -> String {
    json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "test-statement-name",
            "registryScopes": ["*"],
            "signatureVerification": {"level": level},
            "trustStores": ["ca:flux"],
            "trustedIdentities": identities,
        }],
    })
    .to_string()
}

/// An OCIRepository verified with notation and Secret `keys`.
fn manifest(name: &str, url: &str, tag: &str, extra: Value) -> Value {
    verified_manifest(name, url, tag, "notation", extra)
}

fn cert(key: &NotationKey) -> String {
    std::fs::read_to_string(&key.cert).unwrap()
}

/// A secrets directory with Secret `keys` holding `policy` and `key`'s certificate.
fn secrets(policy: &str, key: &NotationKey) -> tempfile::TempDir {
    keys_dir(&[
        ("trustpolicy.json", policy.to_string()),
        ("notation.crt", cert(key)),
    ])
}

/// The referrers tag of `digest` (the tag schema notation falls back to).
fn referrers_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// The signature manifests the referrers tag of `repo@digest` lists.
fn signature_digests(reg: &Registry, repo: &str, digest: &str) -> Vec<String> {
    let index: Value = serde_json::from_str(&tools::crane_manifest(
        reg,
        &format!("{repo}:{}", referrers_tag(digest)),
    ))
    .unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect()
}

fn failure(text: &str) -> String {
    format!("failed to verify the signature using provider 'notation': {text}")
}

/// Asserts a stored artifact at `revision` and no `SourceVerified` (skip, or a logged
/// authenticity failure).
fn assert_ignored(run: &Run, revision: &str) {
    assert_eq!(run.code, 0, "{}\n{}", run.obj["status"], run.stderr);
    assert_eq!(condition(&run.obj, "SourceVerified"), None);
    assert_eq!(
        condition(&run.obj, "Ready").map(|c| c.0).as_deref(),
        Some("True")
    );
    assert_eq!(run.obj["status"]["artifact"]["revision"], revision);
    assert_kstatus_sound(&run.obj);
}

#[test]
fn jws_and_cose_signatures_verify_through_the_referrers_api_and_the_referrers_tag() {
    let work = tempfile::tempdir().unwrap();
    let key = tools::notation_generate_test_cert(work.path(), "flux");
    let keys = secrets(&policy("strict", &[NOTARY_SUBJECT]), &key);
    for (flavor, format) in [
        (Flavor::Referrers, "jws"),
        (Flavor::Referrers, "cose"),
        (Flavor::Distribution, "jws"),
        (Flavor::Distribution, "cose"),
    ] {
        let reg = Registry::start(flavor, Security::Http);
        let digest = push(&reg, "app", "v1", &format!("kind: {format}\n"));
        // Where the registry has the referrers API, the signer uses it (no tag); the
        // distribution registry has none, so the signature is found only through the tag.
        let api = flavor == Flavor::Referrers;
        let args: &[&str] = if api {
            &["--force-referrers-tag=false"]
        } else {
            &[]
        };
        tools::notation_sign(&reg, &format!("app@{digest}"), &key, format, args);
        assert_eq!(
            tools::crane_ls(&reg, "app").contains(&referrers_tag(&digest)),
            !api,
            "{flavor:?}"
        );
        let truth = tools::notation_verify(&reg, &format!("app@{digest}"), &key.cert);
        assert!(truth.contains("Successfully verified"), "{truth}");

        let url = format!("oci://{}/app", reg.host());
        let storage = tempfile::tempdir().unwrap();
        assert_tag_and_digest_verify(
            &manifest(format, &url, "v1", json!({})),
            &digest,
            storage.path(),
            keys.path(),
        );
    }
}

#[test]
fn unsigned_moved_and_foreign_artifacts_are_refused_and_nothing_is_pulled() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let signer = tools::notation_generate_test_cert(&work.path().join("signer"), "signer");
    let other = tools::notation_generate_test_cert(&work.path().join("other"), "other");
    let signed = push(&reg, "app", "v1", "kind: Signed\n");
    tools::notation_sign(&reg, &format!("app@{signed}"), &signer, "jws", &[]);
    let unsigned = push(&reg, "app", "unsigned", "kind: Unsigned\n");
    let url = format!("oci://{}/app", reg.host());
    let keys = secrets(&policy("strict", &["*"]), &signer);

    let storage = tempfile::tempdir().unwrap();
    let run = reconcile(
        &manifest("unsigned", &url, "unsigned", json!({})),
        storage.path(),
        keys.path(),
    );
    let no_signature = |digest: &str| {
        failure(&format!(
            "no signature is associated with \"{}/app@{digest}\", make sure the artifact was \
             signed successfully",
            reg.host()
        ))
    };
    assert_refused(&run, &no_signature(&unsigned), storage.path());

    // A certificate the Secret does not hold.
    let foreign = secrets(&policy("strict", &["*"]), &other);
    let run = reconcile(
        &manifest("foreign", &url, "v1", json!({})),
        storage.path(),
        foreign.path(),
    );
    let sig = signature_digests(&reg, "app", &signed).remove(0);
    assert_refused(
        &run,
        &failure(&format!(
            "signature verification failed failed to verify signature with digest {sig}, the \
             signature's certificate chain does not contain any trusted certificate"
        )),
        storage.path(),
    );

    // The tag moves after signing: the new digest has no signature of its own.
    let moved = push(&reg, "app", "v1", "kind: Moved\n");
    let run = reconcile(
        &manifest("moved", &url, "v1", json!({})),
        storage.path(),
        keys.path(),
    );
    assert_refused(&run, &no_signature(&moved), storage.path());
    assert_retried(&run);

    // The signed digest's referrers tag copied to where the moved digest's would be: its
    // signature names the signed digest, so it vouches for nothing else.
    tools::crane_tag(
        &reg,
        &format!("app:{}", referrers_tag(&signed)),
        &referrers_tag(&moved),
    );
    let run = reconcile(
        &manifest("replayed", &url, "v1", json!({})),
        storage.path(),
        keys.path(),
    );
    assert_refused(
        &run,
        &failure(&format!(
            "signature verification failed failed to verify signature with digest {sig}, \
             content descriptor mismatch"
        )),
        storage.path(),
    );
}

#[test]
fn an_expired_signature_fails_where_expiry_is_enforced() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let key = tools::notation_generate_test_cert(work.path(), "flux");
    let digest = push(&reg, "app", "v1", "kind: Expiring\n");
    tools::notation_sign(
        &reg,
        &format!("app@{digest}"),
        &key,
        "jws",
        &["--expiry", "1s"],
    );
    let sig = signature_digests(&reg, "app", &digest).remove(0);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let url = format!("oci://{}/app", reg.host());

    // strict enforces expiry.
    let storage = tempfile::tempdir().unwrap();
    let keys = secrets(&policy("strict", &[NOTARY_SUBJECT]), &key);
    let run = reconcile(
        &manifest("strict", &url, "v1", json!({})),
        storage.path(),
        keys.path(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let (status, reason, message) = condition(&run.obj, "SourceVerified").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "VerificationError")
    );
    let prefix = failure(&format!(
        "signature verification failed failed to verify signature with digest {sig}, digital \
         signature has expired on \""
    ));
    assert!(
        message.starts_with(&prefix) && message.ends_with(" +0000\""),
        "{message}"
    );
    assert!(run.obj["status"].get("artifact").is_none());

    // permissive only logs it: verified.
    let keys = secrets(&policy("permissive", &[NOTARY_SUBJECT]), &key);
    let run = reconcile(
        &manifest("permissive", &url, "v1", json!({})),
        storage.path(),
        keys.path(),
    );
    assert_verified(&run, &format!("v1@{digest}"));
}

#[test]
fn trust_policy_levels_and_identities_map_to_fluxs_outcomes() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let key = tools::notation_generate_test_cert(work.path(), "flux");
    let digest = push(&reg, "app", "v1", "kind: Signed\n");
    tools::notation_sign(&reg, &format!("app@{digest}"), &key, "cose", &[]);
    let sig = signature_digests(&reg, "app", &digest).remove(0);
    let url = format!("oci://{}/app", reg.host());
    let revision = format!("v1@{digest}");
    let wrong_identity = failure(&format!(
        "signature verification failed failed to verify signature with digest {sig}, signing \
         certificate from the digital signature does not match the X.509 trusted identities \
         [map[\"C\":\"US\" \"O\":\"Acme\" \"ST\":\"WA\"]] defined in the trust policy \
         \"test-statement-name\""
    ));
    enum Want {
        Verified,
        Ignored,
        Refused(String),
    }
    for (level, identities, want) in [
        ("strict", vec![NOTARY_SUBJECT], Want::Verified),
        (
            "strict",
            vec![OTHER_SUBJECT],
            Want::Refused(wrong_identity.clone()),
        ),
        (
            "permissive",
            vec![OTHER_SUBJECT],
            Want::Refused(wrong_identity),
        ),
        ("permissive", vec!["*"], Want::Verified),
        ("audit", vec![NOTARY_SUBJECT], Want::Verified),
        ("audit", vec![OTHER_SUBJECT], Want::Ignored),
        ("audit", vec!["*"], Want::Verified),
        // Flux empties a skip statement's stores and identities before notation sees them.
        ("skip", vec![OTHER_SUBJECT], Want::Ignored),
    ] {
        let keys = secrets(&policy(level, &identities), &key);
        let storage = tempfile::tempdir().unwrap();
        let run = reconcile(
            &manifest(level, &url, "v1", json!({})),
            storage.path(),
            keys.path(),
        );
        match want {
            Want::Verified => assert_verified(&run, &revision),
            Want::Ignored => assert_ignored(&run, &revision),
            Want::Refused(text) => assert_refused(&run, &text, storage.path()),
        }
    }
}

#[test]
fn broken_verification_secrets_fail_with_fluxs_texts() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let key = tools::notation_generate_test_cert(work.path(), "flux");
    let digest = push(&reg, "app", "v1", "kind: Signed\n");
    tools::notation_sign(&reg, &format!("app@{digest}"), &key, "jws", &[]);
    let url = format!("oci://{}/app", reg.host());
    let m = manifest("broken", &url, "v1", json!({}));
    for (entries, text) in [
        (
            vec![
                ("trustpolicy.json", "{}".to_string()),
                ("notation.crt", cert(&key)),
            ],
            "trust policy document has empty version, version must be specified".to_string(),
        ),
        (
            vec![
                ("trustpolicy.json", String::new()),
                ("notation.crt", cert(&key)),
            ],
            "error occurred while parsing trustpolicy.json: unexpected end of JSON input".into(),
        ),
        (
            vec![
                ("trustpolicy.json", "{\"version\": \"1.\n0\"}".into()),
                ("notation.crt", cert(&key)),
            ],
            "error occurred while parsing trustpolicy.json: invalid character '\\n' in string \
             literal"
                .into(),
        ),
        (
            vec![("notation.crt", cert(&key))],
            "'trustpolicy.json' not found in secret 'apps/keys'".into(),
        ),
        (
            vec![("trustpolicy.json", policy("strict", &["*"]))],
            "no certificates found in secret 'apps/keys'".into(),
        ),
    ] {
        let keys = keys_dir(&entries);
        is_refused(&m, keys.path(), &failure(&text));
    }

    // No Secret named at all.
    let keys = secrets(&policy("strict", &["*"]), &key);
    let storage = tempfile::tempdir().unwrap();
    let run = reconcile(
        &manifest(
            "nosecret",
            &url,
            "v1",
            json!({"verify": {"provider": "notation"}}),
        ),
        storage.path(),
        keys.path(),
    );
    assert_refused(
        &run,
        &failure(&format!(
            "verification secret cannot be empty: '{}/app@{digest}'",
            reg.host()
        )),
        storage.path(),
    );
}

#[test]
fn the_verifier_uses_the_object_s_credentials_and_tls() {
    for security in [Security::Basic, Security::Https] {
        let reg = Registry::start(Flavor::Distribution, security);
        let work = tempfile::tempdir().unwrap();
        let key = tools::notation_generate_test_cert(work.path(), "flux");
        let digest = push(&reg, "private/app", "v1", "kind: Private\n");
        tools::notation_sign(&reg, &format!("private/app@{digest}"), &key, "jws", &[]);
        let keys = secrets(&policy("strict", &[NOTARY_SUBJECT]), &key);
        let extra = if security == Security::Basic {
            write_registry_credentials(keys.path(), &reg);
            json!({"secretRef": {"name": "regcred"}})
        } else {
            write_secret(keys.path(), "tls", &[("ca.crt", reg.ca_pem().unwrap())]);
            json!({"insecure": false, "certSecretRef": {"name": "tls"}})
        };
        let url = format!("oci://{}/private/app", reg.host());
        let storage = tempfile::tempdir().unwrap();
        let run = reconcile(
            &manifest("private", &url, "v1", extra),
            storage.path(),
            keys.path(),
        );
        assert_verified(&run, &format!("v1@{digest}"));
        if let Some((_, password)) = reg.credentials() {
            assert!(!run.stderr.contains(&password) && !run.obj.to_string().contains(&password));
        }
    }
}

/// The example manifest and trust policy of `examples/`, as their comments say to use them.
#[test]
fn the_example_manifest_and_trust_policy_verify_a_test_certificate_signature() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let text = std::fs::read_to_string(examples.join("ocirepository-notation.yaml")).unwrap();
    let mut example: Value = serde_saphyr::from_str(&text).unwrap();
    let trust_policy = std::fs::read_to_string(examples.join("notation-trustpolicy.json")).unwrap();

    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let key = tools::notation_generate_test_cert(work.path(), "flux");
    let digest = push(&reg, "podinfo", "6.6.0", "kind: Example\n");
    tools::notation_sign(&reg, &format!("podinfo@{digest}"), &key, "jws", &[]);

    example["metadata"]["namespace"] = "apps".into();
    example["spec"]["url"] = format!("oci://{}/podinfo", reg.host()).into();
    example["spec"]["insecure"] = true.into();
    let dir = tempfile::tempdir().unwrap();
    let secret = example["spec"]["verify"]["secretRef"]["name"]
        .as_str()
        .unwrap();
    write_secret(
        dir.path(),
        secret,
        &[("trustpolicy.json", trust_policy), ("flux.crt", cert(&key))],
    );
    verifies(&example, dir.path(), &format!("6.6.0@{digest}"));
}

// ---------------------------------------------------------------------------------------------
// Bounds, against a fake registry

/// A fake registry holding manifest `app@<subject>` and `signatures` notation signature
/// manifests (through the referrers API), each with a junk JWS envelope whose descriptor
/// announces `announced` bytes (the real size when `None`).
async fn signature_server(signatures: usize, announced: Option<u64>) -> (Fake, Digest) {
    let subject = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec();
    let subject_digest = Digest::sha256_of(&subject);
    let envelope = br#"{"payload":"","protected":"","header":{},"signature":""}"#.to_vec();
    let envelope_digest = Digest::sha256_of(&envelope);
    let size = announced.unwrap_or(envelope.len() as u64);
    let manifests: Vec<Vec<u8>> = (0..signatures)
        .map(|i| {
            json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.cncf.notary.signature",
                           "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
                "layers": [{"mediaType": "application/jose+json",
                            "digest": envelope_digest.to_string(), "size": size}],
                "annotations": {"n": i.to_string()},
            })
            .to_string()
            .into_bytes()
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests.iter().map(|m| json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": Digest::sha256_of(m).to_string(),
            "size": m.len(),
            "artifactType": "application/vnd.cncf.notary.signature",
        })).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes();
    let subject_path = format!("/v2/app/manifests/{subject_digest}");
    let referrers_path = format!("/v2/app/referrers/{subject_digest}");
    let blob_path = format!("/v2/app/blobs/{envelope_digest}");
    let fake = Fake::start(move |req| {
        let oci = [("Content-Type", "application/vnd.oci.image.manifest.v1+json")];
        if req.path == "/v2/" {
            ok(&[], b"")
        } else if req.path == subject_path {
            ok(&oci, &subject)
        } else if req.path.starts_with(&referrers_path) {
            ok(
                &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
                &index,
            )
        } else if req.path == blob_path {
            ok(&[], &envelope)
        } else if let Some(m) = manifests
            .iter()
            .find(|m| req.path == format!("/v2/app/manifests/{}", Digest::sha256_of(m)))
        {
            ok(&oci, m)
        } else {
            status(404, &[], b"")
        }
    })
    .await;
    (fake, subject_digest)
}

async fn verify_at(fake: &Fake, digest: &Digest) -> Result<Verdict, String> {
    let work = tempfile::tempdir().unwrap();
    let key = tools::notation_generate_test_cert(work.path(), "flux");
    let data = [
        (
            "trustpolicy.json".to_string(),
            ByteString(policy("strict", &["*"]).into_bytes()),
        ),
        ("flux.crt".to_string(), ByteString(cert(&key).into_bytes())),
    ]
    .into_iter()
    .collect();
    let material = notation::material("apps", "keys", &data).unwrap();
    let client = Client::new(&TransportConfig::default()).unwrap();
    notation::verify(
        &client,
        &Credential::Anonymous,
        &fake.repo("app"),
        digest,
        &material,
        Timestamp::now(),
    )
    .await
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn at_most_three_envelopes_are_read_and_each_is_bounded() {
    // Five signatures that do not verify: three are read, then notation's limit text.
    let (fake, digest) = signature_server(5, None).await;
    assert_eq!(
        verify_at(&fake, &digest).await,
        Err(
            "signature evaluation stopped. The configured limit of 3 signatures to verify per \
             artifact exceeded"
                .into()
        )
    );
    assert_eq!(fake.count("GET", "/v2/app/blobs/"), 3);

    // Two: both failures, each named by its signature manifest.
    let (fake, digest) = signature_server(2, None).await;
    let e = verify_at(&fake, &digest).await.unwrap_err();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert_eq!(lines[0], "signature verification failed");
    for line in &lines[1..] {
        assert!(
            line.starts_with("failed to verify signature with digest sha256:")
                && line.ends_with(", certificate chain is not present"),
            "{line}"
        );
    }

    // An envelope announced above the bound is refused before it is requested.
    let (fake, digest) = signature_server(1, Some(5 << 20)).await;
    let e = verify_at(&fake, &digest).await.unwrap_err();
    assert!(
        e.starts_with("unable to retrieve digital signature with digest \"sha256:")
            && e.ends_with("from the Repository, error : signature blob too large: 5242880 bytes"),
        "{e}"
    );
    assert_eq!(fake.count("GET", "/v2/app/blobs/"), 0);
}

// ---------------------------------------------------------------------------------------------
// The controller

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_verifies_notation_signatures_and_drops_the_condition_without_verify() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let key = tools::notation_generate_test_cert(work.path(), "flux");
    let digest = push(&reg, "app", "stable", "kind: Signed\n");
    tools::notation_sign(
        &reg,
        &format!("app@{digest}"),
        &key,
        "jws",
        &["--force-referrers-tag=false"],
    );
    let (api, _ctl) = controller_with_verified_object(
        "verify-notation",
        (
            "notation-config",
            json!({
                "trustpolicy.json": policy("strict", &[NOTARY_SUBJECT]),
                "notation.crt": cert(&key),
            }),
        ),
        &format!("oci://{}/app", reg.host()),
        json!({"provider": "notation", "secretRef": {"name": "notation-config"}}),
    )
    .await;

    let verified = format!("stable@{digest}");
    wait_verified(&api, &verified).await;

    // The tag moves to unsigned content: refused, the verified artifact stays.
    let moved = push(&reg, "app", "stable", "kind: Moved\n");
    let obj = request_until_refused(&api, "moved").await;
    assert_eq!(
        cond(&obj, "SourceVerified").map(|c| c.2),
        Some(failure(&format!(
            "no signature is associated with \"{}/app@{moved}\", make sure the artifact was \
             signed successfully",
            reg.host()
        )))
    );
    assert_eq!(revision(&obj).as_deref(), Some(verified.as_str()));

    // Without verify the condition goes, and the new revision is stored.
    let obj = remove_verify(&api).await;
    assert_eq!(revision(&obj), Some(format!("stable@{moved}")));
}
