//! Reads by reference: a tag resolved to its digest (`HEAD`, else `GET` and hash), the manifest at
//! a digest (an index resolved to its `linux/amd64` child), and blob streams, every body checked
//! against its digest.

use std::sync::Arc;

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;

use super::blob::Blob;
use super::client::Client;
use super::counters::RequestKind;
use super::error::Error;
use super::keychain::Credential;
use super::manifest::{
    Descriptor, Document, MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, Manifest, parse_document,
};
use super::platform::Platform;
use super::reference::{Algorithm, Digest, Repository};
use super::request::{Request, Target};
use super::response::{check, read_body};

impl Client {
    /// The digest `tag` points to: `HEAD` with the full `Accept` list and
    /// `Docker-Content-Digest`, or, when the `HEAD` fails or lacks the header, a `GET` and the
    /// SHA-256 of the body (as go-containerregistry and Flux do).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] for an invalid tag, [`Error::NotFound`] (`MANIFEST_UNKNOWN`),
    /// [`Error::Unauthorized`] (`UNAUTHORIZED`), and the transport categories.
    pub async fn resolve_digest(
        &self,
        repo: &Repository,
        tag: &str,
        cred: &Credential,
    ) -> Result<Digest, Error> {
        check_tag(tag)?;
        let what = format!("resolve {repo}:{tag}");
        self.bounded(&what, async {
            let path = format!("/v2/{}/manifests/{tag}", repo.repository());
            let head = self
                .request(
                    Request::pull(
                        RequestKind::ManifestHead,
                        Method::HEAD,
                        repo,
                        cred,
                        Target::Path(path),
                    )
                    .accept(MANIFEST_ACCEPT),
                )
                .await;
            match head {
                Ok((resp, _)) if resp.status().is_success() => {
                    if let Some(d) = resp
                        .headers()
                        .get("docker-content-digest")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<Digest>().ok())
                    {
                        return Ok(d);
                    }
                }
                // The GET would meet the same broken connection or TLS setup.
                Err(e @ (Error::Network { .. } | Error::Tls { .. })) => return Err(e),
                _ => {}
            }
            let (body, _) = self.get_manifest(repo, tag, cred).await?;
            Ok(Digest::sha256_of(&body))
        })
        .await
    }

    /// The image manifest at `digest`, verified against it. An OCI index or Docker manifest
    /// list resolves to its `linux/amd64` child (also verified); [`Manifest::digest`] stays
    /// `digest`.
    ///
    /// # Errors
    ///
    /// As [`Client::fetch_manifest_for`].
    pub async fn fetch_manifest(
        &self,
        repo: &Repository,
        digest: &Digest,
        cred: &Credential,
    ) -> Result<Manifest, Error> {
        self.fetch_manifest_for(repo, digest, cred, &Platform::linux_amd64())
            .await
    }

    /// The image manifest at `digest`, verified against it. An OCI index or Docker manifest
    /// list resolves to its first child of `platform` (also verified); [`Manifest::digest`]
    /// stays `digest`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Unauthorized`], [`Error::DigestMismatch`] when the content
    /// does not hash to its digest, [`Error::Protocol`] for schema 1, malformed manifests or an
    /// index without a child of `platform`, and the transport categories.
    pub async fn fetch_manifest_for(
        &self,
        repo: &Repository,
        digest: &Digest,
        cred: &Credential,
        platform: &Platform,
    ) -> Result<Manifest, Error> {
        let what = format!("fetch manifest {repo}@{digest}");
        self.bounded(&what, async {
            let (body, content_type) = self.manifest_by_digest(repo, digest, cred).await?;
            let document = parse_document(&body, content_type.as_deref())?;
            let (manifest_digest, document) = match document {
                Document::Index { .. } => {
                    let child = document.child(platform)?.ok_or_else(|| {
                        Error::protocol(format!(
                            "no child with platform {platform} in index {repo}@{digest}"
                        ))
                    })?;
                    let (body, content_type) = self.manifest_by_digest(repo, &child, cred).await?;
                    (child, parse_document(&body, content_type.as_deref())?)
                }
                image => (digest.clone(), image),
            };
            document
                .into_manifest(digest.clone(), manifest_digest)
                .ok_or_else(|| {
                    Error::protocol(format!("index {repo}@{digest} points to another index"))
                })
        })
        .await
    }

    /// A stream of the blob `desc` points to, verified against its digest and size at the end
    /// (see [`Blob`]). Redirects are followed.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (`BLOB_UNKNOWN`), [`Error::Unauthorized`], [`Error::DigestMismatch`]
    /// when the announced length differs from the size, and the transport categories. Errors
    /// while reading come from the stream.
    pub async fn blob_stream(
        &self,
        repo: &Repository,
        desc: &Descriptor,
        cred: &Credential,
    ) -> Result<Blob, Error> {
        let what = format!("blob {repo}@{}", desc.digest);
        let resp = self
            .bounded(&what, async {
                let path = format!("/v2/{}/blobs/{}", repo.repository(), desc.digest);
                let (resp, url) = self
                    .request(Request::pull(
                        RequestKind::Blob,
                        Method::GET,
                        repo,
                        cred,
                        Target::Path(path),
                    ))
                    .await?;
                check(resp, &Method::GET, &url).await
            })
            .await?;
        if let Some(len) = resp.content_length()
            && len != desc.size
        {
            return Err(Error::DigestMismatch {
                message: format!(
                    "{what}: size mismatch: expected {} bytes, the registry announced {len}",
                    desc.size
                ),
            });
        }
        Ok(Blob::new(
            resp,
            desc.digest.clone(),
            desc.size,
            self.deadline,
            what,
            Arc::clone(&self.inner.counters),
        ))
    }

    /// The image manifest tagged `tag`, read as it is: an index is refused, not resolved. For
    /// artifacts kept beside a subject under a derived tag, such as cosign's
    /// `sha256-<hex>.sig`; its [`Manifest::digest`] is the SHA-256 of the body.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] for an invalid tag, [`Error::NotFound`] (`MANIFEST_UNKNOWN`),
    /// [`Error::Unauthorized`], [`Error::Protocol`] for an index, schema 1 or a malformed
    /// manifest, and the transport categories.
    pub async fn image_manifest_by_tag(
        &self,
        repo: &Repository,
        tag: &str,
        cred: &Credential,
    ) -> Result<Manifest, Error> {
        check_tag(tag)?;
        let what = format!("fetch manifest {repo}:{tag}");
        self.bounded(&what, async {
            let (body, content_type) = self.get_manifest(repo, tag, cred).await?;
            let digest = Digest::sha256_of(&body);
            parse_document(&body, content_type.as_deref())?
                .into_manifest(digest.clone(), digest)
                .ok_or_else(|| {
                    Error::protocol(format!("{repo}:{tag} is an index, not an image manifest"))
                })
        })
        .await
    }

    /// The whole blob `desc` points to, verified against its digest and size; a blob whose
    /// descriptor announces more than `max` bytes is refused before it is requested.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] for a blob larger than `max`, and those of [`Client::blob_stream`]
    /// and of reading it.
    pub async fn read_blob(
        &self,
        repo: &Repository,
        desc: &Descriptor,
        cred: &Credential,
        max: u64,
    ) -> Result<Vec<u8>, Error> {
        if desc.size > max {
            return Err(Error::protocol(format!(
                "blob {repo}@{} has {} bytes, more than the {max} accepted",
                desc.digest, desc.size
            )));
        }
        let mut blob = self.blob_stream(repo, desc, cred).await?;
        // Bounded by `max` above; the stream fails on any byte beyond the announced size.
        let mut out = Vec::with_capacity(usize::try_from(desc.size).unwrap_or(0));
        while let Some(chunk) = blob.chunk().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// The manifest at `reference` (a tag or a digest) as the registry stores it, for copying it
    /// elsewhere (`tag artifact`): the bytes, the media type (the `Content-Type`, else the
    /// document's `mediaType`, else an OCI manifest) and the digest (checked for a digest
    /// reference, the SHA-256 of the bytes for a tag). An index stays an index.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] for an invalid tag or digest, [`Error::NotFound`],
    /// [`Error::Unauthorized`], [`Error::DigestMismatch`], and the transport categories.
    pub async fn raw_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        cred: &Credential,
    ) -> Result<RawManifest, Error> {
        let what = format!("fetch manifest {repo}:{reference}");
        self.bounded(&what, async {
            let (bytes, content_type, digest) = if reference.contains(':') {
                let digest: Digest = reference.parse()?;
                let (body, content_type) = self.manifest_by_digest(repo, &digest, cred).await?;
                (body, content_type, digest)
            } else {
                check_tag(reference)?;
                let (body, content_type) = self.get_manifest(repo, reference, cred).await?;
                let digest = Digest::sha256_of(&body);
                (body, content_type, digest)
            };
            let media_type = content_type
                .map(|c| c.split(';').next().unwrap_or_default().trim().to_string())
                .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain")
                .or_else(|| {
                    serde_json::from_slice::<serde_json::Value>(&bytes)
                        .ok()
                        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
                })
                .unwrap_or_else(|| super::manifest::OCI_MANIFEST.to_string());
            Ok(RawManifest {
                bytes,
                media_type,
                digest,
            })
        })
        .await
    }

    /// `GET /v2/<name>/manifests/<reference>`: the body (bounded) and its content type.
    pub(super) async fn get_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        cred: &Credential,
    ) -> Result<(Vec<u8>, Option<String>), Error> {
        let path = format!("/v2/{}/manifests/{reference}", repo.repository());
        let (resp, url) = self
            .request(
                Request::pull(
                    RequestKind::ManifestGet,
                    Method::GET,
                    repo,
                    cred,
                    Target::Path(path),
                )
                .accept(MANIFEST_ACCEPT),
            )
            .await?;
        let resp = check(resp, &Method::GET, &url).await?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_body(resp, MAX_MANIFEST_SIZE, &Method::GET, &url).await?;
        Ok((body, content_type))
    }

    pub(super) async fn manifest_by_digest(
        &self,
        repo: &Repository,
        digest: &Digest,
        cred: &Credential,
    ) -> Result<(Vec<u8>, Option<String>), Error> {
        let (body, content_type) = self.get_manifest(repo, &digest.to_string(), cred).await?;
        let actual = digest_of(digest.algorithm(), &body);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                message: format!("manifest {repo}@{digest}: digest mismatch: got {actual}"),
            });
        }
        Ok((body, content_type))
    }
}

/// A manifest as the registry stores it (see [`Client::raw_manifest`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawManifest {
    /// The bytes, unchanged.
    pub bytes: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
}

/// Tags as go-containerregistry accepts them: 1 to 128 of `[A-Za-z0-9_.-]`.
pub(crate) fn check_tag(tag: &str) -> Result<(), Error> {
    if tag.is_empty() || tag.len() > 128 {
        return Err(Error::invalid_reference(format!(
            "tag must be between 1 and 128 characters in length: {tag}"
        )));
    }
    if !tag
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(Error::invalid_reference(format!(
            "tag can only contain the characters \
             `abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.`: {tag}"
        )));
    }
    Ok(())
}

pub(super) fn digest_of(algorithm: Algorithm, data: &[u8]) -> Digest {
    use sha2::Digest as _;
    let hex = match algorithm {
        Algorithm::Sha256 => super::reference::to_hex(&sha2::Sha256::digest(data)),
        Algorithm::Sha512 => super::reference::to_hex(&sha2::Sha512::digest(data)),
    };
    // The hex is well-formed by construction; fall back to SHA-256 to stay panic-free.
    Digest::new(algorithm, &hex).unwrap_or_else(|_| Digest::sha256_of(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_validated_before_any_request() {
        for ok in ["latest", "v1.2.3", "6.2.1_ref.1234567", "A-b_c.d"] {
            assert!(check_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "../x", "a?b", "a:b", &"x".repeat(129)] {
            assert!(
                matches!(check_tag(bad), Err(Error::InvalidReference { .. })),
                "{bad}"
            );
        }
    }
}
