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
pub mod gcp;
pub mod host;
pub mod workload;

#[cfg(test)]
mod fake;

use std::time::{Duration, Instant, SystemTime};

pub use cache::TokenCache;
pub use host::Target;
pub use workload::{Account, Endpoints};

use crate::api::v1::Provider;
use crate::registry::Credential;

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
    /// A service account was to be used (`--default-service-account`) with the feature gate off
    /// (Flux's wording).
    #[error("ObjectLevelWorkloadIdentity feature gate is not enabled")]
    ObjectLevelWorkloadIdentityNotEnabled,
    /// The service account named by `--default-service-account` is not in the object's
    /// namespace (Flux's wording).
    #[error(
        "failed to get service account '{namespace}/{name}': the specified default service account does not exist in the object namespace. your cluster is subject to multi-tenant workload identity lockdown, reach out to your cluster administrator for help"
    )]
    DefaultServiceAccountNotFound {
        /// The object's namespace.
        namespace: String,
        /// The default service account.
        name: String,
    },
    /// The service account could not be read.
    #[error("failed to get service account '{namespace}/{name}'")]
    GetServiceAccount {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The service account's annotations do not name a usable cloud identity.
    #[error(
        "failed to get provider identity from service account '{namespace}/{name}' annotations"
    )]
    ServiceAccountIdentity {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Which annotation is wrong.
        #[source]
        source: Box<CloudError>,
    },
    /// A required service-account annotation is absent (Flux's wording).
    #[error("{what} is not set in the service account annotation {key}")]
    MissingAnnotation {
        /// What it holds (`azure tenant ID`).
        what: &'static str,
        /// The annotation.
        key: &'static str,
    },
    /// A service-account annotation does not match its pattern (Flux's wording).
    #[error("invalid {key} annotation: '{value}'. must match {pattern}")]
    InvalidAnnotation {
        /// The annotation.
        key: &'static str,
        /// Its value (an identifier, never a secret).
        value: String,
        /// The pattern it must match.
        pattern: &'static str,
    },
    /// The token audience could not be determined (GKE: the metadata server failed).
    #[error("failed to get provider audience")]
    Audience {
        /// Why.
        #[source]
        source: Box<CloudError>,
    },
    /// The Kubernetes TokenRequest for the service account failed; the error comes from the
    /// caller's token issuer and says what failed.
    #[error(transparent)]
    ServiceAccountToken(Box<dyn std::error::Error + Send + Sync>),
    /// The service account token could not be exchanged for a cloud access token.
    #[error("failed to create provider access token for service account '{namespace}/{name}'")]
    ServiceAccountExchange {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: Box<CloudError>,
    },
    /// The cloud access token could not be turned into a registry credential.
    #[error("failed to create artifact registry credentials")]
    RegistryCredentials {
        /// Why.
        #[source]
        source: Box<CloudError>,
    },
    /// A GKE metadata-server value could not be read (Flux's wording).
    #[error("failed to get {what} from the metadata service")]
    Metadata {
        /// What (`GKE cluster project ID`).
        what: &'static str,
        /// Why.
        #[source]
        source: Box<CloudError>,
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
    /// A token endpoint refused a request and said why: its error code and description, with
    /// anything token-like removed.
    #[error("unexpected status from {what}: {status}: {detail}")]
    Refused {
        /// The endpoint.
        what: &'static str,
        /// The HTTP status code.
        status: u16,
        /// The endpoint's error code and description, redacted.
        detail: String,
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
    let token = tokio::time::timeout_at(deadline.into(), run)
        .await
        .map_err(|_| CloudError::Timeout)??;
    let valid_for = token
        .expires_at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
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

/// An HTTP client for the requests made here (token exchanges, GCP metadata server). `proxy`:
/// honour the `HTTPS_PROXY`/`NO_PROXY` environment (never for link-local metadata servers).
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
    read_all(response, what, limit).await
}

/// POSTs a URL-encoded form; `what` names the request in the error.
async fn post_form(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    body: String,
    what: &'static str,
) -> Result<reqwest::Response, CloudError> {
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|source| CloudError::Http { what, source })
}

/// Reads a token endpoint's response of at most `limit` bytes. A non-success status is
/// [`CloudError::Refused`] when the body carries an OAuth2, Google or AWS error (its code and
/// description, with `secrets` and anything token-like removed), else [`CloudError::Status`].
async fn read_token_response(
    response: reqwest::Response,
    what: &'static str,
    limit: usize,
    secrets: &[&str],
) -> Result<Vec<u8>, CloudError> {
    let status = response.status();
    if status.is_success() {
        return read_all(response, what, limit).await;
    }
    let status = status.as_u16();
    // The body only feeds the error; a failure reading it leaves the bare status.
    let body = read_all(response, what, limit).await.unwrap_or_default();
    Err(match error_detail(&body, secrets) {
        Some(detail) => CloudError::Refused {
            what,
            status,
            detail,
        },
        None => CloudError::Status { what, status },
    })
}

/// The error code and description in a failed token response: OAuth2
/// (`{"error", "error_description"}`, Entra ID and Google STS), Google APIs
/// (`{"error": {"status", "message"}}`) or AWS query APIs (`<Error><Code>…<Message>…`).
/// Any of `secrets`, and any word long enough to be a token, is replaced by `<redacted>`; the
/// result is at most 300 characters. `None` when the body is none of these.
pub fn error_detail(body: &[u8], secrets: &[&str]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let parts: Vec<String> = if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        let str_at = |v: &serde_json::Value, key: &str| {
            v.get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        match value.get("error") {
            Some(serde_json::Value::String(code)) => {
                [Some(code.clone()), str_at(&value, "error_description")]
                    .into_iter()
                    .flatten()
                    .collect()
            }
            Some(inner @ serde_json::Value::Object(_)) => {
                [str_at(inner, "status"), str_at(inner, "message")]
                    .into_iter()
                    .flatten()
                    .collect()
            }
            _ => vec![],
        }
    } else {
        [xml_text(&text, "Code"), xml_text(&text, "Message")]
            .into_iter()
            .flatten()
            .collect()
    };
    let joined = parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    (!joined.is_empty()).then(|| redact(&joined, secrets))
}

/// The text of the first `<tag>…</tag>` element in `xml`, entities decoded (enough for the
/// flat answers of AWS query APIs).
pub(crate) fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    let raw = &xml[start..start + len];
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// `text` on one line, without `secrets` or token-like words, at most 300 characters.
fn redact(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        text = text.replace(secret, "<redacted>");
    }
    // JWTs, access keys and signatures are long runs of base64/URL-safe characters; the words
    // of an error description are not.
    let tokenish = |w: &str| {
        w.len() >= 40
            && w.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=')
            })
    };
    let words: Vec<&str> = text
        .split_whitespace()
        .map(|w| if tokenish(w) { "<redacted>" } else { w })
        .collect();
    let line = words.join(" ");
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// Reads all of a response, at most `limit` bytes.
async fn read_all(
    response: reqwest::Response,
    what: &'static str,
    limit: usize,
) -> Result<Vec<u8>, CloudError> {
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

    #[tokio::test]
    async fn service_account_login_failures_say_which_step_failed() {
        let cache = TokenCache::new();
        let endpoints = Endpoints::default();
        let none = std::collections::BTreeMap::new();
        let never = |_: Vec<String>| async {
            Err::<String, Box<dyn std::error::Error + Send + Sync>>("must not be asked".into())
        };
        // Missing annotations: before any network or token.
        let err = login_as_with(
            &cache,
            &endpoints,
            Provider::Aws,
            ECR,
            &account("apps", "puller", &none),
            never,
            soon(),
        )
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
        let err = login_as_with(
            &cache,
            &endpoints,
            Provider::Gcp,
            ECR,
            &account("apps", "puller", &none),
            never,
            soon(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CloudError::InvalidRegistry { .. }), "{err}");
        let anonymous = login_as_with(
            &cache,
            &endpoints,
            Provider::Generic,
            "ghcr.io",
            &account("apps", "puller", &none),
            never,
            soon(),
        )
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
