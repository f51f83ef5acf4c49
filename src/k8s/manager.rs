//! The controller process: builds the client, the artifact store and the reconcile context from
//! the flags, serves artifacts and health endpoints, and runs the controller until a signal.

use std::sync::Arc;

use kube::{Api, Client};
use tokio::sync::watch;

use super::controller::{self, Backoff, Context};
use super::events::EventPublisher;
use super::secrets::KubeSecrets;
use crate::api::v1::OciRepository;
use crate::cli::{ControllerArgs, DigestAlgo, bind_addr};
use crate::core::reconcile::Settings;
use crate::metrics::Metrics;
use crate::registry::ClientPool;
use crate::server;
use crate::storage::{DigestAlgorithm, ExtractLimits, Retention, Storage};

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
    /// `--watch-all-namespaces=false` without `RUNTIME_NAMESPACE`.
    #[error("--watch-all-namespaces=false needs the RUNTIME_NAMESPACE environment variable")]
    NoNamespace,
    /// Leader election is requested but not built in yet.
    #[error("--enable-leader-election is not supported yet: run a single replica")]
    LeaderElection,
    /// The controller failed.
    #[error("the controller failed")]
    Controller(#[source] controller::Error),
}

/// Runs `ocisource controller` until SIGINT or SIGTERM.
///
/// # Errors
/// When the client, the store or a listener cannot be set up.
pub async fn run(args: ControllerArgs) -> Result<(), Error> {
    if args.runtime.enable_leader_election {
        return Err(Error::LeaderElection);
    }
    let client = Client::try_default().await.map_err(Error::Client)?;
    let hostname = std::env::var("HOSTNAME").ok();
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

    let (ready_tx, ready_rx) = watch::channel(false);
    serve(
        &args.storage.storage_addr,
        server::artifact_router(storage.root().to_path_buf()),
    )
    .await?;
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

    let api: Api<OciRepository> = if args.runtime.watch_all_namespaces {
        Api::all(client.clone())
    } else {
        let ns = std::env::var("RUNTIME_NAMESPACE").map_err(|_| Error::NoNamespace)?;
        Api::namespaced(client.clone(), &ns)
    };
    let instance = hostname.unwrap_or_else(|| "ocisource".to_string());
    let ctx = Arc::new(Context {
        events: EventPublisher::new(client.clone(), &args.observability.events_addr, &instance),
        secrets: KubeSecrets::new(client.clone()),
        client,
        settings: Settings {
            storage,
            limits: ExtractLimits::from_flags(
                args.artifact.artifact_max_extract_size,
                args.artifact.artifact_max_extract_entries,
            ),
            object_level_workload_identity: args
                .runtime
                .feature_gates
                .enabled("ObjectLevelWorkloadIdentity"),
        },
        registries: ClientPool::new(),
        jitter_percent: args.runtime.interval_jitter_percentage,
        backoff: Backoff::new(args.runtime.min_retry_delay, args.runtime.max_retry_delay),
        metrics,
        exported_requests: Default::default(),
    });
    let concurrency = u16::try_from(args.runtime.concurrent).unwrap_or(u16::MAX);
    tracing::info!(storage = %ctx.settings.storage.root().display(), "starting controller");
    controller::run(
        api,
        &args.runtime.watch_label_selector,
        concurrency,
        ctx,
        ready_tx,
        shutdown_signal(),
    )
    .await
    .map_err(Error::Controller)
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
