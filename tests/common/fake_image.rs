//! One image (`app:v1`, one layer) served by the fake registry, for hostile layers that need no
//! test bed: the layer bytes, its media type and the size its descriptor announces are chosen
//! by the test, and a blob reply can be replaced (to stall it, for example).

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::fake_registry::{Fake, Reply, ok, status};

/// Media type `flux push artifact` gives its layer.
pub const FLUX_LAYER: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";

const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The image as served.
#[derive(Clone)]
pub struct Image {
    /// The layer blob.
    pub layer: Arc<Vec<u8>>,
    /// Its digest.
    pub layer_digest: String,
    /// The manifest bytes.
    pub manifest: Vec<u8>,
    /// The manifest digest.
    pub digest: String,
}

impl Image {
    /// An image whose one layer is `layer` with `media_type`; its descriptor announces
    /// `announced` bytes (the real size when `None`).
    pub fn new(layer: Vec<u8>, media_type: &str, announced: Option<u64>) -> Image {
        let config = b"{}";
        let layer_digest = sha256(&layer);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": FLUX_CONFIG, "digest": sha256(config), "size": config.len()},
            "layers": [{
                "mediaType": media_type,
                "digest": layer_digest,
                "size": announced.unwrap_or(layer.len() as u64),
            }],
        }))
        .unwrap();
        Image {
            digest: sha256(&manifest),
            layer: Arc::new(layer),
            layer_digest,
            manifest,
        }
    }

    /// Serves the image as `app:v1`; `blob` may answer a layer request instead of the layer.
    pub async fn serve(self, blob: Option<Arc<dyn Fn() -> Reply + Send + Sync>>) -> Fake {
        Fake::start(move |req| {
            if req.path == "/v2/" {
                return ok(&[], b"{}");
            }
            if let Some(reference) = req.path.strip_prefix("/v2/app/manifests/") {
                if reference != "v1" && reference != self.digest {
                    return status(404, &[], b"{}");
                }
                return ok(
                    &[
                        ("content-type", OCI_MANIFEST),
                        ("docker-content-digest", &self.digest),
                    ],
                    &self.manifest,
                );
            }
            if req.path == format!("/v2/app/blobs/{}", self.layer_digest) {
                return match &blob {
                    Some(reply) => reply(),
                    None => ok(&[], &self.layer),
                };
            }
            status(404, &[], b"{}")
        })
        .await
    }
}
