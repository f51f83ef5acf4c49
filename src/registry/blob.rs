//! Streaming blob reads that verify size and digest.
//!
//! A [`Blob`] is an async stream of chunks of a blob's bytes. It counts and hashes what passes
//! through and fails as soon as more bytes arrive than the descriptor's size, and at the end of
//! the body when the size or the digest differ: a consumer never sees a clean end of a corrupt
//! or truncated blob. The caller's deadline bounds the whole read.
//!
//! [`Blob::into_reader`] bridges the stream to a blocking [`std::io::Read`] (for the storage
//! code, which runs on a blocking thread) through a small bounded channel, so memory stays
//! bounded whatever the blob's size.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use sha2::Digest as _;

use super::counters::Counters;
use super::error::Error;
use super::reference::{Algorithm, Digest, to_hex};

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => to_hex(&h.finalize()),
            Hasher::Sha512(h) => to_hex(&h.finalize()),
        }
    }
}

/// The bytes of one blob, verified against its descriptor's digest and size.
pub struct Blob {
    stream: ByteStream,
    hasher: Option<Hasher>,
    expected: Digest,
    size: u64,
    read: u64,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    what: String,
    counters: std::sync::Arc<Counters>,
    done: bool,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("digest", &self.expected)
            .field("size", &self.size)
            .field("read", &self.read)
            .finish()
    }
}

impl Blob {
    pub(crate) fn new(
        response: reqwest::Response,
        expected: Digest,
        size: u64,
        deadline: Option<tokio::time::Instant>,
        what: String,
        counters: std::sync::Arc<Counters>,
    ) -> Blob {
        Blob {
            stream: Box::pin(response.bytes_stream()),
            hasher: Some(Hasher::new(expected.algorithm())),
            expected,
            size,
            read: 0,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            what,
            counters,
            done: false,
        }
    }

    /// The digest the content is verified against.
    pub fn digest(&self) -> &Digest {
        &self.expected
    }

    /// The expected size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next chunk, `None` at the verified end.
    ///
    /// # Errors
    ///
    /// [`Error::DigestMismatch`] when the content exceeds or falls short of the size or hashes
    /// to another digest, [`Error::Network`] when the connection breaks or the deadline passes.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, Error>> {
        self.next().await
    }

    /// A blocking reader over the same bytes, for code on a blocking thread (e.g. inside
    /// `tokio::task::spawn_blocking`). A task on the current tokio runtime pulls the stream into a
    /// bounded channel; dropping the reader stops it. Errors surface as `io::Error`s that
    /// [`Error::from_io`] unwraps.
    ///
    /// Call `read` only from a thread where blocking is allowed, never from async code.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when called outside a tokio runtime.
    pub fn into_reader(mut self) -> Result<BlobReader, Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|e| Error::Io {
            message: "blob reader needs a tokio runtime".into(),
            source: std::io::Error::other(e),
        })?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Option<Bytes>, Error>>(8);
        handle.spawn(async move {
            loop {
                let item = match self.next().await {
                    Some(Ok(chunk)) => Ok(Some(chunk)),
                    Some(Err(e)) => Err(e),
                    // The verified end, told explicitly: a closed channel alone is a failure.
                    None => Ok(None),
                };
                let last = !matches!(item, Ok(Some(_)));
                if tx.send(item).await.is_err() || last {
                    break;
                }
            }
        });
        Ok(BlobReader {
            rx,
            current: Bytes::new(),
            finished: false,
        })
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<Bytes, Error>>> {
        self.done = true;
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for Blob {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            let message = format!("{}: deadline exceeded while reading the blob", self.what);
            return self.fail(Error::Network {
                message,
                source: None,
            });
        }
        match self.stream.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let this = &mut *self;
                this.read += chunk.len() as u64;
                this.counters.add_blob_bytes(chunk.len() as u64);
                if this.read > this.size {
                    let message = format!(
                        "{}: size mismatch: expected {} bytes, got more",
                        this.what, this.size
                    );
                    return self.fail(Error::DigestMismatch { message });
                }
                if let Some(h) = this.hasher.as_mut() {
                    h.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let message = format!(
                    "{}: connection failed after {} of {} bytes",
                    self.what, self.read, self.size
                );
                self.fail(Error::Network {
                    message,
                    source: Some(Box::new(e.without_url())),
                })
            }
            Poll::Ready(None) => {
                self.done = true;
                if self.read != self.size {
                    let message = format!(
                        "{}: size mismatch: expected {} bytes, got {}",
                        self.what, self.size, self.read
                    );
                    return Poll::Ready(Some(Err(Error::DigestMismatch { message })));
                }
                let actual = self.hasher.take().map(Hasher::finish).unwrap_or_default();
                if actual != self.expected.hex() {
                    let message = format!(
                        "{}: digest mismatch: expected {}, got {}:{}",
                        self.what,
                        self.expected,
                        self.expected.algorithm().as_str(),
                        actual
                    );
                    return Poll::Ready(Some(Err(Error::DigestMismatch { message })));
                }
                Poll::Ready(None)
            }
        }
    }
}

/// A blocking [`std::io::Read`] over a [`Blob`]; see [`Blob::into_reader`].
#[derive(Debug)]
pub struct BlobReader {
    rx: tokio::sync::mpsc::Receiver<Result<Option<Bytes>, Error>>,
    current: Bytes,
    finished: bool,
}

impl std::io::Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            if self.finished {
                return Ok(0);
            }
            // `futures`' executor parks this thread; the runtime's task fills the channel.
            match futures::executor::block_on(self.rx.recv()) {
                Some(Ok(Some(chunk))) => self.current = chunk,
                Some(Ok(None)) => self.finished = true,
                Some(Err(e)) => {
                    self.finished = true;
                    return Err(e.into_io());
                }
                None => {
                    self.finished = true;
                    return Err(Error::Network {
                        message: "blob stream stopped before its end".into(),
                        source: None,
                    }
                    .into_io());
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
