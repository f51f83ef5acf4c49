//! The controller: watches OCIRepository objects (all namespaces or one, filtered by a label
//! selector for sharding), reacts only to objects entering the watch and to generation,
//! `reconcile.fluxcd.io/requestedAt` and deletion changes (see [`super::triggers`]), runs the
//! core reconcile, writes the status once (and not at all when nothing changed), records events,
//! and requeues with jitter or per-object exponential backoff through the controller's own work
//! queue ([`super::workqueue`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

use super::events::EventPublisher;
use super::secrets::KubeSecrets;
use super::status::{ApiStatus, Progress, write_status};
use super::triggers::Triggers;
use super::workqueue::WorkQueue;
use crate::api::conditions::reasons;
use crate::api::v1::OciRepository;
use crate::api::{FINALIZER, duration};
use crate::core::events::{Event, Severity};
use crate::core::message;
use crate::core::reconcile::{self, Ports, Settings};
use crate::core::summary::Next;
use crate::core::verification::SignatureVerifier;
use crate::core::verification_cache::{SharedVerifier, VerificationCache};
use crate::metrics::Metrics;
use crate::registry::ClientPool;
use crate::verify::tuf::SigstoreRoot;

/// Field manager of every write, as Flux's controller names itself.
pub const FIELD_MANAGER: &str = "source-controller";

// Used when an interval cannot be parsed (the CRD pattern normally prevents it).
const FALLBACK_INTERVAL: Duration = Duration::from_secs(600);

/// The shortest interval honoured. The CRD accepts `interval: 1ms`, with which Flux polls the
/// registry without pause; a non-zero interval below this one is raised to it, so that one
/// object cannot send more than about one registry request a second.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Why talking to the API server failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The status patch failed.
    #[error("failed to patch status")]
    PatchStatus(#[source] kube::Error),
    /// Adding or removing the finalizer failed.
    #[error("failed to update finalizers")]
    Finalizer(#[source] kube::Error),
}

/// Per-object exponential backoff between failed attempts.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempts: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Backoff from `min`, doubling, capped at `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// The delay before the next attempt for `key`, counting this failure.
    pub fn next(&self, key: &str) -> Duration {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let n = attempts.entry(key.to_string()).or_insert(0);
        let delay = self
            .min
            .saturating_mul(2u32.saturating_pow(*n))
            .min(self.max);
        *n = n.saturating_add(1);
        delay
    }

    /// Counts the requeue that follows adding the finalizer. Flux returns `Requeue: true` after
    /// adding it, which controller-runtime turns into a rate-limited add: the first backoff step
    /// is spent before the first real attempt, so a new object that keeps failing waits 1.5 s,
    /// 3 s, ... between attempts, as one whose finalizer was already there does after its first
    /// failure. We go on reconciling in the same pass instead of waiting those 750 ms.
    pub fn finalizer_added(&self, key: &str) {
        self.next(key);
    }

    /// Forgets the failures of `key`.
    pub fn reset(&self, key: &str) {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// `interval` scaled by a random factor in `[1 - p, 1 + p]`, `p = percent / 100`.
pub fn jitter(interval: Duration, percent: u8) -> Duration {
    if percent == 0 {
        return interval;
    }
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let unit = (random % 10_001) as f64 / 10_000.0; // [0, 1]
    let p = f64::from(percent) / 100.0;
    interval.mul_f64(1.0 - p + 2.0 * p * unit)
}

/// Shared state of the reconcile loop.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Core settings (storage, limits, gates).
    pub settings: Settings,
    /// Registry clients with a shared token cache.
    pub registries: ClientPool,
    /// Secrets adapter.
    pub secrets: KubeSecrets,
    /// Event publisher.
    pub events: EventPublisher,
    /// `--interval-jitter-percentage`.
    pub jitter_percent: u8,
    /// Error backoff.
    pub backoff: Backoff,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The work queue: it hands kube's runner one key per free worker, first in, first out,
    /// and counts the workqueue metrics (see [`super::workqueue`]).
    pub work: Arc<WorkQueue<ObjectRef<OciRepository>>>,
    /// Signature verifications shared by objects on the same artifact and material.
    pub verifications: Arc<VerificationCache>,
    /// The Sigstore trusted root from TUF, for keyless without a `trustedRootSecretRef`.
    pub sigstore_root: Arc<SigstoreRoot>,
}

impl Context {
    /// Queues `obj` again after `after` in the work queue; kube's scheduler is told nothing, so
    /// that only the work queue orders the keys.
    fn requeue(&self, obj: &OciRepository, after: Duration) -> Action {
        self.work.add_after(queue_key(obj), after);
        Action::await_change()
    }
}

/// kubectl's record of the last applied object (a full copy of it, for client-side apply).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Trims an object for the watch cache, which holds every watched object for the life of the
/// process: the managed fields (which every status write grows) and kubectl's copy of the last
/// applied object go, both unused here and a large part of an object's size; and lists are
/// held at their length. serde grows a list to four elements at its first, so a cached object
/// would otherwise keep room for two more conditions, three more finalizers and, after
/// `clear`, all the managed field entries it had (together about 1 KiB an object).
fn trim_for_cache(obj: &mut OciRepository) {
    obj.metadata.managed_fields = None;
    if let Some(annotations) = &mut obj.metadata.annotations {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            obj.metadata.annotations = None;
        }
    }
    if let Some(finalizers) = &mut obj.metadata.finalizers {
        finalizers.shrink_to_fit();
    }
    if let Some(status) = &mut obj.status {
        status.conditions.shrink_to_fit();
    }
}

/// Runs the controller until `shutdown` resolves; `ready` turns true once it watches. `writer`
/// fills the watch cache (others may read it through their own reader).
///
/// # Errors
/// Never returns an error today; the signature leaves room for startup failures.
pub async fn run(
    api: Api<OciRepository>,
    writer: reflector::store::Writer<OciRepository>,
    label_selector: &str,
    concurrency: u16,
    ctx: Arc<Context>,
    ready: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let mut config = watcher::Config::default();
    if !label_selector.is_empty() {
        config = config.labels(label_selector);
    }
    let reader = writer.as_reader();
    let work = ctx.work.clone();
    ctx.metrics
        .observe_queue(concurrency, Box::new(move || work.sample()));
    let registries = ctx.registries.clone();
    ctx.metrics
        .observe_registries(Box::new(move || registries.request_counts()));
    let verifications = ctx.verifications.clone();
    ctx.metrics.observe_verifications(Box::new(move || {
        (verifications.misses(), verifications.hits())
    }));
    let resolutions = ctx.settings.resolutions.clone();
    ctx.metrics
        .observe_resolutions(Box::new(move || (resolutions.runs(), resolutions.shared())));
    let contents = ctx.settings.shared.clone();
    ctx.metrics
        .observe_contents(Box::new(move || (contents.stored(), contents.shared())));
    let work = ctx.work.clone();
    let mut triggers = Triggers::new(ctx.settings.storage.clone());
    let stream = watcher(api, config)
        .default_backoff()
        // The watch cache keeps what a reconcile reads (see `trim_for_cache`).
        .modify(trim_for_cache)
        .reflect(writer)
        .try_filter_map(move |event| std::future::ready(Ok(triggers.on(event))))
        // What passes here is queued now, keyed by namespace/name: kube's own trigger would key
        // its scheduler (and every requeue) by a reference that also carries the object's UID
        // and resourceVersion, two more strings held per object for the life of the process.
        .filter_map(move |event| {
            match event {
                Ok(obj) => work.add(queue_key(&obj)),
                // The watcher retries with its backoff; kube's trigger would only log it.
                Err(e) => tracing::warn!(error = %message::render(&e), "watch failed"),
            }
            std::future::ready(None)
        });
    let served = ctx.work.clone();
    let done = ctx.work.clone();
    let _ = ready.send(true);
    Controller::for_stream(
        futures::stream::pending::<Result<OciRepository, watcher::Error>>(),
        reader,
    )
    // Watch events feed the work queue; the work queue feeds kube, one key per free worker,
    // so kube's runner (unbounded here) never parks a key and never reorders them.
    .reconcile_on(futures::stream::select(stream, served.stream()))
    .with_config(kube::runtime::Config::default().concurrency(0))
    .graceful_shutdown_on(shutdown)
    .run(observed_reconcile, error_policy, ctx)
    .for_each(|result| {
        // A key whose object left the store is not reconciled: its worker is free all the same.
        if let Err(kube::runtime::controller::Error::ObjectNotFound(gone)) = &result {
            let mut key = ObjectRef::<OciRepository>::new(&gone.name);
            if let Some(namespace) = &gone.namespace {
                key = key.within(namespace);
            }
            done.done(&key);
        }
        if let Err(e) = result {
            tracing::debug!(error = %message::render(&e), "reconcile request failed");
        }
        std::future::ready(())
    })
    .await;
    Ok(())
}

fn error_policy(obj: Arc<OciRepository>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key_of(&obj);
    let delay = ctx.backoff.next(&key);
    tracing::warn!(
        name = %obj.name_any(),
        namespace = %obj.namespace().unwrap_or_default(),
        error = %message::render(error),
        retry_in = ?delay,
        "reconcile failed"
    );
    ctx.requeue(&obj, delay)
}

// A worker picks the key up; the work queue times its wait and its work.
async fn observed_reconcile(obj: Arc<OciRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = queue_key(&obj);
    if let Some(waited) = ctx.work.started(&key) {
        ctx.metrics.queue_duration(waited);
    }
    let result = reconcile_one(obj, ctx.clone()).await;
    // After `reconcile_one`'s requeue (an error's comes later, from `error_policy`).
    if let Some(worked) = ctx.work.done(&key) {
        ctx.metrics.work_duration(worked);
    }
    result
}

/// The key of `obj` in the work queue: its namespace and name, without the UID and
/// resourceVersion an `ObjectRef` made from an object carries (neither takes part in its
/// equality, and the queue holds a key for every object waiting for its next interval).
fn queue_key(obj: &OciRepository) -> ObjectRef<OciRepository> {
    let mut key = ObjectRef::from_obj(obj);
    key.extra = Default::default();
    key
}

fn key_of(obj: &OciRepository) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

async fn reconcile_one(obj: Arc<OciRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let key = key_of(&obj);
    let api: Api<OciRepository> = Api::namespaced(ctx.client.clone(), &namespace);

    if obj.metadata.deletion_timestamp.is_some() {
        return delete(&api, &obj, &ctx).await;
    }
    let obj = if obj.finalizers().iter().any(|f| f == FINALIZER) {
        obj
    } else {
        let mut finalizers = obj.finalizers().to_vec();
        finalizers.push(FINALIZER.to_string());
        // Go on with the object the patch returned: a requeue would often read the cached,
        // finalizer-less copy and patch again with a stale resourceVersion (a 409 and a backoff).
        match patch_finalizers(&api, &obj, finalizers).await? {
            Some(patched) => {
                ctx.backoff.finalizer_added(&key);
                Arc::new(patched)
            }
            None => return Ok(Action::await_change()),
        }
    };

    let started = std::time::Instant::now();
    let progress = Progress::new(ApiStatus {
        api: api.clone(),
        name: name.clone(),
    });
    let verifier = SharedVerifier::new(
        SignatureVerifier::new(&ctx.secrets, &ctx.sigstore_root),
        &ctx.secrets,
        &ctx.verifications,
    )
    .with_public_root(&ctx.sigstore_root);
    let ports = Ports {
        secrets: &ctx.secrets,
        verifier: &verifier,
        progress: &progress,
        registries: &ctx.registries,
    };
    let outcome = reconcile::reconcile(&obj, &ctx.settings, ports, Time(Timestamp::now())).await;
    let progressed = progress.finish().await;
    if progressed || obj.status.as_ref() != Some(&outcome.status) {
        write_status(&api, &name, &outcome.status).await?;
    }
    for event in &outcome.events {
        if event.is_recorded() {
            ctx.events.publish(&obj, event).await;
        } else {
            tracing::debug!(name = %name, namespace = %namespace, reason = %event.reason, "{}", event.message);
        }
    }
    tracing::info!(
        name = %name,
        namespace = %namespace,
        revision = outcome.status.artifact.as_ref().map(|a| a.revision.as_str()).unwrap_or_default(),
        outcome = ?outcome.next,
        elapsed = ?started.elapsed(),
        "reconciled"
    );
    let interval = duration::parse(&obj.spec.interval).unwrap_or(FALLBACK_INTERVAL);
    let after = schedule(
        &ctx.backoff,
        &key,
        &outcome.next,
        interval,
        ctx.jitter_percent,
    );
    let result = match outcome.next {
        Next::AfterInterval if after.is_some() => "requeue_after",
        Next::AfterInterval => "success",
        Next::Now => "requeue",
        Next::Nothing => "success",
        Next::Retry { .. } => "error",
    };
    ctx.metrics
        .reconciled(&namespace, &name, started.elapsed().as_secs_f64(), result);
    Ok(match after {
        Some(after) => ctx.requeue(&obj, after),
        None => Action::await_change(),
    })
}

/// When `key` is reconciled again after a reconcile that ended with `next` (`None`: only when
/// the object changes), as controller-runtime schedules Flux's results: a success requeues
/// after the jittered interval and forgets the failures (an interval of zero gives
/// `RequeueAfter: 0`, which is no requeue at all; a shorter one than [`MIN_INTERVAL`] is raised
/// to it), a stalled or finished object is forgotten and waits, and a failure or an immediate
/// requeue (`Requeue: true`) takes the next backoff step.
fn schedule(
    backoff: &Backoff,
    key: &str,
    next: &Next,
    interval: Duration,
    jitter_percent: u8,
) -> Option<Duration> {
    match next {
        Next::AfterInterval => {
            backoff.reset(key);
            (!interval.is_zero()).then(|| jitter(interval.max(MIN_INTERVAL), jitter_percent))
        }
        Next::Nothing => {
            backoff.reset(key);
            None
        }
        Next::Now | Next::Retry { .. } => Some(backoff.next(key)),
    }
}

async fn delete(
    api: &Api<OciRepository>,
    obj: &OciRepository,
    ctx: &Context,
) -> Result<Action, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    if !obj.finalizers().iter().any(|f| f == FINALIZER) {
        ctx.metrics.deleted(&namespace, &obj.name_any());
        return Ok(Action::await_change());
    }
    match reconcile::cleanup(&ctx.settings.storage, &namespace, &obj.name_any()) {
        Ok(removed) => {
            if removed.is_some() {
                let event = Event::trace(
                    reasons::GARBAGE_COLLECTION_SUCCEEDED,
                    "garbage collected artifacts for deleted resource",
                );
                ctx.events.publish(obj, &event).await;
            }
        }
        Err(e) => {
            let event = Event {
                severity: Severity::Error,
                reason: reasons::GARBAGE_COLLECTION_FAILED.to_string(),
                message: format!(
                    "garbage collection for deleted resource failed: {}",
                    message::render(&e)
                ),
                metadata: Default::default(),
            };
            ctx.events.publish(obj, &event).await;
            return Ok(ctx.requeue(obj, ctx.backoff.next(&key_of(obj))));
        }
    }
    let finalizers = obj
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    patch_finalizers(api, obj, finalizers).await?;
    ctx.backoff.reset(&key_of(obj));
    ctx.metrics.deleted(&namespace, &obj.name_any());
    Ok(Action::await_change())
}

// The resourceVersion makes the merge patch conditional: a concurrent change of the finalizer
// list is a conflict, retried with backoff, never a lost update.
async fn patch_finalizers(
    api: &Api<OciRepository>,
    obj: &OciRepository,
    finalizers: Vec<String>,
) -> Result<Option<OciRepository>, Error> {
    let patch = json!({
        "metadata": {"resourceVersion": obj.resource_version(), "finalizers": finalizers}
    });
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(patched) => Ok(Some(patched)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(Error::Finalizer(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_cache_keeps_what_a_reconcile_reads_and_no_spare_room() {
        let mut obj: OciRepository = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {
                "name": "a",
                "namespace": "apps",
                "finalizers": [FINALIZER],
                "annotations": {LAST_APPLIED: "{}"},
                "managedFields": [
                    {"manager": "kubectl", "operation": "Update"},
                    {"manager": "source-controller", "operation": "Update", "subresource": "status"},
                ],
            },
            "spec": {"url": "oci://r/a", "interval": "1m"},
            "status": {"conditions": [{
                "type": "Ready", "status": "True", "reason": "Succeeded", "message": "m",
                "lastTransitionTime": "2026-01-02T03:04:05Z",
            }]},
        }))
        .unwrap();
        let mut expected = obj.clone();
        expected.metadata.managed_fields = None;
        expected.metadata.annotations = None;
        trim_for_cache(&mut obj);
        assert_eq!(
            serde_json::to_value(&obj).unwrap(),
            serde_json::to_value(&expected).unwrap()
        );
        let finalizers = obj.metadata.finalizers.as_ref().unwrap();
        assert_eq!(finalizers.capacity(), finalizers.len());
        let conditions = &obj.status.as_ref().unwrap().conditions;
        assert_eq!(conditions.capacity(), conditions.len());

        obj.metadata.annotations = Some([("keep".into(), "x".into())].into());
        trim_for_cache(&mut obj);
        assert_eq!(obj.annotations().len(), 1, "other annotations stay");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let b = Backoff::new(Duration::from_millis(750), Duration::from_secs(5));
        let delays: Vec<_> = (0..5).map(|_| b.next("a")).collect();
        assert_eq!(
            delays,
            [750, 1500, 3000, 5000, 5000]
                .map(Duration::from_millis)
                .to_vec()
        );
        assert_eq!(b.next("b"), Duration::from_millis(750), "per object");
        b.reset("a");
        assert_eq!(b.next("a"), Duration::from_millis(750));
    }

    fn failed() -> Next {
        Next::Retry {
            reason: Some(reasons::AUTHENTICATION_FAILED),
            message: "failed to get credential".into(),
        }
    }

    fn flux_backoff() -> Backoff {
        Backoff::new(Duration::from_millis(750), Duration::from_secs(15 * 60))
    }

    fn secs(list: &[f64]) -> Vec<Duration> {
        list.iter().map(|s| Duration::from_secs_f64(*s)).collect()
    }

    // Attempts (the first at 0) that start within `window`.
    fn attempts_within(delays: &[Duration], window: Duration) -> usize {
        let mut at = Duration::ZERO;
        let mut n = 1;
        for d in delays {
            at += *d;
            if at > window {
                break;
            }
            n += 1;
        }
        n
    }

    #[test]
    fn a_new_failing_object_backs_off_as_after_flux_finalizer_requeue() {
        let b = flux_backoff();
        let interval = Duration::from_secs(600);
        b.finalizer_added("ns/a");
        let delays: Vec<_> = (0..12)
            .map(|_| schedule(&b, "ns/a", &failed(), interval, 5).unwrap())
            .collect();
        assert_eq!(
            delays,
            secs(&[
                1.5, 3.0, 6.0, 12.0, 24.0, 48.0, 96.0, 192.0, 384.0, 768.0, 900.0, 900.0
            ])
        );
        // Flux: the finalizer pass at 0, then attempts at 0.75, 2.25, 5.25, ... 191.25 s: eight
        // registry attempts in 210 s, as here (0, 1.5, 4.5, ... 190.5 s).
        assert_eq!(attempts_within(&delays, Duration::from_secs(210)), 8);
    }

    #[test]
    fn an_existing_failing_object_starts_at_the_minimum_delay_and_success_forgets() {
        let b = flux_backoff();
        let interval = Duration::from_secs(600);
        let delays: Vec<_> = (0..4)
            .map(|_| schedule(&b, "ns/a", &failed(), interval, 5).unwrap())
            .collect();
        assert_eq!(delays, secs(&[0.75, 1.5, 3.0, 6.0]));
        assert_eq!(
            schedule(&b, "ns/a", &Next::Now, interval, 5),
            Some(Duration::from_secs(12)),
            "Requeue: true is a rate-limited add"
        );
        let after = schedule(&b, "ns/a", &Next::AfterInterval, interval, 5).unwrap();
        assert!(after >= Duration::from_secs(570) && after <= Duration::from_secs(630));
        assert_eq!(
            schedule(&b, "ns/a", &failed(), interval, 5),
            Some(Duration::from_millis(750)),
            "a success forgets the failures"
        );
        assert_eq!(schedule(&b, "ns/a", &Next::Nothing, interval, 5), None);
        assert_eq!(
            schedule(&b, "ns/a", &failed(), interval, 5),
            Some(Duration::from_millis(750)),
            "so does a stall"
        );
    }

    #[test]
    fn a_tiny_interval_is_raised_to_the_floor() {
        let b = flux_backoff();
        for interval in [Duration::from_millis(1), Duration::from_millis(999)] {
            let after = schedule(&b, "ns/a", &Next::AfterInterval, interval, 5).unwrap();
            assert!(
                after >= MIN_INTERVAL.mul_f64(0.95) && after <= MIN_INTERVAL.mul_f64(1.05),
                "{interval:?} -> {after:?}"
            );
        }
        let after = schedule(&b, "ns/a", &Next::AfterInterval, MIN_INTERVAL * 3, 0);
        assert_eq!(after, Some(MIN_INTERVAL * 3), "longer intervals are kept");
    }

    #[test]
    fn a_zero_interval_reconciles_once_and_forgets_the_failures() {
        let b = flux_backoff();
        for _ in 0..3 {
            schedule(&b, "ns/a", &failed(), Duration::ZERO, 5);
        }
        assert_eq!(
            schedule(&b, "ns/a", &Next::AfterInterval, Duration::ZERO, 5),
            None,
            "RequeueAfter: 0 is no requeue"
        );
        assert_eq!(
            schedule(&b, "ns/a", &failed(), Duration::ZERO, 5),
            Some(Duration::from_millis(750)),
            "failures still back off"
        );
    }

    #[test]
    fn jitter_stays_within_the_percentage() {
        let interval = Duration::from_secs(100);
        for _ in 0..1000 {
            let d = jitter(interval, 5);
            assert!(
                d >= Duration::from_secs(95) && d <= Duration::from_secs(105),
                "{d:?}"
            );
        }
        assert_eq!(jitter(interval, 0), interval);
    }
}
