//! Compile-fail tests: one per kind of broken model or argument, each with the expected message
//! (`tests/ui/*.rs` + `.stderr`). `TRYBUILD=overwrite cargo test -p flow-macros --test ui`
//! rewrites the `.stderr` files (review them).
//!
//! Run on the stable channel only (messages around ours drift on nightly), as defmt and serde do.
//!
//! trybuild compiles every case as a binary of a generated crate in
//! `<target>/tests/trybuild/flow-macros/`, so `CARGO_MANIFEST_DIR` is that directory while the
//! macro runs. The cases name their models as users do, relative to `CARGO_MANIFEST_DIR`
//! (`tests/models/…`), so this test links `tests/models` into the generated crate first.

use std::path::{Path, PathBuf};
use std::process::Command;

fn stable() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .arg("--version")
        .output()
        .map(|o| {
            let v = String::from_utf8_lossy(&o.stdout);
            !v.contains("nightly") && !v.contains("beta") && !v.contains("dev")
        })
        .unwrap_or(false)
}

/// The target directory, as trybuild finds it (`cargo metadata`).
fn target_dir(manifest: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(manifest)
        .args(["metadata", "--no-deps", "--format-version=1"])
        .output()
        .expect("cargo metadata runs");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    PathBuf::from(meta["target_directory"].as_str().expect("target_directory"))
}

#[cfg(unix)]
fn link_models() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests = target_dir(manifest).join("tests/trybuild/flow-macros/tests");
    std::fs::create_dir_all(&tests).unwrap();
    let link = tests.join("models");
    if std::fs::symlink_metadata(&link).is_ok() {
        std::fs::remove_file(&link).unwrap();
    }
    std::os::unix::fs::symlink(manifest.join("tests/models"), &link).unwrap();
}

#[cfg(unix)]
#[test]
fn ui() {
    if !stable() {
        eprintln!("skipping the compile-fail tests: not the stable channel");
        return;
    }
    link_models();
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
