//! The artifacts that refer to a subject manifest (OCI 1.1): the referrers API
//! (`GET /v2/<name>/referrers/<digest>`), or, on a registry without it (404), the referrers-tag
//! fallback, an index tagged `<alg>-<hex>` that clients keep up to date beside the subject.
//! Both answers are image indexes; only their descriptors are kept, at most [`MAX_REFERRERS`].

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;

use super::client::Client;
use super::counters::RequestKind;
use super::error::Error;
use super::keychain::Credential;
use super::manifest::{MAX_MANIFEST_SIZE, OCI_INDEX};
use super::reference::{Digest, Repository};
use super::request::{Request, Target};
use super::response::{check, read_body};

/// The most referrers kept from one answer; the rest are ignored.
pub const MAX_REFERRERS: usize = 100;

/// Where the referrers came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferrersSource {
    /// The registry's referrers API.
    Api,
    /// The `<alg>-<hex>` tag fallback (the registry has no referrers API).
    Tag,
    /// Neither exists: nothing refers to the subject.
    None,
}

/// One referrer: a manifest whose `subject` is the digest asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referrer {
    /// The referrer manifest's media type.
    pub media_type: String,
    /// The referrer manifest's digest.
    pub digest: Digest,
    /// The referrer manifest's size.
    pub size: u64,
    /// The artifact type the index gives it (empty when absent). A hint only: clients writing
    /// the tag fallback do not all set it to the manifest's own type.
    pub artifact_type: String,
    /// The annotations the index gives it.
    pub annotations: BTreeMap<String, String>,
}

/// The referrers of a subject and where they were found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referrers {
    /// Where they came from.
    pub source: ReferrersSource,
    /// The referrers, in the index's order, at most [`MAX_REFERRERS`]; entries that are not
    /// valid descriptors are skipped.
    pub referrers: Vec<Referrer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIndex {
    #[serde(default)]
    manifests: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// Parses a referrers index body.
///
/// # Errors
/// [`Error::Protocol`] when the body is not a JSON object with a `manifests` list.
pub(crate) fn parse_referrers(body: &[u8]) -> Result<Vec<Referrer>, Error> {
    let index: RawIndex = serde_json::from_slice(body)
        .map_err(|e| Error::protocol(format!("invalid referrers index: {e}")))?;
    Ok(index
        .manifests
        .into_iter()
        .filter_map(|e| {
            Some(Referrer {
                media_type: e.media_type,
                digest: e.digest.parse().ok()?,
                size: u64::try_from(e.size).ok()?,
                artifact_type: e.artifact_type.unwrap_or_default(),
                annotations: e.annotations.unwrap_or_default(),
            })
        })
        .take(MAX_REFERRERS)
        .collect())
}

/// The tag of the referrers-tag fallback for `digest`: `<alg>-<hex>`.
pub fn referrers_tag(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm().as_str(), digest.hex())
}

impl Client {
    /// The referrers of `repo@digest`: from the referrers API (with `?artifactType=` when
    /// `artifact_type` is given; the registry may ignore it, so callers filter again), else,
    /// when the API answers 404, from the `<alg>-<hex>` fallback tag (unfiltered), else none.
    ///
    /// # Errors
    ///
    /// [`Error::Unauthorized`], [`Error::Protocol`] for a malformed index, and the transport
    /// categories. A missing API and a missing fallback tag are not errors.
    pub async fn referrers(
        &self,
        repo: &Repository,
        digest: &Digest,
        artifact_type: Option<&str>,
        cred: &Credential,
    ) -> Result<Referrers, Error> {
        let what = format!("referrers of {repo}@{digest}");
        self.bounded(&what, async {
            let mut path = format!("/v2/{}/referrers/{digest}", repo.repository());
            if let Some(t) = artifact_type {
                path.push_str("?artifactType=");
                path.push_str(
                    &url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>(),
                );
            }
            let sent = self
                .request(
                    Request::pull(
                        RequestKind::ManifestGet,
                        Method::GET,
                        repo,
                        cred,
                        Target::Path(path),
                    )
                    .accept(&[OCI_INDEX]),
                )
                .await;
            let api = match sent {
                Ok((resp, url)) => match check(resp, &Method::GET, &url).await {
                    Ok(resp) => Some(read_body(resp, MAX_MANIFEST_SIZE, &Method::GET, &url).await?),
                    Err(Error::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            };
            if let Some(body) = api {
                return Ok(Referrers {
                    source: ReferrersSource::Api,
                    referrers: parse_referrers(&body)?,
                });
            }
            match self.get_manifest(repo, &referrers_tag(digest), cred).await {
                Ok((body, _)) => Ok(Referrers {
                    source: ReferrersSource::Tag,
                    referrers: parse_referrers(&body)?,
                }),
                Err(Error::NotFound { .. }) => Ok(Referrers {
                    source: ReferrersSource::None,
                    referrers: Vec::new(),
                }),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// The bytes of the manifest at `digest`, as they are (an index is not resolved), bounded
    /// and verified against the digest; for callers that read fields the manifest model does
    /// not keep (`artifactType`, `subject`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Unauthorized`], [`Error::DigestMismatch`], and the
    /// transport categories.
    pub async fn manifest_bytes(
        &self,
        repo: &Repository,
        digest: &Digest,
        cred: &Credential,
    ) -> Result<Vec<u8>, Error> {
        let what = format!("fetch manifest {repo}@{digest}");
        self.bounded(&what, async {
            let (body, _) = self.manifest_by_digest(repo, digest, cred).await?;
            Ok(body)
        })
        .await
    }
    /// Like [`Client::manifest_bytes`], with the media type the registry gave it
    /// (`Content-Type`), as a descriptor of the manifest names it.
    ///
    /// # Errors
    ///
    /// As [`Client::manifest_bytes`].
    pub async fn manifest_with_type(
        &self,
        repo: &Repository,
        digest: &Digest,
        cred: &Credential,
    ) -> Result<(Vec<u8>, Option<String>), Error> {
        let what = format!("fetch manifest {repo}@{digest}");
        self.bounded(&what, self.manifest_by_digest(repo, digest, cred))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn the_fallback_tag_is_derived_from_the_digest() {
        let d: Digest = D.parse().unwrap();
        assert_eq!(referrers_tag(&d), format!("sha256-{}", &D[7..]));
    }

    #[test]
    fn entries_are_kept_in_order_and_bad_ones_skipped() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
              {{"mediaType":"m","digest":"{D}","size":3,"artifactType":"a","annotations":{{"k":"v"}}}},
              {{"digest":"nope","size":1}},
              {{"digest":"{D}","size":-1}},
              {{"digest":"{D}"}}]}}"#
        );
        let r = parse_referrers(body.as_bytes()).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (
                r[0].media_type.as_str(),
                r[0].size,
                r[0].artifact_type.as_str()
            ),
            ("m", 3, "a")
        );
        assert_eq!(r[0].annotations.get("k").map(String::as_str), Some("v"));
        assert_eq!((r[1].size, r[1].artifact_type.as_str()), (0, ""));
        assert!(parse_referrers(br#"{}"#).unwrap().is_empty());
    }

    #[test]
    fn hostile_indexes_fail_or_are_bounded_without_panicking() {
        for bad in [
            "",
            "null",
            "{\"manifests\":7}",
            "{\"manifests\":[7]}",
            "\u{0}",
        ] {
            assert!(parse_referrers(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let entry = format!(r#"{{"digest":"{D}","size":1}}"#);
        let many = format!(
            r#"{{"manifests":[{}]}}"#,
            vec![entry; MAX_REFERRERS * 2].join(",")
        );
        assert_eq!(
            parse_referrers(many.as_bytes()).unwrap().len(),
            MAX_REFERRERS
        );
    }

    mod properties {
        use super::super::parse_referrers;
        use crate::mutation::{config, mutated};
        use proptest::prelude::*;

        const INDEXES: &[&str] = &[
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":887,"digest":"sha256:444008604d32bb292ca8efa8b3918dd0e762cc3d6873dc8245e02ff9b9b698be","artifactType":"application/vnd.oci.empty.v1+json","annotations":{"a":"b"}}]}"#,
        ];

        proptest! {
            #![proptest_config(config())]

            /// A mutated referrers index (API answer or fallback tag) is read or refused.
            #[test]
            fn mutated_indexes_never_panic(bytes in mutated(INDEXES)) {
                let _ = parse_referrers(&bytes);
            }
        }
    }
}
