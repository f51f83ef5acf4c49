//! Signed certificate timestamps embedded in a Fulcio certificate (RFC 6962 3.2-3.3): the TLS
//! encoded list, and each SCT's signature by a CT log of the trusted root over the
//! precertificate entry (the certificate's TBS without the SCT list, and the hash of the
//! issuer's key).

use sha2::{Digest as _, Sha256};

use super::trusted_root::TrustedRoot;

/// One SCT (version 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sct {
    /// The log's id.
    pub log_id: Vec<u8>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The SCT extensions (opaque).
    pub extensions: Vec<u8>,
    /// The signature (a DER ECDSA or RSA signature).
    pub signature: Vec<u8>,
}

/// Why an SCT list does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SCT list: {0}")]
pub struct SctError(&'static str);

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SctError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(SctError("truncated"))?;
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, SctError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, SctError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn vec16(&mut self) -> Result<&'a [u8], SctError> {
        let n = self.u16()?;
        self.take(n)
    }
}

/// The SCTs of a TLS-encoded `SignedCertificateTimestampList`; SCTs of versions other than
/// v1 are skipped.
///
/// # Errors
/// [`SctError`] when the list is malformed.
pub fn parse_list(list: &[u8]) -> Result<Vec<Sct>, SctError> {
    let mut outer = Reader(list);
    let mut items = Reader(outer.vec16()?);
    if !outer.0.is_empty() {
        return Err(SctError("trailing bytes"));
    }
    let mut out = Vec::new();
    while !items.0.is_empty() {
        let mut r = Reader(items.vec16()?);
        if r.u8()? != 0 {
            continue;
        }
        let log_id = r.take(32)?.to_vec();
        let ts = r.take(8)?;
        let timestamp = u64::from_be_bytes(ts.try_into().map_err(|_| SctError("truncated"))?);
        let extensions = r.vec16()?.to_vec();
        let (_hash, _sig_alg) = (r.u8()?, r.u8()?);
        let signature = r.vec16()?.to_vec();
        if !r.0.is_empty() {
            return Err(SctError("trailing bytes in an SCT"));
        }
        out.push(Sct {
            log_id,
            timestamp,
            extensions,
            signature,
        });
    }
    Ok(out)
}

/// What a CT log signs for a precertificate entry (RFC 6962 3.2, `digitally-signed struct`).
pub fn signed_data(sct: &Sct, issuer_spki: &[u8], precert_tbs: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8, 0u8]; // v1, certificate_timestamp
    out.extend_from_slice(&sct.timestamp.to_be_bytes());
    out.extend_from_slice(&[0, 1]); // precert_entry
    out.extend_from_slice(&Sha256::digest(issuer_spki));
    let len = precert_tbs.len();
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
    out.extend_from_slice(precert_tbs);
    out.extend_from_slice(&(sct.extensions.len() as u16).to_be_bytes());
    out.extend_from_slice(&sct.extensions);
    out
}

/// Whether one SCT of `list` is signed by a CT log of `root`, whose key was valid at the SCT's
/// time, over the precertificate (`precert_tbs`, issued by the key `issuer_spki`).
///
/// # Errors
/// A text saying why none is, for logs.
pub fn verify(
    root: &TrustedRoot,
    list: &[u8],
    issuer_spki: &[u8],
    precert_tbs: &[u8],
) -> Result<(), String> {
    let scts = parse_list(list).map_err(|e| e.to_string())?;
    for sct in &scts {
        let secs = i64::try_from(sct.timestamp / 1000).unwrap_or(i64::MAX);
        let Some(log) = root.ctlog(&sct.log_id, secs) else {
            continue;
        };
        let data = signed_data(sct, issuer_spki, precert_tbs);
        if log.key.verifies(&data, &sct.signature) {
            return Ok(());
        }
    }
    Err(format!(
        "none of the {} embedded SCTs is signed by a CT log of the trusted root",
        scts.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sct_bytes(version: u8, sig: &[u8]) -> Vec<u8> {
        let mut s = vec![version];
        s.extend_from_slice(&[9; 32]);
        s.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
        s.extend_from_slice(&[0, 0, 4, 3]);
        s.extend_from_slice(&(sig.len() as u16).to_be_bytes());
        s.extend_from_slice(sig);
        s
    }

    fn list(items: &[Vec<u8>]) -> Vec<u8> {
        let mut inner = Vec::new();
        for i in items {
            inner.extend_from_slice(&(i.len() as u16).to_be_bytes());
            inner.extend_from_slice(i);
        }
        let mut out = (inner.len() as u16).to_be_bytes().to_vec();
        out.extend(inner);
        out
    }

    #[test]
    fn a_list_reads_v1_scts_and_skips_others() {
        let l = list(&[sct_bytes(0, b"sig"), sct_bytes(1, b"x")]);
        let scts = parse_list(&l).unwrap();
        assert_eq!(scts.len(), 1);
        assert_eq!(scts[0].timestamp, 1_700_000_000_000);
        assert_eq!(scts[0].signature, b"sig");
        assert!(parse_list(&l[..l.len() - 1]).is_err());
        assert!(parse_list(&[l.clone(), vec![0]].concat()).is_err());
    }

    mod properties {
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(crate::mutation::config())]

            /// Mutated SCT lists are read or refused.
            #[test]
            fn mutated_lists_never_panic(bytes in crate::mutation::mutated_bytes(vec![
                super::list(&[super::sct_bytes(0, b"signature"), super::sct_bytes(0, b"")]),
            ])) {
                let _ = super::super::parse_list(&bytes);
            }
        }
    }
}
