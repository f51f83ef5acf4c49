//! Hostile layers against `storage::extract`: each one must fail (or, for symlinks, be skipped)
//! with the right error, and nothing may appear outside the extraction directory.

mod common;

use common::tarball::{Tar, gzip, noise};

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use ocisource::storage::archive::archive_dir;
use ocisource::storage::{
    Deadline, DigestAlgorithm, ExtractError, ExtractLimits, Extracted, extract, ignore,
};

fn pax(key: &str, value: &str) -> Vec<u8> {
    let rec = format!(" {key}={value}\n");
    let mut len = rec.len() + 1;
    while format!("{len}{rec}").len() != len {
        len += 1;
    }
    format!("{len}{rec}").into_bytes()
}

/// Every path below `root`, except those below `skip`, without following symlinks.
fn snapshot(root: &Path, skip: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.starts_with(skip) {
                continue;
            }
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.insert(p);
        }
    }
    out
}

/// Extracts `gz` into `<sandbox>/a/b/out` (so that `../x` and `../../x` land in the sandbox if
/// anything escapes) and checks that nothing outside `out` changed.
fn run(gz: &[u8], limits: &ExtractLimits) -> Result<Extracted, ExtractError> {
    let sandbox = tempfile::tempdir().unwrap();
    let out = sandbox.path().join("a/b/out");
    fs::create_dir_all(&out).unwrap();
    fs::write(sandbox.path().join("a/b/sibling.txt"), b"keep").unwrap();
    let before = snapshot(sandbox.path(), &out);
    let result = extract(gz, &out, limits);
    let after = snapshot(sandbox.path(), &out);
    assert_eq!(
        before, after,
        "something was written outside the extraction directory"
    );
    assert_eq!(
        fs::read(sandbox.path().join("a/b/sibling.txt")).unwrap(),
        b"keep"
    );
    result
}

fn err(gz: &[u8], limits: &ExtractLimits) -> ExtractError {
    match run(gz, limits) {
        Ok(stats) => panic!("extraction succeeded: {stats:?}"),
        Err(e) => e,
    }
}

fn defaults() -> ExtractLimits {
    ExtractLimits::default()
}

#[test]
fn traversal_is_refused_with_flux_s_message() {
    for name in ["../x", "ok/../../x", "..", "a/.."] {
        let e = err(
            &Tar::default()
                .file("fine.txt", b"1")
                .file(name, b"pwned")
                .gz(),
            &defaults(),
        );
        assert!(
            matches!(e, ExtractError::InvalidName { .. }),
            "{name}: {e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("tar contained invalid name error {name:?}")
        );
    }
    let e = err(&Tar::default().dir("../escape").gz(), &defaults());
    assert_eq!(
        e.to_string(),
        "tar contained invalid name error \"../escape\""
    );
}

#[test]
fn absolute_backslash_and_empty_names_are_refused() {
    for name in ["/etc/x", "a\\..\\..\\x", ""] {
        let e = err(&Tar::default().file(name, b"pwned").gz(), &defaults());
        assert!(
            matches!(e, ExtractError::InvalidName { .. }),
            "{name:?}: {e:?}"
        );
    }
}

#[test]
fn traversal_through_long_name_records_is_refused() {
    let mut long = b"../".repeat(40);
    long.extend_from_slice(b"x\0");
    let e = err(
        &Tar::default().meta(b'L', &long).file("innocent", b"p").gz(),
        &defaults(),
    );
    assert!(matches!(e, ExtractError::InvalidName { .. }), "{e:?}");

    let e = err(
        &Tar::default()
            .meta(b'x', &pax("path", "../../x"))
            .file("innocent", b"p")
            .gz(),
        &defaults(),
    );
    assert!(matches!(e, ExtractError::InvalidName { .. }), "{e:?}");
}

#[test]
fn device_and_fifo_entries_are_refused() {
    for (kind, what) in [
        (b'3', "character device"),
        (b'4', "block device"),
        (b'6', "named pipe"),
    ] {
        let e = err(&Tar::default().special(kind, "dev/null").gz(), &defaults());
        assert!(matches!(e, ExtractError::UnsupportedType { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("tar file entry dev/null contained unsupported file type {what}")
        );
    }
}

/// Hard links become empty regular files, as Flux writes them: whatever they name, nothing
/// outside is read or written (`run` checks the sandbox), and bad link names are still refused.
#[test]
fn hard_links_become_empty_files_whatever_they_point_at() {
    for target in [
        "../../sibling.txt",
        "/etc/passwd",
        "not-extracted",
        "d",
        "evil",
    ] {
        let sandbox = tempfile::tempdir().unwrap();
        let out = sandbox.path().join("out");
        let gz = Tar::default().dir("d").link(b'1', "evil", target).gz();
        let stats = extract(&gz[..], &out, &defaults()).unwrap();
        assert_eq!((stats.hard_links, stats.files), (1, 0), "{target}");
        let meta = fs::symlink_metadata(out.join("evil")).unwrap();
        assert!(meta.is_file() && meta.len() == 0, "{target}");
    }
    let e = err(
        &Tar::default()
            .file("a", b"1")
            .link(b'1', "../evil", "a")
            .gz(),
        &defaults(),
    );
    assert!(matches!(e, ExtractError::InvalidName { .. }), "{e:?}");
}

/// A file plus N hard links was archived N+1 times (a 16 MiB file and 256 links wrote a 4.3 GB
/// artifact). Scaled down: 1 MiB of incompressible data and 256 links, extracted under a 2 MiB
/// limit, must archive to about 1 MiB.
#[test]
fn a_file_with_many_hard_links_is_archived_once() {
    let mut tar = Tar::default().file("big", &noise(1 << 20));
    for i in 0..256 {
        tar = tar.link(b'1', &format!("link-{i:03}"), "big");
    }
    let gz = tar.gz();
    let work = tempfile::tempdir().unwrap();
    let limits = ExtractLimits {
        max_size: Some(2 << 20),
        max_entries: Some(1_000),
    };
    let stats = extract(&gz[..], work.path(), &limits).unwrap();
    assert_eq!(stats.hard_links, 256);
    assert_eq!(stats.bytes, 1 << 20);

    let store = tempfile::tempdir().unwrap();
    let dest = store.path().join("sha256:abc.tar.gz");
    let matcher = ignore::matcher_for(work.path(), None, None).unwrap();
    let stored = archive_dir(work.path(), &matcher, &dest, DigestAlgorithm::Sha256, None).unwrap();
    assert!(
        stored.size < 2 << 20,
        "artifact of {} bytes for 1 MiB of content",
        stored.size
    );
}

/// The archive step stops at the reconcile deadline and leaves no partial file: a 64 GiB sparse
/// file (nothing on disk, far more than a second of gzip) against a 1 s deadline.
#[test]
fn archiving_stops_at_the_deadline() {
    let work = tempfile::tempdir().unwrap();
    fs::File::create(work.path().join("sparse"))
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    let store = tempfile::tempdir().unwrap();
    let dest = store.path().join("sha256:abc.tar.gz");
    let matcher = ignore::matcher_for(work.path(), None, None).unwrap();
    let timeout = Duration::from_secs(1);
    let start = Instant::now();
    let e = archive_dir(
        work.path(),
        &matcher,
        &dest,
        DigestAlgorithm::Sha256,
        Some(&Deadline::new(start, timeout)),
    )
    .unwrap_err();
    let ratio = start.elapsed().as_secs_f64() / timeout.as_secs_f64();
    assert_eq!(
        e.to_string(),
        "archiving the artifact did not finish within the timeout of 1s (spec.timeout)"
    );
    assert!(ratio <= 1.5, "stopped after {ratio:.2}x the deadline");
    assert_eq!(
        fs::read_dir(store.path()).unwrap().count(),
        0,
        "no partial file left"
    );
}

#[test]
fn symlinks_are_skipped_and_cannot_redirect_later_entries() {
    let sandbox = tempfile::tempdir().unwrap();
    let outside = sandbox.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let out = sandbox.path().join("out");
    let gz = Tar::default()
        .link(b'2', "escape", outside.to_str().unwrap())
        .link(b'2', "up", "../outside")
        .file("escape/pwned.txt", b"pwned")
        .file("up/pwned.txt", b"pwned")
        .gz();
    let stats = extract(&gz[..], &out, &defaults()).unwrap();
    assert_eq!(stats.skipped_symlinks, 2);
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing outside"
    );
    for d in ["escape", "up"] {
        let m = fs::symlink_metadata(out.join(d)).unwrap();
        assert!(m.is_dir(), "{d} is a real directory, not a link");
    }
    // A lone symlink creates nothing.
    let stats = run(
        &Tar::default().link(b'2', "link", "/etc/passwd").gz(),
        &defaults(),
    )
    .unwrap();
    assert_eq!((stats.files, stats.skipped_symlinks), (0, 1));
}

#[test]
fn a_gzip_bomb_over_the_limit_fails_cleanly() {
    let limits = ExtractLimits {
        max_size: Some(1 << 20),
        max_entries: None,
    };
    let zeros = vec![0u8; 8 << 20];
    let gz = Tar::default().file("bomb", &zeros).gz();
    assert!(gz.len() < 64 * 1024, "the fixture compresses well");
    let e = err(&gz, &limits);
    assert!(matches!(e, ExtractError::TooLarge { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "tar \"bomb\" is bigger than max archive size of 1048576 bytes"
    );

    // Many files that are each small but add up.
    let mut tar = Tar::default();
    for i in 0..20 {
        tar = tar.file(&format!("f{i}"), &zeros[..100_000]);
    }
    assert!(matches!(
        err(&tar.gz(), &limits),
        ExtractError::TooLarge { .. }
    ));

    // Zeros hidden after the end-of-archive marker.
    let mut raw = Tar::default().file("a", b"x").0;
    raw.extend(std::iter::repeat_n(0u8, 4 << 20));
    let e = err(&gzip(&raw), &limits);
    assert!(
        matches!(e, ExtractError::TrailingDataTooLarge { .. }),
        "{e:?}"
    );

    // A huge metadata record is bounded on its own.
    let e = err(
        &Tar::default()
            .meta(b'L', &vec![b'a'; 2 << 20])
            .file("x", b"")
            .gz(),
        &ExtractLimits::UNLIMITED,
    );
    assert!(matches!(e, ExtractError::MetadataTooLarge { .. }), "{e:?}");

    // Disabled limits let the same layer through.
    let stats = run(&gz, &ExtractLimits::UNLIMITED).unwrap();
    assert_eq!(stats.bytes, 8 << 20);
}

#[test]
fn an_entry_count_bomb_fails_cleanly() {
    let limits = ExtractLimits {
        max_size: None,
        max_entries: Some(100),
    };
    let mut tar = Tar::default();
    for i in 0..1000 {
        tar = tar.dir(&format!("d{i}"));
    }
    let gz = tar.gz();
    let e = err(&gz, &limits);
    assert!(
        matches!(e, ExtractError::TooManyEntries { limit: 100 }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "tar has more than the maximum of 100 entries"
    );

    // Global headers count too, so they cannot be used to spin forever.
    let mut tar = Tar::default();
    for _ in 0..1000 {
        tar = tar.special(b'g', "pax_global_header");
    }
    assert!(matches!(
        err(&tar.gz(), &limits),
        ExtractError::TooManyEntries { .. }
    ));

    assert_eq!(run(&gz, &defaults()).unwrap().dirs, 1000);
}

#[test]
fn a_non_gzip_body_fails_like_flux() {
    let plain_tar = {
        let mut t = Tar::default().file("a", b"x");
        t.0.extend(std::iter::repeat_n(0u8, 1024));
        t.0
    };
    let e = err(&plain_tar, &defaults());
    assert!(matches!(e, ExtractError::NotGzip { .. }), "{e:?}");
    let chain = format!("{}: {}", e, std::error::Error::source(&e).unwrap());
    assert_eq!(chain, "requires gzip-compressed body: gzip: invalid header");
}

#[test]
fn corrupt_and_truncated_streams_fail_cleanly() {
    let gz = Tar::default().file("a", &vec![7u8; 100_000]).gz();
    let truncated = &gz[..gz.len() / 2];
    assert!(matches!(
        err(truncated, &defaults()),
        ExtractError::Read { .. }
    ));
    let mut corrupt = gz.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    corrupt[mid + 1] ^= 0xff;
    assert!(matches!(
        err(&corrupt, &defaults()),
        ExtractError::Read { .. }
    ));
    // A tar header with a broken checksum.
    let mut raw = Tar::default().file("a", b"x").0;
    raw[0] = b'b';
    raw.extend(std::iter::repeat_n(0u8, 1024));
    assert!(matches!(
        err(&gzip(&raw), &defaults()),
        ExtractError::Read { .. }
    ));
}

#[test]
fn sparse_and_unknown_entry_types_are_refused() {
    for kind in [b'S', b'D', b'V', b'Z'] {
        let e = err(&Tar::default().special(kind, "weird").gz(), &defaults());
        assert!(matches!(e, ExtractError::UnsupportedType { .. }), "{e:?}");
    }
    let e = err(
        &Tar::default()
            .meta(b'x', &pax("GNU.sparse.major", "1"))
            .file("s", b"")
            .gz(),
        &defaults(),
    );
    assert!(matches!(e, ExtractError::UnsupportedType { .. }), "{e:?}");
}
