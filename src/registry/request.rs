//! One registry request, authorized: the `/v2/` ping (cached per registry, HTTPS then plain HTTP
//! where allowed, both failures reported), sending with retries of retryable statuses within
//! the deadline, a dead endpoint failed at once, and a 401 that a new token or challenge could
//! fix renewed once. `Authorization` is only sent to the registry's own origin.

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::auth::{Challenge, Scheme, parse_challenges, scheme_of};
use super::client::{Client, Ping};
use super::counters::RequestKind;
use super::error::{Error, redact_url};
use super::keychain::Credential;
use super::reference::{Repository, allows_http};
use super::response::{request_error, retry_after, status_error};
use super::retry::{is_retryable_status, with_jitter};
use super::token::{Action, token_key, without_scope};

/// Where a registry request goes.
pub(super) enum Target {
    /// A path (with query) under the registry's base URL.
    Path(String),
    /// A URL given by the registry (a `Link` to the next page).
    Url(Url),
}
/// One registry request before it is authorized and sent ([`Client::request`]).
pub(super) struct Request<'a> {
    kind: RequestKind,
    method: Method,
    repo: &'a Repository,
    cred: &'a Credential,
    target: Target,
    accept: &'a [&'a str],
    action: Action,
    body: Option<&'a dyn Body>,
}

impl<'a> Request<'a> {
    /// A read of `target` in `repo` (token scope `pull`), with no `Accept` and no body.
    pub(super) fn pull(
        kind: RequestKind,
        method: Method,
        repo: &'a Repository,
        cred: &'a Credential,
        target: Target,
    ) -> Request<'a> {
        Request {
            kind,
            method,
            repo,
            cred,
            target,
            accept: &[],
            action: Action::Pull,
            body: None,
        }
    }

    /// A write to `target` in `repo` (token scope `push,pull`), with no `Accept` and no body.
    pub(super) fn push(
        kind: RequestKind,
        method: Method,
        repo: &'a Repository,
        cred: &'a Credential,
        target: Target,
    ) -> Request<'a> {
        Request {
            action: Action::Push,
            ..Request::pull(kind, method, repo, cred, target)
        }
    }

    /// This request asking for the media types `accept`.
    pub(super) fn accept(self, accept: &'a [&'a str]) -> Request<'a> {
        Request { accept, ..self }
    }

    /// This request carrying `body`.
    pub(super) fn body(self, body: &'a dyn Body) -> Request<'a> {
        Request {
            body: Some(body),
            ..self
        }
    }
}

/// A request body that is attached afresh on every attempt (an upload).
pub(super) trait Body: Sync {
    /// `builder` with this body and its headers.
    fn attach(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder;
}

impl Client {
    /// Sends a request built by `build`, retrying retryable statuses (5xx, 429: see
    /// `retry.rs`) within the deadline. A dead endpoint (connection refused, no such host, no
    /// route, connect timeout) fails at once, with no retry and no wait; a connection that broke
    /// after it was established (reset, a pooled connection closed by the server) gets one
    /// immediate retry for `GET` and `HEAD`. Returns the last response whatever its status.
    pub(super) async fn send(
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
                    // What `--debug` of the producer verbs shows; the URL without credentials or
                    // query, never a header.
                    tracing::debug!(%method, url = %redact_url(url), status, "registry request");
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
    pub(super) async fn ping(&self, registry: &str) -> Result<Ping, Error> {
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

    pub(super) async fn ping_with(&self, scheme: &str, registry: &str) -> Result<Ping, Error> {
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

    pub(super) fn forget_ping(&self, registry: &str) {
        if let Ok(mut map) = self.inner.pings.lock() {
            map.remove(registry);
        }
    }

    /// Sends `req` to its repository's registry with auth for its action: pings (cached),
    /// authorizes (cached token for the action's scope), sends with retries (the body, if any,
    /// is attached afresh on each attempt), and on a 401 that a new token or a new challenge
    /// could fix, tries once more. `Authorization` is only sent to the registry's own origin.
    /// Returns the response (any status) and the URL it was sent to.
    pub(super) async fn request(&self, req: Request<'_>) -> Result<(Response, Url), Error> {
        let Request {
            kind,
            method,
            repo,
            cred,
            target,
            accept,
            action,
            body: upload,
        } = req;
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
}

pub(super) fn challenges(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

/// The ping error when both the HTTPS and the plain-HTTP attempt failed: go-containerregistry
/// reports both, joined with `; ` (HTTPS first); the category is the HTTPS attempt's.
pub(super) fn both_failed(https: Error, http: &Error) -> Error {
    let http = http.to_string();
    https.map_message(|m| format!("{m}; {http}"))
}

/// Whether `e` failed before any byte reached the endpoint: connection refused, no such host,
/// no route, a connect timeout. Retrying such a dead endpoint inside a reconcile only delays
/// every other object waiting for a worker; the controller's per-object backoff retries it.
pub(super) fn is_dead_endpoint(e: &reqwest::Error) -> bool {
    e.is_connect()
}
