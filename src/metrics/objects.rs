//! `gotk_reconcile_duration_seconds`, the one metric with a series per object: a histogram
//! kept in one small allocation per object, encoded in batches so that a scrape holds the map's
//! lock only while it copies a batch out.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, LazyLock, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::histogram::exponential_buckets_range;
use prometheus_client::metrics::{MetricType, TypedMetric};

use super::ObjectLabels;

/// Flux's buckets of `gotk_reconcile_duration_seconds`: 10 exponential buckets from 10 ms to
/// 30 min, then `+Inf`.
static DURATION_BOUNDS: LazyLock<[f64; DURATION_BUCKETS]> = LazyLock::new(|| {
    let mut bounds = [f64::INFINITY; DURATION_BUCKETS];
    for (bound, value) in bounds
        .iter_mut()
        .zip(exponential_buckets_range(0.01, 1800.0, 10))
    {
        *bound = value;
    }
    bounds
});

/// The buckets of [`DURATION_BOUNDS`], `+Inf` included.
const DURATION_BUCKETS: usize = 11;

/// One object's `gotk_reconcile_duration_seconds` series, the one metric with a series per
/// object: the sum, the count and the bucket counts in one small allocation (about 140 bytes),
/// the bounds shared by all series. prometheus-client's `Histogram` keeps each bucket's bound
/// beside its count, in a second allocation, and a native histogram's state (about 420 bytes a
/// series). Observes and encodes exactly as that `Histogram` does.
#[derive(Clone, Debug, Default)]
pub(super) struct ObjectHistogram(Arc<Mutex<HistogramCounts>>);

#[derive(Debug, Default)]
struct HistogramCounts {
    sum: f64,
    count: u64,
    // Per bucket (not cumulative), as prometheus-client keeps them; the encoder accumulates.
    buckets: [u64; DURATION_BUCKETS],
}

impl ObjectHistogram {
    fn observe(&self, v: f64) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts.sum += v;
        counts.count += 1;
        // The first bucket whose bound is at least `v`; NaN falls into `+Inf`.
        let bucket = if v.is_nan() {
            Some(DURATION_BUCKETS - 1)
        } else {
            DURATION_BOUNDS.iter().position(|bound| *bound >= v)
        };
        if let Some(i) = bucket {
            counts.buckets[i] += 1;
        }
    }
}

impl TypedMetric for ObjectHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for ObjectHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = {
            let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let buckets: Vec<(f64, u64)> = DURATION_BOUNDS
                .iter()
                .copied()
                .zip(counts.buckets)
                .collect();
            (counts.sum, counts.count, buckets)
        };
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Name of the per-object histogram.
pub(super) const DURATION_NAME: &str = "gotk_reconcile_duration_seconds";

/// Help text of [`DURATION_NAME`], with the full stop prometheus-client's registry appends.
pub(super) const DURATION_HELP: &str =
    "The duration in seconds of a GitOps Toolkit resource reconciliation.";

/// The series encoded per hold of the [`ObjectDurations`] map: about 50 KB of text.
pub(super) const DURATION_BATCH: usize = 32;

/// `gotk_reconcile_duration_seconds`, one series per object, ordered by its labels. A scrape
/// copies a batch of [`DURATION_BATCH`] series handles out of the map and encodes them with the
/// map released, so a scrape that waits for its reader never holds up a reconcile, and its text
/// (16 MB at 10,000 objects) need not be held whole: see [`encoded`].
#[derive(Clone, Debug, Default)]
pub(super) struct ObjectDurations(Arc<Mutex<BTreeMap<Arc<ObjectLabels>, ObjectHistogram>>>);

impl ObjectDurations {
    pub(super) fn observe(&self, labels: ObjectLabels, seconds: f64) {
        let histogram = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(&labels) {
                Some(h) => h.clone(),
                None => map.entry(Arc::new(labels)).or_default().clone(),
            }
        };
        histogram.observe(seconds);
    }

    pub(super) fn forget(&self, labels: &ObjectLabels) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(labels);
    }

    // The next series after `after` (the first ones without), at most `DURATION_BATCH`.
    fn batch(&self, after: Option<&ObjectLabels>) -> Vec<(Arc<ObjectLabels>, ObjectHistogram)> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        map.range::<ObjectLabels, _>((from, Bound::Unbounded))
            .take(DURATION_BATCH)
            .map(|(labels, h)| (labels.clone(), h.clone()))
            .collect()
    }
}

impl Collector for ObjectDurations {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family =
            encoder.encode_descriptor(DURATION_NAME, DURATION_HELP, None, MetricType::Histogram)?;
        let mut after: Option<Arc<ObjectLabels>> = None;
        loop {
            let batch = self.batch(after.as_deref());
            let Some((last, _)) = batch.last() else {
                return Ok(());
            };
            after = Some(last.clone());
            for (labels, histogram) in &batch {
                histogram.encode(family.encode_family(labels.as_ref())?)?;
            }
        }
    }
}
