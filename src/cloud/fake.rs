//! A tiny local HTTP server for the cloud tests: answers every request with one canned response
//! and records what it received. Listens on 127.0.0.1 only.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A running fake; stops when dropped.
pub struct Fake {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    /// Starts a server answering `status` with `content_type` and `body`.
    pub async fn start(status: u16, content_type: &'static str, body: String) -> Fake {
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let handler = move |method: Method, uri: Uri, headers: HeaderMap, body_in: Bytes| {
            let log = log.clone();
            let body = body.clone();
            async move {
                log.lock().unwrap().push(Received {
                    method,
                    uri,
                    headers,
                    body: body_in,
                });
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", content_type)],
                    body,
                )
            }
        };
        let router = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Fake {
            url: format!("http://{addr}"),
            addr,
            received,
            task,
        }
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}
