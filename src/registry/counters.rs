//! Request counters, by kind, for the benchmark, metrics and tests.
//!
//! Every HTTP request this adapter sends is counted once per attempt (retries and redirects
//! followed by the HTTP client count as one), so the numbers say what the registry saw.

use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of registry requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `GET /v2/`.
    Ping,
    /// A token exchange with the token server.
    Token,
    /// `GET /v2/<name>/tags/list` (one per page).
    Tags,
    /// `HEAD /v2/<name>/manifests/<ref>`.
    ManifestHead,
    /// `GET /v2/<name>/manifests/<ref>`.
    ManifestGet,
    /// `GET /v2/<name>/blobs/<digest>`.
    Blob,
    /// `HEAD /v2/<name>/blobs/<digest>` (does a blob to push exist already?).
    BlobHead,
    /// A blob upload step: `POST /v2/<name>/blobs/uploads/` or the `PUT` to its location.
    BlobUpload,
    /// `PUT /v2/<name>/manifests/<tag>`.
    ManifestPut,
}

/// Live counters, shared by the clients of one pool.
#[derive(Debug, Default)]
pub struct Counters {
    ping: AtomicU64,
    token: AtomicU64,
    tags: AtomicU64,
    manifest_head: AtomicU64,
    manifest_get: AtomicU64,
    blob: AtomicU64,
    blob_head: AtomicU64,
    blob_upload: AtomicU64,
    manifest_put: AtomicU64,
    blob_bytes: AtomicU64,
    retries: AtomicU64,
}

impl Counters {
    pub(crate) fn count(&self, kind: RequestKind) {
        let c = match kind {
            RequestKind::Ping => &self.ping,
            RequestKind::Token => &self.token,
            RequestKind::Tags => &self.tags,
            RequestKind::ManifestHead => &self.manifest_head,
            RequestKind::ManifestGet => &self.manifest_get,
            RequestKind::Blob => &self.blob,
            RequestKind::BlobHead => &self.blob_head,
            RequestKind::BlobUpload => &self.blob_upload,
            RequestKind::ManifestPut => &self.manifest_put,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_blob_bytes(&self, n: u64) {
        self.blob_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            ping: self.ping.load(Ordering::Relaxed),
            token: self.token.load(Ordering::Relaxed),
            tags: self.tags.load(Ordering::Relaxed),
            manifest_head: self.manifest_head.load(Ordering::Relaxed),
            manifest_get: self.manifest_get.load(Ordering::Relaxed),
            blob: self.blob.load(Ordering::Relaxed),
            blob_head: self.blob_head.load(Ordering::Relaxed),
            blob_upload: self.blob_upload.load(Ordering::Relaxed),
            manifest_put: self.manifest_put.load(Ordering::Relaxed),
            blob_bytes: self.blob_bytes.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of [`Counters`]; subtract two to get what happened in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// `/v2/` pings.
    pub ping: u64,
    /// Token requests.
    pub token: u64,
    /// Tag list pages.
    pub tags: u64,
    /// Manifest `HEAD`s.
    pub manifest_head: u64,
    /// Manifest `GET`s.
    pub manifest_get: u64,
    /// Blob `GET`s.
    pub blob: u64,
    /// Blob `HEAD`s (pushes).
    pub blob_head: u64,
    /// Blob upload requests (`POST` and `PUT`; pushes).
    pub blob_upload: u64,
    /// Manifest `PUT`s (pushes).
    pub manifest_put: u64,
    /// Blob bytes received.
    pub blob_bytes: u64,
    /// Attempts that were retries of an earlier one (any kind).
    pub retries: u64,
}

impl RequestCounts {
    /// All requests, of every kind.
    pub fn total(&self) -> u64 {
        self.ping
            + self.token
            + self.tags
            + self.manifest_head
            + self.manifest_get
            + self.blob
            + self.blob_head
            + self.blob_upload
            + self.manifest_put
    }
}

impl std::ops::Sub for RequestCounts {
    type Output = RequestCounts;

    fn sub(self, rhs: RequestCounts) -> RequestCounts {
        RequestCounts {
            ping: self.ping.saturating_sub(rhs.ping),
            token: self.token.saturating_sub(rhs.token),
            tags: self.tags.saturating_sub(rhs.tags),
            manifest_head: self.manifest_head.saturating_sub(rhs.manifest_head),
            manifest_get: self.manifest_get.saturating_sub(rhs.manifest_get),
            blob: self.blob.saturating_sub(rhs.blob),
            blob_head: self.blob_head.saturating_sub(rhs.blob_head),
            blob_upload: self.blob_upload.saturating_sub(rhs.blob_upload),
            manifest_put: self.manifest_put.saturating_sub(rhs.manifest_put),
            blob_bytes: self.blob_bytes.saturating_sub(rhs.blob_bytes),
            retries: self.retries.saturating_sub(rhs.retries),
        }
    }
}
