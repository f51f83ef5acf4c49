//! Google Artifact Registry / Container Registry login (fluxcd/pkg `auth/gcp`): an OAuth2 access
//! token for the cloud-platform scopes, presented as the password of user `oauth2accesstoken`.
//!
//! The token comes from, in the order of Google's `FindDefaultCredentials`:
//! 1. the service-account key file named by `GOOGLE_APPLICATION_CREDENTIALS` (via `gcp_auth`;
//!    `external_account` files, i.e. workload identity federation from outside Google Cloud, are
//!    not supported);
//! 2. gcloud's application-default credentials file,
//!    `$HOME/.config/gcloud/application_default_credentials.json` (via `gcp_auth`);
//! 3. the metadata server (GCE, GKE workload identity), at `$GCE_METADATA_HOST` or
//!    `169.254.169.254` as Google's Go client does, never through a proxy.
//!
//! The `gcloud` CLI is never run (Flux does not shell out either). The chain needs the `gcp`
//! cargo feature; the metadata-server request is plain HTTP and always built.
//!
//! Object-level workload identity, as fluxcd/pkg `auth/gcp` does it (plain HTTP, always built):
//! the Kubernetes token is traded at Google STS (`sts.googleapis.com/v1/token`, token-exchange
//! grant, subject token type JWT) for a federated access token; when the service account is
//! annotated `iam.gke.io/gcp-service-account`, that token impersonates the Google service
//! account through IAM Credentials `generateAccessToken`. The audience is the workload identity
//! provider named by `gcp.auth.fluxcd.io/workload-identity-provider`
//! (`//iam.googleapis.com/projects/…/providers/…`), or, without it, the GKE cluster's workload
//! identity pool (`<project>.svc.id.goog`, STS audience
//! `identitynamespace:<pool>:https://container.googleapis.com/v1/projects/<project>/locations/<location>/clusters/<name>`),
//! read from the GKE metadata server.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use super::http::{Lenient, parse_json};
use super::{CloudError, Token};
use crate::registry::Credential;

/// The user name Google's registries expect with an access token.
pub const USERNAME: &str = "oauth2accesstoken";
/// The scopes requested (Flux's).
pub const SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
];
/// The environment variable naming the metadata server (`host[:port]`).
pub const METADATA_HOST_ENV: &str = "GCE_METADATA_HOST";
/// The metadata server when [`METADATA_HOST_ENV`] is unset.
pub const DEFAULT_METADATA_HOST: &str = "169.254.169.254";

/// The largest metadata response read.
const MAX_RESPONSE: usize = 1 << 20;

/// The service-account annotation naming the Google service account to impersonate (GKE's).
pub const SERVICE_ACCOUNT_ANNOTATION: &str = "iam.gke.io/gcp-service-account";
/// The service-account annotation naming a workload identity provider (Flux's, for clusters
/// outside GKE).
pub const WORKLOAD_IDENTITY_PROVIDER_ANNOTATION: &str =
    "gcp.auth.fluxcd.io/workload-identity-provider";
/// The Google service account pattern, as shown in errors (Flux's).
pub const SERVICE_ACCOUNT_PATTERN: &str =
    r"^[a-zA-Z0-9-]{1,100}@[a-zA-Z0-9-]{1,100}\.iam\.gserviceaccount\.com$";
/// The workload identity provider pattern, as shown in errors (Flux's).
pub const WORKLOAD_IDENTITY_PROVIDER_PATTERN: &str =
    r"^projects/\d{1,30}/locations/global/workloadIdentityPools/[^/]{1,100}/providers/[^/]{1,100}$";
/// The scope of the federated token when it is only used to impersonate.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The subject token type of a Kubernetes service account token.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// Production Google STS.
pub const STS_URL: &str = "https://sts.googleapis.com";
/// Production IAM Credentials API.
pub const IAM_CREDENTIALS_URL: &str = "https://iamcredentials.googleapis.com";

static SERVICE_ACCOUNT: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r"^[a-zA-Z0-9-]{1,100}@[a-zA-Z0-9-]{1,100}\.iam\.gserviceaccount\.com$").ok()
});
// `\d` spelled out: Go's is ASCII-only.
static WORKLOAD_IDENTITY_PROVIDER: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(
        r"^projects/[0-9]{1,30}/locations/global/workloadIdentityPools/[^/]{1,100}/providers/[^/]{1,100}$",
    )
    .ok()
});

fn annotation(
    annotations: &BTreeMap<String, String>,
    key: &'static str,
    re: &Option<regex::Regex>,
    pattern: &'static str,
) -> Result<Option<String>, CloudError> {
    match annotations.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if re.as_ref().is_some_and(|re| re.is_match(v)) => Ok(Some(v.clone())),
        Some(v) => Err(CloudError::InvalidAnnotation {
            key,
            value: v.clone(),
            pattern,
        }),
    }
}

/// The Google service account a Kubernetes service account impersonates, if annotated.
///
/// # Errors
///
/// [`CloudError::InvalidAnnotation`] when the annotation is not a service account email.
pub fn service_account_email(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<String>, CloudError> {
    annotation(
        annotations,
        SERVICE_ACCOUNT_ANNOTATION,
        &SERVICE_ACCOUNT,
        SERVICE_ACCOUNT_PATTERN,
    )
}

/// The audience of the annotated workload identity provider
/// (`//iam.googleapis.com/<provider>`), if annotated.
///
/// # Errors
///
/// [`CloudError::InvalidAnnotation`] when the annotation is not a provider resource name.
pub fn workload_identity_provider_audience(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<String>, CloudError> {
    Ok(annotation(
        annotations,
        WORKLOAD_IDENTITY_PROVIDER_ANNOTATION,
        &WORKLOAD_IDENTITY_PROVIDER,
        WORKLOAD_IDENTITY_PROVIDER_PATTERN,
    )?
    .map(|p| format!("//iam.googleapis.com/{p}")))
}

/// The GKE cluster the controller runs in, as its metadata server describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GkeCluster {
    /// The project ID.
    pub project_id: String,
    /// The cluster's location.
    pub location: String,
    /// The cluster's name.
    pub name: String,
}

impl GkeCluster {
    /// The workload identity pool: `<project>.svc.id.goog`, the service account token's
    /// audience.
    pub fn workload_identity_pool(&self) -> String {
        format!("{}.svc.id.goog", self.project_id)
    }

    /// The STS audience: `identitynamespace:<pool>:<cluster URL>`.
    pub fn sts_audience(&self) -> String {
        format!(
            "identitynamespace:{}:https://container.googleapis.com/v1/projects/{}/locations/{}/clusters/{}",
            self.workload_identity_pool(),
            self.project_id,
            self.location,
            self.name
        )
    }
}

/// Reads the cluster's project, location and name from the metadata server at `base`
/// (`http://host[:port]`).
///
/// # Errors
///
/// [`CloudError::Metadata`] naming the value that could not be read (Flux's wording).
pub async fn gke_cluster(http: &reqwest::Client, base: &str) -> Result<GkeCluster, CloudError> {
    let get = |path: &'static str, what: &'static str| async move {
        let failed = |source| CloudError::Metadata {
            what,
            source: Box::new(source),
        };
        let response = http
            .get(format!(
                "{}/computeMetadata/v1/{path}",
                base.trim_end_matches('/')
            ))
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .map_err(|source| {
                failed(CloudError::Http {
                    what: "reach the GCP metadata server",
                    source,
                })
            })?;
        let body = super::http::read_body(response, "the GCP metadata server", MAX_RESPONSE)
            .await
            .map_err(failed)?;
        let value = String::from_utf8_lossy(&body).trim().to_string();
        if value.is_empty() {
            return Err(failed(CloudError::Parse {
                what: "the metadata response",
                reason: "empty value",
            }));
        }
        Ok(value)
    };
    Ok(GkeCluster {
        project_id: get("project/project-id", "GKE cluster project ID").await?,
        location: get(
            "instance/attributes/cluster-location",
            "GKE cluster location",
        )
        .await?,
        name: get("instance/attributes/cluster-name", "GKE cluster name").await?,
    })
}

/// The form body of the STS token exchange of `subject_token` for `audience` and `scopes`.
pub fn sts_body(audience: &str, subject_token: &str, scopes: &[&str]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("audience", audience)
        .append_pair(
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        )
        .append_pair(
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        )
        .append_pair("subject_token_type", JWT_TOKEN_TYPE)
        .append_pair("subject_token", subject_token)
        .append_pair("scope", &scopes.join(" "))
        .finish()
}

/// Trades the service account token `subject_token` at Google STS (`<sts>/v1/token`) for a
/// federated access token for `audience` and `scopes`.
///
/// # Errors
///
/// [`CloudError::Http`] when STS cannot be reached, [`CloudError::Refused`] (or
/// [`CloudError::Status`]) on a refusal, [`CloudError::Parse`] on a malformed answer. No token
/// appears in an error.
pub async fn sts_exchange(
    http: &reqwest::Client,
    sts: &str,
    audience: &str,
    subject_token: &str,
    scopes: &[&str],
) -> Result<Token, CloudError> {
    let response = super::http::post_form(
        http,
        format!("{}/v1/token", sts.trim_end_matches('/')),
        sts_body(audience, subject_token, scopes),
        "send the GCP STS token exchange request",
    )
    .await?;
    let body =
        super::http::read_token_response(response, "GCP STS", MAX_RESPONSE, &[subject_token])
            .await?;
    parse_token_response(&body, SystemTime::now())
}

/// The IAM Credentials URL that mints tokens for the Google service account `email`.
pub fn generate_access_token_url(iam: &str, email: &str) -> String {
    format!(
        "{}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
        iam.trim_end_matches('/')
    )
}

/// The JSON body of `generateAccessToken`: one hour, [`SCOPES`].
pub fn generate_access_token_body() -> String {
    serde_json::json!({ "lifetime": "3600s", "scope": SCOPES }).to_string()
}

/// The credential in a `generateAccessToken` answer (`{"accessToken", "expireTime"}`).
///
/// # Errors
///
/// [`CloudError::Parse`] when the body lacks a non-empty `accessToken` or an RFC 3339
/// `expireTime`.
pub fn parse_generate_access_token_response(body: &[u8]) -> Result<Token, CloudError> {
    let bad = |reason| CloudError::Parse {
        what: "the generateAccessToken response",
        reason,
    };
    let answer: GeneratedAccessToken =
        parse_json(body, "not JSON", "no accessToken").map_err(bad)?;
    let token = answer
        .access_token
        .into_option()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no accessToken"))?;
    let expires_at = answer
        .expire_time
        .into_option()
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .ok_or_else(|| bad("no valid expireTime"))?;
    Ok(Token {
        credential: credential(&token),
        expires_at: SystemTime::from(expires_at),
    })
}

/// IAM Credentials' `generateAccessToken` answer.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeneratedAccessToken {
    #[serde(default)]
    access_token: Lenient<String>,
    /// RFC 3339.
    #[serde(default)]
    expire_time: Lenient<String>,
}

/// Impersonates the Google service account `email` with the federated `access_token` through
/// IAM Credentials at `iam`.
///
/// # Errors
///
/// As [`sts_exchange`].
pub async fn impersonate(
    http: &reqwest::Client,
    iam: &str,
    email: &str,
    access_token: &str,
) -> Result<Token, CloudError> {
    let response = http
        .post(generate_access_token_url(iam, email))
        .bearer_auth(access_token)
        .header("content-type", "application/json")
        .body(generate_access_token_body())
        .send()
        .await
        .map_err(|source| CloudError::Http {
            what: "send the GCP generateAccessToken request",
            source,
        })?;
    let body = super::http::read_token_response(
        response,
        "GCP IAM generateAccessToken",
        MAX_RESPONSE,
        &[access_token],
    )
    .await?;
    parse_generate_access_token_response(&body)
}

/// The registry credential for the service account token `subject_token`: STS for `audience`,
/// then, when `email` is set, impersonation of that Google service account (the federated
/// token then carries only the cloud-platform scope, as Google's client libraries request it).
///
/// # Errors
///
/// As [`sts_exchange`] and [`impersonate`].
pub async fn exchange_as(
    http: &reqwest::Client,
    sts: &str,
    iam: &str,
    audience: &str,
    subject_token: &str,
    email: Option<&str>,
) -> Result<Token, CloudError> {
    match email {
        None => sts_exchange(http, sts, audience, subject_token, &SCOPES).await,
        Some(email) => {
            let federated =
                sts_exchange(http, sts, audience, subject_token, &[CLOUD_PLATFORM_SCOPE]).await?;
            let Credential::Basic { password, .. } = &federated.credential else {
                return Err(CloudError::Parse {
                    what: "the GCP STS response",
                    reason: "no access token",
                });
            };
            impersonate(http, iam, email, password).await
        }
    }
}

/// The registry credential for an access token.
pub fn credential(access_token: &str) -> Credential {
    Credential::Basic {
        username: USERNAME.to_string(),
        password: access_token.to_string(),
    }
}

/// The metadata server's token URL for the default service account and [`SCOPES`].
pub fn metadata_token_url(host: &str) -> String {
    let scopes: String =
        url::form_urlencoded::byte_serialize(SCOPES.join(",").as_bytes()).collect();
    format!(
        "http://{host}/computeMetadata/v1/instance/service-accounts/default/token?scopes={scopes}"
    )
}

/// The credential in a token response (`{"access_token", "expires_in", "token_type"}`)
/// received at `now`.
///
/// # Errors
///
/// [`CloudError::Parse`] when the body lacks a non-empty `access_token` or a numeric
/// `expires_in` (or one too large to add to `now`).
pub fn parse_token_response(body: &[u8], now: SystemTime) -> Result<Token, CloudError> {
    let bad = |reason| CloudError::Parse {
        what: "the GCP token response",
        reason,
    };
    let answer: TokenResponse = parse_json(body, "not JSON", "no access_token").map_err(bad)?;
    let token = answer
        .access_token
        .into_option()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no access_token"))?;
    let expires_in = answer
        .expires_in
        .into_option()
        .ok_or_else(|| bad("no expires_in"))?;
    let expires_at = now
        .checked_add(Duration::from_secs(expires_in))
        .ok_or_else(|| bad("expires_in out of range"))?;
    Ok(Token {
        credential: credential(&token),
        expires_at,
    })
}

/// An OAuth2 token answer (metadata server, Google STS): the token and its lifetime in seconds.
#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: Lenient<String>,
    #[serde(default)]
    expires_in: Lenient<u64>,
}

/// An access token from the metadata server at `host` (`Metadata-Flavor: Google`).
///
/// # Errors
///
/// [`CloudError::Http`] when the server cannot be reached, [`CloudError::Status`] on a non-2xx
/// answer, [`CloudError::Parse`] on a malformed one.
pub async fn metadata_token(http: &reqwest::Client, host: &str) -> Result<Token, CloudError> {
    let response = http
        .get(metadata_token_url(host))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .map_err(|source| CloudError::Http {
            what: "reach the GCP metadata server",
            source,
        })?;
    let body = super::http::read_body(response, "the GCP metadata server", MAX_RESPONSE).await?;
    parse_token_response(&body, SystemTime::now())
}

/// The metadata server to ask: `$GCE_METADATA_HOST` or [`DEFAULT_METADATA_HOST`].
pub fn metadata_host() -> String {
    std::env::var(METADATA_HOST_ENV)
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_string())
}

/// Obtains a registry credential from the first configured Google identity.
#[cfg(feature = "gcp")]
pub(super) async fn login() -> Result<Token, CloudError> {
    if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty())
    {
        return key_file_token(std::path::Path::new(&path)).await;
    }
    let adc = std::env::var_os("HOME").map(|home| {
        std::path::Path::new(&home).join(".config/gcloud/application_default_credentials.json")
    });
    if adc.is_some_and(|p| p.is_file()) {
        let provider = gcp_auth::ConfigDefaultCredentials::new()
            .await
            .map_err(|e| CloudError::Provider {
                what: "read gcloud's application default credentials",
                source: Box::new(e),
            })?;
        return provider_token(&provider).await;
    }
    metadata_token(&super::http::http_client(false)?, &metadata_host()).await
}

/// Without the `gcp` feature: [`CloudError::NotCompiled`].
#[cfg(not(feature = "gcp"))]
pub(super) async fn login() -> Result<Token, CloudError> {
    Err(CloudError::NotCompiled { provider: "gcp" })
}

/// An access token for the service-account key file at `path` (a signed JWT traded at the
/// file's `token_uri`).
#[cfg(feature = "gcp")]
async fn key_file_token(path: &std::path::Path) -> Result<Token, CloudError> {
    let account =
        gcp_auth::CustomServiceAccount::from_file(path).map_err(|e| CloudError::Provider {
            what: "read the GOOGLE_APPLICATION_CREDENTIALS key file",
            source: Box::new(e),
        })?;
    provider_token(&account).await
}

#[cfg(feature = "gcp")]
async fn provider_token(provider: &dyn gcp_auth::TokenProvider) -> Result<Token, CloudError> {
    let token = provider
        .token(&SCOPES)
        .await
        .map_err(|e| CloudError::Provider {
            what: "get a GCP access token",
            source: Box::new(e),
        })?;
    let expires_at = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(token.expires_at().timestamp()).unwrap_or(0));
    Ok(Token {
        credential: credential(token.as_str()),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fake::Fake;
    use super::*;

    #[test]
    fn token_url_and_username() {
        assert_eq!(
            metadata_token_url("169.254.169.254"),
            "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token?scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform%2Chttps%3A%2F%2Fwww.googleapis.com%2Fauth%2Fuserinfo.email"
        );
        assert_eq!(
            credential("ya29.x"),
            Credential::Basic {
                username: "oauth2accesstoken".into(),
                password: "ya29.x".into()
            }
        );
    }

    #[test]
    fn parses_token_responses_without_echoing_them() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let token = parse_token_response(
            br#"{"access_token":"ya29.s3cr3t","expires_in":3599,"token_type":"Bearer"}"#,
            now,
        )
        .unwrap();
        assert_eq!(token.credential, credential("ya29.s3cr3t"));
        assert_eq!(token.expires_at, now + Duration::from_secs(3599));
        for (body, reason) in [
            (&b"s3cr3t"[..], "not JSON"),
            (br#"{"access_token":"","expires_in":1}"#, "no access_token"),
            (br#"{"access_token":"s3cr3t"}"#, "no expires_in"),
            // A field of another type is as good as absent; JSON of another shape too.
            (
                br#"{"access_token":"s3cr3t","expires_in":"60"}"#,
                "no expires_in",
            ),
            (br#"{"access_token":7,"expires_in":60}"#, "no access_token"),
            (br#"["s3cr3t",60]"#, "no access_token"),
            (
                br#"{"access_token":"s3cr3t","expires_in":18446744073709551615}"#,
                "expires_in out of range",
            ),
        ] {
            let err = parse_token_response(body, now).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("failed to parse the GCP token response: {reason}")
            );
        }
    }

    /// The metadata-server flow against a local fake: path, scopes, the `Metadata-Flavor`
    /// header, the credential and expiry; then a refusal.
    #[tokio::test]
    async fn metadata_server_against_a_fake() {
        let fake = Fake::start(
            200,
            "application/json",
            r#"{"access_token":"ya29.fake","expires_in":3599,"token_type":"Bearer"}"#.into(),
        )
        .await;
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let before = SystemTime::now();
        let token = metadata_token(&http, &fake.addr).await.unwrap();
        assert_eq!(token.credential, credential("ya29.fake"));
        assert!(token.expires_at >= before + Duration::from_secs(3599));
        let req = &fake.received()[0];
        assert_eq!(req.method, "GET");
        assert_eq!(
            req.uri.path(),
            "/computeMetadata/v1/instance/service-accounts/default/token"
        );
        assert_eq!(
            req.uri.query(),
            Some(
                "scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform%2Chttps%3A%2F%2Fwww.googleapis.com%2Fauth%2Fuserinfo.email"
            )
        );
        assert_eq!(req.header("metadata-flavor"), "Google");

        let fake = Fake::start(404, "text/plain", "no service account".into()).await;
        let err = metadata_token(&http, &fake.addr).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected status from the GCP metadata server: 404"
        );
    }

    /// The `GOOGLE_APPLICATION_CREDENTIALS` path through `gcp_auth`: a key file whose
    /// `token_uri` is a local fake; checks the JWT-bearer grant and the credential.
    #[cfg(feature = "gcp")]
    #[tokio::test]
    async fn key_file_against_a_fake_token_endpoint() {
        let fake = Fake::start(
            200,
            "application/json",
            r#"{"access_token":"ya29.keyfile","expires_in":3600,"token_type":"Bearer"}"#.into(),
        )
        .await;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let file = serde_json::json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "k",
            "private_key": key.serialize_pem(),
            "client_email": "sa@p.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": format!("{}/token", fake.url),
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        std::fs::write(&path, file.to_string()).unwrap();
        let before = SystemTime::now();
        let token = key_file_token(&path).await.unwrap();
        assert_eq!(token.credential, credential("ya29.keyfile"));
        assert!(token.expires_at > before + Duration::from_secs(3000));
        let req = &fake.received()[0];
        assert_eq!(req.method, "POST");
        assert_eq!(req.uri.path(), "/token");
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&req.body)
                .into_owned()
                .collect();
        assert_eq!(
            form["grant_type"],
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        );
        assert_eq!(form["assertion"].split('.').count(), 3);

        let err = key_file_token(&dir.path().join("missing.json"))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("failed to read the GOOGLE_APPLICATION_CREDENTIALS key file"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::mutation::{config, mutated};

    const JSONS: &[&str] = &[
        r#"{"access_token":"ya29.a","expires_in":3600,"token_type":"Bearer"}"#,
        r#"{"accessToken":"ya29","expireTime":"2026-01-01T00:00:00Z"}"#,
        r#"{"error":{"code":403,"status":"PERMISSION_DENIED","message":"denied"}}"#,
    ];

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn mutated_answers_never_panic(body in mutated(JSONS)) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            let _ = parse_token_response(&body, now);
            let _ = parse_generate_access_token_response(&body);
            let _ = super::super::error_detail(&body, &[]);
        }

        /// Any `expires_in` gives a token expiring that much later, or a parse error.
        #[test]
        fn any_lifetime_is_added_or_refused(expires_in in any::<u64>()) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            let body = format!(r#"{{"access_token":"t","expires_in":{expires_in}}}"#);
            match parse_token_response(body.as_bytes(), now) {
                Ok(token) => prop_assert_eq!(token.expires_at, now + Duration::from_secs(expires_in)),
                Err(e) => prop_assert!(
                    matches!(e, CloudError::Parse { reason: "expires_in out of range", .. }),
                    "{}", e
                ),
            }
        }
    }
}
