//! Which objects follow a push: same registry (when the notification names it), same
//! repository, and a reference the pushed tag can change.
//!
//! - `ref.digest`: never (the object is pinned).
//! - `ref.semver`: any tag push (the reconcile lists the tags and applies the range and
//!   filter itself).
//! - `ref.tag`, or no `ref` (`latest`, as Flux): that tag.
//! - A cosign signature or attestation tag (`sha256-<digest>.sig|.att|.sbom`) is a push for
//!   every object on the repository with `spec.verify`: a signature that arrives after its
//!   artifact lets the failed verification pass now rather than an interval later.
//!
//! Suspended objects are left alone. URLs and pushed names are read by [`Repository::parse`]
//! (Docker Hub's `docker.io` is `index.docker.io`, single names get `library/`), registries
//! compare case-insensitively, and the Hub's other push hosts count as Docker Hub; a
//! notification without a host (zot's CloudEvents) matches the repository on any registry.

use crate::api::v1::OciRepository;
use crate::registry::Repository;

use super::payload::Push;

/// Other names Docker Hub's registry is reached by.
const HUB_ALIASES: [&str; 2] = ["registry-1.docker.io", "registry.hub.docker.com"];

/// Whether `obj` follows what `push` pushed.
pub fn follows(obj: &OciRepository, push: &Push) -> bool {
    let spec = &obj.spec;
    if spec.suspend == Some(true) {
        return false;
    }
    let Ok(followed) = Repository::parse_oci_url(&spec.url) else {
        return false;
    };
    let same_repository = match push.host.as_deref() {
        Some(host) => {
            let host = if HUB_ALIASES.iter().any(|a| a.eq_ignore_ascii_case(host)) {
                "docker.io"
            } else {
                host
            };
            Repository::parse(&format!("{host}/{}", push.repository)).is_ok_and(|pushed| {
                pushed.registry().eq_ignore_ascii_case(followed.registry())
                    && pushed.repository() == followed.repository()
            })
        }
        None => push.repository == followed.repository(),
    };
    if !same_repository {
        return false;
    }
    let Some(tag) = push.tag.as_deref() else {
        return false;
    };
    if is_signature_tag(tag) {
        return spec.verify.is_some();
    }
    let reference = spec.reference.as_ref();
    if reference.is_some_and(|r| r.digest.as_deref().is_some_and(|d| !d.is_empty())) {
        return false;
    }
    if reference.is_some_and(|r| r.semver.as_deref().is_some_and(|s| !s.is_empty())) {
        return true;
    }
    let followed_tag = reference
        .and_then(|r| r.tag.as_deref())
        .filter(|t| !t.is_empty())
        .unwrap_or("latest");
    followed_tag == tag
}

/// cosign's tag scheme for what it attaches to `sha256:<hex>`.
fn is_signature_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let Some((hex, suffix)) = rest.split_once('.') else {
        return false;
    };
    hex.len() == 64
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && matches!(suffix, "sig" | "att" | "sbom")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(url: &str, spec: serde_json::Value) -> OciRepository {
        let mut full = serde_json::json!({"url": url, "interval": "1h"});
        full.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": "o", "namespace": "default"},
            "spec": full,
        }))
        .unwrap()
    }

    fn push(host: Option<&str>, repository: &str, tag: Option<&str>) -> Push {
        Push {
            host: host.map(str::to_string),
            repository: repository.into(),
            tag: tag.map(str::to_string),
        }
    }

    const URL: &str = "oci://Registry.example:5000/team/app";

    #[test]
    fn tags_semver_digests_and_latest() {
        let at = |tag| push(Some("registry.example:5000"), "team/app", tag);
        let on_v1 = object(URL, serde_json::json!({"ref": {"tag": "v1"}}));
        assert!(follows(&on_v1, &at(Some("v1"))));
        assert!(!follows(&on_v1, &at(Some("v2"))));
        assert!(!follows(&on_v1, &at(None)), "a push by digest moves no tag");

        let latest = object(URL, serde_json::json!({}));
        assert!(follows(&latest, &at(Some("latest"))));
        assert!(!follows(&latest, &at(Some("v1"))));

        let range = object(
            URL,
            serde_json::json!({"ref": {"semver": ">=1.0.0", "tag": "v1"}}),
        );
        assert!(follows(&range, &at(Some("1.2.0"))));
        assert!(follows(&range, &at(Some("anything"))));

        let pinned = object(
            URL,
            serde_json::json!({"ref": {"digest": "sha256:aa", "tag": "v1"}}),
        );
        assert!(!follows(&pinned, &at(Some("v1"))));

        let suspended = object(
            URL,
            serde_json::json!({"ref": {"tag": "v1"}, "suspend": true}),
        );
        assert!(!follows(&suspended, &at(Some("v1"))));
    }

    #[test]
    fn registry_and_repository_must_match() {
        let obj = object(URL, serde_json::json!({"ref": {"tag": "v1"}}));
        assert!(!follows(
            &obj,
            &push(Some("registry.example:5001"), "team/app", Some("v1"))
        ));
        assert!(!follows(
            &obj,
            &push(Some("registry.example:5000"), "team/other", Some("v1"))
        ));
        assert!(!follows(
            &obj,
            &push(Some("registry.example:5000"), "team", Some("v1"))
        ));
        assert!(follows(&obj, &push(None, "team/app", Some("v1"))));

        let hub = object(
            "oci://docker.io/team/app",
            serde_json::json!({"ref": {"tag": "v1"}}),
        );
        assert!(follows(
            &hub,
            &push(Some("registry-1.docker.io"), "team/app", Some("v1"))
        ));
        assert!(!follows(
            &object("docker.io/team/app", serde_json::json!({})),
            &push(None, "team/app", Some("latest"))
        ));
    }

    #[test]
    fn signature_tags_wake_verifying_objects_only() {
        let sig = format!("sha256-{}.sig", "ab".repeat(32));
        let pushed = push(Some("registry.example:5000"), "team/app", Some(&sig));
        let verifying = object(
            URL,
            serde_json::json!({"ref": {"tag": "v1"}, "verify": {"provider": "cosign"}}),
        );
        assert!(follows(&verifying, &pushed));
        assert!(!follows(
            &object(URL, serde_json::json!({"ref": {"tag": "v1"}})),
            &pushed
        ));
        assert!(!is_signature_tag("sha256-abc.sig"));
        assert!(!is_signature_tag(&format!(
            "sha256-{}.txt",
            "ab".repeat(32)
        )));
    }
}
