//! `spec.ref.semver` constraints and tags: parsed or refused, never a panic; a parsed version
//! prints as a version that parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocisource::core::semver::{Constraints, Version, parse_tag};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(constraints) = Constraints::parse(text) {
        for probe in ["0.0.0", "1.2.3", "1.2.3-rc.1", "18446744073709551615.0.0"] {
            if let Some(version) = Version::parse(probe) {
                let _ = constraints.matches(&version);
            }
        }
    }
    if let Some(version) = Version::parse(text) {
        assert!(Version::parse(&version.to_string()).is_some(), "{text:?}");
    }
    let _ = parse_tag(text);
});
