//! `/metrics`: the text encoded on a blocking thread and sent in pieces as the reader takes
//! them, gzip-compressed when asked.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::Metrics;

/// The size of the pieces a scrape's text is sent in.
pub(super) const CHUNK: usize = 64 * 1024;

/// The pieces a scrape may have encoded before its reader takes them.
pub(super) const AHEAD: usize = 2;

/// How long a scrape waits for its reader to take a piece before it stops.
pub(super) const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// A `fmt::Write`, on a blocking thread, that cuts a scrape's text into pieces of about
/// [`CHUNK`] bytes for the response body. Until [`Pieces::start_sending`] it keeps them: the
/// metric families are encoded holding their locks, and a reconcile adding a series waits for
/// that lock on a runtime worker, so waiting for the reader (who needs those workers) then could
/// stall both. From then on (the per-object histogram, encoded without locks held) it hands each
/// piece over as it fills, waiting while [`AHEAD`] are not yet taken: a scrape holds a few pieces,
/// not the whole text (16 MB at 10,000 objects, which glibc kept in fragments of its heap after
/// the scrapes that ran while a burst of reconciles allocated).
pub(super) struct Pieces {
    tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    held: Vec<bytes::Bytes>,
    buf: String,
    sending: bool,
}

impl Pieces {
    pub(super) fn new(tx: tokio::sync::mpsc::Sender<bytes::Bytes>, timeout: Duration) -> Pieces {
        Pieces {
            tx,
            runtime: tokio::runtime::Handle::current(),
            timeout,
            held: Vec::new(),
            buf: String::with_capacity(CHUNK),
            sending: false,
        }
    }

    /// Sends the pieces kept so far; from now on each piece is sent as it fills.
    pub(super) fn start_sending(&mut self) -> std::fmt::Result {
        self.sending = true;
        for piece in std::mem::take(&mut self.held) {
            self.send(piece)?;
        }
        Ok(())
    }

    /// Sends everything left.
    pub(super) fn finish(mut self) -> std::fmt::Result {
        self.start_sending()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        let last = bytes::Bytes::from(std::mem::take(&mut self.buf));
        self.send(last)
    }

    // Waits for room ahead of the reader; an error once the reader is gone or took longer than
    // the timeout.
    fn send(&self, piece: bytes::Bytes) -> std::fmt::Result {
        match self
            .runtime
            .block_on(tokio::time::timeout(self.timeout, self.tx.send(piece)))
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(std::fmt::Error),
        }
    }
}

impl std::fmt::Write for Pieces {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.buf.len() + s.len() > CHUNK && !self.buf.is_empty() {
            let full = std::mem::replace(&mut self.buf, String::with_capacity(CHUNK));
            let full = bytes::Bytes::from(full);
            if self.sending {
                self.send(full)?;
            } else {
                self.held.push(full);
            }
        }
        self.buf.push_str(s);
        Ok(())
    }
}

/// The metrics text as a response body, encoded on a blocking thread while it is sent (see
/// [`Pieces`]). A reader that leaves or stalls past [`SEND_TIMEOUT`] ends the encoding: its body
/// stops short of `# EOF`.
pub(super) fn encoded(metrics: Arc<Metrics>) -> axum::body::Body {
    let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
    let pieces = Pieces::new(tx, SEND_TIMEOUT);
    tokio::task::spawn_blocking(move || {
        let _ = stream(&metrics, pieces);
    });
    // Fused: a body may be polled again after its end (the gzip layer does, for trailers).
    axum::body::Body::from_stream(futures::StreamExt::fuse(futures::stream::unfold(
        rx,
        |mut rx| async move {
            let piece = rx.recv().await?;
            Some((Ok::<_, std::convert::Infallible>(piece), rx))
        },
    )))
}

fn stream(metrics: &Metrics, mut pieces: Pieces) -> std::fmt::Result {
    metrics.render_families(&mut pieces)?;
    pieces.start_sending()?;
    metrics.render_objects(&mut pieces)?;
    pieces.finish()
}

/// `/metrics`, gzip-compressed when the scraper asks for it (`Accept-Encoding: gzip`, as
/// Prometheus does), as Go's promhttp handler serves Flux's metrics.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        encoded(metrics),
                    )
                        .into_response()
                }
            }),
        )
        // The text is 1.6 KB per object and compresses about tenfold.
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
}
