//! A small cache of registry credentials keyed by (provider, registry, identity), with fluxcd/pkg
//! `cache/token.go`'s lifetime rule: an entry is reused for 80 % of the token's remaining
//! lifetime, at most one hour, so that a token is never presented close to its expiry.
//!
//! The identity is the controller's own, or a service account (`namespace/name` with the cloud
//! identity its annotations name and the token audiences, as fluxcd/pkg `auth` builds its cache
//! key): one object's service-account credential never serves another service account, and
//! editing an annotation starts a fresh entry.
//!
//! At most [`CAPACITY`] entries: when full, expired entries go first, then the one closest to
//! expiry. Failures are never cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::registry::Credential;

/// Entries kept at most (Flux's `--token-cache-max-size` default).
pub const CAPACITY: usize = 100;
/// The longest an entry is reused (Flux's `--token-cache-max-duration` default and maximum).
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// What a cached credential is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    provider: &'static str,
    registry: String,
    /// Empty for the controller's identity.
    identity: String,
}

impl Key {
    /// The controller's own credential for `registry` at `provider`.
    pub fn controller(provider: &'static str, registry: &str) -> Key {
        Key {
            provider,
            registry: registry.to_string(),
            identity: String::new(),
        }
    }

    /// The credential of the service account `namespace/name` for `registry` at `provider`;
    /// `cloud_identity` is what its annotations name (role ARN, tenant and client ID, GCP
    /// service account and workload identity provider, which also fix the token audience).
    pub fn service_account(
        provider: &'static str,
        registry: &str,
        namespace: &str,
        name: &str,
        cloud_identity: &str,
    ) -> Key {
        Key {
            provider,
            registry: registry.to_string(),
            // Newlines cannot occur in Kubernetes names, so the parts cannot run together.
            identity: format!("serviceaccount\n{namespace}\n{name}\n{cloud_identity}"),
        }
    }
}

/// Cached credentials.
#[derive(Debug)]
pub struct TokenCache {
    entries: Mutex<HashMap<Key, Entry>>,
    capacity: usize,
    max_duration: Duration,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::with_limits(CAPACITY, MAX_DURATION)
    }
}

#[derive(Debug)]
struct Entry {
    credential: Credential,
    valid_until: Instant,
}

impl TokenCache {
    /// An empty cache with Flux's default limits.
    pub fn new() -> TokenCache {
        TokenCache::default()
    }

    /// An empty cache of at most `capacity` entries (0: nothing is cached), each reused for at
    /// most `max_duration` (capped at [`MAX_DURATION`]).
    pub fn with_limits(capacity: usize, max_duration: Duration) -> TokenCache {
        TokenCache {
            entries: Mutex::default(),
            capacity,
            max_duration: max_duration.min(MAX_DURATION),
        }
    }

    /// The controller's credential cached for (`provider`, `registry`), if still valid at
    /// `now`.
    pub fn get(&self, provider: &'static str, registry: &str, now: Instant) -> Option<Credential> {
        self.get_key(&Key::controller(provider, registry), now)
    }

    /// The credential cached under `key`, if still valid at `now`.
    pub fn get_key(&self, key: &Key, now: Instant) -> Option<Credential> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|e| e.valid_until > now)
            .map(|e| e.credential.clone())
    }

    /// Caches the controller's `credential` for (`provider`, `registry`), as [`Self::put_key`].
    pub fn put(
        &self,
        provider: &'static str,
        registry: &str,
        credential: Credential,
        expires_at: SystemTime,
        now: Instant,
        now_wall: SystemTime,
    ) {
        self.put_key(
            Key::controller(provider, registry),
            credential,
            expires_at,
            now,
            now_wall,
        );
    }

    /// Caches `credential` under `key`; it expires at `expires_at`, and `now`/`now_wall` are the
    /// current monotonic and wall-clock times. A token that expires in less than a second is
    /// not cached.
    pub fn put_key(
        &self,
        key: Key,
        credential: Credential,
        expires_at: SystemTime,
        now: Instant,
        now_wall: SystemTime,
    ) {
        let Ok(remaining) = expires_at.duration_since(now_wall) else {
            return;
        };
        let lifetime = (remaining * 8 / 10).min(self.max_duration);
        if lifetime < Duration::from_secs(1) || self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, e| e.valid_until > now);
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.valid_until)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                credential,
                valid_until: now + lifetime,
            },
        );
    }

    /// Number of entries, expired ones included.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(p: &str) -> Credential {
        Credential::Basic {
            username: "u".into(),
            password: p.into(),
        }
    }

    #[test]
    fn reuses_for_eighty_percent_of_the_lifetime_capped_at_an_hour() {
        let cache = TokenCache::new();
        let (now, wall) = (Instant::now(), SystemTime::now());
        // 10 minutes left: reused for 8.
        cache.put(
            "gcp",
            "gcr.io",
            basic("a"),
            wall + Duration::from_secs(600),
            now,
            wall,
        );
        assert_eq!(cache.get("gcp", "gcr.io", now), Some(basic("a")));
        assert_eq!(
            cache.get("gcp", "gcr.io", now + Duration::from_secs(479)),
            Some(basic("a"))
        );
        assert_eq!(
            cache.get("gcp", "gcr.io", now + Duration::from_secs(480)),
            None
        );
        // Other provider or registry: a different entry.
        assert_eq!(cache.get("aws", "gcr.io", now), None);
        assert_eq!(cache.get("gcp", "eu.gcr.io", now), None);

        // 12 hours left (ECR): capped at one hour.
        let ecr = "1.dkr.ecr.eu-west-1.amazonaws.com";
        cache.put(
            "aws",
            ecr,
            basic("b"),
            wall + Duration::from_secs(12 * 3600),
            now,
            wall,
        );
        assert!(
            cache
                .get("aws", ecr, now + Duration::from_secs(3599))
                .is_some()
        );
        assert!(cache.get("aws", ecr, now + MAX_DURATION).is_none());
    }

    #[test]
    fn service_account_credentials_are_kept_apart() {
        let cache = TokenCache::new();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let ecr = "1.dkr.ecr.eu-west-1.amazonaws.com";
        let role = "arn:aws:iam::1:role/a";
        let key =
            |ns: &str, name: &str, role: &str| Key::service_account("aws", ecr, ns, name, role);
        cache.put_key(
            key("team-a", "puller", role),
            basic("a"),
            wall + MAX_DURATION,
            now,
            wall,
        );
        assert_eq!(
            cache.get_key(&key("team-a", "puller", role), now),
            Some(basic("a"))
        );
        // Another namespace, another account, another role, or the controller: no entry.
        assert_eq!(cache.get_key(&key("team-b", "puller", role), now), None);
        assert_eq!(cache.get_key(&key("team-a", "other", role), now), None);
        assert_eq!(
            cache.get_key(&key("team-a", "puller", "arn:aws:iam::1:role/b"), now),
            None
        );
        assert_eq!(cache.get("aws", ecr, now), None);
        // Names cannot run together across the separator.
        assert_ne!(key("a", "bc", role), key("ab", "c", role));
    }

    #[test]
    fn the_flags_limit_the_cache() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let hour = wall + Duration::from_secs(3600);
        let off = TokenCache::with_limits(0, MAX_DURATION);
        off.put("aws", "r", basic("p"), hour, now, wall);
        assert!(off.is_empty(), "size 0 disables the cache");
        let short = TokenCache::with_limits(2, Duration::from_secs(60));
        short.put("aws", "r", basic("p"), hour, now, wall);
        assert!(
            short
                .get("aws", "r", now + Duration::from_secs(59))
                .is_some()
        );
        assert!(
            short
                .get("aws", "r", now + Duration::from_secs(61))
                .is_none()
        );
        let long = TokenCache::with_limits(2, Duration::from_secs(7200));
        long.put(
            "aws",
            "r",
            basic("p"),
            wall + Duration::from_secs(86400),
            now,
            wall,
        );
        assert!(
            long.get("aws", "r", now + Duration::from_secs(3601))
                .is_none(),
            "capped at an hour"
        );
        for registry in ["a", "b", "c"] {
            short.put("aws", registry, basic("p"), hour, now, wall);
        }
        assert_eq!(short.len(), 2, "at most max-size entries");
    }

    #[test]
    fn expired_or_nearly_expired_tokens_are_not_cached() {
        let cache = TokenCache::new();
        let (now, wall) = (Instant::now(), SystemTime::now());
        cache.put(
            "gcp",
            "gcr.io",
            basic("a"),
            wall - Duration::from_secs(1),
            now,
            wall,
        );
        cache.put(
            "gcp",
            "eu.gcr.io",
            basic("a"),
            wall + Duration::from_millis(900),
            now,
            wall,
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn bounded_evicting_expired_then_soonest() {
        let cache = TokenCache::new();
        let (now, wall) = (Instant::now(), SystemTime::now());
        for i in 0..CAPACITY {
            // Entry i lives 10 + i seconds (80 % of 12.5 + 1.25 i).
            let ttl = Duration::from_millis(12_500 + 1_250 * i as u64);
            cache.put(
                "gcp",
                &format!("r{i}.gcr.io"),
                basic("x"),
                wall + ttl,
                now,
                wall,
            );
        }
        assert_eq!(cache.len(), CAPACITY);
        // Later, the first five (valid for 10 to 14 s) have expired: they make room.
        let later = now + Duration::from_millis(14_500);
        cache.put(
            "gcp",
            "new.gcr.io",
            basic("n"),
            wall + MAX_DURATION,
            later,
            wall,
        );
        assert_eq!(cache.len(), CAPACITY - 4);
        assert!(cache.get("gcp", "new.gcr.io", later).is_some());
        // Fill up again; nothing expired: the soonest to expire goes.
        for i in 0..4 {
            cache.put(
                "gcp",
                &format!("more{i}.gcr.io"),
                basic("m"),
                wall + MAX_DURATION,
                later,
                wall,
            );
        }
        assert_eq!(cache.len(), CAPACITY);
        cache.put(
            "gcp",
            "last.gcr.io",
            basic("l"),
            wall + MAX_DURATION,
            later,
            wall,
        );
        assert_eq!(cache.len(), CAPACITY);
        assert!(
            cache.get("gcp", "r5.gcr.io", later).is_none(),
            "soonest evicted"
        );
        assert!(cache.get("gcp", "r6.gcr.io", later).is_some());
        // Replacing an entry in a full cache evicts nothing.
        cache.put(
            "gcp",
            "last.gcr.io",
            basic("l2"),
            wall + MAX_DURATION,
            later,
            wall,
        );
        assert_eq!(cache.len(), CAPACITY);
        assert_eq!(cache.get("gcp", "last.gcr.io", later), Some(basic("l2")));
    }
}
