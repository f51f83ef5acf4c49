//! The producer verbs beside `push artifact` (`build`, `pull`, `tag`, `list`, `diff`) against
//! the test bed: the real registries (plain HTTP, HTTPS, mTLS, basic and bearer auth) and the
//! real flux CLI on the other side of every round trip.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::artifact::{content_dir, expected_files, files_of, gunzip, ocisource, text};
use common::registry::{Flavor, Registry, Security};
use common::tools::{self, ToolHome};

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn build_writes_the_tar_flux_build_writes() {
    // No registry is involved; a home only isolates the tools.
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let home = ToolHome::new(&reg);
    let content = content_dir();
    let ours = home.dir().join("ours.tgz");
    let flux = home.dir().join("flux.tgz");
    for extra in [
        &[][..],
        &["--ignore-paths", "*.sh,.git/", "--ignore-paths=!logo.png"][..],
    ] {
        let mut args = vec![
            "build",
            "artifact",
            "--path",
            path_str(content.path()),
            "-o",
            path_str(&ours),
        ];
        args.extend_from_slice(extra);
        let out = ocisource(&home, &args, false);
        assert!(out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr,
            format!(
                "► building artifact from {}\n✔ artifact created at {}\n",
                content.path().display(),
                ours.display()
            )
        );
        let mut cmd = home.command("flux");
        cmd.args(["build", "artifact", "--path"])
            .arg(content.path())
            .arg("-o")
            .arg(&flux)
            .args(extra);
        tools::run(&mut cmd);
        let ours_bytes = std::fs::read(&ours).unwrap();
        let flux_bytes = std::fs::read(&flux).unwrap();
        assert_eq!(gunzip(&ours_bytes), gunzip(&flux_bytes), "{extra:?}");
        assert_eq!(&ours_bytes[..10], &flux_bytes[..10], "gzip headers match");
    }

    // A single file, and flux's text for a missing path.
    let file = content.path().join("deploy.yaml");
    let out = ocisource(
        &home,
        &[
            "build",
            "artifact",
            "-p",
            path_str(&file),
            "-o",
            path_str(&ours),
        ],
        false,
    );
    assert!(out.status.success(), "{}", text(&out));
    let unpacked = tempfile::tempdir().unwrap();
    tar::Archive::new(&gunzip(&std::fs::read(&ours).unwrap())[..])
        .unpack(unpacked.path())
        .unwrap();
    assert_eq!(
        files_of(unpacked.path()),
        [("deploy.yaml".to_string(), "kind: Deployment\n".to_string())].into()
    );
    let out = ocisource(&home, &["build", "artifact", "-p", "/nonexistent"], false);
    assert!(!out.status.success());
    assert!(
        text(&out)
            .contains("invalid path '/nonexistent', must point to an existing directory or file"),
        "{}",
        text(&out)
    );
}

const SOURCE: &str = "https://github.com/example/app";
const REVISION: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";

/// `ocisource push artifact` of `path` to `repo:tag` in `home`'s registry; the digest.
fn ours_push(home: &ToolHome, repo_tag: &str, path: &Path, extra: &[&str]) -> String {
    let url = home.oci_url(repo_tag);
    let mut args = vec![
        "push",
        "artifact",
        &url,
        "--path",
        path_str(path),
        "--source",
        SOURCE,
        "-o",
        "json",
    ];
    if !extra.contains(&"--revision") {
        args.extend_from_slice(&["--revision", REVISION]);
    }
    args.extend_from_slice(extra);
    let out = ocisource(home, &args, true);
    assert!(out.status.success(), "push {repo_tag}: {}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["digest"].as_str().unwrap().to_string()
}

/// `ocisource pull artifact oci://<host>/<reference> -o <dir>` plus `extra`.
fn ours_pull(home: &ToolHome, reference: &str, dir: &Path, extra: &[&str]) -> std::process::Output {
    let url = home.oci_url(reference);
    let mut args = vec!["pull", "artifact", &url, "-o", path_str(dir)];
    args.extend_from_slice(extra);
    ocisource(home, &args, true)
}

/// mTLS flags for our binary (the tool home carries no client certificate).
fn mtls_flags(reg: &Registry) -> Vec<String> {
    match (reg.client_cert_path(), reg.client_key_path()) {
        (Some(cert), Some(key)) => vec![
            "--cert-file".into(),
            cert.display().to_string(),
            "--key-file".into(),
            key.display().to_string(),
        ],
        _ => Vec::new(),
    }
}

#[test]
fn push_then_pull_gives_back_the_files_on_every_kind_of_registry() {
    for security in [
        Security::Http,
        Security::Https,
        Security::Mtls,
        Security::Basic,
        Security::Bearer,
    ] {
        let reg = Registry::start(Flavor::Distribution, security);
        let home = ToolHome::new(&reg);
        let flags = mtls_flags(&reg);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let content = content_dir();
        let digest = ours_push(&home, "apps/web:v1", content.path(), &flags);

        for reference in ["apps/web:v1".to_string(), format!("apps/web@{digest}")] {
            let out_dir = tempfile::tempdir().unwrap();
            let out = ours_pull(&home, &reference, out_dir.path(), &flags);
            assert!(
                out.status.success(),
                "{security:?} {reference}: {}",
                text(&out)
            );
            assert_eq!(files_of(out_dir.path()), expected_files(), "{security:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&format!("✔ digest {}/apps/web@{digest}\n", reg.host())),
                "{stderr}"
            );
        }
    }
}

#[test]
fn pull_prints_what_flux_pull_prints_and_reads_what_flux_pushed() {
    let reg = Registry::start(Flavor::Distribution, Security::Basic);
    let home = ToolHome::new(&reg);
    let content = content_dir();
    let flux_digest = tools::flux_push_artifact_in(
        &home,
        "apps/web",
        "flux",
        content.path(),
        SOURCE,
        REVISION,
        &[],
    );
    let ours_dir = tempfile::tempdir().unwrap();
    let out = ours_pull(&home, "apps/web:flux", ours_dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(files_of(ours_dir.path()), expected_files());
    let flux_dir = tempfile::tempdir().unwrap();
    let mut cmd = home.command("flux");
    cmd.args(["pull", "artifact", &home.oci_url("apps/web:flux"), "-o"])
        .arg(flux_dir.path())
        .arg("--insecure-registry");
    let flux_out = tools::run(&mut cmd);
    let flux_text = String::from_utf8_lossy(&flux_out.stderr)
        .replace(path_str(flux_dir.path()), path_str(ours_dir.path()));
    assert_eq!(String::from_utf8_lossy(&out.stderr), flux_text);
    assert!(flux_text.contains(&flux_digest), "{flux_text}");
    let mode = std::fs::metadata(ours_dir.path().join("scripts/run.sh"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o755
    );

    // Wrong credentials: refused, the password never echoed, the directory untouched.
    let empty = tempfile::tempdir().unwrap();
    let url = home.oci_url("apps/web:flux");
    let out = ocisource(
        &home,
        &[
            "pull",
            "artifact",
            &url,
            "-o",
            path_str(empty.path()),
            "--creds",
            "ocisource:wrong-secret",
        ],
        true,
    );
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("UNAUTHORIZED") && !t.contains("wrong-secret"),
        "{t}"
    );
    assert!(files_of(empty.path()).is_empty());
}

/// Pushes `layer` (any bytes) as the single layer of a Flux-typed artifact `repo:tag`, with our
/// registry client and `reg`'s credentials.
fn push_raw_layer(reg: &Registry, repo: &str, tag: &str, layer: Vec<u8>) {
    use ocisource::artifact::image::{self, Blob};
    use ocisource::registry::{BlobSource, Digest, Repository};
    let (client, cred) = common::artifact::client_for(reg);
    let repo = Repository::parse(&format!("{}/{repo}", reg.host())).unwrap();
    let layer_blob = Blob {
        media_type: image::CONTENT_MEDIA_TYPE.into(),
        digest: Digest::sha256_of(&layer),
        size: layer.len() as u64,
    };
    let config = image::config_json(&layer_blob.digest);
    let config_blob = Blob {
        media_type: image::CONFIG_MEDIA_TYPE.into(),
        digest: Digest::sha256_of(&config),
        size: config.len() as u64,
    };
    let annotations = [
        (image::SOURCE_ANNOTATION.to_string(), SOURCE.to_string()),
        (image::REVISION_ANNOTATION.to_string(), REVISION.to_string()),
    ]
    .into();
    let manifest = image::manifest_json(&config_blob, &layer_blob, &annotations);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (blob, bytes) in [(&layer_blob, layer), (&config_blob, config)] {
            client
                .push_blob(
                    &repo,
                    &blob.digest,
                    blob.size,
                    &BlobSource::Bytes(bytes.into()),
                    &cred,
                )
                .await
                .unwrap();
        }
        client
            .push_manifest(
                &repo,
                tag,
                image::MANIFEST_MEDIA_TYPE,
                manifest.into(),
                &cred,
            )
            .await
            .unwrap();
    });
}

#[test]
fn hostile_artifacts_are_refused_and_nothing_is_written_outside_the_output() {
    use common::tarball::{Tar, gzip, noise};
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let home = ToolHome::new(&reg);
    // The output sits in a parent whose other files must never change.
    let parent = tempfile::tempdir().unwrap();
    std::fs::write(parent.path().join("victim"), "keep").unwrap();
    let outside = parent.path().display().to_string();
    let absolute = format!("{outside}/absolute");
    let refused: Vec<(&str, Vec<u8>, &[&str], &str)> = vec![
        (
            "traversal",
            Tar::default()
                .file("ok.txt", b"x")
                .file("../evil", b"x")
                .gz(),
            &[],
            "invalid name",
        ),
        (
            "absolute",
            Tar::default().file(&absolute, b"x").gz(),
            &[],
            "invalid name",
        ),
        (
            "device",
            Tar::default().special(b'3', "dev").gz(),
            &[],
            "unsupported file type",
        ),
        (
            "not-gzip",
            Tar::default().file("a", b"x").tar(),
            &[],
            "requires gzip-compressed body",
        ),
        (
            "size-bomb",
            gzip(&Tar::default().file("zeros", &vec![0u8; 4 << 20]).tar()),
            &["--artifact-max-extract-size", "1048576"],
            "bigger than max archive size of 1048576 bytes",
        ),
        (
            "entry-bomb",
            (0..50)
                .fold(Tar::default(), |t, i| t.file(&format!("f{i}"), b""))
                .gz(),
            &["--artifact-max-extract-entries", "10"],
            "more than the maximum of 10 entries",
        ),
        (
            "truncated",
            {
                let mut gz = Tar::default().file("n", &noise(100_000)).gz();
                gz.truncate(gz.len() / 2);
                gz
            },
            &[],
            "failed to untar first layer",
        ),
    ];
    for (tag, layer, flags, expected) in refused {
        push_raw_layer(&reg, "apps/hostile", tag, layer);
        let out_dir = parent.path().join(format!("out-{tag}"));
        std::fs::create_dir(&out_dir).unwrap();
        let out = ours_pull(&home, &format!("apps/hostile:{tag}"), &out_dir, flags);
        let t = text(&out);
        assert!(!out.status.success(), "{tag}: {t}");
        assert!(t.contains(expected), "{tag}: {t}");
        assert!(
            std::fs::read_dir(&out_dir).unwrap().next().is_none(),
            "{tag}: the output stays empty"
        );
    }

    // Links: symlinks are skipped (and an existing symlink in the output is replaced, not
    // followed), hard links become empty files.
    let link_layer = Tar::default()
        .link(b'2', "up", "..")
        .file("up/escaped", b"x")
        .link(b'2', "pre", &outside)
        .file("pre/victim", b"overwritten")
        .link(b'1', "hard", "/etc/hostname")
        .gz();
    push_raw_layer(&reg, "apps/hostile", "links", link_layer);
    let out_dir = parent.path().join("out-links");
    std::fs::create_dir(&out_dir).unwrap();
    std::os::unix::fs::symlink(parent.path(), out_dir.join("pre")).unwrap();
    let out = ours_pull(&home, "apps/hostile:links", &out_dir, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(parent.path().join("victim")).unwrap(),
        "keep"
    );
    assert!(!parent.path().join("escaped").exists());
    assert!(!out_dir.join("pre").symlink_metadata().unwrap().is_symlink());
    assert_eq!(std::fs::read(out_dir.join("hard")).unwrap(), b"");
    let mut names: Vec<String> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("out-"))
        .collect();
    names.sort();
    assert_eq!(names, ["victim"], "nothing new beside the outputs");
}

#[test]
fn tag_puts_the_same_manifest_under_each_tag_as_flux_tag_does() {
    let reg = Registry::start(Flavor::Distribution, Security::Basic);
    let home = ToolHome::new(&reg);
    let content = content_dir();
    let digest = ours_push(&home, "apps/web:v1", content.path(), &[]);
    let url = home.oci_url("apps/web:v1");
    let out = ocisource(
        &home,
        &[
            "tag",
            "artifact",
            &url,
            "--tag",
            "stable,prod",
            "--tag",
            "latest",
        ],
        true,
    );
    assert!(out.status.success(), "{}", text(&out));
    let host = reg.host();
    let expected = format!(
        "► tagging artifact\n✔ artifact tagged as {host}/apps/web:stable\n\
         ✔ artifact tagged as {host}/apps/web:prod\n✔ artifact tagged as {host}/apps/web:latest\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), expected);
    for tag in ["stable", "prod", "latest"] {
        assert_eq!(
            tools::crane_digest(&reg, &format!("apps/web:{tag}")),
            digest
        );
    }
    // By digest too; flux reads what ours tagged.
    let by_digest = home.oci_url(&format!("apps/web@{digest}"));
    let out = ocisource(
        &home,
        &["tag", "artifact", &by_digest, "--tag", "pinned"],
        true,
    );
    assert!(out.status.success(), "{}", text(&out));
    let pulled = tempfile::tempdir().unwrap();
    let report = tools::flux_pull_artifact(&reg, "apps/web:pinned", pulled.path());
    assert!(report.contains(&digest), "{report}");
    assert_eq!(files_of(pulled.path()), expected_files());

    // flux's own tag prints the same lines.
    let mut cmd = home.command("flux");
    cmd.args([
        "tag",
        "artifact",
        &url,
        "--tag",
        "stable,prod",
        "--tag",
        "latest",
    ]);
    let flux_out = tools::run(&mut cmd);
    assert_eq!(String::from_utf8_lossy(&flux_out.stderr), expected);

    // A missing tag, an invalid tag and an unknown source tag fail with flux's words.
    let out = ocisource(&home, &["tag", "artifact", &url], true);
    assert!(text(&out).contains("--tag is required"), "{}", text(&out));
    let missing = home.oci_url("apps/web:nope");
    let out = ocisource(&home, &["tag", "artifact", &missing, "--tag", "x"], true);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("tagging artifact failed"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("MANIFEST_UNKNOWN"), "{}", text(&out));
}

#[test]
fn list_prints_flux_lists_table_with_its_order_and_filters() {
    for security in [Security::Basic, Security::Https] {
        let reg = Registry::start(Flavor::Distribution, security);
        let home = ToolHome::new(&reg);
        let content = content_dir();
        let digest = ours_push(&home, "apps/web:v1.0.0", content.path(), &[]);
        std::fs::write(content.path().join("deploy.yaml"), "kind: Service\n").unwrap();
        let other = ours_push(
            &home,
            "apps/web:v1.10.0",
            content.path(),
            &["--revision", "other"],
        );
        for tag in ["2.0.0-rc.1", "latest", "sha256-0123.sig", "v1.2", "x.att"] {
            tools::crane_tag(&reg, "apps/web:v1.0.0", tag);
        }
        let url = home.oci_url("apps/web");
        let cases: [&[&str]; 4] = [
            &[],
            &["--filter-semver", ">=1.0.0 <2.0.0"],
            &["--filter-regex", "^v1"],
            &["--filter-semver", ">=2.0.0-0", "--filter-regex", "rc"],
        ];
        for extra in cases {
            let mut args = vec!["list", "artifacts", url.as_str()];
            args.extend_from_slice(extra);
            let ours = ocisource(&home, &args, true);
            assert!(ours.status.success(), "{}", text(&ours));
            let mut cmd = home.command("flux");
            cmd.args(["list", "artifacts", &url]).args(extra);
            if home.plain_http() {
                cmd.arg("--insecure-registry");
            }
            let flux = tools::run(&mut cmd);
            assert_eq!(
                String::from_utf8_lossy(&ours.stdout),
                String::from_utf8_lossy(&flux.stdout),
                "{security:?} {extra:?}"
            );
        }

        let out = ocisource(&home, &["list", "artifacts", &url, "-o", "json"], true);
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let host = reg.host();
        let urls: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["url"].as_str().unwrap())
            .collect();
        assert_eq!(
            urls,
            [
                format!("{host}/apps/web:v1.2"),
                format!("{host}/apps/web:v1.10.0"),
                format!("{host}/apps/web:v1.0.0"),
                format!("{host}/apps/web:latest"),
                format!("{host}/apps/web:2.0.0-rc.1"),
            ]
        );
        assert_eq!(v[1]["digest"], other.as_str());
        assert_eq!(v[1]["source_revision"], "other");
        assert_eq!(v[2]["digest"], digest.as_str());
        assert_eq!(v[2]["source_url"], SOURCE);
    }
}

/// `ocisource diff artifact oci://<host>/<reference> --path <path>` plus `extra`.
fn ours_diff(
    home: &ToolHome,
    reference: &str,
    path: &Path,
    extra: &[&str],
) -> std::process::Output {
    let url = home.oci_url(reference);
    let mut args = vec!["diff", "artifact", &url, "--path", path_str(path)];
    args.extend_from_slice(extra);
    ocisource(home, &args, true)
}

#[test]
fn push_pull_diff_round_trips_show_no_difference_whoever_pushed() {
    for security in [Security::Bearer, Security::Https, Security::Mtls] {
        let reg = Registry::start(Flavor::Distribution, security);
        let home = ToolHome::new(&reg);
        let flags = mtls_flags(&reg);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let content = content_dir();
        ours_push(&home, "apps/web:v1", content.path(), &flags);

        // ours push -> ours pull: the same files; ours diff of the source: no difference.
        let pulled = tempfile::tempdir().unwrap();
        let out = ours_pull(&home, "apps/web:v1", pulled.path(), &flags);
        assert!(out.status.success(), "{security:?}: {}", text(&out));
        assert_eq!(files_of(pulled.path()), expected_files());
        let out = ours_diff(&home, "apps/web:v1", content.path(), &flags);
        assert!(out.status.success(), "{security:?}: {}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "✔ no changes detected\n"
        );
        // The pulled tree is a difference: extraction makes directories 0750 (as flux's does),
        // and directory modes are part of the tarball.
        let out = ours_diff(&home, "apps/web:v1", pulled.path(), &flags);
        assert!(!out.status.success(), "{security:?}: {}", text(&out));

        // A changed tree differs, with flux's words and a failing exit.
        std::fs::write(content.path().join("deploy.yaml"), "kind: Job\n").unwrap();
        let out = ours_diff(&home, "apps/web:v1", content.path(), &flags);
        assert!(!out.status.success());
        assert!(
            text(&out).contains("the remote artifact contents differs from the local one"),
            "{}",
            text(&out)
        );
        // The ignore rules are push's: a change in an ignored file is no change.
        std::fs::write(content.path().join("deploy.yaml"), "kind: Deployment\n").unwrap();
        std::fs::write(content.path().join("logo.png"), "new").unwrap();
        let out = ours_diff(&home, "apps/web:v1", content.path(), &flags);
        assert!(out.status.success(), "{}", text(&out));
    }
}

#[test]
fn flux_and_ocisource_read_each_others_artifacts() {
    let reg = Registry::start(Flavor::Distribution, Security::Basic);
    let home = ToolHome::new(&reg);
    let content = content_dir();

    // flux pushes; ocisource diffs (the gzip differs, the tar does not). Pulling what flux
    // pushed is `pull_prints_what_flux_pull_prints_and_reads_what_flux_pushed`.
    tools::flux_push_artifact_in(
        &home,
        "apps/web",
        "flux",
        content.path(),
        SOURCE,
        REVISION,
        &[],
    );
    let out = ours_diff(&home, "apps/web:flux", content.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let mut cmd = home.command("flux");
    cmd.args(["diff", "artifact", &home.oci_url("apps/web:flux"), "--path"])
        .arg(content.path());
    let flux = tools::run(&mut cmd);
    assert_eq!(
        String::from_utf8_lossy(&flux.stderr),
        "✔ no changes detected\n",
        "flux agrees"
    );

    // ocisource pushes; flux pulls the same files; our diff of the source sees no difference.
    ours_push(&home, "apps/web:ours", content.path(), &[]);
    let flux_pulled = tempfile::tempdir().unwrap();
    tools::flux_pull_artifact(&reg, "apps/web:ours", flux_pulled.path());
    assert_eq!(files_of(flux_pulled.path()), expected_files());
    let out = ours_diff(&home, "apps/web:ours", content.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));

    // Flux, too, sees a pulled tree as a difference (its directories are 0750), as ours does.
    let mut cmd = home.command("flux");
    cmd.args(["diff", "artifact", &home.oci_url("apps/web:flux"), "--path"])
        .arg(flux_pulled.path());
    let flux = cmd.output().unwrap();
    assert!(!flux.status.success());
    assert!(String::from_utf8_lossy(&flux.stderr).contains("differs from the local one"));
    assert!(
        !ours_diff(&home, "apps/web:flux", flux_pulled.path(), &[])
            .status
            .success()
    );
}

/// A fake `docker-credential-<name>` in a fresh directory: it logs the server it is asked for
/// to `asked.log` beside it, then runs `body` (a shell snippet with the server in `$server`).
fn fake_helper(name: &str, body: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nserver=$(cat)\necho \"$server\" >> \"{}\"\n{body}\n",
        dir.path().join("asked.log").display()
    );
    let path = dir.path().join(format!("docker-credential-{name}"));
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Our binary with `config` as the whole Docker config and `helpers` first on `PATH`.
fn ours_with_helper(
    home: &ToolHome,
    config: &serde_json::Value,
    helpers: &Path,
    args: &[&str],
) -> std::process::Output {
    let docker = tempfile::tempdir().unwrap();
    std::fs::write(docker.path().join("config.json"), config.to_string()).unwrap();
    let path = format!(
        "{}:{}",
        helpers.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = home.command_for(Path::new(env!("CARGO_BIN_EXE_ocisource")));
    cmd.args(args)
        .env("DOCKER_CONFIG", docker.path())
        .env("PATH", path)
        .stdin(std::process::Stdio::null());
    if home.plain_http() {
        cmd.arg("--insecure-registry");
    }
    cmd.output().unwrap()
}

#[test]
fn docker_credential_helpers_are_asked_for_the_registry() {
    use common::registry::{PASSWORD, USER};
    let answer = format!(
        "printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\""
    );
    let good = fake_helper("fake", &answer);
    for security in [Security::Basic, Security::Bearer] {
        let reg = Registry::start(Flavor::Distribution, security);
        let home = ToolHome::new(&reg);
        let content = content_dir();
        let url = home.oci_url("apps/web:v1");
        let push = [
            "push",
            "artifact",
            url.as_str(),
            "--path",
            path_str(content.path()),
            "--source",
            SOURCE,
            "--revision",
            REVISION,
        ];
        // credHelpers for this registry; the auths hold nothing usable.
        let config = serde_json::json!({
            "auths": {},
            "credHelpers": { reg.host(): "fake" },
        });
        let out = ours_with_helper(&home, &config, good.path(), &push);
        assert!(out.status.success(), "{security:?}: {}", text(&out));
        assert!(!text(&out).contains(PASSWORD));
        let asked = std::fs::read_to_string(good.path().join("asked.log")).unwrap();
        assert!(asked.lines().any(|l| l == reg.host()), "{asked}");

        // credsStore for every registry, read by pull and list.
        let store = serde_json::json!({ "credsStore": "fake" });
        let pulled = tempfile::tempdir().unwrap();
        let out = ours_with_helper(
            &home,
            &store,
            good.path(),
            &["pull", "artifact", &url, "-o", path_str(pulled.path())],
        );
        assert!(out.status.success(), "{security:?}: {}", text(&out));
        assert_eq!(files_of(pulled.path()), expected_files());
        let repo_url = home.oci_url("apps/web");
        let out = ours_with_helper(
            &home,
            &store,
            good.path(),
            &["list", "artifacts", &repo_url],
        );
        assert!(out.status.success(), "{security:?}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(":v1"));
    }

    let reg = Registry::start(Flavor::Distribution, Security::Basic);
    let home = ToolHome::new(&reg);
    ours_push(&home, "apps/web:v1", content_dir().path(), &[]);
    let url = home.oci_url("apps/web");
    let list = ["list", "artifacts", url.as_str(), "--timeout", "2s"];

    // "Not found": the auths are used instead.
    let none = fake_helper(
        "none",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    let auth = base64_auth(common::registry::USER, common::registry::PASSWORD);
    let config = serde_json::json!({
        "credsStore": "none",
        "auths": { reg.host(): { "auth": auth } },
    });
    let out = ours_with_helper(&home, &config, none.path(), &list);
    assert!(out.status.success(), "{}", text(&out));

    // Failing, hanging, lying and missing helpers: a failing exit, Docker's words or ours, the
    // helper's message, never a secret; a hanging helper is killed at --timeout.
    let failing = fake_helper("failing", "echo 'keychain locked'; exit 2");
    let slow = fake_helper("slow", "sleep 30");
    let wrong = fake_helper(
        "wrong",
        &format!(
            "printf '{{\"Username\":\"{}\",\"Secret\":\"not-the-secret-42\"}}'",
            common::registry::USER
        ),
    );
    let failed = format!(
        "failed to get credentials for {} from the docker credential helper: error getting credentials - err: exit status 2, out: `keychain locked`",
        reg.host()
    );
    for (store, dir, expected) in [
        ("failing", failing.path(), failed.as_str()),
        ("slow", slow.path(), "did not answer within 2s"),
        ("wrong", wrong.path(), "UNAUTHORIZED"),
        (
            "ocisource-absent",
            wrong.path(),
            "failed to run docker-credential-ocisource-absent",
        ),
    ] {
        let started = std::time::Instant::now();
        let out = ours_with_helper(
            &home,
            &serde_json::json!({ "credsStore": store }),
            dir,
            &list,
        );
        let t = text(&out);
        assert!(!out.status.success(), "{store}: {t}");
        assert!(t.contains(expected), "{store}: {t}");
        assert!(!t.contains("not-the-secret-42"), "{store}: {t}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{store}"
        );
    }
}

fn base64_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[test]
fn add_ignore_paths_extends_the_defaults_and_debug_logs_requests_without_secrets() {
    let reg = Registry::start(Flavor::Distribution, Security::Basic);
    let home = ToolHome::new(&reg);
    let content = content_dir();
    let url = home.oci_url("apps/web:v1");
    let out = ocisource(
        &home,
        &[
            "push",
            "artifact",
            &url,
            "--path",
            path_str(content.path()),
            "--source",
            SOURCE,
            "--revision",
            REVISION,
            "--add-ignore-paths",
            "scripts/,overlays/prod/",
            "--debug",
        ],
        true,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("registry request"), "{stderr}");
    assert!(stderr.contains("status=201"), "{stderr}");
    assert!(!stderr.contains(common::registry::PASSWORD), "{stderr}");
    assert!(
        !stderr.to_ascii_lowercase().contains("authorization"),
        "{stderr}"
    );
    let pulled = tempfile::tempdir().unwrap();
    let out = ours_pull(&home, "apps/web:v1", pulled.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    // The defaults still apply (.git, logo.png), plus the added patterns.
    assert_eq!(
        files_of(pulled.path()),
        [("deploy.yaml".to_string(), "kind: Deployment\n".to_string())].into()
    );
    // diff and build take it too.
    let out = ours_diff(
        &home,
        "apps/web:v1",
        content.path(),
        &[
            "--add-ignore-paths",
            "scripts/",
            "--add-ignore-paths=overlays/prod/",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !ours_diff(&home, "apps/web:v1", content.path(), &[])
            .status
            .success()
    );
}

#[test]
fn resolve_symlinks_publishes_what_the_links_point_to() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let home = ToolHome::new(&reg);
    let store = content_dir();
    let tree = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        store.path().join("deploy.yaml"),
        tree.path().join("deploy.yaml"),
    )
    .unwrap();
    std::os::unix::fs::symlink(store.path().join("overlays"), tree.path().join("overlays"))
        .unwrap();

    // Without the flag the links are skipped; with it their targets are published.
    let digest = ours_push(&home, "apps/links:v1", tree.path(), &["--resolve-symlinks"]);
    let pulled = tempfile::tempdir().unwrap();
    let out = ours_pull(&home, &format!("apps/links@{digest}"), pulled.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        files_of(pulled.path()),
        [
            ("deploy.yaml".to_string(), "kind: Deployment\n".to_string()),
            (
                "overlays/prod/kustomization.yaml".to_string(),
                "resources: []\n".to_string()
            ),
        ]
        .into()
    );
    let tgz = home.dir().join("links.tgz");
    let out = ocisource(
        &home,
        &[
            "build",
            "artifact",
            "-p",
            path_str(tree.path()),
            "-o",
            path_str(&tgz),
        ],
        false,
    );
    assert!(out.status.success(), "{}", text(&out));
    let names: Vec<String> = tar::Archive::new(&gunzip(&std::fs::read(&tgz).unwrap())[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["."], "links are skipped without --resolve-symlinks");
}

/// `s` quoted for `sh -c`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `ocisource <args>` on a pseudo-terminal (util-linux `script`): what the terminal showed.
fn on_a_terminal(home: &ToolHome, args: &[&str]) -> String {
    let script = Path::new("/usr/bin/script");
    assert!(
        script.is_file(),
        "/usr/bin/script is missing: apt-get install util-linux (bsdutils)"
    );
    let bin = env!("CARGO_BIN_EXE_ocisource");
    let line = std::iter::once(bin)
        .chain(args.iter().copied())
        .map(sh_quote)
        .collect::<Vec<_>>()
        .join(" ");
    let out = home
        .command_for(script)
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{shown}{}", text(&out));
    shown
}

#[test]
fn progress_bars_are_drawn_on_a_terminal_and_piped_output_stays_fluxs_lines() {
    let reg = Registry::start(Flavor::Distribution, Security::Http);
    let home = ToolHome::new(&reg);
    // 24 MiB that do not compress: long enough a transfer for a bar to be drawn.
    let content = tempfile::tempdir().unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..24 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(content.path().join("blob.bin"), &data).unwrap();
    let push_args = |tag: &str| {
        vec![
            "push".to_string(),
            "artifact".into(),
            home.oci_url(&format!("app:{tag}")),
            "--path".into(),
            path_str(content.path()).into(),
            "--source".into(),
            SOURCE.into(),
            "--revision".into(),
            REVISION.into(),
            "--insecure-registry".into(),
        ]
    };
    // Piped: flux's lines and nothing else (no bar, no carriage return, no escape).
    let args = push_args("piped");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ocisource(&home, &args, false);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    let pushed = stderr
        .lines()
        .nth(1)
        .and_then(|l| l.strip_prefix("✔ artifact successfully pushed to "))
        .unwrap_or_else(|| panic!("{stderr}"))
        .to_string();
    assert_eq!(
        stderr,
        format!(
            "► pushing artifact to {}/app:piped\n✔ artifact successfully pushed to {pushed}\n",
            home.host()
        )
    );
    let piped_dir = tempfile::tempdir().unwrap();
    let out = ours_pull(&home, "app:piped", piped_dir.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let flux_dir = tempfile::tempdir().unwrap();
    let mut cmd = home.command("flux");
    cmd.args(["pull", "artifact", &home.oci_url("app:piped"), "-o"])
        .arg(flux_dir.path())
        .arg("--insecure-registry");
    let flux = tools::run(&mut cmd);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&flux.stderr)
            .replace(path_str(flux_dir.path()), path_str(piped_dir.path()))
    );
    for bytes in [&out.stderr, &out.stdout] {
        assert!(!bytes.contains(&b'\r') && !bytes.contains(&0x1b));
    }

    // On a terminal: the packing, upload and download bars, then the same lines.
    let args = push_args("tty");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let shown = on_a_terminal(&home, &args);
    for part in [
        "packing layer",
        "uploading layer",
        "✔ artifact successfully pushed to ",
    ] {
        assert!(shown.contains(part), "{part:?} not shown:\n{shown:?}");
    }
    let tty_dir = tempfile::tempdir().unwrap();
    let url = home.oci_url("app:tty");
    let shown = on_a_terminal(
        &home,
        &[
            "pull",
            "artifact",
            &url,
            "-o",
            path_str(tty_dir.path()),
            "--insecure-registry",
        ],
    );
    for part in [
        "downloading layer",
        " MiB/",
        "✔ artifact content extracted to ",
    ] {
        assert!(shown.contains(part), "{part:?} not shown:\n{shown:?}");
    }
    assert_eq!(
        std::fs::read(tty_dir.path().join("blob.bin")).unwrap(),
        data
    );
}
