//! Go (RE2) regular expressions for `semverFilter`, translated to `regex` crate syntax with Go's
//! meaning and Go's error messages (see the parent module's "Go regular expressions").

use std::fmt::Write as _;

use regex::Regex;

use super::FilterError;

/// Go's `regexp/syntax` error codes used here.
mod go_code {
    pub const INVALID_CHAR_RANGE: &str = "invalid character class range";
    pub const INVALID_ESCAPE: &str = "invalid escape sequence";
    pub const INVALID_NAMED_CAPTURE: &str = "invalid named capture";
    pub const INVALID_PERL_OP: &str = "invalid or unsupported Perl syntax";
    pub const INVALID_REPEAT_OP: &str = "invalid nested repetition operator";
    pub const INVALID_REPEAT_SIZE: &str = "invalid repeat count";
    pub const MISSING_BRACKET: &str = "missing closing ]";
    pub const MISSING_PAREN: &str = "missing closing )";
    pub const MISSING_REPEAT_ARGUMENT: &str = "missing argument to repetition operator";
    pub const TRAILING_BACKSLASH: &str = "trailing backslash at end of expression";
    pub const UNEXPECTED_PAREN: &str = "unexpected )";
    pub const NESTING_DEPTH: &str = "expression nests too deeply";
    pub const LARGE: &str = "expression too large";
}

/// Go's limit on counted repetitions, alone and multiplied along nested repetitions.
const GO_MAX_REPEAT: u64 = 1000;

/// Compiles a Go regular expression: translation to `regex` crate syntax, then compilation.
///
/// The result is a byte-oriented regex so that Go's ASCII `\B` can be expressed; it still reads
/// its input as UTF-8 wherever Go does.
pub fn compile_go_regexp(pattern: &str) -> Result<regex::bytes::Regex, FilterError> {
    let translated = GoTranslator::new(pattern).run()?;
    regex::bytes::RegexBuilder::new(&translated)
        .size_limit(64 << 20)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => FilterError::new(go_code::LARGE, pattern),
            other => {
                let message = other.to_string();
                if message.contains("nest") {
                    FilterError::new(go_code::NESTING_DEPTH, pattern)
                } else {
                    // Only reachable through the differences listed in the module docs.
                    let last = message.lines().last().unwrap_or_default();
                    FilterError::new(last.trim().trim_start_matches("error: "), pattern)
                }
            }
        })
}

/// A single pass over a Go pattern in the order Go's parser reads it, producing a `regex` crate
/// pattern and failing where Go fails, with Go's error fragment.
///
/// Literals are re-emitted as themselves (ASCII letters and digits) or as `\x{…}`, so nothing
/// Go reads as a literal can take a special meaning in Rust (`{`, `&&` in classes, `#`, …).
struct GoTranslator<'a> {
    src: &'a str,
    pos: usize,
    out: String,
    /// Open groups, innermost last; the first is the whole pattern. Each holds the largest
    /// product of counted repetitions nested in the group so far (Go's `repeatIsValid`).
    groups: Vec<u64>,
    /// The last item of the current concatenation and its nested repetition product, or `None`
    /// right after `(`, `|` or at the start, where Go has nothing to repeat.
    last_item: Option<u64>,
    /// Where the previous token began, if it was a repetition operator.
    last_repeat: Option<usize>,
}

impl<'a> GoTranslator<'a> {
    fn new(src: &'a str) -> Self {
        Self {
            src,
            pos: 0,
            out: String::with_capacity(src.len() * 2),
            groups: vec![1],
            last_item: None,
            last_repeat: None,
        }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or_default()
    }

    fn error(&self, code: &str, from: usize, to: usize) -> FilterError {
        FilterError::new(code, self.src.get(from..to).unwrap_or_default())
    }

    /// Closes the current item into its group's maximum.
    fn flush_item(&mut self) {
        if let (Some(w), Some(group)) = (self.last_item.take(), self.groups.last_mut()) {
            *group = (*group).max(w);
        }
    }

    fn item(&mut self, weight: u64) {
        self.flush_item();
        self.last_item = Some(weight);
    }

    fn literal(&mut self, c: u32) {
        self.item(1);
        push_literal(&mut self.out, c);
    }

    fn run(mut self) -> Result<String, FilterError> {
        while let Some(c) = self.rest().chars().next() {
            let start = self.pos;
            let mut repeat = None;
            match c {
                '(' if self.rest().starts_with("(?") => self.perl_group()?,
                '(' => {
                    self.flush_item();
                    self.groups.push(1);
                    self.out.push('(');
                    self.pos += 1;
                }
                '|' => {
                    self.flush_item();
                    self.out.push('|');
                    self.pos += 1;
                }
                ')' => {
                    if self.groups.len() < 2 {
                        return Err(FilterError::new(go_code::UNEXPECTED_PAREN, self.src));
                    }
                    self.flush_item();
                    let inner = self.groups.pop().unwrap_or(1);
                    self.item(inner);
                    self.out.push(')');
                    self.pos += 1;
                }
                '^' | '$' | '.' => {
                    self.item(1);
                    self.out.push(c);
                    self.pos += 1;
                }
                '[' => self.class()?,
                '*' | '+' | '?' => {
                    let mut end = start + 1;
                    if self.src.as_bytes().get(end) == Some(&b'?') {
                        end += 1;
                    }
                    self.repeat(start, end, None)?;
                    repeat = Some(start);
                }
                '{' => match go_parse_repeat(self.rest()) {
                    None => {
                        self.literal(u32::from('{'));
                        self.pos += 1;
                    }
                    Some((min, max, len)) => {
                        let brace_end = start + len;
                        if !(0..=1000).contains(&min) || max > 1000 || (max >= 0 && min > max) {
                            return Err(self.error(go_code::INVALID_REPEAT_SIZE, start, brace_end));
                        }
                        let mut end = brace_end;
                        if self.src.as_bytes().get(end) == Some(&b'?') {
                            end += 1;
                        }
                        self.repeat(start, end, Some((min, max)))?;
                        repeat = Some(start);
                    }
                },
                '\\' => self.escape()?,
                _ => {
                    self.literal(u32::from(c));
                    self.pos += c.len_utf8();
                }
            }
            self.last_repeat = repeat;
        }
        if self.groups.len() > 1 {
            return Err(FilterError::new(go_code::MISSING_PAREN, self.src));
        }
        Ok(self.out)
    }

    /// A repetition operator spanning `start..end` (non-greedy `?` included).
    fn repeat(
        &mut self,
        start: usize,
        end: usize,
        counted: Option<(i64, i64)>,
    ) -> Result<(), FilterError> {
        if let Some(previous) = self.last_repeat {
            return Err(self.error(go_code::INVALID_REPEAT_OP, previous, end));
        }
        let Some(weight) = self.last_item else {
            return Err(self.error(go_code::MISSING_REPEAT_ARGUMENT, start, end));
        };
        if let Some((min, max)) = counted {
            let weight = if max == 0 {
                // Go does not look inside `{0}`.
                1
            } else {
                let factor = if max < 0 { min } else { max };
                u64::try_from(factor.max(1))
                    .unwrap_or(u64::MAX)
                    .saturating_mul(weight)
            };
            if (min >= 2 || max >= 2) && weight > GO_MAX_REPEAT {
                return Err(self.error(go_code::INVALID_REPEAT_SIZE, start, end));
            }
            self.last_item = Some(weight);
        }
        self.out
            .push_str(self.src.get(start..end).unwrap_or_default());
        self.pos = end;
        Ok(())
    }

    /// `(?P<name>`, `(?<name>`, `(?flags)` or `(?flags:`.
    fn perl_group(&mut self) -> Result<(), FilterError> {
        let s = self.rest();
        let b = s.as_bytes();
        let named_p = b.len() > 4 && b[2] == b'P' && b[3] == b'<';
        let named = b.len() > 3 && b[2] == b'<';
        if named_p || named {
            let Some(end) = s.find('>') else {
                return Err(FilterError::new(go_code::INVALID_NAMED_CAPTURE, s));
            };
            let name = s.get(if named { 3 } else { 4 }..end).unwrap_or_default();
            if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
                return Err(self.error(
                    go_code::INVALID_NAMED_CAPTURE,
                    self.pos,
                    self.pos + end + 1,
                ));
            }
            // Names only matter for extraction, which a filter never does.
            self.flush_item();
            self.groups.push(1);
            self.out.push('(');
            self.pos += end + 1;
            return Ok(());
        }

        let mut on = String::new();
        let mut off = String::new();
        let mut negated = false;
        let mut saw_flag = false;
        let mut t = 2;
        while let Some(c) = s.get(t..).and_then(|r| r.chars().next()) {
            t += c.len_utf8();
            match c {
                'i' | 'm' | 's' | 'U' => {
                    let set = if negated { &mut off } else { &mut on };
                    if !set.contains(c) {
                        set.push(c);
                    }
                    saw_flag = true;
                }
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                }
                ':' | ')' if !negated || saw_flag => {
                    on.retain(|f| !off.contains(f));
                    let flags = if off.is_empty() {
                        on
                    } else {
                        format!("{on}-{off}")
                    };
                    if c == ':' {
                        self.flush_item();
                        self.groups.push(1);
                        let _ = write!(self.out, "(?{flags}:");
                    } else if !flags.is_empty() {
                        let _ = write!(self.out, "(?{flags})");
                    }
                    self.pos += t;
                    return Ok(());
                }
                _ => break,
            }
        }
        Err(self.error(go_code::INVALID_PERL_OP, self.pos, self.pos + t))
    }

    /// A backslash outside a class.
    fn escape(&mut self) -> Result<(), FilterError> {
        let s = self.rest();
        let Some(next) = s.get(1..).and_then(|r| r.chars().next()) else {
            return Err(FilterError::new(go_code::TRAILING_BACKSLASH, ""));
        };
        match next {
            'A' | 'z' => {
                self.item(1);
                self.out.push('\\');
                self.out.push(next);
                self.pos += 2;
            }
            'b' | 'B' => {
                // Go's word boundaries are ASCII ones.
                self.item(1);
                self.out.push_str(if next == 'b' {
                    r"(?-u:\b)"
                } else {
                    r"(?-u:\B)"
                });
                self.pos += 2;
            }
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                self.item(1);
                self.out.push_str(perl_class(next));
                self.pos += 2;
            }
            'C' => return Err(self.error(go_code::INVALID_ESCAPE, self.pos, self.pos + 2)),
            'Q' => {
                let body = s.get(2..).unwrap_or_default();
                let (literal, consumed) = match body.find(r"\E") {
                    Some(end) => (body.get(..end).unwrap_or_default(), end + 2),
                    None => (body, body.len()),
                };
                for c in literal.chars() {
                    self.literal(u32::from(c));
                }
                self.pos += 2 + consumed;
            }
            'p' | 'P' => {
                let (len, class) = unicode_class(s)
                    .map_err(|fragment| FilterError::new(go_code::INVALID_CHAR_RANGE, fragment))?;
                self.item(1);
                self.out.push_str(&class);
                self.pos += len;
            }
            _ => {
                let (c, len) = go_escape(s)?;
                self.literal(c);
                self.pos += len;
            }
        }
        Ok(())
    }

    /// A bracketed class, Go rules: `]` first is literal, `[` is literal unless it opens
    /// `[:name:]`, a range's ends must be ordered.
    fn class(&mut self) -> Result<(), FilterError> {
        let whole = self.pos;
        let missing = |this: &Self| {
            FilterError::new(
                go_code::MISSING_BRACKET,
                this.src.get(whole..).unwrap_or_default(),
            )
        };
        self.item(1);
        self.out.push('[');
        self.pos += 1;
        if self.rest().starts_with('^') {
            self.out.push('^');
            self.pos += 1;
        }
        let mut first = true;
        loop {
            let t = self.rest();
            if t.starts_with(']') && !first {
                self.pos += 1;
                break;
            }
            first = false;
            if t.len() > 2
                && t.starts_with("[:")
                && let Some(end) = t.get(2..).and_then(|r| r.find(":]"))
            {
                let name = t.get(..end + 4).unwrap_or_default();
                if !POSIX_CLASSES.contains(&name) {
                    return Err(FilterError::new(go_code::INVALID_CHAR_RANGE, name));
                }
                self.out.push_str(name);
                self.pos += name.len();
                continue;
            }
            let b = t.as_bytes();
            if b.len() > 2 && b[0] == b'\\' && (b[1] == b'p' || b[1] == b'P') {
                let (len, class) = unicode_class(t)
                    .map_err(|fragment| FilterError::new(go_code::INVALID_CHAR_RANGE, fragment))?;
                self.out.push_str(&class);
                self.pos += len;
                continue;
            }
            if b.len() >= 2 && b[0] == b'\\' && b"dDsSwW".contains(&b[1]) {
                // A nested class: Rust unites it with the enclosing one.
                self.out.push_str(perl_class(char::from(b[1])));
                self.pos += 2;
                continue;
            }
            let range_start = self.pos;
            let lo = self.class_char().ok_or_else(|| missing(self))??;
            let t = self.rest().as_bytes();
            if t.len() >= 2 && t[0] == b'-' && t[1] != b']' {
                self.pos += 1;
                let hi = self.class_char().ok_or_else(|| missing(self))??;
                if hi < lo {
                    return Err(self.error(go_code::INVALID_CHAR_RANGE, range_start, self.pos));
                }
                push_literal(&mut self.out, lo);
                self.out.push('-');
                push_literal(&mut self.out, hi);
            } else {
                push_literal(&mut self.out, lo);
            }
        }
        self.out.push(']');
        Ok(())
    }

    /// One class character (plain or escaped); `None` at the end of the pattern.
    fn class_char(&mut self) -> Option<Result<u32, FilterError>> {
        let t = self.rest();
        let c = t.chars().next()?;
        if c == '\\' {
            return Some(go_escape(t).map(|(c, len)| {
                self.pos += len;
                c
            }));
        }
        self.pos += c.len_utf8();
        Some(Ok(u32::from(c)))
    }
}

const POSIX_CLASSES: [&str; 28] = [
    "[:alnum:]",
    "[:alpha:]",
    "[:ascii:]",
    "[:blank:]",
    "[:cntrl:]",
    "[:digit:]",
    "[:graph:]",
    "[:lower:]",
    "[:print:]",
    "[:punct:]",
    "[:space:]",
    "[:upper:]",
    "[:word:]",
    "[:xdigit:]",
    "[:^alnum:]",
    "[:^alpha:]",
    "[:^ascii:]",
    "[:^blank:]",
    "[:^cntrl:]",
    "[:^digit:]",
    "[:^graph:]",
    "[:^lower:]",
    "[:^print:]",
    "[:^punct:]",
    "[:^space:]",
    "[:^upper:]",
    "[:^word:]",
    "[:^xdigit:]",
];

/// Go's general category names (Go 1.24; later Go also accepts long names).
const GO_CATEGORIES: [&str; 37] = [
    "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N",
    "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So",
    "Z", "Zl", "Zp", "Zs", "Any",
];

/// Go's Perl classes, which are ASCII-only, as bracketed classes.
fn perl_class(name: char) -> &'static str {
    match name {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        's' => r"[\t\n\x0C\r\x20]",
        'S' => r"[^\t\n\x0C\r\x20]",
        'w' => "[0-9A-Za-z_]",
        _ => "[^0-9A-Za-z_]",
    }
}

/// Emits one literal character so that Rust reads it as that character in or out of a class.
fn push_literal(out: &mut String, c: u32) {
    match char::from_u32(c) {
        Some(ch) if ch.is_ascii_alphanumeric() => out.push(ch),
        _ => {
            let _ = write!(out, r"\x{{{c:X}}}");
        }
    }
}

/// `\pL`, `\p{Greek}`, `\p{^Greek}`, `\PL`… at the start of `s`: the length read and the Rust
/// spelling, or the fragment Go reports.
fn unicode_class(s: &str) -> Result<(usize, String), &str> {
    let negated_escape = s.as_bytes().get(1) == Some(&b'P');
    let (seq, name) = match s.get(2..).and_then(|r| r.chars().next()) {
        None => (s.get(..2).unwrap_or_default(), ""),
        Some('{') => {
            let Some(end) = s.find('}') else {
                return Err(s);
            };
            (
                s.get(..=end).unwrap_or_default(),
                s.get(3..end).unwrap_or_default(),
            )
        }
        Some(c) => {
            let seq = s.get(..2 + c.len_utf8()).unwrap_or_default();
            (seq, seq.get(2..).unwrap_or_default())
        }
    };
    let (negated, name) = match name.strip_prefix('^') {
        Some(name) => (!negated_escape, name),
        None => (negated_escape, name),
    };
    let class = if GO_CATEGORIES.contains(&name) {
        name.to_owned()
    } else if name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
        && Regex::new(&format!(r"\p{{sc={name}}}")).is_ok()
    {
        format!("sc={name}")
    } else {
        return Err(seq);
    };
    let class = if negated {
        format!(r"\P{{{class}}}")
    } else {
        format!(r"\p{{{class}}}")
    };
    Ok((seq.len(), class))
}

/// Go's `parseEscape` at the start of `s` (a backslash): the character and the length read.
fn go_escape(s: &str) -> Result<(u32, usize), FilterError> {
    let invalid = |len: usize| FilterError::new(go_code::INVALID_ESCAPE, s.get(..len).unwrap_or(s));
    let Some(c) = s.get(1..).and_then(|r| r.chars().next()) else {
        return Err(FilterError::new(go_code::TRAILING_BACKSLASH, ""));
    };
    let after = 1 + c.len_utf8();
    let octal = |i: usize| {
        s.as_bytes()
            .get(i)
            .filter(|b| (b'0'..=b'7').contains(b))
            .map(|b| u32::from(b - b'0'))
    };
    match c {
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((u32::from(c), after)),
        '1'..='7' if octal(2).is_none() => Err(invalid(after)),
        '0'..='7' => {
            let mut value = u32::from(c) - u32::from('0');
            let mut len = 2;
            while len < 4
                && let Some(d) = octal(len)
            {
                value = value * 8 + d;
                len += 1;
            }
            Ok((value, len))
        }
        'x' => {
            let rest = s.get(2..).unwrap_or_default();
            if let Some(body) = rest.strip_prefix('{') {
                let mut value: u32 = 0;
                for (i, d) in body.char_indices() {
                    if d == '}' {
                        return if i == 0 {
                            Err(invalid(4))
                        } else {
                            Ok((value, 4 + i))
                        };
                    }
                    let Some(digit) = d.to_digit(16) else {
                        return Err(invalid(3 + i + d.len_utf8()));
                    };
                    value = value * 16 + digit;
                    if value > 0x10FFFF {
                        return Err(invalid(3 + i + 1));
                    }
                }
                return Err(invalid(s.len()));
            }
            let mut hex = rest.chars();
            let Some(first) = hex.next() else {
                return Err(invalid(2));
            };
            let second = hex.next();
            let len = 2 + first.len_utf8() + second.map_or(0, char::len_utf8);
            match (first.to_digit(16), second.and_then(|c| c.to_digit(16))) {
                (Some(x), Some(y)) => Ok((x * 16 + y, len)),
                _ => Err(invalid(len)),
            }
        }
        'a' => Ok((0x07, after)),
        'f' => Ok((0x0C, after)),
        'n' => Ok((0x0A, after)),
        'r' => Ok((0x0D, after)),
        't' => Ok((0x09, after)),
        'v' => Ok((0x0B, after)),
        _ => Err(invalid(after)),
    }
}

/// Go's `parseRepeat` at a `{`: `(min, max, length)` with `max == -1` for `{n,}` and `min == -1`
/// for a number Go considers too large; `None` when Go reads the `{` as a literal.
fn go_parse_repeat(s: &str) -> Option<(i64, i64, usize)> {
    let b = s.as_bytes();
    let mut i = 1;
    let (min, len) = go_parse_int(b.get(i..)?)?;
    i += len;
    let mut min = min;
    let max = match b.get(i)? {
        b',' => {
            i += 1;
            if *b.get(i)? == b'}' {
                -1
            } else {
                let (max, len) = go_parse_int(b.get(i..)?)?;
                i += len;
                if max < 0 {
                    min = -1;
                }
                max
            }
        }
        _ => min,
    };
    (*b.get(i)? == b'}').then_some((min, max, i + 1))
}

/// Go's `parseInt`: digits without a leading zero; values from 10^8 on become -1.
fn go_parse_int(b: &[u8]) -> Option<(i64, usize)> {
    let len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if len == 0 || (len >= 2 && b[0] == b'0') {
        return None;
    }
    let mut n: i64 = 0;
    for d in &b[..len] {
        if n >= 100_000_000 {
            n = -1;
            break;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some((n, len))
}

#[cfg(test)]
mod tests {
    use super::super::select_tag;
    use super::super::testing::{render, strings};
    use super::*;

    #[test]
    fn invalid_filters_report_gos_regexp_errors() {
        let cases = [
            ("[a", "missing closing ]: `[a`"),
            ("[]", "missing closing ]: `[]`"),
            ("x[a-b", "missing closing ]: `[a-b`"),
            ("(a", "missing closing ): `(a`"),
            ("a)", "unexpected ): `a)`"),
            ("*", "missing argument to repetition operator: `*`"),
            ("a|+?", "missing argument to repetition operator: `+?`"),
            ("(?i)*", "missing argument to repetition operator: `*`"),
            ("a**", "invalid nested repetition operator: `**`"),
            ("a*?+", "invalid nested repetition operator: `*?+`"),
            ("a{2}*", "invalid nested repetition operator: `{2}*`"),
            ("a{1001}", "invalid repeat count: `{1001}`"),
            ("a{2,1}", "invalid repeat count: `{2,1}`"),
            ("(a{500}){3}", "invalid repeat count: `{3}`"),
            ("a{100000000}", "invalid repeat count: `{100000000}`"),
            ("\\q", "invalid escape sequence: `\\q`"),
            ("\\C", "invalid escape sequence: `\\C`"),
            ("\\1", "invalid escape sequence: `\\1`"),
            ("\\x{}", "invalid escape sequence: `\\x{}`"),
            ("\\x{110000}", "invalid escape sequence: `\\x{110000`"),
            ("\\xZZ", "invalid escape sequence: `\\xZZ`"),
            ("[\\b]", "invalid escape sequence: `\\b`"),
            ("a\\", "trailing backslash at end of expression: ``"),
            ("[z-a]", "invalid character class range: `z-a`"),
            ("[[:foo:]]", "invalid character class range: `[:foo:]`"),
            ("\\p{Foo}", "invalid character class range: `\\p{Foo}`"),
            (
                "\\p{Letter}",
                "invalid character class range: `\\p{Letter}`",
            ),
            ("(?=a)", "invalid or unsupported Perl syntax: `(?=`"),
            ("(?<=a)", "invalid named capture: `(?<=a)`"),
            ("(?x)a", "invalid or unsupported Perl syntax: `(?x`"),
            ("(?i-)a", "invalid or unsupported Perl syntax: `(?i-)`"),
            ("(?P<n", "invalid named capture: `(?P<n`"),
            ("(?P<a-b>x)", "invalid named capture: `(?P<a-b>`"),
        ];
        let tags = strings(&["1.0.0"]);
        for (pattern, detail) in cases {
            let err = match select_tag(&tags, "*", Some(pattern), false) {
                Ok(tag) => panic!("{pattern:?} compiled and selected {tag}"),
                Err(e) => e,
            };
            assert_eq!(
                render(&err),
                format!("error parsing regexp: {detail}"),
                "{pattern:?}"
            );
        }
    }

    #[test]
    fn filters_match_like_go_regexp() {
        let cases = [
            (".*-rc.*", "6.1.6-rc.1", true),
            ("rc", "6.1.6-rc.1", true),
            ("^v\\d+\\.\\d+\\.\\d+$", "v1.2.3", true),
            ("^v\\d+\\.\\d+\\.\\d+$", "1.2.3", false),
            // Go reads these literally where Rust would not.
            ("x{", "x{", true),
            ("a{01}", "a{01}", true),
            ("a{,3}", "a{,3}", true),
            ("[[a]]", "[]", true),
            ("[[a]]", "a", false),
            ("[a&&b]", "&", true),
            ("\\Qa.b\\E+", "a.bb", true),
            ("\\Qa.b\\E", "axb", false),
            ("\\0", "\0", true),
            ("\\101", "A", true),
            ("(?P<1a>x)", "x", true),
            ("(?)a", "a", true),
            ("(?ii)A", "a", true),
            ("(?i-i)A", "a", false),
            ("#", "#", true),
            ("a b", "a b", true),
            // ASCII Perl classes and boundaries.
            ("\\d", "\u{663}", false),
            ("\\w", "\u{e9}", false),
            ("\\B", "\u{e4}", true),
            ("\\s", "\u{b}", false),
            ("[^a]", "\n", true),
            ("(a{500}){2}", "a", false),
            ("\\p{Greek}", "\u{3b1}", true),
        ];
        for (pattern, haystack, expected) in cases {
            match compile_go_regexp(pattern) {
                Ok(re) => assert_eq!(
                    re.is_match(haystack.as_bytes()),
                    expected,
                    "{pattern:?} on {haystack:?}"
                ),
                Err(e) => panic!("{pattern:?}: {e}"),
            }
        }
    }
}
