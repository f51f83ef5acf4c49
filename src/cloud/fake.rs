//! A tiny local HTTP server for the cloud tests: answers each request with a canned response
//! chosen by its path (or one response for every path) and records what it received. Listens on
//! 127.0.0.1 only.

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

    /// The body as `application/x-www-form-urlencoded` pairs, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    /// The value of the form field `name` (panics when absent).
    pub fn field(&self, name: &str) -> String {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no form field {name} in {:?}", self.form()))
    }
}

/// A canned answer for requests whose path is `path` (`None`: any path).
#[derive(Clone, Debug)]
pub struct Route {
    pub path: Option<String>,
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Route {
    /// Answers `path` with `status`, `content_type` and `body`.
    pub fn new(path: &str, status: u16, content_type: &'static str, body: String) -> Route {
        Route {
            path: Some(path.to_string()),
            status,
            content_type,
            body,
        }
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
    /// Starts a server answering every request with `status`, `content_type` and `body`.
    pub async fn start(status: u16, content_type: &'static str, body: String) -> Fake {
        Fake::routes(vec![Route {
            path: None,
            status,
            content_type,
            body,
        }])
        .await
    }

    /// Starts a server answering by path from `routes` (the first match wins); a request no
    /// route matches gets a 404.
    pub async fn routes(routes: Vec<Route>) -> Fake {
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let routes = Arc::new(routes);
        let handler = move |method: Method, uri: Uri, headers: HeaderMap, body_in: Bytes| {
            let log = log.clone();
            let routes = routes.clone();
            async move {
                let route = routes
                    .iter()
                    .find(|r| r.path.as_deref().is_none_or(|p| p == uri.path()))
                    .cloned();
                log.lock().unwrap().push(Received {
                    method,
                    uri,
                    headers,
                    body: body_in,
                });
                match route {
                    Some(r) => (
                        StatusCode::from_u16(r.status).unwrap(),
                        [("content-type", r.content_type)],
                        r.body,
                    ),
                    None => (
                        StatusCode::NOT_FOUND,
                        [("content-type", "text/plain")],
                        "no route".to_string(),
                    ),
                }
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
