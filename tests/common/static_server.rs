//! A tiny static HTTP server over a directory (GET only, one request a connection), for the
//! TUF mirror of the keyless tests: it records every path asked for and can be "down" (every
//! answer a 503) to play an unreachable mirror while still counting requests.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A server on a loopback port; its thread ends with the test binary.
pub struct StaticServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    down: Arc<AtomicBool>,
}

impl StaticServer {
    /// Serves `root` on a free loopback port.
    pub fn start(root: &Path) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let (root, seen, is_down) = (root.to_path_buf(), requests.clone(), down.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &root, &seen, &is_down);
            }
        });
        StaticServer {
            port,
            requests,
            down,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every path requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Makes every answer a 503 (`true`) or serves files again (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

fn serve(
    stream: TcpStream,
    root: &Path,
    seen: &Mutex<Vec<String>>,
    down: &AtomicBool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    seen.lock().unwrap().push(path.clone());
    let file = resolve(root, &path);
    let (status, body) = if down.load(Ordering::SeqCst) {
        ("503 Service Unavailable", b"down".to_vec())
    } else {
        match file.and_then(|f| std::fs::read(f).ok()) {
            Some(bytes) => ("200 OK", bytes),
            None => ("404 Not Found", b"not found".to_vec()),
        }
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    stream.flush()
}

/// The file `path` names under `root`, never outside it.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(root.join(relative))
}
