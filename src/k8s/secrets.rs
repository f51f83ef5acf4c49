//! [`SecretSource`] over the Kubernetes API: Secrets and ServiceAccounts read directly (no
//! cache), as source-controller does by default, so a rotated credential is used at once, and
//! service account tokens issued with the TokenRequest API (`serviceaccounts/token` create).
//!
//! With the `CacheSecretsAndConfigMaps` feature gate, Secrets are read from a watched copy
//! instead ([`KubeSecrets::cached`]): no API request per reconcile, at the price of holding the
//! watched Secrets in memory and needing `list`/`watch` on them. Until the first list has
//! arrived, reads go to the API server as without the gate.

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::PostParams;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use crate::core::message;
use crate::core::ports::{LookupError, SecretSource};

/// Reads Secrets and ServiceAccounts with a client.
#[derive(Clone)]
pub struct KubeSecrets {
    client: Client,
    cache: Option<Store<Secret>>,
}

impl KubeSecrets {
    /// An adapter over `client` that reads every Secret from the API server.
    pub fn new(client: Client) -> KubeSecrets {
        KubeSecrets {
            client,
            cache: None,
        }
    }

    /// An adapter that reads Secrets from a watched copy of those in `namespace` (all namespaces
    /// when `None`), kept up to date by a task spawned here for the life of the process.
    pub fn cached(client: Client, namespace: Option<&str>) -> KubeSecrets {
        let api: Api<Secret> = match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let (store, writer) = reflector::store();
        let updates = watcher(api, watcher::Config::default())
            .default_backoff()
            // Field-manager bookkeeping is never read; dropping it keeps the copy small.
            .modify(|secret: &mut Secret| secret.managed_fields_mut().clear())
            .reflect(writer);
        tokio::spawn(updates.for_each(|event| async move {
            if let Err(e) = event {
                tracing::warn!(error = %message::render(&e), "failed to watch Secrets");
            }
        }));
        KubeSecrets {
            client,
            cache: Some(store),
        }
    }

    /// The watched copy, once its first list has arrived.
    fn synced_cache(&self) -> Option<&Store<Secret>> {
        let store = self.cache.as_ref()?;
        matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))).then_some(store)
    }
}

fn lookup_error(kind: &'static str, namespace: &str, name: &str, e: kube::Error) -> LookupError {
    LookupError::Read {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
        source: api_cause(e),
    }
}

// The API server's message alone (`serviceaccounts "x" not found`), as client-go's error prints
// it: kube's own text repeats it in its debug form, and its status appends the reason.
fn api_cause(e: kube::Error) -> Box<dyn std::error::Error + Send + Sync> {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.into(),
        kube::Error::Api(status) => status,
        other => Box::new(other),
    }
}

impl SecretSource for KubeSecrets {
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, LookupError> {
        if let Some(store) = self.synced_cache() {
            let key = ObjectRef::new(name).within(namespace);
            return Ok(store.get(&key).map(|s| (*s).clone()));
        }
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| lookup_error("secret", namespace, name, e))
    }

    fn secret_resource(&self) -> &'static str {
        if self.cache.is_some() {
            "Secret"
        } else {
            "secrets"
        }
    }

    async fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceAccount>, LookupError> {
        Api::<ServiceAccount>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| lookup_error("serviceaccount", namespace, name, e))
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
            .map_err(|e| failed(api_cause(e)))?;
        issued
            .status
            .map(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| failed("the API server returned no token".into()))
    }
}
