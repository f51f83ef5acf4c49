//! Prometheus metrics under Flux's names, so existing dashboards and alerts keep working:
//! `gotk_reconcile_duration_seconds` and controller-runtime's reconcile counters (labelled
//! `controller="ocirepository"`), plus the registry requests this controller makes.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets_range};
use prometheus_client::registry::Registry;

use crate::registry::RequestCounts;

/// Label value of `controller` on controller-runtime metrics.
pub const CONTROLLER: &str = "ocirepository";

/// Labels of `gotk_reconcile_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// Always `OCIRepository`.
    pub kind: String,
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

/// Labels of registry request counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `ping`, `token`, `tags`, `manifest_head`, `manifest_get`, `blob`.
    pub kind: String,
}

/// The metrics of one controller process.
pub struct Metrics {
    registry: Registry,
    duration: Family<ObjectLabels, Histogram>,
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ControllerLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
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
        // Flux: 10 exponential buckets from 10 ms to 30 min.
        let duration = Family::<ObjectLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets_range(0.01, 1800.0, 10))
        });
        registry.register(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a GitOps Toolkit resource reconciliation",
            duration.clone(),
        );
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
        Metrics {
            registry,
            duration,
            reconciles,
            errors,
            requests,
        }
    }

    /// Records one reconcile of `namespace/name` that took `seconds` and ended with `result`
    /// (`success`, `error`, `requeue`, `requeue_after`).
    pub fn reconciled(&self, namespace: &str, name: &str, seconds: f64, result: &str) {
        self.duration
            .get_or_create(&ObjectLabels {
                kind: crate::api::KIND.to_string(),
                name: name.to_string(),
                namespace: namespace.to_string(),
            })
            .observe(seconds);
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

    /// Adds the registry requests of `delta`.
    pub fn registry_requests(&self, delta: &RequestCounts) {
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
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// `/metrics`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let body = metrics.render();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    body,
                )
                    .into_response()
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
