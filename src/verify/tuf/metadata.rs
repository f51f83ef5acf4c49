//! TUF metadata (specification v1.0): the four top-level roles' documents, the canonical JSON
//! their signatures cover, and the threshold check of those signatures.
//!
//! A document is read in two steps: the envelope (`signatures`, `signed`) as a JSON value, so
//! that the canonical bytes of `signed` are computed from what was received, then `signed`
//! typed. Keys Sigstore's repositories use are understood: `ecdsa` / `ecdsa-sha2-nistp256`
//! (PEM SubjectPublicKeyInfo, ASN.1 signatures over SHA-256) and `ed25519` (hex). A key of
//! another type never counts towards a threshold.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest as _, Sha256, Sha512};

use crate::verify::keys::{KeyKind, PublicKey};

/// Why metadata was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// Not a TUF document of the expected shape.
    #[error("invalid {role} metadata: {reason}")]
    Malformed {
        /// The role whose document it is.
        role: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Fewer valid signatures than the role's threshold.
    #[error(
        "{role} metadata has {valid} valid signatures of the {threshold} its {by} role requires"
    )]
    Threshold {
        /// The signed role.
        role: &'static str,
        /// Whose keys counted (`root` for the root chain's old and new roots too).
        by: String,
        /// Distinct keys with a valid signature.
        valid: usize,
        /// Signatures required.
        threshold: u64,
    },
}

/// The canonical JSON form (OLPC, as securesystemslib and go-tuf write it) of `value`: keys
/// sorted, no whitespace, strings escaping only `"` and `\`, integers only.
///
/// # Errors
/// A floating-point number, which canonical JSON does not have.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    write_canonical(value, &mut out)?;
    Ok(out)
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                return Err(format!(
                    "canonical JSON has no floating-point numbers ({n})"
                ));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_canonical(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for byte in s.bytes() {
        if byte == b'"' || byte == b'\\' {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(b'"');
}

/// A key as root metadata lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Key {
    /// `ecdsa`, `ecdsa-sha2-nistp256`, `ed25519`, …
    pub keytype: String,
    /// The signature scheme.
    pub scheme: String,
    /// The public value.
    pub keyval: KeyVal,
}

/// A key's public value.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyVal {
    /// PEM (ECDSA) or hex (Ed25519).
    pub public: String,
}

impl Key {
    /// The key, when its type and scheme are ones this client verifies with.
    fn public_key(&self) -> Option<PublicKey> {
        match (self.keytype.as_str(), self.scheme.as_str()) {
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                let key = PublicKey::from_pem(self.keyval.public.as_bytes()).ok()?;
                (key.kind() == KeyKind::EcdsaP256).then_some(key)
            }
            ("ed25519", "ed25519") => {
                let raw = decode_hex(&self.keyval.public)?;
                if raw.len() != 32 {
                    return None;
                }
                // The raw key wrapped in its SubjectPublicKeyInfo (RFC 8410).
                let mut der = vec![
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                ];
                der.extend_from_slice(&raw);
                PublicKey::from_spki_der(&der).ok()
            }
            _ => None,
        }
    }
}

/// The keys of a role and how many of them must sign.
#[derive(Debug, Clone, Deserialize)]
pub struct Role {
    /// The role's key ids.
    pub keyids: Vec<String>,
    /// Signatures required.
    pub threshold: u64,
}

/// `root.json`'s `signed`.
#[derive(Debug, Clone, Deserialize)]
pub struct Root {
    /// The version.
    pub version: u64,
    /// The expiry (RFC 3339).
    pub expires: String,
    /// Every key the roles name.
    pub keys: BTreeMap<String, Key>,
    /// `root`, `timestamp`, `snapshot`, `targets`.
    pub roles: BTreeMap<String, Role>,
    /// Whether snapshot, targets and target files are fetched under versioned or hashed names.
    #[serde(default)]
    pub consistent_snapshot: bool,
}

/// What timestamp or snapshot metadata says of another metadata file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MetaFile {
    /// Its version.
    pub version: u64,
    /// Its length in bytes, if given.
    #[serde(default)]
    pub length: Option<u64>,
    /// Its hashes (`sha256`, `sha512`), if given.
    #[serde(default)]
    pub hashes: Option<BTreeMap<String, String>>,
}

/// `timestamp.json`'s or `snapshot.json`'s `signed`.
#[derive(Debug, Clone, Deserialize)]
pub struct MetaList {
    /// The version.
    pub version: u64,
    /// The expiry (RFC 3339).
    pub expires: String,
    /// The files it vouches for.
    pub meta: BTreeMap<String, MetaFile>,
}

/// A target file as targets metadata describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct TargetFile {
    /// Its length in bytes.
    pub length: u64,
    /// Its hashes.
    pub hashes: BTreeMap<String, String>,
}

/// `targets.json`'s `signed` (delegations are not followed: Sigstore's trusted root is a
/// top-level target).
#[derive(Debug, Clone, Deserialize)]
pub struct Targets {
    /// The version.
    pub version: u64,
    /// The expiry (RFC 3339).
    pub expires: String,
    /// The targets.
    pub targets: BTreeMap<String, TargetFile>,
}

/// A received document: its typed `signed`, the canonical bytes the signatures cover, and the
/// signatures (key id, signature bytes).
#[derive(Debug, Clone)]
pub struct Signed<T> {
    /// The typed content.
    pub signed: T,
    canonical: Vec<u8>,
    signatures: Vec<(String, Vec<u8>)>,
}

#[derive(Deserialize)]
struct Envelope {
    signatures: Vec<SignatureDoc>,
    signed: Value,
}

#[derive(Deserialize)]
struct SignatureDoc {
    keyid: String,
    sig: String,
}

/// Reads `bytes` as the document of `role` (`_type` must say so).
///
/// # Errors
/// [`MetadataError::Malformed`] for anything that is not such a document.
pub fn parse<T: DeserializeOwned>(
    role: &'static str,
    bytes: &[u8],
) -> Result<Signed<T>, MetadataError> {
    let malformed = |reason: String| MetadataError::Malformed { role, reason };
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let kind = envelope.signed.get("_type").and_then(Value::as_str);
    if kind != Some(role) {
        return Err(malformed(format!("_type is {kind:?}, not {role:?}")));
    }
    if let Some(spec) = envelope.signed.get("spec_version").and_then(Value::as_str)
        && spec.split('.').next() != Some("1")
    {
        return Err(malformed(format!("unsupported spec_version {spec:?}")));
    }
    let canonical = canonical_json(&envelope.signed).map_err(malformed)?;
    let signed = T::deserialize(envelope.signed).map_err(|e| malformed(e.to_string()))?;
    let signatures = envelope
        .signatures
        .into_iter()
        // A signature that is not hex cannot be valid; it is simply not counted.
        .filter_map(|s| decode_hex(&s.sig).map(|sig| (s.keyid, sig)))
        .collect();
    Ok(Signed {
        signed,
        canonical,
        signatures,
    })
}

impl<T> Signed<T> {
    /// Checks that `role` of `root` signed this document with at least its threshold of
    /// distinct keys.
    ///
    /// # Errors
    /// [`MetadataError::Threshold`] when it did not (or `root` has no such role).
    pub fn verify_by(
        &self,
        signed_role: &'static str,
        root: &Root,
        role: &str,
    ) -> Result<(), MetadataError> {
        let Some(keys) = root.roles.get(role) else {
            return Err(MetadataError::Malformed {
                role: "root",
                reason: format!("no {role:?} role"),
            });
        };
        let allowed: BTreeSet<&str> = keys.keyids.iter().map(String::as_str).collect();
        let mut valid = BTreeSet::new();
        for (keyid, sig) in &self.signatures {
            if !allowed.contains(keyid.as_str()) || valid.contains(keyid.as_str()) {
                continue;
            }
            let Some(key) = root.keys.get(keyid).and_then(Key::public_key) else {
                continue;
            };
            if key.verifies(&self.canonical, sig) {
                valid.insert(keyid.as_str());
            }
        }
        // A threshold of zero would let anything through.
        if keys.threshold == 0 || (valid.len() as u64) < keys.threshold {
            return Err(MetadataError::Threshold {
                role: signed_role,
                by: format!("version {} root's {role}", root.version),
                valid: valid.len(),
                threshold: keys.threshold,
            });
        }
        Ok(())
    }
}

/// Whether `expires` (RFC 3339) is at or before `now`; an unreadable date counts as expired.
pub fn expired(expires: &str, now: Timestamp) -> bool {
    expires.parse::<Timestamp>().map_or(true, |at| at <= now)
}

/// Checks `bytes` against a length and hashes (`sha256`, `sha512`; others are ignored, but
/// at least one must be known when any is given).
///
/// # Errors
/// A text saying which check failed.
pub fn check_file(
    bytes: &[u8],
    length: Option<u64>,
    hashes: Option<&BTreeMap<String, String>>,
) -> Result<(), String> {
    if let Some(length) = length
        && bytes.len() as u64 != length
    {
        return Err(format!("length {} instead of {length}", bytes.len()));
    }
    let Some(hashes) = hashes else {
        return Ok(());
    };
    let mut known = 0;
    for (alg, expected) in hashes {
        let actual = match alg.as_str() {
            "sha256" => encode_hex(&Sha256::digest(bytes)),
            "sha512" => encode_hex(&Sha512::digest(bytes)),
            _ => continue,
        };
        known += 1;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(format!("{alg} {actual} instead of {expected}"));
        }
    }
    if known == 0 && !hashes.is_empty() {
        return Err("no supported hash algorithm".into());
    }
    Ok(())
}

/// Lower-case hex.
pub fn encode_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Hex (either case) to bytes; `None` for anything else.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_escapes_only_quote_and_backslash() {
        let value: Value =
            serde_json::from_str(r#"{"b": [1, -2, true, null], "a": "x\"y\\z\n\u00e9", "A": {}}"#)
                .unwrap();
        assert_eq!(
            canonical_json(&value).unwrap(),
            "{\"A\":{},\"a\":\"x\\\"y\\\\z\n\u{e9}\",\"b\":[1,-2,true,null]}".as_bytes()
        );
        assert!(canonical_json(&serde_json::json!({"f": 1.5})).is_err());
    }

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(decode_hex("00fFa1"), Some(vec![0, 255, 161]));
        assert_eq!(encode_hex(&[0, 255, 161]), "00ffa1");
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é1"), None);
    }

    #[test]
    fn files_are_checked_by_length_and_every_known_hash() {
        let data = b"trusted";
        let sha256 = encode_hex(&Sha256::digest(data));
        let hashes = |v: &str| BTreeMap::from([("sha256".to_string(), v.to_string())]);
        assert!(check_file(data, Some(7), Some(&hashes(&sha256))).is_ok());
        assert!(
            check_file(data, Some(8), None)
                .unwrap_err()
                .contains("length 7")
        );
        assert!(check_file(data, None, Some(&hashes("00"))).is_err());
        let unknown = BTreeMap::from([("md5".to_string(), "x".to_string())]);
        assert!(check_file(data, None, Some(&unknown)).is_err());
    }

    #[test]
    fn expiry_is_strict_and_unreadable_dates_are_expired() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert!(!expired("2026-01-01T00:00:01Z", now));
        assert!(expired("2026-01-01T00:00:00Z", now));
        assert!(expired("yesterday", now));
    }

    #[test]
    fn the_public_good_root_verifies_itself() {
        let root: Signed<Root> = parse("root", super::super::PUBLIC_GOOD_ROOT).unwrap();
        root.verify_by("root", &root.signed, "root").unwrap();
        assert!(root.signed.consistent_snapshot);
    }

    #[test]
    fn a_document_of_another_type_or_shape_is_refused() {
        let err = parse::<Root>("root", br#"{"signatures":[],"signed":{"_type":"targets"}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("_type"), "{err}");
        assert!(parse::<Root>("root", b"[]").is_err());
        assert!(parse::<Root>("root", br#"{"signatures":[],"signed":{"_type":"root"}}"#).is_err());
    }
}
