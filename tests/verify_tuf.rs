//! Keyless cosign verification with the Sigstore trusted root from a TUF repository (what
//! keyless without `trustedRootSecretRef` uses; the public-good repository by default). The
//! repository is the test bed's `sigstore-testca tuf` (go-tuf v2's metadata package: ECDSA keys,
//! consistent snapshots, a root rotation) serving the private Sigstore's `trusted_root.json`,
//! served over HTTP by a static server that counts requests; the signatures are real ones from
//! the same `sigstore-testca`. The binary runs in standalone mode with `--sigstore-tuf-mirror`,
//! `--sigstore-tuf-root` and `$TUF_ROOT`, and the controller once against the real API server.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::object::{condition as cond, wait_for};
use common::registry::{Flavor, Registry, Security};
use common::standalone::{Run, reconcile_command, run_command};
use common::static_server::StaticServer;
use common::tools::TestCa;
use common::verification::{
    assert_refused, assert_verified, controller_with_verified_object_and_flags, push,
    ready_message, verified_manifest, wait_verified,
};
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

const EMAIL: &str = "dev@example.com";
const ISSUER: &str = "https://issuer.example";
const PREFIX: &str = "failed to verify the signature using provider 'cosign keyless'";

/// An OCIRepository in namespace `apps` following `tag` of `url`, verified keyless with no
/// trusted root Secret: the TUF root.
fn manifest(name: &str, url: &str, tag: &str) -> Value {
    let verify = json!({
        "provider": "cosign",
        "matchOIDCIdentity": [{"issuer": "^https://issuer\\.example$", "subject": "^dev@example\\.com$"}],
    });
    verified_manifest(name, url, tag, "cosign", json!({"verify": verify}))
}

/// A private Sigstore and a signed artifact `app:<tag>` on a new registry: (registry, CA,
/// digest).
fn signed_artifact(work: &Path, tag: &str) -> (Registry, TestCa, String) {
    let reg = Registry::start(Flavor::Referrers, Security::Http);
    let digest = push(&reg, "app", tag, "kind: Tuf\n");
    let ca = TestCa::init(&work.join("ca"));
    ca.sign(&reg, &format!("app@{digest}"), EMAIL, ISSUER, "bundle", &[]);
    (reg, ca, digest)
}

/// `ocisource reconcile` of `m` with the TUF flags for `mirror` (initial root `root`) and
/// `$TUF_ROOT` = `cache`.
fn reconcile_tuf(m: &Value, storage: &Path, mirror: &str, root: &Path, cache: &Path) -> Run {
    let dir = tempfile::tempdir().unwrap();
    run_command(
        reconcile_command(m, storage, dir.path())
            .arg(format!("--sigstore-tuf-mirror={mirror}"))
            .arg("--sigstore-tuf-root")
            .arg(root)
            .env("TUF_ROOT", cache),
    )
}

fn tuf_failure(mirror: &str, cause: &str) -> String {
    format!("{PREFIX}: failed to get the Sigstore trusted root through TUF from {mirror}: {cause}")
}

#[test]
fn standalone_verifies_keyless_against_a_rotated_tuf_root_and_reuses_its_cache_offline() {
    let work = tempfile::tempdir().unwrap();
    let (reg, ca, digest) = signed_artifact(work.path(), "v1");
    let repo = work.path().join("tuf");
    ca.tuf_repository(&repo, &["--rotate"]);
    let mirror = StaticServer::start(&repo);
    let cache = work.path().join("tuf-cache");
    let root = repo.join("1.root.json");
    let m = manifest("tuf", &format!("oci://{}/app", reg.host()), "v1");
    let storage = tempfile::tempdir().unwrap();

    let run = reconcile_tuf(&m, storage.path(), &mirror.url(), &root, &cache);
    assert_verified(&run, &format!("v1@{digest}"));
    // The rotation was followed, then timestamp, snapshot and targets by version, the target
    // by its hash.
    let requests = mirror.requests();
    let sha256 = requests
        .last()
        .and_then(|r| r.strip_prefix("/targets/"))
        .and_then(|r| r.strip_suffix(".trusted_root.json"))
        .unwrap_or_else(|| panic!("{requests:?}"))
        .to_string();
    assert_eq!(
        requests,
        [
            "/2.root.json".to_string(),
            "/3.root.json".into(),
            "/timestamp.json".into(),
            "/1.snapshot.json".into(),
            "/1.targets.json".into(),
            format!("/targets/{sha256}.trusted_root.json"),
        ]
    );
    // The cache holds the rotated root and the target.
    let cached_root: Value =
        serde_json::from_slice(&std::fs::read(cache.join("root.json")).unwrap()).unwrap();
    assert_eq!(cached_root["signed"]["version"], 2);
    assert_eq!(
        std::fs::read_to_string(cache.join("trusted_root.json")).unwrap(),
        ca.trusted_root()
    );

    // A second process with the mirror down verifies with the cached, unexpired metadata.
    mirror.set_down(true);
    let storage = tempfile::tempdir().unwrap();
    let run = reconcile_tuf(&m, storage.path(), &mirror.url(), &root, &cache);
    assert_verified(&run, &format!("v1@{digest}"));
    assert!(
        run.stderr
            .contains("using the cached, unexpired trusted root"),
        "{}",
        run.stderr
    );

    // Without a cache, the mirror being down is a clear failure naming it.
    let empty = work.path().join("empty-cache");
    let storage = tempfile::tempdir().unwrap();
    let run = reconcile_tuf(&m, storage.path(), &mirror.url(), &root, &empty);
    assert_refused(
        &run,
        &tuf_failure(
            &mirror.url(),
            "failed to fetch 2.root.json: HTTP status 503",
        ),
        storage.path(),
    );
}

#[test]
fn a_tampered_target_or_an_expired_timestamp_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let (reg, ca, _) = signed_artifact(work.path(), "v1");
    let m = manifest("tuf", &format!("oci://{}/app", reg.host()), "v1");
    for (flag, cause) in [
        ("--tamper-target", "does not match its metadata: sha"),
        ("--expired-timestamp", "timestamp metadata expired at "),
    ] {
        let repo = work.path().join(flag.trim_start_matches('-'));
        ca.tuf_repository(&repo, &[flag]);
        let mirror = StaticServer::start(&repo);
        let storage = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let run = reconcile_tuf(
            &m,
            storage.path(),
            &mirror.url(),
            &repo.join("1.root.json"),
            cache.path(),
        );
        let message = ready_message(&run);
        assert!(
            message.starts_with(&tuf_failure(&mirror.url(), "")) && message.contains(cause),
            "{flag}: {message}"
        );
        assert_refused(&run, &message, storage.path());
    }
}

#[test]
fn a_root_not_signed_by_the_trusted_root_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let (reg, ca, _) = signed_artifact(work.path(), "v1");
    // Two repositories, each with its own keys: the second's root is not ours.
    let ours = work.path().join("ours");
    let theirs = work.path().join("theirs");
    ca.tuf_repository(&ours, &[]);
    ca.tuf_repository(&theirs, &[]);
    let mirror = StaticServer::start(&theirs);
    let storage = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let run = reconcile_tuf(
        &manifest("tuf", &format!("oci://{}/app", reg.host()), "v1"),
        storage.path(),
        &mirror.url(),
        &ours.join("1.root.json"),
        cache.path(),
    );
    assert_refused(
        &run,
        &tuf_failure(
            &mirror.url(),
            "timestamp metadata has 0 valid signatures of the 1 its version 1 root's timestamp \
             role requires",
        ),
        storage.path(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_loads_the_tuf_root_once_and_retries_a_down_mirror_after_a_minute() {
    let work = tempfile::tempdir().unwrap();
    let (reg, ca, digest) = signed_artifact(work.path(), "stable");
    let repo = work.path().join("tuf");
    ca.tuf_repository(&repo, &["--rotate"]);
    let mirror = StaticServer::start(&repo);
    mirror.set_down(true);
    let mirror_flag = format!("--sigstore-tuf-mirror={}", mirror.url());
    let root_flag = format!("--sigstore-tuf-root={}", repo.join("1.root.json").display());
    let cache_flag = format!(
        "--sigstore-tuf-cache={}",
        work.path().join("cache").display()
    );
    let started = Instant::now();
    let (api, _ctl) = controller_with_verified_object_and_flags(
        "verify-tuf",
        ("unused", json!({"x": "y"})),
        &format!("oci://{}/app", reg.host()),
        manifest("app", "", "stable")["spec"]["verify"].clone(),
        &[&mirror_flag, &root_flag, &cache_flag],
    )
    .await;
    let failure = tuf_failure(
        &mirror.url(),
        "failed to fetch 2.root.json: HTTP status 503",
    );
    let obj = wait_for(&api, "app", "TUF failure", |o| {
        cond(o, "SourceVerified").is_some_and(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        cond(&obj, "Ready"),
        Some(("False".into(), "VerificationError".into(), failure))
    );
    // Retries back off from 200 ms to 1 s, yet the mirror is asked once within the minute.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(mirror.requests(), ["/2.root.json"]);

    // Up again: still no request within the minute, then the next load succeeds and the
    // object verifies.
    mirror.set_down(false);
    tokio::time::sleep(Duration::from_secs(45)).await;
    assert_eq!(mirror.requests(), ["/2.root.json"]);
    wait_verified(&api, &format!("stable@{digest}")).await;
    assert!(started.elapsed() >= Duration::from_secs(60));
    let after_load = mirror.requests().len();
    assert_eq!(after_load, 7, "{:?}", mirror.requests());

    // A further reconcile reuses the loaded root.
    let request =
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "again"}}});
    api.patch("app", &PatchParams::default(), &Patch::Merge(&request))
        .await
        .unwrap();
    wait_for(&api, "app", "reconcile handled", |o| {
        o.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("again")
            && cond(o, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(mirror.requests().len(), after_load);
}
