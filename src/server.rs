//! The HTTP faces of the controller: the artifact server (files of the storage root, GET and
//! HEAD with ranges, no directory listings) and the health endpoints. Routers are built by
//! functions so that tests drive them without a socket.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;
use tower_http::services::ServeFile;

use crate::storage::path::{self as layout, KIND_DIR, LATEST};

/// The artifact server over `root`.
///
/// Only finished artifacts are served: `/ocirepository/<ns>/<name>/<file>` where `<file>` is a
/// stored artifact (`<algo>:<encoded>.tar.gz`, a regular file) or `latest.tar.gz`, a symlink
/// followed only to an artifact file of its own directory. Lock and temporary files, other
/// names, directories (no listings, unlike Flux) and any other symlink answer `404`; every
/// directory on the way must be a real directory. `GET /` answers `200` so that readiness
/// probes written for Flux's Deployment keep working. GET and HEAD, with ranges.
pub fn artifact_router(root: PathBuf) -> Router {
    Router::new()
        .route("/", get(|| async { "ocisource artifact server\n" }))
        .fallback(move |req: Request| serve(root.clone(), req))
}

async fn serve(root: PathBuf, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let path = req.uri().path().to_owned();
    let resolved = tokio::task::spawn_blocking(move || resolve(&root, &path)).await;
    match resolved {
        Ok(Some(file)) => match ServeFile::new(file).try_call(req).await {
            Ok(resp) => resp.map(Body::new),
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        },
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The file to serve for a request path, or `None` (see [`artifact_router`]).
fn resolve(root: &Path, uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(uri_path.strip_prefix('/')?)?;
    let segments: Vec<&str> = decoded.split('/').collect();
    let [kind, namespace, name, file] = segments.as_slice() else {
        return None;
    };
    if *kind != KIND_DIR {
        return None;
    }
    let dir = layout::secure_join(root, &layout::artifact_dir(namespace, name).ok()?).ok()?;
    // Each directory of the path must be a directory itself, not a symlink to one.
    for d in [
        root.join(KIND_DIR),
        root.join(KIND_DIR).join(namespace),
        dir.clone(),
    ] {
        if !std::fs::symlink_metadata(&d).ok()?.is_dir() {
            return None;
        }
    }
    let target = if *file == LATEST {
        let link = dir.join(LATEST);
        if !std::fs::symlink_metadata(&link).ok()?.is_symlink() {
            return None;
        }
        // The store points it at an artifact in the same directory (by absolute path; only the
        // object's part of it is compared, so a differently spelled storage root still works).
        // What is served is that name in this real directory, never the link's own path.
        let points_to = std::fs::read_link(&link).ok()?;
        let target_name = points_to.file_name()?.to_str()?;
        let own = Path::new(KIND_DIR).join(namespace).join(name);
        if !points_to.parent()?.ends_with(&own) || !layout::is_artifact_file_name(target_name) {
            return None;
        }
        dir.join(target_name)
    } else if layout::is_artifact_file_name(file) {
        dir.join(file)
    } else {
        return None;
    };
    std::fs::symlink_metadata(&target)
        .ok()?
        .is_file()
        .then_some(target)
}

// `%XX` escapes only (a path has no `+` convention); invalid escapes or UTF-8 refuse the path.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `/healthz` (the process is alive) and `/readyz` (`ready` is true: caches synced and, with
/// leader election, this replica serves).
pub fn health_router(ready: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = *ready.borrow();
                async move {
                    if ready {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Method, Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn store() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let art = dir.path().join("ocirepository/apps/podinfo");
        std::fs::create_dir_all(&art).unwrap();
        std::fs::write(art.join("sha256:abc.tar.gz"), b"0123456789").unwrap();
        std::os::unix::fs::symlink(art.join("sha256:abc.tar.gz"), art.join("latest.tar.gz"))
            .unwrap();
        dir
    }

    async fn call(
        router: Router,
        method: Method,
        uri: &str,
        range: Option<&str>,
    ) -> (StatusCode, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(r) = range {
            req = req.header(header::RANGE, r);
        }
        let resp = router
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, body)
    }

    #[tokio::test]
    async fn artifacts_are_served_exactly_with_ranges_and_symlinks() {
        let dir = store();
        let r = artifact_router(dir.path().to_path_buf());
        let path = "/ocirepository/apps/podinfo/sha256:abc.tar.gz";
        assert_eq!(
            call(r.clone(), Method::GET, path, None).await,
            (StatusCode::OK, b"0123456789".to_vec())
        );
        let latest = "/ocirepository/apps/podinfo/latest.tar.gz";
        assert_eq!(
            call(r.clone(), Method::GET, latest, None).await.1,
            b"0123456789"
        );
        let (status, body) = call(r.clone(), Method::GET, path, Some("bytes=2-4")).await;
        assert_eq!(
            (status, body),
            (StatusCode::PARTIAL_CONTENT, b"234".to_vec())
        );
        let (status, body) = call(r.clone(), Method::HEAD, path, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.is_empty());
        assert_eq!(
            call(
                r,
                Method::GET,
                "/ocirepository/apps/podinfo/nope.tar.gz",
                None
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn directories_are_not_listed_and_nothing_escapes_the_root() {
        let dir = store();
        let r = artifact_router(dir.path().join("ocirepository"));
        for uri in [
            "/apps",
            "/apps/",
            "/apps/podinfo/",
            "/../ocirepository/apps/podinfo/latest.tar.gz",
            "/%2e%2e/etc/passwd",
        ] {
            let (status, body) = call(r.clone(), Method::GET, uri, None).await;
            assert!(status.is_client_error(), "{uri}: {status}");
            assert!(
                !String::from_utf8_lossy(&body).contains("latest.tar.gz"),
                "{uri} lists files"
            );
        }
        let (status, body) = call(r.clone(), Method::GET, "/", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!String::from_utf8_lossy(&body).contains("apps"));
    }

    /// Only finished artifacts are served: never a lock or partial file, another name, a
    /// directory, or a symlink other than `latest.tar.gz` pointing at an artifact beside it.
    #[tokio::test]
    async fn only_finished_artifacts_are_served_and_no_link_leads_out() {
        let dir = store();
        let root = dir.path();
        let art = root.join("ocirepository/apps/podinfo");
        std::fs::write(art.join("sha256:abc.tar.gz.lock"), b"").unwrap();
        std::fs::write(art.join(".sha256:def.tar.gz.Xy12Ab.tmp"), b"partial").unwrap();
        std::fs::write(art.join("notes.txt"), b"x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret.tar.gz");
        std::fs::write(&secret, b"secret").unwrap();
        std::os::unix::fs::symlink(&secret, art.join("sha256:evil.tar.gz")).unwrap();
        // latest.tar.gz of another object pointing out of the store.
        let other = root.join("ocirepository/apps/other");
        std::fs::create_dir_all(&other).unwrap();
        std::os::unix::fs::symlink(&secret, other.join("latest.tar.gz")).unwrap();
        // latest.tar.gz of a third object pointing at another object's artifact.
        let third = root.join("ocirepository/apps/third");
        std::fs::create_dir_all(&third).unwrap();
        std::os::unix::fs::symlink(art.join("sha256:abc.tar.gz"), third.join("latest.tar.gz"))
            .unwrap();
        // A directory symlink planted in the store.
        std::os::unix::fs::symlink(outside.path(), root.join("ocirepository/apps/linked")).unwrap();
        std::fs::create_dir_all(outside.path().join("x")).unwrap();
        std::fs::write(outside.path().join("x/sha256:abc.tar.gz"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("ocirepository/evil")).unwrap();

        let r = artifact_router(root.to_path_buf());
        for uri in [
            "/ocirepository/apps/podinfo/sha256:abc.tar.gz.lock",
            "/ocirepository/apps/podinfo/.sha256:def.tar.gz.Xy12Ab.tmp",
            "/ocirepository/apps/podinfo/notes.txt",
            "/ocirepository/apps/podinfo/sha256:evil.tar.gz",
            "/ocirepository/apps/other/latest.tar.gz",
            "/ocirepository/apps/third/latest.tar.gz",
            "/ocirepository/apps/linked/sha256:abc.tar.gz",
            "/ocirepository/evil/x/sha256:abc.tar.gz",
            "/ocirepository/apps/podinfo",
            "/ocirepository/apps/podinfo/sha256%3Aabc.tar.gz%2F..%2F..",
            "/ocirepository/apps/podinfo/../podinfo/sha256:abc.tar.gz",
        ] {
            let (status, body) = call(r.clone(), Method::GET, uri, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert!(
                !body.starts_with(b"secret") && !body.starts_with(b"partial"),
                "{uri}"
            );
        }
        // An escaped colon is the same file.
        let (status, body) = call(
            r.clone(),
            Method::GET,
            "/ocirepository/apps/podinfo/sha256%3Aabc.tar.gz",
            None,
        )
        .await;
        assert_eq!((status, body), (StatusCode::OK, b"0123456789".to_vec()));
        let (status, _) = call(
            r,
            Method::POST,
            "/ocirepository/apps/podinfo/sha256:abc.tar.gz",
            None,
        )
        .await;
        assert!(status.is_client_error());
    }

    #[tokio::test]
    async fn readiness_follows_the_signal() {
        let (tx, rx) = watch::channel(false);
        let r = health_router(rx);
        assert_eq!(
            call(r.clone(), Method::GET, "/healthz", None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(r.clone(), Method::GET, "/readyz", None).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        tx.send(true).unwrap();
        assert_eq!(
            call(r, Method::GET, "/readyz", None).await.0,
            StatusCode::OK
        );
    }
}
