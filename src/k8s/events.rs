//! Publishes the core's events: as Kubernetes events (`events.k8s.io/v1`, reporting controller
//! `source-controller`), and, for non-trace events, as Flux event JSON posted to
//! notification-controller when `--events-addr` is set. Best effort: a failure is logged and never
//! fails a reconcile.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::api::EVENT_ANNOTATION_PREFIX;
use crate::api::v1::OciRepository;
use crate::core::events::{Event, Severity};
use crate::core::message;

/// The reporting controller name Flux's consumers expect.
pub const REPORTING_CONTROLLER: &str = "source-controller";

// events.k8s.io/v1 limits the note to 1 KiB.
const MAX_NOTE_BYTES: usize = 1024;

/// Sends events for objects.
#[derive(Clone)]
pub struct EventPublisher {
    recorder: Recorder,
    webhook: Option<(reqwest::Client, String)>,
    instance: String,
}

impl EventPublisher {
    /// A publisher recording through `client` as `instance` (the pod name), also posting to
    /// `events_addr` when it is not empty.
    pub fn new(client: Client, events_addr: &str, instance: &str) -> EventPublisher {
        let recorder = Recorder::new(
            client,
            Reporter {
                controller: REPORTING_CONTROLLER.to_string(),
                instance: Some(instance.to_string()),
            },
        );
        let webhook = (!events_addr.is_empty()).then(|| {
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(15))
                .build()
                .unwrap_or_default();
            (http, events_addr.to_string())
        });
        EventPublisher {
            recorder,
            webhook,
            instance: instance.to_string(),
        }
    }

    /// Records `event` for `obj`.
    pub async fn publish(&self, obj: &OciRepository, event: &Event) {
        let kube_event = KubeEvent {
            type_: match event.severity {
                Severity::Error => EventType::Warning,
                Severity::Info | Severity::Trace => EventType::Normal,
            },
            reason: event.reason.clone(),
            note: Some(message::truncate(&event.message, MAX_NOTE_BYTES)),
            action: event.reason.clone(),
            secondary: None,
        };
        if let Err(e) = self
            .recorder
            .publish(&kube_event, &obj.object_ref(&()))
            .await
        {
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
