//! `matchOIDCIdentity`: which Fulcio certificates are accepted. An entry matches when its
//! issuer regular expression matches the certificate's OIDC issuer **and** its subject
//! regular expression matches one of the certificate's identities (subjectAltName values);
//! entries are OR-ed; no entry accepts any identity. Matching is unanchored (Go's
//! `regexp.MatchString`, as cosign and sigstore-go use it): anchor with `^…$` for an exact
//! match. The expressions are compiled by the caller (Go syntax, `crate::core::semver`'s
//! translator), so this module only matches.

use regex::bytes::Regex;

/// One `matchOIDCIdentity` entry, compiled.
#[derive(Debug, Clone)]
pub struct IdentityMatcher {
    /// Matched against the OIDC issuer.
    pub issuer: Regex,
    /// Matched against each identity of the certificate.
    pub subject: Regex,
}

impl IdentityMatcher {
    /// Whether this entry accepts a certificate with `issuer` and `identities`.
    pub fn accepts(&self, issuer: &str, identities: &[String]) -> bool {
        self.issuer.is_match(issuer.as_bytes())
            && identities
                .iter()
                .any(|id| self.subject.is_match(id.as_bytes()))
    }
}

/// Whether `matchers` accept a certificate with `issuer` (empty when it has none) and
/// `identities`: any entry may, and an empty list accepts every certificate.
pub fn accepted(matchers: &[IdentityMatcher], issuer: &str, identities: &[String]) -> bool {
    matchers.is_empty() || matchers.iter().any(|m| m.accepts(issuer, identities))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(issuer: &str, subject: &str) -> IdentityMatcher {
        IdentityMatcher {
            issuer: Regex::new(issuer).unwrap(),
            subject: Regex::new(subject).unwrap(),
        }
    }

    #[test]
    fn issuer_and_subject_must_both_match_one_entry_and_entries_are_ored() {
        let ids = vec!["dev@example.com".to_string()];
        let iss = "https://issuer.example";
        assert!(accepted(&[], iss, &ids));
        assert!(accepted(
            &[m("^https://issuer\\.example$", "^dev@example\\.com$")],
            iss,
            &ids
        ));
        assert!(!accepted(&[m("other", "dev@")], iss, &ids));
        assert!(!accepted(&[m("issuer", "ops@")], iss, &ids));
        // Issuer of one entry and subject of another do not combine.
        assert!(!accepted(
            &[m("other", "dev@"), m("issuer", "ops@")],
            iss,
            &ids
        ));
        assert!(accepted(
            &[m("other", "ops@"), m("issuer", "dev@")],
            iss,
            &ids
        ));
        // Unanchored, as Go's MatchString.
        assert!(accepted(&[m("issuer", "example")], iss, &ids));
        // Any identity of the certificate may match.
        let two = vec!["a@x".to_string(), "https://ci/x".to_string()];
        assert!(accepted(&[m("", "^https://ci/")], "", &two));
        assert!(!accepted(&[m("", "^https://ci/")], "", &[]));
    }
}
