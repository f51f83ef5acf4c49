//! The pinned artifact-producer tools of the test bed (built by `testbed/install-tools.sh`), run
//! the way a user would run them against a test registry.
//!
//! Every run gets its own HOME, DOCKER_CONFIG, XDG and Helm/Sigstore directories in a temp dir,
//! the registry's Docker config (credentials) and its CA (`SSL_CERT_FILE`, which all these Go
//! tools honour), and the tool's own plain-HTTP flag when the registry speaks HTTP. Registry
//! credentials reach flux, cosign and crane through the Docker config, helm and notation through
//! their flags. For mTLS registries only helm and cosign get the client certificate: flux push,
//! crane and the notation signer have no such option. Each wrapper panics with the command line,
//! stdout and stderr when the tool fails. Everything runs offline (checked with strace: every
//! connect goes to 127.0.0.1). [`flux_cluster`] runs the flux CLI against a test-bed control
//! plane instead, as a user inspects and reconciles objects.
//!
//! `notation` is not the Notary Project CLI (its module is not served by the Go proxy here) but a
//! minimal signer on the CLI's own library, notation-go v1.3.2: see `testbed/go/notation/main.go`.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::bin;
use super::registry::Registry;

/// What the tools need to know about a registry. Built by [`endpoint`], the only code here that
/// depends on the registry helper's API.
struct Endpoint {
    host: String,
    plain_http: bool,
    ca_pem: Option<String>,
    credentials: Option<(String, String)>,
    /// Client certificate and key files, for mTLS registries.
    client_cert: Option<(PathBuf, PathBuf)>,
    docker_config_json: String,
}

fn endpoint(reg: &Registry) -> Endpoint {
    Endpoint {
        host: reg.host(),
        plain_http: reg.insecure(),
        ca_pem: reg.ca_pem(),
        credentials: reg.credentials(),
        client_cert: reg.client_cert_path().zip(reg.client_key_path()),
        docker_config_json: reg.docker_config_json(),
    }
}

/// An isolated home for tool runs against one registry. Kept alive as long as the returned
/// value; key files made inside it by [`ToolHome::dir`] users survive until then.
pub struct ToolHome {
    dir: tempfile::TempDir,
    ep: Endpoint,
}

impl ToolHome {
    /// A fresh home holding `reg`'s Docker config (`.docker/config.json`) and CA (`ca.pem`).
    pub fn new(reg: &Registry) -> ToolHome {
        let ep = endpoint(reg);
        let dir = tempfile::Builder::new()
            .prefix("ocisource-tools-")
            .tempdir()
            .expect("create a tool home");
        let docker = dir.path().join(".docker");
        std::fs::create_dir_all(&docker).expect("create DOCKER_CONFIG");
        std::fs::write(docker.join("config.json"), &ep.docker_config_json)
            .expect("write docker config");
        if let Some(ca) = &ep.ca_pem {
            std::fs::write(dir.path().join("ca.pem"), ca).expect("write CA");
        }
        ToolHome { dir, ep }
    }

    /// The home directory itself (a scratch place for keys, charts, pulled files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's `host:port`.
    pub fn host(&self) -> &str {
        &self.ep.host
    }

    /// Whether the registry speaks plain HTTP.
    pub fn plain_http(&self) -> bool {
        self.ep.plain_http
    }

    /// The CA file trusted by the tools, when the registry uses TLS.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ep
            .ca_pem
            .as_ref()
            .map(|_| self.dir.path().join("ca.pem"))
    }

    /// A command for test-bed component `tool` with the isolated environment.
    pub fn command(&self, tool: &str) -> Command {
        self.command_for(&bin(tool))
    }

    /// A command for the program at `program` with the isolated environment.
    pub fn command_for(&self, program: &Path) -> Command {
        let home = self.dir.path();
        let mut cmd = Command::new(program);
        cmd.current_dir(home)
            .env("HOME", home)
            .env("DOCKER_CONFIG", home.join(".docker"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            // Helm keeps registry logins apart from Docker's; same file format.
            .env("HELM_REGISTRY_CONFIG", home.join(".docker/config.json"))
            .env("TUF_ROOT", home.join(".sigstore"))
            .env("KUBECONFIG", home.join(".kube/config"))
            .env("NO_COLOR", "1");
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "SSL_CERT_DIR",
            "NOTATION_USERNAME",
            "NOTATION_PASSWORD",
            "COSIGN_PASSWORD",
            "COSIGN_REPOSITORY",
        ] {
            cmd.env_remove(var);
        }
        match self.ca_file() {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        cmd
    }

    /// `oci://host/repo[:tag|@digest]` as the flux CLI spells references.
    pub fn oci_url(&self, reference: &str) -> String {
        format!("oci://{}/{}", self.ep.host, reference)
    }
}

/// Runs `cmd`, panicking with everything useful when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to start {}: {e}", describe(cmd)));
    if !out.status.success() {
        panic!(
            "{} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let _ = write!(s, " {}", a.to_string_lossy());
    }
    s
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stdout and stderr together: several tools report on stderr.
fn all_output(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// flux

/// `flux push artifact oci://<host>/<repo>:<tag> --path <path> --source <source> --revision
/// <revision> -o json` plus `extra_args` (e.g. `--annotations k=v`, `--reproducible`); returns
/// the pushed manifest digest. Credentials come from the Docker config, as flux's keychain does.
pub fn flux_push_artifact(
    reg: &Registry,
    repo: &str,
    tag: &str,
    path: &Path,
    source: &str,
    revision: &str,
    extra_args: &[&str],
) -> String {
    let home = ToolHome::new(reg);
    flux_push_artifact_in(&home, repo, tag, path, source, revision, extra_args)
}

/// [`flux_push_artifact`] of a directory holding one file, `name` with `text`; the digest.
pub fn flux_push_file(
    reg: &Registry,
    repo: &str,
    tag: &str,
    (name, text): (&str, &str),
    source: &str,
    revision: &str,
) -> String {
    let content = tempfile::tempdir().unwrap();
    std::fs::write(content.path().join(name), text).unwrap();
    flux_push_artifact(reg, repo, tag, content.path(), source, revision, &[])
}

/// [`flux_push_artifact`] within an existing [`ToolHome`].
pub fn flux_push_artifact_in(
    home: &ToolHome,
    repo: &str,
    tag: &str,
    path: &Path,
    source: &str,
    revision: &str,
    extra_args: &[&str],
) -> String {
    let mut cmd = home.command("flux");
    cmd.args(["push", "artifact"])
        .arg(home.oci_url(&format!("{repo}:{tag}")))
        .arg("--path")
        .arg(path)
        .args([
            "--source",
            source,
            "--revision",
            revision,
            "--output",
            "json",
        ])
        .args(extra_args);
    if home.plain_http() {
        cmd.arg("--insecure-registry");
    }
    let out = run(&mut cmd);
    let text = stdout(&out);
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("flux push printed no JSON ({e}):\n{}", all_output(&out)));
    v["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no digest in flux push output: {v}"))
        .to_string()
}

/// `flux pull artifact oci://<host>/<reference> --output <out_dir>` (`reference` is
/// `repo:tag` or `repo@digest`); returns the CLI's report (source, revision, digest).
pub fn flux_pull_artifact(reg: &Registry, reference: &str, out_dir: &Path) -> String {
    let home = ToolHome::new(reg);
    std::fs::create_dir_all(out_dir).expect("create flux pull output dir");
    let mut cmd = home.command("flux");
    cmd.args(["pull", "artifact"])
        .arg(home.oci_url(reference))
        .arg("--output")
        .arg(out_dir);
    if home.plain_http() {
        cmd.arg("--insecure-registry");
    }
    all_output(&run(&mut cmd))
}

/// `flux <args> --kubeconfig <kubeconfig>`: the flux CLI as a user runs it against a cluster,
/// with its own HOME; returns stdout and stderr together (flux reports progress on stderr).
pub fn flux_cluster<I, S>(kubeconfig: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let home = tempfile::Builder::new()
        .prefix("ocisource-flux-")
        .tempdir()
        .expect("create a flux home");
    let mut cmd = Command::new(bin("flux"));
    cmd.args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("XDG_CACHE_HOME", home.path().join(".cache"))
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG");
    all_output(&run(&mut cmd))
}

// ---------------------------------------------------------------------------------------------
// helm

/// Writes a minimal valid chart (`Chart.yaml`, `values.yaml`, one ConfigMap template) into
/// `<parent>/<name>` and returns its directory.
pub fn write_minimal_chart(parent: &Path, name: &str, version: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(dir.join("templates")).expect("create chart dir");
    std::fs::write(
        dir.join("Chart.yaml"),
        format!(
            "apiVersion: v2\nname: {name}\ndescription: ocisource test chart\n\
             type: application\nversion: {version}\nappVersion: \"1.0.0\"\n"
        ),
    )
    .expect("write Chart.yaml");
    std::fs::write(dir.join("values.yaml"), "greeting: hello\n").expect("write values.yaml");
    std::fs::write(
        dir.join("templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\n\
         data:\n  greeting: {{ .Values.greeting | quote }}\n",
    )
    .expect("write template");
    dir
}

/// A chart pushed by `helm push`.
#[derive(Debug, Clone)]
pub struct PushedChart {
    /// Chart name (last repository path element).
    pub name: String,
    /// Chart version (the tag, with `+` as `_`).
    pub version: String,
    /// Repository path inside the registry: `<prefix>/<name>`.
    pub repository: String,
    /// Manifest digest.
    pub digest: String,
}

/// `helm package <chart_dir>` then `helm push <tgz> oci://<host>/<prefix>`.
pub fn helm_package_and_push(reg: &Registry, chart_dir: &Path, prefix: &str) -> PushedChart {
    let home = ToolHome::new(reg);
    let pkg_dir = home.dir().join("packages");
    std::fs::create_dir_all(&pkg_dir).expect("create package dir");
    let out = run(home
        .command("helm")
        .arg("package")
        .arg(chart_dir)
        .arg("--destination")
        .arg(&pkg_dir));
    let text = all_output(&out);
    let tgz = text
        .lines()
        .find_map(|l| l.split("saved it to: ").nth(1))
        .map(|p| PathBuf::from(p.trim()))
        .unwrap_or_else(|| panic!("helm package did not say where it saved the chart:\n{text}"));

    let mut cmd = home.command("helm");
    cmd.arg("push")
        .arg(&tgz)
        .arg(format!("oci://{}/{prefix}", home.host()));
    if home.plain_http() {
        cmd.arg("--plain-http");
    }
    if let Some(ca) = home.ca_file() {
        cmd.arg("--ca-file").arg(ca);
    }
    if let Some((user, pass)) = &home.ep.credentials {
        cmd.args(["--username", user, "--password", pass]);
    }
    if let Some((cert, key)) = &home.ep.client_cert {
        cmd.arg("--cert-file").arg(cert).arg("--key-file").arg(key);
    }
    let out = run(&mut cmd);
    let text = all_output(&out);
    // "Pushed: host/prefix/name:version" and "Digest: sha256:..."
    let pushed = field(&text, "Pushed:");
    let digest = field(&text, "Digest:");
    let (path, version) = pushed
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("unexpected helm push output:\n{text}"));
    let repository = path
        .strip_prefix(&format!("{}/", home.host()))
        .unwrap_or(path)
        .to_string();
    let name = repository
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    PushedChart {
        name,
        version: version.to_string(),
        repository,
        digest,
    }
}

fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no `{label}` in tool output:\n{text}"))
}

// ---------------------------------------------------------------------------------------------
// cosign

/// Password of the test cosign keys (cosign encrypts private keys).
pub const COSIGN_PASSWORD: &str = "ocisource-test";

/// A cosign key pair on disk.
#[derive(Debug, Clone)]
pub struct CosignKeys {
    /// Encrypted private key (`cosign.key`), password [`COSIGN_PASSWORD`].
    pub private_key: PathBuf,
    /// PEM public key (`cosign.pub`), what a Flux verification Secret holds.
    pub public_key: PathBuf,
}

/// `cosign generate-key-pair` in `dir` (made if missing).
pub fn cosign_generate_key_pair(dir: &Path) -> CosignKeys {
    std::fs::create_dir_all(dir).expect("create key dir");
    let scratch = tempfile::tempdir().expect("temp HOME");
    run(Command::new(bin("cosign"))
        .arg("generate-key-pair")
        .current_dir(dir)
        .env("HOME", scratch.path())
        .env("COSIGN_PASSWORD", COSIGN_PASSWORD));
    CosignKeys {
        private_key: dir.join("cosign.key"),
        public_key: dir.join("cosign.pub"),
    }
}

fn cosign_registry_flags(home: &ToolHome, cmd: &mut Command) {
    if home.plain_http() {
        cmd.args(["--allow-insecure-registry", "--allow-http-registry"]);
    }
    if let Some((cert, key)) = &home.ep.client_cert {
        cmd.arg("--registry-client-cert")
            .arg(cert)
            .arg("--registry-client-key")
            .arg(key);
    }
}

/// `cosign sign --key <key> --tlog-upload=false --yes <host>/<reference>`, fully offline: no
/// Fulcio, no Rekor, no TSA, no TUF; writes the `sha256-<hex>.sig` tag (cosign v2 layout).
/// `reference` should be `repo@sha256:...`.
pub fn cosign_sign_key(reg: &Registry, reference: &str, keys: &CosignKeys) -> String {
    cosign_sign(reg, reference, keys, &[])
}

/// `cosign sign --key <key> --new-bundle-format --tlog-upload=false --yes <host>/<reference>`:
/// a Sigstore bundle (DSSE envelope) stored as an OCI referrer of the digest, through the
/// referrers API when the registry has one, else in the `sha256-<hex>` fallback index.
pub fn cosign_sign_bundle(reg: &Registry, reference: &str, keys: &CosignKeys) -> String {
    cosign_sign(reg, reference, keys, &["--new-bundle-format"])
}

/// `cosign sign --key <key> <layout> --tlog-upload=false --yes <host>/<reference>`.
fn cosign_sign(reg: &Registry, reference: &str, keys: &CosignKeys, layout: &[&str]) -> String {
    let home = ToolHome::new(reg);
    let mut cmd = home.command("cosign");
    cmd.arg("sign")
        .arg("--key")
        .arg(&keys.private_key)
        .args(layout)
        .args(["--tlog-upload=false", "--yes"])
        .env("COSIGN_PASSWORD", COSIGN_PASSWORD);
    cosign_registry_flags(&home, &mut cmd);
    cmd.arg(format!("{}/{reference}", home.host()));
    all_output(&run(&mut cmd))
}

/// A private Sigstore made by `sigstore-testca init` (testbed/go/sigstore-testca): its
/// directory, whose `trusted_root.json` is what a `trustedRootSecretRef` Secret holds.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA directory.
    pub dir: PathBuf,
}

impl TestCa {
    /// `sigstore-testca init <dir>`: a new root, intermediate, Rekor and CT log keys.
    pub fn init(dir: &Path) -> TestCa {
        run(Command::new(bin("sigstore-testca")).arg("init").arg(dir));
        TestCa {
            dir: dir.to_path_buf(),
        }
    }

    /// `sigstore-testca tuf`: a TUF repository in `out` whose target is this CA's trusted
    /// root (`1.root.json` is the client's initial root); `flags` such as `--rotate`,
    /// `--expired-timestamp`, `--tamper-target`.
    pub fn tuf_repository(&self, out: &Path, flags: &[&str]) {
        run(Command::new(bin("sigstore-testca"))
            .arg("tuf")
            .arg("--ca")
            .arg(&self.dir)
            .arg("--out")
            .arg(out)
            .args(flags));
    }

    /// The CA's `trusted_root.json`.
    pub fn trusted_root(&self) -> String {
        std::fs::read_to_string(self.dir.join("trusted_root.json")).expect("trusted_root.json")
    }

    /// Signs `<host>/<reference>` (`repo@sha256:...`) keyless for `identity` of `issuer` and
    /// attaches it as cosign does: `layout` `bundle` (a Sigstore bundle referrer, cosign v3)
    /// or `sig` (the `sha256-<hex>.sig` image, cosign v2); `extra` flags such as
    /// `--tlog=set`. The signer checks every bundle with sigstore-go before attaching it.
    pub fn sign(
        &self,
        reg: &Registry,
        reference: &str,
        identity: &str,
        issuer: &str,
        layout: &str,
        extra: &[&str],
    ) {
        let home = ToolHome::new(reg);
        let mut cmd = home.command("sigstore-testca");
        cmd.arg("sign")
            .arg("--ca")
            .arg(&self.dir)
            .arg(format!("--ref={}/{reference}", home.host()))
            .arg(format!("--identity={identity}"))
            .arg(format!("--issuer={issuer}"))
            .arg(format!("--layout={layout}"))
            .args(extra);
        if home.plain_http() {
            cmd.arg("--insecure");
        }
        run(&mut cmd);
    }

    /// `cosign verify --trusted-root <this CA's> --offline` of `<host>/<reference>` with
    /// identity and issuer regexps (`--new-bundle-format` for `layout` `bundle`): cosign's
    /// output, or its error output when it refuses.
    pub fn cosign_verify(
        &self,
        reg: &Registry,
        reference: &str,
        identity_regexp: &str,
        issuer_regexp: &str,
        layout: &str,
    ) -> Result<String, String> {
        let home = ToolHome::new(reg);
        let mut cmd = home.command("cosign");
        cmd.arg("verify")
            .arg("--trusted-root")
            .arg(self.dir.join("trusted_root.json"))
            .arg("--offline")
            .arg(format!("--certificate-identity-regexp={identity_regexp}"))
            .arg(format!("--certificate-oidc-issuer-regexp={issuer_regexp}"));
        if layout == "bundle" {
            cmd.arg("--new-bundle-format");
        }
        cosign_registry_flags(&home, &mut cmd);
        cmd.arg(format!("{}/{reference}", home.host()));
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", describe(&cmd)));
        if out.status.success() {
            Ok(all_output(&out))
        } else {
            Err(all_output(&out))
        }
    }
}

/// `cosign import-key-pair --key <private_pem> --output-key-prefix <prefix>` in `dir`: an
/// existing PEM private key (RSA, ECDSA, Ed25519) turned into a cosign key pair,
/// `<prefix>.key` (encrypted with [`COSIGN_PASSWORD`]) and `<prefix>.pub`.
pub fn cosign_import_key_pair(dir: &Path, private_pem: &Path, prefix: &str) -> CosignKeys {
    std::fs::create_dir_all(dir).expect("create key dir");
    let scratch = tempfile::tempdir().expect("temp HOME");
    run(Command::new(bin("cosign"))
        .arg("import-key-pair")
        .arg("--key")
        .arg(private_pem)
        .arg("--output-key-prefix")
        .arg(prefix)
        .current_dir(dir)
        .env("HOME", scratch.path())
        .env("COSIGN_PASSWORD", COSIGN_PASSWORD));
    CosignKeys {
        private_key: dir.join(format!("{prefix}.key")),
        public_key: dir.join(format!("{prefix}.pub")),
    }
}

/// `cosign generate <host>/<reference>`: the simple-signing payload cosign would sign for
/// `reference` (`repo@sha256:...`).
pub fn cosign_generate_payload(reg: &Registry, reference: &str) -> String {
    let home = ToolHome::new(reg);
    let mut cmd = home.command("cosign");
    cmd.arg("generate");
    cosign_registry_flags(&home, &mut cmd);
    cmd.arg(format!("{}/{reference}", home.host()));
    stdout(&run(&mut cmd))
}

/// `cosign attach signature --payload <payload> --signature <base64 signature file>
/// <host>/<reference>`: a signature made elsewhere, stored in cosign's layout.
pub fn cosign_attach_signature(reg: &Registry, reference: &str, payload: &Path, signature: &Path) {
    let home = ToolHome::new(reg);
    let mut cmd = home.command("cosign");
    cmd.args(["attach", "signature", "--payload"])
        .arg(payload)
        .arg("--signature")
        .arg(signature);
    cosign_registry_flags(&home, &mut cmd);
    cmd.arg(format!("{}/{reference}", home.host()));
    run(&mut cmd);
}

/// `cosign verify --key <pub> --insecure-ignore-tlog=true --trusted-root <empty root>
/// <host>/<reference>`: ground truth for what the controller must accept. Returns cosign's JSON
/// report. Without `--trusted-root`, cosign 2.6 tries to fetch the public-good TUF root first
/// (and only warns when it cannot); an empty trusted root keeps it fully offline, and a key-based
/// check with the tlog ignored needs nothing from it.
pub fn cosign_verify_key(reg: &Registry, reference: &str, keys: &CosignKeys) -> String {
    let home = ToolHome::new(reg);
    let root = home.dir().join("trusted_root.json");
    std::fs::write(
        &root,
        r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#,
    )
    .expect("write empty trusted root");
    let mut cmd = home.command("cosign");
    cmd.arg("verify")
        .arg("--key")
        .arg(&keys.public_key)
        .args([
            "--insecure-ignore-tlog=true",
            "--output",
            "json",
            "--trusted-root",
        ])
        .arg(&root);
    cosign_registry_flags(&home, &mut cmd);
    cmd.arg(format!("{}/{reference}", home.host()));
    stdout(&run(&mut cmd))
}

// ---------------------------------------------------------------------------------------------
// notation (the minimal signer on notation-go, see the module doc)

/// A Notary Project test signing key and its self-signed certificate.
#[derive(Debug, Clone)]
pub struct NotationKey {
    /// PKCS#8 PEM RSA key.
    pub key: PathBuf,
    /// PEM certificate (self-signed, codeSigning EKU, valid one day): the trust anchor a Flux
    /// verification Secret holds.
    pub cert: PathBuf,
}

/// `notation cert generate-test --dir <dir> <name>`.
pub fn notation_generate_test_cert(dir: &Path, name: &str) -> NotationKey {
    let out = run(Command::new(bin("notation"))
        .args(["cert", "generate-test", "--dir"])
        .arg(dir)
        .arg(name));
    let text = stdout(&out);
    NotationKey {
        key: PathBuf::from(field(&text, "wrote key:")),
        cert: PathBuf::from(field(&text, "wrote certificate:")),
    }
}

/// `notation sign --signature-format <format> --key-file .. --cert-file .. <host>/<reference>`
/// (`format`: `jws` or `cose`) plus `extra_args` (e.g. `--force-referrers-tag=false` to use the
/// referrers API where the registry has it; the default, as in notation CLI v1.3, is the
/// referrers tag schema). Registry credentials go in `-u`/`-p`.
pub fn notation_sign(
    reg: &Registry,
    reference: &str,
    key: &NotationKey,
    format: &str,
    extra_args: &[&str],
) -> String {
    let home = ToolHome::new(reg);
    let mut cmd = home.command("notation");
    cmd.args(["sign", "--signature-format", format, "--key-file"])
        .arg(&key.key)
        .arg("--cert-file")
        .arg(&key.cert)
        .args(extra_args);
    notation_registry_flags(&home, &mut cmd);
    cmd.arg(format!("{}/{reference}", home.host()));
    all_output(&run(&mut cmd))
}

/// `notation verify --cert-file <cert> <host>/<reference>` with a strict trust policy for any
/// registry scope and identity: ground truth from notation-go itself.
pub fn notation_verify(reg: &Registry, reference: &str, cert: &Path) -> String {
    let home = ToolHome::new(reg);
    let mut cmd = home.command("notation");
    cmd.args(["verify", "--cert-file"]).arg(cert);
    notation_registry_flags(&home, &mut cmd);
    cmd.arg(format!("{}/{reference}", home.host()));
    all_output(&run(&mut cmd))
}

fn notation_registry_flags(home: &ToolHome, cmd: &mut Command) {
    if home.plain_http() {
        cmd.arg("--insecure-registry");
    }
    if let Some((user, pass)) = &home.ep.credentials {
        cmd.args(["-u", user, "-p", pass]);
    }
}

// ---------------------------------------------------------------------------------------------
// crane

/// Runs `crane <args>` (with `--insecure` for plain HTTP) and returns stdout.
pub fn crane<I, S>(reg: &Registry, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let home = ToolHome::new(reg);
    let mut cmd = home.command("crane");
    cmd.args(args);
    if home.plain_http() {
        cmd.arg("--insecure");
    }
    stdout(&run(&mut cmd))
}

/// `crane digest <host>/<reference>`.
pub fn crane_digest(reg: &Registry, reference: &str) -> String {
    crane(reg, ["digest", &format!("{}/{reference}", reg.host())])
        .trim()
        .to_string()
}

/// `crane manifest <host>/<reference>`: the raw manifest.
pub fn crane_manifest(reg: &Registry, reference: &str) -> String {
    crane(reg, ["manifest", &format!("{}/{reference}", reg.host())])
}

/// `crane ls <host>/<repo>`: the repository's tags.
pub fn crane_ls(reg: &Registry, repo: &str) -> Vec<String> {
    crane(reg, ["ls", &format!("{}/{repo}", reg.host())])
        .lines()
        .map(str::to_string)
        .collect()
}

/// `crane tag <host>/<reference> <tag>`: registry-side retag.
pub fn crane_tag(reg: &Registry, reference: &str, tag: &str) {
    crane(reg, ["tag", &format!("{}/{reference}", reg.host()), tag]);
}
