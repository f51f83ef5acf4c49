//! The Notary Project's requirements on a signature's certificate chain (notation-core-go's
//! `ValidateCodeSigningCertChain`, without a signing time: validity against time is checked
//! later, as the level asks): leaf first, each certificate issued (signature and names) by the
//! next, ending in a self-signed root, or a single self-signed leaf; the leaf not a CA, with a
//! critical key usage of `digitalSignature` only (`nonRepudiation` allowed), no server, client,
//! e-mail, time-stamping or OCSP extended key usage, and a supported key; each CA with the CA
//! basic constraint, a path length that allows the chain, and `keyCertSign`.

use x509_parser::prelude::X509Certificate;

use super::{key_algorithm, quoted_subject};

fn issued_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Result<bool, String> {
    cert.verify_signature(Some(issuer.public_key()))
        .map_err(|e| format!("x509: {e}"))?;
    Ok(issuer.subject().as_raw() == cert.issuer().as_raw())
}

fn key_usage_present(cert: &X509Certificate<'_>) -> Result<u16, String> {
    let subject = quoted_subject(cert);
    match cert.key_usage() {
        Ok(Some(ku)) if ku.critical => Ok(ku.value.flags),
        Ok(Some(_)) => Err(format!(
            "certificate with subject {subject}: key usage extension must be marked critical"
        )),
        Ok(None) => Err(format!(
            "certificate with subject {subject}: key usage extension must be present"
        )),
        Err(e) => Err(format!("certificate with subject {subject}: {e}")),
    }
}

// Key usage bits as x509-parser numbers them (bit 0 is digitalSignature).
const DIGITAL_SIGNATURE: u16 = 1 << 0;
const KEY_CERT_SIGN: u16 = 1 << 5;
const FORBIDDEN_LEAF_USAGES: [(u16, &str); 7] = [
    (1 << 2, "\"KeyEncipherment\""),
    (1 << 3, "\"DataEncipherment\""),
    (1 << 4, "\"KeyAgreement\""),
    (1 << 5, "\"CertSign\""),
    (1 << 6, "\"CRLSign\""),
    (1 << 7, "\"EncipherOnly\""),
    (1 << 8, "\"DecipherOnly\""),
];

fn validate_leaf(cert: &X509Certificate<'_>) -> Result<(), String> {
    let subject = quoted_subject(cert);
    if let Ok(Some(bc)) = cert.basic_constraints()
        && bc.value.ca
    {
        return Err(format!(
            "certificate with subject {subject}: if the basic constraints extension is present, \
             the ca field must be set to false"
        ));
    }
    let flags = key_usage_present(cert)?;
    if flags & DIGITAL_SIGNATURE == 0 {
        return Err(format!(
            "the certificate with subject {subject} is invalid. The key usage must have the bit \
             positions for \"Digital Signature\" set"
        ));
    }
    let invalid: Vec<&str> = FORBIDDEN_LEAF_USAGES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if !invalid.is_empty() {
        return Err(format!(
            "the certificate with subject {subject} is invalid. The key usage must be \"Digital \
             Signature\" only, but found {}",
            invalid.join(", ")
        ));
    }
    match cert.extended_key_usage() {
        Ok(Some(eku)) => {
            let e = eku.value;
            let excluded = [
                (e.server_auth, "ServerAuth"),
                (e.client_auth, "ClientAuth"),
                (e.email_protection, "EmailProtection"),
                (e.time_stamping, "Timestamping"),
                (e.ocsp_signing, "OCSPSigning"),
            ];
            if let Some((_, name)) = excluded.iter().find(|(set, _)| *set) {
                return Err(format!(
                    "certificate with subject {subject}: extended key usage must not contain \
                     {name} eku"
                ));
            }
        }
        Ok(None) => {}
        Err(e) => return Err(format!("certificate with subject {subject}: {e}")),
    }
    key_algorithm(cert)
        .map(|_| ())
        .map_err(|e| format!("certificate with subject {subject}: {e}"))
}

fn validate_ca(cert: &X509Certificate<'_>, expected_path_len: usize) -> Result<(), String> {
    let subject = quoted_subject(cert);
    let bc = match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => bc.value.clone(),
        _ => {
            return Err(format!(
                "certificate with subject {subject}: ca field in basic constraints must be \
                 present, critical, and set to true"
            ));
        }
    };
    if let Some(max) = bc.path_len_constraint
        && usize::try_from(max).unwrap_or(usize::MAX) < expected_path_len
    {
        return Err(format!(
            "certificate with subject {subject}: expected path length of {expected_path_len} but \
             certificate has path length {max} instead"
        ));
    }
    let flags = key_usage_present(cert)?;
    if flags & KEY_CERT_SIGN == 0 {
        return Err(format!(
            "certificate with subject {subject}: key usage must have the bit positions for key \
             cert sign set"
        ));
    }
    Ok(())
}

/// Checks a signature's certificate chain (leaf first) against the code-signing requirements.
///
/// # Errors
/// notation-core-go's text for the first requirement not met.
pub fn validate(chain: &[X509Certificate<'_>]) -> Result<(), String> {
    let Some(leaf) = chain.first() else {
        return Err("certificate chain must contain at least one certificate".into());
    };
    if chain.len() == 1 {
        let subject = quoted_subject(leaf);
        if let Err(e) = leaf.verify_signature(None) {
            return Err(format!(
                "invalid self-signed certificate. subject: {subject}. Error: x509: {e}"
            ));
        }
        if leaf.subject().as_raw() != leaf.issuer().as_raw() {
            return Err(format!(
                "invalid self-signed certificate. subject: {subject}. Error: issuer({}) and \
                 subject({}) are not the same",
                leaf.issuer(),
                leaf.subject()
            ));
        }
        return validate_leaf(leaf)
            .map_err(|e| format!("invalid self-signed certificate. Error: {e}"));
    }
    for (i, cert) in chain.iter().enumerate() {
        let subject = quoted_subject(cert);
        if i == chain.len() - 1 {
            match issued_by(cert, cert) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!(
                        "root certificate with subject {subject} is not self-signed. Certificate \
                         chain must end with a valid self-signed root certificate"
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "root certificate with subject {subject} is invalid or not self-signed. \
                         Certificate chain must end with a valid self-signed root certificate. \
                         Error: {e}"
                    ));
                }
            }
        } else {
            if issued_by(cert, cert) == Ok(true) {
                let which = if i == 0 { "leaf" } else { "intermediate" };
                return Err(format!(
                    "{which} certificate with subject {subject} is self-signed. Certificate chain \
                     must not contain self-signed {which} certificate"
                ));
            }
            let parent = &chain[i + 1];
            let parent_subject = quoted_subject(parent);
            match issued_by(cert, parent) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!(
                        "certificate with subject {subject} is not issued by {parent_subject}"
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "invalid certificates or certificate with subject {subject} is not \
                         issued by {parent_subject}. Error: {e}"
                    ));
                }
            }
        }
        if i == 0 {
            validate_leaf(cert)?;
        } else {
            validate_ca(cert, i - 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::tests::test_der;
    use super::*;

    #[test]
    fn a_self_signed_code_signing_leaf_is_a_valid_chain() {
        let der = test_der();
        let cert = parse(&der).unwrap();
        assert_eq!(validate(&[cert]), Ok(()));
        assert!(validate(&[]).is_err());
    }

    #[test]
    fn leaves_without_code_signing_usage_or_issued_by_another_are_refused() {
        // A TLS server certificate (rcgen's default: no key usage extension).
        let key = rcgen::KeyPair::generate().unwrap();
        let tls = rcgen::CertificateParams::new(vec!["example.com".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = tls.der().to_vec();
        let cert = parse(&der).unwrap();
        let e = validate(&[cert]).unwrap_err();
        assert!(e.contains("key usage extension must be present"), "{e}");

        // Two unrelated self-signed certificates do not make a chain.
        let notary = test_der();
        let chain = [parse(&notary).unwrap(), parse(&der).unwrap()];
        let e = validate(&chain).unwrap_err();
        assert!(e.contains("is self-signed"), "{e}");
    }
}
