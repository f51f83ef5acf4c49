//! Distinguished names as notation reads `x509.subject:` identities: RFC 4514 text (RDNs split
//! by `,` or `;`, multi-valued RDNs joined by `+`, `\` escapes of a special character or two hex
//! digits, unescaped spaces around types and values trimmed) into a map of attribute type to
//! value, with notation's rules: no `=#` (BER-encoded) values, no multi-valued RDNs, no
//! attribute twice (`S` counts as `ST`), and `C`, `ST` and `O` present.

use std::collections::BTreeMap;

/// A parsed DN: attribute type (as written, `S` read as `ST`) to value.
pub type Dn = BTreeMap<String, String>;

struct Attribute {
    kind: String,
    value: String,
}

type Buf = Vec<(char, bool)>;

/// Moves bytes of hex escapes (UTF-8) into the value as escaped characters.
fn flush(bytes: &mut Vec<u8>, buf: &mut Buf) {
    if !bytes.is_empty() {
        buf.extend(String::from_utf8_lossy(bytes).chars().map(|c| (c, true)));
        bytes.clear();
    }
}

/// The value gathered so far, unescaped spaces at both ends trimmed.
fn take(buf: &mut Buf) -> String {
    let start = buf
        .iter()
        .position(|&(c, e)| e || c != ' ')
        .unwrap_or(buf.len());
    let end = buf
        .iter()
        .rposition(|&(c, e)| e || c != ' ')
        .map_or(start, |i| i + 1);
    let s: String = buf[start..end.max(start)].iter().map(|&(c, _)| c).collect();
    buf.clear();
    s
}

/// Splits RFC 4514 text into RDNs of attributes, as go-ldap's `ParseDN` does.
fn parse_rdns(text: &str) -> Result<Vec<Vec<Attribute>>, String> {
    let mut rdns = Vec::new();
    let mut rdn: Vec<Attribute> = Vec::new();
    let mut kind: Option<String> = None;
    // The value's characters and whether each was escaped (escaped spaces are kept).
    let mut buf: Buf = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let Some(first) = chars.next() else {
                return Err("got corrupted escaped character".into());
            };
            if first.is_ascii_hexdigit() {
                let second = chars
                    .next()
                    .and_then(|c| c.to_digit(16))
                    .ok_or("failed to decode escaped character: encoding/hex: invalid byte")?;
                let high = first.to_digit(16).unwrap_or(0);
                bytes.push(u8::try_from(high * 16 + second).unwrap_or(0));
                continue;
            }
            flush(&mut bytes, &mut buf);
            buf.push((first, true));
            continue;
        }
        flush(&mut bytes, &mut buf);
        match c {
            '=' if kind.is_none() => kind = Some(take(&mut buf)),
            ',' | '+' | ';' => {
                let Some(k) = kind.take() else {
                    return Err("incomplete type, value pair".into());
                };
                rdn.push(Attribute {
                    kind: k,
                    value: take(&mut buf),
                });
                if c != '+' {
                    rdns.push(std::mem::take(&mut rdn));
                }
            }
            c => buf.push((c, false)),
        }
    }
    flush(&mut bytes, &mut buf);
    match kind {
        Some(k) => {
            rdn.push(Attribute {
                kind: k,
                value: take(&mut buf),
            });
            rdns.push(rdn);
        }
        None if rdn.is_empty() && buf.iter().all(|&(c, e)| !e && c == ' ') => {}
        None => return Err("DN ended with incomplete type, value pair".into()),
    }
    Ok(rdns)
}

/// Parses a trusted identity's DN with notation's rules.
///
/// # Errors
/// notation-go's texts (`unsupported distinguished name …`, `parsing distinguished name …
/// failed …`, multi-valued or duplicate attributes, a mandatory attribute missing).
pub fn parse(name: &str) -> Result<Dn, String> {
    if name.contains("=#") {
        return Err(format!(
            "unsupported distinguished name (DN) {}: notation does not support x509.subject \
             identities containing \"=#\"",
            super::gotext::go_quote(name)
        ));
    }
    let rdns = parse_rdns(name).map_err(|e| {
        format!(
            "parsing distinguished name (DN) {} failed with err: {e}. A valid DN must contain \
             'C', 'ST' or 'S', and 'O' RDN attributes at a minimum, and follow RFC 4514 standard",
            super::gotext::go_quote(name)
        )
    })?;
    let mut dn = Dn::new();
    for rdn in rdns {
        if rdn.len() > 1 {
            return Err(format!(
                "distinguished name (DN) {} has multi-valued RDN attributes, remove multi-valued \
                 RDN attributes as they are not supported",
                super::gotext::go_quote(name)
            ));
        }
        for a in rdn {
            let kind = if a.kind == "S" {
                "ST".to_string()
            } else {
                a.kind
            };
            if dn.get(&kind).is_some_and(|v| !v.is_empty()) {
                return Err(format!(
                    "distinguished name (DN) {} has duplicate RDN attribute for {}, DN can only \
                     have unique RDN attributes",
                    super::gotext::go_quote(name),
                    super::gotext::go_quote(&kind)
                ));
            }
            dn.insert(kind, a.value);
        }
    }
    for field in ["C", "ST", "O"] {
        if dn.get(field).is_none_or(String::is_empty) {
            return Err(format!(
                "distinguished name (DN) {} has no mandatory RDN attribute for {}, it must \
                 contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum",
                super::gotext::go_quote(name),
                super::gotext::go_quote(field)
            ));
        }
    }
    Ok(dn)
}

/// Whether every attribute of `subset` is in `of` with the same value (notation's
/// `IsSubsetDN`).
pub fn is_subset(subset: &Dn, of: &Dn) -> bool {
    subset
        .iter()
        .all(|(k, v)| of.get(k).map_or(v.is_empty(), |w| w == v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(pairs: &[(&str, &str)]) -> Dn {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn identities_parse_with_notations_rules() {
        assert_eq!(
            parse("C=US, ST=WA, O=Notary, CN=test").unwrap(),
            dn(&[("C", "US"), ("ST", "WA"), ("O", "Notary"), ("CN", "test")])
        );
        assert_eq!(
            parse(" C = US ;S=WA,O=Acme\\, Inc.,OU=\\20x\\20,CN=caf\\c3\\a9").unwrap(),
            dn(&[
                ("C", "US"),
                ("ST", "WA"),
                ("O", "Acme, Inc."),
                ("OU", " x "),
                ("CN", "café")
            ])
        );
        let e = parse("C=US, ST=WA").unwrap_err();
        assert_eq!(
            e,
            "distinguished name (DN) \"C=US, ST=WA\" has no mandatory RDN attribute for \"O\", \
             it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum"
        );
        assert!(
            parse("C=US+O=x, ST=WA")
                .unwrap_err()
                .contains("multi-valued")
        );
        assert!(
            parse("C=US, C=CA, ST=WA, O=x")
                .unwrap_err()
                .contains("duplicate RDN attribute for \"C\"")
        );
        assert!(
            parse("C=US, S=WA, ST=OR, O=x")
                .unwrap_err()
                .contains("duplicate")
        );
        assert!(parse("C=#0101, ST=WA, O=x").unwrap_err().contains("\"=#\""));
        assert!(
            parse("C=US, ST")
                .unwrap_err()
                .starts_with("parsing distinguished name (DN)")
        );
        assert!(parse("").unwrap_err().contains("mandatory"));
    }

    #[test]
    fn a_subset_needs_every_attribute_equal() {
        let leaf = dn(&[("C", "US"), ("ST", "WA"), ("O", "Notary"), ("CN", "test")]);
        assert!(is_subset(
            &dn(&[("C", "US"), ("ST", "WA"), ("O", "Notary")]),
            &leaf
        ));
        assert!(!is_subset(
            &dn(&[("C", "US"), ("ST", "WA"), ("O", "Other")]),
            &leaf
        ));
        assert!(!is_subset(
            &dn(&[("C", "US"), ("ST", "WA"), ("O", "Notary"), ("L", "x")]),
            &leaf
        ));
    }

    mod properties {
        use super::super::parse;
        use crate::mutation::{config, mutated_text};
        use proptest::prelude::*;

        const DNS: &[&str] = &["C=US, ST=WA, L=Seattle, O=Notary, CN=test\\2c\\20x+OU=a;S=b"];

        proptest! {
            #![proptest_config(config())]

            /// A mutated DN parses or is refused with a text, never a panic.
            #[test]
            fn mutated_dns_never_panic(text in mutated_text(DNS)) {
                let _ = parse(&text);
            }
        }
    }
}
