//! One registry conversation per repository and interval, shared by every object of the
//! process: a tag's digest (the manifest `HEAD`) and a repository's tag list (the semver
//! listing) are asked once and the answer is shared for a short while with every object that
//! reaches the same repository the same way (a difference from Flux, which asks per object).
//! A digest's manifest, read before a pull, is shared the same way; addressed by its content,
//! it is shared for as long as it is held.
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
//! The sharing itself is [`super::single_flight`]'s. Only answers are kept, never failures: each object gets its own error and backoff, as
//! without the cache. Objects that ask at the same time wait for the first request instead of
//! repeating it (single flight); when it fails (or the first asker gives up), each waiter asks
//! the registry itself, so an outage costs what it costs without the cache. A waiter never
//! waits past its own deadline. The cache holds at most [`DEFAULT_CAPACITY`] answers; the
//! oldest entry is forgotten first.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

use super::single_flight::{Key, SingleFlight};
use crate::registry::{
    Client, Credential, Digest, Manifest, Platform, Repository, TransportConfig,
};

/// How many answers are kept; the oldest entry is forgotten first.
pub const DEFAULT_CAPACITY: usize = 4096;

/// The default of `--resolution-cache-window`: how long an answer is shared at most.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);

/// An answer of the registry.
#[derive(Clone, Debug)]
enum Answer {
    Digest(Digest),
    Tags(Arc<Vec<String>>),
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
    answers: Arc<SingleFlight<Answer>>,
    manifests: Arc<SingleFlight<Arc<Manifest>>>,
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
            answers: Arc::new(SingleFlight::new(capacity)),
            manifests: Arc::new(SingleFlight::new(capacity)),
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
        self.answers.runs()
    }

    /// Resolutions answered with an answer another object had asked for.
    pub fn shared(&self) -> u64 {
        self.answers.shared()
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
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
            // Keys of the kinds differ; nothing else ever answers a digest question.
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

    /// The image manifest at `digest` for `platform` ([`Client::fetch_manifest_for`]), shared
    /// with the objects on the same repository, credential and transport. Content addressed by
    /// its digest, it never goes stale: it is shared for as long as the cache holds it, except
    /// with an object that asks the registry itself ([`Freshness::FRESH`]).
    ///
    /// # Errors
    /// As [`Client::fetch_manifest_for`]; failures are the asker's own.
    pub async fn fetch_manifest(
        &self,
        connection: (&Client, &Credential, Fingerprint),
        repo: &Repository,
        digest: &Digest,
        platform: &Platform,
        freshness: Freshness,
    ) -> Result<Arc<Manifest>, crate::registry::Error> {
        let (client, credential, fingerprint) = connection;
        let at = format!("{digest} {platform}");
        let key = key(b"manifest", repo, fingerprint, Some(&at));
        let max_age = if freshness.max_age.is_zero() {
            Duration::ZERO
        } else {
            Duration::MAX
        };
        let ask = || async {
            client
                .fetch_manifest_for(repo, digest, credential, platform)
                .await
                .map(Arc::new)
        };
        if self.window.is_zero() {
            return self.manifests.ask_unshared(ask).await;
        }
        let (manifest, _) = self
            .manifests
            .get_or_ask(key, max_age, client.deadline(), ask)
            .await?;
        Ok(manifest)
    }

    /// Manifest fetches that asked the registry, and those answered with another object's.
    pub fn manifests(&self) -> (u64, u64) {
        (self.manifests.runs(), self.manifests.shared())
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
            return self.answers.ask_unshared(ask).await;
        }
        let max_age = freshness.max_age.min(self.window);
        let (answer, _) = self.answers.get_or_ask(key, max_age, deadline, ask).await?;
        Ok(answer)
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
    use super::*;
    use crate::core::single_flight::testing::Backend as Registry;
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

    async fn ask(
        cache: &ResolutionCache,
        registry: &Registry,
        key: Key,
        freshness: Freshness,
        content: &str,
    ) -> Result<Digest, String> {
        cache
            .share(key, freshness, None, || async {
                registry.ask(content).await.map(|c| digest(&c))
            })
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
