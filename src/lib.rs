//! ocisource: a drop-in, Rust implementation of Flux's `OCIRepository` source.
#![doc = include_str!("../README.md")]
#![deny(clippy::unwrap_used, clippy::expect_used)]
pub mod api;
pub mod cli;
pub mod cloud;
pub mod core;
pub mod k8s;
pub mod metrics;
pub mod push;
pub mod registry;
#[cfg(test)]
mod robustness;
pub mod server;
pub mod standalone;
pub mod storage;
