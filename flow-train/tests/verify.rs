//! `flow-train verify`: golden vectors travel with every model; imported models also carry the
//! source library's answers; a model whose weights changed after its golden vectors were computed
//! fails.

use std::path::PathBuf;
use std::process::Command;

mod common;
use common::FIXTURES;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flow-train"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn tmp(name: &str) -> String {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verify");
    std::fs::create_dir_all(&d).unwrap();
    d.join(name).to_string_lossy().into_owned()
}

#[test]
fn every_imported_fixture_verifies_against_its_library() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    for name in FIXTURES {
        let model = tmp(&format!("{name}.flow"));
        let (ok, out) = run(&[
            "import",
            dir.join(format!("{name}.json")).to_str().unwrap(),
            "-o",
            &model,
        ]);
        assert!(ok, "{name}: {out}");
        let (ok, out) = run(&["verify", &model]);
        assert!(
            ok && out.contains("verify=ok") && out.contains("source library"),
            "{name}: {out}"
        );
        let (ok, out) = run(&["verify", &model, "--json"]);
        let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        assert!(ok && v["ok"] == true, "{name}: {out}");
        // FlowJAX's float64 parameters are stored as f64 weights, so the plain source tolerance
        // (1e-8) applies to every imported model.
        let f64_weights = name.starts_with("flowjax");
        assert_eq!(
            v["weight_type"],
            if f64_weights { "f64" } else { "f32" },
            "{name}"
        );
        assert_eq!(v["tol_source"], flow_train::golden::TOL_SOURCE, "{name}");
        eprintln!(
            "{name}: f64 {} f32 {} source {}",
            v["f64"]["log_prob"], v["f32"]["log_prob"], v["source_log_prob"]
        );
    }
}

#[test]
fn float64_parameters_stored_as_f32_verify_with_the_looser_source_tolerance() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/flowjax_maf_moons.json");
    let model = tmp("flowjax_maf_moons_f32.flow");
    let import = |weights: &str| {
        run(&[
            "import",
            fixture.to_str().unwrap(),
            "-o",
            &model,
            "--weights",
            weights,
        ])
    };
    let (ok, out) = import("f32");
    assert!(ok && out.contains("f32 weights"), "{out}");
    let (ok, out) = run(&["verify", &model, "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(ok && v["ok"] == true, "{out}");
    assert_eq!(v["weight_type"], "f32");
    assert_eq!(v["tol_source"], flow_train::golden::TOL_SOURCE_ROUNDED);
    let lp = v["source_log_prob"].as_f64().unwrap();
    assert!(lp > flow_train::golden::TOL_SOURCE, "the rounding shows: {lp:e}");
    // An unknown weight type is a usage error.
    let (ok, out) = import("f16");
    assert!(!ok && out.contains("f16"), "{out}");
}

#[test]
fn a_model_edited_after_its_golden_vectors_fails_verify() {
    let data = tmp("m.csv");
    let model = tmp("m.flow");
    assert!(run(&["data", "moons", "--n", "2000", "--seed", "4", "-o", &data]).0);
    assert!(run(&["fit", &data, "-o", &model, "--epochs", "2", "--hidden", "8,8", "--quiet"]).0);
    assert!(run(&["verify", &model]).1.contains("verify=ok"));
    // Change one network weight by a little and rewrite the file with the same metadata.
    let (mut parts, meta) = flow_train::io::read_model(std::path::Path::new(&model)).unwrap();
    let k = parts.weights.len() / 2;
    parts.weights[k] += 1e-2;
    let edited = tmp("edited.flow");
    flow_train::io::write_model(std::path::Path::new(&edited), &parts, &meta).unwrap();
    let (ok, out) = run(&["verify", &edited]);
    assert!(!ok && out.contains("verify=FAILED"), "{out}");
}
