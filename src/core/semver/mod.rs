//! Semver tag selection as Flux 2.6 does it for `spec.ref.semver`.
//!
//! This module owns three things, each reproducing the Go code Flux links against:
//!
//! - [`Version`] (`version.rs`): a semantic version in the Masterminds/semver v3.3.0 model (unsigned 64-bit
//!   numbers, a pre-release, build metadata, the original text). [`Version::parse`] is the lenient
//!   parser Masterminds uses for constraint operands (`v` prefix, `1` and `1.2` coerce, leading
//!   zeros allowed); [`parse_tag`] is the stricter parser Flux applies to registry tags
//!   (`fluxcd/pkg/version` v0.7.0 `ParseVersion`).
//! - [`Constraints`] (`constraints.rs`): a range expression with Masterminds v3.3.0 semantics, which is what Flux 2.6
//!   pins (a `replace` in its `go.mod`; v3.3.1 changed both version parsing and pre-release
//!   handling).
//! - [`select_tag`]: Flux's `getTagBySemver`/`filterTags`: regex filter, parse, match, highest
//!   wins, plus the Helm `_`/`+` tag encoding of later source-controller releases; its
//!   `semverFilter` is a Go regular expression, read by the translator in `regexp.rs`.
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

mod constraints;
mod regexp;

#[cfg(test)]
mod testing;
mod version;

use std::cmp::Ordering;

pub use constraints::Constraints;
pub use regexp::compile_go_regexp;
pub use version::{Version, parse_tag};

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

#[cfg(test)]
mod tests {
    use super::testing::{render, strings, v};
    use super::*;

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

#[cfg(test)]
mod properties {
    use std::cmp::Ordering;

    use proptest::prelude::*;

    use super::testing::{render, strings, v};
    use super::*;
    use crate::mutation::config;

    /// Up to `max` characters of `alphabet`.
    fn text(alphabet: &str, max: usize) -> impl Strategy<Value = String> + use<> {
        proptest::collection::vec(
            proptest::sample::select(alphabet.chars().collect::<Vec<_>>()),
            0..=max,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    const CONSTRAINT_CHARS: &str = "0123456789.xX*|-+ ,<>=!~^vab\t\u{e9}";
    const REGEX_CHARS: &str = "()[]{}*+?|\\^$.-:,019aAbBdDpPQExz<>=!'_ \u{e9}";

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..config() })]

        /// Versions, tags and constraints are parsed or refused; a parsed version prints and
        /// parses back to an equal one, and a tag is also a version.
        #[test]
        fn random_inputs_never_panic_and_keep_invariants(text in text(CONSTRAINT_CHARS, 30)) {
            if let Some(version) = Version::parse(&text) {
                let again = Version::parse(&version.to_string());
                prop_assert!(
                    again.is_some_and(|a| a.cmp_precedence(&version) == Ordering::Equal
                        && a.build() == version.build()),
                    "{:?}", text
                );
            }
            if parse_tag(&text).is_some() {
                prop_assert!(Version::parse(&text).is_some(), "{:?}", text);
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
                Err(e) => prop_assert!(matches!(e, SemverError::InvalidConstraint { .. }), "{:?}", e),
            }
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// Tag selection with any filter and constraint picks one of the tags or explains why not.
        #[test]
        fn selection_picks_a_listed_tag_or_says_why(
            filter in text(REGEX_CHARS, 16),
            constraint in text(CONSTRAINT_CHARS, 12),
            helm in any::<bool>(),
        ) {
            let tags = strings(&[
                "1.0.0",
                "v1.2.3",
                "1.2.3-rc.1",
                "2.0.0_b",
                "latest",
                "0.1.0",
            ]);
            match select_tag(&tags, &constraint, Some(&filter), helm) {
                Ok(tag) => prop_assert!(tags.contains(&tag), "{:?}", tag),
                Err(e) => prop_assert!(!render(&e).is_empty()),
            }
        }
    }
}
