//! Signature verification of artifacts, below the core: given the object's registry client,
//! credential and the resolved digest, decide whether a trusted signature vouches for it. The
//! core reaches it through [`crate::core::ports::Verifier`].
//!
//! - [`keys`]: public keys as a cosign verification Secret holds them (PEM; ECDSA, RSA, Ed25519).
//! - [`cosign`]: cosign signatures checked with those keys: Sigstore bundles first, then
//!   cosign's v2 signature layout (`sha256-<hex>.sig`, simple-signing payloads).
//! - [`bundle`]: Sigstore bundles (cosign v3) found among the digest's OCI referrers, DSSE
//!   envelopes checked with the keys.
//! - [`notation`]: Notary Project signatures (JWS, COSE) among the digest's referrers, checked
//!   against a trust policy and the certificates of the verification Secret.
//! - [`keyless`]: cosign keyless (Fulcio certificates, SCTs, Rekor entries) against a Sigstore
//!   trusted root, on both layouts.
//!
//! - [`tuf`]: the Sigstore trusted root fetched from a TUF repository (the public-good one by
//!   default), for keyless without a `trustedRootSecretRef`.

pub mod bundle;
pub mod cosign;
pub mod keyless;
pub mod keys;
pub mod notation;
pub mod tuf;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;

pub use keys::{KeyError, KeyKind, PublicKey};

/// The suffix of the Secret entries that hold cosign public keys.
pub const PUBLIC_KEY_SUFFIX: &str = ".pub";

/// Every `*.pub` entry of a verification Secret's `data`, parsed, in entry-name order.
///
/// # Errors
/// The first entry that does not parse fails the whole Secret (as in Flux, where a key that
/// does not load aborts the verification), with the entry's name.
pub fn public_keys(
    data: &BTreeMap<String, ByteString>,
) -> Result<Vec<(String, PublicKey)>, (String, KeyError)> {
    data.iter()
        .filter(|(name, _)| name.ends_with(PUBLIC_KEY_SUFFIX))
        .map(|(name, value)| match PublicKey::from_pem(&value.0) {
            Ok(key) => Ok((name.clone(), key)),
            Err(e) => Err((name.clone(), e)),
        })
        .collect()
}

/// An error and its sources joined with `": "`, for logs.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pub_entries_are_keys_and_a_bad_one_fails_them_all() {
        let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        )
        .unwrap();
        let good = {
            use aws_lc_rs::encoding::AsDer as _;
            use aws_lc_rs::signature::KeyPair as _;
            let der = pair.public_key().as_der().unwrap().as_ref().to_vec();
            pem::encode(&pem::Pem::new("PUBLIC KEY", der)).into_bytes()
        };
        let mut data = BTreeMap::new();
        data.insert("cosign.key".to_string(), ByteString(b"private".to_vec()));
        data.insert("b.pub".to_string(), ByteString(good.clone()));
        data.insert("a.pub".to_string(), ByteString(good));
        let keys = public_keys(&data).unwrap();
        let names: Vec<_> = keys.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a.pub", "b.pub"]);

        data.insert("c.pub".to_string(), ByteString(b"junk".to_vec()));
        let (name, e) = public_keys(&data).unwrap_err();
        assert_eq!((name.as_str(), e), ("c.pub", KeyError::Pem));

        assert!(public_keys(&BTreeMap::new()).unwrap().is_empty());
    }
}
