//! Tag listings held to bounds: one page held at a time, at most [`MAX_TAG_LIST_BYTES`] of
//! bodies and [`MAX_TAGS`] tags across pages, decoded straight into the tag vector (no JSON
//! tree). The pagination itself (`Link`, revisited pages) is `Client::list_tags_paged`'s.

use reqwest::header::HeaderMap;
use reqwest::{Method, Response};
use url::Url;

use super::client::Client;
use super::counters::RequestKind;
use super::error::{Error, redact_url};
use super::keychain::Credential;
use super::reference::Repository;
use super::request::{Request, Target};
use super::response::{check, request_error};
use crate::body::BodyError;

/// Flux's page size for tag listings.
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// The most pages one tag listing follows. At Flux's page size that is ten million tags, far
/// past [`MAX_TAGS`]; it only stops a registry that hands out endless empty pages.
pub const MAX_TAG_PAGES: usize = 10_000;
/// The most body bytes one tag listing reads, all pages together. A tag is at most 128
/// characters, so this holds [`MAX_TAGS`] tags of ~160 bytes of JSON each; real listings of
/// 100,000 tags are a few MiB. It keeps a hostile registry (one 20 MiB page, or endless pages)
/// far inside the Deployment's 256 MiB memory limit: only one page is held at a time.
pub const MAX_TAG_LIST_BYTES: usize = 32 << 20;
/// The most tags one listing returns. The largest public repositories hold tens of thousands
/// of tags; 200,000 is well above them and still a few tens of MiB of strings.
pub const MAX_TAGS: usize = 200_000;
/// Reads one tag-list page, charging its bytes to `budget` (what is left of
/// [`MAX_TAG_LIST_BYTES`]); past it, the listing fails naming the bound.
pub(super) async fn read_tag_page(
    resp: Response,
    budget: &mut usize,
    url: &Url,
) -> Result<Vec<u8>, Error> {
    crate::body::read_bounded(resp, budget)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => Error::protocol(format!(
                "GET {}: tag list larger than {MAX_TAG_LIST_BYTES} bytes (the limit of one \
                 listing, all pages together)",
                redact_url(url)
            )),
            BodyError::Read(e) => request_error(e, &Method::GET, url),
        })
}

/// Appends the `tags` of one tag-list page to `tags`, decoding straight into it (no JSON tree),
/// and fails once it would hold more than [`MAX_TAGS`].
pub(super) fn parse_tag_page(body: &[u8], tags: &mut Vec<String>) -> Result<(), serde_json::Error> {
    use serde::de::DeserializeSeed as _;
    let mut de = serde_json::Deserializer::from_slice(body);
    TagPage(tags).deserialize(&mut de)?;
    de.end()
}

/// A tag-list page (`{"name": .., "tags": [..]}`), decoded into the vector it holds.
struct TagPage<'a>(&'a mut Vec<String>);

impl<'de> serde::de::DeserializeSeed<'de> for TagPage<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TagPage<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a tag list object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "tags" {
                map.next_value_seed(TagList(&mut *self.0))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The `tags` array (or `null`) of a page.
struct TagList<'a>(&'a mut Vec<String>);

impl<'de> serde::de::DeserializeSeed<'de> for TagList<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for TagList<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of tags or null")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(tag) = seq.next_element::<String>()? {
            if self.0.len() >= MAX_TAGS {
                return Err(serde::de::Error::custom("too many tags"));
            }
            self.0.push(tag);
        }
        Ok(())
    }
}

impl Client {
    /// All tags of `repo`, following `Link` pagination with Flux's page size (1000).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown repository, [`Error::Unauthorized`], and the
    /// transport categories.
    pub async fn list_tags(
        &self,
        repo: &Repository,
        cred: &Credential,
    ) -> Result<Vec<String>, Error> {
        self.list_tags_paged(repo, cred, DEFAULT_PAGE_SIZE).await
    }

    /// All tags of `repo`, asking for `page_size` tags per page (`n=`).
    ///
    /// # Errors
    ///
    /// As [`Client::list_tags`]; [`Error::Protocol`] when a `Link` leaves the registry or a page
    /// is malformed.
    pub async fn list_tags_paged(
        &self,
        repo: &Repository,
        cred: &Credential,
        page_size: usize,
    ) -> Result<Vec<String>, Error> {
        let what = format!("list tags of {repo}");
        self.bounded(&what, async {
            let mut target = Target::Path(format!(
                "/v2/{}/tags/list?n={}",
                repo.repository(),
                page_size.max(1)
            ));
            let mut tags = Vec::new();
            let mut budget = MAX_TAG_LIST_BYTES;
            let mut seen = std::collections::HashSet::new();
            for _ in 0..MAX_TAG_PAGES {
                let (resp, url) = self
                    .request(
                        Request::pull(RequestKind::Tags, Method::GET, repo, cred, target)
                            .accept(&["application/json"]),
                    )
                    .await?;
                seen.insert(url.to_string());
                let resp = check(resp, &Method::GET, &url).await?;
                let next = next_link(resp.headers());
                let body = read_tag_page(resp, &mut budget, &url).await?;
                parse_tag_page(&body, &mut tags).map_err(|e| {
                    let why = if tags.len() >= MAX_TAGS {
                        format!("more than {MAX_TAGS} tags (the limit of one listing)")
                    } else if e.is_data() {
                        // serde's type errors quote the offending value: keep it out.
                        "invalid tag list".to_string()
                    } else {
                        format!("invalid tag list: {e}")
                    };
                    Error::protocol(format!("GET {}: {why}", redact_url(&url)))
                })?;
                drop(body);
                let Some(next) = next else {
                    return Ok(tags);
                };
                let next = url.join(&next).map_err(|_| {
                    Error::protocol(format!("GET {}: invalid Link header", redact_url(&url)))
                })?;
                if next.origin() != url.origin() {
                    return Err(Error::protocol(format!(
                        "GET {}: tag list pagination leaves the registry",
                        redact_url(&url)
                    )));
                }
                if next == url {
                    return Ok(tags);
                }
                if seen.contains(next.as_str()) {
                    return Err(Error::protocol(format!(
                        "GET {}: tag list pagination loops back to a page already read",
                        redact_url(&url)
                    )));
                }
                target = Target::Url(next);
            }
            Err(Error::protocol(format!(
                "{what}: more than {MAX_TAG_PAGES} pages (the limit of one listing)"
            )))
        })
        .await
    }
}

/// The `rel="next"` target of a `Link` header.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for link in value.split(',') {
            let Some((target, params)) = link.trim().split_once('>') else {
                continue;
            };
            let Some(target) = target.trim().strip_prefix('<') else {
                continue;
            };
            let is_next = params.split(';').any(|p| {
                let p = p.trim();
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            if is_next {
                return Some(target.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_yield_the_next_page() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            reqwest::header::HeaderValue::from_static(
                r#"</v2/a/tags/list?last=b&n=2>; rel="next""#,
            ),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/v2/a/tags/list?last=b&n=2"));
        h.insert(
            reqwest::header::LINK,
            reqwest::header::HeaderValue::from_static(r#"</x>; rel="prev", </y>; rel=next"#),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/y"));
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::mutation::{config, mutated_text};

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn mutated_link_headers_never_panic(link in mutated_text(&[
            r#"</v2/a/tags/list?n=100&last=b>; rel="next""#,
            r#"<https://other.example.com/v2/a/tags/list?last=c>; rel=next, <x>; rel="prev""#,
        ])) {
            if let Ok(value) = reqwest::header::HeaderValue::from_str(&link) {
                let mut headers = HeaderMap::new();
                headers.insert("link", value);
                let _ = next_link(&headers);
            }
        }

        /// A tag-list page is decoded or refused.
        #[test]
        fn mutated_tag_pages_never_panic(body in crate::mutation::mutated(&[
            r#"{"name":"a/b","tags":["1.0.0","latest"]}"#,
        ])) {
            let mut tags = vec![];
            let _ = parse_tag_page(&body, &mut tags);
        }
    }
}
