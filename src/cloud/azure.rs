//! Azure Container Registry login (fluxcd/pkg `auth/azure`): an Entra ID access token for the
//! cloud's Resource Manager scope, exchanged at `https://<registry>/oauth2/exchange` for an ACR
//! refresh token, presented as the password of user `00000000-0000-0000-0000-000000000000`.
//!
//! The Entra ID token comes from, in Flux's order (its `DefaultAzureCredential` without shell
//! outs): a client secret in the environment (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET`), workload identity (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//! `AZURE_FEDERATED_TOKEN_FILE`, as AKS injects them), then managed identity (user-assigned when
//! `AZURE_CLIENT_ID` is set). Client certificates (`AZURE_CLIENT_CERTIFICATE_PATH`) are not
//! supported: the SDK needs openssl for them. That part needs the `azure` cargo feature; the
//! exchange itself is plain HTTP and always built.
//!
//! Object-level workload identity (a service account annotated with
//! `azure.workload.identity/tenant-id` and `azure.workload.identity/client-id`): the Kubernetes
//! token (audience `api://AzureADTokenExchange`) is the client assertion of a client-credentials
//! request at the tenant's Entra ID token endpoint, for the same scope; plain HTTP, always built.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use url::Url;

use super::http::{Lenient, parse_json};
use super::{CloudError, Token};
use crate::registry::Credential;

/// The user name ACR expects with a refresh token.
pub const USERNAME: &str = "00000000-0000-0000-0000-000000000000";

/// The largest exchange response read.
const MAX_RESPONSE: usize = 1 << 20;

/// The audience of the service account token (Flux's, Entra ID's federated credentials').
pub const AUDIENCE: &str = "api://AzureADTokenExchange";
/// The service-account annotation naming the Entra ID tenant (Azure workload identity's).
pub const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";
/// The service-account annotation naming the application (client) ID.
pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
/// The environment variable that overrides the Entra ID authority host (Azure SDKs').
pub const AUTHORITY_HOST_ENV: &str = "AZURE_AUTHORITY_HOST";
/// What a tenant ID may contain (it becomes a path segment of the token URL; the Azure SDKs
/// check the same).
pub const TENANT_ID_PATTERN: &str = "^[0-9A-Za-z.-]+$";
/// The client assertion type of a JWT-bearer client assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The tenant and client IDs named by a service account's annotations.
///
/// # Errors
///
/// [`CloudError::MissingAnnotation`] when either annotation is absent or empty (Flux's
/// message), [`CloudError::InvalidAnnotation`] when the tenant ID could not be a path segment.
pub fn identity(annotations: &BTreeMap<String, String>) -> Result<(String, String), CloudError> {
    let get = |key, what| {
        annotations
            .get(key)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or(CloudError::MissingAnnotation { what, key })
    };
    let tenant = get(TENANT_ID_ANNOTATION, "azure tenant ID")?;
    let client = get(CLIENT_ID_ANNOTATION, "azure client ID")?;
    if !tenant
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
    {
        return Err(CloudError::InvalidAnnotation {
            key: TENANT_ID_ANNOTATION,
            value: tenant,
            pattern: TENANT_ID_PATTERN,
        });
    }
    Ok((tenant, client))
}

/// The Entra ID authority for `registry`: `$AZURE_AUTHORITY_HOST` when set, else the
/// registry's cloud (`azurecr.cn`: China, `azurecr.us`: US Government, otherwise public).
pub fn authority_host(registry: &str) -> String {
    if let Some(host) = std::env::var(AUTHORITY_HOST_ENV)
        .ok()
        .filter(|h| !h.is_empty())
    {
        return host;
    }
    if registry.ends_with(".azurecr.cn") {
        "https://login.chinacloudapi.cn"
    } else if registry.ends_with(".azurecr.us") {
        "https://login.microsoftonline.us"
    } else {
        "https://login.microsoftonline.com"
    }
    .to_string()
}

/// The tenant's token endpoint under `authority`: `<authority>/<tenant>/oauth2/v2.0/token`.
pub fn token_url(authority: &str, tenant: &str) -> String {
    format!(
        "{}/{tenant}/oauth2/v2.0/token",
        authority.trim_end_matches('/')
    )
}

/// The form body of a client-credentials request authenticated by `assertion`.
pub fn client_assertion_body(client_id: &str, assertion: &str, scope: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE)
        .append_pair("client_assertion", assertion)
        .append_pair("scope", scope)
        .finish()
}

/// The access token in an Entra ID token response (`{"access_token", "expires_in", …}`).
///
/// # Errors
///
/// [`CloudError::Parse`] when the body is not JSON with a non-empty `access_token`.
pub fn parse_token_response(body: &[u8]) -> Result<String, CloudError> {
    let bad = |reason| CloudError::Parse {
        what: "the Entra ID token response",
        reason,
    };
    let answer: TokenResponse = parse_json(body, "not JSON", "no access_token").map_err(bad)?;
    answer
        .access_token
        .into_option()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no access_token"))
}

/// An Entra ID token response: only the token is read (its lifetime comes from the exchange).
#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: Lenient<String>,
}

/// An Entra ID access token for `scope` as the application `client_id` of `tenant`, proving
/// its identity with the service account token `assertion` (a federated credential).
///
/// # Errors
///
/// [`CloudError::Http`] when the authority cannot be reached, [`CloudError::Refused`] with
/// Entra ID's error and description (or [`CloudError::Status`]) on a refusal,
/// [`CloudError::Parse`] on a malformed answer. Neither token appears in an error.
pub async fn token_with_assertion(
    http: &reqwest::Client,
    authority: &str,
    tenant: &str,
    client_id: &str,
    assertion: &str,
    scope: &str,
) -> Result<String, CloudError> {
    let response = super::http::post_form(
        http,
        token_url(authority, tenant),
        client_assertion_body(client_id, assertion, scope),
        "send the Entra ID token request",
    )
    .await?;
    let body = super::http::read_token_response(
        response,
        "Entra ID token request",
        MAX_RESPONSE,
        &[assertion],
    )
    .await?;
    parse_token_response(&body)
}

/// The Entra ID scope for `registry`: its cloud's Resource Manager endpoint + `/.default`
/// (`azurecr.cn`: China, `azurecr.us`: US Government, otherwise public).
pub fn scope(registry: &str) -> &'static str {
    if registry.ends_with(".azurecr.cn") {
        "https://management.chinacloudapi.cn/.default"
    } else if registry.ends_with(".azurecr.us") {
        "https://management.usgovcloudapi.net/.default"
    } else {
        "https://management.azure.com/.default"
    }
}

/// The exchange endpoint under `registry_url` (`https://<registry>`): `…/oauth2/exchange`.
pub fn exchange_url(registry_url: &Url) -> Url {
    let mut url = registry_url.clone();
    let path = format!("{}/oauth2/exchange", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// The form body of the exchange: `grant_type=access_token`, `service=<host>`,
/// `access_token=<Entra ID token>`.
pub fn exchange_body(service: &str, access_token: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "access_token")
        .append_pair("service", service)
        .append_pair("access_token", access_token)
        .finish()
}

/// The credential in an exchange response (`{"refresh_token": "<JWT>"}`), expiring at the JWT's
/// `exp`.
///
/// # Errors
///
/// [`CloudError::Parse`] when the body is not JSON with a `refresh_token` JWT carrying `exp`.
pub fn parse_exchange_response(body: &[u8]) -> Result<Token, CloudError> {
    let bad = |reason| CloudError::Parse {
        what: "the ACR exchange response",
        reason,
    };
    let answer: ExchangeResponse = parse_json(body, "not JSON", "no refresh_token").map_err(bad)?;
    let refresh = answer
        .refresh_token
        .into_option()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no refresh_token"))?;
    Ok(Token {
        expires_at: jwt_expiry(&refresh)?,
        credential: Credential::Basic {
            username: USERNAME.to_string(),
            password: refresh,
        },
    })
}

/// ACR's exchange answer: the refresh token is the registry password.
#[derive(serde::Deserialize)]
struct ExchangeResponse {
    #[serde(default)]
    refresh_token: Lenient<String>,
}

/// The `exp` claim of a JWT, read without verifying it (as Flux does: the registry verifies).
///
/// # Errors
///
/// [`CloudError::Parse`] when `jwt` is not three dot-separated parts with a base64url JSON
/// payload holding a numeric, non-negative `exp`.
pub fn jwt_expiry(jwt: &str) -> Result<SystemTime, CloudError> {
    let bad = |reason| CloudError::Parse {
        what: "the ACR refresh token",
        reason,
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    let [_, payload, _] = parts.as_slice() else {
        return Err(bad("not a JWT"));
    };
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("payload is not base64url"))?;
    let claims: Claims =
        parse_json(&payload, "payload is not JSON", "no exp claim").map_err(bad)?;
    let exp = claims
        .exp
        .into_option()
        .ok_or_else(|| bad("no exp claim"))?;
    let exp = Duration::try_from_secs_f64(exp).map_err(|_| bad("exp claim out of range"))?;
    SystemTime::UNIX_EPOCH
        .checked_add(exp)
        .ok_or_else(|| bad("exp claim out of range"))
}

/// The one claim read from the ACR refresh token.
#[derive(serde::Deserialize)]
struct Claims {
    #[serde(default)]
    exp: Lenient<f64>,
}

/// Exchanges `access_token` (Entra ID) at `registry_url` (`https://<registry>`; the `service`
/// sent is its host name) for an ACR refresh token.
///
/// # Errors
///
/// [`CloudError::Http`] when the request fails, [`CloudError::Status`] on a non-2xx answer
/// (`unexpected status from ACR exchange request: <code>`, as Flux), [`CloudError::Parse`] on a
/// malformed answer.
pub async fn exchange(
    http: &reqwest::Client,
    registry_url: &Url,
    access_token: &str,
) -> Result<Token, CloudError> {
    let service = registry_url.host_str().unwrap_or_default();
    let response = super::http::post_form(
        http,
        exchange_url(registry_url),
        exchange_body(service, access_token),
        "send the ACR exchange request",
    )
    .await?;
    let body = super::http::read_body(response, "ACR exchange request", MAX_RESPONSE).await?;
    parse_exchange_response(&body)
}

/// Obtains a registry credential for the ACR `registry` (a host matching the Azure pattern).
#[cfg(feature = "azure")]
pub(super) async fn login(registry: &str) -> Result<Token, CloudError> {
    let access_token = entra_token(scope(registry)).await?;
    let url = Url::parse(&format!("https://{registry}/")).map_err(|_| CloudError::Parse {
        what: "the registry host",
        reason: "not a valid URL authority",
    })?;
    exchange(&super::http::http_client(true)?, &url, &access_token).await
}

/// Without the `azure` feature: [`CloudError::NotCompiled`].
#[cfg(not(feature = "azure"))]
pub(super) async fn login(_registry: &str) -> Result<Token, CloudError> {
    Err(CloudError::NotCompiled { provider: "azure" })
}

/// An Entra ID access token for `scope` from the first configured identity.
#[cfg(feature = "azure")]
async fn entra_token(scope: &str) -> Result<String, CloudError> {
    use std::sync::Arc;

    use azure_core::credentials::{Secret, TokenCredential};
    use azure_identity::{
        ClientSecretCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
        UserAssignedId, WorkloadIdentityCredential,
    };

    let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let failed = |what| {
        move |e: azure_core::Error| CloudError::Provider {
            what,
            source: Box::new(e),
        }
    };
    let (tenant, client, secret, token_file) = (
        env("AZURE_TENANT_ID"),
        env("AZURE_CLIENT_ID"),
        env("AZURE_CLIENT_SECRET"),
        env("AZURE_FEDERATED_TOKEN_FILE"),
    );
    let credential: Arc<dyn TokenCredential> = match (&tenant, &client, secret, token_file) {
        (Some(tenant), Some(client), Some(secret), _) => {
            ClientSecretCredential::new(tenant, client.clone(), Secret::new(secret), None)
                .map_err(failed("set up the Azure client secret credential"))?
        }
        (Some(_), Some(_), None, Some(_)) => WorkloadIdentityCredential::new(None)
            .map_err(failed("set up the Azure workload identity credential"))?,
        _ => {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: client.clone().map(UserAssignedId::ClientId),
                ..Default::default()
            };
            ManagedIdentityCredential::new(Some(options))
                .map_err(failed("set up the Azure managed identity credential"))?
        }
    };
    let token = credential
        .get_token(&[scope], None)
        .await
        .map_err(failed("get an Entra ID access token"))?;
    Ok(token.token.secret().to_string())
}

#[cfg(test)]
mod tests {
    use super::super::fake::Fake;
    use super::*;

    fn jwt(claims: &str) -> String {
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.{}", e(r#"{"alg":"RS256"}"#), e(claims), e("sig"))
    }

    #[test]
    fn scopes_follow_the_registry_cloud() {
        assert_eq!(
            scope("a.azurecr.io"),
            "https://management.azure.com/.default"
        );
        assert_eq!(
            scope("a.azurecr.de"),
            "https://management.azure.com/.default"
        );
        assert_eq!(
            scope("a.azurecr.cn"),
            "https://management.chinacloudapi.cn/.default"
        );
        assert_eq!(
            scope("a.azurecr.us"),
            "https://management.usgovcloudapi.net/.default"
        );
    }

    #[test]
    fn builds_the_exchange_request() {
        let base = Url::parse("https://myregistry.azurecr.io").unwrap();
        assert_eq!(
            exchange_url(&base).as_str(),
            "https://myregistry.azurecr.io/oauth2/exchange"
        );
        let base = Url::parse("http://127.0.0.1:5000/prefix/").unwrap();
        assert_eq!(
            exchange_url(&base).as_str(),
            "http://127.0.0.1:5000/prefix/oauth2/exchange"
        );
        assert_eq!(
            exchange_body("myregistry.azurecr.io", "a+b/c="),
            "grant_type=access_token&service=myregistry.azurecr.io&access_token=a%2Bb%2Fc%3D"
        );
    }

    #[test]
    fn parses_the_refresh_token_and_its_expiry() {
        let refresh = jwt(r#"{"exp":1900000000,"grant_type":"refresh_token"}"#);
        let body = format!(r#"{{"refresh_token":"{refresh}"}}"#);
        let token = parse_exchange_response(body.as_bytes()).unwrap();
        assert_eq!(
            token.credential,
            Credential::Basic {
                username: USERNAME.into(),
                password: refresh.clone()
            }
        );
        assert_eq!(
            token.expires_at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000)
        );
        // A fractional NumericDate, and base64 padding, are accepted.
        let padded = format!("{}=", jwt(r#"{"exp":1.5}"#));
        assert_eq!(
            jwt_expiry(&padded).unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1500)
        );
    }

    #[test]
    fn rejects_malformed_responses_without_echoing_them() {
        let secretish = "s3cr3t";
        for (body, reason) in [
            (
                format!("<html>{secretish}"),
                "the ACR exchange response: not JSON",
            ),
            (
                r#"{"access_token":"s3cr3t"}"#.to_string(),
                "the ACR exchange response: no refresh_token",
            ),
            (
                r#"{"refresh_token":"s3cr3t"}"#.to_string(),
                "the ACR refresh token: not a JWT",
            ),
            (
                format!(r#"{{"refresh_token":"a.{secretish}!.c"}}"#),
                "the ACR refresh token: payload is not base64url",
            ),
            (
                format!(r#"{{"refresh_token":"{}"}}"#, jwt(r#"{"sub":"s3cr3t"}"#)),
                "the ACR refresh token: no exp claim",
            ),
            (
                format!(r#"{{"refresh_token":"{}"}}"#, jwt(r#"{"exp":-1}"#)),
                "the ACR refresh token: exp claim out of range",
            ),
        ] {
            let err = parse_exchange_response(body.as_bytes()).unwrap_err();
            assert_eq!(err.to_string(), format!("failed to parse {reason}"));
            assert!(!err.to_string().contains(secretish));
        }
    }

    /// The exchange over HTTP against a local fake registry: method, path, content type, form
    /// fields, and the answer turned into a credential; then a refusal.
    #[tokio::test]
    async fn exchange_against_a_fake_registry() {
        let refresh = jwt(r#"{"exp":1900000000}"#);
        let fake = Fake::start(
            200,
            "application/json",
            format!(r#"{{"refresh_token":"{refresh}"}}"#),
        )
        .await;
        let http = reqwest::Client::new();
        let base = Url::parse(&fake.url).unwrap();
        let token = exchange(&http, &base, "entra-token").await.unwrap();
        assert_eq!(
            token.credential,
            Credential::Basic {
                username: USERNAME.into(),
                password: refresh
            }
        );
        let req = &fake.received()[0];
        assert_eq!(req.method, "POST");
        assert_eq!(req.uri.path(), "/oauth2/exchange");
        assert_eq!(
            req.header("content-type"),
            "application/x-www-form-urlencoded"
        );
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        assert_eq!(
            form,
            [
                ("grant_type".into(), "access_token".into()),
                ("service".into(), "127.0.0.1".into()),
                ("access_token".into(), "entra-token".into()),
            ]
        );

        let fake = Fake::start(401, "application/json", r#"{"errors":["s3cr3t"]}"#.into()).await;
        let base = Url::parse(&fake.url).unwrap();
        let err = exchange(&http, &base, "entra-token").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected status from ACR exchange request: 401"
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::mutation::{config, mutated, mutated_text};

    const JSONS: &[&str] = &[
        r#"{"access_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjE4MDAwMDAwMDB9.","expires_in":3600,"token_type":"Bearer"}"#,
        r#"{"refresh_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjE4MDAwMDAwMDB9."}"#,
        r#"{"error":"invalid_client","error_description":"AADSTS700016: no such app"}"#,
    ];

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn mutated_answers_never_panic(body in mutated(JSONS)) {
            let _ = parse_token_response(&body);
            let _ = parse_exchange_response(&body);
            let _ = super::super::error_detail(&body, &["s3cr3t-assertion"]);
        }

        #[test]
        fn mutated_jwts_never_panic(jwt in mutated_text(&["eyJhbGciOiJub25lIn0.eyJleHAiOjE4MDAwMDAwMDB9.", "a.b.c"])) {
            let _ = jwt_expiry(&jwt);
        }

        /// The expiry of a refresh token is its `exp` claim, whatever the other claims.
        #[test]
        fn a_jwt_expires_at_its_exp_claim(exp in 0u64..4_000_000_000, sub in "[a-z]{0,12}") {
            let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            let jwt = format!("{}.{}.sig", e("{}"), e(&format!(r#"{{"sub":"{sub}","exp":{exp}}}"#)));
            prop_assert_eq!(
                jwt_expiry(&jwt).ok(),
                Some(SystemTime::UNIX_EPOCH + Duration::from_secs(exp))
            );
        }
    }
}
