//! The registry flags every verb that talks to a registry shares (`--creds`,
//! `--insecure-registry`, the TLS files, `--timeout`) and the client and credential they make.
//!
//! TLS trusts the system roots (with rustls-native-certs, `SSL_CERT_FILE` and `SSL_CERT_DIR`
//! replace them, as Go tools do) plus `--ca-file`; `--cert-file`/`--key-file` present a client
//! certificate; `--insecure-registry` allows plain HTTP and, without `--ca-file`, skips
//! verification.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::registry::{Client, Credential, Repository, TlsMaterial, TransportConfig};

use super::Error;
use super::credentials::{creds_credential, docker_config_credential};
use super::flags::go_duration;

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
            ca_file: None,
            cert_file: None,
            key_file: None,
            timeout: Duration::from_secs(300),
        }
    }
}

impl RegistryArgs {
    /// The credential for `repo`: `--creds`, else the Docker config (a credential helper,
    /// else the `auths`; anonymous without an entry).
    ///
    /// # Errors
    ///
    /// [`Error::ReadDockerConfig`], [`Error::DockerConfig`], [`Error::CredentialHelper`].
    pub fn credential(&self, repo: &Repository) -> Result<Credential, Error> {
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
