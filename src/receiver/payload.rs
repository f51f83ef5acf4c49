//! The push notifications the receiver understands, parsed into one shape: the pushed
//! repository (with the registry host when the sender names it) and tag, plus the identity and
//! time of each event for replay protection.
//!
//! - CNCF distribution (`docker-registry`, the reference registry, and registries built on it):
//!   an envelope `{"events": [...]}` whose push events carry `target.repository`, `target.tag`
//!   (for a manifest pushed by tag), `request.host`, `id` and `timestamp`.
//! - Harbor webhooks (`PUSH_ARTIFACT`): `event_data.resources[].resource_url`
//!   (`host/project/repo:tag`) and `tag`, `event_data.repository.repo_full_name`, `occur_at`.
//! - CloudEvents 1.0, structured (`application/cloudevents+json`) or binary (`ce-*` headers):
//!   `id`, `source`, `type`, `time`, and a `data` of one of the shapes registries send (the
//!   distribution/ACR shape `target` + `request.host`, the Harbor shape, zot's `name` +
//!   `reference`, or the plain `{"repository": "host/repo", "tag": "..."}`).
//!
//! Events that are not pushes (pulls, deletions, blob uploads) are skipped, not refused.

use axum::http::HeaderMap;
use k8s_openapi::jiff;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// One pushed manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// The registry as the sender names it (`host[:port]`), when it does.
    pub host: Option<String>,
    /// The repository within the registry (`team/app`).
    pub repository: String,
    /// The tag, when the manifest was pushed by tag.
    pub tag: Option<String>,
}

/// One event of a notification: its identity and time (for replay protection) and the push it
/// reports, if it reports one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Unique per event for its sender (an event ID, or a digest of the body when the format
    /// has none).
    pub id: String,
    /// When the sender says it happened, if it says.
    pub time: Option<jiff::Timestamp>,
    /// The push, or `None` for an event that is not one.
    pub push: Option<Push>,
}

/// Why a notification could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The body is not the JSON the format describes.
    #[error("invalid {format} notification: {reason}")]
    Invalid {
        /// The format expected.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(format: &'static str, reason: impl std::fmt::Display) -> Error {
    Error::Invalid {
        format,
        reason: reason.to_string(),
    }
}

/// The events of a CNCF distribution envelope.
///
/// # Errors
/// When the body is not an envelope.
pub fn distribution(body: &[u8]) -> Result<Vec<Event>, Error> {
    const FORMAT: &str = "distribution";
    #[derive(Deserialize)]
    struct Envelope {
        events: Vec<DistributionEvent>,
    }
    #[derive(Deserialize)]
    struct DistributionEvent {
        id: String,
        #[serde(default)]
        timestamp: Option<String>,
        #[serde(default)]
        action: String,
        #[serde(default)]
        target: Target,
        #[serde(default)]
        request: Request,
    }
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| invalid(FORMAT, e))?;
    envelope
        .events
        .into_iter()
        .map(|e| {
            if e.id.is_empty() {
                return Err(invalid(FORMAT, "an event without an id"));
            }
            let time = e
                .timestamp
                .as_deref()
                .map(|t| parse_time(FORMAT, t))
                .transpose()?;
            let push = (e.action == "push")
                .then(|| distribution_push(&e.target, &e.request))
                .flatten();
            Ok(Event {
                id: e.id,
                time,
                push,
            })
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    repository: String,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Request {
    #[serde(default)]
    host: Option<String>,
}

/// A manifest push of the distribution shape; blob uploads (no manifest media type, no tag)
/// are not pushes of anything an object follows.
fn distribution_push(target: &Target, request: &Request) -> Option<Push> {
    if target.repository.is_empty() {
        return None;
    }
    let manifest = target.media_type.contains("manifest") || target.media_type.contains("index");
    if !manifest && target.tag.is_none() {
        return None;
    }
    let host = request
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .or_else(|| target.url.as_deref().and_then(host_of_url));
    Some(Push {
        host,
        repository: target.repository.clone(),
        tag: target.tag.clone().filter(|t| !t.is_empty()),
    })
}

fn host_of_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// The event of a Harbor webhook. Only `PUSH_ARTIFACT` reports pushes; Harbor's payload has no
/// event ID, so the body's digest stands in (its `occur_at` makes each event's body unique).
///
/// # Errors
/// When the body is not a Harbor webhook payload.
pub fn harbor(body: &[u8]) -> Result<Vec<Event>, Error> {
    const FORMAT: &str = "harbor";
    #[derive(Deserialize)]
    struct Payload {
        #[serde(rename = "type")]
        kind: String,
        occur_at: Option<i64>,
        #[serde(default)]
        event_data: Option<serde_json::Value>,
    }
    let payload: Payload = serde_json::from_slice(body).map_err(|e| invalid(FORMAT, e))?;
    let time = payload
        .occur_at
        .map(|s| jiff::Timestamp::from_second(s).map_err(|e| invalid(FORMAT, e)))
        .transpose()?;
    let pushes = if payload.kind == "PUSH_ARTIFACT" {
        let data = payload
            .event_data
            .ok_or_else(|| invalid(FORMAT, "PUSH_ARTIFACT without event_data"))?;
        harbor_pushes(&data)
    } else {
        Vec::new()
    };
    Ok(events_of(body_id(body), time, pushes))
}

/// The pushes of Harbor's `event_data` (also the `data` of its CloudEvents).
fn harbor_pushes(data: &serde_json::Value) -> Vec<Push> {
    let full_name = data
        .pointer("/repository/repo_full_name")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let Some(resources) = data.get("resources").and_then(|r| r.as_array()) else {
        return Vec::new();
    };
    resources
        .iter()
        .filter_map(|r| {
            let tag = r
                .get("tag")
                .and_then(|t| t.as_str())
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            // `host/project/repo:tag` or `host/project/repo@sha256:…`.
            let url = r.get("resource_url").and_then(|u| u.as_str()).unwrap_or("");
            let (host, path) = match split_host(url) {
                (Some(host), path) => (Some(host), strip_reference(&path)),
                (None, _) => (None, full_name.to_string()),
            };
            let repository = if path.is_empty() {
                full_name.to_string()
            } else {
                path
            };
            (!repository.is_empty()).then_some(Push {
                host,
                repository,
                tag,
            })
        })
        .collect()
}

/// `host/path` → (`host`, `path`) when the first element names a registry (a `.` or `:` in it,
/// or `localhost`, as the Docker reference grammar has it), else (`None`, the whole name).
fn split_host(name: &str) -> (Option<String>, String) {
    match name.split_once('/') {
        Some((host, path)) if host.contains(['.', ':']) || host == "localhost" => {
            (Some(host.to_string()), path.to_string())
        }
        _ => (None, name.to_string()),
    }
}

/// `repo:tag` or `repo@digest` → `repo`.
fn strip_reference(path: &str) -> String {
    let path = path.split_once('@').map_or(path, |(p, _)| p);
    match path.rsplit_once(':') {
        Some((p, tag)) if !tag.contains('/') => p.to_string(),
        _ => path.to_string(),
    }
}

/// The event of a CloudEvent, structured (the body is the event) or binary (`ce-*` headers,
/// the body is its data).
///
/// # Errors
/// When required attributes are missing or the JSON is invalid.
pub fn cloudevent(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Event>, Error> {
    const FORMAT: &str = "CloudEvents";
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (id, source, kind, time, data) = if let Some(id) = header("ce-id") {
        let data: serde_json::Value = if body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(body).map_err(|e| invalid(FORMAT, e))?
        };
        (
            id,
            header("ce-source").unwrap_or_default(),
            header("ce-type").unwrap_or_default(),
            header("ce-time"),
            data,
        )
    } else {
        #[derive(Deserialize)]
        struct Structured {
            id: String,
            #[serde(default)]
            source: String,
            #[serde(rename = "type", default)]
            kind: String,
            #[serde(default)]
            time: Option<String>,
            #[serde(default)]
            data: serde_json::Value,
        }
        let event: Structured = serde_json::from_slice(body).map_err(|e| invalid(FORMAT, e))?;
        (event.id, event.source, event.kind, event.time, event.data)
    };
    if id.is_empty() || source.is_empty() {
        return Err(invalid(FORMAT, "an event needs an id and a source"));
    }
    let time = time.as_deref().map(|t| parse_time(FORMAT, t)).transpose()?;
    let pushes = if kind.to_ascii_lowercase().contains("delete") {
        Vec::new()
    } else {
        cloudevent_pushes(&data)
    };
    // Event IDs are unique per source (the CloudEvents spec).
    Ok(events_of(format!("{source}\n{id}"), time, pushes))
}

/// The pushes of a CloudEvent's data, in the shapes registries send.
fn cloudevent_pushes(data: &serde_json::Value) -> Vec<Push> {
    let text = |pointer: &str| {
        data.pointer(pointer)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    // Distribution's and ACR's shape.
    if let Some(repository) = text("/target/repository") {
        return vec![Push {
            host: text("/request/host"),
            repository,
            tag: text("/target/tag"),
        }];
    }
    // Harbor's.
    if data.get("resources").is_some() {
        return harbor_pushes(data);
    }
    // zot's (`name`, `reference`: a tag or a digest).
    if let Some(repository) = text("/name") {
        let tag = text("/reference").filter(|r| !r.contains(':'));
        return vec![Push {
            host: None,
            repository,
            tag,
        }];
    }
    // The plain shape: `repository` names `host/repo` or just `repo`.
    if let Some(repository) = text("/repository") {
        let (host, repository) = split_host(&repository);
        return vec![Push {
            host,
            repository,
            tag: text("/tag"),
        }];
    }
    Vec::new()
}

fn events_of(id: String, time: Option<jiff::Timestamp>, pushes: Vec<Push>) -> Vec<Event> {
    if pushes.is_empty() {
        return vec![Event {
            id,
            time,
            push: None,
        }];
    }
    pushes
        .into_iter()
        .enumerate()
        .map(|(i, push)| Event {
            // One notification, one identity: every push of it shares the ID's replay fate.
            id: if i == 0 {
                id.clone()
            } else {
                format!("{id}#{i}")
            },
            time,
            push: Some(push),
        })
        .collect()
}

fn body_id(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn parse_time(format: &'static str, text: &str) -> Result<jiff::Timestamp, Error> {
    text.parse::<jiff::Timestamp>()
        .map_err(|e| invalid(format, format!("invalid time {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What docker-registry (distribution 2.8) posts for `flux push artifact … :v1`: the blob
    /// uploads and the manifest push by tag, in one envelope.
    const DISTRIBUTION: &str = r#"{"events":[
      {"id":"8a6fb4c9-blob","timestamp":"2026-12-05T03:30:00.123456789Z","action":"push",
       "target":{"mediaType":"application/octet-stream","size":512,"digest":"sha256:aa","length":512,
                 "repository":"team/app","url":"http://127.0.0.1:5000/v2/team/app/blobs/sha256:aa"},
       "request":{"id":"r1","addr":"127.0.0.1:40000","host":"127.0.0.1:5000","method":"PUT","useragent":"flux/v2.6.4"},
       "actor":{},"source":{"addr":"host:5000","instanceID":"i"}},
      {"id":"8a6fb4c9-manifest","timestamp":"2026-12-05T03:30:00.2Z","action":"push",
       "target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":600,"digest":"sha256:bb",
                 "length":600,"repository":"team/app","url":"http://127.0.0.1:5000/v2/team/app/manifests/sha256:bb","tag":"v1"},
       "request":{"id":"r2","addr":"127.0.0.1:40000","host":"127.0.0.1:5000","method":"PUT","useragent":"flux/v2.6.4"},
       "actor":{},"source":{"addr":"host:5000","instanceID":"i"}},
      {"id":"8a6fb4c9-pull","timestamp":"2026-12-05T03:30:01Z","action":"pull",
       "target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"team/app","tag":"v1"},
       "request":{"host":"127.0.0.1:5000"}}
    ]}"#;

    fn push(host: Option<&str>, repository: &str, tag: Option<&str>) -> Option<Push> {
        Some(Push {
            host: host.map(str::to_string),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
        })
    }

    #[test]
    fn distribution_envelopes_report_manifest_pushes_only() {
        let events = distribution(DISTRIBUTION.as_bytes()).unwrap();
        let pushes: Vec<_> = events.iter().map(|e| e.push.clone()).collect();
        assert_eq!(
            pushes,
            [
                None,
                push(Some("127.0.0.1:5000"), "team/app", Some("v1")),
                None
            ]
        );
        assert_eq!(events[1].id, "8a6fb4c9-manifest");
        assert_eq!(
            events[1].time,
            Some("2026-12-05T03:30:00.2Z".parse().unwrap())
        );

        // Pushed by digest: no tag; the host from the URL when the request has none.
        let by_digest = r#"{"events":[{"id":"x","action":"push","target":{"mediaType":
            "application/vnd.oci.image.index.v1+json","repository":"app","url":
            "https://r.example:8443/v2/app/manifests/sha256:cc"}}]}"#;
        let events = distribution(by_digest.as_bytes()).unwrap();
        assert_eq!(events[0].push, push(Some("r.example:8443"), "app", None));
        assert_eq!(events[0].time, None);
    }

    #[test]
    fn invalid_distribution_bodies_are_refused_with_the_reason() {
        for (body, reason) in [
            ("", "EOF while parsing"),
            ("{}", "missing field `events`"),
            (r#"{"events":[{"id":""}]}"#, "an event without an id"),
            (
                r#"{"events":[{"id":"a","timestamp":"yesterday"}]}"#,
                "invalid time \"yesterday\"",
            ),
        ] {
            let err = distribution(body.as_bytes()).unwrap_err().to_string();
            assert!(
                err.starts_with("invalid distribution notification: "),
                "{err}"
            );
            assert!(err.contains(reason), "{err}");
        }
    }

    #[test]
    fn harbor_push_artifact_names_host_repository_and_tag() {
        let body = br#"{"type":"PUSH_ARTIFACT","occur_at":1796441400,"operator":"admin",
          "event_data":{"resources":[{"digest":"sha256:dd","tag":"1.2.0",
            "resource_url":"harbor.example.com/library/app:1.2.0"}],
            "repository":{"name":"app","namespace":"library","repo_full_name":"library/app","repo_type":"private"}}}"#;
        let events = harbor(body).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].push,
            push(Some("harbor.example.com"), "library/app", Some("1.2.0"))
        );
        assert_eq!(
            events[0].time,
            Some(jiff::Timestamp::from_second(1_796_441_400).unwrap())
        );
        assert!(events[0].id.starts_with("sha256:"));
        // Another body (another occur_at) is another event.
        let later = String::from_utf8_lossy(body).replace("1796441400", "1796441401");
        assert_ne!(harbor(later.as_bytes()).unwrap()[0].id, events[0].id);

        let deleted = br#"{"type":"DELETE_ARTIFACT","occur_at":1796441400,"event_data":{}}"#;
        assert_eq!(harbor(deleted).unwrap()[0].push, None);
        let err = harbor(br#"{"type":"PUSH_ARTIFACT"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid harbor notification: PUSH_ARTIFACT without event_data"
        );
    }

    #[test]
    fn cloudevents_structured_and_binary_in_the_shapes_registries_send() {
        let none = HeaderMap::new();
        // ACR through Event Grid (the distribution shape).
        let acr = br#"{"specversion":"1.0","id":"e1","source":"/subscriptions/s/registries/r",
          "type":"Microsoft.ContainerRegistry.ImagePushed","time":"2026-12-05T03:30:00Z",
          "data":{"target":{"repository":"app","tag":"v2","digest":"sha256:ee"},
                  "request":{"host":"r.azurecr.io"}}}"#;
        let events = cloudevent(&none, acr).unwrap();
        assert_eq!(
            events[0].push,
            push(Some("r.azurecr.io"), "app", Some("v2"))
        );
        assert_eq!(events[0].id, "/subscriptions/s/registries/r\ne1");

        // Harbor's CloudEvents.
        let harbor_ce =
            br#"{"specversion":"1.0","id":"e2","source":"/projects/1/webhook/policies/1",
          "type":"harbor.artifact.pushed","data":{"resources":[{"tag":"v3",
          "resource_url":"harbor.example.com/library/app:v3"}],
          "repository":{"repo_full_name":"library/app"}}}"#;
        let events = cloudevent(&none, harbor_ce).unwrap();
        assert_eq!(
            events[0].push,
            push(Some("harbor.example.com"), "library/app", Some("v3"))
        );

        // zot's: a tag reference is a tag, a digest reference is not.
        let zot =
            br#"{"specversion":"1.0","id":"e3","source":"zot","type":"zotregistry.image.updated",
          "data":{"name":"app","reference":"v4","digest":"sha256:ff"}}"#;
        assert_eq!(
            cloudevent(&none, zot).unwrap()[0].push,
            push(None, "app", Some("v4"))
        );

        // Binary mode with the plain shape.
        let mut headers = HeaderMap::new();
        headers.insert("ce-id", "e4".parse().unwrap());
        headers.insert("ce-source", "ci".parse().unwrap());
        headers.insert("ce-type", "dev.ocisource.push".parse().unwrap());
        headers.insert("ce-time", "2026-12-05T03:30:00Z".parse().unwrap());
        let plain = br#"{"repository":"127.0.0.1:5000/team/app","tag":"v5"}"#;
        let events = cloudevent(&headers, plain).unwrap();
        assert_eq!(
            events[0].push,
            push(Some("127.0.0.1:5000"), "team/app", Some("v5"))
        );
        assert_eq!(
            events[0].time,
            Some("2026-12-05T03:30:00Z".parse().unwrap())
        );

        // Deletions and unknown data are events without a push.
        let deleted =
            br#"{"specversion":"1.0","id":"e5","source":"s","type":"harbor.artifact.deleted",
          "data":{"resources":[{"tag":"v3","resource_url":"h.example/app:v3"}]}}"#;
        assert_eq!(cloudevent(&none, deleted).unwrap()[0].push, None);
        let err = cloudevent(&none, br#"{"id":"","source":"s"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid CloudEvents notification: an event needs an id and a source"
        );
    }

    #[test]
    fn references_lose_their_tag_or_digest() {
        assert_eq!(strip_reference("library/app:v1"), "library/app");
        assert_eq!(strip_reference("library/app@sha256:aa"), "library/app");
        assert_eq!(strip_reference("library/app"), "library/app");
    }
}
