//! Keyless cosign verification, end to end, against a private Sigstore: the test bed's
//! `sigstore-testca` (testbed/go/sigstore-testca, on sigstore-go's and cosign v2.6.5's own
//! packages) keeps a Fulcio-like CA, a Rekor key and a CT log key, writes their
//! `trusted_root.json`, and signs pushed artifacts keyless (certificate with an embedded SCT,
//! Rekor entry with SET and inclusion proof) as cosign attaches them: Sigstore bundles as OCI
//! referrers (the referrers API, or the fallback tag on a registry without it) and the cosign
//! v2 `.sig` image. The binary reconciles them in standalone mode with the trusted root from a
//! `trustedRootSecretRef` Secret, and the controller does once against the real API server.

mod common;

use common::object::{condition as cond, wait_for};
use common::registry::{Flavor, Registry, Security};
use common::tools::{self, TestCa};
use common::verification::{
    controller_with_verified_object, is_refused, push, verified_manifest, verifies, wait_verified,
    write_secret,
};
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

const EMAIL: &str = "dev@example.com";
const ISSUER: &str = "https://issuer.example";
const WORKFLOW: &str = "https://github.com/org/repo/.github/workflows/release.yaml@refs/heads/main";
const GITHUB: &str = "https://token.actions.githubusercontent.com";
const PREFIX: &str = "failed to verify the signature using provider 'cosign keyless'";

/// An OCIRepository in namespace `apps` following `tag` of `url`, verified keyless with the
/// trusted root of Secret `sigstore-root` and `identities` (`matchOIDCIdentity`, omitted when
/// `None`).
fn manifest(name: &str, url: &str, tag: &str, identities: Option<Value>) -> Value {
    let mut verify =
        json!({"provider": "cosign", "trustedRootSecretRef": {"name": "sigstore-root"}});
    if let Some(ids) = identities {
        verify["matchOIDCIdentity"] = ids;
    }
    verified_manifest(name, url, tag, "cosign", json!({"verify": verify}))
}

/// A secrets directory with Secret `sigstore-root` holding `ca`'s trusted root.
fn root_dir(ca: &TestCa) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_secret(
        dir.path(),
        "sigstore-root",
        &[("trusted_root.json", ca.trusted_root())],
    );
    dir
}

fn no_match(reg: &Registry, digest: &str) -> String {
    format!(
        "{PREFIX}: no matching signatures were found for '{}/app@{digest}'",
        reg.host()
    )
}

fn exact(issuer: &str, subject: &str) -> Value {
    json!({"issuer": format!("^{}$", regex::escape(issuer)), "subject": format!("^{}$", regex::escape(subject))})
}

#[test]
fn a_keyless_bundle_verifies_for_matching_identities_through_referrers_and_the_tag_fallback() {
    let work = tempfile::tempdir().unwrap();
    let ca = TestCa::init(&work.path().join("ca"));
    let secrets = root_dir(&ca);
    for flavor in [Flavor::Referrers, Flavor::Distribution] {
        let reg = Registry::start(flavor, Security::Http);
        let digest = push(&reg, "app", "v1", "kind: Keyless\n");
        ca.sign(&reg, &format!("app@{digest}"), EMAIL, ISSUER, "bundle", &[]);
        let tags = tools::crane_ls(&reg, "app");
        assert!(
            !tags.iter().any(|t| t.ends_with(".sig")),
            "{flavor:?}: {tags:?}"
        );
        assert_eq!(
            tags.contains(&digest.replacen(':', "-", 1)),
            flavor == Flavor::Distribution,
            "{flavor:?}: {tags:?}"
        );
        let url = format!("oci://{}/app", reg.host());
        let rev = format!("v1@{digest}");
        let s = secrets.path();

        // The signer's identity, exactly; unanchored expressions; no identity at all.
        verifies(
            &manifest("exact", &url, "v1", Some(json!([exact(ISSUER, EMAIL)]))),
            s,
            &rev,
        );
        let loose = json!([{"issuer": "issuer\\.example", "subject": "@example\\.com"}]);
        verifies(&manifest("loose", &url, "v1", Some(loose)), s, &rev);
        verifies(&manifest("any", &url, "v1", None), s, &rev);
        verifies(&manifest("empty", &url, "v1", Some(json!([]))), s, &rev);

        // Several entries, one wrong and one right: any entry may match (Flux 2.8+ refuses
        // several identities on bundles; README, differences).
        let ored = json!([exact(ISSUER, "ops@example.com"), exact(ISSUER, EMAIL)]);
        verifies(&manifest("ored", &url, "v1", Some(ored)), s, &rev);

        // Only wrong entries, or the issuer of one with the subject of another: refused.
        for (name, ids) in [
            ("subject", json!([exact(ISSUER, "ops@example.com")])),
            ("issuer", json!([exact("https://other.example", EMAIL)])),
            (
                "crossed",
                json!([
                    exact(ISSUER, "ops@example.com"),
                    exact("https://other.example", EMAIL)
                ]),
            ),
        ] {
            is_refused(
                &manifest(name, &url, "v1", Some(ids)),
                s,
                &no_match(&reg, &digest),
            );
        }
    }
}

#[test]
fn a_keyless_sig_signature_verifies_for_its_workflow_identity() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let digest = push(&reg, "app", "v1", "kind: Workflow\n");
    let work = tempfile::tempdir().unwrap();
    let ca = TestCa::init(&work.path().join("ca"));
    ca.sign(&reg, &format!("app@{digest}"), WORKFLOW, GITHUB, "sig", &[]);
    let tags = tools::crane_ls(&reg, "app");
    assert!(
        tags.contains(&format!("{}.sig", digest.replacen(':', "-", 1))),
        "{tags:?}"
    );
    let secrets = root_dir(&ca);
    let url = format!("oci://{}/app", reg.host());
    let workflows = json!([{
        "issuer": "^https://token\\.actions\\.githubusercontent\\.com$",
        "subject": "^https://github\\.com/org/repo/\\.github/workflows/.+@refs/heads/main$",
    }]);
    verifies(
        &manifest("workflow", &url, "v1", Some(workflows)),
        secrets.path(),
        &format!("v1@{digest}"),
    );
    let other_repo =
        json!([{"issuer": "githubusercontent", "subject": "^https://github\\.com/org/other/"}]);
    is_refused(
        &manifest("other", &url, "v1", Some(other_repo)),
        secrets.path(),
        &no_match(&reg, &digest),
    );
}

#[test]
fn unsigned_artifacts_and_signatures_of_another_sigstore_are_refused() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    push(&reg, "app", "unsigned", "kind: Unsigned\n");
    let foreign = push(&reg, "app", "foreign", "kind: Foreign\n");
    let work = tempfile::tempdir().unwrap();
    let ours = TestCa::init(&work.path().join("ours"));
    let theirs = TestCa::init(&work.path().join("theirs"));
    theirs.sign(
        &reg,
        &format!("app@{foreign}"),
        EMAIL,
        ISSUER,
        "bundle",
        &[],
    );
    theirs.sign(&reg, &format!("app@{foreign}"), EMAIL, ISSUER, "sig", &[]);
    let secrets = root_dir(&ours);
    let url = format!("oci://{}/app", reg.host());

    is_refused(
        &manifest("unsigned", &url, "unsigned", None),
        secrets.path(),
        &format!("{PREFIX}: no signatures found"),
    );
    is_refused(
        &manifest("foreign", &url, "foreign", None),
        secrets.path(),
        &no_match(&reg, &foreign),
    );
    // Their own root verifies them.
    verifies(
        &manifest("theirs", &url, "foreign", None),
        root_dir(&theirs).path(),
        &format!("foreign@{foreign}"),
    );
}

#[test]
fn a_bundle_needs_both_its_signed_entry_timestamp_and_its_inclusion_proof() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let work = tempfile::tempdir().unwrap();
    let ca = TestCa::init(&work.path().join("ca"));
    let secrets = root_dir(&ca);
    let url = format!("oci://{}/app", reg.host());
    // As sigstore-go: a v0.3 bundle without an inclusion proof is refused, and without a SET
    // its integrated time is not trusted (there are no RFC 3161 timestamps here).
    for tlog in ["set", "proof"] {
        let digest = push(&reg, "app", tlog, &format!("kind: {tlog}\n"));
        ca.sign(
            &reg,
            &format!("app@{digest}"),
            EMAIL,
            ISSUER,
            "bundle",
            &[&format!("--tlog={tlog}")],
        );
        is_refused(
            &manifest(tlog, &url, tlog, None),
            secrets.path(),
            &no_match(&reg, &digest),
        );
    }
}

#[test]
fn a_missing_trusted_root_secret_or_entry_fails_with_flux_s_texts() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    push(&reg, "app", "v1", "kind: V\n");
    let url = format!("oci://{}/app", reg.host());
    let m = manifest("root", &url, "v1", None);
    let empty = tempfile::tempdir().unwrap();
    is_refused(
        &m,
        empty.path(),
        &format!(
            "{PREFIX}: failed to read trusted root from secret 'apps/sigstore-root': secrets \
             \"sigstore-root\" not found"
        ),
    );
    let no_entry = tempfile::tempdir().unwrap();
    write_secret(
        no_entry.path(),
        "sigstore-root",
        &[("root.json", "{}".into())],
    );
    is_refused(
        &m,
        no_entry.path(),
        &format!(
            "{PREFIX}: failed to read trusted root from secret 'apps/sigstore-root': \
             'trusted_root.json' not found in secret 'apps/sigstore-root'"
        ),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_verifies_keyless_with_a_trusted_root_secret() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let digest = push(&reg, "app", "stable", "kind: Keyless\n");
    let work = tempfile::tempdir().unwrap();
    let ca = TestCa::init(&work.path().join("ca"));
    ca.sign(&reg, &format!("app@{digest}"), EMAIL, ISSUER, "bundle", &[]);
    let (api, _ctl) = controller_with_verified_object(
        "verify-keyless",
        (
            "sigstore-root",
            json!({"trusted_root.json": ca.trusted_root()}),
        ),
        &format!("oci://{}/app", reg.host()),
        json!({
            "provider": "cosign",
            "trustedRootSecretRef": {"name": "sigstore-root"},
            "matchOIDCIdentity": [exact(ISSUER, EMAIL)],
        }),
    )
    .await;
    let obj = wait_verified(&api, &format!("stable@{digest}")).await;

    // Another identity: refused with the keyless label, the verified artifact kept.
    let stored = obj.status.as_ref().unwrap().artifact.clone().unwrap();
    let patch =
        json!({"spec": {"verify": {"matchOIDCIdentity": [exact(ISSUER, "ops@example.com")]}}});
    api.patch("app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let failure = no_match(&reg, &digest);
    let obj = wait_for(&api, "app", "verification failure", |o| {
        cond(o, "SourceVerified").is_some_and(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        cond(&obj, "SourceVerified"),
        Some(("False".into(), "VerificationError".into(), failure.clone()))
    );
    assert_eq!(
        cond(&obj, "Ready"),
        Some(("False".into(), "VerificationError".into(), failure))
    );
    assert_eq!(
        obj.status.as_ref().unwrap().artifact.as_ref(),
        Some(&stored)
    );
}

#[test]
fn the_trusted_root_example_verifies_as_written() {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let digest = push(&reg, "app", "latest", "kind: Example\n");
    let work = tempfile::tempdir().unwrap();
    let ca = TestCa::init(&work.path().join("ca"));
    ca.sign(
        &reg,
        &format!("app@{digest}"),
        "ci@example.internal",
        "https://dex.example.internal",
        "bundle",
        &[],
    );
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ocirepository-cosign-trusted-root.yaml"
    ))
    .unwrap();
    let mut m: Value = serde_saphyr::from_str(&example).unwrap();
    // Only where it runs changes: this registry, the Secrets' namespace; `verify` as written.
    m["metadata"]["namespace"] = "apps".into();
    m["spec"]["url"] = format!("oci://{}/app", reg.host()).into();
    m["spec"]["insecure"] = true.into();
    let secrets = tempfile::tempdir().unwrap();
    let name = m["spec"]["verify"]["trustedRootSecretRef"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    write_secret(
        secrets.path(),
        &name,
        &[("trusted_root.json", ca.trusted_root())],
    );
    verifies(&m, secrets.path(), &format!("latest@{digest}"));
}
