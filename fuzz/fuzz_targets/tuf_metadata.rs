//! TUF metadata from a mirror: parsed and checked or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ocisource::fuzzing::parse_tuf_metadata(data);
});
