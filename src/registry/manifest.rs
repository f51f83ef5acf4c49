//! Manifests and indexes: the media types this client accepts and what it keeps of them.
//!
//! Parsing is lenient the way go-containerregistry is: the media type comes from the document's
//! `mediaType`, else from the `Content-Type` header, else from its shape (`manifests` means an
//! index). Unknown media types with `layers` are read as image manifests; Docker schema 1 is
//! refused. An index resolves to its `linux/amd64` child (Flux's default platform).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::Error;
use super::platform::Platform;
use super::reference::Digest;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema 1 manifest (refused).
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Signed Docker schema 1 manifest (refused).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The `Accept` list of manifest requests, go-containerregistry's order.
pub const MANIFEST_ACCEPT: &[&str] = &[
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
];

/// The largest manifest accepted, in bytes.
pub const MAX_MANIFEST_SIZE: usize = 8 << 20;

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// The media type.
    pub media_type: String,
    /// The content digest.
    pub digest: Digest,
    /// The content size in bytes.
    pub size: u64,
    /// The descriptor's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// An image manifest, resolved through an index if need be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The digest that was asked for: an index's digest when the manifest came through an index
    /// (Flux's revision keeps the index digest).
    pub digest: Digest,
    /// The digest of the image manifest itself (equal to `digest` without an index).
    pub manifest_digest: Digest,
    /// The image manifest's media type.
    pub media_type: String,
    /// The config descriptor, if any.
    pub config: Option<Descriptor>,
    /// The layers, in order.
    pub layers: Vec<Descriptor>,
    /// The image manifest's annotations (the child's, for an index).
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDocument {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// A parsed manifest document.
pub(crate) enum Document {
    /// An image manifest.
    Image {
        media_type: String,
        config: Option<Descriptor>,
        layers: Vec<Descriptor>,
        annotations: BTreeMap<String, String>,
    },
    /// An index: its children that name a platform, in order.
    Index { children: Vec<IndexChild> },
}

/// A child of an index that names its platform.
pub(crate) struct IndexChild {
    os: String,
    architecture: String,
    variant: Option<String>,
    digest: String,
}

impl Document {
    /// For an index, the digest of its first child of `platform` (`Ok(None)` when it has
    /// none); `Ok(None)` for an image manifest.
    ///
    /// # Errors
    /// [`Error::Protocol`] when that child's digest is invalid.
    pub(crate) fn child(&self, platform: &Platform) -> Result<Option<Digest>, Error> {
        let Document::Index { children } = self else {
            return Ok(None);
        };
        children
            .iter()
            .find(|c| platform.matches(&c.os, &c.architecture, c.variant.as_deref()))
            .map(|c| {
                c.digest.parse().map_err(|e| {
                    Error::protocol(format!("manifest has an invalid descriptor digest: {e}"))
                })
            })
            .transpose()
    }
}

impl Document {
    /// The [`Manifest`] of an image manifest document, fetched as `digest` and stored at
    /// `manifest_digest`; `None` for an index.
    pub(crate) fn into_manifest(self, digest: Digest, manifest_digest: Digest) -> Option<Manifest> {
        match self {
            Document::Image {
                media_type,
                config,
                layers,
                annotations,
            } => Some(Manifest {
                digest,
                manifest_digest,
                media_type,
                config,
                layers,
                annotations,
            }),
            Document::Index { .. } => None,
        }
    }
}

fn descriptor(raw: RawDescriptor) -> Result<Descriptor, Error> {
    let digest: Digest = raw
        .digest
        .parse()
        .map_err(|e| Error::protocol(format!("manifest has an invalid descriptor digest: {e}")))?;
    let size = u64::try_from(raw.size)
        .map_err(|_| Error::protocol(format!("descriptor {digest} has a negative size")))?;
    Ok(Descriptor {
        media_type: raw.media_type,
        digest,
        size,
        annotations: raw.annotations.unwrap_or_default(),
    })
}

/// Parses a manifest body; `content_type` is the response's `Content-Type`, if any.
pub(crate) fn parse_document(body: &[u8], content_type: Option<&str>) -> Result<Document, Error> {
    let raw: RawDocument = serde_json::from_slice(body)
        .map_err(|e| Error::protocol(format!("invalid manifest: {e}")))?;
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let media_type = raw
        .media_type
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| content_type.map(str::to_string))
        .unwrap_or_default();
    if raw.schema_version == Some(1)
        || media_type == DOCKER_SCHEMA1
        || media_type == DOCKER_SCHEMA1_SIGNED
    {
        return Err(Error::protocol("unsupported schema 1 manifest"));
    }
    let is_index = media_type == OCI_INDEX
        || media_type == DOCKER_MANIFEST_LIST
        || (raw.layers.is_none() && raw.manifests.is_some());
    if is_index {
        let children = raw
            .manifests
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let p = m.platform?;
                Some(IndexChild {
                    os: p.os,
                    architecture: p.architecture,
                    variant: p.variant,
                    digest: m.digest,
                })
            })
            .collect();
        return Ok(Document::Index { children });
    }
    if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
        tracing::warn!(media_type = %media_type, "unknown manifest media type, reading it as an image manifest");
    }
    let config = raw.config.map(descriptor).transpose()?;
    let layers = raw
        .layers
        .unwrap_or_default()
        .into_iter()
        .map(descriptor)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Document::Image {
        media_type,
        config,
        layers,
        annotations: raw.annotations.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image(body: &str, ct: Option<&str>) -> (String, Vec<Descriptor>, BTreeMap<String, String>) {
        match parse_document(body.as_bytes(), ct) {
            Ok(Document::Image {
                media_type,
                layers,
                annotations,
                ..
            }) => (media_type, layers, annotations),
            Ok(Document::Index { .. }) => panic!("index"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn oci_manifests_keep_layers_and_annotations() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/vnd.cncf.flux.config.v1+json","digest":"{D1}","size":2}},
            "layers":[{{"mediaType":"application/vnd.cncf.flux.content.v1.tar+gzip","digest":"{D2}","size":42,
              "annotations":{{"a":"b"}}}}],
            "annotations":{{"org.opencontainers.image.revision":"main@sha1:abc"}}}}"#
        );
        let (mt, layers, ann) = image(&body, None);
        assert_eq!(mt, OCI_MANIFEST);
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0].size, 42);
        assert_eq!(layers[0].digest.to_string(), D2);
        assert_eq!(
            layers[0].annotations.get("a").map(String::as_str),
            Some("b")
        );
        assert_eq!(
            ann.get("org.opencontainers.image.revision")
                .map(String::as_str),
            Some("main@sha1:abc")
        );
    }

    #[test]
    fn the_media_type_falls_back_to_the_content_type() {
        let body = format!(r#"{{"schemaVersion":2,"layers":[{{"digest":"{D2}","size":1}}]}}"#);
        let (mt, _, _) = image(&body, Some(&format!("{DOCKER_MANIFEST}; charset=utf-8")));
        assert_eq!(mt, DOCKER_MANIFEST);
    }

    #[test]
    fn indexes_pick_linux_amd64_or_the_platform_asked_for() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        match parse_document(body.as_bytes(), Some(DOCKER_MANIFEST_LIST)) {
            Ok(doc @ Document::Index { .. }) => {
                let child = doc.child(&Platform::linux_amd64()).unwrap();
                assert_eq!(child.map(|d| d.to_string()).as_deref(), Some(D2));
                let arm = doc.child(&"linux/arm64".parse().unwrap()).unwrap();
                assert_eq!(arm.map(|d| d.to_string()).as_deref(), Some(D1));
                assert!(
                    doc.child(&"linux/s390x".parse().unwrap())
                        .unwrap()
                        .is_none()
                );
            }
            _ => panic!("not an index"),
        }
        let body = format!(r#"{{"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
        assert!(matches!(
            parse_document(body.as_bytes(), None),
            Ok(Document::Index { children }) if children.is_empty()
        ));
    }

    #[test]
    fn schema1_and_garbage_are_protocol_errors() {
        for (body, ct) in [
            (r#"{"schemaVersion":1,"fsLayers":[]}"#.to_string(), None),
            (r#"{"layers":[]}"#.to_string(), Some(DOCKER_SCHEMA1_SIGNED)),
            ("not json".to_string(), None),
            (
                r#"{"layers":[{"digest":"md5:x","size":1}]}"#.to_string(),
                None,
            ),
            (
                format!(r#"{{"layers":[{{"digest":"{D1}","size":-1}}]}}"#),
                None,
            ),
        ] {
            assert!(
                matches!(
                    parse_document(body.as_bytes(), ct),
                    Err(Error::Protocol { .. })
                ),
                "{body}"
            );
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::mutation::{config, mutated};

    const DOCUMENTS: &[&str] = &[
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.cncf.flux.content.v1.tar+gzip","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}],"annotations":{"a":"b"}}"#,
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"architecture":"amd64","os":"linux"}}]}"#,
    ];

    proptest! {
        #![proptest_config(config())]

        /// A manifest or index from the registry is read or refused, whatever its content type.
        #[test]
        fn mutated_documents_never_panic(bytes in mutated(DOCUMENTS)) {
            for content_type in [
                None,
                Some("application/vnd.oci.image.manifest.v1+json"),
                Some("application/vnd.docker.distribution.manifest.list.v2+json"),
            ] {
                let _ = parse_document(&bytes, content_type);
            }
        }

        /// Any bytes at all.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_document(&bytes, None);
        }
    }
}
