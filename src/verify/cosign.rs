//! Cosign signatures checked with public keys, in cosign's v2 registry layout, as Flux checks
//! them with a verification Secret (offline, transparency log ignored):
//!
//! - the signatures of `repo@<alg>:<hex>` are the layers of the image manifest tagged
//!   `<alg>-<hex>.sig` in the same repository;
//! - each layer is a simple-signing payload (JSON) whose `critical.image.docker-manifest-digest`
//!   must be the verified digest, and carries its signature, base64, in the layer annotation
//!   `dev.cosignproject.cosign/signature`;
//! - a signature counts when one of the keys verifies it over the payload bytes; one such
//!   signature verifies the digest.
//!
//! Sigstore bundles ([`super::bundle`]) are looked for first, as Flux v1.8+ does; when none
//! verifies, the v2 layout is checked.
//!
//! Every registry request goes through the object's own [`Client`] (its credentials, TLS, proxy
//! and deadline); payloads are read whole, bounded and checked against their digests.

use base64::Engine as _;
use serde::Deserialize;

use super::keys::PublicKey;
use crate::registry::{Client, Credential, Descriptor, Digest, Manifest, Repository};

/// The layer annotation holding a signature, base64.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The media type cosign gives a simple-signing payload layer (not required when verifying, as
/// cosign does not require it either).
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// The largest payload read, in bytes: a simple-signing payload is a few hundred bytes.
pub const MAX_PAYLOAD_SIZE: u64 = 1 << 20;

/// The most signature layers looked at; the rest are ignored.
pub const MAX_SIGNATURES: usize = 100;

/// The tag under which cosign stores the signatures of `digest`: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm().as_str(), digest.hex())
}

/// No signature of the digest verified with any key (Flux's text).
#[derive(Debug, thiserror::Error)]
#[error("no matching signatures were found for '{reference}'")]
pub struct NoMatchingSignatures {
    /// `registry/repository@digest`.
    pub reference: String,
    /// Why, for logs: what was missing or failed (not part of the message, as in Flux).
    pub detail: String,
}

/// A signature layer: its payload descriptor and the decoded signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// The payload blob.
    pub payload: Descriptor,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

/// The signature layers of a `.sig` manifest: layers with a base64 signature annotation, at
/// most [`MAX_SIGNATURES`]. Layers without one, or with one that is not base64, can verify
/// nothing and are skipped.
pub fn signature_layers(manifest: &Manifest) -> Vec<SignatureLayer> {
    manifest
        .layers
        .iter()
        .filter_map(|layer| {
            let encoded = layer.annotations.get(SIGNATURE_ANNOTATION)?;
            let signature = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()?;
            Some(SignatureLayer {
                payload: layer.clone(),
                signature,
            })
        })
        .take(MAX_SIGNATURES)
        .collect()
}

#[derive(Deserialize)]
struct SimpleSigning {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    image: Image,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Why a payload does not vouch for the digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not a simple-signing document.
    #[error("invalid simple signing payload: {0}")]
    Invalid(String),
    /// It names another digest (cosign's text).
    #[error("invalid or missing digest in claim: {0}")]
    OtherDigest(String),
}

/// Checks that a simple-signing `payload` names `digest` in
/// `critical.image.docker-manifest-digest`.
///
/// # Errors
/// [`PayloadError`] when the payload is not simple-signing JSON or names another digest.
pub fn check_payload(payload: &[u8], digest: &Digest) -> Result<(), PayloadError> {
    let doc: SimpleSigning =
        serde_json::from_slice(payload).map_err(|e| PayloadError::Invalid(e.to_string()))?;
    let claimed = doc.critical.image.docker_manifest_digest;
    if claimed == digest.to_string() {
        Ok(())
    } else {
        Err(PayloadError::OtherDigest(claimed))
    }
}

/// Where a verified signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A Sigstore bundle among the digest's referrers ([`super::bundle`]).
    Bundle,
    /// A layer of the `sha256-<hex>.sig` manifest (cosign v2).
    SignatureTag,
}

impl Layout {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Bundle => "bundle",
            Layout::SignatureTag => "signature-tag",
        }
    }
}

/// Which key verified which signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The Secret entry of the key that verified.
    pub key: String,
    /// The blob that was verified: the simple-signing payload, or the bundle.
    pub payload: Digest,
    /// Where it was found.
    pub layout: Layout,
}

/// Why no `.sig` signature of a digest verified: the problems met, for logs, and how many
/// signature layers were found (zero when the digest has no `.sig` image or it is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoSignature {
    /// What failed, layer by layer.
    pub problems: Vec<String>,
    /// The signature layers found.
    pub signatures: usize,
}

/// Reads the signature layers of `repo@digest`'s `.sig` image (cosign v2 layout) and returns
/// the first whose payload names `digest` and that `check` accepts (given the layer and its
/// payload), with the payload's digest.
///
/// # Errors
/// [`NoSignature`] when none is accepted (registry failures included).
pub async fn search<T>(
    client: &Client,
    credential: &Credential,
    repo: &Repository,
    digest: &Digest,
    mut check: impl FnMut(&SignatureLayer, &[u8]) -> Result<T, String>,
) -> Result<(T, Digest), NoSignature> {
    let tag = signature_tag(digest);
    let mut no = NoSignature::default();
    let manifest = match client.image_manifest_by_tag(repo, &tag, credential).await {
        Ok(m) => m,
        Err(e) => {
            no.problems
                .push(format!("no signatures: {}", super::chain(&e)));
            return Err(no);
        }
    };
    let layers = signature_layers(&manifest);
    no.signatures = layers.len();
    if layers.is_empty() {
        no.problems
            .push(format!("{repo}:{tag} has no signature layer"));
        return Err(no);
    }
    for layer in &layers {
        let at = format!("payload {}", layer.payload.digest);
        let payload = match client
            .read_blob(repo, &layer.payload, credential, MAX_PAYLOAD_SIZE)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                no.problems.push(format!("{at}: {}", super::chain(&e)));
                continue;
            }
        };
        if let Err(e) = check_payload(&payload, digest) {
            no.problems.push(format!("{at}: {e}"));
            continue;
        }
        match check(layer, &payload) {
            Ok(t) => return Ok((t, layer.payload.digest.clone())),
            Err(e) => no.problems.push(format!("{at}: {e}")),
        }
    }
    Err(no)
}

/// Verifies `repo@digest` with `keys` (Secret entry name, key), in order: the first key with a
/// valid signature wins. Sigstore bundles among the digest's referrers are looked at first
/// ([`super::bundle::verify`]), then the cosign v2 `.sig` layout.
///
/// # Errors
/// [`NoMatchingSignatures`] when there is no key, or neither a bundle nor a `.sig` signature
/// that one of the keys verifies and that names `digest` (registry failures included, as in
/// Flux: the details go to the error's `detail`).
pub async fn verify(
    client: &Client,
    credential: &Credential,
    repo: &Repository,
    digest: &Digest,
    keys: &[(String, PublicKey)],
) -> Result<Verified, NoMatchingSignatures> {
    let fail = |detail: String| NoMatchingSignatures {
        reference: format!("{repo}@{digest}"),
        detail,
    };
    if keys.is_empty() {
        return Err(fail("no '.pub' entry in the verification Secret".into()));
    }
    let mut problems = match super::bundle::verify(client, credential, repo, digest, keys).await {
        Ok(v) => {
            return Ok(Verified {
                key: v.key,
                payload: v.bundle,
                layout: Layout::Bundle,
            });
        }
        Err(problems) => problems,
    };
    let check = |layer: &SignatureLayer, payload: &[u8]| {
        keys.iter()
            .find(|(_, key)| key.verifies(payload, &layer.signature))
            .map(|(name, _)| name.clone())
            .ok_or_else(|| "no key verifies its signature".to_string())
    };
    match search(client, credential, repo, digest, check).await {
        Ok((key, payload)) => Ok(Verified {
            key,
            payload,
            layout: Layout::SignatureTag,
        }),
        Err(no) => {
            problems.extend(no.problems);
            Err(fail(problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const D: &str = "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a";

    fn digest() -> Digest {
        D.parse().unwrap()
    }

    #[test]
    fn the_signature_tag_is_derived_from_the_digest() {
        assert_eq!(
            signature_tag(&digest()),
            "sha256-4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a.sig"
        );
    }

    #[test]
    fn a_payload_must_name_the_verified_digest() {
        let cosign = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/app"}},"image":{{"docker-manifest-digest":"{D}"}},"type":"cosign container image signature"}},"optional":null}}"#
        );
        assert_eq!(check_payload(cosign.as_bytes(), &digest()), Ok(()));
        let other = cosign.replace("4bf5", "0000");
        assert!(matches!(
            check_payload(other.as_bytes(), &digest()),
            Err(PayloadError::OtherDigest(d)) if d.starts_with("sha256:0000")
        ));
        for bad in [
            "",
            "null",
            "[]",
            r#"{"critical":{}}"#,
            r#"{"critical":{"image":{"docker-manifest-digest":7}}}"#,
            r#"{"critical":{"image":{}}}"#,
        ] {
            assert!(
                matches!(
                    check_payload(bad.as_bytes(), &digest()),
                    Err(PayloadError::Invalid(_))
                ),
                "{bad}"
            );
        }
        // Duplicate claims are refused rather than resolved one way or the other.
        let twice = format!(
            r#"{{"critical":{{"image":{{"docker-manifest-digest":"{D}","docker-manifest-digest":"{D}"}}}}}}"#
        );
        assert!(check_payload(twice.as_bytes(), &digest()).is_err());
    }

    fn layer(annotation: Option<&str>) -> Descriptor {
        let mut annotations = BTreeMap::new();
        if let Some(a) = annotation {
            annotations.insert(SIGNATURE_ANNOTATION.to_string(), a.to_string());
        }
        Descriptor {
            media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
            digest: digest(),
            size: 10,
            annotations,
        }
    }

    fn manifest(layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            digest: digest(),
            manifest_digest: digest(),
            media_type: crate::registry::manifest::OCI_MANIFEST.into(),
            config: None,
            layers,
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn only_layers_with_a_base64_signature_are_candidates() {
        let m = manifest(vec![
            layer(Some("AQID")),
            layer(None),
            layer(Some("not base64!")),
            layer(Some(" BAU= ")),
        ]);
        let sigs: Vec<_> = signature_layers(&m)
            .into_iter()
            .map(|l| l.signature)
            .collect();
        assert_eq!(sigs, vec![vec![1, 2, 3], vec![4, 5]]);
    }

    #[test]
    fn the_number_of_candidates_is_bounded() {
        let m = manifest(vec![layer(Some("AQID")); MAX_SIGNATURES * 3]);
        assert_eq!(signature_layers(&m).len(), MAX_SIGNATURES);
    }

    #[test]
    fn the_message_is_flux_s() {
        let e = NoMatchingSignatures {
            reference: format!("r.example/app@{D}"),
            detail: "whatever".into(),
        };
        assert_eq!(
            e.to_string(),
            format!("no matching signatures were found for 'r.example/app@{D}'")
        );
    }

    mod properties {
        use super::digest;
        use crate::mutation::{config, mutated};
        use crate::registry::manifest::{Document, parse_document};
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        const PAYLOADS: &[&str] = &[
            r#"{"critical":{"identity":{"docker-reference":"r/app"},"image":{"docker-manifest-digest":"sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"},"type":"cosign container image signature"},"optional":null}"#,
            r#"{"critical":{"image":{"docker-manifest-digest":""}}}"#,
        ];
        const SIGNATURE_MANIFESTS: &[&str] = &[
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"dev.cosignproject.cosign/signature":"MEUCIQDx"}}]}"#,
        ];

        proptest! {
            #![proptest_config(config())]

            /// A mutated simple-signing payload is accepted or refused for the digest.
            #[test]
            fn mutated_payloads_never_panic(payload in mutated(PAYLOADS)) {
                let _ = super::super::check_payload(&payload, &digest());
            }

            /// The signature layers of any signature manifest the registry parser accepts.
            #[test]
            fn mutated_signature_manifests_never_panic(body in mutated(SIGNATURE_MANIFESTS)) {
                if let Ok(Document::Image { layers, .. }) = parse_document(&body, None) {
                    let manifest = crate::registry::Manifest {
                        digest: digest(),
                        manifest_digest: digest(),
                        media_type: String::new(),
                        config: None,
                        layers,
                        annotations: BTreeMap::new(),
                    };
                    let _ = super::super::signature_layers(&manifest);
                }
            }
        }
    }
}
