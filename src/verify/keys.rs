//! Public keys as Flux reads them from a cosign verification Secret: one PEM block, a PKIX
//! `PUBLIC KEY` (ECDSA P-256/P-384/P-521, RSA, Ed25519) or a PKCS#1 `RSA PUBLIC KEY`, checked
//! the way Flux's verifier is built (`LoadVerifier(key, SHA-256)`: ECDSA over SHA-256 whatever
//! the curve, RSA PKCS#1 v1.5 with SHA-256, plain Ed25519, not Ed25519ph).
//!
//! One deliberate difference: a P-384 or P-521 signature over the curve's own hash (SHA-384,
//! SHA-512) is accepted too, since that is what cosign v2.6 makes with such keys
//! (`LoadDefaultSignerVerifier`); Flux refuses those signatures. Both are signatures by the
//! trusted key over the same payload.
//!
//! The DER is parsed by aws-lc-rs (the crypto library rustls already uses); this file only reads
//! the algorithm identifier to pick the verification algorithm, with a bounded DER walk that
//! never indexes out of range.

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};

/// Why a public key cannot be used. The texts are those of Flux's key loading
/// (sigstore's `cryptoutils.UnmarshalPEMToPublicKey`, Go's `x509.ParsePKIXPublicKey` and
/// `signature.LoadVerifier`) where they exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No PEM block in the data.
    #[error("PEM decoding failed")]
    Pem,
    /// A PEM block of another type (a private key, a certificate).
    #[error("unknown Public key PEM file type: {0}. Are you passing the correct public key?")]
    PemType(String),
    /// The DER is not a public key structure.
    #[error("x509: failed to parse public key")]
    Malformed,
    /// A public key algorithm Go's x509 package does not know.
    #[error("x509: unknown public key algorithm")]
    UnknownAlgorithm,
    /// An elliptic curve other than P-256, P-384 and P-521.
    #[error("x509: unsupported elliptic curve")]
    UnsupportedCurve,
    /// The key's algorithm is known but the key material is invalid for it.
    #[error("x509: invalid {0} public key")]
    InvalidKey(&'static str),
}

/// The kind of a parsed public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// ECDSA on NIST P-521.
    EcdsaP521,
    /// RSA.
    Rsa,
    /// Ed25519.
    Ed25519,
}

impl KeyKind {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::EcdsaP256 => "ecdsa-p256",
            KeyKind::EcdsaP384 => "ecdsa-p384",
            KeyKind::EcdsaP521 => "ecdsa-p521",
            KeyKind::Rsa => "rsa",
            KeyKind::Ed25519 => "ed25519",
        }
    }

    // Flux loads every key with SHA-256 (`signature.LoadVerifier(key, crypto.SHA256)`), so a
    // P-384 or P-521 key verifies ECDSA over SHA-256 and RSA is PKCS#1 v1.5 with SHA-256; Go
    // accepts RSA keys from 1024 bits. The curve's own hash follows for P-384 and P-521 (see
    // the module documentation).
    fn algorithms(self) -> &'static [&'static dyn VerificationAlgorithm] {
        match self {
            KeyKind::EcdsaP256 => &[&signature::ECDSA_P256_SHA256_ASN1],
            KeyKind::EcdsaP384 => &[
                &signature::ECDSA_P384_SHA256_ASN1,
                &signature::ECDSA_P384_SHA384_ASN1,
            ],
            KeyKind::EcdsaP521 => &[
                &signature::ECDSA_P521_SHA256_ASN1,
                &signature::ECDSA_P521_SHA512_ASN1,
            ],
            KeyKind::Rsa => &[&signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY],
            KeyKind::Ed25519 => &[&signature::ED25519],
        }
    }

    fn name(self) -> &'static str {
        match self {
            KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => "ECDSA",
            KeyKind::Rsa => "RSA",
            KeyKind::Ed25519 => "Ed25519",
        }
    }
}

/// A public key that verifies cosign signatures.
pub struct PublicKey {
    kind: KeyKind,
    /// The key parsed once for each accepted algorithm.
    keys: Vec<ParsedPublicKey>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Parses the first PEM block of `data` (text around it is ignored, as Go's `pem.Decode`
    /// does).
    ///
    /// # Errors
    /// [`KeyError`] when there is no PEM block, the block is not a public key, or the key is
    /// malformed or of an unsupported type.
    pub fn from_pem(data: &[u8]) -> Result<PublicKey, KeyError> {
        let block = pem::parse(data).map_err(|_| KeyError::Pem)?;
        match block.tag() {
            "PUBLIC KEY" => PublicKey::from_spki_der(block.contents()),
            "RSA PUBLIC KEY" => PublicKey::parse(KeyKind::Rsa, block.contents()),
            other => Err(KeyError::PemType(other.to_string())),
        }
    }

    /// Parses a DER `SubjectPublicKeyInfo`.
    ///
    /// # Errors
    /// [`KeyError`] when the structure is malformed or the algorithm unsupported.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        PublicKey::parse(spki_kind(der)?, der)
    }

    fn parse(kind: KeyKind, der: &[u8]) -> Result<PublicKey, KeyError> {
        let keys = kind
            .algorithms()
            .iter()
            .map(|&alg| {
                ParsedPublicKey::new(alg, der).map_err(|_| KeyError::InvalidKey(kind.name()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PublicKey { kind, keys })
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Whether `signature` is a valid signature of `message` by this key.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.keys
            .iter()
            .any(|key| key.verify_sig(message, signature).is_ok())
    }
}

// DER encodings (tag, length, value) of the object identifiers that matter here.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];

const TAG_SEQUENCE: u8 = 0x30;
const TAG_OID: u8 = 0x06;
const TAG_BIT_STRING: u8 = 0x03;

/// The key kind named by a `SubjectPublicKeyInfo`'s algorithm identifier.
fn spki_kind(der: &[u8]) -> Result<KeyKind, KeyError> {
    let (spki, rest) = read_tlv(der, TAG_SEQUENCE)?;
    if !rest.is_empty() {
        return Err(KeyError::Malformed);
    }
    let (algorithm, rest) = read_tlv(spki, TAG_SEQUENCE)?;
    let (_key_bits, rest) = read_tlv(rest, TAG_BIT_STRING)?;
    if !rest.is_empty() {
        return Err(KeyError::Malformed);
    }
    let (oid, params) = read_tlv(algorithm, TAG_OID)?;
    match oid {
        OID_EC_PUBLIC_KEY => {
            let (curve, rest) = read_tlv(params, TAG_OID).map_err(|_| KeyError::Malformed)?;
            if !rest.is_empty() {
                return Err(KeyError::Malformed);
            }
            match curve {
                OID_P256 => Ok(KeyKind::EcdsaP256),
                OID_P384 => Ok(KeyKind::EcdsaP384),
                OID_P521 => Ok(KeyKind::EcdsaP521),
                _ => Err(KeyError::UnsupportedCurve),
            }
        }
        OID_RSA_ENCRYPTION => Ok(KeyKind::Rsa),
        OID_ED25519 => Ok(KeyKind::Ed25519),
        _ => Err(KeyError::UnknownAlgorithm),
    }
}

/// One DER element of type `tag` at the start of `input`: its value and what follows it.
fn read_tlv(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), KeyError> {
    let (&found, rest) = input.split_first().ok_or(KeyError::Malformed)?;
    if found != tag {
        return Err(KeyError::Malformed);
    }
    let (&first, mut rest) = rest.split_first().ok_or(KeyError::Malformed)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // Long form: 1 to 4 length bytes (no key comes near 4 GiB), minimal as DER requires.
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err(KeyError::Malformed);
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        if bytes.first() == Some(&0) {
            return Err(KeyError::Malformed);
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return Err(KeyError::Malformed);
        }
        len
    };
    if rest.len() < len {
        return Err(KeyError::Malformed);
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
        ECDSA_P521_SHA256_ASN1_SIGNING, ECDSA_P521_SHA512_ASN1_SIGNING, EcdsaKeyPair,
        Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
    };
    use base64::Engine as _;

    /// A P-384 key (made with `openssl ecparam -name secp384r1`) and its signatures of
    /// `payload` made with `openssl dgst -sha256 -sign` and `openssl dgst -sha384 -sign`.
    const P384_PEM: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEOsy/SaUx1r6OaP2DO/ZWuLJqWFrjSWLb
z1Tg1iV8Kd4d8V0k2i4JIU0tzQUSSO7AkLzrtTAleIlwqd7N3JUd3CPRlzIPayji
Mz9uCxfKYh6Tq7m3a3nC9yR9aFl9P+aZ
-----END PUBLIC KEY-----
";
    const P384_SHA256_SIG: &str = "MGUCMQDjiF5YFnrwqsV7C6kVv7ktlXSZvP+pdpHq3d0isPAUhFqXel2qCvBkkzw9ZoNCbl4CMC6NTtmjQiUXNXQH4VLHPO9YkoLlTdrFbpwfaSysnLiCiANXmaJ1iQ2sosAdjXH4Fw==";
    const P384_SHA384_SIG: &str = "MGUCMA/daWBkdFt9wV4z6hddjdqwTMVlfITU3hikxCHbu3xD7SEgqCJWsSREZI+cvKAKWQIxAKV5HWfy9PXJ+jkrPL+TY6KC6IHSAaeetuJAiFWWQ277QYVzUWT95xs7utPngkE7tg==";

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    fn pem_of(tag: &str, der: &[u8]) -> Vec<u8> {
        pem::encode(&pem::Pem::new(tag, der.to_vec())).into_bytes()
    }

    fn ecdsa(alg: &'static aws_lc_rs::signature::EcdsaSigningAlgorithm) -> (EcdsaKeyPair, Vec<u8>) {
        let pair = EcdsaKeyPair::generate(alg).unwrap();
        let der = pair.public_key().as_der().unwrap().as_ref().to_vec();
        (pair, pem_of("PUBLIC KEY", &der))
    }

    #[test]
    fn ecdsa_keys_verify_sha256_signatures_on_every_curve() {
        let rng = SystemRandom::new();
        for (alg, kind) in [
            (&ECDSA_P256_SHA256_ASN1_SIGNING, KeyKind::EcdsaP256),
            (&ECDSA_P521_SHA256_ASN1_SIGNING, KeyKind::EcdsaP521),
        ] {
            let (pair, pem) = ecdsa(alg);
            let key = PublicKey::from_pem(&pem).unwrap();
            assert_eq!(key.kind(), kind);
            let sig = pair.sign(&rng, b"payload").unwrap();
            assert!(key.verifies(b"payload", sig.as_ref()), "{kind:?}");
            assert!(!key.verifies(b"payload!", sig.as_ref()), "{kind:?}");
        }
    }

    #[test]
    fn p384_keys_check_sha256_as_flux_does_and_sha384_as_cosign_signs() {
        let key = PublicKey::from_pem(P384_PEM.as_bytes()).unwrap();
        assert_eq!(key.kind(), KeyKind::EcdsaP384);
        for sig in [P384_SHA256_SIG, P384_SHA384_SIG] {
            assert!(key.verifies(b"payload", &b64(sig)));
            assert!(!key.verifies(b"payload!", &b64(sig)));
        }
        let rng = SystemRandom::new();
        for alg in [
            &ECDSA_P384_SHA384_ASN1_SIGNING,
            &ECDSA_P521_SHA512_ASN1_SIGNING,
        ] {
            let (pair, pem) = ecdsa(alg);
            let key = PublicKey::from_pem(&pem).unwrap();
            let sig = pair.sign(&rng, b"payload").unwrap();
            assert!(key.verifies(b"payload", sig.as_ref()));
            assert!(!key.verifies(b"other", sig.as_ref()));
        }
    }

    #[test]
    fn rsa_keys_verify_pkcs1v15_sha256_in_pkix_and_pkcs1_form() {
        let rng = SystemRandom::new();
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs1 = pair.public_key().as_ref().to_vec();
        let mut sig = vec![0; pair.public_modulus_len()];
        pair.sign(&RSA_PKCS1_SHA256, &rng, b"payload", &mut sig)
            .unwrap();
        let spki = pair.public_key().as_der().unwrap().as_ref().to_vec();
        for key in [
            PublicKey::from_pem(&pem_of("PUBLIC KEY", &spki)).unwrap(),
            PublicKey::from_pem(&pem_of("RSA PUBLIC KEY", &pkcs1)).unwrap(),
        ] {
            assert_eq!(key.kind(), KeyKind::Rsa);
            assert!(key.verifies(b"payload", &sig));
            assert!(!key.verifies(b"other", &sig));
        }
    }

    #[test]
    fn ed25519_keys_verify_plain_ed25519_signatures() {
        let pair = Ed25519KeyPair::generate().unwrap();
        let der = pair.public_key().as_der().unwrap().as_ref().to_vec();
        let key = PublicKey::from_pem(&pem_of("PUBLIC KEY", &der)).unwrap();
        assert_eq!(key.kind(), KeyKind::Ed25519);
        let sig = pair.sign(b"payload");
        assert!(key.verifies(b"payload", sig.as_ref()));
        assert!(!key.verifies(b"payload2", sig.as_ref()));
    }

    #[test]
    fn text_around_the_pem_block_is_ignored() {
        let (_, pem) = ecdsa(&ECDSA_P256_SHA256_ASN1_SIGNING);
        let mut data = b"a comment line\n".to_vec();
        data.extend_from_slice(&pem);
        data.extend_from_slice(b"\ntrailing");
        assert_eq!(
            PublicKey::from_pem(&data).unwrap().kind(),
            KeyKind::EcdsaP256
        );
    }

    #[test]
    fn unusable_keys_fail_with_flux_texts() {
        assert_eq!(
            PublicKey::from_pem(b"not a key").unwrap_err().to_string(),
            "PEM decoding failed"
        );
        let private = pem_of("EC PRIVATE KEY", &[1, 2, 3]);
        assert_eq!(
            PublicKey::from_pem(&private).unwrap_err().to_string(),
            "unknown Public key PEM file type: EC PRIVATE KEY. Are you passing the correct public key?"
        );
        assert_eq!(
            PublicKey::from_pem(&pem_of("PUBLIC KEY", b"garbage")).unwrap_err(),
            KeyError::Malformed
        );
        // An SPKI with DSA's algorithm identifier.
        let dsa = [
            0x30, 0x0d, 0x30, 0x09, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01, 0x03,
            0x00,
        ];
        assert_eq!(
            PublicKey::from_spki_der(&dsa).unwrap_err().to_string(),
            "x509: unknown public key algorithm"
        );
        // ECDSA on P-224.
        let p224 = [
            0x30, 0x14, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x05, 0x2b, 0x81, 0x04, 0x00, 0x21, 0x03, 0x00,
        ];
        assert_eq!(
            PublicKey::from_spki_der(&p224).unwrap_err(),
            KeyError::UnsupportedCurve
        );
        // A P-256 identifier with a broken point.
        let (_, good) = ecdsa(&ECDSA_P256_SHA256_ASN1_SIGNING);
        let mut der = pem::parse(&good).unwrap().contents().to_vec();
        let last = der.len() - 1;
        der[last] ^= 0xff;
        assert_eq!(
            PublicKey::from_spki_der(&der).unwrap_err(),
            KeyError::InvalidKey("ECDSA")
        );
    }

    #[test]
    fn der_lengths_are_read_strictly() {
        assert!(read_tlv(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0], 0x30).is_err()); // not minimal
        assert!(read_tlv(&[0x30, 0x82, 0x00, 0x80], 0x30).is_err()); // leading zero
        assert!(read_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1], 0x30).is_err()); // too long a length
        assert!(read_tlv(&[0x30, 0x03, 0, 0], 0x30).is_err()); // truncated
        assert!(read_tlv(&[0x30, 0x80], 0x30).is_err()); // indefinite length
        assert_eq!(
            read_tlv(&[0x30, 0x01, 7, 9], 0x30).unwrap(),
            (&[7u8][..], &[9u8][..])
        );
    }

    mod properties {
        use super::super::PublicKey;
        use crate::mutation::{config, mutated};
        use proptest::prelude::*;

        /// Real keys of each kind (P-256, P-384, Ed25519, RSA in PKCS#1 form) and a private key.
        const KEYS: &[&str] = &[
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfqc5kcyrRldipzGbZMB+VY9qqp9e\n\
             8N7Xgjc89o1lEuUnkkeaWwh8CkIgyPI1ZYIvi8crfW+YwpIOw5l7kcjBVw==\n-----END PUBLIC KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEOsy/SaUx1r6OaP2DO/ZWuLJqWFrjSWLb\n\
             z1Tg1iV8Kd4d8V0k2i4JIU0tzQUSSO7AkLzrtTAleIlwqd7N3JUd3CPRlzIPayji\n\
             Mz9uCxfKYh6Tq7m3a3nC9yR9aFl9P+aZ\n-----END PUBLIC KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAmOm0q/84de1ywCnSVAHqftZknyPwwGG3dACIVwwQSD0=\n\
             -----END PUBLIC KEY-----\n",
            "-----BEGIN RSA PUBLIC KEY-----\nMIGJAoGBAL7rgPW+yV11uWE1fTRXfBi78M6F1NH9elVXHveDbHECzw9rq0j5GJHF\n\
             VTiQ2m4dKvAGmQ7HKJC/IEO2ZnQ2r9f0CSwdU+o0R9TE61xlvNOVLdZdlkYq+ipd\n\
             rtD9zrAbrUmzL1vzjlEkmGKZokdsvdVKTReIq+lARex2UCoFSriRAgMBAAE=\n-----END RSA PUBLIC KEY-----\n",
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        ];

        #[test]
        fn the_seed_keys_parse() {
            for seed in &KEYS[..4] {
                assert!(PublicKey::from_pem(seed.as_bytes()).is_ok(), "{seed}");
            }
        }

        proptest! {
            #![proptest_config(config())]

            /// A mutated PEM key is read or refused; a key read checks any signature without
            /// panicking.
            #[test]
            fn mutated_keys_never_panic(bytes in mutated(KEYS), message in any::<Vec<u8>>()) {
                if let Ok(key) = PublicKey::from_pem(&bytes) {
                    let _ = key.verifies(&message, &bytes);
                }
            }

            /// Any DER at all.
            #[test]
            fn arbitrary_der_never_panics(der in proptest::collection::vec(any::<u8>(), 0..160)) {
                let _ = PublicKey::from_spki_der(&der);
            }
        }
    }
}
