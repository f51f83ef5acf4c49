//! Publishes the core's events: as Kubernetes events (`v1` Events, source component
//! `source-controller`, the event's metadata as annotations, as Flux's recorder writes them), and,
//! for non-trace events, as Flux event JSON posted to notification-controller when
//! `--events-addr` is set. Best effort: a failure is logged and never fails a reconcile.
//!
//! Like client-go's recorder, a repeat of the same event for the same object patches the count
//! and last timestamp of the Event already written instead of creating another one, and a
//! per-object token bucket (burst 25, one more every 5 minutes) drops floods.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event as KubeEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::api::EVENT_ANNOTATION_PREFIX;
use crate::api::v1::OciRepository;
use crate::core::events::{Event, Severity};
use crate::core::message;

/// The reporting controller name Flux's consumers expect.
pub const REPORTING_CONTROLLER: &str = "source-controller";

// Kept as events.k8s.io/v1 limits its note, so that both API views show the whole text.
const MAX_NOTE_BYTES: usize = 1024;
// client-go's LRU of recent events.
const CACHE_SIZE: usize = 4096;
// client-go's spam filter: 25 events at once per object, then one every 5 minutes.
const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL: Duration = Duration::from_secs(300);

/// Identity of an event for deduplication: the object and everything that is shown.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    namespace: String,
    name: String,
    uid: String,
    type_: &'static str,
    reason: String,
    message: String,
}

/// An Event already written, and how often.
#[derive(Clone, Debug)]
struct Written {
    name: String,
    count: i32,
}

/// Recent events and per-object token buckets, bounded. A remembered event's key is held once,
/// shared by the map and the eviction order; an object's bucket is keyed by a keyed hash of its
/// namespace, name and UID, so that the buckets of 10,000 objects cost no copies of their names.
#[derive(Default)]
struct Memory {
    written: HashMap<Arc<Key>, Written>,
    order: VecDeque<Arc<Key>>,
    buckets: HashMap<u64, (f64, Instant)>,
    // Random keys: object names cannot be chosen to share another object's bucket.
    hasher: RandomState,
}

impl Memory {
    /// Takes a token for the object of `key` at `now`; false when the bucket is empty.
    fn allow(&mut self, key: &Key, now: Instant) -> bool {
        if self.buckets.len() >= CACHE_SIZE {
            self.buckets
                .retain(|_, (tokens, at)| *tokens + refill(*at, now) < SPAM_BURST);
        }
        let object = self.hasher.hash_one((&key.namespace, &key.name, &key.uid));
        let (tokens, at) = self.buckets.entry(object).or_insert((SPAM_BURST, now));
        *tokens = (*tokens + refill(*at, now)).min(SPAM_BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn remember(&mut self, key: Key, written: Written) {
        if let Some(known) = self.written.get_mut(&key) {
            *known = written;
            return;
        }
        let key = Arc::new(key);
        self.order.push_back(key.clone());
        while self.order.len() > CACHE_SIZE {
            if let Some(old) = self.order.pop_front() {
                self.written.remove(&old);
            }
        }
        self.written.insert(key, written);
    }
}

fn refill(since: Instant, now: Instant) -> f64 {
    now.saturating_duration_since(since).as_secs_f64() / SPAM_REFILL.as_secs_f64()
}

/// Sends events for objects.
pub struct EventPublisher {
    client: Client,
    webhook: Option<(reqwest::Client, String)>,
    instance: String,
    memory: Mutex<Memory>,
}

impl EventPublisher {
    /// A publisher recording through `client` as `instance` (the pod name), also posting to
    /// `events_addr` when it is not empty.
    pub fn new(client: Client, events_addr: &str, instance: &str) -> EventPublisher {
        let webhook = (!events_addr.is_empty()).then(|| {
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(15))
                .build()
                .unwrap_or_default();
            (http, events_addr.to_string())
        });
        EventPublisher {
            client,
            webhook,
            instance: instance.to_string(),
            memory: Mutex::new(Memory::default()),
        }
    }

    /// Records `event` for `obj`.
    pub async fn publish(&self, obj: &OciRepository, event: &Event) {
        if let Err(e) = self.record(obj, event).await {
            tracing::warn!(
                name = %obj.name_any(),
                namespace = obj.namespace().unwrap_or_default(),
                reason = %event.reason,
                error = %message::render(&e),
                "failed to record event"
            );
        }
        if event.severity == Severity::Trace {
            return;
        }
        if let Some((http, url)) = &self.webhook {
            let body = webhook_payload(obj, event, Timestamp::now(), &self.instance);
            let sent = http.post(url).json(&body).send().await;
            if let Err(e) = sent.and_then(|r| r.error_for_status()) {
                tracing::warn!(
                    name = %obj.name_any(),
                    reason = %event.reason,
                    error = %message::render(&e),
                    "failed to forward event to notification-controller"
                );
            }
        }
    }

    /// Writes the Kubernetes Event, or counts a repeat on the one already written.
    async fn record(&self, obj: &OciRepository, event: &Event) -> Result<(), kube::Error> {
        let namespace = obj.namespace().unwrap_or_default();
        let key = Key {
            namespace: namespace.clone(),
            name: obj.name_any(),
            uid: obj.uid().unwrap_or_default(),
            type_: event_type(event.severity),
            reason: event.reason.clone(),
            message: message::truncate(&event.message, MAX_NOTE_BYTES),
        };
        let previous = {
            let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            if !memory.allow(&key, Instant::now()) {
                tracing::debug!(name = %key.name, reason = %key.reason, "event dropped by the spam filter");
                return Ok(());
            }
            memory.written.get(&key).cloned()
        };
        let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), &namespace);
        let now = Time(Timestamp::now());
        if let Some(previous) = previous {
            let count = previous.count.saturating_add(1);
            let patch = json!({"count": count, "lastTimestamp": now});
            match api
                .patch(
                    &previous.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {
                    self.remember(key, previous.name, count);
                    return Ok(());
                }
                // Expired (Events live an hour by default): write a new one.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let kube_event = new_event(obj, event, &key, &self.instance, now);
        let name = kube_event.metadata.name.clone().unwrap_or_default();
        api.create(&PostParams::default(), &kube_event).await?;
        self.remember(key, name, 1);
        Ok(())
    }

    fn remember(&self, key: Key, name: String, count: i32) {
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remember(key, Written { name, count });
    }
}

fn event_type(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "Warning",
        Severity::Info | Severity::Trace => "Normal",
    }
}

/// The `v1` Event for `event` on `obj`, with the event's metadata as annotations.
fn new_event(
    obj: &OciRepository,
    event: &Event,
    key: &Key,
    instance: &str,
    now: Time,
) -> KubeEvent {
    let nanos = now.0.as_nanosecond();
    KubeEvent {
        metadata: ObjectMeta {
            // client-go's naming: the object's name and the time in hex nanoseconds.
            name: Some(format!("{}.{:x}", key.name, nanos)),
            namespace: Some(key.namespace.clone()),
            annotations: (!event.metadata.is_empty()).then(|| event.metadata.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(OciRepository::api_version(&()).to_string()),
            kind: Some(OciRepository::kind(&()).to_string()),
            name: Some(key.name.clone()),
            namespace: Some(key.namespace.clone()),
            uid: obj.uid(),
            resource_version: obj.resource_version(),
            field_path: None,
        },
        type_: Some(key.type_.to_string()),
        reason: Some(key.reason.clone()),
        message: Some(key.message.clone()),
        source: Some(EventSource {
            component: Some(REPORTING_CONTROLLER.to_string()),
            host: None,
        }),
        reporting_component: Some(REPORTING_CONTROLLER.to_string()),
        reporting_instance: Some(instance.to_string()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..KubeEvent::default()
    }
}

/// The Flux event (`event.toolkit.fluxcd.io`) posted to notification-controller: the core's
/// metadata plus the object's `event.toolkit.fluxcd.io/` annotations (keys kept whole; the
/// receiver strips the prefix).
pub fn webhook_payload(
    obj: &OciRepository,
    event: &Event,
    now: Timestamp,
    instance: &str,
) -> Value {
    let mut metadata: BTreeMap<String, String> = obj
        .annotations()
        .iter()
        .filter(|(k, _)| k.starts_with(EVENT_ANNOTATION_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    metadata.extend(event.metadata.clone());
    let severity = match event.severity {
        Severity::Error => "error",
        Severity::Info | Severity::Trace => "info",
    };
    json!({
        "involvedObject": {
            "kind": OciRepository::kind(&()),
            "namespace": obj.namespace(),
            "name": obj.name_any(),
            "uid": obj.uid(),
            "apiVersion": OciRepository::api_version(&()),
            "resourceVersion": obj.resource_version(),
        },
        "severity": severity,
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "message": event.message,
        "reason": event.reason,
        "metadata": metadata,
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1::OciRepositorySpec;

    fn key(name: &str, message: &str) -> Key {
        Key {
            namespace: "apps".into(),
            name: name.into(),
            uid: "u".into(),
            type_: "Normal",
            reason: "NewArtifact".into(),
            message: message.into(),
        }
    }

    #[test]
    fn the_spam_filter_allows_a_burst_of_25_per_object_then_one_per_5_minutes() {
        let mut m = Memory::default();
        let t0 = Instant::now();
        let a = key("a", "x");
        for i in 0..25 {
            assert!(m.allow(&a, t0), "event {i} of the burst");
        }
        assert!(!m.allow(&a, t0), "26th at once is dropped");
        assert!(m.allow(&key("b", "x"), t0), "buckets are per object");
        assert!(!m.allow(&a, t0 + Duration::from_secs(299)));
        assert!(m.allow(&a, t0 + Duration::from_secs(301)), "refilled");
        assert!(!m.allow(&a, t0 + Duration::from_secs(302)));
    }

    #[test]
    fn remembered_events_are_bounded_oldest_first() {
        let mut m = Memory::default();
        for i in 0..CACHE_SIZE + 10 {
            m.remember(
                key("a", &i.to_string()),
                Written {
                    name: format!("a.{i}"),
                    count: 1,
                },
            );
        }
        assert_eq!(m.written.len(), CACHE_SIZE);
        assert!(!m.written.contains_key(&key("a", "0")));
        assert!(
            m.written
                .contains_key(&key("a", &(CACHE_SIZE + 9).to_string()))
        );
        m.remember(
            key("a", "20"),
            Written {
                name: "a.20".into(),
                count: 2,
            },
        );
        assert_eq!(m.order.len(), CACHE_SIZE, "a repeat is not queued twice");
    }

    #[test]
    fn the_kubernetes_event_carries_the_metadata_as_annotations() {
        let spec: OciRepositorySpec =
            serde_json::from_value(json!({"url": "oci://r/a", "interval": "1m"})).unwrap();
        let mut obj = OciRepository::new("podinfo", spec);
        obj.metadata.namespace = Some("apps".into());
        obj.metadata.uid = Some("uid-1".into());
        let event = Event {
            severity: Severity::Info,
            reason: "NewArtifact".into(),
            message: "stored artifact".into(),
            metadata: BTreeMap::from([(
                "source.toolkit.fluxcd.io/revision".to_string(),
                "latest@sha256:ab".to_string(),
            )]),
        };
        let now = Time("2026-01-02T03:04:05Z".parse().unwrap());
        let k = Key {
            uid: "uid-1".into(),
            ..key("podinfo", "stored artifact")
        };
        let e = new_event(&obj, &event, &k, "pod-1", now);
        assert_eq!(e.metadata.name.as_deref(), Some("podinfo.1886caf21c963200"));
        assert_eq!(
            e.metadata.annotations.unwrap()["source.toolkit.fluxcd.io/revision"],
            "latest@sha256:ab"
        );
        assert_eq!(e.involved_object.kind.as_deref(), Some("OCIRepository"));
        assert_eq!(e.involved_object.uid.as_deref(), Some("uid-1"));
        assert_eq!(
            e.source.and_then(|s| s.component).as_deref(),
            Some("source-controller")
        );
        assert_eq!(e.count, Some(1));
        assert_eq!(e.type_.as_deref(), Some("Normal"));
    }

    #[test]
    fn the_webhook_payload_is_a_flux_event() {
        let spec: OciRepositorySpec =
            serde_json::from_value(json!({"url": "oci://r/a", "interval": "1m"})).unwrap();
        let mut obj = OciRepository::new("podinfo", spec);
        obj.metadata.namespace = Some("apps".into());
        obj.metadata.uid = Some("uid-1".into());
        obj.metadata.annotations = Some(BTreeMap::from([
            (
                "event.toolkit.fluxcd.io/env".to_string(),
                "prod".to_string(),
            ),
            ("other/ignored".to_string(), "x".to_string()),
        ]));
        let event = Event {
            severity: Severity::Info,
            reason: "NewArtifact".into(),
            message: "stored artifact with revision 'x' from 'oci://r/a'".into(),
            metadata: BTreeMap::from([(
                "source.toolkit.fluxcd.io/revision".to_string(),
                "x".to_string(),
            )]),
        };
        let now: Timestamp = "2026-01-02T03:04:05.678Z".parse().unwrap();
        let body = webhook_payload(&obj, &event, now, "pod-1");
        assert_eq!(body["involvedObject"]["kind"], "OCIRepository");
        assert_eq!(
            body["involvedObject"]["apiVersion"],
            "source.toolkit.fluxcd.io/v1"
        );
        assert_eq!(body["involvedObject"]["namespace"], "apps");
        assert_eq!(body["severity"], "info");
        assert_eq!(body["timestamp"], "2026-01-02T03:04:05Z");
        assert_eq!(body["reason"], "NewArtifact");
        assert_eq!(body["reportingController"], "source-controller");
        assert_eq!(body["metadata"]["event.toolkit.fluxcd.io/env"], "prod");
        assert_eq!(body["metadata"]["source.toolkit.fluxcd.io/revision"], "x");
        assert!(body["metadata"].get("other/ignored").is_none());
        let warning = Event {
            severity: Severity::Error,
            ..event
        };
        assert_eq!(
            webhook_payload(&obj, &warning, now, "p")["severity"],
            "error"
        );
    }
}
