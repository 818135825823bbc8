//! Training never loses work: Ctrl-C writes the best model so far, a process killed while
//! checkpointing leaves a valid file, a diverging loss stops with a clear message and keeps the
//! last good weights; and edge-shaped data (one column, constant column) get handled or named.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flow-train"))
}

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn moons(d: &Path, n: usize) -> String {
    let p = d.join("moons.csv").to_string_lossy().into_owned();
    let ok = bin()
        .args(["data", "moons", "--n", &n.to_string(), "--seed", "1", "-o", &p])
        .output()
        .unwrap();
    assert!(ok.status.success());
    p
}

fn verify_ok(model: &str) -> bool {
    let out = bin().args(["verify", model]).output().unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("verify=ok")
}

fn inspect_json(model: &str) -> serde_json::Value {
    let out = bin().args(["inspect", model, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn ctrl_c_writes_the_best_model_so_far() {
    let d = dir("ctrl_c");
    let data = moons(&d, 20_000);
    let model = d.join("m.flow").to_string_lossy().into_owned();
    let child = bin()
        .args([
            "fit",
            &data,
            "-o",
            &model,
            "--epochs",
            "10000",
            "--quiet",
            "--threads",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // SIGINT, as Ctrl-C sends.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(stderr.contains("interrupted"), "stderr: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().last().unwrap().starts_with("best_val_nll="),
        "{stdout}"
    );
    assert!(verify_ok(&model));
    let meta = inspect_json(&model);
    assert_eq!(meta["meta"]["training"]["stop"], "interrupted");
}

#[test]
fn killing_the_process_at_any_time_leaves_a_valid_model_file() {
    let d = dir("kill");
    let data = moons(&d, 4000);
    let model = d.join("m.flow").to_string_lossy().into_owned();
    // A first, complete model.
    let ok = bin()
        .args([
            "fit", &data, "-o", &model, "--epochs", "2", "--quiet", "--hidden", "8,8",
        ])
        .output()
        .unwrap();
    assert!(ok.status.success());
    // Refit with a checkpoint every epoch, killed (SIGKILL) at increasing times: whatever the
    // moment, the file is the old model or a complete checkpoint, never a partial write.
    for ms in [150u64, 400, 700, 1000, 1300] {
        let mut child = bin()
            .args([
                "fit",
                &data,
                "-o",
                &model,
                "--epochs",
                "500",
                "--quiet",
                "--checkpoint-every",
                "1",
                "--hidden",
                "8,8",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let bytes = std::fs::read(&model).unwrap();
        assert!(
            flow_core::model::builder::ModelParts::from_bytes(&bytes).is_ok(),
            "corrupt after kill at {ms} ms"
        );
    }
    // No temporary files left behind by completed writes other than the killed one's.
    assert!(inspect_json(&model)["params"].as_u64().unwrap() > 0);
}

#[test]
fn a_diverging_loss_stops_with_a_message_and_keeps_good_weights() {
    let d = dir("diverge");
    let data = moons(&d, 4000);
    let model = d.join("m.flow").to_string_lossy().into_owned();
    let out = bin()
        .args([
            "fit",
            &data,
            "-o",
            &model,
            "--epochs",
            "50",
            "--quiet",
            "--lr",
            "1e9",
            "--schedule",
            "constant",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("NaN or infinite"), "stderr: {stderr}");
    assert!(verify_ok(&model));
    assert_eq!(
        inspect_json(&model)["meta"]["training"]["stop"],
        "non-finite-loss"
    );
}

#[test]
fn one_column_data_fits_and_constant_columns_are_named() {
    let d = dir("shapes");
    let csv = d.join("one.csv");
    let mut s = String::from("v\n");
    for i in 0..2000 {
        s += &format!("{}\n", (i as f64 * 0.37).sin() * 2.0 + (i % 7) as f64 * 0.1);
    }
    std::fs::write(&csv, s).unwrap();
    for flow in ["maf", "nsf", "planar", "radial"] {
        let model = d.join(format!("{flow}.flow")).to_string_lossy().into_owned();
        let out = bin()
            .args([
                "fit",
                csv.to_str().unwrap(),
                "-o",
                &model,
                "--flow",
                flow,
                "--epochs",
                "2",
                "--quiet",
                "--hidden",
                "8",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{flow}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(verify_ok(&model), "{flow}");
    }
    let out = bin()
        .args(["fit", csv.to_str().unwrap(), "-o", "x.flow", "--flow", "realnvp"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 2 columns"));

    let csv = d.join("const.csv");
    std::fs::write(&csv, "a,b\n1,5\n2,5\n3,5\n4,5\n").unwrap();
    let out = bin()
        .args(["fit", csv.to_str().unwrap(), "-o", "x.flow"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'b'") && err.contains("constant"), "{err}");
}
