//! (tests) Strategies for the property tests beside each parser of untrusted input: a seed of
//! real input with a few bytes flipped, inserted, removed or duplicated (shrinking towards the
//! seed), and the shared case count that keeps `cargo test` fast.

use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per property: enough to find the shallow panics, few enough for a fast `cargo test`.
pub(crate) const CASES: u32 = 256;

/// The property-test configuration with [`CASES`] cases and no regression files.
pub(crate) fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Edit {
    Flip(Index, u8),
    Insert(Index, Index),
    Remove(Index),
    Duplicate(Index, usize),
}

/// Bytes that matter to the parsers here: JSON, URL, path and header punctuation.
const INTERESTING: &[u8] = b"\"{}[]:,/@.\\\x00\xff-=+ <>;";

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Remove),
        (any::<Index>(), 1usize..8).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for edit in edits {
        match edit {
            Edit::Flip(i, b) if !out.is_empty() => {
                let at = i.index(out.len());
                out[at] = *b;
            }
            Edit::Insert(i, b) => {
                let at = i.index(out.len() + 1);
                out.insert(at, INTERESTING[b.index(INTERESTING.len())]);
            }
            Edit::Remove(i) if !out.is_empty() => {
                out.remove(i.index(out.len()));
            }
            Edit::Duplicate(i, n) if !out.is_empty() => {
                let at = i.index(out.len());
                let end = (at + n).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            _ => {}
        }
    }
    out
}

/// One of `seeds` with up to four edits.
pub(crate) fn mutated(seeds: &[&'static str]) -> impl Strategy<Value = Vec<u8>> + use<> {
    mutated_bytes(seeds.iter().map(|s| s.as_bytes().to_vec()).collect())
}

/// One of `seeds` with up to four edits, as bytes.
pub(crate) fn mutated_bytes(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(seeds),
        proptest::collection::vec(edit(), 0..5),
    )
        .prop_map(|(seed, edits)| apply(&seed, &edits))
}

/// [`mutated`] as (lossy) text.
pub(crate) fn mutated_text(seeds: &[&'static str]) -> impl Strategy<Value = String> + use<> {
    mutated(seeds).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}
