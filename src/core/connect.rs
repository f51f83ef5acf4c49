//! How the source step reaches the registry: the object's credential and its transport.
//!
//! The credential is source-controller's: the docker-config Secrets the object names
//! (`spec.secretRef`, then its service account's pull secrets) through the keychain; without
//! any, cloud login for `spec.provider` as the object's service account (needs the
//! `ObjectLevelWorkloadIdentity` gate), else as the controller's `--default-service-account` of
//! the object's namespace (RFC-0010 lockdown), else as the controller itself. The transport is
//! the object's TLS material, proxy and `spec.insecure`: one pooled client per configuration,
//! bound to the reconcile deadline.

use std::time::Instant;

use super::Settings;
use super::access::{self, Access, AccessError};
use super::error::Error;
use super::events::Event;
use super::ports::SecretSource;
use super::resolution_cache::Fingerprint;
use crate::api::conditions::reasons;
use crate::api::v1::{OciRepositorySpec, Provider};
use crate::cloud;
use crate::registry::{Client, ClientPool, Credential, Keychain, Repository, TransportConfig};

/// What the source step reads the registry with.
pub struct Connection {
    /// The object's client (its TLS, proxy and deadline).
    pub client: Client,
    /// The object's credential.
    pub credential: Credential,
    /// The credential and transport hashed: what the shared answers of
    /// [`super::resolution_cache`] are keyed by.
    pub fingerprint: Fingerprint,
}

/// Reads the Secrets `spec` names in `namespace`, then makes the credential and the client for
/// `repo`; cloud login and every registry call give up at `deadline`.
///
/// # Errors
/// A named Secret or service account cannot be read ([`Error::Credentials`], [`Error::Proxy`],
/// [`Error::Transport`] for the TLS Secret), a docker config is malformed
/// ([`Error::Keychain`]), cloud login is refused or fails ([`Error::FeatureGateDisabled`],
/// [`Error::CloudLogin`]), or the HTTP client cannot be built ([`Error::Transport`]).
pub async fn connect<S: SecretSource>(
    settings: &Settings,
    secrets: &S,
    registries: &ClientPool,
    namespace: &str,
    spec: &OciRepositorySpec,
    repo: &Repository,
    deadline: Instant,
) -> Result<Connection, Error> {
    let url = &spec.url;
    let access = access::gather(secrets, namespace, spec)
        .await
        .map_err(|e| access_error(e, url))?;
    let mut keychain = Keychain::new();
    for secret in &access.credentials {
        keychain
            .add_secret(&secret.type_, &secret.data)
            .map_err(|source| Error::Keychain { source })?;
    }
    // Cloud login only without static credentials (Flux: the keychain is anonymous).
    let provider = spec.provider.unwrap_or_default();
    let credential = if access.credentials.is_empty() && provider != Provider::Generic {
        cloud_login(
            settings,
            secrets,
            namespace,
            spec,
            &access,
            repo.registry(),
            deadline,
        )
        .await
        .map_err(|e| match e {
            CloudLoginError::Gate => Error::FeatureGateDisabled,
            CloudLoginError::Cloud(source) => Error::CloudLogin {
                provider: cloud::provider_name(provider).to_string(),
                source: Box::new(source),
            },
        })?
    } else {
        keychain.resolve(repo)
    };
    let config = TransportConfig {
        tls: access.tls.unwrap_or_default(),
        insecure: access.insecure,
        proxy: access.proxy,
        ..TransportConfig::default()
    };
    let client = registries
        .client(&config)
        .map_err(|e| Error::Transport {
            url: url.clone(),
            source: Box::new(e),
        })?
        .with_deadline(Some(deadline));
    let fingerprint = Fingerprint::of(&credential, &config);
    Ok(Connection {
        client,
        credential,
        fingerprint,
    })
}

/// The trace event Flux records when reading `spec.secretRef` failed, whatever the failure:
/// `auth secret '<name>' not found`.
pub fn failure_event(e: &Error) -> Option<Event> {
    let Error::Credentials { source } = e else {
        return None;
    };
    let name = source.auth_secret()?;
    Some(Event::trace(
        reasons::AUTHENTICATION_FAILED,
        format!("auth secret '{name}' not found"),
    ))
}

/// Which step the Secret at fault belongs to, in Flux's words: the proxy, the transport (TLS),
/// or the credential.
fn access_error(e: AccessError, url: &str) -> Error {
    if e.is_proxy() {
        Error::Proxy { source: e }
    } else if e.is_tls() {
        Error::Transport {
            url: url.to_string(),
            source: Box::new(e),
        }
    } else {
        Error::Credentials { source: e }
    }
}

/// Why [`cloud_login`] failed.
enum CloudLoginError {
    /// `spec.serviceAccountName` with the gate off: stalls.
    Gate,
    /// The login failed.
    Cloud(cloud::CloudError),
}

/// Cloud login for an object without static credentials, as fluxcd/pkg `auth` decides it: as
/// the object's `spec.serviceAccountName` (needs the gate), else as the controller's
/// `--default-service-account` of the object's namespace (RFC-0010 lockdown), else as the
/// controller itself.
async fn cloud_login<S: SecretSource>(
    settings: &Settings,
    secrets: &S,
    namespace: &str,
    spec: &OciRepositorySpec,
    access: &Access,
    registry: &str,
    deadline: Instant,
) -> Result<Credential, CloudLoginError> {
    let provider = spec.provider.unwrap_or_default();
    let named = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty());
    let (name, annotations) = match (named, &settings.default_service_account) {
        (Some(name), _) => {
            if !settings.object_level_workload_identity {
                return Err(CloudLoginError::Gate);
            }
            // `access::gather` has read it (and failed if it does not exist).
            let annotations = access
                .service_account
                .as_ref()
                .map(|sa| sa.annotations.clone())
                .unwrap_or_default();
            (name.to_string(), annotations)
        }
        (None, Some(default)) => {
            // Unreachable from the command line, which refuses the flag without the gate.
            if !settings.object_level_workload_identity {
                return Err(CloudLoginError::Cloud(
                    cloud::CloudError::ObjectLevelWorkloadIdentityNotEnabled,
                ));
            }
            let sa = secrets
                .service_account(namespace, default)
                .await
                .map_err(|e| {
                    CloudLoginError::Cloud(cloud::CloudError::GetServiceAccount {
                        namespace: namespace.to_string(),
                        name: default.clone(),
                        source: Box::new(e),
                    })
                })?
                .ok_or_else(|| {
                    CloudLoginError::Cloud(cloud::CloudError::DefaultServiceAccountNotFound {
                        namespace: namespace.to_string(),
                        name: default.clone(),
                    })
                })?;
            (default.clone(), sa.metadata.annotations.unwrap_or_default())
        }
        (None, None) => {
            return cloud::login(&settings.cloud_tokens, provider, registry, deadline)
                .await
                .map_err(CloudLoginError::Cloud);
        }
    };
    let name = name.as_str();
    let account = cloud::Account {
        namespace,
        name,
        annotations: &annotations,
    };
    let issue = |audiences: Vec<String>| async move {
        secrets
            .service_account_token(namespace, name, &audiences)
            .await
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
    };
    cloud::login_as(
        &settings.cloud_tokens,
        provider,
        registry,
        &account,
        issue,
        deadline,
    )
    .await
    .map_err(CloudLoginError::Cloud)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use k8s_openapi::api::core::v1::{Secret, ServiceAccount};

    use super::*;
    use crate::core::message;
    use crate::core::ports::LookupError;
    use crate::core::resolution_cache::ResolutionCache;
    use crate::storage::{ExtractLimits, Storage};

    /// Service accounts by name; tokens are refused (and counted).
    #[derive(Default)]
    struct Accounts {
        accounts: BTreeMap<String, ServiceAccount>,
        asked: std::sync::Mutex<Vec<(String, String, Vec<String>)>>,
    }

    impl SecretSource for Accounts {
        async fn secret(&self, _: &str, _: &str) -> Result<Option<Secret>, LookupError> {
            Ok(None)
        }

        async fn service_account(
            &self,
            _namespace: &str,
            name: &str,
        ) -> Result<Option<ServiceAccount>, LookupError> {
            Ok(self.accounts.get(name).cloned())
        }

        async fn service_account_token(
            &self,
            namespace: &str,
            name: &str,
            audiences: &[String],
        ) -> Result<String, LookupError> {
            self.asked.lock().unwrap().push((
                namespace.to_string(),
                name.to_string(),
                audiences.to_vec(),
            ));
            Err(LookupError::CreateToken {
                namespace: namespace.to_string(),
                name: name.to_string(),
                source: "refused".into(),
            })
        }
    }

    fn settings(dir: &Path, gate: bool, default: Option<&str>) -> Settings {
        Settings {
            storage: Storage::new(dir, "localhost:9090").unwrap(),
            limits: ExtractLimits::default(),
            object_level_workload_identity: gate,
            default_service_account: default.map(str::to_string),
            cloud_tokens: cloud::TokenCache::new(),
            default_platform: Default::default(),
            resolutions: ResolutionCache::disabled(),
            shared: crate::core::shared_artifacts::SharedArtifacts::disabled(),
        }
    }

    fn spec(json: serde_json::Value) -> OciRepositorySpec {
        serde_json::from_value(json).unwrap()
    }

    const ECR: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

    async fn login(
        settings: &Settings,
        secrets: &Accounts,
        spec: &OciRepositorySpec,
    ) -> Result<Credential, CloudLoginError> {
        let access = access::gather(secrets, "apps", spec)
            .await
            .unwrap_or_default();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        cloud_login(settings, secrets, "apps", spec, &access, ECR, deadline).await
    }

    /// Asserts that an object-level aws login stopped at the feature check (without the aws
    /// feature) or at reading the service account's annotations, whose message starts with
    /// `identity_error`.
    fn assert_identity_read_or_not_compiled(err: CloudLoginError, identity_error: &str) {
        let got = text(err);
        assert!(
            got.starts_with("cloud login for aws is not compiled")
                || got.starts_with(identity_error),
            "{got}"
        );
    }

    fn text(e: CloudLoginError) -> String {
        match e {
            CloudLoginError::Gate => "gate".into(),
            CloudLoginError::Cloud(e) => message::render(&e),
        }
    }

    #[tokio::test]
    async fn a_named_service_account_needs_the_gate() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Accounts::default();
        let spec = spec(serde_json::json!({
            "url": format!("oci://{ECR}/app"), "interval": "1m", "provider": "aws",
            "serviceAccountName": "puller"
        }));
        let err = login(&settings(dir.path(), false, None), &secrets, &spec)
            .await
            .unwrap_err();
        assert!(matches!(err, CloudLoginError::Gate));
        // The gate on: object-level login (which fails here without annotations or the aws
        // feature), never the controller's identity.
        let err = login(&settings(dir.path(), true, None), &secrets, &spec)
            .await
            .unwrap_err();
        assert_identity_read_or_not_compiled(
            err,
            "failed to get provider identity from service account 'apps/puller' annotations",
        );
    }

    /// RFC-0010 lockdown: without `serviceAccountName`, the default service account of the
    /// object's namespace is used, and its absence is Flux's lockdown error.
    #[tokio::test]
    async fn the_default_service_account_stands_in_when_none_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(serde_json::json!({
            "url": format!("oci://{ECR}/app"), "interval": "1m", "provider": "aws"
        }));
        let secrets = Accounts::default();
        let err = login(&settings(dir.path(), true, Some("tenant")), &secrets, &spec)
            .await
            .unwrap_err();
        assert_eq!(
            text(err),
            "failed to get service account 'apps/tenant': the specified default service account does not exist in the object namespace. your cluster is subject to multi-tenant workload identity lockdown, reach out to your cluster administrator for help"
        );
        // Present: used as the identity (its annotations are read).
        let mut secrets = Accounts::default();
        secrets.accounts.insert(
            "tenant".into(),
            serde_json::from_value(serde_json::json!({"metadata": {"name": "tenant"}})).unwrap(),
        );
        let err = login(&settings(dir.path(), true, Some("tenant")), &secrets, &spec)
            .await
            .unwrap_err();
        assert_identity_read_or_not_compiled(
            err,
            "failed to get provider identity from service account 'apps/tenant' annotations: invalid eks.amazonaws.com/role-arn annotation: ''",
        );
        // Annotated: a token for the default account with the provider's audience is asked for
        // (with the aws feature; without it the login stops at the feature check).
        secrets.accounts.insert(
            "tenant".into(),
            serde_json::from_value(serde_json::json!({"metadata": {
                "name": "tenant",
                "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/tenant"}
            }}))
            .unwrap(),
        );
        let err = login(&settings(dir.path(), true, Some("tenant")), &secrets, &spec)
            .await
            .unwrap_err();
        if cfg!(feature = "aws") {
            assert_eq!(
                text(err),
                "failed to create kubernetes token for service account 'apps/tenant': refused"
            );
            assert_eq!(
                secrets.asked.lock().unwrap().as_slice(),
                [(
                    "apps".to_string(),
                    "tenant".to_string(),
                    vec!["sts.amazonaws.com".to_string()]
                )]
            );
            secrets.asked.lock().unwrap().clear();
        } else {
            assert!(text(err).starts_with("cloud login for aws is not compiled"));
        }
        // The gate off (refused at start by the CLI): Flux's error, no lookup.
        let err = login(
            &settings(dir.path(), false, Some("tenant")),
            &secrets,
            &spec,
        )
        .await
        .unwrap_err();
        assert_eq!(
            text(err),
            "ObjectLevelWorkloadIdentity feature gate is not enabled"
        );
        assert!(secrets.asked.lock().unwrap().is_empty());
    }
}
