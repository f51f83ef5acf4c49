//! Writes to a registry: blob existence checks, monolithic blob uploads and manifest pushes.
//!
//! Every write asks for a token scoped `repository:<name>:push,pull` (cached apart from pull
//! tokens, see `client.rs`). A blob is pushed as go-containerregistry would without chunking:
//! `HEAD /v2/<name>/blobs/<digest>` (200 means it is there already and nothing is sent), then
//! `POST /v2/<name>/blobs/uploads/` and a single `PUT <Location>&digest=<digest>` carrying the
//! whole blob. The `Location` may be relative or absolute, on the registry's host or on a public
//! one (cloud storage), never on another host with an internal address (go-containerregistry's
//! rule, see `address.rs`); the registry's credentials are only sent to its own origin. A
//! [`BlobSource::File`] is streamed from disk with positional reads, afresh on every attempt, so
//! memory stays at one chunk whatever the blob's size. A manifest is `PUT` to its tag with its
//! media type as `Content-Type`; its digest is the SHA-256 of the bytes sent, checked against
//! the registry's `Docker-Content-Digest`.

use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};

use super::address::check_hop;
use super::client::Client;
use super::counters::RequestKind;
use super::error::{Error, redact_url};
use super::keychain::Credential;
use super::pull::check_tag;
use super::reference::{Digest, Repository};
use super::request::{Body, Request, Target};
use super::response::{check, read_body, status_error};

/// How much of a file blob is read (and held) at a time while uploading.
const CHUNK: usize = 256 << 10;
const MAX_UPLOAD_RESPONSE: usize = 64 << 10;

/// The content of a blob to push. Cheap to clone.
#[derive(Clone, Debug)]
pub enum BlobSource {
    /// A file, read with positional reads on each upload attempt, never held in memory.
    File(Arc<std::fs::File>),
    /// A file as [`BlobSource::File`], its upload progress reported to the hook.
    TrackedFile(Arc<std::fs::File>, SentHook),
    /// Bytes in memory (configs, small blobs).
    Bytes(Bytes),
}

/// Told the bytes of a file blob handed to the connection so far in the current attempt (from
/// 0 again on a retry), after each chunk: a progress display's hook.
#[derive(Clone)]
pub struct SentHook(Arc<dyn Fn(u64) + Send + Sync>);

impl SentHook {
    /// A hook calling `f`.
    pub fn new(f: impl Fn(u64) + Send + Sync + 'static) -> SentHook {
        SentHook(Arc::new(f))
    }
}

impl std::fmt::Debug for SentHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SentHook")
    }
}

impl BlobSource {
    /// Opens `path` as a blob source.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be opened.
    pub fn open(path: &Path) -> Result<BlobSource, Error> {
        std::fs::File::open(path)
            .map(|f| BlobSource::File(Arc::new(f)))
            .map_err(|source| Error::Io {
                message: format!("failed to open {}", path.display()),
                source,
            })
    }

    fn body(&self, len: u64) -> reqwest::Body {
        match self {
            BlobSource::Bytes(b) => reqwest::Body::from(b.clone()),
            BlobSource::File(f) => file_body(Arc::clone(f), len, None),
            BlobSource::TrackedFile(f, hook) => file_body(Arc::clone(f), len, Some(hook.clone())),
        }
    }
}

/// A request body sent afresh on every attempt, with its length and content type.
pub(crate) struct Upload {
    content_type: Option<String>,
    len: u64,
    source: BlobSource,
}

impl Upload {
    fn new(content_type: Option<&str>, len: u64, source: BlobSource) -> Upload {
        Upload {
            content_type: content_type.map(str::to_string),
            len,
            source,
        }
    }

    fn empty() -> Upload {
        Upload::new(None, 0, BlobSource::Bytes(Bytes::new()))
    }
}

impl Body for Upload {
    /// `builder` with this body, its `Content-Length` and `Content-Type`.
    fn attach(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let mut b = builder.header(CONTENT_LENGTH, self.len);
        if let Some(ct) = &self.content_type {
            b = b.header(CONTENT_TYPE, ct.as_str());
        }
        b.body(self.source.body(self.len))
    }
}

/// Streams `len` bytes of `file` from offset 0 in chunks, failing if the file is shorter; `hook`
/// is told the offset reached after each chunk.
fn file_body(file: Arc<std::fs::File>, len: u64, hook: Option<SentHook>) -> reqwest::Body {
    let stream = futures::stream::try_unfold(0u64, move |offset| {
        let file = Arc::clone(&file);
        let hook = hook.clone();
        async move {
            if offset >= len {
                return Ok(None);
            }
            let want = usize::try_from(len - offset).map_or(CHUNK, |r| r.min(CHUNK));
            let chunk = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; want];
                let n = loop {
                    match file.read_at(&mut buf, offset) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        other => break other?,
                    }
                };
                buf.truncate(n);
                Ok::<_, std::io::Error>(buf)
            })
            .await
            .map_err(std::io::Error::other)??;
            if chunk.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the blob file shrank while being uploaded",
                ));
            }
            let next = offset + chunk.len() as u64;
            if let Some(hook) = &hook {
                (hook.0)(next);
            }
            Ok(Some((Bytes::from(chunk), next)))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

impl Client {
    /// Whether `repo` has the blob `digest` (`HEAD /v2/<name>/blobs/<digest>`), asking for push
    /// access as a push would.
    ///
    /// # Errors
    ///
    /// [`Error::Unauthorized`] and the transport categories; any status but 200 and 404 is an
    /// error.
    pub async fn blob_exists(
        &self,
        repo: &Repository,
        digest: &Digest,
        cred: &Credential,
    ) -> Result<bool, Error> {
        let what = format!("check blob {repo}@{digest}");
        self.bounded(&what, self.head_blob(repo, digest, cred))
            .await
    }

    async fn head_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        cred: &Credential,
    ) -> Result<bool, Error> {
        let path = format!("/v2/{}/blobs/{digest}", repo.repository());
        let (resp, url) = self
            .request(Request::push(
                RequestKind::BlobHead,
                Method::HEAD,
                repo,
                cred,
                Target::Path(path),
            ))
            .await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(resp, &Method::HEAD, &url).await),
        }
    }

    /// Pushes the blob `digest` of `size` bytes from `source` to `repo`, unless the registry has
    /// it already. Returns whether it was uploaded.
    ///
    /// # Errors
    ///
    /// [`Error::Unauthorized`] (no push access), [`Error::Protocol`] when the registry gives no
    /// upload location, [`Error::Server`] for a refused upload (e.g. `DIGEST_INVALID` when the
    /// content does not hash to `digest`), and the transport categories.
    pub async fn push_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
        source: &BlobSource,
        cred: &Credential,
    ) -> Result<bool, Error> {
        let what = format!("push blob {repo}@{digest}");
        self.bounded(&what, async {
            if self.head_blob(repo, digest, cred).await? {
                return Ok(false);
            }
            let path = format!("/v2/{}/blobs/uploads/", repo.repository());
            let empty = Upload::empty();
            let (resp, url) = self
                .request(Request::push(RequestKind::BlobUpload, Method::POST, repo, cred, Target::Path(path)).body(&empty))
                .await?;
            let resp = check(resp, &Method::POST, &url).await?;
            let mut location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l.trim()).ok())
                .filter(|l| matches!(l.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    Error::protocol(format!(
                        "POST {}: the registry gave no valid upload location",
                        redact_url(&url)
                    ))
                })?;
            // A hostile registry could send the layer (and the request) to an internal
            // service: go-containerregistry's rule for upload locations.
            if check_hop(&url, &location).is_err() {
                return Err(Error::protocol(format!(
                    "POST {}: SSRF protection: Location header redirects to private/link-local host {:?}",
                    redact_url(&url),
                    location.host_str().unwrap_or("")
                )));
            }
            location
                .query_pairs_mut()
                .append_pair("digest", &digest.to_string());
            let upload = Upload::new(Some("application/octet-stream"), size, source.clone());
            let (resp, url) = self
                .request(Request::push(RequestKind::BlobUpload, Method::PUT, repo, cred, Target::Url(location)).body(&upload))
                .await?;
            let resp = check(resp, &Method::PUT, &url).await?;
            let _ = read_body(resp, MAX_UPLOAD_RESPONSE, &Method::PUT, &url).await;
            Ok(true)
        })
        .await
    }

    /// Pushes `manifest` (of `media_type`) to `repo` under `tag` and returns its digest, the
    /// SHA-256 of the bytes sent.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] for an invalid tag, [`Error::Unauthorized`],
    /// [`Error::Server`] for a refused manifest (e.g. `MANIFEST_BLOB_UNKNOWN`),
    /// [`Error::DigestMismatch`] when the registry reports another digest, and the transport
    /// categories.
    pub async fn push_manifest(
        &self,
        repo: &Repository,
        tag: &str,
        media_type: &str,
        manifest: Bytes,
        cred: &Credential,
    ) -> Result<Digest, Error> {
        check_tag(tag)?;
        let digest = Digest::sha256_of(&manifest);
        let what = format!("push manifest {repo}:{tag}");
        self.bounded(&what, async {
            let path = format!("/v2/{}/manifests/{tag}", repo.repository());
            let len = manifest.len() as u64;
            let upload = Upload::new(Some(media_type), len, BlobSource::Bytes(manifest));
            let (resp, url) = self
                .request(
                    Request::push(
                        RequestKind::ManifestPut,
                        Method::PUT,
                        repo,
                        cred,
                        Target::Path(path),
                    )
                    .body(&upload),
                )
                .await?;
            let resp = check(resp, &Method::PUT, &url).await?;
            let reported = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<Digest>().ok());
            if let Some(reported) = reported
                && reported.algorithm() == digest.algorithm()
                && reported != digest
            {
                return Err(Error::DigestMismatch {
                    message: format!(
                        "PUT {}: the registry stored digest {reported}, expected {digest}",
                        redact_url(&url)
                    ),
                });
            }
            let _ = read_body(resp, MAX_UPLOAD_RESPONSE, &Method::PUT, &url).await;
            Ok(digest)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;
    use http_body_util::BodyDataStream;
    use std::io::Write as _;

    #[tokio::test]
    async fn file_bodies_stream_the_whole_file_in_chunks_and_tell_the_hook() {
        let mut f = tempfile::tempfile().unwrap_or_else(|e| panic!("{e}"));
        let data: Vec<u8> = (0..(CHUNK * 2 + 17)).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap_or_else(|e| panic!("{e}"));
        let told = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&told);
        let hook = SentHook::new(move |n| seen.lock().unwrap_or_else(|e| panic!("{e}")).push(n));
        let body = file_body(Arc::new(f), data.len() as u64, Some(hook));
        let mut stream = BodyDataStream::new(body);
        let mut got = Vec::new();
        let mut chunks = 0;
        while let Some(chunk) = stream.next().await {
            got.extend_from_slice(&chunk.unwrap_or_else(|e| panic!("{e}")));
            chunks += 1;
        }
        assert_eq!(got, data);
        assert_eq!(chunks, 3);
        let len = data.len() as u64;
        let chunk = CHUNK as u64;
        assert_eq!(
            *told.lock().unwrap_or_else(|e| panic!("{e}")),
            [chunk, 2 * chunk, len]
        );
    }

    #[tokio::test]
    async fn a_file_shorter_than_announced_fails_the_body() {
        let mut f = tempfile::tempfile().unwrap_or_else(|e| panic!("{e}"));
        f.write_all(b"abc").unwrap_or_else(|e| panic!("{e}"));
        let body = file_body(Arc::new(f), 10, None);
        let mut stream = BodyDataStream::new(body);
        let first = stream.next().await;
        assert!(matches!(first, Some(Ok(ref b)) if b.as_ref() == b"abc"));
        assert!(matches!(stream.next().await, Some(Err(_))));
    }
}
