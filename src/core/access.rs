//! Gathers what the registry client needs from the Secrets an object names: docker-config
//! credentials (`spec.secretRef`, then the service account's image pull secrets), TLS material
//! (`spec.certSecretRef`) and the proxy (`spec.proxySecretRef`). Bytes only: parsing keys,
//! certificates and docker configs belongs to the registry adapter.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use super::ports::{LookupError, SecretSource};
use crate::api::v1::OciRepositorySpec;
pub use crate::registry::{ProxyConfig as Proxy, TlsMaterial};

/// A Secret holding registry credentials, in the order the keychain consults them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSecret {
    /// Secret name.
    pub name: String,
    /// Secret type (`kubernetes.io/dockerconfigjson`, `kubernetes.io/dockercfg`, ...).
    pub type_: String,
    /// Secret data.
    pub data: BTreeMap<String, Vec<u8>>,
}

/// The service account `spec.serviceAccountName` names, as far as cloud login needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAccountInfo {
    /// Its name.
    pub name: String,
    /// Its annotations (the cloud identity of object-level workload identity).
    pub annotations: BTreeMap<String, String>,
}

/// Everything the registry client is given for one object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Credential Secrets: `spec.secretRef` first, then the service account's pull secrets.
    pub credentials: Vec<CredentialSecret>,
    /// The service account `spec.serviceAccountName` names, when it does.
    pub service_account: Option<ServiceAccountInfo>,
    /// TLS material from `spec.certSecretRef`.
    pub tls: Option<TlsMaterial>,
    /// Proxy from `spec.proxySecretRef`.
    pub proxy: Option<Proxy>,
    /// `spec.insecure`.
    pub insecure: bool,
}

/// Why the access material could not be gathered; all map to `AuthenticationFailed`.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// A named Secret does not exist.
    #[error("auth secret '{name}' not found")]
    SecretNotFound {
        /// Secret name.
        name: String,
    },
    /// The named service account does not exist.
    #[error("serviceaccounts \"{name}\" not found")]
    ServiceAccountNotFound {
        /// Service account name.
        name: String,
    },
    /// The TLS Secret does not exist.
    #[error("failed to get secret '{namespace}/{name}': secrets \"{name}\" not found")]
    TlsSecretNotFound {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// The TLS Secret has a type that cannot hold TLS material.
    #[error("invalid '{name}' secret type '{type_}': must be 'Opaque' or 'kubernetes.io/tls'")]
    TlsSecretType {
        /// Secret name.
        name: String,
        /// Its type.
        type_: String,
    },
    /// The proxy Secret does not exist.
    #[error("failed to get proxy address: secrets \"{name}\" not found")]
    ProxySecretNotFound {
        /// Secret name.
        name: String,
    },
    /// The proxy Secret lacks `address`.
    #[error(
        "failed to get proxy address: invalid proxy secret '{namespace}/{name}': key 'address' is missing"
    )]
    ProxyAddressMissing {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// The proxy address is not a URL.
    #[error("failed to get proxy address: failed to parse proxy address '{address}'")]
    ProxyAddressInvalid {
        /// The address as given.
        address: String,
    },
    /// The Secret store failed.
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

const SECRET_TYPES_TLS: [&str; 3] = ["", "Opaque", "kubernetes.io/tls"];

/// Reads the Secrets `spec` names in `namespace`.
///
/// # Errors
/// A named Secret or service account is missing, the TLS Secret has the wrong type, the proxy
/// Secret lacks a usable address, or the store fails.
pub async fn gather(
    secrets: &impl SecretSource,
    namespace: &str,
    spec: &OciRepositorySpec,
) -> Result<Access, AccessError> {
    let mut names: Vec<String> = spec.secret_ref.iter().map(|r| r.name.clone()).collect();
    let mut service_account = None;
    if let Some(sa_name) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        let sa = secrets
            .service_account(namespace, sa_name)
            .await?
            .ok_or_else(|| AccessError::ServiceAccountNotFound {
                name: sa_name.to_string(),
            })?;
        for pull in sa.image_pull_secrets.unwrap_or_default() {
            if !names.contains(&pull.name) {
                names.push(pull.name);
            }
        }
        service_account = Some(ServiceAccountInfo {
            name: sa_name.to_string(),
            annotations: sa.metadata.annotations.unwrap_or_default(),
        });
    }
    let mut credentials = vec![];
    for name in names {
        let secret = secrets
            .secret(namespace, &name)
            .await?
            .ok_or_else(|| AccessError::SecretNotFound { name: name.clone() })?;
        credentials.push(CredentialSecret {
            name,
            type_: secret.type_.clone().unwrap_or_default(),
            data: data_of(secret),
        });
    }

    let tls = match &spec.cert_secret_ref {
        Some(r) => {
            let secret = secrets.secret(namespace, &r.name).await?.ok_or_else(|| {
                AccessError::TlsSecretNotFound {
                    namespace: namespace.to_string(),
                    name: r.name.clone(),
                }
            })?;
            let type_ = secret.type_.clone().unwrap_or_default();
            if !SECRET_TYPES_TLS.contains(&type_.as_str()) {
                return Err(AccessError::TlsSecretType {
                    name: r.name.clone(),
                    type_,
                });
            }
            Some(tls_material(&r.name, data_of(secret)))
        }
        None => None,
    };

    let proxy = match &spec.proxy_secret_ref {
        Some(r) => {
            let secret = secrets.secret(namespace, &r.name).await?.ok_or_else(|| {
                AccessError::ProxySecretNotFound {
                    name: r.name.clone(),
                }
            })?;
            Some(proxy_of(namespace, &r.name, data_of(secret))?)
        }
        None => None,
    };

    Ok(Access {
        credentials,
        service_account,
        tls,
        proxy,
        insecure: spec.insecure.unwrap_or(false),
    })
}

fn data_of(secret: Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

// Flux 2.6 reads the deprecated keys only when none of the current ones is present.
fn tls_material(name: &str, mut data: BTreeMap<String, Vec<u8>>) -> TlsMaterial {
    let current = ["ca.crt", "tls.crt", "tls.key"];
    let (ca, cert, key) = if current.iter().any(|k| data.contains_key(*k)) {
        ("ca.crt", "tls.crt", "tls.key")
    } else {
        ("caFile", "certFile", "keyFile")
    };
    TlsMaterial {
        secret_name: Some(name.to_string()),
        ca_pem: data.remove(ca),
        cert_pem: data.remove(cert),
        key_pem: data.remove(key),
    }
}

fn proxy_of(
    namespace: &str,
    name: &str,
    data: BTreeMap<String, Vec<u8>>,
) -> Result<Proxy, AccessError> {
    let text = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .filter(|s| !s.is_empty())
    };
    let address = text("address").ok_or_else(|| AccessError::ProxyAddressMissing {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })?;
    let valid = address
        .split_once("://")
        .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty())
        && !address.chars().any(char::is_whitespace);
    if !valid {
        return Err(AccessError::ProxyAddressInvalid { address });
    }
    Ok(Proxy {
        address,
        username: text("username"),
        password: text("password"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standalone::secrets::DirSecrets;

    fn spec(yaml: &str) -> OciRepositorySpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn secrets(yaml: &str) -> DirSecrets {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.yaml"), yaml).unwrap();
        DirSecrets::load(dir.path()).unwrap()
    }

    fn run(s: &DirSecrets, spec: &OciRepositorySpec) -> Result<Access, AccessError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(gather(s, "apps", spec))
    }

    const SECRETS: &str = r#"
kind: Secret
metadata: {name: creds}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: "{}"}
---
kind: Secret
metadata: {name: pull-b}
type: kubernetes.io/dockercfg
stringData: {.dockercfg: "{}"}
---
kind: ServiceAccount
metadata:
  name: puller
  annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::1:role/puller"}
imagePullSecrets: [{name: pull-b}, {name: creds}]
---
kind: Secret
metadata: {name: tls}
type: kubernetes.io/tls
stringData: {tls.crt: CERT, tls.key: KEY, ca.crt: CA, caFile: OLD}
---
kind: Secret
metadata: {name: legacy-tls}
stringData: {caFile: OLDCA, certFile: OLDCERT, keyFile: OLDKEY}
---
kind: Secret
metadata: {name: docker-tls}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: "{}"}
---
kind: Secret
metadata: {name: proxy}
stringData: {address: "http://proxy:3128", username: bob, password: hunter2}
---
kind: Secret
metadata: {name: proxy-noaddr}
stringData: {username: bob}
---
kind: Secret
metadata: {name: proxy-bad}
stringData: {address: "not a url"}
"#;

    #[test]
    fn credentials_come_from_secret_ref_then_service_account_without_duplicates() {
        let s = secrets(SECRETS);
        let a = run(&s, &spec("{url: oci://r/a, interval: 1m, secretRef: {name: creds}, serviceAccountName: puller}")).unwrap();
        let names: Vec<_> = a.credentials.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["creds", "pull-b"]);
        assert_eq!(a.credentials[1].type_, "kubernetes.io/dockercfg");
        assert!(a.credentials[0].data.contains_key(".dockerconfigjson"));
        let sa = a.service_account.unwrap();
        assert_eq!(sa.name, "puller");
        assert_eq!(
            sa.annotations["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::1:role/puller"
        );
        let a = run(&s, &spec("{url: oci://r/a, interval: 1m}")).unwrap();
        assert_eq!(a.service_account, None);
    }

    #[test]
    fn missing_secrets_and_accounts_are_authentication_errors_with_flux_texts() {
        let s = secrets(SECRETS);
        let e = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, secretRef: {name: nope}}"),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "auth secret 'nope' not found");
        let e = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, serviceAccountName: ghost}"),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "serviceaccounts \"ghost\" not found");
    }

    #[test]
    fn tls_keys_prefer_current_names_and_fall_back_to_legacy_ones() {
        let s = secrets(SECRETS);
        let a = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, certSecretRef: {name: tls}}"),
        )
        .unwrap();
        let t = a.tls.unwrap();
        assert_eq!(
            t.ca_pem.as_deref(),
            Some(&b"CA"[..]),
            "caFile ignored when ca.crt exists"
        );
        assert_eq!(t.cert_pem.as_deref(), Some(&b"CERT"[..]));
        assert_eq!(t.key_pem.as_deref(), Some(&b"KEY"[..]));
        assert!(
            !format!("{t:?}").contains("KEY"),
            "debug output redacts the key"
        );
        let a = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, certSecretRef: {name: legacy-tls}}"),
        )
        .unwrap();
        let t = a.tls.unwrap();
        assert_eq!(t.ca_pem.as_deref(), Some(&b"OLDCA"[..]));
        assert_eq!(t.key_pem.as_deref(), Some(&b"OLDKEY"[..]));
        let e = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, certSecretRef: {name: docker-tls}}"),
        )
        .unwrap_err();
        assert!(matches!(e, AccessError::TlsSecretType { .. }), "{e}");
    }

    #[test]
    fn proxy_secrets_need_a_parsable_address() {
        let s = secrets(SECRETS);
        let a = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, proxySecretRef: {name: proxy}, insecure: true}"),
        )
        .unwrap();
        let p = a.proxy.unwrap();
        assert_eq!(p.address, "http://proxy:3128");
        assert_eq!(p.username.as_deref(), Some("bob"));
        assert!(a.insecure);
        assert!(!format!("{p:?}").contains("hunter2"));
        let e = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, proxySecretRef: {name: proxy-noaddr}}"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to get proxy address: invalid proxy secret 'apps/proxy-noaddr': key 'address' is missing"
        );
        let e = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, proxySecretRef: {name: proxy-bad}}"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to get proxy address: failed to parse proxy address 'not a url'"
        );
    }
}
