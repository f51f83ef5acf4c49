//! Rekor transparency-log entries as a bundle or a cosign signature carries them, checked
//! offline against the trusted root's Rekor keys:
//!
//! - the signed entry timestamp (SET, the inclusion promise): the log's signature over the
//!   canonical JSON of the entry's body, integrated time, log id and index. It is required:
//!   it is what makes the integrated time, at which the certificate must be valid, trustworthy;
//! - the inclusion proof, when present: the entry's leaf hash reaches the proof's root hash
//!   (RFC 6962 / RFC 9162 2.1.3.2), and the checkpoint (a signed note) naming that root and
//!   tree size is signed by the same log;
//! - the body: a `hashedrekord` 0.0.1 or `dsse` 0.0.1 entry whose hash, signature and
//!   certificate are the artifact's.

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::trusted_root::{LogKey, TrustedRoot};

/// One transparency-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The canonicalized entry body (JSON).
    pub body: Vec<u8>,
    /// When the log integrated it, Unix seconds.
    pub integrated_time: i64,
    /// Its index in the log.
    pub log_index: i64,
    /// The log's id.
    pub log_id: Vec<u8>,
    /// The signed entry timestamp.
    pub set: Option<Vec<u8>>,
    /// The inclusion proof.
    pub proof: Option<Proof>,
}

/// An inclusion proof with its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The leaf's index in the tree.
    pub log_index: i64,
    /// The tree's root hash.
    pub root_hash: Vec<u8>,
    /// The tree's size.
    pub tree_size: i64,
    /// The audit path.
    pub hashes: Vec<Vec<u8>>,
    /// The checkpoint (signed note).
    pub checkpoint: String,
}

/// The canonical JSON the SET signs (keys in lexical order; base64 and hex need no escaping).
pub fn set_payload(entry: &Entry) -> Vec<u8> {
    format!(
        r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
        base64::engine::general_purpose::STANDARD.encode(&entry.body),
        entry.integrated_time,
        hex(&entry.log_id),
        entry.log_index
    )
    .into_bytes()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn node(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// RFC 6962's leaf hash.
pub fn leaf_hash(body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(body);
    h.finalize().into()
}

/// Whether `proof` takes the leaf at `index` of a tree of `size` to `root` (RFC 9162 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    proof: &[Vec<u8>],
    root: &[u8],
) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r.as_slice() == root
}

/// A checkpoint's signed content: (origin, tree size, root hash).
///
/// # Errors
/// A text saying why, when no signature line of `note` verifies with `log`'s key or the note
/// is malformed.
pub fn verify_checkpoint(note: &str, log: &LogKey) -> Result<(String, u64, Vec<u8>), String> {
    let (text, signatures) = note
        .split_once("\n\n")
        .ok_or("checkpoint without signatures")?;
    let signed = format!("{text}\n");
    let hint = &Sha256::digest(&log.der)[..4];
    let verified = signatures.lines().any(|line| {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return false;
        };
        let Some((_, b64)) = rest.rsplit_once(' ') else {
            return false;
        };
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            return false;
        };
        sig.len() > 4 && &sig[..4] == hint && log.key.verifies(signed.as_bytes(), &sig[4..])
    });
    if !verified {
        return Err("the checkpoint is not signed by the log".into());
    }
    let mut lines = text.lines();
    let origin = lines.next().unwrap_or_default().to_string();
    let size = lines
        .next()
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or("checkpoint without a tree size")?;
    let root = lines
        .next()
        .and_then(|l| base64::engine::general_purpose::STANDARD.decode(l).ok())
        .ok_or("checkpoint without a root hash")?;
    Ok((origin, size, root))
}

/// Checks `entry` against the Rekor logs of `root`: its log is known and was valid at the
/// integrated time, the SET verifies, and the inclusion proof, when present, verifies with a
/// checkpoint signed by that log. The integrated time, once verified.
///
/// # Errors
/// A text saying why, for logs.
pub fn verify_entry(root: &TrustedRoot, entry: &Entry) -> Result<i64, String> {
    let log = root
        .tlog(&entry.log_id, entry.integrated_time)
        .ok_or_else(|| format!("unknown transparency log {}", hex(&entry.log_id)))?;
    let set = entry
        .set
        .as_ref()
        .ok_or("no signed entry timestamp (inclusion promise)")?;
    if !log.key.verifies(&set_payload(entry), set) {
        return Err("the signed entry timestamp does not verify".into());
    }
    if let Some(p) = &entry.proof {
        let (index, size) = (
            u64::try_from(p.log_index).map_err(|_| "negative proof index")?,
            u64::try_from(p.tree_size).map_err(|_| "negative tree size")?,
        );
        if !verify_inclusion(index, size, leaf_hash(&entry.body), &p.hashes, &p.root_hash) {
            return Err("the inclusion proof does not verify".into());
        }
        let (_, cp_size, cp_root) = verify_checkpoint(&p.checkpoint, log)?;
        if cp_size != size || cp_root != p.root_hash {
            return Err("the checkpoint names another tree".into());
        }
    }
    Ok(entry.integrated_time)
}

#[derive(Deserialize)]
struct Body {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    spec: serde_json::Value,
}

#[derive(Deserialize)]
struct HashedRekord {
    data: HashedData,
    signature: HashedSignature,
}

#[derive(Deserialize)]
struct HashedData {
    hash: Hash,
}

#[derive(Deserialize)]
struct Hash {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
struct HashedSignature {
    content: String,
    #[serde(rename = "publicKey")]
    public_key: Content,
}

#[derive(Deserialize)]
struct Content {
    content: String,
}

#[derive(Deserialize)]
struct Dsse {
    #[serde(rename = "payloadHash")]
    payload_hash: Hash,
    signatures: Vec<DsseSignature>,
}

#[derive(Deserialize)]
struct DsseSignature {
    signature: String,
    verifier: String,
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Whether a base64 PEM certificate is `leaf` (DER).
fn same_certificate(b64_pem: &str, leaf: &[u8]) -> bool {
    b64(b64_pem)
        .and_then(|p| pem::parse(p).ok())
        .is_some_and(|p| p.contents() == leaf)
}

/// Checks that an entry `body` logs this artifact: the SHA-256 of the signed payload, the
/// signature, and the certificate `leaf` (DER).
///
/// # Errors
/// A text saying what differs, or that the kind is not one this build reads.
pub fn check_body(
    body: &[u8],
    payload: &[u8],
    signature: &[u8],
    leaf: &[u8],
) -> Result<(), String> {
    let b: Body = serde_json::from_slice(body).map_err(|e| format!("invalid entry body: {e}"))?;
    let digest = hex(&Sha256::digest(payload));
    let hash_ok = |h: &Hash| h.algorithm == "sha256" && h.value.eq_ignore_ascii_case(&digest);
    match (b.kind.as_str(), b.api_version.as_str()) {
        ("hashedrekord", "0.0.1") => {
            let s: HashedRekord =
                serde_json::from_value(b.spec).map_err(|e| format!("invalid hashedrekord: {e}"))?;
            if !hash_ok(&s.data.hash) {
                return Err("the log entry is for another payload".into());
            }
            if b64(&s.signature.content).as_deref() != Some(signature)
                || !same_certificate(&s.signature.public_key.content, leaf)
            {
                return Err("the log entry is for another signature or certificate".into());
            }
            Ok(())
        }
        ("dsse", "0.0.1") => {
            let s: Dsse =
                serde_json::from_value(b.spec).map_err(|e| format!("invalid dsse entry: {e}"))?;
            if !hash_ok(&s.payload_hash) {
                return Err("the log entry is for another payload".into());
            }
            let logged = s.signatures.iter().any(|x| {
                b64(&x.signature).as_deref() == Some(signature)
                    && same_certificate(&x.verifier, leaf)
            });
            if !logged {
                return Err("the log entry is for another signature or certificate".into());
            }
            Ok(())
        }
        (kind, version) => Err(format!("unsupported log entry kind {kind} {version}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> [u8; 32] {
        leaf_hash(s.as_bytes())
    }

    /// The root of a tree of leaves, RFC 6962's way (largest power of two below n on the left).
    fn tree_root(leaves: &[[u8; 32]]) -> [u8; 32] {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = leaves.len().next_power_of_two() / 2;
        node(&tree_root(&leaves[..k]), &tree_root(&leaves[k..]))
    }

    fn path(leaves: &[[u8; 32]], index: usize) -> Vec<Vec<u8>> {
        if leaves.len() == 1 {
            return vec![];
        }
        let k = leaves.len().next_power_of_two() / 2;
        if index < k {
            let mut p = path(&leaves[..k], index);
            p.push(tree_root(&leaves[k..]).to_vec());
            p
        } else {
            let mut p = path(&leaves[k..], index - k);
            p.push(tree_root(&leaves[..k]).to_vec());
            p
        }
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_of_every_small_tree() {
        for n in 1..=17usize {
            let leaves: Vec<_> = (0..n).map(|i| h(&i.to_string())).collect();
            let root = tree_root(&leaves);
            for i in 0..n {
                let p = path(&leaves, i);
                assert!(
                    verify_inclusion(i as u64, n as u64, leaves[i], &p, &root),
                    "{i}/{n}"
                );
                if n > 1 {
                    let other = (i + 1) % n;
                    assert!(!verify_inclusion(
                        other as u64,
                        n as u64,
                        leaves[i],
                        &p,
                        &root
                    ));
                    assert!(!verify_inclusion(i as u64, n as u64, h("x"), &p, &root));
                }
            }
        }
        assert!(!verify_inclusion(1, 1, h("0"), &[], &h("0")));
    }

    #[test]
    fn the_test_ca_s_checkpoint_verifies_with_its_log_key_only() {
        let root = crate::verify::keyless::TrustedRoot::from_json(include_bytes!(
            "testdata/trusted_root.json"
        ))
        .unwrap();
        let (origin, size, hash) =
            verify_checkpoint(properties::CHECKPOINT, &root.tlogs[0]).unwrap();
        assert_eq!(
            (origin.as_str(), size, hash.len()),
            ("rekor.testca.local - 1", 2, 32)
        );
        let other = crate::verify::keyless::TrustedRoot::from_json(include_bytes!(
            "testdata/other_root.json"
        ))
        .unwrap();
        assert!(verify_checkpoint(properties::CHECKPOINT, &other.tlogs[0]).is_err());
        let edited = properties::CHECKPOINT.replacen("\n2\n", "\n3\n", 1);
        assert!(verify_checkpoint(&edited, &root.tlogs[0]).is_err());
    }

    #[test]
    fn the_set_payload_is_canonical_json() {
        let e = Entry {
            body: b"{}".to_vec(),
            integrated_time: 7,
            log_index: 3,
            log_id: vec![0xab, 0x01],
            set: None,
            proof: None,
        };
        assert_eq!(
            String::from_utf8(set_payload(&e)).unwrap(),
            r#"{"body":"e30=","integratedTime":7,"logID":"ab01","logIndex":3}"#
        );
    }

    mod properties {
        use proptest::prelude::*;

        /// The checkpoint of `testdata/bundle.json`'s entry.
        pub(super) const CHECKPOINT: &str = "rekor.testca.local - 1\n2\nn4EPo7NpF4M+6fEtnRp7LZCLHPwL4+DQ24wfEjahZ8k=\n\n\u{2014} rekor.testca.local L0uGfzBFAiBML2ONteGwAQZbwWtkqQl1A6sujSpFUR5AYhBgJ18lBQIhAJE7bM1j+CPKJY1I2Anwb2jKqrVHODELrn3sEeNqG573\n";

        const BODIES: &[&str] = &[
            r#"{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha256","value":"00"}},"signature":{"content":"AA==","publicKey":{"content":"AA=="}}}}"#,
            r#"{"apiVersion":"0.0.1","kind":"dsse","spec":{"envelopeHash":{"algorithm":"sha256","value":"00"},"payloadHash":{"algorithm":"sha256","value":"00"},"signatures":[{"signature":"AA==","verifier":"AA=="}]}}"#,
        ];

        proptest! {
            #![proptest_config(crate::mutation::config())]

            /// Mutated entry bodies are matched or refused.
            #[test]
            fn mutated_bodies_never_panic(body in crate::mutation::mutated(BODIES)) {
                let _ = super::super::check_body(&body, b"p", b"s", b"c");
            }

            /// A mutated checkpoint (the real one of the test CA's bundle) is read or refused.
            #[test]
            fn mutated_checkpoints_never_panic(note in crate::mutation::mutated_text(&[CHECKPOINT])) {
                let root = crate::verify::keyless::TrustedRoot::from_json(
                    include_bytes!("testdata/trusted_root.json"),
                )
                .unwrap();
                let _ = super::super::verify_checkpoint(&note, &root.tlogs[0]);
            }

            /// Arbitrary proofs never panic.
            #[test]
            fn arbitrary_proofs_never_panic(index in 0u64..40, size in 0u64..40, n in 0usize..8) {
                let proof = vec![vec![0u8; 32]; n];
                let _ = super::super::verify_inclusion(index, size, [0; 32], &proof, &[0; 32]);
            }
        }
    }
}
