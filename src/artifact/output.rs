//! Printing results as flux prints them: `-o json` (Go's `json.MarshalIndent`, two spaces, fields
//! in struct order) and `-o yaml` (go-yaml: keys sorted, strings plain unless they would read
//! back as something else).

use clap::ValueEnum;

use super::image;

/// How a result is printed.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Indented JSON, fields in flux's order.
    Json,
    /// YAML, keys sorted, as flux prints it.
    Yaml,
}

/// A JSON object of string fields, in the given order, indented by two spaces per level as
/// Go's `json.MarshalIndent(v, "", "  ")` writes it at `level` (no trailing newline).
pub(crate) fn json_object(fields: &[(&str, &str)], level: usize) -> String {
    if fields.is_empty() {
        return "{}".to_string();
    }
    let pad = "  ".repeat(level);
    let mut s = String::from("{\n");
    for (i, (key, value)) in fields.iter().enumerate() {
        s.push_str(&pad);
        s.push_str("  ");
        image::push_string(&mut s, key);
        s.push_str(": ");
        image::push_string(&mut s, value);
        s.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
    }
    s.push_str(&pad);
    s.push('}');
    s
}

/// A YAML mapping of string fields, keys sorted as go-yaml sorts a map, each line prefixed by
/// `first` for the first key and `rest` for the others (for sequences of mappings).
pub(crate) fn yaml_mapping(fields: &[(&str, &str)], first: &str, rest: &str) -> String {
    let mut sorted: Vec<&(&str, &str)> = fields.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = String::new();
    for (i, (key, value)) in sorted.iter().enumerate() {
        s.push_str(if i == 0 { first } else { rest });
        s.push_str(&yaml_scalar(key));
        s.push_str(": ");
        s.push_str(&yaml_scalar(value));
        s.push('\n');
    }
    s
}

/// `s` as a YAML scalar the way go-yaml writes a string: plain unless it would read back as
/// something else (a bool, null, number or timestamp in YAML 1.1) or starts with an indicator.
pub(crate) fn yaml_scalar(s: &str) -> String {
    if !needs_quotes(s) {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn needs_quotes(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~", ".inf", "-.inf", "+.inf",
        ".nan",
    ];
    let Some(first) = s.chars().next() else {
        return true;
    };
    if "-?:,[]{}#&*!|>'\"%@` ".contains(first)
        && !(first == '-' && s.len() > 1 && !s.starts_with("- "))
    {
        return true;
    }
    if s.ends_with(' ') || s.contains(": ") || s.contains(" #") || s.contains('\n') {
        return true;
    }
    // YAML 1.1 spells these in lower case, Capitalized or UPPER case only.
    let lower = s.to_ascii_lowercase();
    let mut capitalized = lower.clone();
    if let Some(c) = capitalized.get_mut(..1) {
        c.make_ascii_uppercase();
    }
    if WORDS.contains(&lower.as_str())
        && (s == lower || s == capitalized || s == s.to_ascii_uppercase())
    {
        return true;
    }
    // go-yaml only tries numbers and timestamps for scalars starting with these.
    (first.is_ascii_digit() || matches!(first, '-' | '+' | '.'))
        && (is_yaml_number(s) || is_yaml_timestamp(s))
}

fn is_yaml_number(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let digits = |t: &str, radix: u32| {
        !t.is_empty()
            && t.chars().all(|c| c == '_' || c.is_digit(radix))
            && t.chars().any(|c| c != '_')
    };
    if let Some(hex) = body.strip_prefix("0x") {
        return digits(hex, 16);
    }
    if let Some(bin) = body.strip_prefix("0b") {
        return digits(bin, 2);
    }
    if let Some(oct) = body.strip_prefix("0o") {
        return digits(oct, 8);
    }
    if digits(body, 10) {
        return true;
    }
    // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac, 10),
        Some((int, frac)) => digits(int, 10) && (frac.is_empty() || digits(frac, 10)),
        None => digits(mantissa, 10),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => digits(e.strip_prefix(['-', '+']).unwrap_or(e), 10),
    };
    mantissa_ok && exponent_ok
}

fn is_yaml_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8
        && b.iter().take(4).all(u8::is_ascii_digit)
        && b.get(4) == Some(&b'-')
        && b.get(5).is_some_and(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_tags_are_quoted_where_flux_quotes_them() {
        // What `flux push artifact -o yaml` printed for these tags.
        let quoted = [
            "1.0",
            "yes",
            "y",
            "on",
            "1e3",
            "2024-01-01",
            "0x1F",
            "1_000",
            ".inf",
            "012",
            "0o17",
            "0b11",
            "NULL",
            "1",
            "-1",
            ".5",
        ];
        let plain = [
            "6.1.4",
            "-x",
            "1.0.0-rc.1",
            "_a",
            "v1",
            "latest",
            "_1",
            "yEs",
        ];
        for t in quoted {
            assert_eq!(yaml_scalar(t), format!("\"{t}\""), "{t}");
        }
        for t in plain {
            assert_eq!(yaml_scalar(t), t, "{t}");
        }
    }

    #[test]
    fn objects_are_indented_as_go_marshal_indent_writes_them() {
        assert_eq!(json_object(&[], 0), "{}");
        assert_eq!(
            json_object(&[("a", "x<y"), ("b", "")], 1),
            "{\n    \"a\": \"x\\u003cy\",\n    \"b\": \"\"\n  }"
        );
        assert_eq!(
            yaml_mapping(&[("tag", "1.0"), ("digest", "sha256:0")], "- ", "  "),
            "- digest: sha256:0\n  tag: \"1.0\"\n"
        );
    }
}
