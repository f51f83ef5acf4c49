//! Reference resolution: `spec.ref` to the one digest everything after reads by. A digest is
//! taken as given; a semver constraint picks a tag from the tag list ([`super::semver`]); else
//! the tag (`latest` when none) is resolved with a manifest `HEAD`. Both registry questions go
//! through the process's [`super::resolution_cache`], which shares recent answers.

use super::connect::Connection;
use super::error::Error;
use super::resolution_cache::{Freshness, ResolutionCache};
use super::semver;
use crate::api::v1::OciRepositorySpec;
use crate::registry::{Digest, Repository};

/// Media type of the layer `helm push` writes; selecting it turns on Helm's `_`/`+` tag mapping.
pub const HELM_CHART_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// What `spec.ref` resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The tag, unless the reference is a digest.
    pub tag: Option<String>,
    /// The digest.
    pub digest: Digest,
}

impl Resolved {
    /// The revision Flux records: `<tag>@<digest>`, or the digest alone.
    pub fn revision(&self) -> String {
        match &self.tag {
            Some(t) => format!("{t}@{}", self.digest),
            None => self.digest.to_string(),
        }
    }

    /// The reference in `repo` as Flux names it in messages: `<repo>:<tag>` or `<repo>@<digest>`.
    pub fn reference(&self, repo: &Repository) -> String {
        match &self.tag {
            Some(t) => format!("{repo}:{t}"),
            None => format!("{repo}@{}", self.digest),
        }
    }
}

/// Resolves `spec.ref` in `repo` through `connection`, sharing the tag list and the tag's
/// digest with other objects through `cache` as `freshness` allows.
///
/// # Errors
/// An invalid digest or a failed manifest `HEAD` ([`Error::ResolveDigest`]), a failed tag listing
/// ([`Error::ListTags`]), or no tag satisfying the semver constraint ([`Error::SelectTag`]).
pub async fn resolve(
    spec: &OciRepositorySpec,
    repo: &Repository,
    connection: &Connection,
    cache: &ResolutionCache,
    freshness: Freshness,
) -> Result<Resolved, Error> {
    let reference = spec.reference.clone().unwrap_or_default();
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    if let Some(digest) = non_empty(reference.digest) {
        let digest = digest
            .parse::<Digest>()
            .map_err(|source| Error::ResolveDigest { source })?;
        return Ok(Resolved { tag: None, digest });
    }
    let via = (
        &connection.client,
        &connection.credential,
        connection.fingerprint,
    );
    let tag = match non_empty(reference.semver) {
        Some(constraint) => {
            let tags = cache
                .list_tags(via, repo, freshness)
                .await
                .map_err(|source| Error::ListTags {
                    url: spec.url.clone(),
                    source,
                })?;
            let helm = spec
                .layer_selector
                .as_ref()
                .and_then(|s| s.media_type.as_deref())
                == Some(HELM_CHART_MEDIA_TYPE);
            let filter = non_empty(reference.semver_filter);
            semver::select_tag(&tags, &constraint, filter.as_deref(), helm).map_err(|source| {
                Error::SelectTag {
                    url: spec.url.clone(),
                    source,
                }
            })?
        }
        None => non_empty(reference.tag).unwrap_or_else(|| "latest".to_string()),
    };
    let digest = cache
        .resolve_digest(via, repo, &tag, freshness)
        .await
        .map_err(|source| Error::ResolveDigest { source })?;
    Ok(Resolved {
        tag: Some(tag),
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_and_reference_are_fluxs() {
        let repo = Repository::parse_oci_url("oci://ghcr.io/org/app").unwrap();
        let digest: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let tagged = Resolved {
            tag: Some("v1".into()),
            digest: digest.clone(),
        };
        assert_eq!(tagged.revision(), format!("v1@{digest}"));
        assert_eq!(tagged.reference(&repo), "ghcr.io/org/app:v1");
        let pinned = Resolved { tag: None, digest };
        assert_eq!(pinned.revision(), format!("sha256:{}", "a".repeat(64)));
        assert_eq!(
            pinned.reference(&repo),
            format!("ghcr.io/org/app@sha256:{}", "a".repeat(64))
        );
    }
}
