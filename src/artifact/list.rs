//! `ocisource list artifacts`: the tags of a repository with each one's digest, source and
//! revision (`flux list artifacts`).
//!
//! Tags are sorted in descending byte order; cosign's helper tags (`.sig`, `.att`, `.sbom`
//! suffixes) are dropped; `--filter-semver` keeps tags that parse as versions (Flux's strict
//! parse, optional `v`) and satisfy the Masterminds constraint ([`crate::core::semver`]);
//! `--filter-regex` keeps tags a Go regular expression matches somewhere. Each kept tag's
//! manifest is read once: its digest is the SHA-256 of the bytes, source and revision are its
//! `org.opencontainers.image.*` annotations.
//!
//! The table is what flux's `tablewriter` settings print: upper-case headers, every cell padded
//! to its column's width and followed by a tab (the header's last cell by a space). `-o json` and
//! `-o yaml` are additions (flux 2.6 prints only the table), with fluxcd/pkg's `Metadata` field
//! names.

use clap::{Args, Subcommand, ValueEnum};

use crate::core::semver::{Constraints, compile_go_regexp, parse_tag};

use super::Error;
use super::connect::RegistryArgs;
use super::error::GoRegexError;
use super::image::{REVISION_ANNOTATION, SOURCE_ANNOTATION};
use super::output::{json_object, yaml_mapping};
use super::reference::{OCI_PREFIX, parse_repository, redact_oci_url};

/// `ocisource list …` subcommands.
#[derive(Subcommand, Clone, Debug)]
pub enum ListCommand {
    /// List the artifacts of a repository: tags, digests, sources and revisions (as `flux list
    /// artifacts`).
    #[command(after_help = super::examples::LIST)]
    Artifacts(ListArgs),
}

/// How `list artifacts` prints.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListFormat {
    /// Flux's table.
    #[default]
    Table,
    /// A JSON array of `{source_url, source_revision, digest, url}`.
    Json,
    /// The same as YAML.
    Yaml,
}

/// The flags of `ocisource list artifacts`, named as `flux list artifacts`'s.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ListArgs {
    /// The repository, `oci://<host>/<repository>`.
    #[arg(value_name = "URL")]
    pub url: String,

    /// Keep only tags that are versions satisfying this semver constraint.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub filter_semver: String,

    /// Keep only tags this (Go) regular expression matches.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub filter_regex: String,

    /// How to print the list.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: ListFormat,

    /// The registry flags.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl ListArgs {
    /// The flags for listing `url`, everything else at its default.
    pub fn new(url: &str) -> ListArgs {
        ListArgs {
            url: url.to_string(),
            filter_semver: String::new(),
            filter_regex: String::new(),
            output: ListFormat::Table,
            registry: RegistryArgs::default(),
        }
    }
}

/// One listed artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// `<repository as given>:<tag>`.
    pub url: String,
    /// The manifest digest.
    pub digest: String,
    /// `org.opencontainers.image.source` (empty when absent).
    pub source: String,
    /// `org.opencontainers.image.revision` (empty when absent).
    pub revision: String,
}

/// Runs `ocisource list artifacts`, printing on stdout.
///
/// # Errors
///
/// As [`list_artifacts`].
pub async fn run(args: &ListArgs) -> Result<(), Error> {
    let listed = list_artifacts(args).await?;
    print!("{}", render(&listed, args.output));
    Ok(())
}

/// Lists the artifacts of `args.url` (see the module docs for the order and filters).
///
/// # Errors
///
/// [`Error::InvalidUrl`], [`Error::InvalidSemver`], [`Error::InvalidRegex`], credential and
/// client errors, [`Error::ListTags`] and [`Error::FetchManifest`].
pub async fn list_artifacts(args: &ListArgs) -> Result<Vec<Listed>, Error> {
    let repo = parse_repository(&args.url).map_err(|source| Error::InvalidUrl {
        url: redact_oci_url(&args.url),
        source,
    })?;
    let cred = args.registry.credential(&repo).await?;
    let client = args.registry.client()?;
    let mut tags = client
        .list_tags(&repo, &cred)
        .await
        .map_err(|source| Error::ListTags { source })?;
    tags.sort_by(|a, b| b.cmp(a));

    let constraint = if args.filter_semver.is_empty() {
        None
    } else {
        Some(Constraints::parse(&args.filter_semver).map_err(Error::InvalidSemver)?)
    };
    let regex = if args.filter_regex.is_empty() {
        None
    } else {
        Some(
            compile_go_regexp(&args.filter_regex).map_err(|source| Error::InvalidRegex {
                expression: args.filter_regex.clone(),
                source: GoRegexError { source },
            })?,
        )
    };

    let base = redact_oci_url(&args.url);
    let base = base.strip_prefix(OCI_PREFIX).unwrap_or(&base).to_string();
    let mut listed = Vec::new();
    for tag in tags {
        if is_cosign_artifact(&tag) {
            continue;
        }
        if let Some(c) = &constraint
            && !parse_tag(&tag).is_some_and(|v| c.matches(&v))
        {
            continue;
        }
        if let Some(re) = &regex
            && !re.is_match(tag.as_bytes())
        {
            continue;
        }
        let manifest = client
            .raw_manifest(&repo, &tag, &cred)
            .await
            .map_err(|source| Error::FetchManifest { source })?;
        let annotations = serde_json::from_slice::<serde_json::Value>(&manifest.bytes)
            .ok()
            .and_then(|v| v.get("annotations").cloned());
        let annotation = |key: &str| {
            annotations
                .as_ref()
                .and_then(|a| a.get(key))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        listed.push(Listed {
            url: format!("{base}:{tag}"),
            digest: manifest.digest.to_string(),
            source: annotation(SOURCE_ANNOTATION),
            revision: annotation(REVISION_ANNOTATION),
        });
    }
    Ok(listed)
}

/// Cosign's helper tags: attestations, SBOMs and signatures.
fn is_cosign_artifact(tag: &str) -> bool {
    [".att", ".sbom", ".sig"].iter().any(|s| tag.ends_with(s))
}

/// The list printed as `format` asks.
pub fn render(listed: &[Listed], format: ListFormat) -> String {
    let fields = |l: &Listed| {
        [
            ("source_url", l.source.clone()),
            ("source_revision", l.revision.clone()),
            ("digest", l.digest.clone()),
            ("url", l.url.clone()),
        ]
    };
    match format {
        ListFormat::Table => table(
            &["ARTIFACT", "DIGEST", "SOURCE", "REVISION"],
            &listed
                .iter()
                .map(|l| {
                    vec![
                        l.url.clone(),
                        l.digest.clone(),
                        l.source.clone(),
                        l.revision.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
        ListFormat::Json => {
            if listed.is_empty() {
                return "[]\n".to_string();
            }
            let items: Vec<String> = listed
                .iter()
                .map(|l| {
                    let f = fields(l);
                    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    format!("  {}", json_object(&f, 1))
                })
                .collect();
            format!("[\n{}\n]\n", items.join(",\n"))
        }
        ListFormat::Yaml => {
            if listed.is_empty() {
                return "[]\n".to_string();
            }
            listed
                .iter()
                .map(|l| {
                    let f = fields(l);
                    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    yaml_mapping(&f, "- ", "  ")
                })
                .collect()
        }
    }
}

/// Flux's table: cells padded to the column width, each followed by a tab, the header's last
/// cell by a space.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
    let mut out = String::new();
    for (i, (h, w)) in header.iter().zip(&widths).enumerate() {
        out.push_str(&pad(h, *w));
        out.push(if i + 1 == header.len() { ' ' } else { '\t' });
    }
    out.push('\n');
    for row in rows {
        for (cell, w) in row.iter().zip(&widths) {
            out.push_str(&pad(cell, *w));
            out.push('\t');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(tag: &str) -> Listed {
        Listed {
            url: format!("r.example/app:{tag}"),
            digest: "sha256:00".into(),
            source: "https://x".into(),
            revision: "1.0".into(),
        }
    }

    #[test]
    fn cosign_helper_tags_are_recognised() {
        for t in ["sha256-ab.sig", "x.att", "y.sbom"] {
            assert!(is_cosign_artifact(t), "{t}");
        }
        for t in ["v1", "sig", "x.sign"] {
            assert!(!is_cosign_artifact(t), "{t}");
        }
    }

    #[test]
    fn json_and_yaml_carry_fluxcd_pkgs_metadata_names() {
        let l = [item("v1"), item("v2")];
        let json: serde_json::Value =
            serde_json::from_str(&render(&l, ListFormat::Json)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json[1]["url"], "r.example/app:v2");
        assert_eq!(json[0]["source_revision"], "1.0");
        assert_eq!(
            render(&l[..1], ListFormat::Yaml),
            "- digest: sha256:00\n  source_revision: \"1.0\"\n  source_url: https://x\n  url: r.example/app:v1\n"
        );
        assert_eq!(render(&[], ListFormat::Json), "[]\n");
        assert_eq!(render(&[], ListFormat::Yaml), "[]\n");
    }
}
