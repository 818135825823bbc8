//! Embeds the sources of `flow-core` and `flow-macros` for `flow-train footprint`.
//!
//! `footprint` builds a throw-away firmware crate that bakes a model with `flow-macros`. So that
//! an installed binary (`cargo install --path flow-train`) works outside the checkout it was built
//! from, the two crates' sources are compiled into it: `$OUT_DIR/crate_sources.rs` defines
//! `CRATE_SOURCES: &[(&str, &str)]` (path inside the workspace, text). Their `Cargo.toml`s are
//! rewritten to stand alone: workspace-inherited fields resolved, dev-dependencies and targets
//! other than the library dropped. Built from a published crate (no workspace beside it), the list
//! is empty and the firmware depends on the same version of the crates from crates.io instead.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("..");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // (path inside the workspace, text) of every embedded file.
    let mut files: Vec<(String, String)> = Vec::new();
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).ok();
    if let Some(ws) = workspace.filter(|_| root.join("flow-core/src/lib.rs").exists()) {
        // Absolute paths: two checkouts that share a target directory (as `.ci/run` does) then
        // each rerun this script instead of taking the other's output as fresh.
        let root = std::fs::canonicalize(&root).unwrap();
        println!("cargo:rerun-if-changed={}", root.join("Cargo.toml").display());
        for krate in ["flow-core", "flow-macros"] {
            let dir = root.join(krate);
            println!("cargo:rerun-if-changed={}", dir.join("Cargo.toml").display());
            println!("cargo:rerun-if-changed={}", dir.join("src").display());
            let toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            files.push((format!("{krate}/Cargo.toml"), standalone_manifest(&toml, &ws)));
            let mut sources = Vec::new();
            walk(&dir.join("src"), &mut sources);
            if dir.join("build.rs").exists() {
                println!("cargo:rerun-if-changed={}", dir.join("build.rs").display());
                sources.push(dir.join("build.rs"));
            }
            sources.sort();
            for f in sources {
                let rel = f.strip_prefix(&dir).unwrap().to_string_lossy().replace('\\', "/");
                files.push((format!("{krate}/{rel}"), std::fs::read_to_string(&f).unwrap()));
            }
        }
    }
    // The texts are copied into OUT_DIR and included from there, so the generated code names no
    // path outside it.
    let mut code = String::from("/// Sources of flow-core and flow-macros (see build.rs).\npub const CRATE_SOURCES: &[(&str, &str)] = &[\n");
    for (rel, text) in files {
        let copy = out.join("embedded").join(&rel);
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        std::fs::write(&copy, text).unwrap();
        writeln!(
            code,
            "    ({rel:?}, include_str!(concat!(env!(\"OUT_DIR\"), {:?}))),",
            format!("/embedded/{rel}")
        )
        .unwrap();
    }
    code.push_str("];\n");
    std::fs::write(out.join("crate_sources.rs"), code).unwrap();
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, files);
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
}

/// `toml` with `key.workspace = true` replaced by the workspace's `[workspace.package]` value and
/// the sections a dependency does not need (dev-dependencies, tests, benches) removed.
fn standalone_manifest(toml: &str, workspace: &str) -> String {
    let ws_value = |key: &str| -> Option<String> {
        let mut in_pkg = false;
        for line in workspace.lines() {
            let t = line.trim();
            if t.starts_with('[') {
                in_pkg = t == "[workspace.package]";
            } else if in_pkg {
                if let Some((k, v)) = t.split_once('=') {
                    if k.trim() == key {
                        return Some(v.trim().to_string());
                    }
                }
            }
        }
        None
    };
    let mut out = String::new();
    let mut keep = true;
    for line in toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            keep = !(t.starts_with("[dev-dependencies")
                || t.starts_with("[[test]]")
                || t.starts_with("[[bench]]")
                || t.starts_with("[[example]]"));
        }
        if !keep {
            continue;
        }
        if let Some(key) = t.strip_suffix(".workspace = true") {
            if let Some(v) = ws_value(key) {
                writeln!(out, "{key} = {v}").unwrap();
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
