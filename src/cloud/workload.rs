//! Object-level workload identity (fluxcd/pkg `auth`, Flux 2.6's `ObjectLevelWorkloadIdentity`):
//! the registry credential is obtained as a Kubernetes service account of the object's
//! namespace rather than as the controller.
//!
//! [`Identity::parse`] reads the cloud identity from the service account's annotations;
//! [`Request::audiences`] gives the audiences of the Kubernetes token to request (a
//! TokenRequest, made by the caller); [`Request::exchange`] trades that token with the
//! provider, then for a registry credential:
//!
//! | provider | annotations | token audience | exchange |
//! |---|---|---|---|
//! | `aws` | `eks.amazonaws.com/role-arn` (required) | `sts.amazonaws.com` | STS `AssumeRoleWithWebIdentity` in the registry's region, then ECR `GetAuthorizationToken` with those credentials |
//! | `azure` | `azure.workload.identity/tenant-id`, `azure.workload.identity/client-id` (required) | `api://AzureADTokenExchange` | Entra ID client-credentials token with the token as client assertion, then the ACR `/oauth2/exchange` |
//! | `gcp` | `iam.gke.io/gcp-service-account`, `gcp.auth.fluxcd.io/workload-identity-provider` (both optional) | the workload identity provider, or the GKE cluster's pool | Google STS token exchange, then IAM Credentials `generateAccessToken` when a Google service account is named |
//!
//! Every endpoint can be pointed elsewhere through [`Endpoints`] (tests use local fakes).

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};

use super::host::Target;
use super::{CloudError, Token, aws, azure, gcp};

/// The service account an object logs in as.
#[derive(Clone, Copy, Debug)]
pub struct Account<'a> {
    /// Its namespace (the object's).
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its annotations.
    pub annotations: &'a BTreeMap<String, String>,
}

/// The cloud identity a service account's annotations name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// An IAM role assumed with the token.
    Aws {
        /// The role ARN.
        role_arn: String,
    },
    /// An Entra ID application with a federated credential for the service account.
    Azure {
        /// The tenant ID.
        tenant_id: String,
        /// The application (client) ID.
        client_id: String,
    },
    /// A federated identity, optionally impersonating a Google service account.
    Gcp {
        /// The Google service account to impersonate.
        email: Option<String>,
        /// The audience of the annotated workload identity provider; `None` on GKE.
        provider_audience: Option<String>,
    },
}

impl Identity {
    /// The identity named by `annotations` for a login to `target`.
    ///
    /// # Errors
    ///
    /// [`CloudError::MissingAnnotation`] or [`CloudError::InvalidAnnotation`], with Flux's
    /// messages.
    pub fn parse(
        target: &Target,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Identity, CloudError> {
        Ok(match target {
            Target::Ecr { .. } | Target::EcrPublic => Identity::Aws {
                role_arn: aws::role_arn(annotations)?,
            },
            Target::Acr { .. } => {
                let (tenant_id, client_id) = azure::identity(annotations)?;
                Identity::Azure {
                    tenant_id,
                    client_id,
                }
            }
            Target::Gcp => Identity::Gcp {
                provider_audience: gcp::workload_identity_provider_audience(annotations)?,
                email: gcp::service_account_email(annotations)?,
            },
        })
    }

    /// A one-line description for cache keys and logs (identifiers only, never a secret).
    pub fn describe(&self) -> String {
        match self {
            Identity::Aws { role_arn } => role_arn.clone(),
            Identity::Azure {
                tenant_id,
                client_id,
            } => format!("{tenant_id}/{client_id}"),
            Identity::Gcp {
                email,
                provider_audience,
            } => format!(
                "{}|{}",
                email.as_deref().unwrap_or_default(),
                provider_audience.as_deref().unwrap_or_default()
            ),
        }
    }
}

/// Where the exchanges go; `None` is production.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    /// AWS STS; production: `https://sts.<region>.<partition domain>` of the registry.
    pub aws_sts: Option<String>,
    /// The ECR API; production: the SDK's endpoint for the region.
    pub aws_ecr: Option<String>,
    /// The Entra ID authority; production: [`azure::authority_host`].
    pub azure_authority: Option<String>,
    /// The ACR token service; production: `https://<registry>`.
    pub acr: Option<String>,
    /// Google STS; production: [`gcp::STS_URL`].
    pub gcp_sts: Option<String>,
    /// IAM Credentials; production: [`gcp::IAM_CREDENTIALS_URL`].
    pub gcp_iam: Option<String>,
    /// The GKE metadata server; production: `http://$GCE_METADATA_HOST` or
    /// `http://169.254.169.254`.
    pub gcp_metadata: Option<String>,
}

/// The audiences of one login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audiences {
    /// The audiences of the Kubernetes token.
    pub token: Vec<String>,
    /// GCP: the audience presented to Google STS.
    pub sts: Option<String>,
}

/// The GKE clusters read so far, per metadata server (the values never change for a pod).
static GKE: LazyLock<Mutex<HashMap<String, gcp::GkeCluster>>> = LazyLock::new(Default::default);

/// One login as a service account.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// What to log in to.
    pub target: &'a Target,
    /// The registry host.
    pub registry: &'a str,
    /// The service account.
    pub account: Account<'a>,
    /// Its cloud identity.
    pub identity: &'a Identity,
    /// The endpoints.
    pub endpoints: &'a Endpoints,
}

impl Request<'_> {
    /// The audiences for this login; on GKE without a workload identity provider annotation
    /// they come from the metadata server (read once per process).
    ///
    /// # Errors
    ///
    /// [`CloudError::Metadata`] when the GKE metadata server cannot tell.
    pub async fn audiences(&self) -> Result<Audiences, CloudError> {
        let fixed = |audience: &str| Audiences {
            token: vec![audience.to_string()],
            sts: None,
        };
        match self.identity {
            Identity::Aws { .. } => Ok(fixed(aws::AUDIENCE)),
            Identity::Azure { .. } => Ok(fixed(azure::AUDIENCE)),
            Identity::Gcp {
                provider_audience: Some(audience),
                ..
            } => Ok(Audiences {
                token: vec![audience.clone()],
                sts: Some(audience.clone()),
            }),
            Identity::Gcp {
                provider_audience: None,
                ..
            } => {
                let base = self
                    .endpoints
                    .gcp_metadata
                    .clone()
                    .unwrap_or_else(|| format!("http://{}", gcp::metadata_host()));
                let cached = GKE
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&base)
                    .cloned();
                let cluster = match cached {
                    Some(c) => c,
                    None => {
                        // Link-local: never through a proxy.
                        let cluster =
                            gcp::gke_cluster(&super::http::http_client(false)?, &base).await?;
                        GKE.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(base, cluster.clone());
                        cluster
                    }
                };
                Ok(Audiences {
                    token: vec![cluster.workload_identity_pool()],
                    sts: Some(cluster.sts_audience()),
                })
            }
        }
    }

    /// Trades the service account token `subject` (issued for `audiences.token`) for a
    /// registry credential.
    ///
    /// # Errors
    ///
    /// [`CloudError::ServiceAccountExchange`] when the provider refuses the token,
    /// [`CloudError::RegistryCredentials`] when the registry credential cannot be made from
    /// the provider's token.
    pub async fn exchange(
        &self,
        audiences: &Audiences,
        subject: &str,
        http: &reqwest::Client,
    ) -> Result<Token, CloudError> {
        let exchange_failed = |e: CloudError| CloudError::ServiceAccountExchange {
            namespace: self.account.namespace.to_string(),
            name: self.account.name.to_string(),
            source: Box::new(e),
        };
        let registry_failed = |e: CloudError| CloudError::RegistryCredentials {
            source: Box::new(e),
        };
        let endpoints = self.endpoints;
        match (self.target, self.identity) {
            (Target::Ecr { .. } | Target::EcrPublic, Identity::Aws { role_arn }) => {
                let (region, public) = match self.target {
                    Target::Ecr { region } => (region.as_str(), false),
                    _ => (aws::ECR_PUBLIC_REGION, true),
                };
                let sts = endpoints
                    .aws_sts
                    .clone()
                    .unwrap_or_else(|| aws::sts_url(self.registry, region));
                let session = aws::session_name(self.account.namespace, self.account.name, region);
                let credentials =
                    aws::assume_role_with_web_identity(http, &sts, role_arn, &session, subject)
                        .await
                        .map_err(exchange_failed)?;
                aws::login_with_credentials(region, public, &credentials, endpoints.aws_ecr.clone())
                    .await
                    .map_err(registry_failed)
            }
            (
                Target::Acr { registry },
                Identity::Azure {
                    tenant_id,
                    client_id,
                },
            ) => {
                let authority = endpoints
                    .azure_authority
                    .clone()
                    .unwrap_or_else(|| azure::authority_host(registry));
                let access_token = azure::token_with_assertion(
                    http,
                    &authority,
                    tenant_id,
                    client_id,
                    subject,
                    azure::scope(registry),
                )
                .await
                .map_err(exchange_failed)?;
                let base = endpoints
                    .acr
                    .clone()
                    .unwrap_or_else(|| format!("https://{registry}/"));
                let url = url::Url::parse(&base).map_err(|_| {
                    registry_failed(CloudError::Parse {
                        what: "the registry host",
                        reason: "not a valid URL authority",
                    })
                })?;
                azure::exchange(http, &url, &access_token)
                    .await
                    .map_err(registry_failed)
            }
            (Target::Gcp, Identity::Gcp { email, .. }) => {
                let Some(audience) = audiences.sts.as_deref() else {
                    return Err(exchange_failed(CloudError::Parse {
                        what: "the GCP audience",
                        reason: "no STS audience",
                    }));
                };
                let sts = endpoints.gcp_sts.as_deref().unwrap_or(gcp::STS_URL);
                let iam = endpoints
                    .gcp_iam
                    .as_deref()
                    .unwrap_or(gcp::IAM_CREDENTIALS_URL);
                // The access token is the registry password (`oauth2accesstoken`).
                gcp::exchange_as(http, sts, iam, audience, subject, email.as_deref())
                    .await
                    .map_err(exchange_failed)
            }
            _ => Err(CloudError::Parse {
                what: "the service account identity",
                reason: "it is not for the registry's provider",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{Fake, Route};
    use super::*;
    use crate::registry::Credential;
    use base64::Engine as _;
    use std::time::{Duration, SystemTime};

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn jwt(claims: &str) -> String {
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.{}", e(r#"{"alg":"RS256"}"#), e(claims), e("sig"))
    }

    /// A service account token as the TokenRequest would give it; long enough to be redacted.
    const SUBJECT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXBwczpwdWxsZXIifQ.c2lnbmF0dXJlLXNlY3JldA";

    fn http() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    const ECR: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

    #[test]
    fn aws_needs_a_role_arn_annotation() {
        let target = Target::Ecr {
            region: "eu-west-1".into(),
        };
        let ok = annotations(&[(
            aws::ROLE_ARN_ANNOTATION,
            "arn:aws:iam::123456789012:role/puller",
        )]);
        assert_eq!(
            Identity::parse(&target, &ok).unwrap(),
            Identity::Aws {
                role_arn: "arn:aws:iam::123456789012:role/puller".into()
            }
        );
        let gov = annotations(&[(
            aws::ROLE_ARN_ANNOTATION,
            "arn:aws-us-gov:iam::1:role/path/puller",
        )]);
        assert!(Identity::parse(&Target::EcrPublic, &gov).is_ok());
        for value in ["", "arn:aws:iam::123:user/bob", "arn:aws:s3:::bucket"] {
            let a = if value.is_empty() {
                BTreeMap::new()
            } else {
                annotations(&[(aws::ROLE_ARN_ANNOTATION, value)])
            };
            let err = Identity::parse(&target, &a).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    r"invalid eks.amazonaws.com/role-arn annotation: '{value}'. must match ^arn:aws[\w-]*:iam::[0-9]{{1,30}}:role/.{{1,200}}$"
                )
            );
        }
    }

    #[test]
    fn azure_needs_tenant_and_client_annotations() {
        let target = Target::Acr {
            registry: "r.azurecr.io".into(),
        };
        let both = annotations(&[
            (
                azure::TENANT_ID_ANNOTATION,
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
            ),
            (azure::CLIENT_ID_ANNOTATION, "client"),
        ]);
        assert_eq!(
            Identity::parse(&target, &both).unwrap().describe(),
            "72f988bf-86f1-41af-91ab-2d7cd011db47/client"
        );
        let err = Identity::parse(
            &target,
            &annotations(&[(azure::CLIENT_ID_ANNOTATION, "client")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "azure tenant ID is not set in the service account annotation azure.workload.identity/tenant-id"
        );
        let err = Identity::parse(&target, &annotations(&[(azure::TENANT_ID_ANNOTATION, "t")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "azure client ID is not set in the service account annotation azure.workload.identity/client-id"
        );
        let err = Identity::parse(
            &target,
            &annotations(&[
                (azure::TENANT_ID_ANNOTATION, "../common"),
                (azure::CLIENT_ID_ANNOTATION, "c"),
            ]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid azure.workload.identity/tenant-id annotation: '../common'"),
            "{err}"
        );
    }

    #[test]
    fn gcp_annotations_are_optional_but_checked() {
        assert_eq!(
            Identity::parse(&Target::Gcp, &BTreeMap::new()).unwrap(),
            Identity::Gcp {
                email: None,
                provider_audience: None
            }
        );
        let both = annotations(&[
            (
                gcp::SERVICE_ACCOUNT_ANNOTATION,
                "puller@my-project.iam.gserviceaccount.com",
            ),
            (
                gcp::WORKLOAD_IDENTITY_PROVIDER_ANNOTATION,
                "projects/123/locations/global/workloadIdentityPools/pool/providers/k8s",
            ),
        ]);
        assert_eq!(
            Identity::parse(&Target::Gcp, &both).unwrap(),
            Identity::Gcp {
                email: Some("puller@my-project.iam.gserviceaccount.com".into()),
                provider_audience: Some(
                    "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/k8s"
                        .into()
                ),
            }
        );
        let err = Identity::parse(
            &Target::Gcp,
            &annotations(&[(gcp::SERVICE_ACCOUNT_ANNOTATION, "puller@gmail.com")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r"invalid iam.gke.io/gcp-service-account annotation: 'puller@gmail.com'. must match ^[a-zA-Z0-9-]{1,100}@[a-zA-Z0-9-]{1,100}\.iam\.gserviceaccount\.com$"
        );
        let err = Identity::parse(
            &Target::Gcp,
            &annotations(&[(
                gcp::WORKLOAD_IDENTITY_PROVIDER_ANNOTATION,
                "projects/p/locations/global/workloadIdentityPools/pool/providers/k8s",
            )]),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "invalid gcp.auth.fluxcd.io/workload-identity-provider annotation: 'projects/p/"
            ),
            "{err}"
        );
    }

    fn request<'a>(
        target: &'a Target,
        registry: &'a str,
        annotations: &'a BTreeMap<String, String>,
        identity: &'a Identity,
        endpoints: &'a Endpoints,
    ) -> Request<'a> {
        Request {
            target,
            registry,
            account: Account {
                namespace: "apps",
                name: "puller",
                annotations,
            },
            identity,
            endpoints,
        }
    }

    const STS_OK: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:apps:puller</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>FwoGZXIvYXdzEXAMPLE&amp;session</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>
      <Expiration>2033-05-18T03:33:20Z</Expiration>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;

    /// AWS STS against a local fake: the query-API form (action, version, role, Flux's session
    /// name, the token), the XML answer, and refusals that name STS's code without the token.
    #[tokio::test]
    async fn aws_sts_assume_role_with_web_identity() {
        let fake = Fake::start(200, "text/xml", STS_OK.into()).await;
        let creds = aws::assume_role_with_web_identity(
            &http(),
            &fake.url,
            "arn:aws:iam::123456789012:role/puller",
            &aws::session_name("apps", "puller", "eu-west-1"),
            SUBJECT,
        )
        .await
        .unwrap();
        assert_eq!(creds.access_key_id, "ASIAEXAMPLE");
        assert_eq!(creds.session_token, "FwoGZXIvYXdzEXAMPLE&session");
        assert_eq!(
            creds.secret_access_key,
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        );
        assert_eq!(
            creds.expires_at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000)
        );
        let debug = format!("{creds:?}");
        assert!(
            !debug.contains("wJalr") && !debug.contains("Fwo"),
            "{debug}"
        );
        let req = &fake.received()[0];
        assert_eq!(req.method, "POST");
        assert_eq!(
            req.header("content-type"),
            "application/x-www-form-urlencoded"
        );
        assert!(req.header("authorization").is_empty(), "unsigned");
        assert_eq!(
            req.form(),
            [
                ("Action".into(), "AssumeRoleWithWebIdentity".into()),
                ("Version".into(), "2011-06-15".into()),
                (
                    "RoleArn".into(),
                    "arn:aws:iam::123456789012:role/puller".into()
                ),
                (
                    "RoleSessionName".into(),
                    "puller.apps.eu-west-1.fluxcd.io".into()
                ),
                ("WebIdentityToken".into(), SUBJECT.into()),
            ]
        );

        let denied = format!(
            r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Incorrect token audience in {SUBJECT}</Message></Error><RequestId>1</RequestId></ErrorResponse>"#
        );
        let fake = Fake::start(400, "text/xml", denied).await;
        let err = aws::assume_role_with_web_identity(&http(), &fake.url, "r", "s", SUBJECT)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected status from AWS STS AssumeRoleWithWebIdentity: 400: InvalidIdentityToken: Incorrect token audience in <redacted>"
        );

        let fake = Fake::start(500, "text/plain", format!("oops {SUBJECT}")).await;
        let err = aws::assume_role_with_web_identity(&http(), &fake.url, "r", "s", SUBJECT)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected status from AWS STS AssumeRoleWithWebIdentity: 500"
        );
        for (body, reason) in [
            ("<x/>", "credentials are nil"),
            (
                "<Credentials><AccessKeyId>A</AccessKeyId></Credentials>",
                "no Expiration",
            ),
            (
                "<Credentials><Expiration>soon</Expiration></Credentials>",
                "Expiration is not a timestamp",
            ),
        ] {
            let err = aws::parse_assume_role_response(body.as_bytes()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("failed to parse the AssumeRoleWithWebIdentity response: {reason}")
            );
        }
    }

    #[test]
    fn aws_sts_endpoints_follow_the_registry_partition() {
        assert_eq!(
            aws::sts_url(ECR, "eu-west-1"),
            "https://sts.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            aws::sts_url("1.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1"),
            "https://sts.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            aws::sts_url("public.ecr.aws", aws::ECR_PUBLIC_REGION),
            "https://sts.us-east-1.amazonaws.com"
        );
    }

    /// The whole AWS path: STS on one fake, then ECR through the SDK, signed with the session
    /// credentials STS returned, on another.
    #[cfg(feature = "aws")]
    #[tokio::test]
    async fn aws_exchange_then_ecr_with_the_session_credentials() {
        let sts = Fake::start(200, "text/xml", STS_OK.into()).await;
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:ecr-password");
        let ecr = Fake::start(
            200,
            "application/x-amz-json-1.1",
            format!(
                r#"{{"authorizationData":[{{"authorizationToken":"{token}","expiresAt":2000000000}}]}}"#
            ),
        )
        .await;
        let target = Target::Ecr {
            region: "eu-west-1".into(),
        };
        let a = annotations(&[(aws::ROLE_ARN_ANNOTATION, "arn:aws:iam::1:role/r")]);
        let identity = Identity::parse(&target, &a).unwrap();
        let endpoints = Endpoints {
            aws_sts: Some(sts.url.clone()),
            aws_ecr: Some(ecr.url.clone()),
            ..Default::default()
        };
        let req = request(&target, ECR, &a, &identity, &endpoints);
        let audiences = req.audiences().await.unwrap();
        assert_eq!(audiences.token, ["sts.amazonaws.com"]);
        let got = req.exchange(&audiences, SUBJECT, &http()).await.unwrap();
        assert_eq!(
            got.credential,
            Credential::Basic {
                username: "AWS".into(),
                password: "ecr-password".into()
            }
        );
        let call = &ecr.received()[0];
        let auth = call.header("authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/"),
            "{auth}"
        );
        assert_eq!(
            call.header("x-amz-security-token"),
            "FwoGZXIvYXdzEXAMPLE&session"
        );

        // A refused exchange names the service account; a refused ECR call is a registry step.
        let refused = Fake::start(
            403,
            "text/xml",
            "<ErrorResponse><Error><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>".into(),
        )
        .await;
        let endpoints = Endpoints {
            aws_sts: Some(refused.url.clone()),
            aws_ecr: Some(ecr.url.clone()),
            ..Default::default()
        };
        let req = request(&target, ECR, &a, &identity, &endpoints);
        let err = req
            .exchange(&audiences, SUBJECT, &http())
            .await
            .unwrap_err();
        assert_eq!(
            crate::core::message::render(&err),
            "failed to create provider access token for service account 'apps/puller': unexpected status from AWS STS AssumeRoleWithWebIdentity: 403: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity"
        );
    }

    /// Without the `aws` feature the STS step still runs, and the ECR step names the feature.
    #[cfg(not(feature = "aws"))]
    #[tokio::test]
    async fn aws_ecr_needs_the_feature() {
        let sts = Fake::start(200, "text/xml", STS_OK.into()).await;
        let target = Target::EcrPublic;
        let a = annotations(&[(aws::ROLE_ARN_ANNOTATION, "arn:aws:iam::1:role/r")]);
        let identity = Identity::parse(&target, &a).unwrap();
        let endpoints = Endpoints {
            aws_sts: Some(sts.url.clone()),
            ..Default::default()
        };
        let req = request(&target, "public.ecr.aws", &a, &identity, &endpoints);
        let audiences = req.audiences().await.unwrap();
        let err = req
            .exchange(&audiences, SUBJECT, &http())
            .await
            .unwrap_err();
        assert!(
            crate::core::message::render(&err).starts_with(
                "failed to create artifact registry credentials: cloud login for aws is not compiled"
            ),
            "{err}"
        );
        assert_eq!(
            sts.received()[0].field("RoleSessionName"),
            "puller.apps.us-east-1.fluxcd.io"
        );
    }

    /// Azure against one fake playing Entra ID and the registry: the client-assertion request
    /// (tenant path, client ID, grant, assertion type, the token as assertion, the registry
    /// cloud's scope), then the ACR exchange with Entra ID's token.
    #[tokio::test]
    async fn azure_client_assertion_then_acr_exchange() {
        let refresh = jwt(r#"{"exp":1900000000}"#);
        let fake = Fake::routes(vec![
            Route::new(
                "/tenant-1/oauth2/v2.0/token",
                200,
                "application/json",
                r#"{"token_type":"Bearer","expires_in":3599,"access_token":"entra-access"}"#.into(),
            ),
            Route::new(
                "/oauth2/exchange",
                200,
                "application/json",
                format!(r#"{{"refresh_token":"{refresh}"}}"#),
            ),
        ])
        .await;
        let registry = "myregistry.azurecr.io";
        let target = Target::Acr {
            registry: registry.into(),
        };
        let a = annotations(&[
            (azure::TENANT_ID_ANNOTATION, "tenant-1"),
            (azure::CLIENT_ID_ANNOTATION, "client-1"),
        ]);
        let identity = Identity::parse(&target, &a).unwrap();
        let endpoints = Endpoints {
            azure_authority: Some(format!("{}/", fake.url)),
            acr: Some(fake.url.clone()),
            ..Default::default()
        };
        let req = request(&target, registry, &a, &identity, &endpoints);
        let audiences = req.audiences().await.unwrap();
        assert_eq!(audiences.token, ["api://AzureADTokenExchange"]);
        let got = req.exchange(&audiences, SUBJECT, &http()).await.unwrap();
        assert_eq!(
            got.credential,
            Credential::Basic {
                username: azure::USERNAME.into(),
                password: refresh
            }
        );
        let received = fake.received();
        let entra = &received[0];
        assert_eq!(entra.method, "POST");
        assert_eq!(entra.uri.path(), "/tenant-1/oauth2/v2.0/token");
        assert_eq!(
            entra.form(),
            [
                ("client_id".into(), "client-1".into()),
                ("grant_type".into(), "client_credentials".into()),
                (
                    "client_assertion_type".into(),
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()
                ),
                ("client_assertion".into(), SUBJECT.into()),
                (
                    "scope".into(),
                    "https://management.azure.com/.default".into()
                ),
            ]
        );
        let acr = &received[1];
        assert_eq!(acr.uri.path(), "/oauth2/exchange");
        assert_eq!(acr.field("access_token"), "entra-access");
        assert_eq!(acr.field("grant_type"), "access_token");

        // Entra ID refuses: its code and description, the assertion redacted.
        let refused = Fake::start(
            401,
            "application/json",
            format!(
                r#"{{"error":"invalid_client","error_description":"AADSTS700213: No matching federated identity record found for presented assertion subject. Assertion: {SUBJECT}","error_codes":[700213]}}"#
            ),
        )
        .await;
        let endpoints = Endpoints {
            azure_authority: Some(refused.url.clone()),
            acr: Some(fake.url.clone()),
            ..Default::default()
        };
        let req = request(&target, registry, &a, &identity, &endpoints);
        let err = req
            .exchange(&audiences, SUBJECT, &http())
            .await
            .unwrap_err();
        let text = crate::core::message::render(&err);
        assert_eq!(
            text,
            "failed to create provider access token for service account 'apps/puller': unexpected status from Entra ID token request: 401: invalid_client: AADSTS700213: No matching federated identity record found for presented assertion subject. Assertion: <redacted>"
        );
        assert!(!text.contains("c2lnbmF0dXJl"), "{text}");
    }

    #[test]
    fn azure_authorities_follow_the_registry_cloud() {
        // Only when the environment does not name one (the test environment does not).
        if std::env::var_os(azure::AUTHORITY_HOST_ENV).is_some() {
            return;
        }
        assert_eq!(
            azure::authority_host("a.azurecr.io"),
            "https://login.microsoftonline.com"
        );
        assert_eq!(
            azure::authority_host("a.azurecr.cn"),
            "https://login.chinacloudapi.cn"
        );
        assert_eq!(
            azure::authority_host("a.azurecr.us"),
            "https://login.microsoftonline.us"
        );
        assert_eq!(
            azure::token_url("https://login.microsoftonline.com/", "t"),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
    }

    const WIP: &str = "projects/123/locations/global/workloadIdentityPools/pool/providers/k8s";

    /// GCP with a workload identity provider and a Google service account: STS (token-exchange
    /// grant, JWT subject, the provider audience, cloud-platform only), then
    /// `generateAccessToken` with the federated token, Flux's scopes and one hour.
    #[tokio::test]
    async fn gcp_sts_then_impersonation() {
        let email = "puller@my-project.iam.gserviceaccount.com";
        let iam_path = format!("/v1/projects/-/serviceAccounts/{email}:generateAccessToken");
        let fake = Fake::routes(vec![
            Route::new(
                "/v1/token",
                200,
                "application/json",
                r#"{"access_token":"federated","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}"#.into(),
            ),
            Route::new(
                &iam_path,
                200,
                "application/json",
                r#"{"accessToken":"ya29.impersonated","expireTime":"2033-05-18T03:33:20Z"}"#.into(),
            ),
        ])
        .await;
        let a = annotations(&[
            (gcp::SERVICE_ACCOUNT_ANNOTATION, email),
            (gcp::WORKLOAD_IDENTITY_PROVIDER_ANNOTATION, WIP),
        ]);
        let identity = Identity::parse(&Target::Gcp, &a).unwrap();
        let endpoints = Endpoints {
            gcp_sts: Some(fake.url.clone()),
            gcp_iam: Some(fake.url.clone()),
            ..Default::default()
        };
        let req = request(&Target::Gcp, "gcr.io", &a, &identity, &endpoints);
        let audiences = req.audiences().await.unwrap();
        let audience = format!("//iam.googleapis.com/{WIP}");
        assert_eq!(audiences.token, std::slice::from_ref(&audience));
        let got = req.exchange(&audiences, SUBJECT, &http()).await.unwrap();
        assert_eq!(got.credential, gcp::credential("ya29.impersonated"));
        assert_eq!(
            got.expires_at,
            SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000)
        );
        let received = fake.received();
        let sts = &received[0];
        assert_eq!(sts.uri.path(), "/v1/token");
        assert_eq!(
            sts.form(),
            [
                ("audience".into(), audience),
                (
                    "grant_type".into(),
                    "urn:ietf:params:oauth:grant-type:token-exchange".into()
                ),
                (
                    "requested_token_type".into(),
                    "urn:ietf:params:oauth:token-type:access_token".into()
                ),
                (
                    "subject_token_type".into(),
                    "urn:ietf:params:oauth:token-type:jwt".into()
                ),
                ("subject_token".into(), SUBJECT.into()),
                (
                    "scope".into(),
                    "https://www.googleapis.com/auth/cloud-platform".into()
                ),
            ]
        );
        let iam = &received[1];
        assert_eq!(iam.method, "POST");
        assert_eq!(iam.uri.path(), iam_path);
        assert_eq!(iam.header("authorization"), "Bearer federated");
        let body: serde_json::Value = serde_json::from_slice(&iam.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"lifetime": "3600s", "scope": gcp::SCOPES})
        );
    }

    /// GCP on GKE without annotations: the audiences come from the metadata server, and the
    /// federated token is used directly with Flux's scopes; refusals are reported redacted.
    #[tokio::test]
    async fn gcp_on_gke_reads_the_cluster_and_uses_the_federated_token() {
        let fake = Fake::routes(vec![
            Route::new(
                "/computeMetadata/v1/project/project-id",
                200,
                "application/text",
                "my-project".into(),
            ),
            Route::new(
                "/computeMetadata/v1/instance/attributes/cluster-location",
                200,
                "application/text",
                "europe-west1".into(),
            ),
            Route::new(
                "/computeMetadata/v1/instance/attributes/cluster-name",
                200,
                "application/text",
                "prod".into(),
            ),
            Route::new(
                "/v1/token",
                200,
                "application/json",
                r#"{"access_token":"ya29.federated","token_type":"Bearer","expires_in":3599}"#
                    .into(),
            ),
        ])
        .await;
        let a = BTreeMap::new();
        let identity = Identity::parse(&Target::Gcp, &a).unwrap();
        let endpoints = Endpoints {
            gcp_sts: Some(fake.url.clone()),
            gcp_iam: Some(fake.url.clone()),
            gcp_metadata: Some(fake.url.clone()),
            ..Default::default()
        };
        let req = request(
            &Target::Gcp,
            "europe-west1-docker.pkg.dev",
            &a,
            &identity,
            &endpoints,
        );
        let audiences = req.audiences().await.unwrap();
        assert_eq!(audiences.token, ["my-project.svc.id.goog"]);
        assert_eq!(
            audiences.sts.as_deref(),
            Some(
                "identitynamespace:my-project.svc.id.goog:https://container.googleapis.com/v1/projects/my-project/locations/europe-west1/clusters/prod"
            )
        );
        assert!(
            fake.received()
                .iter()
                .all(|r| r.header("metadata-flavor") == "Google")
        );
        // Read once per metadata server.
        let before = fake.received().len();
        assert_eq!(req.audiences().await.unwrap(), audiences);
        assert_eq!(fake.received().len(), before);

        let got = req.exchange(&audiences, SUBJECT, &http()).await.unwrap();
        assert_eq!(got.credential, gcp::credential("ya29.federated"));
        let sts = fake.received().pop().unwrap();
        assert_eq!(
            sts.field("scope"),
            "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email"
        );
        assert_eq!(sts.field("audience"), audiences.sts.clone().unwrap());

        let refused = Fake::start(
            400,
            "application/json",
            format!(
                r#"{{"error":"invalid_grant","error_description":"The audience in ID Token [{SUBJECT}] does not match the expected audience."}}"#
            ),
        )
        .await;
        let endpoints = Endpoints {
            gcp_sts: Some(refused.url.clone()),
            ..endpoints
        };
        let req = request(&Target::Gcp, "gcr.io", &a, &identity, &endpoints);
        let err = req
            .exchange(&audiences, SUBJECT, &http())
            .await
            .unwrap_err();
        let text = crate::core::message::render(&err);
        assert!(
            text.starts_with(
                "failed to create provider access token for service account 'apps/puller': unexpected status from GCP STS: 400: invalid_grant: The audience in ID Token ["
            ),
            "{text}"
        );
        assert!(!text.contains(SUBJECT), "{text}");
    }

    #[tokio::test]
    async fn gcp_metadata_failures_name_the_missing_value() {
        let fake = Fake::routes(vec![Route::new(
            "/computeMetadata/v1/project/project-id",
            200,
            "application/text",
            "p".into(),
        )])
        .await;
        let err = gcp::gke_cluster(&http(), &fake.url).await.unwrap_err();
        assert_eq!(
            crate::core::message::render(&err),
            "failed to get GKE cluster location from the metadata service: unexpected status from the GCP metadata server: 404"
        );
        let fake = Fake::start(200, "application/text", " ".into()).await;
        let err = gcp::gke_cluster(&http(), &fake.url).await.unwrap_err();
        assert_eq!(
            crate::core::message::render(&err),
            "failed to get GKE cluster project ID from the metadata service: failed to parse the metadata response: empty value"
        );
    }

    #[test]
    fn impersonation_answers_are_parsed_without_echoing_them() {
        for (body, reason) in [
            (&b"s3cr3t"[..], "not JSON"),
            (
                br#"{"expireTime":"2033-05-18T03:33:20Z"}"#,
                "no accessToken",
            ),
            (
                br#"{"accessToken":"s3cr3t","expireTime":"tomorrow"}"#,
                "no valid expireTime",
            ),
        ] {
            let err = gcp::parse_generate_access_token_response(body).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("failed to parse the generateAccessToken response: {reason}")
            );
        }
    }

    #[test]
    fn error_details_are_redacted_and_bounded() {
        let long = "denied ".repeat(60);
        let body = format!(
            r#"{{"error":{{"code":403,"status":"PERMISSION_DENIED","message":"{long}"}}}}"#
        );
        let detail = super::super::http::error_detail(body.as_bytes(), &[]).unwrap();
        assert!(detail.starts_with("PERMISSION_DENIED: "), "{detail}");
        assert!(detail.ends_with("...") && detail.len() <= 303, "{detail}");
        assert_eq!(
            super::super::http::error_detail(b"plain words s3cr3t-value", &["s3cr3t-value"]),
            None,
            "no recognised error shape"
        );
        assert_eq!(
            super::super::http::error_detail(
                br#"{"error":"invalid_request","error_description":"bad s3cr3t-value"}"#,
                &["s3cr3t-value"]
            )
            .as_deref(),
            Some("invalid_request: bad <redacted>")
        );
    }
}
