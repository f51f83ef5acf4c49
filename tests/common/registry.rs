//! Throwaway OCI registries for tests, in two flavors and five security setups.
//!
//! - [`Flavor::Distribution`]: Debian's `docker-registry` (distribution 2.8.2), the most common
//!   registry in the field; it has no referrers API (`GET /v2/<name>/referrers/<digest>` is 404).
//! - [`Flavor::Referrers`]: `ocitestbed registry`, go-containerregistry's registry with the
//!   OCI 1.1 referrers API (see `testbed/go/ocitestbed`). Its manifests and tags live in memory:
//!   they do not survive a restart.
//!
//! Both run as processes from the test bed (`testbed/install-registries.sh`), each with its own
//! temporary directory holding the generated PKI, htpasswd, config and storage. Bearer auth uses
//! `ocitestbed token-server`, which signs tokens with a certificate issued by the registry's CA.
//!
//! The blocking parts ([`Registry::start`], [`Registry::token_requests`]) use plain std I/O (and
//! rustls for TLS), so they can be called from inside a tokio test.

// Test-bed code: a failed setup step should panic with its reason.
#![allow(clippy::expect_used)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use super::{Proc, bin, free_port, wait_until};

/// The user in the htpasswd of [`Security::Basic`] and [`Security::Bearer`] registries.
pub const USER: &str = "ocisource";
/// The password of [`USER`].
pub const PASSWORD: &str = "testbed-secret-password";
/// The `service` (token audience) of bearer-auth registries.
pub const TOKEN_SERVICE: &str = "ocisource-testbed-registry";
/// The issuer of the bearer tokens.
pub const TOKEN_ISSUER: &str = "ocisource-testbed-token-server";

/// Which registry implementation to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Debian's distribution 2.8.2: no referrers API (clients fall back to `sha256-<hex>` tags).
    Distribution,
    /// go-containerregistry's registry with the OCI 1.1 referrers API.
    Referrers,
}

/// How the registry is reached and who may use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain HTTP, anonymous.
    Http,
    /// HTTPS with a certificate from a private CA ([`Registry::ca_pem`]), anonymous.
    Https,
    /// HTTPS that requires a client certificate issued by the same private CA.
    Mtls,
    /// Plain HTTP with htpasswd basic auth ([`USER`], [`PASSWORD`]).
    Basic,
    /// Plain HTTP with Docker token auth: the registry challenges with `Bearer realm=...` and a
    /// token server trades [`USER`]/[`PASSWORD`] for a JWT.
    Bearer,
}

impl Security {
    fn tls(self) -> bool {
        matches!(self, Security::Https | Security::Mtls)
    }

    fn auth(self) -> bool {
        matches!(self, Security::Basic | Security::Bearer)
    }
}

/// PEM and DER material generated for one registry.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
    client_cert_der: CertificateDer<'static>,
    client_key_der: Vec<u8>,
}

/// A running test registry. Stopped (with its token server) and deleted on drop; if the test is
/// panicking, the tails of the process logs are printed first.
pub struct Registry {
    // Fields drop in order: processes stop before their directory goes away.
    registry: Proc,
    token_server: Option<(Proc, u16)>,
    flavor: Flavor,
    security: Security,
    port: u16,
    pki: Pki,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry and waits until `GET /v2/` answers (200, or 401 when auth is on).
    ///
    /// Panics when a test-bed component is missing or the registry does not come up.
    pub fn start(flavor: Flavor, security: Security) -> Registry {
        Registry::start_with(flavor, security, None)
    }

    /// A [`Flavor::Distribution`] registry over plain HTTP that posts its push notifications
    /// to `url` with `Authorization: Bearer <token>` (distribution's notification endpoint).
    pub fn start_notifying(url: &str, token: &str) -> Registry {
        Registry::start_with(Flavor::Distribution, Security::Http, Some((url, token)))
    }

    fn start_with(flavor: Flavor, security: Security, notify: Option<(&str, &str)>) -> Registry {
        let program = match flavor {
            Flavor::Distribution => bin("docker-registry"),
            Flavor::Referrers => bin("ocitestbed"),
        };
        let ocitestbed = (security == Security::Bearer).then(|| bin("ocitestbed"));
        let dir = tempfile::Builder::new()
            .prefix("ocisource-registry-")
            .tempdir()
            .expect("create registry temp dir");
        let d = dir.path();
        let pki = write_pki(d);
        std::fs::create_dir_all(d.join("data")).expect("create registry data dir");
        if security.auth() {
            let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
            write(d, "htpasswd", &format!("{USER}:{hash}\n"));
        }

        let token_server = ocitestbed.map(|program| {
            let port = free_port();
            let mut cmd = Command::new(program);
            cmd.arg("token-server")
                .args(["--addr", &format!("127.0.0.1:{port}")])
                .arg("--htpasswd")
                .arg(d.join("htpasswd"))
                .arg("--key")
                .arg(d.join("token-signing.key"))
                .arg("--cert")
                .arg(d.join("token-signing.pem"))
                .args(["--issuer", TOKEN_ISSUER, "--service", TOKEN_SERVICE]);
            let proc = Proc::spawn("token-server", &cmd, d);
            wait_for(&proc, "token server", || {
                http_get(port, "/stats", None).is_ok_and(|(status, _)| status == 200)
            });
            (proc, port)
        });
        let realm = token_server
            .as_ref()
            .map(|(_, port)| format!("http://127.0.0.1:{port}/token"));

        let port = free_port();
        let mut cmd = Command::new(program);
        match flavor {
            Flavor::Distribution => {
                write(
                    d,
                    "config.yml",
                    &distribution_config(d, port, security, realm.as_deref(), notify),
                );
                cmd.arg("serve").arg(d.join("config.yml"));
                // distribution reads REGISTRY_* overrides from the environment.
                for (key, _) in std::env::vars_os() {
                    if key.to_string_lossy().starts_with("REGISTRY_") {
                        cmd.env_remove(key);
                    }
                }
            }
            Flavor::Referrers => {
                cmd.arg("registry")
                    .args(["--addr", &format!("127.0.0.1:{port}")])
                    .arg("--data")
                    .arg(d.join("data"));
                if security.tls() {
                    cmd.arg("--tls-cert").arg(d.join("server.pem"));
                    cmd.arg("--tls-key").arg(d.join("server.key"));
                }
                if security == Security::Mtls {
                    cmd.arg("--client-ca").arg(d.join("ca.pem"));
                }
                if security == Security::Basic {
                    cmd.arg("--htpasswd").arg(d.join("htpasswd"));
                }
                if let Some(realm) = &realm {
                    cmd.args(["--token-realm", realm])
                        .args(["--token-service", TOKEN_SERVICE])
                        .args(["--token-issuer", TOKEN_ISSUER])
                        .arg("--token-cert")
                        .arg(d.join("ca.pem"));
                }
            }
        }
        let registry = Proc::spawn("registry", &cmd, d);
        let reg = Registry {
            registry,
            token_server,
            flavor,
            security,
            port,
            pki,
            dir,
        };
        wait_for(&reg.registry, &format!("{flavor:?} registry"), || {
            reg.probe("/v2/")
                .is_ok_and(|(status, _)| status == 200 || status == 401)
        });
        reg
    }

    /// The registry flavor.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The security setup.
    pub fn security(&self) -> Security {
        self.security
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.security.tls() { "https" } else { "http" }
    }

    /// Whether the registry speaks plain HTTP (Flux's `spec.insecure`).
    pub fn insecure(&self) -> bool {
        !self.security.tls()
    }

    /// `scheme://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme(), self.host())
    }

    /// `host/repository:tag`, an image reference into this registry.
    pub fn reference(&self, repository: &str, tag: &str) -> String {
        format!("{}/{repository}:{tag}", self.host())
    }

    /// The private CA (PEM) that issued the server certificate, for TLS registries.
    pub fn ca_pem(&self) -> Option<String> {
        self.security.tls().then(|| self.pki.ca_pem.clone())
    }

    /// Path of [`Registry::ca_pem`] on disk, for tools (`--ca-file`, `SSL_CERT_FILE`, ...).
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.security.tls().then(|| self.dir.path().join("ca.pem"))
    }

    /// Client certificate (PEM) accepted by an mTLS registry.
    pub fn client_cert_pem(&self) -> Option<String> {
        (self.security == Security::Mtls).then(|| self.pki.client_cert_pem.clone())
    }

    /// PKCS#8 private key (PEM) of [`Registry::client_cert_pem`].
    pub fn client_key_pem(&self) -> Option<String> {
        (self.security == Security::Mtls).then(|| self.pki.client_key_pem.clone())
    }

    /// Path of [`Registry::client_cert_pem`] on disk.
    pub fn client_cert_path(&self) -> Option<PathBuf> {
        (self.security == Security::Mtls).then(|| self.dir.path().join("client.pem"))
    }

    /// Path of [`Registry::client_key_pem`] on disk.
    pub fn client_key_path(&self) -> Option<PathBuf> {
        (self.security == Security::Mtls).then(|| self.dir.path().join("client.key"))
    }

    /// `(user, password)` for registries with auth.
    pub fn credentials(&self) -> Option<(String, String)> {
        self.security
            .auth()
            .then(|| (USER.to_string(), PASSWORD.to_string()))
    }

    /// The token server's realm URL, for [`Security::Bearer`].
    pub fn token_realm(&self) -> Option<String> {
        self.token_server
            .as_ref()
            .map(|(_, port)| format!("http://127.0.0.1:{port}/token"))
    }

    /// A `.dockerconfigjson` for this registry's host: with `username`, `password` and `auth`
    /// when it has auth, `{"auths":{}}` otherwise.
    pub fn docker_config_json(&self) -> String {
        match self.credentials() {
            Some((user, password)) => serde_json::json!({
                "auths": {
                    self.host(): {
                        "username": user,
                        "password": password,
                        "auth": BASE64.encode(format!("{user}:{password}")),
                    }
                }
            })
            .to_string(),
            None => r#"{"auths":{}}"#.to_string(),
        }
    }

    /// How many tokens the token server has issued so far (0 without bearer auth). Tests use it
    /// to check that clients reuse tokens.
    pub fn token_requests(&self) -> usize {
        let Some((_, port)) = &self.token_server else {
            return 0;
        };
        let (status, body) = http_get(*port, "/stats", None).expect("query token server stats");
        assert_eq!(status, 200, "token server /stats: {body}");
        let stats: serde_json::Value = serde_json::from_str(&body).expect("token stats JSON");
        stats["issued"].as_u64().expect("issued count") as usize
    }

    /// An `oci-client` configuration that reaches this registry: plain HTTP, or HTTPS trusting
    /// the private CA. oci-client 0.18 cannot present a client certificate, so for
    /// [`Security::Mtls`] this config is refused by the server; use [`Registry::http_client`].
    pub fn oci_client_config(&self) -> oci_client::client::ClientConfig {
        let mut config = oci_client::client::ClientConfig::default();
        if self.security.tls() {
            config.extra_root_certificates = vec![oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data: self.pki.ca_pem.clone().into_bytes(),
            }];
        } else {
            config.protocol = oci_client::client::ClientProtocol::Http;
        }
        config
    }

    /// The `oci-client` credentials for this registry (Basic for both auth kinds: oci-client
    /// trades them for a token itself).
    pub fn oci_auth(&self) -> oci_client::secrets::RegistryAuth {
        match self.credentials() {
            Some((user, password)) => oci_client::secrets::RegistryAuth::Basic(user, password),
            None => oci_client::secrets::RegistryAuth::Anonymous,
        }
    }

    /// A reqwest client that trusts the private CA and, for mTLS, presents the client
    /// certificate. It sends no credentials by itself: see [`Registry::authorize`].
    pub fn http_client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder();
        if self.security.tls() {
            let ca = reqwest::Certificate::from_pem(self.pki.ca_pem.as_bytes()).expect("CA PEM");
            builder = builder.tls_certs_only([ca]);
        }
        if self.security == Security::Mtls {
            let pem = format!("{}{}", self.pki.client_cert_pem, self.pki.client_key_pem);
            builder =
                builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
        }
        builder.build().expect("build reqwest client")
    }

    /// The `Authorization` header value for a raw request to `path` (e.g.
    /// `/v2/app/referrers/sha256:...`) with the given credentials: `Basic ...` for
    /// [`Security::Basic`], a fresh bearer token for [`Security::Bearer`] (scope `pull,push,delete`
    /// on the path's repository, or none for `/v2/`), `None` without auth. Wrong credentials for
    /// a bearer registry yield `Err(status)` from the token server.
    pub async fn authorize(
        &self,
        path: &str,
        user: &str,
        password: &str,
    ) -> Result<Option<String>, reqwest::StatusCode> {
        match self.security {
            Security::Basic => Ok(Some(format!(
                "Basic {}",
                BASE64.encode(format!("{user}:{password}"))
            ))),
            Security::Bearer => {
                let realm = self.token_realm().expect("token realm");
                let mut query = vec![("service", TOKEN_SERVICE.to_string())];
                if let Some(repo) = repository_of(path) {
                    query.push(("scope", format!("repository:{repo}:pull,push,delete")));
                }
                let resp = reqwest::Client::new()
                    .get(realm)
                    .query(&query)
                    .basic_auth(user, Some(password))
                    .send()
                    .await
                    .expect("reach token server");
                if !resp.status().is_success() {
                    return Err(resp.status());
                }
                let body: serde_json::Value = resp.json().await.expect("token JSON");
                let token = body["token"].as_str().expect("token field");
                Ok(Some(format!("Bearer {token}")))
            }
            _ => Ok(None),
        }
    }

    /// A request builder for `method` on `path` (starting with `/v2/`), from
    /// [`Registry::http_client`], already carrying this registry's valid credentials.
    pub async fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self
            .http_client()
            .request(method, format!("{}{path}", self.url()));
        match self.authorize(path, USER, PASSWORD).await {
            Ok(Some(value)) => builder.header(reqwest::header::AUTHORIZATION, value),
            Ok(None) => builder,
            Err(status) => panic!("token server refused the test-bed credentials: {status}"),
        }
    }

    /// The registry's temp dir (PKI, htpasswd, config, storage, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last `max` bytes of the registry's log (and the token server's, if any).
    pub fn log_tail(&self, max: usize) -> String {
        let mut out = format!(
            "--- {:?} registry log ({}) ---\n{}",
            self.flavor,
            self.registry.log_path().display(),
            self.registry.log_tail(max)
        );
        if let Some((proc, _)) = &self.token_server {
            let _ = write!(out, "\n--- token server log ---\n{}", proc.log_tail(max));
        }
        out
    }

    /// `GET path` on the registry with the test-bed's own TLS client (client cert included).
    fn probe(&self, path: &str) -> std::io::Result<(u16, String)> {
        let tls = self.security.tls().then(|| self.rustls_config());
        http_get(self.port, path, tls)
    }

    fn rustls_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.pki.ca_der.clone()).expect("add CA");
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
        let config = if self.security == Security::Mtls {
            let key =
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pki.client_key_der.clone()));
            builder
                .with_client_auth_cert(vec![self.pki.client_cert_der.clone()], key)
                .expect("client cert")
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(config)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(8000));
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("flavor", &self.flavor)
            .field("security", &self.security)
            .field("host", &self.host())
            .finish()
    }
}

/// The repository named in a `/v2/<name>/{manifests,blobs,tags,referrers}/...` path.
fn repository_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    let elems: Vec<&str> = rest.split('/').collect();
    let at = elems
        .iter()
        .rposition(|e| matches!(*e, "manifests" | "blobs" | "tags" | "referrers"))?;
    (at > 0).then(|| elems[..at].join("/"))
}

fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::write(dir.join(name), contents).unwrap_or_else(|e| panic!("write {name}: {e}"));
}

/// Generates the CA, the server certificate (127.0.0.1 and localhost), an mTLS client
/// certificate and the token-signing certificate, and writes them as PEM files into `dir`.
fn write_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ocisource test-bed CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let ca = Issuer::new(ca_params, ca_key);

    let issue = |name: &str, sans: Vec<String>, eku: Option<ExtendedKeyUsagePurpose>| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = eku.into_iter().collect();
        let cert = params.signed_by(&key, &ca).expect("sign cert");
        (cert, key)
    };
    let (server, server_key) = issue(
        "127.0.0.1",
        vec!["127.0.0.1".into(), "localhost".into()],
        Some(ExtendedKeyUsagePurpose::ServerAuth),
    );
    let (client, client_key) = issue(
        "ocisource-test-client",
        vec![],
        Some(ExtendedKeyUsagePurpose::ClientAuth),
    );
    let (signer, signer_key) = issue("ocisource test-bed token signer", vec![], None);

    write(dir, "ca.pem", &ca_cert.pem());
    write(dir, "server.pem", &server.pem());
    write(dir, "server.key", &server_key.serialize_pem());
    write(dir, "client.pem", &client.pem());
    write(dir, "client.key", &client_key.serialize_pem());
    write(dir, "token-signing.pem", &signer.pem());
    write(dir, "token-signing.key", &signer_key.serialize_pem());
    Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
        client_cert_der: client.der().clone(),
        client_key_der: client_key.serialize_der(),
    }
}

/// distribution 2.8's config for one registry: filesystem storage in `dir/data`, no debug
/// server, TLS/mTLS and htpasswd or token auth as asked, and notifications of manifest events
/// to `notify`'s URL with its bearer token when given (blob events left out; a quick retry).
fn distribution_config(
    dir: &Path,
    port: u16,
    security: Security,
    realm: Option<&str>,
    notify: Option<(&str, &str)>,
) -> String {
    let p = |name: &str| dir.join(name).display().to_string();
    let mut cfg = format!(
        "version: 0.1\n\
         log:\n  level: info\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
         \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: ocisource-testbed\n",
        data = p("data"),
    );
    if security.tls() {
        let _ = write!(
            cfg,
            "  tls:\n    certificate: {}\n    key: {}\n    minimumtls: tls1.2\n",
            p("server.pem"),
            p("server.key")
        );
        if security == Security::Mtls {
            let _ = writeln!(cfg, "    clientcas:\n      - {}", p("ca.pem"));
        }
    }
    match security {
        Security::Basic => {
            let _ = write!(
                cfg,
                "auth:\n  htpasswd:\n    realm: ocisource-testbed\n    path: {}\n",
                p("htpasswd")
            );
        }
        Security::Bearer => {
            let _ = write!(
                cfg,
                "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    \
                 issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                realm.expect("token realm"),
                p("ca.pem")
            );
        }
        _ => {}
    }
    if let Some((url, token)) = notify {
        let _ = write!(
            cfg,
            "notifications:\n  endpoints:\n    - name: ocisource\n      url: {url}\n      \
             headers:\n        Authorization: [\"Bearer {token}\"]\n      timeout: 2s\n      \
             threshold: 3\n      backoff: 1s\n      ignoredmediatypes:\n        \
             - application/octet-stream\n"
        );
    }
    cfg
}

fn wait_for(proc: &Proc, what: &str, mut ready: impl FnMut() -> bool) {
    wait_until(what, Duration::from_secs(30), || {
        if !proc.is_running() {
            panic!("{what} exited during startup:\n{}", proc.log_tail(8000));
        }
        ready()
    });
}

/// A minimal blocking `GET` to `127.0.0.1:port`, over TLS when `tls` is set. Returns the status
/// and the body (the server closes the connection, so the body is read to its end).
fn http_get(
    port: u16,
    path: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> std::io::Result<(u16, String)> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut raw = Vec::new();
    let read = match tls {
        Some(config) => {
            let name = ServerName::try_from("127.0.0.1").expect("server name");
            let conn =
                rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            stream.write_all(request.as_bytes())?;
            stream.read_to_end(&mut raw)
        }
        None => {
            tcp.write_all(request.as_bytes())?;
            tcp.read_to_end(&mut raw)
        }
    };
    // Some servers close without TLS close_notify; what was read is still the answer.
    if let Err(e) = read
        && (raw.is_empty() || e.kind() != std::io::ErrorKind::UnexpectedEof)
    {
        return Err(e);
    }
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:.100}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}
