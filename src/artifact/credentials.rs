//! Registry credentials for the producer verbs: `--creds`, else the Docker config's `auths`
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, else the legacy
//! `~/.dockercfg`), matched against the repository as kubelet matches them.

use std::path::{Path, PathBuf};

use crate::registry::{Credential, Keychain, Repository};

use super::Error;

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

/// The credential for `repo` from the Docker config; anonymous when there is none.
pub(crate) fn docker_config_credential(repo: &Repository) -> Result<Credential, Error> {
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
        warn_about_helpers(&bytes, &config);
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

fn warn_about_helpers(bytes: &[u8], path: &Path) {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(bytes)
    else {
        return;
    };
    let has_helpers = map.iter().any(|(k, v)| {
        (k.eq_ignore_ascii_case("credsStore") || k.eq_ignore_ascii_case("credHelpers"))
            && !v.is_null()
            && v.as_str() != Some("")
    });
    if has_helpers {
        tracing::warn!(
            path = %path.display(),
            "the docker config names credential helpers; they are not run, use --creds"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
