//! Push notifications from registries: the receiver endpoint (`--receiver-addr`, off by
//! default) that turns a push into an immediate reconcile of the objects that follow the
//! pushed tag, instead of waiting for their interval (a difference from Flux, whose
//! source-controller only polls; Flux's notification-controller Receivers do this for some
//! webhook formats, but not for registries' own notifications).
//!
//! Three paths, one per format ([`payload`]): `POST /hook/distribution` (CNCF distribution's
//! notification envelopes, as `docker-registry` sends them), `POST /hook/harbor` (Harbor
//! webhooks) and `POST /hook/cloudevents` (CloudEvents 1.0, structured or binary).
//!
//! # Authentication
//!
//! One shared secret, read from `--receiver-token-file` on every request (a mounted Secret can
//! be rotated in place). A notification is authentic when it carries either
//! `X-Signature: sha256=<hex HMAC-SHA256 of the body>` (or `sha512=`), as Flux's
//! `generic-hmac` Receiver expects, or the secret itself in `Authorization` (`Bearer <secret>`
//! or the bare secret, as Harbor's "auth header" sends what it is given), for senders that
//! cannot sign, such as distribution (its endpoint `headers`). Comparisons are constant-time.
//! The secret never appears in logs or responses.
//!
//! # Replays
//!
//! Every event is identified (the sender's event ID, or the body's digest for Harbor, whose
//! payloads carry none) and remembered; an event seen before is ignored, as is one older than
//! `--receiver-max-event-age` (default 5m) or more than a minute in the future. A notification
//! with nothing left is refused with `409 Conflict`, except distribution's, answered `200`
//! because distribution redelivers a notification until it is acknowledged and would otherwise
//! stall its queue behind a redelivery it believes lost. Either way nothing is reconciled and
//! the log says why.
//!
//! # What is reconciled
//!
//! Each push is matched against the watched objects ([`matching`]), and each match gets Flux's
//! `reconcile.fluxcd.io/requestedAt` annotation set to now, as `flux reconcile source oci`
//! does: the reconcile that follows asks the registry afresh (never a shared answer) and
//! reports the annotation in `status.lastHandledReconcileAt`.

pub mod matching;
pub mod payload;

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::{constant_time, hmac};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use crate::api::v1::OciRepository;
use payload::{Event, Push};

/// The largest notification accepted.
pub const MAX_BODY: usize = 1 << 20;

/// How many event identities are remembered for replay protection; the oldest is forgotten
/// first.
pub const REMEMBERED_EVENTS: usize = 16_384;

/// How far in the future an event's time may be (clock skew between sender and receiver).
const MAX_SKEW: SignedDuration = SignedDuration::from_secs(60);

/// The objects the receiver acts on.
pub trait Objects: Send + Sync + 'static {
    /// The objects watched now.
    fn list(&self) -> Vec<Arc<OciRepository>>;

    /// Asks for a reconcile of `obj` now, with `requestedAt` set to `at`.
    fn request(
        &self,
        obj: &OciRepository,
        at: String,
    ) -> impl Future<Output = Result<(), String>> + Send + 'static;
}

/// The receiver's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file holding the shared secret.
    pub token_file: PathBuf,
    /// Events older than this are ignored.
    pub max_event_age: Duration,
}

/// The receiver endpoint's state.
pub struct Receiver<O> {
    config: Config,
    objects: O,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// Remembers `id`; false when it was remembered already.
    fn remember(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        while self.ids.len() >= REMEMBERED_EVENTS {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.ids.remove(&oldest);
        }
        self.ids.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }
}

/// The notification formats, one path each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// CNCF distribution's envelopes.
    Distribution,
    /// Harbor webhooks.
    Harbor,
    /// CloudEvents 1.0.
    CloudEvents,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Distribution => "distribution",
            Format::Harbor => "harbor",
            Format::CloudEvents => "cloudevents",
        }
    }
}

/// What a notification led to: the HTTP status and a short JSON body.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The response status.
    pub status: StatusCode,
    /// The response body.
    pub body: serde_json::Value,
    /// The objects asked to reconcile (namespace, name).
    pub objects: Vec<(String, String)>,
}

fn refused(status: StatusCode, reason: &str) -> Outcome {
    Outcome {
        status,
        body: serde_json::json!({ "error": reason }),
        objects: Vec::new(),
    }
}

impl<O: Objects> Receiver<O> {
    /// A receiver acting on `objects`.
    pub fn new(config: Config, objects: O) -> Receiver<O> {
        Receiver {
            config,
            objects,
            seen: Mutex::default(),
        }
    }

    /// Authenticates, parses and deduplicates one notification and asks for the reconciles it
    /// calls for (spawned: the sender gets its answer without waiting for them).
    pub fn handle(
        &self,
        format: Format,
        headers: &HeaderMap,
        body: &[u8],
        now: Timestamp,
    ) -> Outcome {
        let name = format.name();
        let secret = match std::fs::read(&self.config.token_file) {
            // A Secret's file usually ends in a newline.
            Ok(s) => s.trim_ascii().to_vec(),
            Err(e) => {
                tracing::error!(format = name, file = %self.config.token_file.display(), error = %e,
                    "push notification refused: the receiver's token file is unreadable");
                return refused(StatusCode::INTERNAL_SERVER_ERROR, "receiver misconfigured");
            }
        };
        if secret.is_empty() || !authentic(&secret, headers, body) {
            tracing::warn!(
                format = name,
                "push notification refused: missing or invalid signature or token"
            );
            return refused(
                StatusCode::UNAUTHORIZED,
                "missing or invalid signature or token",
            );
        }
        let parsed = match format {
            Format::Distribution => payload::distribution(body),
            Format::Harbor => payload::harbor(body),
            Format::CloudEvents => payload::cloudevent(headers, body),
        };
        let events = match parsed {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(format = name, error = %e, "push notification refused");
                return refused(StatusCode::BAD_REQUEST, &e.to_string());
            }
        };
        let (fresh, ignored) = self.fresh(&events, now);
        if fresh.is_empty() && !ignored.is_empty() {
            tracing::warn!(format = name, reasons = ?ignored, "push notification ignored: replayed or out of date");
            let status = if format == Format::Distribution {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            return Outcome {
                status,
                body: serde_json::json!({ "ignored": ignored }),
                objects: Vec::new(),
            };
        }
        let pushes: Vec<&Push> = fresh.iter().filter_map(|e| e.push.as_ref()).collect();
        let objects = self.objects.list();
        let targets: Vec<Arc<OciRepository>> = objects
            .into_iter()
            .filter(|obj| pushes.iter().any(|p| matching::follows(obj, p)))
            .collect();
        let at = now.to_string();
        let names: Vec<(String, String)> = targets
            .iter()
            .map(|o| (o.namespace().unwrap_or_default(), o.name_any()))
            .collect();
        for push in &pushes {
            tracing::info!(format = name, host = push.host.as_deref().unwrap_or(""),
                repository = %push.repository, tag = push.tag.as_deref().unwrap_or(""),
                objects = targets.iter().filter(|o| matching::follows(o, push)).count(),
                "push notification: reconciling the objects that follow it");
        }
        for obj in &targets {
            let (namespace, obj_name) = (obj.namespace().unwrap_or_default(), obj.name_any());
            let request = self.objects.request(obj, at.clone());
            tokio::spawn(async move {
                if let Err(e) = request.await {
                    tracing::warn!(namespace, name = obj_name, error = %e,
                        "push notification: could not request a reconcile");
                }
            });
        }
        Outcome {
            status: StatusCode::ACCEPTED,
            body: serde_json::json!({
                "events": fresh.len(),
                "ignored": ignored,
                "objects": names.iter().map(|(ns, n)| format!("{ns}/{n}")).collect::<Vec<_>>(),
            }),
            objects: names,
        }
    }

    /// The events not seen before and within their age, remembered from now on; and why the
    /// others were ignored.
    fn fresh<'e>(&self, events: &'e [Event], now: Timestamp) -> (Vec<&'e Event>, Vec<String>) {
        let max_age =
            SignedDuration::try_from(self.config.max_event_age).unwrap_or(SignedDuration::MAX);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (mut fresh, mut ignored) = (Vec::new(), Vec::new());
        for event in events {
            if let Some(time) = event.time {
                let age = now.duration_since(time);
                if age > max_age {
                    ignored.push(format!(
                        "event {} is older than {:?}",
                        event.id, self.config.max_event_age
                    ));
                    continue;
                }
                if age < -MAX_SKEW {
                    ignored.push(format!("event {} is from the future", event.id));
                    continue;
                }
            }
            if !seen.remember(&event.id) {
                ignored.push(format!("event {} was delivered before", event.id));
                continue;
            }
            fresh.push(event);
        }
        (fresh, ignored)
    }
}

/// Whether the request carries a valid HMAC of `body` or the secret itself.
fn authentic(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    if let Some(signature) = headers.get("x-signature").and_then(|v| v.to_str().ok()) {
        let Some((algorithm, hex)) = signature.split_once('=') else {
            return false;
        };
        let algorithm = match algorithm.to_ascii_lowercase().as_str() {
            "sha256" => hmac::HMAC_SHA256,
            "sha512" => hmac::HMAC_SHA512,
            _ => return false,
        };
        let Some(tag) = decode_hex(hex.trim()) else {
            return false;
        };
        return hmac::verify(&hmac::Key::new(algorithm, secret), body, &tag).is_ok();
    }
    let Some(value) = headers.get("authorization").map(|v| v.as_bytes()) else {
        return false;
    };
    let token = value
        .strip_prefix(b"Bearer ")
        .or_else(|| value.strip_prefix(b"bearer "))
        .unwrap_or(value);
    constant_time::verify_slices_are_equal(token, secret).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The receiver's routes: `POST /hook/{distribution,harbor,cloudevents}`.
pub fn router<O: Objects>(receiver: Arc<Receiver<O>>) -> Router {
    let route = |format: Format| {
        post(
            move |State(r): State<Arc<Receiver<O>>>, headers: HeaderMap, body: Bytes| async move {
                let outcome = r.handle(format, &headers, &body, Timestamp::now());
                (outcome.status, axum::Json(outcome.body))
            },
        )
    };
    Router::new()
        .route("/hook/distribution", route(Format::Distribution))
        .route("/hook/harbor", route(Format::Harbor))
        .route("/hook/cloudevents", route(Format::CloudEvents))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret-token";

    /// Objects in memory; records the reconciles asked for.
    #[derive(Default)]
    struct Memory {
        objects: Vec<Arc<OciRepository>>,
    }

    impl Objects for Memory {
        fn list(&self) -> Vec<Arc<OciRepository>> {
            self.objects.clone()
        }

        fn request(
            &self,
            _obj: &OciRepository,
            _at: String,
        ) -> impl Future<Output = Result<(), String>> + Send + 'static {
            std::future::ready(Ok(()))
        }
    }

    fn object(name: &str, url: &str, reference: serde_json::Value) -> Arc<OciRepository> {
        let obj: OciRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"url": url, "interval": "1h", "ref": reference},
        }))
        .unwrap();
        Arc::new(obj)
    }

    fn receiver(dir: &tempfile::TempDir) -> Receiver<Memory> {
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{SECRET}\n")).unwrap();
        Receiver::new(
            Config {
                token_file,
                max_event_age: Duration::from_secs(300),
            },
            Memory {
                objects: vec![
                    object(
                        "v1",
                        "oci://127.0.0.1:5000/team/app",
                        serde_json::json!({"tag": "v1"}),
                    ),
                    object(
                        "v2",
                        "oci://127.0.0.1:5000/team/app",
                        serde_json::json!({"tag": "v2"}),
                    ),
                    object(
                        "other",
                        "oci://127.0.0.1:5001/team/app",
                        serde_json::json!({"tag": "v1"}),
                    ),
                ],
            },
        )
    }

    fn envelope(id: &str, time: &str, tag: &str) -> Vec<u8> {
        serde_json::json!({"events": [{
            "id": id, "timestamp": time, "action": "push",
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "repository": "team/app", "tag": tag},
            "request": {"host": "127.0.0.1:5000"},
        }]})
        .to_string()
        .into_bytes()
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        h
    }

    fn signed(secret: &str, body: &[u8], algorithm: hmac::Algorithm, prefix: &str) -> HeaderMap {
        let tag = hmac::sign(&hmac::Key::new(algorithm, secret.as_bytes()), body);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let mut h = HeaderMap::new();
        h.insert("x-signature", format!("{prefix}={hex}").parse().unwrap());
        h
    }

    const NOW: &str = "2026-12-05T03:30:10Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    #[tokio::test]
    async fn an_authentic_push_reconciles_the_objects_on_that_registry_repository_and_tag() {
        let dir = tempfile::tempdir().unwrap();
        let r = receiver(&dir);
        let body = envelope("e1", "2026-12-05T03:30:00Z", "v1");
        let out = r.handle(Format::Distribution, &bearer(SECRET), &body, now());
        assert_eq!(out.status, StatusCode::ACCEPTED);
        assert_eq!(out.objects, [("default".to_string(), "v1".to_string())]);
        assert_eq!(out.body["objects"], serde_json::json!(["default/v1"]));
    }

    #[tokio::test]
    async fn unsigned_badly_signed_and_wrong_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let r = receiver(&dir);
        let body = envelope("e1", "2026-12-05T03:30:00Z", "v1");
        let mut bare = HeaderMap::new();
        bare.insert("authorization", SECRET.parse().unwrap());
        let tampered = {
            let mut b = body.clone();
            b.push(b' ');
            b
        };
        for (headers, what) in [
            (HeaderMap::new(), "no credentials"),
            (bearer("wrong"), "a wrong token"),
            (bearer(&SECRET[..5]), "a prefix of the token"),
            (
                signed("wrong", &body, hmac::HMAC_SHA256, "sha256"),
                "another key's HMAC",
            ),
            (
                signed(SECRET, &tampered, hmac::HMAC_SHA256, "sha256"),
                "another body's HMAC",
            ),
            (
                signed(SECRET, &body, hmac::HMAC_SHA256, "sha1"),
                "an unsupported algorithm",
            ),
        ] {
            let out = r.handle(Format::Distribution, &headers, &body, now());
            assert_eq!(out.status, StatusCode::UNAUTHORIZED, "{what}");
            assert!(out.objects.is_empty(), "{what}");
            assert!(!out.body.to_string().contains(SECRET), "{what}");
        }
        // Nothing was remembered: the genuine delivery still works, signed or with the token.
        let out = r.handle(
            Format::Distribution,
            &signed(SECRET, &body, hmac::HMAC_SHA512, "sha512"),
            &body,
            now(),
        );
        assert_eq!(out.status, StatusCode::ACCEPTED);
        let out = r.handle(Format::Harbor, &bare, br#"{"type":"PUSH_ARTIFACT","occur_at":1796441405,"event_data":{"resources":[{"tag":"v2","resource_url":"127.0.0.1:5000/team/app:v2"}]}}"#, now());
        assert_eq!(out.status, StatusCode::ACCEPTED);
        assert_eq!(out.objects, [("default".to_string(), "v2".to_string())]);
    }

    #[tokio::test]
    async fn replayed_and_stale_events_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let r = receiver(&dir);
        let body = envelope("e1", "2026-12-05T03:30:00Z", "v1");
        assert_eq!(
            r.handle(Format::Distribution, &bearer(SECRET), &body, now())
                .status,
            StatusCode::ACCEPTED
        );
        // Redelivered: acknowledged (distribution would retry forever) but nothing reconciled.
        let again = r.handle(Format::Distribution, &bearer(SECRET), &body, now());
        assert_eq!(again.status, StatusCode::OK);
        assert!(again.objects.is_empty());
        assert_eq!(again.body["ignored"][0], "event e1 was delivered before");

        let stale = envelope("e2", "2026-12-05T03:20:00Z", "v1");
        let out = r.handle(Format::Distribution, &bearer(SECRET), &stale, now());
        assert!(out.objects.is_empty());
        assert_eq!(out.body["ignored"][0], "event e2 is older than 300s");
        let future = envelope("e3", "2026-12-05T03:35:00Z", "v1");
        let out = r.handle(Format::Distribution, &bearer(SECRET), &future, now());
        assert!(out.objects.is_empty());
        assert_eq!(out.body["ignored"][0], "event e3 is from the future");

        // CloudEvents: a replay is a conflict.
        let ce = br#"{"specversion":"1.0","id":"c1","source":"ci","type":"push","data":{"repository":"127.0.0.1:5000/team/app","tag":"v2"}}"#;
        let headers = signed(SECRET, ce, hmac::HMAC_SHA256, "sha256");
        assert_eq!(
            r.handle(Format::CloudEvents, &headers, ce, now()).status,
            StatusCode::ACCEPTED
        );
        let out = r.handle(Format::CloudEvents, &headers, ce, now());
        assert_eq!(out.status, StatusCode::CONFLICT);
        assert!(out.objects.is_empty());
    }

    #[tokio::test]
    async fn bad_bodies_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let r = receiver(&dir);
        let out = r.handle(Format::Distribution, &bearer(SECRET), b"{}", now());
        assert_eq!(out.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            out.body["error"],
            "invalid distribution notification: missing field `events` at line 1 column 2"
        );
    }

    #[tokio::test]
    async fn a_missing_token_file_refuses_everything() {
        let dir = tempfile::tempdir().unwrap();
        let r = receiver(&dir);
        std::fs::remove_file(dir.path().join("token")).unwrap();
        let body = envelope("e1", "2026-12-05T03:30:00Z", "v1");
        let out = r.handle(Format::Distribution, &bearer(SECRET), &body, now());
        assert_eq!(out.status, StatusCode::INTERNAL_SERVER_ERROR);
        // An empty secret authenticates nobody.
        std::fs::write(dir.path().join("token"), "\n").unwrap();
        let out = r.handle(Format::Distribution, &bearer(""), &body, now());
        assert_eq!(out.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn remembered_events_are_bounded() {
        let mut seen = Seen::default();
        for i in 0..REMEMBERED_EVENTS + 10 {
            assert!(seen.remember(&i.to_string()));
        }
        assert_eq!(seen.ids.len(), REMEMBERED_EVENTS);
        assert!(seen.remember("0"), "the oldest was forgotten");
        assert!(!seen.remember(&(REMEMBERED_EVENTS + 9).to_string()));
    }
}
