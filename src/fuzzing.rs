//! Entry points for the cargo-fuzz targets in `fuzz/` (compiled only with `--cfg fuzzing`,
//! which cargo-fuzz sets): crate-private parsers reached without widening their visibility.

/// Parses `body` as a registry manifest or index, with and without a content type.
pub fn parse_manifest(body: &[u8]) {
    for content_type in [
        None,
        Some("application/vnd.oci.image.manifest.v1+json"),
        Some("application/vnd.oci.image.index.v1+json"),
    ] {
        let _ = crate::registry::manifest::parse_document(body, content_type);
    }
}
