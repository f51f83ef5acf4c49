//! Content digests: the `--artifact-digest-algo` algorithms, `<algo>:<hex>` parsing and a
//! writer that hashes and counts the bytes passing through it in the same pass.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use sha2::Digest as _;

/// A digest algorithm accepted by `--artifact-digest-algo` and in `artifact.digest`.
///
/// Flux also registers `sha1`; it is not offered here (no supported configuration writes it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// SHA-256, the default (`sha256`).
    #[default]
    Sha256,
    /// SHA-384 (`sha384`).
    Sha384,
    /// SHA-512 (`sha512`).
    Sha512,
    /// BLAKE3 with a 256-bit output (`blake3`).
    Blake3,
}

impl DigestAlgorithm {
    /// Every supported algorithm, in flag-help order.
    pub const ALL: [DigestAlgorithm; 4] = [Self::Sha256, Self::Sha384, Self::Sha512, Self::Blake3];

    /// The name used in flags and as the `<algo>` prefix of a digest string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
            Self::Blake3 => "blake3",
        }
    }

    /// Number of lower-case hex characters in an encoded digest of this algorithm.
    #[must_use]
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 | Self::Blake3 => 64,
            Self::Sha384 => 96,
            Self::Sha512 => 128,
        }
    }

    /// A fresh incremental hasher for this algorithm.
    #[must_use]
    pub fn hasher(self) -> Hasher {
        Hasher(match self {
            Self::Sha256 => HasherImpl::Sha256(sha2::Sha256::new()),
            Self::Sha384 => HasherImpl::Sha384(sha2::Sha384::new()),
            Self::Sha512 => HasherImpl::Sha512(sha2::Sha512::new()),
            Self::Blake3 => HasherImpl::Blake3(Box::new(blake3::Hasher::new())),
        })
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The algorithm name is not one of [`DigestAlgorithm::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported digest algorithm {name:?} (supported: sha256, sha384, sha512, blake3)")]
pub struct UnknownAlgorithm {
    /// The rejected name.
    pub name: String,
}

impl FromStr for DigestAlgorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAlgorithm { name: s.to_owned() })
    }
}

/// A parsed, validated `<algo>:<hex>` digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

/// Why a digest string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    /// No `:` separates algorithm and encoded value.
    #[error("invalid digest format")]
    Format,
    /// The algorithm is not supported.
    #[error(transparent)]
    Algorithm(#[from] UnknownAlgorithm),
    /// The encoded value is not lower-case hex of the algorithm's length.
    #[error("invalid checksum digest format")]
    Encoding,
}

impl Digest {
    /// Builds a digest from raw hash output.
    #[must_use]
    pub fn from_bytes(algorithm: DigestAlgorithm, bytes: &[u8]) -> Self {
        Self {
            algorithm,
            hex: to_hex(bytes),
        }
    }

    /// The algorithm.
    #[must_use]
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The lower-case hex encoding.
    #[must_use]
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    /// Parses `<algo>:<hex>`, requiring lower-case hex of the algorithm's length as
    /// opencontainers/go-digest does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algo, hex) = s.split_once(':').ok_or(DigestParseError::Format)?;
        let algorithm: DigestAlgorithm = algo.parse()?;
        let valid = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(DigestParseError::Encoding);
        }
        Ok(Self {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

/// An incremental hasher for one [`DigestAlgorithm`].
pub struct Hasher(HasherImpl);

enum HasherImpl {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    // Boxed: blake3's hasher is ~2 KiB, far larger than the others.
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            HasherImpl::Sha256(h) => h.update(data),
            HasherImpl::Sha384(h) => h.update(data),
            HasherImpl::Sha512(h) => h.update(data),
            HasherImpl::Blake3(h) => {
                h.update(data);
            }
        }
    }

    /// Finishes and returns the digest.
    #[must_use]
    pub fn finalize(self) -> Digest {
        match self.0 {
            HasherImpl::Sha256(h) => Digest::from_bytes(DigestAlgorithm::Sha256, &h.finalize()),
            HasherImpl::Sha384(h) => Digest::from_bytes(DigestAlgorithm::Sha384, &h.finalize()),
            HasherImpl::Sha512(h) => Digest::from_bytes(DigestAlgorithm::Sha512, &h.finalize()),
            HasherImpl::Blake3(h) => {
                Digest::from_bytes(DigestAlgorithm::Blake3, h.finalize().as_bytes())
            }
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algo = match self.0 {
            HasherImpl::Sha256(_) => DigestAlgorithm::Sha256,
            HasherImpl::Sha384(_) => DigestAlgorithm::Sha384,
            HasherImpl::Sha512(_) => DigestAlgorithm::Sha512,
            HasherImpl::Blake3(_) => DigestAlgorithm::Blake3,
        };
        f.debug_tuple("Hasher").field(&algo).finish()
    }
}

/// A writer that hashes and counts every byte it forwards to the inner writer.
#[derive(Debug)]
pub struct DigestWriter<W> {
    inner: W,
    hasher: Hasher,
    written: u64,
}

impl<W: Write> DigestWriter<W> {
    /// Wraps `inner`, hashing with `algorithm`.
    pub fn new(inner: W, algorithm: DigestAlgorithm) -> Self {
        Self {
            inner,
            hasher: algorithm.hasher(),
            written: 0,
        }
    }

    /// Returns the inner writer, the digest and the number of bytes written.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.hasher.finalize(), self.written)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // Only what the inner writer accepted is hashed, so a short write stays consistent.
        let accepted = buf.get(..n).unwrap_or(buf);
        self.hasher.update(accepted);
        self.written += accepted.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(algo: DigestAlgorithm, data: &[u8]) -> String {
        let mut h = algo.hasher();
        h.update(data);
        h.finalize().to_string()
    }

    #[test]
    fn known_answers_match_the_reference_values() {
        assert_eq!(
            digest_of(DigestAlgorithm::Sha256, b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            digest_of(DigestAlgorithm::Sha384, b"abc"),
            "sha384:cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7"
        );
        assert_eq!(
            digest_of(DigestAlgorithm::Sha512, b"abc"),
            "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(
            digest_of(DigestAlgorithm::Blake3, b""),
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn algorithm_names_round_trip_and_unknown_names_are_rejected() {
        for a in DigestAlgorithm::ALL {
            assert_eq!(a.as_str().parse::<DigestAlgorithm>(), Ok(a));
        }
        assert!("sha1".parse::<DigestAlgorithm>().is_err());
        assert!("SHA256".parse::<DigestAlgorithm>().is_err());
        assert_eq!(DigestAlgorithm::default(), DigestAlgorithm::Sha256);
    }

    #[test]
    fn digest_strings_are_validated() {
        let ok = format!("sha256:{}", "a".repeat(64));
        assert_eq!(ok.parse::<Digest>().map(|d| d.to_string()), Ok(ok.clone()));
        assert_eq!("sha256".parse::<Digest>(), Err(DigestParseError::Format));
        assert_eq!(
            format!("sha256:{}", "A".repeat(64)).parse::<Digest>(),
            Err(DigestParseError::Encoding)
        );
        assert_eq!(
            format!("sha256:{}", "a".repeat(63)).parse::<Digest>(),
            Err(DigestParseError::Encoding)
        );
        assert!(matches!(
            format!("md5:{}", "a".repeat(32)).parse::<Digest>(),
            Err(DigestParseError::Algorithm(_))
        ));
    }

    #[test]
    fn digest_writer_hashes_and_counts_what_it_forwards() {
        let mut w = DigestWriter::new(Vec::new(), DigestAlgorithm::Sha256);
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        let (inner, digest, n) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(n, 3);
        assert_eq!(
            digest.to_string(),
            digest_of(DigestAlgorithm::Sha256, b"abc")
        );
    }
}
