//! Which registries each cloud provider logs in to, from the registry host alone (fluxcd/pkg
//! `auth/{aws,azure,gcp}/provider.go`, `ParseArtifactRepository`).
//!
//! A host that does not match its provider's pattern is an error, as in Flux
//! (`invalid AWS registry: '<host>'. must match <pattern>`): the object names a provider, so an
//! anonymous pull would only hide the mistake.
//!
//! One deliberate difference: Flux's AWS pattern is unanchored (any host that merely *contains*
//! `<digits>.dkr.ecr.<region>.amazonaws.com` matches, e.g. `1.dkr.ecr.x.amazonaws.com.example`),
//! which would send ECR credentials to a foreign host; here the whole host must match.

use super::CloudError;
use crate::api::v1::Provider;

/// The AWS pattern, as shown in error messages (the whole host must match).
pub const AWS_PATTERN: &str = r"^([0-9]+)\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.(amazonaws\.com(\.cn)?|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$";
/// The Azure pattern (Flux's, from kubelet's credential provider).
pub const AZURE_PATTERN: &str = r"^.+\.(azurecr\.io|azurecr\.cn|azurecr\.de|azurecr\.us)$";
/// The GCP pattern (Flux's).
pub const GCP_PATTERN: &str = r"^(((.+\.)?gcr\.io)|(.+-docker\.pkg\.dev))$";

/// The ECR Public registry, whose tokens come from `us-east-1`.
pub const ECR_PUBLIC: &str = "public.ecr.aws";

/// The partition domains of private ECR registries.
const AWS_DOMAINS: [&str; 6] = [
    "amazonaws.com",
    "amazonaws.com.cn",
    "sc2s.sgov.gov",
    "c2s.ic.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
];

/// What a provider must do to log in to one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A private ECR registry: `GetAuthorizationToken` in `region`.
    Ecr {
        /// The registry's region (`eu-west-1`).
        region: String,
    },
    /// ECR Public: `ecr-public:GetAuthorizationToken` in `us-east-1`.
    EcrPublic,
    /// An Azure Container Registry: an Entra ID token exchanged at `https://<registry>/oauth2/exchange`.
    Acr {
        /// The registry host (`myregistry.azurecr.io`).
        registry: String,
    },
    /// Artifact Registry or Container Registry: an OAuth2 access token, whatever the registry.
    Gcp,
}

/// The login target for `registry` (`host[:port]`) under `provider`; `None` for
/// [`Provider::Generic`], which never logs in.
///
/// # Errors
///
/// [`CloudError::InvalidRegistry`] when the host does not match the provider's pattern.
pub fn parse(provider: Provider, registry: &str) -> Result<Option<Target>, CloudError> {
    let target = match provider {
        Provider::Generic => return Ok(None),
        Provider::Aws => aws(registry),
        Provider::Azure => azure(registry),
        Provider::Gcp => gcp(registry),
    };
    target.map(Some).ok_or_else(|| {
        let (name, pattern) = match provider {
            Provider::Aws => ("AWS", AWS_PATTERN),
            Provider::Azure => ("Azure", AZURE_PATTERN),
            _ => ("GCP", GCP_PATTERN),
        };
        CloudError::InvalidRegistry {
            provider: name,
            registry: registry.to_string(),
            pattern,
        }
    })
}

fn aws(registry: &str) -> Option<Target> {
    if registry == ECR_PUBLIC {
        return Some(Target::EcrPublic);
    }
    let rest = AWS_DOMAINS.iter().find_map(|domain| {
        registry
            .strip_suffix(domain)
            .and_then(|r| r.strip_suffix('.'))
    })?;
    let labels: Vec<&str> = rest.split('.').collect();
    let [account, "dkr", "ecr" | "ecr-fips", region] = labels.as_slice() else {
        return None;
    };
    let valid_region = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (!account.is_empty() && account.chars().all(|c| c.is_ascii_digit()) && valid_region).then(
        || Target::Ecr {
            region: (*region).to_string(),
        },
    )
}

/// The partition domain of a private ECR `registry` (`amazonaws.com`, `amazonaws.com.cn`, …);
/// `None` for any other host, ECR Public included.
pub fn aws_domain(registry: &str) -> Option<&'static str> {
    AWS_DOMAINS.iter().copied().find(|domain| {
        registry
            .strip_suffix(domain)
            .is_some_and(|r| r.ends_with('.'))
    })
}

fn azure(registry: &str) -> Option<Target> {
    ["azurecr.io", "azurecr.cn", "azurecr.de", "azurecr.us"]
        .iter()
        .any(|suffix| {
            registry
                .strip_suffix(suffix)
                .and_then(|r| r.strip_suffix('.'))
                .is_some_and(|name| !name.is_empty())
        })
        .then(|| Target::Acr {
            registry: registry.to_string(),
        })
}

fn gcp(registry: &str) -> Option<Target> {
    let gcr = registry == "gcr.io"
        || registry
            .strip_suffix(".gcr.io")
            .is_some_and(|name| !name.is_empty());
    let gar = registry
        .strip_suffix("-docker.pkg.dev")
        .is_some_and(|name| !name.is_empty());
    (gcr || gar).then_some(Target::Gcp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecr(region: &str) -> Option<Target> {
        Some(Target::Ecr {
            region: region.into(),
        })
    }

    #[test]
    fn aws_hosts() {
        for (host, want) in [
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                ecr("eu-west-1"),
            ),
            (
                "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
                ecr("us-gov-west-1"),
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                ecr("cn-north-1"),
            ),
            (
                "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
                ecr("us-iso-east-1"),
            ),
            (
                "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
                ecr("us-isob-east-1"),
            ),
            (
                "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
                ecr("eu-isoe-west-1"),
            ),
            (
                "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
                ecr("us-isof-south-1"),
            ),
            ("public.ecr.aws", Some(Target::EcrPublic)),
        ] {
            assert_eq!(parse(Provider::Aws, host).unwrap(), want, "{host}");
        }
        for host in [
            "ecr.eu-west-1.amazonaws.com",
            "dkr.ecr.eu-west-1.amazonaws.com",
            "abc.dkr.ecr.eu-west-1.amazonaws.com",
            "123.dkr.ecr..amazonaws.com",
            "123.dkr.ecr.eu-west-1.amazonaws.com:443",
            "123.dkr.ecr.eu-west-1.amazonaws.com.example",
            "x.123.dkr.ecr.eu-west-1.amazonaws.com",
            "123xdkrxecr.eu-west-1.amazonaws.com",
            "ecr.aws",
            "docker.io",
            "myregistry.azurecr.io",
        ] {
            let err = parse(Provider::Aws, host).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid AWS registry: '{host}'. must match {AWS_PATTERN}")
            );
        }
    }

    #[test]
    fn azure_hosts() {
        for host in [
            "myregistry.azurecr.io",
            "myregistry.azurecr.cn",
            "myregistry.azurecr.de",
            "myregistry.azurecr.us",
            "a.b.azurecr.io",
        ] {
            assert_eq!(
                parse(Provider::Azure, host).unwrap(),
                Some(Target::Acr {
                    registry: host.into()
                })
            );
        }
        for host in [
            "azurecr.io",
            ".azurecr.io",
            "myregistry.azurecr.io:443",
            "myregistry.azurecr.com",
            "myregistryazurecr.io",
            "gcr.io",
        ] {
            let err = parse(Provider::Azure, host).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid Azure registry: '{host}'. must match ^.+")),
                "{err}"
            );
        }
    }

    #[test]
    fn gcp_hosts() {
        for host in [
            "gcr.io",
            "eu.gcr.io",
            "a.b.gcr.io",
            "europe-west1-docker.pkg.dev",
            "us-docker.pkg.dev",
        ] {
            assert_eq!(
                parse(Provider::Gcp, host).unwrap(),
                Some(Target::Gcp),
                "{host}"
            );
        }
        for host in [
            ".gcr.io",
            "xgcr.io",
            "gcr.io:443",
            "-docker.pkg.dev",
            "europe-west1.pkg.dev",
            "docker.pkg.dev",
            "index.docker.io",
        ] {
            let err = parse(Provider::Gcp, host).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid GCP registry: '{host}'. must match {GCP_PATTERN}")
            );
        }
    }

    #[test]
    fn aws_partition_domains() {
        for (host, want) in [
            ("1.dkr.ecr.eu-west-1.amazonaws.com", Some("amazonaws.com")),
            (
                "1.dkr.ecr.cn-north-1.amazonaws.com.cn",
                Some("amazonaws.com.cn"),
            ),
            ("1.dkr.ecr.us-iso-east-1.c2s.ic.gov", Some("c2s.ic.gov")),
            ("public.ecr.aws", None),
            ("xamazonaws.com", None),
        ] {
            assert_eq!(aws_domain(host), want, "{host}");
        }
    }

    #[test]
    fn generic_never_logs_in() {
        assert_eq!(parse(Provider::Generic, "anything.example").unwrap(), None);
    }
}
