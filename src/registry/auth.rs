//! Registry authentication: `WWW-Authenticate` challenges, the token cache and token responses.
//!
//! The registry's `/v2/` ping answers 200 (no auth), or 401 with a `Basic` or `Bearer`
//! challenge. For `Bearer`, a token for `repository:<name>:pull` (`:push,pull` for the writes of
//! `push.rs`) is fetched from the challenge's `realm` (see `client.rs`) and kept in a token
//! cache keyed by registry, realm, service, scope and a SHA-256 fingerprint of the credential,
//! until shortly before its `expires_in` (60 s when absent, as the Docker token spec says). So
//! an unchanged reconcile costs one manifest `HEAD` and no token request while the token lives.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::error::Error;
use super::keychain::Credential;

/// One challenge of a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The auth scheme, lower-cased (`basic`, `bearer`).
    pub scheme: String,
    /// The auth parameters, names lower-cased (`realm`, `service`, `scope`, `error`).
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` value (RFC 9110 §11.6.1): one or more comma-separated
/// challenges, each a scheme followed by `name=value` parameters (tokens or quoted strings) or a
/// token68. Unparsable trailing text is ignored.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip(|c| c == b' ' || c == b'\t' || c == b',');
        let scheme = p.token();
        if scheme.is_empty() {
            break;
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            p.skip(|c| c == b' ' || c == b'\t');
            let start = p.i;
            let name = p.token();
            p.skip(|c| c == b' ' || c == b'\t');
            if name.is_empty() || !p.eat(b'=') {
                // Not a parameter: a token68 (skip it) or the next challenge.
                p.i = start;
                if !name.is_empty() && p.peek_after_token68_is_end_or_comma() {
                    p.token68();
                }
                break;
            }
            if p.peek() == Some(b'=') {
                // `token68` ending in `=`s, e.g. `Negotiate abc==`.
                p.i = start;
                p.token68();
                break;
            }
            p.skip(|c| c == b' ' || c == b'\t');
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token()
            };
            challenge.params.insert(name.to_ascii_lowercase(), value);
            p.skip(|c| c == b' ' || c == b'\t');
            if !p.eat(b',') {
                break;
            }
            // After a comma: another parameter (`name=`) or the next challenge (`Scheme ...`).
            let save = p.i;
            p.skip(|c| c == b' ' || c == b'\t' || c == b',');
            let next = p.token();
            p.skip(|c| c == b' ' || c == b'\t');
            let is_param = !next.is_empty() && p.peek() == Some(b'=');
            p.i = save;
            if !is_param {
                break;
            }
        }
        out.push(challenge);
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> String {
        let start = self.i;
        self.skip(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn token68(&mut self) {
        self.skip(|c| c.is_ascii_alphanumeric() || b"-._~+/".contains(&c));
        self.skip(|c| c == b'=');
    }

    fn peek_after_token68_is_end_or_comma(&self) -> bool {
        let mut j = self.i;
        while self
            .s
            .get(j)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"-._~+/=".contains(c))
        {
            j += 1;
        }
        while self.s.get(j).is_some_and(|&c| c == b' ' || c == b'\t') {
            j += 1;
        }
        matches!(self.s.get(j), None | Some(b','))
    }

    fn quoted(&mut self) -> String {
        let mut out = Vec::new();
        self.i += 1; // opening quote
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// How a registry wants to be authenticated, from its ping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `/v2/` answered 200.
    None,
    /// `Basic`: credentials on every request.
    Basic,
    /// `Bearer`: tokens from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        /// A scope named by the challenge, requested in addition to the pull scope.
        scope: Option<String>,
    },
}

/// The scheme of the preferred challenge (`Bearer` over `Basic`).
///
/// # Errors
///
/// [`Error::Protocol`] when there is no usable challenge.
pub(crate) fn scheme_of(challenges: &[Challenge]) -> Result<Scheme, Error> {
    if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
        let realm = c
            .params
            .get("realm")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::protocol("bearer challenge without a realm"))?;
        return Ok(Scheme::Bearer {
            realm: realm.clone(),
            service: c.params.get("service").cloned(),
            scope: c.params.get("scope").cloned().filter(|s| !s.is_empty()),
        });
    }
    if challenges.iter().any(|c| c.scheme == "basic") {
        return Ok(Scheme::Basic);
    }
    match challenges.first() {
        Some(c) => Err(Error::protocol(format!(
            "unrecognized challenge: {}",
            c.scheme
        ))),
        None => Err(Error::protocol(
            "registry answered 401 without a WWW-Authenticate challenge",
        )),
    }
}

/// What a token is cached under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    pub registry: String,
    pub realm: String,
    pub service: String,
    pub scope: String,
    /// SHA-256 over the credential's kind and fields: the cache holds no plain secrets as keys.
    pub credential: [u8; 32],
}

/// A SHA-256 fingerprint of `cred`.
pub(crate) fn fingerprint(cred: &Credential) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    match cred {
        Credential::Anonymous => field("anonymous"),
        Credential::Basic { username, password } => {
            field("basic");
            field(username);
            field(password);
        }
        Credential::IdentityToken { username, token } => {
            field("identity");
            field(username);
            field(token);
        }
        Credential::RegistryToken(t) => {
            field("registry");
            field(t);
        }
    }
    h.finalize().into()
}

struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Bearer tokens by [`TokenKey`], each until shortly before it expires.
#[derive(Default)]
pub(crate) struct TokenCache {
    map: Mutex<HashMap<TokenKey, Cached>>,
}

impl TokenCache {
    /// A live token for `key`.
    pub fn get(&self, key: &TokenKey, now: Instant) -> Option<String> {
        let map = self.map.lock().ok()?;
        map.get(key)
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// Keeps `token`, valid for `lifetime` from `now`, and forgets expired tokens.
    pub fn insert(&self, key: TokenKey, token: String, lifetime: Duration, now: Instant) {
        // Refresh a little early: a tenth of the lifetime, between 5 and 30 seconds.
        let margin = (lifetime / 10).clamp(Duration::from_secs(5), Duration::from_secs(30));
        let refresh_at = now + lifetime.saturating_sub(margin);
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, c| now < c.refresh_at);
            map.insert(key, Cached { token, refresh_at });
        }
    }

    /// Forgets the token for `key` (the registry refused it).
    pub fn remove(&self, key: &TokenKey) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(key);
        }
    }
}

/// A token server's answer: the token and its lifetime.
pub(crate) fn parse_token_response(body: &[u8]) -> Result<(String, Duration), Error> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::protocol(format!("invalid token response: {e}")))?;
    let token = ["token", "access_token"]
        .iter()
        .find_map(|k| v.get(k).and_then(Value::as_str).filter(|t| !t.is_empty()))
        .ok_or_else(|| Error::protocol("token response has no token"))?;
    let expires_in = v
        .get("expires_in")
        .and_then(Value::as_u64)
        .filter(|&s| s > 0)
        .unwrap_or(60);
    Ok((token.to_string(), Duration::from_secs(expires_in)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn bearer_challenges_parse_with_quoted_values() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push",error="insufficient_scope""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(
            params(&c[0]),
            vec![
                ("error", "insufficient_scope"),
                ("realm", "https://auth.docker.io/token"),
                ("scope", "repository:library/nginx:pull,push"),
                ("service", "registry.docker.io"),
            ]
        );
    }

    #[test]
    fn challenges_tolerate_spaces_case_tokens_and_escapes() {
        let c = parse_challenges(r#"BASIC  Realm = "a \"quoted\" realm" , charset=UTF-8"#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(
            params(&c[0]),
            vec![("charset", "UTF-8"), ("realm", "a \"quoted\" realm")]
        );
    }

    #[test]
    fn several_challenges_in_one_header_are_split() {
        let c = parse_challenges(
            r#"Negotiate abc==, Basic realm="r", Bearer realm="https://t/token",service=s"#,
        );
        let schemes: Vec<&str> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, vec!["negotiate", "basic", "bearer"]);
        assert_eq!(
            params(&c[2]),
            vec![("realm", "https://t/token"), ("service", "s")]
        );
        assert_eq!(
            scheme_of(&c).unwrap_or_else(|e| panic!("{e}")),
            Scheme::Bearer {
                realm: "https://t/token".into(),
                service: Some("s".into()),
                scope: None
            }
        );
    }

    #[test]
    fn unusable_challenges_are_protocol_errors() {
        assert!(parse_challenges("").is_empty());
        assert!(matches!(scheme_of(&[]), Err(Error::Protocol { .. })));
        assert!(matches!(
            scheme_of(&parse_challenges("Bearer service=x")),
            Err(Error::Protocol { .. })
        ));
        assert!(matches!(
            scheme_of(&parse_challenges("Digest realm=x")),
            Err(Error::Protocol { .. })
        ));
        assert_eq!(
            scheme_of(&parse_challenges("Basic realm=x")).unwrap_or_else(|e| panic!("{e}")),
            Scheme::Basic
        );
        // Garbage never panics.
        for s in [
            "\"",
            "=",
            "Bearer realm=\"unterminated",
            ",,,",
            "Bearer ==,=",
            "é",
        ] {
            let _ = parse_challenges(s);
        }
    }

    #[test]
    fn token_responses_default_to_sixty_seconds() {
        let (t, d) = parse_token_response(br#"{"token":"abc"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.as_str(), d), ("abc", Duration::from_secs(60)));
        let (t, d) = parse_token_response(br#"{"access_token":"x","expires_in":300}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.as_str(), d), ("x", Duration::from_secs(300)));
        assert!(parse_token_response(br#"{"token":""}"#).is_err());
        assert!(parse_token_response(b"<html>").is_err());
    }

    #[test]
    fn cached_tokens_expire_early_and_are_keyed_by_credential() {
        let cache = TokenCache::default();
        let key = |cred: &Credential| TokenKey {
            registry: "r".into(),
            realm: "https://t".into(),
            service: "s".into(),
            scope: "repository:a:pull".into(),
            credential: fingerprint(cred),
        };
        let alice = Credential::Basic {
            username: "alice".into(),
            password: "1".into(),
        };
        let now = Instant::now();
        cache.insert(key(&alice), "tok".into(), Duration::from_secs(300), now);
        assert_eq!(cache.get(&key(&alice), now).as_deref(), Some("tok"));
        assert_eq!(cache.get(&key(&Credential::Anonymous), now), None);
        assert_eq!(
            cache
                .get(&key(&alice), now + Duration::from_secs(269))
                .as_deref(),
            Some("tok")
        );
        assert_eq!(
            cache.get(&key(&alice), now + Duration::from_secs(270)),
            None
        );
        cache.remove(&key(&alice));
        assert_eq!(cache.get(&key(&alice), now), None);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::mutation::{config, mutated, mutated_text};

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn mutated_challenges_never_panic(header in mutated_text(&[
            r#"Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a/b:pull""#,
            r#"Basic realm="registry", Bearer realm="x",error="invalid_token""#,
        ])) {
            let _ = parse_challenges(&header);
        }

        #[test]
        fn mutated_token_responses_never_panic(body in mutated(&[
            r#"{"token":"abc","expires_in":300,"issued_at":"2026-01-01T00:00:00Z"}"#,
            r#"{"access_token":"abc"}"#,
        ])) {
            let _ = parse_token_response(&body);
        }
    }
}
