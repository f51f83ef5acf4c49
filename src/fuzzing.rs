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

/// Parses `body` as each kind of TUF metadata and checks a root's signatures over itself.
pub fn parse_tuf_metadata(body: &[u8]) {
    use crate::verify::tuf::metadata::{self, MetaList, Root, Targets};
    if let Ok(root) = metadata::parse::<Root>("root", body) {
        let _ = root.verify_by("root", &root.signed, "root");
    }
    let _ = metadata::parse::<MetaList>("timestamp", body);
    let _ = metadata::parse::<MetaList>("snapshot", body);
    let _ = metadata::parse::<Targets>("targets", body);
}
