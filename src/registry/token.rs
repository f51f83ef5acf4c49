//! `Authorization` values for a request: none, Basic, or a bearer token from the token cache or
//! fetched from the challenge's realm (OAuth2 refresh-token `POST`, else the Docker token `GET`,
//! its redirects followed by hand and each checked as a realm). A failed token request reports
//! its status and error code only, never the token server's body.

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use url::Url;

use super::address::check_realm;
use super::auth::{Scheme, TokenKey, fingerprint, parse_token_response};
use super::client::Client;
use super::counters::RequestKind;
use super::error::{Error, redact_url};
use super::keychain::Credential;
use super::reference::Repository;
use super::response::{MAX_ERROR_BODY, error_for_status, read_body, retry_after};

const MAX_TOKEN_BODY: usize = 1 << 20;
/// Redirects a token request may follow, each checked as a realm (go-containerregistry's
/// limit).
const MAX_TOKEN_REDIRECTS: usize = 10;

/// What a request does to a repository, which decides the token scope asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    /// Reads: `repository:<name>:pull`.
    Pull,
    /// Writes: `repository:<name>:push,pull`.
    Push,
}

impl Action {
    pub(super) fn scope(self, repo: &Repository) -> String {
        match self {
            Action::Pull => repo.pull_scope(),
            Action::Push => repo.push_scope(),
        }
    }
}

impl Client {
    /// The `Authorization` value for `scheme` (the registry reached at `base`), and whether it
    /// came from the token cache.
    pub(super) async fn authorization(
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
    pub(super) async fn fetch_token(
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
    pub(super) async fn get_token(
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

pub(super) fn token_key(
    scheme: &Scheme,
    repo: &Repository,
    cred: &Credential,
    action: Action,
) -> TokenKey {
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
pub(super) fn without_scope(scheme: Scheme, same: Option<&str>) -> Scheme {
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

pub(super) fn basic_auth(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// `resp` from a token server if its status is a success. Otherwise its error, which never
/// repeats the server's body (a token server may be an internal service a hostile registry
/// named): the status and, when the body carries one, a short error code such as
/// `UNAUTHORIZED`.
pub(super) async fn check_token(
    resp: Response,
    method: &Method,
    url: &Url,
) -> Result<Response, Error> {
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
    Err(error_for_status(status, method, url, detail, retry_after))
}

/// The error code of a token server's error body (`errors[0].code` or OAuth2's `error`), if it
/// is a short identifier; upper-cased.
pub(super) fn token_error_code(body: &[u8]) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_base64_of_user_colon_password() {
        assert_eq!(basic_auth("u", "p"), "Basic dTpw");
    }
}
