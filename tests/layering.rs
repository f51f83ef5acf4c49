//! The layering rule of ARCHITECTURE.md, checked on the source: kube's client and runtime (the
//! only ways to talk to an API server) are used under `src/k8s/` and in `src/main.rs` only. The
//! core, the registry, storage, standalone mode and the rest may use kube's types (`kube::core`,
//! `CustomResource`, `ResourceExt`), never its IO.

use std::path::{Path, PathBuf};

/// Names under `kube::` that do IO or drive it.
const FORBIDDEN: &[&str] = &[
    "Client", "Api", "Config", "client", "runtime", "api", "config",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (doc comments included), so that prose may name anything.
fn code_of(source: &str) -> String {
    source
        .lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every name imported or used right below `kube::`, including those of grouped imports
/// (`use kube::{Api, api::Patch}` gives `Api` and `api`).
fn kube_names(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("kube::") {
        let preceded_by_ident = rest[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[i + "kube::".len()..];
        if preceded_by_ident {
            continue;
        }
        let tail = rest.trim_start();
        if let Some(group) = tail.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(group.len(), |(j, _)| j);
            // Only the first segment of each top-level item of the group.
            let mut level = 0;
            let mut item_start = true;
            let mut current = String::new();
            for c in group[..end].chars() {
                match c {
                    '{' => level += 1,
                    '}' => level -= 1,
                    ',' if level == 0 => {
                        item_start = true;
                        if !current.is_empty() {
                            names.push(std::mem::take(&mut current));
                        }
                        continue;
                    }
                    _ => {}
                }
                if item_start && level == 0 {
                    if c.is_alphanumeric() || c == '_' {
                        current.push(c);
                    } else if !current.is_empty() {
                        item_start = false;
                        names.push(std::mem::take(&mut current));
                    }
                }
            }
            if !current.is_empty() {
                names.push(current);
            }
        } else {
            let name: String = tail
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.push(name);
        }
    }
    names
}

#[test]
fn kube_io_is_used_only_under_src_k8s() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut offences = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel.starts_with("src/k8s/") || rel == "src/main.rs" {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for name in kube_names(&code) {
            if FORBIDDEN.contains(&name.as_str()) {
                offences.push(format!("{rel}: kube::{name}"));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "kube's client or runtime used outside src/k8s/ (ARCHITECTURE.md, Invariants):\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_scanner_sees_single_grouped_and_nested_imports() {
    let code = code_of(
        "use kube::Client;\nuse kube::{\n    Api, ResourceExt,\n    api::{Patch, PatchParams},\n};\n\
         // kube::runtime in a comment is prose\nlet x = kube::runtime::watcher();\n\
         use mykube::Api;\nuse kube::core::crd::merge_crds;",
    );
    assert_eq!(
        kube_names(&code),
        ["Client", "Api", "ResourceExt", "api", "runtime", "core"]
    );
}
