//! Keyless checks on fixtures made by testbed/go/sigstore-testca (and verified there by
//! sigstore-go and by cosign v2.6.5 before being stored): a DSSE bundle signed as
//! `dev@example.com` of `https://issuer.example`, and a `.sig` layer signed as a GitHub
//! workflow, both under `testdata/trusted_root.json`; `testdata/other_root.json` is another
//! test CA's.

use std::collections::BTreeMap;

use base64::Engine as _;
use regex::bytes::Regex;

use super::*;
use crate::registry::Descriptor;

const ROOT: &str = include_str!("testdata/trusted_root.json");
const OTHER_ROOT: &str = include_str!("testdata/other_root.json");
const BUNDLE: &str = include_str!("testdata/bundle.json");
const BUNDLE_DIGEST: &str =
    "sha256:7a5e3d9d9d4c30751a9db16f579f4a98797a2d2150b61d67e6af2f1e85e97b05";
const SIG_ANNOTATIONS: &str = include_str!("testdata/sig-annotations.json");
const SIG_PAYLOAD: &str = include_str!("testdata/sig-payload.json");

fn root() -> TrustedRoot {
    TrustedRoot::from_json(ROOT.as_bytes()).unwrap()
}

fn digest() -> Digest {
    BUNDLE_DIGEST.parse().unwrap()
}

fn m(issuer: &str, subject: &str) -> IdentityMatcher {
    IdentityMatcher {
        issuer: Regex::new(issuer).unwrap(),
        subject: Regex::new(subject).unwrap(),
    }
}

fn check(
    bundle: &str,
    root: &TrustedRoot,
    identities: &[IdentityMatcher],
) -> Result<Signer, String> {
    check_bundle(bundle.as_bytes(), &digest(), Policy { root, identities })
}

#[test]
fn a_bundle_verifies_for_its_identity_and_any_identity() {
    let root = root();
    let signer = check(BUNDLE, &root, &[]).unwrap();
    assert_eq!(signer.identities, ["dev@example.com"]);
    assert_eq!(signer.issuer, "https://issuer.example");
    let exact = m("^https://issuer\\.example$", "^dev@example\\.com$");
    assert_eq!(
        check(BUNDLE, &root, std::slice::from_ref(&exact)),
        Ok(signer.clone())
    );
    // OR: a wrong entry beside the right one.
    let wrong = m("^https://issuer\\.example$", "^ops@example\\.com$");
    assert_eq!(check(BUNDLE, &root, &[wrong.clone(), exact]), Ok(signer));
    let e = check(BUNDLE, &root, &[wrong, m("other", "dev@")]).unwrap_err();
    assert!(e.contains("matches no matchOIDCIdentity entry"), "{e}");
}

#[test]
fn a_bundle_does_not_verify_for_another_digest_or_under_another_root() {
    let root = root();
    let other: Digest = "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"
        .parse()
        .unwrap();
    let policy = Policy {
        root: &root,
        identities: &[],
    };
    assert!(check_bundle(BUNDLE.as_bytes(), &other, policy).is_err());
    let untrusted = TrustedRoot::from_json(OTHER_ROOT.as_bytes()).unwrap();
    let e = check(BUNDLE, &untrusted, &[]).unwrap_err();
    assert!(
        e.starts_with("transparency log: unknown transparency log"),
        "{e}"
    );
}

/// The trusted root with `field` taken from another test CA's.
fn root_with_others(field: &str) -> TrustedRoot {
    let mut mine: serde_json::Value = serde_json::from_str(ROOT).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(OTHER_ROOT).unwrap();
    mine[field] = theirs[field].clone();
    TrustedRoot::from_json(mine.to_string().as_bytes()).unwrap()
}

#[test]
fn the_chain_and_the_sct_are_checked_against_the_root_s_authorities_and_ct_logs() {
    let e = check(BUNDLE, &root_with_others("certificateAuthorities"), &[]).unwrap_err();
    assert!(
        e.starts_with("certificate does not chain to the trusted root"),
        "{e}"
    );
    let e = check(BUNDLE, &root_with_others("ctlogs"), &[]).unwrap_err();
    assert_eq!(
        e,
        "none of the 1 embedded SCTs is signed by a CT log of the trusted root"
    );
    // An authority whose validity ended before the integrated time vouches for nothing.
    let mut ended: serde_json::Value = serde_json::from_str(ROOT).unwrap();
    ended["certificateAuthorities"][0]["validFor"]["end"] = "2026-01-01T00:00:00Z".into();
    let ended = TrustedRoot::from_json(ended.to_string().as_bytes()).unwrap();
    let e = check(BUNDLE, &ended, &[]).unwrap_err();
    assert!(
        e.starts_with("no certificate authority of the trusted root is valid"),
        "{e}"
    );
}

fn edit(f: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut b: serde_json::Value = serde_json::from_str(BUNDLE).unwrap();
    f(&mut b);
    b.to_string()
}

fn entry(b: &mut serde_json::Value) -> &mut serde_json::Value {
    &mut b["verificationMaterial"]["tlogEntries"][0]
}

#[test]
fn every_piece_of_evidence_is_checked() {
    let root = root();
    let cases: Vec<(&str, String)> = vec![
        (
            "no signed entry timestamp",
            edit(|b| {
                entry(b).as_object_mut().unwrap().remove("inclusionPromise");
            }),
        ),
        (
            "the signed entry timestamp does not verify",
            edit(|b| entry(b)["integratedTime"] = "1796409870".into()),
        ),
        (
            "the inclusion proof does not verify",
            edit(|b| entry(b)["inclusionProof"]["logIndex"] = "0".into()),
        ),
        (
            "the checkpoint is not signed by the log",
            edit(|b| {
                let cp = &mut entry(b)["inclusionProof"]["checkpoint"]["envelope"];
                *cp = cp.as_str().unwrap().replacen("\n2\n", "\n3\n", 1).into();
            }),
        ),
        (
            "no transparency-log entry",
            edit(|b| b["verificationMaterial"]["tlogEntries"] = serde_json::json!([])),
        ),
        (
            "the certificate's key verifies no envelope signature",
            edit(|b| b["dsseEnvelope"]["signatures"][0]["sig"] = "MEUCIQ==".into()),
        ),
        (
            "no certificate: not a keyless bundle",
            edit(|b| {
                b["verificationMaterial"] = serde_json::json!({"publicKey": {"hint": "x"}});
            }),
        ),
    ];
    for (why, bundle) in cases {
        let e = check(&bundle, &root, &[]).unwrap_err();
        assert!(e.contains(why), "{why}: {e}");
    }
    // A v0.3 bundle needs the inclusion proof; a v0.1 bundle may do with the SET alone.
    let set_only = |media_type: &str| {
        let media_type = media_type.to_string();
        edit(move |b| {
            b["mediaType"] = media_type.into();
            entry(b).as_object_mut().unwrap().remove("inclusionProof");
        })
    };
    let e = check(
        &set_only(super::super::bundle::BUNDLE_MEDIA_TYPE),
        &root,
        &[],
    )
    .unwrap_err();
    assert_eq!(e, "inclusion proof missing in the bundle");
    let v01 = "application/vnd.dev.sigstore.bundle+json;version=0.1";
    assert!(check(&set_only(v01), &root, &[]).is_ok());
}

#[test]
fn a_log_entry_for_another_signature_is_refused() {
    // The tlog body of the .sig fixture (another certificate and payload) put in the bundle,
    // with its valid SET.
    let ann: BTreeMap<String, String> = serde_json::from_str(SIG_ANNOTATIONS).unwrap();
    let rekor: serde_json::Value = serde_json::from_str(&ann[REKOR_BUNDLE_ANNOTATION]).unwrap();
    let bundle = edit(|b| {
        let e = entry(b);
        e["canonicalizedBody"] = rekor["Payload"]["body"].clone();
        e["integratedTime"] = rekor["Payload"]["integratedTime"].to_string().into();
        e["inclusionPromise"]["signedEntryTimestamp"] = rekor["SignedEntryTimestamp"].clone();
        e.as_object_mut().unwrap().remove("inclusionProof");
        b["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1".into();
    });
    let e = check(&bundle, &root(), &[]).unwrap_err();
    assert!(e.contains("the log entry is for another payload"), "{e}");
}

fn sig_layer() -> SignatureLayer {
    let annotations: BTreeMap<String, String> = serde_json::from_str(SIG_ANNOTATIONS).unwrap();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&annotations[super::super::cosign::SIGNATURE_ANNOTATION])
        .unwrap();
    SignatureLayer {
        payload: Descriptor {
            media_type: super::super::cosign::SIMPLE_SIGNING_MEDIA_TYPE.into(),
            digest: Digest::sha256_of(SIG_PAYLOAD.as_bytes()),
            size: SIG_PAYLOAD.len() as u64,
            annotations,
        },
        signature,
    }
}

#[test]
fn a_sig_layer_with_certificate_and_rekor_bundle_verifies() {
    let root = root();
    let policy = |identities| Policy {
        root: &root,
        identities,
    };
    let gh = [m(
        "^https://token\\.actions\\.githubusercontent\\.com$",
        "^https://github\\.com/o/r/",
    )];
    let signer = check_signature(&sig_layer(), SIG_PAYLOAD.as_bytes(), policy(&gh)).unwrap();
    assert_eq!(
        signer.identities,
        ["https://github.com/o/r/.github/workflows/w.yaml@refs/heads/main"]
    );
    let wrong = [m("github", "^https://github\\.com/other/")];
    assert!(check_signature(&sig_layer(), SIG_PAYLOAD.as_bytes(), policy(&wrong)).is_err());
    // Another payload with the same signature.
    let tampered = SIG_PAYLOAD.replace("cosign container", "cosign  container");
    assert!(check_signature(&sig_layer(), tampered.as_bytes(), policy(&[])).is_err());
    // A key-signed layer (no certificate) is not keyless.
    let mut keyed = sig_layer();
    keyed.payload.annotations.remove(CERTIFICATE_ANNOTATION);
    assert_eq!(
        check_signature(&keyed, SIG_PAYLOAD.as_bytes(), policy(&[])),
        Err("no certificate: not a keyless signature".into())
    );
    let untrusted = TrustedRoot::from_json(OTHER_ROOT.as_bytes()).unwrap();
    let other = Policy {
        root: &untrusted,
        identities: &[],
    };
    assert!(check_signature(&sig_layer(), SIG_PAYLOAD.as_bytes(), other).is_err());
}

#[test]
fn the_certificate_reads_as_fulcio_writes_it() {
    let b: serde_json::Value = serde_json::from_str(BUNDLE).unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            b["verificationMaterial"]["certificate"]["rawBytes"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let leaf = certificate::parse_leaf(&der).unwrap();
    assert_eq!(leaf.oidc_issuer.as_deref(), Some("https://issuer.example"));
    assert_eq!(leaf.identities, ["dev@example.com"]);
    let scts = sct::parse_list(leaf.sct_list.as_deref().unwrap()).unwrap();
    assert_eq!(scts.len(), 1);
    // The precertificate TBS is shorter than the certificate's by the SCT extension.
    assert!(leaf.precert_tbs.len() < der.len());
    let root = root();
    assert_eq!(scts[0].log_id, root.ctlogs[0].id);
}

mod properties {
    use super::*;
    use crate::mutation::{config, mutated};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config())]

        /// A mutated keyless bundle is verified or refused, never a panic.
        #[test]
        fn mutated_bundles_never_panic(bytes in mutated(&[BUNDLE])) {
            let root = root();
            let _ = check_bundle(&bytes, &digest(), Policy { root: &root, identities: &[] });
        }

        /// A mutated Fulcio certificate is read or refused.
        #[test]
        fn mutated_certificates_never_panic(bytes in crate::mutation::mutated_bytes(vec![{
            let b: serde_json::Value = serde_json::from_str(BUNDLE).unwrap();
            base64::engine::general_purpose::STANDARD
                .decode(b["verificationMaterial"]["certificate"]["rawBytes"].as_str().unwrap())
                .unwrap()
        }])) {
            if let Ok(leaf) = certificate::parse_leaf(&bytes) {
                let _ = certificate::verify_chain(&leaf, &root().authorities, 1_796_409_869);
            }
        }
    }
}
