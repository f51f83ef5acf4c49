//! The distribution-API client and its pool. This file holds what a client is (its transport,
//! caches, counters and deadline); what it does lives beside it, one concern a file:
//!
//! - `request.rs`: one authorized registry request: ping (HTTPS first, then plain HTTP where
//!   go-containerregistry allows it: `insecure`, loopback, RFC 1918, `localhost:*`, `*.local`),
//!   retries of retryable statuses within the deadline (see `retry.rs`), a dead endpoint failed
//!   at once, a broken connection retried once, and a 401 renewed once;
//! - `token.rs`: `Authorization` values and bearer tokens, fetched only from realms that pass
//!   go-containerregistry's checks (see `address.rs`);
//! - `pull.rs`: tag resolution, manifests and blobs, always by digest and verified;
//! - `tags.rs`: tag listings, paginated and bounded;
//! - `response.rs`: statuses and bodies read into errors as go-containerregistry renders them;
//! - `push.rs`: writes (blob uploads, manifest `PUT`s) with a `push,pull` scope.
//!
//! [`ClientPool`] hands out one [`Client`] per distinct transport configuration, so objects that
//! share a registry setup share connections, pings and tokens, and it counts every request by
//! kind ([`RequestCounts`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;

use super::auth::{Scheme, TokenCache};
use super::counters::{Counters, RequestCounts};
use super::error::Error;
use super::retry::RetryPolicy;
use super::transport::{TransportConfig, build_http_client};

/// How long an unused pooled client is kept.
const POOL_IDLE: Duration = Duration::from_secs(3600);

/// The client for registries reached through one transport configuration. Cheap to clone;
/// clones share connections, caches and counters.
#[derive(Clone)]
pub struct Client {
    pub(super) inner: Arc<Inner>,
    pub(super) deadline: Option<tokio::time::Instant>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("insecure", &self.inner.insecure)
            .field("deadline", &self.deadline)
            .finish()
    }
}

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    /// The same transport without automatic redirects: token requests follow them by hand,
    /// checking each target as a realm.
    pub(super) token_http: reqwest::Client,
    pub(super) insecure: bool,
    pub(super) retry: RetryPolicy,
    pub(super) pings: Mutex<HashMap<String, Ping>>,
    pub(super) tokens: Arc<TokenCache>,
    pub(super) counters: Arc<Counters>,
}

/// What the `/v2/` ping of a registry told.
#[derive(Clone, Debug)]
pub(super) struct Ping {
    /// `scheme://registry/`.
    pub(super) base: Url,
    pub(super) scheme: Scheme,
}

impl Client {
    /// A client with its own caches and counters (see [`ClientPool`] to share them).
    ///
    /// # Errors
    ///
    /// [`Error::Tls`] for invalid TLS material (Flux's texts), [`Error::Credentials`] for an
    /// invalid proxy address.
    pub fn new(config: &TransportConfig) -> Result<Client, Error> {
        Client::with_shared(config, Arc::default(), Arc::default())
    }

    pub(super) fn with_shared(
        config: &TransportConfig,
        counters: Arc<Counters>,
        tokens: Arc<TokenCache>,
    ) -> Result<Client, Error> {
        Ok(Client {
            inner: Arc::new(Inner {
                http: build_http_client(config, true)?,
                token_http: build_http_client(config, false)?,
                insecure: config.insecure,
                retry: config.retry.clone(),
                pings: Mutex::new(HashMap::new()),
                tokens,
                counters,
            }),
            deadline: None,
        })
    }

    /// This client bounded by `deadline`: every operation (retries, waits and blob reads
    /// included) fails with [`Error::Network`] once it passes, and no retry wait is started that
    /// would end after it. `None` removes the bound.
    pub fn with_deadline(&self, deadline: Option<std::time::Instant>) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            deadline: deadline.map(tokio::time::Instant::from_std),
        }
    }

    /// The deadline this client is bounded by, if any.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.deadline
    }

    /// The requests sent so far by this client (and the other clients of its pool).
    pub fn request_counts(&self) -> RequestCounts {
        self.inner.counters.snapshot()
    }

    /// Runs `fut` within the deadline.
    pub(super) async fn bounded<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match self.deadline {
            None => fut.await,
            Some(d) => tokio::time::timeout_at(d, fut).await.unwrap_or_else(|_| {
                Err(Error::Network {
                    message: format!("{what}: deadline exceeded"),
                    source: None,
                })
            }),
        }
    }

    /// Sleeps `wait` unless that would pass the deadline; returns whether it slept.
    pub(super) async fn sleep_within_deadline(&self, wait: Duration) -> bool {
        if let Some(d) = self.deadline
            && tokio::time::Instant::now() + wait > d
        {
            return false;
        }
        tokio::time::sleep(wait).await;
        true
    }
}

/// Hands out one [`Client`] per distinct [`TransportConfig`], all sharing the token cache and
/// the request counters. Cheap to clone.
#[derive(Clone, Default)]
pub struct ClientPool {
    inner: Arc<PoolInner>,
}

#[derive(Default)]
struct PoolInner {
    clients: Mutex<HashMap<TransportConfig, (Client, std::time::Instant)>>,
    counters: Arc<Counters>,
    tokens: Arc<TokenCache>,
}

impl std::fmt::Debug for ClientPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.inner.clients.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("ClientPool").field("clients", &n).finish()
    }
}

impl ClientPool {
    /// An empty pool.
    pub fn new() -> ClientPool {
        ClientPool::default()
    }

    /// The client for `config`, built on first use and kept while used (an hour idle at most).
    ///
    /// # Errors
    ///
    /// As [`Client::new`].
    pub fn client(&self, config: &TransportConfig) -> Result<Client, Error> {
        let now = std::time::Instant::now();
        let mut map = self
            .inner
            .clients
            .lock()
            .map_err(|_| Error::protocol("registry client pool is poisoned"))?;
        map.retain(|_, (_, used)| now.duration_since(*used) < POOL_IDLE);
        if let Some((client, used)) = map.get_mut(config) {
            *used = now;
            return Ok(client.clone());
        }
        let client = Client::with_shared(
            config,
            Arc::clone(&self.inner.counters),
            Arc::clone(&self.inner.tokens),
        )?;
        map.insert(config.clone(), (client.clone(), now));
        Ok(client)
    }

    /// The requests sent so far by all clients of this pool.
    pub fn request_counts(&self) -> RequestCounts {
        self.inner.counters.snapshot()
    }
}
