//! Semver tag selection as Flux 2.6 does it for `spec.ref.semver`.
//!
//! This module owns three things, each reproducing the Go code Flux links against:
//!
//! - [`Version`]: a semantic version in the Masterminds/semver v3.3.0 model (unsigned 64-bit
//!   numbers, a pre-release, build metadata, the original text). [`Version::parse`] is the lenient
//!   parser Masterminds uses for constraint operands (`v` prefix, `1` and `1.2` coerce, leading
//!   zeros allowed); [`parse_tag`] is the stricter parser Flux applies to registry tags
//!   (`fluxcd/pkg/version` v0.7.0 `ParseVersion`).
//! - [`Constraints`]: a range expression with Masterminds v3.3.0 semantics, which is what Flux 2.6
//!   pins (a `replace` in its `go.mod`; v3.3.1 changed both version parsing and pre-release
//!   handling).
//! - [`select_tag`]: Flux's `getTagBySemver`/`filterTags`: regex filter, parse, match, highest
//!   wins, plus the Helm `_`/`+` tag encoding of later source-controller releases.
//!
//! # Pre-releases
//!
//! In v3.3.0 the pre-release rule is applied by **every comparator on its own**: a version with a
//! pre-release fails a comparator whose operand has none. So `>= 1.2.3-0` matches `1.3.0-rc.1`, but
//! `>= 1.2.3-0 < 2.0.0` does not (the `< 2.0.0` comparator rejects it); one needs
//! `>= 1.2.3-0 < 2.0.0-0`. The single exception is a `!=` whose operand has no wildcard, which
//! never looks at pre-releases (`!= 1.2.3` matches `1.2.4-beta`). Later Masterminds releases moved
//! the rule to the AND group; Flux 2.6 does not use them.
//!
//! # Go regular expressions
//!
//! `semverFilter` is a Go (RE2) regular expression, so it is read by a small translator that
//! follows Go 1.24's `regexp/syntax` (the Go release Flux 2.6 is built with) and writes an
//! equivalent `regex` crate pattern. What Go accepts is accepted, with Go's meaning: a `{` that
//! does not start a repeat is a literal, `\Q…\E`, octal escapes, `[` inside a class, group names
//! starting with a digit, ASCII-only `\d`, `\s`, `\w`, `\b`, `\B`. What Go rejects is rejected with
//! Go's message, ``error parsing regexp: <code>: `<fragment>` ``, including Go-only refusals
//! such as `a**`, `a{1001}` or `(?x)`. Matching is unanchored, like Go's `MatchString`.
//! Remaining differences, none of which a tag filter is likely to meet: `\p{…}` script names are
//! looked up as loosely as Rust does (`\p{Latn}` is accepted); a repetition directly after a flag
//! group (`a(?i)*`) and more than 250 nested groups are refused with a different message.
//!
//! # Differences in error text
//!
//! Upstream rewrites a hyphen range by replacing the first occurrence of its text, which only
//! differs from replacing it in place for inputs that are invalid either way (`1 - 2 - 2 - 2`);
//! this module replaces in place, so for such inputs the quoted segment in
//! `improper constraint: …` differs.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

/// Why a tag could not be selected.
///
/// The Display texts are Flux's. Details live in [`source`](std::error::Error::source) and are not
/// repeated in the Display text, so a caller that renders the chain by joining the messages with
/// `": "` produces exactly what Flux prints (for instance
/// `semver '>= 1x' parse error: constraint Parser Error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SemverError {
    /// The constraint expression is not valid Masterminds syntax.
    #[error("semver '{expression}' parse error")]
    InvalidConstraint {
        /// The expression as given.
        expression: String,
        /// What Masterminds reports.
        #[source]
        source: ConstraintError,
    },
    /// No tag satisfied the constraint (after filtering).
    #[error("no match found for semver: {expression}")]
    NoMatch {
        /// The expression as given.
        expression: String,
    },
    /// The `semverFilter` regular expression does not compile. Flux returns Go's `regexp`
    /// error unwrapped; this variant's Display is Go's fixed prefix and the source the rest.
    #[error("error parsing regexp")]
    InvalidFilter {
        /// The Go error code and the offending fragment.
        #[source]
        source: FilterError,
    },
}

/// The detail of an invalid constraint, worded as Masterminds/semver v3.3.0 words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// An `||`-separated part (after hyphen ranges were rewritten) is not a list of comparators.
    #[error("improper constraint: {segment}")]
    Improper {
        /// The offending part, verbatim (surrounding spaces included).
        segment: String,
    },
    /// A comparator has the right shape but its operand is not a version: a number that does not
    /// fit in 64 bits, a pre-release with a leading zero, a letter mixed into a number (`1x`).
    /// The capitalisation is v3.3.0's.
    #[error("constraint Parser Error")]
    Operand,
}

/// A Go `regexp` compile error: Go's error code and the fragment of the pattern it points at.
///
/// Displays as ``<code>: `<fragment>` ``, the part of Go's message after `error parsing regexp: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: `{fragment}`")]
pub struct FilterError {
    /// Go's `regexp/syntax` error code text, such as `missing closing ]`.
    pub code: String,
    /// The part of the pattern Go quotes.
    pub fragment: String,
}

impl FilterError {
    fn new(code: &str, fragment: &str) -> Self {
        Self {
            code: code.to_owned(),
            fragment: fragment.to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------------------------

/// A semantic version as Masterminds/semver v3.3.0 models it.
///
/// Equality (`==`) is structural: it compares every part, build metadata and original text
/// included. Use [`Version::cmp_precedence`] for semver precedence, which ignores build metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    build: String,
    original: String,
}

impl Version {
    /// Parses leniently, as Masterminds' `NewVersion`: an optional `v`, one to three dot-separated
    /// numbers (missing ones are 0, leading zeros allowed), then an optional `-pre-release` and
    /// `+build`. Returns `None` when the text is not of that form, a number does not fit in 64
    /// bits, or a numeric pre-release identifier has a leading zero.
    pub fn parse(text: &str) -> Option<Version> {
        let body = text.strip_prefix('v').unwrap_or(text);
        let (rest, build) = match body.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (body, None),
        };
        let (numbers, pre) = match rest.split_once('-') {
            Some((numbers, pre)) => (numbers, Some(pre)),
            None => (rest, None),
        };
        let mut parts = numbers.split('.');
        let major = go_parse_uint(parts.next()?)?;
        let minor = parts.next().map_or(Some(0), go_parse_uint)?;
        let patch = parts.next().map_or(Some(0), go_parse_uint)?;
        if parts.next().is_some() {
            return None;
        }
        if let Some(pre) = pre
            && !(identifiers_well_formed(pre) && prerelease_numbers_ok(pre))
        {
            return None;
        }
        if let Some(build) = build
            && !identifiers_well_formed(build)
        {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            pre: pre.unwrap_or_default().to_owned(),
            build: build.unwrap_or_default().to_owned(),
            original: text.to_owned(),
        })
    }

    /// The major number.
    pub fn major(&self) -> u64 {
        self.major
    }

    /// The minor number.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The patch number.
    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// The pre-release without its `-` (empty when there is none).
    pub fn prerelease(&self) -> &str {
        &self.pre
    }

    /// The build metadata without its `+` (empty when there is none).
    pub fn build(&self) -> &str {
        &self.build
    }

    /// The text the version was parsed from, `v` prefix included.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// Semver precedence as Masterminds' `Compare`: numbers first, then a version without a
    /// pre-release ranks above one with a pre-release, then pre-release identifiers from the left
    /// (numbers below words, numbers numerically, words byte-wise, a shorter list lower). Build
    /// metadata is ignored, so `1.0.0+a` and `1.0.0+b` are equal here.
    pub fn cmp_precedence(&self, other: &Version) -> Ordering {
        self.major
            .cmp(&other.major)
            .then(self.minor.cmp(&other.minor))
            .then(self.patch.cmp(&other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &other.pre),
            })
    }

    fn precedes(&self, other: &Version) -> bool {
        self.cmp_precedence(other) == Ordering::Less
    }
}

/// Canonical form without the `v` prefix, as Masterminds' `String`: `1.2.3-rc.1+build`.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

/// Parses a registry tag as Flux 2.6 does (`fluxcd/pkg/version` v0.7.0 `ParseVersion`): the
/// tag without one leading `v` must be a strict semantic version `X.Y.Z[-pre][+build]` (no
/// leading zeros, all three numbers), and the whole tag must also satisfy [`Version::parse`].
/// `1.2`, `latest`, `v01.2.3`, `1.2.3.4` give `None`. The returned version keeps the tag as its
/// [`original`](Version::original) text.
pub fn parse_tag(tag: &str) -> Option<Version> {
    if !strict_semver(tag.strip_prefix('v').unwrap_or(tag)) {
        return None;
    }
    Version::parse(tag)
}

/// Masterminds' `StrictNewVersion` acceptance test. It is deliberately a separate check from
/// [`Version::parse`] because Flux requires both to pass, and they disagree at the edges
/// (`StrictNewVersion` lets empty metadata identifiers through, `NewVersion` does not).
fn strict_semver(text: &str) -> bool {
    let mut parts = text.splitn(3, '.');
    let (Some(major), Some(minor), Some(tail)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (tail, build) = match tail.split_once('+') {
        Some((tail, build)) => (tail, Some(build)),
        None => (tail, None),
    };
    if let Some(build) = build
        && !build.split('.').all(|id| id.bytes().all(is_ident_byte))
    {
        return false;
    }
    let (patch, pre) = match tail.split_once('-') {
        Some((patch, pre)) => (patch, Some(pre)),
        None => (tail, None),
    };
    if let Some(pre) = pre {
        let ok = pre.split('.').all(|id| {
            if id.bytes().all(|b| b.is_ascii_digit()) {
                !(id.len() > 1 && id.starts_with('0'))
            } else {
                id.bytes().all(is_ident_byte)
            }
        });
        if !ok {
            return false;
        }
    }
    [major, minor, patch]
        .iter()
        .all(|n| !(n.len() > 1 && n.starts_with('0')) && go_parse_uint(n).is_some())
}

/// Go's `strconv.ParseUint(s, 10, 64)`: ASCII digits only (no sign), leading zeros allowed.
fn go_parse_uint(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Dot-separated, non-empty identifiers of `[0-9A-Za-z-]`.
fn identifiers_well_formed(s: &str) -> bool {
    s.split('.')
        .all(|id| !id.is_empty() && id.bytes().all(is_ident_byte))
}

/// Numeric pre-release identifiers must not have leading zeros.
fn prerelease_numbers_ok(s: &str) -> bool {
    s.split('.')
        .all(|id| !(id.len() > 1 && id.starts_with('0') && id.bytes().all(|b| b.is_ascii_digit())))
}

/// Masterminds' pre-release comparison. Missing identifiers count as empty (and empty is lowest).
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (l, r) => {
                let ord = compare_identifier(l.unwrap_or(""), r.unwrap_or(""));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

fn compare_identifier(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    if a.is_empty() {
        return Ordering::Less;
    }
    if b.is_empty() {
        return Ordering::Greater;
    }
    // Numbers that overflow 64 bits are treated as words, as in Go.
    match (go_parse_uint(a), go_parse_uint(b)) {
        (Some(x), Some(y)) => {
            if x > y {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => {
            if a.as_bytes() > b.as_bytes() {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Constraints
// ---------------------------------------------------------------------------------------------

/// A parsed range expression with Masterminds/semver v3.3.0 semantics.
///
/// Syntax: comparators `=`, `!=`, `>`, `<`, `>=` (also `=>`), `<=` (also `=<`), `~` (also `~>`),
/// `^`, or none (equality); operands with an optional `v`, one to three parts, wildcards
/// `x`/`X`/`*`, pre-release and build; AND by spaces or a comma, OR by `||`; hyphen ranges
/// `1.2 - 1.4.5` meaning `>= 1.2, <= 1.4.5`. See the [module documentation](self) for the
/// pre-release rule.
#[derive(Debug, Clone)]
pub struct Constraints {
    /// OR of AND groups.
    groups: Vec<Vec<Comparator>>,
}

impl Constraints {
    /// Parses an expression the way Masterminds' `NewConstraint` does.
    ///
    /// # Errors
    ///
    /// [`SemverError::InvalidConstraint`] with Masterminds' detail.
    pub fn parse(expression: &str) -> Result<Constraints, SemverError> {
        parse_groups(expression)
            .map(|groups| Constraints { groups })
            .map_err(|source| SemverError::InvalidConstraint {
                expression: expression.to_owned(),
                source,
            })
    }

    /// Whether the version satisfies the expression (Masterminds' `Check`).
    pub fn matches(&self, version: &Version) -> bool {
        self.groups
            .iter()
            .any(|group| group.iter().all(|c| c.accepts(version)))
    }
}

impl FromStr for Constraints {
    type Err = SemverError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Constraints::parse(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// No operator or `=`: equality, or a tilde range when the operand has a wildcard.
    Equal,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

/// One comparator of an AND group.
#[derive(Debug, Clone)]
struct Comparator {
    op: Op,
    /// The operand with wildcards and missing parts replaced by 0.
    operand: Version,
    /// Some part of the operand was a wildcard or missing.
    dirty: bool,
    /// The minor part (and so the patch) was a wildcard or missing: `1`, `1.x`.
    minor_dirty: bool,
    /// Only the patch part was a wildcard or missing: `1.2`, `1.2.x`.
    patch_dirty: bool,
}

impl Comparator {
    fn accepts(&self, v: &Version) -> bool {
        let c = &self.operand;
        // Per-comparator pre-release rule of v3.3.0 (see the module docs). `!=` applies it only
        // when its operand has a wildcard.
        let prerelease_blocked = !v.pre.is_empty() && c.pre.is_empty();
        if prerelease_blocked && (self.op != Op::NotEqual || self.dirty) {
            return false;
        }
        match self.op {
            Op::Equal => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v.cmp_precedence(c) == Ordering::Equal
                }
            }
            Op::NotEqual => self.not_equal(v),
            Op::Greater => {
                if !self.dirty {
                    return v.cmp_precedence(c) == Ordering::Greater;
                }
                match v.major.cmp(&c.major) {
                    Ordering::Greater => true,
                    Ordering::Less => false,
                    // `>1` needs 2 or more; `>1.2` needs 1.3 or more.
                    Ordering::Equal if self.minor_dirty => false,
                    Ordering::Equal if self.patch_dirty => v.minor > c.minor,
                    // `>*`: the operand is 0.0.0.
                    Ordering::Equal => v.cmp_precedence(c) == Ordering::Greater,
                }
            }
            Op::Less => v.precedes(c),
            Op::GreaterEqual => !v.precedes(c),
            Op::LessEqual => {
                if !self.dirty {
                    return v.cmp_precedence(c) != Ordering::Greater;
                }
                // `<=1.2` is `<1.3`, `<=1` is `<2`. Quirk: `<=*` only admits 0.0.x.
                !(v.major > c.major
                    || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
            }
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    fn not_equal(&self, v: &Version) -> bool {
        let c = &self.operand;
        if self.dirty {
            if c.major != v.major {
                return true;
            }
            if self.minor_dirty {
                return false;
            }
            if c.minor != v.minor {
                return true;
            }
            if self.patch_dirty {
                if !v.pre.is_empty() || !c.pre.is_empty() {
                    return compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                }
                return false;
            }
            if c.patch != v.patch {
                return true;
            }
        }
        v.cmp_precedence(c) != Ordering::Equal
    }

    /// `~1.2.3` is `>=1.2.3 <1.3.0`, `~1.2` is `>=1.2.0 <1.3.0`, `~1` is `>=1.0.0 <2.0.0`;
    /// `~*` and `~0.0.0` accept everything (that the pre-release rule lets through).
    fn tilde(&self, v: &Version) -> bool {
        let c = &self.operand;
        if v.precedes(c) {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.minor_dirty)
    }

    /// `^1.2.3` is `>=1.2.3 <2.0.0`; `^0.2.3` is `>=0.2.3 <0.3.0`; `^0.0.3` is `=0.0.3`;
    /// `^0.0` is `<0.1.0`; `^0` and `^0.x` are `<1.0.0`. Quirk: `^*` only admits 0.0.0.
    fn caret(&self, v: &Version) -> bool {
        let c = &self.operand;
        if v.precedes(c) {
            return false;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        v.patch == c.patch
    }
}

/// The regular expressions of the constraint grammar. They are the Masterminds v3.3.0 grammar
/// re-expressed for the `regex` crate, whose leftmost-first semantics equal Go's; Go's `\s` is
/// spelled out because Rust's is Unicode-aware.
struct Grammar {
    /// A whole AND group.
    group: Regex,
    /// One comparator inside a valid AND group, with named captures.
    item: Regex,
    /// A hyphen range, anywhere (unanchored, as upstream).
    range: Regex,
}

const WS: &str = r"[\t\n\x0C\r ]";
/// One dotted part of an operand. As upstream, `|` is in the class: a lone `|` (not `||`) passes
/// the shape check and fails later as an operand.
const PART: &str = r"[0-9xX*|]+";
const IDENTS: &str = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*";
/// The trailing empty alternative is "no operator".
const OPS: &str = r"!=|>=|=>|<=|=<|~>|=|>|<|~|\^|";

static GRAMMAR: LazyLock<Option<Grammar>> = LazyLock::new(|| {
    let plain = format!(r"v?{PART}(?:\.{PART})?(?:\.{PART})?(?:-{IDENTS})?(?:\+{IDENTS})?");
    let captured = format!(
        r"v?(?P<major>{PART})(?P<minor>\.{PART})?(?P<patch>\.{PART})?(?P<pre>-{IDENTS})?(?:\+{IDENTS})?"
    );
    let one = format!(r"(?:{OPS}){WS}*{plain}");
    Some(Grammar {
        group: Regex::new(&format!(
            r"^{WS}*{one}{WS}*(?:(?:{WS}+|,{WS}*){one}{WS}*)*$"
        ))
        .ok()?,
        item: Regex::new(&format!(r"(?P<op>{OPS}){WS}*(?P<operand>{captured})")).ok()?,
        range: Regex::new(&format!(
            r"{WS}*(?P<lo>{plain}){WS}+-{WS}+(?P<hi>{plain}){WS}*"
        ))
        .ok()?,
    })
});

fn parse_groups(expression: &str) -> Result<Vec<Vec<Comparator>>, ConstraintError> {
    // The patterns are constants and compile (a test says so); should they not, every
    // expression is refused instead of panicking.
    let Some(grammar) = GRAMMAR.as_ref() else {
        return Err(ConstraintError::Operand);
    };
    let rewritten = rewrite_ranges(&grammar.range, expression);
    rewritten
        .split("||")
        .map(|segment| parse_and_group(grammar, segment))
        .collect()
}

/// Replaces each hyphen range `A - B` (with its surrounding whitespace) by `>= A, <= B `.
///
/// Upstream replaces the first occurrence of each matched text rather than the match itself.
/// The two differ only for already invalid input such as `1 - 2 - 2 - 2`, where just the quoted
/// segment of the error differs; replacing in place keeps this linear on any input.
fn rewrite_ranges(range: &Regex, expression: &str) -> String {
    let mut out = String::with_capacity(expression.len());
    let mut last = 0;
    for caps in range.captures_iter(expression) {
        let (Some(whole), Some(lo), Some(hi)) = (caps.get(0), caps.name("lo"), caps.name("hi"))
        else {
            continue;
        };
        out.push_str(&expression[last..whole.start()]);
        let _ = write!(out, ">= {}, <= {} ", lo.as_str(), hi.as_str());
        last = whole.end();
    }
    out.push_str(&expression[last..]);
    out
}

fn parse_and_group(grammar: &Grammar, segment: &str) -> Result<Vec<Comparator>, ConstraintError> {
    let improper = || ConstraintError::Improper {
        segment: segment.to_owned(),
    };
    if !grammar.group.is_match(segment) {
        return Err(improper());
    }
    let comparators = grammar
        .item
        .captures_iter(segment)
        .map(|caps| comparator(&caps))
        .collect::<Result<Vec<_>, _>>()?;
    if comparators.is_empty() {
        // Unreachable: a valid group has at least one comparator.
        return Err(improper());
    }
    Ok(comparators)
}

fn comparator(caps: &regex::Captures<'_>) -> Result<Comparator, ConstraintError> {
    let text = |name| caps.name(name).map_or("", |m| m.as_str());
    let op = match text("op") {
        "" | "=" => Op::Equal,
        "!=" => Op::NotEqual,
        ">" => Op::Greater,
        "<" => Op::Less,
        ">=" | "=>" => Op::GreaterEqual,
        "<=" | "=<" => Op::LessEqual,
        "~" | "~>" => Op::Tilde,
        "^" => Op::Caret,
        _ => return Err(ConstraintError::Operand),
    };
    let is_wild = |part: &str| matches!(part, "x" | "X" | "*");
    let (major, minor, patch, pre) = (text("major"), text("minor"), text("patch"), text("pre"));
    let minor_part = minor.strip_prefix('.').unwrap_or(minor);
    let patch_part = patch.strip_prefix('.').unwrap_or(patch);
    // A wildcard or missing part zeroes the rest and drops the build metadata (and the `v`).
    let (operand, dirty, minor_dirty, patch_dirty) = if major.is_empty() || is_wild(major) {
        (format!("0.0.0{pre}"), true, false, false)
    } else if minor.is_empty() || is_wild(minor_part) {
        (format!("{major}.0.0{pre}"), true, true, false)
    } else if patch.is_empty() || is_wild(patch_part) {
        (format!("{major}{minor}.0{pre}"), true, false, true)
    } else {
        (text("operand").to_owned(), false, false, false)
    };
    let operand = Version::parse(&operand).ok_or(ConstraintError::Operand)?;
    Ok(Comparator {
        op,
        operand,
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

// ---------------------------------------------------------------------------------------------
// Tag selection
// ---------------------------------------------------------------------------------------------

/// Picks the tag to pull for `spec.ref.semver`, as Flux's `getTagBySemver`.
///
/// 1. `filter` (`spec.ref.semverFilter`; `None` or empty means none) is a Go regular expression
///    that must match somewhere in a tag for the tag to be kept.
/// 2. The constraint is parsed (after the filter, so a bad filter is reported first).
/// 3. Each kept tag is parsed with [`parse_tag`]; unparsable tags are skipped silently. With
///    `helm_chart` (layer media type `application/vnd.cncf.helm.chart.content.v1.tar+gzip`) a tag
///    is read with `_` in place of `+`, Helm's encoding of build metadata in OCI tags.
/// 4. The highest matching version wins and its tag is returned as listed (`v` kept); with
///    `helm_chart`, its `+` are turned back into `_`, which for a valid OCI tag is the tag as
///    listed.
///
/// Ties: versions of equal precedence (`1.0.0` and `v1.0.0`, or versions differing only in build
/// metadata) resolve to the one listed **first**. Flux sorts with Go's unstable `sort.Sort`, which
/// behaves the same way for up to 12 matches and is unspecified beyond.
///
/// # Errors
///
/// [`SemverError::InvalidFilter`], [`SemverError::InvalidConstraint`] or
/// [`SemverError::NoMatch`], in that order of precedence.
pub fn select_tag(
    tags: &[String],
    constraint: &str,
    filter: Option<&str>,
    helm_chart: bool,
) -> Result<String, SemverError> {
    let filter = match filter {
        Some(pattern) if !pattern.is_empty() => Some(
            compile_go_regexp(pattern).map_err(|source| SemverError::InvalidFilter { source })?,
        ),
        _ => None,
    };
    let constraints = Constraints::parse(constraint)?;

    let mut best: Option<Version> = None;
    for tag in tags {
        if let Some(filter) = &filter
            && !filter.is_match(tag.as_bytes())
        {
            continue;
        }
        let version = if helm_chart {
            parse_tag(&tag.replace('_', "+"))
        } else {
            parse_tag(tag)
        };
        let Some(version) = version else { continue };
        if !constraints.matches(&version) {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|b| version.cmp_precedence(b) == Ordering::Greater)
        {
            best = Some(version);
        }
    }

    match best {
        Some(version) if helm_chart => Ok(version.original.replace('+', "_")),
        Some(version) => Ok(version.original),
        None => Err(SemverError::NoMatch {
            expression: constraint.to_owned(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Go regular expressions
// ---------------------------------------------------------------------------------------------

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
fn compile_go_regexp(pattern: &str) -> Result<regex::bytes::Regex, FilterError> {
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
    use super::*;

    /// Renders an error the way the crate's reporter does: Display texts joined with ": ".
    fn render(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    fn v(text: &str) -> Version {
        match Version::parse(text) {
            Some(version) => version,
            None => panic!("test version {text:?} does not parse"),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// (constraint, version, satisfied) under Masterminds v3.3.0. Expected values were derived
    /// from the library's documented rules and checked against the Go code itself.
    const TABLE: &[(&str, &str, bool)] = &[
        // Bare version and `=`: equality, or a tilde range when something is missing or wild.
        ("1.2.3", "1.2.3", true),
        ("1.2.3", "1.2.4", false),
        ("=1.2.3", "1.2.3", true),
        ("= 1.2.3", "v1.2.3", true),
        ("v1.2.3", "1.2.3", true),
        ("1.2.3", "1.2.3+build.7", true),
        ("1.2.3+build.7", "1.2.3", true),
        ("1.2", "1.2.9", true),
        ("1.2", "1.3.0", false),
        ("1", "1.9.9", true),
        ("1", "2.0.0", false),
        ("=2.0", "2.0.1", true),
        ("1.2.3", "1.2.3-beta", false),
        ("1.2.3-beta", "1.2.3-beta", true),
        ("1.2.3-beta", "1.2.3", false),
        // `!=`
        ("!=1.2.3", "1.2.3", false),
        ("!=1.2.3", "1.2.4", true),
        ("!=1.2.3", "1.2.4-beta", true),
        ("!=1.2.3", "1.2.3+meta", false),
        ("!=1.2", "1.2.5", false),
        ("!=1.2", "1.3.0", true),
        ("!=1.2", "1.3.0-beta", false),
        ("!=1.x", "1.5.0", false),
        ("!=1.x", "2.0.0", true),
        ("!=1.2-alpha", "1.2.0", true),
        ("!=1.2-alpha", "1.2.0-alpha", false),
        ("!=1.2-alpha", "1.2.1-alpha", false),
        ("!=*", "0.0.0", false),
        ("!=*", "0.0.1", true),
        // `>`
        (">1.2.3", "1.2.4", true),
        (">1.2.3", "1.2.3", false),
        (">1.2.3", "1.3.0-beta", false),
        (">1.2", "1.2.9", false),
        (">1.2", "1.3.0", true),
        (">1", "1.9.9", false),
        (">1", "2.0.0", true),
        (">1.x", "1.5.0", false),
        (">*", "0.0.0", false),
        (">*", "0.0.1", true),
        (">0", "0.0.1-alpha", false),
        (">0.0.0-0", "0.0.0-alpha", true),
        (">1.2.3-alpha.1", "1.2.3-alpha.2", true),
        (">1.2.3-alpha.1", "1.2.3-alpha.1", false),
        (">1.2.3-alpha.1", "1.3.3-alpha.2", true),
        // `<`
        ("<1.2.3", "1.2.2", true),
        ("<1.2.3", "1.2.3", false),
        ("<1.2.3", "1.2.3-rc.1", false),
        ("<1.2.3-0", "1.2.3-rc.1", false),
        ("<1.2.3-z", "1.2.3-rc.1", true),
        ("<1.2", "1.1.9", true),
        ("<1.2", "1.2.0", false),
        ("<1.x", "0.9.9", true),
        ("<1.x", "1.0.0", false),
        ("<*", "0.0.0", false),
        ("<0-z", "0.0.0-alpha", true),
        // `>=` and `=>`
        (">=1.2.3", "1.2.3", true),
        (">=1.2.3", "1.2.2", false),
        (">=1.2", "1.2.0", true),
        ("=>1.2", "1.2.0", true),
        ("=> 1.2", "1.1.0", false),
        (">=1.2.x", "1.2.0", true),
        (">= 1.2.x", "1.1.9", false),
        (">=1.2.3", "2.0.0-beta", false),
        (">=1.2.3-0", "1.3.0-rc.1", true),
        (">=0.0.0-0", "3.4.5-beta.1", true),
        (">=0-0", "0.0.1-alpha", true),
        (">=0", "0.0.1-alpha", false),
        (">=1.2.3-BETA", "1.2.3-alpha", true),
        (">=1.2.3-beta", "1.2.3-alpha", false),
        // v3.3.0: every comparator of the group must carry a pre-release to admit one.
        (">=1.2.3-0 <2.0.0", "1.3.0-rc.1", false),
        (">=1.2.3-0 <2.0.0-0", "1.3.0-rc.1", true),
        (">=1.2.3-0 <2.0.0", "1.3.0", true),
        // `<=` and `=<`
        ("<=1.2.3", "1.2.3", true),
        ("<=1.2.3", "1.2.4", false),
        ("=<1.2.3", "1.2.3", true),
        ("<=1.2", "1.2.9", true),
        ("<=1.2", "1.3.0", false),
        ("<=2.x", "2.9.9", true),
        ("<=2.x", "3.0.0", false),
        ("<=1.1", "1.1.1-alpha", false),
        ("<=1.1-a", "0.1.0-alpha", true),
        ("<=*", "0.0.5", true),
        ("<=*", "0.1.0", false),
        ("<=*", "1.0.0", false),
        // `~` and `~>`
        ("~1.2.3", "1.2.3", true),
        ("~1.2.3", "1.2.9", true),
        ("~1.2.3", "1.3.0", false),
        ("~1.2.3", "1.2.2", false),
        ("~>1.2.3", "1.2.5", true),
        ("~1.2", "1.2.0", true),
        ("~1.2", "1.3.0", false),
        ("~1", "1.9.0", true),
        ("~1", "2.0.0", false),
        ("~1.x", "1.4.0", true),
        ("~1.2.x", "1.2.7", true),
        ("~0", "0.9.0", true),
        ("~0.0.0", "5.0.0", true),
        ("~*", "9.9.9", true),
        ("~*", "9.9.9-beta", false),
        ("~1.2.3-beta.2", "1.2.4-beta.2", true),
        ("~1.2.3-beta.2", "1.3.0-beta.2", false),
        ("~1.2.3-beta.2", "1.2.3-beta.1", false),
        ("~1.1.1-beta", "1.1.1", true),
        // `^`
        ("^1.2.3", "1.2.3", true),
        ("^1.2.3", "1.9.9", true),
        ("^1.2.3", "2.0.0", false),
        ("^1.2.3", "1.2.2", false),
        ("^1.2", "1.2.0", true),
        ("^1", "1.9.9", true),
        ("^1.x", "1.0.0", true),
        ("^1.2.x", "1.3.0", true),
        ("^0.2.3", "0.2.9", true),
        ("^0.2.3", "0.3.0", false),
        ("^0.2", "0.2.0", true),
        ("^0.2", "0.3.0", false),
        ("^0.0.3", "0.0.3", true),
        ("^0.0.3", "0.0.4", false),
        ("^0.0", "0.0.9", true),
        ("^0.0", "0.1.0", false),
        ("^0", "0.9.9", true),
        ("^0", "1.0.0", false),
        ("^0.x", "0.5.0", true),
        ("^0.x", "1.0.0", false),
        ("^0.0.x", "0.0.5", true),
        ("^0.0.x", "0.1.0", false),
        ("^0.0.0", "0.0.0", true),
        ("^0.0.0", "0.0.1", false),
        ("^*", "0.0.0", true),
        ("^*", "1.0.0", false),
        ("^1.2.0", "1.2.1-alpha.1", false),
        ("^1.2.0-alpha.0", "1.2.1-alpha.1", true),
        ("^0.2.3-beta.2", "0.3.4-beta.2", false),
        // Wildcards
        ("*", "0.0.0", true),
        ("*", "9.9.9", true),
        ("*", "1.2.3-alpha", false),
        ("*-0", "1.2.3-alpha", true),
        ("x", "1.0.0", true),
        ("X", "1.0.0", true),
        ("1.x", "1.9.0", true),
        ("1.X", "2.0.0", false),
        ("1.*", "1.0.0", true),
        ("1.2.x", "1.2.0", true),
        ("1.2.x", "1.3.0", false),
        ("1.x.5", "1.0.0", true),
        ("x.5.6", "1.0.0", true),
        ("1.2.x-beta", "1.2.5-alpha", true),
        // Hyphen ranges (spaces around the hyphen are required)
        ("1.2 - 1.4.5", "1.2.0", true),
        ("1.2 - 1.4.5", "1.4.5", true),
        ("1.2 - 1.4.5", "1.4.6", false),
        ("1.2 - 1.4.5", "1.1.9", false),
        ("2.3.4 - 4.5", "4.5.9", true),
        ("2.3.4 - 4.5", "4.6.0", false),
        ("1.2-1.4.5", "1.2.0-1.4.5", true),
        ("1.2-1.4.5", "1.3.0", false),
        ("1.0.0 - 2.0.0 <=1.5.0", "1.6.0", false),
        ("1 - 2 || 4", "4.1.0", true),
        // AND (space or comma) and OR
        (">= 1.2, < 3.0.0", "2.9.9", true),
        (">= 1.2 < 3.0.0", "3.0.0", false),
        (">=1.2,<3", "1.5.0", true),
        (">= 1.2 < 3.0.0 || >= 4.2.3", "4.2.3", true),
        (">= 1.2 < 3.0.0 || >= 4.2.3", "3.5.0", false),
        ("<1 || >=2 <3 || 5", "5.0.9", true),
        (">=1.1 <2 !=1.2.3", "1.2.3", false),
        (">=1.1 <2 !=1.2.3", "1.2.4", true),
        ("  >=1.1  ,  <2  ", "1.5.0", true),
        ("~1.2.3 || ^2", "2.9.0", true),
        ("\t>=1\n<2", "1.5.0", true),
        // Numbers at the 64-bit edge; an oversized pre-release number compares as a word
        (">=18446744073709551615", "18446744073709551615.0.0", true),
        ("<18446744073709551615", "18446744073709551614.0.0", true),
        (">1.0.0-99999999999999999999", "1.0.0-1", false),
        (
            ">1.0.0-18446744073709551615",
            "1.0.0-99999999999999999999",
            true,
        ),
        // Flux's own expressions
        (">= 6.1 <= 6.1.5", "6.1.6", false),
        ("~6.1.x", "6.1.6", true),
        (">= 6.1.x-0", "6.1.6-rc.1", true),
    ];

    #[test]
    fn the_constraint_grammar_compiles() {
        assert!(GRAMMAR.is_some());
    }

    #[test]
    fn constraints_match_like_masterminds_v3_3_0() {
        assert!(TABLE.len() >= 100, "{} cases", TABLE.len());
        let mut failures = Vec::new();
        for &(expression, version, expected) in TABLE {
            let constraints = match Constraints::parse(expression) {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{expression:?}: {}", render(&e)));
                    continue;
                }
            };
            if constraints.matches(&v(version)) != expected {
                failures.push(format!(
                    "{expression:?} vs {version:?}: expected {expected}"
                ));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn invalid_constraints_report_masterminds_details_in_fluxs_message() {
        let cases = [
            ("", "improper constraint: "),
            ("foo", "improper constraint: foo"),
            (">= bar", "improper constraint: >= bar"),
            ("BAR >= 1.2.3", "improper constraint: BAR >= 1.2.3"),
            ("12.3.4.1234", "improper constraint: 12.3.4.1234"),
            ("12.3.34~ 1.2.3", "improper constraint: 12.3.34~ 1.2.3"),
            ("1.2.3 -1.4", "improper constraint: 1.2.3 -1.4"),
            (">=>1", "improper constraint: >=>1"),
            ("==1", "improper constraint: ==1"),
            ("1 ||", "improper constraint: "),
            ("1,", "improper constraint: 1,"),
            (",1", "improper constraint: ,1"),
            ("1,,2", "improper constraint: 1,,2"),
            ("1.2.3 ~", "improper constraint: 1.2.3 ~"),
            ("v", "improper constraint: v"),
            ("\u{2265}1.2", "improper constraint: \u{2265}1.2"),
            ("1 - 2 || foo", "improper constraint:  foo"),
            (">= 1.2 - 1.4", "improper constraint: >=>= 1.2, <= 1.4 "),
            ("1x", "constraint Parser Error"),
            ("1.|", "constraint Parser Error"),
            ("99999999999999999999", "constraint Parser Error"),
            ("1.2.3-01", "constraint Parser Error"),
            (">=1.2.3 || <1.0.0-beta.01", "constraint Parser Error"),
        ];
        for (expression, detail) in cases {
            let err = match Constraints::parse(expression) {
                Ok(_) => panic!("{expression:?} parsed"),
                Err(e) => e,
            };
            assert!(
                matches!(err, SemverError::InvalidConstraint { .. }),
                "{err:?}"
            );
            assert_eq!(
                render(&err),
                format!("semver '{expression}' parse error: {detail}")
            );
        }
    }

    #[test]
    fn tags_parse_strictly_with_an_optional_v() {
        let valid = [
            ("1.2.3", "1.2.3"),
            ("v1.2.3", "1.2.3"),
            ("0.0.0", "0.0.0"),
            ("1.2.3-rc.1+build.5", "1.2.3-rc.1+build.5"),
            (
                "v1.2.0-x.Y.0+metadata-width-hypen",
                "1.2.0-x.Y.0+metadata-width-hypen",
            ),
            ("v1.2.3-rc1-with-hypen", "1.2.3-rc1-with-hypen"),
            ("1.2.3-18446744073709551616", "1.2.3-18446744073709551616"),
            ("18446744073709551615.0.0", "18446744073709551615.0.0"),
        ];
        for (tag, canonical) in valid {
            let Some(version) = parse_tag(tag) else {
                panic!("{tag:?} refused")
            };
            assert_eq!(version.to_string(), canonical);
            assert_eq!(version.original(), tag);
        }
        let invalid = [
            "",
            "v",
            "latest",
            "1",
            "1.2",
            "v1",
            "v1.0",
            "v1.2.beta",
            "v1.2-5",
            "v1.2-beta5",
            "\nv1.2",
            "v1.2.3.4",
            "v2025.07.03",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.3-01",
            "1.2.3-",
            "1.2.3+",
            "1.2.3+a..b",
            "1.2.3-a..b",
            "vv1.2.3",
            "V1.2.3",
            "1.2.3 ",
            " 1.2.3",
            "1.2.3\n",
            "18446744073709551616.0.0",
            "1.2.3+b+c",
            "1.2.3-\u{e9}",
            "6.2.1_ref.1234567",
        ];
        for tag in invalid {
            assert_eq!(parse_tag(tag), None, "{tag:?}");
        }
    }

    #[test]
    fn lenient_versions_coerce_like_new_version() {
        assert_eq!(v("1").to_string(), "1.0.0");
        assert_eq!(v("v1.2").to_string(), "1.2.0");
        assert_eq!(v("01.02.03").to_string(), "1.2.3");
        assert_eq!(v("1-rc.1").to_string(), "1.0.0-rc.1");
        assert_eq!(v("1+2.3").build(), "2.3");
        for bad in [
            "", "v", "1.2.3.4", "1..2", "1.2.3-", "1.2.3-01", "x", "1.x", "-1",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn precedence_follows_semver_and_ignores_build_metadata() {
        let ascending = [
            "0.0.0-0",
            "0.0.0",
            "1.0.0-0",
            "1.0.0-1",
            "1.0.0-2",
            "1.0.0-10",
            "1.0.0-99999999999999999999",
            "1.0.0-A",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
            "18446744073709551615.0.0",
        ];
        for (i, a) in ascending.iter().enumerate() {
            for (j, b) in ascending.iter().enumerate() {
                assert_eq!(v(a).cmp_precedence(&v(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
        assert_eq!(v("1.0.0+a").cmp_precedence(&v("v1.0.0+b")), Ordering::Equal);
        assert_ne!(v("1.0.0+a"), v("1.0.0+b"));
    }

    fn podinfo() -> Vec<String> {
        strings(&[
            "6.1.4",
            "6.1.5-beta.1",
            "6.1.5-rc.1",
            "6.1.5",
            "6.1.6-rc.1",
            "6.1.6",
            "6.2.1_ref.1234567",
            "6.2.1",
        ])
    }

    #[test]
    fn select_tag_reproduces_fluxs_examples() {
        let three = strings(&["6.1.4", "6.1.5", "6.1.6"]);
        assert_eq!(
            select_tag(&three, ">= 6.1 <= 6.1.5", None, false),
            Ok("6.1.5".into())
        );
        assert_eq!(
            select_tag(&three, ">= 6.1.5", None, false),
            Ok("6.1.6".into())
        );
        let none = select_tag(&three, "<= 6.1.0", None, false);
        assert_eq!(
            none.as_ref().map_err(|e| render(e)),
            Err("no match found for semver: <= 6.1.0".to_owned())
        );
        assert!(matches!(none, Err(SemverError::NoMatch { .. })));

        let tags = podinfo();
        assert_eq!(select_tag(&tags, "~6.1.x", None, false), Ok("6.1.6".into()));
        assert_eq!(
            select_tag(&tags, ">= 6.1.x-0", Some(".*-rc.*"), false),
            Ok("6.1.6-rc.1".into())
        );
        assert_eq!(
            select_tag(&tags, ">= 6.1.x-0", Some(".*-alpha.*"), false),
            Err(SemverError::NoMatch {
                expression: ">= 6.1.x-0".into()
            })
        );
    }

    #[test]
    fn helm_tags_carry_build_metadata_after_an_underscore() {
        let tags = podinfo();
        // Equal precedence: the first listed wins.
        assert_eq!(
            select_tag(&tags, ">= 6.2.0", None, true),
            Ok("6.2.1_ref.1234567".into())
        );
        let reversed: Vec<String> = tags.iter().rev().cloned().collect();
        assert_eq!(
            select_tag(&reversed, ">= 6.2.0", None, true),
            Ok("6.2.1".into())
        );
        // Without the Helm media type the underscore tag is not a version.
        assert_eq!(
            select_tag(&tags, ">= 6.2.0", None, false),
            Ok("6.2.1".into())
        );
        assert_eq!(
            select_tag(&strings(&["1.0.0_a", "1.0.0_b"]), "1.0.0", Some("_b"), true),
            Ok("1.0.0_b".into())
        );
    }

    #[test]
    fn ties_and_prefixes_keep_the_tag_as_listed() {
        let tags = strings(&["1.0.0", "v1.0.0"]);
        assert_eq!(select_tag(&tags, "*", None, false), Ok("1.0.0".into()));
        let tags = strings(&["v1.0.0", "1.0.0"]);
        assert_eq!(select_tag(&tags, "*", None, false), Ok("v1.0.0".into()));
        let tags = strings(&["1.0.0+b", "1.0.0+a", "0.9.0"]);
        assert_eq!(
            select_tag(&tags, ">=0.1", None, false),
            Ok("1.0.0+b".into())
        );
        let tags = strings(&["latest", "1.2", "v01.2.3", "main", "1.0.0", "v1.1.0"]);
        assert_eq!(select_tag(&tags, "*", None, false), Ok("v1.1.0".into()));
    }

    #[test]
    fn select_tag_skips_prereleases_unless_asked() {
        let tags = strings(&["1.0.0", "1.1.0-rc.1"]);
        assert_eq!(
            select_tag(&tags, ">=1.0.0", None, false),
            Ok("1.0.0".into())
        );
        assert_eq!(
            select_tag(&tags, ">=1.0.0-0", None, false),
            Ok("1.1.0-rc.1".into())
        );
        assert_eq!(
            select_tag(&tags, ">=1.0.0-0 <2.0.0", None, false),
            Ok("1.0.0".into())
        );
        assert_eq!(
            select_tag(&[], "*", None, false),
            Err(SemverError::NoMatch {
                expression: "*".into()
            })
        );
        // An empty filter is no filter, as in Flux.
        assert_eq!(
            select_tag(&tags, ">=1.0.0", Some(""), false),
            Ok("1.0.0".into())
        );
    }

    #[test]
    fn select_tag_checks_the_filter_then_the_constraint() {
        let tags = strings(&["1.0.0"]);
        let bad_filter = select_tag(&tags, "foo", Some("("), false);
        assert!(
            matches!(bad_filter, Err(SemverError::InvalidFilter { .. })),
            "{bad_filter:?}"
        );
        let bad_constraint = select_tag(&tags, "foo", Some("1"), false);
        assert_eq!(
            bad_constraint.map_err(|e| render(&e)),
            Err("semver 'foo' parse error: improper constraint: foo".to_owned())
        );
        // The constraint is refused even when the filter leaves no tag.
        let bad_constraint = select_tag(&tags, "foo", Some("nothing"), false);
        assert!(matches!(
            bad_constraint,
            Err(SemverError::InvalidConstraint { .. })
        ));
    }

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

    #[test]
    fn random_inputs_never_panic_and_keep_invariants() {
        use crate::robustness::Rng;
        let constraint_chars: Vec<char> = "0123456789.xX*|-+ ,<>=!~^vab\t\u{e9}".chars().collect();
        let regex_chars: Vec<char> = "()[]{}*+?|\\^$.-:,019aAbBdDpPQExz<>=!'_ \u{e9}"
            .chars()
            .collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let text = rng.string(&constraint_chars, 30);
            if let Some(version) = Version::parse(&text) {
                let again = Version::parse(&version.to_string());
                assert!(
                    again.is_some_and(|a| a.cmp_precedence(&version) == Ordering::Equal
                        && a.build() == version.build()),
                    "{text:?}"
                );
            }
            if parse_tag(&text).is_some() {
                assert!(Version::parse(&text).is_some(), "{text:?}");
            }
            match Constraints::parse(&text) {
                Ok(constraints) => {
                    for probe in [
                        "0.0.0",
                        "1.2.3",
                        "1.2.3-rc.1",
                        "v2.0.0+b",
                        "18446744073709551615.0.0",
                    ] {
                        let _ = constraints.matches(&v(probe));
                    }
                }
                Err(e) => assert!(matches!(e, SemverError::InvalidConstraint { .. }), "{e:?}"),
            }
        }
        let tags = strings(&[
            "1.0.0",
            "v1.2.3",
            "1.2.3-rc.1",
            "2.0.0_b",
            "latest",
            "0.1.0",
        ]);
        for _ in 0..3000 {
            let filter = rng.string(&regex_chars, 16);
            let constraint = rng.string(&constraint_chars, 12);
            let helm = rng.next().is_multiple_of(2);
            match select_tag(&tags, &constraint, Some(&filter), helm) {
                Ok(tag) => assert!(tags.contains(&tag), "{tag:?}"),
                Err(e) => assert!(!render(&e).is_empty()),
            }
        }
    }

    #[test]
    fn pathological_inputs_are_refused_or_handled_quickly() {
        let many_ors = vec!["1.2.3"; 5000].join(" || ");
        let constraints = Constraints::parse(&many_ors).map_err(|e| render(&e));
        assert!(constraints.is_ok_and(|c| c.matches(&v("1.2.3"))));

        let many_ranges = "1 - 2 ".repeat(20_000);
        let constraints = Constraints::parse(&many_ranges).map_err(|e| render(&e));
        assert!(constraints.is_ok_and(|c| c.matches(&v("1.5.0")) && !c.matches(&v("3.0.0"))));
        let dangling = "1 - 2 - ".repeat(20_000);
        assert!(Constraints::parse(&dangling).is_err());

        let huge_number = format!(">={}", "9".repeat(100_000));
        assert_eq!(
            Constraints::parse(&huge_number).map(|_| ()),
            Err(SemverError::InvalidConstraint {
                expression: huge_number.clone(),
                source: ConstraintError::Operand
            })
        );
        assert_eq!(Version::parse(&"1".repeat(1_000_000)), None);
        assert_eq!(parse_tag(&format!("1.2.3-{}", "a.".repeat(100_000))), None);

        let long_pre = format!("1.2.3-{}", "a-1.".repeat(50_000) + "z");
        assert!(Constraints::parse(&format!(">={long_pre} <2")).is_ok());

        let deep = "(".repeat(100_000);
        assert!(
            matches!(compile_go_regexp(&deep), Err(FilterError { code, .. }) if code == "missing closing )")
        );
        let nested = "(".repeat(300) + &")".repeat(300);
        assert!(compile_go_regexp(&nested).is_err());
        let wide = "a|".repeat(50_000);
        assert!(compile_go_regexp(&wide).is_ok());

        let tags: Vec<String> = (0..20_000)
            .map(|i| format!("{}.{}.{}", i % 7, i % 13, i))
            .collect();
        assert_eq!(
            select_tag(&tags, "^6", Some("^6\\."), false),
            Ok("6.12.19928".into())
        );
    }
}
