//! Tidy checks that keep the codebase's conventions true: every Rust file opens with a `//!`
//! line saying what it is, and crates depend only on crates below them in DESIGN.md's layering.

use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace;

/// DESIGN.md's layering: a crate may depend only on crates in a lower layer.
/// `core <- executor, queue, balance <- mapreduce <- workmill <- cli`.
const LAYERS: &[(&str, u8)] = &[
    ("workmill-core", 0),
    ("workmill-executor", 1),
    ("workmill-queue", 1),
    ("workmill-balance", 1),
    ("workmill-mapreduce", 2),
    ("workmill", 3),
    ("workmill-cli", 4),
];

/// Tooling packages that may depend on anything and that nothing depends on.
const TOOLING: &[&str] = &["xtask", "workmill-benches"];

fn layer(name: &str) -> Option<u8> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|&(_, l)| l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let root = workspace::root();
    let mut files = Vec::new();
    for dir in ["crates", "benches", "xtask"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        !files.is_empty(),
        "found no Rust files under {}",
        root.display()
    );
    let offenders: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|path| {
            path.strip_prefix(&root)
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "these files do not open with a `//!` line saying what they are:\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn crates_depend_only_on_lower_layers() {
    let metadata = workspace::metadata().expect("cargo metadata");
    let packages = workspace::packages(&metadata);
    let mut problems = Vec::new();
    for package in &packages {
        let name = package["name"].as_str().unwrap_or_default();
        if TOOLING.contains(&name) {
            continue;
        }
        let Some(own) = layer(name) else {
            problems.push(format!(
                "{name} is not in the layering; add it to LAYERS in xtask/src/tidy.rs and to DESIGN"
            ));
            continue;
        };
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            if TOOLING.contains(&dep_name) {
                problems.push(format!("{name} depends on the tooling package {dep_name}"));
            }
            // A crate may dev-depend on itself to turn its own features on for its tests;
            // that is not a dependency on another crate.
            if dep_name == name {
                continue;
            }
            if let Some(theirs) = layer(dep_name)
                && theirs >= own
            {
                problems.push(format!(
                    "{name} (layer {own}) depends on {dep_name} (layer {theirs}); dependencies must point down"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering violations:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_layering_knows_the_design() {
    assert_eq!(layer("workmill-core"), Some(0));
    assert!(layer("workmill-executor") < layer("workmill-mapreduce"));
    assert!(layer("workmill") < layer("workmill-cli"));
    assert_eq!(layer("serde"), None);
}
