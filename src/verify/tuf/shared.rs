//! The process's one Sigstore trusted root from TUF: loaded on first use and shared by every
//! object (callers that ask while it loads wait for that one load), kept for the life of the
//! process once loaded. A failure is kept too and answered without a fetch until a minute has
//! passed; the next caller after that tries again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

use super::{Cache, DEFAULT_MIRROR, Fetch, HttpFetcher, PUBLIC_GOOD_ROOT, Source};
use crate::verify::keyless::TrustedRoot;

/// How long a failed load is answered from memory before the next attempt.
pub const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Where the trusted root comes from: the controller's and standalone mode's
/// `--sigstore-tuf-mirror`, `--sigstore-tuf-root` and `$TUF_ROOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TufSettings {
    /// The repository's base URL.
    pub mirror: String,
    /// The initial (trusted) root metadata.
    pub initial_root: Vec<u8>,
    /// The cache directory; `None` keeps everything in memory.
    pub cache_dir: Option<PathBuf>,
}

impl Default for TufSettings {
    /// The public-good repository with the embedded root and no cache.
    fn default() -> TufSettings {
        TufSettings {
            mirror: DEFAULT_MIRROR.to_string(),
            initial_root: PUBLIC_GOOD_ROOT.to_vec(),
            cache_dir: None,
        }
    }
}

/// The trusted root as loaded.
#[derive(Debug)]
pub struct LoadedRoot {
    /// The parsed trust material.
    pub root: TrustedRoot,
    /// SHA-256 of the `trusted_root.json` bytes (what a shared verification is keyed by).
    pub digest: [u8; 32],
    /// Fetched, or the cache when the mirror was unreachable.
    pub source: Source,
}

/// The trusted root could not be loaded (now, or within the last minute).
#[derive(Debug, Clone, thiserror::Error)]
#[error("failed to get the Sigstore trusted root through TUF from {mirror}: {cause}")]
pub struct PublicRootError {
    /// The mirror, without credentials or query.
    pub mirror: String,
    /// Why, rendered.
    pub cause: String,
}

#[derive(Debug)]
enum State {
    Empty,
    Loaded(Arc<LoadedRoot>),
    Failed { at: Instant, cause: String },
}

/// The process's trusted root from TUF (see the module documentation).
#[derive(Debug)]
pub struct SigstoreRoot<F = HttpFetcher> {
    pub(super) fetcher: F,
    mirror: String,
    initial_root: Vec<u8>,
    cache_dir: Option<PathBuf>,
    // Opened (the directory created) on the first load, not when the process starts.
    cache: std::sync::OnceLock<Cache>,
    state: tokio::sync::Mutex<State>,
    loads: AtomicU64,
}

impl SigstoreRoot<HttpFetcher> {
    /// A loader for `settings` (nothing is fetched, and the cache directory is created on the
    /// first load).
    ///
    /// # Errors
    /// A text when the mirror is not a usable http(s) URL.
    pub fn new(settings: &TufSettings) -> Result<SigstoreRoot<HttpFetcher>, String> {
        let fetcher = HttpFetcher::new(&settings.mirror)?;
        let mut root = SigstoreRoot::with_fetcher(
            fetcher,
            &settings.mirror,
            settings.initial_root.clone(),
            Cache::none(),
        );
        root.cache = std::sync::OnceLock::new();
        root.cache_dir = settings.cache_dir.clone();
        Ok(root)
    }

    /// (tests) A loader that already holds `trusted_root_json` (mirror `mirror`, nothing
    /// fetched).
    #[cfg(test)]
    pub(crate) fn preloaded(mirror: &str, trusted_root_json: &[u8]) -> SigstoreRoot {
        let root = SigstoreRoot::new(&TufSettings {
            mirror: mirror.to_string(),
            ..TufSettings::default()
        })
        .unwrap();
        let loaded = LoadedRoot {
            root: TrustedRoot::from_json(trusted_root_json).unwrap(),
            digest: Sha256::digest(trusted_root_json).into(),
            source: Source::Mirror,
        };
        *root.state.try_lock().unwrap() = State::Loaded(Arc::new(loaded));
        root
    }
}

impl<F: Fetch> SigstoreRoot<F> {
    /// A loader fetching through `fetcher`.
    pub fn with_fetcher(
        fetcher: F,
        mirror: &str,
        initial_root: Vec<u8>,
        cache: Cache,
    ) -> SigstoreRoot<F> {
        SigstoreRoot {
            fetcher,
            mirror: display_url(mirror),
            initial_root,
            cache_dir: None,
            cache: std::sync::OnceLock::from(cache),
            state: tokio::sync::Mutex::new(State::Empty),
            loads: AtomicU64::new(0),
        }
    }

    /// The mirror, as messages name it.
    pub fn mirror(&self) -> &str {
        &self.mirror
    }

    /// How many loads ran (each a TUF update; answers from memory do not count).
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// The trusted root: loaded once, shared; a failure within the last minute is answered
    /// again without a fetch.
    ///
    /// # Errors
    /// [`PublicRootError`] naming the mirror and the cause.
    pub async fn get(&self) -> Result<Arc<LoadedRoot>, PublicRootError> {
        let mut state = self.state.lock().await;
        match &*state {
            State::Loaded(root) => return Ok(root.clone()),
            State::Failed { at, cause } if at.elapsed() < RETRY_AFTER => {
                return Err(self.error(cause.clone()));
            }
            _ => {}
        }
        self.loads.fetch_add(1, Ordering::Relaxed);
        let now = k8s_openapi::jiff::Timestamp::now();
        let cache = self.cache.get_or_init(|| match &self.cache_dir {
            Some(dir) => Cache::open(dir),
            None => Cache::none(),
        });
        let loaded = super::update(&self.fetcher, &self.initial_root, cache, now)
            .await
            .map_err(|e| crate::error_chain::chain(&e))
            .and_then(|(bytes, source)| {
                let root =
                    TrustedRoot::from_json(&bytes).map_err(|e| crate::error_chain::chain(&e))?;
                Ok(LoadedRoot {
                    root,
                    digest: Sha256::digest(&bytes).into(),
                    source,
                })
            });
        match loaded {
            Ok(root) => {
                tracing::info!(
                    mirror = %self.mirror,
                    source = ?root.source,
                    "Sigstore trusted root loaded through TUF"
                );
                let root = Arc::new(root);
                *state = State::Loaded(root.clone());
                Ok(root)
            }
            Err(cause) => {
                tracing::warn!(mirror = %self.mirror, "failed to load the Sigstore trusted root through TUF: {cause}");
                *state = State::Failed {
                    at: Instant::now(),
                    cause: cause.clone(),
                };
                Err(self.error(cause))
            }
        }
    }

    fn error(&self, cause: String) -> PublicRootError {
        PublicRootError {
            mirror: self.mirror.clone(),
            cause,
        }
    }
}

/// `url` without userinfo, query or fragment.
fn display_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string().trim_end_matches('/').to_string()
        }
        Err(_) => "<invalid URL>".to_string(),
    }
}
