//! The one writer of an object's status: the final status of a reconcile as a forced
//! server-side apply of the status subresource (field manager `source-controller`, as Flux's), and
//! the progress reports before it, coalesced to at most one write a second so that a new object
//! costs one progress write instead of three while a long pull still shows its latest progress.

use std::sync::Arc;
use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::controller::{Error, FIELD_MANAGER};
use crate::api::v1::{OciRepository, OciRepositoryStatus};
use crate::core::message;
use crate::core::ports::ProgressSink;

/// Writes `status` as the object's whole status (an object gone meanwhile is not an error).
pub(super) async fn write_status(
    api: &Api<OciRepository>,
    name: &str,
    status: &OciRepositoryStatus,
) -> Result<(), Error> {
    let patch = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "status": status,
    });
    match api
        .patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::PatchStatus(e)),
    }
}

/// Writes an object's status; what [`Progress`] reports through.
pub(super) trait StatusWriter: Clone + Send + Sync + 'static {
    fn write(&self, status: &OciRepositoryStatus) -> impl Future<Output = ()> + Send;
}

/// The status subresource of one object.
#[derive(Clone)]
pub(super) struct ApiStatus {
    pub(super) api: Api<OciRepository>,
    pub(super) name: String,
}

impl StatusWriter for ApiStatus {
    async fn write(&self, status: &OciRepositoryStatus) {
        if let Err(e) = write_status(&self.api, &self.name, status).await {
            tracing::warn!(name = %self.name, error = %message::render(&e), "failed to patch progress");
        }
    }
}

/// Progress reports closer together than this are coalesced.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Mid-reconcile status patches, at most one per [`PROGRESS_INTERVAL`]: a report that follows a
/// write within the interval is held back and written when the interval ends, unless the
/// reconcile has finished by then (its final status supersedes it). A new object's "new
/// generation" and "building artifact" reports, milliseconds apart, so cost one write instead of
/// three, while a long pull still shows its latest progress within a second.
pub(super) struct Progress<W: StatusWriter> {
    writer: W,
    state: Arc<tokio::sync::Mutex<ProgressState>>,
}

#[derive(Default)]
struct ProgressState {
    last_write: Option<tokio::time::Instant>,
    pending: Option<OciRepositoryStatus>,
    timer: bool,
    finished: bool,
}

impl<W: StatusWriter> Progress<W> {
    pub(super) fn new(writer: W) -> Progress<W> {
        Progress {
            writer,
            state: Arc::default(),
        }
    }

    /// Ends progress reporting: a held-back report is dropped, and a write in flight completes
    /// first, so that the final status is always the last write. True when progress was written
    /// (the final status must then be written even if it equals the one the reconcile started
    /// with).
    pub(super) async fn finish(&self) -> bool {
        let mut state = self.state.lock().await;
        state.finished = true;
        state.pending = None;
        state.last_write.is_some()
    }
}

impl<W: StatusWriter> ProgressSink for Progress<W> {
    async fn progress(&self, status: &OciRepositoryStatus) {
        let mut state = self.state.lock().await;
        if state.finished {
            return;
        }
        let due = state.last_write.map(|at| at + PROGRESS_INTERVAL);
        match due {
            Some(due) if tokio::time::Instant::now() < due => {
                state.pending = Some(status.clone());
                if !state.timer {
                    state.timer = true;
                    let (shared, writer) = (self.state.clone(), self.writer.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep_until(due).await;
                        let mut state = shared.lock().await;
                        state.timer = false;
                        if let Some(status) = state.pending.take()
                            && !state.finished
                        {
                            state.last_write = Some(tokio::time::Instant::now());
                            writer.write(&status).await;
                        }
                    });
                }
            }
            _ => {
                // A report still held for a timer that has not run yet is older than this one.
                state.pending = None;
                state.last_write = Some(tokio::time::Instant::now());
                self.writer.write(status).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records what was written, and when.
    #[derive(Clone, Default)]
    struct Recorder(
        Arc<Mutex<Vec<(Duration, String)>>>,
        Option<tokio::time::Instant>,
    );

    impl StatusWriter for Recorder {
        async fn write(&self, status: &OciRepositoryStatus) {
            let at = self.1.map(|t| t.elapsed()).unwrap_or_default();
            let message = status.conditions.first().map(|c| c.message.clone());
            self.0
                .lock()
                .unwrap()
                .push((at, message.unwrap_or_default()));
        }
    }

    fn report(message: &str) -> OciRepositoryStatus {
        serde_json::from_value(json!({"conditions": [{
            "type": "Reconciling", "status": "True", "reason": "Progressing",
            "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z"
        }]}))
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn progress_close_together_is_one_write_and_the_final_status_supersedes_the_rest() {
        let recorder = Recorder(Arc::default(), Some(tokio::time::Instant::now()));
        let progress = Progress::new(recorder.clone());
        progress.progress(&report("new generation")).await;
        progress.progress(&report("building artifact")).await;
        progress
            .progress(&report("building artifact: new revision"))
            .await;
        assert!(progress.finish().await, "progress was written");
        tokio::time::sleep(Duration::from_secs(5)).await;
        progress.progress(&report("too late")).await;
        let written = recorder.0.lock().unwrap().clone();
        assert_eq!(written, [(Duration::ZERO, "new generation".to_string())]);
    }

    #[tokio::test(start_paused = true)]
    async fn held_back_progress_is_written_when_the_interval_ends() {
        let recorder = Recorder(Arc::default(), Some(tokio::time::Instant::now()));
        let progress = Progress::new(recorder.clone());
        progress.progress(&report("new generation")).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        progress.progress(&report("building artifact")).await;
        progress
            .progress(&report("building artifact: new revision"))
            .await;
        // A long pull: the latest report appears one interval after the first write.
        tokio::time::sleep(Duration::from_secs(3)).await;
        progress.progress(&report("verifying")).await;
        assert!(progress.finish().await);
        let written = recorder.0.lock().unwrap().clone();
        assert_eq!(
            written,
            [
                (Duration::ZERO, "new generation".to_string()),
                (
                    PROGRESS_INTERVAL,
                    "building artifact: new revision".to_string()
                ),
                (Duration::from_millis(3200), "verifying".to_string()),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_back_report_never_overwrites_a_newer_one() {
        let recorder = Recorder(Arc::default(), Some(tokio::time::Instant::now()));
        let progress = Progress::new(recorder.clone());
        progress.progress(&report("a")).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        progress.progress(&report("b")).await;
        // The interval ends; a newer report arrives before the timer holding "b" has run.
        tokio::time::advance(Duration::from_millis(900)).await;
        progress.progress(&report("c")).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let written: Vec<String> = recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|w| w.1.clone())
            .collect();
        assert_eq!(written, ["a", "c"]);
    }

    #[tokio::test(start_paused = true)]
    async fn without_progress_finish_says_nothing_was_written() {
        let progress = Progress::new(Recorder::default());
        assert!(!progress.finish().await);
    }
}
