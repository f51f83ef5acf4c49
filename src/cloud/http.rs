//! The HTTP of cloud login: the client for token exchanges and metadata servers, form POSTs,
//! bounded reads of answers ([`crate::body`], shared with the registry adapter), and the error
//! detail of a refused token request (its code and description, redacted).

use std::time::Duration;

use super::CloudError;
use crate::body::{BodyError, read_limited};

/// An HTTP client for the requests made here (token exchanges, GCP metadata server). `proxy`:
/// honour the `HTTPS_PROXY`/`NO_PROXY` environment (never for link-local metadata servers).
pub(super) fn http_client(proxy: bool) -> Result<reqwest::Client, CloudError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("ocisource/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10));
    if !proxy {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|source| CloudError::Http {
        what: "build an HTTP client",
        source,
    })
}

/// Reads a response of at most `limit` bytes; a non-success status is [`CloudError::Status`].
pub(super) async fn read_body(
    response: reqwest::Response,
    what: &'static str,
    limit: usize,
) -> Result<Vec<u8>, CloudError> {
    let status = response.status();
    if !status.is_success() {
        return Err(CloudError::Status {
            what,
            status: status.as_u16(),
        });
    }
    read_all(response, what, limit).await
}

/// POSTs a URL-encoded form; `what` names the request in the error.
pub(super) async fn post_form(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    body: String,
    what: &'static str,
) -> Result<reqwest::Response, CloudError> {
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|source| CloudError::Http { what, source })
}

/// Reads a token endpoint's response of at most `limit` bytes. A non-success status is
/// [`CloudError::Refused`] when the body carries an OAuth2, Google or AWS error (its code and
/// description, with `secrets` and anything token-like removed), else [`CloudError::Status`].
pub(super) async fn read_token_response(
    response: reqwest::Response,
    what: &'static str,
    limit: usize,
    secrets: &[&str],
) -> Result<Vec<u8>, CloudError> {
    let status = response.status();
    if status.is_success() {
        return read_all(response, what, limit).await;
    }
    let status = status.as_u16();
    // The body only feeds the error; a failure reading it leaves the bare status.
    let body = read_all(response, what, limit).await.unwrap_or_default();
    Err(match error_detail(&body, secrets) {
        Some(detail) => CloudError::Refused {
            what,
            status,
            detail,
        },
        None => CloudError::Status { what, status },
    })
}

/// The error code and description in a failed token response: OAuth2
/// (`{"error", "error_description"}`, Entra ID and Google STS), Google APIs
/// (`{"error": {"status", "message"}}`) or AWS query APIs (`<Error><Code>…<Message>…`).
/// Any of `secrets`, and any word long enough to be a token, is replaced by `<redacted>`; the
/// result is at most 300 characters. `None` when the body is none of these.
pub fn error_detail(body: &[u8], secrets: &[&str]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let parts: Vec<String> = match parse_json::<ErrorBody>(text.as_bytes(), "not JSON", "other") {
        Ok(ErrorBody {
            error,
            error_description,
        }) => match error.into_option() {
            Some(ErrorField::Code(code)) => [Some(code), error_description.into_option()]
                .into_iter()
                .flatten()
                .collect(),
            Some(ErrorField::Google { status, message }) => {
                [status.into_option(), message.into_option()]
                    .into_iter()
                    .flatten()
                    .collect()
            }
            None => vec![],
        },
        // JSON of another shape (an array, a number): no detail.
        Err("other") => vec![],
        Err(_) => [xml_text(&text, "Code"), xml_text(&text, "Message")]
            .into_iter()
            .flatten()
            .collect(),
    };
    let joined = parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    (!joined.is_empty()).then(|| redact(&joined, secrets))
}

/// A JSON error answer: OAuth2's `{"error": code, "error_description"}` or Google APIs'
/// `{"error": {"status", "message"}}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Lenient<ErrorField>,
    #[serde(default)]
    error_description: Lenient<String>,
}

/// The `error` member of an [`ErrorBody`].
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ErrorField {
    /// OAuth2: the error code.
    Code(String),
    /// Google APIs: the status name and the message.
    Google {
        #[serde(default)]
        status: Lenient<String>,
        #[serde(default)]
        message: Lenient<String>,
    },
}

/// The text of the first `<tag>…</tag>` element in `xml`, entities decoded (enough for the
/// flat answers of AWS query APIs).
pub(super) fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    let raw = &xml[start..start + len];
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// `text` on one line, without `secrets` or token-like words, at most 300 characters.
fn redact(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        text = text.replace(secret, "<redacted>");
    }
    // JWTs, access keys and signatures are long runs of base64/URL-safe characters; the words
    // of an error description are not.
    let tokenish = |w: &str| {
        w.len() >= 40
            && w.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=')
            })
    };
    let words: Vec<&str> = text
        .split_whitespace()
        .map(|w| if tokenish(w) { "<redacted>" } else { w })
        .collect();
    let line = words.join(" ");
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// Reads all of a response, at most `limit` bytes.
async fn read_all(
    response: reqwest::Response,
    what: &'static str,
    limit: usize,
) -> Result<Vec<u8>, CloudError> {
    read_limited(response, limit).await.map_err(|e| match e {
        BodyError::TooLarge => CloudError::Parse {
            what,
            reason: "response too large",
        },
        BodyError::Read(source) => CloudError::Http {
            what: "read the token response",
            source,
        },
    })
}

/// A JSON answer decoded into `T`, whose fields are [`Lenient`]. On failure, the reason for
/// [`CloudError::Parse`]: `not_json` when the body is not JSON, `missing` when it is JSON of
/// another shape (an array, a string), naming the field the caller needs first.
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    not_json: &'static str,
    missing: &'static str,
) -> Result<T, &'static str> {
    let reason = |e: serde_json::Error| match e.classify() {
        serde_json::error::Category::Data => missing,
        _ => not_json,
    };
    // A derived struct would also accept an array, its fields by position: an answer is an
    // object or nothing.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(
            serde_json::from_slice::<serde::de::IgnoredAny>(body).map_or_else(reason, |_| missing)
        );
    }
    serde_json::from_slice(body).map_err(reason)
}

/// A field of a token answer that is absent when it is missing, null or of another type, so
/// that each caller can say which field it lacked.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub(super) enum Lenient<T> {
    /// The field, of the expected type.
    Value(T),
    /// Absent, null or of another type.
    Other(serde::de::IgnoredAny),
}

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Self::Other(serde::de::IgnoredAny)
    }
}

impl<T> Lenient<T> {
    /// The value, if present and of the expected type.
    pub(super) fn into_option(self) -> Option<T> {
        match self {
            Self::Value(v) => Some(v),
            Self::Other(_) => None,
        }
    }
}
