//! Texts as Go prints them, for messages users grep for in Flux's: `url.Error`'s operation
//! (`Get`), the dialer's errors (`dial tcp HOST:PORT: connect: connection refused`, `dial tcp:
//! lookup HOST: no such host`) and `fmt`'s `%v` of decoded JSON (`map[Tag:9.9.9]`).

use reqwest::Method;
use serde_json::Value;
use url::Url;

/// Go's `url.Error` operation: the method with only its first letter upper-case.
pub(super) fn go_op(method: &Method) -> String {
    let m = method.as_str();
    let mut out = m.get(..1).unwrap_or("").to_string();
    out.push_str(&m.get(1..).unwrap_or("").to_ascii_lowercase());
    out
}

/// A connect-phase failure as Go's dialer reports it: `dial tcp HOST:PORT: connect: connection
/// refused`, `dial tcp: lookup HOST: no such host`, `dial tcp HOST:PORT: i/o timeout`. Go names
/// the resolved address and, for DNS, the resolver (`lookup HOST on 10.96.0.10:53`); we name
/// the URL's host and leave the resolver out, since getaddrinfo does not tell which one failed.
pub(super) fn dial_error(e: &reqwest::Error, url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    let addr = format!("{host}:{}", url.port_or_known_default().unwrap_or(0));
    let mut dns = false;
    let mut io_error: Option<(std::io::ErrorKind, String)> = None;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if text == "dns error" || text.contains("failed to lookup address") {
            dns = true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io_error.is_none() {
                io_error = Some((io.kind(), io.to_string()));
            }
            if let Some(inner) = io.get_ref() {
                if inner.to_string().contains("failed to lookup address") {
                    dns = true;
                }
                cur = Some(inner);
                continue;
            }
        }
        cur = err.source();
    }
    if dns {
        let why = io_error.map(|(_, text)| text).unwrap_or_default();
        let why = if why.is_empty()
            || why.contains("not known")
            || why.contains("No address associated")
            || why.contains("no such host")
        {
            "no such host".to_string()
        } else {
            go_text(why.trim_start_matches("failed to lookup address information: "))
        };
        return format!("dial tcp: lookup {host}: {why}");
    }
    if e.is_timeout() {
        return format!("dial tcp {addr}: i/o timeout");
    }
    use std::io::ErrorKind as K;
    let why = match io_error {
        Some((K::ConnectionRefused, _)) => "connection refused".to_string(),
        Some((K::HostUnreachable, _)) => "no route to host".to_string(),
        Some((K::NetworkUnreachable, _)) => "network is unreachable".to_string(),
        Some((K::ConnectionReset, _)) => "connection reset by peer".to_string(),
        Some((K::TimedOut, _)) => return format!("dial tcp {addr}: i/o timeout"),
        Some((_, text)) => go_text(&text),
        None => "connection failed".to_string(),
    };
    format!("dial tcp {addr}: connect: {why}")
}

/// An OS error text as Go prints it: lower-case, without Rust's ` (os error N)` suffix.
fn go_text(text: &str) -> String {
    let text = match text.rfind(" (os error ") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = text.to_string();
    if let Some(first) = out.get(..1) {
        let lower = first.to_ascii_lowercase();
        out.replace_range(..1, &lower);
    }
    out
}

/// A JSON value as Go's `fmt` prints the `any` it decodes to with `%v`: strings bare, maps as
/// `map[k:v ...]` with sorted keys, arrays as `[a b]`, null inside them as `<nil>`, numbers as
/// `float64` (`%g` with the shortest representation: `42`, `1.5`, `1e+06`).
pub(super) fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
    }
}

/// A `float64` as Go's `%v` prints it (`%g`, shortest digits): exponent form (`1e+06`,
/// `1.5e-05`) when the decimal exponent is below -4 or at least 6, plain decimal otherwise.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    // Rust's `{:e}` and `{}` give the shortest round-trip digits, as Go's shortest mode does.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if f != 0.0 && !(-4..6).contains(&exp) {
        return go_exponent(mantissa, exp);
    }
    format!("{f}")
}

fn go_exponent(mantissa: &str, exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_ops_and_os_texts_read_as_go_prints_them() {
        assert_eq!(go_op(&Method::GET), "Get");
        assert_eq!(go_op(&Method::HEAD), "Head");
        assert_eq!(go_op(&Method::POST), "Post");
        assert_eq!(
            go_text("Connection refused (os error 111)"),
            "connection refused"
        );
    }

    #[test]
    fn floats_print_as_gos_percent_v() {
        for (f, go) in [
            (42.0, "42"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (1e100, "1e+100"),
        ] {
            assert_eq!(go_float(f), go, "{f}");
        }
    }
}
