//! Notary Project signature envelopes, opened and checked for integrity as notation-core-go
//! does: the signature over the signing input with the leaf certificate's key, the signed
//! attributes (signing scheme, signing time, expiry, critical headers), the certificate chain
//! against the code-signing requirements, the key matching the declared algorithm, and the
//! payload's content type.
//!
//! - [`jws`]: `application/jose+json` (JWS JSON serialization, `x5c` chain).
//! - [`cose`]: `application/cose` (`COSE_Sign1_Tagged`, `x5chain` label 33).

pub mod cose;
pub mod jws;

use k8s_openapi::jiff::Timestamp;

use super::x509::{self, Algorithm};

/// The media type of a notation signature's payload.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";

/// The signing scheme (`io.cncf.notary.signingScheme`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `notary.x509`: the signing time is the signer's claim.
    X509,
    /// `notary.x509.signingAuthority`: the signing time is authentic.
    SigningAuthority,
}

impl Scheme {
    /// From its name.
    pub fn parse(s: &str) -> Option<Scheme> {
        match s {
            "notary.x509" => Some(Scheme::X509),
            "notary.x509.signingAuthority" => Some(Scheme::SigningAuthority),
            _ => None,
        }
    }
}

/// What an envelope that passed its integrity checks says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    /// The payload (the `targetArtifact` descriptor JSON).
    pub payload: Vec<u8>,
    /// The declared signature algorithm.
    pub algorithm: Algorithm,
    /// The signing scheme.
    pub scheme: Scheme,
    /// The signing time (authentic for [`Scheme::SigningAuthority`]).
    pub signing_time: Timestamp,
    /// The signature's expiry, when it has one.
    pub expiry: Option<Timestamp>,
    /// The certificate chain, leaf first, DER.
    pub chain: Vec<Vec<u8>>,
    /// Whether an RFC 3161 timestamp countersignature is attached.
    pub has_timestamp: bool,
    /// The names of critical extended signed attributes (e.g. a verification plugin).
    pub critical_extended: Vec<(String, Option<String>)>,
}

/// The checks notation-core-go makes on any envelope's content after its signature verified.
///
/// # Errors
/// Its text for the first check that fails.
pub fn validate_content(
    payload: &[u8],
    content_type: &str,
    signature: &[u8],
    signing_time: Option<Timestamp>,
    expiry: Option<Timestamp>,
    chain: &[Vec<u8>],
    algorithm: Algorithm,
) -> Result<Timestamp, String> {
    if payload.is_empty() {
        return Err("content not present".into());
    }
    if signature.is_empty() {
        return Err("signature not present or is empty".into());
    }
    let Some(signing_time) = signing_time else {
        return Err("signing-time not present".into());
    };
    if expiry.is_some_and(|e| e <= signing_time) {
        return Err("expiry cannot be equal or before the signing time".into());
    }
    if chain.is_empty() {
        return Err("certificate-chain not present or is empty".into());
    }
    let certs = chain
        .iter()
        .map(|der| x509::parse(der))
        .collect::<Result<Vec<_>, _>>()?;
    x509::chain::validate(&certs).map_err(|e| format!("certificate-chain is invalid, {e}"))?;
    let derived = certs
        .first()
        .map(x509::key_algorithm)
        .transpose()?
        .ok_or("certificate-chain not present or is empty")?;
    if derived != algorithm {
        return Err(format!(
            "mismatch between signature algorithm derived from signing certificate ({}) and \
             signing algorithm specified ({})",
            derived.jws_name(),
            algorithm.jws_name()
        ));
    }
    if content_type != PAYLOAD_MEDIA_TYPE {
        return Err(format!(
            "payload content type {} not supported",
            super::gotext::go_quote(content_type)
        ));
    }
    Ok(signing_time)
}

/// Opens an envelope of `media_type` and checks its integrity.
///
/// # Errors
/// notation's integrity failure text.
pub fn open(media_type: &str, blob: &[u8]) -> Result<Content, String> {
    match media_type {
        jws::MEDIA_TYPE => jws::open(blob),
        cose::MEDIA_TYPE => cose::open(blob),
        other => Err(format!(
            "unable to parse the digital signature, error : signature envelope format with media \
             type {} is not supported",
            super::gotext::go_quote(other)
        )),
    }
}
