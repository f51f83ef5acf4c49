//! Progress of the long transfers of `push artifact` and `pull artifact`: indicatif bars on
//! stderr when stderr is a terminal, nothing at all otherwise, so piped or captured output stays
//! the lines flux prints. A bar is cleared when its transfer ends.

use std::io::{IsTerminal as _, Read, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether bars are drawn: made once per command, handed to the transfers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    drawn: bool,
}

impl Progress {
    /// No bars (library callers, tests).
    pub fn hidden() -> Progress {
        Progress { drawn: false }
    }

    /// Bars on stderr when it is a terminal.
    pub fn on_stderr() -> Progress {
        Progress {
            drawn: std::io::stderr().is_terminal(),
        }
    }

    /// A bar of `total` bytes, `label` before it.
    pub fn bar(&self, label: &str, total: u64) -> Bar {
        self.make(
            label,
            ProgressBar::new(total),
            "{prefix} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
    }

    /// A byte counter for a transfer of unknown size, `label` before it.
    pub fn counter(&self, label: &str) -> Bar {
        self.make(
            label,
            ProgressBar::new_spinner(),
            "{spinner} {prefix} {bytes} ({bytes_per_sec})",
        )
    }

    fn make(&self, label: &str, bar: ProgressBar, template: &str) -> Bar {
        if !self.drawn {
            return Bar(ProgressBar::hidden());
        }
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_string());
        // A spinner moves while nothing arrives; a bar is drawn at once, not at its first
        // update.
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(bar)
    }
}

/// One transfer's bar (hidden when bars are not drawn). Cheap to clone; every clone moves the
/// same bar.
#[derive(Clone, Debug)]
pub struct Bar(ProgressBar);

impl Bar {
    /// The bytes done so far.
    pub fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    /// `n` more bytes done.
    pub fn add(&self, n: u64) {
        self.0.inc(n);
    }

    /// The transfer ended: the bar is cleared from the terminal.
    pub fn done(&self) {
        self.0.finish_and_clear();
    }
}

/// A writer counting the bytes it writes into a [`Bar`].
#[derive(Debug)]
pub struct CountingWriter<W> {
    inner: W,
    bar: Bar,
}

impl<W> CountingWriter<W> {
    /// `inner`, counted into `bar`.
    pub fn new(inner: W, bar: Bar) -> CountingWriter<W> {
        CountingWriter { inner, bar }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader counting the bytes it reads into a [`Bar`].
#[derive(Debug)]
pub struct CountingReader<R> {
    inner: R,
    bar: Bar,
}

impl<R> CountingReader<R> {
    /// `inner`, counted into `bar`.
    pub fn new(inner: R, bar: Bar) -> CountingReader<R> {
        CountingReader { inner, bar }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_wrappers_pass_bytes_through_unchanged() {
        let bar = Progress::hidden().bar("x", 10);
        let mut w = CountingWriter::new(Vec::new(), bar.clone());
        w.write_all(b"hello").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.into_inner(), b"hello");
        let mut r = CountingReader::new(&b"world"[..], bar.clone());
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, "world");
        assert_eq!(bar.0.position(), 10);
        bar.done();
    }
}
