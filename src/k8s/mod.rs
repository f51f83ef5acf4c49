//! The only home of `kube::Client`: the controller, its process wiring, the one status writer, the
//! adapters through which it reads Secrets and records events, the filter from watch events to
//! reconciles, and its work queue.

pub mod controller;
pub mod events;
pub mod manager;
pub mod receiver;
pub mod secrets;
mod status;
pub mod triggers;
pub mod workqueue;
