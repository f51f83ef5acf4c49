//! The command line itself: shell completion scripts, `--help` examples and `--version`, run
//! from the binary.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::process::{Command, Output};

/// The verbs a completion script must offer after `ocisource`.
const COMMANDS: &[&str] = &[
    "crds",
    "controller",
    "reconcile",
    "push",
    "pull",
    "tag",
    "list",
    "diff",
    "build",
    "verify",
    "completion",
];

fn ocisource(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ocisource"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ocisource {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What bash offers for the words `line` (the last one being completed), with `script`
/// loaded.
fn bash_completions(script: &std::path::Path, line: &[&str]) -> Vec<String> {
    let words = line
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let cword = line.len() - 1;
    let program = format!(
        "source '{}'\nCOMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE='{}'\n\
         COMP_POINT=${{#COMP_LINE}}\n_ocisource ocisource '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        line.join(" "),
        line[cword],
        line[cword.saturating_sub(1)],
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash is needed for the completion test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_bash_completion_script_parses_and_offers_every_verb_and_flag() {
    let script = ocisource(&["completion", "bash"]).stdout;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ocisource.bash");
    std::fs::write(&path, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let verbs = bash_completions(&path, &["ocisource", ""]);
    for verb in COMMANDS {
        assert!(verbs.iter().any(|v| v == verb), "{verb} not in {verbs:?}");
    }
    assert_eq!(bash_completions(&path, &["ocisource", "ver"]), ["verify"]);
    let flags = bash_completions(&path, &["ocisource", "verify", "artifact", "--"]);
    for flag in [
        "--key",
        "--trusted-root",
        "--trust-policy",
        "--registry-provider",
    ] {
        assert!(flags.iter().any(|f| f == flag), "{flag} not in {flags:?}");
    }
    let mut shells = bash_completions(&path, &["ocisource", "completion", ""]);
    shells.retain(|w| !w.starts_with('-'));
    assert_eq!(
        shells,
        ["bash", "zsh", "fish", "powershell"].map(String::from)
    );
}

#[test]
fn zsh_fish_and_powershell_scripts_name_the_verbs() {
    for (shell, marker) in [
        ("zsh", "#compdef ocisource"),
        ("fish", "complete -c ocisource"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = String::from_utf8(ocisource(&["completion", shell]).stdout).unwrap();
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for verb in COMMANDS {
            assert!(script.contains(verb), "{shell}: {verb} missing");
        }
    }
}

#[test]
fn version_names_the_commit_the_binary_was_built_from() {
    let out = String::from_utf8(ocisource(&["--version"]).stdout).unwrap();
    let commit = env!("OCISOURCE_COMMIT");
    assert_eq!(
        out,
        format!(
            "ocisource {} (commit {commit})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    // Built from a git checkout without OCISOURCE_COMMIT set: the full hash of HEAD then.
    if std::env::var_os("OCISOURCE_COMMIT").is_none() {
        let head = Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(head.status.success());
        assert_eq!(commit, String::from_utf8_lossy(&head.stdout).trim());
    }
}

#[test]
fn every_producer_verb_prints_examples_in_its_help() {
    for verb in [
        ["push", "artifact"],
        ["pull", "artifact"],
        ["tag", "artifact"],
        ["list", "artifacts"],
        ["diff", "artifact"],
        ["build", "artifact"],
        ["verify", "artifact"],
    ] {
        let help = String::from_utf8(ocisource(&[verb[0], verb[1], "--help"]).stdout).unwrap();
        let examples = help
            .split_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("{verb:?}: no examples:\n{help}"))
            .1;
        assert!(
            examples.contains(&format!("  ocisource {} {} oci://", verb[0], verb[1]))
                || examples.contains(&format!("  ocisource {} {} --path", verb[0], verb[1])),
            "{verb:?}:\n{examples}"
        );
    }
}
