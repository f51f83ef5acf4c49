//! The controller process: builds the client, the artifact store and the reconcile context from
//! the flags, serves artifacts and health endpoints, and runs the controller until a signal.

use std::sync::Arc;
use std::time::Duration;

use kube::{Api, Client};
use tokio::sync::watch;

use super::controller::{self, Backoff, Context};
use super::events::EventPublisher;
use super::secrets::KubeSecrets;
use super::workqueue::WorkQueue;
use crate::api::v1::OciRepository;
use crate::cli::{ControllerArgs, DigestAlgo, bind_addr};
use crate::cloud::TokenCache;
use crate::core::Settings;
use crate::core::resolution_cache::{self, ResolutionCache};
use crate::core::shared_artifacts::SharedArtifacts;
use crate::metrics::Metrics;
use crate::registry::ClientPool;
use crate::server;
use crate::storage::{DigestAlgorithm, Retention, Storage};

/// Why the controller could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("failed to create the Kubernetes client")]
    Client(#[source] kube::Error),
    /// The artifact store is unusable.
    #[error("failed to open the artifact store")]
    Storage(#[source] crate::storage::Error),
    /// A listener could not be bound.
    #[error("failed to listen on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--default-service-account` without the `ObjectLevelWorkloadIdentity` gate (Flux's
    /// wording).
    #[error(
        "invalid configuration: cannot set default service accounts when the feature gate ObjectLevelWorkloadIdentity is not enabled"
    )]
    InconsistentObjectLevelConfiguration,
    /// `--watch-all-namespaces=false` without `RUNTIME_NAMESPACE`.
    #[error("--watch-all-namespaces=false needs the RUNTIME_NAMESPACE environment variable")]
    NoNamespace,
    /// The leader election flags are inconsistent.
    #[error("invalid leader election timings: {0}")]
    LeaderElectionFlags(&'static str),
    /// `--enable-leader-election` without `RUNTIME_NAMESPACE`.
    #[error("--enable-leader-election needs the RUNTIME_NAMESPACE environment variable")]
    LeaderElectionNamespace,
    /// The Lease could not be used.
    #[error("leader election failed")]
    LeaderElection(#[source] kube_lease_manager::LeaseManagerError),
    /// Leadership was lost; the process exits so that another replica takes over cleanly.
    #[error("leader election lost")]
    LostLeadership,
    /// The Sigstore TUF flags are unusable (mirror URL, initial root file).
    #[error("invalid Sigstore TUF configuration: {0}")]
    SigstoreRoot(String),
    /// The push receiver flags are inconsistent.
    #[error("invalid receiver configuration: {0}")]
    Receiver(&'static str),
    /// The controller failed.
    #[error("the controller failed")]
    Controller(#[source] controller::Error),
}

/// The User-Agent of every request to the API server, in client-go's shape
/// (`source-controller/v0.0.0 (linux/amd64) kubernetes/$Format` for Flux's build): the program,
/// its version and its platform, so that audit logs and API priority and fairness can tell the
/// controller apart.
pub fn user_agent() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!(
        "ocisource/v{} ({}/{arch})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS
    )
}

/// The API client: kubeconfig or in-cluster configuration, with [`user_agent`].
async fn client() -> Result<Client, kube::Error> {
    let mut config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    let agent = reqwest::header::HeaderValue::from_str(&user_agent())
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("ocisource"));
    config.headers.push((reqwest::header::USER_AGENT, agent));
    Client::try_from(config)
}

/// Runs `ocisource controller` until SIGINT or SIGTERM.
///
/// # Errors
/// When the flags are inconsistent, or the client, the store or a listener cannot be set up.
pub async fn run(args: ControllerArgs) -> Result<(), Error> {
    if args.runtime.inconsistent_object_level_configuration() {
        return Err(Error::InconsistentObjectLevelConfiguration);
    }
    let receiver = receiver_config(&args)?;
    let client = client().await.map_err(Error::Client)?;
    let hostname = std::env::var("HOSTNAME").ok();
    let instance = hostname.clone().unwrap_or_else(|| "ocisource".to_string());
    let advertised = args.storage.advertised_addr(hostname.as_deref());
    let algorithm = match args.artifact.artifact_digest_algo {
        DigestAlgo::Sha256 => DigestAlgorithm::Sha256,
        DigestAlgo::Sha384 => DigestAlgorithm::Sha384,
        DigestAlgo::Sha512 => DigestAlgorithm::Sha512,
        DigestAlgo::Blake3 => DigestAlgorithm::Blake3,
    };
    let storage = Storage::new(&args.storage.storage_path, advertised)
        .map_err(Error::Storage)?
        .with_digest_algorithm(algorithm)
        .with_retention(Retention {
            ttl: args.artifact.artifact_retention_ttl,
            records: args.artifact.artifact_retention_records,
        });
    sweep_leftovers(&storage);
    tokio::spawn(sweep_shared_artifacts(storage.clone()));

    let (ready_tx, ready_rx) = watch::channel(false);
    serve(
        &args.observability.health_addr,
        server::health_router(ready_rx),
    )
    .await?;
    let metrics = Arc::new(Metrics::new());
    serve(
        &args.observability.metrics_addr,
        crate::metrics::router(metrics.clone()),
    )
    .await?;

    let watched_namespace = if args.runtime.watch_all_namespaces {
        None
    } else {
        Some(std::env::var("RUNTIME_NAMESPACE").map_err(|_| Error::NoNamespace)?)
    };
    let api: Api<OciRepository> = match &watched_namespace {
        None => Api::all(client.clone()),
        Some(ns) => Api::namespaced(client.clone(), ns),
    };
    // Like Flux, only the leader reconciles and serves artifacts; health and metrics answer on
    // every replica, and only the leader reports ready.
    let leadership = if args.runtime.enable_leader_election {
        let lease = lease_name(&args.runtime.watch_label_selector);
        metrics.leader(&lease, false);
        let leader = acquire_leadership(&client, &args, &instance).await?;
        metrics.leader(&lease, true);
        Some(leader)
    } else {
        None
    };
    serve(
        &args.storage.storage_addr,
        server::artifact_router(storage.root().to_path_buf()),
    )
    .await?;
    // The controller's watch cache, shared with the push receiver.
    let (objects, writer) = kube::runtime::reflector::store();
    if let Some(config) = receiver {
        let objects = super::receiver::KubeObjects {
            store: objects,
            client: client.clone(),
        };
        serve(
            &args.receiver.receiver_addr,
            crate::receiver::router(Arc::new(crate::receiver::Receiver::new(config, objects))),
        )
        .await?;
    }

    let sigstore_root = args
        .sigstore
        .tuf_settings()
        .map_err(|e| Error::SigstoreRoot(crate::core::message::render(&e)))
        .and_then(|settings| {
            crate::verify::tuf::SigstoreRoot::new(&settings).map_err(Error::SigstoreRoot)
        })?;
    let concurrency = u16::try_from(args.runtime.concurrent).unwrap_or(u16::MAX);
    let ctx = Arc::new(Context {
        events: EventPublisher::new(client.clone(), &args.observability.events_addr, &instance),
        secrets: if args
            .runtime
            .feature_gates()
            .enabled("CacheSecretsAndConfigMaps")
        {
            KubeSecrets::cached(client.clone(), watched_namespace.as_deref())
        } else {
            KubeSecrets::new(client.clone())
        },
        client,
        settings: Settings {
            storage,
            limits: args.artifact.content.limits(),
            object_level_workload_identity: args.runtime.object_level_workload_identity(),
            default_service_account: args.runtime.default_service_account(),
            cloud_tokens: TokenCache::with_limits(
                args.runtime.token_cache_max_size,
                args.runtime.token_cache_max_duration,
            ),
            default_platform: args.artifact.content.default_platform.clone(),
            resolutions: ResolutionCache::new(
                args.runtime.resolution_cache_window,
                resolution_cache::DEFAULT_CAPACITY,
            ),
            shared: if args.artifact.artifact_sharing {
                SharedArtifacts::default()
            } else {
                SharedArtifacts::disabled()
            },
        },
        registries: ClientPool::new(),
        jitter_percent: args.runtime.interval_jitter_percentage,
        backoff: Backoff::new(args.runtime.min_retry_delay, args.runtime.max_retry_delay),
        metrics,
        // `--concurrent=0` is no bound, as it was for kube's runner.
        work: Arc::new(WorkQueue::new(match concurrency {
            0 => usize::MAX,
            n => usize::from(n),
        })),
        verifications: Default::default(),
        sigstore_root: Arc::new(sigstore_root),
    });
    tracing::info!(storage = %ctx.settings.storage.root().display(), "starting controller");
    // Holding the receiver keeps the lease renewed; its end (or a lost lease) stops the
    // controller, and dropping it on shutdown releases the lease.
    let lost: std::pin::Pin<Box<dyn Future<Output = ()> + Send + Sync>> = match leadership {
        Some(mut leader) => Box::pin(async move {
            while leader.changed().await.is_ok() {
                if !*leader.borrow() {
                    break;
                }
            }
        }),
        None => Box::pin(std::future::pending()),
    };
    let lost_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = lost_flag.clone();
    let shutdown = async move {
        tokio::select! {
            _ = shutdown_signal() => {},
            _ = lost => flag.store(true, std::sync::atomic::Ordering::SeqCst),
        }
    };
    controller::run(
        api,
        writer,
        &args.runtime.watch_label_selector,
        concurrency,
        ctx,
        ready_tx,
        shutdown,
    )
    .await
    .map_err(Error::Controller)?;
    if lost_flag.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Error::LostLeadership);
    }
    Ok(())
}

/// The push receiver's settings, when `--receiver-addr` turns it on.
fn receiver_config(args: &ControllerArgs) -> Result<Option<crate::receiver::Config>, Error> {
    let flags = &args.receiver;
    if flags.receiver_addr.is_empty() {
        return Ok(None);
    }
    let Some(token_file) = flags.receiver_token_file.clone() else {
        return Err(Error::Receiver(
            "--receiver-addr needs --receiver-token-file",
        ));
    };
    Ok(Some(crate::receiver::Config {
        token_file,
        max_event_age: flags.receiver_max_event_age,
    }))
}

/// The Lease name: Flux's scheme (a suffix of the selector's SHA-256 when sharding) under our
/// own prefix, so that ocisource never contends with a source-controller in the same namespace.
pub fn lease_name(label_selector: &str) -> String {
    use sha2::Digest as _;
    if label_selector.is_empty() {
        return "ocisource-leader-election".to_string();
    }
    let hash = sha2::Sha256::digest(label_selector.as_bytes());
    let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("ocisource-leader-election-{hex}")
}

async fn acquire_leadership(
    client: &Client,
    args: &ControllerArgs,
    identity: &str,
) -> Result<watch::Receiver<bool>, Error> {
    let namespace =
        std::env::var("RUNTIME_NAMESPACE").map_err(|_| Error::LeaderElectionNamespace)?;
    let duration = args.runtime.leader_election_lease_duration.as_secs();
    let grace = args.runtime.leader_election_retry_period.as_secs().max(1);
    if duration < 2 {
        return Err(Error::LeaderElectionFlags(
            "the lease duration must be at least 2s",
        ));
    }
    if grace >= duration {
        return Err(Error::LeaderElectionFlags(
            "the retry period must be shorter than the lease duration",
        ));
    }
    let manager = kube_lease_manager::LeaseManagerBuilder::new(
        client.clone(),
        lease_name(&args.runtime.watch_label_selector),
    )
    .with_namespace(namespace)
    .with_identity(identity)
    .with_duration(duration)
    .with_grace(grace)
    .build()
    .await
    .map_err(Error::LeaderElection)?;
    let (mut leader, _task) = manager.watch().await;
    tracing::info!(identity, "waiting for leadership");
    while !*leader.borrow_and_update() {
        if leader.changed().await.is_err() {
            return Err(Error::LostLeadership);
        }
    }
    tracing::info!(identity, "acquired leadership");
    Ok(leader)
}

async fn serve(addr: &str, router: axum::Router) -> Result<(), Error> {
    let bind = bind_addr(addr);
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|source| Error::Listen {
            addr: bind.clone(),
            source,
        })?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(addr = %bind, error = %e, "server stopped");
        }
    });
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Removes what a killed predecessor left: partial `.tmp` files in the store and working
/// directories in the temp dir. Both are recognised by the names only ocisource gives them and
/// removed only when no live process holds their lock, so another process sharing the temp
/// dir (a standalone reconcile, a second controller) is never disturbed; storage is per pod.
fn sweep_leftovers(storage: &Storage) {
    let files = storage.sweep_partial_files();
    let dirs = crate::storage::workdir::sweep(&std::env::temp_dir());
    if !files.is_empty() || !dirs.is_empty() {
        tracing::info!(
            partial_files = files.len(),
            working_dirs = dirs.len(),
            "removed leftovers of an interrupted run"
        );
    }
}

/// Removes, every retention TTL (at least 10 s, at most 10 min), the shared artifact contents
/// no object has linked for a TTL (see [`crate::storage::shared`]).
async fn sweep_shared_artifacts(storage: Storage) {
    let period = storage
        .retention()
        .ttl
        .clamp(Duration::from_secs(10), Duration::from_secs(600));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = storage.clone();
        if let Ok(removed) =
            tokio::task::spawn_blocking(move || s.sweep_shared(std::time::SystemTime::now())).await
            && !removed.is_empty()
        {
            tracing::debug!(entries = removed.len(), "removed unused shared artifacts");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lease_name;

    #[test]
    fn the_lease_is_ours_and_sharded_by_selector() {
        assert_eq!(lease_name(""), "ocisource-leader-election");
        let shard = lease_name("sharding.fluxcd.io/key=shard1");
        assert!(shard.starts_with("ocisource-leader-election-"));
        assert_eq!(shard.len(), "ocisource-leader-election-".len() + 8);
        assert_ne!(shard, lease_name("sharding.fluxcd.io/key=shard2"));
    }
}
