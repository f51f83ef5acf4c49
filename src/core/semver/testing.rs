//! Helpers shared by the semver tests.

use super::version::Version;

/// Renders an error the way the crate's reporter does: Display texts joined with ": ".
pub(super) fn render(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The lenient parse of `text`, which must succeed.
pub(super) fn v(text: &str) -> Version {
    match Version::parse(text) {
        Some(version) => version,
        None => panic!("test version {text:?} does not parse"),
    }
}

/// Owned copies of `items`.
pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}
