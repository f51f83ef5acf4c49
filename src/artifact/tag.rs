//! `ocisource tag artifact`: more tags for an artifact in its repository (`flux tag
//! artifact`), the manifest copied byte for byte as `crane tag` copies it, so every tag names
//! the same digest.
//!
//! The manifest is read once (by digest when the URL names one, its digest checked) and put
//! under each `--tag` in turn; an index is copied as an index. `--insecure-registry` and the
//! TLS flags are additions (flux 2.6 `tag artifact` has neither).

use clap::{Args, Subcommand};

use crate::registry::{self, Digest};

use super::Error;
use super::connect::RegistryArgs;
use super::flags::split_csv;
use super::reference::Reference;

/// `ocisource tag …` subcommands.
#[derive(Subcommand, Clone, Debug)]
pub enum TagCommand {
    /// Tag an artifact with more tags (as `flux tag artifact`).
    #[command(after_help = super::examples::TAG)]
    Artifact(TagArgs),
}

/// The flags of `ocisource tag artifact`, named as `flux tag artifact`'s.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct TagArgs {
    /// The artifact, `oci://<host>/<repository>[:<tag>|@<digest>]`.
    #[arg(value_name = "URL")]
    pub url: String,

    /// A tag name (comma-separated, repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,

    /// The registry flags.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl TagArgs {
    /// The flags for tagging `url` with `tags`, everything else at its default.
    pub fn new(url: &str, tags: &[&str]) -> TagArgs {
        TagArgs {
            url: url.to_string(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            registry: RegistryArgs::default(),
        }
    }
}

/// Runs `ocisource tag artifact`, reporting on stderr as flux does.
///
/// # Errors
///
/// As [`tag_artifact`].
pub async fn run(args: &TagArgs) -> Result<(), Error> {
    let tags = tags_of(args)?;
    eprintln!("► tagging artifact");
    tag_with(args, &tags, |name| eprintln!("✔ artifact tagged as {name}")).await?;
    Ok(())
}

/// Puts the manifest `args.url` names under each of `args.tags`; the names tagged
/// (`<repository>:<tag>`) and the digest they all point to.
///
/// # Errors
///
/// [`Error::MissingFlag`] without a tag, [`Error::InvalidUrl`], [`Error::InvalidTag`], credential
/// and client errors, and [`Error::Tag`] when the manifest cannot be read or put.
pub async fn tag_artifact(args: &TagArgs) -> Result<(Vec<String>, Digest), Error> {
    let tags = tags_of(args)?;
    tag_with(args, &tags, |_| {}).await
}

/// The `--tag` values, each a CSV record as pflag's `StringSlice` reads it, each a valid tag.
fn tags_of(args: &TagArgs) -> Result<Vec<String>, Error> {
    let mut tags = Vec::new();
    for value in &args.tags {
        let fields = split_csv(value).map_err(|reason| Error::InvalidTag {
            tag: value.clone(),
            source: registry::Error::InvalidReference {
                message: reason.to_string(),
            },
        })?;
        for tag in fields {
            registry::check_tag(&tag).map_err(|source| Error::InvalidTag {
                tag: tag.clone(),
                source,
            })?;
            tags.push(tag);
        }
    }
    if tags.is_empty() {
        return Err(Error::MissingFlag { flag: "--tag" });
    }
    Ok(tags)
}

async fn tag_with(
    args: &TagArgs,
    tags: &[String],
    mut tagged: impl FnMut(&str),
) -> Result<(Vec<String>, Digest), Error> {
    let remote = args.registry.remote(&args.url).await?;
    let (repo, client, cred) = (&remote.repo, &remote.client, &remote.cred);
    let reference = match &remote.reference {
        Reference::Tag(t) => t.clone(),
        Reference::Digest(d) => d.to_string(),
    };
    let manifest = client
        .raw_manifest(repo, &reference, cred)
        .await
        .map_err(|source| Error::Tag { source })?;
    let mut names = Vec::new();
    for tag in tags {
        client
            .push_manifest(
                repo,
                tag,
                &manifest.media_type,
                manifest.bytes.clone().into(),
                cred,
            )
            .await
            .map_err(|source| Error::Tag { source })?;
        let name = format!("{repo}:{tag}");
        tagged(&name);
        names.push(name);
    }
    Ok((names, manifest.digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_csv_records_checked_before_any_request() {
        let mut a = TagArgs::new("oci://127.0.0.1:9/app:v1", &["a,b", "c"]);
        assert_eq!(
            tags_of(&a).unwrap_or_else(|e| panic!("{e}")),
            vec!["a", "b", "c"]
        );
        a.tags = vec![];
        assert_eq!(
            tags_of(&a).err().map(|e| e.to_string()),
            Some("--tag is required".into())
        );
        a.tags = vec!["ok,bad/tag".into()];
        assert_eq!(
            tags_of(&a).err().map(|e| e.to_string()),
            Some("invalid tag \"bad/tag\"".into())
        );
    }
}
