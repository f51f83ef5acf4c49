//! Command-line flags of the controller, named, defaulted and spelled as source-controller's
//! (Go flag syntax included: `--enable-leader-election`, `--watch-all-namespaces=false`,
//! durations such as `750ms` or `15m`), grouped by concern.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};

use crate::api::duration;

fn go_duration(s: &str) -> Result<Duration, String> {
    duration::parse(s).map_err(|e| e.to_string())
}

/// Where artifacts live and how they are served.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct StorageArgs {
    /// Directory of the artifact store; it must exist.
    #[arg(long, env = "STORAGE_PATH", default_value = "/data")]
    pub storage_path: std::path::PathBuf,

    /// Listen address of the artifact server.
    #[arg(long, env = "STORAGE_ADDR", default_value = ":9090")]
    pub storage_addr: String,

    /// Host and optional port (or an `http(s)://` prefix) used in artifact URLs; derived from
    /// --storage-addr when empty.
    #[arg(long, env = "STORAGE_ADV_ADDR", default_value = "")]
    pub storage_adv_addr: String,
}

impl StorageArgs {
    /// The advertised address: the flag, or one derived from `--storage-addr` as Flux 2.7 does
    /// (`:9090` ⇒ `localhost:9090`, `0.0.0.0:9090` ⇒ `<hostname>:9090`).
    pub fn advertised_addr(&self, hostname: Option<&str>) -> String {
        if !self.storage_adv_addr.is_empty() {
            return self.storage_adv_addr.clone();
        }
        let (host, port) = self
            .storage_addr
            .rsplit_once(':')
            .unwrap_or((self.storage_addr.as_str(), ""));
        let host = match host {
            "" => "localhost",
            "0.0.0.0" | "[::]" | "::" => hostname.filter(|h| !h.is_empty()).unwrap_or("localhost"),
            other => other,
        };
        if port.is_empty() {
            host.to_string()
        } else {
            format!("{host}:{port}")
        }
    }
}

/// Digest algorithms for `status.artifact.digest`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgo {
    /// SHA-256 (default).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// BLAKE3.
    Blake3,
}

/// What is kept and how much is unpacked.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ArtifactArgs {
    /// How long superseded artifacts are kept.
    #[arg(long, value_parser = go_duration, default_value = "60s")]
    pub artifact_retention_ttl: Duration,

    /// How many artifacts (the current one included) are kept per object.
    #[arg(long, default_value_t = 2)]
    pub artifact_retention_records: usize,

    /// Digest algorithm of stored artifacts.
    #[arg(long, value_enum, default_value = "sha256")]
    pub artifact_digest_algo: DigestAlgo,

    /// Store content that several objects select (the same layer, taken the same way, with the
    /// same ignore rules) once, downloaded once and hard-linked into each object's directory;
    /// false keeps a download and a copy per object, as Flux. Not a source-controller flag.
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = true,
          default_missing_value = "true", action = ArgAction::Set)]
    pub artifact_sharing: bool,

    /// Extraction limits and platform.
    #[command(flatten)]
    pub content: ContentArgs,
}

/// How much a layer may unpack to and which platform an index resolves to: flags the
/// controller and standalone mode share.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ContentArgs {
    /// Largest uncompressed size a layer may extract to, in bytes; -1 disables the limit.
    #[arg(long, default_value_t = 1 << 30, allow_negative_numbers = true)]
    pub artifact_max_extract_size: i64,

    /// Largest number of entries a layer may hold; -1 disables the limit.
    #[arg(long, default_value_t = 100_000, allow_negative_numbers = true)]
    pub artifact_max_extract_entries: i64,

    /// Platform an image index resolves to (`os/arch[/variant]`) unless the object's
    /// `ocisource.io/platform` annotation names another; Flux always takes linux/amd64.
    #[arg(long, default_value = "linux/amd64")]
    pub default_platform: crate::registry::Platform,
}

impl ContentArgs {
    /// The extraction limits.
    pub fn limits(&self) -> crate::storage::ExtractLimits {
        crate::storage::ExtractLimits::from_flags(
            self.artifact_max_extract_size,
            self.artifact_max_extract_entries,
        )
    }
}

/// Where keyless verification without a `trustedRootSecretRef` takes the Sigstore trusted root
/// from: a TUF repository (the public-good one by default). Flags the controller and
/// standalone mode share.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct SigstoreArgs {
    /// Base URL of the TUF repository serving the Sigstore trusted root.
    #[arg(long, env = "SIGSTORE_TUF_MIRROR", default_value = crate::verify::tuf::DEFAULT_MIRROR)]
    pub sigstore_tuf_mirror: String,

    /// File holding that repository's initial (trusted) root metadata; the public-good
    /// repository's root is built in.
    #[arg(long, env = "SIGSTORE_TUF_ROOT")]
    pub sigstore_tuf_root: Option<PathBuf>,

    /// Directory caching the TUF metadata and the trusted root (`$TUF_ROOT`, as Flux's
    /// Deployment sets it; `$HOME/.sigstore/root` when unset, as sigstore-go's default).
    #[arg(long, env = "TUF_ROOT")]
    pub sigstore_tuf_cache: Option<PathBuf>,
}

/// The initial root file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("failed to read --sigstore-tuf-root {path}")]
pub struct ReadTufRoot {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl SigstoreArgs {
    /// The TUF settings these flags give.
    ///
    /// # Errors
    /// [`ReadTufRoot`] when `--sigstore-tuf-root` cannot be read.
    pub fn tuf_settings(&self) -> Result<crate::verify::tuf::TufSettings, ReadTufRoot> {
        let initial_root = match &self.sigstore_tuf_root {
            Some(path) => std::fs::read(path).map_err(|source| ReadTufRoot {
                path: path.clone(),
                source,
            })?,
            None => crate::verify::tuf::PUBLIC_GOOD_ROOT.to_vec(),
        };
        let cache_dir = self.sigstore_tuf_cache.clone().unwrap_or_else(|| {
            std::env::home_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join(".sigstore")
                .join("root")
        });
        Ok(crate::verify::tuf::TufSettings {
            mirror: self.sigstore_tuf_mirror.clone(),
            initial_root,
            cache_dir: Some(cache_dir),
        })
    }
}

/// Concurrency, retries, watches and leader election.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct RuntimeArgs {
    /// Number of objects reconciled concurrently.
    #[arg(long, default_value_t = 2)]
    pub concurrent: usize,

    /// First delay of the per-object error backoff.
    #[arg(long, value_parser = go_duration, default_value = "750ms")]
    pub min_retry_delay: Duration,

    /// Largest delay of the per-object error backoff.
    #[arg(long, value_parser = go_duration, default_value = "15m")]
    pub max_retry_delay: Duration,

    /// Jitter (±%) applied to the interval requeue; 0 disables, must be below 100.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(0..100))]
    pub interval_jitter_percentage: u8,

    /// Watch all namespaces, or only $RUNTIME_NAMESPACE.
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = true,
          default_missing_value = "true", action = ArgAction::Set)]
    pub watch_all_namespaces: bool,

    /// Only reconcile objects matching this label selector (sharding).
    #[arg(long, default_value = "")]
    pub watch_label_selector: String,

    /// Elect a leader through a Lease; only the leader reconciles and serves artifacts.
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false,
          default_missing_value = "true", action = ArgAction::Set)]
    pub enable_leader_election: bool,

    /// Lease duration.
    #[arg(long, value_parser = go_duration, default_value = "35s")]
    pub leader_election_lease_duration: Duration,

    /// How long the leader tries to renew before giving up.
    #[arg(long, value_parser = go_duration, default_value = "30s")]
    pub leader_election_renew_deadline: Duration,

    /// How often candidates retry.
    #[arg(long, value_parser = go_duration, default_value = "5s")]
    pub leader_election_retry_period: Duration,

    /// Release the lease on shutdown.
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = true,
          default_missing_value = "true", action = ArgAction::Set)]
    pub leader_election_release_on_cancel: bool,

    /// Feature gates, `Name=true|false,...` (`ObjectLevelWorkloadIdentity`,
    /// `CacheSecretsAndConfigMaps`); repeated flags add up, later ones winning per gate.
    #[arg(long = "feature-gates", value_parser = feature_gates, action = ArgAction::Append)]
    pub feature_gate_flags: Vec<FeatureGates>,

    /// Service account (in the object's namespace) used for cloud workload identity when an
    /// object with a cloud provider and no static credentials names none (multi-tenancy
    /// lockdown); needs `--feature-gates=ObjectLevelWorkloadIdentity=true`.
    #[arg(long, default_value = "")]
    pub default_service_account: String,

    /// Cloud registry credentials cached at most (0 disables the cache).
    #[arg(long, default_value_t = crate::cloud::cache::CAPACITY)]
    pub token_cache_max_size: usize,

    /// The longest a cloud registry credential is reused (capped at 1h).
    #[arg(long, value_parser = go_duration, default_value = "1h")]
    pub token_cache_max_duration: Duration,

    /// The longest a registry answer (a tag's digest, a tag list) is shared by objects on the
    /// same repository, credentials and TLS; each object also caps it at half its interval.
    /// 0 disables sharing (one request per object, as Flux). Not a source-controller flag.
    #[arg(long, value_parser = go_duration, default_value = "30s")]
    pub resolution_cache_window: Duration,

    /// Accepted for source-controller compatibility; no client-side throttling (Flux turns it
    /// off on API servers with priority and fairness, which every supported version has).
    #[arg(long, value_parser = qps, default_value = "50")]
    pub kube_api_qps: String,

    /// Accepted for source-controller compatibility, as --kube-api-qps.
    #[arg(long, default_value_t = 300)]
    pub kube_api_burst: i32,

    /// Accepted for source-controller compatibility; OCIRepository has no dependencies.
    #[arg(long, value_parser = go_duration, default_value = "30s")]
    pub requeue_dependency: Duration,
}

fn qps(s: &str) -> Result<String, String> {
    s.parse::<f32>()
        .ok()
        .filter(|q| q.is_finite())
        .map(|_| s.to_string())
        .ok_or_else(|| format!("invalid float value {s:?}"))
}

impl RuntimeArgs {
    /// Every `--feature-gates` flag merged in order, as Go's map flag merges repeated flags.
    pub fn feature_gates(&self) -> FeatureGates {
        let mut gates = BTreeMap::new();
        for flag in &self.feature_gate_flags {
            gates.extend(flag.0.iter().map(|(k, v)| (k.clone(), *v)));
        }
        FeatureGates(gates)
    }

    /// Whether the `ObjectLevelWorkloadIdentity` gate is on.
    pub fn object_level_workload_identity(&self) -> bool {
        self.feature_gates().enabled("ObjectLevelWorkloadIdentity")
    }

    /// `--default-service-account`, `None` when empty.
    pub fn default_service_account(&self) -> Option<String> {
        Some(self.default_service_account.clone()).filter(|s| !s.is_empty())
    }

    /// Whether a default service account is set with the gate off, which Flux refuses at start.
    pub fn inconsistent_object_level_configuration(&self) -> bool {
        !self.object_level_workload_identity() && self.default_service_account().is_some()
    }
}

/// Enabled and disabled feature gates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeatureGates(pub BTreeMap<String, bool>);

impl FeatureGates {
    /// Whether `name` is on (gates default to off).
    pub fn enabled(&self, name: &str) -> bool {
        self.0.get(name).copied().unwrap_or(false)
    }
}

/// The feature gates this controller knows.
pub const KNOWN_FEATURE_GATES: [&str; 2] =
    ["ObjectLevelWorkloadIdentity", "CacheSecretsAndConfigMaps"];

fn feature_gates(s: &str) -> Result<FeatureGates, String> {
    let mut gates = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| format!("missing bool value for {item}"))?;
        if !KNOWN_FEATURE_GATES.contains(&name) {
            return Err(format!("unrecognized feature gate: {name}"));
        }
        let value = value
            .parse::<bool>()
            .map_err(|_| format!("invalid value of {name}: {value}"))?;
        gates.insert(name.to_string(), value);
    }
    Ok(FeatureGates(gates))
}

/// Log level.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Errors only.
    Error,
}

/// Log encoding.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogEncoding {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Console,
}

/// Endpoints and logging.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ObservabilityArgs {
    /// Listen address of `/metrics`.
    #[arg(long, env = "METRICS_ADDR", default_value = ":8080")]
    pub metrics_addr: String,

    /// Listen address of `/healthz` and `/readyz`.
    #[arg(long, default_value = ":9440")]
    pub health_addr: String,

    /// notification-controller address events are also posted to; empty posts none.
    #[arg(long, env = "EVENTS_ADDR", default_value = "")]
    pub events_addr: String,

    /// Log level.
    #[arg(long, value_enum, default_value = "info")]
    pub log_level: LogLevel,

    /// Log encoding.
    #[arg(long, value_enum, default_value = "json")]
    pub log_encoding: LogEncoding,
}

/// The push receiver (`src/receiver/`): off unless `--receiver-addr` is set. Not
/// source-controller flags.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ReceiverArgs {
    /// Listen address of the registry push receiver (`POST /hook/distribution`,
    /// `/hook/harbor`, `/hook/cloudevents`); empty turns it off.
    #[arg(long, default_value = "")]
    pub receiver_addr: String,

    /// File holding the receiver's shared secret (an HMAC key for `X-Signature`, or the token
    /// senders put in `Authorization`); read on every notification. Required with
    /// `--receiver-addr`.
    #[arg(long)]
    pub receiver_token_file: Option<std::path::PathBuf>,

    /// Notifications about events older than this are ignored (replay protection).
    #[arg(long, value_parser = go_duration, default_value = "5m")]
    pub receiver_max_event_age: Duration,
}

/// `ocisource controller`: every flag. A repeated flag takes its last value, as Go's flag
/// package does (Flux users tune controllers with patches that append flags).
#[derive(Args, Clone, Debug, PartialEq, Eq)]
#[command(args_override_self = true)]
pub struct ControllerArgs {
    /// Storage flags.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Artifact flags.
    #[command(flatten)]
    pub artifact: ArtifactArgs,
    /// Runtime flags.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Observability flags.
    #[command(flatten)]
    pub observability: ObservabilityArgs,
    /// Sigstore trusted root (TUF) flags.
    #[command(flatten)]
    pub sigstore: SigstoreArgs,
    /// Push receiver flags.
    #[command(flatten)]
    pub receiver: ReceiverArgs,
}

/// Converts a Go-style listen address (`:9090`) into a socket address string Rust can bind.
pub fn bind_addr(addr: &str) -> String {
    match addr.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cmd {
        #[command(flatten)]
        args: ControllerArgs,
    }

    fn parse(args: &[&str]) -> Result<ControllerArgs, clap::Error> {
        let mut argv = vec!["controller"];
        argv.extend_from_slice(args);
        Cmd::try_parse_from(argv).map(|c| c.args)
    }

    #[test]
    fn defaults_are_fluxs() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.storage.storage_addr, ":9090");
        assert_eq!(a.artifact.artifact_retention_ttl, Duration::from_secs(60));
        assert!(a.artifact.artifact_sharing);
        assert!(
            !parse(&["--artifact-sharing=false"])
                .unwrap()
                .artifact
                .artifact_sharing
        );
        assert_eq!(a.artifact.artifact_retention_records, 2);
        assert_eq!(a.artifact.artifact_digest_algo, DigestAlgo::Sha256);
        assert_eq!(a.runtime.concurrent, 2);
        assert_eq!(a.runtime.min_retry_delay, Duration::from_millis(750));
        assert_eq!(a.runtime.max_retry_delay, Duration::from_secs(900));
        assert_eq!(a.runtime.interval_jitter_percentage, 5);
        assert!(a.runtime.watch_all_namespaces);
        assert!(!a.runtime.enable_leader_election);
        assert_eq!(
            a.runtime.leader_election_lease_duration,
            Duration::from_secs(35)
        );
        assert_eq!(
            a.runtime.leader_election_renew_deadline,
            Duration::from_secs(30)
        );
        assert_eq!(
            a.runtime.leader_election_retry_period,
            Duration::from_secs(5)
        );
        assert_eq!(a.observability.metrics_addr, ":8080");
        assert_eq!(a.observability.health_addr, ":9440");
        assert_eq!(a.observability.log_level, LogLevel::Info);
        assert_eq!(a.observability.log_encoding, LogEncoding::Json);
        assert_eq!(a.artifact.content.limits().max_size, Some(1 << 30));
        assert_eq!(a.runtime.default_service_account(), None);
        assert!(!a.runtime.inconsistent_object_level_configuration());
        assert_eq!(a.runtime.token_cache_max_size, 100);
        assert_eq!(
            a.runtime.token_cache_max_duration,
            Duration::from_secs(3600)
        );
        assert_eq!(a.runtime.resolution_cache_window, Duration::from_secs(30));
        let off = parse(&["--resolution-cache-window=0s"]).unwrap();
        assert_eq!(off.runtime.resolution_cache_window, Duration::ZERO);
    }

    /// A patch appending a flag the Deployment already sets: the last one wins, as with Go's
    /// flag package; repeated feature gates add up.
    #[test]
    fn repeated_flags_take_the_last_value() {
        let a = parse(&[
            "--watch-all-namespaces=false",
            "--concurrent=2",
            "--feature-gates=CacheSecretsAndConfigMaps=true",
            "--watch-all-namespaces=true",
            "--concurrent=10",
            "--feature-gates=ObjectLevelWorkloadIdentity=true,CacheSecretsAndConfigMaps=false",
            "--feature-gates=CacheSecretsAndConfigMaps=true",
        ])
        .unwrap();
        assert!(a.runtime.watch_all_namespaces);
        assert_eq!(a.runtime.concurrent, 10);
        let gates = a.runtime.feature_gates();
        assert!(gates.enabled("ObjectLevelWorkloadIdentity"));
        assert!(gates.enabled("CacheSecretsAndConfigMaps"));
    }

    /// The arguments of Flux's own source-controller Deployment and its usual patches.
    #[test]
    fn source_controllers_arguments_are_accepted() {
        let a = parse(&[
            "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
            "--watch-all-namespaces=true",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
            "--storage-path=/data",
            "--storage-adv-addr=source-controller.flux-system.svc.cluster.local.",
            "--concurrent=10",
            "--requeue-dependency=5s",
            "--kube-api-qps=500",
            "--kube-api-burst=1000",
            "--token-cache-max-size=0",
            "--token-cache-max-duration=10m",
        ])
        .unwrap();
        assert_eq!(a.runtime.token_cache_max_size, 0);
        assert_eq!(a.runtime.token_cache_max_duration, Duration::from_secs(600));
        assert_eq!(a.runtime.kube_api_qps, "500");
        assert!(parse(&["--kube-api-qps=fast"]).is_err());
    }

    #[test]
    fn a_default_service_account_needs_the_gate() {
        let a = parse(&[
            "--default-service-account=flux-tenant",
            "--feature-gates=ObjectLevelWorkloadIdentity=true",
        ])
        .unwrap();
        assert_eq!(
            a.runtime.default_service_account().as_deref(),
            Some("flux-tenant")
        );
        assert!(!a.runtime.inconsistent_object_level_configuration());
        let a = parse(&["--default-service-account", "flux-tenant"]).unwrap();
        assert!(a.runtime.inconsistent_object_level_configuration());
    }

    #[test]
    fn go_flag_syntax_is_accepted() {
        let a = parse(&[
            "--enable-leader-election",
            "--watch-all-namespaces=false",
            "--min-retry-delay=2s",
            "--max-retry-delay",
            "1h",
            "--artifact-digest-algo=blake3",
            "--artifact-max-extract-size=-1",
            "--feature-gates=ObjectLevelWorkloadIdentity=true",
            "--log-encoding=console",
        ])
        .unwrap();
        assert!(a.runtime.enable_leader_election);
        assert!(!a.runtime.watch_all_namespaces);
        assert_eq!(a.runtime.min_retry_delay, Duration::from_secs(2));
        assert_eq!(a.runtime.max_retry_delay, Duration::from_secs(3600));
        assert_eq!(a.artifact.artifact_digest_algo, DigestAlgo::Blake3);
        assert_eq!(a.artifact.content.limits().max_size, None);
        assert!(
            a.runtime
                .feature_gates()
                .enabled("ObjectLevelWorkloadIdentity")
        );
        assert!(
            !a.runtime
                .feature_gates()
                .enabled("CacheSecretsAndConfigMaps")
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            &["--interval-jitter-percentage=100"][..],
            &["--min-retry-delay=5x"],
            &["--artifact-digest-algo=md5"],
            &["--feature-gates=Nope=true"],
            &["--feature-gates=ObjectLevelWorkloadIdentity"],
            &["--log-level=verbose"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_advertised_address_is_derived_like_flux_2_7() {
        let storage = |addr: &str, adv: &str| StorageArgs {
            storage_path: "/data".into(),
            storage_addr: addr.into(),
            storage_adv_addr: adv.into(),
        };
        assert_eq!(storage(":9090", "").advertised_addr(None), "localhost:9090");
        assert_eq!(
            storage("0.0.0.0:9090", "").advertised_addr(Some("pod-1")),
            "pod-1:9090"
        );
        assert_eq!(
            storage("127.0.0.1:9090", "").advertised_addr(None),
            "127.0.0.1:9090"
        );
        assert_eq!(
            storage(":9090", "source-controller.flux-system.svc.cluster.local.")
                .advertised_addr(None),
            "source-controller.flux-system.svc.cluster.local."
        );
        assert_eq!(bind_addr(":9090"), "0.0.0.0:9090");
        assert_eq!(bind_addr("127.0.0.1:1"), "127.0.0.1:1");
    }
}
