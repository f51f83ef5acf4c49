//! `oci://` artifact URLs as flux's CLI reads them (`oci.ParseArtifactURL`, then
//! go-containerregistry's `name` rules), and their text without credentials for messages.

use crate::registry::{self, Digest, Repository};

/// The scheme of artifact URLs.
pub const OCI_PREFIX: &str = "oci://";

/// Splits `oci://<repository>[:<tag>]` as go-containerregistry's `name.NewTag` does: the tag
/// follows the last `:` when no `/` comes after it; `latest` when there is none.
///
/// # Errors
///
/// [`registry::Error::InvalidReference`] for a missing `oci://`, a digest reference, an empty
/// or invalid tag, or an invalid repository.
pub fn parse_artifact_url(url: &str) -> Result<(Repository, String), registry::Error> {
    let Some(rest) = url.strip_prefix(OCI_PREFIX) else {
        return Err(registry::Error::InvalidReference {
            message: "URL must be in format 'oci://<domain>/<org>/<repo>'".into(),
        });
    };
    if rest.contains('@') {
        return Err(registry::Error::InvalidReference {
            message: "a tag is required to push, not a digest".into(),
        });
    }
    let (base, tag) = match rest.rsplit_once(':') {
        Some((base, tag)) if !tag.contains('/') => {
            if tag.is_empty() {
                return Err(registry::Error::InvalidReference {
                    message: format!("{rest} must specify a tag name after the colon"),
                });
            }
            (base, tag)
        }
        _ => (rest, "latest"),
    };
    registry::check_tag(tag)?;
    Ok((Repository::parse(base)?, tag.to_string()))
}

/// What an artifact URL points at: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// `oci://<repository>[:<tag>]` (`latest` when none).
    Tag(String),
    /// `oci://<repository>@<digest>`.
    Digest(Digest),
}

impl std::fmt::Display for Reference {
    /// `:<tag>` or `@<digest>`, as they follow the repository.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => write!(f, ":{t}"),
            Reference::Digest(d) => write!(f, "@{d}"),
        }
    }
}

/// Splits `oci://<repository>[:<tag>|@<digest>]` as go-containerregistry's
/// `name.ParseReference` does (a digest wins over a tag, `latest` when there is neither).
///
/// # Errors
///
/// [`registry::Error::InvalidReference`] for a missing `oci://`, an invalid tag, digest or
/// repository.
pub fn parse_reference(url: &str) -> Result<(Repository, Reference), registry::Error> {
    let Some(rest) = url.strip_prefix(OCI_PREFIX) else {
        return parse_artifact_url(url).map(|(r, t)| (r, Reference::Tag(t)));
    };
    match rest.split_once('@') {
        Some((base, digest)) => {
            let digest: Digest = digest.parse()?;
            // go-containerregistry accepts and drops a tag before the digest.
            let base = match base.rsplit_once(':') {
                Some((b, tag)) if !tag.contains('/') => {
                    registry::check_tag(tag)?;
                    b
                }
                _ => base,
            };
            Ok((Repository::parse(base)?, Reference::Digest(digest)))
        }
        None => parse_artifact_url(url).map(|(r, t)| (r, Reference::Tag(t))),
    }
}

/// Parses `oci://<repository>` for the verbs that take a repository (`list artifacts`).
///
/// # Errors
///
/// [`registry::Error::InvalidReference`] for a missing `oci://`, a tag or digest, or an
/// invalid repository.
pub fn parse_repository(url: &str) -> Result<Repository, registry::Error> {
    Repository::parse_oci_url(url)
}

/// `oci://` URL without userinfo, for messages.
pub(crate) fn redact_oci_url(url: &str) -> String {
    let Some(rest) = url.strip_prefix(OCI_PREFIX) else {
        return crate::core::message::sanitize(url);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{OCI_PREFIX}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_urls_split_like_go_containerregistry_tags() {
        let ok = |u: &str| {
            let (repo, tag) = parse_artifact_url(u).unwrap_or_else(|e| panic!("{u}: {e}"));
            (repo.to_string(), tag)
        };
        assert_eq!(
            ok("oci://127.0.0.1:5000/apps/podinfo:v1.0.0"),
            ("127.0.0.1:5000/apps/podinfo".into(), "v1.0.0".into())
        );
        assert_eq!(
            ok("oci://localhost:5000/app"),
            ("localhost:5000/app".into(), "latest".into())
        );
        assert_eq!(
            ok("oci://docker.io/org/app:6.1.4_ref.1"),
            ("index.docker.io/org/app".into(), "6.1.4_ref.1".into())
        );
        assert_eq!(
            ok("oci://nginx"),
            ("index.docker.io/library/nginx".into(), "latest".into())
        );
        for bad in [
            "r.example/app:v1",
            "oci://r.example/app:",
            "oci://r.example/app@sha256:0123",
            "oci://r.example/App:v1",
            "oci://r.example/app:a+b",
            "oci://r.example/app:a:b",
            "oci://",
        ] {
            assert!(parse_artifact_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pull_references_take_a_tag_or_a_digest() {
        let d = "sha256:3b000d186626666a4b46da13a22ba461c349d0b7ba43b458cbf3943256b7c29a";
        let ok = |u: &str| {
            let (repo, r) = parse_reference(u).unwrap_or_else(|e| panic!("{u}: {e}"));
            format!("{repo}{r}")
        };
        assert_eq!(ok("oci://r.example/app:v1"), "r.example/app:v1");
        assert_eq!(ok("oci://r.example:5000/a/b"), "r.example:5000/a/b:latest");
        assert_eq!(
            ok(&format!("oci://r.example/app@{d}")),
            format!("r.example/app@{d}")
        );
        assert_eq!(
            ok(&format!("oci://r.example/app:v1@{d}")),
            format!("r.example/app@{d}")
        );
        for bad in [
            "r.example/app:v1".to_string(),
            "oci://r.example/app@sha256:00".to_string(),
            "oci://r.example/app@md5:00".to_string(),
            format!("oci://r.example/App@{d}"),
        ] {
            assert!(parse_reference(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_never_reach_messages() {
        assert_eq!(
            redact_oci_url("oci://user:secret@r.example/app:v1"),
            "oci://r.example/app:v1"
        );
        assert_eq!(
            redact_oci_url("oci://r.example/app@sha256:abc"),
            "oci://r.example/app@sha256:abc"
        );
    }
}
