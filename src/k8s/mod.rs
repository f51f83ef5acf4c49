//! The only home of `kube::Client`: the controller, its process wiring, and the adapters through
//! which it reads Secrets and records events.

pub mod controller;
pub mod events;
pub mod manager;
pub mod secrets;
