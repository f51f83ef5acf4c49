//! Cosign verification with public keys, end to end: artifacts pushed with the real flux (or
//! helm) CLI into the test-bed registries, signed with the real cosign CLI (offline: no Fulcio,
//! no transparency log), then reconciled by the binary in standalone mode (the verification
//! Secret from `--secrets-dir`) and by the controller against the real API server.
//!
//! Keys come from `cosign generate-key-pair` (ECDSA P-256, cosign's default) and from
//! `openssl genpkey` imported with `cosign import-key-pair` (RSA, P-384, Ed25519). A plain
//! Ed25519 signature (what Flux accepts; cosign v2.6.5 signs Ed25519 keys pre-hashed) is made
//! over the payload `cosign generate` prints and stored with `cosign attach signature`.

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use common::controller::Controller;
use common::controlplane::shared_with_namespace;
use common::object::{OciRepo, condition as cond, wait_for};
use common::registry::{Flavor, Registry, Security};
use common::tools::{self, CosignKeys};
use common::verification::{
    assert_refused, assert_retried, assert_tag_and_digest_verify, assert_verified,
    controller_with_verified_object, keys_dir, push, ready_message, reconcile, remove_verify,
    request_until_refused, verified_manifest, verifies, wait_verified, write_registry_credentials,
    write_secret,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use ocisource::api::v1::OciRepository;
use serde_json::{Value, json};

/// An OCIRepository in namespace `apps` following `tag` of `url`, verified with the cosign
/// keys of Secret `keys`, plus `extra` spec fields.
fn manifest(name: &str, url: &str, tag: &str, extra: Value) -> Value {
    verified_manifest(name, url, tag, "cosign", extra)
}

fn public_key(keys: &CosignKeys) -> String {
    std::fs::read_to_string(&keys.public_key).unwrap()
}

/// `first`'s signature tag (`tag_of(digest)`) copied to where `moved`'s would be: what it holds
/// names `first`, so `moved` is refused, while `first` itself still verifies.
fn replay_is_refused(
    reg: &Registry,
    secrets: &tempfile::TempDir,
    storage: &tempfile::TempDir,
    first: &str,
    moved: &str,
    tag_of: impl Fn(&str) -> String,
) {
    let url = format!("oci://{}/app", reg.host());
    tools::crane_tag(reg, &format!("app:{}", tag_of(first)), &tag_of(moved));
    assert!(tools::crane_ls(reg, "app").contains(&tag_of(moved)));
    let run = reconcile(
        &manifest("replayed", &url, "v1", json!({})),
        storage.path(),
        secrets.path(),
    );
    assert_refused(&run, &no_match(reg, "app", moved), storage.path());
    let run = reconcile(
        &manifest("first", &url, "v1", json!({"ref": {"digest": first}})),
        storage.path(),
        secrets.path(),
    );
    assert_verified(&run, first);
}

fn no_match(reg: &Registry, repo: &str, digest: &str) -> String {
    format!(
        "failed to verify the signature using provider 'cosign': no matching signatures were \
         found for '{}/{repo}@{digest}'",
        reg.host()
    )
}

/// `openssl <args>` in `dir`, failing loudly.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(common::bin("openssl"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl {args:?} did not start: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private key made by `openssl genpkey <args>`, imported as a cosign key pair.
fn imported_keys(dir: &Path, name: &str, genpkey: &[&str]) -> CosignKeys {
    std::fs::create_dir_all(dir).unwrap();
    let pem = format!("{name}.pem");
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey);
    args.extend_from_slice(&["-out", &pem]);
    openssl(dir, &args);
    tools::cosign_import_key_pair(dir, &dir.join(&pem), name)
}

#[test]
fn a_key_signed_artifact_is_verified_then_stored() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let digest = push(&reg, "app", "v1", "kind: Signed\n");
    let work = tempfile::tempdir().unwrap();
    let keys = tools::cosign_generate_key_pair(&work.path().join("cosign"));
    tools::cosign_sign_key(&reg, &format!("app@{digest}"), &keys);
    let secrets = keys_dir(&[("cosign.pub", public_key(&keys))]);
    let storage = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/app", reg.host());

    assert_tag_and_digest_verify(
        &manifest("signed", &url, "v1", json!({})),
        &digest,
        storage.path(),
        secrets.path(),
    );
}

#[test]
fn unsigned_artifacts_and_signatures_of_other_keys_are_refused_and_nothing_is_pulled() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let unsigned = push(&reg, "app", "unsigned", "kind: Unsigned\n");
    let signed = push(&reg, "app", "signed", "kind: Signed\n");
    let work = tempfile::tempdir().unwrap();
    let signer = tools::cosign_generate_key_pair(&work.path().join("signer"));
    let other = tools::cosign_generate_key_pair(&work.path().join("other"));
    tools::cosign_sign_key(&reg, &format!("app@{signed}"), &signer);
    let url = format!("oci://{}/app", reg.host());

    let secrets = keys_dir(&[("cosign.pub", public_key(&signer))]);
    let storage = tempfile::tempdir().unwrap();
    let run = reconcile(
        &manifest("unsigned", &url, "unsigned", json!({})),
        storage.path(),
        secrets.path(),
    );
    assert_refused(&run, &no_match(&reg, "app", &unsigned), storage.path());

    let secrets = keys_dir(&[("cosign.pub", public_key(&other))]);
    let run = reconcile(
        &manifest("other", &url, "signed", json!({})),
        storage.path(),
        secrets.path(),
    );
    assert_refused(&run, &no_match(&reg, "app", &signed), storage.path());
    assert_retried(&run);
}

#[test]
fn a_signature_never_vouches_for_another_digest() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let first = push(&reg, "app", "v1", "kind: First\n");
    let work = tempfile::tempdir().unwrap();
    let keys = tools::cosign_generate_key_pair(&work.path().join("cosign"));
    tools::cosign_sign_key(&reg, &format!("app@{first}"), &keys);
    let secrets = keys_dir(&[("cosign.pub", public_key(&keys))]);
    let url = format!("oci://{}/app", reg.host());

    // The tag moves after signing: the new digest has no signature.
    let moved = push(&reg, "app", "v1", "kind: Moved\n");
    assert_ne!(first, moved);
    let storage = tempfile::tempdir().unwrap();
    let run = reconcile(
        &manifest("moved", &url, "v1", json!({})),
        storage.path(),
        secrets.path(),
    );
    assert_refused(&run, &no_match(&reg, "app", &moved), storage.path());

    // The first digest's valid signature placed where the new digest's would be: its payload
    // names the first digest, so it verifies nothing for the new one.
    replay_is_refused(&reg, &secrets, &storage, &first, &moved, |d| {
        format!("{}.sig", d.replacen(':', "-", 1))
    });
}

#[test]
fn every_pub_entry_is_a_key_and_one_that_does_not_parse_fails_them_all() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let digest = push(&reg, "app", "v1", "kind: Signed\n");
    let work = tempfile::tempdir().unwrap();
    let signer = tools::cosign_generate_key_pair(&work.path().join("signer"));
    let other = tools::cosign_generate_key_pair(&work.path().join("other"));
    tools::cosign_sign_key(&reg, &format!("app@{digest}"), &signer);
    let url = format!("oci://{}/app", reg.host());
    let m = manifest("keys", &url, "v1", json!({}));

    // Several keys, one of them the signer's, beside entries that are not keys.
    let storage = tempfile::tempdir().unwrap();
    let secrets = keys_dir(&[
        ("a-other.pub", public_key(&other)),
        ("b-signer.pub", public_key(&signer)),
        ("cosign.key", "not a public key".into()),
        ("README", "keys of the release team".into()),
    ]);
    let run = reconcile(&m, storage.path(), secrets.path());
    assert_verified(&run, &format!("v1@{digest}"));

    // An unparsable key fails the whole verification, even beside the signer's key.
    let storage = tempfile::tempdir().unwrap();
    let secrets = keys_dir(&[
        ("b-signer.pub", public_key(&signer)),
        ("c-broken.pub", "-----BEGIN PUBLIC KEY-----\nAAAA\n".into()),
    ]);
    let run = reconcile(&m, storage.path(), secrets.path());
    assert_refused(
        &run,
        "failed to verify the signature using provider 'cosign': PEM decoding failed",
        storage.path(),
    );
    let secrets = keys_dir(&[("cert.pub", tools_cert_pem())]);
    let run = reconcile(&m, storage.path(), secrets.path());
    assert_refused(
        &run,
        "failed to verify the signature using provider 'cosign': unknown Public key PEM file \
         type: CERTIFICATE. Are you passing the correct public key?",
        storage.path(),
    );

    // No `.pub` entry at all: no matching signatures.
    let secrets = keys_dir(&[("cosign.key", "x".into())]);
    let run = reconcile(&m, storage.path(), secrets.path());
    assert_refused(&run, &no_match(&reg, "app", &digest), storage.path());

    // A missing Secret: the store's text.
    let empty = tempfile::tempdir().unwrap();
    let run = reconcile(&m, storage.path(), empty.path());
    assert_refused(
        &run,
        "failed to verify the signature using provider 'cosign': secrets \"keys\" not found",
        storage.path(),
    );
}

/// A PEM certificate (not a public key).
fn tools_cert_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["example.com".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem()
}

/// Cosign v2.6.5 signs P-384 and P-521 keys over SHA-384 and SHA-512, which Flux (SHA-256
/// for every key) refuses and ocisource accepts (README, differences).
#[test]
fn rsa_p384_and_p521_keys_verify_cosign_signatures() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/app", reg.host());
    for (name, genpkey) in [
        (
            "rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"][..],
        ),
        (
            "p384",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
        ),
        (
            "p521",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"][..],
        ),
    ] {
        let digest = push(&reg, "app", name, &format!("kind: {name}\n"));
        let keys = imported_keys(&work.path().join(name), name, genpkey);
        tools::cosign_sign_key(&reg, &format!("app@{digest}"), &keys);
        let secrets = keys_dir(&[(&format!("{name}.pub"), public_key(&keys))]);
        verifies(
            &manifest(name, &url, name, json!({})),
            secrets.path(),
            &format!("{name}@{digest}"),
        );
    }
}

#[test]
fn ed25519_keys_verify_plain_ed25519_signatures_only() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/app", reg.host());
    let keys = imported_keys(work.path(), "ed", &["-algorithm", "ed25519"]);
    let secrets = keys_dir(&[("ed.pub", public_key(&keys))]);

    // `cosign sign` with an Ed25519 key signs pre-hashed (Ed25519ph): cosign's own `verify
    // --key` and Flux refuse it, and so do we.
    let prehashed = push(&reg, "app", "prehashed", "kind: Prehashed\n");
    tools::cosign_sign_key(&reg, &format!("app@{prehashed}"), &keys);
    let storage = tempfile::tempdir().unwrap();
    let run = reconcile(
        &manifest("prehashed", &url, "prehashed", json!({})),
        storage.path(),
        secrets.path(),
    );
    assert_refused(&run, &no_match(&reg, "app", &prehashed), storage.path());

    // A plain Ed25519 signature of cosign's payload, stored by `cosign attach signature`.
    let plain = push(&reg, "app", "plain", "kind: Plain\n");
    let reference = format!("app@{plain}");
    let payload = work.path().join("payload.json");
    std::fs::write(&payload, tools::cosign_generate_payload(&reg, &reference)).unwrap();
    let raw = work.path().join("payload.sig");
    openssl(
        work.path(),
        &[
            "pkeyutl",
            "-sign",
            "-rawin",
            "-inkey",
            "ed.pem",
            "-in",
            "payload.json",
            "-out",
            "payload.sig",
        ],
    );
    let signature = work.path().join("payload.sig.b64");
    std::fs::write(
        &signature,
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&raw).unwrap()),
    )
    .unwrap();
    tools::cosign_attach_signature(&reg, &reference, &payload, &signature);
    let run = reconcile(
        &manifest("plain", &url, "plain", json!({})),
        storage.path(),
        secrets.path(),
    );
    assert_verified(&run, &format!("plain@{plain}"));
}

// ---------------------------------------------------------------------------------------------
// Sigstore bundles (`cosign sign --new-bundle-format`), found through the OCI referrers

/// The start of the failure of keyless without a trusted root Secret: the TUF root, from the
/// test bed's dead mirror.
fn keyless_message() -> String {
    format!(
        "failed to verify the signature using provider 'cosign keyless': failed to get the \
         Sigstore trusted root through TUF from {}: failed to fetch ",
        common::DEAD_TUF_MIRROR
    )
}

#[test]
fn a_key_signed_bundle_verifies_through_the_referrers_api_and_the_tag_fallback() {
    for flavor in [Flavor::Referrers, Flavor::Distribution] {
        let reg = Registry::start(flavor, Security::Http);
        let digest = push(&reg, "app", "v1", "kind: Bundled\n");
        let work = tempfile::tempdir().unwrap();
        let signer = tools::cosign_generate_key_pair(&work.path().join("signer"));
        let other = tools::cosign_generate_key_pair(&work.path().join("other"));
        tools::cosign_sign_bundle(&reg, &format!("app@{digest}"), &signer);
        // Only a bundle: no `.sig` tag; on the registry without the referrers API, cosign
        // kept the bundle in the fallback index tag.
        let tags = tools::crane_ls(&reg, "app");
        assert!(
            !tags.iter().any(|t| t.ends_with(".sig")),
            "{flavor:?}: {tags:?}"
        );
        let fallback = digest.replacen(':', "-", 1);
        assert_eq!(
            tags.contains(&fallback),
            flavor == Flavor::Distribution,
            "{flavor:?}: {tags:?}"
        );
        let url = format!("oci://{}/app", reg.host());

        let storage = tempfile::tempdir().unwrap();
        let secrets = keys_dir(&[("cosign.pub", public_key(&signer))]);
        let run = reconcile(
            &manifest("bundled", &url, "v1", json!({})),
            storage.path(),
            secrets.path(),
        );
        assert_verified(&run, &format!("v1@{digest}"));

        // The bundle of another key verifies nothing.
        let storage = tempfile::tempdir().unwrap();
        let secrets = keys_dir(&[("cosign.pub", public_key(&other))]);
        let run = reconcile(
            &manifest("other", &url, "v1", json!({})),
            storage.path(),
            secrets.path(),
        );
        assert_refused(&run, &no_match(&reg, "app", &digest), storage.path());

        // Keyless without a trusted root Secret takes the TUF root, which cannot be had here:
        // it fails closed, bundle or not.
        let run = reconcile(
            &manifest(
                "keyless",
                &url,
                "v1",
                json!({"verify": {"provider": "cosign"}}),
            ),
            storage.path(),
            secrets.path(),
        );
        let message = ready_message(&run);
        assert!(message.starts_with(&keyless_message()), "{message}");
        assert_refused(&run, &message, storage.path());
    }
}

#[test]
fn a_bundle_never_vouches_for_another_digest() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let first = push(&reg, "app", "v1", "kind: First\n");
    let work = tempfile::tempdir().unwrap();
    let keys = tools::cosign_generate_key_pair(&work.path().join("cosign"));
    tools::cosign_sign_bundle(&reg, &format!("app@{first}"), &keys);
    let secrets = keys_dir(&[("cosign.pub", public_key(&keys))]);

    // The tag moves; the first digest's fallback index (its valid bundle) is copied to where
    // the new digest's would be: its statement names the first digest, so it is refused.
    let moved = push(&reg, "app", "v1", "kind: Moved\n");
    let storage = tempfile::tempdir().unwrap();
    replay_is_refused(&reg, &secrets, &storage, &first, &moved, |d| {
        d.replacen(':', "-", 1)
    });
}

/// Bundles are looked at first, then the `.sig` layout: an artifact signed both ways verifies,
/// and so does one whose bundle is another key's while its `.sig` signature is the trusted
/// key's.
#[test]
fn an_artifact_with_a_bundle_and_a_sig_signature_verifies() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let signer = tools::cosign_generate_key_pair(&work.path().join("signer"));
    let other = tools::cosign_generate_key_pair(&work.path().join("other"));
    let secrets = keys_dir(&[("cosign.pub", public_key(&signer))]);
    let url = format!("oci://{}/app", reg.host());
    for (tag, bundle_key) in [("both", &signer), ("mixed", &other)] {
        let digest = push(&reg, "app", tag, &format!("kind: {tag}\n"));
        tools::cosign_sign_key(&reg, &format!("app@{digest}"), &signer);
        tools::cosign_sign_bundle(&reg, &format!("app@{digest}"), bundle_key);
        assert!(
            tools::crane_ls(&reg, "app")
                .iter()
                .any(|t| t.ends_with(".sig"))
        );
        verifies(
            &manifest(tag, &url, tag, json!({})),
            secrets.path(),
            &format!("{tag}@{digest}"),
        );
    }
}

#[test]
fn the_verifier_uses_the_object_s_credentials() {
    for security in [Security::Basic, Security::Bearer] {
        the_verifier_uses_the_object_s_credentials_on(security);
    }
}

fn the_verifier_uses_the_object_s_credentials_on(security: Security) {
    let reg = Registry::start(Flavor::Distribution, security);
    let digest = push(&reg, "private/app", "v1", "kind: Private\n");
    let work = tempfile::tempdir().unwrap();
    let keys = tools::cosign_generate_key_pair(&work.path().join("cosign"));
    tools::cosign_sign_key(&reg, &format!("private/app@{digest}"), &keys);
    let secrets = keys_dir(&[("cosign.pub", public_key(&keys))]);
    write_registry_credentials(secrets.path(), &reg);
    let storage = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/private/app", reg.host());
    let run = reconcile(
        &manifest(
            "private",
            &url,
            "v1",
            json!({"secretRef": {"name": "regcred"}}),
        ),
        storage.path(),
        secrets.path(),
    );
    assert_verified(&run, &format!("v1@{digest}"));
    let (_, password) = reg.credentials().unwrap();
    assert!(!run.stderr.contains(&password) && !run.obj.to_string().contains(&password));
}

#[test]
fn the_verifier_uses_the_object_s_tls_and_client_certificate() {
    let reg = Registry::start(Flavor::Distribution, Security::Mtls);
    let work = tempfile::tempdir().unwrap();
    // flux cannot present a client certificate; helm can.
    let chart_dir = tools::write_minimal_chart(work.path(), "secure", "1.2.3");
    let chart = tools::helm_package_and_push(&reg, &chart_dir, "charts");
    let keys = tools::cosign_generate_key_pair(&work.path().join("cosign"));
    tools::cosign_sign_key(
        &reg,
        &format!("{}@{}", chart.repository, chart.digest),
        &keys,
    );
    let secrets = keys_dir(&[("cosign.pub", public_key(&keys))]);
    write_secret(
        secrets.path(),
        "tls",
        &[
            ("ca.crt", reg.ca_pem().unwrap()),
            ("tls.crt", reg.client_cert_pem().unwrap()),
            ("tls.key", reg.client_key_pem().unwrap()),
        ],
    );
    let storage = tempfile::tempdir().unwrap();
    let url = format!("oci://{}/{}", reg.host(), chart.repository);
    let run = reconcile(
        &manifest(
            "chart",
            &url,
            &chart.version,
            json!({
                "insecure": false,
                "certSecretRef": {"name": "tls"},
                "layerSelector": {
                    "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                    "operation": "copy",
                },
            }),
        ),
        storage.path(),
        secrets.path(),
    );
    assert_verified(&run, &format!("{}@{}", chart.version, chart.digest));
}

/// What a verification costs on a registry without the referrers API and without bundles: the
/// referrers API (404) and the fallback tag (404), then one `GET` of the signature manifest and
/// one payload blob per signature looked at, stopping at the first that verifies; every
/// signature layer is tried.
#[tokio::test(flavor = "multi_thread")]
async fn a_verification_reads_the_signature_manifest_once_and_payloads_until_one_verifies() {
    use ocisource::registry::{Client, Credential, Digest, Repository, TransportConfig};
    use ocisource::verify::{PublicKey, cosign};

    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let digest = push(&reg, "app", "v1", "kind: Twice\n");
    let work = tempfile::tempdir().unwrap();
    let first = tools::cosign_generate_key_pair(&work.path().join("first"));
    let second = tools::cosign_generate_key_pair(&work.path().join("second"));
    tools::cosign_sign_key(&reg, &format!("app@{digest}"), &first);
    tools::cosign_sign_key(&reg, &format!("app@{digest}"), &second);
    let repo = Repository::parse(&format!("{}/app", reg.host())).unwrap();
    let digest: Digest = digest.parse().unwrap();
    let key = |keys: &CosignKeys, name: &str| {
        let pem = std::fs::read(&keys.public_key).unwrap();
        (name.to_string(), PublicKey::from_pem(&pem).unwrap())
    };
    for (keys, payloads) in [
        (vec![key(&first, "first.pub")], 1),
        (vec![key(&second, "second.pub")], 2),
    ] {
        let client = Client::new(&TransportConfig {
            insecure: true,
            ..TransportConfig::default()
        })
        .unwrap();
        let verified = cosign::verify(&client, &Credential::Anonymous, &repo, &digest, &keys)
            .await
            .unwrap();
        assert_eq!(verified.key, keys[0].0);
        let counts = client.request_counts();
        assert_eq!(
            (counts.manifest_get, counts.blob, counts.manifest_head),
            (3, payloads, 0),
            "{counts:?}"
        );
    }
}

/// What a bundle verification costs: the referrers (one `GET` of the API, or its 404 and the
/// fallback tag), the referrer manifest and the bundle blob; the `.sig` layout is not read.
#[tokio::test(flavor = "multi_thread")]
async fn a_bundle_verification_reads_the_referrers_the_referrer_manifest_and_the_bundle() {
    use ocisource::registry::{Client, Credential, Digest, Repository, TransportConfig};
    use ocisource::verify::{PublicKey, cosign};

    for (flavor, manifest_gets) in [(Flavor::Referrers, 2), (Flavor::Distribution, 3)] {
        let reg = Registry::start(flavor, Security::Http);
        let digest = push(&reg, "app", "v1", "kind: Bundled\n");
        let work = tempfile::tempdir().unwrap();
        let keys = tools::cosign_generate_key_pair(&work.path().join("cosign"));
        tools::cosign_sign_bundle(&reg, &format!("app@{digest}"), &keys);
        let repo = Repository::parse(&format!("{}/app", reg.host())).unwrap();
        let digest: Digest = digest.parse().unwrap();
        let pem = std::fs::read(&keys.public_key).unwrap();
        let keys = vec![("cosign.pub".to_string(), PublicKey::from_pem(&pem).unwrap())];
        let client = Client::new(&TransportConfig {
            insecure: true,
            ..TransportConfig::default()
        })
        .unwrap();
        let verified = cosign::verify(&client, &Credential::Anonymous, &repo, &digest, &keys)
            .await
            .unwrap();
        assert_eq!(verified.layout, cosign::Layout::Bundle, "{flavor:?}");
        let counts = client.request_counts();
        assert_eq!(
            (counts.manifest_get, counts.blob, counts.manifest_head),
            (manifest_gets, 1, 0),
            "{flavor:?}: {counts:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The controller

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_verifies_before_it_pulls_and_keeps_the_verified_artifact() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let first = push(&reg, "app", "stable", "kind: First\n");
    let work = tempfile::tempdir().unwrap();
    let keys = tools::cosign_generate_key_pair(&work.path().join("cosign"));
    tools::cosign_sign_key(&reg, &format!("app@{first}"), &keys);
    let (api, _ctl) = controller_with_verified_object(
        "verify-cosign",
        ("cosign-keys", json!({"cosign.pub": public_key(&keys)})),
        &format!("oci://{}/app", reg.host()),
        json!({"provider": "cosign", "secretRef": {"name": "cosign-keys"}}),
    )
    .await;

    let verified_first = format!("stable@{first}");
    let obj = wait_verified(&api, &verified_first).await;
    let stored = obj.status.as_ref().unwrap().artifact.clone().unwrap();

    // The tag moves to unsigned content: refused, the verified artifact stays.
    let moved = push(&reg, "app", "stable", "kind: Moved\n");
    let failure = no_match(&reg, "app", &moved);
    let obj = request_until_refused(&api, "moved").await;
    assert_eq!(
        cond(&obj, "Ready"),
        Some(("False".into(), "VerificationError".into(), failure.clone()))
    );
    assert_eq!(
        cond(&obj, "SourceVerified"),
        Some(("False".into(), "VerificationError".into(), failure))
    );
    assert_eq!(
        obj.status.as_ref().unwrap().artifact.as_ref(),
        Some(&stored),
        "the verified artifact is kept"
    );
    assert_eq!(
        cond(&obj, "ArtifactOutdated").map(|c| c.2),
        Some(format!(
            "new revision 'stable@{moved}' for '{}/app:stable'",
            reg.host()
        ))
    );

    // Once signed, the retries (with backoff, no request needed) pick it up.
    tools::cosign_sign_key(&reg, &format!("app@{moved}"), &keys);
    wait_verified(&api, &format!("stable@{moved}")).await;

    // Without verify the condition goes.
    remove_verify(&api).await;
}

/// The value of `series` in a `/metrics` text (0 when absent).
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Objects that follow one signed artifact with the same keys share one verification, even
/// when their Secrets have other names (the material counts, not the name); other keys are
/// another verification, and each object still records its own SourceVerified.
#[tokio::test(flavor = "multi_thread")]
async fn objects_on_one_signed_artifact_with_the_same_keys_verify_it_once() {
    let ns = "verify-shared";
    let (cp, client) = shared_with_namespace(ns).await;
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let digest = push(&reg, "app", "stable", "kind: Shared\n");
    let work = tempfile::tempdir().unwrap();
    let keys = tools::cosign_generate_key_pair(&work.path().join("cosign"));
    let other = tools::cosign_generate_key_pair(&work.path().join("other"));
    tools::cosign_sign_key(&reg, &format!("app@{digest}"), &keys);
    tools::cosign_sign_key(&reg, &format!("app@{digest}"), &other);
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    for (name, key) in [("keys-a", &keys), ("keys-b", &keys), ("keys-other", &other)] {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "stringData": {"cosign.pub": public_key(key)},
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
    let ctl = Controller::start(cp, Path::new(env!("CARGO_BIN_EXE_ocisource")), ns, &[]);
    let api: Api<OciRepository> = Api::namespaced(client.clone(), ns);
    let names: Vec<String> = (0..12).map(|i| format!("app-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let secret = match i {
            0 => "keys-other",
            i if i % 2 == 0 => "keys-a",
            _ => "keys-b",
        };
        let obj = OciRepo::new(name)
            .url(format!("oci://{}/app", reg.host()))
            .interval("10m")
            .insecure()
            .tag("stable")
            .verify("cosign", Some(secret))
            .object();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }
    let verified = format!("verified signature of revision stable@{digest}");
    for name in &names {
        let obj = wait_for(&api, name, "verified and Ready", |o| {
            cond(o, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;
        assert_eq!(
            cond(&obj, "SourceVerified"),
            Some(("True".into(), "Succeeded".into(), verified.clone())),
            "{name}"
        );
    }
    let metrics = ctl.metrics().await;
    let series = "ocisource_signature_verifications_total";
    assert_eq!(
        (
            counter(&metrics, &format!("{series}{{kind=\"run\"}}")),
            counter(&metrics, &format!("{series}{{kind=\"shared\"}}"))
        ),
        (2, 10),
        "one verification per key material:\n{metrics}"
    );
}
