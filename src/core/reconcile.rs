//! One reconcile of an OCIRepository, as Flux's reconciler runs it: storage step (GC, integrity,
//! host rewrite), source step (credentials and transport from [`super::connect`], the reference
//! from [`super::resolve`], revision, verification, the unchanged-source short-circuit, pull by
//! digest, extract or copy), artifact step (archive, store, record), then the pure summary. Used
//! alike by the controller and by standalone mode.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::conditions::Conditions;
use super::connect::{self, Connection};
use super::error::{Class, Error};
use super::events::{self, Event};
use super::message;
use super::ports::{ProgressSink, SecretSource, Verification, Verifier, VerifyRequest};
use super::resolution_cache::Freshness;
use super::resolve::{self, Resolved};
use super::shared_artifacts::SharedArtifacts;
use super::summary::{self, Ending, Next};
use crate::api::conditions::{reasons, types};
use crate::api::metadata::Metadata;
use crate::api::v1::{
    Artifact, LayerOperation, OciLayerSelector, OciRepository, OciRepositorySpec,
    OciRepositoryStatus,
};
use crate::api::{PLATFORM_ANNOTATION, RECONCILE_REQUESTED_AT, duration};
use crate::registry::{ClientPool, Descriptor, Manifest, Platform, Repository};
use crate::storage::{self, Deadline, SharedEntry, SharedKey, Storage};

pub use super::Settings;
pub use super::resolve::HELM_CHART_MEDIA_TYPE;

/// Default of `spec.timeout`.
const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The outside world as the reconcile sees it.
pub struct Ports<'a, S, V, P> {
    /// Secrets and service accounts.
    pub secrets: &'a S,
    /// Signature verification.
    pub verifier: &'a V,
    /// Intermediate status patches.
    pub progress: &'a P,
    /// Registry clients (shared token cache and counters).
    pub registries: &'a ClientPool,
}

/// The result of one reconcile.
#[derive(Debug)]
pub struct Outcome {
    /// The complete new status.
    pub status: OciRepositoryStatus,
    /// How the attempt ended.
    pub ending: Ending,
    /// What happens next.
    pub next: Next,
    /// Events to record, in order.
    pub events: Vec<Event>,
}

/// Runs one reconcile of `obj` (whose finalizer is in place and which is not being deleted) at
/// time `now`.
pub async fn reconcile<S, V, P>(
    obj: &OciRepository,
    settings: &Settings,
    ports: Ports<'_, S, V, P>,
    now: Time,
) -> Outcome
where
    S: SecretSource,
    V: Verifier,
    P: ProgressSink,
{
    let generation = obj.metadata.generation.unwrap_or(0);
    let before = obj.status.clone().unwrap_or_default();
    let mut run = Run {
        obj,
        settings,
        status: before.clone(),
        conds: Conditions::new(before.conditions.clone(), generation, now.clone()),
        events: vec![],
        now,
        deadline: None,
    };
    let ending = if obj.spec.suspend == Some(true) {
        Ending::Done
    } else {
        match run.steps(&ports).await {
            Ok(()) => Ending::Success,
            Err(e) => run.fail(&e),
        }
    };
    let Run {
        mut status,
        conds,
        mut events,
        ..
    } = run;
    let summary = summary::summarize(
        conds,
        generation,
        before.observed_generation,
        ending.clone(),
    );
    status.conditions = summary.conditions;
    status.observed_generation = summary.observed_generation;
    if let Some(requested) = obj.annotations().get(RECONCILE_REQUESTED_AT) {
        status.last_handled_reconcile_at = Some(requested.clone());
    }
    events.extend(events::notify(&before, &status, &obj.spec.url, &ending));
    Outcome {
        status,
        ending,
        next: summary.next,
        events,
    }
}

/// Removes everything stored for a deleted object.
///
/// # Errors
/// When the object's directory cannot be removed (`GarbageCollectionFailed`).
pub fn cleanup(
    storage: &Storage,
    namespace: &str,
    name: &str,
) -> Result<Option<PathBuf>, storage::Error> {
    storage.remove_all(namespace, name)
}

/// What the source step produced.
struct Source {
    revision: String,
    // The platform the source step resolved an index for, so the artifact step judges the
    // stored artifact against the same one.
    platform: Platform,
    metadata: Option<BTreeMap<String, String>>,
    content: Option<Content>,
}

/// Where the pulled layer sits: extracted in the working directory, or (copy mode) streamed
/// once into a temporary file beside its artifact, renamed into place by the artifact step.
enum Content {
    Extracted,
    Copied(storage::Staged),
    /// Stored once for every object that selects the same bytes ([`super::shared_artifacts`]),
    /// linked into place by the artifact step.
    Shared(SharedKey, SharedEntry),
}

struct Run<'a> {
    obj: &'a OciRepository,
    settings: &'a Settings,
    status: OciRepositoryStatus,
    conds: Conditions,
    events: Vec<Event>,
    now: Time,
    // `spec.timeout` from the start of the source step: registry calls, copy and archive.
    deadline: Option<Deadline>,
}

impl Run<'_> {
    fn spec(&self) -> &OciRepositorySpec {
        &self.obj.spec
    }

    /// The platform an index resolves to: the object's annotation, else the controller's.
    fn platform(&self) -> Result<Platform, Error> {
        match self.obj.annotations().get(PLATFORM_ANNOTATION) {
            Some(value) => value
                .trim()
                .parse()
                .map_err(|source| Error::InvalidPlatform { source }),
            None => Ok(self.settings.default_platform.clone()),
        }
    }

    /// How old a shared registry answer this reconcile accepts ([`super::resolution_cache`]):
    /// none after a new `requestedAt` or a spec change since the object was last observed
    /// (those ask the registry), else younger than the window and half the interval.
    fn freshness(&self) -> Freshness {
        let generation = self.obj.metadata.generation.unwrap_or(0);
        // A new object (never observed: the CRD's -1) has no answer of its own to compare with.
        let edited = self
            .status
            .observed_generation
            .is_some_and(|g| g > 0 && g != generation);
        let requested = self.obj.annotations().get(RECONCILE_REQUESTED_AT);
        let asked =
            requested.is_some() && requested != self.status.last_handled_reconcile_at.as_ref();
        if edited || asked {
            return Freshness::FRESH;
        }
        let interval = duration::parse(&self.obj.spec.interval).unwrap_or_default();
        Freshness::for_interval(interval, self.settings.resolutions.window())
    }

    /// Starts the reconcile deadline (once) and returns it.
    fn start_deadline(&mut self, timeout: std::time::Duration) -> Deadline {
        *self
            .deadline
            .get_or_insert_with(|| Deadline::after(timeout))
    }

    fn snapshot(&self) -> OciRepositoryStatus {
        OciRepositoryStatus {
            conditions: self.conds.list().to_vec(),
            ..self.status.clone()
        }
    }

    async fn patch<P: ProgressSink>(&self, progress: &P) {
        progress.progress(&self.snapshot()).await;
    }

    fn fail(&mut self, e: &Error) -> Ending {
        let message = message::render_for_url(e, &self.obj.spec.url);
        let reason = e.reason();
        if let Some(condition) = e.condition() {
            self.conds.mark_true(condition, reason, &message);
        }
        match e.class() {
            Class::Stalled => Ending::Stalled { reason, message },
            Class::Transient => Ending::Failed { reason, message },
            Class::Plain => Ending::FailedPlain { message },
        }
    }

    async fn steps<S, V, P>(&mut self, ports: &Ports<'_, S, V, P>) -> Result<(), Error>
    where
        S: SecretSource,
        V: Verifier,
        P: ProgressSink,
    {
        let generation = self.obj.metadata.generation.unwrap_or(0);
        self.conds.progressive(false, "reconciliation in progress");
        let observed = self.status.observed_generation.unwrap_or(-1);
        let requested = self.obj.annotations().get(RECONCILE_REQUESTED_AT);
        if observed != generation {
            let msg = format!("processing object: new generation {observed} -> {generation}");
            self.conds.progressive(false, &msg);
            self.patch(ports.progress).await;
        } else if requested.is_some() && requested != self.status.last_handled_reconcile_at.as_ref()
        {
            self.patch(ports.progress).await;
        }

        let namespace = self.obj.namespace().unwrap_or_default();
        let name = self.obj.name_any();
        // Names become part of paths: only clean segments (the API server guarantees DNS
        // names; standalone input is checked too, this is the last line).
        storage::path::artifact_dir(&namespace, &name).map_err(|e| Error::TempDir {
            source: std::io::Error::other(e),
        })?;
        let tmp = storage::workdir::create(&namespace, &name)
            .map_err(|source| Error::TempDir { source })?;
        self.conds.delete(types::STORAGE_OPERATION_FAILED);

        self.reconcile_storage(ports.progress).await?;
        let source = self.reconcile_source(ports, tmp.path()).await?;
        let result = self.reconcile_artifact(source, tmp.path()).await;
        drop(tmp);
        result
    }

    async fn reconcile_storage<P: ProgressSink>(&mut self, progress: &P) -> Result<(), Error> {
        let storage = &self.settings.storage;
        let namespace = self.obj.namespace().unwrap_or_default();
        let name = self.obj.name_any();
        // The status is trusted no further than an artifact file of the object's own directory:
        // a path elsewhere (edited status, another object's files, `..`, a lock file) is never
        // verified, collected or removed.
        let foreign = self
            .status
            .artifact
            .as_ref()
            .is_some_and(|a| !storage::path::is_own_artifact(&namespace, &name, &a.path));
        if foreign {
            self.status.artifact = None;
            self.status.url = None;
        }
        if let Some(artifact) = &self.status.artifact
            && let Ok(removed) =
                storage.garbage_collect(&artifact.path, SystemTime::from(self.now.0))
            && !removed.is_empty()
        {
            self.events.push(Event::trace(
                reasons::GARBAGE_COLLECTION_SUCCEEDED,
                format!("garbage collected {} artifacts", removed.len()),
            ));
        }
        let mut disappeared = false;
        if let Some(artifact) = self.status.artifact.clone() {
            match storage.verify(
                &artifact.path,
                artifact.digest.as_deref().unwrap_or_default(),
            ) {
                Ok(()) => {}
                Err(e) if e.is_missing() => disappeared = true,
                Err(e) => {
                    let e = message::render(&e);
                    self.events.push(Event {
                        severity: events::Severity::Error,
                        reason: reasons::ARTIFACT_VERIFICATION_FAILED.to_string(),
                        message: format!("failed to verify integrity of artifact: {e}"),
                        metadata: BTreeMap::new(),
                    });
                    storage
                        .remove(&artifact.path)
                        .map_err(|source| Error::RemoveCorrupt { source })?;
                    disappeared = true;
                }
            }
        }
        if disappeared {
            self.status.artifact = None;
            self.status.url = None;
        }
        let disappeared = disappeared || foreign;
        let Some(artifact) = self.status.artifact.as_mut() else {
            let msg = if disappeared {
                "building artifact: disappeared from storage"
            } else {
                "building artifact"
            };
            self.conds.progressive(true, msg);
            self.conds.delete(types::ARTIFACT_IN_STORAGE);
            self.patch(progress).await;
            return Ok(());
        };
        // Derived from the path rather than host-rewritten, so a stale or edited URL is repaired
        // along with a changed advertised address.
        artifact.url = storage.artifact_url(&artifact.path);
        if self.status.url.is_some() {
            self.status.url = Some(storage.latest_url(&artifact.path));
        }
        Ok(())
    }

    /// The source step: reach the registry ([`connect`]), resolve the reference ([`resolve`]),
    /// verify the digest, stop there when the stored artifact is current, else pull by digest.
    async fn reconcile_source<S, V, P>(
        &mut self,
        ports: &Ports<'_, S, V, P>,
        tmp: &Path,
    ) -> Result<Source, Error>
    where
        S: SecretSource,
        V: Verifier,
        P: ProgressSink,
    {
        if self.conds.is_false(types::SOURCE_VERIFIED) {
            self.conds.delete(types::SOURCE_VERIFIED);
        }
        let spec = self.spec().clone();
        let url = spec.url.clone();
        let namespace = self.obj.namespace().unwrap_or_default();
        let repo = Repository::parse_oci_url(&url).map_err(|source| Error::InvalidUrl {
            url: url.clone(),
            source,
        })?;
        let platform = self.platform()?;
        let timeout = spec
            .timeout
            .as_deref()
            .and_then(|t| duration::parse(t).ok())
            .unwrap_or(DEFAULT_TIMEOUT);
        let deadline = self.start_deadline(timeout);

        let connection = connect::connect(
            self.settings,
            ports.secrets,
            ports.registries,
            &namespace,
            &spec,
            &repo,
            deadline.at(),
        )
        .await
        .inspect_err(|e| self.events.extend(connect::failure_event(e)))?;

        let resolved = resolve::resolve(
            &spec,
            &repo,
            &connection,
            &self.settings.resolutions,
            self.freshness(),
        )
        .await?;
        let revision = resolved.revision();
        let stored = self.status.artifact.as_ref().map(|a| a.revision.clone());
        let changed = stored.as_deref() != Some(revision.as_str());
        if changed {
            let msg = format!(
                "new revision '{revision}' for '{}'",
                resolved.reference(&repo)
            );
            if self.status.artifact.is_some() {
                self.conds
                    .mark_true(types::ARTIFACT_OUTDATED, reasons::NEW_REVISION, &msg);
            }
            self.conds
                .progressive(true, &format!("building artifact: {msg}"));
            self.patch(ports.progress).await;
        }

        self.verify(ports.verifier, &repo, &resolved, &connection, changed)
            .await?;

        if !changed && content_config_unchanged(&spec, &self.status, &platform) {
            self.conds.delete(types::FETCH_FAILED);
            return Ok(Source {
                revision,
                platform,
                metadata: None,
                content: None,
            });
        }

        let (content, mut metadata) = self
            .pull(&repo, &resolved, &connection, &platform, tmp)
            .await
            .inspect_err(|e| {
                // A shared entry is stored during the pull: its storage failures come after a
                // fetch that succeeded.
                if e.after_fetch() {
                    self.conds.delete(types::FETCH_FAILED);
                }
            })?;
        if platform != Platform::linux_amd64() {
            metadata
                .get_or_insert_with(BTreeMap::new)
                .insert(PLATFORM_ANNOTATION.to_string(), platform.to_string());
        }
        self.conds.delete(types::FETCH_FAILED);
        Ok(Source {
            revision,
            platform,
            metadata,
            content: Some(content),
        })
    }

    /// The pull by digest: the manifest, the selected layer streamed and verified, then
    /// extracted into `tmp` or (copy mode) staged beside its artifact. Returns the content and the
    /// manifest's annotations.
    async fn pull(
        &self,
        repo: &Repository,
        resolved: &Resolved,
        connection: &Connection,
        platform: &Platform,
        tmp: &Path,
    ) -> Result<(Content, Option<BTreeMap<String, String>>), Error> {
        let Connection {
            client, credential, ..
        } = connection;
        let spec = self.spec();
        let manifest = self
            .settings
            .resolutions
            .fetch_manifest(
                (client, credential, connection.fingerprint),
                repo,
                &resolved.digest,
                platform,
                self.freshness(),
            )
            .await
            .map_err(|source| Error::Pull {
                url: spec.url.clone(),
                source,
            })?;
        let annotations = Some(manifest.annotations.clone()).filter(|m| !m.is_empty());
        let layer = select_layer(&manifest, spec.layer_selector.as_ref())?.clone();
        let operation = spec
            .layer_selector
            .as_ref()
            .and_then(|s| s.operation)
            .unwrap_or_default();
        let limits = self.settings.limits;
        if operation == LayerOperation::Copy
            && let Some(limit) = limits.max_size
            && layer.size > limit
        {
            // Refused before a byte is downloaded; the streamed count below is the backstop.
            return Err(Error::CopyLayer {
                source: std::io::Error::other(storage::Error::LayerTooLarge {
                    size: layer.size,
                    limit,
                }),
            });
        }
        if self.settings.shared.is_enabled() {
            let key = SharedArtifacts::key(
                &layer,
                operation,
                spec.ignore.as_deref(),
                self.settings.storage.digest_algorithm(),
                &limits,
            );
            let entry = self
                .shared_entry(key, repo, &layer, connection, operation, tmp)
                .await?;
            return Ok((Content::Shared(key, entry), annotations));
        }
        let reader = open_layer(client, repo, &layer, credential).await?;
        let content = match operation {
            LayerOperation::Extract => {
                let dir = tmp.to_path_buf();
                tokio::task::spawn_blocking(move || storage::extract(reader, &dir, &limits))
                    .await
                    .map_err(|source| Error::Task { source })?
                    .map_err(|source| Error::Extract { source })?;
                Content::Extracted
            }
            LayerOperation::Copy => {
                let storage = self.settings.storage.clone();
                let path = storage
                    .artifact_path(
                        &self.obj.namespace().unwrap_or_default(),
                        &self.obj.name_any(),
                        &resolved.revision(),
                    )
                    .map_err(|source| Error::CreateDir { source })?;
                let deadline = self.deadline;
                let staged = tokio::task::spawn_blocking(move || {
                    storage.stage_copy(&path, reader, limits.max_size, deadline.as_ref())
                })
                .await
                .map_err(|source| Error::Task { source })?
                .map_err(copy_error)?;
                Content::Copied(staged)
            }
        };
        Ok((content, annotations))
    }

    /// The shared entry of `key`: stored already (by another object, or an earlier process),
    /// awaited from the object storing it, or downloaded and stored now.
    async fn shared_entry(
        &self,
        key: SharedKey,
        repo: &Repository,
        layer: &Descriptor,
        connection: &Connection,
        operation: LayerOperation,
        tmp: &Path,
    ) -> Result<SharedEntry, Error> {
        let shared = &self.settings.shared;
        let deadline = self
            .deadline
            .map(|d| tokio::time::Instant::from_std(d.at()));
        for _ in 0..2 {
            let entry = shared
                .get_or_make(key, deadline, || async {
                    let storage = self.settings.storage.clone();
                    let found = tokio::task::spawn_blocking(move || storage.shared_entry(&key))
                        .await
                        .map_err(|source| Error::Task { source })?;
                    if let Ok(Some(entry)) = found {
                        return Ok(entry);
                    }
                    let entry = self
                        .store_shared(key, repo, layer, connection, operation, tmp)
                        .await?;
                    shared.count_stored();
                    Ok(entry)
                })
                .await?;
            // A remembered entry may have been swept since (unused for the retention TTL).
            if entry.file.is_file() {
                return Ok(entry);
            }
            shared.forget(&key);
        }
        Err(Error::Archive {
            source: storage::Error::SharedEntryGone {
                path: PathBuf::from(storage::shared::SHARED_DIR),
            },
        })
    }

    /// Downloads `layer` and stores it as the entry of `key`: extracted into `tmp` and archived
    /// with the object's ignore rules, or copied.
    async fn store_shared(
        &self,
        key: SharedKey,
        repo: &Repository,
        layer: &Descriptor,
        connection: &Connection,
        operation: LayerOperation,
        tmp: &Path,
    ) -> Result<SharedEntry, Error> {
        let reader = open_layer(&connection.client, repo, layer, &connection.credential).await?;
        let storage = self.settings.storage.clone();
        let limits = self.settings.limits;
        let deadline = self.deadline;
        match operation {
            LayerOperation::Extract => {
                let dir = tmp.to_path_buf();
                let ignore = self.spec().ignore.clone();
                tokio::task::spawn_blocking(move || {
                    storage::extract(reader, &dir, &limits)
                        .map_err(|source| Error::Extract { source })?;
                    let matcher = ignore_matcher(&dir, ignore.as_deref(), deadline.as_ref())?;
                    storage
                        .archive_shared(&key, &dir, &matcher, deadline.as_ref())
                        .map_err(|source| Error::Archive { source })
                })
                .await
                .map_err(|source| Error::Task { source })?
            }
            LayerOperation::Copy => tokio::task::spawn_blocking(move || {
                storage
                    .copy_shared(&key, reader, limits.max_size, deadline.as_ref())
                    .map_err(copy_error)
            })
            .await
            .map_err(|source| Error::Task { source })?,
        }
    }

    /// Signature verification of the resolved digest through the [`Verifier`] port, with the
    /// object's own client and credential; only with `spec.verify`, and only for a new revision
    /// or a generation not verified yet. A failure sets `SourceVerified=False` and stops the
    /// reconcile before anything is pulled.
    async fn verify<V: Verifier>(
        &mut self,
        verifier: &V,
        repo: &Repository,
        resolved: &Resolved,
        connection: &Connection,
        changed: bool,
    ) -> Result<(), Error> {
        let Some(verify) = &self.obj.spec.verify else {
            self.conds.delete(types::SOURCE_VERIFIED);
            return Ok(());
        };
        let generation = self.obj.metadata.generation.unwrap_or(0);
        let verified_at = self
            .conds
            .get(types::SOURCE_VERIFIED)
            .and_then(|c| c.observed_generation)
            .unwrap_or(0);
        if !changed && verified_at == generation {
            return Ok(());
        }
        let namespace = self.obj.namespace().unwrap_or_default();
        let request = VerifyRequest {
            namespace: &namespace,
            spec: verify,
            repository: repo,
            digest: &resolved.digest,
            client: &connection.client,
            credential: &connection.credential,
        };
        match verifier.verify(request).await {
            Verification::Verified => self.conds.mark_true(
                types::SOURCE_VERIFIED,
                reasons::SUCCEEDED,
                &format!("verified signature of revision {}", resolved.revision()),
            ),
            Verification::Ignored => {}
            Verification::Failed(source) => {
                let e = Error::Verify {
                    provider: super::verification::provider_label(verify).to_string(),
                    source,
                };
                self.conds.mark_false(
                    types::SOURCE_VERIFIED,
                    reasons::VERIFICATION_ERROR,
                    &message::render_for_url(&e, &self.obj.spec.url),
                );
                return Err(e);
            }
        }
        Ok(())
    }

    async fn reconcile_artifact(&mut self, mut source: Source, tmp: &Path) -> Result<(), Error> {
        let result = self.store_artifact(&mut source, tmp).await;
        let spec = self.spec().clone();
        let current = self.status.artifact.as_ref().map(|a| a.revision.as_str());
        if current == Some(source.revision.as_str())
            && content_config_unchanged(&spec, &self.status, &source.platform)
        {
            self.conds.delete(types::ARTIFACT_OUTDATED);
            self.conds.mark_true(
                types::ARTIFACT_IN_STORAGE,
                reasons::SUCCEEDED,
                &format!("stored artifact for digest '{}'", source.revision),
            );
        }
        result
    }

    async fn store_artifact(&mut self, source: &mut Source, tmp: &Path) -> Result<(), Error> {
        let spec = self.spec().clone();
        let Some(content) = source.content.take() else {
            self.events.push(Event::trace(
                reasons::ARTIFACT_UP_TO_DATE,
                format!(
                    "artifact up-to-date with remote revision: '{}'",
                    source.revision
                ),
            ));
            return Ok(());
        };
        let meta = std::fs::metadata(tmp).map_err(|source| Error::StatSource { source })?;
        if !meta.is_dir() {
            return Err(Error::SourceNotDir {
                path: tmp.display().to_string(),
            });
        }
        let storage = self.settings.storage.clone();
        let namespace = self.obj.namespace().unwrap_or_default();
        let name = self.obj.name_any();
        let path = storage
            .artifact_path(&namespace, &name, &source.revision)
            .map_err(|source| Error::CreateDir { source })?;
        storage
            .create_artifact_dir(&path)
            .map_err(|source| Error::CreateDir { source })?;

        let shared_key = match &content {
            Content::Shared(key, _) => Some(*key),
            _ => None,
        };
        let job = {
            let storage = storage.clone();
            let path = path.clone();
            let dir = tmp.to_path_buf();
            let ignore = spec.ignore.clone();
            let deadline = self.deadline;
            move || -> Result<storage::Stored, Error> {
                match content {
                    Content::Extracted => {
                        let _lock = storage
                            .lock(&path)
                            .map_err(|source| Error::Lock { source })?;
                        let matcher = ignore_matcher(&dir, ignore.as_deref(), deadline.as_ref())?;
                        storage
                            .archive(&path, &dir, &matcher, deadline.as_ref())
                            .map_err(|source| Error::Archive { source })
                    }
                    // Staged under the artifact lock, which it still holds.
                    Content::Copied(staged) => staged
                        .commit()
                        .map_err(|source| Error::StoreCopy { source }),
                    Content::Shared(_, entry) => {
                        storage.link_shared(&entry, &path).map_err(|e| match e {
                            storage::Error::Lock { .. } => Error::Lock { source: e },
                            e => Error::Archive { source: e },
                        })
                    }
                }
            }
        };
        let stored = tokio::task::spawn_blocking(job)
            .await
            .map_err(|source| Error::Task { source })?
            .inspect_err(|e| {
                if let (Some(key), Error::Archive { source }) = (shared_key, e)
                    && matches!(source, storage::Error::SharedEntryGone { .. })
                {
                    self.settings.shared.forget(&key);
                }
            })?;

        self.status.artifact = Some(Artifact {
            url: storage.artifact_url(&path),
            path: path.clone(),
            revision: source.revision.clone(),
            digest: Some(stored.digest.to_string()),
            last_update_time: self.now.clone(),
            size: i64::try_from(stored.size).ok(),
            metadata: source.metadata.clone().map(Metadata::from),
        });
        self.status.observed_ignore = spec.ignore.clone();
        self.status.observed_layer_selector = spec.layer_selector.clone();
        match storage.symlink_latest(&path) {
            Ok(url) => self.status.url = Some(url),
            Err(e) => self.events.push(Event::trace(
                reasons::SYMLINK_UPDATE_FAILED,
                format!(
                    "failed to update status URL symlink: {}",
                    message::render(&e)
                ),
            )),
        }
        self.conds.delete(types::STORAGE_OPERATION_FAILED);
        Ok(())
    }
}

/// Whether the stored artifact was built with the current `ignore` and `layerSelector` (nil and
/// empty differ, as in Flux) and for `platform` (recorded in its metadata unless
/// `linux/amd64`).
fn content_config_unchanged(
    spec: &OciRepositorySpec,
    status: &OciRepositoryStatus,
    platform: &Platform,
) -> bool {
    let stored_platform = status
        .artifact
        .as_ref()
        .and_then(|a| a.metadata.as_ref()?.get(PLATFORM_ANNOTATION))
        .map_or_else(|| Ok(Platform::linux_amd64()), |p| p.parse());
    spec.ignore == status.observed_ignore
        && spec.layer_selector == status.observed_layer_selector
        && stored_platform.as_ref() == Ok(platform)
}

fn select_layer<'m>(
    manifest: &'m Manifest,
    selector: Option<&OciLayerSelector>,
) -> Result<&'m Descriptor, Error> {
    let first = manifest.layers.first().ok_or(Error::NoLayers)?;
    match selector
        .and_then(|s| s.media_type.as_deref())
        .filter(|m| !m.is_empty())
    {
        Some(media_type) => manifest
            .layers
            .iter()
            .find(|l| l.media_type == media_type)
            .ok_or_else(|| Error::NoLayerWithMediaType {
                media_type: media_type.to_string(),
            }),
        None => Ok(first),
    }
}

/// The selected layer's bytes, streamed and verified.
async fn open_layer(
    client: &crate::registry::Client,
    repo: &Repository,
    layer: &Descriptor,
    credential: &crate::registry::Credential,
) -> Result<crate::registry::BlobReader, Error> {
    client
        .blob_stream(repo, layer, credential)
        .await
        .map_err(|source| Error::OpenLayer { source })?
        .into_reader()
        .map_err(|source| Error::OpenLayer { source })
}

/// The ignore rules of the extracted `dir` and `spec.ignore`.
fn ignore_matcher(
    dir: &Path,
    ignore: Option<&str>,
    deadline: Option<&Deadline>,
) -> Result<storage::IgnoreMatcher, Error> {
    storage::ignore::matcher_for(dir, ignore, deadline).map_err(|source| match source {
        // Loading is the archive step's start: one timeout message.
        storage::Error::DeadlineExceeded { .. } => Error::Archive { source },
        source => Error::SourceIgnore { source },
    })
}

/// A failed copy of the layer (copy mode) as the reconcile reports it.
fn copy_error(e: storage::Error) -> Error {
    match e {
        storage::Error::CreateDir { .. } | storage::Error::InvalidPath { .. } => {
            Error::CreateDir { source: e }
        }
        // The reader's own error (digest, size, network) is the cause.
        storage::Error::Copy { source, .. } => Error::CopyLayer { source },
        e => Error::CopyLayer {
            source: std::io::Error::other(e),
        },
    }
}
