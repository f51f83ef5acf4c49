//! A small TUF client (The Update Framework, specification v1.0) that fetches one target, the
//! Sigstore `trusted_root.json`, from a TUF repository: the public-good one at
//! [`DEFAULT_MIRROR`] from the embedded [`PUBLIC_GOOD_ROOT`], or another mirror and initial
//! root for air-gapped users and tests.
//!
//! The workflow ([`update`]) is the specification's client workflow: the trusted root (the
//! cached one when it is newer than the initial one), then each `N+1.root.json` signed by a
//! threshold of both the old and the new root's keys, the final root checked for expiry; then
//! `timestamp.json`, `<version>.snapshot.json` and `<version>.targets.json`, each signed by its
//! role's threshold, unexpired, of the version (and length and hashes) the role above named and
//! never older than what the cache held (rollback); then the target under its consistent name
//! `targets/<sha256>.trusted_root.json`, checked by length and hashes.
//!
//! The cache directory ([`Cache`]) keeps the verified metadata and the target. When the mirror
//! cannot be reached (a transport failure or an HTTP error status, never a verification
//! failure), [`update`] falls back to the cache: the same checks on the cached files, which must
//! all still be unexpired. Written on aws-lc-rs ([`crate::verify::keys`]) and our reqwest
//! transport, not on the `tough` crate: see ARCHITECTURE.md.

pub mod metadata;
mod shared;

use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;

use metadata::{MetaList, MetadataError, Root, Signed, Targets};
pub use shared::{LoadedRoot, PublicRootError, SigstoreRoot, TufSettings};

/// The public-good Sigstore TUF repository, as sigstore-go's `DefaultMirror`.
pub const DEFAULT_MIRROR: &str = "https://tuf-repo-cdn.sigstore.dev";

/// The public-good repository's root metadata (version 14, the one sigstore-go v1.1.4 embeds):
/// the trust anchor the root chain starts from. It may be expired: only the newest root of the
/// chain must not be.
pub const PUBLIC_GOOD_ROOT: &[u8] = include_bytes!("public_good_root.json");

/// The target this client fetches.
pub const TRUSTED_ROOT_TARGET: &str = "trusted_root.json";

/// Most root versions followed in one update (the specification's suggested bound).
const MAX_ROOT_ROTATIONS: u64 = 32;
/// Size bounds for documents whose length no other role gives.
const MAX_ROOT_BYTES: usize = 512 * 1024;
const MAX_TIMESTAMP_BYTES: usize = 64 * 1024;
const MAX_METADATA_BYTES: usize = 8 * 1024 * 1024;

/// Why the trusted root could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TufError {
    /// A file could not be fetched (the mirror is down, refused or answered an error).
    #[error("failed to fetch {file}")]
    Fetch {
        /// The file's path in the repository.
        file: String,
        /// Why.
        #[source]
        source: FetchError,
    },
    /// Metadata failed to parse or to verify.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A document is expired (a freeze attack, or a repository nobody signs any more).
    #[error("{role} metadata expired at {expires}")]
    Expired {
        /// The role.
        role: &'static str,
        /// Its `expires`.
        expires: String,
    },
    /// A document is older than the one trusted before, or not the version its parent named.
    #[error("{role} metadata version {got}: {why}")]
    Version {
        /// The role.
        role: &'static str,
        /// The version received.
        got: u64,
        /// What was expected.
        why: String,
    },
    /// A file does not match the length or hashes its parent gives.
    #[error("{file} does not match its metadata: {why}")]
    Mismatch {
        /// The file.
        file: String,
        /// Which check failed.
        why: String,
    },
    /// The targets metadata has no such target.
    #[error("the repository's targets have no {0:?}")]
    NoTarget(String),
}

/// Why one fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server answered with an error status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The answer was larger than the bound.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// The transport failed.
    #[error(transparent)]
    Transport(Box<dyn std::error::Error + Send + Sync>),
}

/// Where the repository's files come from.
pub trait Fetch: Send + Sync {
    /// The bytes of `path` (relative to the mirror: `timestamp.json`,
    /// `targets/<name>`), `None` when the server says it does not exist (404 or 403, as the
    /// specification's "not available" for the next root), at most `limit` bytes.
    fn fetch(
        &self,
        path: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, FetchError>> + Send;
}

/// [`Fetch`] over HTTP(S) with the registry transport's client (the `HTTPS_PROXY`/`NO_PROXY`
/// environment, system roots, TLS 1.2+, timeouts).
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    base: url::Url,
    client: reqwest::Client,
}

impl HttpFetcher {
    /// A fetcher for the repository at `mirror`.
    ///
    /// # Errors
    /// A text when `mirror` is not an absolute http(s) URL or the client cannot be built.
    pub fn new(mirror: &str) -> Result<HttpFetcher, String> {
        let mut base = url::Url::parse(mirror).map_err(|e| format!("invalid mirror URL: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!("invalid mirror URL: scheme {:?}", base.scheme()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let config = crate::registry::TransportConfig::default();
        let client = crate::registry::transport::build_http_client(&config, true)
            .map_err(|e| e.to_string())?;
        Ok(HttpFetcher { base, client })
    }
}

impl Fetch for HttpFetcher {
    async fn fetch(&self, path: &str, limit: usize) -> Result<Option<Vec<u8>>, FetchError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| FetchError::Transport(Box::new(e)))?;
        let resp = self
            .client
            .get(url)
            .timeout(std::time::Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| FetchError::Transport(Box::new(e.without_url())))?;
        let status = resp.status().as_u16();
        if status == 404 || status == 403 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(FetchError::Status(status));
        }
        match crate::body::read_limited(resp, limit).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(crate::body::BodyError::TooLarge) => Err(FetchError::TooLarge(limit)),
            Err(crate::body::BodyError::Read(e)) => {
                Err(FetchError::Transport(Box::new(e.without_url())))
            }
        }
    }
}

/// The cache directory: verified metadata and the target, or nothing (in memory only).
#[derive(Debug, Clone, Default)]
pub struct Cache {
    dir: Option<PathBuf>,
}

impl Cache {
    /// A cache in `dir`, created if missing; when it cannot be created or written, a warning
    /// and no cache.
    pub fn open(dir: &Path) -> Cache {
        let probe = dir.join(".ocisource-write-test");
        let usable = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&probe, b""))
            .and_then(|()| std::fs::remove_file(&probe));
        match usable {
            Ok(()) => Cache {
                dir: Some(dir.to_path_buf()),
            },
            Err(e) => {
                tracing::warn!(
                    dir = %dir.display(),
                    "TUF cache directory is not writable, keeping TUF metadata in memory only: {e}"
                );
                Cache { dir: None }
            }
        }
    }

    /// No cache.
    pub fn none() -> Cache {
        Cache { dir: None }
    }

    /// The directory, when there is one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn read(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.as_ref()?.join(name)).ok()
    }

    /// Writes `name` atomically (a temporary file renamed); a failure is only logged.
    fn write(&self, name: &str, bytes: &[u8]) {
        let Some(dir) = &self.dir else {
            return;
        };
        let written = tempfile::NamedTempFile::new_in(dir).and_then(|mut file| {
            std::io::Write::write_all(&mut file, bytes)?;
            file.persist(dir.join(name)).map_err(|e| e.error)?;
            Ok(())
        });
        if let Err(e) = written {
            tracing::warn!(dir = %dir.display(), file = name, "failed to cache TUF file: {e}");
        }
    }
}

/// Where a trusted root came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Fetched and verified now.
    Mirror,
    /// The mirror could not be reached; the cached, verified and unexpired files were used.
    Cache,
}

/// Runs the TUF client workflow against `fetcher`, starting from `initial_root`, and returns
/// the verified `trusted_root.json` and where it came from.
///
/// # Errors
/// [`TufError`] for a file that cannot be fetched (when the cache cannot stand in) or fails a
/// check.
pub async fn update<F: Fetch>(
    fetcher: &F,
    initial_root: &[u8],
    cache: &Cache,
    now: Timestamp,
) -> Result<(Vec<u8>, Source), TufError> {
    match online(fetcher, initial_root, cache, now).await {
        Ok(target) => Ok((target, Source::Mirror)),
        Err(error @ TufError::Fetch { .. }) => match offline(initial_root, cache, now) {
            Ok(Some(target)) => {
                tracing::warn!(
                    "TUF mirror unreachable ({error}); using the cached, unexpired trusted root"
                );
                Ok((target, Source::Cache))
            }
            Ok(None) => Err(error),
            Err(cached) => {
                tracing::debug!("cached TUF metadata unusable: {cached}");
                Err(error)
            }
        },
        Err(error) => Err(error),
    }
}

/// The trusted root to start from: the cached root when it verifies and is newer, else the
/// initial one (which must verify itself).
fn trusted_root(initial_root: &[u8], cache: &Cache) -> Result<Signed<Root>, TufError> {
    let initial: Signed<Root> = metadata::parse("root", initial_root)?;
    initial.verify_by("root", &initial.signed, "root")?;
    let cached = cache
        .read("root.json")
        .and_then(|bytes| metadata::parse::<Root>("root", &bytes).ok())
        .filter(|cached| cached.signed.version > initial.signed.version)
        .filter(|cached| cached.verify_by("root", &cached.signed, "root").is_ok());
    Ok(cached.unwrap_or(initial))
}

/// A cached document of `role` that still verifies with `root` (else `None`).
fn cached_meta(cache: &Cache, role: &'static str, root: &Root) -> Option<Signed<MetaList>> {
    let doc: Signed<MetaList> =
        metadata::parse(role, &cache.read(&format!("{role}.json"))?).ok()?;
    doc.verify_by(role, root, role).ok()?;
    Some(doc)
}

async fn fetch<F: Fetch>(fetcher: &F, path: &str, limit: usize) -> Result<Vec<u8>, TufError> {
    match fetcher.fetch(path, limit).await {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(TufError::Fetch {
            file: path.to_string(),
            source: FetchError::Status(404),
        }),
        // Longer than its metadata allows is a mismatch, not an unreachable mirror.
        Err(FetchError::TooLarge(limit)) => Err(TufError::Mismatch {
            file: path.to_string(),
            why: format!("longer than {limit} bytes"),
        }),
        Err(source) => Err(TufError::Fetch {
            file: path.to_string(),
            source,
        }),
    }
}

fn not_expired(role: &'static str, expires: &str, now: Timestamp) -> Result<(), TufError> {
    if metadata::expired(expires, now) {
        return Err(TufError::Expired {
            role,
            expires: expires.to_string(),
        });
    }
    Ok(())
}

fn limit_of(length: Option<u64>) -> usize {
    length
        .and_then(|l| usize::try_from(l).ok())
        .map_or(MAX_METADATA_BYTES, |l| l.min(MAX_METADATA_BYTES))
}

async fn online<F: Fetch>(
    fetcher: &F,
    initial_root: &[u8],
    cache: &Cache,
    now: Timestamp,
) -> Result<Vec<u8>, TufError> {
    // 1. The root chain.
    let mut root = trusted_root(initial_root, cache)?;
    let start = root.signed.version;
    while root.signed.version < start.saturating_add(MAX_ROOT_ROTATIONS) {
        let next_version = root.signed.version + 1;
        let path = format!("{next_version}.root.json");
        let Some(bytes) = (match fetcher.fetch(&path, MAX_ROOT_BYTES).await {
            Ok(found) => found,
            Err(source) => return Err(TufError::Fetch { file: path, source }),
        }) else {
            break;
        };
        let next: Signed<Root> = metadata::parse("root", &bytes)?;
        next.verify_by("root", &root.signed, "root")?;
        next.verify_by("root", &next.signed, "root")?;
        if next.signed.version != next_version {
            return Err(TufError::Version {
                role: "root",
                got: next.signed.version,
                why: format!("expected {next_version}"),
            });
        }
        cache.write("root.json", &bytes);
        root = next;
    }
    not_expired("root", &root.signed.expires, now)?;
    let root = root.signed;

    // 2. Timestamp.
    let old_timestamp = cached_meta(cache, "timestamp", &root);
    let bytes = fetch(fetcher, "timestamp.json", MAX_TIMESTAMP_BYTES).await?;
    let timestamp: Signed<MetaList> = metadata::parse("timestamp", &bytes)?;
    timestamp.verify_by("timestamp", &root, "timestamp")?;
    let new_snapshot = snapshot_meta(&timestamp.signed)?;
    if let Some(old) = &old_timestamp {
        if timestamp.signed.version < old.signed.version {
            return Err(TufError::Version {
                role: "timestamp",
                got: timestamp.signed.version,
                why: format!("older than the trusted version {}", old.signed.version),
            });
        }
        if let Ok(old_snapshot) = snapshot_meta(&old.signed)
            && new_snapshot.version < old_snapshot.version
        {
            return Err(TufError::Version {
                role: "snapshot",
                got: new_snapshot.version,
                why: format!("older than the trusted version {}", old_snapshot.version),
            });
        }
    }
    not_expired("timestamp", &timestamp.signed.expires, now)?;
    cache.write("timestamp.json", &bytes);

    // 3. Snapshot.
    let old_snapshot = cached_meta(cache, "snapshot", &root);
    let path = if root.consistent_snapshot {
        format!("{}.snapshot.json", new_snapshot.version)
    } else {
        "snapshot.json".to_string()
    };
    let bytes = fetch(fetcher, &path, limit_of(new_snapshot.length)).await?;
    let snapshot = check_snapshot(&bytes, &root, &new_snapshot, now)?;
    if let Some(old) = &old_snapshot {
        for (name, meta) in &old.signed.meta {
            let newer = snapshot.signed.meta.get(name).map(|m| m.version);
            if newer.is_none_or(|v| v < meta.version) {
                return Err(TufError::Version {
                    role: "snapshot",
                    got: snapshot.signed.version,
                    why: format!(
                        "{name} is at version {newer:?}, older than the trusted {}",
                        meta.version
                    ),
                });
            }
        }
    }
    cache.write("snapshot.json", &bytes);

    // 4. Targets.
    let targets_meta = targets_meta(&snapshot.signed)?;
    let path = if root.consistent_snapshot {
        format!("{}.targets.json", targets_meta.version)
    } else {
        "targets.json".to_string()
    };
    let bytes = fetch(fetcher, &path, limit_of(targets_meta.length)).await?;
    let targets = check_targets(&bytes, &root, &targets_meta, now)?;
    cache.write("targets.json", &bytes);

    // 5. The target.
    let file = targets
        .signed
        .targets
        .get(TRUSTED_ROOT_TARGET)
        .ok_or_else(|| TufError::NoTarget(TRUSTED_ROOT_TARGET.to_string()))?;
    let path = match file.hashes.get("sha256") {
        Some(sha256) if root.consistent_snapshot => {
            format!("targets/{sha256}.{TRUSTED_ROOT_TARGET}")
        }
        _ => format!("targets/{TRUSTED_ROOT_TARGET}"),
    };
    let target = fetch(fetcher, &path, limit_of(Some(file.length))).await?;
    metadata::check_file(&target, Some(file.length), Some(&file.hashes)).map_err(|why| {
        TufError::Mismatch {
            file: path.clone(),
            why,
        }
    })?;
    cache.write(TRUSTED_ROOT_TARGET, &target);
    Ok(target)
}

/// The same checks on the cached files alone; `Ok(None)` when the cache holds no target.
fn offline(
    initial_root: &[u8],
    cache: &Cache,
    now: Timestamp,
) -> Result<Option<Vec<u8>>, TufError> {
    let Some(target) = cache.read(TRUSTED_ROOT_TARGET) else {
        return Ok(None);
    };
    let root = trusted_root(initial_root, cache)?;
    not_expired("root", &root.signed.expires, now)?;
    let root = root.signed;
    let cached = |name: &str| {
        cache.read(name).ok_or_else(|| TufError::Fetch {
            file: format!("cache/{name}"),
            source: FetchError::Status(404),
        })
    };
    let timestamp: Signed<MetaList> = metadata::parse("timestamp", &cached("timestamp.json")?)?;
    timestamp.verify_by("timestamp", &root, "timestamp")?;
    not_expired("timestamp", &timestamp.signed.expires, now)?;
    let snapshot = check_snapshot(
        &cached("snapshot.json")?,
        &root,
        &snapshot_meta(&timestamp.signed)?,
        now,
    )?;
    let targets = check_targets(
        &cached("targets.json")?,
        &root,
        &targets_meta(&snapshot.signed)?,
        now,
    )?;
    let file = targets
        .signed
        .targets
        .get(TRUSTED_ROOT_TARGET)
        .ok_or_else(|| TufError::NoTarget(TRUSTED_ROOT_TARGET.to_string()))?;
    metadata::check_file(&target, Some(file.length), Some(&file.hashes)).map_err(|why| {
        TufError::Mismatch {
            file: format!("cache/{TRUSTED_ROOT_TARGET}"),
            why,
        }
    })?;
    Ok(Some(target))
}

fn snapshot_meta(timestamp: &MetaList) -> Result<metadata::MetaFile, TufError> {
    timestamp.meta.get("snapshot.json").cloned().ok_or_else(|| {
        TufError::Metadata(MetadataError::Malformed {
            role: "timestamp",
            reason: "no snapshot.json in meta".into(),
        })
    })
}

fn targets_meta(snapshot: &MetaList) -> Result<metadata::MetaFile, TufError> {
    snapshot.meta.get("targets.json").cloned().ok_or_else(|| {
        TufError::Metadata(MetadataError::Malformed {
            role: "snapshot",
            reason: "no targets.json in meta".into(),
        })
    })
}

fn check_snapshot(
    bytes: &[u8],
    root: &Root,
    expected: &metadata::MetaFile,
    now: Timestamp,
) -> Result<Signed<MetaList>, TufError> {
    metadata::check_file(bytes, expected.length, expected.hashes.as_ref()).map_err(|why| {
        TufError::Mismatch {
            file: "snapshot.json".into(),
            why,
        }
    })?;
    let snapshot: Signed<MetaList> = metadata::parse("snapshot", bytes)?;
    snapshot.verify_by("snapshot", root, "snapshot")?;
    if snapshot.signed.version != expected.version {
        return Err(TufError::Version {
            role: "snapshot",
            got: snapshot.signed.version,
            why: format!("timestamp names version {}", expected.version),
        });
    }
    not_expired("snapshot", &snapshot.signed.expires, now)?;
    Ok(snapshot)
}

fn check_targets(
    bytes: &[u8],
    root: &Root,
    expected: &metadata::MetaFile,
    now: Timestamp,
) -> Result<Signed<Targets>, TufError> {
    metadata::check_file(bytes, expected.length, expected.hashes.as_ref()).map_err(|why| {
        TufError::Mismatch {
            file: "targets.json".into(),
            why,
        }
    })?;
    let targets: Signed<Targets> = metadata::parse("targets", bytes)?;
    targets.verify_by("targets", root, "targets")?;
    if targets.signed.version != expected.version {
        return Err(TufError::Version {
            role: "targets",
            got: targets.signed.version,
            why: format!("snapshot names version {}", expected.version),
        });
    }
    not_expired("targets", &targets.signed.expires, now)?;
    Ok(targets)
}

#[cfg(test)]
mod tests;
