//! Values printed as notation-go prints them with Go's `fmt`: `%q` of strings, characters and
//! maps, and `time.RFC1123Z`.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

/// Go's `strconv.Quote`: double quotes, with `\`, `"` and non-printable characters escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape_into(&mut out, c, '"');
    }
    out.push('"');
    out
}

fn escape_into(out: &mut String, c: char, quote: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if c.is_control() => {
            if (c as u32) < 0x10000 {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push_str(&format!("\\U{:08x}", c as u32));
            }
        }
        c => out.push(c),
    }
}

/// How Go's JSON scanner quotes a byte in its errors (`'x'`, `'\n'`, `'\''`, `'"'`).
pub fn go_quote_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".into(),
        b'"' => "'\"'".into(),
        c if c >= 0x80 => format!("'\\x{c:02x}'"),
        c => {
            let mut out = String::from("'");
            escape_into(&mut out, char::from(c), '\'');
            out.push('\'');
            out
        }
    }
}

/// Go's `%q` of a `[]map[string]string`: `[map["C":"US" "O":"Notary"]]`.
pub fn go_quote_maps(maps: &[BTreeMap<String, String>]) -> String {
    let items: Vec<String> = maps
        .iter()
        .map(|m| {
            let pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                .collect();
            format!("map[{}]", pairs.join(" "))
        })
        .collect();
    format!("[{}]", items.join(" "))
}

/// Go's `time.RFC1123Z` of an instant in UTC: `Mon, 02 Jan 2006 15:04:05 +0000`.
pub fn rfc1123z(t: Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// Go's `time.Time.String()` of an instant in UTC: `2006-01-02 15:04:05 +0000 UTC`.
pub fn go_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_go() {
        assert_eq!(go_quote("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(go_quote("é\u{1}"), "\"é\\x01\"");
        assert_eq!(go_quote_char(b'\n'), "'\\n'");
        assert_eq!(go_quote_char(b'x'), "'x'");
        assert_eq!(go_quote_char(b'\''), "'\\''");
        let m = BTreeMap::from([
            ("ST".to_string(), "WA".to_string()),
            ("C".into(), "US".into()),
        ]);
        assert_eq!(go_quote_maps(&[m]), r#"[map["C":"US" "ST":"WA"]]"#);
    }

    #[test]
    fn times_follow_go_layouts() {
        let t: Timestamp = "2026-12-04T18:38:05Z".parse().unwrap();
        assert_eq!(rfc1123z(t), "Fri, 04 Dec 2026 18:38:05 +0000");
        assert_eq!(go_time(t), "2026-12-04 18:38:05 +0000 UTC");
    }
}
