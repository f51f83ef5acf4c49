//! [`Version`]: a semantic version in the Masterminds/semver v3.3.0 model, its lenient parser for
//! constraint operands, the strict [`parse_tag`] Flux applies to registry tags, and precedence.

use std::cmp::Ordering;
use std::fmt;

/// A semantic version as Masterminds/semver v3.3.0 models it.
///
/// Equality (`==`) is structural: it compares every part, build metadata and original text
/// included. Use [`Version::cmp_precedence`] for semver precedence, which ignores build metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub(super) major: u64,
    pub(super) minor: u64,
    pub(super) patch: u64,
    pub(super) pre: String,
    pub(super) build: String,
    pub(super) original: String,
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

    pub(super) fn precedes(&self, other: &Version) -> bool {
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
pub(super) fn compare_prerelease(a: &str, b: &str) -> Ordering {
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

#[cfg(test)]
mod tests {
    use super::super::testing::v;
    use super::*;

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
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::mutation::config;

    /// A dot-separated list of identifiers (pre-release or build metadata), numbers without
    /// leading zeros.
    fn identifiers() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof!["[a-zA-Z-][a-zA-Z0-9-]{0,6}", "0|[1-9][0-9]{0,5}"],
            1..4,
        )
        .prop_map(|ids| ids.join("."))
    }

    proptest! {
        #![proptest_config(config())]

        /// A strict semantic version parses, and prints back as the same text (without `v`).
        #[test]
        fn a_version_prints_as_it_was_written(
            major in any::<u64>(),
            minor in 0u64..1000,
            patch in 0u64..1000,
            pre in proptest::option::of(identifiers()),
            build in proptest::option::of(identifiers()),
            prefix in any::<bool>(),
        ) {
            let mut text = format!("{major}.{minor}.{patch}");
            if let Some(pre) = &pre {
                text = format!("{text}-{pre}");
            }
            if let Some(build) = &build {
                text = format!("{text}+{build}");
            }
            let written = if prefix { format!("v{text}") } else { text.clone() };
            let version = Version::parse(&written);
            prop_assert!(version.is_some(), "{:?}", written);
            prop_assert_eq!(version.unwrap().to_string(), text.clone());
            prop_assert!(parse_tag(&written).is_some(), "{:?}", written);
        }
    }
}
