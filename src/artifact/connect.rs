//! The registry flags every verb that talks to a registry shares (`--creds`,
//! `--insecure-registry`, the TLS files, `--timeout`) and the client and credential they make.
//!
//! TLS trusts the system roots (with rustls-native-certs, `SSL_CERT_FILE` and `SSL_CERT_DIR`
//! replace them, as Go tools do) plus `--ca-file`; `--cert-file`/`--key-file` present a client
//! certificate; `--insecure-registry` allows plain HTTP and, without `--ca-file`, skips
//! verification.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::api::v1::Provider;
use crate::cloud;
use crate::registry::{
    BlobReader, Client, Credential, Descriptor, Digest, Manifest, Repository, TlsMaterial,
    TransportConfig,
};

use super::Error;
use super::credentials::{creds_credential, docker_config_credential};
use super::flags::go_duration;
use super::reference::{Reference, parse_reference, redact_oci_url};

/// `--provider`: flux's `sourceOCIProvider` values.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProviderArg {
    /// No cloud login.
    #[default]
    Generic,
    /// Amazon ECR.
    Aws,
    /// Azure Container Registry.
    Azure,
    /// Google Artifact Registry / Container Registry.
    Gcp,
}

impl From<ProviderArg> for Provider {
    fn from(p: ProviderArg) -> Provider {
        match p {
            ProviderArg::Generic => Provider::Generic,
            ProviderArg::Aws => Provider::Aws,
            ProviderArg::Azure => Provider::Azure,
            ProviderArg::Gcp => Provider::Gcp,
        }
    }
}

/// The registry flags of the producer verbs, named as flux's.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct RegistryArgs {
    /// Allow plain HTTP (and, without --ca-file, unverified TLS).
    #[arg(long)]
    pub insecure_registry: bool,

    /// Registry credentials, `<username>[:<password>]` (a value without `:` is a token);
    /// default: the Docker config.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub creds: String,

    /// The OCI provider to log in to: `generic` (credentials from --creds or the Docker
    /// config), `aws`, `azure` or `gcp` (the machine's cloud identity, as the controller's
    /// `spec.provider`; needs the cargo feature of that name).
    #[arg(long, value_enum, default_value_t)]
    pub provider: ProviderArg,

    /// A PEM CA bundle to trust in addition to the system roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,

    /// A PEM client certificate (with --key-file) for mTLS registries.
    #[arg(long, requires = "key_file")]
    pub cert_file: Option<PathBuf>,

    /// The PEM private key of --cert-file.
    #[arg(long, requires = "cert_file")]
    pub key_file: Option<PathBuf>,

    /// Timeout for the whole operation (a Go duration).
    #[arg(long, default_value = "5m", value_parser = go_duration)]
    pub timeout: Duration,
}

impl Default for RegistryArgs {
    /// The command line's defaults.
    fn default() -> Self {
        RegistryArgs {
            insecure_registry: false,
            creds: String::new(),
            provider: ProviderArg::Generic,
            ca_file: None,
            cert_file: None,
            key_file: None,
            timeout: Duration::from_secs(300),
        }
    }
}

impl RegistryArgs {
    /// The credential for `repo`: a cloud login with `--provider` other than `generic` (as
    /// flux, announced on stderr), else `--creds`, else the Docker config (a credential helper,
    /// else the `auths`; anonymous without an entry).
    ///
    /// # Errors
    ///
    /// [`Error::CloudLogin`], [`Error::ReadDockerConfig`], [`Error::DockerConfig`],
    /// [`Error::CredentialHelper`].
    pub async fn credential(&self, repo: &Repository) -> Result<Credential, Error> {
        if self.provider != ProviderArg::Generic {
            eprintln!("► logging in to registry with provider credentials");
            let now = std::time::Instant::now();
            // A timeout too large to represent: a year is as good as forever here.
            let deadline = now
                .checked_add(self.timeout)
                .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
                .unwrap_or(now);
            return cloud::login(
                &cloud::TokenCache::new(),
                self.provider.into(),
                repo.registry(),
                deadline,
            )
            .await
            .map_err(|source| Error::CloudLogin { source });
        }
        if self.creds.is_empty() {
            docker_config_credential(repo, self.timeout)
        } else {
            Ok(creds_credential(&self.creds))
        }
    }

    /// A registry client for these flags whose calls give up after `--timeout` from now.
    ///
    /// # Errors
    ///
    /// [`Error::ReadTlsFile`], [`Error::Client`].
    pub fn client(&self) -> Result<Client, Error> {
        // A timeout too large to represent means no deadline.
        let deadline = std::time::Instant::now().checked_add(self.timeout);
        let transport = self.transport_config()?;
        Ok(Client::new(&transport)
            .map_err(|source| Error::Client { source })?
            .with_deadline(deadline))
    }

    /// The artifact `url` names (`oci://<repository>[:<tag>|@<digest>]`) with a client and a
    /// credential for it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`], and those of [`RegistryArgs::credential`] and
    /// [`RegistryArgs::client`].
    pub(crate) async fn remote(&self, url: &str) -> Result<Remote, Error> {
        let (repo, reference) = parse_reference(url).map_err(|source| Error::InvalidUrl {
            url: redact_oci_url(url),
            source,
        })?;
        let cred = self.credential(&repo).await?;
        let client = self.client()?;
        Ok(Remote {
            repo,
            reference,
            client,
            cred,
        })
    }

    fn transport_config(&self) -> Result<TransportConfig, Error> {
        let read = |p: &Option<PathBuf>| -> Result<Option<Vec<u8>>, Error> {
            p.as_ref()
                .map(|p| {
                    std::fs::read(p).map_err(|source| Error::ReadTlsFile {
                        path: p.clone(),
                        source,
                    })
                })
                .transpose()
        };
        Ok(TransportConfig {
            tls: TlsMaterial {
                ca_pem: read(&self.ca_file)?,
                cert_pem: read(&self.cert_file)?,
                key_pem: read(&self.key_file)?,
                secret_name: None,
            },
            insecure: self.insecure_registry,
            ..TransportConfig::default()
        })
    }
}

/// An artifact in a registry and the means to read it.
pub(crate) struct Remote {
    /// The repository.
    pub repo: Repository,
    /// The tag or digest the URL named.
    pub reference: Reference,
    /// The client (under `--timeout`).
    pub client: Client,
    /// The credential.
    pub cred: Credential,
}

impl Remote {
    /// `<repository>:<tag>` or `<repository>@<digest>`.
    pub fn url(&self) -> String {
        format!("{}{}", self.repo, self.reference)
    }

    fn pull_error(&self, source: crate::registry::Error) -> Error {
        Error::Pull {
            url: self.url(),
            source,
        }
    }

    /// The image manifest, read by digest (a tag is resolved once) and checked against it.
    ///
    /// # Errors
    ///
    /// [`Error::Pull`].
    pub async fn manifest(&self) -> Result<Manifest, Error> {
        let digest: Digest = match &self.reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(tag) => self
                .client
                .resolve_digest(&self.repo, tag, &self.cred)
                .await
                .map_err(|e| self.pull_error(e))?,
        };
        self.client
            .fetch_manifest(&self.repo, &digest, &self.cred)
            .await
            .map_err(|e| self.pull_error(e))
    }

    /// A blocking reader of `layer`, checked against its digest and size as it is read.
    ///
    /// # Errors
    ///
    /// [`Error::Pull`].
    pub async fn open(&self, layer: &Descriptor) -> Result<BlobReader, Error> {
        self.client
            .blob_stream(&self.repo, layer, &self.cred)
            .await
            .and_then(|blob| blob.into_reader())
            .map_err(|e| self.pull_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login_error(provider: ProviderArg, repo: &str) -> String {
        let args = RegistryArgs {
            provider,
            ..RegistryArgs::default()
        };
        let repo = Repository::parse(repo).unwrap_or_else(|e| panic!("{e}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        match rt.block_on(args.credential(&repo)) {
            Ok(c) => panic!("logged in: {c:?}"),
            Err(e) => {
                let mut text = e.to_string();
                let mut cur = std::error::Error::source(&e);
                while let Some(s) = cur {
                    text.push_str(&format!(": {s}"));
                    cur = s.source();
                }
                text
            }
        }
    }

    #[test]
    fn provider_logins_go_through_the_controllers_cloud_login() {
        assert_eq!(
            login_error(ProviderArg::Gcp, "r.example/app"),
            "error during login with provider: invalid GCP registry: 'r.example'. must match \
             ^(((.+\\.)?gcr\\.io)|(.+-docker\\.pkg\\.dev))$"
                .replace("\\\\", "\\")
        );
        #[cfg(not(feature = "aws"))]
        assert!(
            login_error(
                ProviderArg::Aws,
                "012345678901.dkr.ecr.us-east-1.amazonaws.com/app"
            )
            .starts_with("error during login with provider: cloud login for aws is not compiled")
        );
    }
}
