//! A tiny HTTP/1.1 server for faults a real registry will not produce: every answer comes from
//! a closure, which may also cut a body short or stall it; every request is logged. It answers a
//! TLS ClientHello as Go's plain-HTTP server does, so clients that try HTTPS first fall back.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocisource::registry::Repository;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A request as the fake server saw it.
#[derive(Clone, Debug)]
pub struct Req {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request target.
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
}

/// What the fake server does with a request.
pub enum Reply {
    /// A complete response.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Announces `length` bytes, sends `body`, then drops the connection.
    Cut { length: usize, body: Vec<u8> },
    /// Announces `length` bytes and then sends nothing, keeping the connection open.
    Stall { length: usize },
    /// Closes the connection without answering (a pooled connection the server dropped).
    Close,
}

/// A 200 response.
pub fn ok(headers: &[(&str, &str)], body: &[u8]) -> Reply {
    status(200, headers, body)
}

/// A complete response with `code`.
pub fn status(code: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    Reply::Full {
        status: code,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

/// A running fake; it serves until the test's runtime ends.
pub struct Fake {
    /// Where it listens (127.0.0.1 unless started with [`Fake::start_on`]).
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Req>>>,
}

impl Fake {
    /// Starts a fake answering every request with `handler`.
    pub async fn start(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Fake {
        Fake::start_on("127.0.0.1", handler).await
    }

    /// Starts a fake listening on `ip` (an address of this machine), e.g. one that is not
    /// loopback, to play a registry on a public address.
    pub async fn start_on(
        ip: &str,
        handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
    ) -> Fake {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let server_log = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&server_log);
                tokio::spawn(serve(stream, handler, log));
            }
        });
        Fake { addr, log }
    }

    /// `<ip>:<port>`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The repository `path` on this fake.
    pub fn repo(&self, path: &str) -> Repository {
        Repository::parse_oci_url(&format!("oci://{}/{path}", self.host())).unwrap()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    /// How many `method` requests had a path starting with `path_prefix`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .count()
    }
}

async fn serve(stream: TcpStream, handler: Handler, log: Arc<Mutex<Vec<Req>>>) {
    let mut stream = BufReader::new(stream);
    loop {
        // A TLS ClientHello (the client tries HTTPS first): answer as Go's server does.
        let Ok(buf) = stream.fill_buf().await else {
            return;
        };
        if buf.first() == Some(&0x16) {
            let _ = stream
                .get_mut()
                .write_all(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
                .await;
            return;
        }
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if stream.read_line(&mut h).await.unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let req = Req {
            method: method.clone(),
            path,
            headers,
        };
        log.lock().unwrap().push(req.clone());
        let out = stream.get_mut();
        match handler(&req) {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                if out.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                if method != "HEAD" && out.write_all(&body).await.is_err() {
                    return;
                }
            }
            Reply::Cut { length, body } => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {length}\r\n\r\n");
                let _ = out.write_all(head.as_bytes()).await;
                let _ = out.write_all(&body).await;
                let _ = out.flush().await;
                return;
            }
            Reply::Close => return,
            Reply::Stall { length } => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {length}\r\n\r\n");
                let _ = out.write_all(head.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
        }
    }
}

/// This machine's outward IPv4 address (the source of a route to the internet; nothing is
/// sent), to host a fake that is not on loopback: a "registry" there and a target on
/// 127.0.0.1 are different kinds of address, so a registry may not send the client from one to
/// the other.
pub fn outbound_ip() -> String {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket
        .connect("192.0.2.1:9")
        .or_else(|_| socket.connect("8.8.8.8:53"))
        .unwrap_or_else(|e| panic!("no route out of this machine to find its address: {e}"));
    let ip = socket.local_addr().unwrap().ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "this machine has no non-loopback IPv4 address ({ip})"
    );
    ip.to_string()
}
