//! [`CloudError`]: why a cloud login failed, worded as Flux words it where Flux has a text.
//! Messages never contain a credential.

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
