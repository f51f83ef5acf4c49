//! One registry conversation per repository and interval, shared by every object of the
//! process: a tag's digest (the manifest `HEAD`) and a repository's tag list (the semver
//! listing) are asked once and the answer is shared for a short while with every object that
//! reaches the same repository the same way (a difference from Flux, which asks per object).
//!
//! # What is shared with whom
//!
//! An answer is keyed by everything that can change it: the registry and repository, the
//! credential (a hash of its material: the docker-config entry the keychain chose, the cloud
//! login's token, or anonymous), the transport (CA, client certificate and key, `insecure`,
//! proxy, user agent: what makes the client pool hand out another client) and, for a `HEAD`,
//! the tag. Two objects that differ in any of these never share; objects in different
//! namespaces with equal Secrets do.
//!
//! # Freshness
//!
//! An answer is shared while it is younger than the asking object's window:
//! `min(--resolution-cache-window, spec.interval / 2)`. The object would otherwise have
//! polled itself now and kept that answer for a whole interval; an answer at most half an
//! interval (and at most the window) old is fresher than the one it ran with until now, and a
//! lone object never meets its own answer again (it comes back an interval later, past half an
//! interval). Objects created or requeued together (a burst drains within seconds) therefore
//! cost one request per repository and interval. An object whose `reconcile.fluxcd.io/
//! requestedAt` changed (`flux reconcile source oci`) or whose spec changed since it was last
//! observed always asks the registry itself; its answer then serves the others.
//!
//! # Failures and concurrency
//!
//! Only answers are kept, never failures: each object gets its own error and backoff, as
//! without the cache. Objects that ask at the same time wait for the first request instead of
//! repeating it (single flight); when it fails (or the first asker gives up), each waiter asks
//! the registry itself, so an outage costs what it costs without the cache. A waiter never
//! waits past its own deadline. The cache holds at most [`DEFAULT_CAPACITY`] answers; the
//! oldest entry is forgotten first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::registry::{Client, Credential, Digest, Repository, TransportConfig};

/// How many answers are kept; the oldest entry is forgotten first.
pub const DEFAULT_CAPACITY: usize = 4096;

/// The default of `--resolution-cache-window`: how long an answer is shared at most.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);

type Key = [u8; 32];

/// An answer of the registry.
#[derive(Clone, Debug)]
enum Answer {
    Digest(Digest),
    Tags(Arc<Vec<String>>),
}

#[derive(Debug, Default)]
struct Entry {
    /// The newest answer and when it arrived.
    answer: Option<(Answer, Instant)>,
    /// The request in flight, if any: its sender is dropped when it ends.
    flight: Option<watch::Receiver<()>>,
}

#[derive(Debug, Default)]
struct Entries {
    by_key: HashMap<Key, Entry>,
    order: VecDeque<Key>,
}

/// What an object accepts from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freshness {
    /// The oldest answer the object accepts; zero asks the registry.
    max_age: Duration,
}

impl Freshness {
    /// The object asks the registry itself (a `requestedAt` or spec change); its answer is
    /// still shared with the others.
    pub const FRESH: Freshness = Freshness {
        max_age: Duration::ZERO,
    };

    /// What an object polling every `interval` accepts: answers younger than
    /// `min(window, interval / 2)`.
    pub fn for_interval(interval: Duration, window: Duration) -> Freshness {
        Freshness {
            max_age: window.min(interval / 2),
        }
    }

    /// The oldest answer accepted.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }
}

/// The identity of a connection: its credential and transport, hashed. Two connections with
/// equal fingerprints get the same answers from a registry.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(Key);

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short: String = self.0[..6].iter().map(|b| format!("{b:02x}")).collect();
        write!(f, "Fingerprint({short}…)")
    }
}

impl Fingerprint {
    /// The fingerprint of `credential` through `transport`. Everything that may change what
    /// the registry answers counts; the TLS Secret's name (only used in messages) does not.
    pub fn of(credential: &Credential, transport: &TransportConfig) -> Fingerprint {
        let mut h = Hasher::default();
        match credential {
            Credential::Anonymous => h.part(b"anonymous"),
            Credential::Basic { username, password } => {
                h.part(b"basic");
                h.part(username.as_bytes());
                h.part(password.as_bytes());
            }
            Credential::IdentityToken { username, token } => {
                h.part(b"identitytoken");
                h.part(username.as_bytes());
                h.part(token.as_bytes());
            }
            Credential::RegistryToken(token) => {
                h.part(b"registrytoken");
                h.part(token.as_bytes());
            }
        }
        let tls = &transport.tls;
        for pem in [&tls.ca_pem, &tls.cert_pem, &tls.key_pem] {
            h.optional(pem.as_deref());
        }
        h.part(&[u8::from(transport.insecure)]);
        match &transport.proxy {
            None => h.part(b"environment proxy"),
            Some(p) => {
                h.part(b"proxy");
                h.part(p.address.as_bytes());
                h.optional(p.username.as_deref().map(str::as_bytes));
                h.optional(p.password.as_deref().map(str::as_bytes));
            }
        }
        h.part(transport.user_agent.as_bytes());
        Fingerprint(h.finish())
    }
}

/// SHA-256 over length-prefixed parts, so that no two sequences of parts collide.
#[derive(Default)]
struct Hasher(Sha256);

impl Hasher {
    fn part(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    fn optional(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            None => self.part(b"none"),
            Some(b) => {
                self.part(b"some");
                self.part(b);
            }
        }
    }

    fn finish(self) -> Key {
        self.0.finalize().into()
    }
}

/// The process's shared registry answers, bounded. Cheap to clone; clones share the answers
/// and the counters.
#[derive(Clone, Debug)]
pub struct ResolutionCache {
    window: Duration,
    capacity: usize,
    entries: Arc<Mutex<Entries>>,
    runs: Arc<AtomicU64>,
    shared: Arc<AtomicU64>,
}

impl Default for ResolutionCache {
    fn default() -> Self {
        ResolutionCache::new(DEFAULT_WINDOW, DEFAULT_CAPACITY)
    }
}

impl ResolutionCache {
    /// A cache sharing answers for at most `window` (zero: never shares), keeping at most
    /// `capacity` entries (at least one).
    pub fn new(window: Duration, capacity: usize) -> ResolutionCache {
        ResolutionCache {
            window,
            capacity: capacity.max(1),
            entries: Arc::default(),
            runs: Arc::default(),
            shared: Arc::default(),
        }
    }

    /// A cache that never shares (every object asks the registry), as Flux.
    pub fn disabled() -> ResolutionCache {
        ResolutionCache::new(Duration::ZERO, 1)
    }

    /// The longest an answer is shared (`--resolution-cache-window`).
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Resolutions that asked the registry.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Resolutions answered with an answer another object had asked for.
    pub fn shared(&self) -> u64 {
        self.shared.load(Ordering::Relaxed)
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The digest of `repo:tag` as `client` with `credential` (fingerprinted as `fingerprint`)
    /// resolves it: shared when an answer young enough for `freshness` exists or is being
    /// asked for, else asked.
    ///
    /// # Errors
    /// As [`Client::resolve_digest`]; failures are the asker's own.
    pub async fn resolve_digest(
        &self,
        connection: (&Client, &Credential, Fingerprint),
        repo: &Repository,
        tag: &str,
        freshness: Freshness,
    ) -> Result<Digest, crate::registry::Error> {
        let (client, credential, fingerprint) = connection;
        let key = key(b"digest", repo, fingerprint, Some(tag));
        let answer = self
            .share(key, freshness, client.deadline(), || async {
                client
                    .resolve_digest(repo, tag, credential)
                    .await
                    .map(Answer::Digest)
            })
            .await?;
        match answer {
            Answer::Digest(d) => Ok(d),
            // Keys of the two kinds differ; a tag list never answers a digest question.
            Answer::Tags(_) => Err(crate::registry::Error::protocol(
                "resolution cache: a tag list under a digest key",
            )),
        }
    }

    /// The tags of `repo`, shared as [`ResolutionCache::resolve_digest`] shares digests.
    ///
    /// # Errors
    /// As [`Client::list_tags`]; failures are the asker's own.
    pub async fn list_tags(
        &self,
        connection: (&Client, &Credential, Fingerprint),
        repo: &Repository,
        freshness: Freshness,
    ) -> Result<Arc<Vec<String>>, crate::registry::Error> {
        let (client, credential, fingerprint) = connection;
        let key = key(b"tags", repo, fingerprint, None);
        let answer = self
            .share(key, freshness, client.deadline(), || async {
                client
                    .list_tags(repo, credential)
                    .await
                    .map(|t| Answer::Tags(Arc::new(t)))
            })
            .await?;
        match answer {
            Answer::Tags(t) => Ok(t),
            Answer::Digest(_) => Err(crate::registry::Error::protocol(
                "resolution cache: a digest under a tag list key",
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves consistent data (no multi-step update).
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer for `key`: shared, awaited from a request in flight, or asked with `ask`.
    async fn share<F, Fut, E>(
        &self,
        key: Key,
        freshness: Freshness,
        deadline: Option<Instant>,
        ask: F,
    ) -> Result<Answer, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Answer, E>>,
    {
        if self.window.is_zero() {
            self.runs.fetch_add(1, Ordering::Relaxed);
            return ask().await;
        }
        let max_age = freshness.max_age.min(self.window);
        if max_age.is_zero() {
            return self.ask_alone(key, ask).await;
        }
        let waiting = match self.look(key, max_age) {
            Look::Answer(answer) => {
                self.shared.fetch_add(1, Ordering::Relaxed);
                return Ok(answer);
            }
            Look::Lead(sender) => return self.lead(key, sender, ask).await,
            Look::Wait(receiver) => receiver,
        };
        let mut waiting = waiting;
        let ended = waiting.changed();
        // Past its own deadline the asker goes on alone; its client then fails at once.
        match deadline {
            Some(d) => {
                let _ = tokio::time::timeout_at(d, ended).await;
            }
            None => {
                let _ = ended.await;
            }
        }
        if let Some(answer) = self.young(key, max_age) {
            self.shared.fetch_add(1, Ordering::Relaxed);
            return Ok(answer);
        }
        // The request in flight failed or was given up: this asker's own request, its own error.
        self.ask_alone(key, ask).await
    }

    /// Asks without joining or starting a flight; keeps the answer for the others.
    async fn ask_alone<F, Fut, E>(&self, key: Key, ask: F) -> Result<Answer, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Answer, E>>,
    {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let answer = ask().await?;
        self.keep(key, &answer);
        Ok(answer)
    }

    /// Asks as the flight's leader: the waiters learn that it ended when `sender` drops.
    async fn lead<F, Fut, E>(
        &self,
        key: Key,
        sender: watch::Sender<()>,
        ask: F,
    ) -> Result<Answer, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Answer, E>>,
    {
        self.runs.fetch_add(1, Ordering::Relaxed);
        // Ends the flight however the request ends, cancellation included.
        let _flight = Flight {
            cache: self,
            key,
            sender,
        };
        let answer = ask().await?;
        self.keep(key, &answer);
        Ok(answer)
    }

    fn young(&self, key: Key, max_age: Duration) -> Option<Answer> {
        let entries = self.lock();
        let (answer, at) = entries.by_key.get(&key)?.answer.as_ref()?;
        (at.elapsed() < max_age).then(|| answer.clone())
    }

    fn look(&self, key: Key, max_age: Duration) -> Look {
        let mut entries = self.lock();
        if let Some(entry) = entries.by_key.get_mut(&key) {
            if let Some((answer, at)) = &entry.answer
                && at.elapsed() < max_age
            {
                return Look::Answer(answer.clone());
            }
            if let Some(flight) = &entry.flight
                && flight.has_changed().is_ok()
            {
                return Look::Wait(flight.clone());
            }
            let (sender, receiver) = watch::channel(());
            entry.flight = Some(receiver);
            return Look::Lead(sender);
        }
        let (sender, receiver) = watch::channel(());
        Self::make_room(&mut entries, self.capacity);
        entries.by_key.insert(
            key,
            Entry {
                answer: None,
                flight: Some(receiver),
            },
        );
        entries.order.push_back(key);
        Look::Lead(sender)
    }

    fn keep(&self, key: Key, answer: &Answer) {
        let mut entries = self.lock();
        let now = Instant::now();
        if let Some(entry) = entries.by_key.get_mut(&key) {
            entry.answer = Some((answer.clone(), now));
            return;
        }
        Self::make_room(&mut entries, self.capacity);
        entries.by_key.insert(
            key,
            Entry {
                answer: Some((answer.clone(), now)),
                flight: None,
            },
        );
        entries.order.push_back(key);
    }

    fn make_room(entries: &mut Entries, capacity: usize) {
        while entries.by_key.len() >= capacity {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.by_key.remove(&oldest);
        }
    }
}

enum Look {
    Answer(Answer),
    Lead(watch::Sender<()>),
    Wait(watch::Receiver<()>),
}

/// A request in flight; dropping it tells the waiters that it ended.
struct Flight<'a> {
    cache: &'a ResolutionCache,
    key: Key,
    sender: watch::Sender<()>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut entries = self.cache.lock();
        if let Some(entry) = entries.by_key.get_mut(&self.key)
            && entry
                .flight
                .as_ref()
                .is_some_and(|r| r.same_channel(&self.sender.subscribe()))
        {
            entry.flight = None;
        }
        // The sender drops after the entry is updated: a woken waiter finds the answer.
    }
}

fn key(kind: &[u8], repo: &Repository, fingerprint: Fingerprint, tag: Option<&str>) -> Key {
    let mut h = Hasher::default();
    h.part(kind);
    h.part(repo.registry().as_bytes());
    h.part(repo.repository().as_bytes());
    h.part(&fingerprint.0);
    h.optional(tag.map(str::as_bytes));
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::registry::{ProxyConfig, TlsMaterial};

    const MINUTE: Duration = Duration::from_secs(60);

    fn repo(s: &str) -> Repository {
        Repository::parse(s).unwrap()
    }

    fn anonymous() -> Fingerprint {
        Fingerprint::of(&Credential::Anonymous, &TransportConfig::default())
    }

    fn digest_key(tag: &str) -> Key {
        key(b"digest", &repo("r.example/app"), anonymous(), Some(tag))
    }

    fn digest(content: &str) -> Answer {
        Answer::Digest(Digest::sha256_of(content.as_bytes()))
    }

    fn digest_of(answer: Answer) -> Digest {
        match answer {
            Answer::Digest(d) => d,
            Answer::Tags(_) => panic!("a tag list"),
        }
    }

    /// Counts its calls and answers `digest(content)` (or fails) after `pause`.
    struct Registry {
        calls: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
        pause: Duration,
    }

    impl Registry {
        fn new(pause: Duration) -> Registry {
            Registry {
                calls: AtomicUsize::new(0),
                fail: Default::default(),
                pause,
            }
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        async fn ask(&self, content: &str) -> Result<Answer, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.pause).await;
            if self.fail.load(Ordering::SeqCst) {
                Err(format!("failure {}", self.calls()))
            } else {
                Ok(digest(content))
            }
        }
    }

    async fn ask(
        cache: &ResolutionCache,
        registry: &Registry,
        key: Key,
        freshness: Freshness,
        content: &str,
    ) -> Result<Digest, String> {
        cache
            .share(key, freshness, None, || registry.ask(content))
            .await
            .map(digest_of)
    }

    fn within(interval: Duration) -> Freshness {
        Freshness::for_interval(interval, DEFAULT_WINDOW)
    }

    #[test]
    fn the_window_is_the_smaller_of_the_flag_and_half_the_interval() {
        assert_eq!(within(10 * MINUTE).max_age(), DEFAULT_WINDOW);
        assert_eq!(
            within(Duration::from_secs(10)).max_age(),
            Duration::from_secs(5)
        );
        assert_eq!(
            Freshness::for_interval(10 * MINUTE, Duration::ZERO).max_age(),
            Duration::ZERO
        );
        assert_eq!(within(Duration::ZERO), Freshness::FRESH);
    }

    #[test]
    fn different_credentials_transports_tags_and_repositories_never_share_a_key() {
        let basic = |user: &str, password: &str| Credential::Basic {
            username: user.into(),
            password: password.into(),
        };
        let plain = TransportConfig::default();
        let with_ca = |ca: &[u8]| TransportConfig {
            tls: TlsMaterial {
                ca_pem: Some(ca.to_vec()),
                ..TlsMaterial::default()
            },
            ..TransportConfig::default()
        };
        let with_cert = TransportConfig {
            tls: TlsMaterial {
                cert_pem: Some(b"cert".to_vec()),
                key_pem: Some(b"key".to_vec()),
                ..TlsMaterial::default()
            },
            ..TransportConfig::default()
        };
        let insecure = TransportConfig {
            insecure: true,
            ..TransportConfig::default()
        };
        let proxied = |password: &str| TransportConfig {
            proxy: Some(ProxyConfig {
                address: "http://proxy.example:3128".into(),
                username: Some("p".into()),
                password: Some(password.into()),
            }),
            ..TransportConfig::default()
        };
        let fingerprints = [
            Fingerprint::of(&Credential::Anonymous, &plain),
            Fingerprint::of(&basic("u", "one"), &plain),
            Fingerprint::of(&basic("u", "two"), &plain),
            Fingerprint::of(&basic("v", "one"), &plain),
            // Fields must not run into each other.
            Fingerprint::of(&basic("uo", "ne"), &plain),
            Fingerprint::of(&Credential::RegistryToken("one".into()), &plain),
            Fingerprint::of(
                &Credential::IdentityToken {
                    username: "u".into(),
                    token: "one".into(),
                },
                &plain,
            ),
            Fingerprint::of(&Credential::Anonymous, &with_ca(b"ca one")),
            Fingerprint::of(&Credential::Anonymous, &with_ca(b"ca two")),
            Fingerprint::of(&Credential::Anonymous, &with_cert),
            Fingerprint::of(&Credential::Anonymous, &insecure),
            Fingerprint::of(&Credential::Anonymous, &proxied("one")),
            Fingerprint::of(&Credential::Anonymous, &proxied("two")),
        ];
        for (i, a) in fingerprints.iter().enumerate() {
            for b in &fingerprints[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Equal material is equal, whatever the TLS Secret is called.
        let mut renamed = with_ca(b"ca one");
        renamed.tls.secret_name = Some("other-name".into());
        assert_eq!(
            Fingerprint::of(&basic("u", "one"), &with_ca(b"ca one")),
            Fingerprint::of(&basic("u", "one"), &renamed)
        );

        let app = repo("r.example/app");
        let f = anonymous();
        let keys = [
            key(b"digest", &app, f, Some("v1")),
            key(b"digest", &app, f, Some("v2")),
            key(b"digest", &app, fingerprints[1], Some("v1")),
            key(b"digest", &repo("r.example/other"), f, Some("v1")),
            key(b"digest", &repo("s.example/app"), f, Some("v1")),
            key(b"tags", &app, f, None),
            key(b"tags", &repo("r.example/other"), f, None),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_shared_while_younger_than_the_askers_window() {
        let cache = ResolutionCache::default();
        let registry = Registry::new(Duration::ZERO);
        let (hourly, ten_seconds) = (within(60 * MINUTE), within(Duration::from_secs(10)));
        let first = ask(&cache, &registry, digest_key("v1"), hourly, "one").await;
        assert_eq!(first, Ok(Digest::sha256_of(b"one")));

        tokio::time::advance(Duration::from_secs(4)).await;
        // Shared: the registry would now answer "two", the cache still says "one".
        for freshness in [hourly, ten_seconds] {
            let got = ask(&cache, &registry, digest_key("v1"), freshness, "two").await;
            assert_eq!(got, first);
        }
        assert_eq!((registry.calls(), cache.runs(), cache.shared()), (1, 1, 2));

        // Another tag is another question.
        let other = ask(&cache, &registry, digest_key("v2"), hourly, "two").await;
        assert_eq!(other, Ok(Digest::sha256_of(b"two")));
        assert_eq!(registry.calls(), 2);

        // 6 s old: too old for a 10 s interval (5 s), young enough for an hourly one (30 s).
        tokio::time::advance(Duration::from_secs(2)).await;
        let hourly_got = ask(&cache, &registry, digest_key("v1"), hourly, "two").await;
        assert_eq!(hourly_got, first);
        assert_eq!(registry.calls(), 2);
        let fresh = ask(&cache, &registry, digest_key("v1"), ten_seconds, "two").await;
        assert_eq!(fresh, Ok(Digest::sha256_of(b"two")));
        assert_eq!(registry.calls(), 3);

        // The new answer is the one shared from now on; past the window nobody gets it.
        let got = ask(&cache, &registry, digest_key("v1"), hourly, "three").await;
        assert_eq!(got, fresh);
        tokio::time::advance(DEFAULT_WINDOW).await;
        let got = ask(&cache, &registry, digest_key("v1"), hourly, "three").await;
        assert_eq!(got, Ok(Digest::sha256_of(b"three")));
        assert_eq!(registry.calls(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_asker_asks_the_registry_and_its_answer_serves_the_others() {
        let cache = ResolutionCache::default();
        let registry = Registry::new(Duration::ZERO);
        let hourly = within(60 * MINUTE);
        ask(&cache, &registry, digest_key("v1"), hourly, "one")
            .await
            .unwrap();
        let fresh = ask(&cache, &registry, digest_key("v1"), Freshness::FRESH, "two").await;
        assert_eq!(fresh, Ok(Digest::sha256_of(b"two")));
        let shared = ask(&cache, &registry, digest_key("v1"), hourly, "three").await;
        assert_eq!(shared, fresh);
        assert_eq!((registry.calls(), cache.runs(), cache.shared()), (2, 2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_window_never_shares() {
        let cache = ResolutionCache::disabled();
        let registry = Registry::new(Duration::ZERO);
        for _ in 0..3 {
            ask(
                &cache,
                &registry,
                digest_key("v1"),
                within(60 * MINUTE),
                "one",
            )
            .await
            .unwrap();
        }
        assert_eq!((registry.calls(), cache.runs(), cache.shared()), (3, 3, 0));
        assert!(cache.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_askers_wait_for_the_first_request() {
        let cache = ResolutionCache::default();
        let registry = Registry::new(Duration::from_millis(200));
        let all = futures::future::join_all(
            (0..50).map(|_| ask(&cache, &registry, digest_key("v1"), within(MINUTE), "one")),
        )
        .await;
        assert!(all.iter().all(|d| *d == Ok(Digest::sha256_of(b"one"))));
        assert_eq!((registry.calls(), cache.runs(), cache.shared()), (1, 1, 49));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_never_kept_and_waiters_then_ask_themselves() {
        let cache = ResolutionCache::default();
        let registry = Registry::new(Duration::from_millis(200));
        registry.fail.store(true, Ordering::SeqCst);
        let failed = ask(&cache, &registry, digest_key("v1"), within(MINUTE), "one").await;
        assert_eq!(failed, Err("failure 1".into()));
        let again = ask(&cache, &registry, digest_key("v1"), within(MINUTE), "one").await;
        assert_eq!(again, Err("failure 2".into()));

        // Five at once: the first asks; when it fails, each waiter gets its own error.
        let all = futures::future::join_all(
            (0..5).map(|_| ask(&cache, &registry, digest_key("v1"), within(MINUTE), "one")),
        )
        .await;
        assert!(all.iter().all(Result::is_err), "{all:?}");
        assert_eq!(registry.calls(), 2 + 5);
        assert_eq!(cache.shared(), 0);

        // The registry is back: the next asker gets the answer, and it is shared from then on.
        registry.fail.store(false, Ordering::SeqCst);
        for _ in 0..3 {
            let got = ask(&cache, &registry, digest_key("v1"), within(MINUTE), "one").await;
            assert_eq!(got, Ok(Digest::sha256_of(b"one")));
        }
        assert_eq!((registry.calls(), cache.shared()), (8, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_goes_alone_at_its_deadline_and_an_abandoned_flight_ends() {
        let cache = ResolutionCache::default();
        let slow = Registry::new(Duration::from_secs(3600));
        let quick = Registry::new(Duration::ZERO);
        let key = digest_key("v1");
        let leader = ask(&cache, &slow, key, within(MINUTE), "slow");
        let waiter = async {
            // Starts after the leader, gives up waiting after 5 s.
            tokio::time::sleep(Duration::from_millis(10)).await;
            let deadline = Instant::now() + Duration::from_secs(5);
            cache
                .share(key, within(MINUTE), Some(deadline), || quick.ask("quick"))
                .await
                .map(digest_of)
        };
        let got = tokio::select! {
            _ = leader => panic!("the slow request answered"),
            got = waiter => got,
        };
        assert_eq!(got, Ok(Digest::sha256_of(b"quick")));
        assert_eq!((slow.calls(), quick.calls()), (1, 1));
        // The leader was dropped with the select: its flight is over, and the waiter's answer
        // is shared.
        let shared = ask(&cache, &quick, key, within(MINUTE), "other").await;
        assert_eq!(shared, got);
        assert_eq!(quick.calls(), 1);
        assert!(cache.lock().by_key.get(&key).unwrap().flight.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_entry_is_forgotten_beyond_the_capacity() {
        let cache = ResolutionCache::new(DEFAULT_WINDOW, 2);
        let registry = Registry::new(Duration::ZERO);
        for tag in ["a", "b", "c"] {
            ask(&cache, &registry, digest_key(tag), within(MINUTE), tag)
                .await
                .unwrap();
        }
        assert_eq!(cache.len(), 2);
        ask(&cache, &registry, digest_key("c"), within(MINUTE), "c")
            .await
            .unwrap();
        assert_eq!(registry.calls(), 3);
        ask(&cache, &registry, digest_key("a"), within(MINUTE), "a")
            .await
            .unwrap();
        assert_eq!(registry.calls(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_answers_and_counters() {
        let cache = ResolutionCache::default();
        let clone = cache.clone();
        let registry = Registry::new(Duration::ZERO);
        ask(&cache, &registry, digest_key("v1"), within(MINUTE), "one")
            .await
            .unwrap();
        ask(&clone, &registry, digest_key("v1"), within(MINUTE), "one")
            .await
            .unwrap();
        assert_eq!((registry.calls(), cache.shared(), clone.runs()), (1, 1, 1));
    }
}
