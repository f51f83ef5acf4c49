//! Standalone mode: one reconcile of a manifest without a cluster. The same core as the
//! controller runs once, as if the finalizer were in place; Secrets come from a directory of
//! manifests; the object is printed with its new status. A status in the input is the previous
//! status, so feeding the output back in takes the unchanged-source path.

pub mod secrets;

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::conditions::types;
use crate::api::{v1, v1beta2};
use crate::cloud::TokenCache;
use crate::core::Settings;
use crate::core::ports::NoProgress;
use crate::core::reconcile::{self, Outcome, Ports};
use crate::core::resolution_cache::ResolutionCache;
use crate::core::shared_artifacts::SharedArtifacts;
use crate::core::verification::SignatureVerifier;
use crate::registry::ClientPool;
use crate::storage::Storage;
use crate::verify::tuf::SigstoreRoot;

use secrets::DirSecrets;

/// Output format.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// YAML (default).
    #[default]
    Yaml,
    /// JSON.
    Json,
}

/// `ocisource reconcile` arguments.
#[derive(Args, Clone, Debug)]
pub struct ReconcileArgs {
    /// The OCIRepository manifest (v1 or v1beta2); `-` reads stdin.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,

    /// Artifact store directory (created if missing).
    #[arg(long, default_value = "./artifacts")]
    pub storage_path: PathBuf,

    /// Host and optional port used in artifact URLs.
    #[arg(long, default_value = "localhost:9090")]
    pub storage_adv_addr: String,

    /// Directory of Secret and ServiceAccount manifests the object may name.
    #[arg(long)]
    pub secrets_dir: Option<PathBuf>,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    pub output: Output,

    /// Extraction limits and platform, as the controller's.
    #[command(flatten)]
    pub content: crate::cli::ContentArgs,
    /// Sigstore trusted root (TUF), as the controller's.
    #[command(flatten)]
    pub sigstore: crate::cli::SigstoreArgs,
}

/// Why the input could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The manifest could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not an OCIRepository of a known version.
    #[error("{path} is not an OCIRepository of source.toolkit.fluxcd.io/v1 or v1beta2")]
    NotAnOciRepository {
        /// The path.
        path: PathBuf,
    },
    /// The manifest does not match the OCIRepository schema.
    #[error("failed to parse {path}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The YAML is malformed.
    #[error("failed to parse {path}")]
    Yaml {
        /// The path.
        path: PathBuf,
        /// Why (boxed: it is large).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// `metadata.name` or `metadata.namespace` is not what the API server would accept (names
    /// become paths in the store and the working directory).
    #[error("{path}: {field}: Invalid value: {value:?}: {reason}")]
    InvalidName {
        /// The manifest.
        path: PathBuf,
        /// `metadata.name` or `metadata.namespace`.
        field: &'static str,
        /// The value.
        value: String,
        /// The API server's explanation.
        reason: String,
    },
    /// The Sigstore TUF flags are unusable (mirror URL, initial root file).
    #[error("invalid Sigstore TUF configuration: {0}")]
    SigstoreRoot(String),
    /// The secrets directory could not be loaded.
    #[error("failed to load secrets")]
    Secrets(#[source] secrets::LoadError),
    /// The storage directory is unusable.
    #[error("failed to open the artifact store at {path}")]
    Storage {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The result could not be printed.
    #[error("failed to render the result")]
    Render(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Refuses a name or namespace the API server would refuse (DNS-1123 subdomain / label).
fn check_names(path: &Path, obj: &v1::OciRepository) -> Result<(), InputError> {
    let invalid = |field, value: &str, reason| InputError::InvalidName {
        path: path.to_path_buf(),
        field,
        value: value.to_string(),
        reason,
    };
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    crate::storage::path::validate_object_name(name)
        .map_err(|r| invalid("metadata.name", name, r))?;
    let namespace = obj.metadata.namespace.as_deref().unwrap_or_default();
    crate::storage::path::validate_namespace(namespace)
        .map_err(|r| invalid("metadata.namespace", namespace, r))
}

/// The object's API version as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V1beta2,
}

/// The printed result and the process exit code (0 Ready, 2 Stalled, 1 otherwise).
#[derive(Debug)]
pub struct Reconciled {
    /// The object with its new status, rendered.
    pub rendered: String,
    /// Exit code.
    pub exit_code: u8,
    /// The core's outcome.
    pub outcome: Outcome,
}

/// Runs one standalone reconcile.
///
/// # Errors
/// Unusable input (unreadable or invalid manifest, secrets, storage); a failed reconcile is not
/// an error but a status.
pub async fn run(args: &ReconcileArgs) -> Result<Reconciled, InputError> {
    let text = read_input(&args.file)?;
    let (version, mut obj) = parse(&args.file, &text)?;
    obj.metadata
        .namespace
        .get_or_insert_with(|| "default".to_string());
    check_names(&args.file, &obj)?;
    // As the API server does on create: generation 1, and the CRD's status default.
    obj.metadata.generation.get_or_insert(1);
    obj.status.get_or_insert_with(|| v1::OciRepositoryStatus {
        observed_generation: Some(-1),
        ..Default::default()
    });

    let secrets = match &args.secrets_dir {
        Some(dir) => DirSecrets::load(dir).map_err(InputError::Secrets)?,
        None => DirSecrets::default(),
    };
    let storage_err = |source: Box<dyn std::error::Error + Send + Sync>| InputError::Storage {
        path: args.storage_path.clone(),
        source,
    };
    std::fs::create_dir_all(&args.storage_path).map_err(|e| storage_err(Box::new(e)))?;
    let storage = Storage::new(&args.storage_path, &args.storage_adv_addr)
        .map_err(|e| storage_err(Box::new(e)))?;
    let settings = Settings {
        storage,
        limits: args.content.limits(),
        // Off, as the controller's gate defaults (and no API server could issue tokens).
        object_level_workload_identity: false,
        default_service_account: None,
        cloud_tokens: TokenCache::new(),
        default_platform: args.content.default_platform.clone(),
        // One object: nothing to share.
        resolutions: ResolutionCache::disabled(),
        shared: SharedArtifacts::disabled(),
    };
    let registries = ClientPool::new();
    let settings_tuf = args
        .sigstore
        .tuf_settings()
        .map_err(|e| InputError::SigstoreRoot(crate::core::message::render(&e)))?;
    let sigstore_root = SigstoreRoot::new(&settings_tuf).map_err(InputError::SigstoreRoot)?;
    let verifier = SignatureVerifier::new(&secrets, &sigstore_root);
    let ports = Ports {
        secrets: &secrets,
        verifier: &verifier,
        progress: &NoProgress,
        registries: &registries,
    };
    let outcome = reconcile::reconcile(&obj, &settings, ports, Time(Timestamp::now())).await;
    obj.status = Some(outcome.status.clone());

    let exit_code = exit_code(&outcome);
    let value = match version {
        Version::V1 => serde_json::to_value(&obj),
        Version::V1beta2 => serde_json::to_value(to_v1beta2(obj)),
    }
    .map_err(|e| InputError::Render(Box::new(e)))?;
    let rendered = match args.output {
        Output::Json => serde_json::to_string_pretty(&value)
            .map(|s| s + "\n")
            .map_err(|e| InputError::Render(Box::new(e)))?,
        Output::Yaml => {
            serde_saphyr::to_string(&value).map_err(|e| InputError::Render(Box::new(e)))?
        }
    };
    Ok(Reconciled {
        rendered,
        exit_code,
        outcome,
    })
}

fn exit_code(outcome: &Outcome) -> u8 {
    let is_true = |t: &str| {
        outcome
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == t && c.status == "True")
    };
    if is_true(types::READY) {
        0
    } else if is_true(types::STALLED) {
        2
    } else {
        1
    }
}

fn read_input(path: &Path) -> Result<String, InputError> {
    let read_err = |source| InputError::Read {
        path: path.to_path_buf(),
        source,
    };
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(read_err)?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).map_err(read_err)
    }
}

fn parse(path: &Path, text: &str) -> Result<(Version, v1::OciRepository), InputError> {
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| InputError::Yaml {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    let not_oci = || InputError::NotAnOciRepository {
        path: path.to_path_buf(),
    };
    if value.get("kind").and_then(|k| k.as_str()) != Some("OCIRepository") {
        return Err(not_oci());
    }
    let parse_err = |source| InputError::Parse {
        path: path.to_path_buf(),
        source,
    };
    match value.get("apiVersion").and_then(|v| v.as_str()) {
        Some("source.toolkit.fluxcd.io/v1") => {
            let obj = serde_json::from_value(value).map_err(parse_err)?;
            Ok((Version::V1, obj))
        }
        Some("source.toolkit.fluxcd.io/v1beta2") => {
            let obj: v1beta2::OciRepository = serde_json::from_value(value).map_err(parse_err)?;
            Ok((Version::V1beta2, obj.into()))
        }
        _ => Err(not_oci()),
    }
}

fn to_v1beta2(obj: v1::OciRepository) -> v1beta2::OciRepository {
    let mut out = v1beta2::OciRepository::new("", v1beta2::OciRepositorySpec { inner: obj.spec });
    out.metadata = obj.metadata;
    out.status = obj.status.map(|inner| v1beta2::OciRepositoryStatus {
        inner,
        content_config_checksum: None,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ocirepositories_of_known_versions_are_accepted() {
        let p = Path::new("x.yaml");
        assert!(parse(p, "kind: OCIRepository\napiVersion: source.toolkit.fluxcd.io/v1\nmetadata: {name: a}\nspec: {url: oci://r/a, interval: 1m}\n").is_ok());
        let (v, obj) = parse(p, "kind: OCIRepository\napiVersion: source.toolkit.fluxcd.io/v1beta2\nmetadata: {name: a}\nspec: {url: oci://r/a, interval: 1m}\n").unwrap();
        assert_eq!(v, Version::V1beta2);
        assert_eq!(obj.spec.url, "oci://r/a");
        assert!(matches!(
            parse(
                p,
                "kind: GitRepository\napiVersion: source.toolkit.fluxcd.io/v1\n"
            ),
            Err(InputError::NotAnOciRepository { .. })
        ));
        assert!(matches!(
            parse(
                p,
                "kind: OCIRepository\napiVersion: source.toolkit.fluxcd.io/v9\n"
            ),
            Err(InputError::NotAnOciRepository { .. })
        ));
        assert!(matches!(
            parse(
                p,
                "kind: OCIRepository\napiVersion: source.toolkit.fluxcd.io/v1\nspec: {url: 3}\n"
            ),
            Err(InputError::Parse { .. })
        ));
        assert!(matches!(parse(p, "a: ["), Err(InputError::Yaml { .. })));
    }
}
