//! Amazon ECR login (fluxcd/pkg `auth/aws`): the AWS SDK's default credential chain in the
//! registry's region (environment, shared profile, IRSA web identity, EKS Pod Identity, ECS
//! container credentials, IMDS), then `GetAuthorizationToken` (ECR Public's for
//! `public.ecr.aws`, always in `us-east-1`), whose token is `base64(user:password)`.
//!
//! Object-level workload identity (a service account annotated with
//! `eks.amazonaws.com/role-arn`): the Kubernetes token (audience `sts.amazonaws.com`) is traded
//! at STS `AssumeRoleWithWebIdentity` in the registry's region for temporary credentials, with
//! which `GetAuthorizationToken` is called.
//!
//! The SDK part (ECR) needs the `aws` cargo feature; [`decode_authorization_token`] and the STS
//! request, a plain query-API call, are always built.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::SystemTime;

use base64::Engine as _;

use super::{CloudError, Token};
use crate::registry::Credential;

/// The region ECR Public tokens are issued in.
pub const ECR_PUBLIC_REGION: &str = "us-east-1";
/// The audience of the service account token (Flux's).
pub const AUDIENCE: &str = "sts.amazonaws.com";
/// The service-account annotation naming the IAM role (IRSA's, which Flux reads).
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The role ARN pattern, as shown in errors (Flux's).
pub const ROLE_ARN_PATTERN: &str = r"^arn:aws[\w-]*:iam::[0-9]{1,30}:role/.{1,200}$";

/// The largest STS response read.
const MAX_RESPONSE: usize = 1 << 20;

// `\w` spelled out: Go's is ASCII-only.
static ROLE_ARN: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r"^arn:aws[0-9A-Za-z_-]*:iam::[0-9]{1,30}:role/.{1,200}$").ok()
});

/// The IAM role named by a service account's annotations.
///
/// # Errors
///
/// [`CloudError::InvalidAnnotation`] when [`ROLE_ARN_ANNOTATION`] is absent or not a role ARN
/// (Flux's message, the empty value included).
pub fn role_arn(annotations: &BTreeMap<String, String>) -> Result<String, CloudError> {
    let value = annotations
        .get(ROLE_ARN_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    if ROLE_ARN.as_ref().is_some_and(|re| re.is_match(&value)) {
        Ok(value)
    } else {
        Err(CloudError::InvalidAnnotation {
            key: ROLE_ARN_ANNOTATION,
            value,
            pattern: ROLE_ARN_PATTERN,
        })
    }
}

/// The STS role session name Flux uses: `<name>.<namespace>.<region>.fluxcd.io`.
pub fn session_name(namespace: &str, name: &str, region: &str) -> String {
    format!("{name}.{namespace}.{region}.fluxcd.io")
}

/// The regional STS endpoint for an ECR `registry` in `region`, in the registry's partition
/// (`https://sts.<region>.amazonaws.com`, `….amazonaws.com.cn`, …).
pub fn sts_url(registry: &str, region: &str) -> String {
    let domain = super::host::aws_domain(registry).unwrap_or("amazonaws.com");
    format!("https://sts.{region}.{domain}")
}

/// The form body of `AssumeRoleWithWebIdentity`.
pub fn assume_role_body(role_arn: &str, session_name: &str, web_identity_token: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "AssumeRoleWithWebIdentity")
        .append_pair("Version", "2011-06-15")
        .append_pair("RoleArn", role_arn)
        .append_pair("RoleSessionName", session_name)
        .append_pair("WebIdentityToken", web_identity_token)
        .finish()
}

/// Temporary AWS credentials from STS. `Debug` shows the access key ID only.
#[derive(Clone)]
pub struct SessionCredentials {
    /// The access key ID.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
    /// When they expire.
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The credentials in an `AssumeRoleWithWebIdentity` answer (XML).
///
/// # Errors
///
/// [`CloudError::Parse`] when a credential field or a valid `Expiration` is missing; the
/// content is never shown.
pub fn parse_assume_role_response(body: &[u8]) -> Result<SessionCredentials, CloudError> {
    let bad = |reason| CloudError::Parse {
        what: "the AssumeRoleWithWebIdentity response",
        reason,
    };
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
    let credentials =
        super::http::xml_text(text, "Credentials").ok_or_else(|| bad("credentials are nil"))?;
    let field = |tag, reason| {
        super::http::xml_text(&credentials, tag)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad(reason))
    };
    let expiration = field("Expiration", "no Expiration")?;
    let expires_at = expiration
        .parse::<k8s_openapi::jiff::Timestamp>()
        .map_err(|_| bad("Expiration is not a timestamp"))?;
    Ok(SessionCredentials {
        access_key_id: field("AccessKeyId", "no AccessKeyId")?,
        secret_access_key: field("SecretAccessKey", "no SecretAccessKey")?,
        session_token: field("SessionToken", "no SessionToken")?,
        expires_at: SystemTime::from(expires_at),
    })
}

/// Trades `web_identity_token` for temporary credentials of `role_arn` at the STS endpoint
/// `sts` (unsigned, as the web-identity call is).
///
/// # Errors
///
/// [`CloudError::Http`] when STS cannot be reached, [`CloudError::Refused`] with STS's error
/// code and message (or [`CloudError::Status`]) on a refusal, [`CloudError::Parse`] on a
/// malformed answer. The token never appears in an error.
pub async fn assume_role_with_web_identity(
    http: &reqwest::Client,
    sts: &str,
    role_arn: &str,
    session_name: &str,
    web_identity_token: &str,
) -> Result<SessionCredentials, CloudError> {
    let response = super::http::post_form(
        http,
        sts,
        assume_role_body(role_arn, session_name, web_identity_token),
        "send the AssumeRoleWithWebIdentity request",
    )
    .await?;
    let body = super::http::read_token_response(
        response,
        "AWS STS AssumeRoleWithWebIdentity",
        MAX_RESPONSE,
        &[web_identity_token],
    )
    .await?;
    parse_assume_role_response(&body)
}

/// Decodes an ECR authorization token, `base64(user:password)`, into a basic credential (Flux:
/// exactly one `:`). The token's content never appears in an error.
///
/// # Errors
///
/// [`CloudError::Parse`] when the token is not base64 of UTF-8 `user:password`.
pub fn decode_authorization_token(token: &str) -> Result<Credential, CloudError> {
    let bad = |reason| CloudError::Parse {
        what: "authorization token",
        reason,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| bad("not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let parts: Vec<&str> = text.split(':').collect();
    let [username, password] = parts.as_slice() else {
        return Err(bad("invalid authorization token format"));
    };
    Ok(Credential::Basic {
        username: (*username).to_string(),
        password: (*password).to_string(),
    })
}

/// Obtains a registry credential for ECR in `region` (ECR Public when `public`).
#[cfg(feature = "aws")]
pub(super) async fn login(region: &str, public: bool) -> Result<Token, CloudError> {
    fetch(region, public, None).await
}

/// Without the `aws` feature: [`CloudError::NotCompiled`].
#[cfg(not(feature = "aws"))]
pub(super) async fn login(_region: &str, _public: bool) -> Result<Token, CloudError> {
    Err(CloudError::NotCompiled { provider: "aws" })
}

/// Obtains a registry credential for ECR in `region` (ECR Public when `public`) with the
/// temporary `credentials` of a service account; `endpoint` overrides the ECR API's.
#[cfg(feature = "aws")]
pub(super) async fn login_with_credentials(
    region: &str,
    public: bool,
    credentials: &SessionCredentials,
    endpoint: Option<String>,
) -> Result<Token, CloudError> {
    let static_credentials = aws_sdk_ecr::config::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        Some(credentials.session_token.clone()),
        Some(credentials.expires_at),
        "AssumeRoleWithWebIdentity",
    );
    fetch(region, public, Some((endpoint, static_credentials))).await
}

/// Without the `aws` feature: [`CloudError::NotCompiled`].
#[cfg(not(feature = "aws"))]
pub(super) async fn login_with_credentials(
    _region: &str,
    _public: bool,
    _credentials: &SessionCredentials,
    _endpoint: Option<String>,
) -> Result<Token, CloudError> {
    Err(CloudError::NotCompiled { provider: "aws" })
}

/// Static credentials instead of the default chain, and optionally an endpoint instead of
/// AWS's (tests).
#[cfg(feature = "aws")]
type Override = (Option<String>, aws_sdk_ecr::config::Credentials);

#[cfg(feature = "aws")]
async fn fetch(region: &str, public: bool, over: Option<Override>) -> Result<Token, CloudError> {
    use aws_config::{BehaviorVersion, Region};

    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string()));
    if let Some((endpoint, credentials)) = over {
        loader = loader.credentials_provider(credentials);
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
        }
    }
    let config = loader.load().await;
    let provider = |what, e: Box<dyn std::error::Error + Send + Sync>| CloudError::Provider {
        what,
        source: e,
    };
    let missing = |reason| CloudError::Parse {
        what: "the GetAuthorizationToken response",
        reason,
    };
    let (token, expires_at) = if public {
        let out = aws_sdk_ecrpublic::Client::new(&config)
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| provider("get an ECR Public authorization token", Box::new(e)))?;
        let data = out
            .authorization_data()
            .ok_or_else(|| missing("no authorization data returned"))?;
        (
            data.authorization_token().map(str::to_string),
            data.expires_at().copied(),
        )
    } else {
        let out = aws_sdk_ecr::Client::new(&config)
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| provider("get an ECR authorization token", Box::new(e)))?;
        let data = out
            .authorization_data()
            .first()
            .ok_or_else(|| missing("no authorization data returned"))?;
        (
            data.authorization_token().map(str::to_string),
            data.expires_at().copied(),
        )
    };
    let token = token.ok_or_else(|| missing("authorization token is nil"))?;
    let expires_at = expires_at.ok_or_else(|| missing("authorization token expiration is nil"))?;
    let expires_at = std::time::SystemTime::try_from(expires_at)
        .map_err(|_| missing("authorization token expiration is out of range"))?;
    Ok(Token {
        credential: decode_authorization_token(&token)?,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn decodes_user_and_password() {
        assert_eq!(
            decode_authorization_token(&b64("AWS:eyJwYXlsb2Fk")).unwrap(),
            Credential::Basic {
                username: "AWS".into(),
                password: "eyJwYXlsb2Fk".into()
            }
        );
    }

    #[test]
    fn rejects_malformed_tokens_without_echoing_them() {
        for (token, reason) in [
            ("not base64!".to_string(), "not base64"),
            (
                base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', b'x']),
                "not UTF-8",
            ),
            (b64("AWS"), "invalid authorization token format"),
            (b64("AWS:se:cret"), "invalid authorization token format"),
        ] {
            let err = decode_authorization_token(&token).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("failed to parse authorization token: {reason}")
            );
            assert!(!err.to_string().contains("cret"));
        }
    }

    /// The SDK path end to end against a local fake of the ECR API (static credentials, endpoint
    /// override): request shape, SigV4 scope, response parsing and expiry.
    #[cfg(feature = "aws")]
    #[tokio::test]
    async fn sdk_round_trip_against_a_fake_ecr() {
        use super::super::fake::Fake;
        use std::time::{Duration, SystemTime};

        let creds = || {
            aws_sdk_ecr::config::Credentials::new("AKIDEXAMPLE", "secretkey", None, None, "test")
        };
        let expires = 2_000_000_000u64;
        let private = format!(
            r#"{{"authorizationData":[{{"authorizationToken":"{}","expiresAt":{expires},"proxyEndpoint":"https://1.dkr.ecr.eu-west-1.amazonaws.com"}}]}}"#,
            b64("AWS:pw1")
        );
        let fake = Fake::start(200, "application/x-amz-json-1.1", private).await;
        let token = fetch("eu-west-1", false, Some((Some(fake.url.clone()), creds())))
            .await
            .unwrap();
        assert_eq!(
            token,
            Token {
                credential: Credential::Basic {
                    username: "AWS".into(),
                    password: "pw1".into()
                },
                expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(expires),
            }
        );
        let req = &fake.received()[0];
        assert_eq!(req.method, "POST");
        assert_eq!(
            req.header("x-amz-target"),
            "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
        );
        let auth = req.header("authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-1/ecr/aws4_request"), "{auth}");

        let public = format!(
            r#"{{"authorizationData":{{"authorizationToken":"{}","expiresAt":{expires}}}}}"#,
            b64("AWS:pw2")
        );
        let fake = Fake::start(200, "application/x-amz-json-1.1", public).await;
        let token = fetch(
            ECR_PUBLIC_REGION,
            true,
            Some((Some(fake.url.clone()), creds())),
        )
        .await
        .unwrap();
        assert_eq!(
            token.credential,
            Credential::Basic {
                username: "AWS".into(),
                password: "pw2".into()
            }
        );
        let req = &fake.received()[0];
        assert_eq!(
            req.header("x-amz-target"),
            "SpencerFrontendService.GetAuthorizationToken"
        );
        assert!(
            req.header("authorization")
                .contains("/us-east-1/ecr-public/aws4_request")
        );

        // No authorization data, and an API error.
        let fake = Fake::start(
            200,
            "application/x-amz-json-1.1",
            r#"{"authorizationData":[]}"#.into(),
        )
        .await;
        let err = fetch("eu-west-1", false, Some((Some(fake.url.clone()), creds())))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to parse the GetAuthorizationToken response: no authorization data returned"
        );
        let denied = r#"{"__type":"AccessDeniedException","message":"not authorized to perform ecr:GetAuthorizationToken"}"#;
        let fake = Fake::start(400, "application/x-amz-json-1.1", denied.into()).await;
        let err = fetch("eu-west-1", false, Some((Some(fake.url.clone()), creds())))
            .await
            .unwrap_err();
        let text = crate::core::message::render(&err);
        assert!(
            text.starts_with("failed to get an ECR authorization token: "),
            "{text}"
        );
        assert!(text.contains("not authorized"), "{text}");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::mutation::{config, mutated, mutated_text};

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn mutated_sts_answers_never_panic(body in mutated(&[
            "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>AKIA</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>2026-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        ])) {
            let _ = parse_assume_role_response(&body);
        }

        #[test]
        fn mutated_ecr_tokens_never_panic(token in mutated_text(&["QVdTOnBhc3N3b3Jk", "dXNlcg=="])) {
            let _ = decode_authorization_token(&token);
        }

        /// An ECR token is `base64(user:password)`, with exactly one colon (as Flux).
        #[test]
        fn an_ecr_token_decodes_to_its_user_and_password(
            user in "[A-Za-z0-9]{1,12}",
            password in "[ -9;-~]{0,40}",
        ) {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let decoded = decode_authorization_token(&token);
            prop_assert!(
                matches!(&decoded, Ok(Credential::Basic { username, password: p }) if *username == user && *p == password),
                "{:?}", decoded.map(|_| ())
            );
        }
    }
}
