//! Secrets and ServiceAccounts for standalone mode, read from a directory of Kubernetes
//! manifests (YAML or JSON, several documents per file allowed), as `kubectl apply` would take
//! them: `stringData` is merged over `data`, and an object without a namespace belongs to the
//! namespace of the OCIRepository being reconciled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use serde::Deserialize;

use crate::core::ports::{LookupError, SecretSource};

/// Why the directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory or a file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML/JSON for a Kubernetes object.
    #[error("failed to parse {path}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// The parser error (boxed: it is large).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A Secret or ServiceAccount document does not match its schema.
    #[error("invalid {kind} in {path}")]
    Invalid {
        /// The kind.
        kind: String,
        /// The path.
        path: PathBuf,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
}

type Key = (Option<String>, String);

/// The Secrets and ServiceAccounts found in a directory.
#[derive(Clone, Debug, Default)]
pub struct DirSecrets {
    secrets: BTreeMap<Key, Secret>,
    accounts: BTreeMap<Key, ServiceAccount>,
}

#[derive(Deserialize)]
struct Head {
    kind: Option<String>,
}

impl DirSecrets {
    /// Loads every `*.yaml`, `*.yml` and `*.json` file directly in `dir`; other kinds of
    /// objects are ignored.
    ///
    /// # Errors
    /// When a file cannot be read or parsed, or a Secret/ServiceAccount is malformed.
    pub fn load(dir: &Path) -> Result<DirSecrets, LoadError> {
        let read_err = |path: &Path, source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| read_err(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            })
            .collect();
        files.sort();
        let mut out = DirSecrets::default();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
            let docs: Vec<serde_json::Value> =
                serde_saphyr::from_multiple(&text).map_err(|source| LoadError::Parse {
                    path: path.clone(),
                    source: Box::new(source),
                })?;
            for doc in docs {
                out.add(&path, doc)?;
            }
        }
        Ok(out)
    }

    /// Adds `secret` (its `data`; without a namespace it belongs to every namespace), replacing
    /// one of the same namespace and name.
    pub fn insert_secret(&mut self, secret: Secret) {
        let key = (
            secret.metadata.namespace.clone(),
            secret.metadata.name.clone().unwrap_or_default(),
        );
        self.secrets.insert(key, secret);
    }

    fn add(&mut self, path: &Path, doc: serde_json::Value) -> Result<(), LoadError> {
        let kind = serde_json::from_value::<Head>(doc.clone())
            .ok()
            .and_then(|h| h.kind)
            .unwrap_or_default();
        let invalid = |source| LoadError::Invalid {
            kind: kind.clone(),
            path: path.to_path_buf(),
            source,
        };
        match kind.as_str() {
            "Secret" => {
                let mut secret: Secret = serde_json::from_value(doc).map_err(invalid)?;
                if let Some(strings) = secret.string_data.take() {
                    let data = secret.data.get_or_insert_with(BTreeMap::new);
                    for (k, v) in strings {
                        data.insert(k, ByteString(v.into_bytes()));
                    }
                }
                self.insert_secret(secret);
            }
            "ServiceAccount" => {
                let sa: ServiceAccount = serde_json::from_value(doc).map_err(invalid)?;
                let key = (
                    sa.metadata.namespace.clone(),
                    sa.metadata.name.clone().unwrap_or_default(),
                );
                self.accounts.insert(key, sa);
            }
            _ => {}
        }
        Ok(())
    }

    fn find<'a, T>(map: &'a BTreeMap<Key, T>, namespace: &str, name: &str) -> Option<&'a T> {
        map.get(&(Some(namespace.to_string()), name.to_string()))
            .or_else(|| map.get(&(None, name.to_string())))
    }
}

impl SecretSource for DirSecrets {
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, LookupError> {
        Ok(Self::find(&self.secrets, namespace, name).cloned())
    }

    async fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ServiceAccount>, LookupError> {
        Ok(Self::find(&self.accounts, namespace, name).cloned())
    }

    /// Always fails: there is no API server to issue tokens in standalone mode (whose
    /// `ObjectLevelWorkloadIdentity` gate is always off anyway).
    async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        _audiences: &[String],
    ) -> Result<String, LookupError> {
        Err(LookupError::CreateToken {
            namespace: namespace.to_string(),
            name: name.to_string(),
            source: "standalone mode has no Kubernetes API server to issue service account tokens"
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn secrets_and_accounts_load_with_string_data_merged_over_data() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("creds.yaml"),
            r#"
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: apps}
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: eyJhdXRocyI6e319
  keep: a2VlcA==
stringData:
  keep: overridden
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: puller}
imagePullSecrets: [{name: creds}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        let s = DirSecrets::load(dir.path()).unwrap();

        let secret = block_on(s.secret("apps", "creds")).unwrap().unwrap();
        let data = secret.data.unwrap();
        assert_eq!(data[".dockerconfigjson"].0, br#"{"auths":{}}"#);
        assert_eq!(data["keep"].0, b"overridden");
        assert!(block_on(s.secret("other", "creds")).unwrap().is_none());

        let sa = block_on(s.service_account("anywhere", "puller"))
            .unwrap()
            .unwrap();
        assert_eq!(sa.image_pull_secrets.unwrap()[0].name, "creds");
        assert!(block_on(s.secret("apps", "ignored")).unwrap().is_none());
    }

    #[test]
    fn tokens_cannot_be_issued_without_an_api_server() {
        let err = block_on(DirSecrets::default().service_account_token(
            "apps",
            "puller",
            &["sts.amazonaws.com".to_string()],
        ))
        .unwrap_err();
        assert_eq!(
            crate::core::message::render(&err),
            "failed to create kubernetes token for service account 'apps/puller': standalone mode has no Kubernetes API server to issue service account tokens"
        );
    }

    #[test]
    fn malformed_files_are_reported_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.yaml"), "kind: Secret\ndata: [1, 2]\n").unwrap();
        let err = DirSecrets::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("bad.yaml"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.yaml"), "a: [").unwrap();
        let err = DirSecrets::load(dir.path()).unwrap_err();
        assert!(matches!(err, LoadError::Parse { .. }), "{err}");
        assert!(DirSecrets::load(&dir.path().join("missing")).is_err());
    }
}
