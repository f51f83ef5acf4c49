//! Sigstore bundles (cosign v3, `cosign sign --new-bundle-format`) checked with public keys, as
//! Flux checks them with a verification Secret: offline, transparency-log entries and
//! timestamps ignored (Flux sets cosign's `IgnoreTlog` and `Offline` for keys), the key's
//! signature and the binding to the verified digest checked.
//!
//! - Discovery: the referrers of the verified digest (the OCI 1.1 referrers API, else the
//!   `<alg>-<hex>` fallback tag, see [`crate::registry::referrers`]). A referrer is a bundle
//!   when its manifest says so (its `artifactType`, config media type or a layer media type is
//!   the bundle type): cosign labels a bundle's entry in the fallback index with the empty
//!   artifact type, so the index entry alone cannot tell.
//! - The bundle (the manifest's bundle layer, JSON, bounded) carries a DSSE envelope, which is
//!   what cosign v2.6.5 writes for `--key` signatures: an in-toto statement whose subject names
//!   the verified digest, signed over DSSE's pre-authentication encoding (PAE). A bundle with a
//!   `messageSignature` (a signature over the subject's own bytes) is not accepted (see the
//!   README).
//! - A bundle counts when one of the keys verifies one of its envelope's signatures and the
//!   statement names the digest.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use super::keys::PublicKey;
use crate::registry::{Client, Credential, Descriptor, Digest, Referrer, Repository};

/// The media type of a Sigstore bundle (v0.3, what cosign writes) and the prefix of every
/// bundle version's.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const BUNDLE_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";

/// The empty descriptor's media type, which cosign puts on a bundle's fallback-index entry.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The largest bundle read, in bytes (a key-signed bundle is under a kilobyte; keyless ones
/// with certificates and log entries a few kilobytes).
pub const MAX_BUNDLE_SIZE: u64 = 1 << 20;

/// The most bundles looked at; the rest are ignored.
pub const MAX_BUNDLES: usize = 20;

/// The most envelope signatures tried per bundle.
pub const MAX_ENVELOPE_SIGNATURES: usize = 10;

/// Whether `media_type` is a Sigstore bundle's (any version, any parameters).
pub fn is_bundle_type(media_type: &str) -> bool {
    media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX)
}

/// Whether a referrer's index entry may be a bundle: labelled as one, or labelled with the
/// empty type or nothing (as cosign's fallback index does).
pub fn may_be_bundle(referrer: &Referrer) -> bool {
    let t = referrer.artifact_type.as_str();
    t.is_empty() || t == EMPTY_MEDIA_TYPE || is_bundle_type(t)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleManifest {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<ManifestDescriptor>,
    #[serde(default)]
    layers: Vec<ManifestDescriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
}

/// The bundle layer of a referrer manifest: its first layer of the bundle media type, or
/// `None` when the manifest is another kind of referrer (a notation signature, an SBOM).
///
/// # Errors
/// A text saying why, when the manifest is not JSON or its bundle layer is not a valid
/// descriptor.
pub fn bundle_layer(manifest: &[u8]) -> Result<Option<Descriptor>, String> {
    let m: BundleManifest =
        serde_json::from_slice(manifest).map_err(|e| format!("invalid manifest: {e}"))?;
    let labelled = m.artifact_type.as_deref().is_some_and(is_bundle_type)
        || m.config
            .as_ref()
            .is_some_and(|c| is_bundle_type(&c.media_type));
    let Some(layer) = m.layers.into_iter().find(|l| is_bundle_type(&l.media_type)) else {
        return if labelled {
            Err("a bundle manifest without a bundle layer".into())
        } else {
            Ok(None)
        };
    };
    let digest: Digest = layer
        .digest
        .parse()
        .map_err(|e| format!("invalid bundle layer digest: {e}"))?;
    let size = u64::try_from(layer.size).map_err(|_| "negative bundle layer size".to_string())?;
    Ok(Some(Descriptor {
        media_type: layer.media_type,
        digest,
        size,
        annotations: BTreeMap::new(),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    #[serde(default)]
    dsse_envelope: Option<Envelope>,
    #[serde(default)]
    message_signature: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    #[serde(default)]
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    type_: String,
    #[serde(default)]
    subject: Vec<Subject>,
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

/// Why a bundle does not vouch for the digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not a Sigstore bundle document.
    #[error("invalid bundle: {0}")]
    Invalid(String),
    /// A bundle with a message signature rather than a DSSE envelope.
    #[error("message-signature bundles are not supported, only DSSE envelopes")]
    MessageSignature,
    /// The envelope's payload is not an in-toto statement.
    #[error("invalid in-toto statement: {0}")]
    Statement(String),
    /// The statement does not name the verified digest.
    #[error("no statement subject matches digest {0}")]
    OtherDigest(String),
    /// No key verifies any of the envelope's signatures.
    #[error("no key verifies the envelope's signatures")]
    NoValidSignature,
}

/// DSSE's pre-authentication encoding of a payload: what an envelope signature signs.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A bundle's DSSE envelope, its in-toto statement checked to name the verified digest: what
/// remains is whose signature it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedStatement {
    /// The statement (the envelope's decoded payload).
    pub payload: Vec<u8>,
    /// The PAE of the payload: what each signature signs.
    pub signed: Vec<u8>,
    /// The envelope's signatures that decode, at most [`MAX_ENVELOPE_SIGNATURES`].
    pub signatures: Vec<Vec<u8>>,
}

/// Reads a bundle document's DSSE envelope and checks that its in-toto statement names
/// `digest`; signatures are not checked here.
///
/// # Errors
/// [`BundleError`] saying why the bundle cannot vouch for the digest.
pub fn signed_statement(bundle: &[u8], digest: &Digest) -> Result<SignedStatement, BundleError> {
    let b: Bundle =
        serde_json::from_slice(bundle).map_err(|e| BundleError::Invalid(e.to_string()))?;
    if !is_bundle_type(&b.media_type) {
        return Err(BundleError::Invalid(format!(
            "unknown media type {:?}",
            b.media_type
        )));
    }
    let envelope = match (b.dsse_envelope, b.message_signature) {
        (Some(e), None) => e,
        (None, Some(_)) => return Err(BundleError::MessageSignature),
        (Some(_), Some(_)) => {
            return Err(BundleError::Invalid(
                "both a DSSE envelope and a message signature".into(),
            ));
        }
        (None, None) => return Err(BundleError::Invalid("no content".into())),
    };
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(BundleError::Statement(format!(
            "payload type {:?}",
            envelope.payload_type
        )));
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope.payload.as_bytes())
        .map_err(|e| BundleError::Statement(format!("payload is not base64: {e}")))?;
    let statement: Statement =
        serde_json::from_slice(&payload).map_err(|e| BundleError::Statement(e.to_string()))?;
    if !statement.type_.starts_with("https://in-toto.io/Statement/") {
        return Err(BundleError::Statement(format!(
            "statement type {:?}",
            statement.type_
        )));
    }
    let names_digest = statement.subject.iter().any(|s| {
        s.digest
            .get(digest.algorithm().as_str())
            .is_some_and(|hex| hex.eq_ignore_ascii_case(digest.hex()))
    });
    if !names_digest {
        return Err(BundleError::OtherDigest(digest.to_string()));
    }
    let signatures = envelope
        .signatures
        .iter()
        .take(MAX_ENVELOPE_SIGNATURES)
        .filter_map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s.sig.as_bytes())
                .ok()
        })
        .collect();
    Ok(SignedStatement {
        signed: pae(&envelope.payload_type, &payload),
        payload,
        signatures,
    })
}

/// Checks a bundle document against `digest` with `keys`: the name of the first key that
/// verifies an envelope signature over a statement naming `digest`.
///
/// # Errors
/// [`BundleError`] saying why the bundle does not vouch for the digest.
pub fn check_bundle<'k>(
    bundle: &[u8],
    digest: &Digest,
    keys: &'k [(String, PublicKey)],
) -> Result<&'k str, BundleError> {
    let statement = signed_statement(bundle, digest)?;
    for sig in &statement.signatures {
        if let Some((name, _)) = keys
            .iter()
            .find(|(_, key)| key.verifies(&statement.signed, sig))
        {
            return Ok(name);
        }
    }
    Err(BundleError::NoValidSignature)
}

/// A bundle that verified: the key and the bundle blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle {
    /// The Secret entry of the key that verified.
    pub key: String,
    /// The bundle blob.
    pub bundle: Digest,
}

/// Why no bundle of a digest verified: the problems met, for logs, and how many bundles were
/// read (zero when the digest has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoBundle {
    /// What failed, referrer by referrer.
    pub problems: Vec<String>,
    /// The bundles found and checked.
    pub bundles: usize,
}

/// Reads the bundles among the referrers of `repo@digest` (at most [`MAX_BUNDLES`]) and
/// returns the first that `check` accepts, with the bundle blob's digest.
///
/// # Errors
/// [`NoBundle`] when none is accepted (registry failures included).
pub async fn search<T>(
    client: &Client,
    credential: &Credential,
    repo: &Repository,
    digest: &Digest,
    mut check: impl FnMut(&[u8]) -> Result<T, String>,
) -> Result<(T, Digest), NoBundle> {
    let referrers = client
        .referrers(repo, digest, Some(BUNDLE_MEDIA_TYPE), credential)
        .await
        .map_err(|e| NoBundle {
            problems: vec![format!("referrers: {}", super::chain(&e))],
            bundles: 0,
        })?;
    let mut no = NoBundle::default();
    let candidates = referrers
        .referrers
        .iter()
        .filter(|r| may_be_bundle(r))
        .take(MAX_BUNDLES);
    for referrer in candidates {
        let at = format!("referrer {}", referrer.digest);
        let manifest = match client
            .manifest_bytes(repo, &referrer.digest, credential)
            .await
        {
            Ok(m) => m,
            Err(e) => {
                no.problems.push(format!("{at}: {}", super::chain(&e)));
                continue;
            }
        };
        let layer = match bundle_layer(&manifest) {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(e) => {
                no.problems.push(format!("{at}: {e}"));
                continue;
            }
        };
        no.bundles += 1;
        let bundle = match client
            .read_blob(repo, &layer, credential, MAX_BUNDLE_SIZE)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                no.problems
                    .push(format!("{at}: bundle: {}", super::chain(&e)));
                continue;
            }
        };
        match check(&bundle) {
            Ok(t) => return Ok((t, layer.digest)),
            Err(e) => no.problems.push(format!("{at}: {e}")),
        }
    }
    Err(no)
}

/// Looks for a bundle of `repo@digest` that one of `keys` verifies. Registry failures and
/// bundles that do not verify are described in the returned problems, for logs.
///
/// # Errors
/// The problems met (empty when there is no bundle at all) when no bundle verifies.
pub async fn verify(
    client: &Client,
    credential: &Credential,
    repo: &Repository,
    digest: &Digest,
    keys: &[(String, PublicKey)],
) -> Result<VerifiedBundle, Vec<String>> {
    let check = |b: &[u8]| {
        check_bundle(b, digest, keys)
            .map(str::to_string)
            .map_err(|e| e.to_string())
    };
    match search(client, credential, repo, digest, check).await {
        Ok((key, bundle)) => Ok(VerifiedBundle { key, bundle }),
        Err(no) => Err(no.problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};

    /// A bundle written by `cosign sign --key --new-bundle-format --tlog-upload=false` (cosign
    /// v2.6.5), with its public key and the digest it signs.
    const COSIGN_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYaAELKqoaAJFEM4yRuK7qkvKExQJ
ehyZcZcObb/Wj7pK6/xyDDn8ei2j75GBJ7Qwpmd1k+yQ+//1YNnHznS5xw==
-----END PUBLIC KEY-----
";
    const COSIGN_BUNDLE: &str = r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"MHdKEwro6xgAK/LjtDoPxaMw2JYkrvAYxMi2gG1clpM="}},"dsseEnvelope":{"payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCJzdWJqZWN0IjpbeyJkaWdlc3QiOnsic2hhMjU2IjoiYjA5OTA3OGFjNGVjY2U0MDM1ZDhiNTI0ZDM1ZjM4YWQ5ZDg3NzkzM2ExMDA3MzA2NThiNmQ2MjkxNjA4Y2IzNiJ9fV0sInByZWRpY2F0ZVR5cGUiOiJodHRwczovL3NpZ3N0b3JlLmRldi9jb3NpZ24vc2lnbi92MSJ9","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEQCIGNLNaY+5Fq/gQtnIErgdr6KtgBRBjzLr4jjnmnIvRKYAiBKG1W48KnZvly52E6RmkVRkq/CcYuAfTiWn6Oj2rmfIw=="}]}}"#;
    const COSIGN_DIGEST: &str =
        "sha256:b099078ac4ecce4035d8b524d35f38ad9d877933a100730658b6d6291608cb36";
    const OTHER: &str = "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a";

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    fn new_key(name: &str) -> (EcdsaKeyPair, Vec<(String, PublicKey)>) {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let der = pair.public_key().as_der().unwrap().as_ref().to_vec();
        let key = PublicKey::from_spki_der(&der).unwrap();
        (pair, vec![(name.to_string(), key)])
    }

    /// A bundle whose envelope holds `statement`, signed by `pair` over the PAE.
    fn signed_bundle(pair: &EcdsaKeyPair, statement: &str) -> String {
        let sig = pair
            .sign(
                &SystemRandom::new(),
                &pae(IN_TOTO_PAYLOAD_TYPE, statement.as_bytes()),
            )
            .unwrap();
        format!(
            r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}","verificationMaterial":{{"publicKey":{{"hint":"x"}}}},
               "dsseEnvelope":{{"payload":"{}","payloadType":"{IN_TOTO_PAYLOAD_TYPE}",
               "signatures":[{{"sig":"{}"}}]}}}}"#,
            b64(statement.as_bytes()),
            b64(sig.as_ref())
        )
    }

    fn statement(digest: &str) -> String {
        let (alg, hex) = digest.split_once(':').unwrap();
        format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"{alg}":"{hex}"}}}}],"predicateType":"https://sigstore.dev/cosign/sign/v1"}}"#
        )
    }

    #[test]
    fn the_pae_is_dsse_s() {
        assert_eq!(pae("t/x", b"hello"), b"DSSEv1 3 t/x 5 hello".to_vec());
    }

    #[test]
    fn a_bundle_written_by_cosign_verifies_with_its_key_for_its_digest_only() {
        let keys = vec![(
            "cosign.pub".to_string(),
            PublicKey::from_pem(COSIGN_PUB.as_bytes()).unwrap(),
        )];
        let digest: Digest = COSIGN_DIGEST.parse().unwrap();
        assert_eq!(
            check_bundle(COSIGN_BUNDLE.as_bytes(), &digest, &keys),
            Ok("cosign.pub")
        );
        let other: Digest = OTHER.parse().unwrap();
        assert_eq!(
            check_bundle(COSIGN_BUNDLE.as_bytes(), &other, &keys),
            Err(BundleError::OtherDigest(OTHER.into()))
        );
        let (_, wrong) = new_key("wrong.pub");
        assert_eq!(
            check_bundle(COSIGN_BUNDLE.as_bytes(), &digest, &wrong),
            Err(BundleError::NoValidSignature)
        );
    }

    #[test]
    fn the_first_key_that_verifies_wins_and_tampering_is_refused() {
        let (pair, mine) = new_key("mine.pub");
        let (_, theirs) = new_key("theirs.pub");
        let keys: Vec<_> = theirs.into_iter().chain(mine).collect();
        let digest: Digest = OTHER.parse().unwrap();
        let bundle = signed_bundle(&pair, &statement(OTHER));
        assert_eq!(
            check_bundle(bundle.as_bytes(), &digest, &keys),
            Ok("mine.pub")
        );
        // The statement swapped for one naming the same digest, signature kept: refused.
        let swapped = bundle.replace(
            &b64(statement(OTHER).as_bytes()),
            &b64(statement(OTHER).replace("v1\"", "v1\" ").as_bytes()),
        );
        assert_ne!(swapped, bundle);
        assert_eq!(
            check_bundle(swapped.as_bytes(), &digest, &keys),
            Err(BundleError::NoValidSignature)
        );
        // A signature over the raw payload rather than the PAE: refused.
        let raw = pair
            .sign(&SystemRandom::new(), statement(OTHER).as_bytes())
            .unwrap();
        let unwrapped = format!(
            r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}","dsseEnvelope":{{"payload":"{}","payloadType":"{IN_TOTO_PAYLOAD_TYPE}","signatures":[{{"sig":"{}"}}]}}}}"#,
            b64(statement(OTHER).as_bytes()),
            b64(raw.as_ref())
        );
        assert_eq!(
            check_bundle(unwrapped.as_bytes(), &digest, &keys),
            Err(BundleError::NoValidSignature)
        );
    }

    #[test]
    fn hostile_bundles_are_refused_without_panicking() {
        let (pair, keys) = new_key("k.pub");
        let digest: Digest = OTHER.parse().unwrap();
        let envelope = |payload: &str, ptype: &str| {
            format!(
                r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}","dsseEnvelope":{{"payload":"{payload}","payloadType":"{ptype}","signatures":[{{"sig":"AA=="}}]}}}}"#
            )
        };
        type Expect = fn(&BundleError) -> bool;
        let cases: Vec<(String, Expect)> = vec![
            (String::new(), |e| matches!(e, BundleError::Invalid(_))),
            ("null".into(), |e| matches!(e, BundleError::Invalid(_))),
            ("\u{0}\u{1}".into(), |e| matches!(e, BundleError::Invalid(_))),
            ("{}".into(), |e| matches!(e, BundleError::Invalid(_))),
            (r#"{"mediaType":"application/json","dsseEnvelope":{}}"#.into(), |e| {
                matches!(e, BundleError::Invalid(_))
            }),
            (format!(r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}"}}"#), |e| {
                matches!(e, BundleError::Invalid(_))
            }),
            (
                format!(
                    r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}","messageSignature":{{"messageDigest":{{"algorithm":"SHA2_256","digest":"AA=="}},"signature":"AA=="}}}}"#
                ),
                |e| *e == BundleError::MessageSignature,
            ),
            (
                format!(r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}","dsseEnvelope":{{"payload":7}}}}"#),
                |e| matches!(e, BundleError::Invalid(_)),
            ),
            (envelope("!!!", IN_TOTO_PAYLOAD_TYPE), |e| {
                matches!(e, BundleError::Statement(_))
            }),
            (envelope(&b64(b"[1,2]"), IN_TOTO_PAYLOAD_TYPE), |e| {
                matches!(e, BundleError::Statement(_))
            }),
            (envelope(&b64(statement(OTHER).as_bytes()), "text/plain"), |e| {
                matches!(e, BundleError::Statement(_))
            }),
            (
                envelope(
                    &b64(statement(OTHER).replace("in-toto.io", "evil.example").as_bytes()),
                    IN_TOTO_PAYLOAD_TYPE,
                ),
                |e| matches!(e, BundleError::Statement(_)),
            ),
            (
                envelope(
                    &b64(br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha512":"4bf5"}},{}]}"#),
                    IN_TOTO_PAYLOAD_TYPE,
                ),
                |e| matches!(e, BundleError::OtherDigest(_)),
            ),
            (envelope(&b64(statement(OTHER).as_bytes()), IN_TOTO_PAYLOAD_TYPE), |e| {
                *e == BundleError::NoValidSignature
            }),
        ];
        for (bundle, expected) in cases {
            let e = check_bundle(bundle.as_bytes(), &digest, &keys).unwrap_err();
            assert!(expected(&e), "{bundle}: {e:?}");
        }
        // Duplicate fields are refused rather than resolved one way or the other.
        let good = signed_bundle(&pair, &statement(OTHER));
        let twice = good.replacen(
            "\"dsseEnvelope\"",
            &format!(r#""mediaType":"{BUNDLE_MEDIA_TYPE}","dsseEnvelope""#),
            1,
        );
        assert!(matches!(
            check_bundle(twice.as_bytes(), &digest, &keys),
            Err(BundleError::Invalid(_))
        ));
        // Only the first signatures are tried.
        let many = good.replace(
            "\"signatures\":[",
            &format!(
                "\"signatures\":[{}",
                r#"{"sig":"AA=="},"#.repeat(MAX_ENVELOPE_SIGNATURES)
            ),
        );
        assert_eq!(
            check_bundle(many.as_bytes(), &digest, &keys),
            Err(BundleError::NoValidSignature)
        );
        assert_eq!(check_bundle(good.as_bytes(), &digest, &keys), Ok("k.pub"));
    }

    #[test]
    fn a_referrer_manifest_is_a_bundle_s_by_its_layer() {
        // What cosign writes (the referrers-tag index labels it with the empty type).
        let cosign = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
              "config":{{"mediaType":"{EMPTY_MEDIA_TYPE}","size":2,"digest":"{OTHER}"}},
              "layers":[{{"mediaType":"{BUNDLE_MEDIA_TYPE}","size":615,"digest":"{OTHER}"}}],
              "subject":{{"mediaType":"m","size":1,"digest":"{OTHER}"}},
              "artifactType":"{BUNDLE_MEDIA_TYPE}"}}"#
        );
        let layer = bundle_layer(cosign.as_bytes()).unwrap().unwrap();
        assert_eq!((layer.size, layer.digest.to_string()), (615, OTHER.into()));
        let notation = format!(
            r#"{{"artifactType":"application/vnd.cncf.notary.signature","layers":[{{"mediaType":"application/jose+json","size":1,"digest":"{OTHER}"}}]}}"#
        );
        assert_eq!(bundle_layer(notation.as_bytes()), Ok(None));
        for bad in [
            String::new(),
            "{\"layers\":7}".into(),
            format!(r#"{{"artifactType":"{BUNDLE_MEDIA_TYPE}","layers":[]}}"#),
            format!(
                r#"{{"layers":[{{"mediaType":"{BUNDLE_MEDIA_TYPE}","digest":"x","size":1}}]}}"#
            ),
            format!(
                r#"{{"layers":[{{"mediaType":"{BUNDLE_MEDIA_TYPE}","digest":"{OTHER}","size":-1}}]}}"#
            ),
        ] {
            assert!(bundle_layer(bad.as_bytes()).is_err(), "{bad}");
        }
        let entry = |t: &str| Referrer {
            media_type: String::new(),
            digest: OTHER.parse().unwrap(),
            size: 1,
            artifact_type: t.into(),
            annotations: BTreeMap::new(),
        };
        assert!(may_be_bundle(&entry("")));
        assert!(may_be_bundle(&entry(EMPTY_MEDIA_TYPE)));
        assert!(may_be_bundle(&entry(BUNDLE_MEDIA_TYPE)));
        assert!(!may_be_bundle(&entry(
            "application/vnd.cncf.notary.signature"
        )));
    }

    mod properties {
        use super::super::{bundle_layer, check_bundle};
        use crate::mutation::{config, mutated};
        use crate::registry::Digest;
        use crate::verify::PublicKey;
        use base64::Engine as _;
        use proptest::prelude::*;

        /// A real bundle of `cosign sign --key --new-bundle-format` (v2.6.5), with its key.
        const KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYaAELKqoaAJFEM4yRuK7qkvKExQJ\n\
                           ehyZcZcObb/Wj7pK6/xyDDn8ei2j75GBJ7Qwpmd1k+yQ+//1YNnHznS5xw==\n-----END PUBLIC KEY-----\n";
        const BUNDLES: &[&str] = &[
            r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"MHdKEwro6xgAK/LjtDoPxaMw2JYkrvAYxMi2gG1clpM="}},"dsseEnvelope":{"payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCJzdWJqZWN0IjpbeyJkaWdlc3QiOnsic2hhMjU2IjoiYjA5OTA3OGFjNGVjY2U0MDM1ZDhiNTI0ZDM1ZjM4YWQ5ZDg3NzkzM2ExMDA3MzA2NThiNmQ2MjkxNjA4Y2IzNiJ9fV0sInByZWRpY2F0ZVR5cGUiOiJodHRwczovL3NpZ3N0b3JlLmRldi9jb3NpZ24vc2lnbi92MSJ9","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEQCIGNLNaY+5Fq/gQtnIErgdr6KtgBRBjzLr4jjnmnIvRKYAiBKG1W48KnZvly52E6RmkVRkq/CcYuAfTiWn6Oj2rmfIw=="}]}}"#,
            r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AA=="},"signature":"AA=="}}"#,
        ];
        const STATEMENTS: &[&str] = &[
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"b099078ac4ecce4035d8b524d35f38ad9d877933a100730658b6d6291608cb36"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1"}"#,
        ];
        const MANIFESTS: &[&str] = &[
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"},"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","size":615,"digest":"sha256:2027ff9323a270aa3981809f9e96652865e4bc4f8676cf7105d41451b4647531"}],"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#,
        ];

        fn keys() -> Vec<(String, PublicKey)> {
            vec![(
                "cosign.pub".to_string(),
                PublicKey::from_pem(KEY.as_bytes()).unwrap(),
            )]
        }

        fn digest() -> Digest {
            "sha256:b099078ac4ecce4035d8b524d35f38ad9d877933a100730658b6d6291608cb36"
                .parse()
                .unwrap()
        }

        #[test]
        fn the_seed_bundle_verifies() {
            assert!(check_bundle(BUNDLES[0].as_bytes(), &digest(), &keys()).is_ok());
        }

        proptest! {
            #![proptest_config(config())]

            /// A mutated bundle is verified or refused.
            #[test]
            fn mutated_bundles_never_panic(bytes in mutated(BUNDLES)) {
                let _ = check_bundle(&bytes, &digest(), &keys());
            }

            /// A mutated in-toto statement inside a well-formed envelope is refused, never a
            /// panic (the signature no longer covers it).
            #[test]
            fn mutated_statements_never_panic(statement in mutated(STATEMENTS)) {
                let wrapped = format!(
                    r#"{{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{{"payload":"{}","payloadType":"application/vnd.in-toto+json","signatures":[{{"sig":"MEQCIGNLNaY+5Fq/gQtnIErgdr6KtgBRBjzLr4jjnmnIvRKYAiBKG1W48KnZvly52E6RmkVRkq/CcYuAfTiWn6Oj2rmfIw=="}}]}}}}"#,
                    base64::engine::general_purpose::STANDARD.encode(&statement)
                );
                let _ = check_bundle(wrapped.as_bytes(), &digest(), &keys());
            }

            /// A mutated referrer manifest names its bundle layer or is refused.
            #[test]
            fn mutated_bundle_manifests_never_panic(bytes in mutated(MANIFESTS)) {
                let _ = bundle_layer(&bytes);
            }
        }
    }
}
