//! Which events a reconcile emits, as Flux's `notify` decides them: `NewArtifact` when the stored
//! artifact changed, `Succeeded` on recovery, a Warning with the error's reason on a failed
//! attempt, and trace events that stay in Kubernetes.

use std::collections::BTreeMap;

use crate::api::conditions::{reasons, types};
use crate::api::v1::{Artifact, OciRepositoryStatus};
use crate::api::{EVENT_DIGEST_KEY, EVENT_REVISION_KEY};

use super::summary::Ending;

/// Manifest annotation naming the origin source of an artifact.
pub const ORIGIN_SOURCE_ANNOTATION: &str = "org.opencontainers.image.source";
/// Manifest annotation naming the origin revision of an artifact.
pub const ORIGIN_REVISION_ANNOTATION: &str = "org.opencontainers.image.revision";

/// Severity and audience of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Kubernetes `Normal`, forwarded to notification-controller as `info`.
    Info,
    /// Kubernetes `Warning`, forwarded as `error`.
    Error,
    /// Kubernetes `Normal` only; never forwarded.
    Trace,
}

/// An event to record for the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Severity.
    pub severity: Severity,
    /// Flux reason.
    pub reason: String,
    /// Message.
    pub message: String,
    /// Metadata (`source.toolkit.fluxcd.io/revision`, `.../digest`).
    pub metadata: BTreeMap<String, String>,
}

impl Event {
    /// Whether the adapter records it (a Kubernetes Event, forwarded as [`Severity`] says) or
    /// only logs it. `ArtifactUpToDate`, which every unchanged reconcile emits, is only logged,
    /// so that an unchanged source costs no API write (Flux records it, rate-limited).
    pub fn is_recorded(&self) -> bool {
        self.reason != reasons::ARTIFACT_UP_TO_DATE
    }

    /// A trace event (Kubernetes only).
    pub fn trace(reason: &str, message: impl Into<String>) -> Event {
        Event {
            severity: Severity::Trace,
            reason: reason.to_string(),
            message: message.into(),
            metadata: BTreeMap::new(),
        }
    }
}

/// The events for the end of a reconcile: `before` is the status at its start, `after` the final
/// one, `url` the object's `spec.url`.
pub fn notify(
    before: &OciRepositoryStatus,
    after: &OciRepositoryStatus,
    url: &str,
    ending: &Ending,
) -> Vec<Event> {
    match ending {
        Ending::Failed { reason, message } | Ending::Stalled { reason, message } => {
            vec![Event {
                severity: Severity::Error,
                reason: (*reason).to_string(),
                message: message.clone(),
                metadata: BTreeMap::new(),
            }]
        }
        Ending::Success => success_event(before, after, url).into_iter().collect(),
        Ending::RequeueNow | Ending::Done | Ending::FailedPlain { .. } => vec![],
    }
}

fn success_event(
    before: &OciRepositoryStatus,
    after: &OciRepositoryStatus,
    url: &str,
) -> Option<Event> {
    let artifact = after.artifact.as_ref()?;
    let digest = |s: &OciRepositoryStatus| s.artifact.as_ref().and_then(|a| a.digest.clone());
    let failing = |s: &OciRepositoryStatus| {
        s.conditions.iter().any(|c| {
            (c.type_ == types::FETCH_FAILED || c.type_ == types::STORAGE_OPERATION_FAILED)
                && c.status == "True"
        })
    };
    let reason = if digest(before) != digest(after) {
        reasons::NEW_ARTIFACT
    } else if failing(before) && !failing(after) {
        reasons::SUCCEEDED
    } else {
        return None;
    };
    let mut metadata =
        BTreeMap::from([(EVENT_REVISION_KEY.to_string(), artifact.revision.clone())]);
    if let Some(d) = &artifact.digest {
        metadata.insert(EVENT_DIGEST_KEY.to_string(), d.clone());
    }
    Some(Event {
        severity: Severity::Info,
        reason: reason.to_string(),
        message: artifact_message(artifact, url),
        metadata,
    })
}

fn artifact_message(artifact: &Artifact, url: &str) -> String {
    let mut message = format!(
        "stored artifact with revision '{}' from '{url}'",
        artifact.revision
    );
    let annotation = |k: &str| artifact.metadata.as_ref().and_then(|m| m.get(k));
    if let (Some(source), Some(revision)) = (
        annotation(ORIGIN_SOURCE_ANNOTATION),
        annotation(ORIGIN_REVISION_ANNOTATION),
    ) {
        message.push_str(&format!(
            ", origin source '{source}', origin revision '{revision}'"
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn artifact(revision: &str, digest: &str, origin: bool) -> Artifact {
        let metadata = origin.then(|| {
            BTreeMap::from([
                (
                    ORIGIN_SOURCE_ANNOTATION.to_string(),
                    "https://github.com/stefanprodan/podinfo".to_string(),
                ),
                (
                    ORIGIN_REVISION_ANNOTATION.to_string(),
                    "6.1.8/b3b00fe".to_string(),
                ),
            ])
            .into()
        });
        Artifact {
            path: "p".into(),
            url: "u".into(),
            revision: revision.into(),
            digest: Some(digest.into()),
            last_update_time: Time("2026-01-01T00:00:00Z".parse().unwrap()),
            size: Some(1),
            metadata,
        }
    }

    fn status(artifact: Option<Artifact>, fetch_failed: bool) -> OciRepositoryStatus {
        let conditions = if fetch_failed {
            vec![Condition {
                type_: "FetchFailed".into(),
                status: "True".into(),
                reason: "OCIArtifactPullFailed".into(),
                message: "x".into(),
                last_transition_time: Time("2026-01-01T00:00:00Z".parse().unwrap()),
                observed_generation: Some(1),
            }]
        } else {
            vec![]
        };
        OciRepositoryStatus {
            artifact,
            conditions,
            ..Default::default()
        }
    }

    #[test]
    fn an_error_emits_a_warning_with_its_reason() {
        let ending = Ending::Failed {
            reason: reasons::OCI_ARTIFACT_PULL_FAILED,
            message: "failed to pull".into(),
        };
        let ev = notify(
            &status(None, false),
            &status(None, true),
            "oci://x",
            &ending,
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].severity, Severity::Error);
        assert_eq!(ev[0].reason, "OCIArtifactPullFailed");
        let plain = Ending::FailedPlain {
            message: "x".into(),
        };
        assert!(
            notify(
                &status(None, false),
                &status(None, false),
                "oci://x",
                &plain
            )
            .is_empty()
        );
    }

    #[test]
    fn only_the_up_to_date_trace_is_logged_instead_of_recorded() {
        let up_to_date = Event::trace(reasons::ARTIFACT_UP_TO_DATE, "artifact up-to-date");
        assert!(!up_to_date.is_recorded());
        assert!(Event::trace(reasons::GARBAGE_COLLECTION_SUCCEEDED, "gc").is_recorded());
        assert!(Event::trace(reasons::AUTHENTICATION_FAILED, "auth").is_recorded());
        let ending = Ending::Failed {
            reason: reasons::OCI_ARTIFACT_PULL_FAILED,
            message: "failed to pull".into(),
        };
        let warnings = notify(
            &status(None, false),
            &status(None, true),
            "oci://x",
            &ending,
        );
        assert!(warnings.iter().all(Event::is_recorded));
    }

    #[test]
    fn a_new_artifact_is_announced_with_origin_and_metadata() {
        let after = status(Some(artifact("xxx", "sha256:new", true)), false);
        let ev = notify(
            &status(None, false),
            &after,
            "oci://newurl.io",
            &Ending::Success,
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].reason, "NewArtifact");
        assert_eq!(
            ev[0].message,
            "stored artifact with revision 'xxx' from 'oci://newurl.io', origin source \
             'https://github.com/stefanprodan/podinfo', origin revision '6.1.8/b3b00fe'"
        );
        assert_eq!(ev[0].metadata[EVENT_REVISION_KEY], "xxx");
        assert_eq!(ev[0].metadata[EVENT_DIGEST_KEY], "sha256:new");
    }

    #[test]
    fn recovery_with_the_same_digest_says_succeeded_and_nothing_new_says_nothing() {
        let before = status(Some(artifact("xxx", "sha256:same", false)), true);
        let after = status(Some(artifact("xxx", "sha256:same", false)), false);
        let ev = notify(&before, &after, "oci://x", &Ending::Success);
        assert_eq!(ev[0].reason, "Succeeded");
        assert_eq!(
            ev[0].message,
            "stored artifact with revision 'xxx' from 'oci://x'"
        );

        let before = status(Some(artifact("xxx", "sha256:old", false)), true);
        let after = status(Some(artifact("yyy", "sha256:new", false)), false);
        assert_eq!(
            notify(&before, &after, "oci://x", &Ending::Success)[0].reason,
            "NewArtifact"
        );

        let same = status(Some(artifact("xxx", "sha256:same", false)), false);
        assert!(notify(&same, &same, "oci://x", &Ending::Success).is_empty());
        assert!(notify(&status(None, false), &same, "oci://x", &Ending::RequeueNow).is_empty());
    }
}
