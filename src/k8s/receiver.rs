//! The push receiver's view of the cluster: the controller's own watch cache of objects, and
//! Flux's `requestedAt` annotation to ask for a reconcile.

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};

use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1::OciRepository;
use crate::receiver::Objects;

/// The objects the controller watches (its reflector's store), reconciled on request through
/// the API server, so that the reconcile follows the usual path (and only the leader runs it).
pub struct KubeObjects {
    /// The controller's watch cache.
    pub store: Store<OciRepository>,
    /// The API client.
    pub client: Client,
}

impl Objects for KubeObjects {
    fn list(&self) -> Vec<Arc<OciRepository>> {
        self.store.state()
    }

    fn request(
        &self,
        obj: &OciRepository,
        at: String,
    ) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let api: Api<OciRepository> =
            Api::namespaced(self.client.clone(), &obj.namespace().unwrap_or_default());
        let name = obj.name_any();
        async move {
            let patch = serde_json::json!({
                "metadata": {"annotations": {RECONCILE_REQUESTED_AT: at}}
            });
            api.patch_metadata(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
                .map_err(|e| crate::core::message::render(&e))
        }
    }
}
