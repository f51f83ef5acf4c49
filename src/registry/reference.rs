//! Repository URLs and digests, parsed by go-containerregistry's rules as Flux does.
//!
//! [`Repository::parse_oci_url`] turns `oci://host[:port]/path` into a registry and a repository
//! path: the first path element is the registry only if it contains `.` or `:` (otherwise the
//! registry is Docker Hub, `index.docker.io`), `docker.io` is spelled `index.docker.io`, and a
//! single-element Docker Hub repository gets the implicit `library/`. Repository paths may only
//! hold `a-z0-9_-./` (upper case is rejected, as go-containerregistry does), 2 to 255 characters.
//! A tag or digest in the URL is rejected with Flux's text. [`Digest`] parses `<algo>:<hex>`.

use std::fmt;
use std::str::FromStr;

use super::error::Error;

/// The registry name used when a reference names none.
pub const DEFAULT_REGISTRY: &str = "index.docker.io";
const DEFAULT_REGISTRY_ALIAS: &str = "docker.io";
const DEFAULT_NAMESPACE: &str = "library";
const OCI_PREFIX: &str = "oci://";
const REPOSITORY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-./";

/// A repository in a registry: `registry/repository`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repository {
    registry: String,
    repository: String,
}

impl Repository {
    /// Parses an OCIRepository `spec.url` (`oci://<host>[:port]/<path>`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] when the URL lacks `oci://` or its registry or path is
    /// invalid; a tag or digest is an invalid path character, as go-containerregistry reports it
    /// for Flux (`repository can only contain the characters ...: app:v1`).
    pub fn parse_oci_url(url: &str) -> Result<Repository, Error> {
        let Some(rest) = url.strip_prefix(OCI_PREFIX) else {
            return Err(Error::invalid_reference(
                "URL must be in format 'oci://<domain>/<org>/<repo>'",
            ));
        };
        Repository::parse(rest)
    }

    /// Parses a repository name without scheme (`host[:port]/path`, `path`, `docker.io/x`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] as [`Repository::parse_oci_url`].
    pub fn parse(name: &str) -> Result<Repository, Error> {
        if name.is_empty() {
            return Err(Error::invalid_reference(
                "a repository name must be specified",
            ));
        }
        let (registry, repo) = match name.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') => (first, rest),
            _ => ("", name),
        };
        // Flux's own "URL must not contain a tag" check runs after go-containerregistry's
        // character check, which already refuses the `:`, so users only ever see the latter.
        check_repository(repo)?;
        check_registry(registry)?;
        let registry = match registry {
            "" | DEFAULT_REGISTRY_ALIAS => DEFAULT_REGISTRY,
            other => other,
        };
        let repository = if registry == DEFAULT_REGISTRY && !repo.contains('/') {
            format!("{DEFAULT_NAMESPACE}/{repo}")
        } else {
            repo.to_string()
        };
        Ok(Repository {
            registry: registry.to_string(),
            repository,
        })
    }

    /// Builds a repository from parts already valid (e.g. from a parsed reference).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] when either part is invalid.
    pub fn new(registry: &str, repository: &str) -> Result<Repository, Error> {
        check_registry(registry)?;
        check_repository(repository)?;
        Ok(Repository {
            registry: registry.to_string(),
            repository: repository.to_string(),
        })
    }

    /// The registry, `host[:port]` (`index.docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`library/nginx`, `org/app`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The token scope for pulling: `repository:<path>:pull`.
    pub fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.repository)
    }

    /// The token scope for pushing: `repository:<path>:push,pull`, spelled as
    /// go-containerregistry (hence flux) asks for it.
    pub fn push_scope(&self) -> String {
        format!("repository:{}:push,pull", self.repository)
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

fn check_repository(repo: &str) -> Result<(), Error> {
    let n = repo.chars().count();
    if !(2..=255).contains(&n) {
        return Err(Error::invalid_reference(format!(
            "repository must be between 2 and 255 characters in length: {repo}"
        )));
    }
    if repo.chars().any(|c| !REPOSITORY_CHARS.contains(c)) {
        return Err(Error::invalid_reference(format!(
            "repository can only contain the characters `{REPOSITORY_CHARS}`: {repo}"
        )));
    }
    Ok(())
}

/// A registry must be a valid RFC 3986 authority without userinfo: `host`, `host:port`,
/// `[v6]:port`.
fn check_registry(registry: &str) -> Result<(), Error> {
    if registry.is_empty() {
        return Ok(());
    }
    let bad = || {
        Error::invalid_reference(format!(
            "registries must be valid RFC 3986 URI authorities: {registry}"
        ))
    };
    let (host, port) = split_host_port(registry).ok_or_else(bad)?;
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let ok_host = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~'))
    };
    if ok_host { Ok(()) } else { Err(bad()) }
}

/// Splits `host[:port]` / `[v6][:port]`; `None` when malformed.
pub(crate) fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let host = &authority[..=end];
        let rest = &authority[end + 1..];
        if rest.is_empty() {
            return Some((host, None));
        }
        return rest.strip_prefix(':').map(|p| (host, Some(p)));
    }
    match authority.split_once(':') {
        Some((host, port)) if !port.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

/// Whether go-containerregistry would also try plain HTTP for `registry` (its
/// `Registry.Scheme()`): when the object is `insecure`, or the registry is an RFC 1918 address,
/// `localhost:*`, `*.local`, `*.localhost`, or contains `127.0.0.1` or `::1`.
pub fn allows_http(registry: &str, insecure: bool) -> bool {
    if insecure || registry.starts_with("localhost:") {
        return true;
    }
    if registry.contains("127.0.0.1") || registry.contains("::1") {
        return true;
    }
    let host = registry.split(':').next().unwrap_or(registry);
    if let Ok(std::net::IpAddr::V4(ip)) = host.parse::<std::net::IpAddr>()
        && ip.is_private()
    {
        return true;
    }
    // `.*\.local(?:host)?(?::\d{1,5})?$`
    let without_port = match registry.rsplit_once(':') {
        Some((h, p)) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    without_port.ends_with(".local") || without_port.ends_with(".localhost")
}

/// A digest algorithm this client can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// `sha256`, the only one go-containerregistry (and so Flux) accepts.
    Sha256,
    /// `sha512`, allowed by the OCI image spec.
    Sha512,
}

impl Algorithm {
    /// `sha256` or `sha512`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A content digest, `<algorithm>:<lower-case hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// The digest of `algorithm` with the given lower-case `hex` value.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] when `hex` is not `algorithm`'s length of lower-case hex.
    pub fn new(algorithm: Algorithm, hex: &str) -> Result<Digest, Error> {
        if let Some(c) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(Error::invalid_reference(format!(
                "found non-hex character in hash: {c}"
            )));
        }
        if hex.len() != algorithm.hex_len() {
            return Err(Error::invalid_reference(format!(
                "wrong number of hex digits for {}: {hex}",
                algorithm.as_str()
            )));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The SHA-256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        use sha2::Digest as _;
        let sum = sha2::Sha256::digest(data);
        Digest {
            algorithm: Algorithm::Sha256,
            hex: to_hex(&sum),
        }
    }

    /// The SHA-256 digest whose hash value is `sum` (e.g. from a streaming hasher).
    pub fn from_sha256(sum: [u8; 32]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: to_hex(&sum),
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex value.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl FromStr for Digest {
    type Err = Error;

    /// Parses `<algo>:<hex>` as go-containerregistry's `v1.NewHash` does (plus `sha512`).
    fn from_str(s: &str) -> Result<Digest, Error> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(Error::invalid_reference(format!(
                "cannot parse hash: {s:?}"
            )));
        };
        let algorithm = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => {
                return Err(Error::invalid_reference(format!(
                    "unsupported hash: {algo:?}"
                )));
            }
        };
        Digest::new(algorithm, hex)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (String, String) {
        let r = Repository::parse_oci_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        (r.registry().to_string(), r.repository().to_string())
    }

    fn err(url: &str) -> String {
        match Repository::parse_oci_url(url) {
            Ok(r) => panic!("{url} parsed as {r}"),
            Err(e @ Error::InvalidReference { .. }) => e.to_string(),
            Err(e) => panic!("{url}: wrong category {e:?}"),
        }
    }

    #[test]
    fn oci_urls_parse_with_go_containerregistry_rules() {
        let table = [
            ("oci://ghcr.io/org/repo", "ghcr.io", "org/repo"),
            (
                "oci://ghcr.io/stefanprodan/manifests/podinfo",
                "ghcr.io",
                "stefanprodan/manifests/podinfo",
            ),
            (
                "oci://127.0.0.1:5000/flux/app",
                "127.0.0.1:5000",
                "flux/app",
            ),
            ("oci://localhost:5000/app", "localhost:5000", "app"),
            ("oci://[::1]:5000/app", "[::1]:5000", "app"),
            (
                "oci://registry.local/a_b-c.d/e",
                "registry.local",
                "a_b-c.d/e",
            ),
            // Docker Hub: default registry, alias, implicit library/.
            ("oci://nginx", "index.docker.io", "library/nginx"),
            ("oci://org/app", "index.docker.io", "org/app"),
            ("oci://docker.io/nginx", "index.docker.io", "library/nginx"),
            ("oci://docker.io/org/app", "index.docker.io", "org/app"),
            (
                "oci://index.docker.io/nginx",
                "index.docker.io",
                "library/nginx",
            ),
            // A first element without `.` or `:` is not a registry.
            ("oci://localhost/app", "index.docker.io", "localhost/app"),
        ];
        for (url, registry, repo) in table {
            assert_eq!(ok(url), (registry.to_string(), repo.to_string()), "{url}");
        }
    }

    #[test]
    fn tags_and_digests_in_urls_are_rejected_with_fluxs_text() {
        // Flux v1.7.0 says what go-containerregistry's name.NewRepository says.
        let chars = "repository can only contain the characters \
                     `abcdefghijklmnopqrstuvwxyz0123456789_-./`";
        for (url, path) in [
            ("oci://ghcr.io/test/test:v1", "test/test:v1"),
            ("oci://127.0.0.1:5000/app:latest", "app:latest"),
            ("oci://ghcr.io/a/b@sha256:abc", "a/b@sha256:abc"),
            ("oci://app:v1", "app:v1"),
        ] {
            assert_eq!(err(url), format!("{chars}: {path}"), "{url}");
        }
    }

    #[test]
    fn malformed_urls_are_invalid_references() {
        assert_eq!(
            err("ghcr.io/org/repo"),
            "URL must be in format 'oci://<domain>/<org>/<repo>'"
        );
        assert!(err("oci://ghcr.io/Org/Repo").starts_with("repository can only contain"));
        assert!(err("oci://ghcr.io/a").starts_with("repository must be between 2 and 255"));
        assert!(err("oci://").contains("must be specified"));
        assert!(err("oci://ghcr.io/").starts_with("repository must be between"));
        assert!(err("oci://us%er@ghcr.io/app").starts_with("registries must be valid"));
        assert!(err("oci://ghcr.io:abc/app").starts_with("registries must be valid"));
        assert!(err("oci://ghcr.io/a b").starts_with("repository can only contain"));
        let long = format!("oci://ghcr.io/{}", "a".repeat(256));
        assert!(err(&long).starts_with("repository must be between"));
    }

    #[test]
    fn display_and_scope_use_the_normalised_names() {
        let r =
            Repository::parse_oci_url("oci://docker.io/nginx").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.to_string(), "index.docker.io/library/nginx");
        assert_eq!(r.pull_scope(), "repository:library/nginx:pull");
        assert_eq!(r.push_scope(), "repository:library/nginx:push,pull");
    }

    #[test]
    fn http_fallback_follows_go_containerregistry() {
        for (reg, insecure, want) in [
            ("ghcr.io", false, false),
            ("ghcr.io", true, true),
            ("127.0.0.1:5000", false, true),
            ("localhost:5000", false, true),
            ("localhost", false, false),
            ("[::1]:5000", false, true),
            ("10.1.2.3", false, true),
            ("172.16.0.1:5000", false, true),
            ("172.32.0.1:5000", false, false),
            ("192.168.1.1", false, true),
            ("registry.local", false, true),
            ("registry.local:5000", false, true),
            ("registry.localhost", false, true),
            ("registry.locally.com", false, false),
        ] {
            assert_eq!(
                allows_http(reg, insecure),
                want,
                "{reg} insecure={insecure}"
            );
        }
    }

    #[test]
    fn digests_parse_and_validate() {
        let hex = "a".repeat(64);
        let d: Digest = format!("sha256:{hex}")
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), format!("sha256:{hex}"));
        let d: Digest = format!("sha512:{}", "0".repeat(128))
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.algorithm(), Algorithm::Sha512);
        for (input, msg) in [
            ("invalid", "cannot parse hash: \"invalid\""),
            ("md5:abc", "unsupported hash: \"md5\""),
            ("sha256:abc", "wrong number of hex digits for sha256: abc"),
            (
                &format!("sha256:{}", "A".repeat(64)),
                "found non-hex character in hash: A",
            ),
            (
                &format!("sha256:{}g", "a".repeat(63)),
                "found non-hex character in hash: g",
            ),
        ] {
            match input.parse::<Digest>() {
                Err(e @ Error::InvalidReference { .. }) => assert_eq!(e.to_string(), msg),
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn sha256_of_matches_a_known_vector() {
        assert_eq!(
            Digest::sha256_of(b"abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::mutation::{config, mutated_text};

    const URLS: &[&str] = &[
        "oci://ghcr.io/stefanprodan/manifests/podinfo",
        "oci://localhost:5000/a/b",
        "oci://[::1]:5000/x",
        "oci://r.example.com/a@sha256:0123",
    ];
    const DIGESTS: &[&str] = &[
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "sha512:00",
        "blake3:ab",
    ];

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn mutated_urls_parse_or_fail_without_panic(url in mutated_text(URLS)) {
            if let Ok(repo) = Repository::parse_oci_url(&url) {
                let _ = (repo.registry(), repo.repository(), repo.to_string());
            }
            let _ = Repository::parse(url.trim_start_matches("oci://"));
        }

        #[test]
        fn a_parsed_digest_formats_and_parses_back(text in mutated_text(DIGESTS)) {
            if let Ok(digest) = text.parse::<Digest>() {
                prop_assert_eq!(digest.to_string().parse::<Digest>().ok(), Some(digest));
            }
        }

        /// A well-formed `oci://host[:port]/path` formats back to itself without the scheme.
        #[test]
        fn a_repository_url_formats_back_to_itself(
            host in "[a-z][a-z0-9]{0,8}(\\.[a-z][a-z0-9]{0,8}){1,2}",
            port in proptest::option::of(1u16..),
            path in "[a-z0-9]{2,8}(/[a-z0-9]{1,8}([._-][a-z0-9]{1,4})?){0,3}",
        ) {
            prop_assume!(!host.contains("docker"));
            let registry = match port {
                Some(port) => format!("{host}:{port}"),
                None => host,
            };
            let repo = Repository::parse_oci_url(&format!("oci://{registry}/{path}"));
            prop_assert!(repo.is_ok(), "{:?}", repo);
            let repo = repo.unwrap();
            prop_assert_eq!(repo.registry(), registry.as_str());
            prop_assert_eq!(repo.repository(), path.as_str());
            prop_assert_eq!(repo.to_string(), format!("{registry}/{path}"));
        }
    }
}
