//! Notary Project (notation) signatures, verified as Flux verifies them with notation-go
//! v1.3.2: the trust policy and certificates of the verification Secret, the statement whose
//! registry scope covers the repository, the signature manifests among the digest's referrers
//! (the OCI referrers API, else the referrers tag), at most three envelopes tried, and the
//! outcome mapped to verified, ignored (`skip`, or an authenticity failure only logged at
//! `audit`) or failed with notation's texts.
//!
//! - [`policy`]: the trust policy document, its validation and statement selection;
//!   [`gojson`]: its decoding with Go's texts; [`dn`]: `x509.subject` identities.
//! - [`envelope`]: JWS and COSE envelopes and their integrity.
//! - [`x509`]: the trust store, subjects, key specs, and the code-signing chain rules.
//! - [`verifier`]: one envelope against a statement and level.

pub mod dn;
pub mod envelope;
pub mod gojson;
pub mod gotext;
pub mod policy;
pub mod verifier;
pub mod x509;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::registry::{Client, Credential, Descriptor, Digest, Repository};
use policy::{Check, Document};
use verifier::Target;
use x509::TrustStore;

/// The artifact type of notation signature manifests.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";

/// The Secret entry holding the trust policy.
pub const TRUST_POLICY_KEY: &str = "trustpolicy.json";

/// The most signature envelopes tried (Flux's `MaxSignatureAttempts`).
pub const MAX_SIGNATURE_ATTEMPTS: usize = 3;

/// The largest signature manifest read (notation's limit).
pub const MAX_SIGNATURE_MANIFEST_SIZE: u64 = 4 << 20;

/// The largest signature envelope read. notation allows 32 MiB; an envelope is a few KiB (a
/// signature and a certificate chain), and a reconcile holds it in memory, so the bound is the
/// signature manifest's.
pub const MAX_SIGNATURE_BLOB_SIZE: u64 = 4 << 20;

/// Why notation verification failed: notation-go's or Flux's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

/// What verification concluded when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A signature verified: `SourceVerified=True`.
    Verified,
    /// Nothing to mark: the level is `skip`, or authenticity failed where it is only logged.
    Ignored,
}

/// The verification material of a Secret: the cleaned trust policy and the trust store.
#[derive(Debug, Clone)]
pub struct Material {
    /// The trust policy, `skip` statements cleaned.
    pub policy: Document,
    /// The certificates.
    pub store: TrustStore,
}

/// Reads a verification Secret `<namespace>/<name>` as Flux does.
///
/// # Errors
/// Flux's texts: no `trustpolicy.json`, a policy that does not decode, no certificate entry.
pub fn material(
    namespace: &str,
    name: &str,
    data: &BTreeMap<String, ByteString>,
) -> Result<Material, Failure> {
    let Some(raw) = data.get(TRUST_POLICY_KEY) else {
        return Err(Failure(format!(
            "'{TRUST_POLICY_KEY}' not found in secret '{namespace}/{name}'"
        )));
    };
    let mut policy = gojson::decode_document(&raw.0).map_err(|e| {
        Failure(format!(
            "error occurred while parsing {TRUST_POLICY_KEY}: {e}"
        ))
    })?;
    let Some(store) = TrustStore::from_secret(data) else {
        return Err(Failure(format!(
            "no certificates found in secret '{namespace}/{name}'"
        )));
    };
    for statement in policy.clean_skip_statements() {
        tracing::info!(
            "warning: trust policy statement '{statement}' is set to skip signature verification \
             but configured with trust stores and/or trusted identities. Ignoring trust stores \
             and trusted identities"
        );
    }
    Ok(Material { policy, store })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignatureManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    layers: Vec<Layer>,
    #[serde(default)]
    blobs: Vec<Layer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layer {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
}

const IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";

/// The envelope layer of a signature manifest (exactly one is required).
///
/// # Errors
/// notation's texts.
pub fn signature_layer(referrer_media_type: &str, manifest: &[u8]) -> Result<Descriptor, String> {
    if referrer_media_type != IMAGE_MANIFEST && referrer_media_type != ARTIFACT_MANIFEST {
        return Err(format!(
            "sigManifestDesc.MediaType requires \"{ARTIFACT_MANIFEST}\" or \"{IMAGE_MANIFEST}\", \
             got {}",
            gotext::go_quote(referrer_media_type)
        ));
    }
    let m: SignatureManifest =
        serde_json::from_slice(manifest).map_err(|e| format!("invalid manifest: {e}"))?;
    let blobs = if referrer_media_type == IMAGE_MANIFEST {
        m.layers
    } else {
        m.blobs
    };
    let _ = m.media_type;
    let [blob] = <[Layer; 1]>::try_from(blobs).map_err(|b| {
        format!(
            "signature manifest requries exactly one signature envelope blob, got {}",
            b.len()
        )
    })?;
    Ok(Descriptor {
        media_type: blob.media_type,
        digest: blob
            .digest
            .parse()
            .map_err(|e| format!("invalid envelope digest: {e}"))?,
        size: u64::try_from(blob.size).map_err(|_| "negative envelope size".to_string())?,
        annotations: BTreeMap::new(),
    })
}

/// Verifies `repo@digest` with `material`, through the object's client and credential, at
/// `now`.
///
/// # Errors
/// notation's or Flux's text: an invalid policy, no applicable statement, registry failures,
/// no signature, every signature failing, or none verified.
pub async fn verify(
    client: &Client,
    credential: &Credential,
    repo: &Repository,
    digest: &Digest,
    material: &Material,
    now: Timestamp,
) -> Result<Verdict, Failure> {
    let policy = &material.policy;
    policy.validate().map_err(Failure)?;
    let reference = format!("{repo}@{digest}");
    let statement = policy.applicable(&reference).map_err(Failure)?;
    let level = statement.signature_verification.level().map_err(Failure)?;
    if level.is_skip() {
        tracing::info!("Signature verification skipped for {reference}");
        return Ok(Verdict::Ignored);
    }

    let (subject, content_type) = client
        .manifest_with_type(repo, digest, credential)
        .await
        .map_err(|e| Failure(crate::verify::chain(&e)))?;
    let target = Target {
        media_type: content_type
            .or_else(|| {
                serde_json::from_slice::<serde_json::Value>(&subject)
                    .ok()
                    .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            })
            .unwrap_or_default(),
        digest: digest.to_string(),
        size: u64::try_from(subject.len()).unwrap_or(u64::MAX),
    };
    let referrers = client
        .referrers(repo, digest, Some(SIGNATURE_ARTIFACT_TYPE), credential)
        .await
        .map_err(|e| {
            Failure(format!(
                "failed to get referrers during ListSignatures due to {}",
                crate::verify::chain(&e)
            ))
        })?;
    let signatures: Vec<_> = referrers
        .referrers
        .iter()
        .filter(|r| r.artifact_type == SIGNATURE_ARTIFACT_TYPE)
        .collect();
    tracing::debug!(
        reference = %reference,
        source = ?referrers.source,
        signatures = signatures.len(),
        "notation signature manifests found"
    );

    let mut failures = Vec::new();
    let mut processed = 0;
    for sig in signatures.iter().take(MAX_SIGNATURE_ATTEMPTS) {
        processed += 1;
        let retrieval = |e: String| {
            Failure(format!(
                "unable to retrieve digital signature with digest {} associated with {} from the \
                 Repository, error : {e}",
                gotext::go_quote(&sig.digest.to_string()),
                gotext::go_quote(&reference)
            ))
        };
        if sig.size > MAX_SIGNATURE_MANIFEST_SIZE {
            return Err(retrieval(format!(
                "signature manifest too large: {} bytes",
                sig.size
            )));
        }
        let manifest = client
            .manifest_bytes(repo, &sig.digest, credential)
            .await
            .map_err(|e| retrieval(crate::verify::chain(&e)))?;
        let layer = signature_layer(&sig.media_type, &manifest).map_err(retrieval)?;
        if layer.size > MAX_SIGNATURE_BLOB_SIZE {
            return Err(retrieval(format!(
                "signature blob too large: {} bytes",
                layer.size
            )));
        }
        let blob = client
            .read_blob(repo, &layer, credential, MAX_SIGNATURE_BLOB_SIZE)
            .await
            .map_err(|e| retrieval(crate::verify::chain(&e)))?;
        match verifier::verify(
            &layer.media_type,
            &blob,
            &target,
            statement,
            &level,
            &material.store,
            now,
        ) {
            Ok(outcome) => return Ok(check_outcome(&outcome, &reference)),
            Err(e) => {
                tracing::warn!(
                    "Signature {} failed verification with error: {e}",
                    sig.digest
                );
                failures.push(format!(
                    "failed to verify signature with digest {}, {e}",
                    sig.digest
                ));
            }
        }
    }
    if processed == 0 {
        return Err(Failure(format!(
            "no signature is associated with {}, make sure the artifact was signed successfully",
            gotext::go_quote(&reference)
        )));
    }
    if processed >= MAX_SIGNATURE_ATTEMPTS {
        return Err(Failure(format!(
            "signature evaluation stopped. The configured limit of {MAX_SIGNATURE_ATTEMPTS} \
             signatures to verify per artifact exceeded"
        )));
    }
    let mut text = String::from("signature verification failed");
    for f in failures {
        text.push('\n');
        text.push_str(&f);
    }
    Err(Failure(text))
}

/// Flux's `checkOutcome`: an authenticity failure that was only logged makes the result
/// ignored; other logged failures (expiry, timestamp, revocation) still verify.
fn check_outcome(outcome: &verifier::Outcome, reference: &str) -> Verdict {
    let mut ignore = false;
    for r in &outcome.results {
        if let Some(e) = &r.error {
            if r.check == Check::Authenticity {
                ignore = true;
            }
            tracing::info!(
                "verification check for type '{}' failed for '{reference}' with message: '{e}'",
                r.check.as_str()
            );
        }
    }
    if ignore {
        Verdict::Ignored
    } else {
        Verdict::Verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(entries: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn the_secret_is_read_with_fluxs_texts() {
        let e = |entries: &[(&str, &str)]| material("ns", "cfg", &data(entries)).unwrap_err().0;
        assert_eq!(e(&[]), "'trustpolicy.json' not found in secret 'ns/cfg'");
        assert_eq!(
            e(&[("trustpolicy.json", "")]),
            "error occurred while parsing trustpolicy.json: unexpected end of JSON input"
        );
        assert_eq!(
            e(&[("trustpolicy.json", "{\"version\": \"1.\n0\"}")]),
            "error occurred while parsing trustpolicy.json: invalid character '\\n' in string literal"
        );
        assert_eq!(
            e(&[("trustpolicy.json", "{}"), ("key.pub", "x")]),
            "no certificates found in secret 'ns/cfg'"
        );
        let m = material(
            "ns",
            "cfg",
            &data(&[
                (
                    "trustpolicy.json",
                    r#"{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],
                       "signatureVerification":{"level":"skip"},"trustStores":["ca:x"],
                       "trustedIdentities":["*"]}]}"#,
                ),
                ("ca.crt", x509::tests::TEST_CERT),
            ]),
        )
        .unwrap();
        assert!(m.policy.trust_policies[0].trust_stores.is_empty());
        assert_eq!(m.policy.validate(), Ok(()));
    }

    #[test]
    fn signature_manifests_need_exactly_one_envelope() {
        let one = br#"{"layers":[{"mediaType":"application/jose+json","digest":"sha256:4ab44e1568b9542fd90e8a984bf6529dc35123813d8db76a83f5011ed008a9ec","size":2080}]}"#;
        let layer = signature_layer(IMAGE_MANIFEST, one).unwrap();
        assert_eq!(
            (layer.media_type.as_str(), layer.size),
            ("application/jose+json", 2080)
        );
        assert!(
            signature_layer(IMAGE_MANIFEST, br#"{"layers":[]}"#)
                .unwrap_err()
                .contains("exactly one signature envelope blob, got 0")
        );
        assert!(
            signature_layer("application/vnd.oci.image.index.v1+json", one)
                .unwrap_err()
                .starts_with("sigManifestDesc.MediaType requires")
        );
    }

    #[test]
    fn only_a_logged_authenticity_failure_is_ignored() {
        use policy::Action;
        let result = |check, error: Option<&str>| verifier::CheckResult {
            check,
            action: Action::Log,
            error: error.map(str::to_string),
        };
        let outcome = |results| verifier::Outcome { results };
        assert_eq!(
            check_outcome(&outcome(vec![result(Check::Expiry, Some("expired"))]), "r"),
            Verdict::Verified
        );
        assert_eq!(
            check_outcome(&outcome(vec![result(Check::Authenticity, Some("x"))]), "r"),
            Verdict::Ignored
        );
    }

    mod properties {
        use super::super::signature_layer;
        use crate::mutation::{config, mutated};
        use proptest::prelude::*;

        const MANIFESTS: &[&str] = &[
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.notary.signature","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/cose","digest":"sha256:67522a8cd0c7623d92409cccfabd988622b5ac39d1e2c181ca61c8932c9776f6","size":1489}]}"#,
        ];

        proptest! {
            #![proptest_config(config())]

            /// A mutated signature manifest yields its envelope descriptor or a text.
            #[test]
            fn mutated_signature_manifests_never_panic(bytes in mutated(MANIFESTS)) {
                let _ = signature_layer("application/vnd.oci.image.manifest.v1+json", &bytes);
            }
        }
    }
}
