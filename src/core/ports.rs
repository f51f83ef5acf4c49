//! The ports through which the core reads the outside world. Each has a real adapter (the
//! Kubernetes API in the controller, a directory of manifests in standalone mode) and can be
//! faked in tests.

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};

/// Why an object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The backing store answered with an error (Flux's wording).
    #[error("failed to get {kind} '{namespace}/{name}'")]
    Read {
        /// `secret` or `serviceaccount`.
        kind: &'static str,
        /// Namespace of the object.
        namespace: String,
        /// Name of the object.
        name: String,
        /// The store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A token could not be issued for the service account (Flux's wording).
    #[error("failed to create kubernetes token for service account '{namespace}/{name}'")]
    CreateToken {
        /// Namespace of the service account.
        namespace: String,
        /// Name of the service account.
        name: String,
        /// Why (the API server's answer).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Reads the Secrets and ServiceAccounts an object names, always from its own namespace, and
/// issues tokens for those ServiceAccounts.
pub trait SecretSource: Send + Sync {
    /// The Secret `namespace/name`, or `None` when it does not exist.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Secret>, LookupError>> + Send;

    /// How the store names Secrets in its "not found" text: the API server says
    /// `secrets "<name>" not found`, controller-runtime's cache (Flux with
    /// `CacheSecretsAndConfigMaps`) `Secret "<name>" not found`.
    fn secret_resource(&self) -> &'static str {
        "secrets"
    }

    /// The ServiceAccount `namespace/name`, or `None` when it does not exist.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<ServiceAccount>, LookupError>> + Send;

    /// A token for the ServiceAccount `namespace/name` with `audiences` (the Kubernetes
    /// TokenRequest API, default lifetime), for object-level workload identity. The token is a
    /// secret: it must never be logged or put in an error.
    ///
    /// # Errors
    /// [`LookupError::CreateToken`] when no token can be issued (the account does not exist,
    /// the request is refused, or the store cannot issue tokens).
    fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
    ) -> impl Future<Output = Result<String, LookupError>> + Send;
}

/// What signature verification concluded.
#[derive(Debug)]
pub enum Verification {
    /// A trusted signature was found: `SourceVerified=True`.
    Verified,
    /// Verification did not apply (notation `skip`/audit outcomes): no condition change.
    Ignored,
    /// No trusted signature: `SourceVerified=False`, and nothing is pulled.
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

/// What a verifier is asked to check.
#[derive(Debug)]
pub struct VerifyRequest<'a> {
    /// The object's namespace (for its Secrets).
    pub namespace: &'a str,
    /// `spec.verify`.
    pub spec: &'a crate::api::v1::OciRepositoryVerification,
    /// The repository.
    pub repository: &'a crate::registry::Repository,
    /// The resolved digest: verification is always by digest.
    pub digest: &'a crate::registry::Digest,
    /// The registry client of the object (its TLS, proxy and deadline).
    pub client: &'a crate::registry::Client,
    /// The object's registry credential.
    pub credential: &'a crate::registry::Credential,
}

/// Verifies artifact signatures (cosign, notation) before anything is pulled.
pub trait Verifier: Send + Sync {
    /// Checks the signatures of `request.digest`.
    fn verify(&self, request: VerifyRequest<'_>) -> impl Future<Output = Verification> + Send;
}

/// The verifier of a build without signature verification: it fails closed, so an object that
/// asks for verification never serves unverified content.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoVerifier;

impl Verifier for NoVerifier {
    async fn verify(&self, _request: VerifyRequest<'_>) -> Verification {
        Verification::Failed("signature verification is not available in this build".into())
    }
}

/// Receives the status patches Flux makes mid-reconcile (new generation, drift), so users see
/// `Reconciling` while work is under way. Best effort.
pub trait ProgressSink: Send + Sync {
    /// Publishes an intermediate status.
    fn progress(
        &self,
        status: &crate::api::v1::OciRepositoryStatus,
    ) -> impl Future<Output = ()> + Send;
}

/// A sink that drops intermediate statuses (standalone mode, tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    async fn progress(&self, _status: &crate::api::v1::OciRepositoryStatus) {}
}

/// Test doubles of the ports.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::{LookupError, SecretSource};

    type Entries = Vec<(String, Vec<u8>)>;

    /// Secrets by (namespace, name), editable between reads; no service accounts, no tokens.
    #[derive(Default)]
    pub(crate) struct MapSecrets(Mutex<BTreeMap<(String, String), Entries>>);

    impl MapSecrets {
        /// Secrets holding only `namespace/name` with `data`.
        pub(crate) fn one(namespace: &str, name: &str, data: &[(&str, &[u8])]) -> MapSecrets {
            let secrets = MapSecrets::default();
            secrets.put(namespace, name, data);
            secrets
        }

        /// Adds or replaces `namespace/name` with `data`.
        pub(crate) fn put(&self, namespace: &str, name: &str, data: &[(&str, &[u8])]) {
            self.0.lock().unwrap().insert(
                (namespace.into(), name.into()),
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_vec()))
                    .collect(),
            );
        }
    }

    impl SecretSource for MapSecrets {
        async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, LookupError> {
            let all = self.0.lock().unwrap();
            Ok(all
                .get(&(namespace.into(), name.into()))
                .map(|data| Secret {
                    metadata: ObjectMeta {
                        name: Some(name.into()),
                        namespace: Some(namespace.into()),
                        ..Default::default()
                    },
                    data: Some(
                        data.iter()
                            .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                            .collect(),
                    ),
                    ..Default::default()
                }))
        }

        async fn service_account(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<ServiceAccount>, LookupError> {
            Ok(None)
        }

        async fn service_account_token(
            &self,
            namespace: &str,
            name: &str,
            _: &[String],
        ) -> Result<String, LookupError> {
            Err(LookupError::CreateToken {
                namespace: namespace.into(),
                name: name.into(),
                source: "no tokens here".into(),
            })
        }
    }
}
