//! [`SecretSource`] over the Kubernetes API: Secrets and ServiceAccounts read directly (no
//! cache), as source-controller does by default, so a rotated credential is used at once, and
//! service account tokens issued with the TokenRequest API (`serviceaccounts/token` create).

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::core::ports::{LookupError, SecretSource};

/// Reads Secrets and ServiceAccounts with a client.
#[derive(Clone)]
pub struct KubeSecrets {
    client: Client,
}

impl KubeSecrets {
    /// An adapter over `client`.
    pub fn new(client: Client) -> KubeSecrets {
        KubeSecrets { client }
    }
}

fn lookup_error(kind: &'static str, namespace: &str, name: &str, e: kube::Error) -> LookupError {
    LookupError::Read {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
        source: Box::new(e),
    }
}

impl SecretSource for KubeSecrets {
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, LookupError> {
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| lookup_error("Secret", namespace, name, e))
    }

    async fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceAccount>, LookupError> {
        Api::<ServiceAccount>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| lookup_error("ServiceAccount", namespace, name, e))
    }

    async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
    ) -> Result<String, LookupError> {
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| LookupError::CreateToken {
            namespace: namespace.to_string(),
            name: name.to_string(),
            source,
        };
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audiences.to_vec(),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let issued = Api::<ServiceAccount>::namespaced(self.client.clone(), namespace)
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(|e| match e {
                // The API server's status alone (`serviceaccounts "x" not found: NotFound`):
                // kube's own text repeats it with its debug form.
                kube::Error::Api(status) => failed(status),
                other => failed(Box::new(other)),
            })?;
        issued
            .status
            .map(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| failed("the API server returned no token".into()))
    }
}
