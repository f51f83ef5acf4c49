//! `ocisource verify artifact`: the controller's signature verification of one artifact, for CI
//! pipelines. Not a flux verb: flux has no counterpart.
//!
//! The key material comes from files, with cosign's and notation's flag names: `--key` (PEM
//! public keys, repeatable), keyless `--certificate-identity[-regexp]` and
//! `--certificate-oidc-issuer[-regexp]` (one `matchOIDCIdentity` entry) against the Sigstore
//! trusted root of `--trusted-root`, or else of the TUF repository the controller's
//! `--sigstore-tuf-*` flags name (the public-good one by default), notation
//! `--trust-policy` with `--cert` (repeatable). The files become one in-memory verification
//! Secret, held as the standalone mode holds Secrets ([`DirSecrets`]), and the artifact is checked by
//! [`SignatureVerifier`], the controller's verifier, on the digest the reference resolves to:
//! the same layouts, rules and messages as `spec.verify`, no second implementation.
//!
//! Exit status: 0 verified, 1 not verified (any failure after the flags were accepted,
//! registry failures included), 2 for flags or material that cannot be used. The material is
//! parsed before any request, so a bad key, root, policy, certificate or identity expression
//! is a flag error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::api::v1::{
    LocalObjectReference, OciRepositoryVerification, OidcIdentityMatch, VerificationProvider,
};
use crate::cli::SigstoreArgs;
use crate::core::message;
use crate::core::ports::{Verification, Verifier, VerifyRequest};
use crate::core::verification::{
    SignatureVerifier, TRUSTED_ROOT_KEY, identity_matchers, provider_label,
};
use crate::registry::Digest;
use crate::standalone::secrets::DirSecrets;
use crate::verify::keyless::TrustedRoot;
use crate::verify::notation;
use crate::verify::tuf::SigstoreRoot;

use super::Error;
use super::connect::RegistryArgs;
use super::output::OutputFormat;
use super::reference::{OCI_PREFIX, Reference, parse_reference, redact_oci_url};

/// `ocisource verify …` subcommands.
#[derive(Subcommand, Clone, Debug)]
pub enum VerifyCommand {
    /// Verify an artifact's signature as the controller's `spec.verify` does (exit 0 verified,
    /// 1 not verified, 2 bad flags).
    #[command(after_help = super::examples::VERIFY)]
    Artifact(VerifyArgs),
}

/// The signing technology, as `spec.verify.provider`.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VerifyProvider {
    /// Cosign: public keys (`--key`) or keyless (`--trusted-root`).
    #[default]
    Cosign,
    /// Notary Project: `--trust-policy` and `--cert`.
    Notation,
}

impl From<VerifyProvider> for VerificationProvider {
    fn from(p: VerifyProvider) -> VerificationProvider {
        match p {
            VerifyProvider::Cosign => VerificationProvider::Cosign,
            VerifyProvider::Notation => VerificationProvider::Notation,
        }
    }
}

impl VerifyProvider {
    fn name(self) -> &'static str {
        match self {
            VerifyProvider::Cosign => "cosign",
            VerifyProvider::Notation => "notation",
        }
    }
}

/// The flags of `ocisource verify artifact`: the material named as cosign's and notation's
/// flags, the registry flags of the other verbs, the cloud login as `--registry-provider`
/// (`--provider` names the signing technology here).
#[derive(Args, Clone, Debug, PartialEq, Eq)]
#[command(mut_arg("provider", |a| a.long("registry-provider")))]
pub struct VerifyArgs {
    /// The artifact, `oci://<host>/<repository>[:<tag>|@<digest>]`.
    #[arg(value_name = "URL")]
    pub url: String,

    /// The signing technology (as `spec.verify.provider`).
    #[arg(long = "provider", value_enum, default_value_t)]
    pub verification_provider: VerifyProvider,

    /// Cosign: a PEM public key file (repeatable; a signature of any of them verifies).
    #[arg(long = "key", value_name = "FILE")]
    pub keys: Vec<PathBuf>,

    /// Cosign keyless: a Sigstore `trusted_root.json` (as `spec.verify.trustedRootSecretRef`);
    /// without it, keyless takes the trusted root through TUF (`--sigstore-tuf-*`).
    #[arg(long, value_name = "FILE", conflicts_with = "keys")]
    pub trusted_root: Option<PathBuf>,

    /// Cosign keyless: the signer's identity, exactly.
    #[arg(long, conflicts_with = "keys")]
    pub certificate_identity: Option<String>,

    /// Cosign keyless: a Go regular expression the signer's identity matches (unanchored).
    #[arg(long, conflicts_with_all = ["keys", "certificate_identity"])]
    pub certificate_identity_regexp: Option<String>,

    /// Cosign keyless: the OIDC issuer of the signer's certificate, exactly.
    #[arg(long, conflicts_with = "keys")]
    pub certificate_oidc_issuer: Option<String>,

    /// Cosign keyless: a Go regular expression the OIDC issuer matches (unanchored).
    #[arg(long, conflicts_with_all = ["keys", "certificate_oidc_issuer"])]
    pub certificate_oidc_issuer_regexp: Option<String>,

    /// Cosign keyless without `--trusted-root`: where the Sigstore trusted root comes from.
    #[command(flatten)]
    pub sigstore: SigstoreArgs,

    /// Notation: the `trustpolicy.json`.
    #[arg(long, value_name = "FILE")]
    pub trust_policy: Option<PathBuf>,

    /// Notation: a trusted certificate, PEM or DER (repeatable).
    #[arg(long = "cert", value_name = "FILE")]
    pub certs: Vec<PathBuf>,

    /// Print the result as JSON or YAML on stdout instead of a line on stderr.
    #[arg(long, short = 'o', value_enum)]
    pub output: Option<OutputFormat>,

    /// The registry flags.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl VerifyArgs {
    /// The flags for verifying `url` with `provider`, no material, everything else at its
    /// default.
    pub fn new(url: &str, provider: VerifyProvider) -> VerifyArgs {
        VerifyArgs {
            url: url.to_string(),
            verification_provider: provider,
            keys: Vec::new(),
            trusted_root: None,
            certificate_identity: None,
            certificate_identity_regexp: None,
            certificate_oidc_issuer: None,
            certificate_oidc_issuer_regexp: None,
            trust_policy: None,
            certs: Vec::new(),
            sigstore: SigstoreArgs {
                sigstore_tuf_mirror: crate::verify::tuf::DEFAULT_MIRROR.to_string(),
                sigstore_tuf_root: None,
                sigstore_tuf_cache: None,
            },
            output: None,
            registry: RegistryArgs::default(),
        }
    }
}

/// What `verify artifact` concluded, as `-o json|yaml` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The artifact URL as given, without credentials.
    pub reference: String,
    /// The digest verified (empty when the reference could not be resolved).
    pub digest: String,
    /// `cosign` or `notation`.
    pub provider: String,
    /// Whether a trusted signature was found.
    pub verified: bool,
    /// The controller's `SourceVerified` message: what verified, or why not.
    pub message: String,
}

impl Report {
    /// The report in `format`.
    pub fn render(&self, format: OutputFormat) -> String {
        match format {
            // Serializing a struct of strings and a bool cannot fail.
            OutputFormat::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            OutputFormat::Yaml => serde_saphyr::to_string(self).unwrap_or_default(),
        }
    }
}

// The verification Secret the files become; the names only appear in messages the checks
// below keep from happening (a missing Secret or entry).
const NAMESPACE: &str = "ocisource";
const SECRET: &str = "verify";
const TRUSTED_ROOT_SECRET: &str = "trusted-root";

/// The verification material read from the files: the `spec.verify` it amounts to and the
/// Secrets it names.
#[derive(Debug)]
struct Material {
    spec: OciRepositoryVerification,
    secrets: DirSecrets,
}

/// Runs `ocisource verify artifact`: the report on stdout with `-o`, else a line on stderr.
///
/// # Errors
///
/// As [`verify_artifact`]: unusable flags only (exit status 2).
pub async fn run(args: &VerifyArgs) -> Result<Report, Error> {
    let prepared = Prepared::new(args)?;
    if args.output.is_none() {
        let shown = redact_oci_url(&args.url);
        eprintln!(
            "► verifying artifact {} with {}",
            shown.strip_prefix(OCI_PREFIX).unwrap_or(&shown),
            args.verification_provider.name()
        );
    }
    let report = prepared.verify(args).await;
    match args.output {
        Some(format) => {
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(report.render(format).as_bytes());
        }
        None if report.verified => eprintln!("✔ {}", report.message),
        None => eprintln!("✗ {}", report.message),
    }
    Ok(report)
}

/// Verifies the signature of `args.url` with the material of the flags, through the
/// controller's verifier.
///
/// # Errors
///
/// Only for unusable flags or material: [`Error::VerifyFlags`], [`Error::ReadMaterial`],
/// [`Error::InvalidMaterial`], [`Error::InvalidUrl`], [`Error::ReadTlsFile`],
/// [`Error::Client`]. A verification that fails (unsigned, another signer, an unreachable
/// registry) is a [`Report`] with `verified: false`.
pub async fn verify_artifact(args: &VerifyArgs) -> Result<Report, Error> {
    Ok(Prepared::new(args)?.verify(args).await)
}

/// What the flags give before any request: the material, the artifact and the client.
struct Prepared {
    material: Material,
    public_root: SigstoreRoot,
    repo: crate::registry::Repository,
    reference: Reference,
    client: crate::registry::Client,
}

impl Prepared {
    fn new(args: &VerifyArgs) -> Result<Prepared, Error> {
        let material = material(args)?;
        let (repo, reference) = parse_reference(&args.url).map_err(|source| Error::InvalidUrl {
            url: redact_oci_url(&args.url),
            source,
        })?;
        let client = args.registry.client()?;
        // Loaded on the first keyless verification without --trusted-root, never otherwise.
        let settings = args
            .sigstore
            .tuf_settings()
            .map_err(|e| Error::ReadMaterial {
                path: e.path,
                source: e.source,
            })?;
        let public_root = SigstoreRoot::new(&settings).map_err(|reason| {
            flags(format!(
                "--sigstore-tuf-mirror {}: {reason}",
                args.sigstore.sigstore_tuf_mirror
            ))
        })?;
        Ok(Prepared {
            material,
            public_root,
            repo,
            reference,
            client,
        })
    }

    async fn verify(self, args: &VerifyArgs) -> Report {
        let Prepared {
            material,
            public_root,
            repo,
            reference,
            client,
        } = self;
        let mut report = Report {
            reference: redact_oci_url(&args.url),
            digest: String::new(),
            provider: args.verification_provider.name().to_string(),
            verified: false,
            message: String::new(),
        };
        let failed = |report: Report, e: &Error| Report {
            message: message::render_for_url(e, &args.url),
            ..report
        };
        let cred = match args.registry.credential(&repo).await {
            Ok(cred) => cred,
            Err(e) => return failed(report, &e),
        };
        let digest = match &reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(tag) => match client.resolve_digest(&repo, tag, &cred).await {
                Ok(d) => d,
                Err(source) => {
                    let e = Error::Resolve {
                        url: format!("{repo}{reference}"),
                        source,
                    };
                    return failed(report, &e);
                }
            },
        };
        report.digest = digest.to_string();
        let request = VerifyRequest {
            namespace: NAMESPACE,
            spec: &material.spec,
            repository: &repo,
            digest: &digest,
            client: &client,
            credential: &cred,
        };
        match SignatureVerifier::new(&material.secrets, &public_root)
            .verify(request)
            .await
        {
            Verification::Verified => {
                report.verified = true;
                report.message = format!(
                    "verified signature of revision {}",
                    revision(&reference, &digest)
                );
            }
            Verification::Ignored => {
                report.message = format!(
                    "the trust policy does not enforce verification of {repo}@{digest} (level \
                     skip, or a failure it only logs): the controller serves it without \
                     SourceVerified"
                );
            }
            Verification::Failed(source) => {
                let e = crate::core::error::Error::Verify {
                    provider: provider_label(&material.spec).to_string(),
                    source,
                };
                report.message = message::render_for_url(&e, &args.url);
            }
        }
        report
    }
}

/// The revision the controller records: `<tag>@<digest>`, or the digest alone.
fn revision(reference: &Reference, digest: &Digest) -> String {
    match reference {
        Reference::Tag(tag) => format!("{tag}@{digest}"),
        Reference::Digest(_) => digest.to_string(),
    }
}

fn flags(reason: impl Into<String>) -> Error {
    Error::VerifyFlags {
        reason: reason.into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::ReadMaterial {
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(path: &Path, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::InvalidMaterial {
        path: path.to_path_buf(),
        source: source.into(),
    }
}

/// The material of the flags, checked as the verifier will read it.
fn material(args: &VerifyArgs) -> Result<Material, Error> {
    let keyless = [
        (
            args.certificate_identity.is_some(),
            "--certificate-identity",
        ),
        (
            args.certificate_identity_regexp.is_some(),
            "--certificate-identity-regexp",
        ),
        (
            args.certificate_oidc_issuer.is_some(),
            "--certificate-oidc-issuer",
        ),
        (
            args.certificate_oidc_issuer_regexp.is_some(),
            "--certificate-oidc-issuer-regexp",
        ),
    ];
    match args.verification_provider {
        VerifyProvider::Cosign => {
            if let Some(flag) = [
                (args.trust_policy.is_some(), "--trust-policy"),
                (!args.certs.is_empty(), "--cert"),
            ]
            .into_iter()
            .find_map(|(set, flag)| set.then_some(flag))
            {
                return Err(flags(format!("{flag} is a notation flag")));
            }
            if !args.keys.is_empty() {
                key_material(&args.keys)
            } else if args.trusted_root.is_some() || keyless.iter().any(|(set, _)| *set) {
                keyless_material(args, args.trusted_root.as_deref())
            } else {
                Err(flags(
                    "cosign needs --key, or --certificate-identity[-regexp] and \
                     --certificate-oidc-issuer[-regexp] for keyless verification",
                ))
            }
        }
        VerifyProvider::Notation => {
            if let Some(flag) = [
                (!args.keys.is_empty(), "--key"),
                (args.trusted_root.is_some(), "--trusted-root"),
            ]
            .into_iter()
            .chain(keyless)
            .find_map(|(set, flag)| set.then_some(flag))
            {
                return Err(flags(format!("{flag} is a cosign flag")));
            }
            let Some(policy) = &args.trust_policy else {
                return Err(flags("notation needs --trust-policy"));
            };
            notation_material(policy, &args.certs)
        }
    }
}

fn spec(provider: VerificationProvider, secret: Option<&str>) -> OciRepositoryVerification {
    OciRepositoryVerification {
        provider,
        secret_ref: secret.map(|name| LocalObjectReference {
            name: name.to_string(),
        }),
        match_oidc_identity: None,
        trusted_root_secret_ref: None,
    }
}

fn key_material(keys: &[PathBuf]) -> Result<Material, Error> {
    let mut data = BTreeMap::new();
    for (i, path) in keys.iter().enumerate() {
        let pem = read(path)?;
        crate::verify::PublicKey::from_pem(&pem).map_err(|e| invalid(path, e))?;
        // Entry names keep the flags' order (the verifier reads keys in entry-name order).
        data.insert(format!("key-{i:04}.pub"), ByteString(pem));
    }
    Ok(Material {
        spec: spec(VerificationProvider::Cosign, Some(SECRET)),
        secrets: file_secrets(SECRET, data),
    })
}

/// Keyless material: the identity flags and, with `--trusted-root`, its root as a trusted root
/// Secret; without, the spec names no Secret and the verifier takes the TUF root.
fn keyless_material(args: &VerifyArgs, root: Option<&Path>) -> Result<Material, Error> {
    let subject = match (
        &args.certificate_identity,
        &args.certificate_identity_regexp,
    ) {
        (Some(exact), _) => anchored(exact),
        (None, Some(expr)) => expr.clone(),
        (None, None) => {
            return Err(flags(
                "keyless verification needs --certificate-identity or \
                 --certificate-identity-regexp",
            ));
        }
    };
    let issuer = match (
        &args.certificate_oidc_issuer,
        &args.certificate_oidc_issuer_regexp,
    ) {
        (Some(exact), _) => anchored(exact),
        (None, Some(expr)) => expr.clone(),
        (None, None) => {
            return Err(flags(
                "keyless verification needs --certificate-oidc-issuer or \
                 --certificate-oidc-issuer-regexp",
            ));
        }
    };
    let identities = vec![OidcIdentityMatch { issuer, subject }];
    identity_matchers(&identities).map_err(|e| flags(message::render(&e)))?;
    let mut spec = spec(VerificationProvider::Cosign, None);
    spec.match_oidc_identity = Some(identities);
    let Some(root) = root else {
        return Ok(Material {
            spec,
            secrets: file_secrets(TRUSTED_ROOT_SECRET, BTreeMap::new()),
        });
    };
    let json = read(root)?;
    TrustedRoot::from_json(&json).map_err(|e| invalid(root, e))?;
    spec.trusted_root_secret_ref = Some(LocalObjectReference {
        name: TRUSTED_ROOT_SECRET.to_string(),
    });
    let data = BTreeMap::from([(TRUSTED_ROOT_KEY.to_string(), ByteString(json))]);
    Ok(Material {
        spec,
        secrets: file_secrets(TRUSTED_ROOT_SECRET, data),
    })
}

fn notation_material(policy: &Path, certs: &[PathBuf]) -> Result<Material, Error> {
    if certs.is_empty() {
        return Err(flags("notation needs at least one --cert"));
    }
    let mut data = BTreeMap::new();
    for (i, path) in certs.iter().enumerate() {
        let name = format!("cert-{i:04}.crt");
        let cert = BTreeMap::from([(name.clone(), ByteString(read(path)?))]);
        if let Some(store) = notation::x509::TrustStore::from_secret(&cert) {
            store
                .certificates(&path.display().to_string())
                .map_err(|e| invalid(path, e))?;
        }
        data.extend(cert);
    }
    data.insert(
        notation::TRUST_POLICY_KEY.to_string(),
        ByteString(read(policy)?),
    );
    notation::material(NAMESPACE, SECRET, &data).map_err(|e| invalid(policy, e))?;
    Ok(Material {
        spec: spec(VerificationProvider::Notation, Some(SECRET)),
        secrets: file_secrets(SECRET, data),
    })
}

/// `s` as a Go regular expression matching exactly `s` (`regexp.QuoteMeta`, anchored), for the
/// exact-match flags of cosign.
fn anchored(s: &str) -> String {
    let mut out = String::from("^");
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('$');
    out
}

/// The verification Secret `name` in [`NAMESPACE`] holding `data`, as the standalone mode's
/// store of Secrets (no service accounts, no tokens).
fn file_secrets(name: &str, data: BTreeMap<String, ByteString>) -> DirSecrets {
    let mut secrets = DirSecrets::default();
    secrets.insert_secret(Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(NAMESPACE.to_string()),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..Secret::default()
    });
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("{e}"));
        p
    }

    fn flag_error(args: &VerifyArgs) -> String {
        match material(args) {
            Ok(m) => panic!("accepted: {m:?}"),
            Err(e) => message::render(&e),
        }
    }

    #[test]
    fn exact_identities_are_quoted_and_anchored_as_go_quote_meta_does() {
        assert_eq!(
            anchored("https://github.com/o/r/.github/workflows/a.yml@refs/heads/main"),
            "^https://github\\.com/o/r/\\.github/workflows/a\\.yml@refs/heads/main$"
        );
        assert_eq!(
            anchored("a+b(c)[d]{e}|f^g$h\\i*?"),
            "^a\\+b\\(c\\)\\[d\\]\\{e\\}\\|f\\^g\\$h\\\\i\\*\\?$"
        );
        let re = crate::core::semver::compile_go_regexp(&anchored("x.y+z@example.com"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(re.is_match(b"x.y+z@example.com"));
        assert!(!re.is_match(b"xzy+z@example.com"));
        assert!(!re.is_match(b"ax.y+z@example.com"));
    }

    #[test]
    fn flags_of_the_other_provider_and_missing_material_are_refused_before_any_request() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = "oci://127.0.0.1:9/app:v1";
        let cosign = VerifyArgs::new(url, VerifyProvider::Cosign);
        assert!(flag_error(&cosign).starts_with("cosign needs --key, or --certificate-identity"));
        let mut a = cosign.clone();
        a.certs = vec![dir.path().join("c.crt")];
        a.keys = vec![dir.path().join("k.pub")];
        assert_eq!(flag_error(&a), "--cert is a notation flag");

        let mut a = VerifyArgs::new(url, VerifyProvider::Notation);
        assert_eq!(flag_error(&a), "notation needs --trust-policy");
        a.certificate_identity = Some("x".into());
        assert_eq!(flag_error(&a), "--certificate-identity is a cosign flag");
        a.certificate_identity = None;
        a.trust_policy = Some(write(dir.path(), "p.json", b"{}"));
        assert_eq!(flag_error(&a), "notation needs at least one --cert");

        let missing = dir.path().join("nope.pub");
        let mut a = cosign.clone();
        a.keys = vec![missing.clone()];
        assert!(
            flag_error(&a).starts_with(&format!(
                "failed to read verification material {}",
                missing.display()
            )),
            "{}",
            flag_error(&a)
        );
        a.keys = vec![write(dir.path(), "bad.pub", b"junk")];
        assert!(
            flag_error(&a).starts_with(&format!(
                "invalid verification material {}: ",
                dir.path().join("bad.pub").display()
            )),
            "{}",
            flag_error(&a)
        );
    }

    #[test]
    fn keyless_needs_an_identity_and_an_issuer_that_compile() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = write(
            dir.path(),
            "trusted_root.json",
            include_bytes!("../verify/keyless/testdata/trusted_root.json"),
        );
        let mut a = VerifyArgs::new("oci://127.0.0.1:9/app:v1", VerifyProvider::Cosign);
        a.trusted_root = Some(root);
        assert!(flag_error(&a).starts_with("keyless verification needs --certificate-identity"));
        a.certificate_identity_regexp = Some("[".into());
        assert!(flag_error(&a).starts_with("keyless verification needs --certificate-oidc-issuer"));
        a.certificate_oidc_issuer = Some("https://issuer.example".into());
        assert_eq!(
            flag_error(&a),
            "failed to compile matchOIDCIdentity subject regexp \"[\": error parsing regexp: \
             missing closing ]: `[`"
        );
        a.certificate_identity_regexp = Some("@example\\.com$".into());
        let m = material(&a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.spec.match_oidc_identity,
            Some(vec![OidcIdentityMatch {
                issuer: "^https://issuer\\.example$".into(),
                subject: "@example\\.com$".into(),
            }])
        );
        assert_eq!(provider_label(&m.spec), "cosign keyless");
        assert!(m.spec.trusted_root_secret_ref.is_some());

        // Without --trusted-root the spec names no root Secret: the verifier takes TUF's.
        a.trusted_root = None;
        let m = material(&a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.spec.trusted_root_secret_ref, None);
        assert_eq!(m.spec.secret_ref, None);
        assert_eq!(provider_label(&m.spec), "cosign keyless");
    }

    #[test]
    fn reports_print_as_json_and_yaml() {
        let r = Report {
            reference: "oci://r.example/app:v1".into(),
            digest: "sha256:00".into(),
            provider: "cosign".into(),
            verified: true,
            message: "verified signature of revision v1@sha256:00".into(),
        };
        let json: serde_json::Value =
            serde_json::from_str(&r.render(OutputFormat::Json)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json["verified"], true);
        assert_eq!(json["digest"], "sha256:00");
        let yaml = r.render(OutputFormat::Yaml);
        assert!(yaml.contains("verified: true\n"), "{yaml}");
        assert!(yaml.contains("provider: cosign\n"), "{yaml}");
    }
}
