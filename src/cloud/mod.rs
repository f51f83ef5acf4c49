//! Cloud registry login for `spec.provider` (`aws`, `azure`, `gcp`), as fluxcd/pkg `auth` does it
//! for source-controller: used only when the object has no static credentials (no `secretRef`,
//! no pull secrets on its service account).
//!
//! Two identities can log in:
//!
//! - the controller's own ([`login`]), when the object names no service account;
//! - a Kubernetes service account of the object's namespace ([`login_as`], object-level
//!   workload identity, Flux 2.6's `ObjectLevelWorkloadIdentity` gate): `spec.serviceAccountName`,
//!   or the controller's `--default-service-account`. Its annotations name the cloud identity,
//!   the caller issues a Kubernetes token for the provider's audience (TokenRequest API), and
//!   the token is exchanged with the provider ([`workload`]).
//!
//! Both first check the registry host against the provider's pattern ([`host`]), then answer
//! from the process's cache ([`cache`], one value the caller makes and hands in) keyed by
//! provider, registry and identity (the service account's namespace, name and annotated cloud
//! identity), then obtain a token:
//!
//! | provider | controller identity | service account identity | registry credential |
//! |---|---|---|---|
//! | `aws` | the AWS SDK default chain (env, profile, IRSA web identity, EKS Pod Identity, IMDS), in the registry's region | `eks.amazonaws.com/role-arn`; STS `AssumeRoleWithWebIdentity` (audience `sts.amazonaws.com`) in the registry's region | ECR `GetAuthorizationToken` (ECR Public for `public.ecr.aws`), `base64(user:password)` |
//! | `azure` | environment client secret, workload identity (`AZURE_FEDERATED_TOKEN_FILE`), managed identity | `azure.workload.identity/tenant-id` and `/client-id`; Entra ID client credentials with the token as client assertion (audience `api://AzureADTokenExchange`) | Entra ID token for the cloud's ARM scope exchanged at `https://<registry>/oauth2/exchange`; user `00000000-0000-0000-0000-000000000000` |
//! | `gcp` | `GOOGLE_APPLICATION_CREDENTIALS` key file, gcloud ADC file, metadata server | Google STS token exchange (audience: `gcp.auth.fluxcd.io/workload-identity-provider`, or the GKE cluster's pool), then `generateAccessToken` for `iam.gke.io/gcp-service-account` when annotated | OAuth2 access token; user `oauth2accesstoken` |
//!
//! Each provider needs its cargo feature (`aws`, `azure`, `gcp`); without it the login fails
//! with [`CloudError::NotCompiled`], which names the feature. The pure parts (host patterns,
//! annotations, token decoding, and the plain HTTP exchanges: ACR, STS `AssumeRoleWithWebIdentity`,
//! Entra ID client assertion, Google STS and IAM Credentials, the GCP metadata server) are
//! compiled into every build and tested against local fakes.
//!
//! Messages never contain a token: failures of token endpoints show the endpoint's error code
//! and description, with the tokens sent and anything token-like redacted. The object's
//! `proxySecretRef` is not applied to cloud calls (the `HTTPS_PROXY` environment is honoured).

pub mod aws;
pub mod azure;
pub mod cache;
mod error;
pub mod gcp;
pub mod host;
mod http;
pub mod workload;

#[cfg(test)]
mod fake;

use std::time::{Duration, Instant, SystemTime};

pub use cache::TokenCache;
pub use error::CloudError;
pub use host::Target;
pub use http::error_detail;
pub use workload::{Account, Endpoints};

use crate::api::v1::Provider;
use crate::registry::Credential;
use http::http_client;

/// A registry credential and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What to present to the registry (always [`Credential::Basic`]).
    pub credential: Credential,
    /// When the registry stops accepting it.
    pub expires_at: SystemTime,
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
/// in `cache` (the process's, made once from `--token-cache-max-size` and
/// `--token-cache-max-duration`) per (provider, registry) for 80 % of their lifetime, at most an
/// hour.
///
/// # Errors
///
/// [`CloudError::InvalidRegistry`] when the host is not one of the provider's registries,
/// [`CloudError::NotCompiled`] when the provider's cargo feature is off, [`CloudError::Timeout`]
/// at the deadline, and the provider's own failures.
pub async fn login(
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
    let (token, valid_for) = obtain_before(deadline, fetch(&target)).await?;
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

/// Logs in to `registry` at `provider` as the Kubernetes service account `account`
/// (object-level workload identity), giving up at `deadline`.
///
/// The cloud identity comes from the account's annotations ([`workload`]); `issue` is handed
/// the audiences and must return a token for the account from the Kubernetes TokenRequest API
/// (its error should say what failed; it is shown as is). Credentials are cached per provider,
/// registry, account and annotated identity in `cache`, so that one service account's
/// credential never serves another, for 80 % of their lifetime, at most an hour.
///
/// [`Provider::Generic`] gives [`Credential::Anonymous`].
///
/// # Errors
///
/// [`CloudError::InvalidRegistry`] when the host is not one of the provider's registries,
/// [`CloudError::NotCompiled`] when the provider's cargo feature is off,
/// [`CloudError::ServiceAccountIdentity`] when the annotations are missing or malformed,
/// [`CloudError::Timeout`] at the deadline, and the failures of each step (audience, token,
/// exchange, registry credential), each wrapped with Flux's wording.
pub async fn login_as<F, Fut>(
    cache: &TokenCache,
    provider: Provider,
    registry: &str,
    account: &Account<'_>,
    issue: F,
    deadline: Instant,
) -> Result<Credential, CloudError>
where
    F: FnOnce(Vec<String>) -> Fut + Send,
    Fut: Future<Output = Result<String, Box<dyn std::error::Error + Send + Sync>>> + Send,
{
    if host::parse(provider, registry)?.is_some() {
        compiled(provider)?;
    }
    login_as_with(
        cache,
        &Endpoints::default(),
        provider,
        registry,
        account,
        issue,
        deadline,
    )
    .await
}

/// [`login_as`] with an explicit cache and endpoints, and whatever the cargo features (the
/// exchanges of Azure and GCP are plain HTTP; AWS's ECR step needs its feature).
pub(crate) async fn login_as_with<F, Fut>(
    cache: &TokenCache,
    endpoints: &Endpoints,
    provider: Provider,
    registry: &str,
    account: &Account<'_>,
    issue: F,
    deadline: Instant,
) -> Result<Credential, CloudError>
where
    F: FnOnce(Vec<String>) -> Fut + Send,
    Fut: Future<Output = Result<String, Box<dyn std::error::Error + Send + Sync>>> + Send,
{
    let Some(target) = host::parse(provider, registry)? else {
        return Ok(Credential::Anonymous);
    };
    let name = provider_name(provider);
    let identity = workload::Identity::parse(&target, account.annotations).map_err(|e| {
        CloudError::ServiceAccountIdentity {
            namespace: account.namespace.to_string(),
            name: account.name.to_string(),
            source: Box::new(e),
        }
    })?;
    let described = identity.describe();
    let key =
        cache::Key::service_account(name, registry, account.namespace, account.name, &described);
    let service_account = format!("{}/{}", account.namespace, account.name);
    let now = Instant::now();
    if let Some(credential) = cache.get_key(&key, now) {
        tracing::debug!(
            provider = name,
            registry,
            service_account,
            "cloud registry credential from cache"
        );
        return Ok(credential);
    }
    if now >= deadline {
        return Err(CloudError::Timeout);
    }
    let request = workload::Request {
        target: &target,
        registry,
        account: *account,
        identity: &identity,
        endpoints,
    };
    let run = async {
        let audiences = request
            .audiences()
            .await
            .map_err(|e| CloudError::Audience {
                source: Box::new(e),
            })?;
        let subject = issue(audiences.token.clone())
            .await
            .map_err(CloudError::ServiceAccountToken)?;
        request
            .exchange(&audiences, &subject, &http_client(true)?)
            .await
    };
    let (token, valid_for) = obtain_before(deadline, run).await?;
    tracing::debug!(
        provider = name,
        registry,
        service_account,
        identity = described,
        valid_for_secs = valid_for.as_secs(),
        "obtained cloud registry credential for a service account"
    );
    cache.put_key(
        key,
        token.credential.clone(),
        token.expires_at,
        Instant::now(),
        SystemTime::now(),
    );
    Ok(token.credential)
}

/// The token `fetch` obtains, given up at `deadline`, and how long it stays valid from now.
async fn obtain_before(
    deadline: Instant,
    fetch: impl Future<Output = Result<Token, CloudError>>,
) -> Result<(Token, Duration), CloudError> {
    let token = tokio::time::timeout_at(deadline.into(), fetch)
        .await
        .map_err(|_| CloudError::Timeout)??;
    let valid_for = token
        .expires_at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Ok((token, valid_for))
}

/// [`CloudError::NotCompiled`] when `provider`'s cargo feature is off.
fn compiled(provider: Provider) -> Result<(), CloudError> {
    let on = match provider {
        Provider::Generic => true,
        Provider::Aws => cfg!(feature = "aws"),
        Provider::Azure => cfg!(feature = "azure"),
        Provider::Gcp => cfg!(feature = "gcp"),
    };
    if on {
        Ok(())
    } else {
        Err(CloudError::NotCompiled {
            provider: provider_name(provider),
        })
    }
}

async fn fetch(target: &Target) -> Result<Token, CloudError> {
    match target {
        Target::Ecr { region } => aws::login(region, false).await,
        Target::EcrPublic => aws::login(aws::ECR_PUBLIC_REGION, true).await,
        Target::Acr { registry } => azure::login(registry).await,
        Target::Gcp => gcp::login().await,
    }
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
        let c = login(&cache, Provider::Generic, "ghcr.io", soon())
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
            let err = login(&cache, provider, host, Instant::now())
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
        let got = login(&cache, Provider::Aws, ECR, Instant::now())
            .await
            .unwrap();
        assert_eq!(got, cred);
        // Keyed by provider too.
        let err = login(&cache, Provider::Gcp, ECR, soon()).await.unwrap_err();
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
            let err = login(&cache, provider, host, Instant::now())
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
            let err = login(&cache, provider, host, soon()).await.unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "cloud login for {name} is not compiled into this build of ocisource: rebuild it with `cargo build --features {name}`"
                )
            );
        }
    }

    fn account<'a>(
        namespace: &'a str,
        name: &'a str,
        annotations: &'a std::collections::BTreeMap<String, String>,
    ) -> Account<'a> {
        Account {
            namespace,
            name,
            annotations,
        }
    }

    /// The whole service-account login against fakes of Entra ID and ACR: the token is asked
    /// for with the provider's audience, the credential is cached for that account only, and
    /// each failing step is reported with Flux's wording.
    #[tokio::test]
    async fn service_account_logins_are_cached_per_account() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        let refresh = {
            use base64::Engine as _;
            let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            let exp = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 3600;
            format!(
                "{}.{}.{}",
                e("{}"),
                e(&format!(r#"{{"exp":{exp}}}"#)),
                e("s")
            )
        };
        let fake = fake::Fake::routes(vec![
            fake::Route::new(
                "/t/oauth2/v2.0/token",
                200,
                "application/json",
                r#"{"access_token":"entra","expires_in":3599}"#.into(),
            ),
            fake::Route::new(
                "/oauth2/exchange",
                200,
                "application/json",
                format!(r#"{{"refresh_token":"{refresh}"}}"#),
            ),
        ])
        .await;
        let endpoints = Endpoints {
            azure_authority: Some(fake.url.clone()),
            acr: Some(fake.url.clone()),
            ..Default::default()
        };
        let annotations: std::collections::BTreeMap<String, String> = [
            (azure::TENANT_ID_ANNOTATION.to_string(), "t".to_string()),
            (azure::CLIENT_ID_ANNOTATION.to_string(), "c".to_string()),
        ]
        .into();
        let registry = "myregistry.azurecr.io";
        let cache = TokenCache::new();
        let issued = AtomicUsize::new(0);
        let issue = |audiences: Vec<String>| {
            let issued = &issued;
            async move {
                assert_eq!(audiences, ["api://AzureADTokenExchange"]);
                issued.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>("k8s-token".to_string())
            }
        };
        let (cache, endpoints, annotations) = (&cache, &endpoints, &annotations);
        let login = |ns: &'static str, name: &'static str| async move {
            let a = account(ns, name, annotations);
            login_as_with(
                cache,
                endpoints,
                Provider::Azure,
                registry,
                &a,
                issue,
                soon(),
            )
            .await
        };
        let first = login("apps", "puller").await.unwrap();
        assert_eq!(
            first,
            Credential::Basic {
                username: azure::USERNAME.into(),
                password: refresh.clone()
            }
        );
        assert_eq!(issued.load(Ordering::SeqCst), 1);
        assert_eq!(fake.received()[0].field("client_assertion"), "k8s-token");
        // Cached for the same account, without a new token.
        assert_eq!(login("apps", "puller").await.unwrap(), first);
        assert_eq!(issued.load(Ordering::SeqCst), 1);
        // Another account, or the same name in another namespace: a login of its own.
        login("apps", "other").await.unwrap();
        login("team-b", "puller").await.unwrap();
        assert_eq!(issued.load(Ordering::SeqCst), 3);
        // The controller's own entry is untouched.
        assert!(cache.get("azure", registry, Instant::now()).is_none());
    }

    /// A login as `apps/puller` without annotations, whose token issuer must not be asked.
    async fn unannotated(
        cache: &TokenCache,
        endpoints: &Endpoints,
        provider: Provider,
        registry: &str,
    ) -> Result<Credential, CloudError> {
        let none = std::collections::BTreeMap::new();
        let never = |_: Vec<String>| async {
            Err::<String, Box<dyn std::error::Error + Send + Sync>>("must not be asked".into())
        };
        login_as_with(
            cache,
            endpoints,
            provider,
            registry,
            &account("apps", "puller", &none),
            never,
            soon(),
        )
        .await
    }

    #[tokio::test]
    async fn service_account_login_failures_say_which_step_failed() {
        let cache = TokenCache::new();
        let endpoints = Endpoints::default();
        let never = |_: Vec<String>| async {
            Err::<String, Box<dyn std::error::Error + Send + Sync>>("must not be asked".into())
        };
        // Missing annotations: before any network or token.
        let err = unannotated(&cache, &endpoints, Provider::Aws, ECR)
            .await
            .unwrap_err();
        assert_eq!(
            crate::core::message::render(&err),
            format!(
                "failed to get provider identity from service account 'apps/puller' annotations: invalid eks.amazonaws.com/role-arn annotation: ''. must match {}",
                aws::ROLE_ARN_PATTERN
            )
        );
        // A foreign registry, and the generic provider.
        let err = unannotated(&cache, &endpoints, Provider::Gcp, ECR)
            .await
            .unwrap_err();
        assert!(matches!(err, CloudError::InvalidRegistry { .. }), "{err}");
        let anonymous = unannotated(&cache, &endpoints, Provider::Generic, "ghcr.io")
            .await
            .unwrap();
        assert!(anonymous.is_anonymous());

        // The token issuer's error is shown as is.
        let wip: std::collections::BTreeMap<String, String> = [(
            gcp::WORKLOAD_IDENTITY_PROVIDER_ANNOTATION.to_string(),
            "projects/1/locations/global/workloadIdentityPools/p/providers/k".to_string(),
        )]
        .into();
        let refuse = |audiences: Vec<String>| async move {
            assert_eq!(
                audiences,
                [
                    "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k"
                ]
            );
            Err::<String, Box<dyn std::error::Error + Send + Sync>>(
                "failed to create kubernetes token for service account 'apps/puller': serviceaccounts \"puller\" not found".into(),
            )
        };
        let err = login_as_with(
            &cache,
            &endpoints,
            Provider::Gcp,
            "gcr.io",
            &account("apps", "puller", &wip),
            refuse,
            soon(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            crate::core::message::render(&err),
            "failed to create kubernetes token for service account 'apps/puller': serviceaccounts \"puller\" not found"
        );
        // An expired deadline.
        let err = login_as_with(
            &cache,
            &endpoints,
            Provider::Gcp,
            "gcr.io",
            &account("apps", "puller", &wip),
            never,
            Instant::now(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CloudError::Timeout), "{err}");
    }

    /// Without its feature a provider names the feature, before reading annotations.
    #[tokio::test]
    async fn service_account_login_names_a_missing_feature() {
        let none = std::collections::BTreeMap::new();
        let never = |_: Vec<String>| async {
            Err::<String, Box<dyn std::error::Error + Send + Sync>>("must not be asked".into())
        };
        for (provider, host, compiled) in [
            (Provider::Aws, ECR, cfg!(feature = "aws")),
            (Provider::Azure, "r.azurecr.io", cfg!(feature = "azure")),
            (Provider::Gcp, "gcr.io", cfg!(feature = "gcp")),
        ] {
            if compiled {
                continue; // the identity check would come next
            }
            let err = login_as(
                &TokenCache::new(),
                provider,
                host,
                &account("apps", "puller", &none),
                never,
                soon(),
            )
            .await
            .unwrap_err();
            assert!(matches!(err, CloudError::NotCompiled { .. }), "{err}");
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
