//! The producer CLI: `ocisource <verb> artifact …`, flux's artifact commands (spec §7) with
//! their names, flags and output, on our registry client and storage code.
//!
//! - [`push`](mod@push): `push artifact`, a directory or file packed and pushed in the format
//!   `flux push artifact` writes, so Flux's OCIRepository (and ours) reads it unchanged.
//! - [`pull`](mod@pull): `pull artifact`, the first layer extracted (bounded, digest-checked)
//!   into a directory.
//! - [`tag`](mod@tag): `tag artifact`, the manifest copied under more tags.
//! - [`list`](mod@list): `list artifacts`, tags with digests, sources and revisions.
//! - [`diff`](mod@diff): `diff artifact`, a local build compared with the remote first layer.
//! - [`build`](mod@build): `build artifact`, the same tarball written to a local file.
//! - [`verify`](mod@verify): `verify artifact`, the controller's signature verification of one
//!   artifact with material from files (not a flux verb).
//! - [`tarball`]: the layer tarball (Go-identical tar bytes, gzip by zlib-rs).
//! - [`image`]: the config blob and the manifest, serialized as go-containerregistry does.
//! - [`symlinks`]: `--resolve-symlinks`, the tree copied with links replaced by their targets.
//! - [`connect`]: the registry flags every verb shares and the client they make;
//!   [`credentials`]: `--creds` and the Docker config.
//! - [`examples`]: the `Examples:` block of each verb's `--help`.
//! - [`progress`]: bars for push and pull on a terminal stderr, nothing otherwise.
//! - [`reference`](mod@reference): `oci://` artifact URLs; [`flags`]: flag values as pflag
//!   reads them; [`output`]: `-o json|yaml` as flux prints them; [`error`]: why a verb failed.

pub mod build;
pub mod connect;
pub mod credentials;
pub mod diff;
pub mod error;
pub mod examples;
pub mod flags;
pub mod image;
pub mod list;
pub mod output;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod symlinks;
pub mod tag;
pub mod tarball;
pub mod verify;

pub use build::{BuildArgs, BuildCommand, build_artifact};
pub use connect::RegistryArgs;
pub use diff::{DiffArgs, DiffCommand, diff_artifact};
pub use error::Error;
pub use flags::DEFAULT_IGNORE_PATHS;
pub use list::{ListArgs, ListCommand, ListFormat, Listed, list_artifacts};
pub use output::OutputFormat;
pub use pull::{PullArgs, PullCommand, Pulled, pull_artifact};
pub use push::{PushArgs, PushCommand, Pushed, push_artifact};
pub use tag::{TagArgs, TagCommand, tag_artifact};
pub use verify::{Report, VerifyArgs, VerifyCommand, VerifyProvider, verify_artifact};

/// Runs blocking work off the async threads; a task that died becomes `lost(…)`.
pub(crate) async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
    lost: impl FnOnce(std::io::Error) -> E,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(lost(std::io::Error::other(e))),
    }
}
