//! `trustpolicy.json` decoded as Go's `encoding/json` decodes it into notation-go's
//! `trustpolicy.Document`, with Go's error texts: the syntax of the whole input is checked
//! first (Go's scanner messages, e.g. `unexpected end of JSON input`,
//! `invalid character '\n' in string literal`), then the values are matched to the document's
//! fields (keys matched case-insensitively, `null` leaves a field empty, unknown keys ignored,
//! a value of the wrong JSON type is `json: cannot unmarshal <type> into Go struct field …`).
//!
//! One difference: when several values have the wrong type, Go reports the first in document
//! order; this reports the first in key order.

use std::collections::BTreeMap;

use serde_json::Value;

use super::gotext::go_quote_char;
use super::policy::{Document, SignatureVerification, Statement};

/// Decodes `data` as Go decodes it into a `trustpolicy.Document`.
///
/// # Errors
/// Go's error text: a syntax error, or the first value of the wrong type.
pub fn decode_document(data: &[u8]) -> Result<Document, String> {
    check_syntax(data)?;
    let value: Value = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    let mut doc = Document::default();
    let mut first_error = None;
    document(&value, &mut doc, &mut first_error);
    match first_error {
        Some(e) => Err(e),
        None => Ok(doc),
    }
}

/// The JSON type name Go's `UnmarshalTypeError` prints.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(err: &mut Option<String>, v: &Value, strukt: &str, field: &str, go_type: &str) {
    if err.is_none() {
        *err = Some(format!(
            "json: cannot unmarshal {} into Go struct field {strukt}.{field} of type {go_type}",
            json_type(v)
        ));
    }
}

/// The value of the key of `obj` Go would store in field `name`: an exact match, else the
/// case-insensitive one.
fn field<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .next_back()
    })
}

fn string_into(
    v: Option<&Value>,
    out: &mut String,
    err: &mut Option<String>,
    at: (&str, &str),
    go_type: &str,
) {
    match v {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => *out = s.clone(),
        Some(other) => type_error(err, other, at.0, at.1, go_type),
    }
}

fn strings_into(
    v: Option<&Value>,
    out: &mut Vec<String>,
    err: &mut Option<String>,
    at: (&str, &str),
) {
    match v {
        None => {}
        Some(Value::Null) => out.clear(),
        Some(Value::Array(items)) => {
            *out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    Value::Null => out.push(String::new()),
                    other => {
                        type_error(err, other, at.0, at.1, "string");
                        out.push(String::new());
                    }
                }
            }
        }
        Some(other) => type_error(err, other, at.0, at.1, "[]string"),
    }
}

fn document(v: &Value, doc: &mut Document, err: &mut Option<String>) {
    let obj = match v {
        Value::Null => return,
        Value::Object(o) => o,
        other => {
            if err.is_none() {
                *err = Some(format!(
                    "json: cannot unmarshal {} into Go value of type trustpolicy.Document",
                    json_type(other)
                ));
            }
            return;
        }
    };
    string_into(
        field(obj, "version"),
        &mut doc.version,
        err,
        ("Document", "version"),
        "string",
    );
    match field(obj, "trustPolicies") {
        None => {}
        Some(Value::Null) => doc.trust_policies.clear(),
        Some(Value::Array(items)) => {
            doc.trust_policies = items
                .iter()
                .map(|item| {
                    let mut s = Statement::default();
                    statement(item, &mut s, err);
                    s
                })
                .collect();
        }
        Some(other) => type_error(
            err,
            other,
            "Document",
            "trustPolicies",
            "[]trustpolicy.TrustPolicy",
        ),
    }
}

fn statement(v: &Value, s: &mut Statement, err: &mut Option<String>) {
    let obj = match v {
        Value::Null => return,
        Value::Object(o) => o,
        other => {
            type_error(
                err,
                other,
                "Document",
                "trustPolicies",
                "trustpolicy.TrustPolicy",
            );
            return;
        }
    };
    let at = |f: &'static str| ("TrustPolicy", f);
    string_into(
        field(obj, "name"),
        &mut s.name,
        err,
        at("trustPolicies.name"),
        "string",
    );
    strings_into(
        field(obj, "registryScopes"),
        &mut s.registry_scopes,
        err,
        at("trustPolicies.registryScopes"),
    );
    match field(obj, "signatureVerification") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => signature_verification(o, &mut s.signature_verification, err),
        Some(other) => type_error(
            err,
            other,
            "TrustPolicy",
            "trustPolicies.signatureVerification",
            "trustpolicy.SignatureVerification",
        ),
    }
    strings_into(
        field(obj, "trustStores"),
        &mut s.trust_stores,
        err,
        at("trustPolicies.trustStores"),
    );
    strings_into(
        field(obj, "trustedIdentities"),
        &mut s.trusted_identities,
        err,
        at("trustPolicies.trustedIdentities"),
    );
}

fn signature_verification(
    obj: &serde_json::Map<String, Value>,
    sv: &mut SignatureVerification,
    err: &mut Option<String>,
) {
    const S: &str = "SignatureVerification";
    string_into(
        field(obj, "level"),
        &mut sv.level,
        err,
        (S, "trustPolicies.signatureVerification.level"),
        "string",
    );
    match field(obj, "override") {
        None => {}
        Some(Value::Null) => sv.override_.clear(),
        Some(Value::Object(o)) => {
            let mut map = BTreeMap::new();
            for (k, v) in o {
                match v {
                    Value::String(s) => {
                        map.insert(k.clone(), s.clone());
                    }
                    Value::Null => {
                        map.insert(k.clone(), String::new());
                    }
                    other => type_error(
                        err,
                        other,
                        S,
                        &format!("trustPolicies.signatureVerification.override.{k}"),
                        "trustpolicy.ValidationAction",
                    ),
                }
            }
            sv.override_ = map;
        }
        Some(other) => type_error(
            err,
            other,
            S,
            "trustPolicies.signatureVerification.override",
            "map[trustpolicy.ValidationType]trustpolicy.ValidationAction",
        ),
    }
    string_into(
        field(obj, "verifyTimestamp"),
        &mut sv.verify_timestamp,
        err,
        (S, "trustPolicies.signatureVerification.verifyTimestamp"),
        "trustpolicy.TimestampOption",
    );
}

// ---------------------------------------------------------------------------------------------
// Go's JSON scanner, for its syntax error texts.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    ObjectKey,
    ObjectValue,
    Array,
}

struct Scanner<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Ctx>,
}

/// The most nesting accepted (Go's limit is 10000).
const MAX_DEPTH: usize = 10_000;

/// Checks `data` as Go's `json.Valid` scanner does, returning its error text.
///
/// # Errors
/// Go's text for the first syntax error.
pub fn check_syntax(data: &[u8]) -> Result<(), String> {
    let mut s = Scanner {
        data,
        pos: 0,
        stack: Vec::new(),
    };
    s.value("looking for beginning of value")?;
    s.skip_space();
    if s.pos < data.len() {
        return Err(invalid(data[s.pos], "after top-level value"));
    }
    Ok(())
}

fn invalid(c: u8, context: &str) -> String {
    format!("invalid character {} {context}", go_quote_char(c))
}

const EOF: &str = "unexpected end of JSON input";

impl Scanner<'_> {
    fn skip_space(&mut self) {
        while self.pos < self.data.len()
            && matches!(self.data[self.pos], b' ' | b'\t' | b'\r' | b'\n')
        {
            self.pos += 1;
        }
    }

    fn next(&mut self) -> Result<u8, String> {
        let c = *self.data.get(self.pos).ok_or_else(|| EOF.to_string())?;
        self.pos += 1;
        Ok(c)
    }

    /// One value, iteratively (objects and arrays push a context instead of recursing).
    fn value(&mut self, first_context: &str) -> Result<(), String> {
        let mut context = first_context.to_string();
        loop {
            self.skip_space();
            let c = self.next()?;
            match c {
                b'{' => {
                    if self.stack.len() >= MAX_DEPTH {
                        return Err("exceeded max depth".into());
                    }
                    self.skip_space();
                    if self.data.get(self.pos) == Some(&b'}') {
                        self.pos += 1;
                    } else {
                        self.stack.push(Ctx::ObjectKey);
                        self.key()?;
                        context = "looking for beginning of value".into();
                        continue;
                    }
                }
                b'[' => {
                    if self.stack.len() >= MAX_DEPTH {
                        return Err("exceeded max depth".into());
                    }
                    self.skip_space();
                    if self.data.get(self.pos) == Some(&b']') {
                        self.pos += 1;
                    } else {
                        self.stack.push(Ctx::Array);
                        context = "looking for beginning of value".into();
                        continue;
                    }
                }
                b'"' => self.string()?,
                b'-' | b'0'..=b'9' => self.number(c)?,
                b't' => self.literal(b"rue", "true")?,
                b'f' => self.literal(b"alse", "false")?,
                b'n' => self.literal(b"ull", "null")?,
                other => return Err(invalid(other, &context)),
            }
            // A value ended: close containers as far as they end here.
            loop {
                let Some(top) = self.stack.last().copied() else {
                    return Ok(());
                };
                self.skip_space();
                let c = self.next()?;
                match (top, c) {
                    (Ctx::ObjectValue, b',') => {
                        if let Some(t) = self.stack.last_mut() {
                            *t = Ctx::ObjectKey;
                        }
                        self.skip_space();
                        self.key()?;
                        context = "looking for beginning of value".into();
                        break;
                    }
                    (Ctx::ObjectValue, b'}') | (Ctx::Array, b']') => {
                        self.stack.pop();
                    }
                    (Ctx::Array, b',') => {
                        context = "looking for beginning of value".into();
                        break;
                    }
                    (Ctx::ObjectValue, other) => {
                        return Err(invalid(other, "after object key:value pair"));
                    }
                    (Ctx::Array, other) => return Err(invalid(other, "after array element")),
                    (Ctx::ObjectKey, other) => return Err(invalid(other, "after object key")),
                }
            }
        }
    }

    /// An object key and its colon; the context becomes the value's.
    fn key(&mut self) -> Result<(), String> {
        self.skip_space();
        let c = self.next()?;
        if c != b'"' {
            return Err(invalid(c, "looking for beginning of object key string"));
        }
        self.string()?;
        self.skip_space();
        let c = self.next()?;
        if c != b':' {
            return Err(invalid(c, "after object key"));
        }
        if let Some(t) = self.stack.last_mut() {
            *t = Ctx::ObjectValue;
        }
        Ok(())
    }

    fn string(&mut self) -> Result<(), String> {
        loop {
            let c = self.next()?;
            match c {
                b'"' => return Ok(()),
                b'\\' => {
                    let e = self.next()?;
                    match e {
                        b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => {}
                        b'u' => {
                            for _ in 0..4 {
                                let h = self.next()?;
                                if !h.is_ascii_hexdigit() {
                                    return Err(invalid(h, "in \\u hexadecimal character escape"));
                                }
                            }
                        }
                        other => return Err(invalid(other, "in string escape code")),
                    }
                }
                c if c < 0x20 => return Err(invalid(c, "in string literal")),
                _ => {}
            }
        }
    }

    fn number(&mut self, first: u8) -> Result<(), String> {
        let mut c = first;
        if c == b'-' {
            c = self.next()?;
            if !c.is_ascii_digit() {
                return Err(invalid(c, "in numeric literal"));
            }
        }
        if c != b'0' {
            self.digits();
        }
        if self.data.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            let d = self.next()?;
            if !d.is_ascii_digit() {
                return Err(invalid(d, "after decimal point in numeric literal"));
            }
            self.digits();
        }
        if matches!(self.data.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            let mut d = self.next()?;
            if d == b'+' || d == b'-' {
                d = self.next()?;
            }
            if !d.is_ascii_digit() {
                return Err(invalid(d, "in exponent of numeric literal"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.data.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, rest: &[u8], word: &str) -> Result<(), String> {
        for &want in rest {
            let c = self.next()?;
            if c != want {
                return Err(invalid(
                    c,
                    &format!("in literal {word} (expecting {})", go_quote_char(want)),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_read_as_go_prints_them() {
        for (input, text) in [
            ("", "unexpected end of JSON input"),
            ("{", "unexpected end of JSON input"),
            ("{\"version\": \"1.0", "unexpected end of JSON input"),
            (
                "{\"version\": \"1.\n0\"}",
                "invalid character '\\n' in string literal",
            ),
            ("x", "invalid character 'x' looking for beginning of value"),
            ("{\"a\" 1}", "invalid character '1' after object key"),
            (
                "{\"a\":1 \"b\"}",
                "invalid character '\"' after object key:value pair",
            ),
            ("[1 2]", "invalid character '2' after array element"),
            (
                "{1:2}",
                "invalid character '1' looking for beginning of object key string",
            ),
            ("{} x", "invalid character 'x' after top-level value"),
            (
                "tru ",
                "invalid character ' ' in literal true (expecting 'e')",
            ),
            ("\"\\x\"", "invalid character 'x' in string escape code"),
            ("-a", "invalid character 'a' in numeric literal"),
            (
                "[1,]",
                "invalid character ']' looking for beginning of value",
            ),
            (
                "'a'",
                "invalid character '\\'' looking for beginning of value",
            ),
        ] {
            assert_eq!(
                check_syntax(input.as_bytes()),
                Err(text.to_string()),
                "{input:?}"
            );
        }
        for ok in [
            "{}",
            "[]",
            "null",
            " {\"a\": [1, -2.5e3, true, false, null, {}]} ",
            "\"\\u00e9\"",
        ] {
            assert_eq!(check_syntax(ok.as_bytes()), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn values_of_the_wrong_type_read_as_go_prints_them() {
        for (input, text) in [
            (
                r#"{"version": 1}"#,
                "json: cannot unmarshal number into Go struct field Document.version of type string",
            ),
            (
                r#"{"trustPolicies": {}}"#,
                "json: cannot unmarshal object into Go struct field Document.trustPolicies of type []trustpolicy.TrustPolicy",
            ),
            (
                r#"{"trustPolicies": [{"registryScopes": "*"}]}"#,
                "json: cannot unmarshal string into Go struct field TrustPolicy.trustPolicies.registryScopes of type []string",
            ),
            (
                r#"{"trustPolicies": [{"signatureVerification": {"level": true}}]}"#,
                "json: cannot unmarshal bool into Go struct field SignatureVerification.trustPolicies.signatureVerification.level of type string",
            ),
            (
                "[]",
                "json: cannot unmarshal array into Go value of type trustpolicy.Document",
            ),
        ] {
            assert_eq!(
                decode_document(input.as_bytes()).unwrap_err(),
                text,
                "{input}"
            );
        }
    }

    #[test]
    fn keys_match_case_insensitively_and_null_leaves_fields_empty() {
        let doc = decode_document(
            br#"{"Version": "1.0", "TRUSTPOLICIES": [{"name": "a", "registryScopes": null,
                "signatureverification": {"LEVEL": "strict", "override": {"expiry": "log"}},
                "trustStores": ["ca:x"], "unknown": 7}], "extra": {}}"#,
        )
        .unwrap();
        assert_eq!(doc.version, "1.0");
        let s = &doc.trust_policies[0];
        assert_eq!(s.name, "a");
        assert!(s.registry_scopes.is_empty());
        assert_eq!(s.signature_verification.level, "strict");
        assert_eq!(s.signature_verification.override_["expiry"], "log");
        assert_eq!(s.trust_stores, ["ca:x"]);
        assert_eq!(decode_document(b"null").unwrap(), Document::default());
    }

    mod properties {
        use super::super::decode_document;
        use crate::mutation::{config, mutated};
        use proptest::prelude::*;

        const POLICIES: &[&str] = &[
            r#"{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],"signatureVerification":{"level":"strict","override":{"revocation":"skip"}},"trustStores":["ca:flux"],"trustedIdentities":["x509.subject: C=US, ST=WA, O=Notary"]}]}"#,
        ];

        proptest! {
            #![proptest_config(config())]

            /// A mutated trust policy document is decoded or refused with a text, never a panic.
            #[test]
            fn mutated_policies_never_panic(bytes in mutated(POLICIES)) {
                let _ = decode_document(&bytes);
            }
        }
    }
}
