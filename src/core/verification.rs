//! The verifier the controller and standalone mode use: reads the object's verification Secret
//! through its [`SecretSource`] and checks signatures with [`crate::verify`], through the
//! object's own registry client.
//!
//! Supported: `provider: cosign` with `secretRef` (public keys) and keyless `provider: cosign`
//! with `trustedRootSecretRef` (a private Sigstore's `trusted_root.json`) or without it (the
//! Sigstore trusted root from TUF, the public-good repository by default: the process's one
//! [`SigstoreRoot`]), each on Sigstore bundles (cosign v3, found through the OCI referrers) and
//! the cosign v2 `.sig` layout; `provider: notation` (trust policy and certificates of the
//! Secret, see [`crate::verify::notation`]).

use super::ports::{SecretSource, Verification, Verifier, VerifyRequest};
use crate::api::v1::{OciRepositoryVerification, OidcIdentityMatch, VerificationProvider};
use crate::core::semver::{FilterError, compile_go_regexp};
use crate::verify::keyless::{self, IdentityMatcher, TrustedRoot};
use crate::verify::tuf::SigstoreRoot;
use crate::verify::{self, KeyError, cosign};

/// The Secret entry holding a Sigstore trusted root.
pub const TRUSTED_ROOT_KEY: &str = "trusted_root.json";

/// The verification Secret does not exist (the store's own text, as Flux returns the API
/// error unwrapped).
#[derive(Debug, thiserror::Error)]
#[error("{resource} \"{name}\" not found")]
pub struct SecretNotFound {
    /// How the store names Secrets.
    pub resource: &'static str,
    /// The Secret's name.
    pub name: String,
}

/// The trusted root Secret of keyless verification could not be read (Flux's texts).
#[derive(Debug, thiserror::Error)]
#[error("failed to read trusted root from secret '{namespace}/{name}'")]
pub struct ReadTrustedRoot {
    /// The object's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
    /// Why: [`SecretNotFound`], [`MissingTrustedRoot`] or a lookup failure.
    #[source]
    pub source: BoxError,
}

/// The trusted root Secret has no `trusted_root.json` entry.
#[derive(Debug, thiserror::Error)]
#[error("'trusted_root.json' not found in secret '{namespace}/{name}'")]
pub struct MissingTrustedRoot {
    /// The object's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
}

/// A `matchOIDCIdentity` regular expression that does not compile (Go syntax).
#[derive(Debug, thiserror::Error)]
#[error("failed to compile matchOIDCIdentity {field} regexp {pattern:?}: error parsing regexp")]
pub struct InvalidIdentity {
    /// `issuer` or `subject`.
    pub field: &'static str,
    /// The expression.
    pub pattern: String,
    /// Go's parse error.
    #[source]
    pub source: FilterError,
}

/// The provider as Flux names it in a verification failure (`failed to verify the signature
/// using provider '<name>'`): `cosign`, `cosign keyless` (no `secretRef`) or `notation`.
pub fn provider_label(spec: &OciRepositoryVerification) -> &'static str {
    match (spec.provider, &spec.secret_ref) {
        (VerificationProvider::Cosign, Some(_)) => "cosign",
        (VerificationProvider::Cosign, None) => "cosign keyless",
        (VerificationProvider::Notation, _) => "notation",
    }
}

/// Compiles `matchOIDCIdentity` with Go's regular-expression syntax.
///
/// # Errors
/// [`InvalidIdentity`] for the first expression that does not compile.
pub fn identity_matchers(
    entries: &[OidcIdentityMatch],
) -> Result<Vec<IdentityMatcher>, InvalidIdentity> {
    let compile = |field, pattern: &str| {
        compile_go_regexp(pattern).map_err(|source| InvalidIdentity {
            field,
            pattern: pattern.to_string(),
            source,
        })
    };
    entries
        .iter()
        .map(|e| {
            Ok(IdentityMatcher {
                issuer: compile("issuer", &e.issuer)?,
                subject: compile("subject", &e.subject)?,
            })
        })
        .collect()
}

/// Verifies signatures with the material of the object's verification Secret.
#[derive(Debug)]
pub struct SignatureVerifier<'a, S> {
    secrets: &'a S,
    public_root: &'a SigstoreRoot,
}

impl<'a, S> SignatureVerifier<'a, S> {
    /// A verifier reading verification Secrets from `secrets`; keyless without a
    /// `trustedRootSecretRef` takes the trusted root from `public_root`.
    pub fn new(secrets: &'a S, public_root: &'a SigstoreRoot) -> SignatureVerifier<'a, S> {
        SignatureVerifier {
            secrets,
            public_root,
        }
    }
}

impl<S: SecretSource> Verifier for SignatureVerifier<'_, S> {
    async fn verify(&self, request: VerifyRequest<'_>) -> Verification {
        match (request.spec.provider, &request.spec.secret_ref) {
            (VerificationProvider::Cosign, Some(secret_ref)) => {
                match self.cosign_with_keys(&request, &secret_ref.name).await {
                    Ok(()) => Verification::Verified,
                    Err(e) => Verification::Failed(e),
                }
            }
            (VerificationProvider::Cosign, None) => match self.cosign_keyless(&request).await {
                Ok(()) => Verification::Verified,
                Err(e) => Verification::Failed(e),
            },
            (VerificationProvider::Notation, secret_ref) => {
                let name = secret_ref.as_ref().map(|r| r.name.as_str());
                match self.notation(&request, name).await {
                    Ok(verify::notation::Verdict::Verified) => Verification::Verified,
                    Ok(verify::notation::Verdict::Ignored) => Verification::Ignored,
                    Err(e) => Verification::Failed(e),
                }
            }
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S: SecretSource> SignatureVerifier<'_, S> {
    async fn trusted_root(&self, namespace: &str, name: &str) -> Result<TrustedRoot, BoxError> {
        let read = |source: BoxError| ReadTrustedRoot {
            namespace: namespace.to_string(),
            name: name.to_string(),
            source,
        };
        let json = self
            .secret_data(namespace, name)
            .await
            .map_err(read)?
            .remove(TRUSTED_ROOT_KEY)
            .ok_or_else(|| {
                read(Box::new(MissingTrustedRoot {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                }))
            })?;
        Ok(TrustedRoot::from_json(&json.0)?)
    }

    async fn cosign_keyless(&self, request: &VerifyRequest<'_>) -> Result<(), BoxError> {
        tracing::info!(
            "no secret reference is provided, trying to verify the image using keyless method"
        );
        // The TUF root is shared by the process; a Secret's is read for this object.
        let from_secret;
        let from_tuf;
        let root: &TrustedRoot = match &request.spec.trusted_root_secret_ref {
            Some(root_ref) => {
                from_secret = self.trusted_root(request.namespace, &root_ref.name).await?;
                &from_secret
            }
            None => {
                from_tuf = self.public_root.get().await?;
                &from_tuf.root
            }
        };
        let identities = identity_matchers(
            request
                .spec
                .match_oidc_identity
                .as_deref()
                .unwrap_or_default(),
        )?;
        let policy = keyless::Policy {
            root,
            identities: &identities,
        };
        match keyless::verify(
            request.client,
            request.credential,
            request.repository,
            request.digest,
            policy,
        )
        .await
        {
            Ok(verified) => {
                tracing::debug!(
                    digest = %request.digest,
                    identities = ?verified.signer.identities,
                    issuer = %verified.signer.issuer,
                    integrated_time = verified.signer.integrated_time,
                    blob = %verified.blob,
                    layout = verified.layout.as_str(),
                    "cosign keyless signature verified"
                );
                Ok(())
            }
            Err(e) => {
                tracing::info!(
                    digest = %request.digest,
                    detail = %e.detail(),
                    "no cosign keyless signature verified"
                );
                Err(Box::new(e))
            }
        }
    }

    /// The `data` of the verification Secret `namespace/name` (the store's text when it does
    /// not exist).
    async fn secret_data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, k8s_openapi::ByteString>, BoxError> {
        let secret = self
            .secrets
            .secret(namespace, name)
            .await?
            .ok_or_else(|| SecretNotFound {
                resource: self.secrets.secret_resource(),
                name: name.to_string(),
            })?;
        Ok(secret.data.unwrap_or_default())
    }

    /// Notation with the trust policy and certificates of Secret `name` (Flux's texts for a
    /// missing reference, Secret or entry).
    async fn notation(
        &self,
        request: &VerifyRequest<'_>,
        name: Option<&str>,
    ) -> Result<verify::notation::Verdict, BoxError> {
        let reference = format!("{}@{}", request.repository, request.digest);
        let Some(name) = name else {
            return Err(verify::notation::Failure(format!(
                "verification secret cannot be empty: '{reference}'"
            ))
            .into());
        };
        let data = self.secret_data(request.namespace, name).await?;
        let material = verify::notation::material(request.namespace, name, &data)?;
        let verdict = verify::notation::verify(
            request.client,
            request.credential,
            request.repository,
            request.digest,
            &material,
            k8s_openapi::jiff::Timestamp::now(),
        )
        .await?;
        tracing::debug!(digest = %request.digest, ?verdict, "notation verification");
        Ok(verdict)
    }

    async fn cosign_with_keys(
        &self,
        request: &VerifyRequest<'_>,
        name: &str,
    ) -> Result<(), BoxError> {
        let data = self.secret_data(request.namespace, name).await?;
        let keys = verify::public_keys(&data).map_err(|(entry, e): (String, KeyError)| {
            tracing::warn!(
                namespace = request.namespace,
                secret = name,
                entry = %entry,
                "public key of the verification Secret does not parse: {e}"
            );
            Box::new(e) as BoxError
        })?;
        match cosign::verify(
            request.client,
            request.credential,
            request.repository,
            request.digest,
            &keys,
        )
        .await
        {
            Ok(verified) => {
                tracing::debug!(
                    digest = %request.digest,
                    key = %verified.key,
                    payload = %verified.payload,
                    layout = verified.layout.as_str(),
                    "cosign signature verified"
                );
                Ok(())
            }
            Err(e) => {
                tracing::info!(
                    digest = %request.digest,
                    keys = keys.len(),
                    detail = %e.detail,
                    "no cosign signature verified"
                );
                Err(Box::new(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ports::testing::MapSecrets;
    use crate::registry::{Client, Credential, Digest, Repository, TransportConfig};

    fn secret(entries: &[(&str, &[u8])]) -> MapSecrets {
        MapSecrets::one("ns", "keys", entries)
    }

    /// What verifying with `spec` concludes, for checks that end before any registry request
    /// (the registry address is unroutable, so one would fail differently).
    async fn outcome(secrets: &MapSecrets, spec: serde_json::Value) -> String {
        let spec: OciRepositoryVerification = serde_json::from_value(spec).unwrap();
        let client = Client::new(&TransportConfig::default()).unwrap();
        let repo = Repository::parse("127.0.0.1:9/app").unwrap();
        let digest = Digest::sha256_of(b"artifact");
        let request = VerifyRequest {
            namespace: "ns",
            spec: &spec,
            repository: &repo,
            digest: &digest,
            client: &client,
            credential: &Credential::Anonymous,
        };
        // A mirror nothing listens on: the TUF root fails to load.
        let public_root = SigstoreRoot::new(&crate::verify::tuf::TufSettings {
            mirror: "http://127.0.0.1:9".into(),
            ..Default::default()
        })
        .unwrap();
        match SignatureVerifier::new(secrets, &public_root)
            .verify(request)
            .await
        {
            Verification::Verified => "verified".into(),
            Verification::Ignored => "ignored".into(),
            Verification::Failed(e) => crate::core::message::render(e.as_ref()),
        }
    }

    #[tokio::test]
    async fn keyless_reads_the_trusted_root_secret_with_flux_s_texts() {
        let spec =
            serde_json::json!({"provider": "cosign", "trustedRootSecretRef": {"name": "keys"}});
        assert_eq!(
            outcome(&MapSecrets::default(), spec.clone()).await,
            "failed to read trusted root from secret 'ns/keys': secrets \"keys\" not found"
        );
        assert_eq!(
            outcome(&secret(&[("other", b"x")]), spec.clone()).await,
            "failed to read trusted root from secret 'ns/keys': 'trusted_root.json' not found \
             in secret 'ns/keys'"
        );
        assert!(
            outcome(&secret(&[("trusted_root.json", b"{}")]), spec.clone())
                .await
                .starts_with("invalid trusted root: ")
        );
        // A bad identity expression fails before any registry request.
        let root = include_bytes!("../verify/keyless/testdata/trusted_root.json");
        let bad = serde_json::json!({
            "provider": "cosign", "trustedRootSecretRef": {"name": "keys"},
            "matchOIDCIdentity": [{"issuer": ".*", "subject": "["}],
        });
        assert_eq!(
            outcome(&secret(&[("trusted_root.json", root)]), bad).await,
            "failed to compile matchOIDCIdentity subject regexp \"[\": error parsing regexp: \
             missing closing ]: `[`"
        );
    }

    #[tokio::test]
    async fn keyless_without_a_trusted_root_secret_names_the_unreachable_tuf_mirror() {
        let none = MapSecrets::default();
        let message = outcome(&none, serde_json::json!({"provider": "cosign"})).await;
        assert!(
            message.starts_with(
                "failed to get the Sigstore trusted root through TUF from http://127.0.0.1:9: \
                 failed to fetch 15.root.json: "
            ),
            "{message}"
        );
    }

    #[tokio::test]
    async fn notation_needs_a_secret_with_a_policy_and_certificates() {
        let digest = Digest::sha256_of(b"artifact");
        assert_eq!(
            outcome(
                &MapSecrets::default(),
                serde_json::json!({"provider": "notation"})
            )
            .await,
            format!("verification secret cannot be empty: '127.0.0.1:9/app@{digest}'")
        );
        let spec = serde_json::json!({"provider": "notation", "secretRef": {"name": "keys"}});
        assert_eq!(
            outcome(&MapSecrets::default(), spec.clone()).await,
            "secrets \"keys\" not found"
        );
        assert_eq!(
            outcome(&secret(&[("ca.crt", b"x")]), spec.clone()).await,
            "'trustpolicy.json' not found in secret 'ns/keys'"
        );
        assert_eq!(
            outcome(
                &secret(&[("trustpolicy.json", b"{}"), ("ca.crt", b"x")]),
                spec
            )
            .await,
            "trust policy document has empty version, version must be specified"
        );
    }

    #[tokio::test]
    async fn a_missing_secret_an_unparsable_key_or_no_key_fail_before_any_request() {
        let spec = serde_json::json!({"provider": "cosign", "secretRef": {"name": "keys"}});
        assert_eq!(
            outcome(&MapSecrets::default(), spec.clone()).await,
            "secrets \"keys\" not found"
        );
        assert_eq!(
            outcome(&secret(&[("bad.pub", b"junk")]), spec.clone()).await,
            "PEM decoding failed"
        );
        let digest = Digest::sha256_of(b"artifact");
        assert_eq!(
            outcome(&secret(&[("cosign.key", b"private")]), spec).await,
            format!("no matching signatures were found for '127.0.0.1:9/app@{digest}'")
        );
    }
}
