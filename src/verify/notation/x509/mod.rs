//! X.509 as notation needs it: the trust store a Flux verification Secret makes (every
//! `*.crt` and `*.pem` entry, PEM or DER, one store answering every type and name), subjects
//! printed as Go prints them, and key specs (the signature algorithm a signing key implies).
//!
//! - [`chain`]: the Notary Project's code-signing chain requirements.

pub mod chain;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::jiff::Timestamp;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::gotext::go_quote;

/// Parses one DER certificate (nothing may follow it).
///
/// # Errors
/// Go's text for a malformed certificate.
pub fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err("x509: trailing data".into()),
        Err(_) => Err("x509: malformed certificate".into()),
    }
}

/// Splits concatenated DER certificates, as Go's `x509.ParseCertificates` does.
fn parse_many(mut der: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    while !der.is_empty() {
        match X509Certificate::from_der(der) {
            Ok((rest, _)) => {
                out.push(der[..der.len() - rest.len()].to_vec());
                der = rest;
            }
            Err(_) => return Err("x509: malformed certificate".into()),
        }
    }
    Ok(out)
}

/// The certificates of a verification Secret, served for every trust store type and name (as
/// Flux's in-memory store does). Entries are parsed when the Secret is read; as in Flux, an
/// entry that does not parse fails authenticity when a store is loaded, not the Secret.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    certs: Vec<Vec<u8>>,
    broken: Option<String>,
}

/// Whether a Secret entry holds certificates.
pub fn is_certificate_entry(name: &str) -> bool {
    name.ends_with(".crt") || name.ends_with(".pem")
}

impl TrustStore {
    /// The store of the `*.crt` and `*.pem` entries of `data` (each PEM entry contributes its
    /// first block, each DER entry all its certificates); `None` when there is no such entry.
    pub fn from_secret(data: &BTreeMap<String, ByteString>) -> Option<TrustStore> {
        let mut store = TrustStore::default();
        let mut any = false;
        for (_, value) in data.iter().filter(|(k, _)| is_certificate_entry(k)) {
            any = true;
            let der = match pem::parse(&value.0) {
                Ok(block) => block.into_contents(),
                Err(_) => value.0.clone(),
            };
            match parse_many(&der) {
                Ok(certs) => store.certs.extend(certs),
                Err(e) => {
                    store.broken.get_or_insert(e);
                }
            }
        }
        any.then_some(store)
    }

    /// A store of the given DER certificates.
    pub fn of(certs: Vec<Vec<u8>>) -> TrustStore {
        TrustStore {
            certs,
            broken: None,
        }
    }

    /// The certificates of the named store (all of them, whatever the name).
    ///
    /// # Errors
    /// Flux's text when an entry of the Secret does not parse.
    pub fn certificates(&self, store_name: &str) -> Result<&[Vec<u8>], String> {
        match &self.broken {
            Some(e) => Err(format!("failed to parse certificate '{store_name}': {e}")),
            None => Ok(&self.certs),
        }
    }
}

/// Go's name for an attribute type, when it has one.
fn attribute_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.6" => "C",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.3" => "CN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.17" => "POSTALCODE",
        _ => return None,
    })
}

/// An attribute value escaped as Go's `pkix.Name.String` escapes it (RFC 2253).
fn escape_value(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i + 1 == chars.len() && c == ' ');
        if special {
            out.push('\\');
            out.push(c);
        } else if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}

/// A DER length header.
fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![u8::try_from(len).unwrap_or(0)];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | u8::try_from(bytes.len()).unwrap_or(0)];
    out.extend(bytes);
    out
}

/// A certificate subject as Go's `pkix.Name.String()` prints it: RDNs last to first, joined
/// by `,`, multi-valued ones by `+`, unknown attribute types as `<oid>=#<hex DER>`.
pub fn subject_string(cert: &X509Certificate<'_>) -> String {
    let mut rdns: Vec<String> = Vec::new();
    for rdn in cert.subject().iter() {
        let attrs: Vec<String> = rdn
            .iter()
            .map(|a| {
                let oid = a.attr_type().to_id_string();
                let value = a.attr_value();
                match (attribute_name(&oid), a.as_str()) {
                    (Some(name), Ok(s)) => format!("{name}={}", escape_value(s)),
                    _ => {
                        let mut der = vec![u8::try_from(value.header.tag().0).unwrap_or(0)];
                        der.extend(der_length(value.data.len()));
                        der.extend_from_slice(value.data);
                        let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
                        format!("{oid}=#{hex}")
                    }
                }
            })
            .collect();
        rdns.push(attrs.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

/// A certificate subject as notation's `%q` prints it.
pub fn quoted_subject(cert: &X509Certificate<'_>) -> String {
    go_quote(&subject_string(cert))
}

/// The signature algorithm a certificate's key implies, as notation's key specs map them
/// (RSA 2048/3072/4096 bits: PS256/384/512; ECDSA P-256/384/521: ES256/384/512).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// ECDSA P-521 with SHA-512.
    Es512,
}

impl Algorithm {
    /// The JWS name.
    pub fn jws_name(self) -> &'static str {
        match self {
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Es512 => "ES512",
        }
    }

    /// From the JWS name.
    pub fn from_jws(name: &str) -> Option<Algorithm> {
        [
            Algorithm::Ps256,
            Algorithm::Ps384,
            Algorithm::Ps512,
            Algorithm::Es256,
            Algorithm::Es384,
            Algorithm::Es512,
        ]
        .into_iter()
        .find(|a| a.jws_name() == name)
    }

    /// From the COSE algorithm number.
    pub fn from_cose(n: i64) -> Option<Algorithm> {
        Some(match n {
            -37 => Algorithm::Ps256,
            -38 => Algorithm::Ps384,
            -39 => Algorithm::Ps512,
            -7 => Algorithm::Es256,
            -35 => Algorithm::Es384,
            -36 => Algorithm::Es512,
            _ => return None,
        })
    }

    /// Verifies `signature` over `message` with the certificate's key (`PS*`: PSS with the
    /// salt as long as the hash; `ES*`: the fixed-width `r || s` form JWS and COSE use).
    pub fn verify(self, cert: &X509Certificate<'_>, message: &[u8], signature: &[u8]) -> bool {
        use aws_lc_rs::signature as s;
        let alg: &'static dyn s::VerificationAlgorithm = match self {
            Algorithm::Ps256 => &s::RSA_PSS_2048_8192_SHA256,
            Algorithm::Ps384 => &s::RSA_PSS_2048_8192_SHA384,
            Algorithm::Ps512 => &s::RSA_PSS_2048_8192_SHA512,
            Algorithm::Es256 => &s::ECDSA_P256_SHA256_FIXED,
            Algorithm::Es384 => &s::ECDSA_P384_SHA384_FIXED,
            Algorithm::Es512 => &s::ECDSA_P521_SHA512_FIXED,
        };
        let key = cert.public_key().subject_public_key.data.as_ref();
        s::UnparsedPublicKey::new(alg, key)
            .verify(message, signature)
            .is_ok()
    }
}

/// The algorithm `cert`'s key implies.
///
/// # Errors
/// notation-core-go's texts for unsupported keys.
pub fn key_algorithm(cert: &X509Certificate<'_>) -> Result<Algorithm, String> {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let modulus = rsa.modulus;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            match significant * 8 {
                2048 => Ok(Algorithm::Ps256),
                3072 => Ok(Algorithm::Ps384),
                4096 => Ok(Algorithm::Ps512),
                bits => Err(format!("rsa key size {bits} bits is not supported")),
            }
        }
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => Ok(Algorithm::Es256),
                "1.3.132.0.34" => Ok(Algorithm::Es384),
                "1.3.132.0.35" => Ok(Algorithm::Es512),
                _ => Err("unsupported public key type".into()),
            }
        }
        _ => Err("unsupported public key type".into()),
    }
}

/// A certificate's validity period.
pub fn validity(cert: &X509Certificate<'_>) -> (Timestamp, Timestamp) {
    let v = cert.validity();
    let at = |secs: i64| Timestamp::from_second(secs).unwrap_or(Timestamp::MIN);
    (at(v.not_before.timestamp()), at(v.not_after.timestamp()))
}

/// Whether a certificate names an OCSP responder or CRL distribution point (revocation
/// information this build cannot check).
pub fn has_revocation_info(cert: &X509Certificate<'_>) -> bool {
    cert.extensions().iter().any(|e| {
        let oid = e.oid.to_id_string();
        oid == "2.5.29.31" || oid == "1.3.6.1.5.5.7.1.1"
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate as `notation cert generate-test` makes it (RSA 2048,
    /// digitalSignature, codeSigning), PEM.
    pub(crate) const TEST_CERT: &str = include_str!("testdata/notary-test.crt");

    pub(crate) fn test_der() -> Vec<u8> {
        pem::parse(TEST_CERT).unwrap().into_contents()
    }

    #[test]
    fn subjects_print_as_go_prints_them() {
        let der = test_der();
        let cert = parse(&der).unwrap();
        assert_eq!(
            subject_string(&cert),
            "CN=test,O=Notary,L=Seattle,ST=WA,C=US"
        );
        assert_eq!(key_algorithm(&cert), Ok(Algorithm::Ps256));
        assert!(!has_revocation_info(&cert));
        assert_eq!(escape_value(" a,b "), "\\ a\\,b\\ ");
    }

    #[test]
    fn the_store_takes_pem_and_der_entries_and_defers_broken_ones() {
        let der = test_der();
        let mut data = BTreeMap::new();
        data.insert(
            "a.crt".to_string(),
            ByteString(TEST_CERT.as_bytes().to_vec()),
        );
        data.insert(
            "b.pem".to_string(),
            ByteString([der.clone(), der.clone()].concat()),
        );
        data.insert("c.pub".to_string(), ByteString(b"ignored".to_vec()));
        let store = TrustStore::from_secret(&data).unwrap();
        assert_eq!(store.certificates("any").unwrap().len(), 3);

        data.insert("d.crt".to_string(), ByteString(b"junk".to_vec()));
        let store = TrustStore::from_secret(&data).unwrap();
        assert_eq!(
            store.certificates("flux").unwrap_err(),
            "failed to parse certificate 'flux': x509: malformed certificate"
        );
        data.retain(|k, _| k.ends_with(".pub"));
        assert!(TrustStore::from_secret(&data).is_none());
    }

    mod properties {
        use super::super::{TrustStore, parse};
        use crate::mutation::{config, mutated_bytes};
        use k8s_openapi::ByteString;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(config())]

            /// Mutated certificates (PEM or DER) are read or refused, never a panic.
            #[test]
            fn mutated_certificates_never_panic(
                bytes in mutated_bytes(vec![super::TEST_CERT.as_bytes().to_vec(), super::test_der()])
            ) {
                if let Ok(cert) = parse(&bytes) {
                    let _ = super::super::subject_string(&cert);
                    let _ = super::super::key_algorithm(&cert);
                    let _ = super::super::chain::validate(&[cert]);
                }
                let data = [("x.crt".to_string(), ByteString(bytes))].into_iter().collect();
                let _ = TrustStore::from_secret(&data).map(|s| s.certificates("n").map(<[_]>::len));
            }
        }
    }
}
