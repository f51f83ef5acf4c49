//! One download per artifact: objects whose artifacts would hold the same bytes share one
//! download, one extraction and one stored file (a difference from Flux, which does each per
//! object; its issue #2114). The store side, hard links and their sweep, is
//! [`crate::storage::shared`]; this is what decides which objects share and makes them wait for
//! each other.
//!
//! # What is shared with whom
//!
//! The bytes of an artifact depend on the layer (its digest), how it is taken (extract or copy),
//! `spec.ignore`, the digest algorithm and the extraction limits; the key hashes exactly these
//! ([`SharedArtifacts::key`]). Every object still resolves its reference, verifies signatures
//! and reads the manifest with its own credentials: an object only ever links a layer that its
//! own manifest names, so sharing never hands an object content its credentials could not read.
//! Credentials are therefore not part of the key.
//!
//! # Concurrency
//!
//! Objects that need the same missing key at the same time wait for the first one's download
//! instead of repeating it ([`super::single_flight`]); when it fails, each tries itself and
//! gets its own error. A waiter never waits past its own deadline. The stored entry outlives
//! the process (it is found on disk by the next one); the process remembers at most
//! [`DEFAULT_CAPACITY`] entries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::single_flight::SingleFlight;
use crate::api::v1::LayerOperation;
use crate::registry::Descriptor;
use crate::storage::{DigestAlgorithm, ExtractLimits, SharedEntry, SharedKey};

/// How many entries the process remembers; the oldest is forgotten first (it is still found on
/// disk).
pub const DEFAULT_CAPACITY: usize = 4096;

/// The process's shared artifact contents. Cheap to clone; clones share the entries and the
/// counters.
#[derive(Clone, Debug)]
pub struct SharedArtifacts {
    entries: Option<Arc<SingleFlight<SharedEntry>>>,
    stored: Arc<AtomicU64>,
}

impl Default for SharedArtifacts {
    fn default() -> Self {
        SharedArtifacts::new(DEFAULT_CAPACITY)
    }
}

impl SharedArtifacts {
    /// Sharing on, remembering at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> SharedArtifacts {
        SharedArtifacts {
            entries: Some(Arc::new(SingleFlight::new(capacity))),
            stored: Arc::default(),
        }
    }

    /// No sharing: every object downloads and stores its own copy, as Flux.
    pub fn disabled() -> SharedArtifacts {
        SharedArtifacts {
            entries: None,
            stored: Arc::default(),
        }
    }

    /// Whether objects share contents.
    pub fn is_enabled(&self) -> bool {
        self.entries.is_some()
    }

    /// Contents this process downloaded and stored as a new entry.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Contents an object took from an entry another object had stored.
    pub fn shared(&self) -> u64 {
        let Some(entries) = &self.entries else {
            return 0;
        };
        // Runs that found the entry on disk (stored by an earlier process, or forgotten from
        // memory) are shares as well.
        let runs = entries.runs();
        entries.shared() + runs.saturating_sub(self.stored())
    }

    /// Counts a download stored as a new entry.
    pub fn count_stored(&self) {
        self.stored.fetch_add(1, Ordering::Relaxed);
    }

    /// The key of the bytes an artifact of `layer` taken by `operation` holds.
    pub fn key(
        layer: &Descriptor,
        operation: LayerOperation,
        ignore: Option<&str>,
        algorithm: DigestAlgorithm,
        limits: &ExtractLimits,
    ) -> SharedKey {
        let operation: &[u8] = match operation {
            LayerOperation::Extract => b"extract",
            LayerOperation::Copy => b"copy",
        };
        // `None` and `Some("")` give the same archive; they are kept apart anyway, as the
        // status keeps them apart (`observedIgnore`).
        let ignore: Vec<u8> = match ignore {
            None => b"none".to_vec(),
            Some(text) => [b"some:".as_slice(), text.as_bytes()].concat(),
        };
        let limit =
            |l: Option<u64>| l.map_or_else(|| b"unlimited".to_vec(), |n| n.to_be_bytes().to_vec());
        let max_size = limit(limits.max_size);
        let max_entries = limit(limits.max_entries);
        SharedKey::new([
            layer.digest.to_string().as_bytes(),
            operation,
            &ignore,
            algorithm.to_string().as_bytes(),
            &max_size,
            &max_entries,
        ])
    }

    /// The entry of `key`: remembered, awaited from the object making it, or made by `make`
    /// (which looks on disk first). Errors are the caller's own and never kept.
    ///
    /// # Errors
    /// What `make` returns.
    pub async fn get_or_make<F, Fut, E>(
        &self,
        key: SharedKey,
        deadline: Option<Instant>,
        make: F,
    ) -> Result<SharedEntry, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<SharedEntry, E>>,
    {
        match &self.entries {
            Some(entries) => entries
                .get_or_ask(key.bytes(), Duration::MAX, deadline, make)
                .await
                .map(|(entry, _)| entry),
            None => make().await,
        }
    }

    /// Forgets the remembered entry of `key` (it was swept from disk).
    pub fn forget(&self, key: &SharedKey) {
        if let Some(entries) = &self.entries {
            entries.forget(&key.bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Digest;
    use crate::storage::Stored;
    use std::path::PathBuf;
    use std::sync::atomic::AtomicUsize;

    fn layer(content: &str) -> Descriptor {
        Descriptor {
            media_type: "application/vnd.cncf.flux.content.v1.tar+gzip".into(),
            digest: Digest::sha256_of(content.as_bytes()),
            size: content.len() as u64,
            annotations: Default::default(),
        }
    }

    fn key_of(
        content: &str,
        operation: LayerOperation,
        ignore: Option<&str>,
        algorithm: DigestAlgorithm,
        limits: ExtractLimits,
    ) -> SharedKey {
        SharedArtifacts::key(&layer(content), operation, ignore, algorithm, &limits)
    }

    fn entry(name: &str) -> SharedEntry {
        SharedEntry {
            file: PathBuf::from(name),
            stored: Stored {
                digest: crate::storage::Digest::from_bytes(
                    DigestAlgorithm::Sha256,
                    name.as_bytes(),
                ),
                size: 1,
            },
        }
    }

    #[test]
    fn every_input_that_shapes_the_bytes_is_in_the_key() {
        let base = || {
            key_of(
                "a",
                LayerOperation::Extract,
                None,
                DigestAlgorithm::Sha256,
                ExtractLimits::default(),
            )
        };
        assert_eq!(base(), base());
        let others = [
            key_of(
                "b",
                LayerOperation::Extract,
                None,
                DigestAlgorithm::Sha256,
                ExtractLimits::default(),
            ),
            key_of(
                "a",
                LayerOperation::Copy,
                None,
                DigestAlgorithm::Sha256,
                ExtractLimits::default(),
            ),
            key_of(
                "a",
                LayerOperation::Extract,
                Some(""),
                DigestAlgorithm::Sha256,
                ExtractLimits::default(),
            ),
            key_of(
                "a",
                LayerOperation::Extract,
                Some("*.md"),
                DigestAlgorithm::Sha256,
                ExtractLimits::default(),
            ),
            key_of(
                "a",
                LayerOperation::Extract,
                None,
                DigestAlgorithm::Blake3,
                ExtractLimits::default(),
            ),
            key_of(
                "a",
                LayerOperation::Extract,
                None,
                DigestAlgorithm::Sha256,
                ExtractLimits {
                    max_size: None,
                    ..ExtractLimits::default()
                },
            ),
            key_of(
                "a",
                LayerOperation::Extract,
                None,
                DigestAlgorithm::Sha256,
                ExtractLimits {
                    max_entries: Some(1),
                    ..ExtractLimits::default()
                },
            ),
        ];
        for (i, k) in others.iter().enumerate() {
            assert_ne!(*k, base(), "variant {i}");
        }
    }

    #[tokio::test]
    async fn objects_asking_at_once_wait_for_one_download() {
        let shared = SharedArtifacts::default();
        let key = SharedKey::new([&b"k"[..]]);
        let made = AtomicUsize::new(0);
        let make = || async {
            made.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Ok::<_, String>(entry("e"))
        };
        let all =
            futures::future::join_all((0..5).map(|_| shared.get_or_make(key, None, make))).await;
        assert!(all.iter().all(|r| r.as_ref() == Ok(&entry("e"))));
        assert_eq!(made.load(Ordering::SeqCst), 1);
        shared.count_stored();
        assert_eq!((shared.stored(), shared.shared()), (1, 4));

        // Forgotten (swept from disk): made again.
        shared.forget(&key);
        shared.get_or_make(key, None, make).await.unwrap();
        assert_eq!(made.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_are_each_objects_own_and_disabled_sharing_makes_every_time() {
        let shared = SharedArtifacts::default();
        let key = SharedKey::new([&b"k"[..]]);
        let failed = shared
            .get_or_make(key, None, || async { Err::<SharedEntry, _>("boom") })
            .await;
        assert_eq!(failed, Err("boom"));
        let ok = shared
            .get_or_make(key, None, || async { Ok::<_, &str>(entry("e")) })
            .await;
        assert_eq!(ok, Ok(entry("e")));

        let off = SharedArtifacts::disabled();
        assert!(!off.is_enabled());
        let made = AtomicUsize::new(0);
        for _ in 0..3 {
            off.get_or_make(key, None, || async {
                made.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(entry("e"))
            })
            .await
            .unwrap();
        }
        assert_eq!(made.load(Ordering::SeqCst), 3);
        assert_eq!(off.shared(), 0);
    }
}
