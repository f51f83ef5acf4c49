//! The ports through which the core reads the outside world. Each has a real adapter (the
//! Kubernetes API in the controller, a directory of manifests in standalone mode) and can be
//! faked in tests.

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};

/// Why an object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The backing store answered with an error.
    #[error("failed to read {kind} '{namespace}/{name}'")]
    Read {
        /// `Secret` or `ServiceAccount`.
        kind: &'static str,
        /// Namespace of the object.
        namespace: String,
        /// Name of the object.
        name: String,
        /// The store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Reads the Secrets and ServiceAccounts an object names, always from its own namespace.
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

    /// The ServiceAccount `namespace/name`, or `None` when it does not exist.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<ServiceAccount>, LookupError>> + Send;
}
