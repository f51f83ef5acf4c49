//! The COSE envelope (`application/cose`): a tagged `COSE_Sign1` whose protected header holds
//! the algorithm, `crit`, the content type and the `io.cncf.notary.*` attributes (times as
//! CBOR tag 1 epoch values), and whose unprotected header holds the certificate chain
//! (`x5chain`, label 33, an array of DER certificates, leaf first).

use coset::cbor::Value;
use coset::iana::EnumI64 as _;
use coset::{
    CoseSign1, Label, RegisteredLabel, RegisteredLabelWithPrivate, TaggedCborSerializable as _,
};
use k8s_openapi::jiff::Timestamp;

use super::{Content, Scheme, validate_content};
use crate::verify::notation::x509::{self, Algorithm};

/// The envelope's media type.
pub const MEDIA_TYPE: &str = "application/cose";

/// The `x5chain` header label.
const X5CHAIN: i64 = 33;
const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
const EXPIRY: &str = "io.cncf.notary.expiry";
const TIMESTAMP_SIGNATURE: &str = "io.cncf.notary.timestampSignature";

fn text_label<'a>(rest: &'a [(Label, Value)], name: &str) -> Option<&'a Value> {
    rest.iter()
        .find(|(l, _)| matches!(l, Label::Text(t) if t == name))
        .map(|(_, v)| v)
}

fn chain(sign1: &CoseSign1) -> Result<Vec<Vec<u8>>, String> {
    let value = sign1
        .unprotected
        .rest
        .iter()
        .find(|(l, _)| *l == Label::Int(X5CHAIN))
        .map(|(_, v)| v);
    let Some(Value::Array(items)) = value else {
        return Err("certificate chain is not present".into());
    };
    if items.is_empty() {
        return Err("certificate chain is not present".into());
    }
    items
        .iter()
        .map(|v| match v {
            Value::Bytes(b) => Ok(b.clone()),
            _ => Err("certificate chain is not present".to_string()),
        })
        .collect()
}

/// A tag-1 (epoch) time of the protected header.
fn time(rest: &[(Label, Value)], name: &str) -> Result<Option<Timestamp>, String> {
    match text_label(rest, name) {
        None => Ok(None),
        Some(Value::Tag(1, inner)) => {
            let secs = match inner.as_ref() {
                Value::Integer(i) => i64::try_from(*i).ok(),
                // Fractions of a second are dropped: notation signs whole seconds.
                Value::Float(f) if f.is_finite() => Some(f.trunc() as i64),
                _ => None,
            };
            secs.and_then(|s| Timestamp::from_second(s).ok())
                .map(Some)
                .ok_or_else(|| "invalid timeValue type".to_string())
        }
        Some(Value::Tag(..)) => Err("only Tag `1` Datetime CBOR object is supported".into()),
        Some(_) => Err(format!("header {name:?} time value does not have a tag")),
    }
}

/// Opens a COSE envelope and checks its integrity.
///
/// # Errors
/// notation's integrity failure text.
pub fn open(blob: &[u8]) -> Result<Content, String> {
    let sign1 = CoseSign1::from_tagged_slice(blob)
        .map_err(|e| format!("unable to parse the digital signature, error : {e}"))?;
    let chain = chain(&sign1)?;
    let leaf = x509::parse(&chain[0]).map_err(|_| "malformed leaf certificate".to_string())?;
    let key_alg = x509::key_algorithm(&leaf)?;
    let protected = &sign1.protected.header;
    let declared = match &protected.alg {
        Some(RegisteredLabelWithPrivate::Assigned(a)) => Algorithm::from_cose(a.to_i64()),
        Some(RegisteredLabelWithPrivate::PrivateUse(n)) => Algorithm::from_cose(*n),
        _ => None,
    };
    if declared != Some(key_alg) {
        return Err("signature is invalid. Error: algorithm mismatch".into());
    }
    let payload = sign1.payload.clone().unwrap_or_default();
    let verified = sign1.verify_signature(b"", |sig, data| {
        if key_alg.verify(&leaf, data, sig) {
            Ok(())
        } else {
            Err(())
        }
    });
    if verified.is_err() {
        return Err("signature is invalid. Error: verification error".into());
    }

    // The signed attributes.
    let content_type = match &protected.content_type {
        None => return Err("missing content type".into()),
        Some(RegisteredLabel::Text(t)) => t.clone(),
        Some(_) => return Err("content type should be of 'tstr' type".into()),
    };
    let rest = &protected.rest;
    let Some(Value::Text(scheme_name)) = text_label(rest, SIGNING_SCHEME) else {
        return Err("invalid signingScheme".into());
    };
    let crit: Vec<String> = protected
        .crit
        .iter()
        .filter_map(|l| match l {
            RegisteredLabelWithPrivate::Text(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    let mut must: Vec<&str> = vec![SIGNING_SCHEME];
    if scheme_name == "notary.x509.signingAuthority" {
        must.push(AUTHENTIC_SIGNING_TIME);
    }
    if text_label(rest, EXPIRY).is_some() {
        must.push(EXPIRY);
    }
    must.retain(|m| !crit.iter().any(|c| c == m));
    if !must.is_empty() {
        return Err(format!(
            "these required headers are not marked as critical: [{}]",
            must.join(" ")
        ));
    }
    let scheme = Scheme::parse(scheme_name)
        .ok_or_else(|| format!("unsupported signingScheme: {scheme_name}"))?;
    let time_label = match scheme {
        Scheme::X509 => SIGNING_TIME,
        Scheme::SigningAuthority => AUTHENTIC_SIGNING_TIME,
    };
    let signing_time = time(rest, time_label).map_err(|e| format!("invalid signingTime: {e}"))?;
    if signing_time.is_none() {
        return Err(format!(
            "invalid signingTime: protected header {time_label:?} is missing"
        ));
    }
    let expiry = time(rest, EXPIRY).map_err(|e| format!("invalid expiry: {e}"))?;
    let system = [SIGNING_SCHEME, SIGNING_TIME, AUTHENTIC_SIGNING_TIME, EXPIRY];
    let critical_extended = rest
        .iter()
        .filter_map(|(l, v)| match l {
            Label::Text(t) if !system.contains(&t.as_str()) && crit.contains(t) => {
                Some((t.clone(), v.as_text().map(str::to_string)))
            }
            _ => None,
        })
        .collect();
    let signing_time = validate_content(
        &payload,
        &content_type,
        &sign1.signature,
        signing_time,
        expiry,
        &chain,
        key_alg,
    )?;
    let has_timestamp = matches!(
        text_label(&sign1.unprotected.rest, TIMESTAMP_SIGNATURE),
        Some(Value::Bytes(b)) if !b.is_empty()
    );
    Ok(Content {
        payload,
        algorithm: key_alg,
        scheme,
        signing_time,
        expiry,
        chain,
        has_timestamp,
        critical_extended,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A COSE envelope the test bed's notation signer (notation-go v1.3.2) made with the test
    /// certificate of `x509/testdata`.
    pub(crate) const SIGNED: &[u8] = include_bytes!("../x509/testdata/notary-test.cose");

    #[test]
    fn a_real_envelope_opens_and_a_changed_one_does_not() {
        let content = open(SIGNED).unwrap();
        assert_eq!(content.scheme, Scheme::X509);
        assert_eq!(content.algorithm, Algorithm::Ps256);
        assert_eq!(content.chain.len(), 1);
        let payload: serde_json::Value = serde_json::from_slice(&content.payload).unwrap();
        assert!(payload["targetArtifact"]["digest"].is_string());

        let mut sign1 = CoseSign1::from_tagged_slice(SIGNED).unwrap();
        sign1.payload = Some(br#"{"targetArtifact":{}}"#.to_vec());
        let changed = sign1.clone().to_tagged_vec().unwrap();
        assert_eq!(
            open(&changed).unwrap_err(),
            "signature is invalid. Error: verification error"
        );
        sign1.unprotected.rest.clear();
        assert_eq!(
            open(&sign1.to_tagged_vec().unwrap()).unwrap_err(),
            "certificate chain is not present"
        );
        assert!(
            open(b"")
                .unwrap_err()
                .starts_with("unable to parse the digital signature")
        );
    }

    mod properties {
        use super::super::open;
        use crate::mutation::{config, mutated_bytes};
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(config())]

            /// A mutated COSE envelope is opened or refused, never a panic.
            #[test]
            fn mutated_envelopes_never_panic(bytes in mutated_bytes(vec![super::SIGNED.to_vec()])) {
                let _ = open(&bytes);
            }
        }
    }
}
