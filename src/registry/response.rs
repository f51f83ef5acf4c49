//! Outcomes read into results: a transport failure into its category with Go's text, a success
//! passed on, anything else an error whose message renders the registry's error body as
//! go-containerregistry does (`CODE: message; detail`, the detail as Go's `%v`), `Retry-After`,
//! and bodies read up to a bound.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use url::Url;

use super::error::{Error, redact_url, rustls_cause};
use super::go_text::{dial_error, go_op, go_value};
use super::retry::parse_retry_after;
use crate::body::BodyError;

/// The most of an error body read for its message.
pub(super) const MAX_ERROR_BODY: usize = 64 << 10;

/// `resp` if its status is a success, its error otherwise.
pub(super) async fn check(resp: Response, method: &Method, url: &Url) -> Result<Response, Error> {
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(status_error(resp, method, url).await)
    }
}

/// The error for an unsuccessful response, with the registry's error codes in the message.
pub(super) async fn status_error(resp: Response, method: &Method, url: &Url) -> Error {
    let status = resp.status();
    let retry_after = retry_after(resp.headers());
    let body = read_body(resp, MAX_ERROR_BODY, method, url)
        .await
        .unwrap_or_default();
    let detail = describe_error(status, &body, *method == Method::HEAD);
    error_for_status(status, method, url, detail, retry_after)
}

/// The category of an unsuccessful `status`, its message `METHOD url: detail`.
pub(super) fn error_for_status(
    status: StatusCode,
    method: &Method,
    url: &Url,
    detail: String,
    retry_after: Option<Duration>,
) -> Error {
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
pub(super) fn describe_error(status: StatusCode, body: &[u8], head: bool) -> String {
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

pub(super) fn truncate(s: &str, max: usize) -> String {
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
    resp: Response,
    limit: usize,
    method: &Method,
    url: &Url,
) -> Result<Vec<u8>, Error> {
    crate::body::read_limited(resp, limit)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => Error::protocol(format!(
                "{method} {}: response larger than {limit} bytes",
                redact_url(url)
            )),
            BodyError::Read(e) => request_error(e, method, url),
        })
}

pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
}

/// A reqwest failure as a category: TLS when rustls is among the causes, network otherwise,
/// worded as Go's HTTP client words it (`Get "https://host/v2/": dial tcp host:443: connect:
/// connection refused`), so that texts users grep for in Flux's messages match. A failure to
/// reach the endpoint at all (see `is_dead_endpoint` in `request.rs`) is rendered completely and keeps no
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
}
