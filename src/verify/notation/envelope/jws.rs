//! The JWS envelope (`application/jose+json`): JSON serialization with a protected header
//! (`alg`, `cty`, `crit`, `io.cncf.notary.*` attributes), the payload, the signature, and an
//! unprotected header holding the certificate chain (`x5c`, standard base64 DER, leaf first)
//! and optionally a timestamp countersignature.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use super::{Content, Scheme, validate_content};
use crate::verify::notation::gotext::go_quote;
use crate::verify::notation::x509::{self, Algorithm};

/// The envelope's media type.
pub const MEDIA_TYPE: &str = "application/jose+json";

const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
const EXPIRY: &str = "io.cncf.notary.expiry";
/// The protected header's own keys; every other key is an extended attribute.
const HEADER_KEYS: [&str; 7] = [
    "alg",
    "cty",
    "crit",
    EXPIRY,
    SIGNING_TIME,
    SIGNING_SCHEME,
    AUTHENTIC_SIGNING_TIME,
];

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    payload: String,
    #[serde(default)]
    protected: String,
    #[serde(default)]
    header: Unprotected,
    #[serde(default)]
    signature: String,
}

#[derive(Deserialize, Default)]
struct Unprotected {
    #[serde(default)]
    x5c: Option<Vec<String>>,
    #[serde(default, rename = "io.cncf.notary.timestampSignature")]
    timestamp_signature: Option<String>,
}

fn time(header: &BTreeMap<String, Value>, key: &str) -> Result<Option<Timestamp>, String> {
    match header.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse::<Timestamp>().map(Some).map_err(|_| {
            format!(
                "jws envelope protected header can't be decoded: parsing time {} as \
                 \"2006-01-02T15:04:05Z07:00\": cannot parse {} as \"2006\"",
                go_quote(s),
                go_quote(s)
            )
        }),
        Some(_) => Err(
            "jws envelope protected header can't be decoded: Time.UnmarshalJSON: input is not a \
             JSON string"
                .into(),
        ),
    }
}

fn string(header: &BTreeMap<String, Value>, key: &str) -> Result<String, String> {
    match header.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(format!(
            "jws envelope protected header can't be decoded: json: cannot unmarshal {} into Go \
             struct field jwsProtectedHeader.{key} of type string",
            crate::verify::notation::gojson::json_type(v)
        )),
    }
}

/// Opens a JWS envelope and checks its integrity.
///
/// # Errors
/// notation's integrity failure text.
pub fn open(blob: &[u8]) -> Result<Content, String> {
    let env: Envelope = serde_json::from_slice(blob).map_err(|e| {
        let text = crate::verify::notation::gojson::check_syntax(blob)
            .err()
            .unwrap_or_else(|| e.to_string());
        format!("unable to parse the digital signature, error : {text}")
    })?;
    let chain_b64 = env.header.x5c.unwrap_or_default();
    if chain_b64.is_empty() {
        return Err("certificate chain is not present".into());
    }
    let chain: Vec<Vec<u8>> = chain_b64
        .iter()
        .map(|c| STANDARD.decode(c))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("unable to parse the digital signature, error : {e}"))?;
    let leaf = x509::parse(&chain[0]).map_err(|_| "malformed leaf certificate".to_string())?;

    // The signature over `protected.payload`, with the algorithm the header declares.
    let raw_header = URL_SAFE_NO_PAD.decode(env.protected.as_bytes()).map_err(|e| {
        format!("signature is invalid. Error: token is malformed: could not base64 decode header: {e}")
    })?;
    let header: BTreeMap<String, Value> = serde_json::from_slice(&raw_header).map_err(|e| {
        format!(
            "signature is invalid. Error: token is malformed: could not JSON decode header: {e}"
        )
    })?;
    let alg = string(&header, "alg")?;
    let Some(algorithm) = Algorithm::from_jws(&alg) else {
        return Err(format!(
            "signature is invalid. Error: token is unverifiable: signing method {alg} is invalid"
        ));
    };
    let signature = URL_SAFE_NO_PAD
        .decode(env.signature.as_bytes())
        .map_err(|e| format!("signature is invalid. Error: {e}"))?;
    let payload = URL_SAFE_NO_PAD
        .decode(env.payload.as_bytes())
        .map_err(|e| format!("payload error: {e}"))?;
    if !matches!(
        serde_json::from_slice::<Value>(&payload),
        Ok(Value::Object(_))
    ) {
        return Err(
            "signature is invalid. Error: token is malformed: could not JSON decode claim".into(),
        );
    }
    let signing_input = format!("{}.{}", env.protected, env.payload);
    if !algorithm.verify(&leaf, signing_input.as_bytes(), &signature) {
        let what = if alg.starts_with("PS") {
            "crypto/rsa: verification error"
        } else {
            "crypto/ecdsa: verification error"
        };
        return Err(format!(
            "signature is invalid. Error: token signature is invalid: {what}"
        ));
    }

    // The signed attributes.
    let crit: Vec<String> = match header.get("crit") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or(()))
            .collect::<Result<_, _>>()
            .map_err(|()| {
                "jws envelope protected header can't be decoded: json: cannot unmarshal into \
                 crit"
                    .to_string()
            })?,
        Some(_) => {
            return Err(
                "jws envelope protected header can't be decoded: json: cannot unmarshal into crit"
                    .into(),
            );
        }
    };
    let scheme_name = string(&header, SIGNING_SCHEME)?;
    let cty = string(&header, "cty")?;
    let signing_time = time(&header, SIGNING_TIME)?;
    let authentic_time = time(&header, AUTHENTIC_SIGNING_TIME)?;
    let expiry = time(&header, EXPIRY)?;
    let extended: BTreeMap<&String, &Value> = header
        .iter()
        .filter(|(k, _)| !HEADER_KEYS.contains(&k.as_str()))
        .collect();
    let scheme = Scheme::parse(&scheme_name)
        .ok_or_else(|| format!("unsupported SigningScheme: `{scheme_name}`"))?;
    match scheme {
        Scheme::X509 if authentic_time.is_some() => {
            return Err(format!(
                "\"{AUTHENTIC_SIGNING_TIME}\" header must not be present for notary.x509 signing scheme"
            ));
        }
        Scheme::SigningAuthority if signing_time.is_some() => {
            return Err(format!(
                "\"{SIGNING_TIME}\" header must not be present for notary.x509.signingAuthority \
                 signing scheme"
            ));
        }
        Scheme::SigningAuthority if authentic_time.is_none() => {
            return Err(format!(
                "\"{AUTHENTIC_SIGNING_TIME}\" header must be present for notary.x509 signing scheme"
            ));
        }
        _ => {}
    }
    if crit.is_empty() {
        return Err("missing \"crit\" header".into());
    }
    let mut must: Vec<&str> = vec![SIGNING_SCHEME];
    if expiry.is_some() {
        must.push(EXPIRY);
    }
    if scheme == Scheme::SigningAuthority {
        must.push(AUTHENTIC_SIGNING_TIME);
    }
    for c in &crit {
        if let Some(i) = must.iter().position(|m| m == c) {
            must.remove(i);
        } else if !extended.contains_key(c) {
            return Err(format!(
                "{} header is marked critical but not present",
                go_quote(c)
            ));
        }
    }
    if !must.is_empty() {
        return Err(format!(
            "these required headers are not marked as critical: [{}]",
            must.join(" ")
        ));
    }
    let signing_time = match scheme {
        Scheme::X509 => signing_time,
        Scheme::SigningAuthority => authentic_time,
    };
    let signing_time = validate_content(
        &payload,
        &cty,
        &signature,
        signing_time,
        expiry,
        &chain,
        algorithm,
    )?;
    let critical_extended = extended
        .iter()
        .filter(|(k, _)| crit.contains(k))
        .map(|(k, v)| ((*k).clone(), v.as_str().map(str::to_string)))
        .collect();
    Ok(Content {
        payload,
        algorithm,
        scheme,
        signing_time,
        expiry,
        chain,
        has_timestamp: env
            .header
            .timestamp_signature
            .is_some_and(|t| !t.is_empty()),
        critical_extended,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JWS envelope the test bed's notation signer (notation-go v1.3.2) made with the test
    /// certificate of `x509/testdata`, for a Docker v2 manifest (see the payload).
    pub(crate) const SIGNED: &str = include_str!("../x509/testdata/notary-test.jws");

    #[test]
    fn a_real_envelope_opens_and_a_changed_one_does_not() {
        let content = open(SIGNED.as_bytes()).unwrap();
        assert_eq!(content.scheme, Scheme::X509);
        assert_eq!(content.algorithm, Algorithm::Ps256);
        assert_eq!(content.chain.len(), 1);
        assert!(!content.has_timestamp);
        let payload: Value = serde_json::from_slice(&content.payload).unwrap();
        assert!(payload["targetArtifact"]["digest"].is_string());

        let mut env: Value = serde_json::from_str(SIGNED).unwrap();
        let mut other = env.clone();
        other["payload"] = URL_SAFE_NO_PAD
            .encode(br#"{"targetArtifact":{"mediaType":"x","digest":"sha256:00","size":1}}"#)
            .into();
        let e = open(other.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            e,
            "signature is invalid. Error: token signature is invalid: crypto/rsa: verification error"
        );
        env["header"]["x5c"] = serde_json::json!([]);
        assert_eq!(
            open(env.to_string().as_bytes()).unwrap_err(),
            "certificate chain is not present"
        );
        assert_eq!(
            open(b"").unwrap_err(),
            "unable to parse the digital signature, error : unexpected end of JSON input"
        );
    }

    mod properties {
        use super::super::open;
        use crate::mutation::{config, mutated};
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(config())]

            /// A mutated JWS envelope is opened or refused, never a panic.
            #[test]
            fn mutated_envelopes_never_panic(bytes in mutated(&[super::SIGNED])) {
                let _ = open(&bytes);
            }
        }
    }
}
