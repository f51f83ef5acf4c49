//! Sigstore's `trusted_root.json` (media type `application/vnd.dev.sigstore.trustedroot+json`,
//! protobuf-specs `TrustedRoot` in its JSON form): the Fulcio certificate authorities, the
//! Rekor transparency logs and the CT logs keyless verification trusts, each with its validity
//! window. Timestamp authorities are read past (not used: see the README).

use base64::Engine as _;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::verify::keys::PublicKey;

/// The trust material of one Sigstore deployment.
#[derive(Debug)]
pub struct TrustedRoot {
    /// Fulcio certificate authorities.
    pub authorities: Vec<CertificateAuthority>,
    /// Rekor transparency logs.
    pub tlogs: Vec<LogKey>,
    /// Certificate transparency logs.
    pub ctlogs: Vec<LogKey>,
}

/// A window of validity in Unix seconds; an open end is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Start.
    pub start: Option<i64>,
    /// End.
    pub end: Option<i64>,
}

impl Validity {
    /// Whether `time` (Unix seconds) is inside the window.
    pub fn contains(&self, time: i64) -> bool {
        self.start.is_none_or(|s| s <= time) && self.end.is_none_or(|e| time <= e)
    }
}

/// A certificate authority: its chain (DER, intermediates first, root last) and validity.
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    /// The chain, as the trusted root orders it (leafmost first, root last).
    pub chain: Vec<Vec<u8>>,
    /// When it issued certificates.
    pub valid_for: Validity,
}

impl CertificateAuthority {
    /// Whether the authority issued certificates at `time` (Unix seconds).
    pub fn valid_at(&self, time: i64) -> bool {
        self.valid_for.contains(time)
    }
}

/// A log's key: its id (SHA-256 of the key's DER), the key, its validity, its URL.
#[derive(Debug)]
pub struct LogKey {
    /// The log id.
    pub id: Vec<u8>,
    /// The key's SubjectPublicKeyInfo, DER.
    pub der: Vec<u8>,
    /// The public key.
    pub key: PublicKey,
    /// When the key was in use.
    pub valid_for: Validity,
    /// The log's base URL (may be empty).
    pub base_url: String,
}

/// Why a trusted root cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustedRootError {
    /// Not JSON of the trusted root's shape.
    #[error("invalid trusted root: {0}")]
    Invalid(String),
}

fn invalid(what: impl Into<String>) -> TrustedRootError {
    TrustedRootError::Invalid(what.into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootDoc {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<LogDoc>,
    #[serde(default)]
    certificate_authorities: Vec<CaDoc>,
    #[serde(default)]
    ctlogs: Vec<LogDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogDoc {
    #[serde(default)]
    base_url: String,
    public_key: KeyDoc,
    log_id: LogIdDoc,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyDoc {
    #[serde(default)]
    raw_bytes: Option<String>,
    #[serde(default)]
    valid_for: Option<ValidForDoc>,
}

/// A log's id as the trusted root and bundles spell it (`logId.keyId`, base64).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LogIdDoc {
    pub(super) key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaDoc {
    cert_chain: ChainDoc,
    #[serde(default)]
    valid_for: Option<ValidForDoc>,
}

#[derive(Deserialize)]
struct ChainDoc {
    #[serde(default)]
    certificates: Vec<RawDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDoc {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct ValidForDoc {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, TrustedRootError> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| invalid(format!("{what}: {e}")))
}

fn time(s: Option<&str>, what: &str) -> Result<Option<i64>, TrustedRootError> {
    s.map(|s| {
        s.parse::<Timestamp>()
            .map(|t| t.as_second())
            .map_err(|e| invalid(format!("{what}: {e}")))
    })
    .transpose()
}

fn validity(doc: Option<&ValidForDoc>, what: &str) -> Result<Validity, TrustedRootError> {
    Ok(Validity {
        start: time(doc.and_then(|d| d.start.as_deref()), what)?,
        end: time(doc.and_then(|d| d.end.as_deref()), what)?,
    })
}

fn log(doc: &LogDoc, kind: &str) -> Result<LogKey, TrustedRootError> {
    let raw = doc
        .public_key
        .raw_bytes
        .as_deref()
        .ok_or_else(|| invalid(format!("{kind} without a public key")))?;
    let der = b64(raw, kind)?;
    let key =
        PublicKey::from_spki_der(&der).map_err(|e| invalid(format!("{kind} public key: {e}")))?;
    Ok(LogKey {
        id: b64(&doc.log_id.key_id, kind)?,
        der,
        key,
        valid_for: validity(doc.public_key.valid_for.as_ref(), kind)?,
        base_url: doc.base_url.clone(),
    })
}

impl TrustedRoot {
    /// Reads a `trusted_root.json`.
    ///
    /// # Errors
    /// [`TrustedRootError`] when it is not a trusted root, a key or certificate does not decode,
    /// or it has no certificate authority, transparency log or CT log.
    pub fn from_json(json: &[u8]) -> Result<TrustedRoot, TrustedRootError> {
        let doc: RootDoc = serde_json::from_slice(json).map_err(|e| invalid(e.to_string()))?;
        if !doc
            .media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(invalid(format!("unknown media type {:?}", doc.media_type)));
        }
        let authorities = doc
            .certificate_authorities
            .iter()
            .map(|ca| {
                let chain = ca
                    .cert_chain
                    .certificates
                    .iter()
                    .map(|c| b64(&c.raw_bytes, "certificate authority"))
                    .collect::<Result<Vec<_>, _>>()?;
                if chain.is_empty() {
                    return Err(invalid("certificate authority without certificates"));
                }
                Ok(CertificateAuthority {
                    chain,
                    valid_for: validity(ca.valid_for.as_ref(), "certificate authority")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tlogs = doc
            .tlogs
            .iter()
            .map(|l| log(l, "transparency log"))
            .collect::<Result<Vec<_>, _>>()?;
        let ctlogs = doc
            .ctlogs
            .iter()
            .map(|l| log(l, "CT log"))
            .collect::<Result<Vec<_>, _>>()?;
        if authorities.is_empty() {
            return Err(invalid("no certificate authority"));
        }
        if ctlogs.is_empty() {
            return Err(invalid("no CT log"));
        }
        // As Flux: the Rekor URL is the first transparency log with a base URL.
        if !tlogs.iter().any(|l| !l.base_url.is_empty()) {
            return Err(invalid("no transparency log with a base URL"));
        }
        Ok(TrustedRoot {
            authorities,
            tlogs,
            ctlogs,
        })
    }

    /// The Rekor log with `id` whose key was valid at `time` (Unix seconds).
    pub fn tlog(&self, id: &[u8], time: i64) -> Option<&LogKey> {
        self.tlogs
            .iter()
            .find(|l| l.id == id && l.valid_for.contains(time))
    }

    /// The CT log with `id` whose key was valid at `time` (Unix seconds).
    pub fn ctlog(&self, id: &[u8], time: i64) -> Option<&LogKey> {
        self.ctlogs
            .iter()
            .find(|l| l.id == id && l.valid_for.contains(time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trusted root written by testbed/go/sigstore-testca (sigstore-go's `MarshalJSON`).
    pub(crate) const TESTCA_ROOT: &str = include_str!("testdata/trusted_root.json");

    #[test]
    fn a_trusted_root_from_sigstore_go_reads_whole() {
        let root = TrustedRoot::from_json(TESTCA_ROOT.as_bytes()).unwrap();
        assert_eq!(root.authorities.len(), 1);
        assert_eq!(root.authorities[0].chain.len(), 2);
        assert_eq!((root.tlogs.len(), root.ctlogs.len()), (1, 1));
        assert_eq!(root.tlogs[0].base_url, "https://rekor.testca.local");
        assert_eq!(root.tlogs[0].id.len(), 32);
        let start = root.tlogs[0].valid_for.start.unwrap();
        assert!(root.tlog(&root.tlogs[0].id, start).is_some());
        assert!(root.tlog(&root.tlogs[0].id, start - 1).is_none());
        assert!(root.ctlog(&root.tlogs[0].id, start).is_none());
    }

    #[test]
    fn a_root_missing_a_part_is_refused() {
        let doc: serde_json::Value = serde_json::from_str(TESTCA_ROOT).unwrap();
        for (field, text) in [
            ("certificateAuthorities", "no certificate authority"),
            ("ctlogs", "no CT log"),
            ("tlogs", "no transparency log with a base URL"),
        ] {
            let mut d = doc.clone();
            d[field] = serde_json::json!([]);
            let e = TrustedRoot::from_json(d.to_string().as_bytes()).unwrap_err();
            assert_eq!(e, invalid(text));
        }
        let mut d = doc.clone();
        d["mediaType"] = "application/json".into();
        assert!(TrustedRoot::from_json(d.to_string().as_bytes()).is_err());
        assert!(TrustedRoot::from_json(b"{}").is_err());
    }

    mod properties {
        use crate::mutation::{config, mutated};
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(config())]

            /// A mutated trusted root is read or refused.
            #[test]
            fn mutated_trusted_roots_never_panic(json in mutated(&[super::TESTCA_ROOT])) {
                let _ = super::super::TrustedRoot::from_json(&json);
            }
        }
    }
}
