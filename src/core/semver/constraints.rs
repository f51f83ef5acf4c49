//! [`Constraints`]: range expressions with Masterminds/semver v3.3.0 grammar and semantics
//! (comparators, `||` groups, hyphen, tilde, caret and wildcard ranges, the per-comparator
//! pre-release rule described in the parent module).

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use super::version::{Version, compare_prerelease};
use super::{ConstraintError, SemverError};

/// A parsed range expression with Masterminds/semver v3.3.0 semantics.
///
/// Syntax: comparators `=`, `!=`, `>`, `<`, `>=` (also `=>`), `<=` (also `=<`), `~` (also `~>`),
/// `^`, or none (equality); operands with an optional `v`, one to three parts, wildcards
/// `x`/`X`/`*`, pre-release and build; AND by spaces or a comma, OR by `||`; hyphen ranges
/// `1.2 - 1.4.5` meaning `>= 1.2, <= 1.4.5`. See the [module documentation](super) for the
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

#[cfg(test)]
mod tests {
    use super::super::testing::{render, v};
    use super::*;

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
}
