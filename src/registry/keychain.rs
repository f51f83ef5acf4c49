//! Registry credentials from docker-config pull secrets, matched the way kubelet does.
//!
//! A [`Keychain`] is fed the data of the object's secrets in order (`spec.secretRef` first, then
//! the service account's `imagePullSecrets`): only `kubernetes.io/dockerconfigjson` secrets
//! (key `.dockerconfigjson`, `{"auths": {...}}`) and `kubernetes.io/dockercfg` secrets (key
//! `.dockercfg`, the bare map) count; other types are ignored. Each entry's key is normalised to
//! `host[/path]` (a leading `http(s)://` and `/v1/`, `/v2/` dropped). [`Keychain::resolve`]
//! tries the keys longest-first (reverse lexical order, as go-containerregistry's k8schain does)
//! and takes the first that matches the target `registry/repository`: same port, same number of
//! host labels, each label glob-matching (`*.example.com`), and the key's path a prefix of the
//! target's. For equal keys the secret added first wins.
//!
//! No Kubernetes types appear here: the caller passes the secret type and its data.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde_json::Value;

use super::error::Error;
use super::reference::{Repository, split_host_port};

/// The Secret type of a `.dockerconfigjson` pull secret.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// The data key of a `.dockerconfigjson` pull secret.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// The Secret type of a legacy `.dockercfg` pull secret.
pub const DOCKER_CFG_TYPE: &str = "kubernetes.io/dockercfg";
/// The data key of a legacy `.dockercfg` pull secret.
pub const DOCKER_CFG_KEY: &str = ".dockercfg";

/// What to present to a registry. `Debug` never shows secrets.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub enum Credential {
    /// No credentials (anonymous token requests, no `Authorization`).
    #[default]
    Anonymous,
    /// A user name and password (sent as basic auth, or traded for a bearer token).
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), traded for an access token with a POST.
    IdentityToken {
        /// The user name from the same entry, if any (used only when the token server does
        /// not speak OAuth2).
        username: String,
        /// The refresh token.
        token: String,
    },
    /// A bearer token sent to the registry as is (`registrytoken`).
    RegistryToken(String),
}

impl Credential {
    /// Whether this is [`Credential::Anonymous`].
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credential::Anonymous)
    }

    /// The credential from a docker-config entry's fields, in go-containerregistry's order of
    /// precedence: `registrytoken`, `identitytoken`, then `username`/`password`.
    fn from_entry(entry: &AuthEntry) -> Credential {
        if !entry.registry_token.is_empty() {
            Credential::RegistryToken(entry.registry_token.clone())
        } else if !entry.identity_token.is_empty() {
            Credential::IdentityToken {
                username: entry.username.clone(),
                token: entry.identity_token.clone(),
            }
        } else if !entry.username.is_empty() || !entry.password.is_empty() {
            Credential::Basic {
                username: entry.username.clone(),
                password: entry.password.clone(),
            }
        } else {
            Credential::Anonymous
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credential::IdentityToken { username, .. } => f
                .debug_struct("IdentityToken")
                .field("username", username)
                .field("token", &"<redacted>")
                .finish(),
            Credential::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

#[derive(Clone, Default, PartialEq, Eq)]
struct AuthEntry {
    username: String,
    password: String,
    identity_token: String,
    registry_token: String,
}

/// Credentials indexed by normalised docker-config keys.
#[derive(Clone, Default)]
pub struct Keychain {
    /// `(key, entries in the order added)`, kept sorted by key, descending.
    index: Vec<(String, Vec<AuthEntry>)>,
}

impl fmt::Debug for Keychain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keychain")
            .field(
                "keys",
                &self.index.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keychain {
    /// An empty keychain (resolves everything to [`Credential::Anonymous`]).
    pub fn new() -> Keychain {
        Keychain::default()
    }

    /// Whether no entry was added.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Adds the entries of one Secret, given its `type` and `data`. Secrets of other types, or
    /// without their key, or with an empty value, add nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Credentials`] when the docker config is not valid JSON of the expected shape or
    /// an `auth` field is not `base64(user:password)`.
    pub fn add_secret(
        &mut self,
        secret_type: &str,
        data: &BTreeMap<String, Vec<u8>>,
    ) -> Result<(), Error> {
        match secret_type {
            DOCKER_CONFIG_JSON_TYPE => match data.get(DOCKER_CONFIG_JSON_KEY) {
                Some(b) if !b.is_empty() => self.add_docker_config_json(b),
                _ => Ok(()),
            },
            DOCKER_CFG_TYPE => match data.get(DOCKER_CFG_KEY) {
                Some(b) if !b.is_empty() => self.add_docker_cfg(b),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Adds the entries of a `.dockerconfigjson` document (`{"auths": {...}}`).
    ///
    /// # Errors
    ///
    /// [`Error::Credentials`] as [`Keychain::add_secret`].
    pub fn add_docker_config_json(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let doc = parse_json(bytes)?;
        let Value::Object(map) = doc else {
            return Err(Error::credentials(
                "invalid docker config: expected a JSON object",
            ));
        };
        // encoding/json matches field names case-insensitively.
        match map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("auths"))
            .map(|(_, v)| v)
        {
            None | Some(Value::Null) => Ok(()),
            Some(auths) => self.add_auths(auths),
        }
    }

    /// Adds the entries of a legacy `.dockercfg` document (the bare `auths` map).
    ///
    /// # Errors
    ///
    /// [`Error::Credentials`] as [`Keychain::add_secret`].
    pub fn add_docker_cfg(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let doc = parse_json(bytes)?;
        self.add_auths(&doc)
    }

    fn add_auths(&mut self, auths: &Value) -> Result<(), Error> {
        let map = match auths {
            Value::Object(map) => map,
            Value::Null => return Ok(()),
            _ => {
                return Err(Error::credentials(
                    "invalid docker config: 'auths' must be a JSON object",
                ));
            }
        };
        let mut parsed = Vec::with_capacity(map.len());
        for (registry, entry) in map {
            let key = normalise_key(registry).ok_or_else(|| {
                Error::credentials(format!("entry {registry:?} in dockercfg invalid"))
            })?;
            parsed.push((key, parse_entry(registry, entry)?));
        }
        for (key, entry) in parsed {
            match self.index.iter_mut().find(|(k, _)| *k == key) {
                Some((_, entries)) => entries.push(entry),
                None => self.index.push((key, vec![entry])),
            }
        }
        // Longer (more specific) keys first, as kubelet's keyring.
        self.index.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(())
    }

    /// The credential for `repo`: the first entry of the first matching key, or
    /// [`Credential::Anonymous`].
    pub fn resolve(&self, repo: &Repository) -> Credential {
        let target = Target::parse(&repo.to_string());
        for (key, entries) in &self.index {
            if urls_match(&Target::parse(key), &target)
                && let Some(first) = entries.first()
            {
                return Credential::from_entry(first);
            }
        }
        Credential::Anonymous
    }
}

fn parse_json(bytes: &[u8]) -> Result<Value, Error> {
    // serde_json's messages name a position, never the content.
    serde_json::from_slice(bytes)
        .map_err(|e| Error::credentials(format!("invalid docker config: {e}")))
}

fn field(
    entry: &serde_json::Map<String, Value>,
    registry: &str,
    name: &str,
) -> Result<String, Error> {
    match entry.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        None | Some((_, Value::Null)) => Ok(String::new()),
        Some((_, Value::String(s))) => Ok(s.clone()),
        Some(_) => Err(Error::credentials(format!(
            "invalid docker config: field {name:?} of entry {registry:?} must be a string"
        ))),
    }
}

fn parse_entry(registry: &str, entry: &Value) -> Result<AuthEntry, Error> {
    let map = match entry {
        Value::Object(map) => map,
        Value::Null => return Ok(AuthEntry::default()),
        _ => {
            return Err(Error::credentials(format!(
                "invalid docker config: entry {registry:?} must be a JSON object"
            )));
        }
    };
    let mut out = AuthEntry {
        username: field(map, registry, "username")?,
        password: field(map, registry, "password")?,
        identity_token: field(map, registry, "identitytoken")?,
        registry_token: field(map, registry, "registrytoken")?,
    };
    let auth = field(map, registry, "auth")?;
    if !auth.is_empty() {
        let (user, pass) = decode_auth(&auth).ok_or_else(|| {
            Error::credentials(format!(
                "unable to decode auth field of entry {registry:?}: must be formatted as \
                 base64(username:password)"
            ))
        })?;
        out.username = user;
        out.password = pass;
    }
    Ok(out)
}

/// Decodes `base64(user:password)`, padded or not, as go-containerregistry does.
fn decode_auth(field: &str) -> Option<(String, String)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let decoded = if field.trim().ends_with('=') {
        STANDARD.decode(field).ok()?
    } else {
        STANDARD_NO_PAD.decode(field).ok()?
    };
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// `host[/path]` from a docker-config key: scheme dropped, `/v1/` and `/v2/` dropped.
fn normalise_key(registry: &str) -> Option<String> {
    let rest = registry
        .strip_prefix("https://")
        .or_else(|| registry.strip_prefix("http://"))
        .unwrap_or(registry);
    // A URL's authority ends at the first `/`, `?` or `#`.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    let mut path = &rest[end..];
    if let Some(i) = path.find(['?', '#']) {
        path = &path[..i];
    }
    if host.contains('@') || host.contains(char::is_whitespace) {
        return None;
    }
    if path.starts_with("/v2/") || path.starts_with("/v1/") {
        path = &path[3..];
    }
    Some(if !path.is_empty() && path != "/" {
        format!("{host}{path}")
    } else {
        host.to_string()
    })
}

/// A schemeless `host[:port][/path]`, split as kubelet's `splitURL`.
struct Target {
    labels: Vec<String>,
    port: String,
    path: String,
}

impl Target {
    fn parse(s: &str) -> Target {
        let end = s.find('/').unwrap_or(s.len());
        let (authority, path) = s.split_at(end);
        let (host, port) = match split_host_port(authority) {
            Some((h, Some(p))) => (h.trim_start_matches('[').trim_end_matches(']'), p),
            _ => (authority, ""),
        };
        Target {
            labels: host.split('.').map(str::to_string).collect(),
            port: port.to_string(),
            path: path.to_string(),
        }
    }
}

fn urls_match(glob: &Target, target: &Target) -> bool {
    glob.port == target.port
        && glob.labels.len() == target.labels.len()
        && target.path.starts_with(&glob.path)
        && glob
            .labels
            .iter()
            .zip(&target.labels)
            .all(|(g, t)| glob_match(g.as_bytes(), t.as_bytes()))
}

/// Go's `filepath.Match` for one host label: `*`, `?`, `[...]` classes (with `^`/`!`
/// negation and ranges) and `\` escapes. A malformed pattern matches nothing.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    backtrack = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => match match_class(&pattern[p..], name[n]) {
                    Some((true, len)) => {
                        p += len;
                        n += 1;
                        continue;
                    }
                    Some((false, _)) => {}
                    None => return false,
                },
                b'\\' => {
                    if p + 1 < pattern.len() && pattern[p + 1] == name[n] {
                        p += 2;
                        n += 1;
                        continue;
                    }
                    if p + 1 >= pattern.len() {
                        return false;
                    }
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match backtrack {
            Some((bp, bn)) => {
                p = bp + 1;
                n = bn + 1;
                backtrack = Some((bp, bn + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class at the start of `pattern` (`[...]`); returns whether it
/// matched and the class length, or `None` for a malformed class.
fn match_class(pattern: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some(b'^') | Some(b'!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *pattern.get(i)?;
        if ch == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let lo = if ch == b'\\' {
            i += 1;
            *pattern.get(i)?
        } else {
            ch
        };
        i += 1;
        let mut hi = lo;
        if pattern.get(i) == Some(&b'-') && pattern.get(i + 1).is_some_and(|&x| x != b']') {
            i += 1;
            hi = *pattern.get(i)?;
            if hi == b'\\' {
                i += 1;
                hi = *pattern.get(i)?;
            }
            i += 1;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn repo(s: &str) -> Repository {
        Repository::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn basic(user: &str, pass: &str) -> Credential {
        Credential::Basic {
            username: user.into(),
            password: pass.into(),
        }
    }

    fn keychain(json: &str) -> Keychain {
        let mut k = Keychain::new();
        k.add_docker_config_json(json.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        k
    }

    #[test]
    fn keys_match_by_host_port_glob_and_path_prefix() {
        let k = keychain(
            r#"{"auths":{
                "https://registry.example.com/v2/": {"username":"host","password":"p"},
                "registry.example.com/team-a": {"username":"team-a","password":"p"},
                "*.glob.example.com": {"username":"glob","password":"p"},
                "127.0.0.1:5000": {"username":"port","password":"p"}
            }}"#,
        );
        let cases = [
            ("registry.example.com/team-a/app", Some("team-a")),
            ("registry.example.com/team-b/app", Some("host")),
            // The path is a plain string prefix, as kubelet does.
            ("registry.example.com/team-abc/app", Some("team-a")),
            ("x.glob.example.com/app", Some("glob")),
            ("glob.example.com/app", None),
            ("a.b.glob.example.com/app", None),
            ("127.0.0.1:5000/flux/app", Some("port")),
            ("127.0.0.1:5001/flux/app", None),
            ("127.0.0.1/flux/app", None),
            ("registry.example.com:443/app", None),
            ("other.example.com/app", None),
        ];
        for (target, want) in cases {
            let got = k.resolve(&repo(target));
            let want = want.map_or(Credential::Anonymous, |u| basic(u, "p"));
            assert_eq!(got, want, "{target}");
        }
    }

    #[test]
    fn the_longest_key_wins_and_equal_keys_keep_the_first_secret() {
        let mut k = Keychain::new();
        let first = r#"{"auths":{"ghcr.io":{"username":"first","password":"1"}}}"#;
        let second = r#"{"auths":{"ghcr.io":{"username":"second","password":"2"},
            "ghcr.io/org":{"username":"org","password":"3"}}}"#;
        let mut data = BTreeMap::new();
        data.insert(
            DOCKER_CONFIG_JSON_KEY.to_string(),
            first.as_bytes().to_vec(),
        );
        k.add_secret(DOCKER_CONFIG_JSON_TYPE, &data)
            .unwrap_or_else(|e| panic!("{e}"));
        data.insert(
            DOCKER_CONFIG_JSON_KEY.to_string(),
            second.as_bytes().to_vec(),
        );
        k.add_secret(DOCKER_CONFIG_JSON_TYPE, &data)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.resolve(&repo("ghcr.io/org/app")), basic("org", "3"));
        assert_eq!(k.resolve(&repo("ghcr.io/other/app")), basic("first", "1"));
    }

    #[test]
    fn dockercfg_and_dockerconfigjson_are_read_by_type() {
        let cfg = r#"{"quay.io":{"auth":"dXNlcjpwYXNz"}}"#;
        let json = r#"{"auths":{"quay.io":{"username":"u","password":"p"}}}"#;
        let mut k = Keychain::new();
        let mut data = BTreeMap::new();
        data.insert(DOCKER_CFG_KEY.to_string(), cfg.as_bytes().to_vec());
        // Wrong type for the key: ignored.
        k.add_secret(DOCKER_CONFIG_JSON_TYPE, &data)
            .unwrap_or_else(|e| panic!("{e}"));
        k.add_secret("Opaque", &data)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(k.is_empty());
        k.add_secret(DOCKER_CFG_TYPE, &data)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.resolve(&repo("quay.io/org/app")), basic("user", "pass"));

        let mut k = Keychain::new();
        let mut data = BTreeMap::new();
        data.insert(DOCKER_CONFIG_JSON_KEY.to_string(), json.as_bytes().to_vec());
        k.add_secret(DOCKER_CFG_TYPE, &data)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(k.is_empty());
        k.add_secret(DOCKER_CONFIG_JSON_TYPE, &data)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.resolve(&repo("quay.io/org/app")), basic("u", "p"));
    }

    #[test]
    fn auth_overrides_username_and_password_padded_or_not() {
        let padded = STANDARD.encode("user:pa:ss");
        assert!(padded.ends_with('='));
        let unpadded = padded.trim_end_matches('=').to_string();
        for auth in [padded, unpadded] {
            let k = keychain(&format!(
                r#"{{"auths":{{"r.io":{{"username":"x","password":"y","auth":"{auth}"}}}}}}"#
            ));
            assert_eq!(
                k.resolve(&repo("r.io/a/b")),
                basic("user", "pa:ss"),
                "{auth}"
            );
        }
    }

    #[test]
    fn tokens_take_precedence_over_passwords() {
        let k = keychain(
            r#"{"auths":{
                "a.io":{"username":"u","password":"p","identitytoken":"refresh"},
                "b.io":{"identitytoken":"refresh","registrytoken":"bearer"},
                "c.io":{}
            }}"#,
        );
        assert_eq!(
            k.resolve(&repo("a.io/x/y")),
            Credential::IdentityToken {
                username: "u".into(),
                token: "refresh".into()
            }
        );
        assert_eq!(
            k.resolve(&repo("b.io/x/y")),
            Credential::RegistryToken("bearer".into())
        );
        assert_eq!(k.resolve(&repo("c.io/x/y")), Credential::Anonymous);
    }

    #[test]
    fn field_names_are_case_insensitive_like_encoding_json() {
        let k = keychain(r#"{"Auths":{"r.io":{"Username":"u","PASSWORD":"p"}}}"#);
        assert_eq!(k.resolve(&repo("r.io/a/b")), basic("u", "p"));
    }

    #[test]
    fn docker_hub_keys_match_the_normalised_registry() {
        let k = keychain(
            r#"{"auths":{"https://index.docker.io/v1/":{"username":"hub","password":"p"}}}"#,
        );
        assert_eq!(k.resolve(&repo("nginx")), basic("hub", "p"));
        assert_eq!(k.resolve(&repo("docker.io/org/app")), basic("hub", "p"));
    }

    #[test]
    fn malformed_configs_are_credential_errors_without_secrets() {
        for bad in [
            "not json",
            r#"{"auths":"x"}"#,
            r#"{"auths":{"r.io":"x"}}"#,
            r#"{"auths":{"r.io":{"username":5}}}"#,
            r#"{"auths":{"r.io":{"auth":"!!!secret!!!"}}}"#,
            r#"{"auths":{"r.io":{"auth":"c2VjcmV0"}}}"#,
        ] {
            let mut k = Keychain::new();
            match k.add_docker_config_json(bad.as_bytes()) {
                Err(e @ Error::Credentials { .. }) => {
                    assert!(!e.to_string().contains("secret"), "{e}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let c = Credential::RegistryToken("tok3n".into());
        assert!(!format!("{c:?}").contains("tok3n"));
    }

    #[test]
    fn label_globs_follow_filepath_match() {
        for (p, n, want) in [
            ("*", "anything", true),
            ("reg*", "registry", true),
            ("r?g", "reg", true),
            ("r?g", "regg", false),
            ("[a-c]x", "bx", true),
            ("[!a-c]x", "bx", false),
            ("[^a-c]x", "dx", true),
            ("a\\*", "a*", true),
            ("[", "a", false),
            ("*a*b", "xxaxxb", true),
            ("*a*b", "xxaxxc", false),
        ] {
            assert_eq!(glob_match(p.as_bytes(), n.as_bytes()), want, "{p} vs {n}");
        }
    }
}

#[cfg(test)]
mod properties {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::mutation::{config, mutated};

    const CONFIGS: &[&str] = &[
        r#"{"auths":{"ghcr.io":{"auth":"dXNlcjpwYXNz"}}}"#,
        r#"{"auths":{"https://index.docker.io/v1/":{"username":"u","password":"p"}}}"#,
        r#"{"r.example.com:5000":{"auth":"dTpw","email":"e"}}"#,
    ];

    proptest! {
        #![proptest_config(config())]

        /// A pull Secret's content is read or refused, and a read one resolves, never panics.
        #[test]
        fn mutated_docker_configs_never_panic(bytes in mutated(CONFIGS)) {
            let repo = Repository::parse_oci_url("oci://ghcr.io/a/b").ok();
            for (type_, key) in [
                ("kubernetes.io/dockerconfigjson", ".dockerconfigjson"),
                ("kubernetes.io/dockercfg", ".dockercfg"),
            ] {
                let mut keychain = Keychain::new();
                let data = BTreeMap::from([(key.to_string(), bytes.clone())]);
                if keychain.add_secret(type_, &data).is_ok()
                    && let Some(repo) = &repo
                {
                    let _ = keychain.resolve(repo);
                }
            }
        }
    }
}
