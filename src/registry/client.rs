//! The distribution-API client: ping, auth, tags, manifests and blobs, with retries.
//!
//! [`Client`] speaks the OCI distribution API over the transport of one [`TransportConfig`]. It
//! pings each registry once (`GET /v2/`, HTTPS first, then plain HTTP where go-containerregistry
//! allows it: `insecure`, loopback, RFC 1918, `localhost:*`, `*.local`) and remembers the scheme
//! and the challenge; it keeps bearer tokens per registry, scope and credential until they
//! expire; it retries retryable statuses (see `retry.rs`) within the caller's deadline, fails at
//! once on a dead endpoint and retries a broken connection once; it fetches tokens only from
//! realms that pass go-containerregistry's checks (see `address.rs`); it bounds tag listings
//! ([`MAX_TAG_LIST_BYTES`], [`MAX_TAGS`], no page twice); and it always pulls manifests and
//! blobs by digest, verifying what it reads. Writes (blob uploads, manifest `PUT`s) are in
//! `push.rs`, on the same request path with a `push,pull` scope.
//!
//! [`ClientPool`] hands out one [`Client`] per distinct transport configuration, so objects that
//! share a registry setup share connections, pings and tokens, and it counts every request by
//! kind ([`RequestCounts`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use url::Url;

use super::address::check_realm;
use super::auth::{
    Scheme, TokenCache, TokenKey, fingerprint, parse_challenges, parse_token_response, scheme_of,
};
use super::blob::Blob;
use super::counters::{Counters, RequestCounts, RequestKind};
use super::error::{Error, redact_url, rustls_cause};
use super::go_text::{dial_error, go_op, go_value};
use super::keychain::Credential;
use super::manifest::{
    Descriptor, Document, MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, Manifest, parse_document,
};
use super::push::Upload;
use super::reference::{Algorithm, Digest, Repository, allows_http};
use super::retry::{RetryPolicy, is_retryable_status, parse_retry_after, with_jitter};
use super::tags::{MAX_TAG_LIST_BYTES, MAX_TAG_PAGES, MAX_TAGS, parse_tag_page, read_tag_page};
use super::transport::{TransportConfig, build_http_client};

/// Flux's page size for tag listings.
pub const DEFAULT_PAGE_SIZE: usize = 1000;
const MAX_ERROR_BODY: usize = 64 << 10;
const MAX_TOKEN_BODY: usize = 1 << 20;
/// Redirects a token request may follow, each checked as a realm (go-containerregistry's
/// limit).
const MAX_TOKEN_REDIRECTS: usize = 10;
/// How long an unused pooled client is kept.
const POOL_IDLE: Duration = Duration::from_secs(3600);

/// The client for registries reached through one transport configuration. Cheap to clone;
/// clones share connections, caches and counters.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    deadline: Option<tokio::time::Instant>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("insecure", &self.inner.insecure)
            .field("deadline", &self.deadline)
            .finish()
    }
}

struct Inner {
    http: reqwest::Client,
    /// The same transport without automatic redirects: token requests follow them by hand,
    /// checking each target as a realm.
    token_http: reqwest::Client,
    insecure: bool,
    retry: RetryPolicy,
    pings: Mutex<HashMap<String, Ping>>,
    tokens: Arc<TokenCache>,
    counters: Arc<Counters>,
}

/// What a request does to a repository, which decides the token scope asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    /// Reads: `repository:<name>:pull`.
    Pull,
    /// Writes: `repository:<name>:push,pull`.
    Push,
}

impl Action {
    fn scope(self, repo: &Repository) -> String {
        match self {
            Action::Pull => repo.pull_scope(),
            Action::Push => repo.push_scope(),
        }
    }
}

/// What the `/v2/` ping of a registry told.
#[derive(Clone, Debug)]
struct Ping {
    /// `scheme://registry/`.
    base: Url,
    scheme: Scheme,
}

/// Where a registry request goes.
pub(super) enum Target {
    /// A path (with query) under the registry's base URL.
    Path(String),
    /// A URL given by the registry (a `Link` to the next page).
    Url(Url),
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

    fn with_shared(
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

    /// The requests sent so far by this client (and the other clients of its pool).
    pub fn request_counts(&self) -> RequestCounts {
        self.inner.counters.snapshot()
    }

    /// All tags of `repo`, following `Link` pagination with Flux's page size (1000).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown repository, [`Error::Unauthorized`], and the
    /// transport categories.
    pub async fn list_tags(
        &self,
        repo: &Repository,
        cred: &Credential,
    ) -> Result<Vec<String>, Error> {
        self.list_tags_paged(repo, cred, DEFAULT_PAGE_SIZE).await
    }

    /// All tags of `repo`, asking for `page_size` tags per page (`n=`).
    ///
    /// # Errors
    ///
    /// As [`Client::list_tags`]; [`Error::Protocol`] when a `Link` leaves the registry or a page
    /// is malformed.
    pub async fn list_tags_paged(
        &self,
        repo: &Repository,
        cred: &Credential,
        page_size: usize,
    ) -> Result<Vec<String>, Error> {
        let what = format!("list tags of {repo}");
        self.bounded(&what, async {
            let mut target = Target::Path(format!(
                "/v2/{}/tags/list?n={}",
                repo.repository(),
                page_size.max(1)
            ));
            let mut tags = Vec::new();
            let mut budget = MAX_TAG_LIST_BYTES;
            let mut seen = std::collections::HashSet::new();
            for _ in 0..MAX_TAG_PAGES {
                let (resp, url) = self
                    .registry_request(
                        RequestKind::Tags,
                        Method::GET,
                        repo,
                        cred,
                        target,
                        &["application/json"],
                    )
                    .await?;
                seen.insert(url.to_string());
                let resp = check(resp, &Method::GET, &url).await?;
                let next = next_link(resp.headers());
                let body = read_tag_page(resp, &mut budget, &url).await?;
                parse_tag_page(&body, &mut tags).map_err(|e| {
                    let why = if tags.len() >= MAX_TAGS {
                        format!("more than {MAX_TAGS} tags (the limit of one listing)")
                    } else if e.is_data() {
                        // serde's type errors quote the offending value: keep it out.
                        "invalid tag list".to_string()
                    } else {
                        format!("invalid tag list: {e}")
                    };
                    Error::protocol(format!("GET {}: {why}", redact_url(&url)))
                })?;
                drop(body);
                let Some(next) = next else {
                    return Ok(tags);
                };
                let next = url.join(&next).map_err(|_| {
                    Error::protocol(format!("GET {}: invalid Link header", redact_url(&url)))
                })?;
                if next.origin() != url.origin() {
                    return Err(Error::protocol(format!(
                        "GET {}: tag list pagination leaves the registry",
                        redact_url(&url)
                    )));
                }
                if next == url {
                    return Ok(tags);
                }
                if seen.contains(next.as_str()) {
                    return Err(Error::protocol(format!(
                        "GET {}: tag list pagination loops back to a page already read",
                        redact_url(&url)
                    )));
                }
                target = Target::Url(next);
            }
            Err(Error::protocol(format!(
                "{what}: more than {MAX_TAG_PAGES} pages (the limit of one listing)"
            )))
        })
        .await
    }

    /// The digest `tag` points to: `HEAD` with the full `Accept` list and
    /// `Docker-Content-Digest`, or, when the `HEAD` fails or lacks the header, a `GET` and the
    /// SHA-256 of the body (as go-containerregistry and Flux do).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] for an invalid tag, [`Error::NotFound`] (`MANIFEST_UNKNOWN`),
    /// [`Error::Unauthorized`] (`UNAUTHORIZED`), and the transport categories.
    pub async fn resolve_digest(
        &self,
        repo: &Repository,
        tag: &str,
        cred: &Credential,
    ) -> Result<Digest, Error> {
        check_tag(tag)?;
        let what = format!("resolve {repo}:{tag}");
        self.bounded(&what, async {
            let path = format!("/v2/{}/manifests/{tag}", repo.repository());
            let head = self
                .registry_request(
                    RequestKind::ManifestHead,
                    Method::HEAD,
                    repo,
                    cred,
                    Target::Path(path),
                    MANIFEST_ACCEPT,
                )
                .await;
            match head {
                Ok((resp, _)) if resp.status().is_success() => {
                    if let Some(d) = resp
                        .headers()
                        .get("docker-content-digest")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<Digest>().ok())
                    {
                        return Ok(d);
                    }
                }
                // The GET would meet the same broken connection or TLS setup.
                Err(e @ (Error::Network { .. } | Error::Tls { .. })) => return Err(e),
                _ => {}
            }
            let (body, _) = self.get_manifest(repo, tag, cred).await?;
            Ok(Digest::sha256_of(&body))
        })
        .await
    }

    /// The image manifest at `digest`, verified against it. An OCI index or Docker manifest
    /// list resolves to its `linux/amd64` child (also verified); [`Manifest::digest`] stays
    /// `digest`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Unauthorized`], [`Error::DigestMismatch`] when the content
    /// does not hash to its digest, [`Error::Protocol`] for schema 1, malformed manifests or an
    /// index without `linux/amd64`, and the transport categories.
    pub async fn fetch_manifest(
        &self,
        repo: &Repository,
        digest: &Digest,
        cred: &Credential,
    ) -> Result<Manifest, Error> {
        let what = format!("fetch manifest {repo}@{digest}");
        self.bounded(&what, async {
            let (body, content_type) = self.manifest_by_digest(repo, digest, cred).await?;
            let (manifest_digest, document) = match parse_document(&body, content_type.as_deref())?
            {
                Document::Index {
                    linux_amd64: Some(child),
                } => {
                    let (body, content_type) = self.manifest_by_digest(repo, &child, cred).await?;
                    (child, parse_document(&body, content_type.as_deref())?)
                }
                Document::Index { linux_amd64: None } => {
                    return Err(Error::protocol(format!(
                        "no child with platform linux/amd64 in index {repo}@{digest}"
                    )));
                }
                image => (digest.clone(), image),
            };
            match document {
                Document::Image {
                    media_type,
                    config,
                    layers,
                    annotations,
                } => Ok(Manifest {
                    digest: digest.clone(),
                    manifest_digest,
                    media_type,
                    config,
                    layers,
                    annotations,
                }),
                Document::Index { .. } => Err(Error::protocol(format!(
                    "index {repo}@{digest} points to another index"
                ))),
            }
        })
        .await
    }

    /// A stream of the blob `desc` points to, verified against its digest and size at the end
    /// (see [`Blob`]). Redirects are followed.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (`BLOB_UNKNOWN`), [`Error::Unauthorized`], [`Error::DigestMismatch`]
    /// when the announced length differs from the size, and the transport categories. Errors
    /// while reading come from the stream.
    pub async fn blob_stream(
        &self,
        repo: &Repository,
        desc: &Descriptor,
        cred: &Credential,
    ) -> Result<Blob, Error> {
        let what = format!("blob {repo}@{}", desc.digest);
        let resp = self
            .bounded(&what, async {
                let path = format!("/v2/{}/blobs/{}", repo.repository(), desc.digest);
                let (resp, url) = self
                    .registry_request(
                        RequestKind::Blob,
                        Method::GET,
                        repo,
                        cred,
                        Target::Path(path),
                        &[],
                    )
                    .await?;
                check(resp, &Method::GET, &url).await
            })
            .await?;
        if let Some(len) = resp.content_length()
            && len != desc.size
        {
            return Err(Error::DigestMismatch {
                message: format!(
                    "{what}: size mismatch: expected {} bytes, the registry announced {len}",
                    desc.size
                ),
            });
        }
        Ok(Blob::new(
            resp,
            desc.digest.clone(),
            desc.size,
            self.deadline,
            what,
            Arc::clone(&self.inner.counters),
        ))
    }

    /// `GET /v2/<name>/manifests/<reference>`: the body (bounded) and its content type.
    async fn get_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        cred: &Credential,
    ) -> Result<(Vec<u8>, Option<String>), Error> {
        let path = format!("/v2/{}/manifests/{reference}", repo.repository());
        let (resp, url) = self
            .registry_request(
                RequestKind::ManifestGet,
                Method::GET,
                repo,
                cred,
                Target::Path(path),
                MANIFEST_ACCEPT,
            )
            .await?;
        let resp = check(resp, &Method::GET, &url).await?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_body(resp, MAX_MANIFEST_SIZE, &Method::GET, &url).await?;
        Ok((body, content_type))
    }

    async fn manifest_by_digest(
        &self,
        repo: &Repository,
        digest: &Digest,
        cred: &Credential,
    ) -> Result<(Vec<u8>, Option<String>), Error> {
        let (body, content_type) = self.get_manifest(repo, &digest.to_string(), cred).await?;
        let actual = digest_of(digest.algorithm(), &body);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                message: format!("manifest {repo}@{digest}: digest mismatch: got {actual}"),
            });
        }
        Ok((body, content_type))
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
    async fn sleep_within_deadline(&self, wait: Duration) -> bool {
        if let Some(d) = self.deadline
            && tokio::time::Instant::now() + wait > d
        {
            return false;
        }
        tokio::time::sleep(wait).await;
        true
    }

    /// Sends a request built by `build`, retrying retryable statuses (5xx, 429: see
    /// `retry.rs`) within the deadline. A dead endpoint (connection refused, no such host, no
    /// route, connect timeout) fails at once, with no retry and no wait; a connection that broke
    /// after it was established (reset, a pooled connection closed by the server) gets one
    /// immediate retry for `GET` and `HEAD`. Returns the last response whatever its status.
    async fn send(
        &self,
        kind: RequestKind,
        method: &Method,
        url: &Url,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, Error> {
        let policy = &self.inner.retry;
        let attempts = policy.attempts.max(1);
        let idempotent = *method == Method::GET || *method == Method::HEAD;
        let mut attempt = 0;
        let mut retried_broken = false;
        loop {
            if attempt > 0 || retried_broken {
                self.inner.counters.count_retry();
            }
            self.inner.counters.count(kind);
            let result = build().send().await;
            match result {
                Ok(resp) => {
                    attempt += 1;
                    let status = resp.status().as_u16();
                    if attempt >= attempts || !is_retryable_status(status) {
                        return Ok(resp);
                    }
                    let wait = match retry_after(resp.headers()) {
                        Some(ra) if ra > policy.max_retry_after => return Ok(resp),
                        Some(ra) => with_jitter(ra),
                        None => policy.backoff(attempt - 1),
                    };
                    tracing::debug!(status, ?wait, url = %redact_url(url), "registry asked to retry");
                    if !self.sleep_within_deadline(wait).await {
                        return Ok(resp);
                    }
                    drop(resp);
                }
                Err(e) => {
                    let dead = is_dead_endpoint(&e);
                    let timeout = e.is_timeout();
                    let err = request_error(e, method, url);
                    if dead
                        || timeout
                        || retried_broken
                        || !idempotent
                        || !matches!(err, Error::Network { .. })
                    {
                        return Err(err);
                    }
                    tracing::debug!(error = %err, "retrying once after a broken connection");
                    retried_broken = true;
                }
            }
        }
    }

    /// The ping result for `registry`, cached.
    async fn ping(&self, registry: &str) -> Result<Ping, Error> {
        if let Some(p) = self
            .inner
            .pings
            .lock()
            .ok()
            .and_then(|m| m.get(registry).cloned())
        {
            return Ok(p);
        }
        let result = match self.ping_with("https", registry).await {
            Ok(p) => Ok(p),
            Err(e) if allows_http(registry, self.inner.insecure) => {
                match self.ping_with("http", registry).await {
                    Ok(p) => Ok(p),
                    Err(http) => Err(both_failed(e, &http)),
                }
            }
            Err(e) => Err(e),
        };
        if let (Ok(p), Ok(mut map)) = (&result, self.inner.pings.lock()) {
            map.insert(registry.to_string(), p.clone());
        }
        result
    }

    async fn ping_with(&self, scheme: &str, registry: &str) -> Result<Ping, Error> {
        let base = Url::parse(&format!("{scheme}://{registry}/"))
            .map_err(|_| Error::invalid_reference(format!("invalid registry: {registry}")))?;
        let url = base
            .join("v2/")
            .map_err(|_| Error::invalid_reference(format!("invalid registry: {registry}")))?;
        let resp = self
            .send(RequestKind::Ping, &Method::GET, &url, || {
                self.inner.http.get(url.clone())
            })
            .await?;
        match resp.status() {
            StatusCode::OK => Ok(Ping {
                base,
                scheme: Scheme::None,
            }),
            StatusCode::UNAUTHORIZED => {
                let scheme = scheme_of(&challenges(resp.headers()))
                    .map_err(|e| Error::protocol(format!("GET {}: {e}", redact_url(&url))))?;
                Ok(Ping { base, scheme })
            }
            _ => Err(status_error(resp, &Method::GET, &url).await),
        }
    }

    fn forget_ping(&self, registry: &str) {
        if let Ok(mut map) = self.inner.pings.lock() {
            map.remove(registry);
        }
    }

    /// A pull request to `repo`'s registry with auth: see [`Client::request_with`].
    async fn registry_request(
        &self,
        kind: RequestKind,
        method: Method,
        repo: &Repository,
        cred: &Credential,
        target: Target,
        accept: &[&str],
    ) -> Result<(Response, Url), Error> {
        self.request_with(kind, method, repo, cred, target, accept, Action::Pull, None)
            .await
    }

    /// A request to `repo`'s registry with auth for `action`: pings (cached), authorizes
    /// (cached token for the action's scope), sends with retries (`upload`, if any, is sent
    /// afresh on each attempt), and on a 401 that a new token or a new challenge could fix,
    /// tries once more. `Authorization` is only sent to the registry's own origin. Returns the
    /// response (any status) and the URL it was sent to.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn request_with(
        &self,
        kind: RequestKind,
        method: Method,
        repo: &Repository,
        cred: &Credential,
        target: Target,
        accept: &[&str],
        action: Action,
        upload: Option<&Upload>,
    ) -> Result<(Response, Url), Error> {
        let ping = self.ping(repo.registry()).await?;
        let url = match target {
            Target::Path(p) => ping.base.join(&p).map_err(|_| {
                Error::invalid_reference(format!("invalid request path for {repo}"))
            })?,
            Target::Url(u) => u,
        };
        let same_origin = url.origin() == ping.base.origin();
        let accept = accept.join(", ");
        let mut scheme = ping.scheme.clone();
        let (mut auth, mut cached) = self
            .authorization(&scheme, &ping.base, repo, cred, action, false)
            .await?;
        let mut retried = false;
        loop {
            let result = self
                .send(kind, &method, &url, || {
                    let mut b = self.inner.http.request(method.clone(), url.clone());
                    if !accept.is_empty() {
                        b = b.header(ACCEPT, accept.as_str());
                    }
                    if let Some(a) = &auth
                        && same_origin
                    {
                        b = b.header(AUTHORIZATION, a.as_str());
                    }
                    if let Some(up) = upload {
                        b = up.attach(b);
                    }
                    b
                })
                .await;
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    if matches!(e, Error::Network { .. } | Error::Tls { .. }) {
                        self.forget_ping(repo.registry());
                    }
                    return Err(e);
                }
            };
            if resp.status() != StatusCode::UNAUTHORIZED || retried {
                return Ok((resp, url));
            }
            let new_scheme = scheme_of(&challenges(resp.headers()))
                .map(|s| without_scope(s, Some(&action.scope(repo))))
                .unwrap_or_else(|_| scheme.clone());
            let token_might_help = matches!(scheme, Scheme::Bearer { .. }) && cached;
            if new_scheme == scheme && !token_might_help {
                return Ok((resp, url));
            }
            tracing::debug!(url = %redact_url(&url), ?scheme, ?new_scheme, "401 from the registry: renewing authorization");
            if let Scheme::Bearer { .. } = &scheme {
                self.inner
                    .tokens
                    .remove(&token_key(&scheme, repo, cred, action));
            }
            // The registry-wide memory keeps the new challenge without its repository scope.
            if new_scheme != scheme
                && let Ok(mut map) = self.inner.pings.lock()
            {
                map.insert(
                    repo.registry().to_string(),
                    Ping {
                        base: ping.base.clone(),
                        scheme: without_scope(new_scheme.clone(), None),
                    },
                );
            }
            scheme = new_scheme;
            (auth, cached) = self
                .authorization(&scheme, &ping.base, repo, cred, action, true)
                .await?;
            retried = true;
        }
    }

    /// The `Authorization` value for `scheme` (the registry reached at `base`), and whether it
    /// came from the token cache.
    async fn authorization(
        &self,
        scheme: &Scheme,
        base: &Url,
        repo: &Repository,
        cred: &Credential,
        action: Action,
        force: bool,
    ) -> Result<(Option<String>, bool), Error> {
        match (scheme, cred) {
            (Scheme::None, _) => Ok((None, false)),
            (_, Credential::RegistryToken(t)) => Ok((Some(format!("Bearer {t}")), false)),
            (Scheme::Basic, Credential::Basic { username, password }) => {
                Ok((Some(basic_auth(username, password)), false))
            }
            (Scheme::Basic, _) => Ok((None, false)),
            (Scheme::Bearer { .. }, _) => {
                let key = token_key(scheme, repo, cred, action);
                let now = std::time::Instant::now();
                if !force && let Some(t) = self.inner.tokens.get(&key, now) {
                    return Ok((Some(format!("Bearer {t}")), true));
                }
                let (token, lifetime) = self.fetch_token(scheme, base, repo, cred, action).await?;
                self.inner
                    .tokens
                    .insert(key, token.clone(), lifetime, std::time::Instant::now());
                Ok((Some(format!("Bearer {token}")), false))
            }
        }
    }

    /// Trades `cred` for a token for `action` at the challenge's realm, once the realm passed
    /// go-containerregistry's checks against the registry at `base` (see `address.rs`): no
    /// request at all goes to a refused realm.
    async fn fetch_token(
        &self,
        scheme: &Scheme,
        base: &Url,
        repo: &Repository,
        cred: &Credential,
        action: Action,
    ) -> Result<(String, Duration), Error> {
        let Scheme::Bearer {
            realm,
            service,
            scope,
        } = scheme
        else {
            return Err(Error::protocol(
                "token requested without a bearer challenge",
            ));
        };
        let realm = Url::parse(realm)
            .map_err(|_| Error::protocol("bearer challenge has an invalid realm"))?;
        check_realm(&realm, base)
            .map_err(|why| Error::protocol(format!("invalid realm in www-authenticate: {why}")))?;
        let mut scopes = vec![action.scope(repo)];
        if let Some(s) = scope
            && !scopes.contains(s)
        {
            scopes.push(s.clone());
        }
        let service = service.clone().unwrap_or_default();

        if let Credential::IdentityToken { username, token } = cred {
            let form = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", token)
                .append_pair("service", &service)
                .append_pair("client_id", "ocisource")
                .append_pair("scope", &scopes.join(" "))
                .finish();
            let resp = self
                .send(RequestKind::Token, &Method::POST, &realm, || {
                    self.inner
                        .token_http
                        .post(realm.clone())
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(form.clone())
                })
                .await?;
            // Token servers without OAuth2 support answer 404: fall back to the GET flow.
            if resp.status() != StatusCode::NOT_FOUND {
                let resp = check_token(resp, &Method::POST, &realm).await?;
                let body = read_body(resp, MAX_TOKEN_BODY, &Method::POST, &realm).await?;
                return parse_token_response(&body);
            }
            let basic = (!username.is_empty()).then(|| basic_auth(username, token));
            return self.get_token(&realm, base, &service, &scopes, basic).await;
        }
        let basic = match cred {
            Credential::Basic { username, password } => Some(basic_auth(username, password)),
            _ => None,
        };
        self.get_token(&realm, base, &service, &scopes, basic).await
    }

    /// `GET realm?service=..&scope=..`, following up to [`MAX_TOKEN_REDIRECTS`] redirects that
    /// pass the realm checks; `basic` goes only to the realm's own origin.
    async fn get_token(
        &self,
        realm: &Url,
        base: &Url,
        service: &str,
        scopes: &[String],
        basic: Option<String>,
    ) -> Result<(String, Duration), Error> {
        let mut url = realm.clone();
        {
            let mut q = url.query_pairs_mut();
            if !service.is_empty() {
                q.append_pair("service", service);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let mut hops = 0;
        loop {
            let send_basic = url.origin() == realm.origin();
            let resp = self
                .send(RequestKind::Token, &Method::GET, &url, || {
                    let b = self.inner.token_http.get(url.clone());
                    match &basic {
                        Some(v) if send_basic => b.header(AUTHORIZATION, v.as_str()),
                        _ => b,
                    }
                })
                .await?;
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l.trim()).ok());
            if let (true, Some(next)) = (resp.status().is_redirection(), location) {
                hops += 1;
                if hops > MAX_TOKEN_REDIRECTS {
                    return Err(Error::protocol(format!(
                        "GET {}: stopped after {MAX_TOKEN_REDIRECTS} redirects",
                        redact_url(realm)
                    )));
                }
                check_realm(&next, base).map_err(|why| {
                    Error::protocol(format!(
                        "refusing token-server redirect to {:?}: {why}",
                        redact_url(&next)
                    ))
                })?;
                url = next;
                continue;
            }
            let resp = check_token(resp, &Method::GET, &url).await?;
            let body = read_body(resp, MAX_TOKEN_BODY, &Method::GET, &url).await?;
            return parse_token_response(&body);
        }
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

fn token_key(scheme: &Scheme, repo: &Repository, cred: &Credential, action: Action) -> TokenKey {
    let (realm, service, scope) = match scheme {
        Scheme::Bearer {
            realm,
            service,
            scope,
        } => (
            realm.clone(),
            service.clone().unwrap_or_default(),
            scope.clone().unwrap_or_default(),
        ),
        _ => Default::default(),
    };
    TokenKey {
        registry: repo.registry().to_string(),
        realm,
        service,
        scope: format!("{} {scope}", action.scope(repo)),
        credential: fingerprint(cred),
    }
}

/// `scheme` without its challenge scope when that is `same` (the scope we ask for anyway), or
/// always when `same` is `None`.
fn without_scope(scheme: Scheme, same: Option<&str>) -> Scheme {
    match scheme {
        Scheme::Bearer {
            realm,
            service,
            scope,
        } => {
            let scope = match (scope, same) {
                (Some(s), Some(same)) if s != same => Some(s),
                _ => None,
            };
            Scheme::Bearer {
                realm,
                service,
                scope,
            }
        }
        other => other,
    }
}

fn basic_auth(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn challenges(headers: &HeaderMap) -> Vec<super::auth::Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
}

/// The `rel="next"` target of a `Link` header.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for link in value.split(',') {
            let Some((target, params)) = link.trim().split_once('>') else {
                continue;
            };
            let Some(target) = target.trim().strip_prefix('<') else {
                continue;
            };
            let is_next = params.split(';').any(|p| {
                let p = p.trim();
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            if is_next {
                return Some(target.to_string());
            }
        }
    }
    None
}

/// Tags as go-containerregistry accepts them: 1 to 128 of `[A-Za-z0-9_.-]`.
pub(crate) fn check_tag(tag: &str) -> Result<(), Error> {
    if tag.is_empty() || tag.len() > 128 {
        return Err(Error::invalid_reference(format!(
            "tag must be between 1 and 128 characters in length: {tag}"
        )));
    }
    if !tag
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(Error::invalid_reference(format!(
            "tag can only contain the characters \
             `abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.`: {tag}"
        )));
    }
    Ok(())
}

fn digest_of(algorithm: Algorithm, data: &[u8]) -> Digest {
    use sha2::Digest as _;
    let hex = match algorithm {
        Algorithm::Sha256 => super::reference::to_hex(&sha2::Sha256::digest(data)),
        Algorithm::Sha512 => super::reference::to_hex(&sha2::Sha512::digest(data)),
    };
    // The hex is well-formed by construction; fall back to SHA-256 to stay panic-free.
    Digest::new(algorithm, &hex).unwrap_or_else(|_| Digest::sha256_of(data))
}

/// A reqwest failure as a category: TLS when rustls is among the causes, network otherwise,
/// worded as Go's HTTP client words it (`Get "https://host/v2/": dial tcp host:443: connect:
/// connection refused`), so that texts users grep for in Flux's messages match. A failure to
/// reach the endpoint at all (see [`is_dead_endpoint`]) is rendered completely and keeps no
/// source; other failures keep the transport error (its URL removed) as their source.
pub(super) fn request_error(e: reqwest::Error, method: &Method, url: &Url) -> Error {
    let e = e.without_url();
    let at = format!("{} {:?}", go_op(method), redact_url(url));
    if let Some(tls) = rustls_cause(&e) {
        return Error::Tls {
            message: format!("{at}: {tls}"),
            source: None,
        };
    }
    if e.is_connect() {
        return Error::Network {
            message: format!("{at}: {}", dial_error(&e, url)),
            source: None,
        };
    }
    let what = if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    Error::Network {
        message: format!("{at}: {what}"),
        source: Some(Box::new(e)),
    }
}

/// The ping error when both the HTTPS and the plain-HTTP attempt failed: go-containerregistry
/// reports both, joined with `; ` (HTTPS first); the category is the HTTPS attempt's.
fn both_failed(https: Error, http: &Error) -> Error {
    let http = http.to_string();
    https.map_message(|m| format!("{m}; {http}"))
}

/// Whether `e` failed before any byte reached the endpoint: connection refused, no such host,
/// no route, a connect timeout. Retrying such a dead endpoint inside a reconcile only delays
/// every other object waiting for a worker; the controller's per-object backoff retries it.
fn is_dead_endpoint(e: &reqwest::Error) -> bool {
    e.is_connect()
}

/// `resp` if its status is a success, its error otherwise.
pub(super) async fn check(resp: Response, method: &Method, url: &Url) -> Result<Response, Error> {
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(status_error(resp, method, url).await)
    }
}

/// `resp` from a token server if its status is a success. Otherwise its error, which never
/// repeats the server's body (a token server may be an internal service a hostile registry
/// named): the status and, when the body carries one, a short error code such as
/// `UNAUTHORIZED`.
async fn check_token(resp: Response, method: &Method, url: &Url) -> Result<Response, Error> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let body = read_body(resp, MAX_ERROR_BODY, method, url)
        .await
        .unwrap_or_default();
    let mut detail = format!(
        "unexpected status code {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_string();
    let code = token_error_code(&body).or(match status.as_u16() {
        401 => Some("UNAUTHORIZED".to_string()),
        403 => Some("DENIED".to_string()),
        _ => None,
    });
    if let Some(code) = code {
        detail = format!("{code}: {detail}");
    }
    let message = format!("{method} {}: {detail}", redact_url(url));
    Err(match status.as_u16() {
        401 | 403 => Error::Unauthorized { message },
        404 => Error::NotFound { message },
        429 => Error::TooManyRequests {
            message,
            retry_after,
        },
        s => Error::Server { status: s, message },
    })
}

/// The error code of a token server's error body (`errors[0].code` or OAuth2's `error`), if it
/// is a short identifier; upper-cased.
fn token_error_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let code = v
        .get("errors")
        .and_then(|e| e.get(0))
        .and_then(|e| e.get("code"))
        .or_else(|| v.get("error"))
        .and_then(Value::as_str)?;
    let valid = (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    valid.then(|| code.to_ascii_uppercase())
}

/// The error for an unsuccessful response, with the registry's error codes in the message.
pub(super) async fn status_error(resp: Response, method: &Method, url: &Url) -> Error {
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let body = read_body(resp, MAX_ERROR_BODY, method, url)
        .await
        .unwrap_or_default();
    let detail = describe_error(status, &body, *method == Method::HEAD);
    let message = format!("{method} {}: {detail}", redact_url(url));
    match status.as_u16() {
        401 | 403 => Error::Unauthorized { message },
        404 => Error::NotFound { message },
        429 => Error::TooManyRequests {
            message,
            retry_after,
        },
        s => Error::Server { status: s, message },
    }
}

/// go-containerregistry's rendering of an error response: `CODE: message[; detail]` for
/// registry errors, `CODE: description` for OAuth2 errors, else the status (and body).
fn describe_error(status: StatusCode, body: &[u8], head: bool) -> String {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(errors) = v
            .get("errors")
            .and_then(Value::as_array)
            .filter(|e| !e.is_empty())
        {
            let rendered: Vec<String> = errors
                .iter()
                .map(|e| {
                    let mut s = format!("{}: {}", text(e.get("code")), text(e.get("message")));
                    // go-containerregistry prints the detail with `%v` whenever it is set.
                    if let Some(d) = e.get("detail").filter(|d| !d.is_null()) {
                        s.push_str("; ");
                        s.push_str(&truncate(&go_value(d), 256));
                    }
                    s
                })
                .collect();
            return if rendered.len() == 1 {
                rendered.concat()
            } else {
                format!("multiple errors returned: {}", rendered.join("; "))
            };
        }
        if let Some(code) = v.get("error").and_then(Value::as_str) {
            let mut s = code.to_ascii_uppercase();
            let desc = text(v.get("error_description"));
            if !desc.is_empty() {
                s.push_str(": ");
                s.push_str(&truncate(&desc, 256));
            }
            return s;
        }
    }
    let mut s = format!(
        "unexpected status code {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_string();
    if body.is_empty() {
        if head {
            s.push_str(" (HEAD responses have no body, use GET for details)");
        }
    } else {
        s.push_str(": ");
        s.push_str(&truncate(&String::from_utf8_lossy(body), 256));
    }
    match status.as_u16() {
        401 => format!("UNAUTHORIZED: {s}"),
        403 => format!("DENIED: {s}"),
        _ => s,
    }
}

fn truncate(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line = one_line.trim();
    if one_line.len() <= max {
        return one_line.to_string();
    }
    let mut end = max;
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &one_line[..end])
}

/// Reads the body up to `limit` bytes; more is a protocol error.
pub(super) async fn read_body(
    mut resp: Response,
    limit: usize,
    method: &Method,
    url: &Url,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if out.len() + chunk.len() > limit {
                    return Err(Error::protocol(format!(
                        "{method} {}: response larger than {limit} bytes",
                        redact_url(url)
                    )));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(request_error(e, method, url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_render_like_go_containerregistry() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"6.1.5"}}]}"#;
        assert_eq!(
            describe_error(StatusCode::NOT_FOUND, body, false),
            "MANIFEST_UNKNOWN: manifest unknown; map[Tag:6.1.5]"
        );
        let body = br#"{"errors":[{"code":"A","message":"a"},{"code":"B","message":"b"}]}"#;
        assert_eq!(
            describe_error(StatusCode::BAD_REQUEST, body, false),
            "multiple errors returned: A: a; B: b"
        );
        let body =
            br#"{"error":"unauthorized","error_description":"invalid username or password"}"#;
        assert_eq!(
            describe_error(StatusCode::UNAUTHORIZED, body, false),
            "UNAUTHORIZED: invalid username or password"
        );
        assert_eq!(
            describe_error(StatusCode::NOT_FOUND, b"", true),
            "unexpected status code 404 Not Found (HEAD responses have no body, use GET for details)"
        );
        assert_eq!(
            describe_error(StatusCode::UNAUTHORIZED, b"", false),
            "UNAUTHORIZED: unexpected status code 401 Unauthorized"
        );
        assert_eq!(
            describe_error(StatusCode::BAD_GATEWAY, b"<html>\nbad\n</html>", false),
            "unexpected status code 502 Bad Gateway: <html> bad </html>"
        );
    }

    #[test]
    fn error_details_print_as_gos_percent_v() {
        let detail = |d: &str| {
            let body = format!(r#"{{"errors":[{{"code":"C","message":"m","detail":{d}}}]}}"#);
            describe_error(StatusCode::NOT_FOUND, body.as_bytes(), false)
        };
        assert_eq!(detail(r#"{"Tag":"9.9.9"}"#), "C: m; map[Tag:9.9.9]");
        assert_eq!(
            detail(r#"{"b":[1,"x",null],"a":{"n":1000000,"f":1.5,"t":true}}"#),
            "C: m; map[a:map[f:1.5 n:1e+06 t:true] b:[1 x <nil>]]"
        );
        assert_eq!(detail(r#""plain text""#), "C: m; plain text");
        assert_eq!(detail(r#""""#), "C: m; ");
        assert_eq!(detail("{}"), "C: m; map[]");
        assert_eq!(detail("[]"), "C: m; []");
        assert_eq!(detail("null"), "C: m");
    }

    #[test]
    fn link_headers_yield_the_next_page() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            reqwest::header::HeaderValue::from_static(
                r#"</v2/a/tags/list?last=b&n=2>; rel="next""#,
            ),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/v2/a/tags/list?last=b&n=2"));
        h.insert(
            reqwest::header::LINK,
            reqwest::header::HeaderValue::from_static(r#"</x>; rel="prev", </y>; rel=next"#),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/y"));
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn tags_are_validated_before_any_request() {
        for ok in ["latest", "v1.2.3", "6.2.1_ref.1234567", "A-b_c.d"] {
            assert!(check_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "../x", "a?b", "a:b", &"x".repeat(129)] {
            assert!(
                matches!(check_tag(bad), Err(Error::InvalidReference { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn basic_auth_is_base64_of_user_colon_password() {
        assert_eq!(basic_auth("u", "p"), "Basic dTpw");
    }
}
