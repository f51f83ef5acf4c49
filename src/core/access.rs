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

/// A Secret read as Flux's `runtime/secrets` helpers read it (pull secrets of a service
/// account, the TLS and the proxy Secret).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// It does not exist.
    #[error("secret '{namespace}/{name}' not found")]
    NotFound {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// The Secret store failed (`failed to get secret '<ns>/<name>': ...`).
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

/// Why the access material could not be gathered; all map to `AuthenticationFailed`. The texts
/// are source-controller v1.7's.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// `spec.secretRef` does not exist; the text ends in the store's own.
    #[error("failed to get secret '{namespace}/{name}': {resource} \"{name}\" not found")]
    AuthSecretNotFound {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// How the store names Secrets ([`SecretSource::secret_resource`]).
        resource: &'static str,
    },
    /// `spec.secretRef` could not be read.
    #[error(transparent)]
    AuthSecretRead(LookupError),
    /// The named service account does not exist.
    #[error("serviceaccount '{namespace}/{name}' not found")]
    ServiceAccountNotFound {
        /// Namespace.
        namespace: String,
        /// Service account name.
        name: String,
    },
    /// An image pull secret of the service account could not be read.
    #[error("failed to get image pull secret for serviceaccount '{namespace}/{account}'")]
    PullSecret {
        /// Namespace.
        namespace: String,
        /// Service account name.
        account: String,
        /// Why (boxed: it would double the size of every reconcile error).
        #[source]
        source: Box<SecretError>,
    },
    /// The TLS Secret could not be read.
    #[error(transparent)]
    TlsSecret(SecretError),
    /// The TLS Secret has a type that cannot hold TLS material.
    #[error("invalid '{name}' secret type '{type_}': must be 'Opaque' or 'kubernetes.io/tls'")]
    TlsSecretType {
        /// Secret name.
        name: String,
        /// Its type.
        type_: String,
    },
    /// The proxy Secret could not be read.
    #[error(transparent)]
    ProxySecret(SecretError),
    /// The proxy Secret lacks `address`.
    #[error("secret '{namespace}/{name}': key 'address' not found")]
    ProxyAddressMissing {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// The proxy Secret's `address` is empty.
    #[error("secret '{namespace}/{name}': proxy address is empty")]
    ProxyAddressEmpty {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// The proxy address is not a URL.
    #[error("secret '{namespace}/{name}': failed to parse proxy address '{address}'")]
    ProxyAddressInvalid {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The address as given.
        address: String,
    },
    /// The service account could not be read (`failed to get serviceaccount '<ns>/<name>': ...`).
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

impl AccessError {
    /// Whether `spec.proxySecretRef` is at fault (`failed to get proxy address` in Flux).
    pub fn is_proxy(&self) -> bool {
        matches!(
            self,
            AccessError::ProxySecret(_)
                | AccessError::ProxyAddressMissing { .. }
                | AccessError::ProxyAddressEmpty { .. }
                | AccessError::ProxyAddressInvalid { .. }
        )
    }

    /// Whether `spec.certSecretRef` is at fault (`failed to generate transport` in Flux).
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            AccessError::TlsSecret(_) | AccessError::TlsSecretType { .. }
        )
    }

    /// The name in `spec.secretRef` when reading it failed: Flux then records a trace event
    /// `auth secret '<name>' not found`, whatever the failure.
    pub fn auth_secret(&self) -> Option<&str> {
        match self {
            AccessError::AuthSecretNotFound { name, .. } => Some(name),
            AccessError::AuthSecretRead(LookupError::Read { name, .. }) => Some(name),
            _ => None,
        }
    }
}

const SECRET_TYPES_TLS: [&str; 3] = ["", "Opaque", "kubernetes.io/tls"];

// Flux's `runtime/secrets` read.
async fn get_secret(
    secrets: &impl SecretSource,
    namespace: &str,
    name: &str,
) -> Result<Secret, SecretError> {
    secrets
        .secret(namespace, name)
        .await?
        .ok_or_else(|| SecretError::NotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
}

/// Reads the Secrets `spec` names in `namespace`, in source-controller's order: `secretRef`,
/// the service account and its image pull secrets, the proxy Secret, the TLS Secret.
///
/// # Errors
/// A named Secret or service account is missing, the TLS Secret has the wrong type, the proxy
/// Secret lacks a usable address, or the store fails.
pub async fn gather(
    secrets: &impl SecretSource,
    namespace: &str,
    spec: &OciRepositorySpec,
) -> Result<Access, AccessError> {
    let mut credentials: Vec<CredentialSecret> = vec![];
    if let Some(r) = &spec.secret_ref {
        let secret = secrets
            .secret(namespace, &r.name)
            .await
            .map_err(AccessError::AuthSecretRead)?
            .ok_or_else(|| AccessError::AuthSecretNotFound {
                namespace: namespace.to_string(),
                name: r.name.clone(),
                resource: secrets.secret_resource(),
            })?;
        credentials.push(credential(r.name.clone(), secret));
    }
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
                namespace: namespace.to_string(),
                name: sa_name.to_string(),
            })?;
        for pull in sa.image_pull_secrets.unwrap_or_default() {
            if credentials.iter().any(|c| c.name == pull.name) {
                continue;
            }
            let secret = get_secret(secrets, namespace, &pull.name)
                .await
                .map_err(|source| AccessError::PullSecret {
                    namespace: namespace.to_string(),
                    account: sa_name.to_string(),
                    source: Box::new(source),
                })?;
            credentials.push(credential(pull.name, secret));
        }
        service_account = Some(ServiceAccountInfo {
            name: sa_name.to_string(),
            annotations: sa.metadata.annotations.unwrap_or_default(),
        });
    }

    let proxy = match &spec.proxy_secret_ref {
        Some(r) => {
            let secret = get_secret(secrets, namespace, &r.name)
                .await
                .map_err(AccessError::ProxySecret)?;
            Some(proxy_of(namespace, &r.name, data_of(secret))?)
        }
        None => None,
    };

    let tls = match &spec.cert_secret_ref {
        Some(r) => {
            let secret = get_secret(secrets, namespace, &r.name)
                .await
                .map_err(AccessError::TlsSecret)?;
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

    Ok(Access {
        credentials,
        service_account,
        tls,
        proxy,
        insecure: spec.insecure.unwrap_or(false),
    })
}

fn credential(name: String, secret: Secret) -> CredentialSecret {
    CredentialSecret {
        name,
        type_: secret.type_.clone().unwrap_or_default(),
        data: data_of(secret),
    }
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
    let address = data
        .get("address")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .ok_or_else(|| AccessError::ProxyAddressMissing {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })?;
    if address.is_empty() {
        return Err(AccessError::ProxyAddressEmpty {
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
    }
    let valid = address
        .split_once("://")
        .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty())
        && !address.chars().any(char::is_whitespace);
    if !valid {
        return Err(AccessError::ProxyAddressInvalid {
            namespace: namespace.to_string(),
            name: name.to_string(),
            address,
        });
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
kind: ServiceAccount
metadata: {name: broken-puller}
imagePullSecrets: [{name: gone}]
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
metadata: {name: proxy-empty}
stringData: {address: ""}
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
        assert_eq!(
            e.to_string(),
            "failed to get secret 'apps/nope': secrets \"nope\" not found"
        );
        assert_eq!(e.auth_secret(), Some("nope"), "a trace event is due");
        let e = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, serviceAccountName: ghost}"),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "serviceaccount 'apps/ghost' not found");
        assert_eq!(e.auth_secret(), None);
        let e = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, serviceAccountName: broken-puller}"),
        )
        .unwrap_err();
        assert_eq!(
            crate::core::message::render(&e),
            "failed to get image pull secret for serviceaccount 'apps/broken-puller': \
             secret 'apps/gone' not found"
        );
        let e = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, certSecretRef: {name: gone}}"),
        )
        .unwrap_err();
        assert!(e.is_tls() && !e.is_proxy());
        assert_eq!(e.to_string(), "secret 'apps/gone' not found");
        let e = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, proxySecretRef: {name: gone}}"),
        )
        .unwrap_err();
        assert!(e.is_proxy() && !e.is_tls());
        assert_eq!(e.to_string(), "secret 'apps/gone' not found");
    }

    #[test]
    fn secrets_are_read_in_fluxs_order() {
        let s = secrets(SECRETS);
        let all_missing = "{url: oci://r/a, interval: 1m, secretRef: {name: a}, \
            serviceAccountName: ghost, proxySecretRef: {name: b}, certSecretRef: {name: c}}";
        let e = run(&s, &spec(all_missing)).unwrap_err();
        assert_eq!(e.auth_secret(), Some("a"));
        let e = run(
            &s,
            &spec(
                "{url: oci://r/a, interval: 1m, serviceAccountName: ghost, \
                 proxySecretRef: {name: b}, certSecretRef: {name: c}}",
            ),
        )
        .unwrap_err();
        assert!(
            matches!(e, AccessError::ServiceAccountNotFound { .. }),
            "{e}"
        );
        let e = run(
            &s,
            &spec(
                "{url: oci://r/a, interval: 1m, proxySecretRef: {name: b}, \
                 certSecretRef: {name: c}}",
            ),
        )
        .unwrap_err();
        assert!(e.is_proxy(), "the proxy before TLS: {e}");
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
            "secret 'apps/proxy-noaddr': key 'address' not found"
        );
        let e = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, proxySecretRef: {name: proxy-empty}}"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "secret 'apps/proxy-empty': proxy address is empty"
        );
        let e = run(
            &s,
            &spec("{url: oci://r/a, interval: 1m, proxySecretRef: {name: proxy-bad}}"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "secret 'apps/proxy-bad': failed to parse proxy address 'not a url'"
        );
    }
}
