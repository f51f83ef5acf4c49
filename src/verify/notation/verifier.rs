//! One signature envelope verified against the applicable trust policy statement, as
//! notation-go's verifier does: integrity (always enforced), authenticity (the chain holds a
//! trust store certificate of the scheme's store type, and the leaf's subject matches a trusted
//! identity), expiry, authentic timestamp (certificate validity at verification time, or at the
//! authentic signing time), revocation; each failure enforced or logged as the level says.
//!
//! Not built: RFC 3161 timestamp countersignatures (a policy with a `tsa` store that needs one
//! fails that check) and OCSP/CRL revocation (a certificate naming a responder or distribution
//! point fails that check, as "unknown" does in notation). See the README.

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use super::dn;
use super::envelope::{self, Content, Scheme};
use super::gotext::{go_quote, go_quote_maps, rfc1123z};
use super::policy::{Action, Check, Level, Statement};
use super::x509::{self, TrustStore};

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// What its failure does at this level.
    pub action: Action,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// A signature that verified (enforced checks passed), with the checks' results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The results, failures of logged checks included.
    pub results: Vec<CheckResult>,
}

/// The subject descriptor as the verified artifact has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Media type.
    pub media_type: String,
    /// Digest.
    pub digest: String,
    /// Size.
    pub size: u64,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "targetArtifact")]
    target: PayloadTarget,
}

#[derive(Deserialize)]
struct PayloadTarget {
    #[serde(default, rename = "mediaType")]
    media_type: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    size: i64,
}

/// Records `error` for `check`; an enforced failure ends the verification.
fn record(
    results: &mut Vec<CheckResult>,
    level: &Level,
    check: Check,
    error: Option<String>,
) -> Result<(), String> {
    let action = level.action(check);
    if let (Action::Enforce, Some(e)) = (action, &error) {
        return Err(e.clone());
    }
    if let (Action::Log, Some(e)) = (action, &error) {
        tracing::warn!(
            "{} validation failed with validation action set to \"logged\". Failure reason: {e}",
            check.as_str()
        );
    }
    results.push(CheckResult {
        check,
        action,
        error,
    });
    Ok(())
}

/// Verifies one envelope (`media_type`, `blob`) for `target` under `statement` at `level`.
///
/// # Errors
/// The text of the first enforced failure.
pub fn verify(
    media_type: &str,
    blob: &[u8],
    target: &Target,
    statement: &Statement,
    level: &Level,
    store: &TrustStore,
    now: Timestamp,
) -> Result<Outcome, String> {
    let content = envelope::open(media_type, blob)?;
    let mut results = vec![CheckResult {
        check: Check::Integrity,
        action: level.action(Check::Integrity),
        error: None,
    }];
    if content
        .critical_extended
        .iter()
        .any(|(k, v)| k == "io.cncf.notary.verificationPlugin" && v.is_some())
    {
        return Err("plugin unsupported due to nil verifier.pluginManager".into());
    }
    let certs = content
        .chain
        .iter()
        .map(|der| x509::parse(der))
        .collect::<Result<Vec<_>, _>>()?;

    let authenticity = authenticity(&content, statement, store);
    let identity = if authenticity.is_some() && level.action(Check::Authenticity) == Action::Enforce
    {
        authenticity
    } else {
        identities(statement, &certs).err().or(authenticity)
    };
    record(&mut results, level, Check::Authenticity, identity)?;

    let expired = content.expiry.filter(|e| now >= *e).map(|e| {
        format!(
            "digital signature has expired on {}",
            go_quote(&rfc1123z(e))
        )
    });
    record(&mut results, level, Check::Expiry, expired)?;

    let timestamp = authentic_timestamp(&content, statement, &certs, now);
    record(&mut results, level, Check::AuthenticTimestamp, timestamp)?;

    if level.action(Check::Revocation) != Action::Skip {
        let unknown = certs.iter().find(|c| x509::has_revocation_info(c)).map(|c| {
            format!(
                "signing certificate with subject {} revocation status is unknown: OCSP and CRL \
                 revocation checks are not supported by ocisource",
                x509::quoted_subject(c)
            )
        });
        record(&mut results, level, Check::Revocation, unknown)?;
    }

    let payload: Payload =
        serde_json::from_slice(&content.payload).map_err(|e| format!("json: {e}"))?;
    let t = payload.target;
    if t.media_type != target.media_type
        || t.digest != target.digest
        || u64::try_from(t.size).ok() != Some(target.size)
    {
        tracing::info!(
            signed = %format!("{} {} {}", t.media_type, t.digest, t.size),
            verified = %format!("{} {} {}", target.media_type, target.digest, target.size),
            "target artifact in the signature payload differs"
        );
        return Err("content descriptor mismatch".into());
    }
    Ok(Outcome { results })
}

/// The chain holds a certificate of the store type the scheme needs (`ca` for `notary.x509`,
/// `signingAuthority` for `notary.x509.signingAuthority`), from the stores the statement lists.
fn authenticity(content: &Content, statement: &Statement, store: &TrustStore) -> Option<String> {
    let wanted = match content.scheme {
        Scheme::X509 => "ca",
        Scheme::SigningAuthority => "signingAuthority",
    };
    let mut trusted: Vec<&[u8]> = Vec::new();
    let mut seen = Vec::new();
    for s in &statement.trust_stores {
        if seen.contains(s) {
            continue;
        }
        let Some((kind, name)) = s.split_once(':') else {
            return Some(format!(
                "error while loading the trust store, trust policy statement {} is missing \
                 separator in trust store value {}. The required format is \
                 <TrustStoreType>:<TrustStoreName>",
                go_quote(&statement.name),
                go_quote(s)
            ));
        };
        if kind != wanted {
            continue;
        }
        match store.certificates(name) {
            Ok(certs) => trusted.extend(certs.iter().map(Vec::as_slice)),
            Err(e) => return Some(e),
        }
        seen.push(s.clone());
    }
    if trusted.is_empty() {
        return Some("no trusted certificates are found to verify authenticity".into());
    }
    let found = content
        .chain
        .iter()
        .any(|c| trusted.contains(&c.as_slice()));
    (!found).then(|| {
        "the signature's certificate chain does not contain any trusted certificate".to_string()
    })
}

/// The leaf's subject matches one of the statement's `x509.subject` identities (or `*`).
fn identities(
    statement: &Statement,
    certs: &[x509_parser::prelude::X509Certificate<'_>],
) -> Result<(), String> {
    let name = go_quote(&statement.name);
    if statement.trusted_identities.iter().any(|i| i == "*") {
        return Ok(());
    }
    let mut trusted = Vec::new();
    for identity in &statement.trusted_identities {
        if let Some(dn) = super::policy::x509_identity(&name, identity)? {
            trusted.push(dn?);
        }
    }
    if trusted.is_empty() {
        return Err(format!(
            "no x509 trusted identities are configured in the trust policy {name}"
        ));
    }
    let Some(leaf) = certs.first() else {
        return Err("certificate chain is not present".into());
    };
    let leaf_dn = dn::parse(&x509::subject_string(leaf)).map_err(|e| {
        format!(
            "error while parsing the certificate subject from the digital signature. error : {}",
            go_quote(&e)
        )
    })?;
    if trusted.iter().any(|t| dn::is_subset(t, &leaf_dn)) {
        return Ok(());
    }
    Err(format!(
        "signing certificate from the digital signature does not match the X.509 trusted \
         identities {} defined in the trust policy {name}",
        go_quote_maps(&trusted)
    ))
}

/// Certificate validity: at verification time for `notary.x509` (unless a `tsa` store asks
/// for a timestamp countersignature), at the authentic signing time for
/// `notary.x509.signingAuthority`.
fn authentic_timestamp(
    content: &Content,
    statement: &Statement,
    certs: &[x509_parser::prelude::X509Certificate<'_>],
    now: Timestamp,
) -> Option<String> {
    if content.scheme == Scheme::SigningAuthority {
        let at = content.signing_time;
        return certs.iter().find_map(|c| {
            let (from, to) = x509::validity(c);
            (at < from || at > to).then(|| {
                format!(
                    "certificate {} was not valid when the digital signature was produced at {}",
                    x509::quoted_subject(c),
                    go_quote(&rfc1123z(at))
                )
            })
        });
    }
    let tsa = statement
        .trust_stores
        .iter()
        .any(|s| s.split_once(':').is_some_and(|(k, _)| k == "tsa"));
    let expired = certs.iter().any(|c| now > x509::validity(c).1);
    let needs_timestamp =
        tsa && (expired || statement.signature_verification.verify_timestamp != "afterCertExpiry");
    if !needs_timestamp {
        return certs.iter().find_map(|c| {
            let (from, to) = x509::validity(c);
            if now < from {
                Some(format!(
                    "verification time is before certificate {} validity period, it will be \
                     valid from {}",
                    x509::quoted_subject(c),
                    go_quote(&rfc1123z(from))
                ))
            } else if now > to {
                Some(format!(
                    "verification time is after certificate {} validity period, it was expired \
                     at {}",
                    x509::quoted_subject(c),
                    go_quote(&rfc1123z(to))
                ))
            } else {
                None
            }
        });
    }
    if !content.has_timestamp {
        return Some("no timestamp countersignature was found in the signature envelope".into());
    }
    Some(
        "failed to verify the timestamp countersignature: RFC 3161 timestamps are not supported \
         by ocisource"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::policy::SignatureVerification;
    use super::*;

    fn statement(level: &str, identities: &[&str]) -> Statement {
        Statement {
            name: "test-statement-name".into(),
            registry_scopes: vec!["*".into()],
            signature_verification: SignatureVerification {
                level: level.into(),
                ..Default::default()
            },
            trust_stores: vec!["ca:flux".into()],
            trusted_identities: identities.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn target() -> Target {
        Target {
            media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
            digest: "sha256:21012efaeb3b5ccca4b0eb5f4402f63496efa94983dc23ed42e9bbb3c7978edb"
                .into(),
            size: 423,
        }
    }

    fn run(
        s: &Statement,
        now: &str,
        store: &TrustStore,
        target: &Target,
    ) -> Result<Outcome, String> {
        let level = s.signature_verification.level().unwrap();
        let now: Timestamp = now.parse().unwrap();
        verify(
            envelope::jws::MEDIA_TYPE,
            include_bytes!("x509/testdata/notary-test.jws"),
            target,
            s,
            &level,
            store,
            now,
        )
    }

    const DURING: &str = "2026-12-04T20:00:00Z";
    const AFTER: &str = "2026-12-06T00:00:00Z";

    #[test]
    fn levels_decide_what_a_failed_check_does() {
        let store = TrustStore::of(vec![x509::tests::test_der()]);
        let ok = statement("strict", &["x509.subject: C=US, ST=WA, O=Notary"]);
        assert!(run(&ok, DURING, &store, &target()).is_ok());

        // A wrong identity: refused when authenticity is enforced, logged under audit.
        let wrong = statement("permissive", &["x509.subject: C=US, ST=WA, O=Other"]);
        assert_eq!(
            run(&wrong, DURING, &store, &target()).unwrap_err(),
            "signing certificate from the digital signature does not match the X.509 trusted \
             identities [map[\"C\":\"US\" \"O\":\"Other\" \"ST\":\"WA\"]] defined in the trust \
             policy \"test-statement-name\""
        );
        let audit = statement("audit", &["x509.subject: C=US, ST=WA, O=Other"]);
        let outcome = run(&audit, DURING, &store, &target()).unwrap();
        assert!(
            outcome
                .results
                .iter()
                .any(|r| r.check == Check::Authenticity && r.error.is_some())
        );

        // A store without the signer's certificate.
        let empty = TrustStore::of(vec![]);
        assert_eq!(
            run(&ok, DURING, &empty, &target()).unwrap_err(),
            "no trusted certificates are found to verify authenticity"
        );

        // An expired certificate: enforced by strict, logged by permissive.
        let e = run(&ok, AFTER, &store, &target()).unwrap_err();
        assert!(e.starts_with("verification time is after certificate \"CN=test,O=Notary,L=Seattle,ST=WA,C=US\" validity period"), "{e}");
        let permissive = statement("permissive", &["*"]);
        assert!(run(&permissive, AFTER, &store, &target()).is_ok());

        // The payload must name the verified manifest.
        let mut other = target();
        other.size = 424;
        assert_eq!(
            run(&ok, DURING, &store, &other).unwrap_err(),
            "content descriptor mismatch"
        );
    }

    /// A self-signed ECDSA P-256 code-signing certificate (C=US, ST=WA, O=Test), with CRL
    /// distribution points when `crl`, and a JWS envelope (ES256) it signs for [`target`].
    fn es256_signature(crl: bool) -> (Vec<u8>, Vec<u8>) {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "US");
        params
            .distinguished_name
            .push(rcgen::DnType::StateOrProvinceName, "WA");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Test");
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
        if crl {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec!["http://crl.example/test.crl".into()],
            }];
        }
        let cert = params.self_signed(&key).unwrap().der().to_vec();
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der())
                .unwrap();
        let t = target();
        let header = URL_SAFE_NO_PAD.encode(
            serde_json::json!({
                "alg": "ES256", "cty": envelope::PAYLOAD_MEDIA_TYPE,
                "crit": ["io.cncf.notary.signingScheme"],
                "io.cncf.notary.signingScheme": "notary.x509",
                "io.cncf.notary.signingTime": "2026-01-01T00:00:00Z",
            })
            .to_string(),
        );
        let payload = URL_SAFE_NO_PAD.encode(
            serde_json::json!({"targetArtifact": {
                "mediaType": t.media_type, "digest": t.digest, "size": t.size,
            }})
            .to_string(),
        );
        let input = format!("{header}.{payload}");
        let sig = signer
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        let env = serde_json::json!({
            "protected": header, "payload": payload,
            "signature": URL_SAFE_NO_PAD.encode(sig.as_ref()),
            "header": {"x5c": [STANDARD.encode(&cert)]},
        });
        (cert, env.to_string().into_bytes())
    }

    #[test]
    fn chains_with_revocation_endpoints_fail_where_revocation_is_enforced() {
        let now: Timestamp = k8s_openapi::jiff::Timestamp::now();
        let check = |crl: bool, level: &str, overrides: &[(&str, &str)]| {
            let (cert, envelope) = es256_signature(crl);
            let mut s = statement(level, &["x509.subject: C=US, ST=WA, O=Test"]);
            s.signature_verification.override_ = overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let level = s.signature_verification.level().unwrap();
            verify(
                envelope::jws::MEDIA_TYPE,
                &envelope,
                &target(),
                &s,
                &level,
                &TrustStore::of(vec![cert]),
                now,
            )
        };
        // Without revocation endpoints, as notation's "non-revokable": verified.
        assert!(check(false, "strict", &[]).is_ok());
        let e = check(true, "strict", &[]).unwrap_err();
        assert_eq!(
            e,
            "signing certificate with subject \"O=Test,ST=WA,C=US\" revocation status is \
             unknown: OCSP and CRL revocation checks are not supported by ocisource"
        );
        let logged = check(true, "permissive", &[]).unwrap();
        assert!(
            logged
                .results
                .iter()
                .any(|r| r.check == Check::Revocation && r.error.is_some())
        );
        assert!(check(true, "strict", &[("revocation", "skip")]).is_ok());
    }
}
