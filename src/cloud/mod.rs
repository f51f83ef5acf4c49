//! Cloud registry login for `spec.provider` (`aws`, `azure`, `gcp`), as fluxcd/pkg `auth` does it
//! for source-controller: used only when the object has no static credentials (no `secretRef`,
//! no pull secrets on its service account), with the controller's own cloud identity.
//!
//! [`login`] first checks the registry host against the provider's pattern ([`host`]), then
//! answers from a small per-(provider, registry) cache ([`cache`]), then obtains a token:
//!
//! | provider | identity chain | registry credential |
//! |---|---|---|
//! | `aws` | the AWS SDK default chain (env, profile, IRSA web identity, EKS Pod Identity, IMDS), in the registry's region | ECR `GetAuthorizationToken` (ECR Public for `public.ecr.aws`), `base64(user:password)` |
//! | `azure` | environment client secret, workload identity (`AZURE_FEDERATED_TOKEN_FILE`), managed identity | Entra ID token for the cloud's ARM scope exchanged at `https://<registry>/oauth2/exchange`; user `00000000-0000-0000-0000-000000000000` |
//! | `gcp` | `GOOGLE_APPLICATION_CREDENTIALS` key file, gcloud ADC file, metadata server | OAuth2 access token; user `oauth2accesstoken` |
//!
//! The SDKs are optional: each provider needs its cargo feature (`aws`, `azure`, `gcp`); without
//! it the login fails with [`CloudError::NotCompiled`], which names the feature. The pure parts
//! (host patterns, token decoding, the ACR exchange and the GCP metadata-server request) are
//! always compiled and tested.
//!
//! Not implemented: object-level workload identity (`spec.serviceAccountName` with a provider and
//! the `ObjectLevelWorkloadIdentity` gate on), which needs a Kubernetes TokenRequest for the
//! service account and a per-provider token exchange; see [`CloudError::ObjectLevelWorkloadIdentity`].
//! The object's `proxySecretRef` is not applied to cloud calls (the SDKs honour the
//! `HTTPS_PROXY` environment).

pub mod aws;
pub mod azure;
pub mod cache;
pub mod gcp;
pub mod host;

#[cfg(test)]
mod fake;

use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime};

pub use cache::TokenCache;
pub use host::Target;

use crate::api::v1::Provider;
use crate::registry::Credential;

/// The process-wide credential cache used by [`login`].
static CACHE: LazyLock<TokenCache> = LazyLock::new(TokenCache::new);

/// A registry credential and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What to present to the registry (always [`Credential::Basic`]).
    pub credential: Credential,
    /// When the registry stops accepting it.
    pub expires_at: SystemTime,
}

/// Why a cloud login failed. Messages never contain a credential.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The registry host does not match the provider's pattern (Flux's wording).
    #[error("invalid {provider} registry: '{registry}'. must match {pattern}")]
    InvalidRegistry {
        /// `AWS`, `Azure` or `GCP`.
        provider: &'static str,
        /// The registry host.
        registry: String,
        /// The pattern it must match.
        pattern: &'static str,
    },
    /// The provider's SDK is not compiled into this build.
    #[error(
        "cloud login for {provider} is not compiled into this build of ocisource: rebuild it with `cargo build --features {provider}`"
    )]
    NotCompiled {
        /// `aws`, `azure` or `gcp`: also the cargo feature's name.
        provider: &'static str,
    },
    /// `spec.serviceAccountName` with a provider and the feature gate on.
    #[error(
        "failed to log in as service account '{service_account}': object-level workload identity is not supported by ocisource yet; remove spec.serviceAccountName to use the controller's identity, or use a pull secret"
    )]
    ObjectLevelWorkloadIdentity {
        /// The service account named by the object.
        service_account: String,
    },
    /// The deadline (`spec.timeout`) passed.
    #[error("failed to get a token within the timeout (spec.timeout)")]
    Timeout,
    /// The SDK or identity endpoint failed.
    #[error("failed to {what}")]
    Provider {
        /// What was being done (`get an ECR authorization token`).
        what: &'static str,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An HTTP request of ours failed.
    #[error("failed to {what}")]
    Http {
        /// What was being done.
        what: &'static str,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// An endpoint answered with a non-success status (the body is not shown: it may hold a
    /// token).
    #[error("unexpected status from {what}: {status}")]
    Status {
        /// The endpoint (`ACR exchange request`, Flux's wording).
        what: &'static str,
        /// The HTTP status code.
        status: u16,
    },
    /// A token or token response could not be read (the content is not shown).
    #[error("failed to parse {what}: {reason}")]
    Parse {
        /// What was parsed.
        what: &'static str,
        /// Why it is unusable.
        reason: &'static str,
    },
}

/// The name of `provider` as in `spec.provider` (`generic`, `aws`, `azure`, `gcp`).
pub fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Generic => "generic",
        Provider::Aws => "aws",
        Provider::Azure => "azure",
        Provider::Gcp => "gcp",
    }
}

/// Logs in to `registry` (`host[:port]`, as in [`crate::registry::Repository::registry`]) with
/// the controller's identity at `provider`, giving up at `deadline`.
///
/// [`Provider::Generic`] gives [`Credential::Anonymous`] (no cloud login). Credentials are cached
/// process-wide per (provider, registry) for 80 % of their lifetime, at most an hour.
///
/// # Errors
///
/// [`CloudError::InvalidRegistry`] when the host is not one of the provider's registries,
/// [`CloudError::NotCompiled`] when the provider's cargo feature is off, [`CloudError::Timeout`]
/// at the deadline, and the provider's own failures.
pub async fn login(
    provider: Provider,
    registry: &str,
    deadline: Instant,
) -> Result<Credential, CloudError> {
    login_with(&CACHE, provider, registry, deadline).await
}

/// [`login`] with an explicit cache.
///
/// # Errors
///
/// As [`login`].
pub async fn login_with(
    cache: &TokenCache,
    provider: Provider,
    registry: &str,
    deadline: Instant,
) -> Result<Credential, CloudError> {
    let Some(target) = host::parse(provider, registry)? else {
        return Ok(Credential::Anonymous);
    };
    let name = provider_name(provider);
    let now = Instant::now();
    if let Some(credential) = cache.get(name, registry, now) {
        tracing::debug!(
            provider = name,
            registry,
            "cloud registry credential from cache"
        );
        return Ok(credential);
    }
    // Checked first: `timeout_at` polls its future once even when the deadline has passed.
    if now >= deadline {
        return Err(CloudError::Timeout);
    }
    let token = tokio::time::timeout_at(deadline.into(), fetch(&target))
        .await
        .map_err(|_| CloudError::Timeout)??;
    let valid_for = token
        .expires_at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    tracing::debug!(
        provider = name,
        registry,
        valid_for_secs = valid_for.as_secs(),
        "obtained cloud registry credential"
    );
    cache.put(
        name,
        registry,
        token.credential.clone(),
        token.expires_at,
        Instant::now(),
        SystemTime::now(),
    );
    Ok(token.credential)
}

async fn fetch(target: &Target) -> Result<Token, CloudError> {
    match target {
        Target::Ecr { region } => aws::login(region, false).await,
        Target::EcrPublic => aws::login(aws::ECR_PUBLIC_REGION, true).await,
        Target::Acr { registry } => azure::login(registry).await,
        Target::Gcp => gcp::login().await,
    }
}

/// An HTTP client for the requests made here (ACR exchange, GCP metadata server). `proxy`:
/// honour the `HTTPS_PROXY`/`NO_PROXY` environment (never for link-local metadata servers).
#[cfg(any(feature = "azure", feature = "gcp"))]
fn http_client(proxy: bool) -> Result<reqwest::Client, CloudError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("ocisource/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10));
    if !proxy {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|source| CloudError::Http {
        what: "build an HTTP client",
        source,
    })
}

/// Reads a response of at most `limit` bytes; a non-success status is [`CloudError::Status`].
async fn read_body(
    response: reqwest::Response,
    what: &'static str,
    limit: usize,
) -> Result<Vec<u8>, CloudError> {
    let status = response.status();
    if !status.is_success() {
        return Err(CloudError::Status {
            what,
            status: status.as_u16(),
        });
    }
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|source| CloudError::Http {
        what: "read the token response",
        source,
    })? {
        if body.len() + chunk.len() > limit {
            return Err(CloudError::Parse {
                what,
                reason: "response too large",
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECR: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn generic_is_anonymous() {
        let cache = TokenCache::new();
        let c = login_with(&cache, Provider::Generic, "ghcr.io", soon())
            .await
            .unwrap();
        assert!(c.is_anonymous());
    }

    #[tokio::test]
    async fn a_foreign_host_fails_before_any_network() {
        let cache = TokenCache::new();
        for (provider, host, name) in [
            (Provider::Aws, "ghcr.io", "AWS"),
            (Provider::Azure, ECR, "Azure"),
            (Provider::Gcp, "myregistry.azurecr.io", "GCP"),
        ] {
            // An expired deadline too: the host check comes first.
            let err = login_with(&cache, provider, host, Instant::now())
                .await
                .unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid {name} registry: '{host}'. must match ")),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn a_cached_credential_is_used_without_login() {
        let cache = TokenCache::new();
        let cred = Credential::Basic {
            username: "AWS".into(),
            password: "secret".into(),
        };
        cache.put(
            "aws",
            ECR,
            cred.clone(),
            SystemTime::now() + Duration::from_secs(3600),
            Instant::now(),
            SystemTime::now(),
        );
        let got = login_with(&cache, Provider::Aws, ECR, Instant::now())
            .await
            .unwrap();
        assert_eq!(got, cred);
        // Keyed by provider too.
        let err = login_with(&cache, Provider::Gcp, ECR, soon())
            .await
            .unwrap_err();
        assert!(matches!(err, CloudError::InvalidRegistry { .. }));
    }

    #[tokio::test]
    async fn an_expired_deadline_fails_before_any_network() {
        let cache = TokenCache::new();
        for (provider, host) in [
            (Provider::Aws, ECR),
            (Provider::Aws, host::ECR_PUBLIC),
            (Provider::Azure, "myregistry.azurecr.io"),
            (Provider::Gcp, "gcr.io"),
        ] {
            let err = login_with(&cache, provider, host, Instant::now())
                .await
                .unwrap_err();
            assert!(matches!(err, CloudError::Timeout), "{err}");
            assert_eq!(
                err.to_string(),
                "failed to get a token within the timeout (spec.timeout)"
            );
        }
    }

    /// Without its feature a provider names the feature to enable (and touches no network).
    #[tokio::test]
    async fn a_provider_not_compiled_in_names_its_feature() {
        let cache = TokenCache::new();
        let cases = [
            (Provider::Aws, ECR, cfg!(feature = "aws")),
            (Provider::Aws, host::ECR_PUBLIC, cfg!(feature = "aws")),
            (
                Provider::Azure,
                "myregistry.azurecr.io",
                cfg!(feature = "azure"),
            ),
            (
                Provider::Gcp,
                "europe-west1-docker.pkg.dev",
                cfg!(feature = "gcp"),
            ),
        ];
        for (provider, host, compiled) in cases {
            if compiled {
                continue; // a real login would reach for cloud endpoints
            }
            let name = provider_name(provider);
            let err = login_with(&cache, provider, host, soon())
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "cloud login for {name} is not compiled into this build of ocisource: rebuild it with `cargo build --features {name}`"
                )
            );
        }
    }

    #[test]
    fn debug_output_redacts_credentials() {
        let token = Token {
            credential: Credential::Basic {
                username: azure::USERNAME.into(),
                password: "s3cr3t".into(),
            },
            expires_at: SystemTime::UNIX_EPOCH,
        };
        let text = format!("{token:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains(azure::USERNAME), "{text}");
    }

    #[test]
    fn provider_names_match_the_crd_enum() {
        for p in [
            Provider::Generic,
            Provider::Aws,
            Provider::Azure,
            Provider::Gcp,
        ] {
            assert_eq!(
                serde_json::to_value(p).unwrap(),
                serde_json::Value::from(provider_name(p))
            );
        }
    }
}
