//! A layer (gzip-compressed tar) extracted into a fresh directory: no panic, nothing written
//! outside it, no symlink extracted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocisource::storage::{ExtractLimits, extract};

fuzz_target!(|data: &[u8]| {
    let base = tempfile::tempdir().expect("a temporary directory");
    let dir = base.path().join("layer");
    let limits = ExtractLimits {
        max_size: Some(4 << 20),
        max_entries: Some(1000),
    };
    let _ = extract(data, &dir, &limits);
    let mut stack = vec![base.path().to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("readable") {
            let path = entry.expect("an entry").path();
            assert!(
                path.starts_with(&dir),
                "{path:?} outside the layer directory"
            );
            let meta = path.symlink_metadata().expect("metadata");
            assert!(!meta.file_type().is_symlink(), "symlink {path:?} extracted");
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
});
