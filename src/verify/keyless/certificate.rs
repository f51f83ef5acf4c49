//! Fulcio certificates: the parts of a leaf keyless verification reads (its identities, the
//! OIDC issuer extensions, the embedded SCTs and the precertificate TBS they sign), and the
//! chain to a certificate authority of the trusted root, with the code-signing usage, at the
//! time the transparency log recorded the signature.

use rustls_pki_types::{CertificateDer, UnixTime};

use super::der::{self, DerError, Element};
use super::trusted_root::CertificateAuthority;

/// The Fulcio OIDC issuer extension, v1 (1.3.6.1.4.1.57264.1.1): the raw issuer bytes.
const ISSUER_V1: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 1];
/// The Fulcio OIDC issuer extension, v2 (1.3.6.1.4.1.57264.1.8): a DER UTF8String.
const ISSUER_V2: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];
/// The embedded SCT list extension (RFC 6962 3.3).
const SCT_LIST: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];
/// subjectAltName.
const SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
/// id-kp-codeSigning, as webpki wants an extended key usage: the OID's content octets.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// A leaf certificate as keyless verification reads it.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Its SubjectPublicKeyInfo, DER: the key that signed the artifact.
    pub spki: Vec<u8>,
    /// Its issuer name, DER (to find the issuing CA certificate).
    pub issuer_name: Vec<u8>,
    /// The identities of its subjectAltName (e-mail, URI, DNS name, other name), in order.
    pub identities: Vec<String>,
    /// The OIDC issuer: the v2 extension, else the v1 one.
    pub oidc_issuer: Option<String>,
    /// The embedded SCT list (TLS encoding), when there is one.
    pub sct_list: Option<Vec<u8>>,
    /// The TBS certificate without the SCT list extension: what the CT log signed.
    pub precert_tbs: Vec<u8>,
}

/// Why a certificate cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Not a DER X.509 certificate of the expected shape.
    #[error("invalid certificate: {0}")]
    Der(#[from] DerError),
    /// A field that must be there is missing.
    #[error("invalid certificate: {0}")]
    Shape(&'static str),
}

fn shape(what: &'static str) -> CertificateError {
    CertificateError::Shape(what)
}

/// The TBS fields of a certificate: (TBS element, its children).
fn tbs(cert: &[u8]) -> Result<(Element<'_>, Vec<Element<'_>>), CertificateError> {
    let outer = der::read_only(cert, der::SEQUENCE)?;
    let parts = der::children(outer.content)?;
    let tbs = *parts.first().ok_or(shape("no TBS certificate"))?;
    if parts.len() != 3 || tbs.tag != der::SEQUENCE {
        return Err(shape("not a certificate"));
    }
    let fields = der::children(tbs.content)?;
    Ok((tbs, fields))
}

/// The named TBS fields: (issuer, subject, spki, extensions element if any).
struct TbsFields<'a> {
    issuer: Element<'a>,
    subject: Element<'a>,
    spki: Element<'a>,
    extensions: Option<Element<'a>>,
}

fn fields<'a>(fields: &[Element<'a>]) -> Result<TbsFields<'a>, CertificateError> {
    // An explicit version ([0]) comes first when present.
    let skip = usize::from(fields.first().is_some_and(|f| f.tag == 0xa0));
    let at = |i: usize| fields.get(skip + i).copied().ok_or(shape("truncated TBS"));
    let issuer = at(2)?;
    let subject = at(4)?;
    let spki = at(5)?;
    if [issuer.tag, subject.tag, spki.tag] != [der::SEQUENCE; 3] {
        return Err(shape("unexpected TBS field"));
    }
    let extensions = fields
        .get(skip + 6..)
        .unwrap_or_default()
        .iter()
        .find(|f| f.tag == 0xa3)
        .copied();
    Ok(TbsFields {
        issuer,
        subject,
        spki,
        extensions,
    })
}

/// One extension: (OID content octets, critical, value octets, whole element).
type Extension<'a> = (&'a [u8], bool, &'a [u8], Element<'a>);

fn extensions<'a>(
    wrapper: Option<Element<'a>>,
) -> Result<(Option<Element<'a>>, Vec<Extension<'a>>), CertificateError> {
    let Some(wrapper) = wrapper else {
        return Ok((None, Vec::new()));
    };
    let list = der::read_only(wrapper.content, der::SEQUENCE)?;
    let mut out = Vec::new();
    for ext in der::children(list.content)? {
        if ext.tag != der::SEQUENCE {
            return Err(shape("extension is not a SEQUENCE"));
        }
        let parts = der::children(ext.content)?;
        let (oid, critical, value) = match parts.as_slice() {
            [oid, value] => (oid, false, value),
            [oid, critical, value] if critical.tag == der::BOOLEAN => {
                (oid, critical.content == [0xff], value)
            }
            _ => return Err(shape("malformed extension")),
        };
        if oid.tag != der::OID || value.tag != der::OCTET_STRING {
            return Err(shape("malformed extension"));
        }
        out.push((oid.content, critical, value.content, ext));
    }
    Ok((Some(list), out))
}

/// The subject name and SubjectPublicKeyInfo (DER) of a CA certificate.
///
/// # Errors
/// [`CertificateError`] when `cert` is not a certificate.
pub fn subject_and_spki(cert: &[u8]) -> Result<(Vec<u8>, Vec<u8>), CertificateError> {
    let (_, f) = tbs(cert)?;
    let f = fields(&f)?;
    Ok((f.subject.raw.to_vec(), f.spki.raw.to_vec()))
}

/// Reads a leaf certificate (DER).
///
/// # Errors
/// [`CertificateError`] when it is not a certificate or an extension keyless reads is
/// malformed.
pub fn parse_leaf(cert: &[u8]) -> Result<Leaf, CertificateError> {
    let (tbs_el, tbs_fields) = tbs(cert)?;
    let f = fields(&tbs_fields)?;
    let (list, exts) = extensions(f.extensions)?;
    let mut leaf = Leaf {
        der: cert.to_vec(),
        spki: f.spki.raw.to_vec(),
        issuer_name: f.issuer.raw.to_vec(),
        identities: Vec::new(),
        oidc_issuer: None,
        sct_list: None,
        precert_tbs: tbs_el.raw.to_vec(),
    };
    let (mut v1, mut v2) = (None, None);
    for (oid, _, value, element) in &exts {
        if *oid == der::oid(SUBJECT_ALT_NAME).as_slice() {
            leaf.identities = general_names(value)?;
        } else if *oid == der::oid(ISSUER_V1).as_slice() {
            v1 = Some(String::from_utf8_lossy(value).into_owned());
        } else if *oid == der::oid(ISSUER_V2).as_slice() {
            let s = der::read_only(value, der::UTF8_STRING)?;
            v2 = Some(String::from_utf8_lossy(s.content).into_owned());
        } else if *oid == der::oid(SCT_LIST).as_slice() {
            let inner = der::read_only(value, der::OCTET_STRING)?;
            leaf.sct_list = Some(inner.content.to_vec());
            leaf.precert_tbs = without(tbs_el, &tbs_fields, list, element)?;
        }
    }
    leaf.oidc_issuer = v2.or(v1);
    Ok(leaf)
}

/// The TBS re-encoded without extension `drop` (RFC 6962 3.2: the precertificate's TBS is the
/// certificate's without the SCT list).
fn without(
    tbs: Element<'_>,
    fields: &[Element<'_>],
    list: Option<Element<'_>>,
    drop: &Element<'_>,
) -> Result<Vec<u8>, CertificateError> {
    let list = list.ok_or(shape("no extension list"))?;
    let kept: Vec<u8> = der::children(list.content)?
        .iter()
        .filter(|e| e.raw.as_ptr() != drop.raw.as_ptr())
        .flat_map(|e| e.raw.iter().copied())
        .collect();
    let wrapper = der::encode(0xa3, &der::encode(der::SEQUENCE, &kept));
    let mut content = Vec::with_capacity(tbs.content.len());
    for f in fields {
        if f.tag == 0xa3 {
            content.extend_from_slice(&wrapper);
        } else {
            content.extend_from_slice(f.raw);
        }
    }
    Ok(der::encode(der::SEQUENCE, &content))
}

/// The identities of a GeneralNames value: rfc822Name, dNSName, URI, and other names holding a
/// UTF8String (Fulcio's username identities).
fn general_names(value: &[u8]) -> Result<Vec<String>, CertificateError> {
    let seq = der::read_only(value, der::SEQUENCE)?;
    let mut out = Vec::new();
    for name in der::children(seq.content)? {
        match name.tag {
            0x81 | 0x82 | 0x86 => out.push(String::from_utf8_lossy(name.content).into_owned()),
            0xa0 => {
                // otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
                let parts = der::children(name.content)?;
                if let [_, value] = parts.as_slice()
                    && value.tag == 0xa0
                    && let Ok(s) = der::read_only(value.content, der::UTF8_STRING)
                {
                    out.push(String::from_utf8_lossy(s.content).into_owned());
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Why a leaf does not chain to the trusted root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No certificate authority of the trusted root was valid at the time.
    #[error("no certificate authority of the trusted root is valid at {0}")]
    NoAuthority(i64),
    /// None of them issued it (or the usage, validity or signatures are wrong).
    #[error("certificate does not chain to the trusted root at {time}: {reason}")]
    Untrusted {
        /// Unix seconds.
        time: i64,
        /// webpki's reason, for the last authority tried.
        reason: String,
    },
}

/// The SubjectPublicKeyInfo (DER) of the certificate authority certificate that issued `leaf`,
/// after checking the chain with webpki: `leaf` chains, with the code-signing extended key
/// usage, to the root of one of `authorities` valid at `time` (Unix seconds), every certificate
/// valid at that time.
///
/// # Errors
/// [`ChainError`] when no authority vouches for the leaf at `time`.
pub fn verify_chain(
    leaf: &Leaf,
    authorities: &[CertificateAuthority],
    time: i64,
) -> Result<Vec<u8>, ChainError> {
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(time).unwrap_or_default(),
    ));
    let der = CertificateDer::from(leaf.der.as_slice());
    let ee = webpki::EndEntityCert::try_from(&der).map_err(|e| ChainError::Untrusted {
        time,
        reason: e.to_string(),
    })?;
    let mut reason = None;
    for ca in authorities.iter().filter(|ca| ca.valid_at(time)) {
        let Some((root, intermediates)) = ca.chain.split_last() else {
            continue;
        };
        let root_der = CertificateDer::from(root.as_slice());
        let anchor = match webpki::anchor_from_trusted_cert(&root_der) {
            Ok(a) => a.to_owned(),
            Err(e) => {
                reason = Some(e.to_string());
                continue;
            }
        };
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        match ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &intermediates,
            at,
            webpki::KeyUsage::required(CODE_SIGNING),
            None,
            None,
        ) {
            Ok(_) => {
                if let Some(spki) = ca.chain.iter().find_map(|c| {
                    subject_and_spki(c)
                        .ok()
                        .filter(|(subject, _)| *subject == leaf.issuer_name)
                        .map(|(_, spki)| spki)
                }) {
                    return Ok(spki);
                }
                reason = Some("the issuing certificate is not in the authority's chain".into());
            }
            Err(e) => reason = Some(e.to_string()),
        }
    }
    match reason {
        Some(reason) => Err(ChainError::Untrusted { time, reason }),
        None => Err(ChainError::NoAuthority(time)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, CustomExtension, KeyPair, SanType};

    fn cert(sans: Vec<SanType>, extensions: Vec<CustomExtension>) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params.custom_extensions = extensions;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn issuer_v1(issuer: &str) -> CustomExtension {
        CustomExtension::from_oid_content(ISSUER_V1, issuer.as_bytes().to_vec())
    }

    fn issuer_v2(issuer: &str) -> CustomExtension {
        CustomExtension::from_oid_content(
            ISSUER_V2,
            der::encode(der::UTF8_STRING, issuer.as_bytes()),
        )
    }

    #[test]
    fn identities_and_the_issuer_read_from_either_extension_v2_first() {
        let uri = SanType::URI(
            "https://github.com/o/r/.github/workflows/w.yaml@refs/heads/main"
                .try_into()
                .unwrap(),
        );
        let email = SanType::Rfc822Name("dev@example.com".try_into().unwrap());
        let der = cert(vec![uri, email], vec![issuer_v1("https://v1.example")]);
        let leaf = parse_leaf(&der).unwrap();
        assert_eq!(
            leaf.identities,
            [
                "https://github.com/o/r/.github/workflows/w.yaml@refs/heads/main",
                "dev@example.com"
            ]
        );
        assert_eq!(leaf.oidc_issuer.as_deref(), Some("https://v1.example"));
        // No SCT list: nothing to rebuild, the precertificate TBS is the TBS.
        assert!(leaf.sct_list.is_none());
        let (tbs, _) = tbs(&der).unwrap();
        assert_eq!(leaf.precert_tbs, tbs.raw);

        let both = cert(
            vec![],
            vec![
                issuer_v1("https://v1.example"),
                issuer_v2("https://v2.example"),
            ],
        );
        assert_eq!(
            parse_leaf(&both).unwrap().oidc_issuer.as_deref(),
            Some("https://v2.example")
        );
        let none = cert(vec![], vec![]);
        assert_eq!(parse_leaf(&none).unwrap().oidc_issuer, None);
        // A v2 extension that is not a UTF8String is refused, not guessed at.
        let bad = cert(
            vec![],
            vec![CustomExtension::from_oid_content(
                ISSUER_V2,
                b"raw".to_vec(),
            )],
        );
        assert!(parse_leaf(&bad).is_err());
    }

    #[test]
    fn the_sct_list_is_cut_out_of_the_tbs_and_the_lengths_rewritten() {
        let list = der::encode(der::OCTET_STRING, &[0, 3, 0, 1, 9]);
        let with = cert(
            vec![],
            vec![
                issuer_v1("https://i"),
                CustomExtension::from_oid_content(SCT_LIST, list),
            ],
        );
        let leaf = parse_leaf(&with).unwrap();
        assert_eq!(leaf.sct_list.as_deref(), Some(&[0, 3, 0, 1, 9][..]));
        // The rebuilt TBS parses, keeps the other extension and drops the SCT list.
        let rebuilt = der::read_only(&leaf.precert_tbs, der::SEQUENCE).unwrap();
        let f = fields(&der::children(rebuilt.content).unwrap()).unwrap();
        let (_, exts) = extensions(f.extensions).unwrap();
        let oids: Vec<_> = exts.iter().map(|e| e.0.to_vec()).collect();
        assert!(oids.contains(&der::oid(ISSUER_V1)));
        assert!(!oids.contains(&der::oid(SCT_LIST)));
        // Shorter by exactly the extension: SEQUENCE header (2), OID (2 + 10), the value's
        // OCTET STRING (2) around the list's own (2 + 5).
        assert_eq!(
            leaf.precert_tbs.len() + 2 + 12 + 2 + 7,
            tbs(&with).unwrap().0.raw.len()
        );
    }
}
