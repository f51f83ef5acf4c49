//! A registry's manifest or index answer: parsed or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ocisource::fuzzing::parse_manifest(data);
});
