//! The OCI registry adapter: everything the reconciler needs from a registry, and nothing about
//! Kubernetes or conditions.
//!
//! - [`reference`](mod@reference): `oci://` URLs and digests, parsed by go-containerregistry's rules.
//! - [`keychain`]: credentials from docker-config pull secrets, matched as kubelet does.
//! - [`transport`]: TLS (CA, mTLS, insecure), proxy, user agent and timeouts.
//! - `address`: where a registry may send the client (realms, redirects, upload locations).
//! - [`auth`]: `WWW-Authenticate` challenges and the bearer token cache.
//! - [`client`]: the distribution-API client and [`ClientPool`], which shares clients; what a
//!   client does is split by concern: `request` (ping, one authorized request, retries, the
//!   plain-HTTP fallback), `token` (Basic and bearer authorization, token fetches),
//!   `pull` (tag resolution, manifests and blobs by digest), [`tags`](mod@tags) (bounded
//!   listings) and `response` (statuses, bodies and transport failures read into errors).
//! - [`manifest`], [`blob`]: manifests and indexes; verified blob streams.
//! - [`platform`]: the `os/architecture[/variant]` an index resolves to (`linux/amd64` unless
//!   the object or the controller asks for another).
//! - [`push`](mod@push): writes for `ocisource push` (blob existence, monolithic uploads streamed
//!   from disk, manifest `PUT`s) with `push,pull` token scopes.
//! - [`referrers`](mod@referrers): the OCI 1.1 referrers of a subject (the API, else the
//!   `<alg>-<hex>` fallback tag) and referrer manifests read as raw, verified bytes.
//! - `go_text`: texts as Go prints them (dial errors, `%v` of error details).
//! - [`error`]: the error categories.
//!
//! Written directly on reqwest (rustls + aws-lc-rs) because Flux's `certSecretRef` needs a client
//! certificate, which oci-client cannot present.

pub(crate) mod address;
pub mod auth;
pub mod blob;
pub mod client;
pub mod counters;
pub mod error;
mod go_text;
pub mod keychain;
pub mod manifest;
pub mod platform;
mod pull;
pub mod push;
pub mod reference;
pub mod referrers;
mod request;
mod response;
pub mod retry;
pub mod tags;
mod token;
pub mod transport;

pub use blob::{Blob, BlobReader};
pub use client::{Client, ClientPool};
pub use counters::{RequestCounts, RequestKind};
pub use error::Error;
pub use keychain::{Credential, Keychain};
pub use manifest::{Descriptor, Manifest};
pub use platform::{InvalidPlatform, Platform};
pub use pull::RawManifest;
pub(crate) use pull::check_tag;
pub use push::{BlobSource, SentHook};
pub use reference::{Algorithm, Digest, Repository};
pub use referrers::{Referrer, Referrers, ReferrersSource};
pub use retry::RetryPolicy;
pub use tags::{DEFAULT_PAGE_SIZE, MAX_TAG_LIST_BYTES, MAX_TAG_PAGES, MAX_TAGS};
pub use transport::{ProxyConfig, TlsMaterial, TransportConfig};
