//! The Notary Project trust policy (`trustpolicy.json`, version 1.0) with notation-go v1.3.2's
//! rules: validation (version, statements, names, levels and overrides, trust stores, trusted
//! identities, registry scopes) with its error texts, Flux's clean-up of `skip` statements, and
//! the choice of the statement that applies to an artifact.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;

use super::dn;
use super::gotext::go_quote;

/// How notation's texts point at trust policy documentation.
const TRUST_POLICY_LINK: &str = "https://notaryproject.dev/docs/quickstart/#create-a-trust-policy";

/// A trust policy document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    /// `version`: `1.0` is the only one.
    pub version: String,
    /// `trustPolicies`.
    pub trust_policies: Vec<Statement>,
}

/// One trust policy statement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statement {
    /// `name`.
    pub name: String,
    /// `registryScopes`: `<registry>/<repository>` values, or `*` alone.
    pub registry_scopes: Vec<String>,
    /// `signatureVerification`.
    pub signature_verification: SignatureVerification,
    /// `trustStores`: `<type>:<name>` values.
    pub trust_stores: Vec<String>,
    /// `trustedIdentities`: `x509.subject:<DN>` values, or `*` alone.
    pub trusted_identities: Vec<String>,
}

/// A statement's `signatureVerification`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureVerification {
    /// `level`: `strict`, `permissive`, `audit` or `skip`.
    pub level: String,
    /// `override`: validation type to action.
    pub override_: BTreeMap<String, String>,
    /// `verifyTimestamp`: empty, `always` or `afterCertExpiry`.
    pub verify_timestamp: String,
}

/// A validation notation performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    /// The signature over the payload.
    Integrity,
    /// The certificate chain to the trust store, and the trusted identity.
    Authenticity,
    /// Certificate validity at signing (or verification) time.
    AuthenticTimestamp,
    /// The signature's own expiry.
    Expiry,
    /// OCSP/CRL revocation.
    Revocation,
}

impl Check {
    /// Every check, in notation's order.
    pub const ALL: [Check; 5] = [
        Check::Integrity,
        Check::Authenticity,
        Check::AuthenticTimestamp,
        Check::Expiry,
        Check::Revocation,
    ];

    /// The policy's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Integrity => "integrity",
            Check::Authenticity => "authenticity",
            Check::AuthenticTimestamp => "authenticTimestamp",
            Check::Expiry => "expiry",
            Check::Revocation => "revocation",
        }
    }
}

/// What a failed check does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The signature fails.
    Enforce,
    /// The failure is logged.
    Log,
    /// The check is not made.
    Skip,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        match s {
            "enforce" => Some(Action::Enforce),
            "log" => Some(Action::Log),
            "skip" => Some(Action::Skip),
            _ => None,
        }
    }
}

/// A verification level: its name and the action of each check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Level {
    /// `strict`, `permissive`, `audit`, `skip`, or `custom` with overrides.
    pub name: &'static str,
    actions: [Action; 5],
}

impl Level {
    /// The action for `check`.
    pub fn action(&self, check: Check) -> Action {
        self.actions[check as usize]
    }

    /// Whether nothing is verified.
    pub fn is_skip(&self) -> bool {
        self.name == "skip"
    }

    fn base(name: &str) -> Option<Level> {
        use Action::{Enforce as E, Log as L, Skip as S};
        let (name, actions) = match name {
            "strict" => ("strict", [E, E, E, E, E]),
            "permissive" => ("permissive", [E, E, L, L, L]),
            "audit" => ("audit", [E, L, L, L, L]),
            "skip" => ("skip", [S, S, S, S, S]),
            _ => return None,
        };
        Some(Level { name, actions })
    }
}

const TYPE_NAMES: &str =
    "[\"integrity\" \"authenticity\" \"authenticTimestamp\" \"expiry\" \"revocation\"]";
const ACTION_NAMES: &str = "[\"enforce\" \"log\" \"skip\"]";

impl SignatureVerification {
    /// The level with its overrides applied.
    ///
    /// # Errors
    /// notation-go's texts for a missing or unknown level and invalid overrides.
    pub fn level(&self) -> Result<Level, String> {
        if self.level.is_empty() {
            return Err(
                "signature verification level is empty or missing in the trust policy statement"
                    .into(),
            );
        }
        let Some(mut level) = Level::base(&self.level) else {
            return Err(format!(
                "invalid signature verification level {}",
                go_quote(&self.level)
            ));
        };
        if self.override_.is_empty() {
            return Ok(level);
        }
        if level.is_skip() {
            return Err(format!(
                "signature verification level {} can't be used to customize signature verification",
                go_quote(level.name)
            ));
        }
        level.name = "custom";
        for (key, value) in &self.override_ {
            let Some(check) = Check::ALL.into_iter().find(|c| c.as_str() == key) else {
                return Err(format!(
                    "verification type {} in custom signature verification is not supported, \
                     supported values are {TYPE_NAMES}",
                    go_quote(key)
                ));
            };
            let Some(action) = Action::parse(value) else {
                return Err(format!(
                    "verification action {} in custom signature verification is not supported, \
                     supported values are {ACTION_NAMES}",
                    go_quote(value)
                ));
            };
            if check == Check::Integrity {
                return Err(format!(
                    "{} verification can not be overridden in custom signature verification",
                    go_quote(key)
                ));
            }
            if check != Check::Revocation && action == Action::Skip {
                return Err(format!(
                    "{} verification can not be skipped in custom signature verification",
                    go_quote(key)
                ));
            }
            level.actions[check as usize] = action;
        }
        Ok(level)
    }
}

/// Trust store types notation knows.
pub const STORE_TYPES: [&str; 3] = ["ca", "signingAuthority", "tsa"];

fn valid_store_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Statement {
    fn validate(&self) -> Result<(), String> {
        let name = go_quote(&self.name);
        if self.name.is_empty() {
            return Err(
                "a trust policy statement is missing a name, every statement requires a name"
                    .into(),
            );
        }
        let level = self.signature_verification.level().map_err(|e| {
            format!("trust policy statement {name} has invalid signatureVerification: {e}")
        })?;
        let ts = &self.signature_verification.verify_timestamp;
        if !ts.is_empty() && ts != "always" && ts != "afterCertExpiry" {
            return Err(format!(
                "trust policy statement {name} has invalid signatureVerification: verifyTimestamp \
                 must be \"always\" or \"afterCertExpiry\", but got {}",
                go_quote(ts)
            ));
        }
        if level.is_skip() {
            if !self.trust_stores.is_empty() || !self.trusted_identities.is_empty() {
                return Err(format!(
                    "trust policy statement {name} is set to skip signature verification but \
                     configured with trust stores and/or trusted identities, remove them if \
                     signature verification needs to be skipped"
                ));
            }
            return Ok(());
        }
        if self.trust_stores.is_empty() || self.trusted_identities.is_empty() {
            return Err(format!(
                "trust policy statement {name} is either missing trust stores or trusted \
                 identities, both must be specified"
            ));
        }
        for store in &self.trust_stores {
            let Some((kind, store_name)) = store.split_once(':') else {
                return Err(format!(
                    "trust policy statement {name} has malformed trust store value {}. The \
                     required format is <TrustStoreType>:<TrustStoreName>",
                    go_quote(store)
                ));
            };
            if !STORE_TYPES.contains(&kind) {
                return Err(format!(
                    "trust policy statement {name} uses an unsupported trust store type {} in \
                     trust store value {}",
                    go_quote(kind),
                    go_quote(store)
                ));
            }
            if !valid_store_name(store_name) {
                return Err(format!(
                    "trust policy statement {name} uses an unsupported trust store name {} in \
                     trust store value {}. Named store name needs to follow [a-zA-Z0-9_.-]+ format",
                    go_quote(store_name),
                    go_quote(store)
                ));
            }
        }
        self.validate_identities(&name)
    }

    fn validate_identities(&self, name: &str) -> Result<(), String> {
        let ids = &self.trusted_identities;
        if ids.len() > 1 && ids.iter().any(|i| i == "*") {
            return Err(format!(
                "trust policy statement {name} uses a wildcard trusted identity '*', a wildcard \
                 identity cannot be used in conjunction with other values"
            ));
        }
        let mut parsed: Vec<(&str, dn::Dn)> = Vec::new();
        for identity in ids {
            if identity.is_empty() {
                return Err(format!(
                    "trust policy statement {name} has an empty trusted identity"
                ));
            }
            if let Some(dn) = x509_identity(name, identity)? {
                let dn = dn.map_err(|e| {
                    format!(
                        "trust policy statement {name} has trusted identity {} with invalid \
                         identity value: {e}",
                        go_quote(identity)
                    )
                })?;
                parsed.push((identity, dn));
            }
        }
        for (i, (raw1, dn1)) in parsed.iter().enumerate() {
            for (j, (raw2, dn2)) in parsed.iter().enumerate() {
                if i != j && dn::is_subset(dn1, dn2) {
                    return Err(format!(
                        "trust policy statement {name} has overlapping x509 trustedIdentities, \
                         {} overlaps with {}",
                        go_quote(raw1),
                        go_quote(raw2)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The DN of an `x509.subject:` trusted identity (`None` for `*` and other prefixes), or why
/// it is malformed; the inner result is the DN's own parse.
///
/// # Errors
/// notation-go's texts for an identity without `:` or without a value (`name` is the quoted
/// statement name).
pub fn x509_identity(name: &str, identity: &str) -> Result<Option<Result<dn::Dn, String>>, String> {
    if identity == "*" {
        return Ok(None);
    }
    let Some((prefix, value)) = identity.split_once(':') else {
        return Err(format!(
            "trust policy statement {name} has trusted identity {} missing separator",
            go_quote(identity)
        ));
    };
    if prefix != "x509.subject" {
        return Ok(None);
    }
    if value.is_empty() {
        return Err(format!(
            "trust policy statement {name} has trusted identity {} without an identity value",
            go_quote(identity)
        ));
    }
    Ok(Some(dn::parse(value)))
}

static DOMAIN: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?$",
    )
    .ok()
});
static REPOSITORY: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?$",
    )
    .ok()
});

/// Checks a registry scope's form (`<domain>/<repository>`, no wildcard inside).
fn validate_scope(scope: &str) -> Result<(), String> {
    const ENSURE: &str = "make sure it is a fully qualified repository without the scheme, \
                          protocol or tag. For example domain.com/my/repository or a local scope \
                          like local/myOCILayout";
    if scope.len() > 1 && scope.contains('*') {
        return Err(format!(
            "registry scope {} with wild card(s) is not valid, {ENSURE}",
            go_quote(scope)
        ));
    }
    let ok = scope.split_once('/').is_some_and(|(domain, repo)| {
        !domain.is_empty()
            && !repo.is_empty()
            && DOMAIN.as_ref().is_some_and(|r| r.is_match(domain))
            && REPOSITORY.as_ref().is_some_and(|r| r.is_match(repo))
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "registry scope {} is not valid, {ENSURE}",
            go_quote(scope)
        ))
    }
}

impl Document {
    /// Flux's clean-up: a `skip` statement's trust stores and trusted identities are emptied
    /// (notation refuses them); returns the names of the statements that had some, for a
    /// warning.
    pub fn clean_skip_statements(&mut self) -> Vec<String> {
        let mut cleaned = Vec::new();
        for s in &mut self.trust_policies {
            if s.signature_verification.level == "skip" {
                if !s.trust_stores.is_empty() || !s.trusted_identities.is_empty() {
                    cleaned.push(s.name.clone());
                }
                s.trust_stores.clear();
                s.trusted_identities.clear();
            }
        }
        cleaned
    }

    /// notation-go's `Document.Validate`.
    ///
    /// # Errors
    /// notation-go's text for the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.version.is_empty() {
            return Err(
                "trust policy document has empty version, version must be specified".into(),
            );
        }
        if self.version != "1.0" {
            return Err(format!(
                "trust policy document uses unsupported version {}",
                go_quote(&self.version)
            ));
        }
        if self.trust_policies.is_empty() {
            return Err("trust policy document can not have zero trust policy statements".into());
        }
        let mut names = BTreeSet::new();
        for s in &self.trust_policies {
            if names.contains(&s.name) {
                return Err(format!(
                    "multiple trust policy statements use the same name {}, statement names must \
                     be unique",
                    go_quote(&s.name)
                ));
            }
            s.validate().map_err(|e| format!("trust policy: {e}"))?;
            names.insert(s.name.clone());
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &self.trust_policies {
            let name = go_quote(&s.name);
            if s.registry_scopes.is_empty() {
                return Err(format!(
                    "trust policy statement {name} has zero registry scopes, it must specify \
                     registry scopes with at least one value"
                ));
            }
            if s.registry_scopes.len() > 1 && s.registry_scopes.iter().any(|r| r == "*") {
                return Err(format!(
                    "trust policy statement {name} uses wildcard registry scope '*', a wildcard \
                     scope cannot be used in conjunction with other scope values"
                ));
            }
            for scope in &s.registry_scopes {
                if scope != "*" {
                    validate_scope(scope)?;
                }
                *counts.entry(scope).or_default() += 1;
            }
        }
        if let Some((scope, _)) = counts.iter().find(|(_, n)| **n > 1) {
            return Err(format!(
                "registry scope {} is present in multiple trust policy statements, one registry \
                 scope value can only be associated with one statement",
                go_quote(scope)
            ));
        }
        Ok(())
    }

    /// The statement that applies to `reference` (`<registry>/<repository>@<digest>`): the one
    /// naming its repository, else the `*` one.
    ///
    /// # Errors
    /// notation-go's texts for a reference without a digest, an invalid repository, or no
    /// applicable statement.
    pub fn applicable(&self, reference: &str) -> Result<&Statement, String> {
        let Some(at) = reference.rfind('@') else {
            return Err(format!(
                "artifact URI {} could not be parsed, make sure it is the fully qualified oci \
                 artifact URI without the scheme/protocol. e.g domain.com:80/my/repository@sha256:digest",
                go_quote(reference)
            ));
        };
        let path = &reference[..at];
        validate_scope(path)?;
        let mut wildcard = None;
        let mut exact = None;
        for s in &self.trust_policies {
            if s.registry_scopes.iter().any(|r| r == "*") {
                wildcard = Some(s);
            } else if s.registry_scopes.iter().any(|r| r == path) {
                exact = Some(s);
            }
        }
        exact.or(wildcard).ok_or_else(|| {
            format!(
                "artifact {} has no applicable trust policy statement. Trust policy applicability \
                 for a given artifact is determined by registryScopes. To create a trust policy, \
                 see: {TRUST_POLICY_LINK}",
                go_quote(reference)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::gojson::decode_document;
    use super::*;

    const GOOD: &str = r#"{"version": "1.0", "trustPolicies": [{
        "name": "test-statement-name", "registryScopes": ["*"],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:valid-trust-store"],
        "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Notary"]}]}"#;

    fn doc(edit: impl FnOnce(&mut serde_json::Value)) -> Document {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        edit(&mut v);
        decode_document(v.to_string().as_bytes()).unwrap()
    }

    fn error(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        doc(edit).validate().unwrap_err()
    }

    #[test]
    fn a_valid_policy_validates_and_applies_to_any_repository() {
        let d = doc(|_| {});
        assert_eq!(d.validate(), Ok(()));
        let s = d.applicable("127.0.0.1:5000/app@sha256:00").unwrap();
        assert_eq!(s.name, "test-statement-name");
        assert_eq!(s.signature_verification.level().unwrap().name, "strict");
    }

    #[test]
    fn invalid_documents_are_refused_with_notations_texts() {
        assert_eq!(
            Document::default().validate().unwrap_err(),
            "trust policy document has empty version, version must be specified"
        );
        assert_eq!(
            error(|v| v["version"] = "2.0".into()),
            "trust policy document uses unsupported version \"2.0\""
        );
        assert_eq!(
            error(|v| v["trustPolicies"] = serde_json::json!([])),
            "trust policy document can not have zero trust policy statements"
        );
        assert_eq!(
            error(|v| {
                let s = v["trustPolicies"][0].clone();
                v["trustPolicies"].as_array_mut().unwrap().push(s);
            }),
            "multiple trust policy statements use the same name \"test-statement-name\", \
             statement names must be unique"
        );
        assert_eq!(
            error(|v| v["trustPolicies"][0]["signatureVerification"]["level"] = "lax".into()),
            "trust policy: trust policy statement \"test-statement-name\" has invalid \
             signatureVerification: invalid signature verification level \"lax\""
        );
        assert_eq!(
            error(
                |v| v["trustPolicies"][0]["signatureVerification"]["override"] =
                    serde_json::json!({"integrity": "log"})
            ),
            "trust policy: trust policy statement \"test-statement-name\" has invalid \
             signatureVerification: \"integrity\" verification can not be overridden in custom \
             signature verification"
        );
        assert_eq!(
            error(|v| v["trustPolicies"][0]["trustStores"] = serde_json::json!(["ca"])),
            "trust policy: trust policy statement \"test-statement-name\" has malformed trust \
             store value \"ca\". The required format is <TrustStoreType>:<TrustStoreName>"
        );
        assert!(
            error(|v| v["trustPolicies"][0]["trustStores"] = serde_json::json!(["x509:a"]))
                .contains("unsupported trust store type \"x509\"")
        );
        assert!(
            error(|v| v["trustPolicies"][0]["trustedIdentities"] = serde_json::json!(["*", "x"]))
                .contains("wildcard trusted identity '*'")
        );
        assert!(
            error(
                |v| v["trustPolicies"][0]["trustedIdentities"] = serde_json::json!([
                    "x509.subject: C=US, ST=WA, O=N",
                    "x509.subject: C=US, ST=WA, O=N, CN=x"
                ])
            )
            .contains("has overlapping x509 trustedIdentities")
        );
        assert!(
            error(|v| v["trustPolicies"][0]["trustedIdentities"] =
                serde_json::json!(["x509.subject: C=US"]))
            .contains("with invalid identity value: distinguished name (DN)")
        );
        assert_eq!(
            error(|v| v["trustPolicies"][0]["registryScopes"] = serde_json::json!(["*", "a.io/b"])),
            "trust policy statement \"test-statement-name\" uses wildcard registry scope '*', a \
             wildcard scope cannot be used in conjunction with other scope values"
        );
        assert!(
            error(|v| v["trustPolicies"][0]["registryScopes"] = serde_json::json!(["a.io/B"]))
                .starts_with("registry scope \"a.io/B\" is not valid")
        );
        assert!(
            error(|v| v["trustPolicies"][0]["registryScopes"] = serde_json::json!(["a.io/*"]))
                .starts_with("registry scope \"a.io/*\" with wild card(s) is not valid")
        );
        assert!(
            error(|v| v["trustPolicies"][0]["signatureVerification"]["level"] = "skip".into())
                .contains("is set to skip signature verification but configured")
        );
    }

    #[test]
    fn skip_statements_are_cleaned_and_scopes_pick_the_exact_statement_first() {
        let mut d = doc(|v| {
            v["trustPolicies"][0]["signatureVerification"]["level"] = "skip".into();
            v["trustPolicies"][0]["registryScopes"] = serde_json::json!(["reg.io/skipped"]);
            let mut other = v["trustPolicies"][0].clone();
            other["name"] = "all".into();
            other["registryScopes"] = serde_json::json!(["*"]);
            other["signatureVerification"]["level"] = "audit".into();
            v["trustPolicies"].as_array_mut().unwrap().push(other);
        });
        assert_eq!(d.clean_skip_statements(), ["test-statement-name"]);
        assert_eq!(d.validate(), Ok(()));
        assert_eq!(
            d.applicable("reg.io/skipped@sha256:0").unwrap().name,
            "test-statement-name"
        );
        assert_eq!(d.applicable("reg.io/other@sha256:0").unwrap().name, "all");
        assert!(
            d.applicable("reg.io/other")
                .unwrap_err()
                .starts_with("artifact URI")
        );
        let mut only = d.clone();
        only.trust_policies.truncate(1);
        assert!(
            only.applicable("reg.io/other@sha256:0")
                .unwrap_err()
                .contains("has no applicable trust policy statement")
        );
    }

    #[test]
    fn overrides_change_single_checks() {
        let sv = SignatureVerification {
            level: "strict".into(),
            override_: BTreeMap::from([
                ("revocation".into(), "skip".into()),
                ("expiry".into(), "log".into()),
            ]),
            verify_timestamp: String::new(),
        };
        let l = sv.level().unwrap();
        assert_eq!(l.name, "custom");
        assert_eq!(l.action(Check::Revocation), Action::Skip);
        assert_eq!(l.action(Check::Expiry), Action::Log);
        assert_eq!(l.action(Check::Authenticity), Action::Enforce);
    }
}
