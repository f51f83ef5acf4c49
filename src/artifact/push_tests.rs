use clap::Parser;

use std::time::Duration;

use super::*;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: PushCommand,
}

fn parse(args: &[&str]) -> PushArgs {
    let mut argv = vec!["push", "artifact"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("{e}"))
        .command
    {
        PushCommand::Artifact(a) => a,
    }
}

#[test]
fn the_flags_have_fluxs_names_and_defaults() {
    let a = parse(&[
        "oci://r.example/app:v1",
        "-f",
        "./deploy",
        "--source",
        "https://github.com/x/y",
        "--revision",
        "main@sha1:abc",
    ]);
    assert_eq!(
        a,
        PushArgs::new(
            "oci://r.example/app:v1",
            "./deploy",
            "https://github.com/x/y",
            "main@sha1:abc"
        )
    );
    assert_eq!(
        a.ignore.ignore_paths,
        vec![crate::artifact::DEFAULT_IGNORE_PATHS.to_string()]
    );
    assert_eq!(a.registry.timeout, Duration::from_secs(300));

    let a = parse(&[
        "oci://r.example/app:v1",
        "--path=x",
        "--source=s",
        "--revision=r",
        "-a",
        "k=v",
        "--annotations",
        "a=b",
        "--ignore-paths",
        "*.md,docs/",
        "--ignore-paths=!README.md",
        "--reproducible",
        "--insecure-registry",
        "--creds",
        "u:p",
        "-o",
        "yaml",
        "--timeout",
        "1m30s",
    ]);
    assert_eq!(a.annotations, vec!["k=v", "a=b"]);
    assert_eq!(a.ignore.ignore_paths, vec!["*.md,docs/", "!README.md"]);
    assert!(a.reproducible && a.registry.insecure_registry);
    assert_eq!(a.registry.creds, "u:p");
    assert_eq!(a.output, Some(OutputFormat::Yaml));
    assert_eq!(a.registry.timeout, Duration::from_secs(90));
    assert!(
        Cli::try_parse_from(["p", "artifact", "oci://r/a:b", "--cert-file", "c.pem"]).is_err(),
        "--cert-file needs --key-file"
    );
}

#[test]
fn annotations_follow_fluxs_split_on_equals_rule() {
    let m = parse_annotations(&["a=b".into(), "x=".into(), "=v".into(), "a=c".into()])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.get("a").map(String::as_str), Some("c"));
    assert_eq!(m.get("x").map(String::as_str), Some(""));
    assert_eq!(m.get("").map(String::as_str), Some("v"));
    for bad in ["novalue", "k=v=w", "url=https://x?a=b"] {
        let err = parse_annotations(&[bad.to_string()]).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some(format!(
                "invalid annotation {bad}, must be in the format key=value"
            ))
        );
    }
}

fn pushed(tag: &str) -> Pushed {
    let digest: Digest = "sha256:3b000d186626666a4b46da13a22ba461c349d0b7ba43b458cbf3943256b7c29a"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    Pushed {
        url: format!("oci://127.0.0.1:35123/test/app@{digest}"),
        repository: "127.0.0.1:35123/test/app".into(),
        tag: tag.into(),
        digest: digest.clone(),
        layer: tarball::BuiltLayer {
            digest: digest.clone(),
            size: 1,
            diff_id: digest.clone(),
            tar_size: 1,
        },
        config_digest: digest,
    }
}

#[test]
fn the_report_is_printed_as_flux_prints_it() {
    // `flux push artifact ... -o json` / `-o yaml` (v2.6.4), byte for byte.
    assert_eq!(
        pushed("v1").render(Some(OutputFormat::Json)),
        "{\n  \"url\": \"oci://127.0.0.1:35123/test/app@sha256:3b000d186626666a4b46da13a22ba461c349d0b7ba43b458cbf3943256b7c29a\",\n  \"repository\": \"127.0.0.1:35123/test/app\",\n  \"tag\": \"v1\",\n  \"digest\": \"sha256:3b000d186626666a4b46da13a22ba461c349d0b7ba43b458cbf3943256b7c29a\"\n}\n"
    );
    assert_eq!(
        pushed("v2").render(Some(OutputFormat::Yaml)),
        "digest: sha256:3b000d186626666a4b46da13a22ba461c349d0b7ba43b458cbf3943256b7c29a\nrepository: 127.0.0.1:35123/test/app\ntag: v2\nurl: oci://127.0.0.1:35123/test/app@sha256:3b000d186626666a4b46da13a22ba461c349d0b7ba43b458cbf3943256b7c29a\n"
    );
    assert_eq!(
        pushed("v1").render(None),
        "✔ artifact successfully pushed to 127.0.0.1:35123/test/app@sha256:3b000d186626666a4b46da13a22ba461c349d0b7ba43b458cbf3943256b7c29a\n"
    );
}

#[tokio::test]
async fn invalid_input_fails_before_any_network_call() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().display().to_string();
    // Port 9 (discard) on loopback: nothing listens, but nothing should be tried either.
    let base = PushArgs::new("oci://127.0.0.1:9/app:v1", &path, "s", "r");
    let err = |a: PushArgs| async move {
        match push_artifact(&a).await {
            Ok(p) => panic!("pushed {p:?}"),
            Err(e) => e.to_string(),
        }
    };
    let mut a = base.clone();
    a.source.clear();
    assert_eq!(err(a).await, "--source is required");
    let mut a = base.clone();
    a.revision.clear();
    assert_eq!(err(a).await, "--revision is required");
    let mut a = base.clone();
    a.path = dir.path().join("nope").display().to_string();
    assert!(err(a).await.starts_with("invalid path '"));
    let mut a = base.clone();
    a.url = "oci://user:secret@127.0.0.1:9/app@sha256:00".into();
    let msg = err(a).await;
    assert!(
        msg.starts_with("invalid artifact URL") && !msg.contains("secret"),
        "{msg}"
    );
    let mut a = base.clone();
    a.annotations = vec!["k=v=w".into()];
    assert_eq!(
        err(a).await,
        "invalid annotation k=v=w, must be in the format key=value"
    );
    let mut a = base.clone();
    a.ignore.ignore_paths = vec!["\"x".into()];
    assert!(err(a).await.starts_with("invalid --ignore-paths value"));
}
