//! The config blob and the manifest of a Flux artifact, byte for byte as go-containerregistry
//! serializes them for `flux push artifact`.
//!
//! The config is the JSON config file of `empty.Image` after `mutate.Append` of one layer: empty
//! architecture and OS, zero `created`, one empty history entry, the layer's `diff_id`. The
//! manifest is an OCI image manifest (`schemaVersion` 2) with the Flux config and content media
//! types and the annotations sorted by key. Both are written the way Go's `encoding/json` writes
//! them: fields in struct order, no whitespace, and strings escaped HTML-safe (`<`, `>`, `&`,
//! U+2028 and U+2029 as `\uXXXX`), so the same annotations and blobs give the same manifest
//! digest as flux.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::registry::Digest;
use crate::registry::manifest::OCI_MANIFEST;

/// The manifest media type of Flux artifacts.
pub const MANIFEST_MEDIA_TYPE: &str = OCI_MANIFEST;
/// The config media type of Flux artifacts.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
/// The media type of the single content layer (a gzipped tarball).
pub const CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";

/// `org.opencontainers.image.created`: when the artifact was built (RFC 3339).
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";
/// `org.opencontainers.image.source`: the source address (`--source`).
pub const SOURCE_ANNOTATION: &str = "org.opencontainers.image.source";
/// `org.opencontainers.image.revision`: the source revision (`--revision`).
pub const REVISION_ANNOTATION: &str = "org.opencontainers.image.revision";

/// The config blob for a layer whose uncompressed digest is `diff_id`.
pub fn config_json(diff_id: &Digest) -> Vec<u8> {
    let mut s = String::from(
        r#"{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["#,
    );
    push_string(&mut s, &diff_id.to_string());
    s.push_str("]},\"config\":{}}");
    s.into_bytes()
}

/// A content-addressed blob: its media type, digest and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// The media type.
    pub media_type: String,
    /// The digest.
    pub digest: Digest,
    /// The size in bytes.
    pub size: u64,
}

/// The image manifest with `config`, the single `layer` and `annotations`.
pub fn manifest_json(
    config: &Blob,
    layer: &Blob,
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut s = String::from("{\"schemaVersion\":2,\"mediaType\":");
    push_string(&mut s, MANIFEST_MEDIA_TYPE);
    s.push_str(",\"config\":");
    push_descriptor(&mut s, config);
    s.push_str(",\"layers\":[");
    push_descriptor(&mut s, layer);
    s.push(']');
    if !annotations.is_empty() {
        s.push_str(",\"annotations\":{");
        for (i, (k, v)) in annotations.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            push_string(&mut s, k);
            s.push(':');
            push_string(&mut s, v);
        }
        s.push('}');
    }
    s.push('}');
    s.into_bytes()
}

fn push_descriptor(s: &mut String, blob: &Blob) {
    s.push_str("{\"mediaType\":");
    push_string(s, &blob.media_type);
    let _ = write!(s, ",\"size\":{},\"digest\":", blob.size);
    push_string(s, &blob.digest.to_string());
    s.push('}');
}

/// Appends `v` as a JSON string the way Go's `encoding/json` (HTML-safe) writes it.
pub fn push_string(s: &mut String, v: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            '\u{8}' => s.push_str("\\b"),
            '\u{c}' => s.push_str("\\f"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u32;
                s.push_str("\\u00");
                s.push(char::from(HEX[(b >> 4) as usize & 0xf]));
                s.push(char::from(HEX[b as usize & 0xf]));
            }
            '\u{2028}' => s.push_str("\\u2028"),
            '\u{2029}' => s.push_str("\\u2029"),
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(s: &str) -> Digest {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    // Goldens from `flux push artifact --reproducible -a foo=bar
    // -a org.opencontainers.image.source=over` (v2.6.4) against the test bed's registry.
    #[test]
    fn the_config_blob_is_go_containerregistrys() {
        let config = config_json(&digest(
            "sha256:3765ab67d948b8d52d25417591ead007c7dc2f74a395390b8fd256823e9172b6",
        ));
        assert_eq!(
            String::from_utf8_lossy(&config),
            r#"{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["sha256:3765ab67d948b8d52d25417591ead007c7dc2f74a395390b8fd256823e9172b6"]},"config":{}}"#
        );
        assert_eq!(config.len(), 233);
        assert_eq!(
            Digest::sha256_of(&config).to_string(),
            "sha256:900c24c4f29877401b286c974ae46b556bd458f0481e23ef735b9985667a3492"
        );
    }

    #[test]
    fn the_manifest_has_fluxs_bytes_and_digest() {
        let config = Blob {
            media_type: CONFIG_MEDIA_TYPE.into(),
            digest: digest(
                "sha256:900c24c4f29877401b286c974ae46b556bd458f0481e23ef735b9985667a3492",
            ),
            size: 233,
        };
        let layer = Blob {
            media_type: CONTENT_MEDIA_TYPE.into(),
            digest: digest(
                "sha256:94c69292130614fee37acbaf1b331fc5e8e9579c9dcbce16cdcc60af55fde81e",
            ),
            size: 337,
        };
        let annotations: BTreeMap<String, String> = [
            (CREATED_ANNOTATION, "1970-01-01T00:00:00Z"),
            (SOURCE_ANNOTATION, "over"),
            (REVISION_ANNOTATION, "main@sha1:abc"),
            ("foo", "bar"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let manifest = manifest_json(&config, &layer, &annotations);
        assert_eq!(
            String::from_utf8_lossy(&manifest),
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.flux.config.v1+json","size":233,"digest":"sha256:900c24c4f29877401b286c974ae46b556bd458f0481e23ef735b9985667a3492"},"layers":[{"mediaType":"application/vnd.cncf.flux.content.v1.tar+gzip","size":337,"digest":"sha256:94c69292130614fee37acbaf1b331fc5e8e9579c9dcbce16cdcc60af55fde81e"}],"annotations":{"foo":"bar","org.opencontainers.image.created":"1970-01-01T00:00:00Z","org.opencontainers.image.revision":"main@sha1:abc","org.opencontainers.image.source":"over"}}"#
        );
        assert_eq!(
            Digest::sha256_of(&manifest).to_string(),
            "sha256:3b000d186626666a4b46da13a22ba461c349d0b7ba43b458cbf3943256b7c29a"
        );
    }

    #[test]
    fn strings_are_escaped_html_safe_like_encoding_json() {
        let mut s = String::new();
        push_string(
            &mut s,
            "https://x/a?b=1&c=<2>\u{2028}é\u{7f}\u{1}\"\\\n\r\t\u{8}\u{c}\u{2029}",
        );
        assert_eq!(
            s,
            "\"https://x/a?b=1\\u0026c=\\u003c2\\u003e\\u2028é\u{7f}\\u0001\\\"\\\\\\n\\r\\t\\b\\f\\u2029\""
        );
    }
}
