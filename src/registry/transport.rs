//! The HTTP transport to registries: TLS (CA, client certificate, insecure), proxy, timeouts,
//! user agent.
//!
//! [`TransportConfig`] holds what an OCIRepository's `certSecretRef`, `proxySecretRef` and
//! `insecure` say, as bytes and strings (no Kubernetes types). The crate-internal
//! `build_http_client` turns it into an HTTP client on rustls + aws-lc-rs: a CA is added **on
//! top of** the system roots, a client certificate and key must come together, verification is
//! skipped only when `insecure` is set and no CA is given, TLS 1.2 is the minimum. Invalid material fails with Flux's texts
//! (`cannot append certificate into certificate pool: invalid CA certificate`,
//! `tls: failed to find any PEM data in key input`, ...).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::address::check_hop;
use super::error::Error;
use super::retry::RetryPolicy;

/// The user agent sent with every request (Flux's, plus ours).
pub const USER_AGENT: &str = concat!("flux/v2 ocisource/", env!("CARGO_PKG_VERSION"));

/// TLS material from a `certSecretRef` Secret (`ca.crt`, `tls.crt`, `tls.key`), as PEM bytes.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsMaterial {
    /// CA certificate(s), added to the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate (chain).
    pub cert_pem: Option<Vec<u8>>,
    /// Client private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Option<Vec<u8>>,
    /// The Secret's name, for messages (`invalid '<name>' secret data: ...`).
    pub secret_name: Option<String>,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_pem", &self.ca_pem.as_ref().map(|b| b.len()))
            .field("cert_pem", &self.cert_pem.as_ref().map(|b| b.len()))
            .field("key_pem", &self.key_pem.as_ref().map(|_| "<redacted>"))
            .field("secret_name", &self.secret_name)
            .finish()
    }
}

/// A proxy from a `proxySecretRef` Secret (`address`, `username`, `password`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ProxyConfig {
    /// The proxy URL (`http://`, `https://` or `socks5://`).
    pub address: String,
    /// Proxy user name, if any.
    pub username: Option<String>,
    /// Proxy password, if any.
    pub password: Option<String>,
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let address = url::Url::parse(&self.address)
            .map(|u| super::error::redact_url(&u))
            .unwrap_or_else(|_| "<invalid>".to_string());
        f.debug_struct("ProxyConfig")
            .field("address", &address)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Everything that shapes the connection to a registry. Two objects with equal configs share
/// one client (see [`crate::registry::ClientPool`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransportConfig {
    /// TLS material (`certSecretRef`).
    pub tls: TlsMaterial,
    /// `spec.insecure`: allow plain HTTP, and skip TLS verification when no CA is given.
    pub insecure: bool,
    /// `proxySecretRef`; `None` uses the `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` environment.
    pub proxy: Option<ProxyConfig>,
    /// The user agent; [`USER_AGENT`] by default.
    pub user_agent: String,
    /// Connect timeout (go-containerregistry: 30 s).
    pub connect_timeout: Duration,
    /// The longest silence while reading a response before it fails.
    pub read_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
}

impl Default for TransportConfig {
    fn default() -> TransportConfig {
        TransportConfig {
            tls: TlsMaterial::default(),
            insecure: false,
            proxy: None,
            user_agent: USER_AGENT.to_string(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
        }
    }
}

/// Builds the reqwest client for `config`; with `follow_redirects`, redirects are followed (up
/// to 10) unless they lead from the registry to an internal address (see `address.rs`), else
/// never.
///
/// # Errors
///
/// [`Error::Tls`] for invalid TLS material (with Flux's texts), [`Error::Credentials`] for an
/// invalid proxy address.
pub(crate) fn build_http_client(
    config: &TransportConfig,
    follow_redirects: bool,
) -> Result<reqwest::Client, Error> {
    let redirects = if follow_redirects {
        reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() > 10 {
                return attempt.error("stopped after 10 redirects");
            }
            let checked = match attempt.previous().first() {
                Some(from) => check_hop(from, attempt.url()),
                None => Ok(()),
            };
            match checked {
                Ok(()) => attempt.follow(),
                Err(why) => attempt.error(why),
            }
        })
    } else {
        reqwest::redirect::Policy::none()
    };
    let mut builder = reqwest::Client::builder()
        .user_agent(config.user_agent.clone())
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(30))
        .tls_version_min(reqwest::tls::Version::TLS_1_2)
        // Retries are ours (see `retry.rs`), counted and bounded by the deadline.
        .retry(reqwest::retry::never())
        // Redirects (blob storage) are followed; reqwest drops `Authorization` when the
        // redirect leaves the registry's host and port.
        .redirect(redirects);

    let tls = &config.tls;
    match &tls.ca_pem {
        Some(ca) if !ca.is_empty() => {
            let certs = parse_ca(ca)?;
            builder = builder.tls_certs_merge(certs);
        }
        _ => {
            if config.insecure {
                builder = builder.tls_danger_accept_invalid_certs(true);
            }
        }
    }
    if let Some(identity) = client_identity(tls)? {
        builder = builder.identity(identity);
    }
    if let Some(proxy) = &config.proxy {
        builder = builder.proxy(build_proxy(proxy)?);
    }
    builder.build().map_err(|e| Error::Tls {
        message: "failed to build the registry HTTP client".into(),
        source: Some(Box::new(e.without_url())),
    })
}

/// The CA certificates of `pem`, each checked to be a usable trust anchor.
fn parse_ca(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, Error> {
    let invalid =
        || Error::tls("cannot append certificate into certificate pool: invalid CA certificate");
    let mut out = Vec::new();
    let mut store = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(pem) {
        let der = der.map_err(|_| invalid())?;
        store.add(der.clone()).map_err(|_| invalid())?;
        out.push(reqwest::Certificate::from_der(der.as_ref()).map_err(|_| invalid())?);
    }
    if out.is_empty() {
        return Err(invalid());
    }
    Ok(out)
}

/// The client identity from `tls.crt` + `tls.key`, both or neither.
fn client_identity(tls: &TlsMaterial) -> Result<Option<reqwest::Identity>, Error> {
    let cert = tls.cert_pem.as_deref().filter(|b| !b.is_empty());
    let key = tls.key_pem.as_deref().filter(|b| !b.is_empty());
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        _ => {
            let name = tls.secret_name.as_deref().unwrap_or("TLS");
            return Err(Error::tls(format!(
                "invalid '{name}' secret data: both certificate and private key need to be provided"
            )));
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|_| Error::tls("tls: failed to find any PEM data in certificate input"))?;
    if certs.is_empty() {
        return Err(Error::tls(
            "tls: failed to find any PEM data in certificate input",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            Error::tls("tls: failed to find any PEM data in key input")
        }
        _ => Error::tls("tls: failed to parse private key"),
    })?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    match rustls::sign::CertifiedKey::from_der(certs.clone(), key.clone_key(), &provider) {
        Ok(_) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(Error::tls("tls: private key does not match public key"));
        }
        Err(_) => return Err(Error::tls("tls: failed to parse private key")),
    }
    // reqwest wants one PEM buffer with only certificates and a key: rebuild it from the DER so
    // that extra sections (e.g. `EC PARAMETERS`) do not trip it.
    let mut pem = String::new();
    for c in &certs {
        pem.push_str(&pem_block("CERTIFICATE", c.as_ref()));
    }
    let (label, der) = match &key {
        PrivateKeyDer::Pkcs1(k) => ("RSA PRIVATE KEY", k.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(k) => ("EC PRIVATE KEY", k.secret_sec1_der()),
        PrivateKeyDer::Pkcs8(k) => ("PRIVATE KEY", k.secret_pkcs8_der()),
        _ => return Err(Error::tls("tls: failed to parse private key")),
    };
    pem.push_str(&pem_block(label, der));
    reqwest::Identity::from_pem(pem.as_bytes())
        .map(Some)
        .map_err(|_| Error::tls("tls: failed to parse private key"))
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn build_proxy(proxy: &ProxyConfig) -> Result<reqwest::Proxy, Error> {
    let invalid = || Error::credentials("invalid proxy address");
    let url = url::Url::parse(&proxy.address).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h") || url.host_str().is_none()
    {
        return Err(Error::credentials(format!(
            "invalid proxy address: unsupported scheme '{}'",
            url.scheme()
        )));
    }
    let mut p = reqwest::Proxy::all(url.as_str()).map_err(|_| invalid())?;
    // Flux: a user name (with or without a password) sets the proxy's userinfo.
    if let Some(user) = proxy.username.as_deref().filter(|u| !u.is_empty()) {
        p = p.basic_auth(user, proxy.password.as_deref().unwrap_or(""));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_err(material: TlsMaterial) -> String {
        let config = TransportConfig {
            tls: material,
            ..TransportConfig::default()
        };
        match build_http_client(&config, true) {
            Err(e @ Error::Tls { .. }) => e.to_string(),
            Err(e) => panic!("wrong category: {e:?}"),
            Ok(_) => panic!("accepted invalid TLS material"),
        }
    }

    fn generated() -> (String, String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut ca =
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap_or_else(|e| panic!("{e}"));
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let leaf = rcgen::CertificateParams::new(vec!["client".to_string()])
            .unwrap_or_else(|e| panic!("{e}"))
            .self_signed(&key)
            .unwrap_or_else(|e| panic!("{e}"));
        (ca_cert.pem(), leaf.pem(), key.serialize_pem())
    }

    #[test]
    fn valid_material_builds_a_client() {
        let (ca, cert, key) = generated();
        let config = TransportConfig {
            tls: TlsMaterial {
                ca_pem: Some(ca.into_bytes()),
                cert_pem: Some(cert.into_bytes()),
                key_pem: Some(key.into_bytes()),
                secret_name: Some("tls".into()),
            },
            ..TransportConfig::default()
        };
        build_http_client(&config, true).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn invalid_material_fails_with_fluxs_texts() {
        let (ca, cert, key) = generated();
        assert_eq!(
            tls_err(TlsMaterial {
                ca_pem: Some(b"not a certificate".to_vec()),
                ..TlsMaterial::default()
            }),
            "cannot append certificate into certificate pool: invalid CA certificate"
        );
        assert_eq!(
            tls_err(TlsMaterial {
                cert_pem: Some(cert.clone().into_bytes()),
                secret_name: Some("my-tls".into()),
                ..TlsMaterial::default()
            }),
            "invalid 'my-tls' secret data: both certificate and private key need to be provided"
        );
        assert_eq!(
            tls_err(TlsMaterial {
                cert_pem: Some(cert.clone().into_bytes()),
                key_pem: Some(b"invalid".to_vec()),
                ..TlsMaterial::default()
            }),
            "tls: failed to find any PEM data in key input"
        );
        assert_eq!(
            tls_err(TlsMaterial {
                cert_pem: Some(b"invalid".to_vec()),
                key_pem: Some(key.into_bytes()),
                ..TlsMaterial::default()
            }),
            "tls: failed to find any PEM data in certificate input"
        );
        let (_, _, other_key) = generated();
        assert_eq!(
            tls_err(TlsMaterial {
                cert_pem: Some(cert.into_bytes()),
                key_pem: Some(other_key.into_bytes()),
                ..TlsMaterial::default()
            }),
            "tls: private key does not match public key"
        );
        let _ = ca;
    }

    #[test]
    fn proxies_need_a_supported_url() {
        let mut config = TransportConfig {
            proxy: Some(ProxyConfig {
                address: "http://proxy.example:3128".into(),
                username: Some("u".into()),
                password: Some("p".into()),
            }),
            ..TransportConfig::default()
        };
        build_http_client(&config, true).unwrap_or_else(|e| panic!("{e}"));
        for bad in ["::not a url", "ftp://proxy.example"] {
            config.proxy = Some(ProxyConfig {
                address: bad.into(),
                username: None,
                password: Some("secret".into()),
            });
            match build_http_client(&config, true) {
                Err(e @ Error::Credentials { .. }) => assert!(!e.to_string().contains("secret")),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn debug_output_redacts_keys_and_proxy_passwords() {
        let config = TransportConfig {
            tls: TlsMaterial {
                key_pem: Some(b"-----BEGIN PRIVATE KEY-----hunter2".to_vec()),
                ..TlsMaterial::default()
            },
            proxy: Some(ProxyConfig {
                address: "http://user:hunter2@proxy:3128/?token=hunter2".into(),
                username: None,
                password: Some("hunter2".into()),
            }),
            ..TransportConfig::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
