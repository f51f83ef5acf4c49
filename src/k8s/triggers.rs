//! Which watch events start a reconcile, and what happens to an object that leaves the watch.
//!
//! Like Flux's predicates, a reconcile starts for a new object, a new generation, a new
//! `reconcile.fluxcd.io/requestedAt` or a deletion, never for a status write or another metadata
//! edit. Unlike kube's `predicate_filter`, an object that leaves the watch is forgotten: with a
//! label selector (sharding beside Flux's source-controller) an object relabelled out of the
//! shard arrives as a deletion while it still exists, and when it is relabelled back it must be
//! reconciled at once although its generation did not change. Leaving the watch also removes
//! the object's artifacts: its new owner stores and serves its own, and ours would otherwise be
//! served until the process restarts and, should the object come back, sit at the path its
//! new owner's status names.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use kube::ResourceExt;
use kube::runtime::watcher::Event;

use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::v1::OciRepository;
use crate::core::{message, reconcile};
use crate::storage::Storage;

type Key = (String, String);

fn key_of(obj: &OciRepository) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

/// What a reconcile reacts to: the object's identity (a recreated object is new), its
/// generation, `requestedAt`, and whether it is being deleted.
fn trigger(obj: &OciRepository) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    obj.metadata.uid.hash(&mut h);
    obj.metadata.generation.hash(&mut h);
    obj.annotations().get(RECONCILE_REQUESTED_AT).hash(&mut h);
    obj.metadata.deletion_timestamp.is_some().hash(&mut h);
    h.finish()
}

/// The filter between the watch and the controller's queue.
pub struct Triggers {
    storage: Storage,
    seen: HashMap<Key, u64>,
    /// The objects of a (re)list in progress.
    listing: Option<HashSet<Key>>,
}

impl Triggers {
    /// A filter that removes what `storage` holds for objects leaving the watch.
    pub fn new(storage: Storage) -> Triggers {
        Triggers {
            storage,
            seen: HashMap::new(),
            listing: None,
        }
    }

    /// The object to reconcile for `event`, if any. A deletion event, and an object missing
    /// from a relist (it left while the watch was down), forget the object and remove its
    /// artifacts.
    pub fn on(&mut self, event: Event<OciRepository>) -> Option<OciRepository> {
        match event {
            Event::Init => {
                self.listing = Some(HashSet::new());
                None
            }
            Event::InitApply(obj) | Event::Apply(obj) => {
                let key = key_of(&obj);
                if let Some(listing) = &mut self.listing {
                    listing.insert(key.clone());
                }
                let now = trigger(&obj);
                (self.seen.insert(key, now) != Some(now)).then_some(obj)
            }
            Event::Delete(obj) => {
                let key = key_of(&obj);
                self.seen.remove(&key);
                self.left(key);
                None
            }
            Event::InitDone => {
                if let Some(listed) = self.listing.take() {
                    let gone: Vec<Key> = self
                        .seen
                        .keys()
                        .filter(|k| !listed.contains(*k))
                        .cloned()
                        .collect();
                    for key in gone {
                        self.seen.remove(&key);
                        self.left(key);
                    }
                }
                None
            }
        }
    }

    /// Removes the artifacts of an object that left the watch, on a blocking thread. A deleted
    /// object's are gone already (its finalizer step removed them).
    fn left(&self, (namespace, name): Key) {
        let storage = self.storage.clone();
        let remove = move || match reconcile::cleanup(&storage, &namespace, &name) {
            Ok(Some(_)) => tracing::info!(
                name = %name,
                namespace = %namespace,
                "removed the artifacts of an object that left the watch"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(
                name = %name,
                namespace = %namespace,
                error = %message::render(&e),
                "failed to remove the artifacts of an object that left the watch"
            ),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v1::OciRepositoryStatus;
    use serde_json::json;

    fn repo(uid: &str, generation: i64, requested: Option<&str>) -> OciRepository {
        let mut annotations = serde_json::Map::new();
        if let Some(r) = requested {
            annotations.insert(RECONCILE_REQUESTED_AT.into(), r.into());
        }
        serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": "app", "namespace": "ns", "uid": uid,
                         "generation": generation, "annotations": annotations},
            "spec": {"url": "oci://example.com/app", "interval": "10m"}
        }))
        .unwrap()
    }

    /// A store holding an artifact for ns/app; returns the store's temp dir and the file.
    fn store() -> (tempfile::TempDir, Storage, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path(), "127.0.0.1:9090").unwrap();
        let file = dir.path().join("ocirepository/ns/app/sha256:00.tar.gz");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"artifact").unwrap();
        (dir, storage, file)
    }

    #[test]
    fn only_generation_requested_at_and_deletion_trigger() {
        let spec = serde_json::from_value(json!({"url": "oci://r/a", "interval": "1m"})).unwrap();
        let mut obj = OciRepository::new("a", spec);
        obj.metadata.generation = Some(1);
        let base = trigger(&obj);
        obj.status = Some(OciRepositoryStatus {
            observed_generation: Some(1),
            ..Default::default()
        });
        obj.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
        assert_eq!(trigger(&obj), base, "status and labels do not trigger");
        obj.metadata.generation = Some(2);
        let gen2 = trigger(&obj);
        assert_ne!(gen2, base);
        obj.metadata.annotations =
            Some([(RECONCILE_REQUESTED_AT.to_string(), "now".to_string())].into());
        assert_ne!(trigger(&obj), gen2);
    }

    fn passes(t: &mut Triggers, event: Event<OciRepository>) -> bool {
        t.on(event).is_some()
    }

    #[test]
    fn only_new_objects_generations_requests_and_deletions_pass() {
        let (_dir, storage, _) = store();
        let mut t = Triggers::new(storage);
        assert!(passes(&mut t, Event::Apply(repo("u1", 1, None))));
        // A status write or a label edit: same generation.
        assert!(!passes(&mut t, Event::Apply(repo("u1", 1, None))));
        assert!(passes(&mut t, Event::Apply(repo("u1", 2, None))));
        assert!(passes(&mut t, Event::Apply(repo("u1", 2, Some("now")))));
        assert!(!passes(&mut t, Event::Apply(repo("u1", 2, Some("now")))));
        let mut deleting = repo("u1", 2, Some("now"));
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert!(passes(&mut t, Event::Apply(deleting)));
        // Recreated under the same name.
        assert!(passes(&mut t, Event::Apply(repo("u2", 1, None))));
    }

    #[test]
    fn an_object_that_leaves_the_watch_is_forgotten_and_its_artifacts_removed() {
        let (_dir, storage, file) = store();
        let mut t = Triggers::new(storage);
        assert!(passes(&mut t, Event::Apply(repo("u1", 1, None))));
        // Relabelled out of the shard: a deletion event for an object that still exists.
        assert!(!passes(&mut t, Event::Delete(repo("u1", 1, None))));
        assert!(!file.exists());
        assert!(!file.parent().unwrap().exists());
        // Relabelled back, generation unchanged: reconciled again.
        assert!(passes(&mut t, Event::Apply(repo("u1", 1, None))));
    }

    #[test]
    fn a_relist_forgets_objects_that_left_while_the_watch_was_down() {
        let (_dir, storage, file) = store();
        let mut t = Triggers::new(storage);
        assert!(passes(&mut t, Event::Apply(repo("u1", 1, None))));
        assert!(!passes(&mut t, Event::Init));
        assert!(!passes(&mut t, Event::InitDone));
        assert!(!file.exists());
        assert!(passes(&mut t, Event::Apply(repo("u1", 1, None))));
        // A relist that still holds the object keeps it and its artifacts.
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"artifact").unwrap();
        assert!(!passes(&mut t, Event::Init));
        assert!(!passes(&mut t, Event::InitApply(repo("u1", 1, None))));
        assert!(!passes(&mut t, Event::InitDone));
        assert!(file.exists());
        assert!(!passes(&mut t, Event::Apply(repo("u1", 1, None))));
    }
}
