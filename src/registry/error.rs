//! The error categories of the registry adapter.
//!
//! [`Error`] is a small enum of *categories* (what kind of thing went wrong), not of call sites:
//! the core decides a Flux reason and a condition from the action that failed and uses the
//! category for logs, metrics and tests. Third-party errors (reqwest, rustls, serde) never leave
//! this module tree except as an opaque `source()`.
//!
//! Conventions: messages are lower-case (except texts copied from Flux or a registry, such as
//! `URL must be in format ...` or `MANIFEST_UNKNOWN`), they do not repeat their source (the
//! caller joins the chain), and they never contain credentials: URLs are rendered by
//! [`redact_url`] (no userinfo, no query, no fragment) and request errors are stripped of their
//! URL before they are kept as a source.

use std::time::Duration;

/// A boxed error kept as the `source()` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong while talking to a registry, by category.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The repository URL or a digest cannot be parsed (Flux stalls on an invalid URL).
    #[error("{message}")]
    InvalidReference {
        /// What is wrong, e.g. `URL must be in format 'oci://<domain>/<org>/<repo>'`.
        message: String,
    },
    /// Credentials material cannot be used: a malformed docker config or `auth` field.
    #[error("{message}")]
    Credentials {
        /// What is wrong (never the secret's content).
        message: String,
    },
    /// TLS material is invalid (CA, client certificate or key) or a TLS handshake failed.
    #[error("{message}")]
    Tls {
        /// What is wrong, with Flux's texts for invalid material.
        message: String,
        /// The underlying handshake error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The registry or its token server refused the request (HTTP 401 or 403).
    #[error("{message}")]
    Unauthorized {
        /// `METHOD url: CODE: message`, e.g. `GET http://r/v2/a/manifests/t: UNAUTHORIZED: ...`.
        message: String,
    },
    /// The repository, manifest, tag or blob does not exist (HTTP 404).
    #[error("{message}")]
    NotFound {
        /// `METHOD url: CODE: message`, e.g. `... MANIFEST_UNKNOWN: manifest unknown`.
        message: String,
    },
    /// The registry kept answering HTTP 429 until the retries or the deadline ran out.
    #[error("{message}")]
    TooManyRequests {
        /// `METHOD url: ...`.
        message: String,
        /// The last `Retry-After` the registry asked for, if any.
        retry_after: Option<Duration>,
    },
    /// Any other unexpected HTTP status (5xx after retries, 400, 405, ...).
    #[error("{message}")]
    Server {
        /// The HTTP status code.
        status: u16,
        /// `METHOD url: ...`.
        message: String,
    },
    /// The registry answered something this client cannot use: a malformed manifest, challenge
    /// or token response, a missing header, a schema 1 manifest, no matching platform.
    #[error("{message}")]
    Protocol {
        /// What was wrong with the answer.
        message: String,
    },
    /// Content does not match its digest or size.
    #[error("{message}")]
    DigestMismatch {
        /// Expected and actual digest or size.
        message: String,
    },
    /// The registry could not be reached, the connection broke, or the deadline passed.
    #[error("{message}")]
    Network {
        /// `METHOD url: ...`.
        message: String,
        /// The underlying transport error (its URL removed), if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A local I/O error.
    #[error("{message}")]
    Io {
        /// What was being done.
        message: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A short, stable name of the category (`unauthorized`, `not_found`, ...), for metrics
    /// labels and logs.
    pub fn category(&self) -> &'static str {
        match self {
            Error::InvalidReference { .. } => "invalid_reference",
            Error::Credentials { .. } => "credentials",
            Error::Tls { .. } => "tls",
            Error::Unauthorized { .. } => "unauthorized",
            Error::NotFound { .. } => "not_found",
            Error::TooManyRequests { .. } => "too_many_requests",
            Error::Server { .. } => "server",
            Error::Protocol { .. } => "protocol",
            Error::DigestMismatch { .. } => "digest_mismatch",
            Error::Network { .. } => "network",
            Error::Io { .. } => "io",
        }
    }

    /// The registry [`Error`] carried inside an `io::Error` returned by a blob reader
    /// ([`crate::registry::BlobReader`]), if it is one.
    pub fn from_io(err: &std::io::Error) -> Option<&Error> {
        err.get_ref().and_then(|e| e.downcast_ref::<Error>())
    }

    /// Wraps this error into an `io::Error` (kind `InvalidData` for digest mismatches, `Other`
    /// otherwise) that [`Error::from_io`] unwraps again.
    pub fn into_io(self) -> std::io::Error {
        let kind = match self {
            Error::DigestMismatch { .. } => std::io::ErrorKind::InvalidData,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, self)
    }

    /// This error with its message replaced by `f(message)`; category and source are kept.
    pub(crate) fn map_message(self, f: impl FnOnce(String) -> String) -> Error {
        match self {
            Error::InvalidReference { message } => Error::InvalidReference {
                message: f(message),
            },
            Error::Credentials { message } => Error::Credentials {
                message: f(message),
            },
            Error::Tls { message, source } => Error::Tls {
                message: f(message),
                source,
            },
            Error::Unauthorized { message } => Error::Unauthorized {
                message: f(message),
            },
            Error::NotFound { message } => Error::NotFound {
                message: f(message),
            },
            Error::TooManyRequests {
                message,
                retry_after,
            } => Error::TooManyRequests {
                message: f(message),
                retry_after,
            },
            Error::Server { status, message } => Error::Server {
                status,
                message: f(message),
            },
            Error::Protocol { message } => Error::Protocol {
                message: f(message),
            },
            Error::DigestMismatch { message } => Error::DigestMismatch {
                message: f(message),
            },
            Error::Network { message, source } => Error::Network {
                message: f(message),
                source,
            },
            Error::Io { message, source } => Error::Io {
                message: f(message),
                source,
            },
        }
    }

    pub(crate) fn invalid_reference(message: impl Into<String>) -> Error {
        Error::InvalidReference {
            message: message.into(),
        }
    }

    pub(crate) fn credentials(message: impl Into<String>) -> Error {
        Error::Credentials {
            message: message.into(),
        }
    }

    pub(crate) fn tls(message: impl Into<String>) -> Error {
        Error::Tls {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Error {
        Error::Protocol {
            message: message.into(),
        }
    }
}

/// `scheme://host[:port]/path` of `url`: no userinfo, no query string, no fragment. Every URL
/// that appears in a message goes through here.
pub fn redact_url(url: &url::Url) -> String {
    let mut out = format!("{}://", url.scheme());
    if let Some(host) = url.host_str() {
        out.push_str(host);
    }
    if let Some(port) = url.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out.push_str(url.path());
    out
}

/// The message for a rustls error among the causes of `err` (a TLS handshake or alert failure),
/// in Go's words where Flux users know them (`tls: failed to verify certificate: x509: ...`).
///
/// `io::Error::source()` skips the error it wraps, so wrapped errors are unwrapped by hand.
pub(crate) fn rustls_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls_message(tls));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls_message(tls));
            }
            if let Some(found) = rustls_cause(inner) {
                return Some(found);
            }
        }
        cur = e.source();
    }
    None
}

fn tls_message(e: &rustls::Error) -> String {
    use rustls::{AlertDescription, CertificateError};
    match e {
        rustls::Error::InvalidCertificate(c) => {
            let what = match c {
                CertificateError::UnknownIssuer => "certificate signed by unknown authority".into(),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "certificate has expired or is not yet valid".into()
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "certificate has expired or is not yet valid".into()
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    "certificate is not valid for the registry's host name".into()
                }
                other => format!("{other:?}"),
            };
            format!("tls: failed to verify certificate: x509: {what}")
        }
        rustls::Error::AlertReceived(alert) => {
            let what = match alert {
                AlertDescription::BadCertificate => "bad certificate".into(),
                AlertDescription::CertificateRequired => "certificate required".into(),
                AlertDescription::UnknownCA => "unknown certificate authority".into(),
                AlertDescription::HandshakeFailure => "handshake failure".into(),
                AlertDescription::ProtocolVersion => "protocol version not supported".into(),
                other => format!("{other:?}"),
            };
            format!("remote error: tls: {what}")
        }
        other => format!("tls: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_lose_userinfo_query_and_fragment() {
        let url =
            url::Url::parse("https://user:secret@reg.example:5000/token?scope=a&password=x#f")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(redact_url(&url), "https://reg.example:5000/token");
    }

    #[test]
    fn errors_round_trip_through_io_errors() {
        let io = Error::DigestMismatch {
            message: "x".into(),
        }
        .into_io();
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
        assert!(matches!(
            Error::from_io(&io),
            Some(Error::DigestMismatch { .. })
        ));
        assert!(Error::from_io(&std::io::Error::other("plain")).is_none());
    }
}
