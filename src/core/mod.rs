//! The Kubernetes-free reconcile core: reference resolution, the reconcile steps and the pure
//! status summary. It takes values and ports (traits) and returns an outcome; it never holds a
//! `kube::Client` and never reads the clock.

pub mod access;
pub mod conditions;
pub mod error;
pub mod events;
pub mod message;
pub mod ports;
pub mod reconcile;
pub mod semver;
pub mod summary;
pub mod verification;
