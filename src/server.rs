//! The HTTP faces of the controller: the artifact server (files of the storage root, GET and
//! HEAD with ranges, no directory listings) and the health endpoints. Routers are built by
//! functions so that tests drive them without a socket.

use std::path::PathBuf;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::watch;
use tower_http::services::ServeDir;

/// The artifact server over `root`.
///
/// Files are served as they are stored (the bytes whose digest is published); `latest.tar.gz`
/// symlinks are followed. Unlike Flux, directories are not listed (`404`), except that `GET /`
/// answers `200` so that readiness probes written for Flux's Deployment keep working.
pub fn artifact_router(root: PathBuf) -> Router {
    let files = ServeDir::new(root).append_index_html_on_directories(false);
    Router::new()
        .route("/", get(|| async { "ocisource artifact server\n" }))
        .fallback_service(files)
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
