//! Standalone mode: one reconcile of a manifest without a cluster, with Secrets read from a
//! directory of manifests.

pub mod secrets;
