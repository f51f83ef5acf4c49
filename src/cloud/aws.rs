//! Amazon ECR login (fluxcd/pkg `auth/aws`): the AWS SDK's default credential chain in the
//! registry's region (environment, shared profile, IRSA web identity, EKS Pod Identity, ECS
//! container credentials, IMDS), then `GetAuthorizationToken` (ECR Public's for
//! `public.ecr.aws`, always in `us-east-1`), whose token is `base64(user:password)`.
//!
//! The SDK part needs the `aws` cargo feature; [`decode_authorization_token`] is always built.

use base64::Engine as _;

use super::{CloudError, Token};
use crate::registry::Credential;

/// The region ECR Public tokens are issued in.
pub const ECR_PUBLIC_REGION: &str = "us-east-1";

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

/// Test seam: an endpoint and static credentials instead of AWS's and the default chain.
#[cfg(feature = "aws")]
type Override = (String, aws_sdk_ecr::config::Credentials);

#[cfg(feature = "aws")]
async fn fetch(region: &str, public: bool, over: Option<Override>) -> Result<Token, CloudError> {
    use aws_config::{BehaviorVersion, Region};

    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string()));
    if let Some((endpoint, credentials)) = over {
        loader = loader
            .endpoint_url(endpoint)
            .credentials_provider(credentials);
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
        let token = fetch("eu-west-1", false, Some((fake.url.clone(), creds())))
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
        let token = fetch(ECR_PUBLIC_REGION, true, Some((fake.url.clone(), creds())))
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
        let err = fetch("eu-west-1", false, Some((fake.url.clone(), creds())))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to parse the GetAuthorizationToken response: no authorization data returned"
        );
        let denied = r#"{"__type":"AccessDeniedException","message":"not authorized to perform ecr:GetAuthorizationToken"}"#;
        let fake = Fake::start(400, "application/x-amz-json-1.1", denied.into()).await;
        let err = fetch("eu-west-1", false, Some((fake.url.clone(), creds())))
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
