//! ocisource: a drop-in, Rust implementation of Flux's `OCIRepository` source.
//!
//! The library holds everything; the `ocisource` binary only wires its faces: the controller
//! ([`k8s`]), the standalone reconcile ([`standalone`]), the CRD printer ([`api::crd_yaml`]) and the
//! producer CLI ([`artifact`]). The repository's `ARCHITECTURE.md` maps every module and follows one
//! reconcile from watch to disk; `README.md` says how to use it and where it differs from Flux.
//!
//! Layers, imported downwards only:
//!
//! - [`k8s`] and [`standalone`]: the adapters. Only [`k8s`] holds a `kube::Client`; standalone
//!   mode reads Secrets from a directory and prints the object.
//! - [`core`]: the Kubernetes-free reconcile ([`core::reconcile`]): storage, source and artifact
//!   steps, then the pure status summary. It reads the outside world only through the traits of
//!   [`core::ports`] and never reads the clock.
//! - [`registry`] (the OCI distribution API), [`storage`] (the artifact store, bounded extraction,
//!   deterministic archives), [`cloud`] (provider login, behind features), [`verify`] (signature
//!   checks through the object's registry client) and [`api`] (the types, the CRD and Flux's
//!   condition vocabulary).
//! - [`server`] and [`metrics`]: the artifact HTTP server, health endpoints and Prometheus
//!   metrics under Flux's names; [`cli`]: the controller's flags.
#![deny(clippy::unwrap_used, clippy::expect_used)]
pub mod api;
pub mod artifact;
pub mod body;
pub mod cli;
pub mod cloud;
pub mod core;
pub mod error_chain;
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod k8s;
pub mod metrics;
#[cfg(test)]
mod mutation;
pub mod receiver;
pub mod registry;
pub mod server;
pub mod standalone;
pub mod storage;
pub mod verify;
