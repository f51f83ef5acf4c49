//! One verification per (repository, digest, verification material), shared by every object
//! of the process: N objects that follow the same signed artifact with the same keys or trust
//! policy verify it once per revision (a difference from Flux, which verifies per object).
//!
//! The material is what decides the outcome: `spec.verify` itself (provider, identities) and
//! the data of the Secrets it names. A changed Secret hashes differently, so an edit never
//! reuses an outcome reached with the old material. Only successful verifications are kept (a
//! verified digest stays verified while the cache holds it): a failure is retried by the next
//! reconcile, as without the cache. Objects that ask for the same verification at the same time
//! wait for the first one instead of repeating it; when it fails, each verifies itself
//! ([`super::single_flight`]).

use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::ports::{SecretSource, Verification, Verifier, VerifyRequest};
use super::single_flight::{Key, SingleFlight, Source};
use crate::api::v1::VerificationProvider;
use crate::verify::tuf::SigstoreRoot;

/// How many outcomes are kept; the oldest is forgotten first.
pub const DEFAULT_CAPACITY: usize = 4096;

/// The process's shared verification outcomes, bounded.
#[derive(Debug)]
pub struct VerificationCache {
    verified: SingleFlight<()>,
}

impl Default for VerificationCache {
    fn default() -> Self {
        VerificationCache::new(DEFAULT_CAPACITY)
    }
}

impl VerificationCache {
    /// A cache keeping at most `capacity` outcomes (at least one).
    pub fn new(capacity: usize) -> VerificationCache {
        VerificationCache {
            verified: SingleFlight::new(capacity),
        }
    }

    /// Verifications answered from the cache.
    pub fn hits(&self) -> u64 {
        self.verified.shared()
    }

    /// Verifications that ran (no outcome was shared).
    pub fn misses(&self) -> u64 {
        self.verified.runs()
    }

    /// How many outcomes are held.
    pub fn len(&self) -> usize {
        self.verified.len()
    }

    /// Whether no outcome is held.
    pub fn is_empty(&self) -> bool {
        self.verified.is_empty()
    }
}

/// A [`Verifier`] that shares the outcomes of `inner` through a [`VerificationCache`].
#[derive(Debug)]
pub struct SharedVerifier<'a, V, S> {
    inner: V,
    secrets: &'a S,
    cache: &'a VerificationCache,
    public_root: Option<&'a SigstoreRoot>,
}

impl<'a, V, S> SharedVerifier<'a, V, S> {
    /// Shares `inner`'s outcomes in `cache`; `secrets` is read for the verification material.
    pub fn new(inner: V, secrets: &'a S, cache: &'a VerificationCache) -> SharedVerifier<'a, V, S> {
        SharedVerifier {
            inner,
            secrets,
            cache,
            public_root: None,
        }
    }

    /// Keyless verifications without a `trustedRootSecretRef` are shared too, keyed by the
    /// mirror and the digest of the trusted root `public_root` loaded (without it they are
    /// never shared).
    pub fn with_public_root(mut self, public_root: &'a SigstoreRoot) -> SharedVerifier<'a, V, S> {
        self.public_root = Some(public_root);
        self
    }
}

impl<V: Verifier, S: SecretSource> Verifier for SharedVerifier<'_, V, S> {
    async fn verify(&self, request: VerifyRequest<'_>) -> Verification {
        // Material that cannot be read is the inner verifier's to report, in its own words.
        let Some(key) = self.key(&request).await else {
            return self.inner.verify(request).await;
        };
        let (namespace, repository, digest) =
            (request.namespace, request.repository, request.digest);
        // A verification never expires (Duration::MAX): a digest's signatures stay valid.
        let shared = self
            .cache
            .verified
            .get_or_ask(key, Duration::MAX, None, || async {
                match self.inner.verify(request).await {
                    Verification::Verified => Ok(()),
                    failed => Err(failed),
                }
            })
            .await;
        match shared {
            Ok(((), Source::Shared)) => {
                tracing::debug!(
                    namespace,
                    repository = %repository,
                    digest = %digest,
                    "signature verification shared with an earlier one"
                );
                Verification::Verified
            }
            Ok(((), Source::Asked)) => Verification::Verified,
            Err(failed) => failed,
        }
    }
}

impl<V, S: SecretSource> SharedVerifier<'_, V, S> {
    async fn key(&self, request: &VerifyRequest<'_>) -> Option<Key> {
        let spec = request.spec;
        let mut hash = Sha256::new();
        let mut part = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(bytes);
        };
        part(request.repository.to_string().as_bytes());
        part(request.digest.to_string().as_bytes());
        // The Secrets count by their data, not their names, so that objects in different
        // namespaces with the same keys share.
        let mut material = spec.clone();
        material.secret_ref = None;
        material.trusted_root_secret_ref = None;
        part(&serde_json::to_vec(&material).ok()?);
        // Keyless without a Secret's root: the TUF root it will be verified with (loaded now,
        // once for the process). A root that fails to load is the inner verifier's to report.
        if spec.provider == VerificationProvider::Cosign
            && spec.secret_ref.is_none()
            && spec.trusted_root_secret_ref.is_none()
        {
            let public_root = self.public_root?;
            let loaded = public_root.get().await.ok()?;
            part(b"tuf");
            part(public_root.mirror().as_bytes());
            part(&loaded.digest);
        }
        for (role, secret_ref) in [
            ("secretRef", &spec.secret_ref),
            ("trustedRootSecretRef", &spec.trusted_root_secret_ref),
        ] {
            part(role.as_bytes());
            let Some(secret_ref) = secret_ref else {
                continue;
            };
            let secret = self
                .secrets
                .secret(request.namespace, &secret_ref.name)
                .await
                .ok()??;
            let data = secret.data.unwrap_or_default();
            part(&(data.len() as u64).to_be_bytes());
            for (name, value) in &data {
                part(name.as_bytes());
                part(&value.0);
            }
        }
        Some(hash.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::api::v1::OciRepositoryVerification;
    use crate::core::ports::testing::MapSecrets;
    use crate::registry::{Client, Credential, Digest, Repository, TransportConfig};

    /// Counts its calls; verifies while `ok` says so, after a short pause so that concurrent
    /// callers overlap.
    #[derive(Default)]
    struct Counting {
        calls: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    impl Verifier for &Counting {
        async fn verify(&self, _: VerifyRequest<'_>) -> Verification {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if self.fail.load(Ordering::SeqCst) {
                Verification::Failed("no matching signatures".into())
            } else {
                Verification::Verified
            }
        }
    }

    struct Target {
        client: Client,
        repository: Repository,
        digest: Digest,
    }

    fn target(repository: &str, content: &[u8]) -> Target {
        Target {
            client: Client::new(&TransportConfig::default()).unwrap(),
            repository: Repository::parse(repository).unwrap(),
            digest: Digest::sha256_of(content),
        }
    }

    fn spec(value: serde_json::Value) -> OciRepositoryVerification {
        serde_json::from_value(value).unwrap()
    }

    fn keys_spec(secret: &str) -> OciRepositoryVerification {
        spec(serde_json::json!({"provider": "cosign", "secretRef": {"name": secret}}))
    }

    /// Secrets holding `a/keys`, a cache of `capacity` and a counting inner verifier.
    fn with_keys(capacity: usize) -> (MapSecrets, VerificationCache, Counting) {
        let secrets = MapSecrets::default();
        secrets.put("a", "keys", &[("cosign.pub", b"key one")]);
        (
            secrets,
            VerificationCache::new(capacity),
            Counting::default(),
        )
    }

    async fn verify(
        verifier: &SharedVerifier<'_, &Counting, MapSecrets>,
        namespace: &str,
        spec: &OciRepositoryVerification,
        target: &Target,
    ) -> bool {
        let request = VerifyRequest {
            namespace,
            spec,
            repository: &target.repository,
            digest: &target.digest,
            client: &target.client,
            credential: &Credential::Anonymous,
        };
        matches!(verifier.verify(request).await, Verification::Verified)
    }

    #[tokio::test]
    async fn same_digest_and_material_verify_once_across_namespaces() {
        let (secrets, cache, inner) = with_keys(DEFAULT_CAPACITY);
        secrets.put("b", "other-name", &[("cosign.pub", b"key one")]);
        let verifier = SharedVerifier::new(&inner, &secrets, &cache);
        let app = target("registry.example/app", b"v1");
        let keys_a = keys_spec("keys");
        let keys_b = keys_spec("other-name");

        assert!(verify(&verifier, "a", &keys_a, &app).await);
        assert!(verify(&verifier, "a", &keys_a, &app).await);
        assert!(verify(&verifier, "b", &keys_b, &app).await);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
        assert_eq!((cache.hits(), cache.misses()), (2, 1));

        // Another digest, another repository or another spec is another verification.
        assert!(
            verify(
                &verifier,
                "a",
                &keys_a,
                &target("registry.example/app", b"v2")
            )
            .await
        );
        assert!(
            verify(
                &verifier,
                "a",
                &keys_a,
                &target("registry.example/other", b"v1")
            )
            .await
        );
        let keyless = spec(serde_json::json!({"provider": "cosign"}));
        assert!(verify(&verifier, "a", &keyless, &app).await);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_changed_secret_verifies_again_and_failures_are_not_kept() {
        let (secrets, cache, inner) = with_keys(DEFAULT_CAPACITY);
        let verifier = SharedVerifier::new(&inner, &secrets, &cache);
        let (app, keys) = (target("registry.example/app", b"v1"), keys_spec("keys"));

        assert!(verify(&verifier, "a", &keys, &app).await);
        secrets.put("a", "keys", &[("cosign.pub", b"key two")]);
        inner.fail.store(true, Ordering::SeqCst);
        assert!(!verify(&verifier, "a", &keys, &app).await);
        assert!(!verify(&verifier, "a", &keys, &app).await);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);

        // A missing Secret is left to the inner verifier, every time.
        let missing = keys_spec("gone");
        assert!(!verify(&verifier, "a", &missing, &app).await);
        assert!(!verify(&verifier, "a", &missing, &app).await);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn concurrent_objects_wait_for_the_first_verification() {
        let (secrets, cache, inner) = with_keys(DEFAULT_CAPACITY);
        let verifier = SharedVerifier::new(&inner, &secrets, &cache);
        let (app, keys) = (target("registry.example/app", b"v1"), keys_spec("keys"));

        let all =
            futures::future::join_all((0..20).map(|_| verify(&verifier, "a", &keys, &app))).await;
        assert!(all.into_iter().all(|v| v));
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn keyless_on_the_tuf_root_is_shared_by_mirror_and_root_and_never_without_one() {
        let (secrets, cache, inner) = with_keys(DEFAULT_CAPACITY);
        let keyless = spec(serde_json::json!({"provider": "cosign"}));
        let app = target("registry.example/app", b"v1");
        let json = include_bytes!("../verify/keyless/testdata/trusted_root.json");
        let mut other_json = json.to_vec();
        other_json.push(b'\n');
        let root = SigstoreRoot::preloaded("https://tuf.example", json);
        let same_bytes_other_mirror = SigstoreRoot::preloaded("https://mirror.example", json);
        let other_root = SigstoreRoot::preloaded("https://tuf.example", &other_json);

        // Without the process's root no key can name it: never shared.
        let verifier = SharedVerifier::new(&inner, &secrets, &cache);
        assert!(verify(&verifier, "a", &keyless, &app).await);
        assert!(verify(&verifier, "a", &keyless, &app).await);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);

        for (public_root, calls) in [
            (&root, 3),
            (&root, 3),
            (&same_bytes_other_mirror, 4),
            (&other_root, 5),
            (&other_root, 5),
        ] {
            let verifier =
                SharedVerifier::new(&inner, &secrets, &cache).with_public_root(public_root);
            assert!(verify(&verifier, "a", &keyless, &app).await);
            assert_eq!(inner.calls.load(Ordering::SeqCst), calls);
        }
    }

    #[tokio::test]
    async fn the_oldest_outcome_is_forgotten_beyond_the_capacity() {
        let (secrets, cache, inner) = with_keys(2);
        let verifier = SharedVerifier::new(&inner, &secrets, &cache);
        let keyless = keys_spec("keys");
        let (one, two, three) = (
            target("r.example/app", b"1"),
            target("r.example/app", b"2"),
            target("r.example/app", b"3"),
        );
        for t in [&one, &two, &three] {
            assert!(verify(&verifier, "a", &keyless, t).await);
        }
        assert_eq!(cache.len(), 2);
        assert!(verify(&verifier, "a", &keyless, &three).await);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
        assert!(verify(&verifier, "a", &keyless, &one).await);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 4);
    }
}
