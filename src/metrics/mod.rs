//! Prometheus metrics under Flux's names, so existing dashboards and alerts keep working:
//! `gotk_reconcile_duration_seconds`, controller-runtime's reconcile counters and worker gauges
//! (labelled `controller="ocirepository"`), client-go's `workqueue_*` metrics as
//! controller-runtime v0.21/v0.22 labels them (`controller` and `name`, both `ocirepository`),
//! the process collector's `process_*` metrics, plus the registry requests this controller makes.
//! This module owns every metric name.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::registry::RequestCounts;

mod objects;
mod process;
mod scrape;

use objects::ObjectDurations;
pub use scrape::router;

/// controller-runtime's buckets of `controller_runtime_reconcile_time_seconds`.
const RECONCILE_TIME_BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

/// Label value of `controller` on controller-runtime metrics.
pub const CONTROLLER: &str = "ocirepository";

/// Labels of `gotk_reconcile_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ObjectLabels {
    /// Always `OCIRepository` (static: one series per object, so no copy per series).
    pub kind: &'static str,
    /// Object name.
    pub name: String,
    /// Object namespace.
    pub namespace: String,
}

/// Labels of the reconcile counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ocirepository`.
    pub controller: String,
    /// `success`, `error`, `requeue` or `requeue_after`.
    pub result: String,
}

/// Labels of the error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `ocirepository`.
    pub controller: String,
}

/// Labels of the `workqueue_*` metrics but the depth.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `ocirepository`.
    pub controller: String,
    /// The queue's name: `ocirepository`.
    pub name: String,
}

/// Labels of `workqueue_depth`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DepthLabels {
    /// `ocirepository`.
    pub controller: String,
    /// The queue's name: `ocirepository`.
    pub name: String,
    /// Always empty: controller-runtime's default queue has no priorities.
    pub priority: String,
}

/// The work queue at one instant (see `k8s::workqueue`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueSample {
    /// Keys due and not yet picked up by a worker.
    pub depth: i64,
    /// Keys added to the queue so far.
    pub adds: u64,
    /// Requeues so far.
    pub retries: u64,
    /// Reconciles running now.
    pub active_workers: i64,
    /// Summed age of the running reconciles.
    pub unfinished_work_seconds: f64,
    /// Age of the oldest running reconcile.
    pub longest_running_processor_seconds: f64,
}

/// Samples the work queue at scrape time.
pub type QueueSampler = Box<dyn Fn() -> QueueSample + Send + Sync>;

/// Reads the registry request counters at scrape time.
pub type RequestSampler = Box<dyn Fn() -> RequestCounts + Send + Sync>;

/// Reads the signature verification counters at scrape time: verifications that ran and
/// verifications shared with an earlier one.
pub type VerificationSampler = Box<dyn Fn() -> (u64, u64) + Send + Sync>;

/// Reads the registry resolution counters at scrape time: resolutions that asked the registry
/// and resolutions answered with another object's recent answer.
pub type ResolutionSampler = Box<dyn Fn() -> (u64, u64) + Send + Sync>;

/// Labels of the signature verification and registry resolution counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerificationLabels {
    /// `run` (checked against, or asked of, the registry) or `shared` (an earlier identical
    /// verification's outcome, another object's recent answer).
    pub kind: String,
}

/// Labels of `leader_election_master_status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabels {
    /// The Lease's name.
    pub name: String,
}

/// Labels of registry request counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `ping`, `token`, `tags`, `manifest_head`, `manifest_get`, `blob`.
    pub kind: String,
}

/// The metrics of one controller process.
pub struct Metrics {
    registry: Registry,
    // Only the per-object histogram: encoded after `registry`, streamed (see `encoded`).
    objects: Registry,
    duration: ObjectDurations,
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ControllerLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    verifications: Family<VerificationLabels, Counter>,
    resolutions: Family<VerificationLabels, Counter>,
    contents: Family<VerificationLabels, Counter>,
    queue: QueueMetrics,
    max_concurrent: Family<ControllerLabels, Gauge>,
    active_workers: Family<ControllerLabels, Gauge>,
    sampler: Mutex<Sampled>,
    reconcile_time: Family<ControllerLabels, Histogram>,
    leader: Family<LeaseLabels, Gauge>,
    process: process::ProcessMetrics,
}

struct QueueMetrics {
    depth: Family<DepthLabels, Gauge>,
    adds: Family<QueueLabels, Counter>,
    queue_duration: Family<QueueLabels, Histogram>,
    work_duration: Family<QueueLabels, Histogram>,
    unfinished: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    longest: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    retries: Family<QueueLabels, Counter>,
}

// The samplers and the counter totals they last exported.
#[derive(Default)]
struct Sampled {
    sampler: Option<QueueSampler>,
    adds: u64,
    retries: u64,
    requests: Option<RequestSampler>,
    exported_requests: RequestCounts,
    verifications: Option<VerificationSampler>,
    exported_verifications: (u64, u64),
    resolutions: Option<ResolutionSampler>,
    exported_resolutions: (u64, u64),
    contents: Option<ResolutionSampler>,
    exported_contents: (u64, u64),
}

fn queue_labels() -> QueueLabels {
    QueueLabels {
        controller: CONTROLLER.to_string(),
        name: CONTROLLER.to_string(),
    }
}

fn controller_labels() -> ControllerLabels {
    ControllerLabels {
        controller: CONTROLLER.to_string(),
    }
}

// client-go's workqueue buckets, `ExponentialBuckets(10e-9, 10, 12)`: 10 ns to 1000 s,
// multiplied step by step as Go does, so that the boundaries are the same floats.
fn workqueue_buckets() -> Vec<f64> {
    let mut bucket = 10e-9;
    let mut buckets = Vec::with_capacity(12);
    for _ in 0..12 {
        buckets.push(bucket);
        bucket *= 10.0;
    }
    buckets
}

fn workqueue_histogram() -> Histogram {
    Histogram::new(workqueue_buckets())
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        // Flux: 10 exponential buckets from 10 ms to 30 min ([`DURATION_BOUNDS`]).
        let duration = ObjectDurations::default();
        let mut objects = Registry::default();
        objects.register_collector(Box::new(duration.clone()));
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            reconciles.clone(),
        );
        let errors = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            errors.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "ocisource_registry_requests",
            "Requests sent to OCI registries, by kind",
            requests.clone(),
        );
        let verifications = Family::<VerificationLabels, Counter>::default();
        registry.register(
            "ocisource_signature_verifications",
            "Signature verifications, by whether they ran or were shared with an earlier one",
            verifications.clone(),
        );
        let resolutions = Family::<VerificationLabels, Counter>::default();
        registry.register(
            "ocisource_registry_resolutions",
            "Tag digest and tag list resolutions, by whether they asked the registry or shared another object's recent answer",
            resolutions.clone(),
        );
        let contents = Family::<VerificationLabels, Counter>::default();
        registry.register(
            "ocisource_artifact_contents",
            "New artifact contents, by whether the object downloaded and stored them or linked the copy another object had stored",
            contents.clone(),
        );
        let max_concurrent = Family::<ControllerLabels, Gauge>::default();
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            max_concurrent.clone(),
        );
        let active_workers = Family::<ControllerLabels, Gauge>::default();
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            active_workers.clone(),
        );
        let queue = QueueMetrics::register(&mut registry);
        let reconcile_time = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(RECONCILE_TIME_BUCKETS.iter().copied())
        });
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            reconcile_time.clone(),
        );
        let leader = Family::<LeaseLabels, Gauge>::default();
        registry.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name",
            leader.clone(),
        );
        let process = process::ProcessMetrics::register(&mut registry);
        Metrics {
            reconcile_time,
            leader,
            process,
            registry,
            objects,
            duration,
            reconciles,
            errors,
            requests,
            verifications,
            resolutions,
            contents,
            queue,
            max_concurrent,
            active_workers,
            sampler: Mutex::new(Sampled::default()),
        }
    }

    /// Exports the work queue's metrics, read from `sampler` at each scrape, and the worker
    /// limit `max_concurrent` (0: unbounded).
    pub fn observe_queue(&self, max_concurrent: u16, sampler: QueueSampler) {
        self.max_concurrent
            .get_or_create(&controller_labels())
            .set(i64::from(max_concurrent));
        self.sampler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sampler = Some(sampler);
    }

    /// Exports the registry request counters, read from `sampler` at each scrape.
    pub fn observe_registries(&self, sampler: RequestSampler) {
        self.sampler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requests = Some(sampler);
    }

    /// Exports the signature verification counters, read from `sampler` at each scrape.
    pub fn observe_verifications(&self, sampler: VerificationSampler) {
        self.sampler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .verifications = Some(sampler);
    }

    /// Exports the registry resolution counters, read from `sampler` at each scrape.
    pub fn observe_resolutions(&self, sampler: ResolutionSampler) {
        self.sampler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .resolutions = Some(sampler);
    }

    /// Exports the shared artifact counters (downloads stored, copies linked), read from
    /// `sampler` at each scrape.
    pub fn observe_contents(&self, sampler: ResolutionSampler) {
        self.sampler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contents = Some(sampler);
    }

    /// Whether this replica holds the Lease `name` (client-go's leader election gauge).
    pub fn leader(&self, name: &str, leading: bool) {
        self.leader
            .get_or_create(&LeaseLabels {
                name: name.to_string(),
            })
            .set(i64::from(leading));
    }

    /// Records how long a key waited in the queue once due.
    pub fn queue_duration(&self, waited: Duration) {
        self.queue
            .queue_duration
            .get_or_create(&queue_labels())
            .observe(waited.as_secs_f64());
    }

    /// Records how long a worker spent on a key.
    pub fn work_duration(&self, worked: Duration) {
        self.queue
            .work_duration
            .get_or_create(&queue_labels())
            .observe(worked.as_secs_f64());
    }

    // Brings the queue metrics up to date; a no-op until `observe_queue`.
    fn refresh_queue(&self) {
        let mut sampled = self.sampler.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sample) = sampled.sampler.as_ref().map(|f| f()) else {
            return;
        };
        let labels = queue_labels();
        let q = &self.queue;
        q.depth
            .get_or_create(&DepthLabels {
                controller: CONTROLLER.to_string(),
                name: CONTROLLER.to_string(),
                priority: String::new(),
            })
            .set(sample.depth);
        q.adds
            .get_or_create(&labels)
            .inc_by(sample.adds.saturating_sub(sampled.adds));
        q.retries
            .get_or_create(&labels)
            .inc_by(sample.retries.saturating_sub(sampled.retries));
        sampled.adds = sampled.adds.max(sample.adds);
        sampled.retries = sampled.retries.max(sample.retries);
        q.unfinished
            .get_or_create(&labels)
            .set(sample.unfinished_work_seconds);
        q.longest
            .get_or_create(&labels)
            .set(sample.longest_running_processor_seconds);
        // Present with a zero count before the first reconcile, as in controller-runtime.
        let _ = q.queue_duration.get_or_create(&labels);
        let _ = q.work_duration.get_or_create(&labels);
        self.active_workers
            .get_or_create(&controller_labels())
            .set(sample.active_workers);
    }

    /// Records one reconcile of `namespace/name` that took `seconds` and ended with `result`
    /// (`success`, `error`, `requeue`, `requeue_after`).
    pub fn reconciled(&self, namespace: &str, name: &str, seconds: f64, result: &str) {
        self.reconcile_time
            .get_or_create(&controller_labels())
            .observe(seconds);
        self.duration.observe(
            ObjectLabels {
                kind: crate::api::KIND,
                name: name.to_string(),
                namespace: namespace.to_string(),
            },
            seconds,
        );
        self.reconciles
            .get_or_create(&ResultLabels {
                controller: CONTROLLER.to_string(),
                result: result.to_string(),
            })
            .inc();
        if result == "error" {
            self.errors
                .get_or_create(&ControllerLabels {
                    controller: CONTROLLER.to_string(),
                })
                .inc();
        }
    }

    /// Forgets the reconcile duration series of `namespace/name`, whose deletion has ended (its
    /// finalizer removed): as Flux does, so that objects coming and going leave no series behind.
    pub fn deleted(&self, namespace: &str, name: &str) {
        self.duration.forget(&ObjectLabels {
            kind: crate::api::KIND,
            name: name.to_string(),
            namespace: namespace.to_string(),
        });
    }

    // Brings the registry request counters up to date; a no-op until `observe_registries`. A
    // kind appears once it has been requested.
    fn refresh_requests(&self) {
        let mut sampled = self.sampler.lock().unwrap_or_else(|e| e.into_inner());
        let Some(now) = sampled.requests.as_ref().map(|f| f()) else {
            return;
        };
        let delta = now - sampled.exported_requests;
        for (kind, n) in [
            ("ping", delta.ping),
            ("token", delta.token),
            ("tags", delta.tags),
            ("manifest_head", delta.manifest_head),
            ("manifest_get", delta.manifest_get),
            ("blob", delta.blob),
        ] {
            if n > 0 {
                self.requests
                    .get_or_create(&RequestLabels {
                        kind: kind.to_string(),
                    })
                    .inc_by(n);
            }
        }
        sampled.exported_requests = now;
    }

    // Brings the signature verification and resolution counters up to date; each is a no-op
    // until its `observe_*`.
    fn refresh_run_shared(&self) {
        let mut sampled = self.sampler.lock().unwrap_or_else(|e| e.into_inner());
        let Sampled {
            verifications,
            exported_verifications,
            resolutions,
            exported_resolutions,
            contents,
            exported_contents,
            ..
        } = &mut *sampled;
        for (sampler, exported, family) in [
            (verifications, exported_verifications, &self.verifications),
            (resolutions, exported_resolutions, &self.resolutions),
            (contents, exported_contents, &self.contents),
        ] {
            let Some((run, shared)) = sampler.as_ref().map(|f| f()) else {
                continue;
            };
            let (was_run, was_shared) = *exported;
            for (kind, n) in [
                ("run", run.saturating_sub(was_run)),
                ("shared", shared.saturating_sub(was_shared)),
            ] {
                if n > 0 {
                    family
                        .get_or_create(&VerificationLabels {
                            kind: kind.to_string(),
                        })
                        .inc_by(n);
                }
            }
            *exported = (run.max(was_run), shared.max(was_shared));
        }
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.render_to(&mut out).is_err() {
            out.clear();
        }
        out
    }

    /// Writes the metrics in the OpenMetrics text format to `out`.
    ///
    /// # Errors
    /// `out`'s error: the encoding stops there.
    pub fn render_to(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        self.render_families(out)?;
        self.render_objects(out)
    }

    // Every metric but the per-object histogram, a few kilobytes: prometheus-client holds each
    // family's lock while it writes that family to `out`.
    fn render_families(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        self.refresh_queue();
        self.refresh_requests();
        self.refresh_run_shared();
        self.process.refresh();
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
    }

    // The per-object histogram and the end of the text, holding no lock while it writes.
    fn render_objects(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        prometheus_client::encoding::text::encode_registry(out, &self.objects)?;
        prometheus_client::encoding::text::encode_eof(out)
    }
}

impl QueueMetrics {
    // Help texts are client-go's (via controller-runtime). prometheus-client appends a full
    // stop, so the ones that end with one in Go are registered without it.
    fn register(registry: &mut Registry) -> QueueMetrics {
        let depth = Family::<DepthLabels, Gauge>::default();
        registry.register(
            "workqueue_depth",
            "Current depth of workqueue by workqueue and priority",
            depth.clone(),
        );
        let adds = Family::<QueueLabels, Counter>::default();
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            adds.clone(),
        );
        let queue_duration =
            Family::<QueueLabels, Histogram>::new_with_constructor(workqueue_histogram);
        registry.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            queue_duration.clone(),
        );
        let work_duration =
            Family::<QueueLabels, Histogram>::new_with_constructor(workqueue_histogram);
        registry.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            work_duration.clone(),
        );
        let unfinished = Family::<QueueLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been \
             observed by work_duration. Large values indicate stuck threads. One can deduce \
             the number of stuck threads by observing the rate at which this increases",
            unfinished.clone(),
        );
        let longest = Family::<QueueLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running",
            longest.clone(),
        );
        let retries = Family::<QueueLabels, Counter>::default();
        registry.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            retries.clone(),
        );
        QueueMetrics {
            depth,
            adds,
            queue_duration,
            work_duration,
            unfinished,
            longest,
            retries,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::header;
    use prometheus_client::metrics::histogram::exponential_buckets_range;

    use super::objects::{DURATION_BATCH, DURATION_HELP, DURATION_NAME};
    use super::scrape::{AHEAD, CHUNK, Pieces, SEND_TIMEOUT};
    use super::*;

    // The text without the process collector's lines, which change from one scrape to the next.
    fn stable(text: &str) -> String {
        text.lines()
            .filter(|l| !l.starts_with("process_") && !l.contains(" process_"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    // Metrics with one reconcile of each of `n` objects in `apps`.
    fn with_objects(n: usize) -> Arc<Metrics> {
        let m = Arc::new(Metrics::new());
        for i in 0..n {
            m.reconciled("apps", &format!("object-{i}"), 0.5, "success");
        }
        m
    }

    // A GET of `/metrics` through the router.
    async fn scrape(m: Arc<Metrics>) -> http::Response<axum::body::Body> {
        use tower::ServiceExt;

        router(m)
            .oneshot(
                http::Request::get("/metrics")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
    }

    // Runs `scenario` on a runtime of two workers, waiting from outside it: a runtime that
    // stalls cannot time itself out.
    fn within_a_minute(scenario: impl Future<Output = ()> + Send + 'static, what: &str) {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(scenario);
            let _ = done.send(());
        });
        finished.recv_timeout(Duration::from_secs(60)).expect(what);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scrape_sends_the_text_in_pieces() {
        use http_body_util::BodyExt;

        // About 1,600 bytes of histogram per object: several pieces.
        let m = with_objects(200);
        let response = scrape(m.clone()).await;
        assert_eq!(response.status(), http::StatusCode::OK);
        let mut body = response.into_body();
        let mut pieces = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                pieces.push(data);
            }
        }
        assert!(pieces.len() > 2, "{} pieces", pieces.len());
        assert!(pieces.iter().all(|p| p.len() <= CHUNK));
        let text = String::from_utf8(pieces.concat()).unwrap();
        assert!(text.ends_with("# EOF\n"), "the whole text");
        assert_eq!(stable(&text), stable(&m.render()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scrape_is_gzipped_when_the_scraper_asks() {
        use http_body_util::BodyExt;
        use std::io::Read;
        use tower::ServiceExt;

        let m = with_objects(200);
        let response = router(m.clone())
            .oneshot(
                http::Request::get("/metrics")
                    .header(header::ACCEPT_ENCODING, "gzip")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        let gzipped = response.into_body().collect().await.unwrap().to_bytes();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gzipped[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(stable(&text), stable(&m.render()));
        assert!(
            gzipped.len() * 5 < text.len(),
            "{} bytes for {}",
            gzipped.len(),
            text.len()
        );

        let plain = scrape(m).await;
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[test]
    fn a_scrape_does_not_wait_on_reconciles_that_add_series() {
        use http_body_util::BodyExt;

        // Reconciles adding series on both workers while scrapes run on them too, as the
        // server's connection tasks do.
        let scenario = async {
            let m = with_objects(2000);
            let writers: Vec<_> = (0..4)
                .map(|w| {
                    let m = m.clone();
                    tokio::spawn(async move {
                        for i in 0..2000 {
                            m.reconciled("new", &format!("object-{w}-{i}"), 0.1, "success");
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for _ in 0..5 {
                let m = m.clone();
                let text = tokio::spawn(async move {
                    let response = scrape(m).await;
                    response.into_body().collect().await.unwrap().to_bytes()
                })
                .await
                .unwrap();
                assert!(text.ends_with(b"# EOF\n"));
            }
            for w in writers {
                w.await.unwrap();
            }
        };
        within_a_minute(
            scenario,
            "scrapes beside reconciles that add series complete",
        );
    }

    #[test]
    fn the_object_histogram_encodes_as_prometheus_clients_histogram() {
        let ours = ObjectDurations::default();
        let theirs = Family::<ObjectLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets_range(0.01, 1800.0, 10))
        });
        for (name, values) in [
            (
                "a",
                &[0.0, 0.01, 0.0100001, 0.5, 3.0, 1800.0, 1800.5, 1e9][..],
            ),
            ("b", &[0.2, 0.2, 59.0][..]),
        ] {
            let labels = ObjectLabels {
                kind: crate::api::KIND,
                name: name.into(),
                namespace: "apps".into(),
            };
            for v in values {
                ours.observe(labels.clone(), *v);
                theirs.get_or_create(&labels).observe(*v);
            }
        }
        // Series come out in hash map order from a family: compare them sorted.
        fn sorted(text: &str) -> String {
            let mut lines: Vec<&str> = text.lines().collect();
            lines.sort_unstable();
            lines.join("\n")
        }
        let mut registry = Registry::default();
        registry.register(DURATION_NAME, DURATION_HELP.trim_end_matches('.'), theirs);
        let mut expected = String::new();
        prometheus_client::encoding::text::encode(&mut expected, &registry).unwrap();
        assert!(expected.contains("le=\"+Inf\""), "{expected}");
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ours));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert_eq!(sorted(&text), sorted(&expected));
    }

    #[test]
    fn object_series_are_encoded_in_label_order_across_batches() {
        let m = Metrics::new();
        let n = DURATION_BATCH * 3 + 5;
        for i in (0..n).rev() {
            m.reconciled("apps", &format!("object-{i:04}"), 0.5, "success");
        }
        let text = m.render();
        let names: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("gotk_reconcile_duration_seconds_count{"))
            .filter_map(|l| l.split("name=\"").nth(1)?.split('"').next())
            .collect();
        let expected: Vec<String> = (0..n).map(|i| format!("object-{i:04}")).collect();
        assert_eq!(names, expected);
        assert_eq!(
            text.matches("# TYPE gotk_reconcile_duration_seconds histogram\n")
                .count(),
            1
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_deleted_objects_series_goes_and_a_recreated_one_starts_again() {
        let m = Metrics::new();
        m.reconciled("apps", "gone", 0.5, "success");
        m.reconciled("apps", "kept", 0.5, "success");
        m.reconciled("other", "gone", 0.5, "success");
        m.deleted("apps", "gone");
        let count = |text: &str, namespace: &str, name: &str| {
            let series = format!(
                "gotk_reconcile_duration_seconds_count{{kind=\"OCIRepository\",name=\"{name}\",namespace=\"{namespace}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(series.as_str())?.parse::<f64>().ok())
        };
        let text = m.render();
        assert_eq!(count(&text, "apps", "gone"), None, "{text}");
        assert_eq!(count(&text, "apps", "kept"), Some(1.0), "{text}");
        assert_eq!(
            count(&text, "other", "gone"),
            Some(1.0),
            "same name elsewhere: {text}"
        );
        m.deleted("apps", "never-seen");
        m.reconciled("apps", "gone", 0.5, "success");
        assert_eq!(count(&m.render(), "apps", "gone"), Some(1.0));
    }

    // Writes `pieces` worth of text to a `Pieces` that sends from the start, on a blocking thread.
    fn write_pieces(
        pieces: usize,
        timeout: Duration,
    ) -> (
        tokio::sync::mpsc::Receiver<bytes::Bytes>,
        tokio::task::JoinHandle<std::fmt::Result>,
    ) {
        use std::fmt::Write;

        let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
        let mut out = Pieces::new(tx, timeout);
        let writer = tokio::task::spawn_blocking(move || {
            out.start_sending()?;
            let line = "x".repeat(1023) + "\n";
            for _ in 0..pieces * CHUNK / line.len() {
                out.write_str(&line)?;
            }
            out.finish()
        });
        (rx, writer)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scrape_encodes_only_a_few_pieces_ahead_of_its_reader() {
        let (mut rx, writer) = write_pieces(20, SEND_TIMEOUT);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!writer.is_finished(), "the writer waits for the reader");
        assert_eq!(rx.len(), AHEAD);
        let mut received = 0;
        while let Some(piece) = rx.recv().await {
            assert!(piece.len() <= CHUNK);
            received += piece.len();
        }
        assert_eq!(writer.await.unwrap(), Ok(()));
        assert_eq!(received, 20 * CHUNK / 1024 * 1024);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scrape_stops_when_its_reader_leaves_or_stalls() {
        let (rx, writer) = write_pieces(20, SEND_TIMEOUT);
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(rx);
        let stopped = tokio::time::timeout(Duration::from_secs(10), writer).await;
        assert_eq!(
            stopped.expect("stops once the reader is gone").unwrap(),
            Err(std::fmt::Error)
        );

        let (_rx, writer) = write_pieces(20, Duration::from_millis(200));
        let stopped = tokio::time::timeout(Duration::from_secs(10), writer).await;
        assert_eq!(
            stopped.expect("stops after the timeout").unwrap(),
            Err(std::fmt::Error)
        );
    }

    #[test]
    fn a_stalled_scrape_holds_up_no_reconcile() {
        use http_body_util::BodyExt;

        // A reader takes one piece and stops while reconciles add series and observe the old
        // ones; they finish, then the reader reads on.
        let scenario = async {
            let m = with_objects(2000);
            let mut body = scrape(m.clone()).await.into_body();
            let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let writer = {
                let m = m.clone();
                tokio::spawn(async move {
                    for i in 0..2000 {
                        m.reconciled("apps", &format!("object-{i}"), 0.1, "success");
                        m.reconciled("new", &format!("object-{i}"), 0.1, "success");
                    }
                })
            };
            writer.await.unwrap();
            let rest = body.collect().await.unwrap().to_bytes();
            let text = String::from_utf8([first, rest].concat()).unwrap();
            assert!(text.ends_with("# EOF\n"));
            assert!(text.contains("name=\"object-1999\",namespace=\"apps\""));
        };
        within_a_minute(scenario, "reconciles beside a stalled scrape complete");
    }

    #[test]
    fn flux_metric_names_are_exported() {
        let m = Metrics::new();
        m.reconciled("apps", "podinfo", 0.2, "requeue_after");
        m.reconciled("apps", "podinfo", 0.1, "error");
        let text = m.render();
        assert!(text.contains(
            "gotk_reconcile_duration_seconds_count{kind=\"OCIRepository\",name=\"podinfo\",namespace=\"apps\"} 2"
        ), "{text}");
        assert!(text.contains(
            "controller_runtime_reconcile_total{controller=\"ocirepository\",result=\"requeue_after\"} 1"
        ), "{text}");
        assert!(
            text.contains(
                "controller_runtime_reconcile_errors_total{controller=\"ocirepository\"} 1"
            ),
            "{text}"
        );
        let buckets: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("gotk_reconcile_duration_seconds_bucket{le=\""))
            .filter_map(|l| l.split('"').nth(1)?.parse().ok())
            .collect();
        // Flux: 10 exponential buckets from 10 ms to 30 min (then +Inf).
        assert_eq!(buckets.len(), 11, "{text}");
        assert!((buckets[0] - 0.01).abs() < 1e-9);
        assert!((buckets[9] - 1800.0).abs() < 1e-6, "{buckets:?}");
        assert!(buckets[10].is_infinite());
        assert!(
            text.contains(
                "controller_runtime_reconcile_time_seconds_count{controller=\"ocirepository\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("controller_runtime_reconcile_time_seconds_bucket{le=\"60.0\",controller=\"ocirepository\"} 2"),
            "{text}"
        );
        m.leader("ocisource-leader-election", true);
        assert!(
            m.render()
                .contains("leader_election_master_status{name=\"ocisource-leader-election\"} 1")
        );
        // The process collector's metrics, as Flux's dashboards chart them.
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_start_time_seconds ",
            "process_open_fds ",
            "process_max_fds ",
        ] {
            assert!(text.lines().any(|l| l.starts_with(name)), "{name}: {text}");
        }
    }

    #[test]
    fn workqueue_metrics_carry_controller_runtime_names_labels_and_buckets() {
        let m = Metrics::new();
        assert!(
            !m.render().contains("workqueue_depth{"),
            "nothing before the controller runs"
        );
        let sample = Arc::new(Mutex::new(QueueSample {
            depth: 3,
            adds: 5,
            retries: 2,
            active_workers: 1,
            unfinished_work_seconds: 1.5,
            longest_running_processor_seconds: 1.5,
        }));
        let source = sample.clone();
        m.observe_queue(4, Box::new(move || source.lock().unwrap().clone()));
        m.queue_duration(Duration::from_millis(20));
        m.work_duration(Duration::from_millis(300));
        let text = m.render();
        let q = "{controller=\"ocirepository\",name=\"ocirepository\"}";
        for line in [
            "workqueue_depth{controller=\"ocirepository\",name=\"ocirepository\",priority=\"\"} 3".to_string(),
            format!("workqueue_adds_total{q} 5"),
            format!("workqueue_retries_total{q} 2"),
            format!("workqueue_queue_duration_seconds_count{q} 1"),
            format!("workqueue_work_duration_seconds_count{q} 1"),
            format!("workqueue_unfinished_work_seconds{q} 1.5"),
            format!("workqueue_longest_running_processor_seconds{q} 1.5"),
            "controller_runtime_active_workers{controller=\"ocirepository\"} 1".to_string(),
            "controller_runtime_max_concurrent_reconciles{controller=\"ocirepository\"} 4"
                .to_string(),
            "# HELP workqueue_work_duration_seconds How long in seconds processing an item from workqueue takes.".to_string(),
            "# TYPE workqueue_queue_duration_seconds histogram".to_string(),
            "# TYPE workqueue_depth gauge".to_string(),
            "# TYPE workqueue_adds counter".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        let buckets: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("workqueue_work_duration_seconds_bucket{"))
            .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect();
        // client-go: ExponentialBuckets(10e-9, 10, 12), then +Inf.
        assert_eq!(buckets.len(), 13, "{text}");
        assert_eq!(buckets[0], 1e-8);
        assert!((buckets[11] - 1000.0).abs() < 1e-9, "{buckets:?}");
        assert!(buckets[12].is_infinite());

        // Counters follow the sampled totals without counting anything twice.
        *sample.lock().unwrap() = QueueSample {
            adds: 7,
            retries: 2,
            ..Default::default()
        };
        let text = m.render();
        assert!(
            text.contains(&format!("workqueue_adds_total{q} 7\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("workqueue_retries_total{q} 2\n")),
            "{text}"
        );
        assert!(text.contains("workqueue_depth{controller=\"ocirepository\",name=\"ocirepository\",priority=\"\"} 0\n"), "{text}");
    }

    #[test]
    fn signature_verifications_are_read_at_scrape_time() {
        let m = Metrics::new();
        let counts = Arc::new(Mutex::new((0u64, 0u64)));
        let source = counts.clone();
        m.observe_verifications(Box::new(move || *source.lock().unwrap()));
        assert!(
            !m.render()
                .contains("ocisource_signature_verifications_total{")
        );
        *counts.lock().unwrap() = (1, 99);
        let text = m.render();
        assert!(
            text.contains("ocisource_signature_verifications_total{kind=\"run\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ocisource_signature_verifications_total{kind=\"shared\"} 99\n"),
            "{text}"
        );
        counts.lock().unwrap().0 = 2;
        let text = m.render();
        assert!(
            text.contains("ocisource_signature_verifications_total{kind=\"run\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("ocisource_signature_verifications_total{kind=\"shared\"} 99\n"),
            "{text}"
        );
    }

    #[test]
    fn shared_artifact_contents_are_read_at_scrape_time() {
        let m = Metrics::new();
        let counts = Arc::new(Mutex::new((0u64, 0u64)));
        let source = counts.clone();
        m.observe_contents(Box::new(move || *source.lock().unwrap()));
        assert!(!m.render().contains("ocisource_artifact_contents_total{"));
        *counts.lock().unwrap() = (10, 990);
        let text = m.render();
        for line in [
            "ocisource_artifact_contents_total{kind=\"run\"} 10\n",
            "ocisource_artifact_contents_total{kind=\"shared\"} 990\n",
        ] {
            assert!(text.contains(line), "{text}");
        }
        assert!(
            !text.contains("ocisource_registry_resolutions_total{"),
            "{text}"
        );
    }

    #[test]
    fn registry_resolutions_are_read_at_scrape_time() {
        let m = Metrics::new();
        let counts = Arc::new(Mutex::new((0u64, 0u64)));
        let source = counts.clone();
        m.observe_resolutions(Box::new(move || *source.lock().unwrap()));
        assert!(!m.render().contains("ocisource_registry_resolutions_total{"));
        *counts.lock().unwrap() = (10, 990);
        let text = m.render();
        assert!(
            text.contains("ocisource_registry_resolutions_total{kind=\"run\"} 10\n"),
            "{text}"
        );
        assert!(
            text.contains("ocisource_registry_resolutions_total{kind=\"shared\"} 990\n"),
            "{text}"
        );
        assert!(
            !text.contains("ocisource_signature_verifications_total{"),
            "{text}"
        );
    }

    #[test]
    fn registry_requests_are_read_at_scrape_time() {
        let m = Metrics::new();
        assert!(!m.render().contains("ocisource_registry_requests_total{"));
        let counts = Arc::new(Mutex::new(RequestCounts::default()));
        let source = counts.clone();
        m.observe_registries(Box::new(move || *source.lock().unwrap()));
        // Nothing requested yet: no series, as before the first request.
        assert!(!m.render().contains("ocisource_registry_requests_total{"));
        *counts.lock().unwrap() = RequestCounts {
            ping: 2,
            manifest_head: 1,
            blob: 1,
            blob_bytes: 4096,
            ..Default::default()
        };
        let text = m.render();
        for line in [
            "ocisource_registry_requests_total{kind=\"ping\"} 2\n",
            "ocisource_registry_requests_total{kind=\"manifest_head\"} 1\n",
            "ocisource_registry_requests_total{kind=\"blob\"} 1\n",
        ] {
            assert!(text.contains(line), "{line}{text}");
        }
        assert!(!text.contains("kind=\"token\""), "{text}");
        // A second scrape counts nothing twice; new requests are added.
        counts.lock().unwrap().blob = 3;
        let text = m.render();
        assert!(
            text.contains("ocisource_registry_requests_total{kind=\"blob\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("ocisource_registry_requests_total{kind=\"ping\"} 2\n"),
            "{text}"
        );
    }
}
