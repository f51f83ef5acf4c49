//! The only home of `kube::Client`: the adapters through which the controller reads Secrets and
//! writes status and events.

pub mod events;
pub mod secrets;
