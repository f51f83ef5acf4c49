//! The TUF workflow against repositories made here: Ed25519 keys, documents signed over their
//! canonical JSON, served from memory.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::metadata::{canonical_json, encode_hex};
use super::*;

const TARGET: &[u8] = include_bytes!("../keyless/testdata/trusted_root.json");
const FUTURE: &str = "2100-01-01T00:00:00Z";
const PAST: &str = "2000-01-01T00:00:00Z";

fn now() -> Timestamp {
    "2026-12-01T00:00:00Z".parse().unwrap()
}

fn key(seed: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
}

fn keyid(k: &Ed25519KeyPair) -> String {
    encode_hex(&Sha256::digest(k.public_key().as_ref()))
}

fn sign(signed: &Value, signers: &[&Ed25519KeyPair]) -> Vec<u8> {
    let canonical = canonical_json(signed).unwrap();
    let signatures: Vec<Value> = signers
        .iter()
        .map(|k| json!({"keyid": keyid(k), "sig": encode_hex(k.sign(&canonical).as_ref())}))
        .collect();
    serde_json::to_vec_pretty(&json!({"signatures": signatures, "signed": signed})).unwrap()
}

/// The keys of one root version: root keys with a threshold, one key for each other role.
struct Keys {
    root: Vec<Ed25519KeyPair>,
    threshold: u64,
    timestamp: Ed25519KeyPair,
    snapshot: Ed25519KeyPair,
    targets: Ed25519KeyPair,
}

impl Keys {
    fn new(first_seed: u8) -> Keys {
        Keys {
            root: vec![key(first_seed), key(first_seed + 1)],
            threshold: 2,
            timestamp: key(first_seed + 2),
            snapshot: key(first_seed + 3),
            targets: key(first_seed + 4),
        }
    }

    fn root_signers(&self) -> Vec<&Ed25519KeyPair> {
        self.root.iter().collect()
    }

    fn root(&self, version: u64, expires: &str) -> Value {
        let mut keys = serde_json::Map::new();
        let all = self
            .root
            .iter()
            .chain([&self.timestamp, &self.snapshot, &self.targets]);
        for k in all {
            keys.insert(
                keyid(k),
                json!({"keytype": "ed25519", "scheme": "ed25519",
                       "keyval": {"public": encode_hex(k.public_key().as_ref())}}),
            );
        }
        let one = |k: &Ed25519KeyPair| json!({"keyids": [keyid(k)], "threshold": 1});
        json!({
            "_type": "root", "spec_version": "1.0.31", "version": version, "expires": expires,
            "consistent_snapshot": true, "keys": keys,
            "roles": {
                "root": {"keyids": self.root.iter().map(keyid).collect::<Vec<_>>(),
                         "threshold": self.threshold},
                "timestamp": one(&self.timestamp),
                "snapshot": one(&self.snapshot),
                "targets": one(&self.targets),
            },
        })
    }
}

/// A repository in memory; counts requests; can be taken down.
#[derive(Default)]
struct Mirror {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
    requests: AtomicUsize,
    down: AtomicBool,
}

impl Mirror {
    fn put(&self, path: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_string(), bytes);
    }

    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Fetch for Mirror {
    async fn fetch(&self, path: &str, limit: usize) -> Result<Option<Vec<u8>>, FetchError> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(FetchError::Transport("connection refused".into()));
        }
        match self.files.lock().unwrap().get(path) {
            Some(bytes) if bytes.len() > limit => Err(FetchError::TooLarge(limit)),
            found => Ok(found.cloned()),
        }
    }
}

/// Versions and expiries of one publication.
struct Publish<'a> {
    keys: &'a Keys,
    timestamp: u64,
    snapshot: u64,
    targets: u64,
    expires: &'a str,
    timestamp_expires: &'a str,
    target: &'a [u8],
}

impl<'a> Publish<'a> {
    fn new(keys: &'a Keys) -> Publish<'a> {
        Publish {
            keys,
            timestamp: 1,
            snapshot: 1,
            targets: 1,
            expires: FUTURE,
            timestamp_expires: FUTURE,
            target: TARGET,
        }
    }

    fn to(&self, mirror: &Mirror) {
        let sha256 = encode_hex(&Sha256::digest(self.target));
        mirror.put(
            &format!("targets/{sha256}.trusted_root.json"),
            self.target.to_vec(),
        );
        let targets = sign(
            &json!({"_type": "targets", "spec_version": "1.0", "version": self.targets,
                    "expires": self.expires,
                    "targets": {"trusted_root.json": {"length": self.target.len(),
                                                      "hashes": {"sha256": sha256}}}}),
            &[&self.keys.targets],
        );
        let snapshot = sign(
            &json!({"_type": "snapshot", "spec_version": "1.0", "version": self.snapshot,
                    "expires": self.expires,
                    "meta": {"targets.json": {"version": self.targets}}}),
            &[&self.keys.snapshot],
        );
        let snapshot_sha = encode_hex(&Sha256::digest(&snapshot));
        let timestamp = sign(
            &json!({"_type": "timestamp", "spec_version": "1.0", "version": self.timestamp,
                    "expires": self.timestamp_expires,
                    "meta": {"snapshot.json": {"version": self.snapshot,
                                               "length": snapshot.len(),
                                               "hashes": {"sha256": snapshot_sha}}}}),
            &[&self.keys.timestamp],
        );
        mirror.put(&format!("{}.targets.json", self.targets), targets);
        mirror.put(&format!("{}.snapshot.json", self.snapshot), snapshot);
        mirror.put("timestamp.json", timestamp);
    }
}

fn initial(keys: &Keys) -> Vec<u8> {
    sign(&keys.root(1, FUTURE), &keys.root_signers())
}

async fn run(mirror: &Mirror, root: &[u8], cache: &Cache) -> Result<(Vec<u8>, Source), String> {
    update(mirror, root, cache, now())
        .await
        .map_err(|e| crate::error_chain::chain(&e))
}

#[tokio::test]
async fn the_target_is_fetched_through_timestamp_snapshot_and_targets() {
    let keys = Keys::new(1);
    let mirror = Mirror::default();
    Publish::new(&keys).to(&mirror);
    let (target, source) = run(&mirror, &initial(&keys), &Cache::none()).await.unwrap();
    assert_eq!(target, TARGET);
    assert_eq!(source, Source::Mirror);
    // 2.root.json (absent), timestamp, snapshot, targets, the target.
    assert_eq!(mirror.requests(), 5);
}

#[tokio::test]
async fn a_root_rotation_is_followed_when_both_roots_sign_it() {
    let old = Keys::new(1);
    let new = Keys::new(20);
    let mirror = Mirror::default();
    let signers: Vec<&Ed25519KeyPair> = old.root.iter().chain(new.root.iter()).collect();
    mirror.put("2.root.json", sign(&new.root(2, FUTURE), &signers));
    Publish::new(&new).to(&mirror);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path());
    let (target, _) = run(&mirror, &initial(&old), &cache).await.unwrap();
    assert_eq!(target, TARGET);
    // The rotated root is the trusted one from now on.
    let cached: metadata::Signed<Root> = metadata::parse(
        "root",
        &std::fs::read(dir.path().join("root.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cached.signed.version, 2);
}

#[tokio::test]
async fn a_rotation_not_signed_by_the_old_root_is_refused() {
    let old = Keys::new(1);
    let new = Keys::new(20);
    let mirror = Mirror::default();
    mirror.put(
        "2.root.json",
        sign(&new.root(2, FUTURE), &new.root_signers()),
    );
    Publish::new(&new).to(&mirror);
    let err = run(&mirror, &initial(&old), &Cache::none())
        .await
        .unwrap_err();
    assert!(
        err.contains("root metadata has 0 valid signatures of the 2 its version 1 root's root"),
        "{err}"
    );
}

#[tokio::test]
async fn a_rotation_must_carry_the_next_version() {
    let keys = Keys::new(1);
    let mirror = Mirror::default();
    mirror.put(
        "2.root.json",
        sign(&keys.root(3, FUTURE), &keys.root_signers()),
    );
    Publish::new(&keys).to(&mirror);
    let err = run(&mirror, &initial(&keys), &Cache::none())
        .await
        .unwrap_err();
    assert_eq!(err, "root metadata version 3: expected 2");
}

#[tokio::test]
async fn below_the_threshold_is_refused_and_a_key_counts_once() {
    let keys = Keys::new(1);
    let mirror = Mirror::default();
    Publish::new(&keys).to(&mirror);
    let one = sign(&keys.root(1, FUTURE), &[&keys.root[0], &keys.root[0]]);
    let err = run(&mirror, &one, &Cache::none()).await.unwrap_err();
    assert!(err.contains("has 1 valid signatures of the 2"), "{err}");
}

#[tokio::test]
async fn a_tampered_document_fails_its_signature() {
    let keys = Keys::new(1);
    let mirror = Mirror::default();
    Publish::new(&keys).to(&mirror);
    let timestamp = mirror.files.lock().unwrap()["timestamp.json"].clone();
    let text = String::from_utf8(timestamp)
        .unwrap()
        .replace(FUTURE, "2100-01-02T00:00:00Z");
    mirror.put("timestamp.json", text.into_bytes());
    let err = run(&mirror, &initial(&keys), &Cache::none())
        .await
        .unwrap_err();
    assert!(
        err.starts_with("timestamp metadata has 0 valid signatures"),
        "{err}"
    );
}

#[tokio::test]
async fn expired_metadata_is_refused() {
    let keys = Keys::new(1);
    let mirror = Mirror::default();
    let mut publish = Publish::new(&keys);
    publish.timestamp_expires = PAST;
    publish.to(&mirror);
    let err = run(&mirror, &initial(&keys), &Cache::none())
        .await
        .unwrap_err();
    assert_eq!(err, format!("timestamp metadata expired at {PAST}"));

    let expired_root = sign(&keys.root(1, PAST), &keys.root_signers());
    Publish::new(&keys).to(&mirror);
    let err = run(&mirror, &expired_root, &Cache::none())
        .await
        .unwrap_err();
    assert_eq!(err, format!("root metadata expired at {PAST}"));
}

#[tokio::test]
async fn an_expired_initial_root_is_fine_when_the_chain_leads_past_it() {
    let keys = Keys::new(1);
    let mirror = Mirror::default();
    mirror.put(
        "2.root.json",
        sign(&keys.root(2, FUTURE), &keys.root_signers()),
    );
    Publish::new(&keys).to(&mirror);
    let expired_root = sign(&keys.root(1, PAST), &keys.root_signers());
    assert!(run(&mirror, &expired_root, &Cache::none()).await.is_ok());
}

#[tokio::test]
async fn a_tampered_target_or_snapshot_is_refused() {
    let keys = Keys::new(1);
    let mirror = Mirror::default();
    Publish::new(&keys).to(&mirror);
    let sha256 = encode_hex(&Sha256::digest(TARGET));
    let path = format!("targets/{sha256}.trusted_root.json");
    let mut tampered = TARGET.to_vec();
    tampered[10] ^= 1;
    mirror.put(&path, tampered);
    let err = run(&mirror, &initial(&keys), &Cache::none())
        .await
        .unwrap_err();
    assert!(
        err.starts_with(&format!("{path} does not match its metadata: sha256 ")),
        "{err}"
    );

    Publish::new(&keys).to(&mirror);
    let mut snapshot = mirror.files.lock().unwrap()["1.snapshot.json"].clone();
    snapshot.push(b'\n');
    mirror.put("1.snapshot.json", snapshot);
    let err = run(&mirror, &initial(&keys), &Cache::none())
        .await
        .unwrap_err();
    assert!(
        err.starts_with("1.snapshot.json does not match its metadata: longer than"),
        "{err}"
    );
}

#[tokio::test]
async fn versions_never_go_back_from_what_the_cache_trusted() {
    let keys = Keys::new(1);
    let mirror = Mirror::default();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path());
    let mut publish = Publish::new(&keys);
    publish.timestamp = 5;
    publish.snapshot = 3;
    publish.to(&mirror);
    run(&mirror, &initial(&keys), &cache).await.unwrap();

    publish.timestamp = 4;
    publish.to(&mirror);
    let err = run(&mirror, &initial(&keys), &cache).await.unwrap_err();
    assert_eq!(
        err,
        "timestamp metadata version 4: older than the trusted version 5"
    );

    publish.timestamp = 6;
    publish.snapshot = 2;
    publish.to(&mirror);
    let err = run(&mirror, &initial(&keys), &cache).await.unwrap_err();
    assert_eq!(
        err,
        "snapshot metadata version 2: older than the trusted version 3"
    );
}

#[tokio::test]
async fn an_unreachable_mirror_falls_back_to_the_unexpired_cache_only() {
    let keys = Keys::new(1);
    let mirror = Mirror::default();
    Publish::new(&keys).to(&mirror);
    mirror.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = run(&mirror, &initial(&keys), &Cache::none())
        .await
        .unwrap_err();
    assert_eq!(err, "failed to fetch 2.root.json: connection refused");

    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path());
    mirror
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    run(&mirror, &initial(&keys), &cache).await.unwrap();
    mirror.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let (target, source) = run(&mirror, &initial(&keys), &cache).await.unwrap();
    assert_eq!((target.as_slice(), source), (TARGET, Source::Cache));

    // A cached target that no longer matches is not used.
    std::fs::write(dir.path().join("trusted_root.json"), b"{}").unwrap();
    assert!(run(&mirror, &initial(&keys), &cache).await.is_err());
}

#[tokio::test]
async fn a_verification_failure_never_falls_back_to_the_cache() {
    let keys = Keys::new(1);
    let mirror = Mirror::default();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path());
    Publish::new(&keys).to(&mirror);
    run(&mirror, &initial(&keys), &cache).await.unwrap();
    let mut publish = Publish::new(&keys);
    publish.timestamp = 2;
    publish.timestamp_expires = PAST;
    publish.to(&mirror);
    let err = run(&mirror, &initial(&keys), &cache).await.unwrap_err();
    assert!(err.contains("expired"), "{err}");
}

#[tokio::test]
async fn an_unwritable_cache_directory_keeps_everything_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let cache = Cache::open(&file.join("below"));
    assert!(cache.dir().is_none());
    let keys = Keys::new(1);
    let mirror = Mirror::default();
    Publish::new(&keys).to(&mirror);
    assert!(run(&mirror, &initial(&keys), &cache).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn the_shared_root_loads_once_and_retries_a_failure_after_a_minute() {
    let keys = Keys::new(1);
    let mirror = Mirror::default();
    mirror.down.store(true, std::sync::atomic::Ordering::SeqCst);
    Publish::new(&keys).to(&mirror);
    let shared = SigstoreRoot::with_fetcher(
        mirror,
        "https://user:secret@tuf.example/?token=x",
        initial(&keys),
        Cache::none(),
    );
    let err = shared.get().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to get the Sigstore trusted root through TUF from https://tuf.example: failed \
         to fetch 2.root.json: connection refused"
    );
    let requests = shared.fetcher.requests();
    tokio::time::advance(std::time::Duration::from_secs(59)).await;
    assert_eq!(shared.get().await.unwrap_err().to_string(), err.to_string());
    assert_eq!(shared.fetcher.requests(), requests);
    assert_eq!(shared.loads(), 1);

    shared
        .fetcher
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::advance(std::time::Duration::from_secs(2)).await;
    let (a, b) = tokio::join!(shared.get(), shared.get());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(a.digest, <[u8; 32]>::from(Sha256::digest(TARGET)));
    assert_eq!(shared.loads(), 2);
    shared.get().await.unwrap();
    assert_eq!(shared.loads(), 2);
}

use std::sync::Arc;

mod properties {
    use proptest::prelude::*;

    use super::super::metadata::{self, MetaList, Root, Targets};
    use crate::mutation::{config, mutated_bytes};

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn mutated_metadata_never_panics(bytes in mutated_bytes(vec![
            super::super::PUBLIC_GOOD_ROOT.to_vec(),
            br#"{"signatures":[{"keyid":"ab","sig":"00"}],"signed":{"_type":"timestamp","version":1,"expires":"2100-01-01T00:00:00Z","meta":{"snapshot.json":{"version":1,"length":2,"hashes":{"sha256":"00"}}}}}"#.to_vec(),
            br#"{"signatures":[],"signed":{"_type":"targets","version":1,"expires":"x","targets":{"trusted_root.json":{"length":1,"hashes":{"sha512":"00"}}}}}"#.to_vec(),
        ])) {
            if let Ok(root) = metadata::parse::<Root>("root", &bytes) {
                let _ = root.verify_by("root", &root.signed, "root");
            }
            let _ = metadata::parse::<MetaList>("timestamp", &bytes);
            let _ = metadata::parse::<Targets>("targets", &bytes);
        }
    }
}
