//! Faults a real registry will not produce, forced with a tiny in-test HTTP/1.1 server: a blob or
//! manifest that lies about its digest or size, a connection reset mid-blob, a stalled body,
//! 429 with `Retry-After`, 5xx then success, a `HEAD` without `Docker-Content-Digest`, a revoked
//! bearer token, a redirect to another origin, and `Link` pagination of tag lists (which neither
//! test-bed registry implements).
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::fake_registry::{Fake, Reply, ok, status};

use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ocisource::registry::manifest::OCI_MANIFEST;
use ocisource::registry::{
    Client, Credential, Descriptor, Digest, Error, Repository, RetryPolicy, TransportConfig,
};

/// Fast retries so the tests don't wait for the production backoff.
fn quick() -> TransportConfig {
    TransportConfig {
        retry: RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(10),
            factor: 2,
            max_retry_after: Duration::from_secs(10),
        },
        ..TransportConfig::default()
    }
}

fn descriptor(data: &[u8]) -> Descriptor {
    Descriptor {
        media_type: "application/octet-stream".into(),
        digest: Digest::sha256_of(data),
        size: data.len() as u64,
        annotations: BTreeMap::new(),
    }
}

async fn drain(client: &Client, repo: &Repository, desc: &Descriptor) -> Result<Vec<u8>, Error> {
    let mut blob = client
        .blob_stream(repo, desc, &Credential::Anonymous)
        .await?;
    let mut out = Vec::new();
    while let Some(chunk) = blob.chunk().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

const CONTENT: &[u8] = b"the real content of the layer, long enough to be cut in half";

/// A registry serving one blob with `reply` and `/v2/` with 200.
async fn blob_server(reply: impl Fn() -> Reply + Send + Sync + 'static) -> Fake {
    Fake::start(move |req| {
        if req.path == "/v2/" {
            ok(&[], b"")
        } else if req.path.contains("/blobs/") {
            reply()
        } else {
            status(404, &[], b"")
        }
    })
    .await
}

#[tokio::test]
async fn a_blob_that_lies_about_its_digest_fails_at_the_end() {
    let mut lie = CONTENT.to_vec();
    lie[0] ^= 0xff;
    let fake = blob_server(move || ok(&[], &lie)).await;
    let client = Client::new(&quick()).unwrap();
    let repo = fake.repo("app");
    let desc = descriptor(CONTENT);
    match drain(&client, &repo, &desc).await {
        Err(e @ Error::DigestMismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("digest mismatch"), "{msg}");
            assert!(msg.contains(&desc.digest.to_string()), "{msg}");
        }
        other => panic!("{other:?}"),
    }

    // The blocking reader reports the same category through io::Error.
    let blob = client
        .blob_stream(&repo, &desc, &Credential::Anonymous)
        .await
        .unwrap();
    let mut reader = blob.into_reader().unwrap();
    let err = tokio::task::spawn_blocking(move || {
        let mut v = Vec::new();
        reader.read_to_end(&mut v).expect_err("corrupt blob")
    })
    .await
    .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(matches!(
        Error::from_io(&err),
        Some(Error::DigestMismatch { .. })
    ));
}

#[tokio::test]
async fn a_blob_shorter_or_longer_than_its_descriptor_fails() {
    // Announced and sent shorter: refused before reading.
    let fake = blob_server(|| ok(&[], &CONTENT[..10])).await;
    let client = Client::new(&quick()).unwrap();
    match drain(&client, &fake.repo("app"), &descriptor(CONTENT)).await {
        Err(e @ Error::DigestMismatch { .. }) => {
            assert!(e.to_string().contains("size mismatch"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // Longer than the descriptor.
    let mut long = CONTENT.to_vec();
    long.extend_from_slice(b"extra");
    let fake = blob_server(move || ok(&[], &long)).await;
    match drain(&client, &fake.repo("app"), &descriptor(CONTENT)).await {
        Err(Error::DigestMismatch { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_connection_reset_mid_blob_is_a_network_error_not_an_end() {
    let fake = blob_server(|| Reply::Cut {
        length: CONTENT.len(),
        body: CONTENT[..CONTENT.len() / 2].to_vec(),
    })
    .await;
    let client = Client::new(&quick()).unwrap();
    let repo = fake.repo("app");
    match drain(&client, &repo, &descriptor(CONTENT)).await {
        Err(e @ (Error::Network { .. } | Error::DigestMismatch { .. })) => {
            assert!(
                matches!(e, Error::Network { .. }),
                "a broken body is a network error: {e:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Through the blocking reader: an error, never a clean EOF.
    let blob = client
        .blob_stream(&repo, &descriptor(CONTENT), &Credential::Anonymous)
        .await
        .unwrap();
    let mut reader = blob.into_reader().unwrap();
    let result = tokio::task::spawn_blocking(move || {
        let mut v = Vec::new();
        reader.read_to_end(&mut v)
    })
    .await
    .unwrap();
    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn a_stalled_blob_fails_at_the_deadline() {
    let fake = blob_server(|| Reply::Stall {
        length: CONTENT.len(),
    })
    .await;
    let started = Instant::now();
    let client = Client::new(&quick())
        .unwrap()
        .with_deadline(Some(Instant::now() + Duration::from_millis(800)));
    match drain(&client, &fake.repo("app"), &descriptor(CONTENT)).await {
        Err(e @ Error::Network { .. }) => {
            assert!(e.to_string().contains("deadline exceeded"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_manifest_that_lies_about_its_digest_is_refused() {
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[{{"mediaType":"x","digest":"{}","size":1}}]}}"#,
        Digest::sha256_of(b"x")
    );
    let claimed = Digest::sha256_of(b"some other manifest");
    let body = manifest.clone().into_bytes();
    let fake = Fake::start(move |req| {
        if req.path == "/v2/" {
            ok(&[], b"")
        } else {
            ok(&[("content-type", OCI_MANIFEST)], &body)
        }
    })
    .await;
    let client = Client::new(&quick()).unwrap();
    match client
        .fetch_manifest(&fake.repo("app"), &claimed, &Credential::Anonymous)
        .await
    {
        Err(e @ Error::DigestMismatch { .. }) => {
            assert!(e.to_string().contains("digest mismatch"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // The honest digest works.
    let real = Digest::sha256_of(manifest.as_bytes());
    let m = client
        .fetch_manifest(&fake.repo("app"), &real, &Credential::Anonymous)
        .await
        .unwrap();
    assert_eq!(m.layers.len(), 1);
}

#[tokio::test]
async fn an_index_resolves_to_its_linux_amd64_child() {
    let child = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[],"annotations":{{"which":"amd64"}}}}"#
    );
    let child_digest = Digest::sha256_of(child.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
          {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":2,"platform":{{"os":"linux","architecture":"arm64"}}}},
          {{"mediaType":"{OCI_MANIFEST}","digest":"{child_digest}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        Digest::sha256_of(b"{}"),
        child.len()
    );
    let index_digest = Digest::sha256_of(index.as_bytes());
    let (c, i, cd) = (child.clone(), index.clone(), child_digest.to_string());
    let fake = Fake::start(move |req| {
        if req.path == "/v2/" {
            ok(&[], b"")
        } else if req.path.ends_with(&cd) {
            ok(&[], c.as_bytes())
        } else {
            ok(&[], i.as_bytes())
        }
    })
    .await;
    let client = Client::new(&quick()).unwrap();
    let m = client
        .fetch_manifest(&fake.repo("app"), &index_digest, &Credential::Anonymous)
        .await
        .unwrap();
    assert_eq!(
        m.digest, index_digest,
        "the revision keeps the index digest"
    );
    assert_eq!(m.manifest_digest, child_digest);
    assert_eq!(
        m.annotations.get("which").map(String::as_str),
        Some("amd64")
    );
}

/// A fake registry whose first `failures` requests after the ping get `failure`; later ones get
/// the digest of manifest `m`.
async fn manifest_after(
    failures: usize,
    failure: impl Fn() -> Reply + Send + Sync + 'static,
) -> Fake {
    let hits = AtomicUsize::new(0);
    let digest = Digest::sha256_of(b"m").to_string();
    Fake::start(move |req| {
        if req.path == "/v2/" {
            ok(&[], b"")
        } else if hits.fetch_add(1, Ordering::SeqCst) < failures {
            failure()
        } else {
            ok(&[("docker-content-digest", &digest)], b"")
        }
    })
    .await
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let fake = manifest_after(1, || {
        status(
            429,
            &[("retry-after", "1")],
            br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
        )
    })
    .await;
    let client = Client::new(&quick()).unwrap();
    let started = Instant::now();
    let got = client
        .resolve_digest(&fake.repo("app"), "v1", &Credential::Anonymous)
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(got, Digest::sha256_of(b"m"));
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert!(
        waited < Duration::from_millis(1500),
        "1 s plus at most 10 % jitter: {waited:?}"
    );
    assert_eq!(client.request_counts().retries, 1);
}

#[tokio::test]
async fn retry_after_beyond_the_deadline_fails_at_once() {
    let fake = Fake::start(|req| {
        if req.path == "/v2/" {
            ok(&[], b"")
        } else {
            // An HTTP date a minute ahead.
            let at = std::time::SystemTime::now() + Duration::from_secs(60);
            let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            status(429, &[("retry-after", &http_date(secs))], b"")
        }
    })
    .await;
    let client = Client::new(&quick())
        .unwrap()
        .with_deadline(Some(Instant::now() + Duration::from_secs(5)));
    let started = Instant::now();
    match client
        .resolve_digest(&fake.repo("app"), "v1", &Credential::Anonymous)
        .await
    {
        Err(Error::TooManyRequests {
            retry_after,
            message,
        }) => {
            let ra = retry_after.expect("retry-after kept");
            assert!(ra > Duration::from_secs(50), "{ra:?}");
            assert!(message.contains("429"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    // HEAD then GET, one attempt each: nothing waited.
    assert_eq!(fake.count("HEAD", "/v2/app"), 1);
    assert_eq!(fake.count("GET", "/v2/app"), 1);
}

/// RFC 9110 IMF-fixdate for Unix seconds.
fn http_date(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil from days (Howard Hinnant).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(mo - 1) as usize];
    format!("{wd}, {d:02} {mon} {y} {h:02}:{m:02}:{s:02} GMT")
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let fake = manifest_after(2, || status(503, &[], b"busy")).await;
    let client = Client::new(&quick()).unwrap();
    let got = client
        .resolve_digest(&fake.repo("app"), "v1", &Credential::Anonymous)
        .await
        .unwrap();
    assert_eq!(got, Digest::sha256_of(b"m"));
    let counts = client.request_counts();
    assert_eq!((counts.manifest_head, counts.retries), (3, 2), "{counts:?}");

    // Always 500: after the attempts, a Server error (HEAD, then the GET fallback).
    let fake = Fake::start(|req| {
        if req.path == "/v2/" {
            ok(&[], b"")
        } else {
            status(
                500,
                &[],
                br#"{"errors":[{"code":"UNKNOWN","message":"boom"}]}"#,
            )
        }
    })
    .await;
    match client
        .resolve_digest(&fake.repo("app"), "v1", &Credential::Anonymous)
        .await
    {
        Err(Error::Server { status, message }) => {
            assert_eq!(status, 500);
            assert!(message.contains("UNKNOWN: boom"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.count("HEAD", "/v2/app"), 3);
    assert_eq!(fake.count("GET", "/v2/app"), 3);
}

#[tokio::test]
async fn a_head_without_digest_header_falls_back_to_get() {
    let body = br#"{"schemaVersion":2,"layers":[]}"#;
    let fake = Fake::start(move |req| {
        if req.path == "/v2/" {
            ok(&[], b"")
        } else {
            ok(&[("content-type", OCI_MANIFEST)], body)
        }
    })
    .await;
    let client = Client::new(&quick()).unwrap();
    let got = client
        .resolve_digest(&fake.repo("app"), "v1", &Credential::Anonymous)
        .await
        .unwrap();
    assert_eq!(got, Digest::sha256_of(body));
    assert_eq!(fake.count("HEAD", "/v2/app/manifests/v1"), 1);
    assert_eq!(fake.count("GET", "/v2/app/manifests/v1"), 1);
    // The manifest request carried the full Accept list.
    let accept = fake.requests()[1..]
        .iter()
        .find(|r| r.method == "HEAD")
        .and_then(|r| r.headers.get("accept").cloned())
        .unwrap_or_default();
    for t in [
        OCI_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ] {
        assert!(accept.contains(t), "{accept}");
    }
}

/// A bearer registry whose token server counts issues; the registry revokes the first token.
#[tokio::test]
async fn a_revoked_token_is_renewed_once() {
    let issued = Arc::new(AtomicUsize::new(0));
    let i = Arc::clone(&issued);
    let digest = Digest::sha256_of(b"m").to_string();
    let want = digest.clone();
    let fake_addr: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let addr = Arc::clone(&fake_addr);
    let fake = Fake::start(move |req| {
        let realm = format!("http://{}/token", addr.lock().unwrap());
        let challenge = format!(r#"Bearer realm="{realm}",service="fake""#);
        if req.path.starts_with("/token") {
            let n = i.fetch_add(1, Ordering::SeqCst) + 1;
            assert!(
                req.path.contains("scope=repository%3Aapp%3Apull"),
                "{}",
                req.path
            );
            assert!(req.path.contains("service=fake"), "{}", req.path);
            assert_eq!(
                req.headers.get("authorization").map(String::as_str),
                Some("Basic dTpw"),
                "basic credentials at the token server"
            );
            return ok(
                &[("content-type", "application/json")],
                format!(r#"{{"token":"t{n}","expires_in":300}}"#).as_bytes(),
            );
        }
        let auth = req
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        if req.path == "/v2/" && auth.is_empty() {
            return status(401, &[("www-authenticate", &challenge)], b"");
        }
        // Only the second token is accepted.
        if auth != "Bearer t2" {
            return status(
                401,
                &[("www-authenticate", &challenge)],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            );
        }
        ok(&[("docker-content-digest", &digest)], b"m")
    })
    .await;
    *fake_addr.lock().unwrap() = fake.host();
    let cred = Credential::Basic {
        username: "u".into(),
        password: "p".into(),
    };
    let client = Client::new(&quick()).unwrap();
    let repo = fake.repo("app");

    // First call: fresh token t1 refused (not from the cache, so no renewal), HEAD fails, the GET
    // fallback uses the cached t1, is refused, renews to t2 and succeeds.
    let got = client.resolve_digest(&repo, "v1", &cred).await.unwrap();
    assert_eq!(got.to_string(), want);
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    // Now t2 is cached: one HEAD, no token.
    let before = client.request_counts();
    client.resolve_digest(&repo, "v1", &cred).await.unwrap();
    let delta = client.request_counts() - before;
    assert_eq!((delta.manifest_head, delta.total()), (1, 1), "{delta:?}");
    assert_eq!(issued.load(Ordering::SeqCst), 2);
}

/// Blob redirects are followed, and credentials do not follow them to another origin.
#[tokio::test]
async fn blob_redirects_are_followed_without_credentials() {
    let storage = Fake::start(|_| ok(&[], CONTENT)).await;
    let target = format!("http://{}/storage/blob?sig=abc", storage.host());
    let fake = Fake::start(move |req| {
        if req.path == "/v2/" {
            status(401, &[("www-authenticate", r#"Basic realm="fake""#)], b"")
        } else {
            status(307, &[("location", &target)], b"")
        }
    })
    .await;
    let client = Client::new(&quick()).unwrap();
    let cred = Credential::Basic {
        username: "u".into(),
        password: "p".into(),
    };
    let desc = descriptor(CONTENT);
    let mut blob = client
        .blob_stream(&fake.repo("app"), &desc, &cred)
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(c) = blob.chunk().await {
        out.extend_from_slice(&c.unwrap());
    }
    assert_eq!(out, CONTENT);
    let registry_side = fake.requests();
    assert!(
        registry_side.iter().any(|r| r.path.contains("/blobs/")
            && r.headers.get("authorization").map(String::as_str) == Some("Basic dTpw")),
        "{registry_side:?}"
    );
    let storage_side = storage.requests();
    assert_eq!(storage_side.len(), 1);
    assert!(
        !storage_side[0].headers.contains_key("authorization"),
        "{storage_side:?}"
    );
    assert!(storage_side[0].headers["user-agent"].starts_with("flux/v2"));
}

/// Messages never carry credentials or query strings.
#[tokio::test]
async fn error_messages_carry_no_secrets() {
    let fake = Fake::start(|req| {
        if req.path == "/v2/" {
            status(
                401,
                &[(
                    "www-authenticate",
                    r#"Bearer realm="http://127.0.0.1:1/token?secret=hunter2",service="s""#,
                )],
                b"",
            )
        } else {
            status(404, &[], b"")
        }
    })
    .await;
    let client = Client::new(&TransportConfig {
        retry: RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        },
        ..TransportConfig::default()
    })
    .unwrap();
    let cred = Credential::Basic {
        username: "u".into(),
        password: "hunter2".into(),
    };
    let err = client
        .resolve_digest(&fake.repo("app"), "v1", &cred)
        .await
        .expect_err("token server unreachable");
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert!(!chain.contains("hunter2"), "{chain}");
    assert!(!chain.contains("secret="), "{chain}");
    assert!(
        chain.starts_with(r#"Get "http://127.0.0.1:1/token": dial tcp 127.0.0.1:1: connect:"#),
        "{chain}"
    );
}

/// A registry paginating its tags with `n`, `last` and a relative `Link`, as the distribution
/// spec describes.
#[tokio::test]
async fn tag_listing_follows_link_pagination() {
    let all: Vec<String> = (0..7).map(|i| format!("v{i}")).collect();
    let tags = all.clone();
    let fake = Fake::start(move |req| {
        if req.path == "/v2/" {
            return ok(&[], b"");
        }
        let query: BTreeMap<String, String> = req
            .path
            .split_once('?')
            .map(|(_, q)| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let n: usize = query.get("n").and_then(|n| n.parse().ok()).unwrap_or(1000);
        let start = query
            .get("last")
            .and_then(|l| tags.iter().position(|t| t == l))
            .map_or(0, |i| i + 1);
        let page: Vec<&String> = tags.iter().skip(start).take(n).collect();
        let body = serde_json::json!({"name": "app", "tags": page}).to_string();
        let mut headers = vec![("content-type", "application/json".to_string())];
        if start + n < tags.len()
            && let Some(last) = page.last()
        {
            headers.push((
                "link",
                format!(r#"</v2/app/tags/list?n={n}&last={last}>; rel="next""#),
            ));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ok(&headers, body.as_bytes())
    })
    .await;
    let client = Client::new(&quick()).unwrap();
    let got = client
        .list_tags_paged(&fake.repo("app"), &Credential::Anonymous, 2)
        .await
        .unwrap();
    assert_eq!(got, all);
    assert_eq!(client.request_counts().tags, 4);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path == "/v2/app/tags/list?n=2")
    );
    // Flux's page size.
    let got = client
        .list_tags(&fake.repo("app"), &Credential::Anonymous)
        .await
        .unwrap();
    assert_eq!(got, all);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path == "/v2/app/tags/list?n=1000")
    );
}

/// A `Link` to another origin is refused rather than followed with the registry's credentials.
#[tokio::test]
async fn tag_pagination_never_leaves_the_registry() {
    let fake = Fake::start(|req| {
        if req.path == "/v2/" {
            ok(&[], b"")
        } else {
            ok(
                &[(
                    "link",
                    r#"<http://elsewhere.example/v2/app/tags/list?n=1&last=a>; rel="next""#,
                )],
                br#"{"name":"app","tags":["a"]}"#,
            )
        }
    })
    .await;
    let client = Client::new(&quick()).unwrap();
    match client
        .list_tags_paged(&fake.repo("app"), &Credential::Anonymous, 1)
        .await
    {
        Err(e @ Error::Protocol { .. }) => assert!(e.to_string().contains("pagination"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The production client (1 s / 3 s backoff): a dead endpoint must not meet it.
fn production() -> Client {
    Client::new(&TransportConfig::default()).unwrap()
}

/// Connection refused and an unresolvable host fail at once, with no retry and no wait, so the
/// controller's per-object backoff (not this reconcile's worker) deals with a dead registry. The
/// texts are Go's, both attempts reported where the plain-HTTP fallback is allowed.
#[tokio::test]
async fn a_dead_registry_fails_fast_with_gos_texts() {
    let client = production();
    let port = closed_port();
    let repo = Repository::parse_oci_url(&format!("oci://127.0.0.1:{port}/app")).unwrap();
    let started = Instant::now();
    let err = client
        .resolve_digest(&repo, "v1", &Credential::Anonymous)
        .await
        .expect_err("nothing listens");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "took {took:?}: {err}");
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Get \"https://127.0.0.1:{port}/v2/\": dial tcp 127.0.0.1:{port}: connect: connection refused; \
             Get \"http://127.0.0.1:{port}/v2/\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )
    );
    assert!(std::error::Error::source(&err).is_none(), "{err:?}");
    let counts = client.request_counts();
    assert_eq!((counts.ping, counts.retries), (2, 0), "{counts:?}");

    // The tag listing of a semver object, too.
    let started = Instant::now();
    let err = client
        .list_tags(&repo, &Credential::Anonymous)
        .await
        .expect_err("nothing listens");
    assert!(started.elapsed() < Duration::from_millis(500), "{err}");
    assert!(matches!(err, Error::Network { .. }), "{err:?}");

    // No such host: HTTPS only for a public name, both attempts when `insecure` allows HTTP.
    let repo = Repository::parse_oci_url("oci://no-such-registry.invalid/app").unwrap();
    let started = Instant::now();
    let err = client
        .resolve_digest(&repo, "v1", &Credential::Anonymous)
        .await
        .expect_err("unresolvable");
    assert!(started.elapsed() < Duration::from_millis(500), "{err}");
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Get \"https://no-such-registry.invalid/v2/\": dial tcp: lookup no-such-registry.invalid: no such host"
    );
    let insecure = Client::new(&TransportConfig {
        insecure: true,
        ..TransportConfig::default()
    })
    .unwrap();
    let repo = Repository::parse_oci_url("oci://no-such-registry.invalid:5000/app").unwrap();
    let started = Instant::now();
    let err = insecure
        .list_tags(&repo, &Credential::Anonymous)
        .await
        .expect_err("unresolvable");
    assert!(started.elapsed() < Duration::from_millis(500), "{err}");
    assert_eq!(
        err.to_string(),
        "Get \"https://no-such-registry.invalid:5000/v2/\": dial tcp: lookup no-such-registry.invalid: no such host; \
         Get \"http://no-such-registry.invalid:5000/v2/\": dial tcp: lookup no-such-registry.invalid: no such host"
    );
}

/// A registry that drops a (pooled) connection without answering gets one immediate retry of
/// an idempotent request, and only one.
#[tokio::test]
async fn a_dropped_connection_is_retried_once_at_once() {
    let fake = manifest_after(1, || Reply::Close).await;
    let client = production();
    let started = Instant::now();
    let got = client
        .resolve_digest(&fake.repo("app"), "v1", &Credential::Anonymous)
        .await
        .unwrap();
    assert_eq!(got, Digest::sha256_of(b"m"));
    assert!(started.elapsed() < Duration::from_millis(500));
    let counts = client.request_counts();
    assert_eq!((counts.manifest_head, counts.retries), (2, 1), "{counts:?}");

    // Always dropped: the HEAD and its GET fallback are each tried twice, without waiting.
    let fake = Fake::start(|req| {
        if req.path == "/v2/" {
            ok(&[], b"")
        } else {
            Reply::Close
        }
    })
    .await;
    let started = Instant::now();
    let err = client
        .resolve_digest(&fake.repo("app"), "v1", &Credential::Anonymous)
        .await
        .expect_err("always dropped");
    assert!(started.elapsed() < Duration::from_millis(500), "{err}");
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert_eq!(fake.count("HEAD", "/v2/app/manifests/v1"), 2);
}

/// A registry error's `detail` reads as Flux prints it (Go's `%v` of the decoded JSON).
#[tokio::test]
async fn error_details_read_as_in_flux() {
    let fake = Fake::start(|req| {
        if req.path == "/v2/" {
            ok(&[], b"")
        } else {
            status(
                404,
                &[("content-type", "application/json")],
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"9.9.9"}}]}"#,
            )
        }
    })
    .await;
    let client = Client::new(&quick()).unwrap();
    let err = client
        .resolve_digest(&fake.repo("app"), "9.9.9", &Credential::Anonymous)
        .await
        .expect_err("unknown tag");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "GET http://{}/v2/app/manifests/9.9.9: MANIFEST_UNKNOWN: manifest unknown; map[Tag:9.9.9]",
            fake.host()
        )
    );
}
