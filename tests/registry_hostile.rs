//! Hostile registries: a registry that names internal addresses (bearer realms, token-server
//! redirects, blob redirects, upload locations) to make the client fetch them, a token server
//! whose answers must not reach status messages, and tag listings that are huge, endless or
//! loop. The address rules are go-containerregistry's (`validateRealmURL`, `checkRedirectSSRF`,
//! `nextLocation`); the memory bound is the shipped Deployment's.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::fake_registry::{Fake, Reply, ok, outbound_ip, status};
use common::object::{OciRepo, json_ready_message as ready_message};
use common::rss::DEPLOYMENT_MEMORY_LIMIT;
use common::standalone::reconcile_measured;
use ocisource::registry::{
    BlobSource, Client, Credential, Descriptor, Digest, Error, TransportConfig,
};
use serde_json::{Value, json};

/// What an internal service would answer; it must never show up anywhere.
const INTERNAL_BODY: &[u8] = b"INTERNAL-SERVICE-ANSWER metadata token 0xdeadbeef";

/// A service on loopback that logs requests and answers [`INTERNAL_BODY`] (with an error
/// status, the answer a message would be most tempted to quote).
async fn internal_service() -> Fake {
    Fake::start(|_| status(404, &[("content-type", "text/plain")], INTERNAL_BODY)).await
}

fn insecure() -> Client {
    Client::new(&TransportConfig {
        insecure: true,
        ..TransportConfig::default()
    })
    .unwrap()
}

fn chain(err: &Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A registry on this machine's outward address whose `/v2/` challenges with `challenge` and
/// whose other paths answer `rest`.
async fn public_registry(
    challenge: String,
    rest: impl Fn(&common::fake_registry::Req) -> Reply + Send + Sync + 'static,
) -> Fake {
    Fake::start_on(&outbound_ip(), move |req| {
        if req.path == "/v2/" && !req.headers.contains_key("authorization") {
            status(401, &[("www-authenticate", &challenge)], b"")
        } else {
            rest(req)
        }
    })
    .await
}

/// An anonymous pull from a registry whose challenge names an internal realm: no request goes
/// there, and nothing of it reaches the message.
#[tokio::test]
async fn an_internal_realm_is_never_requested() {
    let internal = internal_service().await;
    let realm = format!("http://{}/token", internal.host());
    let registry = public_registry(format!(r#"Bearer realm="{realm}",service="s""#), |_| {
        status(404, &[], b"")
    })
    .await;
    for cred in [
        Credential::Anonymous,
        Credential::Basic {
            username: "u".into(),
            password: "p".into(),
        },
    ] {
        let err = insecure()
            .resolve_digest(&registry.repo("app"), "v1", &cred)
            .await
            .expect_err("internal realm");
        let text = chain(&err);
        assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
        assert!(
            text.contains(
                r#"invalid realm in www-authenticate: realm host "127.0.0.1" is a private or link-local address"#
            ),
            "{text}"
        );
        assert!(!text.contains("INTERNAL-SERVICE"), "{text}");
    }
    assert!(internal.requests().is_empty(), "{:?}", internal.requests());
}

/// The same through `ocisource reconcile` of an anonymous object: its status never carries the
/// internal service's answer.
#[tokio::test(flavor = "multi_thread")]
async fn an_anonymous_objects_status_never_carries_an_internal_answer() {
    let internal = internal_service().await;
    let realm = format!("http://{}/token", internal.host());
    let registry = public_registry(format!(r#"Bearer realm="{realm}",service="s""#), |_| {
        status(404, &[], b"")
    })
    .await;
    let host = registry.host();
    let (run, obj) =
        tokio::task::spawn_blocking(move || reconcile_ref(&host, "30s", json!({"tag": "v1"})))
            .await
            .unwrap();
    let message = ready_message(&obj);
    assert!(!run.status.success());
    assert!(
        message.starts_with("failed to determine artifact digest: ")
            && message.contains("invalid realm in www-authenticate"),
        "{message}"
    );
    assert!(!obj.to_string().contains("INTERNAL-SERVICE"), "{obj}");
    assert!(internal.requests().is_empty(), "{:?}", internal.requests());
}

/// An HTTPS registry on 127.0.0.1 (rustls on a thread, a fresh CA) answering every request
/// with 401 and `challenge`; returns its port and the CA's PEM.
fn https_challenger(challenge: String) -> (u16, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use std::io::{BufRead as _, BufReader, Write as _};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let mut tls = BufReader::new(rustls::StreamOwned::new(conn, stream));
            let mut line = String::new();
            while tls.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let answer = format!(
                "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: {challenge}\r\n\
                 content-length: 0\r\nconnection: close\r\n\r\n"
            );
            let mut tls = tls.into_inner();
            let _ = tls.write_all(answer.as_bytes());
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (port, ca_cert.pem())
}

/// An HTTPS registry may not send its credentials to a plain-HTTP realm, even its own kind of
/// address.
#[tokio::test]
async fn a_plain_http_realm_of_an_https_registry_is_refused() {
    let token_server = internal_service().await;
    let realm = format!("http://{}/token", token_server.host());
    let (port, ca) = https_challenger(format!(r#"Bearer realm="{realm}",service="s""#));
    let client = Client::new(&TransportConfig {
        tls: ocisource::registry::TlsMaterial {
            ca_pem: Some(ca.into_bytes()),
            ..Default::default()
        },
        ..TransportConfig::default()
    })
    .unwrap();
    let repo =
        ocisource::registry::Repository::parse_oci_url(&format!("oci://127.0.0.1:{port}/app"))
            .unwrap();
    let err = client
        .resolve_digest(
            &repo,
            "v1",
            &Credential::Basic {
                username: "u".into(),
                password: "p".into(),
            },
        )
        .await
        .expect_err("plain-HTTP realm");
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert!(
        err.to_string().contains(
            r#"invalid realm in www-authenticate: realm scheme "http" not allowed for a secure registry; use https"#
        ),
        "{err}"
    );
    assert!(
        token_server.requests().is_empty(),
        "{:?}",
        token_server.requests()
    );
}

/// A public token server redirecting to an internal address is not followed.
#[tokio::test]
async fn a_token_server_redirect_to_an_internal_address_is_refused() {
    let internal = internal_service().await;
    let target = format!("http://{}/steal", internal.host());
    let token_server = Fake::start_on(&outbound_ip(), move |_| {
        status(302, &[("location", &target)], b"")
    })
    .await;
    let realm = format!("http://{}/token", token_server.host());
    let registry = public_registry(format!(r#"Bearer realm="{realm}",service="s""#), |_| {
        status(404, &[], b"")
    })
    .await;
    let err = insecure()
        .resolve_digest(
            &registry.repo("app"),
            "v1",
            &Credential::Basic {
                username: "u".into(),
                password: "p".into(),
            },
        )
        .await
        .expect_err("redirect to an internal address");
    let text = chain(&err);
    assert!(
        text.contains(&format!(
            r#"refusing token-server redirect to "http://{}/steal": realm host "127.0.0.1""#,
            internal.host()
        )),
        "{text}"
    );
    assert!(token_server.count("GET", "/token") >= 1);
    assert!(internal.requests().is_empty(), "{:?}", internal.requests());
}

/// A token server redirecting to another public origin is followed, without the registry's
/// credentials.
#[tokio::test]
async fn a_token_server_redirect_elsewhere_carries_no_credentials() {
    let ip = outbound_ip();
    let issuer = Fake::start_on(&ip, |_| {
        ok(
            &[("content-type", "application/json")],
            br#"{"token":"t","expires_in":300}"#,
        )
    })
    .await;
    let target = format!("http://{}/issue", issuer.host());
    let token_server =
        Fake::start_on(&ip, move |_| status(307, &[("location", &target)], b"")).await;
    let realm = format!("http://{}/token", token_server.host());
    let digest = Digest::sha256_of(b"m").to_string();
    let registry = public_registry(
        format!(r#"Bearer realm="{realm}",service="s""#),
        move |req| {
            if req.headers.get("authorization").map(String::as_str) == Some("Bearer t") {
                ok(&[("docker-content-digest", &digest)], b"")
            } else {
                status(401, &[], b"")
            }
        },
    )
    .await;
    let got = insecure()
        .resolve_digest(
            &registry.repo("app"),
            "v1",
            &Credential::Basic {
                username: "u".into(),
                password: "p".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(got, Digest::sha256_of(b"m"));
    let first = token_server.requests();
    assert_eq!(
        first[0].headers.get("authorization").map(String::as_str),
        Some("Basic dTpw"),
        "the realm itself gets the credentials"
    );
    let issued = issuer.requests();
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert!(
        issued[0].path.starts_with("/issue") && !issued[0].headers.contains_key("authorization"),
        "{issued:?}"
    );
}

/// A failed token request reports the status and a short error code, never the body.
#[tokio::test]
async fn a_token_servers_answer_never_reaches_the_message() {
    for (code, body, want) in [
        (
            401,
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"INTERNAL-SERVICE-ANSWER","detail":"x"}]}"#
                .as_slice(),
            "UNAUTHORIZED: unexpected status code 401 Unauthorized",
        ),
        (
            400,
            br#"{"error":"invalid_request","error_description":"INTERNAL-SERVICE-ANSWER"}"#,
            "INVALID_REQUEST: unexpected status code 400 Bad Request",
        ),
        (
            500,
            INTERNAL_BODY,
            "unexpected status code 500 Internal Server Error",
        ),
        (
            403,
            br#"{"errors":[{"code":"INTERNAL-SERVICE-ANSWER with spaces"}]}"#,
            "DENIED: unexpected status code 403 Forbidden",
        ),
    ] {
        let token_server = Fake::start(move |_| status(code, &[], body)).await;
        let realm = format!("http://{}/token", token_server.host());
        let registry = Fake::start(move |_| {
            let challenge = format!(r#"Bearer realm="{realm}",service="s""#);
            status(401, &[("www-authenticate", &challenge)], b"")
        })
        .await;
        let err = insecure()
            .resolve_digest(&registry.repo("app"), "v1", &Credential::Anonymous)
            .await
            .expect_err("token refused");
        let text = chain(&err);
        assert_eq!(
            text,
            format!("GET http://{}/token: {want}", token_server.host()),
            "{code}"
        );
    }
}

/// A blob redirect from a public registry to an internal address is refused.
#[tokio::test]
async fn a_blob_redirect_to_an_internal_address_is_refused() {
    let internal = internal_service().await;
    let target = format!("http://{}/latest/meta-data", internal.host());
    let registry = Fake::start_on(&outbound_ip(), move |req| {
        if req.path == "/v2/" {
            ok(&[], b"")
        } else {
            status(307, &[("location", &target)], b"")
        }
    })
    .await;
    let desc = Descriptor {
        media_type: "application/octet-stream".into(),
        digest: Digest::sha256_of(INTERNAL_BODY),
        size: INTERNAL_BODY.len() as u64,
        annotations: Default::default(),
    };
    let err = insecure()
        .blob_stream(&registry.repo("app"), &desc, &Credential::Anonymous)
        .await
        .expect_err("redirect to an internal address");
    let text = chain(&err);
    assert!(
        text.contains("SSRF protection: redirect from") && text.contains("\"127.0.0.1\" denied"),
        "{text}"
    );
    assert!(internal.requests().is_empty(), "{:?}", internal.requests());
}

/// Pushes one blob to a fake registry on `ip` whose upload session answers with `location`.
async fn push_blob_uploading_to(ip: &str, location: String) -> Result<bool, Error> {
    let registry = Fake::start_on(ip, move |req| match req.method.as_str() {
        "GET" if req.path == "/v2/" => ok(&[], b""),
        "POST" => status(202, &[("location", &location)], b""),
        _ => status(404, &[], b""),
    })
    .await;
    let data = b"layer bytes".to_vec();
    insecure()
        .push_blob(
            &registry.repo("app"),
            &Digest::sha256_of(&data),
            data.len() as u64,
            &BlobSource::Bytes(data.into()),
            &Credential::Anonymous,
        )
        .await
}

/// `push`: an upload `Location` on another host with an internal address gets no layer.
#[tokio::test]
async fn an_upload_location_on_an_internal_host_is_refused() {
    let internal = internal_service().await;
    let location = format!("http://{}/upload/1?state=x", internal.host());
    let err = push_blob_uploading_to(&outbound_ip(), location)
        .await
        .expect_err("internal upload location");
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    assert!(
        err.to_string().contains(
            r#"SSRF protection: Location header redirects to private/link-local host "127.0.0.1""#
        ),
        "{err}"
    );
    assert!(internal.requests().is_empty(), "{:?}", internal.requests());

    // The registry's own host (another port, or a relative location) is fine.
    let other = Fake::start(|req| match req.method.as_str() {
        "PUT" => status(201, &[], b""),
        _ => status(404, &[], b""),
    })
    .await;
    let location = format!("http://127.0.0.1:{}/upload/1", other.addr.port());
    let pushed = push_blob_uploading_to("127.0.0.1", location).await.unwrap();
    assert!(pushed);
    assert_eq!(other.count("PUT", "/upload/1"), 1);
}

/// A page of tag list JSON with `tags`.
fn page(tags: impl IntoIterator<Item = String>) -> Vec<u8> {
    let tags: Vec<String> = tags.into_iter().collect();
    serde_json::to_vec(&json!({"name": "app", "tags": tags})).unwrap()
}

/// A registry whose tag list is `pages` (page `i` links to `i + 1`, the last back to `loop_to`
/// if set).
async fn tag_registry(pages: Vec<Vec<u8>>, loop_to: Option<usize>) -> Fake {
    let pages: Arc<Vec<Vec<u8>>> = Arc::new(pages);
    Fake::start(move |req| {
        if req.path == "/v2/" {
            return ok(&[], b"");
        }
        if !req.path.starts_with("/v2/app/tags/list") {
            return status(404, &[], b"");
        }
        let i: usize = req
            .path
            .split_once("page=")
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(0);
        let next = if i + 1 < pages.len() {
            Some(i + 1)
        } else {
            loop_to
        };
        // Page 0 is the first URL the client asks for, so that a loop to it is a revisit.
        let link = next.map(|n| match n {
            0 => r#"</v2/app/tags/list?n=1000>; rel="next""#.to_string(),
            n => format!(r#"</v2/app/tags/list?n=1000&page={n}>; rel="next""#),
        });
        let mut headers = vec![("content-type", "application/json")];
        if let Some(l) = &link {
            headers.push(("link", l.as_str()));
        }
        ok(&headers, &pages[i])
    })
    .await
}

/// Tag listings stop at a revisited page, at the tag count bound and at the byte bound, each
/// with a message naming it.
#[tokio::test]
async fn tag_listings_are_bounded_and_never_loop() {
    let client = insecure();
    let small = |from: usize| page((from..from + 3).map(|i| format!("1.0.{i}")));
    let fake = tag_registry(vec![small(0), small(3)], Some(0)).await;
    let err = client
        .list_tags(&fake.repo("app"), &Credential::Anonymous)
        .await
        .expect_err("A -> B -> A");
    assert!(
        err.to_string()
            .contains("loops back to a page already read"),
        "{err}"
    );
    assert_eq!(fake.count("GET", "/v2/app/tags/list"), 2);

    // 3 pages of 100,000 tags: past the tag bound.
    let many = |p: usize| page((0..100_000).map(|i| format!("{p}.{i}")));
    let fake = tag_registry(vec![many(0), many(1), many(2)], None).await;
    let err = client
        .list_tags(&fake.repo("app"), &Credential::Anonymous)
        .await
        .expect_err("too many tags");
    assert!(
        err.to_string()
            .contains("more than 200000 tags (the limit of one listing)"),
        "{err}"
    );

    // 3 pages of 12 MiB: past the byte bound.
    let big = |p: usize| page((0..100_000).map(|i| format!("{p}.{i}-{}", "x".repeat(110))));
    let fake = tag_registry(vec![big(0), big(1), big(2)], None).await;
    let err = client
        .list_tags(&fake.repo("app"), &Credential::Anonymous)
        .await
        .expect_err("too many bytes");
    assert!(
        err.to_string()
            .contains("tag list larger than 33554432 bytes (the limit of one listing"),
        "{err}"
    );
}

/// Runs `ocisource reconcile` of a semver object against `host` with `timeout`, measured.
fn reconcile_semver(host: &str, timeout: &str) -> (common::rss::Measured, Value) {
    reconcile_ref(host, timeout, json!({"semver": ">= 1.0.0"}))
}

/// Runs `ocisource reconcile` of an object with `reference` against `host`, measured.
fn reconcile_ref(host: &str, timeout: &str, reference: Value) -> (common::rss::Measured, Value) {
    let manifest = OciRepo::new("hostile")
        .namespace("apps")
        .url(format!("oci://{host}/app"))
        .interval("1m")
        .timeout(timeout)
        .insecure()
        .spec("ref", reference)
        .build();
    let store = tempfile::tempdir().unwrap();
    let (m, obj) = reconcile_measured(&manifest, store.path(), &[]);
    assert!(!obj.is_null(), "no object printed; stderr:\n{}", m.stderr);
    (m, obj)
}

const MIB: u64 = 1 << 20;

/// A standalone semver reconcile with `timeout` against a registry serving `pages` (the last
/// linking back to `loop_to`), measured; the fake (for its request counts) and the Ready message.
async fn reconcile_listing(
    label: &str,
    pages: Vec<Vec<u8>>,
    loop_to: Option<usize>,
    timeout: &'static str,
) -> (common::rss::Measured, String, Fake) {
    let fake = tag_registry(pages, loop_to).await;
    let host = fake.host();
    let (m, obj) = tokio::task::spawn_blocking(move || reconcile_semver(&host, timeout))
        .await
        .unwrap();
    let message = ready_message(&obj);
    eprintln!(
        "{label}: peak RSS {} MiB, {:?}: {message}",
        m.peak_rss / MIB,
        m.elapsed
    );
    (m, message, fake)
}

/// Far inside the Deployment's memory limit: under half of it.
fn assert_under_half_the_limit(m: &common::rss::Measured, label: &str) {
    assert!(
        m.peak_rss < DEPLOYMENT_MEMORY_LIMIT / 2,
        "{label}: peak RSS {} MiB",
        m.peak_rss / MIB
    );
}

/// A standalone reconcile against hostile tag listings stays far inside the Deployment's memory
/// limit, fails naming the bound, and a `Link` loop fails at once instead of at the deadline.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_tag_listings_stay_inside_the_memory_limit() {
    // One 20 MiB page of two million short tags: refused at the tag bound, far below the limit
    // (265 MiB before the bound).
    let short = page((0..2_400_000).map(|i| format!("0.0.{i}")));
    assert!(short.len() > 20 * MIB as usize, "{}", short.len());
    let label = "one 20 MiB page of short tags";
    let (single, message, _) = reconcile_listing(label, vec![short], None, "60s").await;
    assert!(message.contains("more than 200000 tags"), "{message}");
    assert_under_half_the_limit(&single, label);

    // One 20 MiB page of 160,000 long (valid, non-matching) tags: inside the bounds, read and
    // matched.
    let long = |p: usize| page((0..160_000).map(|i| format!("0.{p}.{i}-{}", "x".repeat(118))));
    let one = long(0);
    assert!(one.len() > 20 * MIB as usize, "{}", one.len());
    let label = "one 20 MiB page of long tags";
    let (large, message, _) = reconcile_listing(label, vec![one], None, "60s").await;
    assert!(message.contains("no match found for semver"), "{message}");
    assert_under_half_the_limit(&large, label);

    // 16 such pages: refused at the byte bound, one page held at a time.
    let pages: Vec<Vec<u8>> = (0..16).map(long).collect();
    let label = "16 pages of 20 MiB";
    let (many, message, fake) = reconcile_listing(label, pages, None, "60s").await;
    assert!(
        message.contains("tag list larger than 33554432 bytes"),
        "{message}"
    );
    assert_under_half_the_limit(&many, label);
    assert!(fake.count("GET", "/v2/app/tags/list") <= 2);

    // A -> B -> A: fails at once, not at the 30 s deadline.
    let small = |from: usize| page((from..from + 3).map(|i| format!("0.0.{i}")));
    let (looped, message, _) =
        reconcile_listing("Link loop", vec![small(0), small(3)], Some(0), "30s").await;
    assert!(message.contains("loops back"), "{message}");
    assert!(
        looped.elapsed.as_secs_f64() < 0.1 * 30.0,
        "a Link loop took {:?} of a 30 s deadline",
        looped.elapsed
    );
}
