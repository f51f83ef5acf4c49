//! Registry credentials for the producer verbs: `--creds`, else the Docker config
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, else the legacy
//! `~/.dockercfg`) as the Docker CLI and go-containerregistry read it:
//!
//! 1. a credential helper: `credHelpers[<registry>]`, else `credsStore`, run as
//!    `docker-credential-<name> get` (from `PATH`) with the registry on stdin (Docker Hub is
//!    `https://index.docker.io/v1/`); its JSON answer (`Username`, `Secret`; a `<token>` user
//!    name means an identity token) is the credential. A helper that answers `credentials not
//!    found in native keychain` means none: the `auths` are tried next;
//! 2. the `auths`, matched against the repository as kubelet matches them.
//!
//! A helper runs under the verb's `--timeout`, its answer is read up to 64 KiB, and it fails
//! with Docker's words (``error getting credentials - err: <status>, out: `<output>` ``). What it
//! prints is never logged, and its output appears in an error only when it failed (it is then
//! an error message, not a secret).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::registry::reference::DEFAULT_REGISTRY;
use crate::registry::{Credential, Keychain, Repository};

use super::Error;

/// The largest answer read from a credential helper.
pub const MAX_HELPER_OUTPUT: u64 = 64 << 10;

/// What a helper prints when it has nothing for the registry (docker-credential-helpers).
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The key of Docker Hub in Docker configs and for credential helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Why a credential helper gave no credential.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// The helper could not be started (not on `PATH`, not executable).
    #[error("failed to run {program}")]
    Start {
        /// `docker-credential-<name>`.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Talking to the helper failed.
    #[error("failed to talk to {program}")]
    Io {
        /// `docker-credential-<name>`.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The helper did not finish in time (it was killed).
    #[error("{program} did not answer within {timeout:?}")]
    Timeout {
        /// `docker-credential-<name>`.
        program: String,
        /// The bound.
        timeout: Duration,
    },
    /// The helper printed more than [`MAX_HELPER_OUTPUT`] bytes.
    #[error("{program} printed more than {MAX_HELPER_OUTPUT} bytes")]
    TooLarge {
        /// `docker-credential-<name>`.
        program: String,
    },
    /// The helper failed (Docker's text).
    #[error("error getting credentials - err: {status}, out: `{output}`")]
    Failed {
        /// The exit status, as Go prints it (`exit status 1`).
        status: String,
        /// What it printed (its error message).
        output: String,
    },
    /// The helper's answer is not the expected JSON (its content is not repeated: it may hold
    /// a secret).
    #[error("{program} printed an answer that is not valid credentials JSON")]
    InvalidAnswer {
        /// `docker-credential-<name>`.
        program: String,
    },
}

/// `--creds`: `user:password` (split at the first `:`) or a registry token.
pub(crate) fn creds_credential(creds: &str) -> Credential {
    match creds.split_once(':') {
        Some((username, password)) => Credential::Basic {
            username: username.to_string(),
            password: password.to_string(),
        },
        None => Credential::RegistryToken(creds.to_string()),
    }
}

/// The Docker config directory: `$DOCKER_CONFIG`, else `~/.docker`.
fn docker_config_dir() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".docker")),
    }
}

/// The credential for `repo` from the Docker config (a credential helper, else the `auths`);
/// anonymous when there is none. A helper gets `timeout`.
pub(crate) fn docker_config_credential(
    repo: &Repository,
    timeout: Duration,
) -> Result<Credential, Error> {
    let mut keychain = Keychain::new();
    let Some(dir) = docker_config_dir() else {
        return Ok(Credential::Anonymous);
    };
    let config = dir.join("config.json");
    let legacy = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".dockercfg"));
    if let Some(bytes) = read_optional(&config)? {
        keychain
            .add_docker_config_json(&bytes)
            .map_err(|source| Error::DockerConfig {
                path: config.clone(),
                source,
            })?;
        if let Some(helper) = helper_for(&bytes, repo.registry()) {
            let server = server_key(repo.registry());
            if let Some(cred) =
                run_helper(&helper, &server, timeout).map_err(|source| Error::CredentialHelper {
                    server: server.clone(),
                    source,
                })?
            {
                return Ok(cred);
            }
        }
    } else if let Some(legacy) = legacy
        && let Some(bytes) = read_optional(&legacy)?
    {
        keychain
            .add_docker_cfg(&bytes)
            .map_err(|source| Error::DockerConfig {
                path: legacy.clone(),
                source,
            })?;
    }
    Ok(keychain.resolve(repo))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::ReadDockerConfig {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The key a registry has in Docker configs and for helpers.
fn server_key(registry: &str) -> String {
    if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// The helper for `registry`: `credHelpers[<key>]`, else `credsStore` (keys matched
/// case-insensitively, as Go's `encoding/json` does; empty names mean none).
fn helper_for(config: &[u8], registry: &str) -> Option<String> {
    let serde_json::Value::Object(map) = serde_json::from_slice(config).ok()? else {
        return None;
    };
    let field = |name: &str| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let key = server_key(registry);
    let per_registry = field("credHelpers")
        .and_then(|h| h.get(&key))
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty());
    let store = field("credsStore")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty());
    per_registry.or(store).map(str::to_string)
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<name> get` for `server`; `None` when it has no credential.
fn run_helper(
    name: &str,
    server: &str,
    timeout: Duration,
) -> Result<Option<Credential>, HelperError> {
    let program = format!("docker-credential-{name}");
    let io_err = |source| HelperError::Io {
        program: program.clone(),
        source,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| HelperError::Start {
            program: program.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its answer, not by the broken pipe.
        let _ = stdin.write_all(server.as_bytes());
    }
    let reader = child.stdout.take().map(|out| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            out.take(MAX_HELPER_OUTPUT + 1)
                .read_to_end(&mut buf)
                .map(|_| buf)
        })
    });
    let deadline = Instant::now().checked_add(timeout);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io_err)? {
            break status;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HelperError::Timeout {
                program: program.clone(),
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = match reader {
        Some(handle) => handle
            .join()
            .map_err(|_| io_err(std::io::Error::other("the output reader died")))?
            .map_err(io_err)?,
        None => Vec::new(),
    };
    if output.len() as u64 > MAX_HELPER_OUTPUT {
        return Err(HelperError::TooLarge { program });
    }
    if !status.success() {
        let text = String::from_utf8_lossy(&output).trim().to_string();
        if text == NOT_FOUND {
            return Ok(None);
        }
        let status = match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "signal: killed".to_string(),
        };
        return Err(HelperError::Failed {
            status,
            output: text,
        });
    }
    let answer: HelperAnswer =
        serde_json::from_slice(&output).map_err(|_| HelperError::InvalidAnswer { program })?;
    Ok(Some(match (answer.username.as_str(), answer.secret) {
        (_, secret) if secret.is_empty() && answer.username.is_empty() => Credential::Anonymous,
        ("<token>", token) => Credential::IdentityToken {
            username: String::new(),
            token,
        },
        (username, password) => Credential::Basic {
            username: username.to_string(),
            password,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_are_chosen_per_registry_then_from_the_store() {
        let config = br#"{"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud","https://index.docker.io/v1/":"hub"}}"#;
        assert_eq!(helper_for(config, "gcr.io").as_deref(), Some("gcloud"));
        assert_eq!(
            helper_for(config, "index.docker.io").as_deref(),
            Some("hub")
        );
        assert_eq!(helper_for(config, "r.example").as_deref(), Some("desktop"));
        let config = br#"{"CredHelpers":{"gcr.io":""},"auths":{}}"#;
        assert_eq!(helper_for(config, "gcr.io"), None);
        assert_eq!(helper_for(b"not json", "gcr.io"), None);
    }

    #[test]
    fn a_missing_helper_is_a_clear_error() {
        let err = run_helper(
            "ocisource-test-no-such-helper",
            "r.example",
            Duration::from_secs(5),
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("failed to run docker-credential-ocisource-test-no-such-helper")
        );
    }

    #[test]
    fn creds_are_user_password_or_a_token() {
        assert_eq!(
            creds_credential("u:p:q"),
            Credential::Basic {
                username: "u".into(),
                password: "p:q".into()
            }
        );
        assert_eq!(
            creds_credential("tok"),
            Credential::RegistryToken("tok".into())
        );
    }
}
