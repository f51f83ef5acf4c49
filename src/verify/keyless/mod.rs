//! Keyless cosign verification, offline, against a Sigstore trusted root (`trusted_root.json`,
//! [`trusted_root`]): a signature counts when
//!
//! 1. it names the verified digest (a bundle's in-toto statement, or a `.sig` simple-signing
//!    payload) and the Fulcio leaf certificate's key verifies it;
//! 2. the certificate's identity is accepted by `matchOIDCIdentity` ([`identity`]);
//! 3. a Rekor entry for it ([`tlog`]) is vouched for by a Rekor key of the trusted root: a
//!    signed entry timestamp (required, it makes the integrated time trustworthy) and the
//!    inclusion proof with its signed checkpoint (required in bundles after v0.1, as the
//!    bundle specification and sigstore-go want; a `.sig` Rekor bundle has none); the entry's
//!    body logs this payload, signature and certificate;
//! 4. the certificate chains to a Fulcio authority of the trusted root with the code-signing
//!    usage, every certificate valid at the integrated time ([`certificate`], webpki);
//! 5. one of its embedded SCTs is signed by a CT log of the trusted root over the
//!    precertificate ([`sct`]).
//!
//! Layouts, in Flux's order: Sigstore bundles among the digest's referrers (cosign v3, DSSE
//! envelopes; see [`super::bundle`]), then cosign's v2 `sha256-<hex>.sig` image, whose layers
//! carry the certificate and the Rekor bundle as annotations (see [`super::cosign`]).
//!
//! This is our own module on rustls-webpki and aws-lc-rs rather than the sigstore crate: see
//! ARCHITECTURE.md ("Keyless verification").

pub mod certificate;
pub mod der;
pub mod identity;
pub mod sct;
pub mod tlog;
pub mod trusted_root;

use base64::Engine as _;
use serde::Deserialize;

use super::cosign::SignatureLayer;
use super::keys::PublicKey;
use crate::registry::{Client, Credential, Digest, Repository};
pub use identity::IdentityMatcher;
use trusted_root::LogIdDoc;
pub use trusted_root::{TrustedRoot, TrustedRootError};

/// The layer annotation of a `.sig` signature holding the leaf certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The layer annotation of a `.sig` signature holding the Rekor bundle (JSON).
pub const REKOR_BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// The most transparency-log entries of one signature looked at.
pub const MAX_TLOG_ENTRIES: usize = 10;

/// What keyless verification trusts and accepts.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// The Sigstore deployment's trust material.
    pub root: &'a TrustedRoot,
    /// `matchOIDCIdentity`, compiled; empty accepts any identity.
    pub identities: &'a [IdentityMatcher],
}

/// Who signed, once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The certificate's identities.
    pub identities: Vec<String>,
    /// The OIDC issuer.
    pub issuer: String,
    /// When the transparency log integrated the signature (Unix seconds).
    pub integrated_time: i64,
}

/// A verified keyless signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Who signed.
    pub signer: Signer,
    /// The bundle or `.sig` payload blob.
    pub blob: Digest,
    /// Where it was found.
    pub layout: super::cosign::Layout,
}

/// Why keyless verification failed (Flux's texts; the details are for logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeylessError {
    /// Neither a bundle nor a `.sig` signature exists for the digest.
    #[error("no signatures found")]
    NoSignatures {
        /// What was looked at.
        detail: String,
    },
    /// Signatures exist, none verifies.
    #[error("no matching signatures were found for '{reference}'")]
    NoMatching {
        /// `registry/repository@digest`.
        reference: String,
        /// Why each failed.
        detail: String,
    },
}

impl KeylessError {
    /// The details, for logs.
    pub fn detail(&self) -> &str {
        match self {
            KeylessError::NoSignatures { detail } | KeylessError::NoMatching { detail, .. } => {
                detail
            }
        }
    }
}

/// Verifies `repo@digest` keyless under `policy`: bundles first, then the `.sig` layout; the
/// first signature that verifies wins.
///
/// # Errors
/// [`KeylessError`]: no signature at all, or none that verifies.
pub async fn verify(
    client: &Client,
    credential: &Credential,
    repo: &Repository,
    digest: &Digest,
    policy: Policy<'_>,
) -> Result<Verified, KeylessError> {
    let bundles = super::bundle::search(client, credential, repo, digest, |b| {
        check_bundle(b, digest, policy)
    })
    .await;
    let no_bundle = match bundles {
        Ok((signer, blob)) => {
            return Ok(Verified {
                signer,
                blob,
                layout: super::cosign::Layout::Bundle,
            });
        }
        Err(no) => no,
    };
    let sigs = super::cosign::search(client, credential, repo, digest, |layer, payload| {
        check_signature(layer, payload, policy)
    })
    .await;
    let no_sig = match sigs {
        Ok((signer, blob)) => {
            return Ok(Verified {
                signer,
                blob,
                layout: super::cosign::Layout::SignatureTag,
            });
        }
        Err(no) => no,
    };
    let detail = no_bundle
        .problems
        .iter()
        .chain(&no_sig.problems)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if no_bundle.bundles == 0 && no_sig.signatures == 0 {
        Err(KeylessError::NoSignatures { detail })
    } else {
        Err(KeylessError::NoMatching {
            reference: format!("{repo}@{digest}"),
            detail,
        })
    }
}

/// An integer that protobuf's JSON form may write as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Int {
    Number(i64),
    Text(String),
}

impl Int {
    fn get(&self) -> Result<i64, String> {
        match self {
            Int::Number(n) => Ok(*n),
            Int::Text(s) => s.parse().map_err(|_| format!("invalid integer {s:?}")),
        }
    }
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("{what} is not base64: {e}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleDoc {
    media_type: String,
    verification_material: Material,
}

/// Whether a bundle of `media_type` must carry inclusion proofs: every version after v0.1
/// (the bundle specification; sigstore-go refuses such a bundle without one).
fn proof_required(media_type: &str) -> bool {
    !media_type.ends_with("version=0.1")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    #[serde(default)]
    certificate: Option<RawBytes>,
    #[serde(default)]
    x509_certificate_chain: Option<ChainDoc>,
    #[serde(default)]
    tlog_entries: Vec<TlogDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct ChainDoc {
    #[serde(default)]
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogDoc {
    log_index: Int,
    log_id: LogIdDoc,
    integrated_time: Int,
    #[serde(default)]
    inclusion_promise: Option<PromiseDoc>,
    #[serde(default)]
    inclusion_proof: Option<ProofDoc>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromiseDoc {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProofDoc {
    log_index: Int,
    root_hash: String,
    tree_size: Int,
    #[serde(default)]
    hashes: Vec<String>,
    checkpoint: CheckpointDoc,
}

#[derive(Deserialize)]
struct CheckpointDoc {
    envelope: String,
}

impl TlogDoc {
    fn entry(&self) -> Result<tlog::Entry, String> {
        let proof = self
            .inclusion_proof
            .as_ref()
            .map(|p| {
                Ok::<_, String>(tlog::Proof {
                    log_index: p.log_index.get()?,
                    root_hash: b64(&p.root_hash, "root hash")?,
                    tree_size: p.tree_size.get()?,
                    hashes: p
                        .hashes
                        .iter()
                        .map(|h| b64(h, "proof hash"))
                        .collect::<Result<_, _>>()?,
                    checkpoint: p.checkpoint.envelope.clone(),
                })
            })
            .transpose()?;
        Ok(tlog::Entry {
            body: b64(&self.canonicalized_body, "entry body")?,
            integrated_time: self.integrated_time.get()?,
            log_index: self.log_index.get()?,
            log_id: b64(&self.log_id.key_id, "log id")?,
            set: self
                .inclusion_promise
                .as_ref()
                .map(|p| b64(&p.signed_entry_timestamp, "signed entry timestamp"))
                .transpose()?,
            proof,
        })
    }
}

/// Checks a Sigstore bundle document keyless: who signed it, when it verifies for `digest`
/// under `policy`.
///
/// # Errors
/// A text saying why it does not, for logs.
pub fn check_bundle(bundle: &[u8], digest: &Digest, policy: Policy<'_>) -> Result<Signer, String> {
    let statement = super::bundle::signed_statement(bundle, digest).map_err(|e| e.to_string())?;
    let doc: BundleDoc =
        serde_json::from_slice(bundle).map_err(|e| format!("invalid bundle: {e}"))?;
    let material = doc.verification_material;
    let cert = match (&material.certificate, &material.x509_certificate_chain) {
        (Some(c), _) => &c.raw_bytes,
        (None, Some(chain)) => {
            &chain
                .certificates
                .first()
                .ok_or("an empty certificate chain")?
                .raw_bytes
        }
        (None, None) => return Err("no certificate: not a keyless bundle".into()),
    };
    let leaf = certificate::parse_leaf(&b64(cert, "certificate")?).map_err(|e| e.to_string())?;
    let key = PublicKey::from_spki_der(&leaf.spki).map_err(|e| format!("certificate key: {e}"))?;
    let signature = statement
        .signatures
        .iter()
        .find(|s| key.verifies(&statement.signed, s))
        .ok_or("the certificate's key verifies no envelope signature")?;
    let entries = material
        .tlog_entries
        .iter()
        .take(MAX_TLOG_ENTRIES)
        .map(TlogDoc::entry)
        .collect::<Result<Vec<_>, _>>()?;
    if proof_required(&doc.media_type) && entries.iter().any(|e| e.proof.is_none()) {
        return Err("inclusion proof missing in the bundle".into());
    }
    check_signer(policy, &leaf, &statement.payload, signature, &entries)
}

#[derive(Deserialize)]
struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    set: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorPayload {
    body: String,
    integrated_time: i64,
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return Err(format!("invalid hex {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("invalid hex {s:?}")))
        .collect()
}

/// Checks a cosign v2 `.sig` signature layer keyless (its payload already checked to name the
/// digest): who signed it, when it verifies under `policy`.
///
/// # Errors
/// A text saying why it does not, for logs.
pub fn check_signature(
    layer: &SignatureLayer,
    payload: &[u8],
    policy: Policy<'_>,
) -> Result<Signer, String> {
    let annotations = &layer.payload.annotations;
    let cert = annotations
        .get(CERTIFICATE_ANNOTATION)
        .ok_or("no certificate: not a keyless signature")?;
    let cert = pem::parse(cert.as_bytes()).map_err(|e| format!("certificate: {e}"))?;
    let leaf = certificate::parse_leaf(cert.contents()).map_err(|e| e.to_string())?;
    let key = PublicKey::from_spki_der(&leaf.spki).map_err(|e| format!("certificate key: {e}"))?;
    if !key.verifies(payload, &layer.signature) {
        return Err("the certificate's key does not verify the signature".into());
    }
    let bundle = annotations
        .get(REKOR_BUNDLE_ANNOTATION)
        .ok_or("no transparency-log bundle")?;
    let bundle: RekorBundle =
        serde_json::from_str(bundle).map_err(|e| format!("invalid Rekor bundle: {e}"))?;
    let entry = tlog::Entry {
        body: b64(&bundle.payload.body, "entry body")?,
        integrated_time: bundle.payload.integrated_time,
        log_index: bundle.payload.log_index,
        log_id: unhex(&bundle.payload.log_id)?,
        set: Some(b64(&bundle.set, "signed entry timestamp")?),
        proof: None,
    };
    check_signer(policy, &leaf, payload, &layer.signature, &[entry])
}

/// The checks both layouts share, once the leaf's key verified `signature` over `payload`:
/// identity, transparency log, chain at the integrated time, SCT.
fn check_signer(
    policy: Policy<'_>,
    leaf: &certificate::Leaf,
    payload: &[u8],
    signature: &[u8],
    entries: &[tlog::Entry],
) -> Result<Signer, String> {
    let issuer = leaf.oidc_issuer.clone().unwrap_or_default();
    if !identity::accepted(policy.identities, &issuer, &leaf.identities) {
        return Err(format!(
            "identity {:?} of issuer {issuer:?} matches no matchOIDCIdentity entry",
            leaf.identities
        ));
    }
    if entries.is_empty() {
        return Err("no transparency-log entry".into());
    }
    let mut problems = Vec::new();
    let mut time = None;
    for entry in entries {
        let checked = tlog::verify_entry(policy.root, entry)
            .and_then(|t| tlog::check_body(&entry.body, payload, signature, &leaf.der).map(|()| t));
        match checked {
            Ok(t) => {
                time = Some(t);
                break;
            }
            Err(e) => problems.push(e),
        }
    }
    let time = time.ok_or_else(|| format!("transparency log: {}", problems.join(", ")))?;
    let issuer_spki = certificate::verify_chain(leaf, &policy.root.authorities, time)
        .map_err(|e| e.to_string())?;
    let scts = leaf
        .sct_list
        .as_ref()
        .ok_or("the certificate has no embedded SCT")?;
    sct::verify(policy.root, scts, &issuer_spki, &leaf.precert_tbs)?;
    Ok(Signer {
        identities: leaf.identities.clone(),
        issuer,
        integrated_time: time,
    })
}

#[cfg(test)]
mod tests;
