//! Storage layout and secure joins: artifact paths `ocirepository/<ns>/<name>/<algo>:<hex>.tar.gz`
//! built from validated segments, joins that never leave the root, and the artifact, `latest`
//! and host-rewritten URLs (§2, §4.14).

use std::path::{Path, PathBuf};

use super::error::Error;

/// The lower-cased kind segment of every artifact path.
pub const KIND_DIR: &str = "ocirepository";

/// File name of the symlink to the current artifact.
pub const LATEST: &str = "latest.tar.gz";

/// Extension of stored artifacts.
pub const ARTIFACT_EXT: &str = ".tar.gz";

/// Suffix of the per-artifact lock file.
pub const LOCK_SUFFIX: &str = ".lock";

// NAME_MAX on Linux: a longer segment cannot be created anyway, so refuse it with a clear message.
const MAX_SEGMENT: usize = 255;

/// Returns the `<algo>:<hex>` part of a revision (`<tag>@<algo>:<hex>` or `<algo>:<hex>`).
///
/// The digest must follow the OCI grammar (`[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`), so it
/// can never contain `/`, `..` or a NUL and is safe to use as a file name.
///
/// # Errors
///
/// [`Error::InvalidPath`] when the revision carries no well-formed digest.
pub fn revision_digest(revision: &str) -> Result<&str, Error> {
    let digest = revision
        .rsplit_once('@')
        .map_or(revision, |(_, digest)| digest);
    if is_oci_digest(digest) {
        Ok(digest)
    } else {
        Err(Error::InvalidPath {
            path: revision.to_owned(),
            reason: "revision does not end in an <algorithm>:<encoded> digest",
        })
    }
}

fn is_oci_digest(s: &str) -> bool {
    let Some((algo, encoded)) = s.split_once(':') else {
        return false;
    };
    let algo_ok = !algo.is_empty()
        && algo.split(['+', '.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    let encoded_ok = !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    algo_ok && encoded_ok
}

/// Checks that `segment` is one clean path segment: non-empty, not `.`/`..`, no `/`, `\` or NUL,
/// at most 255 bytes.
///
/// # Errors
///
/// [`Error::InvalidPath`] naming the rule that failed.
pub fn validate_segment(segment: &str) -> Result<(), Error> {
    let reason = if segment.is_empty() {
        "empty path segment"
    } else if segment == "." || segment == ".." {
        "path segment is a relative reference"
    } else if segment.contains(['/', '\\', '\0']) {
        "path segment contains a separator or NUL"
    } else if segment.len() > MAX_SEGMENT {
        "path segment is longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(Error::InvalidPath {
        path: segment.to_owned(),
        reason,
    })
}

/// The storage-relative directory of an object: `ocirepository/<namespace>/<name>`.
///
/// # Errors
///
/// [`Error::InvalidPath`] when namespace or name is not a clean segment.
pub fn artifact_dir(namespace: &str, name: &str) -> Result<String, Error> {
    validate_segment(namespace)?;
    validate_segment(name)?;
    Ok(format!("{KIND_DIR}/{namespace}/{name}"))
}

/// The storage-relative artifact path `ocirepository/<ns>/<name>/<algo>:<hex>.tar.gz` (literal
/// colon) for a revision; copy mode uses the same name.
///
/// # Errors
///
/// [`Error::InvalidPath`] for an unclean namespace or name or a revision without a digest.
pub fn artifact_path(namespace: &str, name: &str, revision: &str) -> Result<String, Error> {
    let dir = artifact_dir(namespace, name)?;
    let digest = revision_digest(revision)?;
    Ok(format!("{dir}/{digest}{ARTIFACT_EXT}"))
}

/// Whether `file` is a name the store gives an artifact: `<algo>:<encoded>.tar.gz` (never a
/// `.lock`, a temporary file, `latest.tar.gz` or a relative reference).
#[must_use]
pub fn is_artifact_file_name(file: &str) -> bool {
    file.strip_suffix(ARTIFACT_EXT).is_some_and(is_oci_digest) && file.len() <= MAX_SEGMENT
}

/// Whether a recorded `artifact.path` is exactly `ocirepository/<namespace>/<name>/<file>` with
/// an artifact file name ([`is_artifact_file_name`]): the only shape the store writes for the
/// object, so nothing else is ever verified, collected or removed on its behalf.
#[must_use]
pub fn is_own_artifact(namespace: &str, name: &str, recorded: &str) -> bool {
    let Ok(dir) = artifact_dir(namespace, name) else {
        return false;
    };
    recorded
        .strip_prefix(dir.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(is_artifact_file_name)
}

// Kubernetes' validation texts (apimachinery `IsDNS1123Subdomain` / `IsDNS1123Label`).
const DNS1123_SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, of any length.
fn is_label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// Checks an object name as the API server does for OCIRepository (a DNS-1123 subdomain: at
/// most 253 characters of `[a-z0-9.-]`, dot-separated labels that start and end alphanumeric).
///
/// # Errors
///
/// The API server's explanation.
pub fn validate_object_name(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err("must be no more than 253 characters".to_string());
    }
    let ok = name.split('.').all(is_label_shape);
    if ok {
        Ok(())
    } else {
        Err(DNS1123_SUBDOMAIN_MESSAGE.to_string())
    }
}

/// Checks a namespace name as the API server does (a DNS-1123 label: at most 63 characters of
/// `[a-z0-9-]`, starting and ending alphanumeric).
///
/// # Errors
///
/// The API server's explanation.
pub fn validate_namespace(namespace: &str) -> Result<(), String> {
    if namespace.len() > 63 {
        return Err("must be no more than 63 characters".to_string());
    }
    if is_label_shape(namespace) {
        Ok(())
    } else {
        Err(DNS1123_LABEL_MESSAGE.to_string())
    }
}

/// Joins a storage-relative path (for example a recorded `artifact.path`) onto `root` so that the
/// result can never leave `root`.
///
/// Leading `/`, empty and `.` segments are dropped (as Flux's secure join treats them); a `..`
/// segment or a NUL byte is refused rather than clamped, and at least one segment must remain.
/// The check is lexical: the store never creates directory symlinks, so none can redirect it.
///
/// # Errors
///
/// [`Error::InvalidPath`] for `..`, NUL, or nothing left to join.
pub fn secure_join(root: &Path, relative: &str) -> Result<PathBuf, Error> {
    let invalid = |reason| Error::InvalidPath {
        path: relative.to_owned(),
        reason,
    };
    if relative.contains('\0') {
        return Err(invalid("path contains NUL"));
    }
    let mut out = root.to_path_buf();
    let mut pushed = false;
    for segment in relative.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(invalid("path contains a parent-directory segment")),
            s => {
                out.push(s);
                pushed = true;
            }
        }
    }
    if pushed {
        Ok(out)
    } else {
        Err(invalid("path is empty"))
    }
}

fn has_scheme(addr: &str) -> bool {
    addr.starts_with("http://") || addr.starts_with("https://")
}

fn strip_scheme(addr: &str) -> &str {
    addr.strip_prefix("http://")
        .or_else(|| addr.strip_prefix("https://"))
        .unwrap_or(addr)
}

/// `artifact.url` for a storage-relative path: `http://<adv>/<path>`, or `<adv>/<path>` when the
/// advertised address already starts with `http://` or `https://` (as Flux). Leading slashes of
/// the path are trimmed and the colon in the file name is not escaped.
#[must_use]
pub fn artifact_url(advertised_addr: &str, path: &str) -> String {
    let path = path.trim_start_matches('/');
    if has_scheme(advertised_addr) {
        format!("{advertised_addr}/{path}")
    } else {
        format!("http://{advertised_addr}/{path}")
    }
}

/// `status.url`: `http://<host>/<dir of path>/latest.tar.gz`.
///
/// Always `http://` plus the host, as Flux. Deliberate difference: when the advertised address
/// carries a scheme, Flux prints it after `http://` (`http://https://host/…`); the scheme is
/// dropped here so that the URL stays well-formed.
#[must_use]
pub fn latest_url(advertised_addr: &str, path: &str) -> String {
    let path = path.trim_start_matches('/');
    let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let host = strip_scheme(advertised_addr);
    if dir.is_empty() {
        format!("http://{host}/{LATEST}")
    } else {
        format!("http://{host}/{dir}/{LATEST}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "a081a2c9ee3bf1f6f57bb0bd7dd3bb2b2c6b4a69a9bb3a1ef7e6bfb1c1d0a792";

    #[test]
    fn artifact_path_uses_the_revision_digest_with_a_literal_colon() {
        let rev = format!("6.2.3@sha256:{HEX}");
        assert_eq!(
            artifact_path("apps", "podinfo", &rev).unwrap(),
            format!("ocirepository/apps/podinfo/sha256:{HEX}.tar.gz")
        );
        assert_eq!(
            artifact_path("apps", "podinfo", &format!("sha256:{HEX}")).unwrap(),
            format!("ocirepository/apps/podinfo/sha256:{HEX}.tar.gz")
        );
    }

    #[test]
    fn hostile_namespaces_names_and_revisions_are_refused() {
        let rev = format!("sha256:{HEX}");
        for (ns, name) in [
            ("..", "x"),
            (".", "x"),
            ("", "x"),
            ("a/b", "x"),
            ("a", "../../etc"),
            ("a", "x\0y"),
            ("a", "x\\y"),
            ("a", "/abs"),
        ] {
            assert!(
                matches!(
                    artifact_path(ns, name, &rev),
                    Err(Error::InvalidPath { .. })
                ),
                "{ns:?}/{name:?}"
            );
        }
        let long = "x".repeat(256);
        assert!(artifact_path("a", &long, &rev).is_err());
        for rev in [
            "latest",
            "v1@sha256:../../x",
            "v1@sha256:a/b",
            "sha256:",
            ":abc",
            "v1@",
            "Sha256:abc",
        ] {
            assert!(artifact_path("a", "b", rev).is_err(), "{rev}");
        }
    }

    #[test]
    fn only_artifact_files_of_the_objects_own_directory_are_its_own() {
        let own = format!("ocirepository/apps/podinfo/sha256:{HEX}.tar.gz");
        assert!(is_own_artifact("apps", "podinfo", &own));
        assert!(is_own_artifact(
            "apps",
            "podinfo",
            "ocirepository/apps/podinfo/blake3:abc.tar.gz"
        ));
        for bad in [
            "ocirepository/apps/podinfo/..".to_string(),
            "ocirepository/apps/podinfo/.".to_string(),
            "ocirepository/apps/podinfo/".to_string(),
            format!("{own}.lock"),
            format!("ocirepository/apps/podinfo/.sha256:{HEX}.tar.gz.x1y2.tmp"),
            "ocirepository/apps/podinfo/latest.tar.gz".to_string(),
            "ocirepository/apps/podinfo/sub/sha256:abc.tar.gz".to_string(),
            "ocirepository/apps/podinfo2/sha256:abc.tar.gz".to_string(),
            "ocirepository/apps/other/sha256:abc.tar.gz".to_string(),
            "/ocirepository/apps/podinfo/sha256:abc.tar.gz".to_string(),
            "ocirepository/apps/podinfo//sha256:abc.tar.gz".to_string(),
            "ocirepository/apps/podinfo/sha256:abc.tgz".to_string(),
        ] {
            assert!(!is_own_artifact("apps", "podinfo", &bad), "{bad}");
        }
        assert!(!is_own_artifact(
            "..",
            "x",
            "ocirepository/../x/sha256:a.tar.gz"
        ));
    }

    #[test]
    fn names_and_namespaces_follow_the_api_servers_rules() {
        for ok in ["a", "podinfo", "my-app.v1", "0abc", &"a".repeat(253)] {
            assert!(validate_object_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a/b",
            "../x",
            "..",
            ".",
            "a..b",
            "-a",
            "a-",
            "a_b",
            "a b",
            ".a",
            "a.",
            &"a".repeat(254),
        ] {
            assert!(validate_object_name(bad).is_err(), "{bad:?}");
        }
        for ok in ["default", "flux-system", "a", &"a".repeat(63)] {
            assert!(validate_namespace(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a.b", "A", "a/b", "..", &"a".repeat(64)] {
            assert!(validate_namespace(bad).is_err(), "{bad:?}");
        }
        assert!(
            validate_object_name("a/b")
                .unwrap_err()
                .starts_with("a lowercase RFC 1123 subdomain must consist of")
        );
    }

    #[test]
    fn secure_join_never_leaves_the_root() {
        let root = Path::new("/data");
        assert_eq!(
            secure_join(root, "ocirepository/a/b/x.tar.gz").unwrap(),
            Path::new("/data/ocirepository/a/b/x.tar.gz")
        );
        assert_eq!(
            secure_join(root, "/ocirepository//./a").unwrap(),
            Path::new("/data/ocirepository/a")
        );
        for bad in [
            "",
            "/",
            ".",
            "..",
            "../etc/passwd",
            "a/../../b",
            "a/..",
            "a\0b",
        ] {
            assert!(secure_join(root, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn artifact_urls_follow_flux() {
        let p = format!("ocirepository/apps/podinfo/sha256:{HEX}.tar.gz");
        assert_eq!(
            artifact_url("source-controller.flux-system.svc.cluster.local.", &p),
            format!(
                "http://source-controller.flux-system.svc.cluster.local./ocirepository/apps/podinfo/sha256:{HEX}.tar.gz"
            )
        );
        assert_eq!(
            artifact_url("https://cdn.example.com", &format!("/{p}")),
            format!("https://cdn.example.com/{p}")
        );
        assert_eq!(
            latest_url("localhost:9090", &p),
            "http://localhost:9090/ocirepository/apps/podinfo/latest.tar.gz"
        );
        assert_eq!(
            latest_url("https://cdn.example.com", &p),
            "http://cdn.example.com/ocirepository/apps/podinfo/latest.tar.gz"
        );
    }
}
